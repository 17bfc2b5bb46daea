#!/usr/bin/env python
"""XNLI fine-tuning samples/s: our fine-tuning path vs a ``run_xnli.py``-equivalent baseline, same process, same data,
tokenizer, initial weights and batch size, at the base shape (12 × 768, the real 250,002-entry vocabulary).

Data: (premise, hypothesis) pairs cut from the corpus embedded in the package (`default_corpus_dir()`, 10 XNLI
languages, one drawn per pair) after log-normal token counts (premise median 25, σ 0.6; hypothesis median 11, σ 0.45):
~45 tokens per pair with a tail past 128, like XNLI under the XLM-R tokenizer (the header prints the distribution).
Labels uniform in {0, 1, 2}, seeded. Tokenizer: `train_tokenizer` on that corpus (``--vocab-size``) or ``--tokenizer``.

* **ours** (`xlmr_hf.training.finetune`'s path): `xlmr_hf.XLMRobertaForSequenceClassification`, features from
  `xlmr_hf.tasks.xnli.preprocess_xnli` (truncated to 128, no padding), the XNLI adapter's `DataCollatorWithPadding`,
  ``train_sampling_strategy="group_by_length"``, bf16 only if `native_bf16()` (else fp32).
* **theirs** (``run_xnli.py``): transformers' `XLMRobertaForSequenceClassification`, ``padding="max_length"`` to 128,
  `default_data_collator`, fp32, the Trainer's random sampler.
* **variants** (``--variants``): ``theirs-dynamic`` (transformers' model, our data path, fp32) splits the gain into
  padding (theirs-dynamic / theirs) and model (ours / theirs-dynamic); ``ours-padded`` is our model on run_xnli's data.

Same everywhere: `Trainer` defaults (optimizer, schedule, ``max_grad_norm`` 1), lr 2e-5, dropout on, ``use_cpu``, no
saving, logging every step, one seeded init copied into every model (``load_state_dict(strict=True)``). A step is
timed from ``on_step_begin`` to ``on_step_end`` (forward, backward, clipping, optimizer, ``zero_grad``; loading and
collating the batch come before, shown as ``load ms``), after ``--warmup`` untimed steps. samples/s = timed samples /
timed seconds (steps differ in length with grouping, so a median would hide the long batches; it is shown too).
Dataset = 4 × batch × min(steps, 50) pairs: the Trainer then groups ``steps`` batches per megabatch, and the timed
window (``steps`` batches from batch ``warmup`` on) holds each rank of the megabatch once, an unbiased sample of an
epoch. At XNLI's size it groups 50 batches, which pads less: the header prints that fill (simulated), and a projection
line scales ours' measured seconds per padded token to it (information only; the goal uses the measured ratio).

Guard (exit status 1 on failure): same weights, fp32, eval mode, 8 pairs: ours on theirs' 128-padded batch and on the
dynamically padded batch must give theirs' logits within 1e-4.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import logging
import math
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_pretrain as bp  # OtherLoad, wait_idle, get_tokenizer, cpu_flags, HF_FIELDS: shared helpers
import torch
from _common import machine_info

logger = logging.getLogger("bench_finetune")

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "transformers", "accelerate", "datasets", "tokenizers")
CODE = [ROOT / "src/xlmr_hf/training", ROOT / "src/xlmr_hf/tasks", ROOT / "src/xlmr_hf/models"]
MAX_LEN, VOCAB, LABELS, GOAL, TOLERANCE = 128, 250002, 3, 2.0, 1e-4
SENTENCE_END = re.compile(r"\n|[.!?] |[。！？]")
PREMISE, HYPOTHESIS = (25.0, 0.6), (11.0, 0.45)  # log-normal (median tokens, sigma)
SIDES = {  # name -> (model, data path, bf16 allowed, row label)
    "ours": ("ours", "dynamic", True, "ours"), "theirs": ("theirs", "max_length", False, "theirs (run_xnli)"),
    "theirs-dynamic": ("theirs", "dynamic", False, "theirs + dynamic pad"),
    "ours-padded": ("ours", "max_length", False, "ours + pad 128")}


# --------------------------------------------------------------------------------------------------------- data
def make_pairs(tokenizer: Any, n: int, seed: int) -> dict[str, list[Any]]:
    """``n`` (premise, hypothesis, label, language) rows: pieces of the embedded corpus starting at a paragraph and
    cut after a log-normal number of tokens (premise and hypothesis from different documents, same language)."""
    from xlmr_hf.data import default_corpus_dir, iter_cc100_documents

    rng = random.Random(seed)
    corpus: dict[str, list[tuple[str, list[tuple[int, int]], list[int]]]] = {}
    for file in sorted(default_corpus_dir().glob("*.txt.xz")):
        docs = list(iter_cc100_documents(file))
        enc = tokenizer([d.replace("\n", " ") for d in docs], add_special_tokens=False, return_offsets_mapping=True)
        entries = []
        for doc, offsets in zip(docs, enc["offset_mapping"], strict=True):
            firsts = [a for a, _ in offsets]  # paragraph and sentence starts -> first token at or after them
            chars = [0] + [m.end() for m in SENTENCE_END.finditer(doc)]
            starts = sorted({bisect.bisect_left(firsts, c) for c in chars} - {len(offsets)})
            entries.append((doc.replace("\n", " "), offsets, starts))
        corpus[file.name.split(".")[0]] = [e for e in entries if e[1]]

    def piece(lang: str, median: float, sigma: float) -> str:
        want = max(2, round(rng.lognormvariate(math.log(median), sigma)))
        text, offsets, starts = rng.choice(corpus[lang])
        fits = bisect.bisect_right(starts, len(offsets) - want)  # starts[:fits] leave >= want tokens
        start = starts[rng.randrange(fits)] if fits else 0
        end = min(start + want, len(offsets)) - 1
        return text[offsets[start][0]:offsets[end][1]].strip()

    rows: dict[str, list[Any]] = {"premise": [], "hypothesis": [], "label": [], "language": []}
    languages = sorted(corpus)
    for _ in range(n):
        lang = rng.choice(languages)
        rows["premise"].append(piece(lang, *PREMISE))
        rows["hypothesis"].append(piece(lang, *HYPOTHESIS))
        rows["label"].append(rng.randrange(LABELS))
        rows["language"].append(lang)
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def grouped_fill(lengths: list[int], batch: int, seed: int) -> float:
    """Real / padded tokens over an epoch of transformers' `get_length_grouped_indices` batches (its default grouping:
    megabatches of min(len // (4 · batch), 50) batches)."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    order = get_length_grouped_indices(lengths, batch, generator=torch.Generator().manual_seed(seed))
    batches = [[lengths[i] for i in order[k:k + batch]] for k in range(0, len(order), batch)]
    return sum(map(sum, batches)) / sum(len(b) * max(b) for b in batches)


# ------------------------------------------------------------------------------------------------------- models
def build(kind: str, initial: dict[str, torch.Tensor] | None) -> Any:
    """Our or transformers' classifier at the base shape; the weights of ``initial`` if given (strict)."""
    import transformers

    from xlmr_hf import XLMRobertaConfig, XLMRobertaForSequenceClassification

    config = XLMRobertaConfig.from_preset("base", vocab_size=VOCAB, num_labels=LABELS)
    transformers.set_seed(0)
    if kind == "ours":
        model = XLMRobertaForSequenceClassification(config)
    else:
        hf = transformers.XLMRobertaConfig(**{k: getattr(config, k) for k in bp.HF_FIELDS}, num_labels=LABELS)
        model = transformers.XLMRobertaForSequenceClassification(hf)
    if initial is not None:
        model.load_state_dict(initial, strict=True)
    return model


def guard(theirs: Any, initial: dict[str, torch.Tensor], ours_feats: Any, theirs_feats: Any,
          collator: Any) -> dict[str, Any]:
    """Ours (loaded strictly from theirs' state dict) vs theirs: parameter names, and fp32 eval logits on 8 pairs."""
    ours = build("ours", initial)
    names = sorted(n for n, _ in ours.named_parameters()) == sorted(n for n, _ in theirs.named_parameters())
    rows = list(range(8))
    padded = {k: torch.tensor(theirs_feats[rows][k]) for k in ("input_ids", "attention_mask")}
    dynamic = collator([{k: ours_feats[i][k] for k in ("input_ids", "attention_mask")} for i in rows])
    with torch.inference_mode():
        ref = theirs.eval()(**padded).logits
        diff_padded = (ours.eval()(**padded).logits - ref).abs().max().item()
        diff_dynamic = (ours(**dynamic).logits - ref).abs().max().item()
    return {"names_equal": names, "parameters": len(initial), "diff_padded": diff_padded, "diff_dynamic": diff_dynamic,
            "dynamic_len": int(dynamic["input_ids"].shape[1]), "attention": [str(m.config._attn_implementation)
                                                                             for m in (ours, theirs)],
            "ok": names and max(diff_padded, diff_dynamic) <= TOLERANCE}


# --------------------------------------------------------------------------------------------------------- runs
def run(side: str, initial: dict[str, torch.Tensor], features: Any, tokenizer: Any, collator: Any, bf16: bool,
        args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from transformers import (
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    kind, padding, _, _ = SIDES[side]
    shapes: list[tuple[int, int, int]] = []  # (rows, padded length, real tokens) per collated batch, in order

    def recording(batch_features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collator(batch_features)
        mask = batch["attention_mask"]
        shapes.append((int(mask.shape[0]), int(mask.shape[1]), int(mask.sum())))
        return batch

    class StepTimer(TrainerCallback):
        """Per step: seconds from on_step_begin to on_step_end, the optimizer's share (pre -> post optimizer step),
        the cores other processes used, and the batch load time before on_step_begin."""

        def __init__(self) -> None:
            self.seconds, self.optimizer, self.others, self.loads = [], [], [], []  # type: ignore[var-annotated]
            self.begin = self.end = self.pre = 0.0
            self.load = bp.OtherLoad()

        def on_train_begin(self, *a: Any, **k: Any) -> None:
            self.end = time.perf_counter()

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self.loads.append(time.perf_counter() - self.end)
            if len(self.seconds) >= args.warmup:
                bp.wait_idle(args.wait_idle)
            self.load, self.begin = bp.OtherLoad(), time.perf_counter()

        def on_pre_optimizer_step(self, *a: Any, **k: Any) -> None:
            self.pre = time.perf_counter()

        def on_optimizer_step(self, *a: Any, **k: Any) -> None:
            self.optimizer.append(time.perf_counter() - self.pre)

        def on_step_end(self, *a: Any, **k: Any) -> None:
            self.seconds.append(time.perf_counter() - self.begin)
            self.others.append(self.load.cores())
            self.end = time.perf_counter()

    model = build(kind, initial)
    timer = StepTimer()
    out = work / side
    targs = TrainingArguments(
        output_dir=str(out), max_steps=args.warmup + args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=2e-5, bf16=bf16, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
        disable_tqdm=True, dataloader_num_workers=0, seed=0,
        train_sampling_strategy="group_by_length" if padding == "dynamic" else "random")
    trainer = Trainer(model=model, args=targs, train_dataset=features, processing_class=tokenizer,
                      data_collator=recording, callbacks=[timer])
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    optim = str(trainer.args.optim)
    del trainer, model
    gc.collect()
    shutil.rmtree(out, ignore_errors=True)  # nothing is saved, but the Trainer creates the directory
    w = args.warmup
    timed, batches = timer.seconds[w:], shapes[w:w + args.steps]
    samples = sum(b[0] for b in batches)
    return {"side": side, "model": kind, "padding": padding, "bf16": bf16, "optim": optim, "wall_s": wall,
            "samples_per_s": samples / sum(timed), "median_samples_per_s": args.batch_size / statistics.median(timed),
            "step_s": timer.seconds, "batches": shapes[:len(timer.seconds)], "others": max(timer.others[w:]),
            "load_ms": 1e3 * statistics.fmean(timer.loads), "optimizer_s": statistics.fmean(timer.optimizer[w:]),
            "first_loss": losses[0] if losses else float("nan"),
            "real_per_batch": statistics.fmean(b[2] for b in batches),
            "padded_per_batch": statistics.fmean(b[0] * b[1] for b in batches)}


# ------------------------------------------------------------------------------------------------------- report
def render(res: dict[str, Any]) -> str:
    m, d, g = res["machine"], res["data"], res["guard"]
    bar = "=" * 116
    lines = [
        bar,
        "XNLI fine-tuning: our path (xlmr_hf.training.finetune) vs a run_xnli.py-equivalent baseline, same process",
        (f"date {m['date_utc']} | CPU {m['cpu']} | {m['logical_cores']} logical cores, torch threads "
         f"{res['torch_threads']} | ISA {','.join(res['isa']) or 'none of ' + ','.join(sorted(bp.ISA))} | RAM "
         f"{m['mem_total_gib']} GiB"),
        f"python {m['python']} | " + " | ".join(f"{name} {m[name]}" for name in PACKAGES),
        f"command: {res['command']}",
        (f"code: commit {m['commit']}, uncommitted changes in src/xlmr_hf/{{training,tasks,models}}: "
         f"{m['code_uncommitted']} | sha256 {m['code_sha256']} | allocator: {res['malloc']}"),
        f"load average (1/5/15 min) at start {m['load_avg_start']}, at end {res['load_avg_end']}",
        (f"model: base shape (12 x 768, vocab {VOCAB:,}), {LABELS} labels, same seeded init copied into every side; "
         f"attention ours {g['attention'][0]}, theirs {g['attention'][1]}"),
        (f"precision: native bf16 {res['native_bf16']} -> ours trains in {'bf16' if res['native_bf16'] else 'fp32'}; "
         f"theirs fp32 | optimizer {res['optim']} | batch {res['args']['batch_size']}, {res['args']['warmup']} "
         f"untimed + {res['args']['steps']} timed steps per side, best of {res['args']['repeats']} run(s)"),
        (f"data: {d['pairs']} pairs in {len(d['languages'])} languages ({','.join(d['languages'])}), tokenizer "
         f"{res['tokenizer']} ({d['tokenizer_size']} pieces); pair tokens incl. specials, after truncation to "
         f"{MAX_LEN}: mean {d['mean']:.1f}, median {d['median']:.0f}, p95 {d['p95']:.0f}, p99 {d['p99']:.0f}, max "
         f"{d['max']}; {d['truncated']:.1%} truncated (longest before truncation {d['longest']})"),
        (f"fill (real / padded tokens) of an epoch with group_by_length: this dataset (megabatch "
         f"{d['megabatch']} batches) {d['fill_here']:.1%}; at XNLI's size (megabatch 50 batches, simulated on "
         f"{d['sim_pairs']} generated pairs) {d['fill_xnli']:.1%}; padding to {MAX_LEN}: {d['mean'] / MAX_LEN:.1%}"),
        ("samples/s = timed samples / timed s ((median) = batch / median step); tok/b = tokens per batch; s/step = "
         "mean timed step, optim = its optimizer.step() share; load = mean batch load + collate before a step"),
        "others = most cores used by other processes during a timed step (0 = clean)",
        bar,
        (f"  {'path':<21}{'prec':>5}{'padding':>11}{'samples/s':>10}{'(median)':>9}{'real tok/b':>11}"
         f"{'padded tok/b':>13}{'fill':>5}{'s/step':>7}{'optim':>6}{'load ms':>8}{'loss 1':>7}{'wall s':>7}"
         f"{'others':>7}  s per step (warm-up first)"),
    ]
    for name, r in res["runs"].items():
        timed = r["step_s"][res["args"]["warmup"]:]
        lines.append(
            f"  {SIDES[name][3]:<21}{'bf16' if r['bf16'] else 'fp32':>5}{r['padding']:>11}{r['samples_per_s']:>10.2f}"
            f"{r['median_samples_per_s']:>9.2f}{r['real_per_batch']:>11.0f}{r['padded_per_batch']:>13.0f}"
            f"{r['real_per_batch'] / r['padded_per_batch']:>5.0%}{statistics.fmean(timed):>7.2f}"
            f"{r['optimizer_s']:>6.2f}{r['load_ms']:>8.1f}{r['first_loss']:>7.3f}{r['wall_s']:>7.0f}"
            f"{r['others']:>7.2f}  " + " ".join(f"{s:.1f}" for s in r["step_s"])
            + (f" (other runs: {', '.join(f'{x:.2f}' for x in r['other_runs'])} samples/s)" if r["other_runs"] else ""))
    lines.append("")
    lines += [f"  {line}" for line in res["ratios"]]
    lines.append(
        f"  guard: same parameter names {g['names_equal']} ({g['parameters']} tensors, strict load); fp32 eval logits "
        f"on 8 pairs, max |ours - theirs| {g['diff_padded']:.2e} on the {MAX_LEN}-padded batch, "
        f"{g['diff_dynamic']:.2e} with ours on the dynamically padded batch (length {g['dynamic_len']}) -> "
        f"{'ok' if g['ok'] else 'FAILED'} (tolerance {TOLERANCE:g})")
    return "\n".join([*lines, "", "GOAL", f"  {res['goal']}"])


def summarize(res: dict[str, Any], args: argparse.Namespace) -> None:
    """Ratios, the split of the gain (with variants), the projection at XNLI's grouping, and the goal line."""
    runs, d = res["runs"], res["data"]
    rate = {name: r["samples_per_s"] for name, r in runs.items()}
    ratio = rate["ours"] / rate["theirs"]
    median = runs["ours"]["median_samples_per_s"] / runs["theirs"]["median_samples_per_s"]
    lines = [f"ratio ours / theirs (run_xnli): {ratio:.2f}x samples/s ({median:.2f}x by median step)"]
    if "theirs-dynamic" in rate:
        lines.append(f"split: padding (theirs + dynamic pad / theirs) {rate['theirs-dynamic'] / rate['theirs']:.2f}x"
                     f" x model (ours / theirs + dynamic pad) {rate['ours'] / rate['theirs-dynamic']:.2f}x")
    if "ours-padded" in rate:
        lines.append(f"split: model at pad {MAX_LEN} (ours + pad {MAX_LEN} / theirs) "
                     f"{rate['ours-padded'] / rate['theirs']:.2f}x x padding (ours / ours + pad {MAX_LEN}) "
                     f"{rate['ours'] / rate['ours-padded']:.2f}x")
    # projection: step = optimizer time + (the timed steps' other seconds per padded token) x padded tokens at XNLI's
    # fill; attention is a few % of the FLOPs at <= 128 tokens, so the step is close to linear in padded tokens
    o, w = runs["ours"], args.warmup
    padded = sum(b[0] * b[1] for b in o["batches"][w:w + args.steps])
    per_token = (sum(o["step_s"][w:]) - o["optimizer_s"] * args.steps) / padded
    projected = args.batch_size / (o["optimizer_s"] + per_token * args.batch_size * d["mean"] / d["fill_xnli"])
    res["projected_xnli"] = {"samples_per_s": projected, "ratio": projected / rate["theirs"]}
    lines.append(f"projection, not measured: at XNLI's grouping (fill {d['fill_xnli']:.1%} instead of "
                 f"{o['real_per_batch'] / o['padded_per_batch']:.0%}) ours would run ~{projected:.2f} samples/s = "
                 f"{projected / rate['theirs']:.2f}x theirs (ours' timed s per padded token, optimizer time fixed)")
    res["ratio"], res["ratios"] = ratio, lines
    res["optim"] = runs["ours"]["optim"]
    res["goal"] = (f"samples/s >= {GOAL:.0f}x the run_xnli baseline at the base shape (measured): {ratio:.2f}x -> "
                   f"{'MET' if ratio >= GOAL else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per side (default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps per side (default 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="per side (default 32)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, alternating order, best kept")
    parser.add_argument("--variants", default="theirs-dynamic",
                        help="extra rows: theirs-dynamic, ours-padded or none (default: theirs-dynamic)")
    parser.add_argument("--wait-idle", type=float, default=20.0,
                        help="before each run and each timed step wait up to this many s for other processes to idle")
    parser.add_argument("--malloc", choices=("system", "cache"), default="system",
                        help="cache: re-run with glibc tunables that keep freed memory (no per-step page faults)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer directory (default: train one on the corpus)")
    parser.add_argument("--vocab-size", type=int, default=6000, help="pieces of the trained tokenizer (default 6000)")
    parser.add_argument("--workdir", type=Path, help="keep the tokenizer here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairs and labels (default 0)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    variants = [] if args.variants == "none" else [v for v in args.variants.split(",") if v]
    if any(v not in ("theirs-dynamic", "ours-padded") for v in variants):
        parser.error(f"--variants {args.variants!r}: allowed theirs-dynamic, ours-padded, none")
    if args.repeats < 1 or args.steps < 1 or not 1 <= args.warmup <= 3 * args.steps:
        parser.error("need --repeats, --steps >= 1 and 1 <= --warmup <= 3 x --steps (dataset: 4 x steps batches)")
    if args.malloc == "cache" and os.environ.get("GLIBC_TUNABLES") != bp.MALLOC_CACHE:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "GLIBC_TUNABLES": bp.MALLOC_CACHE})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for name in ("xlmr_hf", "accelerate"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import datasets
    import transformers
    from transformers import AutoTokenizer, default_data_collator

    from xlmr_hf.tasks.xnli import preprocess_xnli
    from xlmr_hf.tasks import get_task
    from xlmr_hf.training.finetune import native_bf16

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    info = machine_info(PACKAGES, CODE, "code")
    res: dict[str, Any] = {"machine": info, "isa": bp.cpu_flags(), "torch_threads": torch.get_num_threads(),
                           "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                           "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
                           "malloc": os.environ.get("GLIBC_TUNABLES", "glibc defaults"), "native_bf16": native_bf16(),
                           "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        tokenizer_dir = bp.get_tokenizer(args.tokenizer, work, args.vocab_size)
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        res["tokenizer"] = str(tokenizer_dir)
        n_train = 4 * args.batch_size * min(args.steps, 50)
        n_sim = max(n_train, 200 * args.batch_size)
        logger.info("generating %d pairs (%d for training)", n_sim, n_train)
        rows = make_pairs(tokenizer, n_sim, args.seed)
        full = [len(x) for x in tokenizer(rows["premise"], rows["hypothesis"])["input_ids"]]
        lengths = [min(x, MAX_LEN) for x in full]
        train = datasets.Dataset.from_dict({k: v[:n_train] for k, v in rows.items()})
        res["data"] = {
            "pairs": n_train, "languages": sorted(set(rows["language"])), "tokenizer_size": len(tokenizer),
            "mean": statistics.fmean(lengths[:n_train]), "median": statistics.median(lengths[:n_train]),
            "p95": percentile(lengths[:n_train], 0.95), "p99": percentile(lengths[:n_train], 0.99),
            "max": max(lengths[:n_train]), "longest": max(full[:n_train]),
            "truncated": sum(x > MAX_LEN for x in full[:n_train]) / n_train,
            "megabatch": min(n_train // (4 * args.batch_size), 50),
            "fill_here": grouped_fill(lengths[:n_train], args.batch_size, args.seed),
            "fill_xnli": grouped_fill(lengths, args.batch_size, args.seed), "sim_pairs": n_sim}
        ours_feats = preprocess_xnli(train, tokenizer, max_length=MAX_LEN)
        theirs_feats = train.map(lambda b: tokenizer(b["premise"], b["hypothesis"], padding="max_length",
                                                     max_length=MAX_LEN, truncation=True),
                                 batched=True, remove_columns=["premise", "hypothesis", "language"])
        dynamic_collator = get_task("xnli").collator(tokenizer)
        logger.info("initial weights and guard")
        reference = build("theirs", None)
        initial = {k: v.detach().clone() for k, v in reference.state_dict().items()}
        res["guard"] = guard(reference, initial, ours_feats, theirs_feats, dynamic_collator)
        del reference
        gc.collect()
        order, every = ["ours", "theirs", *variants], {}  # type: ignore[var-annotated]
        for round_ in range(args.repeats):  # alternating order, so drift hits every side
            for side in order if round_ % 2 == 0 else order[::-1]:
                _, padding, bf16_ok, _ = SIDES[side]
                feats, collator = ((ours_feats, dynamic_collator) if padding == "dynamic"
                                   else (theirs_feats, default_data_collator))
                bp.wait_idle(args.wait_idle)
                logger.info("%s: round %d, %d + %d steps of batch %d", side, round_ + 1, args.warmup, args.steps,
                            args.batch_size)
                r = run(side, initial, feats, tokenizer, collator, bf16_ok and res["native_bf16"], args, work)
                logger.info("%s: %.2f samples/s (others %.2f cores)", side, r["samples_per_s"], r["others"])
                every.setdefault(side, []).append(r)
        for side in order:  # the best run of each side; the others' samples/s are kept for the table
            best = max(every[side], key=lambda r: r["samples_per_s"])
            best["other_runs"] = [r["samples_per_s"] for r in every[side] if r is not best]
            res["runs"][side] = best
    summarize(res, args)
    res["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0 if res["guard"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
