"""The debug recipe on the embedded corpus against a committed per-step loss baseline.

Regenerate after an intended change with ``XLMR_UPDATE_BASELINES=1 python -m pytest
tests/integration/test_pretrain_baseline.py`` and say why in the commit message. The tolerance (relative 1e-3) absorbs
float rounding differences between CPUs and thread counts; a change of masking, sampling, packing, initialisation,
optimizer or schedule moves the losses by far more.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from xlmr_hf.training import load_recipe, pretrain

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "tests/baselines/pretrain_debug_losses.json"
STEPS = 40


def test_debug_recipe_matches_committed_baseline(tmp_path: Path) -> None:
    args = load_recipe(ROOT / "recipes/pretrain/debug.yaml", ["--output_dir", str(tmp_path / "run"), "--max_steps",
                                                               str(STEPS), "--logging_steps", "1", "--save_steps",
                                                               str(STEPS)])  # peak FLOPs measured: no RNG effect
    result = pretrain(args)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    evals = [row for row in rows if "eval/loss" in row]
    got = {"losses": losses, "eval_before": evals[0]["eval/loss"], "eval_after": evals[-1]["eval/loss"]}
    if os.environ.get("XLMR_UPDATE_BASELINES") == "1":
        BASELINE.write_text(json.dumps({**got, "steps": STEPS, "machine": platform.processor() or platform.machine(),
                                        "command": "recipes/pretrain/debug.yaml --max_steps 40"}, indent=1) + "\n")
    expected = json.loads(BASELINE.read_text())
    assert len(losses) == STEPS and result["step"] == STEPS
    assert losses == pytest.approx(expected["losses"], rel=1e-3)
    assert got["eval_before"] == pytest.approx(expected["eval_before"], rel=1e-3)
    assert got["eval_after"] == pytest.approx(expected["eval_after"], rel=1e-3)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.4  # it learns
