"""`xlmr-hf finetune {xnli,ner,mlqa}`: `transformers.Trainer` fine-tuning for any Auto checkpoint, evaluated per
language, with model selection on the English or the joint dev set and per-language result tables.

One *run* trains one model: `cross-lingual-transfer` (XNLI, MLQA) and the NER settings ``en`` / ``all`` are one run
evaluated on every language; XNLI ``translate-train`` and NER ``each`` train one run per language, evaluated on that
language. Every run is repeated for each seed in ``seeds``; the tables report mean ± std over seeds.

Per run: the task module (`xlmr_hf.tasks`) loads the raw examples (Hub ids or local official files) and builds
features without padding; the Trainer pads each batch dynamically (``group_by_length`` batches similar lengths) and
trains in bf16 where the hardware has it natively. All dev languages are evaluated together at every evaluation and the
checkpoint kept is the best by ``selection``: ``en-dev`` (the English dev set, xtreme's practice; the training
language's dev set when English is not evaluated) or ``joint-dev`` (the mean over all dev languages, the paper's
recommendation). The kept model is scored on every test language.

Guard-rails: after each evaluation and at the end of training the run checks for collapse -- a classifier that predicts
one class for every dev example, a tagger that predicts only ``O``, or a training loss stuck near ln K (K classes) --
and warns with advice; the warnings also go to ``results.json``.

Outputs in ``output_dir``: ``results.md``, ``results.csv`` and ``results.json`` (per-language test scores, average,
seeds, warnings, the resolved settings) and one checkpoint directory per run and seed.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .arguments import RecipeError
from .finetune_arguments import FinetuneArguments
from .finetune_tasks import TaskAdapter, adapter_for

__all__ = ["CollapseMonitor", "finetune", "format_results", "freeze_lower_layers", "native_bf16"]

logger = logging.getLogger(__name__)


def native_bf16() -> bool:
    """Whether bf16 matmuls run natively here (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def freeze_lower_layers(model: torch.nn.Module, layers: int) -> int:
    """Freeze the embeddings and the lowest ``layers`` transformer layers of a BERT/RoBERTa-family encoder; returns the
    number of frozen parameters. A model without ``base_model.embeddings`` and ``base_model.encoder.layer`` is an
    error naming its type."""
    if layers <= 0:
        return 0
    base = getattr(model, "base_model", model)
    blocks = getattr(getattr(base, "encoder", None), "layer", None)
    embeddings = getattr(base, "embeddings", None)
    if blocks is None or embeddings is None:
        raise RecipeError(f"freeze_layers={layers}: {type(model).__name__} has no base_model.embeddings and "
                          "base_model.encoder.layer to freeze; allowed: 0 for this model")
    if layers > len(blocks):
        raise RecipeError(f"freeze_layers={layers}; allowed: at most {len(blocks)} (the model's layers)")
    frozen = 0
    for module in [embeddings, *blocks[:layers]]:
        for param in module.parameters():
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


class CollapseMonitor:
    """Collects collapse warnings: one predicted class / only ``O`` on dev, or a training loss stuck near ln K."""

    def __init__(self, num_classes: int | None, run: str) -> None:
        self.num_classes, self.run = num_classes, run
        self.losses: list[float] = []
        self.warnings: list[str] = []

    def check_predictions(self, predicted: Sequence[Any], *, none_label: Any = None, unit: str = "examples") -> None:
        """Warn when every one of (at least 8) dev predictions is the same class (or ``none_label``)."""
        values = set(predicted)
        if len(predicted) >= 8 and len(values) == 1:
            value = next(iter(values))
            what = f"only {value!r} (no entity)" if none_label is not None and value == none_label else \
                f"class {value!r}"
            self._warn(f"{self.run}: the selected model predicts {what} for all {len(predicted)} dev {unit} -- "
                       "fine-tuning has collapsed")

    def check_loss(self) -> None:
        if self.num_classes is None or self.num_classes < 2 or len(self.losses) < 3:
            return
        chance, last = math.log(self.num_classes), statistics.fmean(self.losses[-3:])
        if abs(last - chance) < 0.02 * chance:
            self._warn(f"{self.run}: the training loss ends at {last:.4f}, stuck at ln {self.num_classes} = "
                       f"{chance:.4f} (chance level) -- the model has learned nothing")

    def _warn(self, message: str) -> None:
        advice = ("; try a lower learning_rate (large models collapse above ~1e-5), a longer warmup_ratio, another "
                  "seed, or check that the labels are right")
        if message + advice not in self.warnings:
            self.warnings.append(message + advice)
            logger.warning("%s%s", message, advice)


def _trainer_callback(monitor: CollapseMonitor) -> Any:
    from transformers import TrainerCallback

    class _LossLog(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                monitor.losses.append(float(logs["loss"]))

    return _LossLog()


def _scoring_trainer(scorer: Callable[[Any], dict[str, float]], **kwargs: Any) -> Any:
    """A `Trainer` whose evaluation scores the raw predictions with ``scorer`` (per-language metrics and the selection
    figure): the Trainer's own ``compute_metrics`` runs only when the dataset has labels, which QA features lack."""
    from transformers import Trainer

    class ScoringTrainer(Trainer):
        def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                     metric_key_prefix: str = "eval") -> dict[str, float]:
            start = time.perf_counter()
            dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
            output = self.evaluation_loop(self.get_eval_dataloader(dataset), description="Evaluation",
                                          prediction_loss_only=False, ignore_keys=ignore_keys,
                                          metric_key_prefix=metric_key_prefix)
            metrics = dict(output.metrics)
            metrics.update({f"{metric_key_prefix}_{k}": v for k, v in scorer(output.predictions).items()})
            metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 4)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return ScoringTrainer(**kwargs)


def _bf16(setting: str) -> bool:
    return native_bf16() if setting == "auto" else setting == "true"


def _run_units(args: FinetuneArguments, adapter: TaskAdapter) -> list[tuple[str, list[str]]]:
    """``(run name, languages)``: one unit, or one per language for translate-train / each."""
    languages = adapter.languages(args)
    if args.resolved_setting() in ("translate-train", "each"):
        return [(lang, [lang]) for lang in languages]
    return [("all", languages)]


def _train_one(args: FinetuneArguments, adapter: TaskAdapter, data: Any, tokenizer: Any, unit: str, seed: int,
               output: Path) -> dict[str, Any]:
    from transformers import TrainingArguments, set_seed

    set_seed(seed)
    model = adapter.model(args, data)
    frozen = freeze_lower_layers(model, args.freeze_layers)
    if frozen:
        logger.info("froze %d parameters (embeddings + %d layers)", frozen, args.freeze_layers)
    train = adapter.train_features(args, data.train, tokenizer)
    dev = adapter.eval_set(args, data.validation, tokenizer)
    monitor = CollapseMonitor(len(data.labels) if data.labels else None, f"{unit}/seed {seed}")
    select_language = "en" if args.selection == "en-dev" and "en" in data.validation else None
    if args.selection == "en-dev" and select_language is None:
        select_language = args.train_language if args.train_language in data.validation else next(iter(
            data.validation))
        logger.info("selection=en-dev: English is not evaluated in run %s; selecting on %s dev", unit, select_language)

    final = {"check": False}  # collapse is judged on the selected model, not on early evaluations

    def compute_metrics(predictions: Any) -> dict[str, float]:
        scores = dev.score(predictions, monitor=monitor if final["check"] else None)
        key = adapter.primary
        values = [scores[lang][key] for lang in dev.languages]
        out = {f"{lang}_{name}": value for lang in dev.languages for name, value in scores[lang].items()}
        out[f"avg_{key}"] = statistics.fmean(values)
        out["selection"] = scores[select_language][key] if select_language else out[f"avg_{key}"]
        return out

    strategy = "steps" if args.eval_steps else "epoch"
    training_args = TrainingArguments(
        output_dir=str(output), seed=seed, data_seed=seed, learning_rate=args.learning_rate,
        num_train_epochs=args.num_train_epochs, max_steps=args.max_steps,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, warmup_steps=float(args.warmup_ratio),
        weight_decay=args.weight_decay, bf16=_bf16(args.bf16), use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
        eval_strategy=strategy, save_strategy=strategy, eval_steps=args.eval_steps, save_steps=args.eval_steps,
        logging_steps=args.logging_steps, load_best_model_at_end=True, metric_for_best_model="selection",
        greater_is_better=True, save_total_limit=args.save_total_limit, report_to=args.report_to or "none",
        dataloader_num_workers=0, disable_tqdm=False)
    trainer = _scoring_trainer(compute_metrics, model=model, args=training_args, train_dataset=train,
                               eval_dataset=dev.features, processing_class=tokenizer,
                               data_collator=adapter.collator(tokenizer), callbacks=[_trainer_callback(monitor)])
    trainer.train()
    monitor.check_loss()
    final["check"] = True
    best_dev = trainer.evaluate()
    test = adapter.eval_set(args, data.test, tokenizer)
    prediction = trainer.predict(test.features)
    test_scores = test.score(prediction.predictions, monitor=None)
    trainer.save_model(str(output / "best"))
    tokenizer.save_pretrained(str(output / "best"))
    return {"test": test_scores, "dev": {k.removeprefix("eval_"): v for k, v in best_dev.items()},
            "best_checkpoint": str(output / "best"), "warnings": monitor.warnings,
            "train_loss": monitor.losses[-1] if monitor.losses else None}


def finetune(args: FinetuneArguments) -> dict[str, Any]:
    """Run every unit and seed; writes and returns the results (``{"table", "runs", "warnings", ...}``)."""
    from transformers import AutoTokenizer

    args.validate()
    adapter = adapter_for(args.task)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer_name or args.model_name_or_path)
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    sources: dict[str, str] = {}
    for unit, languages in _run_units(args, adapter):
        data = adapter.load(args, languages)
        sources.update(getattr(data, "source", {}) or {})
        for seed in args.seeds:
            logger.info("fine-tuning %s (%s, run %s, seed %d) from %s", args.task, args.resolved_setting(), unit,
                        seed, args.model_name_or_path)
            runs.setdefault(unit, {})[seed] = _train_one(args, adapter, data, tokenizer, unit, seed,
                                                          output_dir / f"run-{unit}" / f"seed-{seed}")
    table = _table(runs, adapter.metrics_reported)
    warnings = [w for unit in runs.values() for run in unit.values() for w in run["warnings"]]
    result = {"task": args.task, "setting": args.resolved_setting(), "model": args.model_name_or_path,
              "selection": args.selection, "seeds": list(args.seeds), "table": table, "runs": runs,
              "warnings": warnings, "sources": sources, "settings": args.to_dict()}
    _write(output_dir, result, adapter.metrics_reported)
    logger.info("results written to %s (results.md, results.csv, results.json)", output_dir)
    return result


def _table(runs: dict[str, dict[int, dict[str, Any]]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{language: {metric: {"mean", "std", "values"}}}`` plus an ``avg`` row (mean over languages per seed)."""
    per_language: dict[str, dict[str, list[float]]] = {}
    for unit in runs.values():
        for seed_result in unit.values():
            for lang, scores in seed_result["test"].items():
                for metric in metrics:
                    per_language.setdefault(lang, {}).setdefault(metric, []).append(float(scores[metric]))
    languages = list(per_language)
    seeds = max((len(v) for scores in per_language.values() for v in scores.values()), default=0)
    averages = {metric: [statistics.fmean(per_language[lang][metric][i] for lang in languages) for i in range(seeds)]
                for metric in metrics} if languages else {}
    table = {lang: {m: _summary(v) for m, v in scores.items()} for lang, scores in per_language.items()}
    if languages:
        table["avg"] = {m: _summary(v) for m, v in averages.items()}
    return table


def _summary(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def _cell(summary: dict[str, Any]) -> str:
    return f"{summary['mean']:.1f} ± {summary['std']:.1f}" if len(summary["values"]) > 1 else f"{summary['mean']:.1f}"


def format_results(result: dict[str, Any], metrics: Sequence[str]) -> str:
    """The per-language table as markdown (languages as columns, one row per metric, like the paper's tables)."""
    table = result["table"]
    languages = list(table)
    seeds = len(result["seeds"])
    title = (f"{result['task']} ({result['setting']}), model {result['model']}, selection {result['selection']}, "
             f"{seeds} seed{'s' if seeds > 1 else ''}" + (" (mean ± std)" if seeds > 1 else ""))
    lines = [f"**{title}**", "", "| metric | " + " | ".join(languages) + " |",
             "|---|" + "---|" * len(languages)]
    for metric in metrics:
        lines.append(f"| {metric} | " + " | ".join(_cell(table[lang][metric]) for lang in languages) + " |")
    if result["warnings"]:
        lines += ["", "Warnings:", *[f"- {w}" for w in result["warnings"]]]
    return "\n".join(lines)


def _write(output_dir: Path, result: dict[str, Any], metrics: Sequence[str]) -> None:
    (output_dir / "results.md").write_text(format_results(result, metrics) + "\n", encoding="utf-8")
    with (output_dir / "results.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["language", *[f"{m}_{part}" for m in metrics for part in ("mean", "std")], "seeds"])
        for lang, scores in result["table"].items():
            writer.writerow([lang, *[f"{scores[m][part]:.4f}" for m in metrics for part in ("mean", "std")],
                             len(scores[metrics[0]]["values"])])
    (output_dir / "results.json").write_text(json.dumps(result, indent=1, default=_jsonable), encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Callable):  # type: ignore[arg-type]
        return repr(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
