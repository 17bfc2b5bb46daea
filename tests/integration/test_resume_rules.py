"""What a resume accepts: settings that change the trajectory are refused unless allowed (then applied and recorded),
raising max_steps is logged, the logged windowed loss is exact; model_overrides typos and a command line that merges
into the recipe's overrides; ids outside the vocabulary caught where the batch is built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_pretrain import metrics, overrides, setup  # noqa: F401 - setup: the module-scoped corpus/tokenizer fixture

from xlmr_hf.training import RecipeError, load_recipe, pretrain
from xlmr_hf.training.components import schedule as _schedule


def test_the_logged_window_is_exact_after_a_resume(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    run = tmp_path / "run"  # save_steps 5 is not a multiple of logging_steps 3: a window spans each checkpoint
    pretrain(load_recipe(None, overrides(setup, run, max_steps=12, save_steps=5, logging_steps=3,
                                         save_total_limit=3)))
    expected = metrics(run)
    for name in ("checkpoint-10", "checkpoint-12"):
        shutil.rmtree(run / name)
    pretrain(load_recipe(None, overrides(setup, run, max_steps=12, save_steps=5, logging_steps=3)))  # from 5
    got = metrics(run)
    assert sorted(got) == [3, 6, 9, 12]
    for step in (6, 9, 12):  # step 6's window holds steps 4 and 5, which ran before the checkpoint
        assert got[step]["loss"] == expected[step]["loss"], step


def test_changed_settings_are_refused_unless_allowed_then_applied(setup: dict[str, str], tmp_path: Path,  # noqa: F811
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    pretrain(load_recipe(None, overrides(setup, run, max_steps=10, save_steps=5)))
    for field, value, old in (("learning_rate", "5.0e-4", "0.002"), ("seq_len", 64, "32"),
                              ("mask_rate", 0.3, "0.15"), ("alpha", 0.5, "0.3"), ("warmup_steps", 1, "3")):
        with pytest.raises(RecipeError, match=rf"resuming checkpoint-10 with {field}=.*, but it was trained with "
                                              rf"{field}={old}.*--allow_config_change true"):
            pretrain(load_recipe(None, overrides(setup, run, max_steps=12, **{field: value})))
    assert json.loads((run / "run_config.json").read_text())["learning_rate"] == 2e-3  # nothing recorded
    with caplog.at_level("INFO"):
        pretrain(load_recipe(None, overrides(setup, run, max_steps=14, learning_rate="5.0e-4",
                                             allow_config_change=True)))
    assert "allow_config_change: learning_rate changes from 0.002 to 0.0005 at step 10" in caplog.text
    assert "max_steps changes from 10 to 14" in caplog.text
    rows = metrics(run)
    assert rows[11]["learning_rate"] == pytest.approx(5e-4 * _schedule(11, 3, 14))  # trains at the new rate
    assert json.loads((run / "run_config.json").read_text())["learning_rate"] == 5e-4  # and records it


def test_model_override_typos_and_merging(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(RecipeError, match=r"model_overrides: unknown XLMRobertaConfig field 'num_hiden_layers' "
                                          r"\(did you mean 'num_hidden_layers'\?\)"):
        pretrain(load_recipe(None, [*overrides(setup, tmp_path / "typo", tokenizer="null"), "--model_overrides",
                                    "{num_hiden_layers: 2}"]))
    assert not (tmp_path / "typo" / "tokenizer").exists()  # checked before a tokenizer is trained
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_overrides: {num_hidden_layers: 2, hidden_size: 32}\n")
    args = load_recipe(recipe, ["--model_overrides", "{intermediate_size: 48}"])
    assert args.model_overrides == {"num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 48}


def test_ids_outside_the_vocabulary_are_caught_where_the_batch_is_built(setup: dict[str, str]) -> None:  # noqa: F811
    from xlmr_hf.data import PretrainingStream, StreamError

    stream = PretrainingStream(setup["corpus"], setup["tokenizer"], seq_len=32, batch_size=2, model_vocab_size=10_000)
    stream.model_vocab_size = 20  # as if the model were smaller than the ids the tokenizer gives
    with pytest.raises(StreamError, match=r"input id \d+ at row \d+, position \d+ of the batch starting at block 0 is "
                                          r"outside the model's vocabulary \(model_vocab_size=20, ids 0\.\.19\)"):
        next(iter(stream))
