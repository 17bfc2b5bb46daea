"""The default corpus shipped inside the package: a small multilingual CC-100-style corpus that needs no download.

Ten languages in seven scripts of grammatical text written by the project's own sentence grammar
(``tools/corpus_grammar/``), a held-out split (`default_heldout_dir`), held-out code-switched text
(`default_codeswitch_dir`) and ``MANIFEST.json``, plus small samples (`parallel_sentences`, `xnli_sample_dir`). Point any CC-100 reader at `default_corpus_dir`. Regenerate with
``python tools/make_default_corpus.py``. See ``docs/data_pipeline.md`` ("The embedded default corpus").
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CORPUS_LANGUAGES", "default_codeswitch_dir", "default_corpus_dir", "default_corpus_manifest",
           "default_heldout_dir", "parallel_sentences", "xnli_sample_dir"]

DEFAULT_CORPUS_LANGUAGES: tuple[str, ...] = ("ar", "de", "el", "en", "fr", "hi", "ru", "sw", "th", "zh")
"""The default corpus's languages (ISO 639-1 codes, which are also CC-100's), sorted as `cc100_files` lists them."""

_MANIFEST = "MANIFEST.json"
_HELDOUT = "heldout"
_CODESWITCH = "codeswitch"


def default_corpus_dir() -> Path:
    """The directory holding the default corpus (``<lang>.txt.xz`` files and ``MANIFEST.json``) in the installed
    package.

    Raises `FileNotFoundError` when the files are missing (a package built without its package data) and
    `RuntimeError` when the package is not on a file system (e.g. imported from a zip archive).
    """
    resource = files("xlmr_hf.data") / "default_corpus"
    directory = resource if isinstance(resource, Path) else None  # a zipfile.Path has no directory on disk
    if directory is None:
        raise RuntimeError(f"the xlmr_hf package is not installed on a file system ({resource!r}), so its default "
                           "corpus has no directory path; install it normally (pip install xlmr-hf)")
    if not (directory / _MANIFEST).is_file():
        raise FileNotFoundError(f"the default corpus is missing from this installation: no {_MANIFEST} in "
                                f"{str(directory)!r}. Reinstall xlmr-hf, or in a source checkout run "
                                "python tools/make_default_corpus.py")
    return directory


def _split_dir(name: str, what: str) -> Path:
    directory = default_corpus_dir() / name
    missing = [lang for lang in DEFAULT_CORPUS_LANGUAGES if not (directory / f"{lang}.txt.xz").is_file()]
    if missing:
        raise FileNotFoundError(f"the default corpus's {what} is missing from this installation: no "
                                f"{', '.join(f'{lang}.txt.xz' for lang in missing)} in {str(directory)!r}. Reinstall "
                                "xlmr-hf, or in a source checkout run python tools/make_default_corpus.py")
    return directory


def default_codeswitch_dir() -> Path:
    """The directory holding the default corpus's held-out **code-switched** text (``codeswitch/<lang>.txt.xz``, one
    per language of `DEFAULT_CORPUS_LANGUAGES`): documents in ``<lang>`` whose every other sentence is in a partner
    language (English; French for English; ``MANIFEST.json["codeswitch"]["partner"]``), planned with a seed of their
    own. A CC-100 directory, e.g. ``eval_corpus`` of a pretraining run that compares language embeddings with none.

    Raises like `default_heldout_dir`."""
    return _split_dir(_CODESWITCH, "code-switched held-out text")


def default_heldout_dir() -> Path:
    """The directory holding the default corpus's held-out split (``heldout/<lang>.txt.xz``, one per language of
    `DEFAULT_CORPUS_LANGUAGES`) in the installed package: a CC-100 directory for evaluation during pretraining, e.g.
    ``cc100_files(default_heldout_dir())``. Its text was generated with a different seed from the training files and
    no document of it is identical to a training document of the same language.

    Raises `FileNotFoundError` when the files are missing (a package built without its package data) and
    `RuntimeError` when the package is not on a file system (e.g. imported from a zip archive).
    """
    return _split_dir(_HELDOUT, "held-out split")


def default_corpus_manifest() -> dict[str, Any]:
    """The default corpus's ``MANIFEST.json`` (a new dict on every call).

    Keys: ``name``, ``note``, ``generator``, ``source``, ``seed``, ``format``, ``xz``, ``stream_max_bytes``,
    ``languages`` (language -> ``script``, ``target_bytes``, ``documents``, ``paragraphs``, ``bytes`` and ``sha256``
    of the uncompressed text, ``xz_bytes``, ``xz_sha256``, ``xz_streams``), ``total`` and ``heldout`` (the held-out
    split: ``directory``, ``note``, ``seed``, ``target_bytes``, ``languages`` with the same per-language keys but
    ``script`` and ``target_bytes``, and ``total``).
    """
    manifest: dict[str, Any] = json.loads((default_corpus_dir() / _MANIFEST).read_text(encoding="utf-8"))
    return manifest


def _samples_dir() -> Path:
    directory = Path(str(files("xlmr_hf.data") / "samples"))
    if not (directory / "parallel.json").is_file():
        raise FileNotFoundError(f"the samples are missing from this installation: no parallel.json in "
                                f"{str(directory)!r}. Reinstall xlmr-hf, or in a source checkout run "
                                "python tools/make_samples.py")
    return directory


def parallel_sentences(languages: list[str] | tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """Parallel sentences in the default corpus's ten languages: ``result[lang][i]`` means the same in every language.
    The first 12 are everyday sentences written by hand for this project; the rest are the sentences of the parallel
    part of the default corpus (the same plans realized by each language's grammar). For exploring cross-lingual
    representations (translation retrieval, per-layer maps) and TLM. An unknown language is a `ValueError` listing
    those available."""
    sentences: dict[str, list[str]] = json.loads((_samples_dir() / "parallel.json").read_text(encoding="utf-8"))
    if languages is None:
        return sentences
    unknown = [lang for lang in languages if lang not in sentences]
    if unknown:
        raise ValueError(f"languages={list(languages)!r}: {unknown} have no parallel sentences; allowed: "
                         f"{sorted(sentences)}")
    return {lang: sentences[lang] for lang in languages}


def xnli_sample_dir() -> Path:
    """A small XNLI look-alike in the official XNLI-1.0 / XNLI-MT-1.0 layouts (en, fr, de, ar, zh, hi, sw; 36
    training pairs, 12 dev and 12 test pairs per language; hand-written, contradictions marked by a negation frame), for
    ``xlmr-hf finetune xnli --data_dir <this directory>`` or `xlmr_hf.tasks.xnli.load_xnli(..., data_dir=...)`."""
    return _samples_dir() / "xnli"
