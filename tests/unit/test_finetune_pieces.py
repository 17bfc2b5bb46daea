"""Pieces of `xlmr_hf.training.finetune`: settings, collapse detection, layer freezing, the result tables."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import pytest
import torch

from xlmr_hf.models import XLMRobertaConfig, XLMRobertaForTokenClassification
from xlmr_hf.training import FinetuneArguments, RecipeError, load_recipe
from xlmr_hf.training.finetune import CollapseMonitor, _table, _write, format_results, freeze_lower_layers


@pytest.mark.parametrize(("overrides", "message"), [
    (["--task", "pos"], "task='pos'; allowed: ['xnli', 'ner', 'mlqa']"),
    (["--task", "ner", "--setting", "translate-train"],
     "setting='translate-train' for task ner; allowed: ['en', 'each', 'all']"),
    (["--selection", "best"], "selection='best'; allowed: ['en-dev', 'joint-dev']"),
    (["--bf16", "maybe"], "bf16='maybe'; allowed: 'auto', 'true' or 'false'"),
    (["--freeze_layers", "-1"], "freeze_layers=-1; allowed: an integer >= 0"),
    (["--eval_pairs", "[de-en]"], "eval_pairs=['de-en'] is only for task mlqa, not xnli"),
    (["--task", "mlqa", "--eval_pairs", "[deen]"], "eval_pairs entry 'deen'; allowed: '<context language>-<question"),
    (["--task", "ner", "--ner_dataset", "wikiann"], "ner_dataset=wikiann needs languages"),
    (["--seeds", "[]"], "seeds=[]"),
    (["--learnig_rate", "1e-5"], "unknown field 'learnig_rate' (did you mean 'learning_rate'?)"),
])
def test_bad_settings_name_the_field(overrides: list[str], message: str) -> None:
    with pytest.raises(RecipeError) as error:
        load_recipe(None, overrides, cls=FinetuneArguments)
    assert message in str(error.value)


def test_recipes_load_and_resolve_defaults() -> None:
    root = Path(__file__).resolve().parents[2] / "recipes" / "finetune"
    xnli = load_recipe(root / "xnli.yaml", ["--bf16", "false"], cls=FinetuneArguments)
    assert (xnli.task, xnli.resolved_setting(), xnli.resolved_max_length(), xnli.selection) == \
        ("xnli", "cross-lingual-transfer", 128, "joint-dev")
    assert xnli.bf16 == "false" and xnli.seeds == [1, 2, 3]
    mlqa = load_recipe(root / "mlqa.yaml", ["--task", "mlqa", "--eval_pairs", "[de-en, en-de]"], cls=FinetuneArguments)
    assert (mlqa.resolved_max_length(), mlqa.stride, mlqa.eval_pairs) == (384, 128, ["de-en", "en-de"])
    ner = load_recipe(root / "ner.yaml", ["--task", "ner", "--bf16", "true"], cls=FinetuneArguments)
    assert (ner.resolved_setting(), ner.stride, ner.bf16) == ("en", 32, "true")  # YAML's boolean read as a string


def test_collapse_monitor(caplog: pytest.LogCaptureFixture) -> None:
    monitor = CollapseMonitor(3, "all/seed 1")
    monitor.check_predictions([0, 1, 2, 1, 0, 2, 2, 1])
    monitor.check_predictions([1] * 7)  # too few to judge
    assert monitor.warnings == []
    with caplog.at_level(logging.WARNING):
        monitor.check_predictions([2] * 12)
    assert monitor.warnings[0].startswith("all/seed 1: the selected model predicts class 2 for all 12 dev examples")
    assert "lower learning_rate" in caplog.text
    tags = CollapseMonitor(9, "en/seed 3")
    tags.check_predictions(["O"] * 40, none_label="O", unit="words")
    assert tags.warnings[0].startswith("en/seed 3: the selected model predicts only 'O' (no entity) for all 40 dev words")
    losses = CollapseMonitor(3, "r")
    losses.losses = [1.2, 0.9, 1.0991, 1.0982, 1.0990]  # the last three average 1.0988 ~ ln 3 = 1.0986
    losses.check_loss()
    assert "stuck at ln 3 = 1.0986" in losses.warnings[0]
    learning = CollapseMonitor(3, "r")
    learning.losses = [1.1, 0.8, 0.6, 0.5]
    learning.check_loss()
    assert learning.warnings == []


def test_freeze_lower_layers() -> None:
    config = XLMRobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                              intermediate_size=32, max_position_embeddings=20, num_labels=5)
    model = XLMRobertaForTokenClassification(config)
    assert freeze_lower_layers(model, 0) == 0 and all(p.requires_grad for p in model.parameters())
    frozen = freeze_lower_layers(model, 2)
    expected = sum(p.numel() for p in model.roberta.embeddings.parameters()) + sum(
        p.numel() for layer in model.roberta.encoder.layer[:2] for p in layer.parameters())
    assert frozen == expected
    assert not any(p.requires_grad for p in model.roberta.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in model.roberta.encoder.layer[2].parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    with pytest.raises(RecipeError, match=r"freeze_layers=4; allowed: at most 3"):
        freeze_lower_layers(model, 4)
    with pytest.raises(RecipeError, match="Linear has no base_model.embeddings"):
        freeze_lower_layers(torch.nn.Linear(2, 2), 1)  # type: ignore[arg-type]


def _runs() -> dict:
    def seed(en: float, de: float) -> dict:
        return {"test": {"en": {"accuracy": en}, "de": {"accuracy": de}}, "warnings": []}

    return {"all": {1: seed(80.0, 70.0), 2: seed(84.0, 72.0)}}


def test_table_mean_std_over_seeds_and_writers(tmp_path: Path) -> None:
    table = _table(_runs(), ["accuracy"])
    assert table["en"]["accuracy"]["mean"] == 82.0
    assert table["en"]["accuracy"]["std"] == pytest.approx(math.sqrt(8.0))  # sample std of 80, 84
    assert table["avg"]["accuracy"]["values"] == [75.0, 78.0]  # mean over languages, per seed
    result = {"task": "xnli", "setting": "cross-lingual-transfer", "model": "m", "selection": "joint-dev",
              "seeds": [1, 2], "table": table, "runs": _runs(), "warnings": ["w1"]}
    text = format_results(result, ["accuracy"])
    assert "| metric | en | de | avg |" in text
    assert "| accuracy | 82.0 ± 2.8 | 71.0 ± 1.4 | 76.5 ± 2.1 |" in text
    assert text.endswith("Warnings:\n- w1")
    _write(tmp_path, result, ["accuracy"])
    rows = list(csv.reader((tmp_path / "results.csv").open()))
    assert rows[0] == ["language", "accuracy_mean", "accuracy_std", "seeds"]
    assert rows[1] == ["en", "82.0000", "2.8284", "2"] and rows[3][0] == "avg"
    assert json.loads((tmp_path / "results.json").read_text())["table"]["de"]["accuracy"]["values"] == [70.0, 72.0]
    assert (tmp_path / "results.md").read_text() == text + "\n"
    one = _table({"all": {1: _runs()["all"][1]}}, ["accuracy"])
    assert "| accuracy | 80.0 | 70.0 | 75.0 |" in format_results({**result, "seeds": [1], "table": one},
                                                                  ["accuracy"])
