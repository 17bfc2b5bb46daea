"""Pre-tokenized corpora: `tokenize_corpus` writes a CC-100 corpus's token ids once, as Arrow files that `datasets`
memory-maps; `TokenizedSource` serves one language of it to the pretraining stream without reading tokens it does
not need. Layout, cluster runs and the memory cost are in ``docs/data_pipeline.md`` ("Pre-tokenized corpora").
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .blocks import DocumentRun, LanguageBlocks

__all__ = [
    "MANIFEST",
    "TokenizedCorpusError",
    "TokenizedSource",
    "block_table_name",
    "is_tokenized_corpus",
    "read_manifest",
    "tokenize_corpus",
    "tokenizer_fingerprint",
]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "xlmr-hf-tokens"
_VERSION = 1
_BATCH_DOCUMENTS = 1024  # documents per Arrow record batch


class TokenizedCorpusError(ValueError):
    """A missing, incomplete or mismatched pre-tokenized corpus; the message names the path and what is expected."""


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """SHA-256 of the tokenizer's vocabulary (piece → id) and special ids: equal fingerprints give equal ids."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    special = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id]
    return hashlib.sha256(json.dumps([vocab, special], ensure_ascii=False).encode()).hexdigest()


def _features() -> Any:
    from datasets import Features, Sequence, Value

    return Features({"input_ids": Sequence(Value("int32")), "paragraph_lengths": Sequence(Value("int32")),
                     "lines": Value("int32"), "bytes": Value("int64")})


def is_tokenized_corpus(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory written by `tokenize_corpus`."""
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a complete pre-tokenized corpus; a clear error when it is missing or unfinished."""
    manifest = Path(path) / MANIFEST
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TokenizedCorpusError(f"{str(path)!r} has no {MANIFEST}: it is not a finished pre-tokenized corpus "
                                   "(run xlmr-hf tokenize-corpus; on a cluster every node must finish)") from None
    except ValueError as error:
        raise TokenizedCorpusError(f"{manifest}: not valid JSON ({error})") from None
    if data.get("format") != FORMAT or data.get("version") != _VERSION:
        raise TokenizedCorpusError(f"{manifest}: format {data.get('format')!r} version {data.get('version')!r}; "
                                   f"expected {FORMAT!r} version {_VERSION}")
    return data


# --------------------------------------------------------------------------------------------------- writing
def _rows(url: str, encoder: Any, eos: int) -> Iterator[dict[str, Any]]:
    from .cc100 import iter_cc100_documents

    for document in iter_cc100_documents(url):
        paragraphs = document.split("\n")
        units = [ids for ids in encoder.encode(paragraphs) if len(ids)]
        flat = np.concatenate([np.append(ids, eos) for ids in units]) if units else np.zeros(0, dtype=np.int64)
        yield {"input_ids": flat.astype(np.int32), "paragraph_lengths": [len(ids) + 1 for ids in units],
               "lines": len(paragraphs), "bytes": len(document.encode("utf-8")) + 2}


def _write_part(url: str, target: Path, tokenizer_path: str) -> dict[str, Any]:
    """Tokenize one CC-100 file into ``target`` (an Arrow stream file that `datasets.Dataset.from_file` reads)."""
    import pyarrow as pa

    from .stream import TokenEncoder, load_stream_tokenizer

    tokenizer = load_stream_tokenizer(tokenizer_path)
    encoder, eos = TokenEncoder(tokenizer), int(tokenizer.eos_token_id)
    schema = _features().arrow_schema
    stats = {"documents": 0, "lines": 0, "bytes": 0, "tokens": 0}
    start = time.perf_counter()
    scratch = target.with_suffix(".arrow.tmp")
    with pa.OSFile(str(scratch), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        rows: list[dict[str, Any]] = []
        for row in _rows(url, encoder, eos):
            rows.append(row)
            stats["documents"] += 1
            stats["lines"] += row["lines"]
            stats["bytes"] += row["bytes"]
            stats["tokens"] += len(row["input_ids"])
            if len(rows) == _BATCH_DOCUMENTS:
                writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=schema))
    os.replace(scratch, target)
    stats["seconds"] = time.perf_counter() - start
    target.with_suffix(".json").write_text(json.dumps(stats), encoding="utf-8")  # the part's completion marker
    return stats


def _tokenize_items(batch: dict[str, list[Any]], tokenizer_path: str) -> dict[str, list[Any]]:
    """`datasets.Dataset.map` function: one work item (a CC-100 file) per call; writes its part, returns its stats."""
    stats = _write_part(batch["url"][0], Path(batch["target"][0]), tokenizer_path)
    return {"item": batch["item"], "documents": [stats["documents"]], "tokens": [stats["tokens"]],
            "seconds": [stats["seconds"]], "bytes": [stats["bytes"]]}


def tokenize_corpus(
    corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    tokenizer: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    languages: Sequence[str] | None = None,
    workers: int = 1,
    num_nodes: int = 1,
    node_rank: int = 0,
    seq_lens: Sequence[int] = (512,),
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the token ids of every document of ``corpus`` (a CC-100 directory, file list or URL template) to
    ``output``: per file one Arrow part ``<lang>/<item>.arrow`` with one row per document (``input_ids``: the
    paragraphs' ids each followed by ``</s>``; ``paragraph_lengths``; ``lines``; ``bytes``), and ``manifest.json``
    once every part exists.

    ``workers`` processes (`datasets.Dataset.map` with ``num_proc``) tokenize files in parallel; ``num_nodes`` /
    ``node_rank`` split the files over machines (e.g. a Slurm array). Finished parts are kept, so a rerun does only
    what is missing. For each of ``seq_lens`` and both packings a block table is written (`block_table_name`):
    with it the stream plans a language's blocks by lookup. Returns the manifest (or, on a node that did not finish
    the corpus, its own progress)."""
    from datasets import Dataset

    from .cc100 import cc100_files, cc100_statistics
    from .stream import load_stream_tokenizer

    output = Path(output)
    if not 0 <= node_rank < num_nodes:
        raise TokenizedCorpusError(f"node_rank must be in [0, num_nodes={num_nodes}), got {node_rank}")
    if workers < 1:
        raise TokenizedCorpusError(f"workers must be >= 1, got {workers}")
    tok = load_stream_tokenizer(tokenizer)
    fingerprint = tokenizer_fingerprint(tok)
    if output.exists() and any(output.iterdir()):
        stamp = output / ".tokenizer"
        if overwrite and node_rank == 0:
            shutil.rmtree(output)
        elif not stamp.is_file() or stamp.read_text() != fingerprint:
            raise TokenizedCorpusError(f"output={str(output)!r} is not empty and was not written with this tokenizer; "
                                       "choose another directory or set --overwrite true")
    output.mkdir(parents=True, exist_ok=True)
    (output / ".tokenizer").write_text(fingerprint)
    files = cc100_files(corpus, languages)
    items = [{"item": i, "language": lang, "url": url,
              "target": str(output / lang / f"{i:05d}.arrow")} for i, (lang, url) in enumerate(files)]
    mine = [item for item in items[node_rank::num_nodes] if not Path(item["target"]).with_suffix(".json").is_file()]
    for lang in {item["language"] for item in items}:
        (output / lang).mkdir(exist_ok=True)
    if mine:
        logger.info("tokenizing %d file(s) with %d worker(s) into %s", len(mine), workers, output)
        table = Dataset.from_list(mine)
        table.map(_tokenize_items, batched=True, batch_size=1, num_proc=min(workers, len(mine)),
                  fn_kwargs={"tokenizer_path": str(tokenizer)}, remove_columns=table.column_names,
                  load_from_cache_file=False, keep_in_memory=True, desc="tokenize-corpus")
    missing = [item["target"] for item in items if not Path(item["target"]).with_suffix(".json").is_file()]
    if missing:
        logger.info("%d part(s) are still being written by other nodes; the last node writes %s", len(missing),
                    MANIFEST)
        return {"format": FORMAT, "complete": False, "missing": missing}
    statistics = cc100_statistics([url for _, url in files], progress=False)
    manifest = {"format": FORMAT, "version": _VERSION, "tokenizer": fingerprint, "vocab_size": len(tok),
                "languages": {}}
    for lang in sorted({item["language"] for item in items}):
        parts = [item for item in items if item["language"] == lang]
        counted = [json.loads(Path(p["target"]).with_suffix(".json").read_text()) for p in parts]
        stats = statistics[lang]
        names = [Path(p["target"]).name for p in parts]
        tables = write_block_tables(output, lang, names, seq_lens)
        manifest["languages"][lang] = {
            "parts": names, "documents": stats.documents, "lines": stats.lines,
            "bytes": stats.bytes, "tokens": sum(c["tokens"] for c in counted),
            "tokenize_seconds": sum(c["seconds"] for c in counted), "block_tables": tables}
    scratch = output / f".{MANIFEST}.{node_rank}.tmp"
    scratch.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(scratch, output / MANIFEST)
    return manifest


def block_table_name(packing: str, seq_len: int) -> str:
    """File name (in a language's folder) of the block table for ``packing`` and ``seq_len``."""
    return f"blocks-{packing}-{seq_len}.npy"


def write_block_tables(output: Path, language: str, parts: Sequence[str], seq_lens: Sequence[int]) -> list[str]:
    """Plan one epoch of ``language`` for every ``seq_len`` and packing and save the block ends (int64 ``.npy``)."""
    from .packing import PACKING_MODES

    names, source = [], TokenizedSource(output, language, parts)
    for seq_len in seq_lens:
        for packing in PACKING_MODES:
            source.seek(None)  # every table plans from the first document
            table = LanguageBlocks(source, int(seq_len), packing).epoch_table()
            name = block_table_name(packing, int(seq_len))
            scratch = output / language / f".{name}.tmp.npy"
            np.save(scratch, table)
            os.replace(scratch, output / language / name)
            names.append(name)
    return names


# --------------------------------------------------------------------------------------------------- reading
class _Chunks:
    """Per-record-batch numpy views of one language's memory-mapped Arrow columns (nothing is copied)."""

    def __init__(self, table: Any) -> None:
        self.ids, self.paragraphs, self.lines, self.bytes = [], [], [], []
        counts = []
        for batch in table.to_batches():
            ids, paragraphs = batch.column("input_ids"), batch.column("paragraph_lengths")
            offsets = ids.offsets.to_numpy()
            self.ids.append((offsets, ids.values.to_numpy(zero_copy_only=False)))
            self.paragraphs.append((paragraphs.offsets.to_numpy(), paragraphs.values.to_numpy(zero_copy_only=False)))
            self.lines.append(batch.column("lines").to_numpy())
            self.bytes.append(batch.column("bytes").to_numpy())
            counts.append(np.diff(offsets))
        lengths = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])  # every document's start + the end
        self.rows = np.concatenate([[0], np.cumsum([len(c) for c in counts], dtype=np.int64)])

    def _chunk(self, document: int) -> tuple[int, int]:
        chunk = int(np.searchsorted(self.rows, document, side="right")) - 1
        return chunk, document - int(self.rows[chunk])

    def _ranges(self, first: int, last: int) -> Iterator[tuple[int, int, int]]:
        """``(chunk, first row in it, rows)`` covering the documents ``[first, last)``."""
        while first < last:
            chunk, row = self._chunk(first)
            take = min(last - first, int(self.rows[chunk + 1]) - first)
            yield chunk, row, take
            first += take

    def column(self, parts: list[np.ndarray], first: int, last: int) -> np.ndarray:
        out = [parts[chunk][row:row + take] for chunk, row, take in self._ranges(first, last)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def lists(self, parts: list[tuple[np.ndarray, np.ndarray]], first: int, last: int) -> np.ndarray:
        out = [parts[chunk][1][parts[chunk][0][row]:parts[chunk][0][row + take]]
               for chunk, row, take in self._ranges(first, last)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


class TokenizedSource:
    """One language of a pre-tokenized corpus as a `xlmr_hf.data.blocks.DocumentSource` (state: a document index)."""

    def __init__(self, directory: str | os.PathLike[str], language: str, parts: Sequence[str]) -> None:
        from datasets import Dataset, concatenate_datasets

        self.language = language
        paths = [Path(directory) / language / part for part in parts]
        for path in paths:
            if not path.is_file():
                raise TokenizedCorpusError(f"pre-tokenized part {str(path)!r} of language {language!r} is missing")
        datasets = [Dataset.from_file(str(path)) for path in paths]
        self.dataset = concatenate_datasets(datasets) if len(datasets) > 1 else datasets[0]
        self._chunks = _Chunks(self.dataset.data.table)
        self.documents = len(self._chunks.starts) - 1
        self.tokens_per_epoch = int(self._chunks.starts[-1])
        self._next = 0

    @property
    def document_ends(self) -> np.ndarray:
        """Each document's end position in the epoch."""
        return self._chunks.starts[1:]

    @functools.cached_property
    def cumulative_lines(self) -> np.ndarray:
        """Lines of the documents before each index (``documents + 1`` entries)."""
        return np.concatenate([[0], np.cumsum(self._chunks.column(self._chunks.lines, 0, self.documents),
                                              dtype=np.int64)])

    @functools.cached_property
    def cumulative_bytes(self) -> np.ndarray:
        """Bytes of the documents before each index (``documents + 1`` entries)."""
        return np.concatenate([[0], np.cumsum(self._chunks.column(self._chunks.bytes, 0, self.documents),
                                              dtype=np.int64)])

    def seek(self, state: Any) -> None:
        self._next = 0 if state is None else int(state)
        if not 0 <= self._next <= self.documents:
            raise TokenizedCorpusError(f"language {self.language!r}: document {state!r} is outside the corpus's "
                                       f"{self.documents} documents; the state belongs to another corpus")

    def read(self, min_tokens: int) -> DocumentRun:
        first, starts = self._next, self._chunks.starts
        last = min(int(np.searchsorted(starts, starts[first] + max(min_tokens, 1), side="left")), self.documents)
        last = max(last, first + 1) if first < self.documents else first
        base = int(starts[first])
        lengths = self._chunks.lists(self._chunks.paragraphs, first, last)
        run = DocumentRun(
            starts=starts[first:last + 1] - base, unit_ends=np.cumsum(lengths),
            lines=self._chunks.column(self._chunks.lines, first, last).astype(np.int64),
            bytes=self._chunks.column(self._chunks.bytes, first, last).astype(np.int64),
            last=last == self.documents, states=list(range(first, last + 1)))
        self._next = 0 if run.last else last
        if run.last:
            run.states[-1] = 0
        return run

    def tokens(self, start: int, end: int) -> np.ndarray:
        first = int(np.searchsorted(self._chunks.starts, start, side="right")) - 1
        out, position = [], start
        while position < end:
            chunk, row = self._chunks._chunk(first)
            offsets, values = self._chunks.ids[chunk]
            chunk_start = int(self._chunks.starts[self._chunks.rows[chunk]])
            chunk_end = int(self._chunks.starts[self._chunks.rows[chunk + 1]])
            stop = min(end, chunk_end)
            local = int(offsets[0])
            out.append(values[position - chunk_start + local:stop - chunk_start + local])
            position, first = stop, int(self._chunks.rows[chunk + 1])
        return np.concatenate(out).astype(np.int64) if len(out) != 1 else out[0].astype(np.int64)

    def document_starts(self, start: int, end: int) -> np.ndarray:
        starts = self._chunks.starts
        return np.unique(starts[np.searchsorted(starts, start, side="right"):np.searchsorted(starts, end, side="left")])
