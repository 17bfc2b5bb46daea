"""Training: the pretraining loop on Accelerate, its run settings and checkpoints."""

from .arguments import PretrainArguments, RecipeError, load_recipe
from .checkpointing import (
    CheckpointError,
    checkpoints,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .pretrain import measure_peak_flops, pretrain, training_flops_per_token

__all__ = [
    "CheckpointError",
    "PretrainArguments",
    "RecipeError",
    "checkpoints",
    "latest_checkpoint",
    "load_checkpoint",
    "load_recipe",
    "measure_peak_flops",
    "pretrain",
    "save_checkpoint",
    "training_flops_per_token",
]
