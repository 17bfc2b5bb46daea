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
from xlmr_hf.training.finetune import (
    CollapseMonitor,
    _table,
    _write,
    format_results,
    freeze_lower_layers,
)


@pytest.mark.parametrize(("task", "overrides", "message"), [
    ("ner", ["--setting", "translate-train"], "setting='translate-train' for task ner; allowed: ['en', 'each', 'all']"),
    ("xnli", ["--selection", "best"], "selection='best'; allowed: ['en-dev', 'joint-dev']"),
    ("xnli", ["--bf16", "maybe"], "bf16='maybe'; allowed: auto, true or false"),
    ("xnli", ["--freeze_layers", "-1"], "freeze_layers=-1; allowed: an integer >= 0"),
    ("xnli", ["--eval_pairs", "[de-en]"], "unknown field 'eval_pairs'"),
    ("mlqa", ["--eval_pairs", "[deen]"], "eval_pairs entry 'deen'; allowed: '<context language>-<question"),
    ("ner", ["--ner_dataset", "wikiann"], "ner_dataset=wikiann needs languages"),
    ("xnli", ["--seeds", "[]"], "seeds=[]"),
    ("xnli", ["--learnig_rate", "1e-5"], "unknown field 'learnig_rate' (did you mean 'learning_rate'?)"),
    ("xnli", ["--max_length", "64"], "unknown field 'max_length' (did you mean 'max_seq_length'?)"),
    ("ner", ["--task", "xnli"], "task='xnli', but these are the settings of 'ner'"),
    ("mlqa", ["--n_best_size", "0"], "n_best_size=0; allowed: an integer >= 1"),
    ("xnli", ["--lr_scheduler_type", "sawtooth"], "sawtooth"),  # TrainingArguments' own check
])
def test_bad_settings_name_the_field(task: str, overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError) as error:
        load_recipe(None, overrides, cls=FinetuneArguments.for_task(task))
    assert message in str(error.value)


def test_unknown_task_lists_the_registered_ones() -> None:
    with pytest.raises(RecipeError, match=r"task='pos'; allowed: \['mlqa', 'ner', 'xnli'\]"):
        FinetuneArguments.for_task("pos")


def test_recipes_load_and_resolve_defaults() -> None:
    root = Path(__file__).resolve().parents[2] / "recipes" / "finetune"
    xnli = load_recipe(root / "xnli.yaml", ["--bf16", "false"], cls=FinetuneArguments.for_task("xnli"))
    assert (xnli.task, xnli.resolved_setting(), xnli.resolved_max_seq_length(), xnli.selection) == \
        ("xnli", "cross-lingual-transfer", 128, "joint-dev")
    assert xnli.bf16 is False and xnli.seeds == [1, 2, 3]
    mlqa = load_recipe(root / "mlqa.yaml", ["--eval_pairs", "[de-en, en-de]"], cls=FinetuneArguments.for_task("mlqa"))
    assert (mlqa.resolved_max_seq_length(), mlqa.doc_stride, mlqa.eval_pairs) == (384, 128, ["de-en", "en-de"])
    assert (mlqa.n_best_size, mlqa.max_answer_length) == (20, 30)
    ner = load_recipe(root / "ner.yaml", ["--bf16", "true"], cls=FinetuneArguments.for_task("ner"))
    assert (ner.resolved_setting(), ner.doc_stride, ner.bf16) == ("en", 32, True)
    assert ner.use_cpu == (not torch.cuda.is_available())  # bf16 on a CPU-only machine: the CPU, explicitly
    assert load_recipe(None, ["--seed", "7"], cls=FinetuneArguments.for_task("xnli")).seeds == [7]


def test_every_training_argument_reaches_the_trainer_arguments() -> None:
    from transformers import TrainingArguments

    args = load_recipe(None, ["--lr_scheduler_type", "cosine", "--gradient_checkpointing", "--torch_compile",
                              "false", "--eval_strategy", "steps", "--eval_steps", "5", "--dataloader_num_workers",
                              "2", "--hub_model_id", "me/x", "--label_smoothing_factor", "0.1", "--bf16", "False",
                              "--report_to", "none", "--optim", "adamw_torch"],
                       cls=FinetuneArguments.for_task("xnli"))
    trainer_args = args.training_arguments(output_dir="/tmp/run", seed=3)
    assert type(trainer_args) is TrainingArguments
    assert (trainer_args.lr_scheduler_type.value, trainer_args.gradient_checkpointing, trainer_args.torch_compile) == \
        ("cosine", True, False)
    assert (trainer_args.eval_strategy.value, trainer_args.save_strategy.value, trainer_args.eval_steps,
            trainer_args.save_steps) == ("steps", "steps", 5, 5)  # save follows eval: the best can be kept
    assert (trainer_args.dataloader_num_workers, trainer_args.hub_model_id, trainer_args.seed) == (2, "me/x", 3)
    assert (trainer_args.label_smoothing_factor, trainer_args.optim.value, trainer_args.report_to) == \
        (0.1, "adamw_torch", [])
    assert trainer_args.use_cpu is False  # the device is the Trainer's choice


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


def test_a_new_task_is_one_registered_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering a `Task` makes it a fine-tuning task: its name, settings, default length and its own fields reach
    the settings class and the command line."""
    from dataclasses import dataclass, field

    from xlmr_hf.settings import SettingsParser
    from xlmr_hf.tasks import Task, register_task, registry, task_names

    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))

    @dataclass
    class ToyArguments:
        toy_vocab: int = field(default=7, metadata={"help": "toy symbols"})

    @register_task
    class ToyTask(Task):
        name, title, help, settings = "toy", "Toy", "a toy task", ("only",)
        default_max_seq_length, arguments = 48, ToyArguments

        def all_languages(self, args):
            return ("en",)

        def load(self, args, languages):
            raise NotImplementedError

        def features(self, args, dataset, tokenizer, labels, train):
            raise NotImplementedError

        def score(self, evalset, predictions, monitor):
            raise NotImplementedError

    assert "toy" in task_names()
    args = load_recipe(None, ["--toy_vocab", "9"], cls=FinetuneArguments.for_task("toy"))
    assert (args.task, args.toy_vocab, args.resolved_setting(), args.resolved_max_seq_length()) == \
        ("toy", 9, "only", 48)
    parser = SettingsParser(prog="x")
    parser.add_settings(FinetuneArguments.for_task("toy"))
    assert "--toy_vocab int" in parser.format_help() and "toy symbols (default: 7)" in parser.format_help()


def test_finetune_card_names_a_hub_base_model_and_one_result_per_language_and_metric(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from xlmr_hf.tasks import get_task
    from xlmr_hf.training.cards import finetune_card

    args = load_recipe(None, ["--model_name_or_path", "FacebookAI/xlm-roberta-base"], cls=FinetuneArguments.for_task(
        "ner"))
    scores = {"f1": {"mean": 80.0}, "precision": {"mean": 81.0}, "recall": {"mean": 79.0}}
    result = {"table": {"en": scores, "de": scores, "avg": scores}, "setting": "en", "selection": "joint-dev",
              "seeds": [42]}
    finetune_card(args, result, task=get_task("ner"), results_markdown="| metric |", push_format="transformers",
                  model_name="me/ner").save(tmp_path / "README.md")
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.base_model == "FacebookAI/xlm-roberta-base" and card.data.pipeline_tag == "token-classification"
    assert card.data.language == ["de", "en"]
    assert sorted((r.dataset_config, r.metric_type) for r in card.data.eval_results) == [
        (lang, metric) for lang in ("de", "en") for metric in ("f1", "precision", "recall")]
