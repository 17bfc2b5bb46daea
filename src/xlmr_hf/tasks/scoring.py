"""Pure scoring functions for the fine-tuning tasks: the single implementation behind the metric modules in
`xlmr_hf.tasks.metrics` (no `evaluate` import here).

Extractive QA under the SQuAD v1.1 rules (``language=None``) or the official per-language MLQA rules
(`MLQA_LANGUAGES`), entity-level sequence-labelling scores with seqeval's default (conlleval) semantics, and
accuracy. See ``docs/metrics.md`` for the exact normalization, tokenization and entity-decoding rules.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MLQA_LANGUAGES",
    "SEQEVAL_SCHEMES",
    "accuracy",
    "answer_tokens",
    "exact_match_score",
    "f1_score",
    "get_entities",
    "normalize_answer",
    "qa_scores",
    "seqeval_scores",
]

MLQA_LANGUAGES: tuple[str, ...] = ("en", "es", "de", "ar", "hi", "vi", "zh")
"""Languages of the official MLQA rules (the answer/context language)."""

SEQEVAL_SCHEMES: dict[str, frozenset[str]] = {
    "IOB1": frozenset({"B", "I"}),
    "IOB2": frozenset({"B", "I"}),
    "IOBES": frozenset({"B", "I", "E", "S"}),
}
"""Tagging schemes and the entity prefixes each allows (besides the plain tag ``O``)."""

_SQUAD_PUNCT = frozenset(string.punctuation)
_SQUAD_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_MLQA_ARTICLES: dict[str, re.Pattern[str] | None] = {
    "en": _SQUAD_ARTICLES,
    "es": re.compile(r"\b(?:un|una|unos|unas|el|la|los|las)\b"),
    "de": re.compile(r"\b(?:ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "vi": re.compile(r"\b(?:của|là|cái|chiếc|những)\b"),
    "hi": None,
    "zh": None,
    "ar": None,  # handled by _remove_arabic_al
}
_ARABIC_AL = "\u0627\u0644"  # ال


def _check_language(language: str | None) -> None:
    if language is not None and language not in MLQA_LANGUAGES:
        raise ValueError(
            f"language: {language!r} has no MLQA rules; allowed: {', '.join(MLQA_LANGUAGES)} "
            "(or None for the SQuAD v1.1 rules)"
        )


def _is_mlqa_punct(char: str) -> bool:
    return char in _SQUAD_PUNCT or unicodedata.category(char).startswith("P")


def _is_mixed_segment_char(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fa5" or _is_mlqa_punct(char)


def _mixed_segmentation(text: str) -> list[str]:
    tokens: list[str] = []
    pending = ""
    for char in text:
        if _is_mixed_segment_char(char):
            tokens.extend(pending.split())
            tokens.append(char)
            pending = ""
        else:
            pending += char
    tokens.extend(pending.split())
    return tokens


def answer_tokens(text: str, language: str | None = None) -> list[str]:
    """The tokens F1 counts: of SQuAD v1.1 (``language=None``) or of the MLQA rules for ``language``."""
    _check_language(language)
    text = text.lower()
    if language is None:
        text = "".join(char for char in text if char not in _SQUAD_PUNCT)
        return _SQUAD_ARTICLES.sub(" ", text).split()
    text = "".join(char for char in text if not _is_mlqa_punct(char))
    if language == "ar":
        text = text.replace(_ARABIC_AL, " ")
    elif (articles := _MLQA_ARTICLES[language]) is not None:
        text = articles.sub(" ", text)
    tokens = _mixed_segmentation(text) if language == "zh" else text.split()
    return [token for token in tokens if token.strip()]


def normalize_answer(text: str, language: str | None = None) -> str:
    """The normalized answer exact match compares (tokens joined by one space); rules as `answer_tokens`."""
    return " ".join(answer_tokens(text, language))


def exact_match_score(prediction: str, gold: str, language: str | None = None) -> float:
    """1.0 if the normalized prediction equals the normalized gold answer, else 0.0."""
    return float(normalize_answer(prediction, language) == normalize_answer(gold, language))


def f1_score(prediction: str, gold: str, language: str | None = None) -> float:
    """Token F1 (0-1) of one prediction against one gold answer; 0.0 when no token is shared."""
    predicted = answer_tokens(prediction, language)
    expected = answer_tokens(gold, language)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(expected)
    return 2 * precision * recall / (precision + recall)


def _field(record: Any, key: str, where: str) -> Any:
    if not isinstance(record, Mapping) or key not in record:
        raise ValueError(f"{where}: missing field {key!r} (got {record!r}); expected a mapping with {key!r}")
    return record[key]


def _gold_texts(answers: Any, where: str) -> list[str]:
    """Gold texts from ``{"text": [...], ...}`` (Hub/evaluate form) or ``[{"text": ...}, ...]`` (SQuAD JSON form)."""
    if isinstance(answers, Mapping):
        texts = _field(answers, "text", f"{where}.answers")
    elif isinstance(answers, Sequence) and not isinstance(answers, str):
        texts = [_field(answer, "text", f"{where}.answers[{i}]") for i, answer in enumerate(answers)]
    else:
        raise TypeError(f"{where}.answers: {answers!r} is neither {{'text': [...]}} nor a list of {{'text': ...}}")
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise ValueError(f"{where}.answers.text: {texts!r}; expected a non-empty list of gold answer strings")
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"{where}.answers.text: {text!r} is not a string")
    return list(texts)


def qa_scores(
    predictions: Sequence[Mapping[str, Any]],
    references: Sequence[Mapping[str, Any]],
    language: str | None = None,
) -> dict[str, float]:
    """Corpus ``exact_match`` and ``f1`` (0-100) of extractive QA predictions, matched to references by ``id``.

    ``predictions``: ``[{"id", "prediction_text"}]``; ``references``: ``[{"id", "answers"}]`` with ``answers`` as
    ``{"text": [...], "answer_start": [...]}`` or ``[{"text": ...}]``. ``language=None`` applies the SQuAD v1.1
    rules, a language code the MLQA rules of that language. A reference without a prediction scores 0 (as in the
    official scripts); a prediction for an unknown id and duplicate ids are errors."""
    _check_language(language)
    if not references:
        raise ValueError("references: empty; at least one question is required")
    predicted: dict[str, str] = {}
    for i, prediction in enumerate(predictions):
        qid = _field(prediction, "id", f"predictions[{i}]")
        text = _field(prediction, "prediction_text", f"predictions[{i}]")
        if not isinstance(text, str):
            raise TypeError(f"predictions[{i}].prediction_text: {text!r} is not a string")
        if qid in predicted:
            raise ValueError(f"predictions[{i}].id: {qid!r} is duplicated; each question takes one prediction")
        predicted[qid] = text
    golds: dict[str, list[str]] = {}
    for i, reference in enumerate(references):
        qid = _field(reference, "id", f"references[{i}]")
        if qid in golds:
            raise ValueError(f"references[{i}].id: {qid!r} is duplicated; question ids must be unique")
        golds[qid] = _gold_texts(_field(reference, "answers", f"references[{i}]"), f"references[{i}]")
    unknown = [qid for qid in predicted if qid not in golds]
    if unknown:
        raise ValueError(f"predictions.id: {unknown[:5]!r} match no reference id; allowed: the references' ids")
    exact = f1 = 0.0
    for qid, texts in golds.items():
        if qid in predicted:
            exact += max(exact_match_score(predicted[qid], text, language) for text in texts)
            f1 += max(f1_score(predicted[qid], text, language) for text in texts)
    return {"exact_match": 100.0 * exact / len(golds), "f1": 100.0 * f1 / len(golds)}


def accuracy(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    """Fraction (0-1) of predictions equal to their reference."""
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions: {len(predictions)} values but references has {len(references)}; lengths must be equal"
        )
    if not references:
        raise ValueError("references: empty; accuracy needs at least one example")
    return sum(int(p == r) for p, r in zip(predictions, references)) / len(references)


def _parse_tag(tag: Any, prefixes: frozenset[str], scheme: str, where: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, sep, type_ = tag.partition("-") if isinstance(tag, str) else ("", "", "")
    if not sep or prefix not in prefixes or not type_:
        allowed = ", ".join(f"{p}-<type>" for p in sorted(prefixes))
        raise ValueError(f"{where}: tag {tag!r} is not allowed for scheme {scheme}; allowed: 'O', {allowed}")
    return prefix, type_


def get_entities(
    tags: Sequence[str], scheme: str = "IOB2", where: str = "tags"
) -> list[tuple[str, int, int]]:
    """Entities ``(type, start, end)`` (``end`` inclusive) of one tag sequence, conlleval / seqeval-default
    semantics (see ``docs/metrics.md``). ``where`` names the sequence in error messages."""
    if scheme not in SEQEVAL_SCHEMES:
        raise ValueError(f"scheme: {scheme!r} is not supported; allowed: {', '.join(SEQEVAL_SCHEMES)}")
    prefixes = SEQEVAL_SCHEMES[scheme]
    entities: list[tuple[str, int, int]] = []
    open_type: str | None = None
    start, prev_prefix = 0, "O"
    for position, tag in enumerate([*tags, "O"]):
        prefix, type_ = (
            ("O", "") if position == len(tags) else _parse_tag(tag, prefixes, scheme, f"{where}[{position}]")
        )
        if open_type is not None and (prev_prefix in {"E", "S"} or prefix in {"B", "S", "O"} or type_ != open_type):
            entities.append((open_type, start, position - 1))
            open_type = None
        if prefix != "O" and open_type is None:
            open_type, start = type_, position
        prev_prefix = prefix
    return entities


def _ratio(numerator: int, denominator: int, zero_division: float) -> float:
    return numerator / denominator if denominator else float(zero_division)


def _prf(true_positives: int, predicted: int, expected: int, zero_division: float) -> tuple[float, float, float]:
    precision = _ratio(true_positives, predicted, zero_division)
    recall = _ratio(true_positives, expected, zero_division)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def seqeval_scores(
    predictions: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    scheme: str = "IOB2",
    zero_division: float = 0.0,
) -> dict[str, Any]:
    """Entity-level scores of tag sequences, with the keys of the Hub ``seqeval`` metric: one dict per entity type
    (``precision``, ``recall``, ``f1``, ``number`` = gold entities of that type; types of both sides, sorted) then
    ``overall_precision``, ``overall_recall``, ``overall_f1`` (micro) and ``overall_accuracy`` (tokens), all 0-1."""
    if scheme not in SEQEVAL_SCHEMES:
        raise ValueError(f"scheme: {scheme!r} is not supported; allowed: {', '.join(SEQEVAL_SCHEMES)}")
    if zero_division not in (0, 1):
        raise ValueError(f"zero_division: {zero_division!r} is not allowed; allowed: 0 or 1")
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions: {len(predictions)} sentences but references has {len(references)}; lengths must be equal"
        )
    predicted: set[tuple[int, str, int, int]] = set()
    expected: set[tuple[int, str, int, int]] = set()
    tokens = correct = 0
    for index, (pred_tags, gold_tags) in enumerate(zip(predictions, references)):
        if len(pred_tags) != len(gold_tags):
            raise ValueError(
                f"predictions[{index}]: {len(pred_tags)} tags but references[{index}] has {len(gold_tags)}; "
                "each sentence needs one predicted tag per reference tag"
            )
        predicted.update((index, *e) for e in get_entities(pred_tags, scheme, f"predictions[{index}]"))
        expected.update((index, *e) for e in get_entities(gold_tags, scheme, f"references[{index}]"))
        tokens += len(gold_tags)
        correct += sum(int(p == g) for p, g in zip(pred_tags, gold_tags))
    if tokens == 0:
        raise ValueError("references: no tags; seqeval needs at least one token")
    hits = predicted & expected
    results: dict[str, Any] = {}
    for type_ in sorted({e[1] for e in predicted | expected}):
        tp = sum(1 for e in hits if e[1] == type_)
        n_pred = sum(1 for e in predicted if e[1] == type_)
        n_gold = sum(1 for e in expected if e[1] == type_)
        precision, recall, f1 = _prf(tp, n_pred, n_gold, zero_division)
        results[type_] = {"precision": precision, "recall": recall, "f1": f1, "number": n_gold}
    precision, recall, f1 = _prf(len(hits), len(predicted), len(expected), zero_division)
    results.update(
        overall_precision=precision, overall_recall=recall, overall_f1=f1, overall_accuracy=correct / tokens
    )
    return results
