"""Batches for the pretraining loop: a torchdata `StatefulDataLoader` over `PretrainingStream` (worker processes,
pinned memory), and the stream state of the last batch the loop consumed, which is what a checkpoint stores."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch

__all__ = ["BatchLoader"]


class BatchLoader:
    """Iterates the stream's batches through a `StatefulDataLoader`; `stream_state` is the state of the stream after
    the last batch taken from it, whatever the number of workers.

    Why not the loader's own ``state_dict``: every worker plans the same global order of blocks (see
    ``docs/data_pipeline.md``), so the stream copy that produced the last consumed batch holds the state of the whole
    stream at that point. Saving that state alone keeps checkpoints independent of ``dataloader_num_workers`` (a run
    may resume with more or fewer workers) and in the format older checkpoints have.
    """

    def __init__(self, stream: Any, *, num_workers: int, prefetch_factor: int, pin_memory: bool, seed: int) -> None:
        from torchdata.stateful_dataloader import StatefulDataLoader

        self.stream = stream
        # Its own generator: a DataLoader otherwise draws its base seed from the global RNG, shifting dropout.
        generator = torch.Generator().manual_seed(seed)
        self.loader = StatefulDataLoader(
            stream, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, generator=generator,
            prefetch_factor=prefetch_factor if num_workers else None)
        self._iterator: Iterator[dict[str, torch.Tensor]] | None = None

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._iterator is None:
            with warnings.catch_warnings():  # torchdata 0.11 calls a deprecated torch.set_vital on every iter()
                warnings.filterwarnings("ignore", message=".*set_vital.*")
                self._iterator = iter(self.loader)
        return next(self._iterator)

    def __iter__(self) -> BatchLoader:
        return self

    def stream_state(self) -> dict[str, Any]:
        """`PretrainingStream.state_dict` after the last consumed batch (JSON-serializable)."""
        if self._iterator is None:
            return self.stream.state_dict()
        state = self.loader.state_dict()
        if "dataset_state" in state:  # no workers: the stream iterated in this process
            return dict(state["dataset_state"])
        try:
            snapshot = state["_snapshot"]
            worker = snapshot["_last_yielded_worker_id"]
            return dict(snapshot["_worker_snapshots"][f"worker_{worker}"]["dataset_state"])
        except (KeyError, TypeError) as error:
            raise RuntimeError(f"StatefulDataLoader.state_dict() has an unknown layout (missing {error}); this "
                               "torchdata version is not supported") from None

    def load_stream_state(self, state: Mapping[str, Any]) -> None:
        """Continue after the batch ``state`` was saved at; workers start a new round robin from there."""
        if self._iterator is not None:
            raise RuntimeError("load_stream_state must be called before the first batch")
        self.stream.load_state_dict({**state, "base": None, "base_workers": 0})
