"""Parallel corpora and translation-LM (TLM) batches for the pretraining stream.

A parallel corpus is ``"default"`` (the packaged `parallel_sentences`, every pair of two languages) or a directory of
``<l1>-<l2>.tsv`` / ``<l1>-<l2>.tsv.xz`` files, one ``l1 text<TAB>l2 text`` pair per line (`read_parallel_corpus`,
`write_parallel_corpus`). `TLMBatches` is the stream's rule for which global batches are TLM batches and what they
hold. Reading needs no torch; only `TLMBatches.collate` does. See ``docs/data_pipeline.md`` ("TLM batches").
"""

from __future__ import annotations

import itertools
import logging
import lzma
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PARALLEL_SUFFIXES",
    "TLM_MASK_INDEX_OFFSET",
    "ParallelCorpus",
    "ParallelCorpusError",
    "TLMBatches",
    "read_parallel_corpus",
    "write_parallel_corpus",
]

logger = logging.getLogger(__name__)

PARALLEL_SUFFIXES: tuple[str, ...] = (".tsv", ".tsv.xz")
TLM_MASK_INDEX_OFFSET = 1 << 62
"""TLM example ``e`` is masked with index ``TLM_MASK_INDEX_OFFSET + e``; MLM blocks use their output position (far
below it), so the two never share a masking random stream."""
_TLM_TAG = 0x7105E  # the TLM/MLM decision per global batch: its own random stream (not the shuffle's, not the masker's)
_TLM_ORDER_TAG = 0x7105F  # the per-epoch order of the pairs and their directions
_EXPECTED = "<l1>-<l2>.tsv or <l1>-<l2>.tsv.xz files (e.g. en-fr.tsv), one 'l1 text<TAB>l2 text' pair per line"


class ParallelCorpusError(ValueError):
    """Invalid parallel corpus or TLM setting; the message names the path or field, the value and what is allowed."""


@dataclass
class ParallelCorpus:
    """Aligned sentence pairs: ``sentences[i] = (pair index, l1 text, l2 text)`` of language pair ``pairs[pair
    index] = (l1, l2)``; ``skipped`` counts the bad lines of each file read (no tab, several tabs, an empty side)."""

    source: str
    pairs: list[tuple[str, str]]
    sentences: list[tuple[int, str, str]]
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sentences)

    def counts(self) -> dict[str, int]:
        """Sentence pairs per language pair, keyed ``"l1-l2"``."""
        out = {f"{a}-{b}": 0 for a, b in self.pairs}
        for index, _, _ in self.sentences:
            out["-".join(self.pairs[index])] += 1
        return out


# ------------------------------------------------------------------------------------------------------ reading
def _pair_name(name: str) -> tuple[str, str, str] | None:
    """``(stem, suffix, name)`` of a ``<stem>.tsv``/``<stem>.tsv.xz`` file name, else None."""
    for suffix in sorted(PARALLEL_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix, name
    return None


def _split_stem(stem: str, languages: Sequence[str] | None, path: Path) -> tuple[str, str]:
    """``<l1>-<l2>`` → (l1, l2); codes may hold a hyphen (``zh-Hans``): then the split whose both sides are stream
    languages is taken."""
    splits = [(stem[:i], stem[i + 1:]) for i, c in enumerate(stem) if c == "-" and 0 < i < len(stem) - 1]
    if languages is not None and len(splits) > 1:
        known = [s for s in splits if s[0] in languages and s[1] in languages]
        splits = known or splits[:1]
    if len(splits) != 1:
        raise ParallelCorpusError(f"parallel corpus file {str(path)!r}: the name must be <l1>-<l2>.tsv[.xz] with "
                                  f"two language codes, got {'no' if not splits else 'an ambiguous'} pair {stem!r}")
    return splits[0]


def _read_file(path: Path, pair: int, sentences: list[tuple[int, str, str]]) -> int:
    """Append the file's good pairs; returns the number of bad lines."""
    opener = lzma.open if path.name.endswith(".xz") else open
    bad = first_bad = 0
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                parts = line.rstrip("\r\n").split("\t")
                left, right = (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else ("", "")
                if left and right:
                    sentences.append((pair, left, right))
                else:
                    bad += 1
                    first_bad = first_bad or number
    except (UnicodeDecodeError, lzma.LZMAError, OSError) as error:
        raise ParallelCorpusError(f"parallel corpus file {str(path)!r} could not be read as UTF-8 text "
                                  f"{'(xz)' if path.name.endswith('.xz') else ''}: {error}") from None
    if bad:
        logger.warning("parallel corpus file %s: skipped %d bad line(s) (no tab, more than one tab or an empty side; "
                       "the first is line %d)", path, bad, first_bad)
    return bad


def _pairs_error(source: str, found: Iterable[str], languages: Sequence[str]) -> ParallelCorpusError:
    return ParallelCorpusError(f"parallel_corpus={source!r} has no sentence pair whose two languages are both among "
                               f"the stream's languages {sorted(languages)}; it has the pairs {sorted(found)}")


def _read_default(languages: Sequence[str] | None) -> ParallelCorpus:
    from .default_corpus import parallel_sentences

    table = parallel_sentences()
    chosen = sorted(lang for lang in table if languages is None or lang in languages)
    pairs = list(itertools.combinations(chosen, 2))
    if not pairs:
        raise _pairs_error("default", (f"{a}-{b}" for a, b in itertools.combinations(sorted(table), 2)),
                           languages or ())
    sentences = [(i, left, right) for i, (a, b) in enumerate(pairs) for left, right in zip(table[a], table[b])]
    return ParallelCorpus("default", pairs, sentences)


def read_parallel_corpus(source: str | os.PathLike[str], languages: Sequence[str] | None = None) -> ParallelCorpus:
    """Read a parallel corpus, keeping the pairs whose two languages are in ``languages`` (all when None).

    ``source="default"``: the packaged `parallel_sentences`, every unordered pair of two of its languages (not only
    English-centred pairs: the sample is small, and TLM draws the direction of each pair anyway). Otherwise a
    directory of ``<l1>-<l2>.tsv[.xz]`` files (UTF-8, one ``l1 text<TAB>l2 text`` pair per line, both sides
    stripped); bad lines are skipped, counted in ``skipped`` and logged as a warning naming the file. Files are read
    in name order, lines in file order."""
    if isinstance(source, str) and source == "default":
        return _read_default(languages)
    if not isinstance(source, (str, os.PathLike)):
        raise ParallelCorpusError(f"parallel_corpus must be 'default' or a directory of {_EXPECTED}, got "
                                  f"{type(source).__name__}")
    directory = Path(source)
    named = sorted(n for n in (_pair_name(p.name) for p in directory.iterdir() if p.is_file())
                   if n is not None) if directory.is_dir() else []
    if not named:
        raise ParallelCorpusError(f"parallel_corpus={os.fspath(source)!r} is not a directory holding {_EXPECTED}")
    files: dict[tuple[str, str], Path] = {}
    for stem, _, name in named:
        pair = _split_stem(stem, languages, directory / name)
        if pair in files:
            raise ParallelCorpusError(f"parallel_corpus={os.fspath(source)!r} holds the pair {stem!r} twice "
                                      f"({files[pair].name} and {name}); keep one file per pair")
        files[pair] = directory / name
    wanted = [p for p in files if languages is None or (p[0] in languages and p[1] in languages)]
    if not wanted:
        raise _pairs_error(os.fspath(source), (f"{a}-{b}" for a, b in files), languages or ())
    corpus = ParallelCorpus(os.fspath(source), [], [])
    for pair in wanted:
        corpus.pairs.append(pair)
        bad = _read_file(files[pair], len(corpus.pairs) - 1, corpus.sentences)
        if bad:
            corpus.skipped[str(files[pair])] = bad
    if not corpus.sentences:
        raise ParallelCorpusError(f"parallel_corpus={os.fspath(source)!r} has no valid sentence pair in "
                                  f"{[files[p].name for p in wanted]} (every line was bad or the files are empty)")
    return corpus


def write_parallel_corpus(pairs: Mapping[tuple[str, str], Iterable[tuple[str, str]]], directory: str | os.PathLike[str],
                          *, compress: bool = False) -> list[Path]:
    """Write ``{(l1, l2): [(l1 text, l2 text), ...]}`` as ``<l1>-<l2>.tsv`` (``.tsv.xz`` with ``compress``) files in
    ``directory`` (created); returns the paths. A text holding a tab or a line break, or empty, is an error."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, rows in pairs.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) and k for k in key)):
            raise ParallelCorpusError(f"pairs keys must be (l1, l2) language codes, got {key!r}")
        lines = []
        for i, row in enumerate(rows):
            if len(row) != 2 or any(not isinstance(t, str) or not t.strip() or set(t) & {"\t", "\n", "\r"}
                                    for t in row):
                raise ParallelCorpusError(f"pairs[{key!r}][{i}] must be two non-empty texts without tabs or line "
                                          f"breaks, got {row!r:.120}")
            lines.append(f"{row[0]}\t{row[1]}\n")
        path = out / f"{key[0]}-{key[1]}{'.tsv.xz' if compress else '.tsv'}"
        with (lzma.open if compress else open)(path, "wt", encoding="utf-8") as handle:
            handle.writelines(lines)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------------ batches
def _uniform(seed: int, tag: int, index: int) -> float:
    """A uniform in [0, 1): a pure function of (seed, tag, index)."""
    state = np.random.SeedSequence([seed, tag, index]).generate_state(1, np.uint64)[0]
    return float(int(state) >> 11) * 2.0 ** -53


class TLMBatches:
    """Which global batches are TLM batches, and their examples.

    Global batch ``b`` is a TLM batch iff ``u(seed, b) < ratio`` (a uniform of its own random stream). TLM example
    ``e`` (the ``e``-th over all TLM batches, ``B·R`` per batch) is sentence ``perm_k[e mod N]`` of epoch ``k = e //
    N`` (``N`` pairs, a permutation seeded by ``(seed, k)``), read l1 → l2 or l2 → l1 as drawn with it."""

    def __init__(self, corpus: ParallelCorpus, *, ratio: float, seed: int, max_length: int) -> None:
        self.corpus, self.ratio, self.seed, self.max_length = corpus, float(ratio), int(seed), int(max_length)
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None

    def is_tlm(self, batch_index: int) -> bool:
        """Whether global batch ``batch_index`` is a TLM batch (pure in (seed, batch_index))."""
        return _uniform(self.seed, _TLM_TAG, batch_index) < self.ratio

    def config(self) -> dict[str, Any]:
        """What resuming exactly depends on (for the stream's state config)."""
        return {"tlm_ratio": self.ratio, "parallel_pairs": self.corpus.counts()}

    def _order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._epoch is None or self._epoch[0] != epoch:
            generator = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, _TLM_ORDER_TAG,
                                                                                     epoch])))
            n = len(self.corpus)
            self._epoch = (epoch, generator.permutation(n), generator.integers(0, 2, n).astype(bool))
        return self._epoch[1], self._epoch[2]

    def examples(self, first: int, count: int) -> list[tuple[str, str, str, str]]:
        """``(source language, target language, source, target)`` of TLM examples ``[first, first + count)``."""
        out = []
        for e in range(first, first + count):
            epoch, offset = divmod(e, len(self.corpus))
            order, flips = self._order(epoch)
            pair, left, right = self.corpus.sentences[int(order[offset])]
            a, b = self.corpus.pairs[pair]
            out.append((b, a, right, left) if flips[offset] else (a, b, left, right))
        return out

    def collate(self, first: int, count: int, *, encode: Callable[[list[str]], list[np.ndarray]], masker: Any,
                rate: float, tokenizer: Any, language_ids: Mapping[str, int] | None,
                count_languages: Sequence[str] | None = None, pad_to: int | None = None) -> dict[str, Any]:
        """The TLM batch of examples ``[first, first + count)``: `tlm_example` + `collate_tlm` (masked with indices
        ``TLM_MASK_INDEX_OFFSET + e`` at ``rate``). Without ``language_ids`` the batch has no ``language_ids``;
        ``count_languages`` adds ``language_token_counts`` (real tokens per language, in that order); ``pad_to``
        pads the rows to that width (padding is a segment of its own in ``cu_seqlens``)."""
        from .masking import collate_tlm, tlm_example  # torch only here

        items = self.examples(first, count)
        ids = encode([text for item in items for text in item[2:]])
        unk = [int(tokenizer.unk_token_id)]
        examples = [tlm_example(ids[2 * i].tolist() or unk, ids[2 * i + 1].tolist() or unk, src, tgt,
                                max_length=self.max_length, bos_token_id=int(tokenizer.bos_token_id),
                                eos_token_id=int(tokenizer.eos_token_id), pad_token_id=int(tokenizer.pad_token_id))
                    for i, (src, tgt, _, _) in enumerate(items)]
        mapping = language_ids if language_ids is not None else {lang: 0 for item in items for lang in item[:2]}
        batch = collate_tlm(examples, masker, [TLM_MASK_INDEX_OFFSET + e for e in range(first, first + count)],
                            language_to_id=mapping, pad_token_id=int(tokenizer.pad_token_id), rate=rate)
        if language_ids is None:
            del batch["language_ids"]
        if pad_to is not None and batch["input_ids"].shape[1] < pad_to:
            _pad_rows(batch, [len(x["input_ids"]) for x in examples], pad_to, int(tokenizer.pad_token_id))
        if count_languages is not None:
            counts = dict.fromkeys(count_languages, 0)
            for example in examples:
                for lang in example["languages"]:
                    counts[lang] += 1
            import torch

            batch["language_token_counts"] = torch.tensor([counts[lang] for lang in count_languages])
        return batch


def _pad_rows(batch: dict[str, Any], lengths: Sequence[int], width: int, pad: int) -> None:
    """Right-pad a `collate_tlm` batch to ``width`` columns; ``cu_seqlens`` gets each row's padding as a segment."""
    import torch

    rows, old = batch["input_ids"].shape
    fill = {"input_ids": pad, "position_ids": pad, "labels": -100}
    for key, value in list(batch.items()):
        if key == "cu_seqlens":
            continue
        extra = value[:, -1:].expand(rows, width - old) if key == "language_ids" else torch.full(
            (rows, width - old), fill[key], dtype=value.dtype)
        batch[key] = torch.cat([value, extra], dim=1)
    bounds = [b for r, n in enumerate(lengths) for b in ((r * width, r * width + n) if n < width else (r * width,))]
    batch["cu_seqlens"] = torch.tensor([*bounds, rows * width], dtype=torch.int32)
