#!/usr/bin/env python
"""Ours (`xlmr_hf.XLMRobertaForMaskedLM`) vs the anchor (transformers' `XLMRobertaForMaskedLM`), in one process.

Three measurements, each printed as ours, theirs and ours/theirs:

1. Training throughput (tokens/s): base shape, bf16 autocast, fp32 master weights, AdamW (fused when available),
   dropout on, 15% of the non-special tokens masked (labels -100 elsewhere). Both models start from the same weights
   and see the same batch. Warm-up steps, then timed steps that alternate between the two models; median step time.
2. Peak memory of one training step (forward + backward + optimizer step), measured with torch.profiler's allocation
   events (running sum of allocations/frees in time order), reported as (a) bytes above the state resident before
   the step and (b) (a) plus the exactly computed resident state (parameters, buffers, AdamW state).
3. Inference throughput (real tokens/s) of the encoder (`model.roberta`) on documents of mixed lengths: transformers
   runs padded micro-batches with an attention mask, ours runs each micro-batch packed into one row with
   `cu_seqlens`. A correctness guard compares the two outputs on the real tokens.

On a GPU (`--device cuda`, or `auto` where torch sees one) the same three run there: steps are timed between
`torch.cuda.synchronize()` calls, peak memory is `torch.cuda.max_memory_allocated` around the step (the profiler and RSS
methods below are CPU-only), and the model FLOP utilisation (MFU) against the bf16 GEMM rate measured on that GPU is
added. Run `python benchmarks/bench_model.py --help`; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import gc
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import transformers
from _common import gpu_info, measure_gemm_flops, resolve_device, synchronize
from torch.profiler import ProfilerActivity, profile
from tqdm.auto import tqdm

import xlmr_hf
from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM

logger = logging.getLogger("bench_model")

MiB = 1 << 20
PHASE = "bench::"  # record_function prefix marking the phases of a measured step
# --malloc cache: glibc never mmaps (so never munmaps) and never trims the heap, i.e. freed memory is reused.
MALLOC_CACHE_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
BOS, PAD, EOS, UNK = 0, 1, 2, 3
DEVICE = torch.device("cpu")  # --device (main() sets it): where the models, batches and autocast live
MODEL_OVERRIDES: dict[str, Any] = {}  # --model-overrides (main() sets it): fields changed on both models' base shape
# transformers' XLMRobertaConfig defaults are BERT's; these are XLM-R base's, identical to our "base" preset.
HF_BASE_FIELDS = dict(
    vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=PAD, bos_token_id=BOS,
    eos_token_id=EOS, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    initializer_range=0.02, tie_word_embeddings=True,
)


# ------------------------------------------------------------------------------------------------ machine / header
def machine_info(threads: int) -> dict[str, Any]:
    cpu, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        if m := re.search(r"^model name\s*:\s*(.+)$", text, re.M):
            cpu = m.group(1).strip()
        if m := re.search(r"^flags\s*:\s*(.+)$", text, re.M):
            flags = set(m.group(1).split())
    except OSError:
        pass
    mem_total = None
    try:
        with open("/proc/meminfo") as f:
            mem_total = int(re.search(r"MemTotal:\s+(\d+) kB", f.read()).group(1)) * 1024
    except (OSError, AttributeError):
        pass
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": threads,
        "isa": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}),
        "mem_total_gib": round(mem_total / 2**30, 1) if mem_total else None,
        "load_avg_start": load_average(),
        "allocator_env": {k: v for k, v in os.environ.items()
                          if k in ("GLIBC_TUNABLES", "LD_PRELOAD") or k.startswith("MALLOC_")} or "glibc defaults",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "xlmr_hf": xlmr_hf.__version__,
        "code_start": code_fingerprint(),
        **({"device": "cuda", "gpu": gpu_info(DEVICE)} if DEVICE.type == "cuda" else {}),
    }


def code_fingerprint() -> dict[str, Any]:
    """Which model code ran: where xlmr_hf was imported from, its git commit (None outside a git checkout, e.g. a
    snapshot on PYTHONPATH), whether src/ had uncommitted changes, and a hash of the model files."""
    import hashlib

    import xlmr_hf.models.configuration_xlmr as configuration
    import xlmr_hf.models.modeling_xlmr as modeling

    digest = hashlib.sha256()
    for module in (modeling, configuration):
        with open(module.__file__, "rb") as f:
            digest.update(f.read())
    package_dir = os.path.dirname(os.path.abspath(xlmr_hf.__file__))
    root = os.path.dirname(os.path.dirname(package_dir))  # <root>/src/xlmr_hf
    try:
        top = subprocess.run(["git", "-C", package_dir, "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if os.path.realpath(top or "/nonexistent") != os.path.realpath(root):
            raise OSError("xlmr_hf is not imported from a git checkout")
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src"], capture_output=True,
                                    text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"package": package_dir, "commit": commit, "src_uncommitted_changes": dirty,
            "model_files_sha256": digest.hexdigest()[:16]}


def load_average() -> list[float] | None:
    """1/5/15-minute load averages: other processes on a small machine distort wall-clock timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class OtherLoad:
    """How many cores *other* processes kept busy during a timed region (from /proc/stat minus our own CPU time).

    On a 2-core machine a competing process makes OpenMP barriers wait for a descheduled thread and can slow a step
    several-fold; timings taken while others were busy are flagged, not silently mixed in.
    """

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._start: tuple[int, int, float] | None = None

    @staticmethod
    def _busy_total() -> int:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v) - v[3] - (v[4] if len(v) > 4 else 0)  # all but idle and iowait

    @staticmethod
    def _own() -> int:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime of all threads

    def start(self) -> None:
        try:
            self._start = (self._busy_total(), self._own(), time.perf_counter())
        except OSError:
            self._start = None

    def stop(self) -> float | None:
        """Average number of cores used by other processes since `start()`."""
        if self._start is None:
            return None
        busy0, own0, t0 = self._start
        wall = time.perf_counter() - t0
        other = (self._busy_total() - busy0) - (self._own() - own0)
        return max(0.0, other / self.tick / wall) if wall > 0 else None

    def wait_idle(self, max_wait: float, threshold: float = 0.15, window: float = 1.0) -> float:
        """Sleep in `window`-second slices until other processes use < `threshold` cores (at most `max_wait` s)."""
        if max_wait <= 0:
            return 0.0
        t0 = time.perf_counter()
        while True:
            self.start()
            time.sleep(window)
            load = self.stop()
            waited = time.perf_counter() - t0
            if load is None or load < threshold:
                return waited
            if waited >= max_wait:
                logger.warning("other processes still use %.2f cores after waiting %.0f s; timing anyway", load,
                               waited)
                return waited


# ------------------------------------------------------------------------------------------------ models
def build_models(seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Ours from the "base" preset, theirs from transformers with identical fields; theirs gets ours' weights."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    ours = XLMRobertaForMaskedLM(XLMRobertaConfig.from_preset("base", attn_implementation="sdpa", **MODEL_OVERRIDES))
    theirs = transformers.XLMRobertaForMaskedLM(transformers.XLMRobertaConfig(
        **{**HF_BASE_FIELDS, **MODEL_OVERRIDES}, attn_implementation="sdpa"))
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.to(DEVICE), theirs.to(DEVICE)
    for name, model in (("ours", ours), ("theirs", theirs)):
        assert model.config._attn_implementation == "sdpa", (name, model.config._attn_implementation)
        assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight, f"{name}: untied"
    n_ours = sum(p.numel() for p in ours.parameters())
    n_theirs = sum(p.numel() for p in theirs.parameters())
    assert n_ours == n_theirs, (n_ours, n_theirs)
    logger.info("built both models (%s parameters each, identical weights) in %.1f s", f"{n_ours:,}",
                time.perf_counter() - t0)
    return ours, theirs


def sync_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Copy src's weights into dst in place (optimizers keep their parameter references)."""
    with torch.no_grad():
        dst.load_state_dict(src.state_dict(), strict=True)


def make_optimizer(model: torch.nn.Module) -> tuple[torch.optim.Optimizer, str]:
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=1e-5, fused=True), "fused"
    except (RuntimeError, ValueError) as err:  # fused AdamW not available for CPU tensors in this torch
        logger.warning("fused AdamW unavailable on CPU (%s); using foreach", err)
        return torch.optim.AdamW(params, lr=1e-5, foreach=True), "foreach"


# ------------------------------------------------------------------------------------------------ data
def random_documents(lengths: list[int], vocab: int, generator: torch.Generator) -> list[torch.Tensor]:
    """`<s> w_1 … w_{n-2} </s>` with ordinary word ids (no special or `<mask>` ids inside)."""
    docs = []
    for n in lengths:
        body = torch.randint(UNK + 1, vocab - 1, (n - 2,), generator=generator)
        docs.append(torch.cat([torch.tensor([BOS]), body, torch.tensor([EOS])]))
    return docs


def mlm_batch(batch: int, length: int, vocab: int, seed: int, prob: float = 0.15) -> dict[str, torch.Tensor]:
    """Full-length rows; exactly round(prob × non-special) positions per row become `<mask>`, labels -100 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.stack(random_documents([length] * batch, vocab, g))
    labels = torch.full_like(input_ids, -100)
    n_mask = max(1, round(prob * (length - 2)))
    for row in range(batch):
        pos = torch.randperm(length - 2, generator=g)[:n_mask] + 1
        labels[row, pos] = input_ids[row, pos]
        input_ids[row, pos] = vocab - 1  # <mask> is the last id
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    return {k: v.to(DEVICE) for k, v in batch.items()}


# ------------------------------------------------------------------------------------------------ training
def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> float:
    opt.zero_grad(set_to_none=True)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        loss = model(**batch).loss
    loss.backward()
    opt.step()
    return float(loss.detach())


def check_losses_match(ours: torch.nn.Module, theirs: torch.nn.Module, vocab: int, seed: int) -> dict[str, float]:
    """Same weights, eval mode (no dropout), fp32: both masked-LM losses must agree."""
    batch = mlm_batch(2, 128, vocab, seed + 99)
    ours.eval(), theirs.eval()
    with torch.inference_mode():
        lo, lt = float(ours(**batch).loss), float(theirs(**batch).loss)
    ours.train(), theirs.train()
    diff = abs(lo - lt)
    logger.info("training guard: fp32 eval loss ours %.6f theirs %.6f |diff| %.2e", lo, lt, diff)
    if diff > 1e-4 * max(1.0, abs(lt)):
        raise SystemExit(f"correctness guard failed: losses differ ({lo} vs {lt}) for identical weights")
    return {"loss_ours": lo, "loss_theirs": lt, "abs_diff": diff}


def bench_training(models: dict[str, tuple[torch.nn.Module, torch.optim.Optimizer]],
                   shape: tuple[int, int], vocab: int, steps: int, warmup: int, seed: int,
                   wait_idle: float = 0.0) -> dict[str, Any]:
    batch_size, length = shape
    batch = mlm_batch(batch_size, length, vocab, seed)
    n_masked = int((batch["labels"] != -100).sum())
    logger.info("training %dx%d (%d masked tokens): %d warm-up + %d timed steps per model", batch_size, length,
                n_masked, warmup, steps)
    for name, (model, opt) in models.items():
        model.train()
        for _ in range(warmup):
            torch.manual_seed(seed)
            train_step(model, opt, batch)
        logger.info("  warm-up done: %s", name)
    times: dict[str, list[float]] = {name: [] for name in models}
    losses: dict[str, list[float]] = {name: [] for name in models}
    others: dict[str, list[float | None]] = {name: [] for name in models}
    probe = OtherLoad()
    names = list(models)
    for i in tqdm(range(steps), desc=f"train {batch_size}x{length}", disable=None):
        for name in names if i % 2 == 0 else names[::-1]:  # alternate the order: drift hits both equally
            model, opt = models[name]
            torch.manual_seed(seed + i)
            probe.wait_idle(wait_idle)
            probe.start()
            synchronize(DEVICE)
            t0 = time.perf_counter()
            losses[name].append(train_step(model, opt, batch))
            synchronize(DEVICE)
            times[name].append(time.perf_counter() - t0)
            others[name].append(probe.stop())
        logger.info("  step %d/%d: %s", i + 1, steps, ", ".join(
            f"{n} {times[n][-1]:.2f} s (loss {losses[n][-1]:.3f}, other processes {others[n][-1] or 0:.2f} cores)"
            for n in names))
    tokens = batch_size * length
    out: dict[str, Any] = {"shape": f"{batch_size}x{length}", "tokens_per_step": tokens, "masked": n_masked}
    for name in names:
        med = statistics.median(times[name])
        out[name] = {"step_s_median": med, "step_s_min": min(times[name]), "step_s_all": times[name],
                     "other_processes_cores": others[name],
                     "tokens_per_s": tokens / med, "tokens_per_s_best": tokens / min(times[name]),
                     "losses": losses[name]}
    out["ratio"] = out["ours"]["tokens_per_s"] / out["theirs"]["tokens_per_s"]
    out["ratio_best"] = out["ours"]["tokens_per_s_best"] / out["theirs"]["tokens_per_s_best"]
    out["max_other_cores"] = max((x or 0.0) for n in names for x in others[n])
    return out


# ------------------------------------------------------------------------------------------------ peak memory
def profiled_peak(fn: Callable[[], Any]) -> dict[str, Any]:
    """Peak bytes allocated by torch's CPU allocator while `fn` runs, above the level at its start.

    torch.profiler(profile_memory=True) records one `[memory]` event per allocation (+nbytes) and per free (-nbytes)
    of the c10 CPU allocator. Sorted by time, their running sum is the live-byte curve relative to the start; its
    maximum is the peak (exact on the known toy cases of `memory_selftest`).

    Limits: allocations made on threads the profiler does not follow (plain Python threads) are invisible; frees of
    blocks allocated *before* profiling started are not reported, so nothing older than `fn` may be freed inside it
    (the training step sets gradients to None before profiling starts, see `step_memory`); memory that bypasses
    torch's allocator (e.g. oneDNN internals) is not counted. The RSS cross-check (`rss_worker`) covers all three.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False) as prof:
        fn()
    all_events = prof.profiler.kineto_results.events()
    events = sorted((e for e in all_events if e.name() == "[memory]"), key=lambda e: e.start_ns())
    phases = {e.name()[len(PHASE):]: (e.start_ns(), e.end_ns()) for e in all_events if e.name().startswith(PHASE)}
    current = peak = 0
    peak_ns: int | None = None
    at_end: dict[str, int] = {}
    for e in events:
        current += e.nbytes()
        if current > peak:
            peak, peak_ns = current, e.start_ns()
        for name, (_, end) in phases.items():  # live bytes when each phase ends
            if e.start_ns() <= end:
                at_end[name] = current
    peak_phase = next((n for n, (a, b) in phases.items() if peak_ns is not None and a <= peak_ns <= b), None)
    return {"peak": peak, "net": current, "events": len(events), "peak_phase": peak_phase,
            "live_at_phase_end": at_end, "live_at_peak": live_at_peak(prof, peak)}


def live_at_peak(prof: profile, expected_peak: int, top: int = 6) -> list[tuple[str, int]]:
    """What is allocated at the peak, grouped by the op that allocated it (largest first).

    Uses the profiler's event tree, whose allocation nodes carry the block address and sit under the op that made
    them; a label is `<autograd function or top-level op> > <innermost op>`."""
    allocs: list[tuple[int, int, int, tuple[str, ...]]] = []

    def walk(nodes: list[Any], stack: tuple[str, ...]) -> None:
        for n in nodes:
            if n.name == "[memory]":
                allocs.append((n.start_time_ns, n.extra_fields.alloc_size, n.extra_fields.ptr, stack))
            else:
                walk(n.children, stack if n.name.startswith(PHASE) else (*stack, n.name))

    walk(prof.profiler.kineto_results.experimental_event_tree(), ())
    allocs.sort(key=lambda a: a[0])
    current = peak = 0
    peak_index = -1
    for i, (_, size, _, _) in enumerate(allocs):
        current += size
        if current > peak:
            peak, peak_index = current, i
    if peak != expected_peak:
        logger.warning("event-tree peak %d != event-list peak %d: breakdown approximate", peak, expected_peak)
    live: dict[int, tuple[int, tuple[str, ...]]] = {}
    for _, size, ptr, path in allocs[:peak_index + 1]:
        if size > 0:
            live[ptr] = (size, path)
        else:
            live.pop(ptr, None)
    groups: dict[str, int] = {}
    for size, path in live.values():
        outer = next((x for x in path if x.startswith("autograd::engine::evaluate_function")), path[0] if path else "?")
        outer = outer.replace("autograd::engine::evaluate_function: ", "backward of ")
        label = f"{outer} > {path[-1]}" if path and path[-1] != outer else outer
        groups[label] = groups.get(label, 0) + size
    return sorted(groups.items(), key=lambda kv: -kv[1])[:top]


class RSSProbe:
    """Process-level measure: peak RSS (VmHWM, reset through /proc/self/clear_refs) above the RSS at the start.

    Counts everything the process touches (torch, oneDNN, Python), but it equals the live bytes only when glibc
    returns freed blocks to the kernel, i.e. in a fresh process whose mmap/trim thresholds are pinned low from the
    start (`rss_worker`). In a process that has run other work, freed heap chunks get reused and fragment, and RSS
    over-counts (observed: +1 GiB).
    """

    def __init__(self) -> None:
        try:
            self.libc = ctypes.CDLL("libc.so.6")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.available = True
        except OSError:
            self.libc, self.available = None, False

    @staticmethod
    def _status() -> tuple[int, int]:
        with open("/proc/self/status") as f:
            s = f.read()
        kb = lambda key: int(re.search(key + r":\s+(\d+) kB", s).group(1)) * 1024  # noqa: E731
        return kb("VmRSS"), kb("VmHWM")

    def measure(self, fn: Callable[[], Any]) -> dict[str, int] | None:
        if not self.available:
            return None
        gc.collect()
        self.libc.malloc_trim(0)
        rss0, _ = self._status()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        fn()
        rss1, hwm = self._status()
        return {"peak": hwm - rss0, "net": rss1 - rss0}


def memory_selftest(rss: RSSProbe | None) -> dict[str, Any]:
    """Toy cases with known answers: the profiler method must find them exactly."""

    def alloc_free() -> None:  # peak 100 MiB above the start, nothing retained
        a = torch.empty(100 * MiB, dtype=torch.uint8).fill_(1)
        del a

    def overlap() -> None:  # 100 + 50 live together = 150 MiB; later 50 + 80 = 130 MiB; nothing retained
        a = torch.ones(100 * MiB, dtype=torch.uint8)
        b = torch.ones(50 * MiB, dtype=torch.uint8)
        del a
        c = torch.ones(80 * MiB, dtype=torch.uint8)
        del b, c

    keep: list[torch.Tensor] = []

    def retain() -> None:  # 400 blocks of 256 KiB = 100 MiB, 60 MiB kept: peak 100, net 60
        xs = [torch.ones(256 * 1024, dtype=torch.uint8) for _ in range(400)]
        keep.extend(xs[:240])
        del xs

    cases = {"alloc_free_100MiB": (alloc_free, 100, 0), "overlap_150MiB": (overlap, 150, 0),
             "small_blocks_100MiB_keep_60": (retain, 100, 60)}
    out: dict[str, Any] = {}
    for name, (fn, want_peak, want_net) in cases.items():
        p = profiled_peak(fn)
        keep.clear()
        r = rss.measure(fn) if rss is not None else None
        keep.clear()
        ok = abs(p["peak"] / MiB - want_peak) < 0.5 and abs(p["net"] / MiB - want_net) < 0.5
        out[name] = {"expected_peak_mib": want_peak, "expected_net_mib": want_net,
                     "profiler_peak_mib": p["peak"] / MiB, "profiler_net_mib": p["net"] / MiB,
                     "rss_peak_mib": r["peak"] / MiB if r else None, "ok": ok}
        logger.info("memory self-test %s: expected peak %d MiB, profiler %.1f MiB (net %.1f), RSS %s", name,
                    want_peak, p["peak"] / MiB, p["net"] / MiB, f"{r['peak'] / MiB:.1f} MiB" if r else "n/a")
        if not ok:
            raise SystemExit(f"memory self-test {name} failed: {out[name]}")
    return out


def _unique_bytes(tensors: list[torch.Tensor]) -> int:
    seen, total = set(), 0
    for t in tensors:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


def resident_bytes(model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, int]:
    """Exact bytes of the state that lives across steps (tied weights counted once)."""
    params = _unique_bytes(list(model.parameters()))
    buffers = _unique_bytes(list(model.buffers()))
    grads = _unique_bytes([p.grad for p in model.parameters() if p.grad is not None])
    state = _unique_bytes([v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)])
    return {"params": params, "buffers": buffers, "grads": grads, "optimizer_state": state}


def step_memory(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], seed: int,
                rss: RSSProbe | None = None) -> dict[str, Any]:
    """Peak memory of forward + backward + optimizer.step, gradients freed (set_to_none) before the step."""
    model.train()
    if not opt.state:  # optimizer state must exist before the measured step (it is resident state)
        torch.manual_seed(seed)
        train_step(model, opt, batch)

    def step() -> None:
        with torch.profiler.record_function(PHASE + "forward"), torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            loss = model(**batch).loss
        with torch.profiler.record_function(PHASE + "backward"):
            loss.backward()
            del loss
        with torch.profiler.record_function(PHASE + "optimizer"):
            opt.step()

    opt.zero_grad(set_to_none=True)
    gc.collect()
    before = resident_bytes(model, opt)
    assert before["grads"] == 0
    torch.manual_seed(seed)
    prof = profiled_peak(step)
    after = resident_bytes(model, opt)
    rss_out = None
    if rss is not None and rss.available:  # after the profiled step: same allocation pattern, pages already mapped
        opt.zero_grad(set_to_none=True)
        torch.manual_seed(seed)
        rss_out = rss.measure(step)
    opt.zero_grad(set_to_none=True)
    resident = before["params"] + before["buffers"] + before["optimizer_state"]
    # Self-consistency: what the step leaves allocated is exactly the gradients it created.
    retained_ok = abs(prof["net"] - after["grads"]) <= 1 * MiB
    if not retained_ok:
        logger.warning("profiler net retained %.1f MiB != gradient bytes %.1f MiB: curve may be incomplete",
                       prof["net"] / MiB, after["grads"] / MiB)
    return {
        "peak_above_resident": prof["peak"],
        "resident_before": resident,
        "total_peak": resident + prof["peak"],
        "resident_detail": before,
        "grads_after_step": after["grads"],
        "profiler_net_retained": prof["net"],
        "net_retained_equals_grads": retained_ok,
        "alloc_events": prof["events"],
        "peak_phase": prof["peak_phase"],
        "live_after_forward": prof["live_at_phase_end"].get("forward"),
        "live_at_peak_by_op": prof["live_at_peak"],
        "rss_peak_above_start": rss_out["peak"] if rss_out else None,
    }


def cuda_step_memory(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                     seed: int) -> dict[str, Any]:
    """`step_memory` on a GPU: ``torch.cuda.max_memory_allocated`` over one step (forward + backward + optimizer
    step, gradients set to None before it), above ``memory_allocated`` before it. Both models live on the GPU, so the
    total (b) adds this model's own resident state, not the device's whole allocation."""
    model.train()
    if not opt.state:
        torch.manual_seed(seed)
        train_step(model, opt, batch)
    opt.zero_grad(set_to_none=True)
    gc.collect()
    synchronize(DEVICE)
    before = resident_bytes(model, opt)
    start = torch.cuda.memory_allocated(DEVICE)
    torch.cuda.reset_peak_memory_stats(DEVICE)
    torch.manual_seed(seed)
    train_step(model, opt, batch)
    synchronize(DEVICE)
    peak = torch.cuda.max_memory_allocated(DEVICE) - start
    after = resident_bytes(model, opt)
    net = torch.cuda.memory_allocated(DEVICE) - start
    opt.zero_grad(set_to_none=True)
    resident = before["params"] + before["buffers"] + before["optimizer_state"]
    return {
        "peak_above_resident": peak, "resident_before": resident, "total_peak": resident + peak,
        "resident_detail": before, "grads_after_step": after["grads"], "profiler_net_retained": net,
        "net_retained_equals_grads": abs(net - after["grads"]) <= 1 * MiB, "alloc_events": None, "peak_phase": None,
        "live_after_forward": None, "live_at_peak_by_op": [], "rss_peak_above_start": None,
        "device_max_memory_allocated": torch.cuda.max_memory_allocated(DEVICE),
    }


RSS_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def rss_worker(name: str, shape: tuple[int, int], seed: int) -> dict[str, Any]:
    """Body of a fresh subprocess (`--rss-worker`): one model, one warm-up step, then the step measured with RSS
    and with the profiler. glibc's thresholds are pinned by RSS_ENV from process start, so every block >= 128 KiB
    is mmap-ed and unmapped on free: the RSS curve then follows the live bytes."""
    torch.manual_seed(seed)
    if name == "ours":
        model = XLMRobertaForMaskedLM(XLMRobertaConfig.from_preset("base", attn_implementation="sdpa",
                                                                   **MODEL_OVERRIDES))
    else:
        model = transformers.XLMRobertaForMaskedLM(transformers.XLMRobertaConfig(
            **{**HF_BASE_FIELDS, **MODEL_OVERRIDES}, attn_implementation="sdpa"))
    opt, _ = make_optimizer(model)
    batch = mlm_batch(*shape, model.config.vocab_size, seed)
    torch.manual_seed(seed)
    train_step(model, opt, batch)  # optimizer state + first-touch of the step's pages
    out = step_memory(model, opt, batch, seed, RSSProbe())
    out["model_files_sha256"] = code_fingerprint()["model_files_sha256"]
    return out


def run_rss_workers(shapes: list[tuple[int, int]], seed: int, threads: int) -> dict[str, dict[str, Any]]:
    """RSS cross-check of the peak-memory figure, one fresh process per (model, shape); run before the main
    process builds its models so that both fit in RAM."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"} | RSS_ENV
    out: dict[str, dict[str, Any]] = {}
    for shape in shapes:
        for name in ("ours", "theirs"):
            tag = f"{name}:{shape[0]}x{shape[1]}"
            logger.info("RSS cross-check in a fresh process: %s ...", tag)
            cmd = [sys.executable, os.path.abspath(__file__), "--rss-worker", name, "--shapes",
                   f"{shape[0]}x{shape[1]}", "--seed", str(seed), "--threads", str(threads),
                   "--model-overrides", json.dumps(MODEL_OVERRIDES)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RSS_WORKER ")]
            if proc.returncode != 0 or not lines:
                logger.warning("RSS worker %s failed (exit %s): %s", tag, proc.returncode, proc.stderr[-2000:])
                continue
            out[tag] = json.loads(lines[-1][len("RSS_WORKER "):])
            logger.info("  %s: RSS peak %.0f MiB, profiler peak in the same process %.0f MiB", tag,
                        out[tag]["rss_peak_above_start"] / MiB, out[tag]["peak_above_resident"] / MiB)
    return out


def bench_memory(models: dict[str, tuple[torch.nn.Module, torch.optim.Optimizer]], shape: tuple[int, int],
                 vocab: int, seed: int, rss: dict[str, dict[str, Any]]) -> dict[str, Any]:
    batch = mlm_batch(*shape, vocab, seed)
    out: dict[str, Any] = {"shape": f"{shape[0]}x{shape[1]}"}
    for name, (model, opt) in models.items():
        logger.info("peak memory %s %dx%d ...", name, *shape)
        out[name] = (cuda_step_memory if DEVICE.type == "cuda" else step_memory)(model, opt, batch, seed)
        worker = rss.get(f"{name}:{shape[0]}x{shape[1]}")
        out[name]["rss_peak_above_start"] = worker["rss_peak_above_start"] if worker else None
        out[name]["rss_worker_profiler_peak"] = worker["peak_above_resident"] if worker else None
        if worker and worker["peak_above_resident"] != out[name]["peak_above_resident"]:
            logger.warning("RSS worker %s %s: its profiler peak %d != main process %d (model code %s vs %s): the "
                           "RSS figure is not comparable", name, out["shape"], worker["peak_above_resident"],
                           out[name]["peak_above_resident"], worker.get("model_files_sha256"),
                           code_fingerprint()["model_files_sha256"])
        m = out[name]
        logger.info("  %s: above resident %.0f MiB (peak in %s; %.0f MiB live after forward), resident %.0f MiB, "
                    "total %.0f MiB, RSS cross-check %s", name, m["peak_above_resident"] / MiB, m["peak_phase"],
                    (m["live_after_forward"] or 0) / MiB, m["resident_before"] / MiB, m["total_peak"] / MiB,
                    f"{m['rss_peak_above_start'] / MiB:.0f} MiB" if m["rss_peak_above_start"] is not None else "n/a")
    out["ratio_above_resident"] = out["ours"]["peak_above_resident"] / out["theirs"]["peak_above_resident"]
    out["ratio_total"] = out["ours"]["total_peak"] / out["theirs"]["total_peak"]
    return out


# ------------------------------------------------------------------------------------------------ inference
def bench_inference(ours: torch.nn.Module, theirs: torch.nn.Module, n_docs: int, min_len: int, max_len: int,
                    micro_batch: int, repeats: int, dtype: str, seed: int, vocab: int,
                    wait_idle: float = 0.0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n_docs,), generator=g).tolist()
    docs = random_documents(lengths, vocab, g)
    groups = [docs[i:i + micro_batch] for i in range(0, n_docs, micro_batch)]
    real_tokens = sum(lengths)

    padded_inputs = []
    for grp in groups:
        longest = max(len(d) for d in grp)
        ids = torch.full((len(grp), longest), PAD, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, d in enumerate(grp):
            ids[r, :len(d)], mask[r, :len(d)] = d, 1
        padded_inputs.append({"input_ids": ids.to(DEVICE), "attention_mask": mask.to(DEVICE)})
    packed_inputs = []
    for grp in groups:
        lens = torch.tensor([0] + [len(d) for d in grp])
        packed_inputs.append({"input_ids": torch.cat(grp)[None].to(DEVICE),
                              "cu_seqlens": torch.cumsum(lens, 0).to(torch.int32).to(DEVICE)})
    padded_tokens = sum(x["input_ids"].numel() for x in padded_inputs)

    autocast = dtype == "bf16"
    runners = {
        "ours": lambda: [ours.roberta(**x).last_hidden_state for x in packed_inputs],
        "theirs": lambda: [theirs.roberta(**x).last_hidden_state for x in padded_inputs],
    }
    ours.eval(), theirs.eval()
    times: dict[str, list[float]] = {k: [] for k in runners}
    others: list[float] = []
    probe = OtherLoad()
    outputs: dict[str, list[torch.Tensor]] = {}
    logger.info("inference %s: %d docs (lengths %d..%d, %d real tokens, %d padded), micro-batch %d, %d repeats",
                dtype, n_docs, min(lengths), max(lengths), real_tokens, padded_tokens, micro_batch, repeats)
    with torch.inference_mode(), torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=autocast):
        for name, run in runners.items():  # warm-up (also the outputs compared below)
            outputs[name] = run()
        for i in tqdm(range(repeats), desc=f"infer {dtype}", disable=None):
            for name in list(runners) if i % 2 == 0 else list(runners)[::-1]:
                probe.wait_idle(wait_idle)
                probe.start()
                synchronize(DEVICE)
                t0 = time.perf_counter()
                runners[name]()
                synchronize(DEVICE)
                times[name].append(time.perf_counter() - t0)
                others.append(probe.stop() or 0.0)
    ours.train(), theirs.train()

    # Correctness guard: each document's real-token outputs, packed (ours) vs padded (theirs).
    max_diff, sum_diff, count = 0.0, 0.0, 0
    for gi, grp in enumerate(groups):
        off = 0
        for r, d in enumerate(grp):
            a = outputs["ours"][gi][0, off:off + len(d)].float()
            b = outputs["theirs"][gi][r, :len(d)].float()
            diff = (a - b).abs()
            max_diff = max(max_diff, float(diff.max()))
            sum_diff += float(diff.sum())
            count += diff.numel()
            off += len(d)
    tolerance = 1e-3 if dtype == "fp32" else 0.25  # bf16: different kernels/shapes round differently
    out: dict[str, Any] = {"dtype": dtype, "docs": n_docs, "lengths": lengths, "real_tokens": real_tokens,
                           "padded_tokens": padded_tokens, "micro_batch": micro_batch,
                           "max_abs_diff": max_diff, "mean_abs_diff": sum_diff / count, "tolerance": tolerance,
                           "guard_ok": max_diff <= tolerance, "max_other_cores": max(others)}
    for name in runners:
        med = statistics.median(times[name])
        out[name] = {"pass_s_median": med, "pass_s_all": times[name], "tokens_per_s": real_tokens / med,
                     "tokens_per_s_best": real_tokens / min(times[name])}
    out["ratio"] = out["ours"]["tokens_per_s"] / out["theirs"]["tokens_per_s"]
    out["ratio_best"] = out["ours"]["tokens_per_s_best"] / out["theirs"]["tokens_per_s_best"]
    logger.info("  ours %.0f tok/s, theirs %.0f tok/s, ratio %.2f; max |diff| %.3g (mean %.3g, tol %g)",
                out["ours"]["tokens_per_s"], out["theirs"]["tokens_per_s"], out["ratio"], max_diff,
                out["mean_abs_diff"], tolerance)
    if not out["guard_ok"]:
        logger.error("inference correctness guard FAILED (%s): max |diff| %.3g > %g", dtype, max_diff, tolerance)
    return out


# ------------------------------------------------------------------------------------------------ profile
def profile_step(model: torch.nn.Module, opt: torch.optim.Optimizer, shape: tuple[int, int], vocab: int, seed: int,
                 rows: int = 15) -> str:
    batch = mlm_batch(*shape, vocab, seed)
    model.train()
    if not opt.state:
        train_step(model, opt, batch)
    torch.manual_seed(seed)
    cuda = DEVICE.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]) as prof:
        train_step(model, opt, batch)
        synchronize(DEVICE)
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=48)


# ------------------------------------------------------------------------------------------------ MFU (GPU)
def model_flops_utilisation(ours: torch.nn.Module, training: list[dict[str, Any]]) -> dict[str, Any]:
    """Training tokens/s of both models x our model FLOPs per token (`training_flops_per_token`: the LM head on the
    masked 15% only, which is all a masked LM needs) / the bf16 GEMM rate measured here (8192^3, CUDA events)."""
    from xlmr_hf.training.pretrain import training_flops_per_token

    peak = measure_gemm_flops(DEVICE, torch.bfloat16)
    out: dict[str, Any] = {"bf16_gemm_flops": peak, "shapes": {}}
    for r in training:
        length = int(r["shape"].split("x")[1])
        fpt = training_flops_per_token(ours.config, ours, length, 0.15)
        out["shapes"][r["shape"]] = {"flops_per_token": fpt,
                                     **{name: r[name]["tokens_per_s"] * fpt / peak for name in ("ours", "theirs")}}
    logger.info("bf16 GEMM rate %.0f TFLOP/s; MFU %s", peak / 1e12, {k: f"{v['ours']:.1%} (theirs {v['theirs']:.1%})"
                                                                     for k, v in out["shapes"].items()})
    return out


# ------------------------------------------------------------------------------------------------ report
def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "=" * 100,
        "xlmr_hf.XLMRobertaForMaskedLM (ours) vs transformers.XLMRobertaForMaskedLM (theirs), same process",
        f"date {m['date_utc']} | CPU {m['cpu']} | {m['logical_cores']} logical cores, torch threads "
        f"{m['torch_threads']} | ISA {','.join(m['isa'])} | RAM {m['mem_total_gib']} GiB",
        f"python {m['python']} | torch {m['torch']} | transformers {m['transformers']} | xlmr_hf {m['xlmr_hf']} | "
        f"AdamW {results['config']['adamw']} | attention sdpa (both) | malloc {results['config']['args']['malloc']}"
        f" {m['allocator_env']}",
        f"command: {results['config']['command']}",
        f"model code: {m['code_start']['package']} | commit {m['code_start']['commit']}, uncommitted changes in src/: "
        f"{m['code_start']['src_uncommitted_changes']} | model files sha256 {m['code_start']['model_files_sha256']}"
        + ("" if m.get("code_end", m["code_start"])["model_files_sha256"] == m["code_start"]["model_files_sha256"]
           else f" -> MODEL FILES CHANGED DURING THE RUN to {m['code_end']['model_files_sha256']} (results mix "
                f"versions)"),
        f"load average (1/5/15 min) at start {m['load_avg_start']}, at end {m.get('load_avg_end')} "
        f"(> {m['logical_cores']} means other processes competed for the cores during the run); column 'others' = "
        f"most cores used by OTHER processes during any timed step/pass (0 = clean)",
        "=" * 100,
    ]
    overrides = results["config"]["args"].get("model_overrides")
    if overrides:
        lines.insert(3, f"MODEL OVERRIDES {json.dumps(overrides)}: not the base shape (a check of the script)")
    gpu = m.get("gpu")
    if gpu:  # a GPU run: the device line goes under the CPU line
        lines.insert(3, f"DEVICE cuda: {gpu['name']} (compute capability {gpu['capability']}, "
                        f"{gpu['multiprocessors']} SMs, {gpu['memory_gib']} GiB) | driver {gpu['driver']} | CUDA "
                        f"{gpu['cuda']} | cuDNN {gpu['cudnn']} | timing: torch.cuda.synchronize() around each step/pass")
    if "training_guard" in results:
        g = results["training_guard"]
        lines.append(f"training guard (fp32, eval, same weights): loss ours {g['loss_ours']:.6f} theirs "
                     f"{g['loss_theirs']:.6f} |diff| {g['abs_diff']:.2e}")
    if results.get("training"):
        lines += ["", "TRAINING (bf16 autocast, fp32 master weights, AdamW, dropout on, 15% masked) — tokens/s = "
                  "batch*length / median step time (best-step ratio: same with the fastest step of each)",
                  f"{'shape':>8} {'steps':>5} {'ours s/step':>12} {'theirs s/step':>14} {'ours tok/s':>11} "
                  f"{'theirs tok/s':>13} {'ours/theirs':>12} {'best-step ratio':>16} {'others':>7}"]
        for r in results["training"]:
            lines.append(f"{r['shape']:>8} {len(r['ours']['step_s_all']):>5} {r['ours']['step_s_median']:>12.3f} "
                         f"{r['theirs']['step_s_median']:>14.3f} {r['ours']['tokens_per_s']:>11.1f} "
                         f"{r['theirs']['tokens_per_s']:>13.1f} {r['ratio']:>11.2f}x {r['ratio_best']:>15.2f}x "
                         f"{r['max_other_cores']:>7.2f}")
    if results.get("memory"):
        where = ("torch.cuda.max_memory_allocated during the step, above memory_allocated before it" if gpu
                 else "peak of torch CPU allocations during the step, above the level before it")
        lines += ["", "PEAK MEMORY of one training step (fwd+bwd+AdamW step; grads set to None before it) — MiB",
                  f"  (a) above resident = {where} "
                  "(activations, logits, grads, autocast weight copies, temporaries)",
                  "  (b) total = (a) + resident before the step (fp32 params + buffers + AdamW exp_avg/exp_avg_sq/step,"
                  " exact tensor bytes, tied weights once)",
                  f"{'shape':>8} {'(a) ours':>10} {'(a) theirs':>11} {'(a) ratio':>10} {'resident o/t':>14} "
                  f"{'(b) ours':>10} {'(b) theirs':>11} {'(b) ratio':>10} {'RSS x-check o/t':>16}"]
        for r in results["memory"]:
            o, t = r["ours"], r["theirs"]
            rss = (f"{o['rss_peak_above_start'] / MiB:.0f}/{t['rss_peak_above_start'] / MiB:.0f}"
                   if o["rss_peak_above_start"] is not None else "n/a")
            lines.append(f"{r['shape']:>8} {o['peak_above_resident'] / MiB:>10.0f} "
                         f"{t['peak_above_resident'] / MiB:>11.0f} {r['ratio_above_resident']:>9.2f}x "
                         f"{o['resident_before'] / MiB:>6.0f}/{t['resident_before'] / MiB:<7.0f} "
                         f"{o['total_peak'] / MiB:>10.0f} {t['total_peak'] / MiB:>11.0f} {r['ratio_total']:>9.2f}x "
                         f"{rss:>16}")
        if not gpu:  # the phase and the blocks by op come from the CPU profiler
            for r in results["memory"]:
                lines.append(f"  {r['shape']}: " + "; ".join(
                    f"{k} peak during {r[k]['peak_phase']}, {(r[k]['live_after_forward'] or 0) / MiB:.0f} MiB live "
                    f"after forward, grads {r[k]['grads_after_step'] / MiB:.0f} MiB" for k in ("ours", "theirs")))
            lines.append("  largest blocks live at the peak, by allocating op (MiB):")
            for r in results["memory"]:
                for k in ("ours", "theirs"):
                    lines.append(f"    {r['shape']} {k}: " + "; ".join(
                        f"{label} {size / MiB:.0f}" for label, size in r[k]["live_at_peak_by_op"]))
        else:
            lines.append("  (peak phase, largest blocks by op, self-test and RSS cross-check: CPU runs only)")
        checks = all(r[k]["net_retained_equals_grads"] for r in results["memory"] for k in ("ours", "theirs"))
        lines.append(f"  consistency: bytes left allocated after each step == its gradient bytes: "
                     f"{'yes' if checks else 'NO (see log)'}; self-test (known toy peaks) passed: "
                     f"{'yes' if results.get('memory_selftest') else 'n/a'}")
        diffs = [abs(r[k]["rss_peak_above_start"] - r[k]["peak_above_resident"]) / MiB for r in results["memory"]
                 for k in ("ours", "theirs") if r[k].get("rss_peak_above_start") is not None]
        same = all(r[k]["rss_worker_profiler_peak"] == r[k]["peak_above_resident"] for r in results["memory"]
                   for k in ("ours", "theirs") if r[k].get("rss_worker_profiler_peak") is not None)
        if diffs and not same:
            lines.append("  RSS x-check INVALID: a worker's own profiler peak differs from the main process's (model "
                         "code changed during the run?)")
        if diffs:
            lines.append(f"  RSS x-check = peak RSS above the start of the same step, in a fresh process per model "
                         f"and shape (glibc mmap/trim thresholds pinned at 128 KiB); largest |RSS - (a)| = "
                         f"{max(diffs):.0f} MiB")
    if results.get("inference"):
        lines += ["", "INFERENCE (encoder only: model.roberta, eval, no grad) — real tokens/s; theirs padded "
                  "micro-batches + attention_mask, ours packed rows + cu_seqlens",
                  f"{'dtype':>6} {'docs':>5} {'mb':>3} {'real tok':>9} {'padded':>7} {'ours tok/s':>11} "
                  f"{'theirs tok/s':>13} {'ours/theirs':>12} {'best ratio':>11} {'max|diff|':>10} {'guard':>6} "
                  f"{'others':>7}"]
        for r in results["inference"]:
            lines.append(f"{r['dtype']:>6} {r['docs']:>5} {r['micro_batch']:>3} {r['real_tokens']:>9} "
                         f"{r['padded_tokens']:>7} {r['ours']['tokens_per_s']:>11.1f} "
                         f"{r['theirs']['tokens_per_s']:>13.1f} {r['ratio']:>11.2f}x {r['ratio_best']:>10.2f}x "
                         f"{r['max_abs_diff']:>10.2e} "
                         f"{'ok' if r['guard_ok'] else 'FAIL':>6} {r['max_other_cores']:>7.2f}")
    if results.get("mfu"):
        mfu = results["mfu"]
        lines += ["", f"MFU (GPU): training tokens/s x model FLOPs/token (LM head on the masked 15% only) / measured "
                      f"bf16 GEMM rate {mfu['bf16_gemm_flops'] / 1e12:.0f} TFLOP/s (8192^3, CUDA events)"]
        lines += [f"  {shape}: {v['flops_per_token'] / 1e9:.3f} GFLOP/token; ours {v['ours']:.1%}, theirs "
                  f"{v['theirs']:.1%}" for shape, v in mfu["shapes"].items()]
    goals = results.get("goals")
    if goals:
        lines += ["", "GOALS"] + [f"  {g}" for g in goals]
    lines.append("=" * 100)
    return "\n".join(lines)


def judge(results: dict[str, Any]) -> list[str]:
    out = []
    if results.get("training"):
        worst = min(r["ratio"] for r in results["training"])
        out.append(f"training tokens/s >= 2.0x: worst shape {worst:.2f}x -> {'MET' if worst >= 2.0 else 'MISSED'}")
    bf16 = [r for r in results.get("inference", []) if r["dtype"] == "bf16"]
    if bf16:
        ratio = bf16[0]["ratio"]
        out.append(f"inference (bf16, mixed lengths) tokens/s >= 1.3x: {ratio:.2f}x -> "
                   f"{'MET' if ratio >= 1.3 else 'MISSED'}")
    if results.get("memory"):
        a = max(r["ratio_above_resident"] for r in results["memory"])
        b = max(r["ratio_total"] for r in results["memory"])
        out.append(f"peak memory <= 0.6x: (a) above resident worst {a:.2f}x -> {'MET' if a <= 0.6 else 'MISSED'}; "
                   f"(b) total worst {b:.2f}x -> {'MET' if b <= 0.6 else 'MISSED'}")
    return out


# ------------------------------------------------------------------------------------------------ main
def parse_shapes(text: str) -> list[tuple[int, int]]:
    shapes = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", part)
        if not m:
            raise argparse.ArgumentTypeError(f"--shapes: {part!r} is not BATCHxLENGTH (e.g. 8x128,2x512)")
        b, n = int(m.group(1)), int(m.group(2))
        if not (b >= 1 and 4 <= n <= 512):
            raise argparse.ArgumentTypeError(f"--shapes: {part!r} needs batch >= 1 and 4 <= length <= 512")
        shapes.append((b, n))
    return shapes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=5, help="timed training steps per model and shape")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up training steps per model and shape")
    p.add_argument("--shapes", type=parse_shapes, default=parse_shapes("8x128,2x512"),
                   help="training shapes BATCHxLENGTH, comma-separated")
    p.add_argument("--skip-train", action="store_true", help="skip the training throughput benchmark")
    p.add_argument("--skip-infer", action="store_true", help="skip the inference benchmark")
    p.add_argument("--skip-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--no-rss-check", action="store_true",
                   help="skip the RSS cross-check of peak memory (one fresh subprocess per model and shape)")
    p.add_argument("--rss-worker", choices=["ours", "theirs"], help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    p.add_argument("--infer-docs", type=int, default=16, help="documents in the inference set")
    p.add_argument("--infer-min-len", type=int, default=16, help="shortest document (tokens, incl. <s> </s>)")
    p.add_argument("--infer-max-len", type=int, default=512, help="longest document (tokens, incl. <s> </s>)")
    p.add_argument("--infer-batch", type=int, default=8, help="documents per inference micro-batch (B)")
    p.add_argument("--infer-repeats", type=int, default=5, help="timed passes over the inference set")
    p.add_argument("--infer-dtypes", default="bf16,fp32", help="comma-separated subset of bf16 (autocast), fp32")
    p.add_argument("--profile", nargs="?", const="ours", choices=["ours", "theirs", "both"], default=None,
                   help="print torch.profiler's top-15 ops by self CPU time for one training step (first shape)")
    p.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                   help="before each timed step/pass, wait up to this long for other processes to leave the cores "
                        "(< 0.15 cores busy over 1 s); 0 disables")
    p.add_argument("--malloc", choices=["system", "cache"], default="system",
                   help="glibc malloc behaviour: 'system' = defaults (large blocks are mmap-ed and returned to the "
                        "kernel on free, so each step re-faults fresh pages); 'cache' = re-exec with GLIBC_TUNABLES "
                        "mmap_max=0, trim_threshold=64 GiB so freed memory is reused, like a caching allocator")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write all results (incl. per-step times) as JSON")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                   help="where both models run; auto = cuda when torch sees a GPU, else cpu. On cuda: synchronised "
                        "timing, torch.cuda.max_memory_allocated for memory (no profiler/RSS methods), MFU added")
    p.add_argument("--model-overrides", type=json.loads, default={}, metavar="JSON",
                   help='fields changed on both models\' base shape, e.g. \'{"num_hidden_layers": 2}\' (a quick '
                        "check of the script: the figures are then not the base model's)")
    args = p.parse_args(argv)
    MODEL_OVERRIDES.update(args.model_overrides)
    if args.malloc == "cache" and MALLOC_CACHE_TUNABLES not in os.environ.get("GLIBC_TUNABLES", ""):
        # glibc reads its tunables only at process start: re-execute this script with them set.
        env = dict(os.environ)
        env["GLIBC_TUNABLES"] = ":".join(x for x in (env.get("GLIBC_TUNABLES"), MALLOC_CACHE_TUNABLES) if x)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    transformers.logging.set_verbosity_error()
    dtypes = [d.strip() for d in args.infer_dtypes.split(",") if d.strip()]
    if bad := [d for d in dtypes if d not in ("bf16", "fp32")]:
        p.error(f"--infer-dtypes: {bad} not in bf16, fp32")
    if not 4 <= args.infer_min_len <= args.infer_max_len <= 512:
        p.error("--infer-min-len/--infer-max-len: need 4 <= min <= max <= 512")
    torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = torch.device(resolve_device(args.device))
    if args.rss_worker:
        result = rss_worker(args.rss_worker, args.shapes[0], args.seed)
        print("RSS_WORKER " + json.dumps(result), flush=True)
        return 0

    machine = machine_info(torch.get_num_threads())
    logger.info("machine: %s", machine)
    rss_checks: dict[str, dict[str, Any]] = {}
    results_selftest = None  # the profiler method's self-test: CPU only (a GPU has max_memory_allocated)
    if not args.skip_memory and DEVICE.type == "cpu":
        results_selftest = memory_selftest(RSSProbe())  # before anything else ran in this process
        if not args.no_rss_check:
            rss_checks = run_rss_workers(args.shapes, args.seed, args.threads)
    ours, theirs = build_models(args.seed)
    vocab = ours.config.vocab_size
    models: dict[str, tuple[torch.nn.Module, torch.optim.Optimizer]] = {}
    kinds = set()
    for name, model in (("ours", ours), ("theirs", theirs)):
        opt, kind = make_optimizer(model)
        models[name] = (model, opt)
        kinds.add(kind)
    results: dict[str, Any] = {
        "machine": machine,
        "config": {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "args": {
            k: (v if k != "shapes" else [f"{b}x{n}" for b, n in v]) for k, v in vars(args).items()},
            "adamw": "/".join(sorted(kinds)), "lr": 1e-5},
    }
    results["training_guard"] = check_losses_match(ours, theirs, vocab, args.seed)

    if not args.skip_train:
        results["training"] = [bench_training(models, s, vocab, args.steps, args.warmup, args.seed,
                                              args.wait_idle)
                               for s in args.shapes]

    if args.profile:
        for name in ("ours", "theirs") if args.profile == "both" else (args.profile,):
            table = profile_step(*models[name], args.shapes[0], vocab, args.seed)
            results.setdefault("profile", {})[name] = table
            print(f"\ntorch.profiler, one training step of {name.upper()} at {args.shapes[0][0]}x{args.shapes[0][1]}"
                  f" (bf16 autocast), top 15 ops by self CPU time:\n{table}", flush=True)

    if not args.skip_infer:
        sync_weights(ours, theirs)  # training steps moved the weights apart (different dropout masks)
        results["inference"] = [
            bench_inference(ours, theirs, args.infer_docs, args.infer_min_len, args.infer_max_len, args.infer_batch,
                            args.infer_repeats, d, args.seed, vocab, args.wait_idle) for d in dtypes]

    if not args.skip_memory:
        if results_selftest is not None:
            results["memory_selftest"] = results_selftest
        results["memory"] = [bench_memory(models, s, vocab, args.seed, rss_checks) for s in args.shapes]

    if DEVICE.type == "cuda" and results.get("training"):
        results["mfu"] = model_flops_utilisation(ours, results["training"])
    machine["load_avg_end"] = load_average()
    machine["code_end"] = code_fingerprint()
    if machine["code_end"]["model_files_sha256"] != machine["code_start"]["model_files_sha256"]:
        logger.warning("model files changed during the run: %s -> %s", machine["code_start"], machine["code_end"])
    results["goals"] = judge(results)
    print(render(results), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        logger.info("wrote %s", args.json)
    guards_ok = all(r["guard_ok"] for r in results.get("inference", []))
    return 0 if guards_ok else 1


if __name__ == "__main__":
    sys.exit(main())
