"""`xlmr-hf pretrain`: one readable Accelerate loop for masked-LM pretraining on `PretrainingStream`, with held-out
evaluation, the downstream probe, exact resume, model cards and Hub pushes. The loop knows nothing about DeepSpeed
(the ``accelerate launch`` config decides). What each step does, what ``metrics.jsonl`` holds and how MFU is counted
are in ``docs/pretraining.md``; checkpoints and the output-directory rules in ``docs/checkpoints.md``."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..data import (
    PretrainingStream,
    cc100_files,
    default_corpus_dir,
    default_heldout_dir,
    is_tokenized_corpus,
    load_stream_tokenizer,
    read_manifest,
)
from ..models import XLMRobertaConfig, XLMRobertaForMaskedLM
from .arguments import PretrainArguments, RecipeError
from .cards import pretraining_card, stage_for_push
from .checkpointing import (
    Checkpointer,
    checkpoints,
    clear_output_dir,
    prepare_output_dir,
    truncate_metrics,
)
from .evaluation import build_eval_sets, evaluate, format_eval_table
from .probe import EarlyStopping, load_probe_set, run_probe

__all__ = ["NonFiniteLossError", "measure_peak_flops", "pretrain", "training_flops_per_token"]

logger = logging.getLogger(__name__)


def measure_peak_flops(dtype: torch.dtype = torch.bfloat16, size: int = 1024, seconds: float = 0.3) -> float:
    """Dense GEMM FLOP/s of this process (``size``³ matmuls in ``dtype`` for about ``seconds``)."""
    generator = torch.Generator().manual_seed(0)  # never the global RNG: measuring must not change the training
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    torch.matmul(a, b)
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs < 2:
        torch.matmul(a, b)
        runs += 1
    return 2 * size**3 * runs / elapsed


def training_flops_per_token(config: XLMRobertaConfig, model: torch.nn.Module, seq_len: int,
                             mask_rate: float = 0.15) -> float:
    """Model FLOPs (forward + backward) per token: 6 per encoder parameter (input embeddings excluded), the LM head
    (transform + vocabulary projection) on the ``mask_rate`` share of tokens only -- a masked LM needs predictions only
    there, and ours computes only those -- plus the attention matmuls ``12 · layers · hidden · seq_len``."""
    unique = {id(p): p for p in model.parameters()}
    embedding, output = model.get_input_embeddings().weight, model.get_output_embeddings()
    projection = {id(embedding)} | ({id(output.weight)} if output is not None else set())  # tied: one tensor
    head_module = getattr(model, "lm_head", None)
    head_ids = ({id(p) for p in head_module.parameters()} if head_module is not None else set()) - projection
    positions = {id(p) for n, p in model.named_parameters() if "position_embeddings" in n or "token_type_embeddings" in n}
    encoder = sum(p.numel() for i, p in unique.items() if i not in projection | head_ids | positions)
    head = sum(unique[i].numel() for i in head_ids) + config.vocab_size * config.hidden_size
    return 6.0 * encoder + 6.0 * mask_rate * head + 12.0 * config.num_hidden_layers * config.hidden_size * seq_len


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm of a step is not finite and ``nan_policy`` is ``stop``."""


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with non-finite floats as None: metrics.jsonl is strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def _model_config(args: PretrainArguments, vocab_size: int) -> XLMRobertaConfig:
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


def _check_resume(args: PretrainArguments, checkpoint: Path, trained_with: dict[str, Any],
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


def _apply_optimizer_changes(args: PretrainArguments, optimizer: Any, scheduler: Any) -> None:
    """Make the restored optimizer and schedule use this run's hyperparameters (``allow_config_change``): the rate
    of the next update is the new peak rate times the (new) schedule at the restored position."""
    scheduler.base_lrs = [args.learning_rate for _ in scheduler.base_lrs]
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for index, group in enumerate(optimizer.param_groups):
        group["initial_lr"], group["lr"] = args.learning_rate, args.learning_rate * factor
        group["betas"], group["eps"] = (args.adam_beta1, args.adam_beta2), args.adam_epsilon
        group["weight_decay"] = args.weight_decay if index == 0 else 0.0  # group 0: the decayed parameters
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def _finite_step(accelerator: Any, model: Any, step_loss: torch.Tensor, max_grad_norm: float) -> tuple[float, bool]:
    """(the step's loss averaged over processes, whether it and the gradient norm are finite), with the gradients
    clipped to ``max_grad_norm``: one host sync per optimizer step, the same on every process."""
    mean = accelerator.reduce(step_loss, "mean")
    norm = accelerator.clip_grad_norm_(model.parameters(), max_grad_norm) if max_grad_norm > 0 else None
    checks = torch.stack([mean.float(), norm.float().to(mean.device)]) if torch.is_tensor(norm) else mean.float()[None]
    value, finite = float(mean), bool(torch.isfinite(checks).all())
    return value, finite


def _optimizer(model: torch.nn.Module, args: PretrainArguments) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon,
                             fused=all(p.device.type in ("cpu", "cuda") for p in decay + no_decay) or None)


def _schedule(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


def _fill_launcher_config(accelerator: Any, args: PretrainArguments) -> None:
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


def _tokenizer(args: PretrainArguments, corpus: str, output_dir: Path, is_main: bool, accelerator: Any) -> Any:
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


def pretrain(args: PretrainArguments) -> dict[str, Any]:
    """Run (or resume) pretraining; returns ``{"step", "loss", "checkpoint", "metrics", "eval_before",
    "eval_after", "probe", "stopped_early", "best_probe_step"}`` (the held-out figures are None without an eval
    corpus, ``eval_before`` only for a fresh run; the probe figures are None without a probe set)."""
    from accelerate import Accelerator, PartialState
    from accelerate.utils import InitProcessGroupKwargs, set_seed

    args.validate()
    # Several CPU processes (accelerate launch): gloo, which ZeRO on CPU needs (docs/pretraining.md, "Launchers").
    cpu_distributed = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    # cpu=True makes accelerate treat it as MULTI_CPU (else it counts the processes but never synchronises them).
    # DeepSpeed on CPU needs only the gloo backend, given to the Accelerator below (a PartialState created first would
    # keep accelerate from selecting DeepSpeed).
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    cpu_ddp = cpu_distributed and not deepspeed
    if deepspeed:
        processes = int(os.environ.get("WORLD_SIZE", "1"))
    else:
        processes = (PartialState(cpu=cpu_ddp, backend="gloo") if cpu_distributed else PartialState()).num_processes
    accumulation = args.batch_arithmetic(processes)
    output_dir = Path(args.output_dir)
    resume = prepare_output_dir(output_dir, resume_from_checkpoint=args.resume_from_checkpoint,
                                overwrite=args.overwrite_output_dir)
    corpus = args.corpus if args.corpus is not None else str(default_corpus_dir())
    if is_tokenized_corpus(corpus):  # an unfinished one fails here, before any work
        read_manifest(corpus)
        if args.tokenizer is None:
            raise RecipeError(f"corpus={corpus!r} is pre-tokenized: set tokenizer to the tokenizer it was written with")
    else:
        cc100_files(corpus, args.languages)  # a missing corpus or language fails here, before any work
    eval_corpus = args.eval_corpus
    if eval_corpus is None and args.corpus is None:
        eval_corpus = str(default_heldout_dir())
    if eval_corpus is not None:
        cc100_files(eval_corpus, args.languages)

    handlers = [InitProcessGroupKwargs(backend="gloo")] if cpu_distributed else []
    accelerator = Accelerator(cpu=cpu_ddp, gradient_accumulation_steps=accumulation, mixed_precision=args.mixed_precision,
                              log_with=args.report_to or None, project_dir=str(output_dir), kwargs_handlers=handlers)
    if deepspeed and args.nan_policy == "skip":
        raise RecipeError("nan_policy='skip' cannot be used under DeepSpeed (the engine steps inside backward, "
                          "before the loss can be checked); allowed there: 'stop'")
    _model_config(args, args.tokenizer_vocab_size + 2)  # a bad model setting fails before a tokenizer is trained
    if accelerator.is_main_process:
        if args.overwrite_output_dir:
            clear_output_dir(output_dir, tokenizer=args.tokenizer is None)
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    tokenizer = _tokenizer(args, corpus, output_dir, accelerator.is_main_process, accelerator)

    set_seed(args.seed)
    config = _model_config(args, len(tokenizer))
    model = XLMRobertaForMaskedLM(config)
    if args.push_to_hub and args.push_format == "transformers" and config.use_language_embeddings:
        raise RecipeError("push_format='transformers' cannot hold language embeddings (use_language_embeddings=True): "
                          "set push_format to 'xlmr-hf'")
    tokenizer.model_max_length = config.max_position_embeddings - config.pad_token_id - 1  # what positions allow
    stream = PretrainingStream(
        corpus, tokenizer, seq_len=args.seq_len, batch_size=args.micro_batch_size, languages=args.languages,
        alpha=args.alpha, unit=args.sampling_unit, shuffle_blocks=args.shuffle_blocks, seed=args.seed,
        packing=args.packing, padding_free=args.padding_free,
        mask_rate=args.mask_rate, masking=args.masking, whole_word=args.whole_word, rank=accelerator.process_index,
        world_size=accelerator.num_processes, model_vocab_size=config.vocab_size, return_language_counts=True)
    if accelerator.is_main_process:
        logger.info("language sampling (alpha=%g, p_i in %s):\n%s", args.alpha, args.sampling_unit,
                    stream.sampling_table())
    optimizer = _optimizer(model, args)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _schedule(s, args.warmup_steps, args.max_steps))
    # The scheduler is stepped here once per optimizer step: accelerate's prepared scheduler would step
    # num_processes times per call (it assumes a schedule written for one process), finishing warmup and decay early.
    _fill_launcher_config(accelerator, args)
    model, optimizer = accelerator.prepare(model, optimizer)
    checkpointer = Checkpointer(accelerator, model, optimizer, scheduler, tokenizer, output_dir, args.save_total_limit)

    probe_set = stopper = None
    if args.probe_set is not None:
        # never longer than the model's positions allow (a recipe with short blocks has few positions)
        max_length = min(args.probe_max_length, config.max_position_embeddings - config.pad_token_id - 1)
        probe_set = load_probe_set(args.probe_set, tokenizer, max_length=max_length,
                                   train_languages=args.probe_train_languages)
        metric_languages = [m.rsplit("/", 1)[1] for m in [args.early_stopping_metric] if m.count("/") == 2]
        if metric_languages and metric_languages[0] not in probe_set.languages:
            raise RecipeError(f"early_stopping_metric={args.early_stopping_metric!r} names a language the probe set "
                              f"does not evaluate; allowed: {probe_set.languages}")
        if args.early_stopping_patience is not None:
            stopper = EarlyStopping(args.early_stopping_patience, args.early_stopping_min_delta,
                                    metric=args.early_stopping_metric)

    step, language_tokens, last_loss, saved = 0, dict.fromkeys(stream.languages, 0), math.nan, None
    window_losses: list[float] = []
    window_tokens, skipped_steps = 0, 0
    if resume is not None:
        trainer_state, stream_state, trained_with = checkpointer.read(resume)
        step = int(trainer_state["step"])
        changes = _check_resume(args, resume, trained_with, trainer_state, accelerator.num_processes)
        checkpointer.restore(resume)
        if changes:
            _apply_optimizer_changes(args, optimizer, scheduler)
        stream.load_state_dict(stream_state)
        language_tokens = dict(trainer_state["language_tokens"])
        last_loss = float(trainer_state["loss"]) if trainer_state.get("loss") is not None else math.nan
        window_losses, window_tokens = list(trainer_state["window"]["losses"]), int(trainer_state["window"]["tokens"])
        skipped_steps = int(trainer_state["skipped_steps"])
        if stopper is not None and trainer_state.get("early_stopping") is not None:
            stopper.load_state_dict(trainer_state["early_stopping"])
        logger.info("resumed from %s at step %d", resume, step)
        if accelerator.is_main_process:
            truncate_metrics(output_dir / "metrics.jsonl", step)
    if accelerator.is_main_process:  # what this run really uses (after the resume check)
        (output_dir / "run_config.json").write_text(json.dumps(args.to_dict(), indent=1))
    if args.report_to:
        accelerator.init_trackers("pretrain", config={k: v for k, v in args.to_dict().items()
                                                      if isinstance(v, (int, float, str, bool))})
    flops_per_token = training_flops_per_token(config, accelerator.unwrap_model(model), args.seq_len,
                                               args.mask_rate)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.mixed_precision, torch.float32)
    peak = args.peak_flops or measure_peak_flops(dtype if accelerator.device.type == "cpu" else torch.bfloat16)
    if accelerator.device.type == "cpu" and dtype is not torch.float32:
        fp32 = measure_peak_flops(torch.float32)
        if fp32 > 4 * peak:
            logger.warning("this CPU runs %s matmuls at %.1f GFLOP/s but float32 at %.1f GFLOP/s (no native %s): "
                           "mixed_precision='no' will train faster here", args.mixed_precision, peak / 1e9,
                           fp32 / 1e9, args.mixed_precision)
    metrics_path = output_dir / "metrics.jsonl"
    run_config = args.to_dict()

    pusher = None
    if args.push_to_hub and accelerator.is_main_process:
        from ..hub import HubPusher

        # fails here, before training, without authentication
        pusher = HubPusher(args.hub_model_id, private=args.hub_private_repo)

    def card(push_format: str) -> Any:
        return pretraining_card(args, model_name=args.hub_model_id or output_dir.name, languages=stream.languages,
                                step=step, language_tokens=language_tokens, eval_results=eval_after or eval_before,
                                config=config.to_dict(), eval_corpus=eval_corpus, push_format=push_format)

    def checkpoint() -> Path:
        trainer_state = {"step": step, "language_tokens": language_tokens,
                         "loss": last_loss if math.isfinite(last_loss) else None, "processes": accelerator.num_processes,
                         "skipped_steps": skipped_steps, "window": {"losses": window_losses, "tokens": window_tokens},
                         "early_stopping": stopper.state_dict() if stopper is not None else None}
        path = checkpointer.save(step, stream_state=stream.state_dict(), trainer_state=trainer_state,
                                 run_config=run_config, card=card("xlmr-hf"))
        if pusher is not None:
            pusher.push(path, f"Training step {step}", prepare=stage_for_push(args.push_format, card))
        return path

    eval_sets = None
    if eval_corpus is not None:
        eval_sets = build_eval_sets(eval_corpus, tokenizer, languages=args.languages, seq_len=args.seq_len,
                                    tokens=args.eval_tokens, seed=args.seed)

    def log(record: dict[str, Any], tracked: dict[str, Any]) -> None:
        """One metrics.jsonl line (main process) and ``tracked`` to the trackers."""
        if accelerator.is_main_process:
            with metrics_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(_json_safe(record), allow_nan=False) + "\n")
        if args.report_to:
            accelerator.log(tracked, step=step)

    def run_eval() -> dict[str, float]:
        result = evaluate(model, eval_sets, batch_size=args.micro_batch_size, device=accelerator.device,
                          pad_token_id=tokenizer.pad_token_id, autocast=accelerator.autocast)
        log({"step": step, **result}, result)
        return result

    def run_downstream_probe() -> bool:
        """Probe, log, and tell whether early stopping asks to stop now."""
        result = run_probe(model, probe_set, batch_size=args.micro_batch_size, device=accelerator.device,
                           pad_token_id=tokenizer.pad_token_id, autocast=accelerator.autocast, seed=args.seed)
        nonlocal probe_result
        probe_result = result
        stop = stopper is not None and stopper.update(result[stopper.metric], step)
        record = {"step": step, **result}
        if stopper is not None:
            record.update({"probe/best": stopper.best, "probe/best_step": stopper.best_step,
                           "probe/bad_probes": stopper.bad_updates})
        log(record, result)
        return stop

    probe_result: dict[str, float] | None = None
    eval_before = run_eval() if eval_sets is not None and step == 0 else None
    if probe_set is not None and step == 0:
        run_downstream_probe()
    eval_after = None
    stopped_early = False
    model.train()
    batches = iter(stream)
    window_start = time.perf_counter()
    if step >= args.max_steps:
        saved = resume
        logger.info("the run in %s already finished: %s is at step %d of max_steps=%d; nothing to do (raise "
                    "max_steps to train longer)", output_dir, resume, step, args.max_steps)
    progress = tqdm(total=args.max_steps, initial=step, desc="pretrain", disable=not accelerator.is_local_main_process)
    while step < args.max_steps:
        step_loss, mean_loss, finite = torch.zeros((), device=accelerator.device), math.nan, True
        for _ in range(accumulation):
            batch = next(batches)
            counts = batch.pop("language_token_counts")
            real = batch["attention_mask"].sum() if "attention_mask" in batch else batch["input_ids"].numel()
            totals = accelerator.reduce(torch.cat([counts, torch.tensor([int(real)])]).to(accelerator.device), "sum")
            for lang, n in zip(stream.languages, totals[:-1].tolist()):
                language_tokens[lang] += int(n)
            window_tokens += int(totals[-1])
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = model(**batch).loss
                accelerator.backward(loss)
                step_loss += loss.detach().float() / accumulation
                if accelerator.sync_gradients:
                    mean_loss, finite = _finite_step(accelerator, model, step_loss, args.max_grad_norm)
                    if finite or deepspeed:  # under DeepSpeed the engine already stepped inside backward()
                        optimizer.step()
                    scheduler.step()
                optimizer.zero_grad()
        step += 1
        if not finite:
            if args.nan_policy == "stop":
                last = next(reversed(checkpoints(output_dir)), None)
                raise NonFiniteLossError(
                    f"non-finite loss or gradient norm (loss {mean_loss}) at step {step}; nothing of this step was "
                    f"written, and the last checkpoint ({last}) holds finite weights. nan_policy='skip' skips such "
                    "steps instead")
            skipped_steps += 1
            logger.warning("step %d: non-finite loss or gradient norm (loss %s): the update is skipped "
                           "(nan_policy='skip'; %d skipped so far)", step, mean_loss, skipped_steps)
        else:
            last_loss = mean_loss
            window_losses.append(last_loss)
        progress.update(1)
        if step % args.logging_steps == 0 or step == args.max_steps:
            elapsed = time.perf_counter() - window_start
            tokens_per_s = window_tokens / elapsed if elapsed > 0 else 0.0
            record = {"step": step, "loss": sum(window_losses) / len(window_losses) if window_losses else None,
                      "skipped_steps": skipped_steps, "learning_rate": scheduler.get_last_lr()[0],
                      "tokens_per_s": tokens_per_s,
                      "mfu": tokens_per_s * flops_per_token / (peak * accelerator.num_processes),
                      **{f"tokens/{lang}": n for lang, n in language_tokens.items()}}
            log(record, record)
            progress.set_postfix(loss=f"{record['loss'] or math.nan:.4f}", tok_s=f"{tokens_per_s:,.0f}")
            window_losses, window_tokens, window_start = [], 0, time.perf_counter()
        if eval_sets is not None and ((args.eval_steps and step % args.eval_steps == 0) or step == args.max_steps):
            eval_after = run_eval()
        if probe_set is not None and ((args.probe_steps and step % args.probe_steps == 0) or step == args.max_steps):
            stopped_early = run_downstream_probe() and step < args.max_steps
            if stopped_early:
                logger.warning("early stopping at step %d: %s has not improved on %.4f (step %d) by more than %g in "
                               "%d probes", step, stopper.metric, stopper.best, stopper.best_step, stopper.min_delta,
                               stopper.bad_updates)
        if step % args.save_steps == 0 or step == args.max_steps or stopped_early:
            saved = checkpoint()
        if stopped_early:
            break
    progress.close()
    if pusher is not None:
        pusher.wait()
    accelerator.wait_for_everyone()
    # Last: end_training() finishes the trackers (main process) and destroys the process group, so no collective may
    # follow it (a wait_for_everyone() after it made the launcher exit 1 after a successful run). Destroying the group
    # also keeps rank 0 from aborting after success.
    accelerator.end_training()
    if deepspeed:
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()  # else a later from_pretrained in this process would still enter zero.Init
    if eval_after is not None and accelerator.is_main_process:
        logger.info("held-out MLM per language:\n%s", format_eval_table(eval_before, eval_after))
    return {"step": step, "loss": last_loss, "checkpoint": str(saved) if saved else None,
            "metrics": str(metrics_path), "eval_before": eval_before, "eval_after": eval_after,
            "probe": probe_result, "stopped_early": stopped_early,
            "best_probe_step": stopper.best_step if stopper is not None else None}
