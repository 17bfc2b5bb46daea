#!/usr/bin/env python
"""End-to-end pretraining tokens/s and MFU: our loop (`xlmr_hf.training.pretrain`) vs transformers' ``run_mlm.py``
path, same process, same text, same tokenizer, same model shape, same precision.

Text: the corpus embedded in the package (`xlmr_hf.data.default_corpus_dir()`, CC-100 layout). Tokenizer: one
XLM-R-layout SentencePiece model trained once on it with `xlmr_hf.tokenization.train_tokenizer` (or ``--tokenizer``).

* **ours**: ``pretrain(PretrainArguments(...))`` in this process: stream (reading the xz files, α = 0.3 language
  sampling, tokenization, fairseq ``complete`` packing of whole paragraphs, so blocks are padded: the ``fill`` column,
  exact 15% masking) + model + AdamW (``torch.optim.AdamW`` defaults, RoBERTa's β/ε, weight decay off for norms and
  biases) + clipping + linear schedule + the loop's bookkeeping. No accumulation (global batch = micro batch), no
  evaluation (``corpus`` is given explicitly). tokens/s is read from ``metrics.jsonl`` (one line per step: non-pad
  tokens / wall time since the previous line), so the final checkpoint, written after the last line, is not timed.
* **theirs** (``run_mlm.py``): the same documents in a ``datasets.Dataset``, ``.map`` tokenization with the same HF
  tokenizer (``<s> document </s>``, ``return_special_tokens_mask=True``), run_mlm's grouping (concatenate, cut into
  ``seq_len`` blocks, remainder dropped), ``DataCollatorForLanguageModeling(mlm_probability=0.15)``,
  ``transformers.XLMRobertaForMaskedLM`` with our config's values, ``Trainer`` with its default optimizer
  (``adamw_torch_fused``, as ours), the same learning rate, warmup, β/ε, weight decay and clipping, ``use_cpu=True``, one process, no
  saving. A step is the wall time between consecutive ``on_step_end`` callbacks: it includes the next batch's loading
  and collation (random masking) and the Trainer's logging. tokens per step = micro batch × seq_len (blocks are full).

What is fair and what is not: ours reads, tokenizes, packs and masks online inside the timed steps; theirs has its
reading and tokenization done beforehand by ``.map`` (reported separately as "preprocessing", not in tokens/s), which
favours theirs. Both skip the first ``--warmup`` steps and report the median of the remaining ones. Both use dropout.

MFU = tokens/s × `training_flops_per_token` (model FLOPs: 6 per encoder parameter, the LM head on the masked 15% of
tokens only -- all an MLM needs --, plus the attention matmuls) / a measured GEMM rate (`measure_peak_flops`, 1024³ matmuls in this process). It is shown
against the **bf16** GEMM rate (the issue's definition) and against the rate of the precision actually used: on a CPU
without native bf16, bf16 matmuls are emulated (~100× slower than fp32), ``--mixed-precision auto`` then trains in fp32
and the MFU against the bf16 rate exceeds 100%, meaningless; the fp32 column is the figure to read there. HFU counts
the FLOPs each side executes: ours runs the LM head on the masked rows only (HFU ≈ MFU), theirs on every row (HFU =
MFU + the LM head on the other 85% of tokens, wasted work).

``--malloc cache`` re-runs the script with glibc tunables that keep freed memory: with glibc's defaults every step
page-faults its large buffers in again (gradients, logits), which costs a large share of a base step on this VM.

Guard: the first-step losses of the two sides are not comparable (different init and masking), so each must only lie
within 1.0 of ln(vocab), the loss of a uniform prediction (exit status 1 otherwise).

On a GPU (``--device cuda``, or ``auto`` where torch sees one) both paths train there in bf16. The loop then waits for
the GPU only at its logging steps, so ours is timed per ``--logging-steps`` window (metrics.jsonl) and theirs over the
timed steps as one window between two ``torch.cuda.synchronize()`` calls; the GEMM rate is measured on the GPU
(8192³ bf16 products timed with CUDA events, or ``--peak-flops``); the figures add the peak GPU memory of each path
(``torch.cuda.max_memory_allocated``) and the data path's share of our step time (``data_share`` of metrics.jsonl: the
wall time spent waiting for the next batch; where the loop does not write it, estimated by timing the stream alone).
``--num-workers``, ``--attn-implementation``, ``--torch-compile`` and ``--gradient-checkpointing`` go to
`PretrainArguments` where it has those fields (an older loop ignores them and says so).

Without the ``datasets`` library (a bare GPU image), theirs builds the same blocks -- ``<s> document </s>`` with the
same tokenizer, concatenated, cut into ``seq_len`` blocks, remainder dropped -- into a list-backed
``torch.utils.data.Dataset`` instead of ``Dataset.map``. The blocks and the collator are the same; only the
preprocessing time differs (no Arrow, no cache), and it is not in tokens/s either way.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import logging
import math
import operator
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from _common import (
    gpu_info,
    machine_info,
    measure_gemm_flops,
    resolve_device,
    synchronize,
)

logger = logging.getLogger("bench_pretrain")

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "transformers", "accelerate", "datasets", "tokenizers", "sentencepiece")
CODE = [ROOT / "src/xlmr_hf/training", ROOT / "src/xlmr_hf/data", ROOT / "src/xlmr_hf/models"]
ISA = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}
# transformers.XLMRobertaConfig fields taken from our config (theirs has no layer_norm_position / language embeddings)
HF_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
             "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
             "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id", "eos_token_id",
             "tie_word_embeddings")
MFU_GOAL, RATIO_GOAL = 0.30, 3.0
GPU_MFU_GOAL, GPU_RATIO_GOAL, GPU_DATA_SHARE_GOAL = 0.40, 2.0, 0.05  # issue 18's H200 goals
# PretrainArguments fields of the GPU-ready loop: passed only where this version of the loop has them
SPEED_FIELDS = ("dataloader_num_workers", "attn_implementation", "torch_compile", "gradient_checkpointing")
MASK_RATE = 0.15  # PretrainArguments' default, and the collator's mlm_probability
# --malloc cache: glibc never unmaps freed blocks, so big per-step buffers are not page-faulted in again every step
MALLOC_CACHE = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


@dataclass(frozen=True)
class Shape:
    name: str
    overrides: dict[str, Any]  # model_overrides on the "base" preset
    seq_len: int
    micro_batch: int
    steps: int
    learning_rate: float
    warmup_steps: int


SHAPES = {
    # 2 layers x 64 (the debug recipe's model until issue 20 widened it), vocabulary = the tokenizer's
    "debug": Shape("debug", {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                             "intermediate_size": 256}, seq_len=128, micro_batch=8, steps=30, learning_rate=1e-3,
                   warmup_steps=20),
    # XLM-R base with the released 250,002-entry vocabulary (the LM head of the real model)
    "base": Shape("base", {"vocab_size": 250002}, seq_len=512, micro_batch=2, steps=4, learning_rate=6e-4,
                  warmup_steps=10),
}


def cpu_flags() -> list[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    m = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    return sorted(ISA & set(m.group(1).split())) if m else []


class OtherLoad:
    """Cores used by other processes (all busy CPU time in /proc/stat minus this process's) over a region: on 2
    cores a competing process stalls the OpenMP barriers and can slow a step several-fold."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (sum(v) - v[3] - v[4]) / tick, (int(own[11]) + int(own[12])) / tick, time.perf_counter()

    def cores(self) -> float:
        busy, own, now = self._sample()
        return max(0.0, (busy - self.start[0]) - (own - self.start[1])) / (now - self.start[2])


def wait_idle(max_wait: float, threshold: float = 0.15) -> None:
    """Sleep in 1 s slices until other processes use < ``threshold`` cores, at most ``max_wait`` s."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        probe = OtherLoad()
        time.sleep(1.0)
        if probe.cores() < threshold:
            return
    if max_wait > 0:
        logger.warning("other processes still busy after %.0f s; timing anyway (see the 'others' column)", max_wait)


def get_tokenizer(given: Path | None, work: Path, vocab_size: int) -> Path:
    if given is not None:
        return given
    directory = work / f"tokenizer-{vocab_size}"
    if not (directory / "tokenizer.json").is_file():
        from xlmr_hf.data import default_corpus_dir
        from xlmr_hf.tokenization import TokenizerTrainingConfig, train_tokenizer

        logger.info("training a %d-piece tokenizer on the embedded corpus into %s", vocab_size, directory)
        train_tokenizer(default_corpus_dir(), directory,
                        TokenizerTrainingConfig(vocab_size=vocab_size, seed=0, heldout_sentences=0), progress=False)
    return directory


def our_config(shape: Shape, tokenizer: Any) -> Any:
    """The config `pretrain` builds for this shape (same overrides, same order)."""
    from xlmr_hf.models import XLMRobertaConfig

    overrides = {"vocab_size": len(tokenizer), "max_position_embeddings": shape.seq_len + 2, **shape.overrides}
    return XLMRobertaConfig.from_preset("base", **overrides)


def flops_per_token(config: Any, seq_len: int) -> tuple[float, str]:
    """`training_flops_per_token` of our model (built on the meta device: shapes only) and its attention backend."""
    from xlmr_hf.models import XLMRobertaForMaskedLM
    from xlmr_hf.training.pretrain import training_flops_per_token

    with torch.device("meta"):
        model = XLMRobertaForMaskedLM(config)
    return training_flops_per_token(config, model, seq_len, MASK_RATE), str(model.config._attn_implementation)


# --------------------------------------------------------------------------------------------------------- ours
def speed_settings(speed: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the ``speed`` settings this version of `PretrainArguments` has, the names it lacks)."""
    import dataclasses

    from xlmr_hf.training.arguments import PretrainArguments

    fields = {f.name for f in dataclasses.fields(PretrainArguments)}
    return {k: v for k, v in speed.items() if k in fields}, [k for k in speed if k not in fields]


def stream_seconds_per_batch(shape: Shape, tokenizer_dir: Path, batches: int = 8) -> float:
    """Seconds the pretraining stream alone needs per micro-batch (after 2 untimed ones), in this process: the
    estimate of the data path's cost where the loop does not write ``data_share``."""
    from xlmr_hf.data import (
        PretrainingStream,
        default_corpus_dir,
        load_stream_tokenizer,
    )

    stream = PretrainingStream(str(default_corpus_dir()), load_stream_tokenizer(str(tokenizer_dir)),
                               seq_len=shape.seq_len, batch_size=shape.micro_batch, seed=0)
    iterator = iter(stream)
    next(iterator), next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return (time.perf_counter() - start) / batches


def run_ours(shape: Shape, tokenizer_dir: Path, precision: str, peak: float, steps: int, warmup: int,
             work: Path, device: str = "cpu", logging_steps: int = 1,
             speed: dict[str, Any] | None = None) -> dict[str, Any]:
    from xlmr_hf.data import default_corpus_dir
    from xlmr_hf.training.arguments import PretrainArguments
    from xlmr_hf.training.pretrain import pretrain  # not xlmr_hf.training.pretrain: the module of the same name

    out = work / f"ours-{shape.name}"
    shutil.rmtree(out, ignore_errors=True)  # metrics.jsonl is appended to: start clean
    extra, missing = speed_settings(speed or {})
    if missing:
        logger.warning("this PretrainArguments has no %s: ignored", ", ".join(missing))
    args = PretrainArguments(
        corpus=str(default_corpus_dir()), tokenizer=str(tokenizer_dir), seq_len=shape.seq_len, model_preset="base",
        model_overrides=dict(shape.overrides), micro_batch_size=shape.micro_batch, global_batch_size=shape.micro_batch,
        learning_rate=shape.learning_rate, warmup_steps=shape.warmup_steps, mixed_precision=precision,
        output_dir=str(out), max_steps=steps, save_steps=steps + 1, save_total_limit=1, logging_steps=logging_steps,
        seed=0, peak_flops=peak, **extra)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    pretrain(args)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    records = [r for r in records if "tokens_per_s" in r]
    real = sum(v for k, v in records[-1].items() if k.startswith("tokens/"))  # non-pad tokens of all steps
    # the lines after the first `warmup` steps (one line per step with logging_steps=1: the CPU default)
    later = [r for r in records if r["step"] > warmup] or records[-1:]
    timed = [r["tokens_per_s"] for r in later]
    shutil.rmtree(out, ignore_errors=True)  # the base checkpoint is ~3 GB
    result = {"tokens_per_s": statistics.median(timed), "all_tokens_per_s": [r["tokens_per_s"] for r in records],
              "steps_timed": sum(logging_steps for _ in later) if logging_steps > 1 else len(timed),
              "first_loss": records[0]["loss"], "wall_s": wall,
              "fill": real / (steps * shape.micro_batch * shape.seq_len),
              "loop_mfu_used_peak": statistics.median(r["mfu"] for r in later), "speed_settings": extra,
              "logging_steps": logging_steps}
    if all("data_share" in r for r in later):
        result["data_share"], result["data_share_source"] = statistics.median(r["data_share"] for r in later), "loop"
        result["all_data_share"] = [r["data_share"] for r in records]
    if device == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


# ------------------------------------------------------------------------------------------------------- theirs
class ListDataset(torch.utils.data.Dataset):
    """Blocks held in a Python list (one dict of lists per block): theirs' dataset where `datasets` is missing."""

    def __init__(self, rows: list[dict[str, list[int]]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.rows[index]


def hf_blocks(tokenizer: Any, seq_len: int) -> tuple[Any, float, int]:
    """(dataset of full ``seq_len`` blocks, seconds of .map tokenization + grouping, documents)."""
    from xlmr_hf.data import cc100_files, default_corpus_dir, iter_cc100_documents

    documents = [doc for _, path in cc100_files(default_corpus_dir()) for doc in iter_cc100_documents(path)]
    try:
        from datasets import Dataset
    except ImportError:  # a bare GPU image: the same blocks in a list
        return list_blocks(tokenizer, documents, seq_len)
    start = time.perf_counter()

    def tokenize(examples: dict[str, list]) -> dict[str, list]:
        return tokenizer(examples["text"], return_special_tokens_mask=True)

    def group_texts(examples: dict[str, list]) -> dict[str, list]:  # run_mlm.py's recipe, written here
        concatenated = {k: functools.reduce(operator.iadd, examples[k], []) for k in examples}
        total = len(concatenated["input_ids"]) // seq_len * seq_len
        return {k: [t[i:i + seq_len] for i in range(0, total, seq_len)] for k, t in concatenated.items()}

    dataset = Dataset.from_dict({"text": documents}).map(tokenize, batched=True, remove_columns=["text"])
    dataset = dataset.map(group_texts, batched=True)
    return dataset, time.perf_counter() - start, len(documents)


def list_blocks(tokenizer: Any, documents: list[str], seq_len: int, batch: int = 1000) -> tuple[Any, float, int]:
    """`hf_blocks` without `datasets`: the same tokenization (``<s> document </s>``, batches of 1000 documents as
    ``.map``'s default) and the same grouping, per batch of documents, into a `ListDataset`. Trainer drops the
    ``special_tokens_mask`` column of a `datasets.Dataset` (not a forward argument), so the blocks here leave it out
    too: the collator then finds the special tokens itself in both cases."""
    start = time.perf_counter()
    rows: list[dict[str, list[int]]] = []
    for first in range(0, len(documents), batch):
        encoded = tokenizer(documents[first:first + batch])
        ids = [token for row in encoded["input_ids"] for token in row]
        mask = [value for row in encoded["attention_mask"] for value in row]
        total = len(ids) // seq_len * seq_len
        rows.extend({"input_ids": ids[i:i + seq_len], "attention_mask": mask[i:i + seq_len]}
                    for i in range(0, total, seq_len))
    return ListDataset(rows), time.perf_counter() - start, len(documents)


def run_theirs(shape: Shape, tokenizer: Any, config: Any, precision: str, steps: int, warmup: int,
               work: Path, device: str = "cpu", logging_steps: int = 1) -> dict[str, Any]:
    import transformers
    from transformers import (
        DataCollatorForLanguageModeling,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    class StepTimer(TrainerCallback):
        """Seconds between step ends; on a GPU also the synchronised window from the end of step ``warmup`` to the
        end of the last step (the steps between are queued asynchronously: their own times are launch times)."""

        def __init__(self) -> None:
            self.last, self.seconds, self.window_start, self.window = 0.0, [], 0.0, None

        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            self.last = self.window_start = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            done = len(self.seconds) + 1
            if device == "cuda" and done in (warmup, steps):
                synchronize(device)
            now = time.perf_counter()
            self.seconds.append(now - self.last)
            self.last = now
            if done == warmup:
                self.window_start = now
            elif done == steps:
                self.window = now - self.window_start

    dataset, prep_seconds, documents = hf_blocks(tokenizer, shape.seq_len)
    hf_config = transformers.XLMRobertaConfig(**{name: getattr(config, name) for name in HF_FIELDS})
    transformers.set_seed(0)
    model = transformers.XLMRobertaForMaskedLM(hf_config)
    timer = StepTimer()
    out = work / f"theirs-{shape.name}"
    training_args = TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=shape.micro_batch,
        gradient_accumulation_steps=1, learning_rate=shape.learning_rate, warmup_steps=shape.warmup_steps,
        lr_scheduler_type="linear", weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.98, adam_epsilon=1e-6,
        max_grad_norm=1.0, bf16=precision == "bf16", use_cpu=device == "cpu", report_to=[],
        save_strategy="no", logging_strategy="steps", logging_steps=logging_steps, dataloader_num_workers=0,
        disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, callbacks=[timer],
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15))
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    attention = str(model.config._attn_implementation)
    del trainer, model
    shutil.rmtree(out, ignore_errors=True)
    tokens = shape.micro_batch * shape.seq_len
    timed = timer.seconds[warmup:]
    result = {"tokens_per_s": tokens / statistics.median(timed),
              "all_tokens_per_s": [tokens / s for s in timer.seconds], "steps_timed": len(timed),
              "first_loss": losses[0], "wall_s": wall, "fill": 1.0, "preprocess_s": prep_seconds,
              "documents": documents, "blocks": len(dataset), "attention": attention,
              "dataset": type(dataset).__name__}
    if device == "cuda":
        result["tokens_per_s"] = tokens * len(timed) / timer.window  # the synchronised window
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


# ------------------------------------------------------------------------------------------------------- report
def render(res: dict[str, Any]) -> str:
    m, p = res["machine"], res["precision"]
    used = "fp32" if p["used"] == "no" else p["used"]
    isa = ",".join(res["isa"]) or "none of " + ",".join(sorted(ISA))
    bar = "=" * 112
    lines = [
        bar,
        ("End-to-end pretraining: xlmr_hf.training.pretrain (ours) vs transformers' run_mlm path (Trainer + "
         "XLMRobertaForMaskedLM + DataCollatorForLanguageModeling), same process"),
        (f"date {m['date_utc']} | CPU {m['cpu']} | {m['logical_cores']} logical cores, torch threads "
         f"{res['torch_threads']} | ISA {isa} | RAM {m['mem_total_gib']} GiB"),
        f"python {m['python']} | " + " | ".join(f"{name} {m[name]}" for name in PACKAGES),
        f"command: {res['command']}",
        (f"code: commit {m['commit']}, uncommitted changes in src/xlmr_hf/{{training,data,models}}: "
         f"{m['code_uncommitted']} | sha256 {m['code_sha256']}"),
        (f"load average (1/5/15 min) at start {m['load_avg_start']}, at end {res['load_avg_end']} (> "
         f"{m['logical_cores']}: other processes competed for the cores)"),
        (f"measured GEMM rate (1024^3 matmul): fp32 {p['fp32_gflops']:.1f} GFLOP/s, bf16 {p['bf16_gflops']:.2f} "
         f"GFLOP/s -> {p['note']}"),
        (f"precision used (both paths): {used} | tokenizer {res['tokenizer']} ({res['tokenizer_size']} pieces) | "
         f"first {res['args']['warmup']} steps untimed | best of {res['args']['repeats']} run(s) per path"),
        ("MFU = tokens/s x model FLOPs/token (LM head on the masked tokens only) / GEMM rate; HFU = the same with "
         f"the FLOPs executed (theirs: LM head on every token) against the {used} rate"),
        ("fill = real tokens / (batch x seq_len) positions; others = cores used by other processes during the run "
         f"(0 = clean); allocator: {res['malloc']}"),
        bar,
    ]
    gpu = m.get("gpu")
    if gpu:  # a GPU run: the device under the CPU line, and how it was timed
        lines[3:3] = [
            (f"DEVICE cuda: {gpu['name']} (compute capability {gpu['capability']}, {gpu['multiprocessors']} SMs, "
             f"{gpu['memory_gib']} GiB) | driver {gpu['driver']} | CUDA {gpu['cuda']} | cuDNN {gpu['cudnn']}"),
            (f"GPU timing: ours per metrics line of {res['logging_steps']} steps (the loop waits for the GPU there), "
             f"theirs over the timed steps between two torch.cuda.synchronize() calls (Trainer logs every "
             f"{res['logging_steps']} steps); GEMM rates 8192^3 with CUDA events"),
        ]
        lines = [line.replace("(1024^3 matmul)", "(8192^3 matmul, CUDA events)") for line in lines]
    for name, s in res["shapes"].items():
        o, t = s["ours"], s["theirs"]
        lines += [
            "",
            (f"SHAPE {name}: {s['layers']} layers x {s['hidden']}, vocab {s['vocab']:,}, seq {s['seq_len']}, "
             f"micro batch {s['micro_batch']} (global = micro), {s['steps']} steps; "
             f"{s['flops_per_token'] / 1e9:.3f} GFLOP/token; attention ours {s['attention_ours']}, theirs "
             f"{t['attention']}"),
            (f"  {'path':<18}{'tokens/s':>10}{'MFU bf16 peak':>15}{f'MFU {used} peak':>15}{'HFU':>7}{'timed':>7}"
             f"{'fill':>6}{'first loss':>12}{'wall s':>8}{'others':>8}  tokens/s of every step (other runs' medians)"),
        ]
        for label, r in (("ours", o), ("theirs (run_mlm)", t)):
            rest = [x["tokens_per_s"] for x in s["runs"][label.split()[0]] if x is not r]
            every = " ".join(f"{x:.0f}" for x in r["all_tokens_per_s"])
            lines.append(f"  {label:<18}{r['tokens_per_s']:>10.1f}{r['mfu_bf16']:>15.1%}{r['mfu_used']:>15.1%}"
                         f"{r['hfu_used']:>7.0%}{r['steps_timed']:>7}{r['fill']:>6.0%}{r['first_loss']:>12.3f}"
                         f"{r['wall_s']:>8.1f}{r['others']:>8.2f}  {every}"
                         + (f" ({', '.join(f'{x:.0f}' for x in rest)})" if rest else ""))
        if gpu:
            lines.append(f"  peak GPU memory (torch.cuda.max_memory_allocated): ours {o['peak_memory_gib']:.1f} GiB, "
                         f"theirs {t['peak_memory_gib']:.1f} GiB | data path share of our step: "
                         f"{o['data_share']:.1%} ({o['data_share_source']}) | theirs' blocks: {t['dataset']}")
        lines += [
            (f"  ratio ours/theirs: {s['ratio']:.2f}x | theirs' preprocessing, not in tokens/s (.map tokenization + "
             f"grouping of {t['documents']} documents into {t['blocks']} blocks): {t['preprocess_s']:.2f} s"),
            (f"  loss guard: ln(vocab) = {s['ln_vocab']:.3f}; first-step loss ours {o['first_loss']:.3f}, theirs "
             f"{t['first_loss']:.3f} -> {'ok' if s['guard_ok'] else 'FAILED'} (each within 1.0; not comparable to "
             "each other: different init and masking)"),
        ]
    return "\n".join([*lines, "", "GOALS", *(f"  {goal}" for goal in res["goals"])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="debug,base", help="comma-separated, from: debug, base (default both)")
    parser.add_argument("--steps", type=int, help="steps per path and shape (default: debug 30, base 4)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps not timed (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per path, alternating order, best kept")
    parser.add_argument("--wait-idle", type=float, default=30.0,
                        help="before each run wait up to this many s for other processes to go idle (default 30)")
    parser.add_argument("--seq-len", type=int, help="sequence length of the base shape (default 512)")
    parser.add_argument("--mixed-precision", choices=("auto", "no", "bf16"), default="auto",
                        help="both paths; auto = bf16 unless its GEMM rate is below fp32's / 4 (emulated)")
    parser.add_argument("--malloc", choices=("system", "cache"), default="system",
                        help="cache: glibc keeps freed memory for both sides (tunables + mallopt: no per-step page "
                             "faults; the loop's cpu_allocator_cache default)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer directory (default: train one on the corpus)")
    parser.add_argument("--vocab-size", type=int, default=2000,
                        help="pieces of the trained tokenizer (default 2000, as recipes/pretrain/debug.yaml)")
    parser.add_argument("--workdir", type=Path, help="keep the tokenizer here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                        help="where both paths train; auto = cuda when torch sees a GPU (cpu hides the GPUs)")
    parser.add_argument("--micro-batch", type=int, help="sequences per step, both paths (default: the shape's)")
    parser.add_argument("--logging-steps", type=int,
                        help="steps per metrics line / Trainer log (default 1 on cpu, 5 on cuda: each line waits "
                             "for the GPU)")
    parser.add_argument("--peak-flops", type=float,
                        help="bf16 GEMM FLOP/s to compute MFU against (default: measured here; on cuda 8192^3)")
    parser.add_argument("--num-workers", type=int, default=0, help="ours: dataloader_num_workers (default 0)")
    parser.add_argument("--attn-implementation", default="sdpa", help="ours: attn_implementation (default sdpa)")
    parser.add_argument("--torch-compile", action="store_true", help="ours: torch_compile (regional)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="ours: gradient_checkpointing")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before CUDA is initialised: accelerate and Trainer see no GPU
    if args.malloc == "cache" and os.environ.get("GLIBC_TUNABLES") != MALLOC_CACHE:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "GLIBC_TUNABLES": MALLOC_CACHE})
    if args.malloc == "cache":
        # The tunables alone left every step page-faulting its buffers in on a 2026-12-05 VM; mallopt (what the
        # loop's cpu_allocator_cache does) keeps them: both sides run with it.
        from xlmr_hf.training.components import cache_cpu_allocator

        cache_cpu_allocator()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for name in ("xlmr_hf", "accelerate"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import transformers

    transformers.logging.set_verbosity_error()
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        logger.info("no datasets library: theirs' blocks go into a list-backed torch Dataset (see the docstring)")
    device = resolve_device(args.device)
    logging_steps = args.logging_steps or (5 if device == "cuda" else 1)
    speed = {"dataloader_num_workers": args.num_workers, "attn_implementation": args.attn_implementation,
             "torch_compile": args.torch_compile, "gradient_checkpointing": args.gradient_checkpointing,
             # The loop's default cpu_allocator_cache would tune glibc for the rest of this process, theirs' runs
             # included: off here, so `--malloc system` runs both sides with glibc's defaults and `--malloc cache`
             # gives both the tuned allocator (what the loop's default does on its own).
             "cpu_allocator_cache": False}
    from xlmr_hf.data import load_stream_tokenizer
    from xlmr_hf.training.pretrain import measure_peak_flops

    shapes = []
    for name in args.shapes.split(","):
        if name not in SHAPES:
            parser.error(f"unknown shape {name!r}; choose from {', '.join(SHAPES)}")
        shape = SHAPES[name]
        if name == "base" and args.seq_len:
            shape = Shape(**{**asdict(shape), "seq_len": args.seq_len})
        if args.micro_batch:
            shape = Shape(**{**asdict(shape), "micro_batch": args.micro_batch})
        shapes.append(shape)
    if any((args.steps or s.steps) <= args.warmup for s in shapes):
        parser.error(f"--steps must exceed --warmup ({args.warmup})")

    info = machine_info(PACKAGES, CODE, "code")
    if device == "cuda":
        info["gpu"] = gpu_info()
        logger.info("GPU %s: measuring the bf16 and fp32 GEMM rates (8192^3, CUDA events)", info["gpu"]["name"])
        fp32 = measure_gemm_flops("cuda", torch.float32)
        bf16 = args.peak_flops or measure_gemm_flops("cuda", torch.bfloat16)
    else:
        logger.info("measuring the fp32 and bf16 GEMM rates (bf16 takes ~10 s when emulated)")
        wait_idle(args.wait_idle)
        fp32 = max(measure_peak_flops(torch.float32) for _ in range(3))
        bf16 = args.peak_flops or measure_peak_flops(torch.bfloat16)
    emulated = bf16 < fp32 / 4
    used = args.mixed_precision if args.mixed_precision != "auto" else ("no" if emulated else "bf16")
    note = (f"bf16 is emulated on this CPU ({fp32 / bf16:.0f}x slower than fp32)" if emulated
            else "bf16 is native") + (f"; auto chose {'fp32' if used == 'no' else 'bf16'}"
                                      if args.mixed_precision == "auto" else "")
    peak_used = bf16 if used == "bf16" else fp32
    res: dict[str, Any] = {
        "machine": info, "isa": cpu_flags(), "torch_threads": torch.get_num_threads(), "args": vars(args),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "precision": {"fp32_gflops": fp32 / 1e9, "bf16_gflops": bf16 / 1e9, "used": used, "emulated_bf16": emulated,
                      "note": note},
        "malloc": f"GLIBC_TUNABLES={os.environ['GLIBC_TUNABLES']}" if "GLIBC_TUNABLES" in os.environ
        else "glibc defaults", "shapes": {}, "goals": [], "device": device, "logging_steps": logging_steps}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        tokenizer_dir = get_tokenizer(args.tokenizer, work, args.vocab_size)
        tokenizer = load_stream_tokenizer(str(tokenizer_dir))
        res["tokenizer"], res["tokenizer_size"] = str(tokenizer_dir), len(tokenizer)
        for shape in shapes:
            steps = args.steps or shape.steps
            config = our_config(shape, tokenizer)
            fpt, attention = flops_per_token(config, shape.seq_len)
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "theirs": []}
            paths = [("ours", functools.partial(run_ours, shape, tokenizer_dir, used, peak_used, steps,
                                                args.warmup, work, device, logging_steps, speed)),
                     ("theirs", functools.partial(run_theirs, shape, tokenizer, config, used, steps, args.warmup,
                                                  work, device, logging_steps))]
            for round_ in range(args.repeats):  # alternating order: drift of the machine hits both paths
                for name, run in paths if round_ % 2 == 0 else paths[::-1]:
                    wait_idle(args.wait_idle)
                    logger.info("%s: %s, round %d, %d steps", shape.name, name, round_ + 1, steps)
                    load = OtherLoad()
                    result = run()
                    result["others"] = load.cores()
                    gc.collect()
                    logger.info("%s: %s %.1f tokens/s (others used %.2f cores)", shape.name, name,
                                result["tokens_per_s"], result["others"])
                    runs[name].append(result)
                    if device == "cuda":
                        torch.cuda.empty_cache()
            ours, theirs = (max(runs[name], key=lambda r: r["tokens_per_s"]) for name in ("ours", "theirs"))
            # the model FLOPs count the LM head (dense + vocabulary projection) on the masked rows only, which is what
            # ours executes; theirs runs it on every row
            head = config.vocab_size * config.hidden_size + config.hidden_size**2
            ours["executed_flops_per_token"] = fpt
            theirs["executed_flops_per_token"] = fpt + 6.0 * head * (1 - MASK_RATE)
            for r in (ours, theirs):
                r["mfu_bf16"], r["mfu_used"] = r["tokens_per_s"] * fpt / bf16, r["tokens_per_s"] * fpt / peak_used
                r["hfu_used"] = r["tokens_per_s"] * r["executed_flops_per_token"] / peak_used
            if "data_share" not in ours:  # a loop without data_share: time the stream alone
                step_s = shape.micro_batch * shape.seq_len * ours["fill"] / ours["tokens_per_s"]
                ours["data_s_per_batch"] = stream_seconds_per_batch(shape, tokenizer_dir)
                ours["data_share"] = min(1.0, ours["data_s_per_batch"] / step_s)
                ours["data_share_source"] = "estimated: stream timed alone / step time"
            ln_vocab = math.log(config.vocab_size)
            guard = all(abs(r["first_loss"] - ln_vocab) <= 1.0 for r in (ours, theirs))
            ok &= guard
            res["shapes"][shape.name] = {
                "layers": config.num_hidden_layers, "hidden": config.hidden_size, "vocab": config.vocab_size,
                "seq_len": shape.seq_len, "micro_batch": shape.micro_batch, "steps": steps, "flops_per_token": fpt,
                "attention_ours": attention, "ours": ours, "theirs": theirs, "runs": runs,
                "ratio": ours["tokens_per_s"] / theirs["tokens_per_s"], "ln_vocab": ln_vocab, "guard_ok": guard}
    ratio_goal, mfu_goal = (GPU_RATIO_GOAL, GPU_MFU_GOAL) if device == "cuda" else (RATIO_GOAL, MFU_GOAL)
    for name, s in res["shapes"].items():
        res["goals"].append(f"tokens/s >= {ratio_goal:.0f}x the run_mlm path at {name}: {s['ratio']:.2f}x -> "
                            f"{'MET' if s['ratio'] >= ratio_goal else 'MISSED'}")
    if device == "cuda" and "base" in res["shapes"]:
        o = res["shapes"]["base"]["ours"]
        res["goals"].append(f"MFU >= {mfu_goal:.0%} at base against the bf16 GEMM rate measured on this GPU: "
                            f"{o['mfu_bf16']:.1%} -> {'MET' if o['mfu_bf16'] >= mfu_goal else 'MISSED'}")
        res["goals"].append(f"data path < {GPU_DATA_SHARE_GOAL:.0%} of the step at base: {o['data_share']:.1%} "
                            f"({o['data_share_source']}) -> "
                            f"{'MET' if o['data_share'] < GPU_DATA_SHARE_GOAL else 'MISSED'}")
    elif "base" in res["shapes"]:
        o = res["shapes"]["base"]["ours"]
        res["goals"].append(f"MFU >= {MFU_GOAL:.0%} at base against the measured bf16 GEMM rate (the issue's "
                            f"definition): {o['mfu_bf16']:.1%} -> {'MET' if o['mfu_bf16'] >= MFU_GOAL else 'MISSED'}"
                            + (" (meaningless here: bf16 is emulated and the run used fp32)" if emulated
                               and used == "no" else ""))
        res["goals"].append(f"MFU >= {MFU_GOAL:.0%} at base against the GEMM rate of the precision used "
                            f"({'fp32' if used == 'no' else used}): {o['mfu_used']:.1%} -> "
                            f"{'MET' if o['mfu_used'] >= MFU_GOAL else 'MISSED'} (HFU, executed FLOPs: "
                            f"{o['hfu_used']:.1%})")
    res["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
