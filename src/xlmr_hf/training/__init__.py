"""Training: the pretraining loop on Accelerate, its run settings, checkpoints, held-out evaluation and the
downstream probe."""

from .arguments import PretrainArguments, RecipeError, load_recipe
from .checkpointing import Checkpointer, CheckpointError, checkpoints, latest_checkpoint
from .finetune import finetune
from .finetune_arguments import FinetuneArguments
from .pretrain import (
    NonFiniteLossError,
    measure_peak_flops,
    pretrain,
    training_flops_per_token,
)
from .probe import EarlyStopping, ProbeError, ProbeSet, load_probe_set, run_probe
from .state import StateError

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "EarlyStopping",
    "FinetuneArguments",
    "NonFiniteLossError",
    "PretrainArguments",
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
