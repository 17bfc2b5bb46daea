"""`xlmr-hf finetune TASK`: `transformers.Trainer` fine-tuning for any Auto checkpoint on a registered task
(`xlmr_hf.tasks`), every language evaluated in one pass, the checkpoint selected on the English or the joint dev set,
seeds as mean ± std, collapse warnings, per-language tables (``results.{md,csv,json}``), model cards and Hub pushes.
How a job is laid out on disk and resumed is described in ``docs/finetuning.md``."""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..tasks import EvalSet, TaskData
from .arguments import RecipeError
from .cards import finetune_card, stage_for_push
from .finetune_arguments import FinetuneArguments, native_bf16

__all__ = ["CollapseMonitor", "finetune", "format_results", "freeze_lower_layers", "native_bf16"]

_RUN_RESULT = "run_result.json"  # written when a run is complete: a rerun reuses it
_JOB_OUTPUTS = ("results.md", "results.csv", "results.json", ".hub-staging")

logger = logging.getLogger(__name__)


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
        advice = ("; try a lower learning_rate (large models collapse above ~1e-5), a longer warmup (warmup_steps), "
                  "another seed, or check that the labels are right")
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


def _named(field: str, name: str, load: Callable[[str], Any]) -> Any:
    """``load(name)``; an `OSError` (missing files, an offline Hub lookup) names the field and the value."""
    try:
        return load(name)
    except OSError as error:
        raise OSError(f"{field}={name!r} cannot be loaded: {error}") from error


def _run_units(args: FinetuneArguments, task: Any) -> list[tuple[str, list[str]]]:
    """``(run name, languages)``: one unit, or one per language for translate-train / each."""
    languages = task.languages(args)
    if args.resolved_setting() in ("translate-train", "each"):
        return [(lang, [lang]) for lang in languages]
    return [("all", languages)]


def _first(dataset: Any, limit: int | None) -> Any:
    return dataset if limit is None or len(dataset) <= limit else dataset.select(range(limit))


def _load(args: FinetuneArguments, task: Any, languages: list[str]) -> TaskData:
    """The run's data with ``max_train_samples`` / ``max_eval_samples`` / ``max_predict_samples`` applied."""
    data = task.load(args, languages)
    data.train = _first(data.train, args.max_train_samples)
    data.validation = {k: _first(v, args.max_eval_samples) for k, v in data.validation.items()}
    data.test = {k: _first(v, args.max_predict_samples) for k, v in data.test.items()}
    return data


def _select_language(args: FinetuneArguments, validation: dict[str, Any], unit: str) -> str | None:
    if args.selection != "en-dev":
        return None
    if "en" in validation:
        return "en"
    language = args.train_language if args.train_language in validation else next(iter(validation))
    logger.info("selection=en-dev: English is not evaluated in run %s; selecting on %s dev", unit, language)
    return language


def _metrics_function(task: Any, dev: EvalSet, monitor: CollapseMonitor, select_language: str | None,
                      final: dict[str, bool]) -> Callable[[Any], dict[str, float]]:
    def compute_metrics(predictions: Any) -> dict[str, float]:
        scores = dev.score(predictions, monitor=monitor if final["check"] else None)
        values = [scores[lang][task.primary] for lang in dev.languages]
        out = {f"{lang}_{name}": value for lang in dev.languages for name, value in scores[lang].items()}
        out[f"avg_{task.primary}"] = statistics.fmean(values)
        out["selection"] = scores[select_language][task.primary] if select_language else out[f"avg_{task.primary}"]
        return out

    return compute_metrics


def _train_one(args: FinetuneArguments, task: Any, data: TaskData, tokenizer: Any, unit: str, seed: int,
               output: Path, resume: str | None, callbacks: Sequence[Any]) -> dict[str, Any]:
    from transformers import set_seed

    set_seed(seed)
    model = _named("model_name_or_path", args.model_name_or_path, lambda _: task.model(args, data.labels))
    frozen = freeze_lower_layers(model, args.freeze_layers)
    if frozen:
        logger.info("froze %d parameters (embeddings + %d layers)", frozen, args.freeze_layers)
    train = task.features(args, data.train, tokenizer, data.labels, train=True)
    dev = task.eval_set(args, data.validation, tokenizer, data.labels)
    monitor = CollapseMonitor(len(data.labels) if data.labels else None, f"{unit}/seed {seed}")
    final = {"check": False}  # collapse is judged on the selected model, not on early evaluations
    compute_metrics = _metrics_function(task, dev, monitor, _select_language(args, data.validation, unit), final)
    trainer = _scoring_trainer(compute_metrics, model=model, args=args.training_arguments(
        output_dir=str(output), seed=seed, push_to_hub=args.push_to_hub, hub_model_id=args.hub_model_id),
        train_dataset=train, eval_dataset=dev.features, processing_class=tokenizer,
        data_collator=task.collator(tokenizer), callbacks=[_trainer_callback(monitor), *callbacks])
    if resume is not None:
        logger.info("resuming run %s/seed %d from %s", unit, seed, resume)
    trainer.train(resume_from_checkpoint=resume)
    monitor.check_loss()
    final["check"] = True
    best_dev = trainer.evaluate()
    test = task.eval_set(args, data.test, tokenizer, data.labels)
    prediction = trainer.predict(test.features)
    test_scores = test.score(prediction.predictions, monitor=None)
    # _internal_call: save (and gather under DeepSpeed/FSDP) without the Trainer pushing this folder by itself; the
    # selected model is pushed once, with the results and its card (`_push`)
    trainer.save_model(str(output / "best"), _internal_call=True)
    tokenizer.save_pretrained(str(output / "best"))
    return {"test": test_scores, "dev": {k.removeprefix("eval_"): v for k, v in best_dev.items()},
            "best_checkpoint": str(output / "best"), "warnings": monitor.warnings,
            "train_loss": monitor.losses[-1] if monitor.losses else None, "source": dict(data.source)}


def _resume_point(args: FinetuneArguments, run_dir: Path, runs: int) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if args.resume_from_checkpoint is not None:
        if runs != 1:
            raise RecipeError(f"resume_from_checkpoint={args.resume_from_checkpoint!r} names one checkpoint but the "
                              f"job has {runs} runs (units × seeds); leave it out: each run resumes from its newest "
                              "checkpoint in output_dir")
        return args.resume_from_checkpoint
    return get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None


def _prepare_output_dir(args: FinetuneArguments) -> None:
    """`run_mlm.py`'s rules: a non-empty ``output_dir`` must hold runs of an earlier job (finished ones are reused,
    unfinished ones resume) unless ``overwrite_output_dir`` clears it."""
    root = Path(args.output_dir)
    if not root.is_dir():
        return
    ours = [p for p in root.iterdir() if p.name.startswith("run-") or p.name in _JOB_OUTPUTS]
    if args.overwrite_output_dir:
        for path in ours:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        if ours:
            logger.info("overwrite_output_dir: removed %s from %s", ", ".join(sorted(p.name for p in ours)), root)
        return
    has_runs = any(root.glob(f"run-*/seed-*/{_RUN_RESULT}")) or any(root.glob("run-*/seed-*/checkpoint-*"))
    if has_runs:
        logger.info("output_dir %s holds runs of an earlier job: finished runs are reused, unfinished ones resume "
                    "from their newest checkpoint (set --overwrite_output_dir true to start afresh)", root)
    elif any(root.iterdir()):
        raise RecipeError(f"output_dir={str(root)!r} is not empty and holds no fine-tuning run; set "
                          "--overwrite_output_dir true to start afresh there, or choose another output_dir")


def finetune(args: FinetuneArguments, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Run every unit and seed (reusing finished runs and resuming unfinished ones in ``output_dir``); writes and
    returns the results (``{"table", "runs", "selected", "warnings", ...}``). ``callbacks`` (`TrainerCallback`s) go to
    every run's Trainer."""
    from transformers import AutoTokenizer

    args.validate()
    task = args.task_definition
    output_dir = Path(args.output_dir)
    _prepare_output_dir(args)
    if args.push_to_hub and not args.hub_model_id:
        args.hub_model_id = output_dir.resolve().name  # as the Trainer names the repository
    field, name = ("tokenizer_name", args.tokenizer_name) if args.tokenizer_name else ("model_name_or_path",
                                                                                     args.model_name_or_path)
    tokenizer = _named(field, name, AutoTokenizer.from_pretrained)
    units = _run_units(args, task)
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for unit, languages in units:
        data = None
        for seed in args.seeds:
            run_dir = output_dir / f"run-{unit}" / f"seed-{seed}"
            if (run_dir / _RUN_RESULT).is_file():
                logger.info("run %s/seed %d already finished in %s: reusing its results", unit, seed, run_dir)
                runs.setdefault(unit, {})[seed] = json.loads((run_dir / _RUN_RESULT).read_text(encoding="utf-8"))
                continue
            resume = _resume_point(args, run_dir, len(units) * len(args.seeds))
            data = data if data is not None else _load(args, task, languages)
            logger.info("fine-tuning %s (%s, run %s, seed %d) from %s", args.task, args.resolved_setting(), unit,
                        seed, args.model_name_or_path)
            result = _train_one(args, task, data, tokenizer, unit, seed, run_dir, resume, callbacks)
            (run_dir / _RUN_RESULT).write_text(json.dumps(result, indent=1, default=_jsonable), encoding="utf-8")
            runs.setdefault(unit, {})[seed] = result
    result = _job_result(args, task, runs)
    _write(output_dir, result, task.metrics_reported)
    _cards_and_push(args, task, result, output_dir)
    logger.info("results written to %s (results.md, results.csv, results.json)", output_dir)
    return result


def _job_result(args: FinetuneArguments, task: Any, runs: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    sources = {k: v for unit in runs.values() for run in unit.values() for k, v in run.get("source", {}).items()}
    selected = {unit: max(seeds.values(), key=lambda run: run["dev"].get("selection", -math.inf))["best_checkpoint"]
                for unit, seeds in runs.items()}
    return {"task": args.task, "setting": args.resolved_setting(), "model": args.model_name_or_path,
            "selection": args.selection, "seeds": list(args.seeds), "table": _table(runs, task.metrics_reported),
            "runs": runs, "selected": selected,
            "warnings": [w for unit in runs.values() for run in unit.values() for w in run["warnings"]],
            "sources": sources, "settings": args.to_dict()}


def _cards_and_push(args: FinetuneArguments, task: Any, result: dict[str, Any], output_dir: Path) -> None:
    """Each selected model gets the job's model card; with ``push_to_hub`` they are uploaded with the results."""
    markdown = format_results(result, task.metrics_reported)
    name = args.hub_model_id or output_dir.resolve().name

    def card(push_format: str) -> Any:
        return finetune_card(args, result, task=task, results_markdown=markdown, push_format=push_format,
                             model_name=name)

    for path in result["selected"].values():
        card("xlmr-hf" if _is_ours(Path(path)) else "transformers").save(Path(path) / "README.md")
    if not args.push_to_hub:
        return
    from ..hub import HubPusher

    pusher = HubPusher(name, private=bool(args.hub_private_repo), token=args.hub_token, revision=args.hub_revision)
    tables = [output_dir / f"results.{ext}" for ext in ("md", "csv", "json")]
    single = len(result["selected"]) == 1
    for unit, path in result["selected"].items():
        pusher.push(path, f"{args.task}: selected model" + ("" if single else f" of run {unit}"),
                    prepare=stage_for_push(args.push_format, card, tables if single else ()),
                    staging=output_dir / ".hub-staging" / unit, path_in_repo=None if single else unit)
    if not single:
        root = output_dir / ".hub-staging" / "root"
        root.mkdir(parents=True, exist_ok=True)
        for path in tables:
            shutil.copy2(path, root / path.name)
        card(args.push_format).save(root / "README.md")
        pusher.push(root, f"{args.task}: results and model card", staging=output_dir / ".hub-staging" / "root-upload")
    pusher.wait()


def _is_ours(path: Path) -> bool:
    config = path / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "xlmr-hf"


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
