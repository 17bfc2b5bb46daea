"""`xlmr-hf pretrain`: masked-LM pretraining on `PretrainingStream` with Accelerate, as a `Pretrainer` whose parts
(setup, `train_step`, evaluation and probe, save and resume, `state_dict`) are separate methods; `pretrain(args)` is
the entry point. The loop knows nothing about DeepSpeed (the ``accelerate launch`` config decides) and waits for the
device only at logging, evaluation and save steps. What each step does, what ``metrics.jsonl`` holds and how MFU is
counted are in ``docs/pretraining.md``; checkpoints and the output-directory rules in ``docs/checkpoints.md``."""

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
    read_manifest,
)
from ..models import XLMRobertaConfig, XLMRobertaForMaskedLM
from .arguments import PretrainArguments, RecipeError
from .batches import BatchLoader
from .cards import pretraining_card, stage_for_push
from .checkpointing import Checkpointer, checkpoints, clear_output_dir, prepare_output_dir, truncate_metrics
from .components import (
    apply_optimizer_changes,
    build_optimizer,
    cache_cpu_allocator,
    check_resume,
    fill_launcher_config,
    load_start_model,
    model_config,
    run_tokenizer,
    schedule,
)
from .evaluation import (
    build_eval_sets,
    evaluate,
    format_eval_table,
    most_frequent_token_accuracy,
    piece_characters,
)
from .probe import EarlyStopping, load_probe_set, run_probe
from .step_metrics import StepMetrics

__all__ = ["NonFiniteLossError", "Pretrainer", "measure_peak_flops", "pretrain", "training_flops_per_token"]

logger = logging.getLogger(__name__)


def measure_peak_flops(dtype: torch.dtype = torch.bfloat16, size: int | None = None, seconds: float = 0.3,
                       device: str | torch.device = "cpu") -> float:
    """Dense GEMM FLOP/s of this process on ``device``: ``size``³ matmuls in ``dtype`` (default size 1024 on CPU,
    8192 on a GPU) for about ``seconds``, timed to the device's completion."""
    device = torch.device(device)
    size = size or (1024 if device.type == "cpu" else 8192)
    generator = torch.Generator().manual_seed(0)  # never the global RNG: measuring must not change the training
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.matmul(a, b)
    synchronize()
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs < 2:
        torch.matmul(a, b)
        runs += 1
        if runs % 8 == 0:  # keep the GPU queue short, so the loop ends near ``seconds``
            synchronize()
    synchronize()
    elapsed = time.perf_counter() - start
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


def _launch(args: PretrainArguments) -> tuple[int, bool, bool, list[Any]]:
    """(gradient accumulation steps, whether DeepSpeed runs the model, whether the processes are CPU DDP, the
    Accelerator's kwargs handlers). Several CPU processes (``accelerate launch``) use gloo, which ZeRO on CPU needs
    (``docs/pretraining.md``, "Launchers")."""
    from accelerate import PartialState
    from accelerate.utils import InitProcessGroupKwargs

    cpu_distributed = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    # cpu=True makes accelerate treat it as MULTI_CPU (else it counts the processes but never synchronises them).
    # DeepSpeed on CPU needs only the gloo backend, given to the Accelerator (a PartialState created first would
    # keep accelerate from selecting DeepSpeed).
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    cpu_ddp = cpu_distributed and not deepspeed
    if deepspeed:
        processes = int(os.environ.get("WORLD_SIZE", "1"))
    else:
        processes = (PartialState(cpu=cpu_ddp, backend="gloo") if cpu_distributed else PartialState()).num_processes
    handlers = [InitProcessGroupKwargs(backend="gloo")] if cpu_distributed else []
    return args.batch_arithmetic(processes), deepspeed, cpu_ddp, handlers


class Pretrainer:
    """One pretraining run: `setup` builds it (or restores it from a checkpoint), `train` runs it to ``max_steps``.

    Per step (`train_step`) nothing is copied to the host: losses and non-finite flags stay on the device
    (`StepMetrics`), a non-finite update is skipped inside the fused AdamW kernel (``found_inf``), and the figures are
    reduced over processes and read only at logging, evaluation and save steps (`sync`).
    """

    def __init__(self, args: PretrainArguments) -> None:
        args.validate()
        self.args = args
        self.output_dir = Path(args.output_dir)
        self.step, self.skipped_steps, self.last_loss = 0, 0, math.nan
        self.window_losses: list[float] = []
        self.window_tokens, self.window_data_seconds, self.window_start = 0, 0.0, 0.0
        self.eval_before: dict[str, float] | None = None
        self.eval_after: dict[str, float] | None = None
        self.probe_result: dict[str, float] | None = None
        self.stopped_early, self.saved = False, None
        self.stopper: EarlyStopping | None = None
        self.probe_set = self.eval_sets = self.pusher = None
        self.eval_baseline: dict[str, float] | None = None
        self.piece_chars: torch.Tensor | None = None

    # ------------------------------------------------------------------------------------------------- setup
    def setup(self) -> Pretrainer:
        """Check the inputs, build every part of the run, and restore the checkpoint it resumes from (if any)."""
        self._setup_accelerator()
        self._setup_model()
        self._setup_data()
        self._setup_optimization()
        self._setup_probe()
        resume = self.resume_from
        if resume is not None:
            self.load_checkpoint(resume)
        self._setup_reporting()
        return self

    def _setup_accelerator(self) -> None:
        args = self.args
        from accelerate import Accelerator

        accumulation, deepspeed, cpu_ddp, handlers = _launch(args)
        self.accumulation, self.deepspeed = accumulation, deepspeed
        self.resume_from = prepare_output_dir(self.output_dir, resume_from_checkpoint=args.resume_from_checkpoint,
                                              overwrite=args.overwrite_output_dir)
        self.corpus = args.corpus if args.corpus is not None else str(default_corpus_dir())
        if is_tokenized_corpus(self.corpus):  # an unfinished one fails here, before any work
            available = read_manifest(self.corpus)["languages"]
            if args.tokenizer is None and args.model_name_or_path is None:
                raise RecipeError(f"corpus={self.corpus!r} is pre-tokenized: set tokenizer to the tokenizer it was "
                                  "written with")
            self.languages = sorted(args.languages or available)
        else:  # a missing corpus or language fails here, before any work
            self.languages = sorted({lang for lang, _ in cc100_files(self.corpus, args.languages)})
        # XLM's language embeddings: one id per training language, in sorted order (the stream's)
        self.language_ids = {lang: i for i, lang in enumerate(self.languages)} if args.use_language_embeddings \
            else None
        self.eval_corpus = args.eval_corpus
        if self.eval_corpus is None and args.corpus is None:
            self.eval_corpus = str(default_heldout_dir())
        if self.eval_corpus is not None:
            cc100_files(self.eval_corpus, args.languages)
        self.accelerator = Accelerator(
            cpu=cpu_ddp, gradient_accumulation_steps=accumulation, mixed_precision=args.mixed_precision,
            log_with=args.report_to or None, project_dir=str(self.output_dir), kwargs_handlers=handlers)
        if deepspeed and args.nan_policy == "skip":
            raise RecipeError("nan_policy='skip' cannot be used under DeepSpeed (the engine steps inside backward, "
                              "before the loss can be checked); allowed there: 'stop'")
        self.device = self.accelerator.device
        if self.device.type == "cpu" and args.cpu_allocator_cache:
            cache_cpu_allocator()

    def _setup_model(self) -> None:
        from accelerate.utils import set_seed

        args, accelerator = self.args, self.accelerator
        if args.model_name_or_path is None:  # a bad model setting fails before a tokenizer is trained
            self._model_config(args.tokenizer_vocab_size + 2)
        if accelerator.is_main_process:
            if args.overwrite_output_dir:
                clear_output_dir(self.output_dir, tokenizer=args.tokenizer is None)
            self.output_dir.mkdir(parents=True, exist_ok=True)
        accelerator.wait_for_everyone()
        self.tokenizer = run_tokenizer(args, self.corpus, self.output_dir, accelerator.is_main_process, accelerator)
        set_seed(args.seed)
        if args.model_name_or_path is not None:
            self.model = load_start_model(args, self.tokenizer, self.languages)
            self.config = self.model.config
            logger.info("continuing from %s (%d parameters, vocabulary %d)", args.model_name_or_path,
                        self.model.num_parameters(), self.config.vocab_size)
        else:
            self.config = self._model_config(len(self.tokenizer))
            self.model = XLMRobertaForMaskedLM(self.config)
        if args.push_to_hub and args.push_format == "transformers" and self.config.use_language_embeddings:
            raise RecipeError("push_format='transformers' cannot hold language embeddings (use_language_embeddings="
                              "True): set push_format to 'xlmr-hf'")
        self.tokenizer.model_max_length = self.config.max_position_embeddings - self.config.pad_token_id - 1
        self._apply_speed_settings(self.model)

    def _model_config(self, vocab_size: int) -> XLMRobertaConfig:
        config = model_config(self.args, vocab_size)
        if self.language_ids is not None:
            config.use_language_embeddings, config.n_langs = True, len(self.language_ids)
        return config

    def _apply_speed_settings(self, model: XLMRobertaForMaskedLM) -> None:
        """attn_implementation, gradient checkpointing and regional compilation (the repeated encoder layers are
        compiled in place: one compilation serves all layers, and parameter names stay those of the checkpoint --
        accelerate's ``compile_regions`` would return copies whose state-dict keys gain ``_orig_mod``)."""
        args = self.args
        if args.attn_implementation != model.config._attn_implementation:
            try:
                model.set_attn_implementation(args.attn_implementation)
            except (ImportError, ValueError) as error:
                raise RecipeError(f"attn_implementation={args.attn_implementation!r} cannot be used here: "
                                  f"{str(error).splitlines()[0]}") from None
        if args.gradient_checkpointing:
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.25 (the old name warns)
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if args.torch_compile:
            for layer in model.roberta.encoder.layer:
                layer.compile()

    def _setup_data(self) -> None:
        args, accelerator = self.args, self.accelerator
        self.stream = PretrainingStream(
            self.corpus, self.tokenizer, seq_len=args.seq_len, batch_size=args.micro_batch_size,
            languages=args.languages, alpha=args.alpha, schedule=args.alpha_schedule, caps=args.language_caps,
            unit=args.sampling_unit, shuffle_blocks=args.shuffle_blocks, seed=args.seed, packing=args.packing,
            padding_free=args.padding_free, mask_rate=args.mask_rate_schedule or args.mask_rate,
            masking=args.masking, whole_word=args.whole_word, language_ids=self.language_ids,
            parallel_corpus=args.parallel_corpus, tlm_ratio=args.tlm_ratio, rank=accelerator.process_index,
            world_size=accelerator.num_processes, model_vocab_size=self.config.vocab_size,
            return_language_counts=True)
        if accelerator.is_main_process:
            logger.info("language sampling (alpha=%g, p_i in %s):\n%s", self.stream.schedule_values(0)["alpha"],
                        args.sampling_unit, self.stream.sampling_table())
        self.batches = BatchLoader(self.stream, num_workers=args.dataloader_num_workers,
                                   prefetch_factor=args.dataloader_prefetch_factor, seed=args.seed,
                                   pin_memory=args.dataloader_pin_memory and self.device.type == "cuda")
        self.language_tokens = dict.fromkeys(self.stream.languages, 0)
        self.window_language_tokens = dict.fromkeys(self.stream.languages, 0)
        self.metrics = StepMetrics(self.stream.languages, self.device, capacity=args.logging_steps)
        if self.eval_corpus is not None:
            self.eval_sets = build_eval_sets(self.eval_corpus, self.tokenizer, languages=args.languages,
                                             seq_len=args.seq_len, tokens=args.eval_tokens, seed=args.seed)
            self.eval_baseline = most_frequent_token_accuracy(self.eval_sets)
            self.piece_chars = piece_characters(self.tokenizer)

    def _setup_optimization(self) -> None:
        args, accelerator = self.args, self.accelerator
        optimizer = build_optimizer(self.model, args)
        # Stepped here once per optimizer step: accelerate's prepared scheduler would step num_processes times per
        # call (it assumes a schedule written for one process), finishing warmup and decay early.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: schedule(s, args.warmup_steps, args.max_steps))
        fill_launcher_config(accelerator, args)
        self.model, self.optimizer = accelerator.prepare(self.model, optimizer)
        # A non-finite update is skipped by the fused AdamW kernel itself (found_inf), without a host round trip;
        # fp16 loss scaling owns found_inf, and other optimizers lack it: those decide on the host.
        self.skip_on_device = (not self.deepspeed and args.mixed_precision != "fp16"
                               and bool(optimizer.defaults.get("fused")))
        self.checkpointer = Checkpointer(accelerator, self.model, self.optimizer, self.scheduler, self.tokenizer,
                                         self.output_dir, args.save_total_limit)
        self.run_config = args.to_dict()

    def _setup_probe(self) -> None:
        args = self.args
        if args.probe_set is None:
            return
        # never longer than the model's positions allow (a recipe with short blocks has few positions)
        max_length = min(args.probe_max_length, self.config.max_position_embeddings - self.config.pad_token_id - 1)
        self.probe_set = load_probe_set(args.probe_set, self.tokenizer, max_length=max_length,
                                        train_languages=args.probe_train_languages)
        metric_languages = [m.rsplit("/", 1)[1] for m in [args.early_stopping_metric] if m.count("/") == 2]
        if metric_languages and metric_languages[0] not in self.probe_set.languages:
            raise RecipeError(f"early_stopping_metric={args.early_stopping_metric!r} names a language the probe set "
                              f"does not evaluate; allowed: {self.probe_set.languages}")
        if args.early_stopping_patience is not None:
            self.stopper = EarlyStopping(args.early_stopping_patience, args.early_stopping_min_delta,
                                         metric=args.early_stopping_metric)

    def _setup_reporting(self) -> None:
        args, accelerator = self.args, self.accelerator
        if accelerator.is_main_process:  # what this run really uses (after the resume check)
            (self.output_dir / "run_config.json").write_text(json.dumps(args.to_dict(), indent=1))
        if args.report_to:
            accelerator.init_trackers("pretrain", config={k: v for k, v in args.to_dict().items()
                                                          if isinstance(v, (int, float, str, bool))})
        self.flops_per_token = training_flops_per_token(self.config, accelerator.unwrap_model(self.model),
                                                        args.seq_len, args.mask_rate)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.mixed_precision, torch.float32)
        on_cpu = self.device.type == "cpu"
        self.peak = args.peak_flops or measure_peak_flops(dtype if on_cpu else torch.bfloat16, device=self.device)
        if on_cpu and dtype is not torch.float32:
            fp32 = measure_peak_flops(torch.float32)
            if fp32 > 4 * self.peak:
                logger.warning("this CPU runs %s matmuls at %.1f GFLOP/s but float32 at %.1f GFLOP/s (no native %s): "
                               "mixed_precision='no' will train faster here", args.mixed_precision, self.peak / 1e9,
                               fp32 / 1e9, args.mixed_precision)
        self.metrics_path = self.output_dir / "metrics.jsonl"
        if args.push_to_hub and accelerator.is_main_process:
            from ..hub import HubPusher

            # fails here, before training, without authentication
            self.pusher = HubPusher(args.hub_model_id, private=args.hub_private_repo)

    # ---------------------------------------------------------------------------------------------- training
    def train(self) -> dict[str, Any]:
        """Train to ``max_steps`` (or until early stopping); returns the summary `pretrain` documents."""
        args = self.args
        if self.eval_sets is not None and self.step == 0:
            self.eval_before = self.run_eval()
        if self.probe_set is not None and self.step == 0:
            self.run_downstream_probe()
        self.model.train()
        if self.step >= args.max_steps:
            self.saved = self.resume_from
            logger.info("the run in %s already finished: %s is at step %d of max_steps=%d; nothing to do (raise "
                        "max_steps to train longer)", self.output_dir, self.resume_from, self.step, args.max_steps)
        progress = tqdm(total=args.max_steps, initial=self.step, desc="pretrain",
                        disable=not self.accelerator.is_local_main_process)
        self.window_start = time.perf_counter()
        while self.step < args.max_steps and not self.stopped_early:
            self.train_step()
            progress.update(1)
            self.after_step(progress)
        progress.close()
        return self.finish()

    def train_step(self) -> None:
        """One optimizer step: ``accumulation`` micro-batches, then clipping and the update (`_update`)."""
        accelerator = self.accelerator
        step_loss, bad = torch.zeros((), device=self.device), None
        for _ in range(self.accumulation):
            batch = self._next_batch()
            with accelerator.accumulate(self.model):
                with accelerator.autocast():
                    loss = self.model(**batch).loss
                accelerator.backward(loss)
                step_loss += loss.detach().float() / self.accumulation
                if accelerator.sync_gradients:
                    bad = self._update(step_loss)
                self.optimizer.zero_grad()
        self.step += 1
        self.metrics.record_step(self.step, step_loss, bad)

    def _next_batch(self) -> dict[str, torch.Tensor]:
        """The next micro-batch on the device (asynchronous copy from pinned memory); time spent waiting is counted."""
        start = time.perf_counter()
        batch = next(self.batches)
        self.window_data_seconds += time.perf_counter() - start
        self.metrics.count_batch(batch)
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _update(self, step_loss: torch.Tensor) -> torch.Tensor:
        """Clip, then step unless the loss or the gradient norm is non-finite on some process; returns that flag
        (a device tensor: the same decision on every process, taken without a host round trip when it can be)."""
        args, accelerator = self.args, self.accelerator
        norm = accelerator.clip_grad_norm_(self.model.parameters(), args.max_grad_norm) if args.max_grad_norm > 0 \
            else None
        bad = ~torch.isfinite(step_loss)
        if torch.is_tensor(norm):
            bad = bad | ~torch.isfinite(norm.to(bad.device))
        if accelerator.num_processes > 1:
            bad = accelerator.reduce(bad.to(torch.float32), "sum") > 0
        if self.deepspeed:
            self.optimizer.step()  # the engine already stepped inside backward()
        elif self.skip_on_device:
            self.optimizer.optimizer.found_inf = bad.to(torch.float32)
            self.optimizer.step()
        elif not bool(bad):  # fp16 loss scaling or a non-fused optimizer: decided on the host
            self.optimizer.step()
        self.scheduler.step()
        return bad

    def after_step(self, progress: Any = None) -> None:
        """Logging, evaluation, probe and checkpoint of the step just taken; the device is read only here."""
        args, step = self.args, self.step
        last = step == args.max_steps
        log = step % args.logging_steps == 0 or last
        run_eval = self.eval_sets is not None and ((args.eval_steps and step % args.eval_steps == 0) or last)
        probe = self.probe_set is not None and ((args.probe_steps and step % args.probe_steps == 0) or last)
        save = step % args.save_steps == 0 or last
        if not (log or run_eval or probe or save):
            return
        self.sync()
        if log:
            self.log_window(progress)
        if run_eval:
            self.eval_after = self.run_eval()
        if probe:
            self.stopped_early = self.run_downstream_probe() and not last
            if self.stopped_early:
                logger.warning("early stopping at step %d: %s has not improved on %.4f (step %d) by more than %g in "
                               "%d probes", step, self.stopper.metric, self.stopper.best, self.stopper.best_step,
                               self.stopper.min_delta, self.stopper.bad_updates)
        if save or self.stopped_early:
            self.saved = self.save_checkpoint()

    def sync(self) -> None:
        """Bring the steps since the last sync to the host: token counts, the window's losses, skipped steps; a
        non-finite step under ``nan_policy='stop'`` raises here, before anything of it is logged or saved."""
        flushed = self.metrics.flush(self.accelerator)
        for lang, n in zip(self.stream.languages, flushed.language_tokens):
            self.language_tokens[lang] += int(n)
            self.window_language_tokens[lang] += int(n)
        self.window_tokens += int(flushed.tokens)
        for step, loss, finite in zip(flushed.steps, flushed.losses, flushed.finite):
            if finite:
                self.last_loss = loss
                self.window_losses.append(loss)
                continue
            if self.args.nan_policy == "stop":
                last = next(reversed(checkpoints(self.output_dir)), None)
                seen = "" if step == self.step else f" (seen at step {self.step}; the updates between were skipped)"
                raise NonFiniteLossError(
                    f"non-finite loss or gradient norm (loss {loss}) at step {step}{seen}; nothing of this step was "
                    f"written, and the last checkpoint ({last}) holds finite weights. nan_policy='skip' skips such "
                    "steps instead")
            self.skipped_steps += 1
            logger.warning("step %d: non-finite loss or gradient norm (loss %s): the update is skipped "
                           "(nan_policy='skip'; %d skipped so far)", step, loss, self.skipped_steps)

    def log_window(self, progress: Any = None) -> None:
        """One metrics.jsonl line for the steps since the previous one (call `sync` first)."""
        elapsed = time.perf_counter() - self.window_start
        tokens_per_s = self.window_tokens / elapsed if elapsed > 0 else 0.0
        losses, window_total = self.window_losses, sum(self.window_language_tokens.values()) or 1
        record = {"step": self.step, "loss": sum(losses) / len(losses) if losses else None,
                  "skipped_steps": self.skipped_steps, "learning_rate": self.scheduler.get_last_lr()[0],
                  **self.stream.schedule_values(self.metrics.clock),  # alpha and mask_rate at the last batch
                  "tokens_per_s": tokens_per_s,
                  "mfu": tokens_per_s * self.flops_per_token / (self.peak * self.accelerator.num_processes),
                  "data_share": self.window_data_seconds / elapsed if elapsed > 0 else 0.0,
                  **{f"tokens/{lang}": n for lang, n in self.language_tokens.items()},
                  **{f"share/{lang}": n / window_total for lang, n in self.window_language_tokens.items()}}
        if self.device.type == "cuda":
            record["memory/peak_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        self.log(record, record)
        if progress is not None:
            progress.set_postfix(loss=f"{record['loss'] or math.nan:.4f}", tok_s=f"{tokens_per_s:,.0f}")
        self.window_losses, self.window_tokens, self.window_data_seconds = [], 0, 0.0
        self.window_language_tokens = dict.fromkeys(self.window_language_tokens, 0)
        self.window_start = time.perf_counter()

    def log(self, record: dict[str, Any], tracked: dict[str, Any]) -> None:
        """One metrics.jsonl line (main process) and ``tracked`` to the trackers."""
        if self.accelerator.is_main_process:
            with self.metrics_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(_json_safe(record), allow_nan=False) + "\n")
        if self.args.report_to:
            self.accelerator.log(tracked, step=self.step)

    # ------------------------------------------------------------------------------------ evaluation / probe
    def run_eval(self) -> dict[str, float]:
        """Held-out masked-LM loss and accuracy per language, logged."""
        result = evaluate(self.model, self.eval_sets, batch_size=self.args.micro_batch_size, device=self.device,
                          pad_token_id=self.tokenizer.pad_token_id, autocast=self.accelerator.autocast,
                          language_to_id=self.language_ids, piece_chars=self.piece_chars)
        self.log({"step": self.step, **result}, result)
        return result

    def run_downstream_probe(self) -> bool:
        """Probe, log, and tell whether early stopping asks to stop now."""
        result = run_probe(self.model, self.probe_set, batch_size=self.args.micro_batch_size, device=self.device,
                           pad_token_id=self.tokenizer.pad_token_id, autocast=self.accelerator.autocast,
                           seed=self.args.seed, language_to_id=self.language_ids)
        self.probe_result = result
        stopper = self.stopper
        stop = stopper is not None and stopper.update(result[stopper.metric], self.step)
        record = {"step": self.step, **result}
        if stopper is not None:
            record.update({"probe/best": stopper.best, "probe/best_step": stopper.best_step,
                           "probe/bad_probes": stopper.bad_updates})
        self.log(record, result)
        return stop

    # -------------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The loop's own state (``trainer_state.json``; call `sync` first): step, token counts, the logging window,
        skipped steps and early stopping. Weights, optimizer, schedule, RNG and stream are saved by `Checkpointer`."""
        return {"step": self.step, "language_tokens": dict(self.language_tokens),
                "loss": self.last_loss if math.isfinite(self.last_loss) else None,
                "processes": self.accelerator.num_processes, "skipped_steps": self.skipped_steps,
                "window": {"losses": list(self.window_losses), "tokens": self.window_tokens,
                           "language_tokens": dict(self.window_language_tokens), "clock": self.metrics.clock},
                "early_stopping": self.stopper.state_dict() if self.stopper is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.step = int(state["step"])
        self.language_tokens = dict(state["language_tokens"])
        self.last_loss = float(state["loss"]) if state.get("loss") is not None else math.nan
        self.window_losses = list(state["window"]["losses"])
        self.window_tokens = int(state["window"]["tokens"])
        self.window_language_tokens.update(state["window"].get("language_tokens", {}))  # older checkpoints: zeros
        self.metrics.clock = int(state["window"].get("clock", 0))
        self.skipped_steps = int(state["skipped_steps"])
        if self.stopper is not None and state.get("early_stopping") is not None:
            self.stopper.load_state_dict(state["early_stopping"])

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint-<step>`` (and push it when ``push_to_hub``)."""
        path = self.checkpointer.save(self.step, stream_state=self.batches.stream_state(),
                                      trainer_state=self.state_dict(), run_config=self.run_config,
                                      card=self.card("xlmr-hf"))
        if self.pusher is not None:
            self.pusher.push(path, f"Training step {self.step}", prepare=stage_for_push(self.args.push_format,
                                                                                          self.card))
        return path

    def load_checkpoint(self, path: Path) -> None:
        """Resume from ``path``: check the settings against the ones it was trained with, then restore everything."""
        args = self.args
        trainer_state, stream_state, trained_with = self.checkpointer.read(path)
        changes = check_resume(args, path, trained_with, trainer_state, self.accelerator.num_processes)
        self.checkpointer.restore(path)
        if changes:
            apply_optimizer_changes(args, self.optimizer, self.scheduler)
        self.batches.load_stream_state(stream_state)
        self.load_state_dict(trainer_state)
        logger.info("resumed from %s at step %d", path, self.step)
        if self.accelerator.is_main_process:
            truncate_metrics(self.output_dir / "metrics.jsonl", self.step)

    def card(self, push_format: str) -> Any:
        """The model card of the current state."""
        args = self.args
        return pretraining_card(args, model_name=args.hub_model_id or self.output_dir.name,
                                languages=self.stream.languages, step=self.step,
                                language_tokens=self.language_tokens, eval_results=self.eval_after or self.eval_before,
                                config=self.config.to_dict(), eval_corpus=self.eval_corpus, push_format=push_format)

    def finish(self) -> dict[str, Any]:
        """Wait for pushes, end the trackers and the process group; returns the run's summary."""
        accelerator = self.accelerator
        if self.pusher is not None:
            self.pusher.wait()
        accelerator.wait_for_everyone()
        # Last: end_training() finishes the trackers (main process) and destroys the process group, so no collective
        # may follow it (a wait_for_everyone() after it made the launcher exit 1 after a successful run). Destroying
        # the group also keeps rank 0 from aborting after success.
        accelerator.end_training()
        if self.deepspeed:
            from transformers.integrations.deepspeed import unset_hf_deepspeed_config

            unset_hf_deepspeed_config()  # else a later from_pretrained in this process would still enter zero.Init
        if self.eval_after is not None and accelerator.is_main_process:
            table = format_eval_table(self.eval_before, self.eval_after, self.eval_baseline)
            logger.info("held-out MLM per language:\n%s", table)
        return {"step": self.step, "loss": self.last_loss, "checkpoint": str(self.saved) if self.saved else None,
                "metrics": str(self.metrics_path), "eval_before": self.eval_before, "eval_after": self.eval_after,
                "eval_baseline": self.eval_baseline,
                "probe": self.probe_result, "stopped_early": self.stopped_early,
                "best_probe_step": self.stopper.best_step if self.stopper is not None else None}


def pretrain(args: PretrainArguments) -> dict[str, Any]:
    """Run (or resume) pretraining; returns ``{"step", "loss", "checkpoint", "metrics", "eval_before",
    "eval_after", "eval_baseline" (most-frequent-token accuracy per language), "probe", "stopped_early",
    "best_probe_step"}`` (the held-out figures are None without an eval
    corpus, ``eval_before`` only for a fresh run; the probe figures are None without a probe set)."""
    return Pretrainer(args).setup().train()
