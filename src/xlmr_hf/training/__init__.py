"""Training: the pretraining loop on Accelerate, its run settings, checkpoints, held-out evaluation and the
downstream probe; fine-tuning recipes on Trainer. The fine-tuning names load on first use, so pretraining never
imports the fine-tuning stack (``evaluate``, ``datasets``)."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from .arguments import PretrainArguments, RecipeError, load_recipe
from .checkpointing import Checkpointer, CheckpointError, checkpoints, latest_checkpoint
from .pretrain import (
    NonFiniteLossError,
    Pretrainer,
    measure_peak_flops,
    pretrain,
    training_flops_per_token,
)
from .probe import EarlyStopping, ProbeError, ProbeSet, load_probe_set, run_probe
from .state import StateError

_LAZY = {"finetune": "finetune", "FinetuneArguments": "finetune_arguments"}

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "EarlyStopping",
    "FinetuneArguments",
    "NonFiniteLossError",
    "PretrainArguments",
    "Pretrainer",
    "ProbeError",
    "ProbeSet",
    "RecipeError",
    "StateError",
    "checkpoints",
    "finetune",
    "latest_checkpoint",
    "load_probe_set",
    "load_recipe",
    "measure_peak_flops",
    "pretrain",
    "run_probe",
    "training_flops_per_token",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Importing the submodule ``finetune`` binds it on the package, which would hide the function of that name (an
    eager ``from .finetune import finetune`` used to rebind it): keep the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "finetune" and isinstance(value, types.ModuleType):
            value = getattr(value, "finetune", value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
