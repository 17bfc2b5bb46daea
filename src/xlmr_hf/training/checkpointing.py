"""Atomic checkpoints of a pretraining run: the model in HF format plus everything needed to resume exactly.

Layout of ``<output_dir>/checkpoint-<step>/``::

    config.json, model.safetensors      our XLMRobertaForMaskedLM (Auto classes, `from_pretrained` works)
    tokenizer files                      the run's tokenizer
    accelerate/                          `Accelerator.save_state`: optimizer, scheduler, RNG of every process
                                         (and the ZeRO shards under DeepSpeed)
    stream_state.json                    `PretrainingStream.state_dict()` (the same on every rank)
    trainer_state.json                   step, tokens, per-language token counts; written last = "complete"
    run_config.yaml                      the resolved `PretrainArguments`

A checkpoint is written into ``.tmp-checkpoint-<step>`` and renamed when complete, so a process killed while writing
leaves the previous checkpoints intact and no half-written ``checkpoint-*``; `latest_checkpoint` only considers
directories holding ``trainer_state.json``. After each save the oldest checkpoints beyond ``keep`` are removed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CheckpointError", "checkpoints", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
STREAM_STATE = "stream_state.json"


class CheckpointError(ValueError):
    """A checkpoint is missing or incomplete."""


def checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints of ``output_dir``, oldest first."""
    root = Path(output_dir)
    found = []
    if root.is_dir():
        for path in root.iterdir():
            match = _NAME.match(path.name)
            if match and (path / TRAINER_STATE).is_file():
                found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str | os.PathLike[str]) -> Path:
    """The newest complete checkpoint; `CheckpointError` when there is none."""
    found = checkpoints(output_dir)
    if not found:
        raise CheckpointError(f"resume_from_checkpoint='latest' but {str(output_dir)!r} holds no complete "
                              "checkpoint-<step> directory")
    return found[-1]


def save_checkpoint(accelerator: Any, model: Any, tokenizer: Any, output_dir: str | os.PathLike[str], step: int,
                    stream_state: Mapping[str, Any], trainer_state: Mapping[str, Any], run_config: Mapping[str, Any],
                    keep: int) -> Path:
    """Write ``checkpoint-<step>`` atomically (all processes call this); returns its path."""
    root = Path(output_dir)
    final, tmp = root / f"checkpoint-{step}", root / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    # Every process creates the directory: under DeepSpeed each writes its RNG state there before the main one does.
    (tmp / "accelerate").mkdir(parents=True, exist_ok=True)
    accelerator.save_state(str(tmp / "accelerate"))
    state_dict = accelerator.get_state_dict(model)  # consolidated under ZeRO-3 (every process must take part)
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / STREAM_STATE).write_text(json.dumps(stream_state))
        (tmp / "run_config.yaml").write_text(yaml.safe_dump(dict(run_config), sort_keys=False))
        (tmp / TRAINER_STATE).write_text(json.dumps(trainer_state, indent=1))  # last: marks the content complete
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
            logger.info("removed old checkpoint %s (save_total_limit=%d)", old, keep)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Any, path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore model/optimizer/scheduler/RNG (via `Accelerator.load_state`); returns (trainer state, stream state)."""
    path = Path(path)
    if not (path / TRAINER_STATE).is_file():
        raise CheckpointError(f"resume_from_checkpoint={str(path)!r} is not a complete checkpoint (no {TRAINER_STATE})")
    accelerator.load_state(str(path / "accelerate"))
    return json.loads((path / TRAINER_STATE).read_text()), json.loads((path / STREAM_STATE).read_text())
