"""The corpus builder's stages as datatrove pipeline steps (`datatrove.pipeline.base.PipelineStep`).

A document travels as a datatrove `Document` whose ``text`` is its paragraphs joined by ``"\\n"`` and whose metadata
holds ``input`` (the input's index), ``position`` (the index of its first normalised paragraph within the input, which
the dedup stages use) and, after language ID, ``language``, ``lid_score``, ``bucket`` and ``perplexity``. Each step
counts through datatrove's stats (``stat_update``) under the keys of `xlmr_hf.corpus.report.StageCounts`; the
orchestration in `xlmr_hf.corpus.distributed` sums the per-task stats files into the manifest. The order of the
stages and their semantics are those of `xlmr_hf.corpus.cleaning.build_corpus`; ``docs/data_pipeline.md`` has the map.
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from .common import count_routes, resolve_duplicates
from .lid import LanguageIdentifier, PerplexityStage, ScorerFactory
from .readers import (
    CorpusBuildError,
    CorpusInputError,
    ReadStats,
    ShardWriter,
    normalized_paragraph_hash,
    read_documents,
)

__all__ = [
    "CorpusMerge",
    "CorpusReader",
    "CorpusWriter",
    "DedupFilter",
    "DedupSignatures",
    "FindDuplicates",
    "LanguageRouter",
    "LengthFilter",
    "ParagraphNormalizer",
    "PerplexityFilter",
    "UnicodeNormalizer",
    "failed",
    "input_file",
    "task_inputs",
]


def task_inputs(inputs: list[dict[str, Any]], rank: int, world_size: int) -> list[dict[str, Any]]:
    """The inputs of task ``rank``: every ``world_size``-th one, so each input file is read by exactly one task."""
    return [spec for spec in inputs if spec["index"] % world_size == rank]


def input_file(directory: str | os.PathLike, index: int, suffix: str) -> Path:
    """``<directory>/<index:06d><suffix>``: the per-input work files, named by input so that the outcome does not
    depend on how inputs were spread over tasks."""
    return Path(directory) / f"{index:06d}{suffix}"


def failed(record_dir: str | None, index: int) -> bool:
    """Whether the reader recorded input ``index`` as failed (``on_error="skip"``) in ``record_dir``."""
    if record_dir is None:
        return False
    path = input_file(record_dir, index, ".json")
    return path.is_file() and json.loads(path.read_text(encoding="utf-8"))["status"] == "error"


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.tmp.npy")
    np.save(tmp, array, allow_pickle=False)
    os.replace(tmp, path)


class _Counting(PipelineStep):
    """A step whose counts go to datatrove's stats once per task: summed here first, because ``stat_update`` keeps
    running means and variances per call, which cost ~10 % of the build when called per document."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: Counter[str] = Counter()

    def add(self, label: str, value: int = 1) -> None:
        self._pending[label] += value

    def __call__(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        try:
            yield from self.run(data, rank, world_size)
        finally:
            for label, value in sorted(self._pending.items()):
                self.stat_update(label, value=value)
            self._pending.clear()


class _Stage(_Counting):
    """A step that counts one `StageCounts` row: documents/paragraphs in and out (+ added), and named details."""

    type = "xlmr-hf"

    def count(self, docs_in: int, paras_in: int, docs_out: int, paras_out: int, added: int = 0) -> None:
        pending = self._pending
        pending["documents_in"] += docs_in
        pending["paragraphs_in"] += paras_in
        pending["documents_out"] += docs_out
        pending["paragraphs_out"] += paras_out
        pending["documents_added"] += added

    def detail(self, key: str, value: int = 1) -> None:  # zeros too: the manifest lists every detail counted
        self._pending[f"detail/{key}"] += value

    def lang(self, lang: str, key: str, value: int = 1) -> None:
        if value:
            self._pending[f"lang/{lang}/{key}"] += value


class CorpusReader(_Counting):
    """Reads this task's inputs (plain text, JSONL, WET; compressed or not) with `read_documents`. Ours rather than
    datatrove's readers: they keep cc_net's WET semantics (title line dropped, non-conversion records counted), count
    invalid UTF-8 and bad records, and ``on_error="skip"`` turns an unreadable input into a reported skip. With
    ``record_dir`` each input's outcome (status, error, documents and paragraphs read, reader stats) is written to
    ``<record_dir>/<index>.json``."""

    name = "corpus reader"
    type = "📖 - READER"

    def __init__(self, inputs: list[dict[str, Any]], text_field: str = "text", keep_title: bool = False,
                 on_error: str = "raise", record_dir: str | None = None, failed_in: str | None = None) -> None:
        super().__init__()
        self.inputs, self.text_field, self.keep_title = inputs, text_field, keep_title
        self.on_error, self.record_dir, self.failed_in = on_error, record_dir, failed_in

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for spec in task_inputs(self.inputs, rank, world_size):
            yield from self._read(spec)

    def _read(self, spec: dict[str, Any]) -> Iterator[Document]:
        stats, documents, paragraphs = ReadStats(), 0, 0
        record: dict[str, Any] = {"index": spec["index"], "status": "done", "error": None}
        if failed(self.failed_in, spec["index"]):  # failed in the signature pass: left out, as it was there
            record = json.loads(input_file(self.failed_in, spec["index"], ".json").read_text(encoding="utf-8"))
            _atomic_json(input_file(self.record_dir, spec["index"], ".json"), record)
            return
        try:
            for n, raw in enumerate(read_documents(spec["path"], spec["format"], text_field=self.text_field,
                                                   on_error=self.on_error, stats=stats, keep_title=self.keep_title)):
                documents, paragraphs = documents + 1, paragraphs + len(raw.paragraphs)
                self.add("documents")
                yield Document("\n".join(raw.paragraphs), f"{spec['index']}/{n}",
                               metadata={"input": spec["index"], "raw_paragraphs": len(raw.paragraphs),
                                         "url": raw.url})
        except CorpusInputError as error:
            if self.on_error == "raise":
                raise
            self.add("inputs_failed")
            record.update(status="error", error=str(error))
        for key in ("invalid_utf8", "bad_records", "skipped_records"):
            if getattr(stats, key):
                self.add(f"read/{key}", getattr(stats, key))
        if self.record_dir is not None:
            record.update(documents=documents, paragraphs=paragraphs, read=stats.to_dict())
            Path(self.record_dir).mkdir(parents=True, exist_ok=True)
            _atomic_json(input_file(self.record_dir, spec["index"], ".json"), record)


class UnicodeNormalizer(_Stage):
    """Stage 1: Unicode normalisation (NFC / NFKC / none) of each paragraph; keeps every document and paragraph."""

    name = "unicode normalization"

    def __init__(self, normalization: str = "NFC") -> None:
        super().__init__()
        self.normalization = normalization

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            raw = doc.text.split("\n") if doc.metadata["raw_paragraphs"] else []
            if self.normalization != "none":
                with self.track_time():
                    normalized = [unicodedata.normalize(self.normalization, p) for p in raw]
                self.detail("paragraphs_changed", sum(a != b for a, b in zip(raw, normalized)))
                doc.text = "\n".join(normalized)
            self.count(1, len(raw), 1, len(raw))
            yield doc


class ParagraphNormalizer(_Stage):
    """Stage 2: whitespace runs collapsed to one space, ends stripped, empty paragraphs dropped; a document left
    without paragraphs is dropped. Sets ``position`` (the normalised paragraphs of the same input before this
    document), which the dedup stages use."""

    name = "paragraph normalization"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        positions: dict[int, int] = {}
        for doc in data:
            raw = doc.text.split("\n") if doc.metadata.pop("raw_paragraphs") else []
            paragraphs = [q for q in (" ".join(p.split()) for p in raw) if q]
            self.count(1, len(raw), 1 if paragraphs else 0, len(paragraphs))
            if not paragraphs:
                continue
            index = doc.metadata["input"]
            doc.metadata["position"], positions[index] = positions.get(index, 0), positions.get(index, 0) + len(
                paragraphs)
            doc.text = "\n".join(paragraphs)
            yield doc


class DedupSignatures(_Counting):
    """Dedup, stage 1 of 3 (as datatrove's own dedup pipelines are staged): the 64-bit hash of every paragraph
    (`normalized_paragraph_hash`), written per input and hash bucket as ``<index>.b<bucket>.npy`` — rows of
    (hash, position), position = the paragraph's index within its input — plus ``<index>.count.json``. Ends a
    pipeline (yields nothing)."""

    name = "dedup signatures"
    type = "🫂 - DEDUP"

    def __init__(self, output_dir: str, buckets: int = 1, record_dir: str | None = None) -> None:
        super().__init__()
        self.output_dir, self.buckets, self.record_dir = output_dir, buckets, record_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        Path(self.output_dir).mkdir(parents=True, exist_ok=True)
        current, hashes = None, []
        for doc in data:
            if doc.metadata["input"] != current:
                self._save(current, hashes)
                current, hashes = doc.metadata["input"], []
            with self.track_time():
                hashes.extend(normalized_paragraph_hash(p) for p in doc.text.split("\n"))
            self.add("paragraphs", doc.text.count("\n") + 1)
        self._save(current, hashes)
        return
        yield  # a generator that yields nothing

    def _save(self, index: int | None, digests: list[bytes]) -> None:
        if index is None or failed(self.record_dir, index):  # a failed input's paragraphs are no one's duplicates
            return
        hashes = np.frombuffer(b"".join(digests), dtype="<u8")
        positions = np.arange(hashes.size, dtype="<u8")
        for bucket in range(self.buckets):
            mask = hashes % self.buckets == bucket
            _atomic_npy(input_file(self.output_dir, index, f".b{bucket:03d}.npy"),
                        np.stack([hashes[mask], positions[mask]], axis=1))
        _atomic_json(input_file(self.output_dir, index, ".count.json"), {"paragraphs": int(hashes.size)})


class FindDuplicates(PipelineStep):
    """Dedup, stage 2 of 3: task ``rank`` reads hash bucket ``rank`` of every input (``world_size`` must equal the
    signature stage's ``buckets``) in input order and writes, per input, the positions to remove
    (``<index>.b<bucket>.npy``): with ``keep_first`` every occurrence after the first in (input, position) order —
    cc_net's keep-first, the same whatever the number of tasks or machines — else every copy of a repeated paragraph."""

    name = "find duplicates"
    type = "🫂 - DEDUP"

    def __init__(self, signature_dir: str, output_dir: str, indices: list[int], keep_first: bool = True,
                 record_dir: str | None = None) -> None:
        super().__init__()
        self.signature_dir, self.output_dir, self.indices = signature_dir, output_dir, indices
        self.keep_first, self.record_dir = keep_first, record_dir

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        Path(self.output_dir).mkdir(parents=True, exist_ok=True)
        indices = [i for i in self.indices if input_file(self.signature_dir, i, ".count.json").is_file()]
        tables = [np.load(input_file(self.signature_dir, i, f".b{rank:03d}.npy"), allow_pickle=False)
                  for i in indices]  # inputs without signatures: failed, or no paragraph survived normalisation
        with self.track_time(unit="bucket"):
            masks = resolve_duplicates([table[:, 0] for table in tables], self.keep_first)
        self.stat_update("paragraphs", value=sum(len(table) for table in tables))
        self.stat_update("duplicates", value=sum(int((~mask).sum()) for mask in masks))
        for index, table, mask in zip(indices, tables, masks):
            _atomic_npy(input_file(self.output_dir, index, f".b{rank:03d}.npy"), np.sort(table[~mask, 1]))
        return
        yield


class DedupFilter(_Stage):
    """Dedup, stage 3 of 3 (stage 3 of the builder): drops the paragraphs that `FindDuplicates` marked, by position;
    a document left empty is dropped. Checks that each input still has the paragraph count it had when hashed."""

    name = "dedup filter"

    def __init__(self, signature_dir: str | None = None, duplicates_dir: str | None = None, buckets: int = 1,
                 record_dir: str | None = None) -> None:
        super().__init__()
        self.signature_dir, self.duplicates_dir, self.buckets = signature_dir, duplicates_dir, buckets
        self.record_dir = record_dir

    def _removed(self, index: int) -> tuple[set[int], int]:
        removed: set[int] = set()
        for bucket in range(self.buckets):
            removed.update(np.load(input_file(self.duplicates_dir, index, f".b{bucket:03d}.npy"),
                                   allow_pickle=False).tolist())
        count = json.loads(input_file(self.signature_dir, index, ".count.json").read_text(encoding="utf-8"))
        return removed, count["paragraphs"]

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self.signature_dir is None:  # dedup off: the stage counts what passes
            for doc in data:
                n = doc.text.count("\n") + 1
                self.count(1, n, 1, n)
                yield doc
            return
        current, removed, expected, seen = None, set(), 0, 0
        for doc in data:
            if doc.metadata["input"] != current:
                self._check(current, expected, seen)
                current, seen = doc.metadata["input"], 0
                removed, expected = self._removed(current)
            paragraphs = doc.text.split("\n")
            start = doc.metadata["position"]
            seen = start + len(paragraphs)
            kept = [p for offset, p in enumerate(paragraphs) if start + offset not in removed]
            self.count(1, len(paragraphs), 1 if kept else 0, len(kept))
            if kept:
                doc.text = "\n".join(kept)
                yield doc
        self._check(current, expected, seen)

    def _check(self, index: int | None, expected: int, seen: int) -> None:
        if index is not None and seen != expected and not failed(self.record_dir, index):
            raise CorpusBuildError(f"input {index} changed between hashing ({expected} paragraphs) and filtering "
                                   f"({seen}); delete the build's .work directory and rerun")


class LengthFilter(_Stage):
    """Stage 4: drops paragraphs shorter than ``min_paragraph_chars``, then documents shorter than
    ``min_document_chars`` (``len("\\n".join(paragraphs))``, cc_net's ``min_len``)."""

    name = "length filter"

    def __init__(self, min_paragraph_chars: int = 0, min_document_chars: int = 300) -> None:
        super().__init__()
        self.min_paragraph_chars, self.min_document_chars = min_paragraph_chars, min_document_chars

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            paragraphs = doc.text.split("\n")
            n = len(paragraphs)
            if self.min_paragraph_chars:
                paragraphs = [p for p in paragraphs if len(p) >= self.min_paragraph_chars]
                self.detail("paragraphs_too_short", n - len(paragraphs))
            too_short = bool(paragraphs) and len("\n".join(paragraphs)) < self.min_document_chars
            if too_short:
                self.detail("documents_too_short")
            self.count(1, n, 0 if too_short or not paragraphs else 1, 0 if too_short else len(paragraphs))
            if paragraphs and not too_short:
                doc.text = "\n".join(paragraphs)
                yield doc


class LanguageRouter(_Stage):
    """Stage 5: fastText language ID (``document``: one label for the document; ``paragraph``: one document per
    language, in order of first appearance). Documents below ``threshold`` or in a language outside ``languages``
    are dropped and counted per language. Sets ``language`` and ``lid_score``."""

    name = "language id"

    def __init__(self, model_path: str, line_joiner: str = "", granularity: str = "document",
                 threshold: float = 0.5, languages: list[str] | None = None) -> None:
        super().__init__()
        self.model_path, self.line_joiner, self.granularity = model_path, line_joiner, granularity
        self.threshold, self.languages = threshold, languages
        self._identifier: LanguageIdentifier | None = None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self._identifier is None:
            self._identifier = LanguageIdentifier(self.model_path, self.line_joiner)
        selected = set(self.languages) if self.languages is not None else None
        for doc in data:
            paragraphs = doc.text.split("\n")
            with self.track_time():
                routes = self._identifier.route(paragraphs, self.granularity, self.threshold)
            out = count_routes(routes, selected, self.lang, self.detail)
            self.count(1, len(paragraphs), len(out), sum(len(r.kept) for r in out), added=max(len(out) - 1, 0))
            for n, route in enumerate(out):
                yield Document("\n".join(route.kept), doc.id if n == 0 else f"{doc.id}/{route.language}",
                               metadata={**doc.metadata, "language": route.language,
                                         "lid_score": round(route.score, 4)})


class PerplexityFilter(_Stage):
    """Stage 6: KenLM perplexity of each document (`PerplexityStage`): dropped above ``max_perplexity``, else put in
    its cc_net bucket (head / middle / tail). Without a scorer factory every document passes (the stage is off)."""

    name = "perplexity"

    def __init__(self, factory: ScorerFactory | None = None, max_perplexity: Any = None,
                 cutoffs: dict[str, tuple[float, float]] | None = None) -> None:
        super().__init__()
        self.factory, self.max_perplexity, self.cutoffs = factory, max_perplexity, cutoffs
        self._stage: PerplexityStage | None = None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self.factory is not None and self._stage is None:
            self._stage = PerplexityStage(self.factory, self.max_perplexity, self.cutoffs)
        for doc in data:
            lang, paragraphs = doc.metadata["language"], doc.text.split("\n")
            bucket: str | None = ""
            if self._stage is not None:
                with self.track_time():
                    perplexity, bucket = self._stage.assess(lang, paragraphs)
                doc.metadata["perplexity"] = perplexity
                if perplexity is None:
                    self.detail("documents_unscored")
                if bucket is None:
                    self.count(1, len(paragraphs), 0, 0)
                    self.lang(lang, "perplexity_removed_documents")
                    self.lang(lang, "perplexity_removed_paragraphs", len(paragraphs))
                    continue
            self.count(1, len(paragraphs), 1, len(paragraphs))
            doc.metadata["bucket"] = bucket
            yield doc


class CorpusWriter(_Counting):
    """Writes each input's documents as CC-100 shards (`ShardWriter`: per (bucket, language), xz streams of ~4 MiB)
    into ``<output_dir>/<index>/`` with ``stats.json`` (per-language counts of what was written) and, with
    ``metadata``, ``metadata.jsonl`` (id, url, language, LID score, perplexity, bucket per document). Per input, so the
    merged corpus is the same for any number of tasks. Ends a pipeline."""

    name = "cc-100 writer"
    type = "💽 - WRITER"

    def __init__(self, output_dir: str, compress_preset: int | None = 6, metadata: bool = False,
                 record_dir: str | None = None) -> None:
        super().__init__()
        self.output_dir, self.compress_preset, self.metadata = output_dir, compress_preset, metadata
        self.record_dir = record_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        Path(self.output_dir).mkdir(parents=True, exist_ok=True)
        current: int | None = None
        writer: ShardWriter | None = None
        rows: list[str] = []
        for doc in data:
            if doc.metadata["input"] != current:
                self._finish(current, writer, rows)
                current, rows = doc.metadata["input"], []
                writer = self._start(current)
            lang, paragraphs = doc.metadata["language"], doc.text.split("\n")
            with self.track_time():
                writer.add(doc.metadata.get("bucket", ""), lang, paragraphs)
            self.add(f"lang/{lang}/documents")
            self.add(f"lang/{lang}/paragraphs", len(paragraphs))
            self.add(f"lang/{lang}/characters", sum(map(len, paragraphs)))
            self.add(f"lang/{lang}/bytes", sum(len(p.encode("utf-8")) + 1 for p in paragraphs) + 1)
            if self.metadata:
                rows.append(json.dumps({key: doc.metadata.get(key) for key in ("url", "language", "lid_score",
                                        "perplexity", "bucket")} | {"id": doc.id}, ensure_ascii=False))
        self._finish(current, writer, rows)
        return
        yield

    def _start(self, index: int) -> ShardWriter:
        tmp = Path(self.output_dir) / f"{index:06d}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
        return ShardWriter(tmp, self.compress_preset)

    def _finish(self, index: int | None, writer: ShardWriter | None, rows: list[str]) -> None:
        if index is None or writer is None:
            return
        if failed(self.record_dir, index):  # read only in part (on_error="skip"): nothing of it is written
            shutil.rmtree(writer.directory, ignore_errors=True)
            return
        writer.finish()
        if self.metadata:
            (writer.directory / "metadata.jsonl").write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")
        (writer.directory / "stats.json").write_text(json.dumps({"outputs": writer.counts}), encoding="utf-8")
        final = input_file(self.output_dir, index, "")
        shutil.rmtree(final, ignore_errors=True)  # a rerun of an unfinished task
        os.replace(writer.directory, final)


class CorpusMerge(PipelineStep):
    """The merge job's one step: runs `xlmr_hf.corpus.distributed.MergeJob` (corpus files + ``manifest.json``)."""

    name = "cc-100 merge"
    type = "💽 - WRITER"

    def __init__(self, job: Any) -> None:
        super().__init__()
        self.job = job

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time(unit="build"):
            self.job.merge()
        return
        yield
