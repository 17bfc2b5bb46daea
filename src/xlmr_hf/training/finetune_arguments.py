"""Settings of `xlmr-hf finetune TASK`: `transformers.TrainingArguments` (every field, passed to the Trainer) with the
fine-tuning fields on top and the task's own fields (`FinetuneArguments.for_task`); read like the pretraining recipes
and checked before any model or data is loaded. Defaults that differ from `TrainingArguments` are XLM-R's."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments

from .arguments import PUSH_FORMATS, RecipeError

__all__ = ["SELECTIONS", "FinetuneArguments", "native_bf16"]

SELECTIONS = ("en-dev", "joint-dev")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def native_bf16() -> bool:
    """Whether bf16 matmuls run natively here (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _accelerator_available() -> bool:
    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or bool(xpu is not None and xpu.is_available()) or \
        torch.backends.mps.is_available()


@dataclass
class FinetuneArguments(TrainingArguments):
    """Settings of one fine-tuning job (see `recipes/finetune/*.yaml`): `TrainingArguments` plus the fields below."""

    # ---- what
    task: str = field(default="xnli", metadata=_help("the task (set by the CLI sub-command)"))
    model_name_or_path: str = field(default="FacebookAI/xlm-roberta-base", metadata=_help(
        "a checkpoint directory (ours, e.g. a pretraining checkpoint) or any Hub id with Auto classes "
        "(xlm-roberta, mBERT, XLM)"))
    tokenizer_name: str | None = field(default=None, metadata=_help("tokenizer; default: the model's"))
    setting: str | None = field(default=None, metadata=_help(
        "xnli: cross-lingual-transfer | translate-train | translate-train-all | translate-test; ner: en | each | all; "
        "mlqa: cross-lingual-transfer (train on SQuAD en). Default: the first"))
    languages: list[str] | None = field(default=None, metadata=_help(
        "languages evaluated; default: every language of the task that the data holds (XNLI 15, CoNLL 4, MLQA 7)"))
    train_language: str = field(default="en", metadata=_help("training language of transfer settings"))
    data_dir: str | None = field(default=None, metadata=_help(
        "local files in the official layouts (docs/finetuning.md); default: the Hub datasets"))
    max_train_samples: int | None = field(default=None, metadata=_help("keep the first N training examples"))
    max_eval_samples: int | None = field(default=None, metadata=_help(
        "keep the first N dev examples of each language"))
    max_predict_samples: int | None = field(default=None, metadata=_help(
        "keep the first N test examples of each language"))
    max_seq_length: int | None = field(default=None, metadata=_help(
        "tokens per example or window; default: the task's (128; 384 for mlqa)"))
    # ---- model selection, seeds, guard-rails
    selection: str = field(default="joint-dev", metadata=_help(
        "en-dev: keep the checkpoint best on the English dev set (xtreme); joint-dev: best on the mean over all dev "
        "languages (what the paper asks the community to use)"))
    seeds: list[int] | None = field(default=None, metadata=_help(
        "one run per seed, tables report mean ± std; default: [seed]"))
    freeze_layers: int = field(default=0, metadata=_help(
        "freeze the embeddings and the lowest N transformer layers (0: train everything)"))
    overwrite_output_dir: bool = field(default=False, metadata=_help(
        "start afresh in a non-empty output_dir (its runs and results are removed first); else finished runs are "
        "reused and unfinished ones resume from their newest checkpoint"))
    push_format: str = field(default="transformers", metadata=_help(
        "format of the pushed model: transformers (plain xlm-roberta; loads without remote code, and in xlmr-hf "
        "unchanged) or xlmr-hf (our config, trust_remote_code=True without xlmr-hf); other models are pushed as "
        "they are"))
    license: str | None = field(default="mit", metadata=_help("license in the model card (a Hub license id)"))
    # ---- TrainingArguments fields with XLM-R fine-tuning defaults
    output_dir: str = field(default="runs/finetune", metadata=_help(
        "per-run checkpoints (run-<unit>/seed-<seed>) and results.{md,csv,json}"))
    learning_rate: float = field(default=2e-5, metadata=_help("peak learning rate"))
    num_train_epochs: float = field(default=2.0, metadata=_help("epochs (max_steps overrides)"))
    per_device_train_batch_size: int = field(default=32, metadata=_help("training batch per device"))
    per_device_eval_batch_size: int = field(default=64, metadata=_help("evaluation batch per device"))
    warmup_steps: float = field(default=0.1, metadata=_help(
        "linear warmup: steps, or a share of the training steps when < 1"))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay"))
    bf16: bool | str = field(default="auto", metadata=_help(  # type: ignore[assignment]
        "bf16 mixed precision: auto (where the hardware has it natively: CUDA with bf16, CPUs with AVX512-BF16/AMX; "
        "never with fp16), true or false"))
    train_sampling_strategy: str = field(default="group_by_length", metadata=_help(
        "random, sequential or group_by_length (batches of similar length: less padding)"))
    eval_strategy: str = field(default="epoch", metadata=_help(  # type: ignore[assignment]
        "evaluate the dev sets every epoch, or every eval_steps with steps"))
    save_strategy: str | None = field(default=None, metadata=_help(  # type: ignore[assignment]
        "default: eval_strategy (selecting the best checkpoint needs them equal)"))
    save_steps: float | None = field(default=None, metadata=_help(  # type: ignore[assignment]
        "default: eval_steps (or logging_steps)"))
    logging_steps: float = field(default=50, metadata=_help("log the training loss every N steps"))
    save_total_limit: int | None = field(default=1, metadata=_help("checkpoints kept per run besides the best"))
    load_best_model_at_end: bool = field(default=True, metadata=_help("keep the checkpoint best by selection"))
    metric_for_best_model: str | None = field(default="selection", metadata=_help(
        "the selection figure (see selection)"))
    greater_is_better: bool | None = field(default=True, metadata=_help("higher selection figures are better"))
    hub_strategy: str = field(default="end", metadata=_help(  # type: ignore[assignment]
        "end: push the selected model with results.{md,csv,json} and its card once, at the end; every_save, "
        "checkpoint, all_checkpoints: the Trainer also pushes while training"))

    def __post_init__(self) -> None:
        if isinstance(self.bf16, str) and self.bf16 not in ("auto", "true", "false"):
            raise RecipeError(f"bf16={self.bf16!r}; allowed: auto, true or false")
        if self.bf16 in ("auto", "true", "false"):
            self.bf16 = (native_bf16() and not self.fp16) if self.bf16 == "auto" else self.bf16 == "true"
        if self.bf16 and not _accelerator_available():
            self.use_cpu = True  # the CPU is the only device anyway; TrainingArguments refuses bf16 there without it
        if self.save_strategy is None:
            self.save_strategy = self.eval_strategy
        if self.save_steps is None:
            self.save_steps = self.eval_steps or self.logging_steps
        if self.seeds is None:
            self.seeds = [self.seed]
        super().__post_init__()

    @classmethod
    def for_task(cls, task: str) -> type[FinetuneArguments]:
        """The settings class of ``task``: these fields plus the task's own (``Task.arguments``)."""
        return _arguments_for(cls, task)

    @property
    def task_definition(self) -> Any:
        from ..tasks import get_task

        return get_task(self.task)

    def resolved_setting(self) -> str:
        return self.setting or self.task_definition.settings[0]

    def resolved_max_seq_length(self) -> int:
        return self.max_seq_length or self.task_definition.default_max_seq_length

    @property
    def eval_load_cap(self) -> int | None:
        """The rows a loader must read per evaluation language to serve both ``max_eval_samples`` and
        ``max_predict_samples`` (None: all)."""
        if self.max_eval_samples is None or self.max_predict_samples is None:
            return None
        return max(self.max_eval_samples, self.max_predict_samples)

    def training_arguments(self, **changes: Any) -> TrainingArguments:
        """A plain `TrainingArguments` with every Trainer field of these settings (and ``changes``)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
        return TrainingArguments(**{**values, **changes})

    def validate(self) -> None:
        """Each field's allowed values; errors name the field, the value and what is allowed."""
        fixed = type(self).__dataclass_fields__["task"].default
        if type(self) is not FinetuneArguments and self.task != fixed:
            raise RecipeError(f"task={self.task!r}, but these are the settings of {fixed!r} (xlmr-hf finetune "
                              f"{fixed}); remove task from the recipe or run xlmr-hf finetune {self.task}")
        task = self.task_definition
        if self.setting is not None and self.setting not in task.settings:
            raise RecipeError(f"setting={self.setting!r} for task {self.task}; allowed: {list(task.settings)}")
        if self.selection not in SELECTIONS:
            raise RecipeError(f"selection={self.selection!r}; allowed: {list(SELECTIONS)}")
        if self.push_format not in PUSH_FORMATS:
            raise RecipeError(f"push_format={self.push_format!r}; allowed: {list(PUSH_FORMATS)}")
        if not self.seeds:
            raise RecipeError("seeds=[] ; allowed: a non-empty list of integers")
        for name, value, low in (("freeze_layers", self.freeze_layers, 0),
                                 ("max_seq_length", self.max_seq_length or 16, 16),
                                 ("max_train_samples", self.max_train_samples or 1, 1),
                                 ("max_eval_samples", self.max_eval_samples or 1, 1),
                                 ("max_predict_samples", self.max_predict_samples or 1, 1)):
            if value < low:
                raise RecipeError(f"{name}={value!r}; allowed: an integer >= {low}")
        if not 0 < self.learning_rate < 1:
            raise RecipeError(f"learning_rate={self.learning_rate!r}; allowed: a number in (0, 1)")
        task.validate(self)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (those of `TrainingArguments.to_dict`, tokens hidden)."""
        return super().to_dict()


@functools.cache
def _arguments_for(base: type[FinetuneArguments], task: str) -> type[FinetuneArguments]:
    from ..tasks import get_task, task_names

    if task not in task_names():
        raise RecipeError(f"task={task!r}; allowed: {task_names()}")
    definition = get_task(task)
    name = f"{definition.title.replace(' ', '')}FinetuneArguments"
    bases = (base, definition.arguments) if definition.arguments is not None else (base,)
    namespace = {"__module__": __name__, "__qualname__": name, "__doc__": f"{base.__doc__} Task: {task}.",
                 "__annotations__": {"task": "str"}, "task": field(default=task, metadata=_help(
                     f"the task ({task}; set by the CLI sub-command)"))}
    cls = dataclass(type(name, bases, namespace))
    globals()[name] = cls  # importable by name (pickling, repr)
    return cls
