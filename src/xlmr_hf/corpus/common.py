"""Helpers shared by the corpus builders (`xlmr_hf.corpus.cleaning` in one process, `xlmr_hf.corpus.distributed` on
datatrove executors): input resolution, the output-directory check, the perplexity set-up and cache keys."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .lid import (
    KenLMScorerFactory,
    LanguageIdentifier,
    ScorerFactory,
    load_perplexity_cutoffs,
)
from .readers import SUPPORTED_SUFFIXES, CorpusBuildError, compression_of, detect_format

__all__ = ["InputFile", "check_output_dir", "digest", "language_identifier", "perplexity_setup", "resolve_inputs"]


@dataclass
class InputFile:
    """One input of a build: its position in the input order, path, format, compression, size and mtime."""

    index: int
    path: Path
    format: str
    compression: str | None
    size: int
    mtime_ns: int



def digest(obj: Any) -> str:
    """A short SHA-256 of ``obj`` as sorted JSON: the key of cached work."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:32]



def resolve_inputs(inputs: Sequence[str | os.PathLike], input_format: str, output_dir: Path) -> list[InputFile]:
    """The input files in order: files as given, directories expanded to their supported files (sorted, never the
    build's own output); one-line `CorpusBuildError` for a missing input, an empty directory or a file listed twice."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():  # every supported file below it, sorted
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SUPPORTED_SUFFIXES)
                           and not p.resolve().is_relative_to(output_dir.resolve()))  # never our own outputs
            if not found:
                raise CorpusBuildError(f"input directory {str(item)!r} holds no file ending in "
                                       f"{', '.join(SUPPORTED_SUFFIXES)}")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise CorpusBuildError(f"input {str(item)!r} does not exist")
    if not paths:
        raise CorpusBuildError("no inputs given")
    seen: set[Path] = set()
    specs = []
    for index, path in enumerate(paths):
        if path.resolve() in seen:
            raise CorpusBuildError(f"input {str(path)!r} is listed twice (dedup would empty the second copy)")
        seen.add(path.resolve())
        fmt, compression = detect_format(path) if input_format == "auto" else (input_format, compression_of(path))
        stat = path.stat()
        specs.append(InputFile(index, path, fmt, compression, stat.st_size, stat.st_mtime_ns))
    return specs



def perplexity_setup(config: Any, factory: ScorerFactory | None) -> tuple[Any, Any, Any]:
    """``(scorer factory, cutoffs, fingerprint)`` of the perplexity stage of ``config`` (all None when it is off)."""
    if not config.perplexity_enabled:
        return None, None, None
    if factory is None:
        if config.kenlm_models is None:
            raise CorpusBuildError("max_perplexity / perplexity_cutoffs need kenlm_models (a directory of "
                                   "<lang>.arpa.bin files or a mapping language -> file) or a scorer_factory")
        KenLMScorerFactory.require_kenlm()
        factory = KenLMScorerFactory(config.kenlm_models)
    cutoffs = None
    if isinstance(config.perplexity_cutoffs, str):
        cutoffs = load_perplexity_cutoffs(config.perplexity_cutoffs, tuple(config.perplexity_percentiles))
    elif config.perplexity_cutoffs is not None:
        cutoffs = {str(k): (float(v[0]), float(v[1])) for k, v in config.perplexity_cutoffs.items()}
    fingerprint = getattr(factory, "fingerprint", None) or f"unreusable-{uuid.uuid4().hex}"
    return factory, cutoffs, fingerprint



def check_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, clear) an output directory holding files no earlier build wrote there."""
    if not output_dir.is_dir():
        return
    if overwrite:
        for path in output_dir.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return
    ours = {"manifest.json", ".work", ".work-datatrove", "metadata.jsonl"}
    manifest = output_dir / "manifest.json"
    if manifest.is_file():
        try:
            ours |= {o["path"].split("/")[0] for o in json.loads(manifest.read_text(encoding="utf-8"))["outputs"]}
        except (ValueError, KeyError, TypeError):
            raise CorpusBuildError(f"{manifest}: not a build manifest; choose an empty output directory or set "
                                   "overwrite (--overwrite true) to clear it") from None
    foreign = sorted(path.name for path in output_dir.iterdir() if path.name not in ours)
    if foreign:
        raise CorpusBuildError(f"output directory {str(output_dir)!r} holds files no earlier build wrote there "
                               f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); choose an empty "
                               "directory or set overwrite (--overwrite true), which clears it first")


def language_identifier(config: Any) -> LanguageIdentifier:
    """The LID model of ``config``, after checking that every code of ``config.languages`` is one of its labels."""
    identifier = LanguageIdentifier(config.lid_model, config.line_joiner)
    if config.languages is not None:
        unknown = [c for c in config.languages if c not in identifier.labels]
        if unknown:
            raise CorpusBuildError(f"languages: {', '.join(map(repr, unknown))} are not labels of "
                                   f"{identifier.model_path} (it has {len(identifier.labels)}; see "
                                   "xlmr_hf.corpus.LID176_LANGUAGES or xlmr-hf build-corpus --list-languages)")
    return identifier
