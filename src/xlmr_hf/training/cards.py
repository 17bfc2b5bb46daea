"""Model cards of pretraining checkpoints and fine-tuned models (`xlmr_hf.hub.model_card`), and the staging of a
folder for a Hub push in the chosen format (``push_format``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..hub import loading_instructions, markdown_table, model_card

__all__ = ["finetune_card", "pretraining_card", "pretraining_eval_results", "stage_for_push"]

_PRETRAIN_HYPERPARAMETERS = ("model_name_or_path", "learning_rate", "warmup_steps", "max_steps", "global_batch_size",
                             "micro_batch_size", "seq_len", "alpha", "alpha_schedule", "language_caps", "mask_rate",
                             "mask_rate_schedule", "masking", "whole_word", "packing", "tlm_ratio",
                             "use_language_embeddings", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
                             "max_grad_norm", "mixed_precision", "seed")
_PRETRAIN_OPTIONAL = ("model_name_or_path", "alpha_schedule", "language_caps", "mask_rate_schedule", "whole_word",
                      "tlm_ratio", "use_language_embeddings")  # listed only when set
_FINETUNE_HYPERPARAMETERS = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                             "gradient_accumulation_steps", "warmup_steps", "weight_decay", "lr_scheduler_type",
                             "max_seq_length", "selection", "seeds", "bf16", "fp16")
_MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json")
_TRAINING_STATE = ("training_state", "manifest.json")  # optimizer, scheduler, RNG: never pushed


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and name.count("/") == 1 and not Path(name).exists() and not name.startswith((".", "/"))


def pretraining_eval_results(eval_results: Mapping[str, float] | None, corpus: str) -> list[dict[str, Any]]:
    """`EvalResult` fields for each language's held-out MLM loss and accuracy."""
    if not eval_results:
        return []
    path = Path(corpus)
    name = (path.parent.name if path.name in ("heldout", "held-out", "eval") else path.name) or corpus
    out = []
    for key, value in sorted(eval_results.items()):
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != "eval":
            continue
        out.append({"task_type": "fill-mask", "task_name": "Masked language modeling", "dataset_type": name,
                    "dataset_name": f"{name} (held-out)", "dataset_config": parts[2], "dataset_split": "heldout",
                    "metric_type": parts[1], "metric_name": f"held-out MLM {parts[1]}", "metric_value": value})
    return out


def pretraining_card(args: Any, *, model_name: str, languages: Sequence[str], step: int,
                     language_tokens: Mapping[str, int], eval_results: Mapping[str, float] | None,
                     config: Mapping[str, Any], eval_corpus: str | None, push_format: str) -> Any:
    """The card of a pretraining checkpoint (`ModelCard`)."""
    total = sum(language_tokens.values()) or 1
    tokens = markdown_table(["language", "tokens", "share"], [
        [lang, n, f"{n / total:.1%}"] for lang, n in sorted(language_tokens.items())])
    sections = ["## Training tokens per language", "", tokens]
    if eval_results:
        langs = sorted(k.rsplit("/", 1)[1] for k in eval_results if k.startswith("eval/loss/"))
        sections += ["", "## Held-out masked-LM loss and accuracy", "", markdown_table(
            ["language", "loss", "accuracy"],
            [[lang, eval_results[f"eval/loss/{lang}"], eval_results[f"eval/accuracy/{lang}"]] for lang in langs])]
    start = getattr(args, "model_name_or_path", None)
    alpha = f"alpha schedule {args.alpha_schedule}" if getattr(args, "alpha_schedule", None) else f"alpha = {args.alpha}"
    summary = (f"XLM-R-style masked-LM checkpoint trained with [xlmr-hf](https://github.com/xlmr-hf/xlmr-hf): step "
               f"{step} of {args.max_steps}, language sampling {alpha}. Model: "
               f"{config.get('num_hidden_layers')} layers, hidden size {config.get('hidden_size')}, vocabulary "
               f"{config.get('vocab_size')}." + (f" Continued pretraining of `{start}`." if start else ""))
    hyperparameters = {name: getattr(args, name) for name in _PRETRAIN_HYPERPARAMETERS  # the features it used
                       if name not in _PRETRAIN_OPTIONAL or getattr(args, name, None)}
    return model_card(
        model_name=model_name, summary=summary, languages=languages, pipeline_tag="fill-mask",
        tags=["fill-mask", "multilingual"], license=args.license, sections=sections,
        eval_results=pretraining_eval_results(eval_results, eval_corpus or "heldout"),
        hyperparameters=hyperparameters, base_model=start if _is_hub_id(start) else None,
        loading=loading_instructions("AutoModelForMaskedLM", push_format, model_name))


def finetune_eval_results(result: Mapping[str, Any], *, task_type: str, task_name: str, dataset: str,
                          metrics: Sequence[str]) -> list[dict[str, Any]]:
    """`EvalResult` fields for each language and metric of a fine-tuning table (the means over seeds)."""
    out = []
    for lang, scores in result["table"].items():
        if lang == "avg":
            continue
        for metric in metrics:
            out.append({"task_type": task_type, "task_name": task_name, "dataset_type": dataset,
                        "dataset_name": f"{dataset} ({result['setting']})", "dataset_config": lang,
                        "dataset_split": "test", "metric_type": metric, "metric_name": metric,
                        "metric_value": scores[metric]["mean"]})
    return out


def finetune_card(args: Any, result: Mapping[str, Any], *, task: Any, results_markdown: str, push_format: str,
                  model_name: str) -> Any:
    """The card of a fine-tuned model (`ModelCard`): one ``model-index`` result per language and metric."""
    languages = sorted({lang.split("-")[0] for lang in result["table"] if lang != "avg"})
    summary = (f"{task.title} fine-tuning of `{args.model_name_or_path}` with xlmr-hf (setting "
               f"{result['setting']}, model selection {result['selection']}, seeds {result['seeds']}). The scores "
               "are the means over the seeds on each language's test set.")
    hyperparameters = {name: getattr(args, name) for name in _FINETUNE_HYPERPARAMETERS if hasattr(args, name)}
    return model_card(
        model_name=model_name, summary=summary, languages=languages, pipeline_tag=task.pipeline_tag,
        tags=[task.name, "cross-lingual"], license=args.license, datasets=task.hub_datasets,
        sections=["## Results", "", results_markdown],
        eval_results=finetune_eval_results(result, task_type=task.pipeline_tag, task_name=task.title,
                                           dataset=task.hub_datasets[0] if task.hub_datasets else task.name,
                                           metrics=task.metrics_reported),
        hyperparameters=hyperparameters,
        base_model=args.model_name_or_path if _is_hub_id(args.model_name_or_path) else None,
        loading=loading_instructions(task.auto_class, push_format, model_name))


def stage_for_push(push_format: str, card: Callable[[str], Any] | None = None,
                   extra_files: Sequence[Path] = ()) -> Callable[[Path, Path], None]:
    """A ``prepare(source, staging)`` for `HubPusher.push`: the folder without its training state, converted to the plain
    transformers format when ``push_format`` is ``transformers`` and the model is ours, with ``card(push_format)``
    saved as README.md and ``extra_files`` (results tables) beside it."""

    def prepare(source: Path, staging: Path) -> None:
        ours = json.loads((source / "config.json").read_text()).get("model_type") == "xlmr-hf"
        if push_format == "transformers" and ours:
            from ..models.conversion import export_to_transformers

            export_to_transformers(source, staging)
            skip = shutil.ignore_patterns(*_TRAINING_STATE, "*.py", "model*.safetensors*", *_MODEL_FILES)
            for path in source.iterdir():
                if not (staging / path.name).exists() and not skip(str(source), [path.name]):
                    (shutil.copytree if path.is_dir() else shutil.copy2)(path, staging / path.name)
        else:
            shutil.copytree(source, staging, ignore=shutil.ignore_patterns(*_TRAINING_STATE))
        for path in extra_files:
            shutil.copy2(path, staging / path.name)
        if card is not None:
            card(push_format if ours else "transformers").save(staging / "README.md")

    return prepare
