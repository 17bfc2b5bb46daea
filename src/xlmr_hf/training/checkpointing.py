"""Atomic checkpoints of a pretraining run: the model in HF format plus everything needed to resume exactly.

Checkpoints are written into ``.tmp-checkpoint-<step>`` and renamed when complete; the model weights are stored once
(``model.safetensors``, which resume reads back). `prepare_output_dir` applies `run_mlm.py`'s output-directory
rules. The layout is in ``docs/checkpoints.md``.
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

__all__ = ["CheckpointError", "checkpoints", "clear_output_dir", "latest_checkpoint", "load_checkpoint",
           "prepare_output_dir", "save_checkpoint", "store_weights_once", "truncate_metrics"]

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
                    keep: int, card: Any = None) -> Path:
    """Write ``checkpoint-<step>`` atomically (all processes call this), with ``card`` (a `ModelCard`) as README.md;
    returns its path."""
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
        if card is not None:
            card.save(tmp / "README.md")
        (tmp / STREAM_STATE).write_text(json.dumps(stream_state))
        (tmp / "run_config.yaml").write_text(yaml.safe_dump(dict(run_config), sort_keys=False))
        (tmp / TRAINER_STATE).write_text(json.dumps(trainer_state, indent=1))  # last: marks the content complete
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        others = [path for path in checkpoints(root) if path != final]  # the one just written is always kept
        for old in others[:max(0, len(others) - (keep - 1))]:
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


# Files and folders a pretraining run writes into output_dir (removed by overwrite_output_dir).
_RUN_OUTPUTS = ("metrics.jsonl", "run_config.json", "pretrain", ".hub-staging")


def prepare_output_dir(output_dir: str | os.PathLike[str], *, resume_from_checkpoint: str | None,
                       overwrite: bool) -> Path | None:
    """The checkpoint to resume from, by `run_mlm.py`'s rules (every process calls this before anything is written).

    An explicit ``resume_from_checkpoint`` (a directory or ``"latest"``) wins. Otherwise an ``output_dir`` holding a
    complete checkpoint resumes from the newest one, unless ``overwrite`` (then None: the caller clears it with
    `clear_output_dir`); a non-empty ``output_dir`` without one is an error naming it and the flag."""
    root = Path(output_dir)
    if resume_from_checkpoint == "latest":
        return latest_checkpoint(root)
    if resume_from_checkpoint is not None:
        path = Path(resume_from_checkpoint)
        if not path.is_dir():
            raise CheckpointError(f"resume_from_checkpoint={resume_from_checkpoint!r} is not a directory")
        if overwrite and root.resolve() in path.resolve().parents:
            raise CheckpointError(f"overwrite_output_dir=true would delete resume_from_checkpoint="
                                  f"{resume_from_checkpoint!r}, which is inside output_dir={str(root)!r}")
        return path
    if overwrite or not root.is_dir():
        return None
    found = checkpoints(root)
    if found:
        logger.info("output_dir %s holds checkpoints: resuming from the newest, %s (set --overwrite_output_dir true "
                    "to start afresh)", root, found[-1].name)
        return found[-1]
    if any(root.iterdir()):
        raise CheckpointError(f"output_dir={str(root)!r} is not empty and holds no complete checkpoint; set "
                              "--overwrite_output_dir true to start afresh there, or choose another output_dir")
    return None


def clear_output_dir(output_dir: str | os.PathLike[str], *, tokenizer: bool) -> None:
    """Remove what earlier runs wrote into ``output_dir``: checkpoints (complete or not), metrics, the run config,
    tracker logs, Hub staging and, with ``tokenizer``, the tokenizer trained there. Other files are left alone."""
    root = Path(output_dir)
    if not root.is_dir():
        return
    names = [*_RUN_OUTPUTS, *(["tokenizer"] if tokenizer else [])]
    removed = []
    for path in sorted(root.iterdir()):
        if path.name in names or _NAME.match(path.name) or path.name.startswith(".tmp-checkpoint-"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(path.name)
    if removed:
        logger.info("overwrite_output_dir: removed %s from %s", ", ".join(removed), root)


def truncate_metrics(path: str | os.PathLike[str], step: int) -> None:
    """Drop the ``metrics.jsonl`` lines after ``step`` (a resumed run logs those steps again)."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def store_weights_once(accelerator: Any) -> None:
    """Keep `Accelerator.save_state` from writing the model a second time: the checkpoint's ``model.safetensors``
    (written by ``save_pretrained``) is what resume loads. DeepSpeed engines save their own format and are left
    as they are."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return

    def skip_weights(models: list[Any], weights: list[Any], output_dir: str) -> None:
        weights.clear()

    def load_weights(models: list[Any], input_dir: str) -> None:
        for model in models:
            _load_model_weights(getattr(model, "module", model), Path(input_dir).parent)
        models.clear()

    accelerator.register_save_state_pre_hook(skip_weights)
    accelerator.register_load_state_pre_hook(load_weights)


def _load_model_weights(model: Any, checkpoint: Path) -> None:
    """Load ``model.safetensors`` (or its shards) of ``checkpoint`` into ``model``; only tied aliases may be absent."""
    from safetensors.torch import load_file

    index = checkpoint / "model.safetensors.index.json"
    files = (sorted({checkpoint / f for f in json.loads(index.read_text())["weight_map"].values()})
             if index.is_file() else [checkpoint / "model.safetensors"])
    state = {}
    for file in files:
        if not file.is_file():
            raise CheckpointError(f"{str(checkpoint)!r} has no {file.name}: the model weights cannot be restored")
        state.update(load_file(file))
    missing, unexpected = model.load_state_dict(state, strict=False)
    seen, aliases = set(), set()
    for name, param in model.named_parameters(remove_duplicate=False):
        (aliases.add(name) if id(param) in seen else seen.add(id(param)))
    if unexpected or set(missing) - aliases:
        raise CheckpointError(f"{str(checkpoint)!r}: the weights do not fit the model (missing "
                              f"{sorted(set(missing) - aliases)[:5]}, unexpected {sorted(unexpected)[:5]})")
