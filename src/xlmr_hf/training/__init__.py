"""Training: the pretraining loop on Accelerate, its run settings, checkpoints, held-out evaluation and the
downstream probe; fine-tuning recipes on Trainer. Names are imported on first use, so pretraining never imports the
fine-tuning stack (``evaluate``, ``datasets``)."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CheckpointError": "checkpointing",
    "Checkpointer": "checkpointing",
    "EarlyStopping": "probe",
    "FinetuneArguments": "finetune_arguments",
    "NonFiniteLossError": "pretrain",
    "PretrainArguments": "arguments",
    "Pretrainer": "pretrain",
    "ProbeError": "probe",
    "ProbeSet": "probe",
    "RecipeError": "arguments",
    "StateError": "state",
    "checkpoints": "checkpointing",
    "finetune": "finetune",
    "latest_checkpoint": "checkpointing",
    "load_probe_set": "probe",
    "load_recipe": "arguments",
    "measure_peak_flops": "pretrain",
    "pretrain": "pretrain",
    "run_probe": "probe",
    "training_flops_per_token": "pretrain",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
