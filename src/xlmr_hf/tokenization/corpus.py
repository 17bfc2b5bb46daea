"""Reading a tokenizer-training corpus and drawing the α-smoothed sample SentencePiece learns from.

A corpus is either a CC-100 directory (one ``<lang>.txt.xz`` or ``<lang>.txt`` per language: a paragraph per line, a
blank line between documents) or a mapping language → files. A *sentence* is one non-empty line (a CC-100 paragraph),
as in XLM/XLM-R, where language i is sampled with

    q_i = p_i^α / Σ_j p_j^α,    p_i = n_i / Σ_j n_j,    n_i = sentences of language i.

That is the default unit of p_i (``unit="lines"``, the valid lines); ``unit="bytes"`` or ``"characters"`` measures
n_i in the UTF-8 bytes or the characters of those lines instead (`SAMPLE_UNITS`). Only p_i changes: the budget is
still counted in lines and split by q_i.

Sampling (`sample_corpus`), per language and deterministic in (seed, language):

1. Valid lines are numbered in file order; lines longer than ``max_sentence_length`` UTF-8 bytes are left out and
   counted (SentencePiece would silently drop them).
2. A held-out slice of ``min(heldout_sentences, n_i // 10)`` lines is drawn at random for the fertility report and never
   used for training.
3. The budget — the number of training lines of the corpus, capped by ``max_sentences`` — is split over languages by
   the largest-remainder method, so language i gets k_i sentences with Σ k_i = budget and k_i / budget = q_i up to
   rounding. (A budget above the corpus's size would only multiply every count: the unigram model depends on relative
   frequencies, while SentencePiece's training time grows with the counts.)
4. A language with P_i training lines contributes every line ⌊k_i / P_i⌋ times plus a uniform random subset of
   ``k_i mod P_i`` lines once more: repetition is how α up-weights a small language (as it does in pretraining).
   Repeated lines are written once with their count (SentencePiece's ``tsv`` input), so the budget costs no memory.

Reading is two streaming passes (count, then select): memory is bounded by the sample, not the corpus.
"""

from __future__ import annotations

import logging
import lzma
import math
import os
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

__all__ = [
    "SAMPLE_UNITS",
    "CorpusError",
    "LanguageSample",
    "allocate_budget",
    "alpha_probabilities",
    "count_sentences",
    "discover_corpus",
    "iter_lines",
    "sample_corpus",
    "unit_size",
]

logger = logging.getLogger(__name__)

SAMPLE_UNITS = ("lines", "bytes", "characters")
"""Units p_i can be measured in: valid lines (n_i, XLM/XLM-R's sentences), or their UTF-8 bytes or characters."""

_CORPUS_FILE = re.compile(r"^(?P<lang>[^.]+)\.txt(?P<xz>\.xz)?$")


class CorpusError(ValueError):
    """A corpus that cannot be used: missing, empty, unreadable, corrupt or filtered to nothing."""


def discover_corpus(
    corpus: str | os.PathLike | Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]],
    languages: Sequence[str] | None = None,
) -> dict[str, list[Path]]:
    """Map language → files from a CC-100 directory or an explicit mapping, filtered to ``languages``.

    Raises `CorpusError` for a missing directory, a directory without ``<lang>.txt[.xz]`` files, a missing file, a
    language asked for that the corpus does not have (the message lists the available ones), or an unreadable file
    (checked here by reading its first block, so a bad file fails before any long pass).
    """
    if isinstance(corpus, Mapping):
        files = {str(lang): [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
                 for lang, paths in corpus.items()}
        source = "the corpus mapping"
    else:
        directory = Path(corpus)
        if not directory.is_dir():
            raise CorpusError(f"corpus={str(corpus)!r} is not a directory; expected a CC-100 directory holding "
                              "<lang>.txt.xz or <lang>.txt files, or a mapping language -> files")
        files = {}
        for path in sorted(directory.iterdir()):
            match = _CORPUS_FILE.match(path.name)
            if match and path.is_file():
                files.setdefault(match["lang"], []).append(path)
        source = f"corpus directory {str(directory)!r}"
    if not files or not any(files.values()):
        raise CorpusError(f"{source} holds no language files: expected <lang>.txt.xz or <lang>.txt files")
    if languages is not None:
        languages = list(dict.fromkeys(languages))
        unknown = [lang for lang in languages if lang not in files]
        if unknown:
            raise CorpusError(f"languages={unknown} are not in {source}; available: {sorted(files)}")
        if not languages:
            raise CorpusError("languages=[] selects nothing; leave it unset to use every language")
        files = {lang: files[lang] for lang in languages}
    for lang, paths in files.items():
        if not paths:
            raise CorpusError(f"language {lang!r} has no files in {source}")
        for path in paths:
            _probe(path)
    return files


def _open_text(path: Path):
    if path.name.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8", newline="", errors="replace")
    return open(path, encoding="utf-8", newline="", errors="replace")


def _open_binary(path: Path):
    return lzma.open(path, "rb") if path.name.endswith(".xz") else open(path, "rb")


def _probe(path: Path) -> None:
    """Open ``path`` and decode its first block, turning OS, xz and UTF-8 failures into a `CorpusError`."""
    if not path.is_file():
        raise CorpusError(f"corpus file {str(path)!r} does not exist")
    try:
        with _open_text(path) as handle:
            handle.read(65536)
    except (OSError, lzma.LZMAError, EOFError, UnicodeDecodeError) as error:
        raise CorpusError(f"corpus file {str(path)!r} cannot be read: {error}") from error


def iter_lines(path: str | os.PathLike, invalid: list[int] | None = None) -> Iterator[str]:
    """The lines of a ``.txt`` or ``.txt.xz`` file without their line ends (``\\n``, ``\\r\\n`` or ``\\r``).

    Invalid UTF-8 is decoded with U+FFFD, as the CC-100 reader does, and the lines holding it are counted in
    ``invalid[0]`` (and logged). A truncated or corrupt xz stream raises `CorpusError` naming the file and the line.
    """
    path = Path(path)
    number = bad = 0
    try:
        with _open_binary(path) as handle:
            for raw in handle:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text, bad = raw.decode("utf-8", "replace"), bad + 1
                for line in text.rstrip("\r\n").split("\r") if "\r" in text.rstrip("\r\n") else [
                        text.rstrip("\r\n")]:
                    number += 1
                    yield line
    except (OSError, lzma.LZMAError, EOFError) as error:
        raise CorpusError(f"corpus file {str(path)!r} cannot be read after line {number}: {error}") from error
    if bad:
        logger.warning("corpus file %s: %d line(s) with invalid UTF-8, decoded with U+FFFD", path, bad)
        if invalid is not None:
            invalid[0] += bad


def _sentences(paths: Sequence[Path], max_sentence_length: int,
               invalid: list[int] | None = None) -> Iterator[tuple[str | None, int]]:
    """(sentence, UTF-8 bytes) for every non-empty line; sentence is None for a line over the length limit."""
    for path in paths:
        for line in iter_lines(path, invalid):
            if not line.strip():
                continue
            size = len(line.encode("utf-8"))
            yield (line if size <= max_sentence_length else None), size


@dataclass
class LanguageSample:
    """Counts, probabilities and the drawn sample of one language (see the module docstring for the procedure)."""

    language: str
    sentences: int = 0
    """Valid (non-empty, within the length limit) lines in the corpus: n_i."""
    characters: int = 0
    """Characters in the valid lines."""
    bytes: int = 0
    """UTF-8 bytes in the valid lines."""
    skipped_too_long: int = 0
    """Lines left out for being longer than ``max_sentence_length`` bytes."""
    invalid_utf8_lines: int = 0
    """Lines holding bytes that are not UTF-8 (decoded with U+FFFD, as the CC-100 reader does)."""
    p: float = 0.0
    """Share of the corpus p_i: by ``sizes`` when given, else in the ``unit`` of `sample_corpus` (sentences by
    default)."""
    q: float = 0.0
    """α-smoothed sampling probability."""
    sampled_sentences: int = 0
    """k_i: training sentences drawn, repetitions counted."""
    sampled_characters: int = 0
    """Characters in the drawn sentences, repetitions counted."""
    unique_sentences: int = 0
    """Distinct lines in the training sample."""
    heldout: list[str] = field(default_factory=list, repr=False)
    """Held-out lines (never trained on), in file order."""

    @property
    def passes(self) -> float:
        """How many times the language's training lines are seen on average (k_i / P_i)."""
        pool = self.sentences - len(self.heldout)
        return self.sampled_sentences / pool if pool else 0.0


def count_sentences(
    files: Mapping[str, Sequence[Path]], max_sentence_length: int = 4192, progress: bool = True
) -> dict[str, LanguageSample]:
    """First pass: sentences, characters, bytes and over-long lines per language."""
    samples = {}
    total = sum(path.stat().st_size for paths in files.values() for path in paths)
    with tqdm(total=total, unit="B", unit_scale=True, desc="count sentences", disable=not progress) as bar:
        for lang, paths in files.items():
            sample, invalid = LanguageSample(lang), [0]
            for sentence, size in _sentences(paths, max_sentence_length, invalid):
                if sentence is None:
                    sample.skipped_too_long += 1
                    continue
                sample.sentences += 1
                sample.characters += len(sentence)
                sample.bytes += size
            bar.update(sum(path.stat().st_size for path in paths))
            sample.invalid_utf8_lines = invalid[0]
            samples[lang] = sample
    return samples


def unit_size(sample: LanguageSample, unit: str) -> int:
    """The size of one language in ``unit`` (`SAMPLE_UNITS`): its valid lines, or their UTF-8 bytes or characters."""
    if unit not in SAMPLE_UNITS:
        raise ValueError(f"unit={unit!r} is not allowed: expected one of {list(SAMPLE_UNITS)}")
    return {"lines": sample.sentences, "bytes": sample.bytes, "characters": sample.characters}[unit]


def alpha_probabilities(sizes: Mapping[str, float], alpha: float) -> dict[str, float]:
    """q_i = p_i^α / Σ_j p_j^α with p_i = sizes_i / Σ_j sizes_j; languages of size 0 get 0."""
    if not 0.0 <= alpha <= 1.0 or math.isnan(alpha):
        raise ValueError(f"alpha={alpha!r} is not allowed: expected 0 <= alpha <= 1 (XLM-R uses 0.3)")
    bad = {lang: size for lang, size in sizes.items() if not size >= 0 or math.isinf(size)}
    if bad:
        raise ValueError(f"sizes must be finite and >= 0; got {bad}")
    total = float(sum(sizes.values()))
    if total <= 0:
        raise ValueError(f"sizes sum to {total}: at least one language must have data")
    weights = {lang: (size / total) ** alpha if size > 0 else 0.0 for lang, size in sizes.items()}
    norm = sum(weights.values())
    return {lang: weight / norm for lang, weight in weights.items()}


def allocate_budget(budget: int, probabilities: Mapping[str, float]) -> dict[str, int]:
    """Split ``budget`` into integers proportional to ``probabilities`` (largest remainder; ties by order)."""
    exact = {lang: budget * q for lang, q in probabilities.items()}
    counts = {lang: math.floor(value) for lang, value in exact.items()}
    order = sorted(exact, key=lambda lang: (-(exact[lang] - counts[lang]), list(exact).index(lang)))
    for lang in order[: budget - sum(counts.values())]:
        counts[lang] += 1
    return counts


def _rng(seed: int, lang: str, purpose: int) -> np.random.Generator:
    # A stable key (never Python's hash()): the same draw on every run and machine.
    return np.random.default_rng([seed, purpose, zlib.crc32(lang.encode("utf-8"))])


def sample_corpus(
    files: Mapping[str, Sequence[Path]],
    counts: Mapping[str, LanguageSample],
    writer,
    *,
    alpha: float = 0.3,
    max_sentences: int | None = None,
    heldout_sentences: int = 1000,
    max_sentence_length: int = 4192,
    sizes: Mapping[str, float] | None = None,
    unit: str = "lines",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, LanguageSample]:
    """Second pass: draw the α-smoothed training sample and the held-out slices.

    ``writer(sentence, count)`` receives each distinct training line once with its repetition count. ``counts`` comes
    from `count_sentences` and is filled in (p, q, sampled and held-out fields) and returned. ``sizes`` replaces the
    counted sizes as p_i (e.g. a published size table) without changing what is drawn from. Otherwise p_i is measured
    in ``unit`` (`SAMPLE_UNITS`): ``"lines"`` (the valid lines n_i, the default), ``"bytes"`` (their UTF-8 bytes) or
    ``"characters"``; the budget is counted in lines either way.
    """
    if unit not in SAMPLE_UNITS:
        raise ValueError(f"unit={unit!r} is not allowed: expected one of {list(SAMPLE_UNITS)}")
    if max_sentences is not None and max_sentences < 1:
        raise ValueError(f"max_sentences={max_sentences!r} is not allowed: expected a positive integer or None")
    if heldout_sentences < 0:
        raise ValueError(f"heldout_sentences={heldout_sentences!r} is not allowed: expected >= 0")
    empty = [lang for lang, sample in counts.items() if sample.sentences == 0]
    if empty:
        raise CorpusError(f"languages {empty} have no usable lines (empty files, only blank lines, or every line "
                          f"longer than max_sentence_length={max_sentence_length} bytes)")
    if sizes is not None:
        missing = sorted(set(counts) - set(sizes))
        if missing:
            raise ValueError(f"sizes has no entry for languages {missing}")
        size_of = {lang: float(sizes[lang]) for lang in counts}
    else:
        size_of = {lang: float(unit_size(sample, unit)) for lang, sample in counts.items()}
    probabilities = alpha_probabilities(size_of, alpha)
    p_total = sum(size_of.values())
    heldout_n = {lang: min(heldout_sentences, sample.sentences // 10) for lang, sample in counts.items()}
    pool_n = {lang: counts[lang].sentences - heldout_n[lang] for lang in counts}
    budget = sum(pool_n.values()) if max_sentences is None else min(max_sentences, sum(pool_n.values()))
    quota = allocate_budget(budget, probabilities)

    total = sum(path.stat().st_size for paths in files.values() for path in paths)
    with tqdm(total=total, unit="B", unit_scale=True, desc="sample sentences", disable=not progress) as bar:
        for lang, sample in counts.items():
            sample.p, sample.q = size_of[lang] / p_total, probabilities[lang]
            heldout = np.sort(_rng(seed, lang, 0).choice(sample.sentences, heldout_n[lang], replace=False))
            repeats, remainder = divmod(quota[lang], pool_n[lang])
            extra = np.sort(_rng(seed, lang, 1).choice(pool_n[lang], remainder, replace=False))
            h = e = pool_index = 0
            sampled = sampled_chars = unique = 0
            sentences = (s for s in _sentences(files[lang], max_sentence_length) if s[0] is not None)
            for index, (sentence, _) in enumerate(sentences):
                if h < len(heldout) and heldout[h] == index:
                    sample.heldout.append(sentence)
                    h += 1
                    continue
                count = repeats
                if e < len(extra) and extra[e] == pool_index:
                    count += 1
                    e += 1
                pool_index += 1
                if count:
                    writer(sentence, count)
                    sampled += count
                    sampled_chars += count * len(sentence)
                    unique += 1
            if index + 1 != sample.sentences:  # the file changed between the two passes
                raise CorpusError(f"language {lang!r}: {index + 1} lines on the second pass, {sample.sentences} on "
                                  "the first; the corpus files changed while sampling")
            sample.sampled_sentences, sample.sampled_characters, sample.unique_sentences = sampled, sampled_chars, unique
            bar.update(sum(path.stat().st_size for path in files[lang]))
    return dict(counts)
