"""The pretraining stream: CC-100 readers → temperature sampler → tokenizer → packer → masker → batches.

`PretrainingStream` is the only place the data pieces meet: one sequential, deterministic pipeline whose batches do
not depend on the number of DataLoader workers or ranks (each rank takes its slice of every global batch) and whose
few-KB JSON state resumes exactly. `TokenEncoder` uses SentencePiece directly when the tokenizer's files allow it.
See ``docs/data_pipeline.md`` ("The pretraining stream") for the pipeline order, the process layout and resume.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .cc100 import cc100_files, cc100_statistics
from .docreader import DocumentReader
from .masking import Masker
from .packing import PACKING_MODES, Block, Packer, collate_blocks
from .sampling import SAMPLER_UNITS, TemperatureSampler

__all__ = ["PretrainingStream", "StreamError", "TokenEncoder", "load_stream_tokenizer"]

logger = logging.getLogger(__name__)

_STATE_VERSION = 1
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


def _positive_int(value: Any, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise StreamError(f"{field} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class PretrainingStream(IterableDataset):
    """Deterministic, exactly resumable MLM pretraining batches from CC-100 files (see ``docs/data_pipeline.md``).

    Args:
        corpus: a CC-100 directory (``<lang>.txt[.xz]``), a list of such files/URLs or a URL template with ``{lang}``
            (as `xlmr_hf.data.load_cc100`).
        tokenizer: an HF tokenizer, a tokenizer directory or a Hub id, in the fairseq/XLM-R id layout.
        seq_len: maximum tokens per block (``<s>`` included): 512 in XLM-R.
        batch_size: blocks per batch *per rank*.
        languages: languages to read (default: all in ``corpus``).
        sizes: language → size in ``unit`` for the sampler; default: counted with `cc100_statistics` (cached), which
            supports the units ``bytes``, ``documents`` and ``lines``; ``tokens`` needs explicit sizes.
        unit: the unit of ``sizes`` (`SAMPLER_UNITS`); consumption is reported in it, for caps.
        alpha, schedule, caps: the `TemperatureSampler` settings (``schedule`` may add languages at phases).
        seed: seeds the language draws and the masking.
        packing: ``complete`` (blocks cross documents) or ``complete_doc`` (never).
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
            `languages`) to each batch, for logging realized shares; pop it before calling the model.
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
        unit: str = "bytes",
        alpha: float = 0.3,
        schedule: Mapping[str, Any] | None = None,
        caps: float | Mapping[str, float] | None = None,
        seed: int = 0,
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
    ) -> None:
        super().__init__()
        self.seq_len = _positive_int(seq_len, "seq_len", 4)
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.world_size = _positive_int(world_size, "world_size")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < self.world_size:
            raise StreamError(f"rank must be an integer in [0, world_size={self.world_size}), got {rank!r}")
        self.rank = rank
        if packing not in PACKING_MODES:
            raise StreamError(f"packing must be one of {list(PACKING_MODES)}, got {packing!r}")
        if boundaries not in ("document", "block"):
            raise StreamError(f"boundaries must be 'document' or 'block', got {boundaries!r}")
        if unit not in SAMPLER_UNITS:
            raise StreamError(f"unit must be one of {list(SAMPLER_UNITS)}, got {unit!r}")
        self.packing, self.padding_free, self.boundaries = packing, bool(padding_free), boundaries
        self.pad_to_seq_len, self.return_language_counts = bool(pad_to_seq_len), bool(return_language_counts)
        self.seed, self.unit = seed, unit
        self.storage_options = storage_options

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

        files = cc100_files(corpus, languages, storage_options=storage_options)
        self.files: dict[str, list[str]] = {}
        for lang, url in files:
            self.files.setdefault(lang, []).append(url)
        self.languages: list[str] = sorted(self.files)
        if sizes is None:
            if unit == "tokens":
                raise StreamError("sizes must be given when unit='tokens' (token counts depend on the tokenizer); "
                                  "or use unit='bytes', 'documents' or 'lines', counted from the corpus")
            stats = cc100_statistics([url for _, url in files], storage_options=storage_options)
            sizes = {lang: getattr(stats[lang], unit) for lang in self.languages}
        extra, missing = sorted(set(sizes) - set(self.files)), sorted(set(self.files) - set(sizes))
        if extra or missing:
            raise StreamError(f"sizes must name exactly the corpus languages {self.languages}: "
                              + (f"{extra} have no files" if extra else f"{missing} have no size")
                              + " (select languages with languages=[...])")
        self.sampler_settings = {"sizes": {lang: sizes[lang] for lang in sorted(sizes)}, "alpha": alpha, "seed": seed,
                                     "schedule": schedule, "caps": caps, "unit": unit}
        self.sampler = TemperatureSampler(**self.sampler_settings)  # validates alpha, sizes, schedule, caps

        if language_ids is not None:
            unknown = sorted(set(self.sampler.languages) - set(language_ids))
            if unknown:
                raise StreamError(f"language_ids has no id for language(s) {unknown}; it maps {dict(language_ids)}")
        self.language_ids = dict(language_ids) if language_ids is not None else None
        word_starts = None
        if whole_word:
            from xlmr_hf.tokenization import word_start_mask

            word_starts = word_start_mask(self.tokenizer)
        self.masker = Masker.from_tokenizer(
            self.tokenizer, word_starts=word_starts, whole_word=whole_word, rate=mask_rate, mode=masking,
            mask_fraction=mask_fraction, random_fraction=random_fraction, seed=seed)
        self.encoder = TokenEncoder(self.tokenizer)
        self.packer = Packer(self.seq_len, mode=packing, bos_token_id=int(self.tokenizer.bos_token_id),
                             eos_token_id=int(self.tokenizer.eos_token_id))
        self._readers: dict[str, DocumentReader] | None = None
        self._reader_states: dict[str, Any] = {}
        self._buffer: list[tuple[int, Block]] = []  # (consumed tokens when made, block), in global order
        self._buffer_start = 0  # global index of _buffer[0]
        self._batch = 0  # next global batch index
        self._base: int | None = None  # first batch of the current worker round-robin
        self._base_workers = 0
        self.dropped_blocks = 0  # blocks after the last full global batch when every language hit its cap
        self.dropped_tokens = 0

    # ------------------------------------------------------------------------------------------------ pipeline
    @property
    def readers(self) -> dict[str, DocumentReader]:
        """One `DocumentReader` per language, opened on first use (and again in each DataLoader worker)."""
        if self._readers is None:
            self._readers = {}
            for lang in self.languages:
                reader = DocumentReader(self.files[lang], language=lang, storage_options=self.storage_options)
                if lang in self._reader_states:
                    reader.load_state_dict(self._reader_states[lang])
                self._readers[lang] = reader
        return self._readers

    def _units(self, document: str, tokens: int, paragraphs: int) -> float:
        if self.unit == "tokens":
            return tokens
        if self.unit == "bytes":
            return len(document.encode("utf-8")) + 2  # the text plus the blank line that ends it in the file
        return 1 if self.unit == "documents" else paragraphs

    def _produce(self) -> bool:
        """Read, tokenize and pack one document; False when every language is exhausted."""
        try:
            lang = next(self.sampler)
        except StopIteration:
            return False
        document = next(self.readers[lang])
        paragraphs = document.split("\n")
        ids = self.encoder.encode(paragraphs)
        tokens = sum(len(p) + 1 for p in ids if len(p))  # each non-empty paragraph + its </s>
        self.sampler.consume(lang, tokens=tokens, documents=1, units=self._units(document, tokens, len(paragraphs)))
        consumed = self.sampler.consumed_tokens
        self._buffer.extend((consumed, block) for block in self.packer.add_document(ids, lang))
        return True

    def _check_ids(self, ids: torch.Tensor, first_index: int) -> None:
        """Every id must index the model's embeddings: a bad one is caught here, named with its position."""
        if self.model_vocab_size is None:
            return
        bad = (ids >= self.model_vocab_size) | (ids < 0)
        if bool(bad.any()):
            row, column = bad.nonzero()[0].tolist()
            raise StreamError(f"input id {int(ids[row, column])} at row {row}, position {column} of the batch starting "
                              f"at block {first_index} is outside the model's vocabulary (model_vocab_size="
                              f"{self.model_vocab_size}, ids 0..{self.model_vocab_size - 1})")

    def _collate(self, entries: Sequence[tuple[int, Block]], first_index: int) -> dict[str, torch.Tensor]:
        blocks = []
        for offset, (consumed, block) in enumerate(entries):
            ids, labels = self.masker.mask(block.input_ids, first_index + offset, rate=self.masker.rate_at(consumed))
            blocks.append(Block(ids, block.segment_starts, block.languages, labels))
        batch = collate_blocks(blocks, pad_token_id=self.pad_token_id, padding_free=self.padding_free,
                               boundaries=self.boundaries, language_to_id=self.language_ids,
                               pad_to=self.seq_len if self.pad_to_seq_len and not self.padding_free else None)
        self._check_ids(batch["input_ids"], first_index)
        if self.return_language_counts:
            counts = dict.fromkeys(self.languages, 0)
            for block in blocks:
                ends = [*block.segment_starts[1:], len(block.input_ids)]
                for start, end, lang in zip(block.segment_starts, ends, block.languages):
                    counts[lang] += end - start
            batch["language_token_counts"] = torch.tensor([counts[lang] for lang in self.languages])
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self._base is None or self._base_workers != workers:
            self._base, self._base_workers = self._batch, workers
        group = self.batch_size * self.world_size
        while True:
            exhausted = False
            while len(self._buffer) < group and not exhausted:
                exhausted = not self._produce()
            if exhausted and len(self._buffer) < group:
                self._buffer.extend((self.sampler.consumed_tokens, b) for b in self.packer.flush())
                if len(self._buffer) < group:
                    if self._buffer:
                        self.dropped_blocks += len(self._buffer)
                        self.dropped_tokens += sum(len(block) for _, block in self._buffer)
                        logger.warning("every language reached its cap: the last %d block(s) (%d tokens) do not fill "
                                       "a global batch of %d blocks and are dropped",
                                       len(self._buffer), sum(len(b) for _, b in self._buffer), group)
                        self._buffer_start += len(self._buffer)
                        self._buffer = []
                    return
            batch_index = self._batch
            own = (batch_index - self._base) % workers == worker
            batch = None
            if own:
                start = self.rank * self.batch_size
                batch = self._collate(self._buffer[start:start + self.batch_size], self._buffer_start + start)
            del self._buffer[:group]
            self._buffer_start += group
            self._batch = batch_index + 1
            if own:
                yield batch

    # --------------------------------------------------------------------------------------------- accounting
    @property
    def batches(self) -> int:
        """Global batches passed so far (by this copy of the stream)."""
        return self._batch

    @property
    def target_probabilities(self) -> dict[str, float]:
        """The sampler's current target distribution q."""
        return self.sampler.probabilities

    def accounting(self) -> dict[str, dict[str, float]]:
        """Per language: tokens/documents consumed by the pipeline, realized vs target shares (`TemperatureSampler`)."""
        return self.sampler.accounting()

    def log_dict(self, prefix: str = "data/") -> dict[str, float]:
        """Flat metrics for loggers: the sampler's accounting plus the stream's counters."""
        out = self.sampler.log_dict(prefix)
        out[f"{prefix}batches"] = float(self._batch)
        out[f"{prefix}blocks"] = float(self._buffer_start)
        out[f"{prefix}dropped_blocks"] = float(self.dropped_blocks)
        out[f"{prefix}dropped_tokens"] = float(self.dropped_tokens)
        return out

    # -------------------------------------------------------------------------------------------------- state
    def _config(self) -> dict[str, Any]:
        return {"languages": self.languages, "files": {k: [os.path.basename(f) for f in v] for k, v in self.files.items()},
                "seq_len": self.seq_len, "batch_size": self.batch_size, "world_size": self.world_size,
                "packing": self.packing, "seed": self.seed, "vocab": len(self.tokenizer)}

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state: readers, sampler, packer, unbatched blocks, counters (see
        ``docs/data_pipeline.md``, "Exact resume")."""
        readers = {lang: r.state_dict() for lang, r in self._readers.items()} if self._readers is not None \
            else dict(self._reader_states)
        return {
            "version": _STATE_VERSION,
            "config": self._config(),
            "readers": readers,
            "sampler": self.sampler.state_dict(),
            "packer": self.packer.state_dict(),
            "buffer": [[consumed, block.input_ids.tolist(), list(block.segment_starts), list(block.languages)]
                       for consumed, block in self._buffer],
            "buffer_start": self._buffer_start,
            "batch": self._batch,
            "base": self._base,
            "base_workers": self._base_workers,
            "dropped_blocks": self.dropped_blocks,
            "dropped_tokens": self.dropped_tokens,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict` (also after a JSON round trip); the configuration must match."""
        if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
            got = state.get("version") if isinstance(state, Mapping) else type(state).__name__
            raise StreamError(f"state.version must be {_STATE_VERSION}, got {got!r}")
        mine, theirs = json.loads(json.dumps(self._config())), state.get("config")
        if mine != theirs:
            diff = sorted(k for k in mine if not isinstance(theirs, Mapping) or theirs.get(k) != mine[k])
            raise StreamError(f"state.config differs from this stream in {diff}: state has "
                              f"{ {k: theirs.get(k) for k in diff} if isinstance(theirs, Mapping) else theirs!r}, "
                              f"stream has { {k: mine[k] for k in diff} }")
        self.sampler.load_state_dict(state["sampler"])
        self.packer.load_state_dict(state["packer"])
        self._reader_states = dict(state["readers"])
        if self._readers is not None:
            for lang, reader in self._readers.items():
                reader.load_state_dict(self._reader_states[lang])
        self._buffer = [(int(c), Block(np.asarray(ids, dtype=np.int64), tuple(starts), tuple(langs)))
                        for c, ids, starts, langs in state["buffer"]]
        self._buffer_start, self._batch = int(state["buffer_start"]), int(state["batch"])
        self._base, self._base_workers = state["base"], int(state["base_workers"])
        self.dropped_blocks, self.dropped_tokens = int(state["dropped_blocks"]), int(state["dropped_tokens"])

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers reopen the files at the same positions
        state = self.__dict__.copy()
        if self._readers is not None:
            state["_reader_states"] = {lang: r.state_dict() for lang, r in self._readers.items()}
        state["_readers"] = None
        return state

    def __repr__(self) -> str:
        return (f"PretrainingStream(languages={len(self.languages)}, seq_len={self.seq_len}, "
                f"batch_size={self.batch_size}, world_size={self.world_size}, rank={self.rank}, "
                f"packing={self.packing!r}, padding_free={self.padding_free}, batches={self._batch})")
