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

__all__ = ["apply_optimizer_changes", "build_optimizer", "cache_cpu_allocator", "check_resume", "fill_launcher_config",
           "load_start_model", "model_config", "run_tokenizer", "schedule"]

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


# Fields that give weights their shapes: a released model's own values are kept (model_overrides may not change them).
_SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "type_vocab_size", "layer_norm_position", "n_langs",
                 "use_language_embeddings", "pad_token_id")


def load_start_model(args: PretrainArguments, tokenizer: Any, languages: list[str]) -> Any:
    """The model ``model_name_or_path`` names, as our `XLMRobertaForMaskedLM`, made ready for this run: the
    non-shape ``model_overrides`` applied, the embeddings extended to a larger ``tokenizer`` (`init_new_embeddings`),
    and zero-initialised language embeddings added when the run uses them and the model has none (so the first step
    starts from the released model's function)."""
    from ..models.conversion import import_from_transformers

    where = f"model_name_or_path={args.model_name_or_path!r}"
    try:
        own = XLMRobertaConfig.from_pretrained(args.model_name_or_path).to_dict()
        shaped = {k: v for k, v in args.model_overrides.items() if k in _SHAPE_FIELDS}
        changed = sorted(k for k, v in shaped.items() if own.get(k) != v)
        if changed:  # a recipe's shape fields may stay when they equal the model's own
            raise RecipeError(f"model_overrides {changed} would change the shapes of {where}'s weights (it has "
                              f"{ {k: own.get(k) for k in changed} }); allowed with a starting model: its own values "
                              "or the other fields (dropout, attention and speed settings)")
        rest = {k: v for k, v in args.model_overrides.items() if k not in _SHAPE_FIELDS}
        model = import_from_transformers(args.model_name_or_path, head="masked-lm", **rest)
    except RecipeError:
        raise
    except (OSError, ValueError, TypeError) as error:
        raise RecipeError(f"{where} could not be loaded as an xlmr-hf or transformers xlm-roberta masked-LM model: "
                          f"{str(error).splitlines()[0]}") from None
    config = model.config
    if config.max_position_embeddings < args.seq_len + config.pad_token_id + 1:
        raise RecipeError(f"seq_len={args.seq_len} is longer than model_name_or_path={args.model_name_or_path!r} "
                          f"allows (max_position_embeddings={config.max_position_embeddings}: seq_len <= "
                          f"{config.max_position_embeddings - config.pad_token_id - 1})")
    if len(tokenizer) > config.vocab_size:
        _extend_vocabulary(args, model, tokenizer)
    if args.use_language_embeddings:
        _add_language_embeddings(model, len(languages), args.model_name_or_path)
    return model


def _extend_vocabulary(args: PretrainArguments, model: Any, tokenizer: Any) -> None:
    from .vocabulary import extend_embeddings

    try:  # the new tokenizer must extend the model's own (checked id by id); mean init also splits with it
        old = load_stream_tokenizer(args.model_name_or_path)
    except ValueError as error:
        raise RecipeError(f"tokenizer={args.tokenizer!r} has more ids than model_name_or_path="
                          f"{args.model_name_or_path!r} has embeddings, and extending them needs that model's own "
                          f"tokenizer, which does not load: {str(error).splitlines()[0]}") from None
    try:
        extend_embeddings(model, old, tokenizer, init=args.init_new_embeddings, seed=args.seed)
    except ValueError as error:
        raise RecipeError(f"tokenizer={args.tokenizer!r} cannot extend model_name_or_path="
                          f"{args.model_name_or_path!r}: {str(error).splitlines()[0]}") from None


def _add_language_embeddings(model: Any, languages: int, source: str) -> None:
    config = model.config
    if config.use_language_embeddings:
        if config.n_langs != languages:
            raise RecipeError(f"model_name_or_path={source!r} has language embeddings for n_langs={config.n_langs} "
                              f"languages but this run trains on {languages}")
        return
    embeddings = model.roberta.embeddings
    table = torch.nn.Embedding(languages, config.hidden_size, device=embeddings.word_embeddings.weight.device,
                               dtype=embeddings.word_embeddings.weight.dtype)
    torch.nn.init.zeros_(table.weight)
    embeddings.language_embeddings = table
    config.use_language_embeddings, config.n_langs = True, languages


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
    """The run's tokenizer: ``tokenizer``, else ``model_name_or_path``'s own, else one trained on the corpus into
    ``<output_dir>/tokenizer`` (by the main process; reused when it is there)."""
    if args.tokenizer is not None:
        return load_stream_tokenizer(args.tokenizer)  # a clear error when it cannot be loaded
    if args.model_name_or_path is not None:
        try:
            return load_stream_tokenizer(args.model_name_or_path)
        except ValueError as error:
            raise RecipeError(f"model_name_or_path={args.model_name_or_path!r} has no tokenizer that loads "
                              f"({str(error).splitlines()[0]}): set tokenizer") from None
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
