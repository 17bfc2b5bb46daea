"""`xlmr-hf pretrain` under the launcher configs of `recipes/accelerate/`: two CPU processes over gloo with DeepSpeed
ZeRO-1/2/3 (and ZeRO-3 with CPU offload) give the single-process losses, write a consolidated checkpoint that loads
with `from_pretrained` in a fresh process, and resume exactly; `single.yaml` is the plain one-process run.

Each run is a subprocess started by ``accelerate launch`` (the test process never initialises DeepSpeed, so loading the
checkpoints here is the "fresh process"). The first DeepSpeed run JIT-compiles DeepSpeed's shared-memory op (about 30 s,
cached in ``~/.cache/torch_extensions``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import pytest
import torch
from fixtures.probe_data import write_probe_set
from fixtures.tiny_tokenizer import build_tiny_tokenizer

ROOT = Path(__file__).resolve().parents[2]
NO_DROPOUT = ("{num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4, intermediate_size: 64, "
              "hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}")
LAUNCHER = Path(sys.executable).parent / "accelerate"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    corpus = tmp_path_factory.mktemp("corpus")
    text.write_cc100_corpus(corpus, {"en": 20000, "fr": 8000, "de": 4000, "sw": 1500}, seed=5)
    tokenizer = tmp_path_factory.mktemp("tok")
    build_tiny_tokenizer(tokenizer)
    probe = tmp_path_factory.mktemp("probe")
    write_probe_set(probe, languages=("en", "de", "fr", "sw"), train_languages=("en", "de"))
    runs = tmp_path_factory.mktemp("runs")
    _run(None, runs / "reference", corpus, tokenizer, "--probe_set", str(probe), "--probe_steps", "6")
    return {"corpus": corpus, "tokenizer": tokenizer, "runs": runs, "probe": probe}


def _run(config: str | None, output: Path, corpus: Path, tokenizer: Path, *extra: str) -> None:
    """One run of 12 steps (checkpoints at 10 and 12); ``config`` None = plain ``python -m xlmr_hf.cli``."""
    fields = {"corpus": corpus, "tokenizer": tokenizer, "output_dir": output, "model_overrides": NO_DROPOUT,
              "seq_len": 32, "global_batch_size": 8, "micro_batch_size": 4, "learning_rate": "2.0e-3",
              "warmup_steps": 3, "max_steps": 12, "save_steps": 10, "logging_steps": 1, "mixed_precision": "no",
              "seed": 3, "save_total_limit": 2}
    command = [sys.executable, "-m", "xlmr_hf.cli"]
    if config is not None:
        command = [str(LAUNCHER), "launch", "--config_file", f"recipes/accelerate/{config}.yaml", "-m", "xlmr_hf.cli"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
    env["OMP_NUM_THREADS"] = "1"
    args = [item for key, value in fields.items() for item in (f"--{key}", str(value))]
    result = subprocess.run([*command, "pretrain", *args, *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])


def _losses(output: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row for row in rows if "loss" in row}


def _probes(output: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row for row in rows if "probe/accuracy" in row}


def _assert_same_run(got: Path, reference: Path) -> None:
    mine, ref = _losses(got), _losses(reference)
    assert sorted(mine) == list(range(1, 13))
    for step, row in ref.items():
        assert mine[step]["loss"] == pytest.approx(row["loss"], abs=1e-5), step
        assert mine[step]["learning_rate"] == row["learning_rate"], step
        assert mine[step]["tokens/en"] == row["tokens/en"], step  # the same documents


def _assert_same_weights(checkpoint: Path, reference: Path) -> None:
    from transformers import AutoModelForMaskedLM

    import xlmr_hf

    model = AutoModelForMaskedLM.from_pretrained(checkpoint)
    expected = AutoModelForMaskedLM.from_pretrained(reference).state_dict()
    assert type(model).__name__ == "XLMRobertaForMaskedLM" and model.config.num_hidden_layers == 2
    state = model.state_dict()
    assert sorted(state) == sorted(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("config", ["zero2", "zero3", "zero1", "zero3_offload"])
def test_zero_on_two_cpu_processes_matches_one_process(setup: dict[str, Path], config: str) -> None:
    output = setup["runs"] / config
    # ZeRO-3 also runs the downstream probe: every process gathers the partitioned weights for the frozen features.
    probe = ["--probe_set", str(setup["probe"]), "--probe_steps", "6"] if config == "zero3" else []
    # TensorBoard on: the run must exit 0 (it used to exit 1 after success) and write its event file once
    _run(config, output, setup["corpus"], setup["tokenizer"], *probe, "--report_to", "[tensorboard]")
    assert len(list((output / "pretrain").glob("events.out.tfevents.*"))) == 1
    state = output / "checkpoint-12" / "training_state"
    states = sorted(p.name for p in state.glob("rng_state_*"))
    assert states == ["rng_state_0.safetensors", "rng_state_1.safetensors"]  # really two processes
    assert not list(state.rglob("*.pkl"))  # no pickled RNG or scheduler state
    shards = sorted(p.name for p in (state / "deepspeed" / "pytorch_model").glob("*optim*"))
    assert len(shards) == 2, shards  # the optimizer state is partitioned over both (ZeRO)
    _assert_same_run(output, setup["runs"] / "reference")
    if probe:
        mine, ref = _probes(output), _probes(setup["runs"] / "reference")
        assert sorted(mine) == sorted(ref) == [0, 6, 12]
        for step, row in ref.items():
            assert mine[step] == pytest.approx(row, abs=1e-6), step
    # the model is consolidated (under ZeRO-3 gathered from both partitions) and loads in a fresh process
    _assert_same_weights(output / "checkpoint-12", setup["runs"] / "reference" / "checkpoint-12")


def test_zero3_resumes_exactly(setup: dict[str, Path]) -> None:
    finished = setup["runs"] / "zero3"
    if not (finished / "checkpoint-10").is_dir():
        _run("zero3", finished, setup["corpus"], setup["tokenizer"])
    output = setup["runs"] / "zero3-resumed"
    output.mkdir()
    shutil.copytree(finished / "checkpoint-10", output / "checkpoint-10")
    _run("zero3", output, setup["corpus"], setup["tokenizer"], "--resume_from_checkpoint", "latest")
    mine, ref = _losses(output), _losses(finished)
    assert sorted(mine) == [11, 12]
    for step in (11, 12):
        for key in ref[step]:
            if key not in ("tokens_per_s", "mfu", "data_share"):
                assert mine[step][key] == ref[step][key], (step, key)


def test_single_config_is_the_plain_run(setup: dict[str, Path]) -> None:
    output = setup["runs"] / "single"
    _run("single", output, setup["corpus"], setup["tokenizer"])
    mine, ref = _losses(output), _losses(setup["runs"] / "reference")
    assert {s: r["loss"] for s, r in mine.items()} == {s: r["loss"] for s, r in ref.items()}


def test_deepspeed_config_contradicting_the_recipe_is_an_error(setup: dict[str, Path], tmp_path: Path) -> None:
    config = json.loads((ROOT / "recipes/deepspeed/zero2.json").read_text())
    config["train_micro_batch_size_per_gpu"] = 2
    (tmp_path / "ds.json").write_text(json.dumps(config))
    launcher = (ROOT / "recipes/accelerate/zero2.yaml").read_text().replace("recipes/deepspeed/zero2.json",
                                                                            str(tmp_path / "ds.json"))
    (tmp_path / "zero2.yaml").write_text(launcher)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
    result = subprocess.run([str(LAUNCHER), "launch", "--config_file", str(tmp_path / "zero2.yaml"), "-m",
                             "xlmr_hf.cli", "pretrain", "--corpus", str(setup["corpus"]), "--tokenizer",
                             str(setup["tokenizer"]), "--output_dir", str(tmp_path / "out"), "--model_overrides",
                             NO_DROPOUT, "--seq_len", "32", "--global_batch_size", "8", "--micro_batch_size", "4",
                             "--max_steps", "2", "--mixed_precision", "no"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode != 0
    assert ("the DeepSpeed config sets train_micro_batch_size_per_gpu=2 but the recipe has 4" in result.stderr
            + result.stdout)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_crafted_deepspeed_shard_is_refused_unread(setup: dict[str, Path], tmp_path: Path) -> None:
    """DeepSpeed loads its shards with ``weights_only=False``: a shard naming anything beyond plain data and
    DeepSpeed's own types is refused before DeepSpeed sees it, even with a manifest forged to match."""
    from xlmr_hf.training.state import write_manifest

    finished = setup["runs"] / "zero2"
    if not (finished / "checkpoint-12").is_dir():
        _run("zero2", finished, setup["corpus"], setup["tokenizer"])
    output, marker = tmp_path / "crafted", tmp_path / "payload-ran"
    shutil.copytree(finished / "checkpoint-12", output / "checkpoint-12")
    shard = output / "checkpoint-12" / "training_state" / "deepspeed" / "pytorch_model" / "mp_rank_00_model_states.pt"
    torch.save({"module": _Payload(marker)}, shard)
    write_manifest(output / "checkpoint-12", 12)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
    result = subprocess.run([str(LAUNCHER), "launch", "--config_file", "recipes/accelerate/zero2.yaml", "-m",
                             "xlmr_hf", "pretrain", "--corpus", str(setup["corpus"]), "--tokenizer",
                             str(setup["tokenizer"]), "--output_dir", str(output), "--model_overrides", NO_DROPOUT,
                             "--seq_len", "32", "--global_batch_size", "8", "--micro_batch_size", "4",
                             "--learning_rate", "2.0e-3", "--warmup_steps", "3", "--max_steps", "14", "--save_steps",
                             "10", "--mixed_precision", "no", "--seed", "3", "--save_total_limit", "2"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode != 0
    assert "mp_rank_00_model_states.pt: refers to ['io.open'], which loading would run; refused" in result.stderr
    assert not marker.exists()
