"""`xlmr-hf finetune` end to end on the fixtures in the official formats: XNLI, NER and MLQA runs from the CLI write
their per-language tables; the table agrees with the saved best model; mBERT-style checkpoints go through the same
path; bad input fails with a clear message."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from fixtures import fake_hub
from fixtures.ner_data import write_conll2002, write_conll2003_english
from fixtures.qa_data import build_qa_tokenizer, write_mlqa, write_squad_train
from fixtures.tiny_tokenizer import build_tiny_tokenizer
from fixtures.xnli_data import write_xnli_fixture

from xlmr_hf.models import XLMRobertaConfig, XLMRobertaForMaskedLM

COMMON = ["--bf16", "false", "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--logging_steps", "5",
          "--num_train_epochs", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import AutoTokenizer

    model = tmp_path_factory.mktemp("model")
    build_tiny_tokenizer(model)
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(AutoTokenizer.from_pretrained(model)), hidden_size=32,
                              num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                              max_position_embeddings=130)
    XLMRobertaForMaskedLM(config).save_pretrained(model)  # an (untrained) pretraining checkpoint of ours
    xnli = tmp_path_factory.mktemp("xnli")
    write_xnli_fixture(xnli)
    conll = tmp_path_factory.mktemp("conll")
    write_conll2003_english(conll)
    write_conll2002(conll)
    qa_model = tmp_path_factory.mktemp("qa_model")  # a tokenizer that covers Han, Arabic and Devanagari
    qa_tokenizer = build_qa_tokenizer(qa_model)
    config = XLMRobertaConfig(vocab_size=len(qa_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=130)
    XLMRobertaForMaskedLM(config).save_pretrained(qa_model)
    mlqa = tmp_path_factory.mktemp("mlqa")
    write_squad_train(mlqa)
    write_mlqa(mlqa)
    return {"model": model, "xnli": xnli, "conll": conll, "qa_model": qa_model, "mlqa": mlqa}


def finetune(task: str, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xlmr_hf.cli", "finetune", task, *map(str, args)],
                          capture_output=True, text=True, timeout=900, check=False)


def test_xnli_table_matches_the_saved_best_model(data: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from xlmr_hf.tasks import xnli

    out = tmp_path / "xnli"
    result = finetune("xnli", "recipes/finetune/xnli.yaml", "--model_name_or_path", data["model"], "--data_dir",
                      data["xnli"], "--languages", "[en, ar, zh]", "--seeds", "[1, 2]", "--selection", "en-dev",
                      "--output_dir", out, *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| metric | en | ar | zh | avg |" in result.stdout
    saved = json.loads((out / "results.json").read_text())
    assert saved["seeds"] == [1, 2] and sorted(saved["runs"]["all"]) == ["1", "2"]
    assert (out / "results.md").read_text().startswith("**xnli (cross-lingual-transfer)")
    assert (out / "results.csv").read_text().splitlines()[0] == "language,accuracy_mean,accuracy_std,seeds"
    run = saved["runs"]["all"]["1"]
    assert run["dev"]["selection"] == run["dev"]["en_accuracy"]  # en-dev: selected on the English dev set
    # Score the saved best model on the test sets ourselves: the table's per-language figures must agree.
    model = AutoModelForSequenceClassification.from_pretrained(run["best_checkpoint"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(run["best_checkpoint"])
    test = xnli.load_xnli("cross-lingual-transfer", languages=["en", "ar", "zh"], data_dir=str(data["xnli"])).test
    for lang, dataset in test.items():
        batch = tokenizer(list(dataset["premise"]), list(dataset["hypothesis"]), padding=True, return_tensors="pt")
        with torch.no_grad():
            predicted = model(**batch).logits.argmax(-1)
        accuracy = 100.0 * float((predicted == torch.tensor(list(dataset["label"]))).float().mean())
        assert run["test"][lang]["accuracy"] == pytest.approx(accuracy), lang
    values = [saved["runs"]["all"][s]["test"]["ar"]["accuracy"] for s in ("1", "2")]
    assert saved["table"]["ar"]["accuracy"]["mean"] == pytest.approx(sum(values) / 2)


def test_xnli_translate_train_trains_one_model_per_language(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "tt"
    result = finetune("xnli", "--model_name_or_path", data["model"], "--data_dir", data["xnli"], "--setting",
                      "translate-train", "--languages", "[de, hi]", "--output_dir", out, *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "results.json").read_text())
    assert sorted(saved["runs"]) == ["de", "hi"]
    assert sorted(saved["runs"]["de"]["42"]["test"]) == ["de"]
    assert list(saved["table"]) == ["de", "hi", "avg"]


def test_ner_each_language_with_frozen_layers(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "ner"
    result = finetune("ner", "recipes/finetune/ner.yaml", "--model_name_or_path", data["model"], "--data_dir",
                      data["conll"], "--setting", "each", "--languages", "[en, es]", "--seeds", "[3]",
                      "--max_seq_length", "32", "--doc_stride", "8", "--freeze_layers", "1", "--output_dir", out, *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "results.json").read_text())
    assert sorted(saved["runs"]) == ["en", "es"]
    for lang in ("en", "es"):
        scores = saved["runs"][lang]["3"]["test"][lang]
        assert set(scores) == {"f1", "precision", "recall"} and 0.0 <= scores["f1"] <= 100.0
    assert "| f1 | " in result.stdout and "froze" in result.stderr


def test_mlqa_official_and_squad_rules_per_language(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mlqa"
    result = finetune("mlqa", "recipes/finetune/mlqa.yaml", "--model_name_or_path", data["qa_model"], "--data_dir",
                      data["mlqa"], "--eval_pairs", "[de-en]", "--seeds", "[1]", "--max_seq_length", "96", "--doc_stride",
                      "16", "--output_dir", out, *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["table"]) == ["en", "es", "de", "ar", "hi", "vi", "zh", "de-en", "avg"]
    for key, scores in saved["runs"]["all"]["1"]["test"].items():
        assert set(scores) == {"f1", "exact_match", "squad_f1", "squad_exact_match"}, key
        assert all(0.0 <= value <= 100.0 for value in scores.values()), key
    assert "| squad_f1 |" in result.stdout


def test_an_mbert_style_checkpoint_sits_in_the_same_table(data: dict[str, Path], tmp_path: Path) -> None:
    """Any Auto checkpoint: a tiny BERT with a WordPiece tokenizer (mBERT's kind), trained here from the fixtures."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    from xlmr_hf.tasks import xnli

    texts = [row[key] for lang in ("en", "fr") for row in xnli.load_xnli(
        "translate-train", languages=[lang], data_dir=str(data["xnli"])).train for key in ("premise", "hypothesis")]
    wordpiece = BertWordPieceTokenizer(lowercase=False)
    wordpiece.train_from_iterator(texts, vocab_size=300, min_frequency=1)
    bert = tmp_path / "bert"
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", sep_token="[SEP]",
                                  pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
    tokenizer.save_pretrained(bert)
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=130)).save_pretrained(bert)
    result = finetune("xnli", "--model_name_or_path", bert, "--data_dir", data["xnli"], "--languages", "[en, fr]",
                      "--output_dir", tmp_path / "out", *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["model"] == str(bert) and list(saved["table"]) == ["en", "fr", "avg"]


def test_bad_input_fails_with_a_clear_message(data: dict[str, Path], tmp_path: Path) -> None:
    result = finetune("xnli", "--model_name_or_path", data["model"], "--data_dir", data["xnli"], "--languages",
                      "[en, xx]", "--output_dir", tmp_path / "a")
    assert result.returncode == 2
    assert "languages=['en', 'xx']: ['xx'] not in xnli; allowed: ['en', 'fr'," in result.stderr
    broken = tmp_path / "conll"
    write_conll2003_english(broken)
    test = broken / "eng.testb"
    test.write_text(test.read_text().replace(" I-LOC", " I-FAC", 1))  # a tag the training data never uses
    result = finetune("ner", "--model_name_or_path", data["model"], "--data_dir", broken, "--languages", "[en]",
                      "--output_dir", tmp_path / "b")
    assert result.returncode == 2
    assert "FAC" in result.stderr and "xlmr-hf finetune: error:" in result.stderr


def _settings(data: dict[str, Path], out: Path, **extra: object) -> Any:
    from xlmr_hf.training import FinetuneArguments, load_recipe

    values = {"model_name_or_path": str(data["model"]), "data_dir": str(data["xnli"]), "languages": ["en", "ar"],
              "seeds": [1], "output_dir": str(out), "bf16": False, "per_device_train_batch_size": 8,
              "learning_rate": 1e-3, "logging_steps": 5, "num_train_epochs": 1, **extra}
    return load_recipe("recipes/finetune/xnli.yaml", values, cls=FinetuneArguments.for_task("xnli"))


class _Recorder:
    """A TrainerCallback that keeps the TrainingArguments each Trainer was built with."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        outer = self
        self.args: list[Any] = []

        class Callback(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                outer.args.append(args)

        self.callback = Callback()


def test_training_arguments_and_callbacks_reach_the_trainer(data: dict[str, Path], tmp_path: Path) -> None:
    from xlmr_hf.training import finetune as run

    recorder = _Recorder()
    settings = _settings(data, tmp_path / "job", lr_scheduler_type="cosine", gradient_checkpointing=True,
                         eval_strategy="steps", eval_steps=2, max_steps=4, label_smoothing_factor=0.1,
                         optim="adamw_torch", weight_decay=0.05, seeds=[1, 2], warmup_steps=1)
    run(settings, callbacks=[recorder.callback])
    assert [a.seed for a in recorder.args] == [1, 2]  # one Trainer per seed, each with our callback
    args = recorder.args[0]
    assert type(args).__name__ == "TrainingArguments"
    assert (args.lr_scheduler_type.value, args.gradient_checkpointing, args.eval_strategy.value, args.eval_steps,
            args.save_strategy.value, args.save_steps, args.max_steps) == ("cosine", True, "steps", 2, "steps", 2, 4)
    assert (args.label_smoothing_factor, args.optim.value, args.weight_decay, args.warmup_steps) == \
        (0.1, "adamw_torch", 0.05, 1)
    assert args.output_dir == str(tmp_path / "job" / "run-all" / "seed-1")
    assert args.load_best_model_at_end and args.metric_for_best_model == "selection"
    assert not args.use_cpu  # the Trainer chooses the device


def test_push_uploads_the_selected_model_results_and_card(data: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import ModelCard
    from transformers import XLMRobertaForSequenceClassification

    from xlmr_hf.training import finetune as run

    hub = fake_hub.install(monkeypatch)
    recorder = _Recorder()
    result = run(_settings(data, tmp_path / "job", push_to_hub=True, hub_model_id="me/xnli-tiny", seeds=[1, 2]),
                 callbacks=[recorder.callback])
    assert all(a.push_to_hub and a.hub_model_id == "me/xnli-tiny" for a in recorder.args)  # reached the Trainer
    assert {r["repo_id"] for r in hub.repos} == {"me/xnli-tiny"}
    assert [u.message for u in hub.uploads] == ["xnli: selected model"]  # hub_strategy end: one push, at the end
    files = hub.repo_files("me/xnli-tiny")
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "results.md", "results.csv",
            "results.json"} <= set(files)
    assert json.loads(files["config.json"])["model_type"] == "xlm-roberta"  # push_format transformers (default)
    saved = json.loads((tmp_path / "job" / "results.json").read_text())
    assert json.loads(files["results.json"]) == saved
    best = max(saved["runs"]["all"].values(), key=lambda r: r["dev"]["selection"])["best_checkpoint"]
    assert saved["selected"] == result["selected"] == {"all": best}
    pushed = tmp_path / "pushed"
    pushed.mkdir()
    for name, blob in files.items():
        (pushed / name).write_bytes(blob)
    plain = XLMRobertaForSequenceClassification.from_pretrained(pushed).eval()  # transformers alone
    card = ModelCard.load(pushed / "README.md")
    assert card.data.pipeline_tag == "text-classification" and card.data.language == ["ar", "en"]
    assert card.data.datasets == ["facebook/xnli"] and card.data.license == "mit"
    assert card.data.library_name == "transformers" and "xlmr-hf" in card.data.tags
    index = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert index == {(lang, "accuracy"): saved["table"][lang]["accuracy"]["mean"] for lang in ("en", "ar")}
    assert "## Framework versions" in card.text and "| metric | en | ar | avg |" in card.text
    local = ModelCard.load(Path(best) / "README.md")  # the selected model on disk carries the card too
    assert {(r.dataset_config, r.metric_type): r.metric_value for r in local.data.eval_results} == index
    assert "trust_remote_code=True" in local.text and "trust_remote_code" not in card.text
    assert plain.config.num_labels == 3


def test_rerun_reuses_finished_runs_resumes_the_rest_and_refuses_foreign_dirs(
        data: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from xlmr_hf.training import RecipeError
    from xlmr_hf.training import finetune as run

    out = tmp_path / "job"
    first = run(_settings(data, out, seeds=[1, 2]))
    shutil.rmtree(out / "run-all" / "seed-2" / "best")  # seed 2 as if killed after its last checkpoint
    (out / "run-all" / "seed-2" / "run_result.json").unlink()
    with caplog.at_level("INFO", logger="xlmr_hf.training.finetune"):
        second = run(_settings(data, out, seeds=[1, 2]))
    assert "run all/seed 1 already finished" in caplog.text
    assert re.search(r"resuming run all/seed 2 from .*run-all/seed-2/checkpoint-\d+", caplog.text)
    assert second["table"] == first["table"]
    assert second["runs"]["all"][2]["test"] == first["runs"]["all"][2]["test"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RecipeError, match=r"output_dir='.*foreign' is not empty and holds no fine-tuning run; set "
                                          r"--overwrite_output_dir true"):
        run(_settings(data, foreign))
    (out / "run-all" / "seed-1" / "marker").write_text("old")
    caplog.clear()
    with caplog.at_level("INFO", logger="xlmr_hf.training.finetune"):
        run(_settings(data, out, seeds=[1], overwrite_output_dir=True))
    assert "already finished" not in caplog.text and not (out / "run-all" / "seed-1" / "marker").exists()
    assert sorted(p.name for p in (out / "run-all").iterdir()) == ["seed-1"]


def test_the_recipe_runs_on_the_packaged_sample_with_its_default_languages(data: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    from xlmr_hf.data import xnli_sample_dir

    result = subprocess.run([sys.executable, "-m", "xlmr_hf", "finetune", "xnli", "recipes/finetune/xnli.yaml",
                             "--data_dir", str(xnli_sample_dir()), "--model_name_or_path", str(data["model"]),
                             "--seeds", "[1]", "--max_steps", "2", "--output_dir", str(tmp_path / "out"),
                             "--bf16", "false"], capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| metric | en | fr | de | ar | zh | hi | sw | avg |" in result.stdout  # the sample's 7, no es
    assert "holds 7 of 15 languages" in result.stderr
