"""kill -9 at seeded moments, mid-save included: every restart of the same command resumes from the newest
checkpoint, and the run ends with exactly the losses of an uninterrupted run."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from fixtures.reliability import data, fields, losses, start_cli  # noqa: F401 - data: fixture

from xlmr_hf.training import checkpoints, load_recipe, pretrain

KILLS = 10


def _wait(predicate, process, deadline: float) -> bool:
    while not predicate():
        if process.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.002)
    return True


def _logged_steps(output: Path) -> int:
    path = output / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_seeded_kills_resume_to_the_uninterrupted_losses(data: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    settings = {"max_steps": 40, "save_steps": 3}
    pretrain(load_recipe(None, fields(data, tmp_path / "reference", **settings)))
    reference = losses(tmp_path / "reference")
    output, log = tmp_path / "killed", tmp_path / "killed.log"
    rng = random.Random(20261204)
    kills, mid_save, deadline = 0, 0, time.time() + 900
    while True:
        process = start_cli(fields(data, output, **settings), log)
        if kills == KILLS:
            assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
            break
        if kills % 3 == 2:  # a kill while a checkpoint is being written
            hit = _wait(lambda: any(output.glob(".tmp-checkpoint-*")), process, deadline)
        else:  # a kill a seeded number of logged steps later (after the first checkpoint exists)
            target = max(_logged_steps(output), 3) + rng.randint(1, 6)
            hit = _wait(lambda t=target: _logged_steps(output) >= t and checkpoints(output), process, deadline)
            time.sleep(rng.uniform(0, 0.05))
        if not hit:  # the run ended (or a save finished) before the moment came: try again
            assert process.poll() in (None, 0), log.read_text()[-3000:]
            if process.poll() == 0:
                break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        mid_save += int(any(output.glob(".tmp-checkpoint-*")))
    assert kills == KILLS and losses(output) == reference
    assert mid_save >= 1, "no kill landed while a checkpoint was being written"
    print(f"{kills} seeded kills, {mid_save} of them mid-save; losses equal the uninterrupted run's")
