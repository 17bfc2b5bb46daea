"""Corpus building, torch-free: readers (plain text, JSONL, WET), Unicode and paragraph normalisation, paragraph dedup,
fastText language ID, the optional KenLM filter, writers of the CC-100 layout, the build report and xz tools; the
builder runs on one machine (`build_corpus`) or as datatrove pipelines on a local pool, Slurm or Ray
(`build_corpus_datatrove`). Importing this package loads neither torch nor transformers. See ``docs/data_pipeline.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .cleaning import STAGES, CorpusBuildConfig, build_corpus
    from .distributed import EXECUTORS, ExecutorSettings, build_corpus_datatrove
    from .lid import (
        LID176_LANGUAGES,
        PERPLEXITY_BUCKETS,
        KenLMScorerFactory,
        LanguageIdentifier,
        MissingDependencyError,
        PerplexityScorer,
        PerplexityStage,
        Route,
        ScorerFactory,
        default_lid_model_path,
    )
    from .readers import (
        INPUT_FORMATS,
        CorpusBuildError,
        CorpusInputError,
        RawDocument,
        ReadStats,
        ShardWriter,
        detect_format,
        merge_shards,
        normalize_for_dedup,
        normalize_paragraph,
        normalized_paragraph_hash,
        read_documents,
        read_jsonl,
        read_text,
        read_wet,
    )
    from .report import CorpusBuildReport, StageCounts
    from .xz import XZContainerError, XZStream, xz_streams

__all__ = [
    "EXECUTORS",
    "INPUT_FORMATS",
    "LID176_LANGUAGES",
    "PERPLEXITY_BUCKETS",
    "STAGES",
    "CorpusBuildConfig",
    "CorpusBuildError",
    "CorpusBuildReport",
    "CorpusInputError",
    "ExecutorSettings",
    "KenLMScorerFactory",
    "LanguageIdentifier",
    "MissingDependencyError",
    "PerplexityScorer",
    "PerplexityStage",
    "RawDocument",
    "ReadStats",
    "Route",
    "ScorerFactory",
    "ShardWriter",
    "StageCounts",
    "XZContainerError",
    "XZStream",
    "build_corpus",
    "build_corpus_datatrove",
    "default_lid_model_path",
    "detect_format",
    "merge_shards",
    "normalize_for_dedup",
    "normalize_paragraph",
    "normalized_paragraph_hash",
    "read_documents",
    "read_jsonl",
    "read_text",
    "read_wet",
    "xz_streams",
]

_SOURCES: dict[str, str] = {
    **dict.fromkeys(("STAGES", "CorpusBuildConfig", "build_corpus"), "cleaning"),
    **dict.fromkeys(("EXECUTORS", "ExecutorSettings", "build_corpus_datatrove"), "distributed"),
    **dict.fromkeys((
        "LID176_LANGUAGES", "PERPLEXITY_BUCKETS", "KenLMScorerFactory", "LanguageIdentifier", "MissingDependencyError",
        "PerplexityScorer", "PerplexityStage", "Route", "ScorerFactory", "default_lid_model_path",
    ), "lid"),
    **dict.fromkeys((
        "INPUT_FORMATS", "CorpusBuildError", "CorpusInputError", "RawDocument", "ReadStats", "ShardWriter",
        "detect_format", "merge_shards", "normalize_for_dedup", "normalize_paragraph", "normalized_paragraph_hash",
        "read_documents", "read_jsonl", "read_text", "read_wet",
    ), "readers"),
    **dict.fromkeys(("CorpusBuildReport", "StageCounts"), "report"),
    **dict.fromkeys(("XZContainerError", "XZStream", "xz_streams"), "xz"),
}
"""Public name -> the module of this package that defines it."""

__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES, __all__)
