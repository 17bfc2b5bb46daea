"""Adapting a model with `xlmr-hf pretrain`: continuing from released weights (ours or transformers' format), and
every stream feature set from a recipe (alpha schedule, language caps, mask-rate schedule, whole-word masking, TLM,
language embeddings) changes what the stream emits and what metrics.jsonl says."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_pretrain import eval_rows, metrics, overrides, setup  # noqa: F401 - setup: the module-scoped fixture

from xlmr_hf.training import Pretrainer, load_recipe, pretrain
from xlmr_hf.training.arguments import RecipeError

EVAL = {"eval_tokens": 1024}
# Schedules and caps act on the planned order of blocks; a shuffle window mixes the blocks of one window (8192 by
# default, a few million tokens at scale), so these tests keep the planned order to see each change at its step.
IN_ORDER = {"shuffle_blocks": 1}


@pytest.fixture(scope="module")
def trained(setup: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:  # noqa: F811
    """A 30-step run with a held-out evaluation at its end: the model the tests continue from."""
    output = tmp_path_factory.mktemp("base")
    result = pretrain(load_recipe(None, overrides(setup, output, max_steps=30, eval_corpus=setup["corpus"], **EVAL)))
    return {"output": output, "checkpoint": output / "checkpoint-30", "result": result}


def test_continuing_starts_at_the_checkpoints_loss(setup: dict[str, str], trained: dict, tmp_path: Path) -> None:  # noqa: F811
    before = trained["result"]
    out = tmp_path / "continued"
    result = pretrain(load_recipe(None, overrides(setup, out, max_steps=3, warmup_steps=2, tokenizer="null",
                                                  model_name_or_path=str(trained["checkpoint"]),
                                                  eval_corpus=setup["corpus"], **EVAL)))
    # the same weights on the same held-out set: the continued run starts exactly where the first one ended
    assert result["eval_before"] == before["eval_after"]
    first, base = metrics(out)[1], metrics(trained["output"])
    assert first["loss"] < base[1]["loss"] - 0.5  # not where a fresh model starts (about ln(vocab))
    assert first["loss"] == pytest.approx(np.mean([base[s]["loss"] for s in range(26, 31)]), abs=0.3)
    # a fresh optimizer and schedule: warmup again from this run's settings
    assert first["learning_rate"] == pytest.approx(2.0e-3 * 2 / 3)


def test_continuing_from_a_transformers_directory(setup: dict[str, str], trained: dict, tmp_path: Path) -> None:  # noqa: F811
    from xlmr_hf.models.conversion import convert

    exported = tmp_path / "hf"
    convert(trained["checkpoint"], exported, to="transformers", source_format="xlmr-hf")
    assert '"model_type": "xlm-roberta"' in (exported / "config.json").read_text()
    result = pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=1, tokenizer="null",
                                                  model_name_or_path=str(exported), eval_corpus=setup["corpus"],
                                                  **EVAL)))
    for key, value in trained["result"]["eval_after"].items():
        assert result["eval_before"][key] == pytest.approx(value, abs=1e-5), key


def test_starting_model_errors(setup: dict[str, str], trained: dict, tmp_path: Path) -> None:  # noqa: F811
    missing = tmp_path / "nothing"
    with pytest.raises(RecipeError, match=r"model_name_or_path='.*nothing' has no tokenizer"):
        Pretrainer(load_recipe(None, overrides(setup, tmp_path / "a", tokenizer="null",
                                               model_name_or_path=str(missing)))).setup()
    with pytest.raises(RecipeError, match=r"model_name_or_path='.*nothing' could not be loaded"):
        Pretrainer(load_recipe(None, overrides(setup, tmp_path / "b", model_name_or_path=str(missing),
                                               model_overrides="{}"))).setup()
    with pytest.raises(RecipeError, match=r"model_overrides \['hidden_size'\] would change the shapes of .* \(it "
                                          r"has \{'hidden_size': 32\}\)"):
        Pretrainer(load_recipe(None, overrides(setup, tmp_path / "c", model_name_or_path=str(trained["checkpoint"]),
                                               model_overrides="{hidden_size: 64, num_hidden_layers: 2}"))).setup()
    with pytest.raises(RecipeError, match=r"seq_len=64 is longer than model_name_or_path=.* seq_len <= 32"):
        Pretrainer(load_recipe(None, overrides(setup, tmp_path / "d", model_name_or_path=str(trained["checkpoint"]),
                                               model_overrides="{}", seq_len=64))).setup()


def test_card_names_the_base_model(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    from xlmr_hf.training.cards import pretraining_card

    args = load_recipe(None, overrides(setup, tmp_path, model_name_or_path="FacebookAI/xlm-roberta-base",
                                       alpha_schedule="{type: linear, start: 0.7, end: 0.3, total: 1000}"))
    card = pretraining_card(args, model_name="m", languages=["en"], step=1, language_tokens={"en": 1},
                            eval_results=None, config={}, eval_corpus=None, push_format="transformers")
    assert card.data.base_model == "FacebookAI/xlm-roberta-base"
    assert "Continued pretraining of `FacebookAI/xlm-roberta-base`" in str(card)
    assert "- alpha_schedule: {'type': 'linear', 'start': 0.7, 'end': 0.3, 'total': 1000}" in str(card)
    local = load_recipe(None, overrides(setup, tmp_path, model_name_or_path=str(tmp_path)))
    card = pretraining_card(local, model_name="m", languages=["en"], step=1, language_tokens={"en": 1},
                            eval_results=None, config={}, eval_corpus=None, push_format="transformers")
    assert card.data.base_model is None and "- tlm_ratio" not in str(card)


# ------------------------------------------------------------------------------------ stream features from a recipe
def batches(setup: dict[str, str], output: Path, count: int,  # noqa: F811
            **fields: object) -> tuple[Pretrainer, list[dict]]:
    trainer = Pretrainer(load_recipe(None, overrides(setup, output, **fields))).setup()
    return trainer, [next(trainer.batches) for _ in range(count)]


def test_alpha_schedule_with_languages_joining(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    schedule = ("{type: phases, phases: [{until: 1500, alpha: 0.7, languages: [en]}, "
                "{alpha: 0.3, languages: [de, en, fr, sw]}]}")
    out = tmp_path / "run"
    pretrain(load_recipe(None, overrides(setup, out, max_steps=16, alpha_schedule=schedule, **IN_ORDER)))
    rows = metrics(out)
    early, late = rows[2], rows[16]
    assert early["alpha"] == 0.7 and late["alpha"] == 0.3
    assert early["share/en"] == 1.0 and early["share/sw"] == 0.0  # only English before the others join
    assert late["share/en"] < 1.0 and late["tokens/sw"] > 0
    assert sum(late[f"share/{lang}"] for lang in ("de", "en", "fr", "sw")) == pytest.approx(1.0)


def test_language_caps_take_a_language_out(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    """sw (2 documents, 10 lines) leaves the mixture once half its lines were read (caps count whole documents)."""
    out, plain = tmp_path / "run", tmp_path / "plain"
    pretrain(load_recipe(None, overrides(setup, out, max_steps=30, alpha=0.1, language_caps="{sw: 0.5}",
                                         **IN_ORDER)))
    pretrain(load_recipe(None, overrides(setup, plain, max_steps=30, alpha=0.1, **IN_ORDER)))
    rows, reference = metrics(out), metrics(plain)
    assert 0 < rows[22]["tokens/sw"] == rows[30]["tokens/sw"]  # the cap was reached, then nothing more
    assert rows[30]["share/sw"] == 0.0 and reference[30]["share/sw"] > 0.1
    assert reference[30]["tokens/sw"] > rows[30]["tokens/sw"]
    assert [rows[s]["tokens/sw"] for s in range(1, 21)] == [reference[s]["tokens/sw"] for s in range(1, 21)]


def masked_share(batch: dict, special_ids: list[int]) -> float:
    """Selected tokens per maskable token (real, non-special: the exact masker's count is taken over these)."""
    labels = batch["labels"]
    original = torch.where(labels != -100, labels, batch["input_ids"])
    maskable = ~torch.isin(original, torch.tensor(special_ids))
    return float((labels != -100).sum() / maskable.sum())


def test_mask_rate_schedule_from_a_recipe(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    schedule = "{type: phases, phases: [{until: 2000, rate: 0.4}, {rate: 0.05}]}"
    trainer, got = batches(setup, tmp_path / "b", 40, mask_rate_schedule=schedule, **IN_ORDER)
    special = trainer.tokenizer.all_special_ids
    early = np.mean([masked_share(b, special) for b in got[:10]])
    late = np.mean([masked_share(b, special) for b in got[-10:]])
    assert early == pytest.approx(0.4, abs=0.03) and late == pytest.approx(0.05, abs=0.02)
    out = tmp_path / "run"
    pretrain(load_recipe(None, overrides(setup, out, max_steps=20, mask_rate_schedule=schedule, **IN_ORDER)))
    rows = metrics(out)
    assert rows[1]["mask_rate"] == 0.4 and rows[20]["mask_rate"] == 0.05


def test_whole_word_from_a_recipe(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    from xlmr_hf.tokenization import word_start_mask

    trainer, got = batches(setup, tmp_path / "b", 6, whole_word="true")
    starts = np.asarray(word_start_mask(trainer.tokenizer))
    special_ids = np.asarray(trainer.tokenizer.all_special_ids)
    split_words = words = 0
    for batch in got:
        for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
            original = torch.where(labels != -100, labels, ids)[mask.bool()].numpy()
            selected = (labels != -100)[mask.bool()].numpy()
            special = np.isin(original, special_ids)  # specials are words of their own (never selected)
            begins = starts[original] | special
            begins[0] = True
            begins[1:] |= special[:-1]
            word = np.cumsum(begins)  # word index of each token
            for w in np.unique(word[selected]):
                words += 1
                split_words += int(not selected[word == w].all())
    assert words > 20 and split_words == 0
    assert split_words == 0
    _, plain = batches(setup, tmp_path / "p", 6)
    assert any(not torch.equal(a["labels"], b["labels"]) for a, b in zip(got, plain))


def test_language_embeddings_fed_from_the_stream(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    trainer, got = batches(setup, tmp_path / "b", 2, use_language_embeddings="true", max_steps=2,
                           eval_corpus=setup["corpus"], **EVAL)
    config = trainer.accelerator.unwrap_model(trainer.model).config
    assert config.use_language_embeddings and config.n_langs == 4
    assert trainer.language_ids == {"de": 0, "en": 1, "fr": 2, "sw": 3}
    for batch in got:
        ids = batch["language_ids"]
        assert ids.shape == batch["input_ids"].shape
        counts = batch["language_token_counts"] if "language_token_counts" in batch else None
        assert counts is None or int(counts.sum()) == int(batch["attention_mask"].sum())
    result = trainer.train()
    assert math.isfinite(result["loss"]) and set(result["eval_after"]) >= {"eval/loss/sw"}


def test_bad_stream_fields(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(RecipeError, match="tlm_ratio=0.5 needs a parallel_corpus"):
        load_recipe(None, overrides(setup, tmp_path, tlm_ratio=0.5))
    with pytest.raises(RecipeError, match="alpha_schedule must be a mapping with a 'type'"):
        load_recipe(None, overrides(setup, tmp_path, alpha_schedule="{start: 0.7}"))
    with pytest.raises(RecipeError, match=r"init_new_embeddings must be one of \['mean', 'random'\], got 'zero'"):
        load_recipe(None, overrides(setup, tmp_path, init_new_embeddings="zero"))


def test_tlm_batches_from_a_recipe(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    trainer, got = batches(setup, tmp_path / "b", 16, parallel_corpus="default", tlm_ratio=0.5,
                           use_language_embeddings="true", max_steps=4)
    tokenizer = trainer.tokenizer
    tlm = [b for b in got if "attention_mask" not in b]
    assert 3 <= len(tlm) <= 13 and all("cu_seqlens" in b and "position_ids" in b for b in tlm)
    for batch in tlm:
        original = torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])
        for row, languages in zip(original.tolist(), batch["language_ids"].tolist()):
            assert row[0] == tokenizer.bos_token_id
            middle = next(i for i in range(1, len(row)) if row[i] == row[i + 1] == tokenizer.eos_token_id)
            assert len(set(languages[:middle + 1])) == 1 and languages[middle + 1] != languages[0]
    plain = [b for b in got if "attention_mask" in b]
    assert all(b["language_ids"].shape == b["input_ids"].shape for b in plain)
    result = trainer.train()
    assert math.isfinite(result["loss"])


@pytest.mark.parametrize("name", ["annealed_alpha_debug", "xlm_tlm_debug"])
def test_debug_recipes_run(name: str, tmp_path: Path) -> None:
    recipe = Path(__file__).parents[2] / "recipes" / "pretrain" / f"{name}.yaml"
    out = tmp_path / "run"
    steps = 80
    pretrain(load_recipe(recipe, {"max_steps": steps, "output_dir": str(out), "eval_corpus": None,
                                  "save_steps": steps}))
    rows = metrics(out)
    if name == "annealed_alpha_debug":  # phase 2 (Arabic, Greek, Hindi join) starts at 100k tokens: step ~63
        assert (rows[10]["alpha"], rows[10]["mask_rate"]) == (0.7, 0.30)
        assert (rows[80]["alpha"], rows[80]["mask_rate"]) == (0.5, 0.15)
        assert rows[10]["share/ar"] == 0.0 and rows[80]["share/ar"] > 0.0
        assert rows[80]["tokens/th"] == 0  # Thai joins in phase 3
    else:
        model_config = (out / f"checkpoint-{steps}" / "config.json").read_text()
        assert '"use_language_embeddings": true' in model_config and '"n_langs": 10' in model_config


@pytest.fixture(scope="module")
def extended(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base run's tokenizer extended with pieces for Greek (a script it never saw) and Swahili."""
    from xlmr_hf.data import default_corpus_dir
    from xlmr_hf.tokenization import extend_tokenizer

    output = tmp_path_factory.mktemp("extended")
    extend_tokenizer(trained["checkpoint"], default_corpus_dir(), 60, output_dir=output, languages=["el", "sw"],
                     progress=False, overwrite=True)
    return output


@pytest.mark.parametrize("init", ["mean", "random"])
def test_extended_tokenizer_grows_the_model_and_keeps_old_rows(setup: dict[str, str], trained: dict,  # noqa: F811
                                                                extended: Path, tmp_path: Path, init: str) -> None:
    from transformers import AutoTokenizer

    from xlmr_hf.models import XLMRobertaForMaskedLM
    from xlmr_hf.training.vocabulary import extend_embeddings

    old_tokenizer = AutoTokenizer.from_pretrained(trained["checkpoint"])
    new_tokenizer = AutoTokenizer.from_pretrained(extended)
    old, new = len(old_tokenizer), len(new_tokenizer)
    assert new > old
    assert new_tokenizer.convert_ids_to_tokens(list(range(old))) == old_tokenizer.convert_ids_to_tokens(list(range(old)))
    trainer = Pretrainer(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=2, tokenizer=str(extended),
                                                     model_name_or_path=str(trained["checkpoint"]),
                                                     init_new_embeddings=init))).setup()
    model = trainer.accelerator.unwrap_model(trainer.model)
    base = XLMRobertaForMaskedLM.from_pretrained(trained["checkpoint"])
    table, base_table = model.roberta.embeddings.word_embeddings.weight, base.roberta.embeddings.word_embeddings.weight
    assert table.shape[0] == model.config.vocab_size == new
    assert torch.equal(table[:old], base_table)  # step 0: the old rows are the checkpoint's own, bit for bit
    assert torch.equal(model.lm_head.bias[:old], base.lm_head.bias)
    assert model.lm_head.decoder.weight.data_ptr() == table.data_ptr()  # the LM head stays tied
    reference = XLMRobertaForMaskedLM.from_pretrained(trained["checkpoint"])
    extend_embeddings(reference, old_tokenizer, new_tokenizer, init=init, seed=3, progress=False)
    assert torch.equal(table[old:], reference.roberta.embeddings.word_embeddings.weight[old:])
    if init == "mean":  # a new piece that splits into old pieces starts at their mean
        splits = {i: [t for t in old_tokenizer(new_tokenizer.convert_ids_to_tokens(i).replace("▁", " "),
                                               add_special_tokens=False)["input_ids"]
                      if t not in old_tokenizer.all_special_ids] for i in range(old, new)}
        known = [i for i, ids in splits.items() if new_tokenizer.convert_ids_to_tokens(i).startswith("▁")
                 and ids and old_tokenizer.convert_ids_to_tokens(ids)[0] != "▁"]  # word-initial, in known letters
        assert len(known) >= 2
        for i in known:
            torch.testing.assert_close(table[i], base_table[splits[i]].mean(0), rtol=0, atol=1e-6)
    else:
        assert not torch.equal(table[old:], base_table.mean(0).expand(new - old, -1))
    assert math.isfinite(trainer.train()["loss"])


def test_continue_debug_recipe_as_its_comment_says(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The three commands of recipes/pretrain/continue_xlmr_base_debug.yaml (shorter runs, paths in tmp_path)."""
    from xlmr_hf.cli import main

    recipes = Path(__file__).parents[2] / "recipes" / "pretrain"
    base, extended, out = tmp_path / "base", tmp_path / "extended", tmp_path / "continued"
    pretrain(load_recipe(recipes / "debug.yaml", {"languages": ["de", "en", "fr", "ru", "zh"], "output_dir": str(base),
                                                  "max_steps": 20, "save_steps": 20, "eval_corpus": None}))
    assert main(["extend-tokenizer", "--tokenizer", str(base / "checkpoint-20"), "--corpus", "default",
                 "--languages", "ar", "el", "hi", "th", "--add-pieces", "400", "--output", str(extended)]) == 0
    table = capsys.readouterr().out
    assert "added 400 of 400 requested pieces" in table and table.count("%") >= 8
    result = pretrain(load_recipe(recipes / "continue_xlmr_base_debug.yaml", {
        "model_name_or_path": str(base / "checkpoint-20"), "tokenizer": str(extended), "output_dir": str(out),
        "max_steps": 20, "save_steps": 20}))
    before, after = result["eval_before"], result["eval_after"]
    new_languages = ("ar", "el", "hi", "th")
    assert set(new_languages) | {"de", "en"} <= {k.rsplit("/", 1)[1] for k in after if k.startswith("eval/loss/")}
    assert np.mean([after[f"eval/loss/{lang}"] for lang in new_languages]) < \
        np.mean([before[f"eval/loss/{lang}"] for lang in new_languages]) - 0.3
