"""Run settings of `xlmr-hf finetune {xnli,ner,mlqa}`: one typed, documented dataclass, read like the pretraining
recipes (`load_recipe(path, overrides, cls=FinetuneArguments)`) and checked before any model or data is loaded."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .arguments import RecipeError

__all__ = ["SELECTIONS", "SETTINGS", "TASKS", "FinetuneArguments"]

TASKS = ("xnli", "ner", "mlqa")
SETTINGS = {
    "xnli": ("cross-lingual-transfer", "translate-train", "translate-train-all", "translate-test"),
    "ner": ("en", "each", "all"),
    "mlqa": ("cross-lingual-transfer",),
}
SELECTIONS = ("en-dev", "joint-dev")
_DEFAULT_LENGTH = {"xnli": 128, "ner": 128, "mlqa": 384}


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class FinetuneArguments:
    """Settings of one fine-tuning job (see `recipes/finetune/*.yaml`)."""

    # ---- what
    task: str = field(default="xnli", metadata=_help("xnli, ner or mlqa (set by the CLI sub-command)"))
    model_name_or_path: str = field(default="FacebookAI/xlm-roberta-base", metadata=_help(
        "a checkpoint directory (ours, e.g. a pretraining checkpoint) or any Hub id with Auto classes "
        "(xlm-roberta, mBERT, XLM)"))
    tokenizer_name: str | None = field(default=None, metadata=_help("tokenizer; default: the model's"))
    setting: str | None = field(default=None, metadata=_help(
        "xnli: cross-lingual-transfer | translate-train | translate-train-all | translate-test; ner: en | each | all; "
        "mlqa: cross-lingual-transfer (train on SQuAD en). Default: the first"))
    ner_dataset: str = field(default="conll", metadata=_help("ner only: conll (CoNLL-2002/2003) or wikiann (PAN-X)"))
    languages: list[str] | None = field(default=None, metadata=_help(
        "languages evaluated (default: all of the task: XNLI 15, CoNLL 4, MLQA 7; wikiann needs a list)"))
    train_language: str = field(default="en", metadata=_help("training language of transfer settings"))
    eval_pairs: list[str] = field(default_factory=list, metadata=_help(
        "mlqa only: cross-lingual context-question pairs such as de-en (context German, question English)"))
    data_dir: str | None = field(default=None, metadata=_help(
        "local files in the official layouts (see xlmr_hf.tasks); default: the Hub datasets"))
    squad_file: str | None = field(default=None, metadata=_help("mlqa only: SQuAD v1.1 train JSON (else the Hub)"))
    max_train_examples: int | None = field(default=None, metadata=_help("cap on training examples (debugging)"))
    max_eval_examples: int | None = field(default=None, metadata=_help("cap on examples per evaluation language"))
    # ---- model selection and guard-rails
    selection: str = field(default="joint-dev", metadata=_help(
        "en-dev: keep the checkpoint best on the English dev set (xtreme); joint-dev: best on the mean over all dev "
        "languages (what the paper asks the community to use)"))
    seeds: list[int] = field(default_factory=lambda: [42], metadata=_help(
        "one run per seed; tables report mean ± std over seeds"))
    freeze_layers: int = field(default=0, metadata=_help(
        "freeze the embeddings and the lowest N transformer layers (0: train everything)"))
    # ---- preprocessing
    max_length: int | None = field(default=None, metadata=_help(
        "tokens per example or window (default 128; 384 for mlqa)"))
    stride: int | None = field(default=None, metadata=_help(
        "overlap of windows: words for ner (default 32), tokens of context for mlqa (doc stride, default 128)"))
    n_best: int = field(default=20, metadata=_help("mlqa: start/end candidates per window"))
    max_answer_length: int = field(default=30, metadata=_help("mlqa: longest answer in tokens"))
    # ---- optimisation (Trainer)
    learning_rate: float = field(default=2e-5, metadata=_help("peak learning rate"))
    num_train_epochs: float = field(default=2.0, metadata=_help("epochs (max_steps overrides)"))
    max_steps: int = field(default=-1, metadata=_help("optimizer steps; -1: use num_train_epochs"))
    per_device_train_batch_size: int = field(default=32, metadata=_help("training batch per device"))
    per_device_eval_batch_size: int = field(default=64, metadata=_help("evaluation batch per device"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("micro-batches per optimizer step"))
    warmup_ratio: float = field(default=0.1, metadata=_help("share of steps with linear warmup"))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay"))
    bf16: str = field(default="auto", metadata=_help(
        "auto (bf16 where the hardware has it natively: CUDA with bf16, CPUs with AVX512-BF16/AMX), true or false"))
    group_by_length: bool = field(default=True, metadata=_help("batch examples of similar length (less padding)"))
    eval_steps: int | None = field(default=None, metadata=_help("evaluate dev every N steps (default: every epoch)"))
    logging_steps: int = field(default=50, metadata=_help("log the training loss every N steps"))
    # ---- outputs
    output_dir: str = field(default="runs/finetune", metadata=_help(
        "per-run checkpoints and results.{md,csv,json} (the per-language table)"))
    save_total_limit: int = field(default=1, metadata=_help("checkpoints kept per run besides the best"))
    report_to: list[str] = field(default_factory=list, metadata=_help("Trainer integrations, e.g. [tensorboard]"))

    def resolved_setting(self) -> str:
        return self.setting or SETTINGS[self.task][0]

    def resolved_max_length(self) -> int:
        return self.max_length or _DEFAULT_LENGTH[self.task]

    def validate(self) -> None:
        """Each field's allowed values; errors name the field, the value and what is allowed."""
        if self.task not in TASKS:
            raise RecipeError(f"task={self.task!r}; allowed: {list(TASKS)}")
        if self.setting is not None and self.setting not in SETTINGS[self.task]:
            raise RecipeError(f"setting={self.setting!r} for task {self.task}; allowed: {list(SETTINGS[self.task])}")
        if self.selection not in SELECTIONS:
            raise RecipeError(f"selection={self.selection!r}; allowed: {list(SELECTIONS)}")
        if self.ner_dataset not in ("conll", "wikiann"):
            raise RecipeError(f"ner_dataset={self.ner_dataset!r}; allowed: ['conll', 'wikiann']")
        if self.bf16 not in ("auto", "true", "false"):
            raise RecipeError(f"bf16={self.bf16!r}; allowed: 'auto', 'true' or 'false'")
        if not self.seeds:
            raise RecipeError("seeds=[] ; allowed: a non-empty list of integers")
        for name, value, low in (("freeze_layers", self.freeze_layers, 0), ("n_best", self.n_best, 1),
                                 ("max_answer_length", self.max_answer_length, 1),
                                 ("per_device_train_batch_size", self.per_device_train_batch_size, 1),
                                 ("per_device_eval_batch_size", self.per_device_eval_batch_size, 1),
                                 ("gradient_accumulation_steps", self.gradient_accumulation_steps, 1),
                                 ("logging_steps", self.logging_steps, 1), ("save_total_limit", self.save_total_limit, 1),
                                 ("max_length", self.max_length or 16, 16), ("stride", self.stride or 1, 1),
                                 ("eval_steps", self.eval_steps or 1, 1),
                                 ("max_train_examples", self.max_train_examples or 1, 1),
                                 ("max_eval_examples", self.max_eval_examples or 1, 1)):
            if value < low:
                raise RecipeError(f"{name}={value!r}; allowed: an integer >= {low}")
        if not 0 < self.learning_rate < 1:
            raise RecipeError(f"learning_rate={self.learning_rate!r}; allowed: a number in (0, 1)")
        if not 0 <= self.warmup_ratio < 1:
            raise RecipeError(f"warmup_ratio={self.warmup_ratio!r}; allowed: a number in [0, 1)")
        for pair in self.eval_pairs:
            if self.task != "mlqa":
                raise RecipeError(f"eval_pairs={self.eval_pairs!r} is only for task mlqa, not {self.task}")
            if pair.count("-") != 1:
                raise RecipeError(f"eval_pairs entry {pair!r}; allowed: '<context language>-<question language>'")
        if self.task == "ner" and self.ner_dataset == "wikiann" and not self.languages:
            raise RecipeError("ner_dataset=wikiann needs languages (e.g. [en, de, ar, zh]): PAN-X has 176")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
