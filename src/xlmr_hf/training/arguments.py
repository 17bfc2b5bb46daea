"""Run settings of `xlmr-hf pretrain`: one typed, documented dataclass, read from a YAML recipe and ``--field value``
overrides, checked before anything heavy starts.

Unknown fields, wrong types and inconsistent batch arithmetic are errors naming the field, the value and what is
allowed. The resolved settings are written next to the outputs (``run_config.yaml``) and into every checkpoint.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PretrainArguments", "RecipeError", "load_recipe"]

MIXED_PRECISION = ("no", "bf16", "fp16")


class RecipeError(ValueError):
    """A recipe or override is invalid; the message names the field, the value and what is allowed."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class PretrainArguments:
    """Settings of one pretraining run (see `recipes/pretrain/*.yaml` for commented presets)."""

    # ---- data
    corpus: str | None = field(default=None, metadata=_help(
        "CC-100 directory (<lang>.txt[.xz]) or URL template with {lang}; default: the corpus embedded in the package"))
    languages: list[str] | None = field(default=None, metadata=_help("languages to train on (default: all)"))
    tokenizer: str | None = field(default=None, metadata=_help(
        "tokenizer directory or Hub id; default: train one on the corpus into <output_dir>/tokenizer"))
    tokenizer_vocab_size: int = field(default=8000, metadata=_help("pieces of the tokenizer trained when none is given"))
    alpha: float = field(default=0.3, metadata=_help("language sampling exponent: q_i ∝ p_i^alpha"))
    seq_len: int = field(default=512, metadata=_help("tokens per packed block, <s> included"))
    packing: str = field(default="complete", metadata=_help("complete (blocks cross documents) or complete_doc"))
    padding_free: bool = field(default=False, metadata=_help("flattened batches with cu_seqlens (no padding)"))
    mask_rate: float = field(default=0.15, metadata=_help("share of tokens selected for MLM"))
    masking: str = field(default="exact", metadata=_help("exact (fairseq) or bernoulli (HF collator)"))
    whole_word: bool = field(default=False, metadata=_help("mask whole words"))
    eval_corpus: str | None = field(default=None, metadata=_help(
        "held-out CC-100 directory for per-language MLM loss/accuracy; default: the embedded corpus's held-out split "
        "when training on the embedded corpus, else no evaluation"))
    eval_documents: int = field(default=50, metadata=_help("held-out documents per language"))
    eval_steps: int | None = field(default=None, metadata=_help(
        "evaluate every N steps (always before training and at the end when there is an eval corpus)"))
    # ---- downstream probe (XLM-R stopped on downstream accuracy, which keeps improving after perplexity plateaus)
    probe_set: str | None = field(default=None, metadata=_help(
        "labelled set for a linear probe on frozen features: a directory with train.jsonl/eval.jsonl or one .jsonl "
        "with a split field; rows {language, text, [text_pair], label} (see xlmr_hf.training.probe)"))
    probe_steps: int | None = field(default=None, metadata=_help(
        "probe every N steps (always before training and at the end when probe_set is given)"))
    probe_train_languages: list[str] | None = field(default=None, metadata=_help(
        "languages whose train rows fit the probe (e.g. [en] for cross-lingual transfer); default: all"))
    probe_max_length: int = field(default=128, metadata=_help(
        "tokens per probe example, at most the model's positions (longer ones are truncated and counted)"))
    early_stopping_patience: int | None = field(default=None, metadata=_help(
        "stop after N probes without improving early_stopping_metric by more than early_stopping_min_delta "
        "(a checkpoint is written at the stopping step); default: never"))
    early_stopping_metric: str = field(default="probe/accuracy", metadata=_help(
        "probe figure to watch: probe/accuracy (mean over languages) or probe/accuracy/<lang>"))
    early_stopping_min_delta: float = field(default=0.0, metadata=_help("smallest change counted as an improvement"))
    # ---- model
    model_preset: str = field(default="base", metadata=_help("shape preset of XLMRobertaConfig (see `xlmr-hf info`)"))
    model_overrides: dict[str, Any] = field(default_factory=dict, metadata=_help(
        "XLMRobertaConfig fields overriding the preset, e.g. {num_hidden_layers: 2}"))
    # ---- batch and optimisation (RoBERTa/XLM-R defaults)
    global_batch_size: int = field(default=8192, metadata=_help(
        "sequences per optimizer step = processes × micro_batch_size × gradient_accumulation_steps"))
    micro_batch_size: int = field(default=8, metadata=_help("sequences per process per forward/backward"))
    gradient_accumulation_steps: int | None = field(default=None, metadata=_help(
        "micro-batches per optimizer step; default: global_batch_size / (processes × micro_batch_size)"))
    learning_rate: float = field(default=6e-4, metadata=_help("peak learning rate"))
    warmup_steps: int = field(default=10000, metadata=_help("linear warmup steps, then linear decay to 0"))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay (not on norms and biases)"))
    adam_beta1: float = field(default=0.9, metadata=_help("AdamW beta1"))
    adam_beta2: float = field(default=0.98, metadata=_help("AdamW beta2 (RoBERTa)"))
    adam_epsilon: float = field(default=1e-6, metadata=_help("AdamW epsilon (RoBERTa)"))
    max_grad_norm: float = field(default=1.0, metadata=_help("gradient clipping norm (0 disables)"))
    mixed_precision: str = field(default="bf16", metadata=_help("no, bf16 or fp16 autocast"))
    # ---- run
    output_dir: str = field(default="runs/pretrain", metadata=_help("checkpoints, metrics.jsonl, run_config.yaml"))
    max_steps: int = field(default=1000, metadata=_help("optimizer steps"))
    save_steps: int = field(default=500, metadata=_help("checkpoint every N steps (and at the end)"))
    save_total_limit: int = field(default=3, metadata=_help("checkpoints kept (oldest removed first)"))
    logging_steps: int = field(default=10, metadata=_help("append a metrics.jsonl line every N steps"))
    seed: int = field(default=0, metadata=_help("seeds the model init, the sampler, the masking and dropout"))
    resume_from_checkpoint: str | None = field(default=None, metadata=_help(
        "a checkpoint directory, or 'latest' (the newest complete one in output_dir)"))
    report_to: list[str] = field(default_factory=list, metadata=_help(
        "Accelerate trackers, e.g. [tensorboard] or [trackio]"))
    push_to_hub: bool = field(default=False, metadata=_help(
        "upload every checkpoint (model, tokenizer, model card) to hub_model_id in the background"))
    hub_model_id: str | None = field(default=None, metadata=_help("Hub repository 'user/name' for push_to_hub"))
    hub_private: bool = field(default=True, metadata=_help("create the Hub repository as private"))
    peak_flops: float | None = field(default=None, metadata=_help(
        "peak FLOP/s of one process for MFU; default: measured with a bf16 GEMM at start"))

    def validate(self) -> None:
        """Check each field's type and range (the batch arithmetic needs the process count: `batch_arithmetic`)."""
        for name, value, low in (("seq_len", self.seq_len, 8), ("micro_batch_size", self.micro_batch_size, 1),
                                 ("global_batch_size", self.global_batch_size, 1), ("max_steps", self.max_steps, 1),
                                 ("save_steps", self.save_steps, 1), ("save_total_limit", self.save_total_limit, 1),
                                 ("logging_steps", self.logging_steps, 1), ("warmup_steps", self.warmup_steps, 0),
                                 ("tokenizer_vocab_size", self.tokenizer_vocab_size, 16), ("seed", self.seed, 0),
                                 ("eval_documents", self.eval_documents, 1), ("eval_steps", self.eval_steps or 1, 1),
                                 ("probe_steps", self.probe_steps or 1, 1),
                                 ("probe_max_length", self.probe_max_length, 6),
                                 ("early_stopping_patience", self.early_stopping_patience or 1, 1)):
            if value < low:
                raise RecipeError(f"{name} must be >= {low}, got {value!r}")
        if self.early_stopping_patience is not None and self.probe_set is None:
            raise RecipeError(f"early_stopping_patience={self.early_stopping_patience} needs a probe_set to watch")
        if not (self.early_stopping_metric == "probe/accuracy" or self.early_stopping_metric.startswith(
                "probe/accuracy/")):
            raise RecipeError(f"early_stopping_metric must be 'probe/accuracy' or 'probe/accuracy/<lang>', got "
                              f"{self.early_stopping_metric!r}")
        if self.early_stopping_min_delta < 0:
            raise RecipeError(f"early_stopping_min_delta must be >= 0, got {self.early_stopping_min_delta!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise RecipeError(f"mixed_precision must be one of {list(MIXED_PRECISION)}, got {self.mixed_precision!r}")
        if self.push_to_hub and (not self.hub_model_id or "/" not in self.hub_model_id):
            raise RecipeError(f"push_to_hub needs hub_model_id='user/name', got {self.hub_model_id!r}")
        if not 0 < self.learning_rate < 1:
            raise RecipeError(f"learning_rate must be in (0, 1), got {self.learning_rate!r}")

    def batch_arithmetic(self, processes: int) -> int:
        """Gradient accumulation steps for ``processes``; errors when the global batch does not divide evenly."""
        per_step = processes * self.micro_batch_size
        if self.gradient_accumulation_steps is None:
            if self.global_batch_size % per_step:
                raise RecipeError(
                    f"global_batch_size={self.global_batch_size} is not divisible by processes ({processes}) × "
                    f"micro_batch_size ({self.micro_batch_size}) = {per_step}; change one of them")
            return self.global_batch_size // per_step
        if per_step * self.gradient_accumulation_steps != self.global_batch_size:
            raise RecipeError(
                f"global_batch_size={self.global_batch_size} must equal processes ({processes}) × micro_batch_size "
                f"({self.micro_batch_size}) × gradient_accumulation_steps ({self.gradient_accumulation_steps}) = "
                f"{per_step * self.gradient_accumulation_steps}")
        if self.gradient_accumulation_steps < 1:
            raise RecipeError(f"gradient_accumulation_steps must be >= 1, got {self.gradient_accumulation_steps}")
        return self.gradient_accumulation_steps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(cls: type, name: str, value: Any) -> Any:
    """``value`` checked (and converted where lossless) against the field's type annotation."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise RecipeError(f"{name} may not be null")
    base = next((a for a in args if a is not type(None)), hint) if isinstance(hint, types.UnionType) else hint
    origin = typing.get_origin(base) or base
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool), str: isinstance(value, str),
          list: isinstance(value, (list, tuple)), dict: isinstance(value, Mapping)}.get(origin, True)
    if origin is float and isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if origin is str and isinstance(value, bool):  # YAML reads `bf16: true` as a boolean
        return "true" if value else "false"
    if origin is list and isinstance(value, str):  # "--languages en,fr"
        return [v for v in value.split(",") if v]
    if not ok:
        raise RecipeError(f"{name} must be {getattr(base, '__name__', str(base))}, got {value!r}")
    if origin is float:
        return float(value)
    if origin is list:
        return list(value)
    if origin is dict:
        return dict(value)
    return value


def _is_str_field(cls: type, name: str) -> bool:
    hint = typing.get_type_hints(cls).get(name)
    return hint is str or (isinstance(hint, types.UnionType) and str in typing.get_args(hint))


def load_recipe(path: str | os.PathLike[str] | None, overrides: Sequence[str] | Mapping[str, Any] = (),
                cls: type[Any] = PretrainArguments) -> Any:
    """``cls`` (`PretrainArguments`, or `FinetuneArguments` for fine-tuning) from a YAML recipe (or none) and overrides
    (``["--field", "value", ...]`` or a mapping).

    Override values are parsed as YAML scalars (``--max_steps 10``, ``--languages [en, fr]``, ``--corpus null``)."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise RecipeError(f"recipe {str(path)!r} does not exist")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, Mapping):
            raise RecipeError(f"recipe {str(path)!r} must be a mapping of fields, got {type(loaded).__name__}")
        values.update(loaded)
    if isinstance(overrides, Mapping):
        values.update(overrides)
    else:
        items = list(overrides)
        i = 0
        while i < len(items):
            flag = items[i]
            if not flag.startswith("--"):
                raise RecipeError(f"overrides must be --field value pairs, got {flag!r}")
            name = flag[2:]
            if "=" in name:
                name, raw = name.split("=", 1)
                i += 1
            elif i + 1 < len(items):
                raw, i = items[i + 1], i + 2
            else:
                raise RecipeError(f"override {flag} has no value")
            name = name.replace("-", "_")
            values[name] = yaml.safe_load(raw) if raw != "" else ""
            if not isinstance(values[name], str) and values[name] is not None and _is_str_field(cls, name):
                values[name] = raw  # "--mixed_precision no" is the string "no", not YAML's False
    known = {f.name for f in dataclasses.fields(cls)}
    for name in values:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            raise RecipeError(f"unknown field {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f"; fields: {', '.join(sorted(known))}")
    args = cls(**{name: _coerce(cls, name, value) for name, value in values.items()})
    args.validate()
    return args
