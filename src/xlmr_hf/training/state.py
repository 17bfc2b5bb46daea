"""Training state that loading cannot execute, and the checkpoint manifest. Optimizer tensors go to safetensors (the
rest of its state as JSON metadata), the scheduler and loss scaler to JSON, each process's RNG states (Python, numpy,
torch CPU and CUDA) to safetensors; ``manifest.json`` records every file's size and sha256 and the step, and resume
verifies it. DeepSpeed's own shards are pickles: they are scanned (never unpickled) and refused when they name
anything beyond plain data and three DeepSpeed types. See ``docs/checkpoints.md``."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["MANIFEST", "StateError", "load_json", "load_optimizer", "load_rng_state", "load_tensors", "load_yaml",
           "rng_file",
           "save_optimizer", "save_rng_state", "scan_pickles", "verify_manifest", "write_manifest"]

MANIFEST = "manifest.json"
_FORMAT = 1
_NOT_HASHED = {MANIFEST, "README.md"}  # the card may be edited by hand; it is not training state
# Globals DeepSpeed's ZeRO optimizer shards name besides plain data (what `torch.load(weights_only=True)` allows);
# each is plain data too (an Enum, a dataclass, a class without __setstate__).
_DEEPSPEED_GLOBALS = {"deepspeed.runtime.zero.config.ZeroStageEnum",
                      "deepspeed.utils.tensor_fragment.fragment_address",
                      "deepspeed.runtime.fp16.loss_scaler.LossScaler",
                      "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler"}
_PICKLED = (".pt", ".bin", ".pkl", ".pth")


class StateError(ValueError):
    """A checkpoint file is missing, damaged or unsafe; the message names the file and what is wrong."""


def rng_file(rank: int) -> str:
    return f"rng_state_{rank}.safetensors"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(directory: str | os.PathLike[str], step: int) -> Path:
    """``manifest.json``: every file of ``directory`` (but the card) with its size and sha256, and ``step``."""
    root = Path(directory)
    files = {path.relative_to(root).as_posix(): {"size": path.stat().st_size, "sha256": _sha256(path)}
             for path in sorted(root.rglob("*")) if path.is_file() and path.name not in _NOT_HASHED}
    out = root / MANIFEST
    out.write_text(json.dumps({"format": _FORMAT, "step": step, "files": files}, indent=1), encoding="utf-8")
    return out


def load_json(path: Path) -> Any:
    """A JSON file; a damaged one is a `StateError` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StateError(f"{path}: not readable JSON ({type(error).__name__}: {error})") from None


def load_yaml(path: Path) -> Any:
    """A YAML file (safe loader); a damaged one is a `StateError` naming it."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise StateError(f"{path}: not readable YAML ({type(error).__name__}: {' '.join(str(error).split())})") \
            from None


def verify_manifest(directory: str | os.PathLike[str], *, hash_files: bool = True) -> dict[str, Any]:
    """Check ``directory`` against its manifest (sizes always, sha256 with ``hash_files``) and that the step in the
    manifest, the directory name and ``trainer_state.json`` agree; returns the manifest."""
    root = Path(directory)
    if not (root / MANIFEST).is_file():
        raise StateError(f"{root}: no {MANIFEST}, so it is not a complete checkpoint (written by an interrupted save, "
                         "or by an xlmr-hf without manifests)")
    manifest = load_json(root / MANIFEST)
    if not isinstance(manifest, Mapping) or manifest.get("format") != _FORMAT or not isinstance(
            manifest.get("files"), Mapping) or not isinstance(manifest.get("step"), int):
        raise StateError(f"{root / MANIFEST}: not a manifest of format {_FORMAT} (files, step)")
    for name, info in manifest["files"].items():
        path = root / name
        if not path.is_file():
            raise StateError(f"{path}: missing (the manifest lists it)")
        size = path.stat().st_size
        if size != info.get("size"):
            raise StateError(f"{path}: {size} bytes, the manifest says {info.get('size')} (truncated or replaced)")
        if hash_files and _sha256(path) != info.get("sha256"):
            raise StateError(f"{path}: its sha256 differs from the manifest's (the file was changed or damaged)")
    step = manifest["step"]
    named = root.name.rsplit("-", 1)[-1]
    trainer_state = load_json(root / "trainer_state.json") if (root / "trainer_state.json").is_file() else {}
    if named != str(step) or trainer_state.get("step") != step:
        raise StateError(f"{root}: the step disagrees: manifest {step}, directory name {named}, trainer_state.json "
                         f"{trainer_state.get('step')!r}")
    return manifest


def scan_pickles(paths: Iterable[Path]) -> None:
    """Refuse pickled files (DeepSpeed's shards) that name globals beyond plain data and DeepSpeed's own types,
    reading their opcodes only: nothing in them runs."""
    from torch.serialization import get_unsafe_globals_in_checkpoint

    for path in paths:
        if path.suffix not in _PICKLED:
            continue
        try:
            unsafe = set(get_unsafe_globals_in_checkpoint(str(path)))
        except Exception as error:  # noqa: BLE001 -- any parse failure: not a torch checkpoint
            raise StateError(f"{path}: not a readable torch file ({type(error).__name__}: {error})") from None
        if unsafe - _DEEPSPEED_GLOBALS:
            raise StateError(f"{path}: refers to {sorted(unsafe - _DEEPSPEED_GLOBALS)}, which loading would run; "
                             "refused (only plain data and DeepSpeed's optimizer types are loaded)")


def save_optimizer(optimizer: Any, path: Path) -> None:
    """An optimizer's state: its tensors in safetensors, the rest (param groups, scalars) as JSON metadata."""
    from safetensors.torch import save_file

    state_dict = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    metadata = {"param_groups": json.dumps(state_dict["param_groups"]), "scalars": json.dumps(scalars)}
    save_file(tensors, str(path), metadata=metadata)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 -- not a dict
            return tensors, dict(handle.metadata() or {})
    except Exception as error:  # noqa: BLE001 -- SafetensorError and friends: name the file
        raise StateError(f"{path}: not a readable safetensors file ({type(error).__name__}: {error})") from None


def load_optimizer(optimizer: Any, path: Path) -> None:
    """Restore `save_optimizer`'s file into ``optimizer``."""
    tensors, metadata = load_tensors(path)
    try:
        groups, scalars = json.loads(metadata["param_groups"]), json.loads(metadata["scalars"])
    except (KeyError, json.JSONDecodeError) as error:
        raise StateError(f"{path}: its metadata lacks the optimizer's param groups ({error})") from None
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = tensor
    for index, values in scalars.items():
        state.setdefault(int(index), {}).update(values)
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as error:
        raise StateError(f"{path}: does not fit this optimizer ({error})") from None


def save_rng_state(path: Path) -> None:
    """This process's RNG states: torch CPU and CUDA as tensors, Python's and numpy's as JSON metadata."""
    from safetensors.torch import save_file

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    metadata = {"python": json.dumps([version, list(internal), gauss]),
                "numpy": json.dumps([kind, keys.tolist(), int(pos), int(has_gauss), float(cached)])}
    save_file(tensors, str(path), metadata=metadata)


def load_rng_state(path: Path) -> None:
    """Restore `save_rng_state`'s file (every state, or a `StateError` naming the file)."""
    tensors, metadata = load_tensors(path)
    try:
        version, internal, gauss = json.loads(metadata["python"])
        kind, keys, pos, has_gauss, cached = json.loads(metadata["numpy"])
        random.setstate((version, tuple(internal), gauss))
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(tensors["torch_cpu"])
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        raise StateError(f"{path}: not a complete RNG state ({type(error).__name__}: {error})") from None
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
