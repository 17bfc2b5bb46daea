"""Damaged and crafted checkpoints: every file of a checkpoint deleted, truncated, garbled or replaced by a pickle
payload (also with a manifest forged to match), an edited step, extra pickles planted: resume refuses with a message
naming the file, and no payload ever runs."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from fixtures.reliability import data, fields, losses  # noqa: F401 - data: fixture

from xlmr_hf.training import CheckpointError, load_recipe, pretrain
from xlmr_hf.training.state import MANIFEST, write_manifest

DAMAGES = ("deleted", "truncated", "garbled", "payload", "payload+forged manifest")
READ_ON_RESUME = {"model.safetensors", "trainer_state.json", "stream_state.json", "run_config.yaml",
                  "training_state/optimizer.safetensors", "training_state/scheduler.json",
                  "training_state/rng_state_0.safetensors"}


class _Payload:
    """Unpickling this creates ``marker``: proof that a load ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture(scope="module")
def finished(data: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    output = tmp_path_factory.mktemp("good") / "run"
    pretrain(load_recipe(None, fields(data, output, max_steps=8)))
    return output


def _damage(checkpoint: Path, name: str, damage: str, marker: Path) -> None:
    path = checkpoint / name
    if damage == "deleted":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])
    elif damage == "garbled":  # same size, a byte flipped in the middle
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))
    else:
        path.write_bytes(pickle.dumps(_Payload(marker)))
        if damage == "payload+forged manifest":
            step = json.loads((checkpoint / MANIFEST).read_text())["step"]
            write_manifest(checkpoint, step)


def _resume(data: dict[str, str], run: Path, checkpoint: Path) -> CheckpointError:  # noqa: F811
    with pytest.raises(CheckpointError) as error:
        pretrain(load_recipe(None, fields(data, run, max_steps=12, resume_from_checkpoint=str(checkpoint))))
    return error.value


def test_every_file_damaged_every_way_is_refused_naming_it(data: dict[str, str], finished: Path,  # noqa: F811
                                                           tmp_path: Path) -> None:
    names = sorted(json.loads((finished / "checkpoint-8" / MANIFEST).read_text())["files"])
    assert READ_ON_RESUME <= set(names)
    marker, cases, refused, ignored = tmp_path / "payload-ran", 0, 0, 0
    for name in names:
        for damage in DAMAGES:
            if name == "trainer_state.json" and damage == "payload+forged manifest":
                continue  # covered below: a forged trainer_state is refused for its step
            run = tmp_path / f"case-{cases}"
            shutil.copytree(finished, run)
            _damage(run / "checkpoint-8", name, damage, marker)
            if damage == "payload+forged manifest" and name not in READ_ON_RESUME:
                # a file resume never reads (the model code, config and tokenizer files: the run's own settings and
                # tokenizer are used) is ignored: the run goes on
                pretrain(load_recipe(None, fields(data, run, max_steps=12,
                                                  resume_from_checkpoint=str(run / "checkpoint-8"))))
                assert sorted(losses(run)) == list(range(1, 13)), name
                ignored += 1
            else:
                message = str(_resume(data, run, run / "checkpoint-8"))
                assert Path(name).name in message, (name, damage, message)
                assert sorted(losses(run)) == list(range(1, 9)), (name, damage)  # nothing was trained or logged
                refused += 1
            assert not marker.exists(), (name, damage)
            cases += 1
    print(f"{cases} damaged checkpoints: {refused} refused naming the file, {ignored} payloads in files resume never "
          "reads ignored; no payload ran")


def test_edited_step_planted_pickles_and_a_missing_manifest_are_refused(
        data: dict[str, str], finished: Path, tmp_path: Path) -> None:  # noqa: F811
    marker = tmp_path / "payload-ran"
    run = tmp_path / "step"
    shutil.copytree(finished, run)
    state = json.loads((run / "checkpoint-8" / "trainer_state.json").read_text())
    (run / "checkpoint-8" / "trainer_state.json").write_text(json.dumps({**state, "step": 4}))
    write_manifest(run / "checkpoint-8", 8)
    assert "the step disagrees: manifest 8, directory name 8, trainer_state.json 4" in str(
        _resume(data, run, run / "checkpoint-8"))
    for planted in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin"):
        run = tmp_path / planted
        shutil.copytree(finished, run)
        torch.save(_Payload(marker), run / "checkpoint-8" / "training_state" / planted)  # what accelerate reads
        message = str(_resume(data, run, run / "checkpoint-8"))
        assert planted in message and "open" in message and "refused" in message, message
        assert not marker.exists()
    run = tmp_path / "no-manifest"
    shutil.copytree(finished, run)
    (run / "checkpoint-8" / MANIFEST).unlink()
    assert "no manifest.json, so it is not a complete checkpoint" in str(_resume(data, run, run / "checkpoint-8"))
