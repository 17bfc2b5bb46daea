"""What the benchmark scripts share: the machine and code description stored with every result, and running one
measurement in a fresh interpreter.

The scripts import it as ``from _common import ...``: ``python benchmarks/bench_x.py`` puts ``benchmarks/`` first on
``sys.path``, and so does every worker the script starts, since a worker is the same script run again by its path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata as md
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["RESULT", "gpu_info", "machine_info", "measure_gemm_flops", "resolve_device", "run_worker", "synchronize"]

_ROOT = Path(__file__).resolve().parent.parent
RESULT = "RESULT "
"""Prefix of the line on which a worker prints its result as JSON (`run_worker` reads the last such line)."""


def _git(*args: str) -> str | None:
    """``git -C <repository root> *args``'s stripped standard output; None when git cannot be run."""
    try:
        return subprocess.run(["git", "-C", str(_ROOT), *args], check=False, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _code_files(code_paths: Sequence[Path]) -> list[Path]:
    """The files behind ``code_paths``, in order: a file stands for itself, a directory for its ``*.py``, sorted."""
    files: list[Path] = []
    for path in code_paths:
        files.extend(sorted(path.glob("*.py")) if path.is_dir() else [path])
    return files


def _version(name: str) -> str | None:
    """The installed version of distribution ``name``; None when it is not installed (a bare GPU image)."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def machine_info(packages: Sequence[str], code_paths: Sequence[Path], label: str, *,
                 memory: bool = True) -> dict[str, Any]:
    """The machine, the software and the code a benchmark runs on, as stored under ``"machine"`` in its results.

    Keys, in this order: ``date_utc``, ``cpu`` (model name), ``logical_cores``, ``mem_total_gib`` (only with
    ``memory``), ``python``, one key per distribution in ``packages`` holding its version (None when not installed), ``commit`` (short HEAD),
    ``<label>_uncommitted`` (git reports changes in ``code_paths``), ``<label>_sha256`` (first 16 hex digits of the
    SHA-256 of the measured code: the bytes of the files behind ``code_paths`` concatenated, a directory standing
    for its ``*.py`` files in sorted order) and ``load_avg_start`` (1/5/15 min load average).
    """
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = m.group(1).strip() if (m := re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)) else "unknown"
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in _code_files(code_paths))).hexdigest()[:16]
    info: dict[str, Any] = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": cpu, "logical_cores": os.cpu_count(),
    }
    if memory:
        mem = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        info["mem_total_gib"] = round(int(mem.group(1)) / 2**20, 1) if mem else None
    info.update({
        "python": platform.python_version(),
        **{name: _version(name) for name in packages},
        "commit": _git("rev-parse", "--short", "HEAD"),
        f"{label}_uncommitted": bool(_git("status", "--porcelain", "--", *[str(p) for p in code_paths])),
        f"{label}_sha256": digest,
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    })
    return info


def run_worker(script: Path, kind: str, params: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``script --worker kind <params as JSON>`` in a fresh interpreter and return the JSON on its last
    `RESULT` line. ``env`` is added to this process's environment (None: the child inherits it unchanged). Raises
    ``RuntimeError`` with the end of the worker's standard error if it fails or prints no result."""
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", kind, json.dumps(params)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True,
                          env=None if env is None else {**os.environ, **env})
    found = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode or not found:
        raise RuntimeError(f"worker {kind} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(found[-1][len(RESULT):])


# ------------------------------------------------------------------------------------------------------- devices
def resolve_device(name: str) -> str:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when torch sees a GPU) -> ``"cpu"`` or ``"cuda"``; asking for CUDA
    where there is none raises ``SystemExit`` with the reason."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
    return name


def synchronize(device: Any) -> None:
    """Wait for the work queued on ``device`` (CUDA runs asynchronously; a timer read without this measures only the
    launch). A no-op on the CPU."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def gpu_info(device: Any = "cuda") -> dict[str, Any] | None:
    """The GPU a benchmark ran on (None without CUDA): name, compute capability, multiprocessors, memory, the CUDA and
    cuDNN versions torch was built with, and the driver as ``nvidia-smi`` reports it."""
    import torch

    if not torch.cuda.is_available() or torch.device(device).type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    driver = None
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], check=False,
                                capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0] or None
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return {"name": props.name, "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count, "memory_gib": round(props.total_memory / 2**30, 1),
            "count": torch.cuda.device_count(), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "driver": driver}


def measure_gemm_flops(device: Any, dtype: Any = None, size: int | None = None, repeats: int = 10,
                       warmup: int = 3) -> float:
    """Dense matmul FLOP/s on ``device``: the mean over ``repeats`` ``size``³ products in ``dtype`` (default bf16)
    after ``warmup`` untimed ones, on seeded random data (zeros run faster on some GPUs). On CUDA the products are
    timed with CUDA events, so the figure is the GPU's time, not the launch's. Default size: 8192 on CUDA, 1024 on the
    CPU."""
    import torch

    device = torch.device(device)
    dtype = dtype or torch.bfloat16
    size = size or (8192 if device.type == "cuda" else 1024)
    generator = torch.Generator().manual_seed(0)  # never the global RNG
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    for _ in range(warmup):
        torch.matmul(a, b)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        for _ in range(repeats):
            torch.matmul(a, b)
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1000
    else:
        import time

        begin = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        seconds = time.perf_counter() - begin
    return 2 * size**3 * repeats / seconds
