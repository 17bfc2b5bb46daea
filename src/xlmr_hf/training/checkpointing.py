"""Atomic checkpoints of a pretraining run: the model in HF format plus everything needed to resume exactly.

Checkpoints are written into ``.tmp-checkpoint-<step>`` and renamed when complete; the model weights are stored once
(``model.safetensors``, which resume reads back). `prepare_output_dir` applies `run_mlm.py`'s output-directory
rules. The layout is in ``docs/checkpoints.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .state import (
    MANIFEST,
    StateError,
    load_json,
    load_optimizer,
    load_rng_state,
    load_tensors,
    load_yaml,
    rng_file,
    save_optimizer,
    save_rng_state,
    scan_pickles,
    verify_manifest,
    write_manifest,
)

__all__ = ["CheckpointError", "Checkpointer", "checkpoints", "clear_output_dir", "latest_checkpoint",
           "prepare_output_dir", "truncate_metrics"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
STREAM_STATE = "stream_state.json"
TRAINING_STATE = "training_state"  # optimizer, scheduler, RNG (and DeepSpeed's shards): never pushed to the Hub


class CheckpointError(ValueError):
    """A checkpoint is missing or incomplete."""


def checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints of ``output_dir``, oldest first."""
    root = Path(output_dir)
    found = []
    if root.is_dir():
        for path in root.iterdir():
            match = _NAME.match(path.name)
            if match and (path / MANIFEST).is_file():
                found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str | os.PathLike[str]) -> Path:
    """The newest complete checkpoint; `CheckpointError` when there is none."""
    found = checkpoints(output_dir)
    if not found:
        raise CheckpointError(f"resume_from_checkpoint='latest' but {str(output_dir)!r} holds no complete "
                              "checkpoint-<step> directory")
    return found[-1]


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Report a failed write as an `OSError` naming ``path``: safetensors (Rust) raises a plain Exception for a full
    disk ("No space left on device (os error 28)")."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    except Exception as error:
        match = re.search(r"^(.*?)\s*\(os error (\d+)\)", str(error))
        code, text = (int(match.group(2)), match.group(1)) if match else (None, str(error))
        raise OSError(code, text, str(path)) from error


@dataclass
class Checkpointer:
    """Writes and restores the checkpoints of one run: every process calls `save` and `load`."""

    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    tokenizer: Any
    output_dir: Path
    keep: int

    @property
    def _deepspeed(self) -> bool:
        from accelerate.utils import DistributedType

        return self.accelerator.distributed_type == DistributedType.DEEPSPEED

    def save(self, step: int, *, stream_state: Mapping[str, Any], trainer_state: Mapping[str, Any],
             run_config: Mapping[str, Any], card: Any = None) -> Path:
        """Write ``checkpoint-<step>`` atomically (with ``card``, a `ModelCard`, as README.md); returns its path. A
        failed write (a full disk, say) leaves the earlier checkpoints as they were and names the file."""
        acc = self.accelerator
        final, tmp = self.output_dir / f"checkpoint-{step}", self.output_dir / f".tmp-checkpoint-{step}"
        if acc.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        acc.wait_for_everyone()
        try:
            self._write_state(tmp, step, stream_state, trainer_state, run_config, card)
            acc.wait_for_everyone()  # every process's files are there: the manifest covers them all
            if acc.is_main_process:
                write_manifest(tmp, step)  # last: a checkpoint without it is never used
                if final.exists():
                    shutil.rmtree(final)
                os.replace(tmp, final)
                self._rotate(final)
        except OSError as error:
            if acc.is_main_process:
                shutil.rmtree(tmp, ignore_errors=True)
            where = f" ({error.filename})" if getattr(error, "filename", None) else ""
            raise CheckpointError(f"writing checkpoint-{step} failed: {error.strerror or error}{where}; the earlier "
                                  "checkpoints are intact") from error
        acc.wait_for_everyone()
        return final

    def _write_state(self, tmp: Path, step: int, stream_state: Mapping[str, Any], trainer_state: Mapping[str, Any],
                     run_config: Mapping[str, Any], card: Any) -> None:
        acc, state = self.accelerator, tmp / TRAINING_STATE
        state.mkdir(parents=True, exist_ok=True)  # every process: each writes its own RNG state there
        if self._deepspeed:  # the engine's own format: module, optimizer shards (scanned, never unpickled, on load)
            with _writing(state / "deepspeed"):
                acc.save_state(str(state / "deepspeed"))
            for stray in (state / "deepspeed").glob(f"random_states_{acc.process_index}.pkl"):
                stray.unlink()  # accelerate's pickled RNG state: ours is rng_state_<rank>.safetensors
        with _writing(state / rng_file(acc.process_index)):
            save_rng_state(state / rng_file(acc.process_index))
        model_state = acc.get_state_dict(self.model)  # consolidated under ZeRO-3 (every process takes part)
        if not acc.is_main_process:
            return
        if not self._deepspeed:
            with _writing(state / "optimizer.safetensors"):
                save_optimizer(self.optimizer, state / "optimizer.safetensors")
        (state / "scheduler.json").write_text(json.dumps(self.scheduler.state_dict()))
        if acc.scaler is not None:
            (state / "scaler.json").write_text(json.dumps(acc.scaler.state_dict()))
        with _writing(tmp / "model.safetensors"):
            acc.unwrap_model(self.model).save_pretrained(tmp, state_dict=model_state, safe_serialization=True)
        with _writing(tmp / "tokenizer.json"):
            self.tokenizer.save_pretrained(tmp)
        if card is not None:
            card.save(tmp / "README.md")
        (tmp / STREAM_STATE).write_text(json.dumps(stream_state))
        (tmp / "run_config.yaml").write_text(yaml.safe_dump(dict(run_config), sort_keys=False))
        (tmp / TRAINER_STATE).write_text(json.dumps(trainer_state, indent=1, allow_nan=False))

    def _rotate(self, final: Path) -> None:
        others = [path for path in checkpoints(self.output_dir) if path != final]  # the one just written is kept
        for old in others[:max(0, len(others) - (self.keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)
            logger.info("removed old checkpoint %s (save_total_limit=%d)", old, self.keep)

    def verify(self, path: Path) -> None:
        """Check ``path`` against its manifest on every process (the main one also hashes every file); if any
        process finds a problem, all of them raise."""
        acc, problem = self.accelerator, None
        try:
            verify_manifest(path, hash_files=acc.is_main_process)
            scan_pickles(sorted((path / TRAINING_STATE).rglob("*")))
            if not (path / TRAINING_STATE / rng_file(acc.process_index)).is_file():
                raise StateError(f"{path / TRAINING_STATE / rng_file(acc.process_index)}: missing; the checkpoint "
                                 "was written by fewer processes than this run has")
        except StateError as error:
            problem = error
        if acc.num_processes > 1:
            import torch

            failed = acc.reduce(torch.tensor([float(problem is not None)], device=acc.device), "sum")
            if float(failed) and problem is None:
                raise CheckpointError(f"resume_from_checkpoint={str(path)!r}: another process found it damaged")
        if problem is not None:
            raise CheckpointError(f"resume_from_checkpoint={str(path)!r}: {problem}") from None

    def read(self, path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Verify ``path``; returns (trainer state, stream state, the run config it was trained with) without
        restoring anything, so that the caller can check its settings first (`restore` then)."""
        path = Path(path)
        self.verify(path)
        try:
            run_config = load_yaml(path / "run_config.yaml")
            if not isinstance(run_config, dict):
                raise StateError(f"{path / 'run_config.yaml'}: not a mapping of settings")
            return load_json(path / TRAINER_STATE), load_json(path / STREAM_STATE), run_config
        except StateError as error:
            raise CheckpointError(f"resume_from_checkpoint={str(path)!r}: {error}") from None

    def restore(self, path: str | os.PathLike[str]) -> None:
        """Restore model, optimizer, scheduler, scaler and this process's RNG from a checkpoint `read` verified."""
        path = Path(path)
        state = path / TRAINING_STATE
        try:
            if self._deepspeed:
                self.accelerator.load_state(str(state / "deepspeed"))  # scanned by `verify`
            else:
                _load_model_weights(self.accelerator.unwrap_model(self.model), path)
                load_optimizer(self.optimizer, state / "optimizer.safetensors")
            self.scheduler.load_state_dict(load_json(state / "scheduler.json"))
            if self.accelerator.scaler is not None and (state / "scaler.json").is_file():
                self.accelerator.scaler.load_state_dict(load_json(state / "scaler.json"))
            load_rng_state(state / rng_file(self.accelerator.process_index))
        except StateError as error:
            raise CheckpointError(f"resume_from_checkpoint={str(path)!r}: {error}") from None


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


def _load_model_weights(model: Any, checkpoint: Path) -> None:
    """Load ``model.safetensors`` (or its shards) of ``checkpoint`` into ``model``; only tied aliases may be absent."""
    index = checkpoint / "model.safetensors.index.json"
    files = (sorted({checkpoint / f for f in json.loads(index.read_text())["weight_map"].values()})
             if index.is_file() else [checkpoint / "model.safetensors"])
    state = {}
    for file in files:
        if not file.is_file():
            raise CheckpointError(f"{str(checkpoint)!r} has no {file.name}: the model weights cannot be restored")
        state.update(load_tensors(file)[0])
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shapes that differ: another model shape
        raise CheckpointError(f"{checkpoint / 'model.safetensors'}: the weights do not fit this model: "
                              f"{' '.join(str(error).split())[:400]}") from None
    seen, aliases = set(), set()
    for name, param in model.named_parameters(remove_duplicate=False):
        (aliases.add(name) if id(param) in seen else seen.add(id(param)))
    if unexpected or set(missing) - aliases:
        raise CheckpointError(f"{str(checkpoint)!r}: the weights do not fit the model (missing "
                              f"{sorted(set(missing) - aliases)[:5]}, unexpected {sorted(unexpected)[:5]})")
