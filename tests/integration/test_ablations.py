"""``xlmr-hf ablate``: every recipe in recipes/ablations runs end to end in its quick version (tiny model, few steps,
2 seeds) from the command line; the summary statistics, the written files, the recipe errors and the stored results
(which must come from the recipes as committed)."""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path

import pytest

from xlmr_hf.cli import main
from xlmr_hf.training.ablation import AblationError, load_ablation, summarise

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes" / "ablations").glob("*.yaml"))
RESULTS = ROOT / "results" / "ablations"


def test_the_four_ablations_exist() -> None:
    assert [p.stem for p in RECIPES] == ["alpha_tradeoff", "curse_of_multilinguality", "language_embeddings",
                                         "vocabulary_size"]
    for path in RECIPES:
        recipe = load_ablation(path)
        assert recipe.name == path.stem and len(recipe.seeds) >= 3 and len(recipe.variants) >= 2


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_quick_version_runs_end_to_end(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = load_ablation(path)
    out = tmp_path / "results"
    assert main(["ablate", str(path), "--quick", "--output_dir", str(out), "--work_dir", str(tmp_path / "runs")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / f"{recipe.name}.json").read_text(encoding="utf-8"))
    assert (out / f"{recipe.name}.md").read_text(encoding="utf-8") in printed
    assert (out / f"{recipe.name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["quick"] is True and result["seeds"] == [0, 1]
    assert result["recipe_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [(run["variant"], run["seed"]) for run in result["runs"]] == [
        (variant, seed) for variant in recipe.variants for seed in (0, 1)]
    assert all(run["step"] == recipe.quick["max_steps"] for run in result["runs"])
    # the two seeds are different runs (different initialisations and data order)
    for variant in recipe.variants:
        a, b = (run["eval"] for run in result["runs"] if run["variant"] == variant)
        assert a[f"eval/{recipe.metric}"] != b[f"eval/{recipe.metric}"]
    # the summary is the mean and sample std over seeds of the group means of the runs' figures
    for variant, entry in result["summary"].items():
        for group, stats in entry["groups"].items():
            values = [statistics.fmean(run["eval"][f"eval/{recipe.metric}/{lang}"] for lang in stats["languages"])
                      for run in result["runs"] if run["variant"] == variant]
            assert stats["mean"] == pytest.approx(statistics.fmean(values), abs=1e-12)
            assert stats["std"] == pytest.approx(statistics.stdev(values), abs=1e-12)


def test_variants_train_what_they_say(tmp_path: Path) -> None:
    """The curse ablation's variants train on 2, 7 and 10 languages; the vocabulary ablation's on 3 tokenizers."""
    curse = json.loads((RESULTS / "curse_of_multilinguality.json").read_text(encoding="utf-8"))
    evaluated = {run["variant"]: sorted(k.rsplit("/", 1)[1] for k in run["eval"] if k.startswith("eval/loss/"))
                 for run in curse["runs"]}
    assert [len(evaluated[v]) for v in curse["variants"]] == [2, 7, 10]
    vocab = json.loads((RESULTS / "vocabulary_size.json").read_text(encoding="utf-8"))
    assert sorted({run["variant"] for run in vocab["runs"]}) == sorted(vocab["variants"])


def test_vocabulary_ablation_keeps_the_parameter_count() -> None:
    from xlmr_hf.models import XLMRobertaConfig, XLMRobertaForMaskedLM
    from xlmr_hf.training import load_recipe

    recipe = load_ablation(ROOT / "recipes" / "ablations" / "vocabulary_size.yaml")
    counts = []
    for overrides in recipe.variants.values():
        args = load_recipe(recipe.base, {**recipe.overrides, **overrides,
                                         "model_overrides": {**load_recipe(recipe.base).model_overrides,
                                                             **overrides["model_overrides"]}})
        config = XLMRobertaConfig.from_preset(args.model_preset, vocab_size=args.tokenizer_vocab_size,
                                              **args.model_overrides)
        counts.append(sum(p.numel() for p in XLMRobertaForMaskedLM(config).parameters()))
    assert max(counts) / min(counts) < 1.15, counts


def test_summarise_skips_languages_a_variant_did_not_train() -> None:
    recipe = load_ablation(ROOT / "recipes" / "ablations" / "curse_of_multilinguality.yaml")
    runs = [{"variant": "2 languages", "seed": s, "eval": {"eval/loss/en": 1.0 + s, "eval/loss/fr": 3.0}}
            for s in (0, 1)]
    runs += [{"variant": v, "seed": 0, "eval": {"eval/loss/en": 2.0}} for v in ("7 languages", "10 languages")]
    summary = summarise(recipe, runs)
    assert summary["2 languages"]["groups"]["en"] == {"mean": 1.5, "std": pytest.approx(0.7071067811865476),
                                                      "languages": ["en"]}
    assert "fr" not in summary["7 languages"]["groups"] and summary["7 languages"]["groups"]["en"]["std"] == 0.0


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nsteps: 5\n", "'steps'; allowed: base, eval_corpus, groups"),
    ("title: t\nquestion: q\nbase: ../pretrain/debug.yaml\nvariants: {a: {}}\nseeds: [0]\ngroups: {g: [en]}\n",
     "name must be a non-empty string"),
    ("name: a b\ntitle: t\nquestion: q\nbase: ../pretrain/debug.yaml\nvariants: {a: {}, b: {}}\nseeds: [0]\n"
     "groups: {g: [en]}\n", "name must be letters"),
    ("name: x\ntitle: t\nquestion: q\nbase: nowhere.yaml\nvariants: {a: {}, b: {}}\nseeds: [0]\ngroups: {g: [en]}\n",
     "base 'nowhere.yaml' does not exist"),
    ("name: x\ntitle: t\nquestion: q\nbase: ../pretrain/debug.yaml\nvariants: {a: {}}\nseeds: [0]\n"
     "groups: {g: [en]}\n", "variants must map at least two"),
    ("name: x\ntitle: t\nquestion: q\nbase: ../pretrain/debug.yaml\nvariants: {a: {}, b: {}}\nseeds: [0, 0]\n"
     "groups: {g: [en]}\n", "seeds must be a non-empty list of distinct ints"),
    ("name: x\ntitle: t\nquestion: q\nbase: ../pretrain/debug.yaml\nvariants: {a: {}, b: {}}\nseeds: [0]\n"
     "groups: {g: [en]}\nmetric: f1\n", "metric must be one of loss, accuracy, bits_per_char, got 'f1'"),
    ("name: x\ntitle: t\nquestion: q\nbase: ../pretrain/debug.yaml\nvariants: {a: {}, b: {}}\nseeds: [0]\n"
     "groups: []\n", "groups must map group names"),
])
def test_recipe_errors_are_one_line(tmp_path: Path, text: str, message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ablations"
    folder.mkdir()
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "debug.yaml").write_text("max_steps: 1\n", encoding="utf-8")
    path = folder / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AblationError, match=message):
        load_ablation(path)
    assert main(["ablate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.split(",")[0] in err and str(path) in err


def test_missing_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ablate", "nowhere.yaml"]) == 2
    assert "ablation recipe 'nowhere.yaml' does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_stored_results_come_from_the_committed_recipes(path: Path) -> None:
    recipe = load_ablation(path)
    result = json.loads((RESULTS / f"{recipe.name}.json").read_text(encoding="utf-8"))
    assert result["recipe_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), (
        f"{path.name} changed since results/ablations/{recipe.name}.json was made: rerun xlmr-hf ablate {path}")
    assert result["base_sha256"] == hashlib.sha256(recipe.base.read_bytes()).hexdigest()
    assert result["quick"] is False and result["seeds"] == recipe.seeds and len(result["seeds"]) >= 3
    assert [(run["variant"], run["seed"]) for run in result["runs"]] == [
        (variant, seed) for variant in recipe.variants for seed in recipe.seeds]
    assert result["summary"] == summarise(recipe, result["runs"])
    assert (RESULTS / f"{recipe.name}.md").is_file() and (RESULTS / f"{recipe.name}.png").is_file()
    assert sum(run["seconds"] for run in result["runs"]) < 30 * 60  # each ablation trains for at most 30 minutes
