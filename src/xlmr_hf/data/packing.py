"""Packing tokenized documents into fixed-budget blocks (fairseq ``TokenBlockDataset`` break modes) and collating them.

`Packer` turns documents (paragraph ids) into blocks of at most ``seq_len`` tokens: ``<s>`` then paragraph units each
ending in ``</s>`` (``complete`` crosses documents, ``complete_doc`` never does), with document segments and an
exactly resumable state. `collate_blocks` makes padded ``(B, L)`` or padding-free ``(1, total)`` model inputs. See
``docs/data_pipeline.md`` ("Packing") for the rules.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "BOUNDARY_MODES",
    "PACKING_MODES",
    "Block",
    "Packer",
    "PackingError",
    "collate_blocks",
]

logger = logging.getLogger(__name__)

PACKING_MODES: tuple[str, ...] = ("complete", "complete_doc")
BOUNDARY_MODES: tuple[str, ...] = ("document", "block")
_STATE_VERSION = 1
_LABEL_IGNORE = -100
_COUNTERS: tuple[str, ...] = (
    "documents",
    "paragraphs",
    "skipped_empty_paragraphs",
    "skipped_empty_documents",
    "split_paragraphs",
    "blocks",
)


class PackingError(ValueError):
    """Invalid packing/collation argument, input or state; the message names the field, the value and what is
    allowed."""


def _check_int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PackingError(f"{field} must be an int >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise PackingError(f"{field} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_language(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise PackingError(f"{field} must be a non-empty str, got {value!r}")
    return value


def _as_ids(values: Any, field: str) -> np.ndarray:
    """A 1-D int64 array of non-negative ids (an empty sequence gives an empty array)."""
    if isinstance(values, np.ndarray) and values.dtype == np.int64 and values.ndim == 1:  # the stream's fast path
        if values.size and int(values.min()) < 0:
            raise PackingError(f"{field} must hold non-negative int ids, got {int(values.min())} at index "
                               f"{int(values.argmin())}")
        return values
    if isinstance(values, (str, bytes)):
        raise PackingError(f"{field} must be a 1-D sequence of non-negative int ids, got a {type(values).__name__}")
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:  # ragged nested sequences
        raise PackingError(f"{field} must be a 1-D sequence of non-negative int ids ({error})") from error
    if array.size == 0 and array.ndim == 1:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1:
        raise PackingError(f"{field} must be a 1-D sequence of non-negative int ids, got shape {array.shape}")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise PackingError(f"{field} must hold non-negative int ids, got dtype {array.dtype} ({values!r:.60})")
    if int(array.min()) < 0:
        raise PackingError(f"{field} must hold non-negative int ids, got {int(array.min())} at index "
                           f"{int(array.argmin())}")
    return array.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------------------- block
@dataclass
class Block:
    """One packed sequence: ``<s>`` + paragraph units, with its document segments and (later) MLM labels.

    ``input_ids`` is coerced to a 1-D int64 array. ``segment_starts[0]`` is 0, the starts increase strictly and stay
    inside the block; ``languages`` has one entry per segment. ``labels`` (``-100`` = not predicted) is set by the
    masker and must have the length of ``input_ids``.
    """

    input_ids: np.ndarray
    segment_starts: tuple[int, ...]
    languages: tuple[str, ...]
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.input_ids = _as_ids(self.input_ids, "Block.input_ids")
        n = len(self.input_ids)
        if n == 0:
            raise PackingError("Block.input_ids must hold at least one token (the <s>), got 0 tokens")
        starts = tuple(_check_int(s, "Block.segment_starts[i]", 0) for s in self.segment_starts)
        if not starts or starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(starts)) or starts[-1] >= n:
            raise PackingError(
                f"Block.segment_starts must start at 0 and increase strictly below the block length {n}, got {starts}"
            )
        languages = tuple(_check_language(lang, "Block.languages[i]") for lang in self.languages)
        if len(languages) != len(starts):
            raise PackingError(
                f"Block.languages must have one entry per segment ({len(starts)}), got {len(languages)}: {languages}"
            )
        self.segment_starts, self.languages = starts, languages
        if self.labels is not None:
            self.labels = _check_labels(self.labels, n, "Block.labels")

    def __len__(self) -> int:
        return len(self.input_ids)

    def segment_lengths(self) -> tuple[int, ...]:
        """Length of every segment (they sum to ``len(self)``)."""
        bounds = (*self.segment_starts, len(self))
        return tuple(b - a for a, b in itertools.pairwise(bounds))


def _check_labels(labels: Any, length: int, field: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != length:
        raise PackingError(f"{field} must be 1-D with the block length {length}, got shape {array.shape}")
    if array.size and (array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer)):
        raise PackingError(f"{field} must hold int ids or {_LABEL_IGNORE}, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------------------- packer
class Packer:
    """Packs tokenized documents into blocks of at most seq_len tokens (fairseq TokenBlockDataset break modes).

    Args:
        seq_len: maximum block length including the leading ``<s>`` (fairseq ``tokens_per_sample``); int >= 4.
        mode: one of `PACKING_MODES` (see ``docs/data_pipeline.md``, "Packing").
        bos_token_id: id of ``<s>`` prepended to every block.
        eos_token_id: id of ``</s>`` appended to every paragraph.
    """

    def __init__(self, seq_len: int, *, mode: str = "complete", bos_token_id: int = 0, eos_token_id: int = 2) -> None:
        self.seq_len = _check_int(seq_len, "seq_len", 4)
        if mode not in PACKING_MODES:
            raise PackingError(f"mode must be one of {PACKING_MODES}, got {mode!r}")
        self.mode = mode
        self.bos_token_id = _check_int(bos_token_id, "bos_token_id", 0)
        self.eos_token_id = _check_int(eos_token_id, "eos_token_id", 0)
        if self.bos_token_id == self.eos_token_id:
            raise PackingError(f"bos_token_id and eos_token_id must differ, both are {self.bos_token_id}")
        self._pending: list[np.ndarray] = []  # pieces of the partial block, the first is [<s>]
        self._pending_length = 0
        self._segments: list[tuple[int, str]] = []
        self.counters: dict[str, int] = dict.fromkeys(_COUNTERS, 0)

    # ------------------------------------------------------------------------------------------------ packing
    @property
    def pending_tokens(self) -> int:
        """Tokens in the partially filled block, ``<s>`` included (0 when there is none)."""
        return self._pending_length

    def add_document(self, paragraphs: Sequence[Sequence[int]] | Sequence[np.ndarray], language: str) -> list[Block]:
        """Add one document (its paragraphs' ids, without ``</s>``) and return the blocks it completed (maybe none).

        All paragraphs are validated before anything is packed: on error the packer is unchanged."""
        language = _check_language(language, "language")
        if isinstance(paragraphs, (str, bytes)) or not isinstance(paragraphs, (Sequence, np.ndarray)):
            raise PackingError(f"paragraphs must be a sequence of id sequences, got {type(paragraphs).__name__}")
        arrays = [_as_ids(p, f"paragraphs[{i}]") for i, p in enumerate(paragraphs)]
        eos = np.array([self.eos_token_id], dtype=np.int64)
        units = [np.concatenate([a, eos]) for a in arrays if len(a)]
        self.counters["documents"] += 1
        self.counters["paragraphs"] += len(units)
        self.counters["skipped_empty_paragraphs"] += len(arrays) - len(units)
        if not units:
            self.counters["skipped_empty_documents"] += 1
            return []
        out: list[Block] = []
        chunk = self.seq_len - 1
        for index, unit in enumerate(units):
            new_document = index == 0
            if len(unit) > chunk:
                out.extend(self._emit())
                n_full = len(unit) // chunk
                self.counters["split_paragraphs"] += 1
                logger.debug("splitting a %d-token paragraph (%s) into %d blocks of %d tokens + %d", len(unit),
                             language, n_full, chunk, len(unit) % chunk)
                for k in range(n_full):
                    self._place(unit[k * chunk:(k + 1) * chunk], language, new_document=True)
                    out.extend(self._emit())  # exactly full
                unit = unit[n_full * chunk:]
                if not len(unit):
                    continue
            elif self._pending_length + len(unit) > self.seq_len:
                out.extend(self._emit())
            self._place(unit, language, new_document=new_document)
            if self._pending_length == self.seq_len:
                out.extend(self._emit())
        if self.mode == "complete_doc":
            out.extend(self._emit())
        return out

    def flush(self) -> list[Block]:
        """Emit the partially filled block (if any): for the end of a finite stream."""
        return self._emit()

    def _place(self, unit: np.ndarray, language: str, *, new_document: bool) -> None:
        if not self._pending:
            self._pending = [np.array([self.bos_token_id], dtype=np.int64)]
            self._pending_length = 1
            self._segments = [(0, language)]
        elif new_document:
            self._segments.append((self._pending_length, language))
        self._pending.append(unit)
        self._pending_length += len(unit)

    def _emit(self) -> list[Block]:
        if not self._pending:
            return []
        block = Block(
            np.concatenate(self._pending),
            tuple(start for start, _ in self._segments),
            tuple(lang for _, lang in self._segments),
        )
        self._pending, self._pending_length, self._segments = [], 0, []
        self.counters["blocks"] += 1
        return [block]

    # ------------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: configuration (checked on load), the partial block and the counters."""
        ids = np.concatenate(self._pending).tolist() if self._pending else []
        return {
            "version": _STATE_VERSION,
            "seq_len": self.seq_len,
            "mode": self.mode,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pending": {
                "input_ids": ids,
                "segment_starts": [start for start, _ in self._segments],
                "languages": [lang for _, lang in self._segments],
            },
            "counters": dict(self.counters),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict`; ``seq_len``, ``mode`` and the special ids must match this packer's.

        The state is fully validated before anything changes."""
        if not isinstance(state, Mapping):
            raise PackingError(f"state must be a mapping (from Packer.state_dict), got {type(state).__name__}")
        if state.get("version") != _STATE_VERSION:
            raise PackingError(f"state.version must be {_STATE_VERSION}, got {state.get('version')!r}")
        for field in ("seq_len", "mode", "bos_token_id", "eos_token_id"):
            if state.get(field) != getattr(self, field):
                raise PackingError(
                    f"state.{field}={state.get(field)!r} does not match this packer's {field}="
                    f"{getattr(self, field)!r}; allowed: the same value"
                )
        pending = state.get("pending")
        if not isinstance(pending, Mapping) or set(pending) != {"input_ids", "segment_starts", "languages"}:
            raise PackingError(
                f"state.pending must be a mapping with input_ids, segment_starts and languages, got {pending!r:.80}"
            )
        ids = _as_ids(pending["input_ids"], "state.pending.input_ids")
        for field in ("segment_starts", "languages"):
            if not isinstance(pending[field], (list, tuple)):
                raise PackingError(f"state.pending.{field} must be a list, got {pending[field]!r:.80}")
        segments: list[tuple[int, str]] = []
        if len(ids):
            if not 1 < len(ids) < self.seq_len or ids[0] != self.bos_token_id or ids[-1] != self.eos_token_id:
                raise PackingError(
                    f"state.pending.input_ids must be <s>={self.bos_token_id} + units ending with "
                    f"</s>={self.eos_token_id}, shorter than seq_len={self.seq_len}; got {len(ids)} ids "
                    f"{ids.tolist()!r:.80}"
                )
            block = Block(ids, tuple(pending["segment_starts"]), tuple(pending["languages"]))
            segments = list(zip(block.segment_starts, block.languages))
        elif pending["segment_starts"] or pending["languages"]:
            raise PackingError(
                f"state.pending has no input_ids but segments {pending['segment_starts']!r}: allowed only empty lists"
            )
        counters = state.get("counters")
        if not isinstance(counters, Mapping) or set(counters) != set(_COUNTERS):
            raise PackingError(f"state.counters must be a mapping with keys {_COUNTERS}, got {counters!r:.120}")
        checked = {name: _check_int(counters[name], f"state.counters.{name}", 0) for name in _COUNTERS}
        self._pending = [ids] if len(ids) else []
        self._pending_length = len(ids)
        self._segments = segments
        self.counters = checked


# ---------------------------------------------------------------------------------------------------- collation
def collate_blocks(
    blocks: Sequence[Block],
    *,
    pad_token_id: int = 1,
    padding_free: bool = False,
    boundaries: str = "document",
    language_to_id: Mapping[str, int] | None = None,
    pad_to: int | None = None,
) -> dict[str, torch.Tensor]:
    """Model inputs for a list of blocks.

    Padded (default): ``input_ids`` ``(B, L)`` right-padded with ``pad_token_id`` (``L`` = longest block, or
    ``pad_to``), ``attention_mask`` ``(B, L)``, and ``labels`` ``(B, L)`` padded with -100 when the blocks carry
    labels. Each block is one sequence (``boundaries`` is validated but does not matter).

    ``padding_free=True``: ``input_ids`` ``(1, total)``, ``cu_seqlens`` (int32) with an offset at every block start and,
    for ``boundaries="document"``, at every segment start; ``position_ids`` ``(1, total)`` restarting at
    ``pad_token_id + 1`` at every offset; ``labels`` ``(1, total)`` when present; no attention mask. ``pad_to`` is not
    allowed here.

    ``language_to_id``: adds ``language_ids`` per token with the shape of ``input_ids``; padding positions get the id of
    their row's first segment language.

    Labels must be set on all blocks or on none. All tensors are int64 except ``cu_seqlens`` (int32).
    """
    if isinstance(blocks, Block) or not isinstance(blocks, Sequence) or not blocks:
        raise PackingError(f"blocks must be a non-empty sequence of Block, got {blocks!r:.80}")
    for i, block in enumerate(blocks):
        if not isinstance(block, Block):
            raise PackingError(f"blocks[{i}] must be a Block, got {type(block).__name__}")
    pad_token_id = _check_int(pad_token_id, "pad_token_id", 0)
    if boundaries not in BOUNDARY_MODES:
        raise PackingError(f"boundaries must be one of {BOUNDARY_MODES}, got {boundaries!r}")
    with_labels = [block.labels is not None for block in blocks]
    if any(with_labels) and not all(with_labels):
        missing = [i for i, has in enumerate(with_labels) if not has]
        raise PackingError(f"labels must be set on all blocks or on none; blocks {missing[:10]} have labels=None")
    labels = [_check_labels(b.labels, len(b), f"blocks[{i}].labels") for i, b in enumerate(blocks)] if all(
        with_labels) else None
    languages = None
    if language_to_id is not None:
        languages = [_language_rows(block, language_to_id) for block in blocks]
    if padding_free:
        if pad_to is not None:
            raise PackingError(f"pad_to applies only to padded batches (padding_free=False), got pad_to={pad_to!r}")
        return _collate_padding_free(blocks, pad_token_id, boundaries, labels, languages)
    lengths = [len(block) for block in blocks]
    width = max(lengths)
    if pad_to is not None:
        pad_to = _check_int(pad_to, "pad_to", 1)
        if width > pad_to:
            raise PackingError(
                f"pad_to={pad_to} is shorter than the longest block ({width} tokens); allowed: >= {width}"
            )
        width = pad_to
    batch = len(blocks)
    input_ids = torch.full((batch, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, width), dtype=torch.long)
    out = {"input_ids": input_ids, "attention_mask": attention_mask}
    if labels is not None:
        out["labels"] = torch.full((batch, width), _LABEL_IGNORE, dtype=torch.long)
    if languages is not None:
        first_language = torch.tensor([row[0] for row in languages], dtype=torch.long)
        out["language_ids"] = first_language[:, None].repeat(1, width)
    for row, (block, n) in enumerate(zip(blocks, lengths)):
        input_ids[row, :n] = torch.from_numpy(block.input_ids)
        attention_mask[row, :n] = 1
        if labels is not None:
            out["labels"][row, :n] = torch.from_numpy(labels[row])
        if languages is not None:
            out["language_ids"][row, :n] = torch.tensor(languages[row], dtype=torch.long)
    return out


def _language_rows(block: Block, language_to_id: Mapping[str, int]) -> list[int]:
    """Per-token language ids of one block."""
    ids = []
    for language in block.languages:
        if language not in language_to_id:
            raise PackingError(
                f"language {language!r} is not in language_to_id; allowed: {sorted(language_to_id)[:20]}"
            )
        ids.append(_check_int(language_to_id[language], f"language_to_id[{language!r}]", 0))
    return np.repeat(np.array(ids, dtype=np.int64), block.segment_lengths()).tolist()


def _collate_padding_free(
    blocks: Sequence[Block],
    pad_token_id: int,
    boundaries: str,
    labels: list[np.ndarray] | None,
    languages: list[list[int]] | None,
) -> dict[str, torch.Tensor]:
    starts: list[int] = []
    offset = 0
    for block in blocks:
        starts.extend(offset + s for s in (block.segment_starts if boundaries == "document" else (0,)))
        offset += len(block)
    total = offset
    cu = np.array([*starts, total], dtype=np.int64)
    segment_starts = np.repeat(cu[:-1], np.diff(cu))
    positions = np.arange(total, dtype=np.int64) - segment_starts + pad_token_id + 1
    out = {
        "input_ids": torch.from_numpy(np.concatenate([b.input_ids for b in blocks])).reshape(1, total),
        "cu_seqlens": torch.from_numpy(cu.astype(np.int32)),
        "position_ids": torch.from_numpy(positions).reshape(1, total),
    }
    if labels is not None:
        out["labels"] = torch.from_numpy(np.concatenate(labels)).reshape(1, total)
    if languages is not None:
        out["language_ids"] = torch.tensor([i for row in languages for i in row], dtype=torch.long).reshape(1, total)
    return out
