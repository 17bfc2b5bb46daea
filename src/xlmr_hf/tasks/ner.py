"""Named entity recognition: CoNLL-2002/2003 and WikiANN (PAN-X) read in their official formats or from the Hub
(`load_ner`), aligned to first subwords in word windows so no gold label is lost to truncation
(`tokenize_and_align`), merged back to one tag per word (`merge_window_predictions`), and the ``ner`` fine-tuning task
(`NERTask`). File layouts and the windowing are described in ``docs/finetuning.md`` ("NER")."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from .base import EvalSet, Task, TaskData, TaskDataError
from .registry import register_task

__all__ = [
    "CONLL_FILES",
    "CONLL_LANGUAGES",
    "DATASETS",
    "HUB_SOURCES",
    "PANX_LANGUAGES",
    "SETTINGS",
    "NERArguments",
    "NERTask",
    "iob1_to_iob2",
    "load_ner",
    "merge_window_predictions",
    "read_conll",
    "read_panx",
    "tokenize_and_align",
]

logger = logging.getLogger(__name__)

CONLL_LANGUAGES = ("en", "nl", "es", "de")
DATASETS = ("conll", "wikiann")
SETTINGS = ("en", "each", "all")
SPLITS = ("train", "validation", "test")
# The 40 PAN-X languages of XTREME.
PANX_LANGUAGES = (
    "af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id", "it", "ja",
    "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru", "sw", "ta", "te", "th", "tl", "tr", "ur", "vi",
    "yo", "zh",
)  # fmt: skip
# Official CoNLL file names: (train, dev = "testa", test = "testb").
CONLL_FILES: dict[str, tuple[str, str, str]] = {
    "en": ("eng.train", "eng.testa", "eng.testb"),
    "de": ("deu.train", "deu.testa", "deu.testb"),
    "es": ("esp.train", "esp.testa", "esp.testb"),
    "nl": ("ned.train", "ned.testa", "ned.testb"),
}
_PANX_SPLIT_FILES = {"train": "train", "validation": "dev", "test": "test"}
# `datasets.load_dataset` keyword arguments per (dataset, language); "{lang}" is filled in. The eriktks repositories
# still hold loading scripts, which datasets >= 4 no longer runs: their Parquet export (one folder per config) is read.
HUB_SOURCES: dict[str, dict[str, dict[str, Any]]] = {
    "conll": {
        "en": {"path": "eriktks/conll2003", "revision": "refs/convert/parquet", "data_dir": "conll2003"},
        "es": {"path": "eriktks/conll2002", "revision": "refs/convert/parquet", "data_dir": "es"},
        "nl": {"path": "eriktks/conll2002", "revision": "refs/convert/parquet", "data_dir": "nl"},
    },
    "wikiann": {"*": {"path": "unimelb-nlp/wikiann", "name": "{lang}"}},
}
IGNORE_INDEX = -100


# ---------------------------------------------------------------------------------------------------- tag schemes
def _check_tag(tag: str, where: str) -> None:
    if tag != "O" and not (len(tag) > 2 and tag[:2] in ("B-", "I-")):
        raise TaskDataError(f"{where}: NER tag {tag!r} is not allowed; allowed: 'O', 'B-<TYPE>' or 'I-<TYPE>'")


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 → IOB2: an ``I-X`` that does not continue an ``X`` entity starts one, so it becomes ``B-X``. Valid IOB2 is
    returned unchanged (the conversion is idempotent)."""
    out: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def _apply_scheme(rows: list[dict[str, Any]], scheme_in: str, source: str) -> None:
    """Convert the rows' tags to IOB2 in place according to ``scheme_in`` and log what was done."""
    if scheme_in not in ("auto", "iob1", "iob2"):
        raise TaskDataError(f"{source}: scheme_in={scheme_in!r} is not allowed; allowed: 'auto', 'iob1', 'iob2'")
    if scheme_in == "iob2":
        return
    if scheme_in == "auto":
        evidence = next(((n, i) for n, row in enumerate(rows)
                         for i, (a, b) in enumerate(zip(row["ner_tags"], iob1_to_iob2(row["ner_tags"]))) if a != b), None)
        if evidence is None:
            logger.info("%s: tags are already IOB2 (no I-X starts an entity); kept as they are", source)
            return
        n, i = evidence
        logger.info("%s: IOB1 detected (sentence %d, token %d %r is %s with no preceding entity of that type)",
                    source, n, i, rows[n]["tokens"][i], rows[n]["ner_tags"][i])
    changed = 0
    for row in rows:
        new = iob1_to_iob2(row["ner_tags"])
        changed += sum(a != b for a, b in zip(new, row["ner_tags"]))
        row["ner_tags"] = new
    logger.info("%s: converted IOB1 to IOB2 (%d tags changed from I- to B-)", source, changed)


# ---------------------------------------------------------------------------------------------------- readers
def _read_text(path: str | os.PathLike, encoding: str) -> str:
    """The file's text; ``encoding="auto"`` is UTF-8, else latin-1 (logged)."""
    path = Path(path)
    if not path.is_file():
        raise TaskDataError(f"NER data file {str(path)!r} does not exist (or is not a file)")
    data = path.read_bytes()
    if encoding == "auto":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            logger.info("%s is not valid UTF-8 (byte %d); read as latin-1 (ISO-8859-1), the encoding of the "
                        "original CoNLL-2002/2003 files", path, error.start)
            return data.decode("latin-1")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise TaskDataError(
            f"NER data file {str(path)!r}: byte {error.start} is not valid {encoding}; the original CoNLL-2002 and "
            "German CoNLL-2003 files are ISO-8859-1: pass encoding='latin-1' (or 'auto')"
        ) from error
    except LookupError as error:
        raise TaskDataError(f"NER data file {str(path)!r}: unknown encoding {encoding!r}") from error


def _sentences(lines: Iterable[tuple[str, str] | None], language: str) -> list[dict[str, Any]]:
    """Group (token, tag) items into sentence rows; a None item ends a sentence."""
    rows: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str] = []
    for item in [*lines, None]:
        if item is not None:
            tokens.append(item[0])
            tags.append(item[1])
        elif tokens:
            rows.append({"tokens": tokens, "ner_tags": tags, "language": language})
            tokens, tags = [], []
    return rows


def read_conll(
    path: str | os.PathLike,
    *,
    language: str,
    tag_column: int = -1,
    encoding: str = "utf-8",
    scheme_in: str = "auto",
) -> list[dict[str, Any]]:
    """Read a CoNLL-2002/2003 NER file: one token per line, whitespace-separated columns (token first, the NE tag in
    ``tag_column``, last by default), a blank line after each sentence, ``-DOCSTART-`` lines skipped.

    Every line must have as many columns as the file's first token line. Tags are returned in IOB2:
    ``scheme_in="iob1"`` converts, ``"iob2"`` keeps the tags, ``"auto"`` converts when an ``I-X`` starts an entity
    (only IOB1 does that; the conversion changes nothing in IOB2 data). ``encoding`` may be ``"auto"`` (UTF-8, else
    latin-1). Raises `TaskDataError` naming the file and line for a missing file, a malformed line or a bad tag."""
    text = _read_text(path, encoding)
    source = str(path)
    width: int | None = None

    def items() -> Iterable[tuple[str, str] | None]:
        nonlocal width
        for number, line in enumerate(text.splitlines(), start=1):
            columns = line.split()
            if not columns:
                yield None
                continue
            if columns[0] == "-DOCSTART-":
                yield None
                continue
            where = f"{source}, line {number}"
            if width is None:
                width = len(columns)
                if width < 2:
                    raise TaskDataError(f"{where}: {line!r} has {width} column; a CoNLL NER line needs a token and "
                                        "a tag (at least 2 whitespace-separated columns)")
                if not -width <= tag_column < width or tag_column in (0, -width):
                    raise TaskDataError(f"{where}: tag_column={tag_column} is not a tag column of a {width}-column "
                                        f"file; allowed: 1..{width - 1} or -1..-{width - 1}")
            elif len(columns) != width:
                raise TaskDataError(f"{where}: {line!r} has {len(columns)} columns; every line of this file must "
                                    f"have {width} (as its first token line)")
            _check_tag(columns[tag_column], where)
            yield columns[0], columns[tag_column]

    rows = _sentences(items(), language)
    _apply_scheme(rows, scheme_in, source)
    logger.info("%s: %d sentences, %d tokens (%s)", source, len(rows), sum(len(r["tokens"]) for r in rows), language)
    return rows


def read_panx(path: str | os.PathLike, *, language: str) -> list[dict[str, Any]]:
    """Read a WikiANN/PAN-X file as distributed for XTREME: ``<lang>:<token><TAB><tag>`` per line (the prefix is
    optional: XTREME's processed ``{split}-{lang}.tsv`` files drop it), a blank line between sentences, UTF-8, IOB2.

    If the first line carries the ``<language>:`` prefix, every line must; it is removed from the tokens."""
    text = _read_text(path, "utf-8")
    source = str(path)
    prefix = f"{language}:"
    prefixed: bool | None = None

    def items() -> Iterable[tuple[str, str] | None]:
        nonlocal prefixed
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                yield None
                continue
            where = f"{source}, line {number}"
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 2 or not fields[0] or not fields[1].strip():
                raise TaskDataError(f"{where}: {line!r} is not '<token><TAB><tag>' (PAN-X lines have exactly two "
                                    "tab-separated fields)")
            token, tag = fields[0], fields[1].strip()
            if prefixed is None:
                prefixed = token.startswith(prefix)
            if prefixed:
                if not token.startswith(prefix):
                    raise TaskDataError(f"{where}: token {token!r} lacks the {prefix!r} prefix that this file's "
                                        f"first line has (is the file of language {language!r}?)")
                token = token[len(prefix):]
            if not token:
                raise TaskDataError(f"{where}: empty token in {line!r}")
            _check_tag(tag, where)
            yield token, tag

    rows = _sentences(items(), language)
    _apply_scheme(rows, "auto", source)
    logger.info("%s: %d sentences, %d tokens (%s)", source, len(rows), sum(len(r["tokens"]) for r in rows), language)
    return rows


# ---------------------------------------------------------------------------------------------------- loading
def _local_splits(dataset: str, language: str, data_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """The three splits of one language from local files, and a description of the source."""
    if dataset == "conll":
        paths = [data_dir / name for name in CONLL_FILES[language]]
        for path in paths:
            if not path.is_file():
                raise TaskDataError(f"CoNLL file {str(path)!r} ({language}) does not exist; data_dir must hold the "
                                    f"official files {', '.join(CONLL_FILES[language])}")
        splits = {}
        for split, path in zip(SPLITS, paths):
            splits[split] = read_conll(path, language=language, encoding="auto")
        return splits, ", ".join(map(str, paths))
    layouts = [
        [data_dir / language / _PANX_SPLIT_FILES[s] for s in SPLITS],
        [data_dir / f"{language}-{_PANX_SPLIT_FILES[s]}" for s in SPLITS],
        [data_dir / f"{_PANX_SPLIT_FILES[s]}-{language}.tsv" for s in SPLITS],
    ]
    for paths in layouts:
        if any(path.exists() for path in paths):
            missing = [str(path) for path in paths if not path.is_file()]
            if missing:
                raise TaskDataError(f"PAN-X file {missing[0]!r} ({language}) does not exist; the other splits of "
                                    "that layout are there")
            return {s: read_panx(p, language=language) for s, p in zip(SPLITS, paths)}, ", ".join(map(str, paths))
    tried = " or ".join(str(paths[0]).replace("train", "{train,dev,test}") for paths in layouts)
    raise TaskDataError(f"no PAN-X files for language {language!r} in {str(data_dir)!r}; expected {tried}")


def _hub_splits(dataset: str, language: str) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """The three splits of one language from the Hub (`HUB_SOURCES`), tags as IOB2 strings."""
    if dataset == "conll" and language == "de":
        raise TaskDataError("CoNLL-2003 German (language 'de') is not redistributable and has no Hub copy; pass "
                            "data_dir with the official files deu.train, deu.testa, deu.testb")
    spec = HUB_SOURCES[dataset].get(language, HUB_SOURCES[dataset].get("*"))
    kwargs = {key: value.format(lang=language) if isinstance(value, str) else value for key, value in spec.items()}
    path = kwargs.pop("path")
    name = kwargs.pop("name", None)
    source = f"{path}" + (f" ({name})" if name else "") + (f" [{kwargs['data_dir']}]" if "data_dir" in kwargs else "")
    logger.info("loading %s from the Hub: %s", language, source)
    loaded = datasets.load_dataset(path, name, **kwargs)
    splits = {}
    for split in SPLITS:
        if split not in loaded:
            raise TaskDataError(f"Hub dataset {source}: split {split!r} is missing; found {sorted(loaded)}")
        part = loaded[split]
        missing = [c for c in ("tokens", "ner_tags") if c not in part.column_names]
        if missing:
            raise TaskDataError(f"Hub dataset {source}, split {split!r}: column {missing[0]!r} is missing; found "
                                f"{part.column_names}; NER needs 'tokens' and 'ner_tags'")
        feature = getattr(part.features["ner_tags"], "feature", None)
        names = getattr(feature, "names", None)
        rows = []
        for n, (tokens, tags) in enumerate(zip(part["tokens"], part["ner_tags"])):
            where = f"Hub dataset {source}, split {split!r}, row {n}"
            tags = list(tags)
            if tags and not isinstance(tags[0], str):
                if names is None:
                    raise TaskDataError(f"{where}: field 'ner_tags' holds integers but has no ClassLabel names "
                                        "(features['ner_tags'].feature.names) to map them")
                tags = [names[int(t)] for t in tags]
            if len(tokens) != len(tags):
                raise TaskDataError(f"{where}: {len(tokens)} tokens but {len(tags)} ner_tags")
            for tag in tags:
                _check_tag(tag, where)
            rows.append({"tokens": list(tokens), "ner_tags": tags, "language": language})
        _apply_scheme(rows, "auto", f"{source} {split}")
        splits[split] = rows
    return splits, source


def _check_language(dataset: str, language: str, what: str) -> None:
    allowed = CONLL_LANGUAGES if dataset == "conll" else PANX_LANGUAGES
    if language not in allowed:
        raise TaskDataError(f"NER dataset {dataset!r}: {what} {language!r} is not available; allowed: "
                            f"{', '.join(allowed)}")


def load_ner(
    dataset: str,
    setting: str,
    *,
    languages: Sequence[str],
    data_dir: str | os.PathLike | None = None,
    train_language: str = "en",
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
) -> TaskData:
    """Raw NER examples of one run.

    ``setting="en"`` trains on ``train_language`` and evaluates every language in ``languages``; ``"each"`` takes
    exactly one language and trains and evaluates on it; ``"all"`` trains on the concatenation of the training sets of
    all ``languages`` (in the given order) and evaluates each. Files come from ``data_dir`` (layouts in the module
    docstring) or, without it, from the Hub (`HUB_SOURCES`). ``max_train_examples`` / ``max_eval_examples`` keep the
    first N sentences of each language's split. Empty sentences are dropped.

    ``labels`` are the tags of the (full) training data, ``"O"`` first, then sorted; a tag of an evaluation split that
    the training data never uses raises `TaskDataError` (it could never be predicted). ``source`` maps each language
    to its files or Hub id."""
    if dataset not in DATASETS:
        raise TaskDataError(f"NER dataset {dataset!r} is not available; allowed: {', '.join(DATASETS)}")
    if setting not in SETTINGS:
        raise TaskDataError(f"NER setting {setting!r} is not available; allowed: {', '.join(SETTINGS)}")
    languages = list(languages)
    if not languages:
        raise TaskDataError(f"NER {dataset!r}: languages is empty; give at least one language")
    for language in languages:
        _check_language(dataset, language, "language")
    if setting == "each" and len(languages) != 1:
        raise TaskDataError(f"NER setting 'each' takes exactly one language per run; got languages={languages}")
    if setting == "en":
        _check_language(dataset, train_language, "train_language")
        train_languages = [train_language]
    else:
        train_languages = languages
    for name, value in (("max_train_examples", max_train_examples), ("max_eval_examples", max_eval_examples)):
        if value is not None and value < 1:
            raise TaskDataError(f"NER: {name}={value} is not allowed; give a positive number or None")

    needed = list(dict.fromkeys([*train_languages, *languages]))
    loaded: dict[str, dict[str, list[dict[str, Any]]]] = {}
    source: dict[str, str] = {}
    for language in needed:
        if data_dir is not None:
            splits, where = _local_splits(dataset, language, Path(data_dir))
        else:
            splits, where = _hub_splits(dataset, language)
        for split, rows in splits.items():
            kept = [row for row in rows if row["tokens"]]
            if len(kept) != len(rows):
                logger.info("%s %s %s: dropped %d empty sentences", dataset, language, split, len(rows) - len(kept))
            splits[split] = kept
        loaded[language], source[language] = splits, where

    train_tags = {tag for language in train_languages for row in loaded[language]["train"] for tag in row["ner_tags"]}
    labels = ["O", *sorted(train_tags - {"O"})]
    for language in languages:
        for split in ("validation", "test"):
            unseen = sorted({t for row in loaded[language][split] for t in row["ner_tags"]} - train_tags)
            if unseen:
                raise TaskDataError(
                    f"NER {dataset!r} ({source[language]}): language {language!r}, split {split!r} has tag "
                    f"{unseen[0]!r} (of {unseen}) that the training data ({', '.join(train_languages)}) never uses; "
                    f"training tags: {labels}"
                )

    def cut(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
        return rows if limit is None else rows[:limit]

    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.Value("string")),
        "language": datasets.Value("string"),
    })

    def to_dataset(rows: list[dict[str, Any]]) -> datasets.Dataset:
        return datasets.Dataset.from_list(rows, features=features)

    train = to_dataset([row for lang in train_languages for row in cut(loaded[lang]["train"], max_train_examples)])
    validation = {lang: to_dataset(cut(loaded[lang]["validation"], max_eval_examples)) for lang in languages}
    test = {lang: to_dataset(cut(loaded[lang]["test"], max_eval_examples)) for lang in languages}
    logger.info("NER %s/%s: train %d sentences (%s); eval languages %s; %d labels", dataset, setting, len(train),
                ", ".join(train_languages), ", ".join(languages), len(labels))
    return TaskData(train=train, validation=validation, test=test, labels=labels, source=source)


# ---------------------------------------------------------------------------------------------------- preprocessing
def _plan_windows(lengths: Sequence[int], budget: int, stride: int) -> list[tuple[int, int, int, int]]:
    """Windows ``(start, end, own_start, own_end)`` over words with subword ``lengths`` (each <= ``budget``).

    Each window holds whole words, at most ``budget`` subwords, and owns the words ``own_start..own_end - 1``;
    consecutive windows own consecutive spans, so every word is owned exactly once. Around the span it owns, a window
    keeps as many whole words of context on each side as fit in ``min(stride, budget // 3)`` subwords (the cap keeps
    at least a third of every window owned, so long sentences need few windows); a window owns at least one word."""
    n = len(lengths)
    if n == 0:
        return [(0, 0, 0, 0)]
    cumulative = [0]
    for length in lengths:
        cumulative.append(cumulative[-1] + length)
    if cumulative[-1] <= budget:
        return [(0, n, 0, n)]
    context = min(stride, budget // 3)
    windows = []
    position = 0
    while position < n:
        start = position
        while start > 0 and cumulative[position] - cumulative[start - 1] <= context:
            start -= 1
        if cumulative[position + 1] - cumulative[start] > budget:  # no room for the word itself after the context
            start = position
        end = position + 1
        while end < n and cumulative[end + 1] - cumulative[start] <= budget:
            end += 1
        own_end = end
        if end < n:  # keep trailing words as right context; the next window owns them
            while own_end > position + 1 and cumulative[end] - cumulative[own_end - 1] <= context:
                own_end -= 1
        windows.append((start, end, position, own_end))
        position = own_end
    return windows


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single sequence (``<s>`` / ``</s>`` for XLM-R)."""
    probe = tokenizer(["a"], is_split_into_words=True, add_special_tokens=True)
    word_ids = probe.word_ids()
    positions = [i for i, w in enumerate(word_ids) if w is not None]
    ids = list(probe["input_ids"])
    return ids[: positions[0]], ids[positions[-1] + 1:]


def tokenize_and_align(
    dataset: Any,
    tokenizer: Any,
    label_to_id: Mapping[str, int],
    *,
    max_length: int = 128,
    stride: int = 32,
    label_all_subwords: bool = False,
) -> datasets.Dataset:
    """Tokenize words into subwords (``is_split_into_words=True``; a fast tokenizer is needed) and align the labels.

    The first subword of a word carries its label, every other position -100 (specials included). With
    ``label_all_subwords`` the other subwords of a word carry its label too (``B-X`` continued as ``I-X`` when that
    label exists). A sentence longer than ``max_length`` (special tokens included) becomes several windows of *whole
    words*: every word is owned by exactly one window and labelled only there, with whole words of context on each
    side worth up to ``stride`` **subwords** (at most a third of the window; see `_plan_windows`). A word with more subwords than fit is cut to the first
    ``max_length - specials`` subwords (its first subword, hence its label, is kept); a word the tokenizer drops
    entirely (e.g. a zero-width space) is encoded as ``unk_token``. Both are counted and logged.

    Rows of ``dataset`` need ``tokens``, ``ner_tags`` (tag strings) and ``language``. Output columns (no padding):
    ``input_ids``, ``attention_mask``, ``labels``, ``example_index`` (row in ``dataset``), ``word_index`` (per token:
    the word's index on the first subword of a word this window owns, -1 on every other token) and ``language``."""
    if not getattr(tokenizer, "is_fast", False):
        raise TaskDataError("tokenize_and_align needs a fast tokenizer (word_ids); got "
                            f"{type(tokenizer).__name__} with is_fast=False")
    missing = [c for c in ("tokens", "ner_tags", "language") if c not in dataset.column_names]
    if missing:
        raise TaskDataError(f"NER dataset: column {missing[0]!r} is missing; found {dataset.column_names}; needed: "
                            "tokens, ner_tags, language")
    prefix, suffix = _special_tokens(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    if budget < 1:
        raise TaskDataError(f"max_length={max_length} leaves no room for a subword after {len(prefix) + len(suffix)} "
                            "special tokens; allowed: larger than that")
    if stride < 0:
        raise TaskDataError(f"stride={stride} is not allowed; give a number of subwords >= 0")
    unk = tokenizer.unk_token_id
    columns: dict[str, list[Any]] = {k: [] for k in ("input_ids", "attention_mask", "labels", "example_index",
                                                     "word_index", "language")}
    long_words = dropped_words = windowed = 0
    chunk = 1000
    for begin in range(0, len(dataset), chunk):
        batch = dataset[begin: begin + chunk]
        words_batch = [list(tokens) for tokens in batch["tokens"]]
        encoding = tokenizer(words_batch, is_split_into_words=True, add_special_tokens=False)
        for offset, words in enumerate(words_batch):
            example = begin + offset
            tags = list(batch["ner_tags"][offset])
            if len(tags) != len(words):
                raise TaskDataError(f"NER dataset row {example}: {len(words)} tokens but {len(tags)} ner_tags")
            pieces: list[list[int]] = [[] for _ in words]
            for token_id, word in zip(encoding["input_ids"][offset], encoding.word_ids(offset)):
                if word is not None:
                    pieces[word].append(token_id)
            for w, subwords in enumerate(pieces):
                if not subwords:
                    dropped_words += 1
                    subwords.append(unk)
                elif len(subwords) > budget:
                    long_words += 1
                    logger.info("row %d word %d (%r) has %d subwords; kept the first %d", example, w,
                                words[w][:40], len(subwords), budget)
                    del subwords[budget:]
            label_ids = []
            for w, tag in enumerate(tags):
                if tag not in label_to_id:
                    raise TaskDataError(f"NER dataset row {example}, word {w} ({words[w]!r}): tag {tag!r} is not in "
                                        f"label_to_id; allowed: {sorted(label_to_id)}")
                label_ids.append(label_to_id[tag])
            windows = _plan_windows([len(p) for p in pieces], budget, stride)
            windowed += len(windows) > 1
            for start, end, own_start, own_end in windows:
                ids = list(prefix)
                labels = [IGNORE_INDEX] * len(prefix)
                word_index = [-1] * len(prefix)
                for w in range(start, end):
                    owned = own_start <= w < own_end
                    first = label_ids[w] if owned else IGNORE_INDEX
                    rest = IGNORE_INDEX
                    if owned and label_all_subwords:
                        tag = tags[w]
                        rest = label_to_id.get("I-" + tag[2:], first) if tag.startswith("B-") else first
                    ids.extend(pieces[w])
                    labels.extend([first] + [rest] * (len(pieces[w]) - 1))
                    word_index.extend([w if owned else -1] + [-1] * (len(pieces[w]) - 1))
                ids.extend(suffix)
                labels.extend([IGNORE_INDEX] * len(suffix))
                word_index.extend([-1] * len(suffix))
                columns["input_ids"].append(ids)
                columns["attention_mask"].append([1] * len(ids))
                columns["labels"].append(labels)
                columns["example_index"].append(example)
                columns["word_index"].append(word_index)
                columns["language"].append(batch["language"][offset])
    if long_words or dropped_words:
        logger.warning("NER: %d over-long words cut to %d subwords (first subword and label kept); %d words with no "
                       "subword encoded as unk_token", long_words, budget, dropped_words)
    logger.info("NER: %d examples -> %d features (max_length=%d, stride=%d subwords); %d examples in windows",
                len(dataset), len(columns["input_ids"]), max_length, stride, windowed)
    return datasets.Dataset.from_dict(columns)


# ---------------------------------------------------------------------------------------------------- post-processing
def merge_window_predictions(
    features: Any,
    predictions: Sequence[Sequence[int]],
    id_to_label: Mapping[int, str],
    num_examples: int,
    *,
    word_counts: Sequence[int] | None = None,
) -> list[list[str]]:
    """One tag list per example from per-feature predictions (argmax ids per token, padding allowed): each word's tag
    is the prediction at the first subword of the window that owns it (``word_index >= 0``).

    Raises `TaskDataError` unless every example ``0..num_examples - 1`` gets exactly its words ``0..n-1`` once each;
    pass ``word_counts`` (e.g. ``[len(t) for t in eval_dataset["tokens"]]``) to check ``n`` against the examples."""
    example_index = list(features["example_index"])
    word_index = list(features["word_index"])
    if len(predictions) != len(example_index):
        raise TaskDataError(f"merge_window_predictions: {len(predictions)} prediction rows for {len(example_index)} "
                            "features; give one row per feature, in feature order")
    if word_counts is not None and len(word_counts) != num_examples:
        raise TaskDataError(f"merge_window_predictions: {len(word_counts)} word_counts for num_examples="
                            f"{num_examples}")
    merged: list[dict[int, str]] = [{} for _ in range(num_examples)]
    for f, (example, words, row) in enumerate(zip(example_index, word_index, predictions)):
        if not 0 <= example < num_examples:
            raise TaskDataError(f"feature {f}: example_index {example} is outside 0..{num_examples - 1}")
        if len(row) < len(words):
            raise TaskDataError(f"feature {f}: {len(row)} predictions for {len(words)} tokens")
        for position, word in enumerate(words):
            if word < 0:
                continue
            if word in merged[example]:
                raise TaskDataError(f"feature {f}: word {word} of example {example} is owned by two windows")
            prediction = int(row[position])
            try:
                merged[example][word] = id_to_label[prediction]
            except (KeyError, IndexError):
                raise TaskDataError(f"feature {f}, token {position}: predicted id {prediction} has no label; allowed "
                                    f"ids: {sorted(id_to_label) if isinstance(id_to_label, Mapping) else 'list'}"
                                    ) from None
    results = []
    for example, tags in enumerate(merged):
        expected = len(tags) if word_counts is None else word_counts[example]
        if sorted(tags) != list(range(expected)):
            missing = sorted(set(range(expected)) - set(tags))
            raise TaskDataError(f"example {example}: predictions for {len(tags)} words but it has {expected}; "
                                f"missing words {missing[:10]}, unexpected {sorted(set(tags) - set(range(expected)))}")
        results.append([tags[w] for w in range(expected)])
    return results


@dataclass
class NERArguments:
    """Settings of the ``ner`` task on top of the common fine-tuning settings."""

    ner_dataset: str = field(default="conll", metadata={"help": "conll (CoNLL-2002/2003) or wikiann (PAN-X)"})
    doc_stride: int = field(default=32, metadata={"help": (
        "context on each side of the windows a sentence longer than max_seq_length is cut into: whole words worth "
        "up to this many subwords (at most a third of the window)")})


@register_task
class NERTask(Task):
    """``xlmr-hf finetune ner``: token classification on first subwords, entity F1 per language (seqeval)."""

    name, title = "ner", "NER"
    help = "named entity recognition: CoNLL-2002/2003 (4 languages) or WikiANN/PAN-X, entity F1"
    settings = SETTINGS
    primary, metrics_reported = "f1", ("f1", "precision", "recall")
    auto_class, pipeline_tag = "AutoModelForTokenClassification", "token-classification"
    hub_datasets = ("eriktks/conll2003", "eriktks/conll2002")
    default_max_seq_length = 128
    arguments = NERArguments

    def validate(self, args: Any) -> None:
        if args.ner_dataset not in DATASETS:
            raise TaskDataError(f"ner_dataset={args.ner_dataset!r}; allowed: {list(DATASETS)}")
        if args.doc_stride < 0:
            raise TaskDataError(f"doc_stride={args.doc_stride!r}; allowed: an integer >= 0")
        if args.ner_dataset == "wikiann" and not args.languages:
            raise TaskDataError("ner_dataset=wikiann needs languages (e.g. [en, de, ar, zh]): PAN-X has 176")

    def all_languages(self, args: Any) -> Sequence[str]:
        return CONLL_LANGUAGES if args.ner_dataset == "conll" else PANX_LANGUAGES

    def available_languages(self, args: Any) -> Sequence[str] | None:
        if args.data_dir is None or args.ner_dataset != "conll":
            return None
        return [lang for lang in CONLL_LANGUAGES if all((Path(args.data_dir) / name).is_file()
                                                        for name in CONLL_FILES[lang])]

    def load(self, args: Any, languages: list[str]) -> TaskData:
        data = load_ner(args.ner_dataset, args.resolved_setting(), languages=languages, data_dir=args.data_dir,
                        train_language=args.train_language, max_train_examples=args.max_train_samples,
                        max_eval_examples=args.eval_load_cap)
        if args.ner_dataset == "wikiann":
            data.source.setdefault("hub_datasets", "unimelb-nlp/wikiann")
        return data

    def features(self, args: Any, dataset: Any, tokenizer: Any, labels: list[str] | None, train: bool) -> Any:
        label_to_id = {label: i for i, label in enumerate(labels or [])}
        return tokenize_and_align(dataset, tokenizer, label_to_id, max_length=args.resolved_max_seq_length(),
                                  stride=args.doc_stride)

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def score(self, evalset: EvalSet, predictions: Any, monitor: Any) -> dict[str, dict[str, float]]:
        import numpy as np

        from .metrics import load_metric

        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        predicted = np.asarray(logits).argmax(-1)
        id_to_label = dict(enumerate(evalset.labels or []))
        metric = load_metric("seqeval")
        out, every_tag = {}, []
        for lang, part in evalset.slices.items():
            examples = evalset.examples[lang]
            tags = merge_window_predictions(evalset.parts[lang], predicted[part], id_to_label, len(examples),
                                            word_counts=[len(tokens) for tokens in examples["tokens"]])
            every_tag.extend(tag for sentence in tags for tag in sentence)
            scores = metric.compute(predictions=tags, references=list(examples["ner_tags"]))
            out[lang] = {"f1": 100.0 * scores["overall_f1"], "precision": 100.0 * scores["overall_precision"],
                         "recall": 100.0 * scores["overall_recall"]}
        if monitor is not None:
            monitor.check_predictions(every_tag, none_label="O", unit="words")
        return out
