"""The grammar that writes the default corpus: a language-independent document planner (`semantics`) and one
realization module per language (``lang_<code>.py``: vocabulary, morphology, agreement, word order).

`documents` gives a language's own text, `parallel_documents` the same plans in every language, and
`codeswitch_documents` documents whose sentences alternate between two languages. Deterministic for the same seeds;
standard library only. Used by ``tools/make_default_corpus.py`` and ``tools/make_samples.py``.
"""

from __future__ import annotations

import importlib
import random
from types import ModuleType

from .semantics import Sentence, plan_document

__all__ = ["LANGUAGES", "codeswitch_documents", "documents", "language_module", "parallel_documents",
           "realize_plan"]

LANGUAGES: tuple[str, ...] = ("ar", "de", "el", "en", "fr", "hi", "ru", "sw", "th", "zh")

Plan = list[list[Sentence]]


def language_module(lang: str) -> ModuleType:
    """The realization module of ``lang`` (one of `LANGUAGES`)."""
    if lang not in LANGUAGES:
        raise ValueError(f"no grammar for language {lang!r}; have {', '.join(LANGUAGES)}")
    return importlib.import_module(f".lang_{lang}", __name__)


def realize_plan(plan: Plan, lang: str) -> list[str]:
    """A planned document in ``lang``: one string per paragraph."""
    module = language_module(lang)
    return [module.join([module.realize(sentence) for sentence in paragraph]) for paragraph in plan]


def _size(document: list[str]) -> int:
    return sum(len(paragraph.encode("utf-8")) + 1 for paragraph in document) + 1


def documents(lang: str, n_bytes: int, seed: str) -> list[list[str]]:
    """Documents in ``lang`` planned with ``random.Random(f"{seed}:{lang}")`` until they hold ``n_bytes`` UTF-8
    bytes in the CC-100 layout (a paragraph per line, an empty line after each document)."""
    rng = random.Random(f"{seed}:{lang}")
    out: list[list[str]] = []
    total = 0
    while total < n_bytes:
        out.append(realize_plan(plan_document(rng), lang))
        total += _size(out[-1])
    return out


def parallel_documents(n: int, seed: str) -> list[Plan]:
    """``n`` plans drawn with ``random.Random(seed)``: realize each in several languages for parallel text."""
    rng = random.Random(seed)
    return [plan_document(rng) for _ in range(n)]


def codeswitch_documents(lang: str, partner: str, n_bytes: int, seed: str) -> list[list[str]]:
    """Documents mostly in ``lang`` whose every other sentence is in ``partner`` (inter-sentential code-switching:
    the same plan, each sentence realized in one of the two languages), until they hold ``n_bytes`` bytes."""
    rng = random.Random(f"{seed}:{lang}:{partner}")
    own, other = language_module(lang), language_module(partner)
    out: list[list[str]] = []
    total = 0
    while total < n_bytes:
        document = []
        for paragraph in plan_document(rng):
            document.append(own.join([(other if i % 2 else own).realize(s) for i, s in enumerate(paragraph)]))
        out.append(document)
        total += _size(document)
    return out
