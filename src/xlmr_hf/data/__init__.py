"""Data: the CC-100 reader (a `datasets` builder inside the package), the embedded default corpus, pre-tokenized
corpora, and the pretraining stream with its parts: the resumable document reader, the temperature language sampler,
block planning, the packer and the masker (the sampler and the masker share one token schedule). The offline corpus
tools live in the torch-free `xlmr_hf.corpus`; their names are re-exported here. See ``docs/data_pipeline.md``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# The names below are imported from their modules on first use (PEP 562): importing this package, or one
# module of it, loads no optional dependency (`datasets`, `pyarrow`, ...) that the module does not need.
if TYPE_CHECKING:
    from .blocks import BlockPlan, DocumentRun, LanguageBlocks
    from .cc100 import (
        CC100_LANGUAGES,
        CC100_URL_TEMPLATE,
        CC100Builder,
        CC100Config,
        CC100Error,
        CC100ReadError,
        LanguageStatistics,
        ReadReport,
        cc100_files,
        cc100_statistics,
        iter_cc100_documents,
        load_cc100,
    )
    from ..corpus.cleaning import (
        STAGES,
        CorpusBuildConfig,
        CorpusBuildError,
        CorpusBuildReport,
        CorpusInputError,
        StageCounts,
        build_corpus,
        normalize_for_dedup,
        normalize_paragraph,
        normalized_paragraph_hash,
    )
    from .default_corpus import (
        DEFAULT_CORPUS_LANGUAGES,
        default_codeswitch_dir,
        default_corpus_dir,
        default_corpus_manifest,
        default_heldout_dir,
        parallel_sentences,
        xnli_sample_dir,
    )
    from .docreader import (
        DOCUMENT_READER_STATE_VERSION,
        DocumentReader,
        XZContainerError,
        XZStream,
        xz_streams,
    )
    from ..corpus.lid import (
        LID176_LANGUAGES,
        KenLMScorerFactory,
        LanguageIdentifier,
        MissingDependencyError,
        PerplexityScorer,
        default_lid_model_path,
    )
    from .masking import (
        MASK_SCHEDULE_TYPES,
        MASKING_MODES,
        Masker,
        MaskingError,
        MaskRateSchedule,
        collate_tlm,
        tlm_example,
    )
    from .packing import (
        BOUNDARY_MODES,
        PACKING_MODES,
        Block,
        Packer,
        PackingError,
        collate_blocks,
    )
    from ..corpus.readers import (
        INPUT_FORMATS,
        RawDocument,
        read_documents,
        read_jsonl,
        read_text,
        read_wet,
    )
    from .sampling import (
        SAMPLER_UNITS,
        SCHEDULE_TYPES,
        SamplerError,
        SamplerExhaustedError,
        TemperatureSampler,
        temperature_probabilities,
    )
    from .parallel import (
        PARALLEL_SUFFIXES,
        TLM_MASK_INDEX_OFFSET,
        ParallelCorpus,
        ParallelCorpusError,
        TLMBatches,
        read_parallel_corpus,
        write_parallel_corpus,
    )
    from .schedules import (
        TOKEN_SCHEDULE_TYPES,
        ScheduleError,
        ScheduleRules,
        TokenSchedule,
    )
    from .stream import (
        OnlineSource,
        PretrainingStream,
        StreamError,
        TokenEncoder,
        load_stream_tokenizer,
    )
    from .tokenized import (
        TokenizedCorpusError,
        TokenizedSource,
        is_tokenized_corpus,
        read_manifest,
        tokenize_corpus,
        tokenizer_fingerprint,
    )

__all__ = [
    "BOUNDARY_MODES",
    "CC100_LANGUAGES",
    "CC100_URL_TEMPLATE",
    "DEFAULT_CORPUS_LANGUAGES",
    "DOCUMENT_READER_STATE_VERSION",
    "INPUT_FORMATS",
    "LID176_LANGUAGES",
    "MASKING_MODES",
    "MASK_SCHEDULE_TYPES",
    "PACKING_MODES",
    "SAMPLER_UNITS",
    "SCHEDULE_TYPES",
    "STAGES",
    "TOKEN_SCHEDULE_TYPES",
    "PARALLEL_SUFFIXES",
    "TLM_MASK_INDEX_OFFSET",
    "ParallelCorpus",
    "ParallelCorpusError",
    "TLMBatches",
    "read_parallel_corpus",
    "write_parallel_corpus",
    "Block",
    "BlockPlan",
    "CC100Builder",
    "CC100Config",
    "CC100Error",
    "CC100ReadError",
    "CorpusBuildConfig",
    "CorpusBuildError",
    "CorpusBuildReport",
    "CorpusInputError",
    "DocumentReader",
    "DocumentRun",
    "KenLMScorerFactory",
    "LanguageBlocks",
    "LanguageIdentifier",
    "LanguageStatistics",
    "MaskRateSchedule",
    "Masker",
    "MaskingError",
    "MissingDependencyError",
    "OnlineSource",
    "Packer",
    "PackingError",
    "PerplexityScorer",
    "PretrainingStream",
    "RawDocument",
    "ReadReport",
    "SamplerError",
    "SamplerExhaustedError",
    "ScheduleError",
    "ScheduleRules",
    "StageCounts",
    "StreamError",
    "TemperatureSampler",
    "TokenEncoder",
    "TokenSchedule",
    "TokenizedCorpusError",
    "TokenizedSource",
    "XZContainerError",
    "XZStream",
    "build_corpus",
    "cc100_files",
    "cc100_statistics",
    "collate_blocks",
    "collate_tlm",
    "default_corpus_dir",
    "default_corpus_manifest",
    "default_codeswitch_dir",
    "default_heldout_dir",
    "default_lid_model_path",
    "is_tokenized_corpus",
    "iter_cc100_documents",
    "load_cc100",
    "load_stream_tokenizer",
    "normalize_for_dedup",
    "normalize_paragraph",
    "normalized_paragraph_hash",
    "parallel_sentences",
    "read_documents",
    "read_jsonl",
    "read_manifest",
    "read_text",
    "read_wet",
    "temperature_probabilities",
    "tlm_example",
    "tokenize_corpus",
    "tokenizer_fingerprint",
    "xnli_sample_dir",
    "xz_streams",
]

_SOURCES: dict[str, str] = {
    **dict.fromkeys(("BlockPlan", "DocumentRun", "LanguageBlocks"), "blocks"),
    **dict.fromkeys((
        "CC100_LANGUAGES", "CC100_URL_TEMPLATE", "CC100Builder", "CC100Config", "CC100Error", "CC100ReadError",
        "LanguageStatistics", "ReadReport", "cc100_files", "cc100_statistics", "iter_cc100_documents", "load_cc100",
    ), "cc100"),
    **dict.fromkeys((
        "STAGES", "CorpusBuildConfig", "CorpusBuildError", "CorpusBuildReport", "CorpusInputError", "StageCounts",
        "build_corpus", "normalize_for_dedup", "normalize_paragraph", "normalized_paragraph_hash",
    ), ".corpus.cleaning"),
    **dict.fromkeys((
        "DEFAULT_CORPUS_LANGUAGES", "default_codeswitch_dir", "default_corpus_dir", "default_corpus_manifest",
        "default_heldout_dir", "parallel_sentences", "xnli_sample_dir",
    ), "default_corpus"),
    **dict.fromkeys((
        "DOCUMENT_READER_STATE_VERSION", "DocumentReader", "XZContainerError", "XZStream", "xz_streams",
    ), "docreader"),
    **dict.fromkeys((
        "LID176_LANGUAGES", "KenLMScorerFactory", "LanguageIdentifier", "MissingDependencyError", "PerplexityScorer",
        "default_lid_model_path",
    ), ".corpus.lid"),
    **dict.fromkeys((
        "MASKING_MODES", "MASK_SCHEDULE_TYPES", "MaskRateSchedule", "Masker", "MaskingError", "collate_tlm",
        "tlm_example",
    ), "masking"),
    **dict.fromkeys((
        "BOUNDARY_MODES", "PACKING_MODES", "Block", "Packer", "PackingError", "collate_blocks",
    ), "packing"),
    **dict.fromkeys((
        "INPUT_FORMATS", "RawDocument", "read_documents", "read_jsonl", "read_text", "read_wet",
    ), ".corpus.readers"),
    **dict.fromkeys((
        "SAMPLER_UNITS", "SCHEDULE_TYPES", "SamplerError", "SamplerExhaustedError", "TemperatureSampler",
        "temperature_probabilities",
    ), "sampling"),
    **dict.fromkeys(("TOKEN_SCHEDULE_TYPES", "ScheduleError", "ScheduleRules", "TokenSchedule"), "schedules"),
    **dict.fromkeys(("PARALLEL_SUFFIXES", "TLM_MASK_INDEX_OFFSET", "ParallelCorpus", "ParallelCorpusError", "TLMBatches",
                     "read_parallel_corpus", "write_parallel_corpus"), "parallel"),
    **dict.fromkeys((
        "OnlineSource", "PretrainingStream", "StreamError", "TokenEncoder", "load_stream_tokenizer",
    ), "stream"),
    **dict.fromkeys((
        "TokenizedCorpusError", "TokenizedSource", "is_tokenized_corpus", "read_manifest", "tokenize_corpus",
        "tokenizer_fingerprint",
    ), "tokenized"),
}
"""Public name -> the module of this package that defines it."""


__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES, __all__)
