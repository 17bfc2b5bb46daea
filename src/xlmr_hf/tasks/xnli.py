"""XNLI (Conneau et al., 2018): cross-lingual natural language inference in the four settings of the XLM-R paper
(`load_xnli`, `preprocess_xnli`) and the ``xnli`` fine-tuning task (`XNLITask`). Data from the Hub (``facebook/xnli``)
or the official XNLI-1.0 / XNLI-MT-1.0 files; settings, layouts and the translate-test convention are described in
``docs/finetuning.md`` ("XNLI")."""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets

from .base import EvalSet, Task, TaskData, TaskDataError
from .registry import register_task

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["HUB_ID", "LABELS", "LANGUAGES", "SETTINGS", "XNLITask", "load_xnli", "local_languages", "preprocess_xnli"]

logger = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur")
LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
SETTINGS: tuple[str, ...] = ("cross-lingual-transfer", "translate-train", "translate-train-all", "translate-test")
HUB_ID = "facebook/xnli"

# Label spellings of the official files -> ids; XNLI-MT spells contradiction "contradictory".
_LABEL_IDS: dict[str, int] = {"entailment": 0, "neutral": 1, "contradiction": 2, "contradictory": 2}
_NO_GOLD = "-"  # MultiNLI's gold label when the annotators had no majority: skipped and counted
_ALLOWED_LABELS = "entailment, neutral, contradiction (or contradictory, as XNLI-MT spells it); '-' rows are skipped"
_FEATURES = datasets.Features(
    {
        "premise": datasets.Value("string"),
        "hypothesis": datasets.Value("string"),
        "label": datasets.Value("int64"),
        "language": datasets.Value("string"),
    }
)
_SPLIT_FILES = {"validation": "dev", "test": "test"}  # our split name -> the official file infix


# ----------------------------------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------------------------------
def _check_language(value: object, field: str) -> str:
    if value not in LANGUAGES:
        raise TaskDataError(f"XNLI: {field} {value!r} is not an XNLI language; allowed: {', '.join(LANGUAGES)}")
    return str(value)


def _check_languages(languages: Sequence[str] | str) -> list[str]:
    if isinstance(languages, str):  # a single code passed bare
        languages = [languages]
    checked: list[str] = []
    for lang in languages:
        if _check_language(lang, "languages entry") not in checked:
            checked.append(lang)
    if not checked:
        raise TaskDataError(f"XNLI: languages is empty; give one or more of {', '.join(LANGUAGES)}")
    return checked


def _check_limit(value: int | None, field: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise TaskDataError(f"XNLI: {field} is {value!r}; allowed: a positive int or None (no limit)")
    return value


def _quotas(total: int | None, count: int) -> list[int | None]:
    """`total` rows shared as evenly as possible by `count` languages (the first ones get the remainder)."""
    if total is None:
        return [None] * count
    return [total // count + (1 if i < total % count else 0) for i in range(count)]


def _label_names(ids: set[int]) -> str:
    return ", ".join(f"{i} ({LABELS[i]})" if 0 <= i < len(LABELS) else str(i) for i in sorted(ids))


# ----------------------------------------------------------------------------------------------------------------------
# Local files in the official formats
# ----------------------------------------------------------------------------------------------------------------------
class _Skips:
    """Counts skipped rows per source (file or Hub split) and reason; logged once at the end."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.first_line: dict[tuple[str, str], int] = {}

    def add(self, source: str | Path, reason: str, line: int, count: int = 1) -> None:
        key = (str(source), reason)
        self.counts[key] += count
        self.first_line.setdefault(key, line)

    def log(self) -> None:
        for (source, reason), count in sorted(self.counts.items()):
            where = f" (first at line {self.first_line[(source, reason)]})" if self.first_line[(source, reason)] else ""
            logger.warning("XNLI: skipped %d row(s) of %s: %s%s", count, source, reason, where)


def _records(path: Path, required: Sequence[str], skips: _Skips) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a header TSV (read with QUOTE_NONE) or a JSON-lines file; checks `required` columns."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8-sig") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise TaskDataError(f"{path}, line {line_number}: not valid JSON ({error.msg}); allowed: one "
                                        "JSON object per line") from None
                if not isinstance(row, dict):
                    raise TaskDataError(f"{path}, line {line_number}: a JSON {type(row).__name__}, not an object; "
                                        f"allowed: one JSON object per line with fields {', '.join(required)}")
                missing = [column for column in required if column not in row]
                if missing:
                    raise TaskDataError(f"{path}, line {line_number}: missing field(s) {', '.join(missing)}; "
                                        f"fields found: {', '.join(row) or '(none)'}")
                yield line_number, row
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise TaskDataError(f"{path}: empty file; expected a header line with columns {', '.join(required)}")
        missing = [column for column in required if column not in header]
        if missing:
            raise TaskDataError(f"{path}: missing column(s) {', '.join(missing)}; columns found: "
                                f"{', '.join(header) or '(none)'}")
        for row in reader:
            if len(row) != len(header):
                if any(field.strip() for field in row):  # blank lines are not rows
                    skips.add(path, f"{len(row)} tab-separated fields instead of the header's {len(header)}",
                              reader.line_num)
                continue
            yield reader.line_num, dict(zip(header, row))


def _label_id(value: Any, path: Path, line: int, column: str) -> int | None:
    """The id of an official label string; None for ``-`` (no gold label)."""
    text = str(value).strip()
    if text == _NO_GOLD:
        return None
    if text not in _LABEL_IDS:
        raise TaskDataError(f"{path}, line {line}: {column} {value!r} is not an XNLI label; allowed: {_ALLOWED_LABELS}")
    return _LABEL_IDS[text]


def _empty_columns() -> dict[str, list[Any]]:
    return {name: [] for name in _FEATURES}


def _dataset(columns: dict[str, list[Any]]) -> datasets.Dataset:
    return datasets.Dataset.from_dict(columns, features=_FEATURES)


class _LocalReader:
    """Reads the official XNLI-1.0 / XNLI-MT-1.0 files under `data_dir` (nested release folders or flat)."""

    def __init__(self, data_dir: str | Path, skips: _Skips) -> None:
        self.root = Path(data_dir)
        if not self.root.is_dir():
            raise TaskDataError(f"XNLI: data_dir {str(self.root)!r} is not a directory; allowed: a folder holding the "
                                "unzipped XNLI-1.0 and XNLI-MT-1.0 releases, or None to load from the Hub")
        self.skips = skips

    def _find(self, what: str, names: Sequence[str], release: str, required: bool = True) -> Path | None:
        candidates = [self.root / release / name for name in names] + [self.root / name for name in names]
        for path in candidates:
            if path.is_file():
                return path
        if not required:
            return None
        raise TaskDataError(f"XNLI: {what} not found; expected one of: {', '.join(str(p) for p in candidates)}")

    def train(self, lang: str, limit: int | None) -> tuple[datasets.Dataset, str]:
        path = self._find(f"training set of {lang!r}", [f"multinli/multinli.train.{lang}.tsv"], "XNLI-MT-1.0")
        assert path is not None
        columns = _empty_columns()
        for line, row in _records(path, ("premise", "hypo", "label"), self.skips):
            if limit is not None and len(columns["label"]) >= limit:
                break
            label = _label_id(row["label"], path, line, "label")
            if label is None:
                self.skips.add(path, "no gold label ('-')", line)
                continue
            columns["premise"].append(row["premise"])
            columns["hypothesis"].append(row["hypo"])
            columns["label"].append(label)
            columns["language"].append(lang)
        return _dataset(columns), str(path)

    def evaluation(self, split: str, languages: Sequence[str], limit: int | None,
                   translated: bool) -> tuple[dict[str, datasets.Dataset], str]:
        infix = _SPLIT_FILES[split]
        by_lang: dict[str, dict[str, list[Any]]] = {}
        sources: list[str] = []
        original = list(languages)
        if translated:
            original = []
            for lang in languages:
                names = [f"xnli/xnli.{infix}.{lang}.tsv", f"xnli/xnli.{infix}.{lang}.jsonl"]
                path = self._find(f"translate-test {infix} set of {lang!r} (translated into English)", names,
                                  "XNLI-MT-1.0", required=lang != "en")
                if path is None:  # English needs no translation: the XNLI-1.0 English rows
                    original.append(lang)
                    continue
                by_lang[lang] = self._read_translated(path, lang, limit)
                sources.append(str(path))
        if original:
            path = self._find(f"XNLI {infix} set", [f"xnli.{infix}.tsv", f"xnli.{infix}.jsonl"], "XNLI-1.0")
            assert path is not None
            by_lang.update(self._read_xnli(path, original, limit))
            sources.append(str(path))
        return {lang: _dataset(by_lang[lang]) for lang in languages}, "; ".join(sources)

    def _read_xnli(self, path: Path, languages: Sequence[str], limit: int | None) -> dict[str, dict[str, list[Any]]]:
        wanted = {lang: _empty_columns() for lang in languages}
        found: set[str] = set()
        for line, row in _records(path, ("language", "gold_label", "sentence1", "sentence2"), self.skips):
            lang = str(row["language"])
            found.add(lang)
            columns = wanted.get(lang)
            if columns is None or (limit is not None and len(columns["label"]) >= limit):
                continue
            self._append(columns, row, lang, path, line)
        for lang, columns in wanted.items():
            if not columns["label"] and lang not in found:
                raise TaskDataError(f"{path}: no rows with language {lang!r} (column language); languages in the "
                                    f"file: {', '.join(sorted(found)) or '(none)'}")
        return wanted

    def _read_translated(self, path: Path, lang: str, limit: int | None) -> dict[str, list[Any]]:
        rows = list(_records(path, ("gold_label", "sentence1", "sentence2"), self.skips))
        if any(str(row.get("language")) == lang for _, row in rows):
            rows = [(line, row) for line, row in rows if str(row.get("language")) == lang]
        columns = _empty_columns()
        for line, row in rows:
            if limit is not None and len(columns["label"]) >= limit:
                break
            self._append(columns, row, lang, path, line)
        return columns

    def _append(self, columns: dict[str, list[Any]], row: dict[str, Any], lang: str, path: Path, line: int) -> None:
        label = _label_id(row["gold_label"], path, line, "gold_label")
        if label is None:
            self.skips.add(path, "no gold label ('-')", line)
            return
        columns["premise"].append(str(row["sentence1"]))
        columns["hypothesis"].append(str(row["sentence2"]))
        columns["label"].append(label)
        columns["language"].append(lang)


# ----------------------------------------------------------------------------------------------------------------------
# The Hub dataset facebook/xnli (one config per language)
# ----------------------------------------------------------------------------------------------------------------------
class _HubReader:
    """Loads ``facebook/xnli`` configs (each at most once per `load_xnli` call) and normalises their splits."""

    def __init__(self, skips: _Skips) -> None:
        self.skips = skips
        self.configs: dict[str, Any] = {}

    def _split(self, lang: str, split: str, limit: int | None) -> datasets.Dataset:
        if lang not in self.configs:
            logger.info("XNLI: loading %s config %r from the Hub", HUB_ID, lang)
            self.configs[lang] = datasets.load_dataset(HUB_ID, lang)
        name = f"{HUB_ID} (config {lang!r}, split {split!r})"
        config = self.configs[lang]
        if split not in config:
            raise TaskDataError(f"{HUB_ID} (config {lang!r}): no split {split!r}; splits found: "
                                f"{', '.join(config) or '(none)'}")
        dataset = config[split]
        missing = [column for column in ("premise", "hypothesis", "label") if column not in dataset.column_names]
        if missing:
            raise TaskDataError(f"{name}: missing column(s) {', '.join(missing)}; columns found: "
                                f"{', '.join(dataset.column_names)}")
        feature = dataset.features["label"]
        if isinstance(feature, datasets.ClassLabel) and tuple(feature.names) != LABELS:
            raise TaskDataError(f"{name}: label names {feature.names} differ from the expected {list(LABELS)}; "
                                "allowed: exactly these names in this id order")
        dataset = dataset.select_columns(["premise", "hypothesis", "label"])
        values = set(dataset.unique("label"))
        if -1 in values:  # the datasets convention for "no label"
            before = len(dataset)
            dataset = dataset.filter(lambda batch: [v != -1 for v in batch["label"]], batched=True)
            self.skips.add(name, "no label (-1)", 0, count=before - len(dataset))
            values.discard(-1)
        bad = values - set(range(len(LABELS)))
        if bad:
            raise TaskDataError(f"{name}: label value(s) {sorted(bad)}; allowed: 0 (entailment), 1 (neutral), "
                                "2 (contradiction)")
        if limit is not None and len(dataset) > limit:
            dataset = dataset.select(range(limit))
        dataset = dataset.add_column("language", [lang] * len(dataset))
        return dataset.cast(_FEATURES)

    def train(self, lang: str, limit: int | None) -> tuple[datasets.Dataset, str]:
        return self._split(lang, "train", limit), f"{HUB_ID}:{lang}/train"

    def evaluation(self, split: str, languages: Sequence[str], limit: int | None,
                   translated: bool) -> tuple[dict[str, datasets.Dataset], str]:
        assert not translated  # rejected in load_xnli
        sets = {lang: self._split(lang, split, limit) for lang in languages}
        return sets, f"{HUB_ID}:{','.join(languages)}/{split}"


# ----------------------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------------------
def load_xnli(
    setting: str,
    *,
    languages: Sequence[str] = LANGUAGES,
    data_dir: str | None = None,
    train_language: str = "en",
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
) -> TaskData:
    """The raw examples of one XNLI run in `setting` (settings, sources and layouts: ``docs/finetuning.md``, "XNLI").

    `languages` are the evaluation languages (and, for ``translate-train``/``translate-train-all``, the training
    languages; ``translate-train`` takes exactly one). `train_language` is the training language of
    ``cross-lingual-transfer`` (``translate-test`` requires ``"en"``; the translate-train settings ignore it).
    `max_train_examples` caps the training rows (the first ones of each file; for ``translate-train-all`` split evenly
    across the languages); `max_eval_examples` caps the rows of each validation/test language.

    Raises `TaskDataError` for an unknown setting or language, a missing file, column or split, an unknown label, and
    evaluation labels that never occur in the training data."""
    if setting not in SETTINGS:
        raise TaskDataError(f"XNLI: setting {setting!r} is unknown; allowed: {', '.join(SETTINGS)}")
    langs = _check_languages(languages)
    train_language = _check_language(train_language, "train_language")
    _check_limit(max_train_examples, "max_train_examples")
    _check_limit(max_eval_examples, "max_eval_examples")
    if setting == "translate-train" and len(langs) != 1:
        raise TaskDataError(f"XNLI: setting 'translate-train' trains one model per language and takes exactly one "
                            f"language; got languages {langs}. Call once per language with languages=[lang], or use "
                            "'translate-train-all' for one model on all languages")
    if setting == "translate-test" and train_language != "en":
        raise TaskDataError(f"XNLI: setting 'translate-test' evaluates on test sets translated into English, so "
                            f"train_language must be 'en'; got {train_language!r}")
    if setting == "translate-test" and data_dir is None:
        raise TaskDataError(f"XNLI: setting 'translate-test' needs local files: the Hub dataset {HUB_ID} has no test "
                            "sets machine-translated into English. Pass data_dir holding "
                            "XNLI-MT-1.0/xnli/xnli.{dev,test}.<lang>.tsv (see the xlmr_hf.tasks.xnli docstring)")

    skips = _Skips()
    reader: _LocalReader | _HubReader = _HubReader(skips) if data_dir is None else _LocalReader(data_dir, skips)
    if setting in ("cross-lingual-transfer", "translate-test"):
        train_langs = [train_language if setting == "cross-lingual-transfer" else "en"]
    else:
        train_langs = langs
    parts, train_sources = [], []
    for lang, quota in zip(train_langs, _quotas(max_train_examples, len(train_langs)), strict=True):
        if quota == 0:
            continue
        part, source = reader.train(lang, quota)
        parts.append(part)
        train_sources.append(source)
    train = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    if len(train) == 0:
        raise TaskDataError(f"XNLI: the training data ({'; '.join(train_sources)}) has no labelled rows")
    translated = setting == "translate-test"
    validation, validation_source = reader.evaluation("validation", langs, max_eval_examples, translated)
    test, test_source = reader.evaluation("test", langs, max_eval_examples, translated)
    skips.log()

    train_labels = set(train.unique("label"))
    for split, sets, source in (("validation", validation, validation_source), ("test", test, test_source)):
        for lang, dataset in sets.items():
            if len(dataset) == 0:
                raise TaskDataError(f"XNLI: the {split} set of {lang!r} ({source}) has no labelled rows")
            extra = set(dataset.unique("label")) - train_labels
            if extra:
                capped = " (max_train_examples may have cut them off)" if max_train_examples is not None else ""
                raise TaskDataError(
                    f"XNLI: the {split} set of {lang!r} ({source}) has label(s) {_label_names(extra)} that never "
                    f"occur in the training data ({'; '.join(train_sources)}), whose labels are "
                    f"{_label_names(train_labels)}{capped}; allowed: evaluation labels that the training data has"
                )
    logger.info("XNLI %s: train %d rows (%s); validation %s; test %s", setting, len(train), ", ".join(train_langs),
                {lang: len(d) for lang, d in validation.items()}, {lang: len(d) for lang, d in test.items()})
    return TaskData(
        train=train,
        validation=validation,
        test=test,
        labels=list(LABELS),
        source={"train": "; ".join(train_sources), "validation": validation_source, "test": test_source},
    )


def preprocess_xnli(dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, *,
                    max_length: int = 128) -> datasets.Dataset:
    """Tokenize (premise, hypothesis) pairs of a `load_xnli` split for sequence classification.

    Pairs are truncated ``longest_first`` to `max_length` tokens (special tokens included) and NOT padded (the collator
    pads each batch). Returns the columns ``input_ids``, ``attention_mask``, ``labels`` (the ``label`` ids) and
    ``language``; ``token_type_ids`` and any other tokenizer output are dropped (XLM-R has one segment type)."""
    needed = ("premise", "hypothesis", "label", "language")
    missing = [column for column in needed if column not in dataset.column_names]
    if missing:
        raise TaskDataError(f"XNLI preprocessing: the dataset lacks column(s) {', '.join(missing)}; columns found: "
                            f"{', '.join(dataset.column_names)}; allowed: a split returned by load_xnli")
    minimum = tokenizer.num_special_tokens_to_add(pair=True) + 2
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < minimum:
        raise TaskDataError(f"XNLI preprocessing: max_length is {max_length!r}; allowed: an int >= {minimum} (the "
                            "pair's special tokens plus one token of each sentence)")

    def tokenize(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        encoded = tokenizer(batch["premise"], batch["hypothesis"], truncation="longest_first", max_length=max_length)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                "labels": batch["label"]}

    drop = [column for column in dataset.column_names if column != "language"]
    result = dataset.map(tokenize, batched=True, remove_columns=drop, desc="Tokenizing XNLI pairs")
    return result.select_columns(["input_ids", "attention_mask", "labels", "language"])


def local_languages(data_dir: str | Path, setting: str = "cross-lingual-transfer") -> list[str]:
    """The XNLI languages that the official files under ``data_dir`` hold: those of the test set (and, for the
    translate-train settings, with a training file)."""
    reader = _LocalReader(data_dir, _Skips())
    path = reader._find("XNLI test set", ["xnli.test.tsv", "xnli.test.jsonl"], "XNLI-1.0")
    assert path is not None
    found = {str(row["language"]) for _, row in _records(path, ("language",), reader.skips)}
    if setting.startswith("translate-train"):
        found = {lang for lang in found if reader._find(lang, [f"multinli/multinli.train.{lang}.tsv"], "XNLI-MT-1.0",
                                                        required=False)}
    return [lang for lang in LANGUAGES if lang in found]


@register_task
class XNLITask(Task):
    """``xlmr-hf finetune xnli``: sentence-pair classification, accuracy per language."""

    name, title = "xnli", "XNLI"
    help = "cross-lingual natural language inference: 15 languages, accuracy"
    settings = SETTINGS
    primary, metrics_reported = "accuracy", ("accuracy",)
    auto_class, pipeline_tag = "AutoModelForSequenceClassification", "text-classification"
    hub_datasets = (HUB_ID,)
    default_max_seq_length = 128

    def all_languages(self, args: Any) -> Sequence[str]:
        return LANGUAGES

    def available_languages(self, args: Any) -> Sequence[str] | None:
        return None if args.data_dir is None else local_languages(args.data_dir, args.resolved_setting())

    def load(self, args: Any, languages: list[str]) -> TaskData:
        return load_xnli(args.resolved_setting(), languages=languages, data_dir=args.data_dir,
                         train_language=args.train_language, max_train_examples=args.max_train_samples,
                         max_eval_examples=args.eval_load_cap)

    def features(self, args: Any, dataset: Any, tokenizer: Any, labels: list[str] | None, train: bool) -> Any:
        return preprocess_xnli(dataset, tokenizer, max_length=args.resolved_max_seq_length())

    def score(self, evalset: EvalSet, predictions: Any, monitor: Any) -> dict[str, dict[str, float]]:
        import numpy as np

        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        predicted = np.asarray(logits).argmax(-1)
        gold = np.asarray(evalset.features["labels"])
        if monitor is not None:
            monitor.check_predictions(predicted.tolist())
        return {lang: {"accuracy": 100.0 * float((predicted[part] == gold[part]).mean())}
                for lang, part in evalset.slices.items()}
