"""Extractive QA in XLM-R's MLQA setting: train on SQuAD v1.1 (English), evaluate on MLQA in 7 languages and any
cross-lingual context-question pairs. Readers (`load_qa`, `read_squad_json`), doc-stride features on character
offsets (`prepare_train_features`, `prepare_eval_features`), n-best span selection (`postprocess_qa`) and the
``mlqa`` fine-tuning task (`MLQATask`). Sources, layouts and the feature rules are in ``docs/finetuning.md``
("MLQA")."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from .base import EvalSet, Task, TaskData, TaskDataError
from .registry import register_task
from .scoring import MLQA_LANGUAGES

__all__ = [
    "MLQA_HUB_ID",
    "MLQA_LANGUAGES",
    "QA_FEATURES",
    "SQUAD_HUB_ID",
    "MLQAArguments",
    "MLQATask",
    "load_qa",
    "mlqa_file_path",
    "postprocess_qa",
    "prepare_eval_features",
    "prepare_train_features",
    "read_squad_json",
]

logger = logging.getLogger(__name__)

SQUAD_HUB_ID = "rajpurkar/squad"
MLQA_HUB_ID = "facebook/mlqa"
QA_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        },
        "language": datasets.Value("string"),
        "question_language": datasets.Value("string"),
    }
)
_SPLIT_DIRS = {"validation": "dev", "test": "test"}  # our split name -> MLQA_V1 folder and file prefix
_HUB_COLUMNS = ("id", "context", "question", "answers")


# ---------------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------------
def _field(obj: Any, key: str, kind: type, where: str, path: str) -> Any:
    """``obj[key]``, checked to be a ``kind``; a TaskDataError naming file, location and field otherwise."""
    if not isinstance(obj, dict):
        raise TaskDataError(f"{path}: {where} must be a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise TaskDataError(f"{path}: {where}: missing field {key!r} (SQuAD v1.1 / MLQA JSON layout)")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TaskDataError(
            f"{path}: {where}.{key}: expected a JSON {kind.__name__}, got {type(value).__name__} {value!r:.60}")
    return value


def _aligned(context: str, text: str, start: int) -> bool:
    return 0 <= start and context[start:start + len(text)] == text


def read_squad_json(
    path: str | os.PathLike,
    *,
    language: str,
    question_language: str | None = None,
    drop_misaligned: bool = False,
) -> list[dict[str, Any]]:
    """The questions of a SQuAD v1.1 / MLQA JSON file as rows (`QA_FEATURES` columns), in file order.

    ``language`` is the language of the contexts (and answers), ``question_language`` that of the questions (default:
    ``language``). Questions with a misaligned answer are counted and logged; with ``drop_misaligned=True`` (training
    files) they are dropped, otherwise kept. Raises TaskDataError for a missing or unreadable file, a missing or
    mistyped field, a question without answers or a repeated question id."""
    path = os.fspath(path)
    question_language = question_language or language
    if not os.path.isfile(path):
        raise TaskDataError(f"{path}: file not found (expected a SQuAD v1.1 / MLQA JSON file)")
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TaskDataError(f"{path}: not a readable UTF-8 JSON file: {err}") from err
    articles = _field(document, "data", list, "top level", path)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    misaligned: list[str] = []
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        paragraphs = _field(article, "paragraphs", list, where, path)
        title = article.get("title", "")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, where, path)
            for k, qa in enumerate(_field(paragraph, "qas", list, where, path)):
                where = f"data[{a}].paragraphs[{p}].qas[{k}]"
                qid = _field(qa, "id", str, where, path)
                question = _field(qa, "question", str, where, path)
                answers = _field(qa, "answers", list, where, path)
                if not answers:
                    raise TaskDataError(
                        f"{path}: {where} (id {qid!r}): 'answers' is empty; SQuAD v1.1 and MLQA questions have at "
                        "least one answer (SQuAD v2 unanswerable questions are not supported)")
                if qid in seen:
                    raise TaskDataError(f"{path}: {where}: question id {qid!r} appears twice; ids must be unique")
                seen.add(qid)
                texts = [_field(ans, "text", str, f"{where}.answers[{m}]", path) for m, ans in enumerate(answers)]
                starts = [_field(ans, "answer_start", int, f"{where}.answers[{m}]", path)
                          for m, ans in enumerate(answers)]
                if not all(_aligned(context, t, s) for t, s in zip(texts, starts)):
                    misaligned.append(qid)
                    if drop_misaligned:
                        continue
                rows.append({"id": qid, "title": str(title), "context": context, "question": question,
                             "answers": {"text": texts, "answer_start": starts}, "language": language,
                             "question_language": question_language})
    if misaligned:
        logger.warning(
            "%s: %d of %d questions have an answer whose answer_start does not point at its text (first ids: %s); %s",
            path, len(misaligned), len(seen), ", ".join(misaligned[:5]),
            "dropped (training data)" if drop_misaligned else "kept (evaluation scores answer texts only)")
    logger.info("%s: %d questions read (context %s, question %s)", path, len(rows), language, question_language)
    return rows


def mlqa_file_path(data_dir: str | os.PathLike, split: str, context_language: str, question_language: str) -> Path:
    """The official MLQA file of ``split`` (``"validation"`` or ``"test"``) for a language pair under ``data_dir``
    (the folder holding ``MLQA_V1``, or ``MLQA_V1`` itself)."""
    if split not in _SPLIT_DIRS:
        raise TaskDataError(f"MLQA split {split!r} is unknown; allowed: {', '.join(_SPLIT_DIRS)}")
    root = Path(data_dir)
    if (root / "MLQA_V1").is_dir():
        root = root / "MLQA_V1"
    prefix = _SPLIT_DIRS[split]
    return root / prefix / f"{prefix}-context-{context_language}-question-{question_language}.json"


# ---------------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------------
def _check_language(language: Any, argument: str) -> str:
    if language not in MLQA_LANGUAGES:
        raise TaskDataError(f"{argument}: unknown MLQA language {language!r}; allowed: {', '.join(MLQA_LANGUAGES)}")
    return language


def _eval_keys(
    eval_languages: Sequence[str], eval_pairs: Sequence[tuple[str, str]] | None,
) -> dict[str, tuple[str, str]]:
    """Result key -> (context language, question language), monolingual keys first, duplicates removed."""
    if isinstance(eval_languages, str):
        raise TaskDataError(f"eval_languages must be a sequence of language codes, got the string {eval_languages!r}")
    keys: dict[str, tuple[str, str]] = {}
    for language in eval_languages:
        keys[_check_language(language, "eval_languages")] = (language, language)
    for pair in eval_pairs or ():
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TaskDataError(f"eval_pairs: {pair!r} is not a (context_language, question_language) pair")
        context_language = _check_language(pair[0], f"eval_pairs {tuple(pair)!r} (context language)")
        question_language = _check_language(pair[1], f"eval_pairs {tuple(pair)!r} (question language)")
        key = context_language if context_language == question_language else f"{context_language}-{question_language}"
        keys[key] = (context_language, question_language)
    return keys


def _hub_load(path: str, name: str | None = None, **kwargs: Any) -> Any:
    """`datasets.load_dataset`, with failures turned into TaskDataError naming the dataset and the local fallback."""
    try:
        return datasets.load_dataset(path, name, **kwargs)
    except Exception as err:  # network, missing config, script-based repository, ...
        config = f" config {name!r}" if name else ""
        raise TaskDataError(
            f"Hub dataset {path!r}{config}: could not be loaded ({type(err).__name__}: {err}); download the official "
            "files and pass data_dir= (MLQA_V1) / squad_file= (train-v1.1.json) instead") from err


def _from_hub(dataset: Any, source: str, language: str, question_language: str, *, drop_misaligned: bool) -> Any:
    """Hub SQuAD / MLQA rows with the `QA_FEATURES` columns (title "" when absent)."""
    missing = [column for column in _HUB_COLUMNS if column not in dataset.column_names]
    if missing:
        raise TaskDataError(
            f"{source}: missing column(s) {', '.join(missing)}; present: {', '.join(dataset.column_names)}; "
            f"required: {', '.join(_HUB_COLUMNS)}")
    if drop_misaligned:
        total = len(dataset)
        dataset = dataset.filter(
            lambda batch: [bool(a["text"]) and all(_aligned(c, t, s) for t, s in zip(a["text"], a["answer_start"]))
                           for c, a in zip(batch["context"], batch["answers"])],
            batched=True, desc="dropping misaligned answers")
        if len(dataset) < total:
            logger.warning("%s: %d of %d questions have no answer or an answer whose answer_start does not point at "
                           "its text; dropped (training data)", source, total - len(dataset), total)
    if "title" not in dataset.column_names:
        dataset = dataset.add_column("title", [""] * len(dataset))
    dataset = dataset.select_columns(["id", "title", "context", "question", "answers"])
    dataset = dataset.add_column("language", [language] * len(dataset))
    dataset = dataset.add_column("question_language", [question_language] * len(dataset))
    return dataset.cast(QA_FEATURES)


def _first(dataset: Any, limit: int | None) -> Any:
    return dataset if limit is None or len(dataset) <= limit else dataset.select(range(limit))


def load_qa(
    *,
    eval_languages: Sequence[str] = MLQA_LANGUAGES,
    eval_pairs: Sequence[tuple[str, str]] | None = None,
    data_dir: str | os.PathLike | None = None,
    squad_file: str | os.PathLike | None = None,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
) -> TaskData:
    """SQuAD v1.1 train + MLQA dev/test (sources, keys and columns: ``docs/finetuning.md``, "MLQA").

    ``eval_pairs`` adds cross-lingual (context_language, question_language) pairs, keyed ``"<c>-<q>"`` (a pair with
    equal languages is the monolingual key). ``data_dir`` switches MLQA (and, unless ``squad_file`` is given, SQuAD) to
    local files; ``squad_file`` alone reads SQuAD locally and MLQA from the Hub. ``max_train_examples`` /
    ``max_eval_examples`` keep the first N rows (per split and key for evaluation). ``labels`` is None."""
    keys = _eval_keys(eval_languages, eval_pairs)
    for name, limit in (("max_train_examples", max_train_examples), ("max_eval_examples", max_eval_examples)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise TaskDataError(f"{name}: expected a positive integer or None, got {limit!r}")
    source: dict[str, str] = {}

    # Training data: SQuAD v1.1 train.
    if squad_file is None and data_dir is not None:
        squad_file = Path(data_dir) / "train-v1.1.json"
        if not squad_file.is_file():
            raise TaskDataError(
                f"{squad_file}: file not found; with data_dir= the SQuAD v1.1 train file must be there (or pass "
                "squad_file=, or neither to use the Hub)")
    if squad_file is not None:
        rows = read_squad_json(squad_file, language="en", drop_misaligned=True)
        train = datasets.Dataset.from_list(rows, features=QA_FEATURES)
        source["train"] = os.fspath(squad_file)
    else:
        train = _from_hub(_hub_load(SQUAD_HUB_ID, split="train"), f"Hub dataset {SQUAD_HUB_ID!r} (split train)",
                          "en", "en", drop_misaligned=True)
        source["train"] = f"{SQUAD_HUB_ID} (train)"
    train = _first(train, max_train_examples)

    # Evaluation data: MLQA dev/test per key.
    validation: dict[str, Any] = {}
    test: dict[str, Any] = {}
    for key, (context_language, question_language) in keys.items():
        if data_dir is not None:
            for split, target in (("validation", validation), ("test", test)):
                path = mlqa_file_path(data_dir, split, context_language, question_language)
                if not path.is_file():
                    raise TaskDataError(
                        f"{path}: MLQA {split} file for context {context_language!r} / question {question_language!r} "
                        "not found (expected the MLQA_V1.zip layout under data_dir)")
                rows = read_squad_json(path, language=context_language, question_language=question_language)
                target[key] = _first(datasets.Dataset.from_list(rows, features=QA_FEATURES), max_eval_examples)
        else:
            config = f"mlqa.{context_language}.{question_language}"
            splits = _hub_load(MLQA_HUB_ID, config)
            for split, target in (("validation", validation), ("test", test)):
                if split not in splits:
                    raise TaskDataError(f"Hub dataset {MLQA_HUB_ID!r} config {config!r}: no split {split!r}; "
                                        f"present: {', '.join(splits)}")
                where = f"Hub dataset {MLQA_HUB_ID!r} config {config!r} (split {split})"
                target[key] = _first(_from_hub(splits[split], where, context_language, question_language,
                                               drop_misaligned=False), max_eval_examples)
    if data_dir is not None:
        source["validation"] = os.fspath(mlqa_file_path(data_dir, "validation", "<c>", "<q>"))
        source["test"] = os.fspath(mlqa_file_path(data_dir, "test", "<c>", "<q>"))
    else:
        source["validation"] = f"{MLQA_HUB_ID} (mlqa.<c>.<q>, validation)"
        source["test"] = f"{MLQA_HUB_ID} (mlqa.<c>.<q>, test)"
    logger.info("QA data: %d training questions; evaluation keys %s", len(train), ", ".join(keys))
    return TaskData(train=train, validation=validation, test=test, labels=None, source=source)


# ---------------------------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------------------------
def _as_dataset(data: Any, required: Sequence[str], what: str) -> Any:
    if not isinstance(data, datasets.Dataset):
        data = datasets.Dataset.from_list(list(data))
    missing = [column for column in required if column not in data.column_names]
    if missing:
        raise TaskDataError(f"{what}: missing column(s) {', '.join(missing)}; present: "
                            f"{', '.join(data.column_names) or 'none'}; required: {', '.join(required)}")
    return data


def _check_lengths(tokenizer: Any, max_length: int, doc_stride: int, max_query_length: int) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"QA features need a fast tokenizer (character offsets); got {type(tokenizer).__name__}")
    budget = max_length - max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
    if max_query_length < 1 or doc_stride < 0 or budget <= doc_stride:
        raise ValueError(
            f"max_length={max_length}, max_query_length={max_query_length}, doc_stride={doc_stride}: the context "
            f"window (max_length - max_query_length - special tokens = {budget}) must be larger than doc_stride, "
            "max_query_length >= 1 and doc_stride >= 0")


def _truncate_questions(questions: Sequence[str], tokenizer: Any, max_query_length: int) -> list[str]:
    """Questions without leading whitespace, cut to at most ``max_query_length`` tokens: before the first token that
    does not fit (cut again while the cut text still tokenizes longer; every cut shortens the text)."""
    result = [question.lstrip() for question in questions]
    todo = list(range(len(result)))
    while todo:
        encoded = tokenizer([result[i] for i in todo], add_special_tokens=False, return_offsets_mapping=True)
        still = []
        for i, offsets in zip(todo, encoded["offset_mapping"]):
            if len(offsets) > max_query_length:
                text = result[i]
                cut = offsets[max_query_length][0]
                result[i] = text[:cut].rstrip() if 0 < cut < len(text) else text[:-1]
                still.append(i)
        todo = still
    return result


def _windows(batch: Mapping[str, list[Any]], tokenizer: Any, max_length: int, doc_stride: int,
             max_query_length: int) -> Any:
    questions = _truncate_questions(batch["question"], tokenizer, max_query_length)
    return tokenizer(questions, batch["context"], truncation="only_second", max_length=max_length, stride=doc_stride,
                     return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)


def _context_span(sequence_ids: Sequence[int | None]) -> tuple[int, int]:
    """First and last token index of the context (sequence 1) in a window."""
    indices = [i for i, s in enumerate(sequence_ids) if s == 1]
    return indices[0], indices[-1]


def _label(offsets: Sequence[Sequence[int]], first: int, last: int, start_char: int, end_char: int) -> tuple[int, int]:
    """Token start/end of the character span [start_char, end_char) in the context tokens first..last; (0, 0) when it
    is not entirely inside the window."""
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    tokens = [i for i in range(first, last + 1) if offsets[i][1] > offsets[i][0]]  # skip zero-width tokens
    start = next((i for i in tokens if offsets[i][1] > start_char), None)
    end = next((i for i in reversed(tokens) if offsets[i][0] < end_char), None)
    if start is None or end is None or end < start:
        return 0, 0
    return start, end


def prepare_train_features(
    dataset: Any,
    tokenizer: Any,
    *,
    max_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
    keep_offsets: bool = False,
) -> Any:
    """Training windows of ``dataset`` (rows with ``question``, ``context``, ``answers``; the first answer is the
    label): a `datasets.Dataset` with ``input_ids, attention_mask, start_positions, end_positions`` (unpadded), plus
    ``example_id`` and ``offset_mapping`` (as in `prepare_eval_features`) with ``keep_offsets=True`` (diagnostics;
    `transformers.Trainer` drops such columns). Windows whose labelled tokens cover more than the answer are logged."""
    dataset = _as_dataset(dataset, ("id", "question", "context", "answers"), "QA training data")
    _check_lengths(tokenizer, max_length, doc_stride, max_query_length)
    counts = {"examples": 0, "windows": 0, "labelled": 0, "wider": 0}

    def encode(batch: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        encoded = _windows(batch, tokenizer, max_length, doc_stride, max_query_length)
        out: dict[str, list[Any]] = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                                     "start_positions": [], "end_positions": []}
        if keep_offsets:
            out["example_id"], out["offset_mapping"] = [], []
        for i, offsets in enumerate(encoded["offset_mapping"]):
            sample = encoded["overflow_to_sample_mapping"][i]
            context, answers = batch["context"][sample], batch["answers"][sample]
            if not answers["text"]:
                raise TaskDataError(f"QA training data: question {batch['id'][sample]!r} has no answer")
            start_char = int(answers["answer_start"][0])
            end_char = start_char + len(answers["text"][0])
            first, last = _context_span(encoded.sequence_ids(i))
            start, end = _label(offsets, first, last, start_char, end_char)
            out["start_positions"].append(start)
            out["end_positions"].append(end)
            counts["windows"] += 1
            if start:
                counts["labelled"] += 1
                counts["wider"] += context[offsets[start][0]:offsets[end][1]] != answers["text"][0]
            if keep_offsets:
                out["example_id"].append(batch["id"][sample])
                out["offset_mapping"].append([list(o) if first <= k <= last else None for k, o in enumerate(offsets)])
        counts["examples"] += len(batch["id"])
        return out

    features = dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc="QA training windows")
    if counts["windows"]:
        logger.info("QA training features: %d examples -> %d windows, %d with the answer inside (%d of them with an "
                    "answer boundary inside a token: the labelled tokens cover more than the answer), %d labelled <s>",
                    counts["examples"], counts["windows"], counts["labelled"], counts["wider"],
                    counts["windows"] - counts["labelled"])
    return features


def prepare_eval_features(
    dataset: Any,
    tokenizer: Any,
    *,
    max_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
) -> Any:
    """Evaluation windows of ``dataset`` (rows with ``id``, ``question``, ``context``): a `datasets.Dataset` with
    ``input_ids, attention_mask, example_id, offset_mapping``; ``offset_mapping[k]`` is the ``[start, end)`` character
    span of token k in the context, or None when token k is not a context token."""
    dataset = _as_dataset(dataset, ("id", "question", "context"), "QA evaluation data")
    _check_lengths(tokenizer, max_length, doc_stride, max_query_length)

    def encode(batch: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        encoded = _windows(batch, tokenizer, max_length, doc_stride, max_query_length)
        example_ids, offset_mapping = [], []
        for i, offsets in enumerate(encoded["offset_mapping"]):
            first, last = _context_span(encoded.sequence_ids(i))
            example_ids.append(batch["id"][encoded["overflow_to_sample_mapping"][i]])
            offset_mapping.append([list(o) if first <= k <= last else None for k, o in enumerate(offsets)])
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                "example_id": example_ids, "offset_mapping": offset_mapping}

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc="QA evaluation windows")


# ---------------------------------------------------------------------------------------------------------------------
# Post-processing
# ---------------------------------------------------------------------------------------------------------------------
def _rows(data: Any, columns: Sequence[str], what: str) -> Iterator[Mapping[str, Any]]:
    """Rows of a `datasets.Dataset` (read in batches, only ``columns``) or of a sequence of mappings."""
    if isinstance(data, datasets.Dataset):
        _as_dataset(data, columns, what)
        for batch in data.select_columns(list(columns)).iter(batch_size=256):
            for values in zip(*(batch[column] for column in columns)):
                yield dict(zip(columns, values))
        return
    for index, row in enumerate(data):
        missing = [column for column in columns if column not in row]
        if missing:
            raise TaskDataError(f"{what}: row {index} has no {', '.join(missing)}; required: {', '.join(columns)}")
        yield row


def _top(logits: np.ndarray, n: int) -> Iterable[int]:
    return np.argsort(-logits, kind="stable")[:n].tolist()


def postprocess_qa(
    examples: Any,
    features: Any,
    start_logits: Any,
    end_logits: Any,
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Predicted answer text per example id (the rules: ``docs/finetuning.md``, "MLQA").

    ``examples``: rows with ``id`` and ``context``; ``features``: the `prepare_eval_features` rows (``example_id``,
    ``offset_mapping``) in the order of the logits; ``start_logits`` / ``end_logits``: one row per feature (an array
    ``(n_features, length)`` as returned by `transformers.Trainer.predict`, padded with any value past a feature's
    length, or a list of per-feature arrays)."""
    if n_best < 1 or max_answer_length < 1:
        raise ValueError(f"n_best={n_best} and max_answer_length={max_answer_length} must both be >= 1")
    contexts: dict[str, str] = {}
    for row in _rows(examples, ("id", "context"), "QA examples"):
        if row["id"] in contexts:
            raise TaskDataError(f"QA examples: id {row['id']!r} appears twice; ids must be unique")
        contexts[row["id"]] = row["context"]
    n_features = len(features)
    if len(start_logits) != n_features or len(end_logits) != n_features:
        raise ValueError(f"start_logits ({len(start_logits)} rows) and end_logits ({len(end_logits)} rows) must have "
                         f"one row per feature ({n_features} features)")
    best: dict[str, tuple[float, int, int]] = {}  # example id -> (score, start char, end char)
    for i, feature in enumerate(_rows(features, ("example_id", "offset_mapping"), "QA features")):
        example_id, offsets = feature["example_id"], feature["offset_mapping"]
        if example_id not in contexts:
            raise TaskDataError(f"QA features: feature {i} belongs to example {example_id!r}, which is not among the "
                                "examples")
        length = len(offsets)
        starts = np.asarray(start_logits[i], dtype=np.float64)[:length]
        ends = np.asarray(end_logits[i], dtype=np.float64)[:length]
        if len(starts) < length or len(ends) < length:
            raise ValueError(f"feature {i}: {length} tokens but only {min(len(starts), len(ends))} logits")
        for s in _top(starts, n_best):
            if offsets[s] is None:
                continue
            for e in _top(ends, n_best):
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                if offsets[e][1] <= offsets[s][0]:
                    continue  # no characters
                score = float(starts[s] + ends[e])
                if example_id not in best or score > best[example_id][0]:
                    best[example_id] = (score, offsets[s][0], offsets[e][1])
    predictions: dict[str, str] = {}
    empty = 0
    for example_id, context in contexts.items():
        if example_id in best:
            _, start_char, end_char = best[example_id]
            predictions[example_id] = context[start_char:end_char].strip()
        else:
            predictions[example_id] = ""
        empty += not predictions[example_id]
    if empty:
        logger.warning("QA post-processing: %d of %d examples have no valid answer span; predicted \"\"", empty,
                       len(predictions))
    return predictions


@dataclass
class MLQAArguments:
    """Settings of the ``mlqa`` task on top of the common fine-tuning settings (names as in transformers'
    ``run_qa.py``)."""

    eval_pairs: list[str] = field(default_factory=list, metadata={"help": (
        "cross-lingual context-question pairs such as de-en (context German, question English)")})
    squad_file: str | None = field(default=None, metadata={"help": (
        "SQuAD v1.1 train JSON; default: <data_dir>/train-v1.1.json with data_dir, else the Hub")})
    doc_stride: int = field(default=128, metadata={"help": "context tokens shared by consecutive windows"})
    n_best_size: int = field(default=20, metadata={"help": "start/end candidates per window"})
    max_answer_length: int = field(default=30, metadata={"help": "longest answer in tokens"})


@register_task
class MLQATask(Task):
    """``xlmr-hf finetune mlqa``: extractive QA, official MLQA and SQuAD-rules F1/EM per language and pair."""

    name, title = "mlqa", "MLQA"
    help = "extractive QA: train on SQuAD v1.1, evaluate MLQA's 7 languages and cross-lingual pairs, F1/EM"
    settings = ("cross-lingual-transfer",)
    primary = "f1"
    metrics_reported = ("f1", "exact_match", "squad_f1", "squad_exact_match")
    auto_class, pipeline_tag = "AutoModelForQuestionAnswering", "question-answering"
    hub_datasets = (MLQA_HUB_ID, SQUAD_HUB_ID)
    default_max_seq_length = 384
    arguments = MLQAArguments

    def validate(self, args: Any) -> None:
        for name in ("doc_stride", "n_best_size", "max_answer_length"):
            if getattr(args, name) < 1:
                raise TaskDataError(f"{name}={getattr(args, name)!r}; allowed: an integer >= 1")
        for pair in args.eval_pairs:
            if pair.count("-") != 1:
                raise TaskDataError(f"eval_pairs entry {pair!r}; allowed: '<context language>-<question language>'")

    def all_languages(self, args: Any) -> Sequence[str]:
        return MLQA_LANGUAGES

    def available_languages(self, args: Any) -> Sequence[str] | None:
        if args.data_dir is None:
            return None
        return [lang for lang in MLQA_LANGUAGES if mlqa_file_path(args.data_dir, "test", lang, lang).is_file()]

    def load(self, args: Any, languages: list[str]) -> TaskData:
        pairs = [tuple(pair.split("-")) for pair in args.eval_pairs]
        return load_qa(eval_languages=languages, eval_pairs=pairs or None, data_dir=args.data_dir,
                       squad_file=args.squad_file, max_train_examples=args.max_train_samples,
                       max_eval_examples=args.eval_load_cap)

    def features(self, args: Any, dataset: Any, tokenizer: Any, labels: list[str] | None, train: bool) -> Any:
        prepare = prepare_train_features if train else prepare_eval_features
        return prepare(dataset, tokenizer, max_length=args.resolved_max_seq_length(), doc_stride=args.doc_stride)

    def options(self, args: Any) -> dict[str, Any]:
        return {"n_best_size": args.n_best_size, "max_answer_length": args.max_answer_length}

    def score(self, evalset: EvalSet, predictions: Any, monitor: Any) -> dict[str, dict[str, float]]:
        from .metrics import load_metric

        start, end = (np.asarray(p) for p in predictions[:2])
        squad = load_metric("squad")
        out = {}
        for key, part in evalset.slices.items():
            examples = evalset.examples[key]
            texts = postprocess_qa(examples, evalset.parts[key], start[part], end[part],
                                   n_best=evalset.options["n_best_size"],
                                   max_answer_length=evalset.options["max_answer_length"])
            preds = [{"id": i, "prediction_text": texts[i]} for i in examples["id"]]
            refs = [{"id": i, "answers": a} for i, a in zip(examples["id"], examples["answers"], strict=True)]
            official = load_metric("mlqa", language=key.split("-")[0]).compute(predictions=preds, references=refs)
            rules = squad.compute(predictions=preds, references=refs)
            out[key] = {"f1": official["f1"], "exact_match": official["exact_match"], "squad_f1": rules["f1"],
                        "squad_exact_match": rules["exact_match"]}
        return out
