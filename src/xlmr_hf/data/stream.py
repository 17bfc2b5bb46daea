"""The pretraining stream: per-language blocks (read and tokenized online, or pre-tokenized) → a language drawn per
block → shuffle windows → masked batches, optionally interleaved with translation-LM batches from a parallel corpus.

`PretrainingStream` is the only place the data pieces meet: every rank and worker plans the same global order of
blocks and materializes only its own, so batches do not depend on the number of DataLoader workers or ranks, and a
few-KB JSON state resumes exactly. `TokenEncoder` uses SentencePiece directly when the tokenizer's files allow it.
See ``docs/data_pipeline.md`` ("The pretraining stream") for the order, the process layout and resume.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .blocks import BlockPlan, DocumentRun, LanguageBlocks
from .cc100 import cc100_files, cc100_statistics
from .docreader import DocumentReader
from .masking import Masker
from .packing import PACKING_MODES, Block, collate_blocks
from .parallel import TLMBatches, read_parallel_corpus
from .sampling import SAMPLER_UNITS, SamplerExhaustedError, TemperatureSampler
from .tokenized import (
    TokenizedSource,
    block_table_name,
    is_tokenized_corpus,
    read_manifest,
    tokenizer_fingerprint,
)

__all__ = ["OnlineSource", "PretrainingStream", "StreamError", "TokenEncoder", "load_stream_tokenizer"]

logger = logging.getLogger(__name__)

_STATE_VERSION = 2
_SHUFFLE_TAG = 0x5B10C  # the block shuffle never shares a random stream with the masking
_SPM_FILE = "sentencepiece.bpe.model"
_PAD_SPM_CHECK = 256  # pieces compared between SentencePiece and the HF tokenizer before trusting the fast path


class StreamError(ValueError):
    """Invalid stream configuration or state; the message names the field, the value and what is allowed."""


def load_stream_tokenizer(tokenizer: Any) -> Any:
    """An HF tokenizer from a tokenizer object, a local directory or a Hub id (``AutoTokenizer.from_pretrained``)."""
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(os.fspath(tokenizer))
        except (OSError, ValueError) as error:
            raise StreamError(f"tokenizer={os.fspath(tokenizer)!r} could not be loaded as a tokenizer directory or "
                              f"Hub id: {error}") from None
    if not hasattr(tokenizer, "convert_ids_to_tokens") or not hasattr(tokenizer, "all_special_ids"):
        raise StreamError(f"tokenizer must be a transformers tokenizer, a directory or a Hub id, got "
                          f"{type(tokenizer).__name__}")
    return tokenizer


def _spm_path(tokenizer: Any) -> Path | None:
    for candidate in (getattr(tokenizer, "vocab_file", None),
                      Path(str(getattr(tokenizer, "name_or_path", "") or "")) / _SPM_FILE):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


class TokenEncoder:
    """Paragraphs → model ids without special tokens: SentencePiece directly (fairseq layout) or the HF tokenizer.

    The fast path is taken when the tokenizer's ``sentencepiece.bpe.model`` is found and its pieces sit at the fairseq
    ids (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, piece ``i`` at ``i + 1``): the first pieces are compared with
    the HF tokenizer's tokens. Both paths give the same ids as ``tokenizer(text, add_special_tokens=False)``."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.processor = None
        self.table: np.ndarray | None = None
        path = _spm_path(tokenizer)
        if path is not None:
            import sentencepiece as spm

            processor = spm.SentencePieceProcessor(model_file=str(path))
            size = processor.get_piece_size()
            pieces = [processor.id_to_piece(i) for i in range(3, min(size, _PAD_SPM_CHECK))]
            theirs = tokenizer.convert_ids_to_tokens(list(range(4, 4 + len(pieces))))
            if size + 1 <= len(tokenizer) and pieces == theirs and tokenizer.unk_token_id == 3:
                table = np.arange(1, size + 1, dtype=np.int64)
                table[0], table[1], table[2] = 3, 0, 2  # <unk>, <s>, </s> to fairseq's ids
                self.processor, self.table = processor, table
            else:
                logger.info("%s does not follow the fairseq id layout of the tokenizer; using the HF tokenizer", path)

    @property
    def fast(self) -> bool:
        """Whether SentencePiece is used directly."""
        return self.processor is not None

    def encode(self, paragraphs: list[str]) -> list[np.ndarray]:
        """Model ids of each paragraph (no ``<s>``/``</s>``)."""
        if self.processor is not None:
            return [self.table[np.asarray(ids, dtype=np.int64)] for ids in self.processor.encode(paragraphs)]
        encoded = self.tokenizer(paragraphs, add_special_tokens=False)["input_ids"]
        return [np.asarray(ids, dtype=np.int64) for ids in encoded]

    def __getstate__(self) -> dict[str, Any]:  # SentencePieceProcessor is rebuilt in DataLoader workers
        return {"tokenizer": self.tokenizer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["tokenizer"])


class OnlineSource:
    """One language's CC-100 files, tokenized as they are read (a `xlmr_hf.data.blocks.DocumentSource`; its state is
    the `DocumentReader` position)."""

    def __init__(self, files: Sequence[str], language: str, encoder: TokenEncoder, eos_token_id: int,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.language, self.files, self.encoder, self.eos = language, list(files), encoder, eos_token_id
        self.storage_options = storage_options
        self.seek(None)

    def seek(self, state: Any) -> None:
        self._reader: DocumentReader | None = None
        self._state = state
        self._held: tuple[Any, str, int] | None = None  # the first document of the next epoch, read ahead
        self._epoch: int | None = None

    @property
    def reader(self) -> DocumentReader:
        if self._reader is None:
            self._reader = DocumentReader(self.files, language=self.language, storage_options=self.storage_options)
            if self._state is not None:
                self._reader.load_state_dict(self._state)
        return self._reader

    def _next(self) -> tuple[Any, str, int]:
        if self._held is not None:
            held, self._held = self._held, None
            return held
        before = self.reader.state_dict()
        document = next(self.reader)
        return before, document, self.reader.epoch

    def read(self, min_tokens: int) -> DocumentRun:
        starts, unit_ends, lines, sizes, states, pieces = [0], [], [], [], [], []
        total, last = 0, False
        while total < max(min_tokens, 1):
            before, document, epoch = self._next()
            if self._epoch is not None and epoch != self._epoch:  # the reader wrapped: the epoch ended
                self._held, self._epoch, last = (before, document, epoch), epoch, True
                break
            self._epoch = epoch
            states.append(before)
            paragraphs = document.split("\n")
            for ids in self.encoder.encode(paragraphs):
                if len(ids):
                    pieces.extend((ids, np.array([self.eos], dtype=np.int64)))
                    total += len(ids) + 1
                    unit_ends.append(total)
            starts.append(total)
            lines.append(len(paragraphs))
            sizes.append(len(document.encode("utf-8")) + 2)  # the text plus the blank line that ends it in the file
        states.append(self._held[0] if self._held is not None else self.reader.state_dict())
        return DocumentRun(np.array(starts, dtype=np.int64), np.array(unit_ends, dtype=np.int64),
                           np.array(lines, dtype=np.int64), np.array(sizes, dtype=np.int64), last,
                           np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64), states)


def _positive_int(value: Any, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise StreamError(f"{field} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass
class _Window:
    """Global blocks ``[index · shuffle_blocks, ...)`` in planning order, the planner state before them, and their
    shuffled order."""

    snapshot: dict[str, Any]
    languages: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    clocks: np.ndarray
    payloads: list[Any] | None
    order: np.ndarray


class PretrainingStream(IterableDataset):
    """Deterministic, exactly resumable MLM pretraining batches from CC-100 files or a pre-tokenized corpus (see
    ``docs/data_pipeline.md``, "The pretraining stream").

    Args:
        corpus: a CC-100 directory (``<lang>.txt[.xz]``), a list of such files/URLs, a URL template with ``{lang}``
            (as `xlmr_hf.data.load_cc100`), or a directory written by `xlmr_hf.data.tokenize_corpus` (then only the
            tokens of this process's own blocks are read).
        tokenizer: an HF tokenizer, a tokenizer directory or a Hub id, in the fairseq/XLM-R id layout.
        seq_len: maximum tokens per block (``<s>`` included): 512 in XLM-R.
        batch_size: blocks per batch *per rank*.
        languages: languages to read (default: all in ``corpus``).
        sizes: language → size in ``unit`` for the sampler; default: counted from the corpus (CC-100: the units
            ``lines``, ``bytes`` and ``documents``; a pre-tokenized corpus also ``tokens``).
        unit: the unit of ``sizes`` and of caps (`SAMPLER_UNITS`): ``lines`` (sentences, as the paper) by default.
        alpha, schedule, caps: the `TemperatureSampler` settings; the language of every block is drawn from q.
        seed: seeds the language draws, the block shuffle and the masking.
        shuffle_blocks: blocks per shuffle window (a seeded permutation of each window; 1 disables shuffling).
        packing: ``complete`` (blocks cross documents of the language) or ``complete_doc`` (never).
        padding_free: collate as ``(1, total)`` with ``cu_seqlens`` instead of padded ``(B, L)`` + ``attention_mask``.
        boundaries: padding-free attention segments: ``document`` (documents never attend each other) or ``block``.
        pad_to_seq_len: pad every padded batch to ``seq_len`` (static shapes) instead of its longest block.
        mask_rate: a rate, or a `MaskRateSchedule` / its mapping (by consumed tokens; e.g. mmBERT 0.30 → 0.15 → 0.05).
        masking: ``exact`` (fairseq: ``floor(rate·n + u)`` tokens per block) or ``bernoulli`` (HF collator).
        mask_fraction, random_fraction: of the selected tokens, the share replaced by ``<mask>`` / a random non-special
            id (the rest is kept): 0.8 / 0.1.
        whole_word: mask whole words (word starts from `xlmr_hf.tokenization.word_start_mask`).
        language_ids: language → id: adds per-token ``language_ids`` (models with language embeddings).
        rank, world_size: this process's slice of every global batch.
        model_vocab_size: the model's ``vocab_size``; a larger tokenizer vocabulary is an error.
        return_language_counts: add ``language_token_counts`` (per-language real tokens in the batch, in the order of
            `languages`) and ``stream_clock`` (0-d int64: the schedule clock, see `stream_clock`) to each batch, for
            logging realized shares and the schedules; pop both before calling the model.
        parallel_corpus, tlm_ratio: TLM batches (``docs/data_pipeline.md``, "TLM batches"): ``tlm_ratio`` in [0, 1]
            is the share of global batches that are TLM batches over ``parallel_corpus`` (``"default"`` or a
            directory of ``<l1>-<l2>.tsv[.xz]`` files, `xlmr_hf.data.parallel.read_parallel_corpus`); with 0 (the
            default) the corpus is not read and the batches are the MLM stream's.
        storage_options: fsspec options for remote files.
    """

    def __init__(
        self,
        corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        tokenizer: Any,
        *,
        seq_len: int = 512,
        batch_size: int = 8,
        languages: Sequence[str] | None = None,
        sizes: Mapping[str, float] | None = None,
        unit: str = "lines",
        alpha: float = 0.3,
        schedule: Mapping[str, Any] | None = None,
        caps: float | Mapping[str, float] | None = None,
        seed: int = 0,
        shuffle_blocks: int = 8192,
        packing: str = "complete",
        padding_free: bool = False,
        boundaries: str = "document",
        pad_to_seq_len: bool = False,
        mask_rate: Any = 0.15,
        masking: str = "exact",
        mask_fraction: float = 0.8,
        random_fraction: float = 0.1,
        whole_word: bool = False,
        language_ids: Mapping[str, int] | None = None,
        rank: int = 0,
        world_size: int = 1,
        model_vocab_size: int | None = None,
        return_language_counts: bool = False,
        storage_options: dict[str, Any] | None = None,
        parallel_corpus: str | os.PathLike[str] | None = None,
        tlm_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        self.seq_len = _positive_int(seq_len, "seq_len", 4)
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.world_size = _positive_int(world_size, "world_size")
        self.shuffle_blocks = _positive_int(shuffle_blocks, "shuffle_blocks")
        self._check_choices(rank, packing, boundaries, unit)
        self.rank = rank
        self.packing, self.padding_free, self.boundaries = packing, bool(padding_free), boundaries
        self.pad_to_seq_len, self.return_language_counts = bool(pad_to_seq_len), bool(return_language_counts)
        self.seed, self.unit = seed, unit
        self.storage_options = storage_options
        self._load_tokenizer(tokenizer, model_vocab_size)
        self._find_files(corpus, languages)
        sizes = self._default_sizes(sizes)
        self.sampler_settings = {"sizes": {lang: sizes[lang] for lang in sorted(sizes)}, "alpha": alpha, "seed": seed,
                                 "schedule": schedule, "caps": caps, "unit": unit}
        self.sampler = TemperatureSampler(**self.sampler_settings)  # validates alpha, sizes, schedule, caps
        self._language_index = {lang: i for i, lang in enumerate(self.languages)}
        if language_ids is not None:
            unknown = sorted(set(self.sampler.languages) - set(language_ids))
            if unknown:
                raise StreamError(f"language_ids has no id for language(s) {unknown}; it maps {dict(language_ids)}")
        self.language_ids = dict(language_ids) if language_ids is not None else None
        self.masker = self._build_masker(whole_word, rate=mask_rate, mode=masking, mask_fraction=mask_fraction,
                                         random_fraction=random_fraction, seed=seed)
        self._tlm = self._setup_tlm(parallel_corpus, tlm_ratio)
        self._tlm_encoder: TokenEncoder | None = None
        self._build_planner()
        self._batch = 0  # next global batch index
        self._tlm_batches = 0  # TLM batches among the global batches [0, _batch)
        self._clock = 0  # the schedule clock: the largest block clock of the MLM batches so far
        self._base: int | None = None  # first batch of the current worker round-robin
        self._base_workers = 0
        self.dropped_blocks = 0  # blocks after the last full global batch when every language hit its cap
        self.dropped_tokens = 0

    # ------------------------------------------------------------------------------------------------ setup
    def _check_choices(self, rank: Any, packing: Any, boundaries: Any, unit: Any) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < self.world_size:
            raise StreamError(f"rank must be an integer in [0, world_size={self.world_size}), got {rank!r}")
        if packing not in PACKING_MODES:
            raise StreamError(f"packing must be one of {list(PACKING_MODES)}, got {packing!r}")
        if boundaries not in ("document", "block"):
            raise StreamError(f"boundaries must be 'document' or 'block', got {boundaries!r}")
        if unit not in SAMPLER_UNITS:
            raise StreamError(f"unit must be one of {list(SAMPLER_UNITS)}, got {unit!r}")

    def _build_masker(self, whole_word: bool, **settings: Any) -> Masker:
        word_starts = None
        if whole_word:
            from xlmr_hf.tokenization import word_start_mask

            word_starts = word_start_mask(self.tokenizer)
        return Masker.from_tokenizer(self.tokenizer, word_starts=word_starts, whole_word=whole_word, **settings)

    def _setup_tlm(self, parallel_corpus: Any, tlm_ratio: Any) -> TLMBatches | None:
        if isinstance(tlm_ratio, bool) or not isinstance(tlm_ratio, (int, float, np.integer, np.floating)) \
                or not 0.0 <= float(tlm_ratio) <= 1.0:
            raise StreamError(f"tlm_ratio must be a number in [0, 1], got {tlm_ratio!r}")
        if float(tlm_ratio) == 0.0:
            if parallel_corpus is not None:
                logger.info("parallel_corpus=%r is not read: tlm_ratio=0 (no TLM batches)", parallel_corpus)
            return None
        if parallel_corpus is None:
            raise StreamError(f"tlm_ratio={tlm_ratio} needs parallel_corpus ('default' or a directory of "
                              "<l1>-<l2>.tsv[.xz] files), got None")
        if self.seq_len < 6:
            raise StreamError(f"seq_len must be >= 6 with tlm_ratio > 0 (<s> src </s> </s> tgt </s> keeps a token "
                              f"of each side), got {self.seq_len}")
        corpus = read_parallel_corpus(parallel_corpus, self.languages)
        logger.info("TLM batches: tlm_ratio=%g over %d sentence pairs %s", tlm_ratio, len(corpus), corpus.counts())
        return TLMBatches(corpus, ratio=float(tlm_ratio), seed=self.seed, max_length=self.seq_len)

    def _load_tokenizer(self, tokenizer: Any, model_vocab_size: int | None) -> None:
        self.tokenizer = load_stream_tokenizer(tokenizer)
        vocab = len(self.tokenizer)
        if model_vocab_size is not None and vocab > _positive_int(model_vocab_size, "model_vocab_size"):
            raise StreamError(
                f"the tokenizer's vocabulary ({vocab} ids) is larger than the model's vocab_size={model_vocab_size}: "
                "ids >= vocab_size would index past the embedding matrix. Use the model's tokenizer or resize the "
                "model's embeddings (model.resize_token_embeddings(len(tokenizer))).")
        self.model_vocab_size = model_vocab_size
        for name in ("bos_token_id", "eos_token_id", "pad_token_id", "mask_token_id"):
            if getattr(self.tokenizer, name, None) is None:
                raise StreamError(f"the tokenizer has no {name}; the stream needs <s>, </s>, <pad> and <mask>")
        self.pad_token_id = int(self.tokenizer.pad_token_id)

    def _find_files(self, corpus: Any, languages: Sequence[str] | None) -> None:
        self.files: dict[str, list[str]] = {}
        self.manifest: dict[str, Any] | None = None
        if isinstance(corpus, (str, os.PathLike)) and is_tokenized_corpus(corpus):
            self.corpus = os.fspath(corpus)
            self.manifest = read_manifest(corpus)
            available = self.manifest["languages"]
            unknown = sorted(set(languages or ()) - set(available))
            if unknown:
                raise StreamError(f"languages {unknown} are not in the pre-tokenized corpus {self.corpus!r}; it has "
                                  f"{sorted(available)}")
            if self.manifest["tokenizer"] != tokenizer_fingerprint(self.tokenizer):
                raise StreamError(f"the pre-tokenized corpus {self.corpus!r} was written with another tokenizer "
                                  "(its manifest's fingerprint differs): tokenize it again with this tokenizer or "
                                  "pass the tokenizer it was written with")
            self.files = {lang: list(available[lang]["parts"]) for lang in (languages or available)}
        else:
            self.corpus = None
            for lang, url in cc100_files(corpus, languages, storage_options=self.storage_options):
                self.files.setdefault(lang, []).append(url)
        self.languages: list[str] = sorted(self.files)

    def _default_sizes(self, sizes: Mapping[str, float] | None) -> Mapping[str, float]:
        if sizes is None and self.manifest is not None:
            sizes = {lang: self.manifest["languages"][lang][self.unit] for lang in self.languages}
        elif sizes is None:
            if self.unit == "tokens":
                raise StreamError("sizes must be given when unit='tokens' (token counts depend on the tokenizer); "
                                  "or use unit='lines', 'bytes' or 'documents', counted from the corpus, or a "
                                  "pre-tokenized corpus")
            stats = cc100_statistics([url for lang in self.languages for url in self.files[lang]],
                                     storage_options=self.storage_options)
            sizes = {lang: getattr(stats[lang], self.unit) for lang in self.languages}
        extra, missing = sorted(set(sizes) - set(self.files)), sorted(set(self.files) - set(sizes))
        if extra or missing:
            raise StreamError(f"sizes must name exactly the corpus languages {self.languages}: "
                              + (f"{extra} have no files" if extra else f"{missing} have no size")
                              + " (select languages with languages=[...])")
        return sizes

    def _build_planner(self) -> None:
        """One `LanguageBlocks` per language over its source, at the start of the corpus."""
        encoder = TokenEncoder(self.tokenizer) if self.manifest is None else None
        self.sources: list[Any] = []
        for lang in self.languages:
            if self.manifest is None:
                self.sources.append(OnlineSource(self.files[lang], lang, encoder, int(self.tokenizer.eos_token_id),
                                                 self.storage_options))
            else:
                self.sources.append(TokenizedSource(self.corpus, lang, self.files[lang]))
        self.blocks = [LanguageBlocks(source, self.seq_len, self.packing, self._block_table(source.language))
                       for source in self.sources]
        self._windows: dict[int, _Window] = {}
        self._next_window = 0
        self._exhausted_at: int | None = None  # blocks in all when every language reached its cap

    def _block_table(self, language: str) -> np.ndarray | None:
        """The pre-computed block ends of a pre-tokenized language for this packing and seq_len, if written."""
        if self.manifest is None:
            return None
        name = block_table_name(self.packing, self.seq_len)
        if name not in self.manifest["languages"][language].get("block_tables", []):
            if language == self.languages[0]:
                logger.info("%s has no block table for packing=%r, seq_len=%d: blocks are planned from the lengths "
                            "as the stream goes (tokenize-corpus --seq_len %d writes one; planning is then a lookup)",
                            self.corpus, self.packing, self.seq_len, self.seq_len)
            return None
        return np.load(Path(self.corpus) / language / name, mmap_mode="r")

    # ------------------------------------------------------------------------------------------------ planning
    def _planner_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(), "languages": [b.state_dict() for b in self.blocks]}

    def _plan_round(self, wanted: int) -> tuple[np.ndarray, BlockPlan, np.ndarray, list[Any] | None] | None:
        """Draw and plan up to ``wanted`` global blocks with one distribution (until alpha, the joined languages or a
        cap would change it); None when every language is exhausted."""
        sampler = self.sampler
        try:  # the sampler's languages are sorted, as are the stream's: codes index both
            index = sampler.sample_codes(np.arange(sampler.position, sampler.position + wanted))
        except SamplerExhaustedError:
            return None
        plan = BlockPlan(*(np.zeros(len(index), dtype=np.int64) for _ in range(5)))
        for li in np.unique(index).tolist():
            where = np.flatnonzero(index == li)
            peeked = self.blocks[li].peek(len(where))
            for name in ("starts", "ends", "documents", "lines", "bytes"):
                getattr(plan, name)[where] = getattr(peeked, name)
        units = {"tokens": plan.tokens, "documents": plan.documents, "lines": plan.lines, "bytes": plan.bytes}[
            self.unit].astype(np.float64)
        clocks = sampler.consumed_tokens + np.cumsum(plan.tokens)
        cut = len(index)
        hit = np.flatnonzero(clocks >= sampler.stable_until())
        if hit.size:
            cut = int(hit[0]) + 1
        for lang, cap in sampler.caps.items():
            if lang in sampler.exhausted:
                continue
            where = np.flatnonzero(index[:cut] == self._language_index[lang])
            full = np.flatnonzero(sampler.units[lang] + np.cumsum(units[where]) >= cap * sampler.sizes[lang])
            if full.size:
                cut = int(where[full[0]]) + 1
        index, plan, units, clocks = index[:cut], plan.head(cut), units[:cut], clocks[:cut]
        payloads: list[Any] | None = [None] * cut if self.manifest is None else None
        for li in np.unique(index).tolist():
            where = np.flatnonzero(index == li)
            taken = self.blocks[li].take(len(where), payload=payloads is not None)
            if payloads is not None:
                for position, item in zip(where.tolist(), taken):
                    payloads[position] = item
            sampler.consume(self.languages[li], tokens=int(plan.tokens[where].sum()),
                            documents=int(plan.documents[where].sum()), units=float(units[where].sum()))
        sampler.advance({self.languages[li]: int(n) for li, n in zip(*np.unique(index, return_counts=True))})
        return index, plan, clocks, payloads

    def _plan_window(self) -> _Window | None:
        """Plan the next window of ``shuffle_blocks`` global blocks (fewer when the languages run out)."""
        if self._exhausted_at is not None:
            return None
        snapshot = self._planner_state()
        rounds = []
        planned = 0
        while planned < self.shuffle_blocks:
            result = self._plan_round(min(self.shuffle_blocks - planned, 4096))
            if result is None:
                self._exhausted_at = self._next_window * self.shuffle_blocks + planned
                break
            rounds.append(result)
            planned += len(result[0])
        if not rounds:
            return None
        payloads = None if self.manifest is not None else [p for r in rounds for p in r[3]]
        generator = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, _SHUFFLE_TAG,
                                                                                 self._next_window])))
        order = generator.permutation(planned) if self.shuffle_blocks > 1 else np.arange(planned)
        plans = BlockPlan.join([r[1] for r in rounds])
        window = _Window(snapshot, np.concatenate([r[0] for r in rounds]), plans.starts, plans.ends,
                         np.concatenate([r[2] for r in rounds]), payloads, order)
        self._windows[self._next_window] = window
        self._next_window += 1
        return window

    def _available(self, position: int) -> bool:
        """Plan windows until global position ``position`` exists; False when the stream ends before it."""
        window_index, offset = divmod(position, self.shuffle_blocks)
        while window_index >= self._next_window:
            if self._plan_window() is None:
                return False
        return offset < len(self._windows[window_index].order)

    def _entries(self, first: int, count: int) -> list[tuple[int, int, int, int, Any]]:
        """``(language index, start, end, clock, payload)`` of the planned global positions ``[first, first +
        count)``."""
        out = []
        for position in range(first, first + count):
            window = self._windows[position // self.shuffle_blocks]
            j = int(window.order[position % self.shuffle_blocks])
            out.append((int(window.languages[j]), int(window.starts[j]), int(window.ends[j]), int(window.clocks[j]),
                        window.payloads[j] if window.payloads is not None else None))
        return out

    # ------------------------------------------------------------------------------------------------ batches
    def _block(self, entry: tuple[int, int, int, int, Any], position: int) -> tuple[Block, str]:
        li, start, end, clock, payload = entry
        if payload is None:
            start, end = self.blocks[li].epoch_position(start, end)
            tokens, inside = self.sources[li].tokens(start, end), self.sources[li].document_starts(start, end) - start
        else:
            tokens, inside = payload
        ids = np.concatenate([[int(self.tokenizer.bos_token_id)], tokens]).astype(np.int64)
        lang = self.languages[li]
        starts = (0, *(int(s) + 1 for s in inside))
        masked, labels = self.masker.mask(ids, position, rate=self.masker.rate_at(clock))
        return Block(masked, starts, (lang,) * len(starts), labels), lang

    def _check_ids(self, ids: torch.Tensor, first_index: int, what: str = "block") -> None:
        """Every id must index the model's embeddings: a bad one is caught here, named with its position."""
        if self.model_vocab_size is None:
            return
        bad = (ids >= self.model_vocab_size) | (ids < 0)
        if bool(bad.any()):
            row, column = bad.nonzero()[0].tolist()
            raise StreamError(f"input id {int(ids[row, column])} at row {row}, position {column} of the batch starting "
                              f"at {what} {first_index} is outside the model's vocabulary (model_vocab_size="
                              f"{self.model_vocab_size}, ids 0..{self.model_vocab_size - 1})")

    def _collate(self, entries: Sequence[tuple[int, int, int, int, Any]], first: int) -> dict[str, torch.Tensor]:
        blocks, counts = [], dict.fromkeys(self.languages, 0)
        for offset, entry in enumerate(entries):
            block, lang = self._block(entry, first + offset)
            blocks.append(block)
            counts[lang] += len(block)
        batch = collate_blocks(blocks, pad_token_id=self.pad_token_id, padding_free=self.padding_free,
                               boundaries=self.boundaries, language_to_id=self.language_ids,
                               pad_to=self.seq_len if self.pad_to_seq_len and not self.padding_free else None)
        self._check_ids(batch["input_ids"], first)
        if self.return_language_counts:
            batch["language_token_counts"] = torch.tensor([counts[lang] for lang in self.languages])
        return batch

    def _max_clock(self, first: int, count: int) -> int:
        """The largest block clock among the planned global positions ``[first, first + count)``."""
        best, size = 0, self.shuffle_blocks
        for w in range(first // size, (first + count - 1) // size + 1):
            window = self._windows[w]
            low, high = max(first - w * size, 0), min(first + count - w * size, size)
            best = max(best, int(window.clocks[window.order[low:high]].max()))
        return best

    def _tlm_collate(self, tlm_index: int) -> dict[str, torch.Tensor]:
        """This rank's slice of global TLM batch ``tlm_index``, masked at the rate of the current clock."""
        assert self._tlm is not None
        if self._tlm_encoder is None:
            self._tlm_encoder = TokenEncoder(self.tokenizer)
        first = (tlm_index * self.world_size + self.rank) * self.batch_size
        batch = self._tlm.collate(first, self.batch_size, encode=self._tlm_encoder.encode, masker=self.masker,
                                  rate=self.masker.rate_at(self._clock), tokenizer=self.tokenizer,
                                  language_ids=self.language_ids,
                                  count_languages=self.languages if self.return_language_counts else None,
                                  pad_to=self.seq_len if self.pad_to_seq_len else None)
        self._check_ids(batch["input_ids"], first, "TLM example")
        return batch

    def _end(self, first: int) -> None:
        """Count the blocks after the last full global batch (every language reached its cap)."""
        total = self._exhausted_at if self._exhausted_at is not None else first
        if total > first:
            tokens = sum(end - start + 1 for _, start, end, _, _ in self._entries(first, total - first))
            self.dropped_blocks += total - first
            self.dropped_tokens += tokens
            logger.warning("every language reached its cap: the last %d block(s) (%d tokens) do not fill a global "
                           "batch of %d blocks and are dropped", total - first, tokens,
                           self.batch_size * self.world_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self._base is None or self._base_workers != workers:
            self._base, self._base_workers = self._batch, workers
        group = self.batch_size * self.world_size
        while True:
            batch_index = self._batch
            tlm = self._tlm is not None and self._tlm.is_tlm(batch_index)
            first = (batch_index - self._tlm_batches) * group  # the MLM blocks advance on MLM batches only
            if not tlm and not self._available(first + group - 1):
                if self._exhausted_at is not None and self._exhausted_at < first + group:
                    self._end(first)
                    self._exhausted_at = first  # counted once
                return
            own = (batch_index - self._base) % workers == worker
            batch = None
            if not tlm:
                self._clock = max(self._clock, self._max_clock(first, group))
            if own and tlm:
                batch = self._tlm_collate(self._tlm_batches)
            elif own:
                start = first + self.rank * self.batch_size
                batch = self._collate(self._entries(start, self.batch_size), start)
            if own and self.return_language_counts:
                batch["stream_clock"] = torch.tensor(self._clock, dtype=torch.int64)
            self._batch, self._tlm_batches = batch_index + 1, self._tlm_batches + tlm
            done = (self._batch - self._tlm_batches) * group
            for index in [k for k in self._windows if (k + 1) * self.shuffle_blocks <= done]:
                del self._windows[index]
            if own:
                yield batch

    # --------------------------------------------------------------------------------------------- accounting
    @property
    def batches(self) -> int:
        """Global batches passed so far (by this copy of the stream)."""
        return self._batch

    @property
    def tlm_batches(self) -> int:
        """TLM batches among the global batches passed so far."""
        return self._tlm_batches

    @property
    def stream_clock(self) -> int:
        """The schedule clock (consumed tokens) after the global batches passed so far: the largest clock of the
        blocks of the MLM batches so far (a block's clock is the tokens planned up to and including it; running max,
        as shuffling mixes the blocks of a window). A TLM batch keeps the clock of the MLM batches before it."""
        return self._clock

    def schedule_values(self, clock: int) -> dict[str, float]:
        """The language-sampling alpha and the mask rate at schedule clock ``clock`` (consumed tokens; pure)."""
        return {"alpha": float(self.sampler.alpha_at(clock)), "mask_rate": float(self.masker.rate_at(clock))}

    @property
    def target_probabilities(self) -> dict[str, float]:
        """The sampler's current target distribution q."""
        return self.sampler.probabilities

    def accounting(self) -> dict[str, dict[str, float]]:
        """Per language: tokens/documents planned so far, realized vs target shares (`TemperatureSampler`); planning
        runs up to one shuffle window ahead of the batches."""
        return self.sampler.accounting()

    def log_dict(self, prefix: str = "data/") -> dict[str, float]:
        """Flat metrics for loggers: the sampler's accounting plus the stream's counters."""
        out = self.sampler.log_dict(prefix)
        out[f"{prefix}batches"] = float(self._batch)
        out[f"{prefix}blocks"] = float((self._batch - self._tlm_batches) * self.batch_size * self.world_size)
        if self._tlm is not None:
            out[f"{prefix}tlm_batches"] = float(self._tlm_batches)
        out[f"{prefix}dropped_blocks"] = float(self.dropped_blocks)
        out[f"{prefix}dropped_tokens"] = float(self.dropped_tokens)
        for lang, blocks in zip(self.languages, self.blocks):
            out[f"{prefix}epoch/{lang}"] = float(blocks.epoch)
        return out

    def sampling_table(self) -> str:
        """Each language's size (in `unit`), p_i and the target q_i: the table `xlmr-hf pretrain` logs at start."""
        sizes = self.sampler.sizes
        total = sum(sizes.values()) or 1.0
        lines = [f"language  {'size (' + self.unit + ')':>16}  {'p_i':>7}  {'q_i':>7}"]
        for lang in self.languages:
            lines.append(f"{lang:<8}  {sizes[lang]:>16,.0f}  {sizes[lang] / total:>7.4f}  "
                         f"{self.target_probabilities[lang]:>7.4f}")
        return "\n".join(lines)

    # -------------------------------------------------------------------------------------------------- state
    def _config(self) -> dict[str, Any]:
        files = self.files if self.manifest is not None else {
            k: [os.path.basename(f) for f in v] for k, v in self.files.items()}
        config = {"languages": self.languages, "files": files, "seq_len": self.seq_len, "batch_size": self.batch_size,
                  "world_size": self.world_size, "packing": self.packing, "seed": self.seed,
                  "vocab": len(self.tokenizer), "shuffle_blocks": self.shuffle_blocks, "unit": self.unit,
                  "source": "tokenized" if self.manifest is not None else "online"}
        return config if self._tlm is None else {**config, **self._tlm.config()}  # states without TLM unchanged

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state (a few KB): the planner state at the start of the shuffle window that holds the
        next batch, the batch counters and the schedule clock (see ``docs/data_pipeline.md``, "Exact resume")."""
        window = (self._batch - self._tlm_batches) * self.batch_size * self.world_size // self.shuffle_blocks
        if window in self._windows:
            snapshot = self._windows[window].snapshot
        elif window == self._next_window:
            snapshot = self._planner_state()
        else:
            raise StreamError(f"internal: the window {window} of batch {self._batch} was dropped before its state "
                              "was saved")
        return {"version": _STATE_VERSION, "config": self._config(), "window": window, "planner": snapshot,
                "batch": self._batch, "base": self._base, "base_workers": self._base_workers,
                "exhausted_at": self._exhausted_at, "dropped_blocks": self.dropped_blocks,
                "dropped_tokens": self.dropped_tokens, "tlm_batches": self._tlm_batches, "clock": self._clock}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict` (also after a JSON round trip); the configuration must match."""
        if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
            got = state.get("version") if isinstance(state, Mapping) else type(state).__name__
            raise StreamError(f"state.version must be {_STATE_VERSION}, got {got!r}")
        mine, theirs = json.loads(json.dumps(self._config())), state.get("config")
        if mine != theirs:
            keys = set(mine) | (set(theirs) if isinstance(theirs, Mapping) else set())
            diff = sorted(k for k in keys if not isinstance(theirs, Mapping) or theirs.get(k) != mine.get(k))
            raise StreamError(f"state.config differs from this stream in {diff}: state has "
                              f"{ {k: theirs.get(k) for k in diff} if isinstance(theirs, Mapping) else theirs!r}, "
                              f"stream has { {k: mine.get(k) for k in diff} }")
        planner = state["planner"]
        self.sampler.load_state_dict(planner["sampler"])
        for blocks, saved in zip(self.blocks, planner["languages"], strict=True):
            blocks.load_state_dict(saved)
        self._windows, self._next_window = {}, int(state["window"])
        exhausted = state.get("exhausted_at")
        self._exhausted_at = None if exhausted is None or exhausted >= self._next_window * self.shuffle_blocks \
            else int(exhausted)
        self._batch = int(state["batch"])
        # absent from states saved before TLM batches existed
        self._tlm_batches, self._clock = int(state.get("tlm_batches", 0)), int(state.get("clock", 0))
        self._base, self._base_workers = state["base"], int(state["base_workers"])
        self.dropped_blocks, self.dropped_tokens = int(state["dropped_blocks"]), int(state["dropped_tokens"])

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers rebuild the planner from the saved state
        state = self.__dict__.copy()
        state["_pickled_state"] = self.state_dict()
        for name in ("sources", "blocks", "_windows"):
            state.pop(name)
        state["_tlm_encoder"] = None  # rebuilt on first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_pickled_state")
        self.__dict__.update(state)
        self._build_planner()
        self.load_state_dict(saved)

    def __repr__(self) -> str:
        return (f"PretrainingStream(languages={len(self.languages)}, seq_len={self.seq_len}, "
                f"batch_size={self.batch_size}, world_size={self.world_size}, rank={self.rank}, "
                f"packing={self.packing!r}, padding_free={self.padding_free}, "
                f"tlm_ratio={self._tlm.ratio if self._tlm is not None else 0.0}, "
                f"source={'tokenized' if self.manifest is not None else 'online'}, batches={self._batch})")
