"""`xlmr-hf pretrain` end to end on CPU: the loss falls, metrics lines, checkpoints that load with `from_pretrained`,
SIGKILL + resume equal to an uninterrupted run, atomic checkpoint writing, bad settings before training."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import pytest
from fixtures.probe_data import write_probe_set
from fixtures.tiny_tokenizer import build_tiny_tokenizer

from xlmr_hf.training import (
    CheckpointError,
    RecipeError,
    checkpoints,
    latest_checkpoint,
    load_recipe,
    pretrain,
)

SIZES = {"en": 20000, "fr": 8000, "de": 4000, "sw": 1500}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    corpus = tmp_path_factory.mktemp("corpus")
    text.write_cc100_corpus(corpus, SIZES, seed=5)
    tokenizer = tmp_path_factory.mktemp("tok")
    build_tiny_tokenizer(tokenizer)
    probe = tmp_path_factory.mktemp("probe")
    write_probe_set(probe, languages=("en", "de", "fr", "sw"), train_languages=("en", "de"))
    return {"corpus": str(corpus), "tokenizer": str(tokenizer), "probe": str(probe)}


def overrides(setup: dict[str, str], output: Path, **extra: object) -> list[str]:
    fields = {"corpus": setup["corpus"], "tokenizer": setup["tokenizer"], "output_dir": str(output),
              "model_overrides": "{num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4, intermediate_size: 64}",
              "seq_len": 32, "global_batch_size": 8, "micro_batch_size": 4, "learning_rate": "2.0e-3",
              "warmup_steps": 3, "max_steps": 30, "save_steps": 10, "logging_steps": 1, "mixed_precision": "no",
              "seed": 3, "save_total_limit": 2}
    fields.update(extra)
    return [item for key, value in fields.items() for item in (f"--{key}", str(value))]


def metrics(output: Path) -> dict[int, dict]:
    """Last line per step (a resumed run re-logs the steps after its checkpoint)."""
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row for row in rows if "loss" in row}


def eval_rows(output: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row for row in rows if "eval/loss" in row}


def test_debug_run_learns_logs_and_checkpoints(setup: dict[str, str], tmp_path: Path) -> None:
    from transformers import AutoModelForMaskedLM

    result = pretrain(load_recipe(None, overrides(setup, tmp_path / "run")))
    rows = metrics(tmp_path / "run")
    assert sorted(rows) == list(range(1, 31))
    first, last = sum(rows[s]["loss"] for s in range(1, 6)) / 5, sum(rows[s]["loss"] for s in range(26, 31)) / 5
    assert last < first - 0.3, (first, last)
    assert set(rows[30]) >= {"step", "loss", "learning_rate", "tokens_per_s", "mfu", "tokens/en", "tokens/sw"}
    assert rows[30]["learning_rate"] == 0.0 and rows[3]["learning_rate"] == pytest.approx(2e-3)
    assert all(rows[30][f"tokens/{lang}"] > 0 for lang in SIZES)
    assert sum(rows[30][f"tokens/{lang}"] for lang in SIZES) <= 30 * 8 * 32
    assert [p.name for p in checkpoints(tmp_path / "run")] == ["checkpoint-20", "checkpoint-30"]  # save_total_limit 2
    assert result["checkpoint"].endswith("checkpoint-30")
    model = AutoModelForMaskedLM.from_pretrained(result["checkpoint"])
    assert type(model).__name__ == "XLMRobertaForMaskedLM" and model.config.num_hidden_layers == 2


def test_heldout_eval_per_language_does_not_change_training(setup: dict[str, str], tmp_path: Path) -> None:
    plain = pretrain(load_recipe(None, overrides(setup, tmp_path / "plain", max_steps=12)))
    result = pretrain(load_recipe(None, overrides(setup, tmp_path / "eval", max_steps=12, eval_corpus=setup["corpus"],
                                                  eval_tokens=2048, eval_steps=5)))
    assert plain["eval_after"] is None and result["eval_before"] is not None
    assert {s: r["loss"] for s, r in metrics(tmp_path / "eval").items()} == \
        {s: r["loss"] for s, r in metrics(tmp_path / "plain").items()}  # eval draws no random numbers
    evals = eval_rows(tmp_path / "eval")
    assert sorted(evals) == [0, 5, 10, 12]
    for lang in SIZES:
        assert 0.0 <= evals[12][f"eval/accuracy/{lang}"] <= 1.0
        assert evals[12][f"eval/loss/{lang}"] < evals[0][f"eval/loss/{lang}"], lang
    assert evals[12] == {"step": 12, **result["eval_after"]}
    assert evals[0]["eval/loss"] == pytest.approx(sum(evals[0][f"eval/loss/{lang}"] for lang in SIZES) / 4)


def _run(setup: dict[str, str], output: Path, *extra: str) -> subprocess.Popen:
    """The CLI in a subprocess; its output goes to ``<output>.log`` (a pipe could fill up and block it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    log = open(f"{output}.log", "a")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen([sys.executable, "-m", "xlmr_hf.cli", "pretrain", *overrides(setup, output), *extra],
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _log(output: Path) -> str:
    return Path(f"{output}.log").read_text()[-3000:]


def test_sigkill_and_resume_equal_uninterrupted_run(setup: dict[str, str], tmp_path: Path) -> None:
    reference = _run(setup, tmp_path / "ref")
    killed = _run(setup, tmp_path / "killed")
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "checkpoint-20" / "trainer_state.json").exists():
        assert killed.poll() is None and time.time() < deadline, _log(tmp_path / "killed")
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert reference.wait(timeout=300) == 0, _log(tmp_path / "ref")
    resumed = _run(setup, tmp_path / "killed", "--resume_from_checkpoint", "latest")
    assert resumed.wait(timeout=300) == 0, _log(tmp_path / "killed")
    ref, got = metrics(tmp_path / "ref"), metrics(tmp_path / "killed")
    assert sorted(got) == sorted(ref)
    for step in range(21, 31):  # after the checkpoint: the same losses and the same documents
        for key in ref[step]:
            if key not in ("tokens_per_s", "mfu", "data_share"):
                assert got[step][key] == ref[step][key], (step, key)


def test_interrupted_checkpoint_write_keeps_the_previous_one(setup: dict[str, str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from xlmr_hf.training import checkpointing

    pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=10)))
    real = checkpointing.os.replace

    def crash(src: object, dst: object) -> None:
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(checkpointing.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=20,
                                             resume_from_checkpoint="latest")))
    monkeypatch.setattr(checkpointing.os, "replace", real)
    assert (tmp_path / "run" / ".tmp-checkpoint-20").is_dir()  # the half-written one is ignored
    assert latest_checkpoint(tmp_path / "run").name == "checkpoint-10"
    pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=12, resume_from_checkpoint="latest")))
    assert latest_checkpoint(tmp_path / "run").name == "checkpoint-12"


def test_a_rerun_into_its_output_dir_resumes_and_never_loses_a_checkpoint(setup: dict[str, str], tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    reference = pretrain(load_recipe(None, overrides(setup, run, max_steps=20)))
    expected = (run / "metrics.jsonl").read_text()
    shutil.rmtree(run / "checkpoint-20")  # as if killed after step 20 was logged but before it was saved
    with caplog.at_level("INFO", logger="xlmr_hf.training.checkpointing"):
        result = pretrain(load_recipe(None, overrides(setup, run, max_steps=20)))  # no --resume_from_checkpoint
    assert "holds checkpoints: resuming from the newest, checkpoint-10" in caplog.text
    assert result["step"] == 20 and Path(result["checkpoint"]).is_dir() and result["loss"] == reference["loss"]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 21))  # every step once: the rerun continued, it did not append a second run
    assert {s: r["loss"] for s, r in metrics(run).items()} == {
        s: json.loads(line)["loss"] for s, line in enumerate(expected.splitlines(), 1)}
    # a finished run says so, changes nothing and returns its checkpoint
    with caplog.at_level("INFO", logger="xlmr_hf.training.pretrain"):
        again = pretrain(load_recipe(None, overrides(setup, run, max_steps=20)))
    assert "already finished" in caplog.text and again["checkpoint"] == result["checkpoint"]
    assert again["step"] == 20 and again["loss"] == result["loss"]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == steps


def test_rotation_never_removes_the_checkpoint_just_written(setup: dict[str, str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    pretrain(load_recipe(None, overrides(setup, run, max_steps=30, save_total_limit=3)))
    assert [p.name for p in checkpoints(run)] == ["checkpoint-10", "checkpoint-20", "checkpoint-30"]
    # an older, longer trajectory's checkpoints sort after the new one: rotation used to delete checkpoint-15 itself
    result = pretrain(load_recipe(None, overrides(setup, run, max_steps=15, save_total_limit=2,
                                                  resume_from_checkpoint=str(run / "checkpoint-10"))))
    assert result["checkpoint"].endswith("checkpoint-15") and Path(result["checkpoint"]).is_dir()
    assert [p.name for p in checkpoints(run)] == ["checkpoint-15", "checkpoint-30"]


def test_non_empty_output_dir_and_overwrite(setup: dict[str, str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match=r"output_dir='.*run' is not empty and holds no complete checkpoint; "
                                              r"set --overwrite_output_dir true"):
        pretrain(load_recipe(None, overrides(setup, run, max_steps=10)))
    pretrain(load_recipe(None, overrides(setup, run, max_steps=20, overwrite_output_dir=True)))
    assert [p.name for p in checkpoints(run)] == ["checkpoint-10", "checkpoint-20"]
    result = pretrain(load_recipe(None, [*overrides(setup, run, max_steps=10), "--overwrite_output_dir"]))
    assert [p.name for p in checkpoints(run)] == ["checkpoint-10"] and result["step"] == 10  # afresh
    assert sorted(metrics(run)) == list(range(1, 11)) and (run / "notes.txt").read_text() == "mine"
    with pytest.raises(CheckpointError, match="overwrite_output_dir=true would delete resume_from_checkpoint"):
        pretrain(load_recipe(None, overrides(setup, run, overwrite_output_dir=True,
                                             resume_from_checkpoint=str(run / "checkpoint-10"))))


def test_bad_settings_fail_before_training(setup: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="resume_from_checkpoint='latest' but .* holds no complete"):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "a", resume_from_checkpoint="latest")))
    with pytest.raises(RecipeError, match=r"global_batch_size=10 is not divisible by processes \(1\) × "
                                          r"micro_batch_size \(4\) = 4"):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "b", global_batch_size=10)))
    with pytest.raises(ValueError, match="is not an existing directory"):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "c", corpus=str(tmp_path / "missing"))))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_cli_reports_bad_fields(setup: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "xlmr_hf.cli", "pretrain", "--max_stepz", "3"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "xlmr-hf pretrain: error: unknown field 'max_stepz' (did you mean 'max_steps'?)" in result.stderr


def test_two_cpu_processes_ddp_match_one_process(setup: dict[str, str], tmp_path: Path) -> None:
    """recipes/accelerate/ddp.yaml with 2 processes over gloo: without dropout the losses equal one process's (same
    global batches, gradients averaged, the schedule stepped once per optimizer step)."""
    root = Path(__file__).resolve().parents[2]
    no_dropout = ("{num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4, intermediate_size: 64, "
                  "hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    launcher = Path(sys.executable).parent / "accelerate"
    for name, command in (("one", [sys.executable, "-m", "xlmr_hf.cli"]),
                          ("two", [str(launcher), "launch", "--config_file", str(root / "recipes/accelerate/ddp.yaml"),
                                   "-m", "xlmr_hf.cli"])):
        # TensorBoard on: the launcher used to exit 1 after a successful run (end_training() tore the process group
        # down before the last wait_for_everyone())
        result = subprocess.run([*command, "pretrain", *overrides(setup, tmp_path / name, max_steps=12,
                                                                  model_overrides=no_dropout,
                                                                  report_to="[tensorboard]")],
                                env=env, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        events = sorted((tmp_path / name / "pretrain").glob("events.out.tfevents.*"))
        assert len(events) == 1, events  # written once, by the main process
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    states = sorted(p.name for p in (tmp_path / "two" / "checkpoint-10" / "training_state").glob("rng_state_*"))
    assert states == ["rng_state_0.safetensors", "rng_state_1.safetensors"]  # really two processes
    for step in one:
        assert two[step]["loss"] == pytest.approx(one[step]["loss"], abs=1e-4), step
        assert two[step]["learning_rate"] == one[step]["learning_rate"]
        assert two[step]["tokens/en"] == one[step]["tokens/en"]


def test_tensorboard_tracker_receives_every_logged_figure(setup: dict[str, str], tmp_path: Path) -> None:
    """``report_to: [tensorboard]`` goes through Accelerate's tracker: the event files hold the same loss, learning rate
    and per-language token counts as metrics.jsonl, and the held-out figures at their steps."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=6, report_to="[tensorboard]",
                                         eval_corpus=setup["corpus"], eval_tokens=512, eval_steps=3)))
    events = sorted((tmp_path / "run" / "pretrain").glob("events.out.tfevents.*"))  # (+ a subdir for the hparams)
    assert len(events) == 1, events
    accumulator = EventAccumulator(str(events[0].parent)).Reload()
    rows = metrics(tmp_path / "run")
    for tag in ("loss", "learning_rate", "tokens/en", "tokens/sw"):
        logged = {event.step: event.value for event in accumulator.Scalars(tag)}
        assert logged == pytest.approx({step: row[tag] for step, row in rows.items()}, rel=1e-6), tag
    held_out = {event.step: event.value for event in accumulator.Scalars("eval/loss/fr")}
    assert held_out == pytest.approx({s: r["eval/loss/fr"] for s, r in eval_rows(tmp_path / "run").items()}, rel=1e-6)
    assert sorted(held_out) == [0, 3, 6]


def test_report_to_none_and_all_as_in_training_arguments(setup: dict[str, str], tmp_path: Path) -> None:
    from transformers.integrations import get_available_reporting_integrations

    pretrain(load_recipe(None, overrides(setup, tmp_path / "none", max_steps=2, report_to="none")))
    assert not (tmp_path / "none" / "pretrain").exists()
    pretrain(load_recipe(None, overrides(setup, tmp_path / "all", max_steps=2, report_to="all")))
    assert "tensorboard" in get_available_reporting_integrations()  # the dev extra installs it
    assert len(list((tmp_path / "all" / "pretrain").glob("events.out.tfevents.*"))) == 1
    with pytest.raises(RecipeError, match="'none' cannot be combined with other trackers"):
        load_recipe(None, ["--report_to", "[none, tensorboard]"])


def probe_rows(output: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row for row in rows if "probe/accuracy" in row}


def test_downstream_probe_per_language_does_not_change_training(setup: dict[str, str], tmp_path: Path) -> None:
    plain = pretrain(load_recipe(None, overrides(setup, tmp_path / "plain", max_steps=12)))
    result = pretrain(load_recipe(None, overrides(setup, tmp_path / "probe", max_steps=12, probe_set=setup["probe"],
                                                  probe_steps=5, probe_train_languages="[en, de]")))
    assert plain["probe"] is None and not result["stopped_early"]
    assert {s: r["loss"] for s, r in metrics(tmp_path / "probe").items()} == \
        {s: r["loss"] for s, r in metrics(tmp_path / "plain").items()}  # the probe draws no global random numbers
    probes = probe_rows(tmp_path / "probe")
    assert sorted(probes) == [0, 5, 10, 12]
    for row in probes.values():
        assert {f"probe/accuracy/{lang}" for lang in ("en", "de", "fr", "sw")} <= set(row)
        assert all(0.0 <= row[f"probe/accuracy/{lang}"] <= 1.0 for lang in ("en", "de", "fr", "sw"))
        assert row["probe/accuracy"] == pytest.approx(
            sum(row[f"probe/accuracy/{lang}"] for lang in ("en", "de", "fr", "sw")) / 4)
    assert probes[12] == {"step": 12, **result["probe"]}


def test_early_stopping_on_the_probe_stops_checkpoints_and_resumes(setup: dict[str, str], tmp_path: Path) -> None:
    # min_delta 1.0: an accuracy can never improve by more than 1, so every probe after the first is a bad one.
    never_better = {"probe_set": setup["probe"], "early_stopping_min_delta": 1.0, "save_steps": 100}
    result = pretrain(load_recipe(None, overrides(setup, tmp_path / "stop", probe_steps=2, early_stopping_patience=2,
                                                  **never_better)))
    assert result["stopped_early"] and result["step"] == 4 and result["best_probe_step"] == 0
    assert sorted(probe_rows(tmp_path / "stop")) == [0, 2, 4] and max(metrics(tmp_path / "stop")) == 4
    assert [p.name for p in checkpoints(tmp_path / "stop")] == ["checkpoint-4"]
    state = json.loads((tmp_path / "stop" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["early_stopping"]["bad_updates"] == 2 and state["early_stopping"]["best_step"] == 0
    # The early-stopping state survives a resume: one bad probe before the checkpoint, the second one after it.
    pretrain(load_recipe(None, overrides(setup, tmp_path / "resume", probe_steps=3, early_stopping_patience=2,
                                         max_steps=3, **never_better)))
    resumed = pretrain(load_recipe(None, overrides(setup, tmp_path / "resume", probe_steps=3,
                                                   early_stopping_patience=2, resume_from_checkpoint="latest",
                                                   **never_better)))
    assert resumed["stopped_early"] and resumed["step"] == 6


def test_bad_probe_settings_fail_before_training(setup: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="early_stopping_patience=2 needs a probe_set to watch"):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "a", early_stopping_patience=2)))
    with pytest.raises(RecipeError, match=r"early_stopping_metric='probe/accuracy/xx' names a language the probe set "
                                          r"does not evaluate; allowed: \['de', 'en', 'fr', 'sw'\]"):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "b", probe_set=setup["probe"],
                                             early_stopping_patience=2, early_stopping_metric="probe/accuracy/xx")))
    with pytest.raises(ValueError, match="probe"):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "c", probe_set=str(tmp_path / "missing"))))
    assert not any((tmp_path / name / "metrics.jsonl").exists() for name in "abc")


def test_tokenizer_vocabulary_too_large_for_the_corpus_names_the_field(setup: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"tokenizer_vocab_size=50000: vocab_size=50000 cannot be reached on this "
                                          r"sample: .* lower vocab_size"):
        pretrain(load_recipe(None, [*overrides(setup, tmp_path / "run"), "--tokenizer", "null",
                                    "--tokenizer_vocab_size", "50000"]))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
