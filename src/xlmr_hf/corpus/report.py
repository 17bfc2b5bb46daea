"""The report of `build_corpus`: per-stage counts (`StageCounts`) and the whole run (`CorpusBuildReport`, written as
``manifest.json``). Re-exported by `xlmr_hf.corpus.cleaning`, where the builder fills them in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LANGUAGE_KEYS", "CorpusBuildReport", "StageCounts"]


@dataclass
class StageCounts:
    """Documents and paragraphs entering, removed by and leaving one stage (``out = in - removed + added``; only
    paragraph-level LID adds documents, by splitting one into one per language)."""

    name: str
    enabled: bool = True
    documents_in: int = 0
    paragraphs_in: int = 0
    documents_removed: int = 0
    paragraphs_removed: int = 0
    documents_added: int = 0
    documents_out: int = 0
    paragraphs_out: int = 0
    details: dict[str, int] = field(default_factory=dict)

    def add(self, other: Mapping[str, Any]) -> None:
        for key in ("documents_in", "paragraphs_in", "documents_removed", "paragraphs_removed", "documents_added",
                    "documents_out", "paragraphs_out"):
            setattr(self, key, getattr(self, key) + other.get(key, 0))
        for key, value in other.get("details", {}).items():
            self.details[key] = self.details.get(key, 0) + value


LANGUAGE_KEYS = ("identified_documents", "identified_paragraphs", "below_threshold_documents",
                  "below_threshold_paragraphs", "not_selected_documents", "not_selected_paragraphs",
                  "perplexity_removed_documents", "perplexity_removed_paragraphs", "documents", "paragraphs",
                  "characters", "bytes")


@dataclass
class CorpusBuildReport:
    """What `build_corpus` did; ``to_dict()`` is ``manifest.json``, ``format_table()`` the CLI summary."""

    output_dir: str
    settings: dict[str, Any]
    lid_model: dict[str, Any]
    stages: list[StageCounts]
    languages: dict[str, dict[str, Any]]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    environment: dict[str, Any]
    elapsed_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Wall seconds of ``setup``, ``pass1`` (hashing + resolution), ``pass2`` (filter + LID + compression), ``merge``."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorpusBuildReport:
        """The report of a ``manifest.json`` (`to_dict`'s output)."""
        fields_ = {k: v for k, v in data.items() if k not in ("format", "version", "totals")}
        stages = [StageCounts(**stage) for stage in fields_.pop("stages")]
        return cls(stages=stages, **fields_)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"format": "xlmr-hf build-corpus manifest", "version": 1, **data}
        data["totals"] = self.totals()
        return data

    def totals(self) -> dict[str, int]:
        status = [i["status"] for i in self.inputs]
        last = self.stages[-1]
        return {"inputs": len(self.inputs), "inputs_failed": status.count("error"), "inputs_reused": status.count("reused"),
                "inputs_empty": sum(1 for i in self.inputs if i["status"] != "error" and i["documents"] == 0),
                "documents_read": self.stages[0].documents_in, "paragraphs_read": self.stages[0].paragraphs_in,
                "documents_out": last.documents_out, "paragraphs_out": last.paragraphs_out,
                "languages": len(self.languages), "bytes_out": sum(o["bytes"] for o in self.outputs)}

    def format_table(self) -> str:
        lines = [(f"{'stage':<24}{'docs in':>11}{'removed':>11}{'docs out':>11}{'paras in':>12}{'removed':>11}"
                 f"{'paras out':>12}  notes")]
        for s in self.stages:
            notes = ", ".join(f"{k} {v:,}" for k, v in s.details.items() if v) + ("" if s.enabled else "off")
            if s.documents_added:
                notes = f"+{s.documents_added:,} docs from per-language split" + (f", {notes}" if notes else "")
            lines.append(f"{s.name:<24}{s.documents_in:>11,}{s.documents_removed:>11,}{s.documents_out:>11,}"
                         f"{s.paragraphs_in:>12,}{s.paragraphs_removed:>11,}{s.paragraphs_out:>12,}  {notes}")
        lines.append("")
        lines.append(f"{'language':<10}{'documents':>11}{'paragraphs':>12}{'characters':>14}  files")
        for lang, c in sorted(self.languages.items(), key=lambda kv: (-kv[1]["characters"], kv[0])):
            if c["documents"]:
                files = ", ".join(o["path"] for o in self.outputs if o["language"] == lang)
                lines.append(f"{lang:<10}{c['documents']:>11,}{c['paragraphs']:>12,}{c['characters']:>14,}  {files}")
        t = self.totals()
        lines.append("")
        lines.append(f"inputs: {t['inputs']} ({t['inputs_reused']} reused from an earlier run, {t['inputs_failed']} "
                     f"failed, {t['inputs_empty']} empty); {t['languages']} languages; {t['bytes_out']:,} bytes of text "
                     f"in {len(self.outputs)} files; {self.elapsed_seconds:.1f} s")
        lines.extend(f"  failed: {i['path']}: {i['error']}" for i in self.inputs if i["status"] == "error")
        lines.append(f"manifest: {Path(self.output_dir) / 'manifest.json'}")
        return "\n".join(lines)
