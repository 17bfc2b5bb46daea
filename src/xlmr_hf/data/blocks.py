"""Block planning from lengths: one language's documents → blocks of at most ``seq_len`` tokens, by `Packer`'s rules.

`LanguageBlocks` plans a language's blocks from paragraph and document lengths alone, so a pre-tokenized corpus is
planned without reading its tokens, and it keeps only a cursor as state. `DocumentRun` is what a source
(`xlmr_hf.data.stream.OnlineSource`, `xlmr_hf.data.tokenized.TokenizedSource`) hands it. See
``docs/data_pipeline.md`` ("Block planning").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["BlockPlan", "DocumentRun", "DocumentSource", "LanguageBlocks"]

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass
class DocumentRun:
    """Consecutive whole documents of one language; positions count tokens from the run's first document.

    ``starts`` has one entry per document plus the end of the last; ``unit_ends`` is the end of every non-empty
    paragraph unit (its ids and ``</s>``); ``lines`` / ``bytes`` are per document; ``last`` says the run ends the
    epoch (the source then wraps to its first document). ``tokens`` holds the run's tokens when they are in memory;
    ``states`` is the source position before each document and after the last (one more entry than documents)."""

    starts: np.ndarray
    unit_ends: np.ndarray
    lines: np.ndarray
    bytes: np.ndarray
    last: bool
    tokens: np.ndarray | None = None
    states: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)


class DocumentSource(Protocol):
    """Where `LanguageBlocks` gets documents: sequential reads from a seekable position."""

    language: str

    def seek(self, state: Any) -> None:
        """Continue before the document whose position ``state`` is (``None``: the first document)."""

    def read(self, min_tokens: int) -> DocumentRun:
        """The next whole documents, at least ``min_tokens`` tokens of them unless the epoch ends first."""

    def tokens(self, start: int, end: int) -> np.ndarray:
        """Tokens ``[start, end)`` of the epoch (sources whose runs carry no tokens)."""

    def document_starts(self, start: int, end: int) -> np.ndarray:
        """Starts of the documents beginning in ``(start, end)`` of the epoch (sources whose runs carry no tokens)."""


@dataclass
class BlockPlan:
    """Blocks planned for one language, as parallel arrays (absolute positions over epochs)."""

    starts: np.ndarray
    ends: np.ndarray
    documents: np.ndarray  # documents that end in each block
    lines: np.ndarray
    bytes: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def tokens(self) -> np.ndarray:
        """Tokens of each block, its ``<s>`` included."""
        return self.ends - self.starts + 1

    def head(self, n: int) -> BlockPlan:
        return BlockPlan(*(getattr(self, name)[:n] for name in ("starts", "ends", "documents", "lines", "bytes")))

    def tail(self, n: int) -> BlockPlan:
        return BlockPlan(*(getattr(self, name)[n:] for name in ("starts", "ends", "documents", "lines", "bytes")))

    @staticmethod
    def join(plans: list[BlockPlan]) -> BlockPlan:
        return BlockPlan(*(np.concatenate([getattr(p, name) for p in plans])
                           for name in ("starts", "ends", "documents", "lines", "bytes")))


def _documents_ending_in(starts: np.ndarray, ends: np.ndarray, document_ends: np.ndarray, cumulative_lines: np.ndarray,
                         cumulative_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(documents, their lines, their bytes) ending in each block ``(start, end]``; empty documents at position 0
    count in the block that starts there. The cumulative arrays have one more entry than ``document_ends``."""
    low = np.searchsorted(document_ends, np.where(starts == 0, -1, starts), side="right")
    high = np.searchsorted(document_ends, ends, side="right")
    return (high - low, cumulative_lines[high] - cumulative_lines[low],
            cumulative_bytes[high] - cumulative_bytes[low])


def _empty_plan() -> BlockPlan:
    return BlockPlan(_EMPTY, _EMPTY, _EMPTY, _EMPTY, _EMPTY)


class LanguageBlocks:
    """One language's blocks, planned ahead from lengths and taken in order (see ``docs/data_pipeline.md``).

    A block is ``<s>`` plus at most ``seq_len - 1`` consecutive tokens of the language's stream (paragraph units of
    ids + ``</s>``, documents in order, epoch after epoch): greedy, ending at the last unit end that fits; a unit longer
    than the budget is cut into full chunks from its start; an epoch end always ends a block, and with
    ``complete_doc`` so does every document end. This is `Packer` on one language, computed from positions.
    """

    def __init__(self, source: DocumentSource, seq_len: int, packing: str, table: np.ndarray | None = None) -> None:
        self.source, self.budget, self.complete_doc = source, seq_len - 1, packing == "complete_doc"
        self.position = 0  # start of the next block to take (absolute, over epochs)
        self.epoch_tokens: int | None = None  # tokens per epoch, once known
        self.table = table  # block ends of one epoch, computed before (`epoch_table`): planning is a lookup
        if table is not None:
            self.epoch_tokens = int(source.tokens_per_epoch)
            if not len(table) or int(table[-1]) != self.epoch_tokens:
                raise ValueError(f"language {source.language!r}: the block table ends at "
                                 f"{int(table[-1]) if len(table) else 0}, not at the epoch's {self.epoch_tokens} tokens")
        self._reset(0, None)

    # ------------------------------------------------------------------------------------------------ loading
    def _reset(self, document_start: int, state: Any) -> None:
        self._starts = np.array([document_start], dtype=np.int64)  # loaded documents' starts + end of the last
        self._unit_ends, self._lines, self._bytes = _EMPTY, _EMPTY, _EMPTY
        self._hard = _EMPTY  # epoch ends among the loaded documents
        self._tokens = np.zeros(0, dtype=np.int64)  # loaded tokens (sources that hand them over)
        self._states: list[Any] = [state]  # source position before each loaded document and after the last
        self._planned = _empty_plan()
        self._plan_position = self.position

    @property
    def _loaded_end(self) -> int:
        return int(self._starts[-1])

    def _load(self, until: int) -> None:
        """Load whole documents until the loaded tokens reach ``until``."""
        while self._loaded_end < until:
            run = self.source.read(until - self._loaded_end)
            base = self._loaded_end
            if len(run):
                self._starts = np.concatenate([self._starts, run.starts[1:] + base])
                self._unit_ends = np.concatenate([self._unit_ends, run.unit_ends + base])
                self._lines = np.concatenate([self._lines, run.lines])
                self._bytes = np.concatenate([self._bytes, run.bytes])
                self._states[-1:] = run.states
                if run.tokens is not None:
                    self._tokens = np.concatenate([self._tokens, run.tokens])
            if run.last:
                end = self._loaded_end
                if end == 0:
                    raise ValueError(f"language {self.source.language!r} has no tokens (no documents, or every "
                                     "paragraph is empty)")
                if self.epoch_tokens is None:
                    self.epoch_tokens = end
                if end % self.epoch_tokens:
                    raise ValueError(f"language {self.source.language!r}: an epoch ends at token {end}, not a "
                                     f"multiple of its {self.epoch_tokens} tokens; the corpus changed while it was read")
                self._hard = np.append(self._hard, end)

    # ------------------------------------------------------------------------------------------------ planning
    def _candidates(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted positions where a block starting at or after ``position`` may end, and the index of the end of the
        block that starts at each (-1 where that depends on documents not loaded yet)."""
        c, ends, loaded_end = self.budget, self._unit_ends, self._loaded_end
        first = int(np.searchsorted(ends, position, side="right"))
        unit_ends = ends[first:]
        # Every unit end, document start and epoch end is a candidate; they are all unit ends (or at most
        # `position`), so no sorting is needed, except to insert the cut points inside over-long units.
        points = np.concatenate([[position], unit_ends, [loaded_end] if not len(unit_ends) or unit_ends[-1] <
                                 loaded_end else []]).astype(np.int64)
        unit_starts = np.concatenate([[ends[first - 1] if first else self._starts[0]], unit_ends[:-1]])
        lengths = unit_ends - unit_starts
        long = np.flatnonzero(lengths > c)
        if len(long):
            counts = (lengths[long] - 1) // c
            offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + 1
            cuts = np.repeat(unit_starts[long], counts) + offsets * c
            cuts = cuts[cuts > position]
            points = np.insert(points, np.searchsorted(points, cuts), cuts)
        nxt = np.searchsorted(points, points + c, side="right") - 1
        hard = self._starts if self.complete_doc else self._hard  # document starts include the epoch ends
        settled = points + c <= loaded_end
        if len(hard):
            after = np.searchsorted(hard, points, side="right")
            bounded = after < len(hard)
            next_hard = hard[np.minimum(after, len(hard) - 1)]
            nxt = np.where(bounded, np.minimum(nxt, np.searchsorted(points, next_hard)), nxt)
            settled |= bounded & (next_hard <= points + c)
        return points, np.where(settled, nxt, -1)

    def _plan(self, wanted: int) -> None:
        """Plan at least ``wanted`` blocks ahead of the cursor."""
        if self.table is not None:
            self._plan_from_table(wanted)
        while len(self._planned) < wanted:
            missing = wanted - len(self._planned)
            self._load(self._plan_position + (missing + 1) * self.budget + 1)
            points, nxt = self._candidates(self._plan_position)
            chain, i, steps = [], 0, nxt.tolist()
            while len(chain) < missing:
                j = steps[i]
                if j <= i:
                    break
                chain.append(j)
                i = j
            if not chain:  # the next block ends beyond what is loaded: load more
                self._load(self._loaded_end + self.budget + 1)
                continue
            ends = points[chain]
            starts = np.concatenate([[self._plan_position], ends[:-1]])
            self._planned = BlockPlan.join([self._planned, self._account(starts, ends)])
            self._plan_position = int(ends[-1])

    def _plan_from_table(self, wanted: int) -> None:
        missing = wanted - len(self._planned)
        if missing <= 0:
            return
        table, epoch_tokens = self.table, self.epoch_tokens
        epoch, offset = divmod(self._plan_position, epoch_tokens)
        indices = int(np.searchsorted(table, offset, side="right")) + np.arange(missing)
        epochs = epoch + indices // len(table)
        ends = np.asarray(table[indices % len(table)], dtype=np.int64)
        starts = np.concatenate([[offset], ends[:-1]])
        starts = np.where(indices % len(table) == 0, 0, starts)  # a block after an epoch end starts the next epoch
        counted = _documents_ending_in(starts, ends, self.source.document_ends, self.source.cumulative_lines,
                                       self.source.cumulative_bytes)
        base = epochs * epoch_tokens
        plan = BlockPlan(starts + base, ends + base, *counted)
        self._planned = BlockPlan.join([self._planned, plan])
        self._plan_position = int(plan.ends[-1])

    def epoch_table(self) -> np.ndarray:
        """The block ends of the first epoch (from a fresh planner): what `table` takes."""
        ends = []
        while not ends or self.epoch_tokens is None or ends[-1][-1] < self.epoch_tokens:
            self._plan(len(self._planned) + 4096)
            ends.append(self._planned.ends)
            self._planned = _empty_plan()
            self.position = self._plan_position
            self._trim()
        table = np.concatenate(ends)
        return table[:int(np.searchsorted(table, self.epoch_tokens, side="right"))]

    def _account(self, starts: np.ndarray, ends: np.ndarray) -> BlockPlan:
        """Documents ending in each block ``(start, end]`` (empty documents at position 0: the first block)."""
        lines = np.concatenate([[0], np.cumsum(self._lines)])
        size = np.concatenate([[0], np.cumsum(self._bytes)])
        return BlockPlan(starts, ends, *_documents_ending_in(starts, ends, self._starts[1:], lines, size))

    def peek(self, n: int) -> BlockPlan:
        """The next ``n`` blocks (not taken)."""
        self._plan(n)
        return self._planned.head(n)

    def take(self, n: int, *, payload: bool) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Take the next ``n`` planned blocks; with ``payload``, their tokens and segment starts from memory."""
        self._plan(n)
        taken, self._planned = self._planned.head(n), self._planned.tail(n)
        out = None
        if payload:
            base = int(self._starts[0])
            out = []
            for start, end in zip(taken.starts.tolist(), taken.ends.tolist()):
                inside = self._starts[(self._starts > start) & (self._starts < end)]
                out.append((self._tokens[start - base:end - base], np.unique(inside) - start))
        if n:
            self.position = int(taken.ends[-1])
            if self.table is None:
                self._trim()
        return out

    def _trim(self) -> None:
        """Forget loaded documents that end at or before the cursor."""
        keep = int(np.searchsorted(self._starts[1:], self.position, side="right"))
        if not keep:
            return
        base, new_base = int(self._starts[0]), int(self._starts[keep])
        self._starts = self._starts[keep:]
        self._lines, self._bytes = self._lines[keep:], self._bytes[keep:]
        self._states = self._states[keep:]
        self._unit_ends = self._unit_ends[np.searchsorted(self._unit_ends, new_base, side="right"):]
        self._hard = self._hard[self._hard >= new_base]
        if len(self._tokens):
            self._tokens = self._tokens[new_base - base:]

    def epoch_position(self, start: int, end: int) -> tuple[int, int]:
        """A block's ``(start, end)`` within its epoch."""
        if not self.epoch_tokens:
            return start, end
        offset = start // self.epoch_tokens * self.epoch_tokens
        return start - offset, end - offset

    @property
    def epoch(self) -> int:
        """Completed passes over the language before the cursor."""
        return self.position // self.epoch_tokens if self.epoch_tokens else 0

    # ------------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The cursor and the source position of the document holding it (plain JSON)."""
        if self.table is not None:  # the source's document index of the cursor (`TokenizedSource` states)
            epoch, offset = divmod(self.position, self.epoch_tokens)
            document = int(np.searchsorted(self.source.document_ends, offset, side="right"))
            start = int(self.source.document_ends[document - 1]) if document else 0
            return {"position": self.position, "document_start": epoch * self.epoch_tokens + start,
                    "source": document, "epoch_tokens": self.epoch_tokens}
        return {"position": self.position, "document_start": int(self._starts[0]), "source": self._states[0],
                "epoch_tokens": self.epoch_tokens}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a `state_dict` (the documents around the cursor are read again)."""
        self.position = int(state["position"])
        if self.table is None:
            self.epoch_tokens = state["epoch_tokens"]
        self.source.seek(state["source"])
        self._reset(int(state["document_start"]), state["source"])
