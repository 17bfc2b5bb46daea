"""Tokenizer training for XLM-R: SentencePiece unigram on α-sampled multilingual text, saved as a fast tokenizer with
fairseq's ids (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, pieces, ``<mask>`` last), vocabulary extension that
keeps every old id (`extend_tokenizer`), plus word-start information for whole-word masking and per-language
fertility statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# The names below are imported from their modules on first use (PEP 562): importing this package, or one
# module of it, loads no optional dependency (`datasets`, `pyarrow`, ...) that the module does not need.
if TYPE_CHECKING:
    from .corpus import (
        SAMPLE_UNITS,
        CorpusError,
        LanguageSample,
        allocate_budget,
        alpha_probabilities,
        count_sentences,
        discover_corpus,
        iter_lines,
        sample_corpus,
        unit_size,
    )
    from .extend import (
        EXTENSION_SUMMARY,
        MASK_PIECE,
        TokenizerExtensionError,
        TokenizerExtensionResult,
        check_extension,
        extend_sentencepiece_model,
        extend_tokenizer,
        extend_tokenizer_json,
    )
    from .stats import LanguageTokenStats, tokenizer_statistics
    from .training import (
        SPECIAL_TOKENS,
        TokenizerTrainingConfig,
        TokenizerTrainingError,
        TokenizerTrainingResult,
        build_xlmr_tokenizer,
        required_characters,
        train_tokenizer,
    )
    from .words import (
        SCRIPTIO_CONTINUA_RANGES,
        is_scriptio_continua,
        scriptio_continua_fraction,
        word_ids,
        word_start_mask,
    )

__all__ = [
    "EXTENSION_SUMMARY",
    "MASK_PIECE",
    "SAMPLE_UNITS",
    "SCRIPTIO_CONTINUA_RANGES",
    "SPECIAL_TOKENS",
    "CorpusError",
    "LanguageSample",
    "LanguageTokenStats",
    "TokenizerExtensionError",
    "TokenizerExtensionResult",
    "TokenizerTrainingConfig",
    "TokenizerTrainingError",
    "TokenizerTrainingResult",
    "allocate_budget",
    "alpha_probabilities",
    "build_xlmr_tokenizer",
    "check_extension",
    "count_sentences",
    "discover_corpus",
    "extend_sentencepiece_model",
    "extend_tokenizer",
    "extend_tokenizer_json",
    "is_scriptio_continua",
    "iter_lines",
    "required_characters",
    "sample_corpus",
    "scriptio_continua_fraction",
    "tokenizer_statistics",
    "train_tokenizer",
    "unit_size",
    "word_ids",
    "word_start_mask",
]

_SOURCES: dict[str, str] = {
    **dict.fromkeys((
        "SAMPLE_UNITS", "CorpusError", "LanguageSample", "allocate_budget", "alpha_probabilities", "count_sentences",
        "discover_corpus", "iter_lines", "sample_corpus", "unit_size",
    ), "corpus"),
    **dict.fromkeys((
        "EXTENSION_SUMMARY", "MASK_PIECE", "TokenizerExtensionError", "TokenizerExtensionResult", "check_extension",
        "extend_sentencepiece_model", "extend_tokenizer", "extend_tokenizer_json",
    ), "extend"),
    **dict.fromkeys(("LanguageTokenStats", "tokenizer_statistics"), "stats"),
    **dict.fromkeys((
        "SPECIAL_TOKENS", "TokenizerTrainingConfig", "TokenizerTrainingError", "TokenizerTrainingResult",
        "build_xlmr_tokenizer", "required_characters", "train_tokenizer",
    ), "training"),
    **dict.fromkeys((
        "SCRIPTIO_CONTINUA_RANGES", "is_scriptio_continua", "scriptio_continua_fraction", "word_ids",
        "word_start_mask",
    ), "words"),
}
"""Public name -> the module of this package that defines it."""


__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES, __all__)
