"""The corpus builder on datatrove executors: `build_corpus_datatrove` runs the stages of `xlmr_hf.corpus.pipeline` as
four datatrove jobs — dedup signatures, duplicate finding, filtering, merge — on a local pool, Slurm or Ray. The corpus
bytes do not depend on the executor, the number of tasks or workers; see ``docs/data_pipeline.md``."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cleaning import STAGES, CorpusBuildConfig
from .common import (
    InputFile,
    check_output_dir,
    digest,
    language_identifier,
    lid_info,
    perplexity_setup,
    remove_stale_outputs,
    resolve_inputs,
    write_manifest,
)
from .lid import ScorerFactory
from .readers import CorpusBuildError, merge_shards
from .report import LANGUAGE_KEYS, CorpusBuildReport, StageCounts

__all__ = ["EXECUTORS", "ExecutorSettings", "MergeJob", "build_corpus_datatrove"]

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "slurm", "ray")
_WORK_VERSION = 1
_STAGE_STEPS = {"unicode_normalization": "unicode normalization", "paragraph_normalization": "paragraph normalization",
                "dedup": "dedup filter", "min_length": "length filter", "language_id": "language id",
                "perplexity": "perplexity"}
"""Builder stage (`STAGES`) -> the name of the pipeline step that counts it."""


@dataclass
class ExecutorSettings:
    """Where and how the four jobs run. Validated by `build_corpus_datatrove`."""

    executor: str = "local"
    """``local`` (a process pool on this machine), ``slurm`` (sbatch job arrays) or ``ray`` (a Ray cluster)."""
    tasks: int | None = None
    """Tasks of the reading jobs (signatures, filtering); input files are spread over them round-robin (never more
    tasks than files). Default: local, one per worker; slurm and ray, one per input file."""
    workers: int | None = None
    """Tasks run at once: local, processes (default 1); slurm and ray, at most this many at once (default -1: no
    limit)."""
    dedup_tasks: int = 1
    """Hash buckets of the duplicate-finding job (one task each): more spreads its memory over machines."""
    metadata: bool = False
    """Also write ``metadata.jsonl`` (per document: id, url, language, LID score, perplexity, bucket)."""
    slurm_partition: str | None = None
    """Slurm: the partition (required for ``slurm``)."""
    slurm_time: str = "24:00:00"
    """Slurm: the time limit of each task."""
    slurm_cpus_per_task: int = 1
    """Slurm: CPUs per task."""
    slurm_mem_per_cpu_gb: int = 2
    """Slurm: memory per CPU."""
    slurm_sbatch_args: dict[str, str] = field(default_factory=dict)
    """Slurm: more ``#SBATCH`` directives (``account``, ``qos``, ...)."""
    slurm_env_command: str | None = None
    """Slurm: a command run before each task (e.g. ``source .venv/bin/activate``)."""
    dry_run: bool = False
    """Slurm: write the job scripts (``<work>/logs/<job>/launch_script.slurm``) without submitting them."""

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise CorpusBuildError(f"executor={self.executor!r} is invalid; allowed: {', '.join(EXECUTORS)}")
        if self.workers is None:
            self.workers = 1 if self.executor == "local" else -1
        for name in ("tasks", "dedup_tasks"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise CorpusBuildError(f"{name}={value!r} is invalid; allowed: an integer >= 1")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or (self.workers < 1
                                                                                   and self.workers != -1):
            raise CorpusBuildError(f"workers={self.workers!r} is invalid; allowed: an integer >= 1, or -1 (all tasks)")
        if self.executor == "slurm" and not self.slurm_partition:
            raise CorpusBuildError("slurm_partition=None is invalid with executor='slurm'; allowed: a partition name "
                                   "(--slurm_partition NAME)")
        if self.dry_run and self.executor != "slurm":
            raise CorpusBuildError(f"dry_run=True is only for executor='slurm' (got executor={self.executor!r})")


def _stage_dirs(work: Path) -> dict[str, str]:
    return {name: str(work / name) for name in ("signatures", "duplicates", "records", "signature_records",
                                                "filtered", "logs")}


def _pipelines(specs: list[InputFile], config: CorpusBuildConfig, settings: ExecutorSettings, work: Path,
               lid_path: str, factory: ScorerFactory | None, cutoffs: Any) -> dict[str, list]:
    """The four jobs' pipelines (job name -> steps), in order; dedup jobs only with ``config.dedup``."""
    from . import pipeline as p  # datatrove is imported here, not when the package is

    dirs = _stage_dirs(work)
    inputs = [{"index": s.index, "path": str(s.path), "format": s.format} for s in specs]

    def reader(record_dir: str, failed_in: str | None = None) -> list:
        return [p.CorpusReader(inputs, config.jsonl_text_field, config.wet_keep_title, config.on_error, record_dir,
                               failed_in), p.UnicodeNormalizer(config.normalization), p.ParagraphNormalizer()]

    jobs: dict[str, list] = {}
    if config.dedup:
        jobs["signatures"] = [*reader(dirs["signature_records"]),
                              p.DedupSignatures(dirs["signatures"], settings.dedup_tasks, dirs["signature_records"])]
        jobs["duplicates"] = [p.FindDuplicates(dirs["signatures"], dirs["duplicates"], [s.index for s in specs],
                                               config.dedup_keep_first, dirs["signature_records"])]
    dedup = (p.DedupFilter(dirs["signatures"], dirs["duplicates"], settings.dedup_tasks, dirs["records"])
             if config.dedup else p.DedupFilter())
    jobs["filter"] = [
        *reader(dirs["records"], dirs["signature_records"] if config.dedup else None), dedup,
        p.LengthFilter(config.min_paragraph_chars, config.min_document_chars),
        p.LanguageRouter(lid_path, config.line_joiner, config.lid_granularity, config.lid_threshold,
                         list(config.languages) if config.languages is not None else None),
        p.PerplexityFilter(factory, config.max_perplexity, cutoffs),
        p.CorpusWriter(dirs["filtered"], config.compress_preset, settings.metadata, dirs["records"]),
    ]
    return jobs


def _tasks(job: str, settings: ExecutorSettings, n_inputs: int) -> int:
    if job == "duplicates":
        return settings.dedup_tasks
    if job == "merge":
        return 1
    if settings.tasks is None:
        local = settings.executor == "local" and settings.workers != -1
        return max(1, min(settings.workers, n_inputs)) if local else n_inputs
    return max(1, min(settings.tasks, n_inputs))


def _executor(job: str, steps: list, tasks: int, settings: ExecutorSettings, logs: Path, depends: Any) -> Any:
    workers = tasks if settings.workers == -1 else min(settings.workers, tasks)
    common = {"tasks": tasks, "logging_dir": str(logs / job), "depends": depends}
    if settings.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(steps, workers=workers, start_method="forkserver", **common)
    if settings.executor == "ray":
        try:
            import ray  # noqa: F401
            from datatrove.executor.ray import RayPipelineExecutor
        except ImportError as error:
            raise CorpusBuildError(f"executor='ray' needs Ray: pip install 'datatrove[ray]' ({error})") from None
        return RayPipelineExecutor(steps, workers=workers, cpus_per_task=1, **common)
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(
        steps, time=settings.slurm_time, partition=settings.slurm_partition, workers=workers,
        cpus_per_task=settings.slurm_cpus_per_task, mem_per_cpu_gb=settings.slurm_mem_per_cpu_gb,
        job_name=f"xlmr-hf-corpus-{job}", sbatch_args=dict(settings.slurm_sbatch_args),
        env_command=settings.slurm_env_command, slurm_logs_folder=str(logs / job / "slurm_logs"), **common)


@contextlib.contextmanager
def _dry_run(enabled: bool) -> Iterator[list[str]]:
    """With ``enabled``, datatrove's ``sbatch`` call is replaced by one that only records the script (a dry run)."""
    scripts: list[str] = []
    if not enabled:
        yield scripts
        return
    from datatrove.executor import slurm

    original = slurm.launch_slurm_job

    def record(contents: str, job_id_retriever: Any, *args: str) -> str:
        scripts.append(contents)
        return f"dry-run-{len(scripts)}"

    slurm.launch_slurm_job = record
    try:
        yield scripts
    finally:
        slurm.launch_slurm_job = original


def build_corpus_datatrove(
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    config: CorpusBuildConfig | None = None,
    settings: ExecutorSettings | None = None,
    *,
    scorer_factory: ScorerFactory | None = None,
    overwrite: bool = False,
) -> CorpusBuildReport | None:
    """Build a CC-100-format corpus from ``inputs`` into ``output_dir`` as datatrove jobs (`ExecutorSettings`).

    The same inputs and `CorpusBuildConfig` give the same corpus files as `xlmr_hf.corpus.build_corpus`, for any
    executor, tasks and workers. Work lives in ``output_dir/.work-datatrove/<key>/`` (key: the inputs and settings);
    a rerun skips the tasks datatrove marked complete. Local and Ray runs return the report (also
    ``manifest.json``); Slurm returns None once the jobs are submitted — the merge job writes the manifest.
    """
    config = config if config is not None else CorpusBuildConfig()
    settings = settings if settings is not None else ExecutorSettings()
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite)
    specs = resolve_inputs(inputs, config.input_format, output_dir)
    identifier = language_identifier(config)
    factory, cutoffs, fingerprint = perplexity_setup(config, scorer_factory)
    key = digest({"v": _WORK_VERSION, "settings": {k: v for k, v in config.to_dict().items() if k != "workers"},
                  "lid": identifier.sha256, "scorer": fingerprint, "cutoffs": cutoffs,
                  "dedup_tasks": settings.dedup_tasks, "metadata": settings.metadata,
                  "unicode": unicodedata.unidata_version,
                  "inputs": [(str(s.path.resolve()), s.size, s.mtime_ns, s.format) for s in specs]})
    work = output_dir / ".work-datatrove" / key
    for stale in (output_dir / ".work-datatrove").glob("*"):
        if stale.name != key:
            shutil.rmtree(stale, ignore_errors=True)
    jobs = _pipelines(specs, config, settings, work, str(identifier.model_path), factory, cutoffs)
    from .pipeline import CorpusMerge

    jobs["merge"] = [CorpusMerge(MergeJob(str(output_dir), str(work), config.to_dict(), config.enabled_stages(),
                                          lid_info(identifier, config),
                                          [_spec_dict(s) for s in specs], config.compress_preset, settings.executor,
                                          time.time()))]
    executor = None
    with _dry_run(settings.dry_run) as scripts:
        for job, steps in jobs.items():
            executor = _executor(job, steps, _tasks(job, settings, len(specs)), settings, work / "logs", executor)
        executor.run()
    if settings.executor == "slurm":
        logger.info("submitted %d Slurm job(s)%s; the merge job writes %s", len(jobs),
                    f" (dry run: {len(scripts)} script(s) written, none submitted)" if settings.dry_run else "",
                    output_dir / "manifest.json")
        return None
    return CorpusBuildReport.from_dict(json.loads((output_dir / "manifest.json").read_text(encoding="utf-8")))


def _spec_dict(spec: InputFile) -> dict[str, Any]:
    return {"index": spec.index, "path": str(spec.path), "format": spec.format, "compression": spec.compression,
            "size": spec.size}


def _step_stats(logs: Path) -> dict[str, dict[str, float]]:
    """Per step of the filtering job, its stats summed over every task's ``stats/<rank>.json`` (datatrove writes one
    per finished task, so a rerun that skipped finished tasks still counts them)."""
    totals: dict[str, dict[str, float]] = {}
    for path in sorted(logs.glob("filter/stats/*.json")):
        for step in json.loads(path.read_text(encoding="utf-8")):
            name = step["name"].split(": ", 1)[-1]
            bucket = totals.setdefault(name, {})
            for label, value in step["stats"].items():
                bucket[label] = bucket.get(label, 0) + (value["total"] if isinstance(value, dict) else value)
    return totals


class MergeJob:
    """The merge job: per-input shards merged in input order into the corpus files, and ``manifest.json`` built
    from the records of the reader, the writers' counts and the datatrove stats of the filtering job. Run by the
    `xlmr_hf.corpus.pipeline.CorpusMerge` step; plain data, so that it travels to any executor."""

    def __init__(self, output_dir: str, work: str, settings: dict[str, Any], enabled: dict[str, bool],
                 lid: dict[str, Any], inputs: list[dict[str, Any]], preset: int | None, executor: str,
                 started: float) -> None:
        self.output_dir, self.work, self.settings, self.enabled, self.lid = output_dir, work, settings, enabled, lid
        self.inputs, self.preset, self.executor, self.started = inputs, preset, executor, started

    def merge(self) -> None:
        output_dir, work = Path(self.output_dir), Path(self.work)
        records = {spec["index"]: json.loads((work / "records" / f"{spec['index']:06d}.json").read_text("utf-8"))
                   for spec in self.inputs}
        shards = []
        for spec in self.inputs:
            directory = work / "filtered" / f"{spec['index']:06d}"
            if records[spec["index"]]["status"] == "done" and directory.is_dir():
                stats = json.loads((directory / "stats.json").read_text(encoding="utf-8"))
                shards.append((directory, stats["outputs"], spec["index"]))
        outputs = merge_shards(output_dir, [(d, counts) for d, counts, _ in shards], self.preset)
        remove_stale_outputs(output_dir, outputs)
        if any((d / "metadata.jsonl").is_file() for d, _, _ in shards):
            with open(output_dir / "metadata.jsonl", "wb") as sink:
                for directory, _, _ in shards:
                    sink.write((directory / "metadata.jsonl").read_bytes())
        report = self._report(records, {i: counts for _, counts, i in shards}, outputs, _step_stats(work / "logs"))
        write_manifest(output_dir, report)

    def _report(self, records: dict[int, dict], written: dict[int, dict], outputs: list[dict[str, Any]],
                steps: dict[str, dict[str, float]]) -> CorpusBuildReport:
        stages = []
        for name in STAGES:
            counts = steps.get(_STAGE_STEPS[name], {})
            row = {key: int(counts.get(key, 0)) for key in ("documents_in", "paragraphs_in", "documents_out",
                                                             "paragraphs_out", "documents_added")}
            row["documents_removed"] = row["documents_in"] + row["documents_added"] - row["documents_out"]
            row["paragraphs_removed"] = row["paragraphs_in"] - row["paragraphs_out"]
            row["details"] = {k.split("/", 1)[1]: int(v) for k, v in counts.items() if k.startswith("detail/")}
            stage = StageCounts(name, self.enabled[name])
            stage.add(row)
            stages.append(stage)
        languages: dict[str, dict[str, Any]] = {}
        for step in steps.values():
            for label, value in step.items():
                if label.startswith("lang/"):
                    _, lang, key = label.split("/", 2)
                    languages.setdefault(lang, dict.fromkeys(LANGUAGE_KEYS, 0))[key] += int(value)
        for lang, counts in languages.items():
            counts["buckets"] = {o["bucket"]: o["documents"] for o in outputs if o["language"] == lang and o["bucket"]}
        inputs = []
        for spec in self.inputs:
            record, out = records[spec["index"]], written.get(spec["index"], {})
            inputs.append({**spec, "status": record["status"], "error": record["error"], "hashes_reused": False,
                           "documents": record["documents"], "paragraphs": record["paragraphs"],
                           "documents_out": sum(c["documents"] for c in out.values()),
                           "paragraphs_out": sum(c["paragraphs"] for c in out.values()), "read": record["read"]})
        environment = {"python": sys.version.split()[0], "unicodedata": unicodedata.unidata_version,
                       "xlmr_hf": _version("xlmr-hf"), "datatrove": _version("datatrove"), "executor": self.executor,
                       "dedup_hash": "blake2b-64 of normalize_for_dedup (lower, Nd->0, P*/Cc/Cf removed, spaces "
                                     "collapsed)"}
        elapsed = round(time.time() - self.started, 3)
        return CorpusBuildReport(self.output_dir, {**self.settings, "lid_model": self.lid["path"]}, self.lid, stages,
                                 dict(sorted(languages.items())), inputs, outputs, environment, elapsed)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
