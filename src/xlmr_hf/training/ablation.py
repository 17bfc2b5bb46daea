"""Ablations: one pretraining recipe run over variants × seeds, summarised as mean ± std per language group.

An ablation recipe (``recipes/ablations/*.yaml``) names a base pretraining recipe, overrides for every run, the
variants (each a set of overrides), the seeds, the reported metric and language groups; ``xlmr-hf ablate RECIPE``
runs it and writes ``<name>.json`` (every run's figures, the summary, the recipes' SHA-256 and the machine),
``<name>.md`` (the table) and ``<name>.png`` (the plot, when matplotlib is installed). See ``docs/ablations.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import re
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .arguments import RecipeError, load_recipe, read_recipe

__all__ = ["METRICS", "AblationError", "AblationRecipe", "load_ablation", "run_ablation", "summarise"]

logger = logging.getLogger(__name__)

METRICS = ("loss", "accuracy", "bits_per_char")
"""The held-out figures an ablation can report (``eval/<metric>/<lang>`` of `evaluate`)."""
EVAL_CORPORA = ("heldout", "codeswitch")
"""Named evaluation corpora: the default corpus's held-out split and its code-switched held-out text."""
_KEYS = {"name", "title", "question", "base", "overrides", "variants", "seeds", "metric", "groups", "eval_corpus",
         "quick", "quick_seeds"}


class AblationError(RecipeError):
    """A bad ablation recipe or option (one line naming the file, the field, the value and what is allowed)."""


@dataclass
class AblationRecipe:
    """A parsed ablation recipe (see the module docstring and ``docs/ablations.md`` for each field)."""

    path: Path
    name: str
    title: str
    question: str
    base: Path
    variants: dict[str, dict[str, Any]]
    seeds: list[int]
    metric: str
    groups: dict[str, list[str]]
    eval_corpus: str = "heldout"
    overrides: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    quick_seeds: list[int] = field(default_factory=lambda: [0, 1])

    @property
    def sha256(self) -> str:
        """SHA-256 of the ablation recipe file's bytes."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def base_sha256(self) -> str:
        """SHA-256 of the base pretraining recipe file's bytes."""
        return hashlib.sha256(self.base.read_bytes()).hexdigest()


def _fail(path: Path, message: str) -> AblationError:
    return AblationError(f"ablation recipe {str(path)!r}: {message}")


def _mapping(path: Path, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {}) or {}
    if not isinstance(value, Mapping):
        raise _fail(path, f"{key} must be a mapping of pretraining fields, got {value!r}")
    return dict(value)


def _seeds(path: Path, value: Any, key: str) -> list[int]:
    bad = not isinstance(value, list) or not value or len(set(map(repr, value))) != len(value)
    if bad or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value):
        raise _fail(path, f"{key} must be a non-empty list of distinct ints >= 0, got {value!r}")
    return list(value)


def _variants(path: Path, raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    variants = raw.get("variants")
    if not isinstance(variants, Mapping) or len(variants) < 2:
        raise _fail(path, f"variants must map at least two variant names to field overrides, got {variants!r}")
    for name, overrides in variants.items():
        if not isinstance(overrides, Mapping):
            raise _fail(path, f"variant {name!r} must be a mapping of pretraining fields, got {overrides!r}")
    return {str(name): dict(overrides) for name, overrides in variants.items()}


def _groups(path: Path, raw: Mapping[str, Any]) -> dict[str, list[str]]:
    groups = raw.get("groups")
    if not isinstance(groups, Mapping) or not groups or any(
            not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v) for v in groups.values()):
        raise _fail(path, f"groups must map group names to non-empty lists of languages, got {groups!r}")
    return {str(name): list(languages) for name, languages in groups.items()}


def load_ablation(path: str | Path) -> AblationRecipe:
    """Parse and check an ablation recipe; the base recipe path is relative to the ablation recipe's directory."""
    path = Path(path)
    if not path.is_file():
        raise AblationError(f"ablation recipe {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise _fail(path, f"not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, Mapping):
        raise _fail(path, f"must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise _fail(path, f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(_KEYS))}")
    for key in ("name", "title", "question", "base"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _fail(path, f"{key} must be a non-empty string, got {raw.get(key)!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", raw["name"]):
        raise _fail(path, "name must be letters, digits, '_', '.' or '-' (it names the result files), got "
                          f"{raw['name']!r}")
    base = (path.parent / raw["base"]).resolve()
    if not base.is_file():
        raise _fail(path, f"base {raw['base']!r} does not exist (looked for {str(base)!r})")
    metric = raw.get("metric", "loss")
    if metric not in METRICS:
        raise _fail(path, f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    eval_corpus = raw.get("eval_corpus", "heldout")
    if not isinstance(eval_corpus, str) or not eval_corpus:
        raise _fail(path, f"eval_corpus must be {' or '.join(EVAL_CORPORA)} or a directory, got {eval_corpus!r}")
    return AblationRecipe(path=path, name=raw["name"], title=raw["title"], question=raw["question"].strip(), base=base,
                          variants=_variants(path, raw), seeds=_seeds(path, raw.get("seeds"), "seeds"), metric=metric,
                          groups=_groups(path, raw), eval_corpus=eval_corpus,
                          overrides=_mapping(path, raw, "overrides"), quick=_mapping(path, raw, "quick"),
                          quick_seeds=_seeds(path, raw.get("quick_seeds", [0, 1]), "quick_seeds"))


def _eval_corpus(name: str) -> str:
    from ..data import default_codeswitch_dir, default_heldout_dir

    if name == "heldout":
        return str(default_heldout_dir())
    if name == "codeswitch":
        return str(default_codeswitch_dir())
    return name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "variant"


class AblationRunner:
    """Runs an `AblationRecipe`: one shared tokenizer per distinct tokenizer setting, then every variant × seed."""

    def __init__(self, recipe: AblationRecipe, *, work_dir: Path, quick: bool = False,
                 seeds: Sequence[int] | None = None) -> None:
        self.recipe, self.work_dir, self.quick = recipe, Path(work_dir), quick
        self.seeds = list(seeds) if seeds is not None else (recipe.quick_seeds if quick else recipe.seeds)
        self.base = read_recipe(recipe.base)
        self.tokenizers: dict[tuple[Any, ...], str] = {}

    def run_values(self, variant: str, seed: int) -> dict[str, Any]:
        """The pretraining fields of one run: base recipe < overrides < quick (with ``--quick``) < variant < seed."""
        values: dict[str, Any] = {}
        for layer in (self.recipe.overrides, self.recipe.quick if self.quick else {}, self.recipe.variants[variant]):
            for key, value in layer.items():
                merge = isinstance(value, Mapping) and isinstance(values.get(key, self.base.get(key)), Mapping)
                values[key] = {**values.get(key, self.base.get(key)), **value} if merge else value
        values.update(seed=seed, output_dir=str(self.work_dir / _slug(variant) / f"seed-{seed}"),
                      overwrite_output_dir=True, eval_corpus=_eval_corpus(self.recipe.eval_corpus))
        return values

    def tokenizer_for(self, args: Any) -> str:
        """A tokenizer trained once per (corpus, vocabulary size, seq_len) on every language of the corpus, so that
        variants which differ in languages or α share one vocabulary."""
        from ..data import default_corpus_dir
        from ..tokenization import TokenizerTrainingConfig, train_tokenizer

        corpus = args.corpus if args.corpus is not None else str(default_corpus_dir())
        key = (corpus, args.tokenizer_vocab_size, args.seq_len)
        if key not in self.tokenizers:
            directory = self.work_dir / "tokenizers" / f"vocab-{args.tokenizer_vocab_size}"
            logger.info("training the ablation's %d-piece tokenizer into %s", args.tokenizer_vocab_size, directory)
            train_tokenizer(corpus, directory, TokenizerTrainingConfig(
                vocab_size=args.tokenizer_vocab_size, seed=0, heldout_sentences=0, model_max_length=args.seq_len),
                progress=False, overwrite=True)
            self.tokenizers[key] = str(directory)
        return self.tokenizers[key]

    def run_one(self, variant: str, seed: int) -> dict[str, Any]:
        """Pretrain one variant with one seed; its held-out figures and time."""
        from .pretrain import pretrain

        values = self.run_values(variant, seed)
        args = load_recipe(self.recipe.base, values)
        if args.tokenizer is None and args.model_name_or_path is None:
            args = load_recipe(self.recipe.base, {**values, "tokenizer": self.tokenizer_for(args)})
        started = time.perf_counter()
        result = pretrain(args)
        return {"variant": variant, "seed": seed, "seconds": round(time.perf_counter() - started, 1),
                "step": result["step"], "train_loss": result["loss"], "eval": result["eval_after"],
                "baseline_accuracy": result["eval_baseline"]}

    def run(self) -> list[dict[str, Any]]:
        from tqdm.auto import tqdm

        jobs = [(variant, seed) for variant in self.recipe.variants for seed in self.seeds]
        runs = []
        for variant, seed in tqdm(jobs, desc=f"ablation {self.recipe.name}"):
            runs.append(self.run_one(variant, seed))
            logger.info("%s seed %d: %s", variant, seed, _brief(runs[-1], self.recipe.metric))
        return runs


def _brief(run: Mapping[str, Any], metric: str) -> str:
    figures = run["eval"] or {}
    return f"eval/{metric} {figures.get(f'eval/{metric}', float('nan')):.4f} in {run['seconds']} s"


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(recipe: AblationRecipe, runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per variant: mean ± std over seeds of the metric for each group (the mean over its languages) and language.

    A group's languages missing from a run's evaluation (a variant that did not train on them) are skipped; a group
    with none of its languages in a variant is left out of that variant."""
    summary: dict[str, Any] = {}
    for variant in recipe.variants:
        mine = [run for run in runs if run["variant"] == variant]
        languages = sorted({key.rsplit("/", 1)[1] for run in mine for key in run["eval"]
                            if key.startswith(f"eval/{recipe.metric}/")})
        entry: dict[str, Any] = {"groups": {}, "languages": {}}
        for lang in languages:
            entry["languages"][lang] = _mean_std([run["eval"][f"eval/{recipe.metric}/{lang}"] for run in mine])
        for group, members in recipe.groups.items():
            present = [lang for lang in members if lang in languages]
            if present:
                entry["groups"][group] = _mean_std([
                    statistics.fmean(run["eval"][f"eval/{recipe.metric}/{lang}"] for lang in present) for run in mine])
                entry["groups"][group]["languages"] = present
        summary[variant] = entry
    return summary


def _machine() -> dict[str, Any]:
    import torch

    from .. import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__, "xlmr_hf": __version__,
            "python": platform.python_version()}


def markdown_report(result: Mapping[str, Any]) -> str:
    """The results table (mean ± std over seeds) with the recipe, its hash and the machine."""
    groups, metric, machine = list(result["groups"]), result["metric"], result["machine"]
    lines = [f"# {result['title']}", "", result["question"], "",
             f"Held-out {metric.replace('_', ' ')} (mean ± std over seeds {result['seeds']}); lower is better"
             if metric != "accuracy" else f"Held-out accuracy (mean ± std over seeds {result['seeds']})", "",
             "| variant | " + " | ".join(groups) + " | seconds per run |",
             "|---|" + "---|" * (len(groups) + 1)]
    for variant, entry in result["summary"].items():
        cells = [f"{entry['groups'][g]['mean']:.4f} ± {entry['groups'][g]['std']:.4f}" if g in entry["groups"] else "—"
                 for g in groups]
        seconds = statistics.fmean(run["seconds"] for run in result["runs"] if run["variant"] == variant)
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    lines += ["", "Groups: " + "; ".join(f"{g} = {', '.join(m)}" for g, m in result["groups"].items()) + ".", "",
              f"Recipe `{result['recipe']}` (sha256 `{result['recipe_sha256'][:16]}…`), base `{result['base_recipe']}` "
              f"(sha256 `{result['base_sha256'][:16]}…`){' — quick mode' if result['quick'] else ''}; "
              f"{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}.",
              ""]
    return "\n".join(lines)


def plot(result: Mapping[str, Any], path: Path) -> bool:
    """Plot each group's metric per variant with std error bars into ``path``; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (the notebooks extra): no plot written")
        return False
    variants = list(result["summary"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for group in result["groups"]:
        xs = [i for i, v in enumerate(variants) if group in result["summary"][v]["groups"]]
        means = [result["summary"][variants[i]]["groups"][group]["mean"] for i in xs]
        stds = [result["summary"][variants[i]]["groups"][group]["std"] for i in xs]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=4, label=group)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel(f"held-out {result['metric'].replace('_', ' ')}")
    ax.set_title(result["title"], fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return True


def run_ablation(recipe: AblationRecipe | str | Path, *, output_dir: str | Path = "results/ablations",
                 work_dir: str | Path | None = None, quick: bool = False,
                 seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """Run every variant × seed of ``recipe``, write ``<name>.json``, ``<name>.md`` and ``<name>.png`` into
    ``output_dir`` and return the JSON's content. ``quick`` applies the recipe's ``quick`` overrides and seeds (a
    smoke version: a tiny model, few steps); ``seeds`` replaces the seeds."""
    recipe = recipe if isinstance(recipe, AblationRecipe) else load_ablation(recipe)
    output_dir = Path(output_dir)
    work = Path(work_dir) if work_dir is not None else Path("runs") / "ablations" / recipe.name
    runner = AblationRunner(recipe, work_dir=work, quick=quick, seeds=seeds)
    runs = runner.run()
    root = Path.cwd()
    result = {
        "name": recipe.name, "title": recipe.title, "question": recipe.question,
        "recipe": _relative(recipe.path, root), "recipe_sha256": recipe.sha256,
        "base_recipe": _relative(recipe.base, root), "base_sha256": recipe.base_sha256,
        "quick": quick, "seeds": runner.seeds, "metric": recipe.metric, "eval_corpus": recipe.eval_corpus,
        "groups": recipe.groups, "variants": recipe.variants, "machine": _machine(),
        "runs": [_finite(run) for run in runs], "summary": summarise(recipe, runs),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{recipe.name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")
    (output_dir / f"{recipe.name}.md").write_text(markdown_report(result), encoding="utf-8")
    plot(result, output_dir / f"{recipe.name}.png")
    return result


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _finite(run: Mapping[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: non-finite floats become None."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items()}
        return value
    return {k: clean(v) for k, v in run.items()}
