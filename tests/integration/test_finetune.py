"""`xlmr-hf finetune` end to end on the fixtures in the official formats: XNLI, NER and MLQA runs from the CLI write
their per-language tables; the table agrees with the saved best model; mBERT-style checkpoints go through the same
path; bad input fails with a clear message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
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
                      "--max_length", "32", "--stride", "8", "--freeze_layers", "1", "--output_dir", out, *COMMON)
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
                      data["mlqa"], "--eval_pairs", "[de-en]", "--seeds", "[1]", "--max_length", "96", "--stride",
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
