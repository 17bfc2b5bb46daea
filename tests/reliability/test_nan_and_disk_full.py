"""A non-finite loss at a chosen step (nan_policy stop and skip) and a disk that fills up during a save."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from fixtures.reliability import argv, data, fields, losses, start_cli  # noqa: F401 - data: fixture
from safetensors.torch import load_file

from xlmr_hf.cli import main
from xlmr_hf.models import XLMRobertaForMaskedLM
from xlmr_hf.training import NonFiniteLossError, checkpoints, load_recipe, pretrain
from xlmr_hf.training.state import verify_manifest


@pytest.fixture
def nan_at_step_6(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss of the first micro-batch of step 6 (2 micro-batches per step) is NaN, in every run (model)."""
    real, calls = XLMRobertaForMaskedLM.forward, {}

    def forward(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        if self.training:
            calls[id(self)] = calls.get(id(self), 0) + 1
            if calls[id(self)] == 11:
                out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(XLMRobertaForMaskedLM, "forward", forward)


def _strict_rows(output: Path) -> list[dict]:
    return [json.loads(line, parse_constant=lambda name: pytest.fail(f"non-strict JSON: {name}"))
            for line in (output / "metrics.jsonl").read_text().splitlines()]


def test_nan_stops_the_run_naming_the_step_and_keeps_the_finite_checkpoints(
        data: dict[str, str], tmp_path: Path, nan_at_step_6: None,  # noqa: F811
        capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "stop"
    rc = main(["pretrain", *argv(fields(data, output))])
    err = capsys.readouterr().err
    assert rc == 2
    assert "xlmr-hf pretrain: error: non-finite loss or gradient norm (loss nan) at step 6;" in err
    assert "the last checkpoint (" in err and "checkpoint-4) holds finite weights" in err
    assert [p.name for p in checkpoints(output)] == ["checkpoint-4"] and not list(output.glob(".tmp-*"))
    assert [row["step"] for row in _strict_rows(output)] == [1, 2, 3, 4, 5]  # nothing of step 6 was written
    verify_manifest(output / "checkpoint-4")
    assert all(torch.isfinite(t).all() for t in load_file(output / "checkpoint-4" / "model.safetensors").values())
    with pytest.raises(NonFiniteLossError, match="at step 6"):
        pretrain(load_recipe(None, fields(data, tmp_path / "api")))


def test_nan_policy_skip_skips_the_update_and_counts_it(data: dict[str, str], tmp_path: Path,  # noqa: F811
                                                         nan_at_step_6: None) -> None:
    output = tmp_path / "skip"
    result = pretrain(load_recipe(None, fields(data, output, nan_policy="skip")))
    rows = {row["step"]: row for row in _strict_rows(output)}
    assert result["step"] == 12 and math.isfinite(result["loss"])
    assert rows[6]["loss"] is None and rows[6]["skipped_steps"] == 1  # the window held only the skipped step
    assert rows[5]["skipped_steps"] == 0 and rows[12]["skipped_steps"] == 1 and math.isfinite(rows[12]["loss"])
    state = json.loads((output / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["skipped_steps"] == 1
    assert all(torch.isfinite(t).all() for t in load_file(output / "checkpoint-12" / "model.safetensors").values())


def _mount_tmpfs(path: Path, size: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.environ.get("XLMR_TEST_NO_MOUNT"):  # exercise the fallback where mounting is allowed
        return False
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                            check=False)
    return result.returncode == 0


def test_a_full_disk_during_a_save_leaves_the_earlier_checkpoints_and_resumes(
        data: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    reference = tmp_path / "reference"
    pretrain(load_recipe(None, fields(data, reference, save_total_limit=3)))
    sizes = {p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in checkpoints(reference)}
    others = sum(f.stat().st_size for f in reference.rglob("*") if f.is_file()) - sum(sizes.values())
    checkpoint = max(sizes.values())
    disk = tmp_path / "disk"
    room = others + checkpoint + checkpoint // 2 + 64 * 4096  # the first checkpoint fits, the second does not
    if _mount_tmpfs(disk, room):  # a real full filesystem
        try:
            output = disk / "run"
            process = start_cli(fields(data, output, save_total_limit=3), tmp_path / "full.log")
            assert process.wait(timeout=600) == 2
            log = (tmp_path / "full.log").read_text()
            message = [line for line in log.splitlines() if line.startswith("xlmr-hf pretrain: error:")]
            assert len(message) == 1 and "writing checkpoint-8 failed: No space left on device" in message[0], log
            assert "the earlier checkpoints are intact" in message[0] and "Traceback" not in log
            assert [p.name for p in checkpoints(output)] == ["checkpoint-4"] and not list(output.glob(".tmp-*"))
            verify_manifest(output / "checkpoint-4")
            shutil.copytree(output, tmp_path / "moved")  # free space: move the run to a disk with room
        finally:
            subprocess.run(["umount", str(disk)], check=False)
        kind = "tmpfs"
    else:  # no permission to mount: a writer that fails with ENOSPC half way through the optimizer state
        import safetensors.torch

        real = safetensors.torch.save_file

        def full(tensors, filename, metadata=None):
            if "checkpoint-8" in str(filename):
                Path(filename).write_bytes(b"\0" * 100)
                raise OSError(errno.ENOSPC, "No space left on device", str(filename))
            return real(tensors, filename, metadata=metadata)

        monkeypatch.setattr(safetensors.torch, "save_file", full)
        with pytest.raises(ValueError, match="writing checkpoint-8 failed: No space left on device"):
            pretrain(load_recipe(None, fields(data, tmp_path / "moved", save_total_limit=3)))
        monkeypatch.setattr(safetensors.torch, "save_file", real)
        assert [p.name for p in checkpoints(tmp_path / "moved")] == ["checkpoint-4"]
        kind = "fault-injecting writer"
    pretrain(load_recipe(None, fields(data, tmp_path / "moved", save_total_limit=3)))  # resumes from checkpoint-4
    assert losses(tmp_path / "moved") == losses(reference)
    print(f"disk full during a save ({kind}): earlier checkpoints intact, resume equals the uninterrupted run")
