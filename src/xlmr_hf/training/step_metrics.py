"""What the pretraining loop measures per step, kept where it is produced: losses and non-finite flags on the device,
token counts on the host (they come with the CPU batch). Nothing here waits for the device until `flush`, which the
loop calls only at logging, evaluation and save steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["FlushedSteps", "StepMetrics"]


@dataclass
class FlushedSteps:
    """Host values of the steps recorded since the previous flush, reduced over processes."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # the step's loss averaged over processes
    finite: list[bool] = field(default_factory=list)  # loss and gradient norm finite on every process
    language_tokens: list[int] = field(default_factory=list)  # per language, in the stream's order
    tokens: int = 0  # real (non-pad) tokens over all processes


class StepMetrics:
    """Device buffers for up to ``capacity`` optimizer steps between flushes, and host token counters."""

    def __init__(self, languages: Sequence[str], device: torch.device, capacity: int) -> None:
        self.languages = list(languages)
        self.device = device
        self._losses = torch.zeros(capacity, dtype=torch.float32, device=device)
        self._bad = torch.zeros(capacity, dtype=torch.bool, device=device)
        self._steps: list[int] = []
        self._counts = torch.zeros(len(self.languages) + 1, dtype=torch.int64)  # languages..., real tokens
        self._clock: torch.Tensor | int = 0

    def count_batch(self, batch: dict[str, torch.Tensor]) -> None:
        """Count a (CPU) batch's tokens per language and its real tokens (their sum: MLM and TLM batches alike);
        pops ``language_token_counts`` and the stream's schedule clock ``stream_clock`` (kept in `clock`)."""
        counts = batch.pop("language_token_counts")
        self._clock = batch.pop("stream_clock")  # a CPU tensor, read at logging steps only
        self._counts[:-1] += counts
        self._counts[-1] += counts.sum()

    @property
    def clock(self) -> int:
        """The stream's schedule clock (consumed tokens) at the last batch counted."""
        return int(self._clock)

    @clock.setter
    def clock(self, value: int) -> None:
        self._clock = int(value)

    def record_step(self, step: int, loss: torch.Tensor, bad: torch.Tensor) -> None:
        """Keep optimizer step ``step``'s local loss and its non-finite flag, already agreed by all processes (device
        tensors: no synchronisation)."""
        index = len(self._steps)
        if index == self._losses.numel():
            raise RuntimeError(f"internal: more than {index} steps recorded between two flushes")
        self._losses[index] = loss
        self._bad[index] = bad
        self._steps.append(step)

    def flush(self, accelerator: Any) -> FlushedSteps:
        """Reduce over processes and copy to the host (the loop's only synchronisation points); then reset."""
        n = len(self._steps)
        losses, counts = self._losses[:n], self._counts.to(self.device)
        if accelerator.num_processes > 1:  # the flags already are (the update decision needed them on every process)
            losses = accelerator.reduce(losses, "mean")
            counts = accelerator.reduce(counts, "sum")
        host_counts = counts.tolist()
        flushed = FlushedSteps(steps=list(self._steps), losses=losses.tolist(), finite=(~self._bad[:n]).tolist(),
                               language_tokens=host_counts[:-1], tokens=host_counts[-1])
        self._steps.clear()
        self._counts.zero_()
        return flushed
