"""Training: the pretraining loop on Accelerate, its run settings, checkpoints, held-out evaluation and the
downstream probe."""

from .arguments import PretrainArguments, RecipeError, load_recipe
from .checkpointing import (
    CheckpointError,
    checkpoints,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .finetune import finetune
from .finetune_arguments import FinetuneArguments
from .pretrain import measure_peak_flops, pretrain, training_flops_per_token
from .probe import EarlyStopping, ProbeError, ProbeSet, load_probe_set, run_probe

__all__ = [
    "CheckpointError",
    "EarlyStopping",
    "FinetuneArguments",
    "PretrainArguments",
    "ProbeError",
    "ProbeSet",
    "RecipeError",
    "checkpoints",
    "finetune",
    "latest_checkpoint",
    "load_checkpoint",
    "load_probe_set",
    "load_recipe",
    "measure_peak_flops",
    "pretrain",
    "run_probe",
    "save_checkpoint",
    "training_flops_per_token",
]
