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

__all__ = ["RESULT", "machine_info", "run_worker"]

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


def machine_info(packages: Sequence[str], code_paths: Sequence[Path], label: str, *,
                 memory: bool = True) -> dict[str, Any]:
    """The machine, the software and the code a benchmark runs on, as stored under ``"machine"`` in its results.

    Keys, in this order: ``date_utc``, ``cpu`` (model name), ``logical_cores``, ``mem_total_gib`` (only with
    ``memory``), ``python``, one key per distribution in ``packages`` holding its version, ``commit`` (short HEAD),
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
        **{name: md.version(name) for name in packages},
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
