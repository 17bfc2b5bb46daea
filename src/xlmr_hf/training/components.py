"""The parts a pretraining run is built from (`Pretrainer.setup`): the model config, the tokenizer, the optimizer and
its schedule, the launcher's DeepSpeed settings and the checks made when resuming."""

from __future__ import annotations

import ctypes
import logging
import platform
from pathlib import Path
from typing import Any

import torch

from ..data import load_stream_tokenizer
from ..models import XLMRobertaConfig
from .arguments import PretrainArguments, RecipeError

__all__ = ["apply_optimizer_changes", "cache_cpu_allocator", "build_optimizer", "check_resume", "fill_launcher_config", "model_config",
           "run_tokenizer", "schedule"]

logger = logging.getLogger(__name__)


def model_config(args: PretrainArguments, vocab_size: int) -> XLMRobertaConfig:
    """The model's config; an unknown ``model_overrides`` field is an error with a did-you-mean."""
    import inspect

    from ..settings import unknown_field

    known = (set(inspect.signature(XLMRobertaConfig.__init__).parameters) - {"self", "kwargs"}) | set(
        XLMRobertaConfig().to_dict())
    for name in args.model_overrides:
        if name not in known:
            raise RecipeError(f"model_overrides: {unknown_field(name, known, 'XLMRobertaConfig field')}")
    overrides = {"vocab_size": vocab_size, "max_position_embeddings": args.seq_len + 2, **args.model_overrides}
    try:
        config = XLMRobertaConfig.from_preset(args.model_preset, **overrides)
    except (ValueError, TypeError) as error:
        raise RecipeError(f"model_preset={args.model_preset!r} with model_overrides={args.model_overrides!r}: "
                          f"{error}") from None
    if config.max_position_embeddings < args.seq_len + 2:
        raise RecipeError(f"seq_len={args.seq_len} needs max_position_embeddings >= {args.seq_len + 2}, got "
                          f"{config.max_position_embeddings}")
    return config


def check_resume(args: PretrainArguments, checkpoint: Path, trained_with: dict[str, Any],
                  trainer_state: dict[str, Any], processes: int) -> dict[str, tuple[Any, Any]]:
    """The settings that differ from those ``checkpoint`` was trained with: an error, unless
    ``allow_config_change`` (then logged and returned); a changed ``max_steps`` is logged."""
    changes = args.trajectory_changes(trained_with)
    trained_processes = trainer_state.get("processes", processes)
    if trained_processes != processes:
        changes["processes"] = (trained_processes, processes)
    if changes and not args.allow_config_change:
        name, (old, new) = next(iter(changes.items()))
        more = f" (and {', '.join(list(changes)[1:])})" if len(changes) > 1 else ""
        raise RecipeError(f"resuming {checkpoint.name} with {name}={new!r}, but it was trained with {name}={old!r}"
                          f"{more}; the run would not continue the same trajectory. Set --allow_config_change true "
                          "to change it anyway, or resume with the checkpoint's settings")
    for name, (old, new) in changes.items():
        logger.warning("allow_config_change: %s changes from %r to %r at step %s", name, old, new,
                       trainer_state.get("step"))
    if trained_with.get("max_steps") not in (None, args.max_steps):
        logger.info("max_steps changes from %s to %d: the learning rate now decays to 0 at step %d",
                    trained_with["max_steps"], args.max_steps, args.max_steps)
    return changes


def apply_optimizer_changes(args: PretrainArguments, optimizer: Any, scheduler: Any) -> None:
    """Make the restored optimizer and schedule use this run's hyperparameters (``allow_config_change``): the rate
    of the next update is the new peak rate times the (new) schedule at the restored position."""
    scheduler.base_lrs = [args.learning_rate for _ in scheduler.base_lrs]
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for index, group in enumerate(optimizer.param_groups):
        group["initial_lr"], group["lr"] = args.learning_rate, args.learning_rate * factor
        group["betas"], group["eps"] = (args.adam_beta1, args.adam_beta2), args.adam_epsilon
        group["weight_decay"] = args.weight_decay if index == 0 else 0.0  # group 0: the decayed parameters
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def build_optimizer(model: torch.nn.Module, args: PretrainArguments) -> torch.optim.Optimizer:
    """AdamW with RoBERTa's betas and epsilon; no weight decay on norms and biases; the fused kernel on CPU and CUDA
    (it also lets the loop skip a non-finite update on the device, see `Pretrainer`)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon,
                             fused=all(p.device.type in ("cpu", "cuda") for p in decay + no_decay) or None)


def schedule(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor of optimizer step ``step``: linear warmup over ``warmup`` steps, then linear decay to 0."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


def fill_launcher_config(accelerator: Any, args: PretrainArguments) -> None:
    """Give a DeepSpeed config from the launcher (``recipes/deepspeed/*.json``) this run's values where it says
    ``"auto"``; a value it fixes that contradicts the recipe is an error (no DeepSpeed import: accelerate's plugin)."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    config = plugin.deepspeed_config
    for key, value in (("train_micro_batch_size_per_gpu", args.micro_batch_size),
                       ("gradient_clipping", args.max_grad_norm)):
        given = config.get(key, "auto")
        if given == "auto":
            config[key] = value
        elif float(given) != float(value):
            raise RecipeError(f"the DeepSpeed config sets {key}={given!r} but the recipe has {value!r}: set it to "
                              '"auto" in the DeepSpeed JSON (the recipe then decides) or make them equal')


def run_tokenizer(args: PretrainArguments, corpus: str, output_dir: Path, is_main: bool, accelerator: Any) -> Any:
    if args.tokenizer is not None:
        return load_stream_tokenizer(args.tokenizer)  # a clear error when it cannot be loaded
    directory = output_dir / "tokenizer"
    if is_main and not (directory / "tokenizer.json").is_file():
        from ..tokenization import (
            TokenizerTrainingConfig,
            TokenizerTrainingError,
            train_tokenizer,
        )

        logger.info("no tokenizer given: training a %d-piece tokenizer on %s into %s", args.tokenizer_vocab_size,
                    corpus, directory)
        try:
            train_tokenizer(corpus, directory, TokenizerTrainingConfig(vocab_size=args.tokenizer_vocab_size,
                                                                       seed=args.seed, heldout_sentences=0,
                                                                       model_max_length=args.seq_len),
                            languages=args.languages, progress=False, overwrite=True)  # our own folder
        except TokenizerTrainingError as error:
            raise RecipeError(f"tokenizer_vocab_size={args.tokenizer_vocab_size}: {error}") from error
    accelerator.wait_for_everyone()
    return load_stream_tokenizer(directory)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def cache_cpu_allocator() -> bool:
    """Make glibc keep freed memory (no mmap for large blocks, no trimming): a CPU training step frees and allocates
    the same large buffers (gradients, the embedding's bf16 copy) every step, and with glibc's defaults each one is
    unmapped and page-faulted in again, which took about half of a base step on a 2-core VM. Process-wide and
    permanent (glibc cannot return to its adaptive defaults); returns whether it was applied (not on other C
    libraries)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        applied = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
    if applied:
        logger.info("cpu_allocator_cache: glibc keeps freed memory in the process (mmap_max=0, no trimming)")
    return applied
