"""Run settings of `xlmr-hf pretrain`: one typed, documented dataclass, read from a YAML recipe and ``--field value``
overrides (`load_recipe`), checked before anything heavy starts. The resolved settings are written next to the
outputs (``run_config.json``) and into every checkpoint (``run_config.yaml``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..settings import RecipeError, build_settings, parse_overrides

__all__ = ["PretrainArguments", "RecipeError", "load_recipe", "read_recipe", "resolve_report_to"]

MIXED_PRECISION = ("no", "bf16", "fp16")
PUSH_FORMATS = ("transformers", "xlmr-hf")
NAN_POLICIES = ("stop", "skip")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flex_attention")
SAMPLING_UNITS = ("lines", "bytes", "documents", "tokens")  # xlmr_hf.data.SAMPLER_UNITS (no data import here)
# Settings whose change on resume changes the training trajectory (compared with the checkpoint's run_config.yaml).
EMBEDDING_INITS = ("mean", "random")
TRAJECTORY_FIELDS = ("seq_len", "packing", "sampling_unit", "shuffle_blocks", "padding_free", "mask_rate", "masking",
                     "whole_word", "alpha", "alpha_schedule", "language_caps", "mask_rate_schedule", "parallel_corpus",
                     "tlm_ratio", "use_language_embeddings", "model_name_or_path", "init_new_embeddings", "languages",
                     "learning_rate", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
                     "max_grad_norm", "global_batch_size", "micro_batch_size", "gradient_accumulation_steps",
                     "model_preset", "model_overrides", "tokenizer", "tokenizer_vocab_size", "mixed_precision", "seed")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class PretrainArguments:
    """Settings of one pretraining run (see `recipes/pretrain/*.yaml` for commented presets)."""

    # ---- data
    corpus: str | None = field(default=None, metadata=_help(
        "CC-100 directory (<lang>.txt[.xz]), URL template with {lang}, or a pre-tokenized corpus written by "
        "`xlmr-hf tokenize-corpus` (each rank then reads only its own blocks); default: the corpus embedded in the "
        "package"))
    languages: list[str] | None = field(default=None, metadata=_help("languages to train on (default: all)"))
    tokenizer: str | None = field(default=None, metadata=_help(
        "tokenizer directory or Hub id; default: train one on the corpus into <output_dir>/tokenizer"))
    tokenizer_vocab_size: int = field(default=8000, metadata=_help("pieces of the tokenizer trained when none is given"))
    alpha: float = field(default=0.3, metadata=_help("language sampling exponent: q_i ∝ p_i^alpha"))
    alpha_schedule: dict[str, Any] | None = field(default=None, metadata=_help(
        "alpha over consumed tokens instead of a constant alpha: {type: linear|cosine, start, end, total} or {type: "
        "phases, phases: [{until: tokens, alpha, languages: [...]}, ..., {alpha, languages}]} (languages join at a "
        "phase; mmBERT: 0.7 -> 0.5 -> 0.3)"))
    language_caps: float | dict[str, float] | None = field(default=None, metadata=_help(
        "epochs over a language's data after which it leaves the mixture: one number for all or {lang: epochs}"))
    sampling_unit: str = field(default="lines", metadata=_help(
        "unit of p_i: lines (sentences, as the paper), bytes, documents, or tokens (pre-tokenized corpora)"))
    shuffle_blocks: int = field(default=8192, metadata=_help(
        "blocks per shuffle window: each window of planned blocks is permuted with the seed (1 disables); the online "
        "path holds up to two windows of tokens in memory (8192 x 512 tokens = 32 MB)"))
    seq_len: int = field(default=512, metadata=_help("tokens per packed block, <s> included"))
    packing: str = field(default="complete", metadata=_help("complete (blocks cross documents) or complete_doc"))
    padding_free: bool = field(default=False, metadata=_help("flattened batches with cu_seqlens (no padding)"))
    mask_rate: float = field(default=0.15, metadata=_help("share of tokens selected for MLM"))
    mask_rate_schedule: dict[str, Any] | None = field(default=None, metadata=_help(
        "mask rate over consumed tokens instead of mask_rate: {type: linear|cosine, start, end, total} or {type: "
        "phases, phases: [{until: tokens, rate}, ..., {rate}]} (mmBERT: 0.30 -> 0.15 -> 0.05)"))
    masking: str = field(default="exact", metadata=_help("exact (fairseq) or bernoulli (HF collator)"))
    whole_word: bool = field(default=False, metadata=_help("mask whole words"))
    parallel_corpus: str | None = field(default=None, metadata=_help(
        "parallel sentences for translation-LM batches: a directory of <l1>-<l2>.tsv[.xz] files (one pair per line, "
        "tab-separated) or 'default' (the pairs packaged with xlmr-hf)"))
    tlm_ratio: float = field(default=0.0, metadata=_help(
        "share of batches that are TLM batches (<s> src </s></s> tgt </s>, both sides masked); needs parallel_corpus"))
    use_language_embeddings: bool = field(default=False, metadata=_help(
        "XLM's language embeddings: the model gets one per language (in sorted order), fed with each token's "
        "language from the stream (XLM-R drops them, §5)"))
    eval_corpus: str | None = field(default=None, metadata=_help(
        "held-out CC-100 directory for per-language MLM loss/accuracy; default: the embedded corpus's held-out split "
        "when training on the embedded corpus, else no evaluation"))
    eval_tokens: int = field(default=16384, metadata=_help(
        "held-out tokens per language (the set is the first documents of each language up to this many tokens)"))
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
    model_name_or_path: str | None = field(default=None, metadata=_help(
        "continue pretraining from these weights: an xlmr-hf checkpoint or model directory, or a transformers "
        "xlm-roberta / xlm-roberta-xl directory or Hub id (the shape comes from it: model_preset is not used); its "
        "tokenizer is used unless tokenizer is given; the optimizer and the learning-rate schedule start fresh"))
    init_new_embeddings: str = field(default="mean", metadata=_help(
        "with model_name_or_path and a larger (extended) tokenizer: new embedding rows are the mean of the old rows "
        "of the pieces each new piece splits into under the model's tokenizer (mean) or drawn as at init (random)"))
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
    # ---- speed (none of these changes the trajectory beyond floating-point rounding)
    attn_implementation: str = field(default="sdpa", metadata=_help(
        "attention kernels: sdpa, eager, flash_attention_2 (needs flash-attn and a GPU) or flex_attention"))
    torch_compile: bool = field(default=False, metadata=_help(
        "compile each encoder layer with torch.compile (regional compilation: one compile serves all layers)"))
    gradient_checkpointing: bool = field(default=False, metadata=_help(
        "recompute each layer's activations in backward: less memory for larger micro-batches, ~30% more compute"))
    cpu_allocator_cache: bool = field(default=True, metadata=_help(
        "CPU runs on glibc: keep freed memory in the process (mallopt: no mmap for large blocks, no trimming) "
        "instead of page-faulting the large per-step buffers in again every step; the process keeps its peak memory"))
    dataloader_num_workers: int = field(default=0, metadata=_help(
        "DataLoader worker processes preparing batches ahead of the step (0: in the training process); batches "
        "and resume do not depend on it"))
    dataloader_prefetch_factor: int = field(default=4, metadata=_help(
        "batches each worker prepares ahead (with dataloader_num_workers > 0)"))
    dataloader_pin_memory: bool = field(default=True, metadata=_help(
        "pin batches in page-locked memory for asynchronous host-to-GPU copies (GPU runs only)"))
    # ---- run
    output_dir: str = field(default="runs/pretrain", metadata=_help(
        "checkpoints, metrics.jsonl, run_config.json; if it holds a complete checkpoint the run resumes from the "
        "newest one; if it holds anything else, set overwrite_output_dir"))
    overwrite_output_dir: bool = field(default=False, metadata=_help(
        "start afresh in a non-empty output_dir: its checkpoints, metrics and tracker logs are removed first"))
    max_steps: int = field(default=1000, metadata=_help("optimizer steps"))
    save_steps: int = field(default=500, metadata=_help("checkpoint every N steps (and at the end)"))
    save_total_limit: int = field(default=3, metadata=_help(
        "checkpoints kept (oldest removed first; the one just written is always kept)"))
    logging_steps: int = field(default=10, metadata=_help("append a metrics.jsonl line every N steps"))
    seed: int = field(default=0, metadata=_help("seeds the model init, the sampler, the masking and dropout"))
    resume_from_checkpoint: str | None = field(default=None, metadata=_help(
        "a checkpoint directory, or 'latest' (the newest complete one in output_dir); default: the newest one when "
        "output_dir holds any"))
    report_to: list[str] = field(default_factory=list, metadata=_help(
        "Accelerate trackers, as TrainingArguments.report_to: none (default), all (every installed one), or a list "
        "such as [tensorboard] or [trackio]"))
    push_to_hub: bool = field(default=False, metadata=_help(
        "upload every checkpoint (model, tokenizer, model card) to hub_model_id in the background"))
    hub_model_id: str | None = field(default=None, metadata=_help("Hub repository 'user/name' for push_to_hub"))
    hub_private_repo: bool = field(default=True, metadata=_help("create the Hub repository as private"))
    push_format: str = field(default="transformers", metadata=_help(
        "format of pushed models: transformers (the plain xlm-roberta format: the Hub widget and transformers load "
        "it without remote code, and xlmr-hf loads it unchanged) or xlmr-hf (our config with auto_map; needs "
        "trust_remote_code=True without xlmr-hf)"))
    nan_policy: str = field(default="stop", metadata=_help(
        "a step whose loss or gradient norm is not finite: stop (end the run with an error naming the step; nothing "
        "of that step is written) or skip (skip its update, count it in skipped_steps; not under DeepSpeed)"))
    allow_config_change: bool = field(default=False, metadata=_help(
        "resume even if settings that change the training trajectory differ from the checkpoint's (each change is "
        "logged and applied); raising max_steps is always allowed"))
    license: str | None = field(default="mit", metadata=_help(
        "license in the model cards (a Hub license identifier; XLM-R's is mit)"))
    peak_flops: float | None = field(default=None, metadata=_help(
        "peak FLOP/s of one process for MFU; default: measured with a bf16 GEMM at start"))

    def validate(self) -> None:
        """Check each field's type and range (the batch arithmetic needs the process count: `batch_arithmetic`)."""
        for name, value, low in (("seq_len", self.seq_len, 8), ("micro_batch_size", self.micro_batch_size, 1),
                                 ("global_batch_size", self.global_batch_size, 1), ("max_steps", self.max_steps, 1),
                                 ("save_steps", self.save_steps, 1), ("save_total_limit", self.save_total_limit, 1),
                                 ("logging_steps", self.logging_steps, 1), ("warmup_steps", self.warmup_steps, 0),
                                 ("shuffle_blocks", self.shuffle_blocks, 1),
                                 ("tokenizer_vocab_size", self.tokenizer_vocab_size, 16), ("seed", self.seed, 0),
                                 ("eval_tokens", self.eval_tokens, 16), ("eval_steps", self.eval_steps or 1, 1),
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
        self._validate_stream_fields()
        if self.sampling_unit not in SAMPLING_UNITS:
            raise RecipeError(f"sampling_unit must be one of {list(SAMPLING_UNITS)}, got {self.sampling_unit!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise RecipeError(f"mixed_precision must be one of {list(MIXED_PRECISION)}, got {self.mixed_precision!r}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise RecipeError(f"attn_implementation must be one of {list(ATTN_IMPLEMENTATIONS)}, got "
                              f"{self.attn_implementation!r}")
        if self.dataloader_num_workers < 0 or self.dataloader_prefetch_factor < 1:
            raise RecipeError(f"dataloader_num_workers must be >= 0 and dataloader_prefetch_factor >= 1, got "
                              f"{self.dataloader_num_workers!r} and {self.dataloader_prefetch_factor!r}")
        if self.nan_policy not in NAN_POLICIES:
            raise RecipeError(f"nan_policy must be one of {list(NAN_POLICIES)}, got {self.nan_policy!r}")
        if self.push_format not in PUSH_FORMATS:
            raise RecipeError(f"push_format must be one of {list(PUSH_FORMATS)}, got {self.push_format!r}")
        self.report_to = resolve_report_to(self.report_to)
        if self.push_to_hub and (not self.hub_model_id or "/" not in self.hub_model_id):
            raise RecipeError(f"push_to_hub needs hub_model_id='user/name', got {self.hub_model_id!r}")
        if not 0 < self.learning_rate < 1:
            raise RecipeError(f"learning_rate must be in (0, 1), got {self.learning_rate!r}")

    def _validate_stream_fields(self) -> None:
        for name in ("alpha_schedule", "mask_rate_schedule"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, Mapping) or "type" not in value):
                raise RecipeError(f"{name} must be a mapping with a 'type' (constant, linear, cosine or phases), got "
                                  f"{value!r}")
        if not 0.0 <= self.tlm_ratio <= 1.0:
            raise RecipeError(f"tlm_ratio must be in [0, 1], got {self.tlm_ratio!r}")
        if self.tlm_ratio > 0 and not self.parallel_corpus:
            raise RecipeError(f"tlm_ratio={self.tlm_ratio} needs a parallel_corpus (a directory of <l1>-<l2>.tsv "
                              "files or 'default')")
        if self.init_new_embeddings not in EMBEDDING_INITS:
            raise RecipeError(f"init_new_embeddings must be one of {list(EMBEDDING_INITS)}, got "
                              f"{self.init_new_embeddings!r}")

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

    def trajectory_changes(self, trained_with: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        """``{field: (checkpoint's value, this value)}`` for the `TRAJECTORY_FIELDS` that differ."""
        mine = self.to_dict()
        return {name: (trained_with[name], mine[name]) for name in TRAJECTORY_FIELDS
                if name in trained_with and _comparable(trained_with[name]) != _comparable(mine[name])}


def _comparable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _comparable(v) for k, v in value.items()}
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def resolve_report_to(value: str | Sequence[str] | None) -> list[str]:
    """``report_to`` as `TrainingArguments` reads it: ``none`` (or empty) is no tracker, ``all`` every installed one
    (returned as ``["all"]``, which Accelerate expands), else the named trackers."""
    names = [value] if isinstance(value, str) else list(value or [])
    names = [n.strip() for name in names for n in str(name).split(",") if n.strip()]
    if "none" in names:
        if len(names) > 1:
            raise RecipeError(f"report_to={names!r}: 'none' cannot be combined with other trackers")
        return []
    if "all" in names and len(names) > 1:
        raise RecipeError(f"report_to={names!r}: 'all' already means every installed tracker")
    return names


def load_recipe(path: str | os.PathLike[str] | None, overrides: Sequence[str] | Mapping[str, Any] = (),
                cls: type[Any] = PretrainArguments) -> Any:
    """``cls`` (`PretrainArguments`, or `FinetuneArguments` for fine-tuning) from a YAML recipe (or none) and overrides
    (``["--field", "value", ...]`` or a mapping).

    Override values are parsed as YAML scalars (``--max_steps 10``, ``--languages [en, fr]`` or ``--languages en fr``,
    ``--corpus null``); a boolean field also stands alone (``--padding_free``). See `xlmr_hf.settings`."""
    values: dict[str, Any] = read_recipe(path) if path is not None else {}
    given = overrides if isinstance(overrides, Mapping) else parse_overrides(cls, overrides)
    for name, value in given.items():  # a mapping given on the command line merges into the recipe's
        merge = isinstance(value, Mapping) and isinstance(values.get(name), Mapping)
        values[name] = {**values[name], **value} if merge else value
    args = build_settings(cls, values)
    args.validate()
    return args


def read_recipe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The field mapping of a YAML recipe; errors name the file (and the line of a YAML error)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {str(path)!r} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError(f"recipe {str(path)!r}{where}: {problem}") from None
    if not isinstance(loaded, Mapping):
        raise RecipeError(f"recipe {str(path)!r} must be a mapping of fields, got {type(loaded).__name__}")
    return dict(loaded)
