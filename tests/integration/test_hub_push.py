"""Hub artifacts of pretraining: every checkpoint carries a `ModelCard` README whose ``model-index`` holds the held-out
figures; ``push_to_hub`` uploads checkpoints in the background (huggingface_hub's ``run_as_future``) in the plain
transformers format by default, or ours; tested against a fake Hub (`fixtures.fake_hub`)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from fixtures import fake_hub
from huggingface_hub import ModelCard
from safetensors.torch import load
from test_pretrain import eval_rows, overrides, setup

from xlmr_hf.training import RecipeError, load_recipe, pretrain


def _card(data: bytes, tmp_path: Path) -> ModelCard:
    path = tmp_path / "README.md"
    path.write_bytes(data)
    return ModelCard.load(path)


def test_every_checkpoint_has_a_model_card_and_its_weights_once(setup: dict[str, str], tmp_path: Path) -> None:
    result = pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=12, eval_corpus=setup["corpus"],
                                                  eval_tokens=1024)))
    checkpoint = Path(result["checkpoint"])
    card = ModelCard.load(checkpoint / "README.md")
    assert card.data.language == ["de", "en", "fr", "sw"] and card.data.license == "mit"
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "fill-mask"
    assert {"xlmr-hf", "xlm-roberta", "fill-mask"} <= set(card.data.tags)
    index = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    row = eval_rows(tmp_path / "run")[12]
    assert index == {(lang, metric): row[f"eval/{metric}/{lang}"] for lang in ("de", "en", "fr", "sw")
                     for metric in ("loss", "accuracy", "bits_per_char")}
    assert "trust_remote_code=True" in card.text and "## Framework versions" in card.text
    assert "- learning_rate: 0.002" in card.text and "- seq_len: 32" in card.text
    # the weights are stored once: accelerate's state holds no copy of the model
    assert (checkpoint / "model.safetensors").is_file()
    state = sorted(p.name for p in (checkpoint / "training_state").iterdir())
    assert state == ["optimizer.safetensors", "rng_state_0.safetensors", "scheduler.json"], state
    # the tokenizer's model_max_length is what the model's positions allow (seq_len 32 -> 34 positions)
    assert json.loads((checkpoint / "tokenizer_config.json").read_text())["model_max_length"] == 32


def test_checkpoints_are_pushed_in_the_background_in_transformers_format(
        setup: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import XLMRobertaForMaskedLM as HFMaskedLM

    hub = fake_hub.install(monkeypatch)
    result = pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=20, save_total_limit=1,
                                                  push_to_hub=True, hub_model_id="me/tiny-xlmr",
                                                  eval_corpus=setup["corpus"], eval_tokens=1024)))
    assert hub.repos == [{"repo_id": "me/tiny-xlmr", "private": True, "exist_ok": True}]
    assert [u.message for u in hub.uploads] == ["Training step 10", "Training step 20"]
    for upload in hub.uploads:
        assert upload.thread != threading.main_thread().name  # not the training thread
        assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "trainer_state.json"} <= set(
            upload.files)
        assert not any(f.startswith("training_state/") or f.endswith(".py") for f in upload.files)
        assert "manifest.json" not in upload.files
        assert json.loads(upload.files["config.json"])["model_type"] == "xlm-roberta"
    # what the Hub holds loads with plain transformers and equals the checkpoint written on disk
    pushed = tmp_path / "pushed"
    pushed.mkdir()
    for name, data in hub.uploads[-1].files.items():
        (pushed / name).write_bytes(data)
    theirs = HFMaskedLM.from_pretrained(pushed).eval()
    ours = load((Path(result["checkpoint"]) / "model.safetensors").read_bytes())
    assert torch.equal(theirs.roberta.embeddings.word_embeddings.weight,
                       ours["roberta.embeddings.word_embeddings.weight"])
    card = _card(hub.uploads[-1].files["README.md"], tmp_path)
    assert "trust_remote_code" not in card.text and 'from_pretrained("me/tiny-xlmr")' in card.text
    assert card.data.model_name == "me/tiny-xlmr" and len(card.data.eval_results) == 12  # 4 languages x (loss, accuracy, bits_per_char)
    assert not any((tmp_path / "run" / ".hub-staging").glob("*"))


def test_push_format_xlmr_hf_keeps_our_files(setup: dict[str, str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    hub = fake_hub.install(monkeypatch)
    pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=10, push_to_hub=True,
                                         hub_model_id="me/ours", push_format="xlmr-hf", hub_private_repo=False)))
    assert hub.repos[0]["private"] is False
    (upload,) = hub.uploads
    assert json.loads(upload.files["config.json"])["model_type"] == "xlmr-hf"
    assert "modeling_xlmr.py" in upload.files
    assert "trust_remote_code=True" in _card(upload.files["README.md"], tmp_path).text


def test_push_settings_are_checked() -> None:
    with pytest.raises(RecipeError, match=r"push_to_hub needs hub_model_id='user/name', got None"):
        load_recipe(None, ["--push_to_hub", "true"])
    with pytest.raises(RecipeError, match=r"push_format must be one of \['transformers', 'xlmr-hf'\], got 'onnx'"):
        load_recipe(None, ["--push_format", "onnx"])
