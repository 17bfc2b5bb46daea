"""The `xlmr-hf` console script: help generated from the settings dataclasses, info, demo, convert, booleans, and
one-line errors with exit status 2."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import torch

from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM
from xlmr_hf.cli import main


def test_console_script_help_lists_subcommands():
    exe = shutil.which("xlmr-hf", path=str(Path(sys.executable).parent))
    assert exe is not None, "the xlmr-hf console script is not installed"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("info", "demo", "convert"):
        assert command in result.stdout


def test_info_reports_versions_registry_and_preset_counts(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"transformers\s+\d+\.\d+", out)
    for name in ("AutoModelForMaskedLM", "AutoModelForQuestionAnswering", "XLMRobertaForMultipleChoice"):
        assert name in out
    assert re.search(r"base\s+12\s+768\s+12\s+3072\s+250002\s+post\s+278,043,648\s+278,295,186", out)
    assert re.search(r"xxl\s+48\s+4096\s+32\s+16384\s+250880\s+pre\s+10,712,735,744", out)


def test_demo_fills_a_mask_and_checks_packing(capsys):
    assert main(["demo", "--layers", "1", "--vocab-size", "200"]) == 0
    out = capsys.readouterr().out
    assert "logits [2, 12, 200]" in out
    assert "masked-only head: labels at 2 positions -> logits [2, 200]" in out
    diff = float(re.search(r"max \|packed - alone\| = ([0-9.e+-]+)", out).group(1))
    assert diff < 1e-4


def test_convert_round_trip_through_the_cli(tmp_path, capsys):
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=37, max_position_embeddings=40)
    model = XLMRobertaForMaskedLM(config).eval()
    model.save_pretrained(tmp_path / "ours")
    assert main(["convert", str(tmp_path / "ours"), str(tmp_path / "hf"), "--to", "transformers"]) == 0
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["model_type"] == "xlm-roberta"
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "back"), "--from", "transformers",
                 "--to", "xlmr-hf"]) == 0
    back = XLMRobertaForMaskedLM.from_pretrained(tmp_path / "back").eval()
    ids = torch.randint(4, 98, (2, 9))
    assert torch.equal(back(input_ids=ids).logits, model(input_ids=ids).logits)
    assert main(["convert", str(tmp_path / "ours"), str(tmp_path / "hf"), "--to", "transformers"]) == 2
    assert "xlmr-hf convert: error: output_dir=" in capsys.readouterr().err  # FileExistsError: one line, no traceback


def _run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xlmr_hf", *args], capture_output=True, text=True, timeout=600,
                          check=False, env={**os.environ, **env})


def _flat(text: str) -> str:
    return " ".join(text.split())


def _expect_field(help_text: str, cls: type, name: str, flag: str) -> None:
    """``flag`` is listed with the field's type, its help text and its default (unless the help explains it)."""
    from xlmr_hf.settings import field_help, type_label

    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    hint = typing.get_type_hints(cls)[name]
    assert f"{flag} {type_label(hint)}" in help_text or f"{flag} [{type_label(hint)}" in help_text, (flag, hint)
    assert _flat(field_help(cls)[name])[:60] in help_text, name
    default = f.default if f.default is not dataclasses.MISSING else (
        f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
    if default is not None and not isinstance(default, (list, tuple, dict)) and "default:" not in field_help(
            cls)[name].lower():
        shown = default.value if hasattr(default, "value") else "''" if default == "" else default
        assert f"(default: {shown})" in help_text, (name, shown)


def test_python_m_xlmr_hf_and_generated_help() -> None:
    from transformers import TrainingArguments

    from xlmr_hf.tasks.qa import MLQAArguments
    from xlmr_hf.training import FinetuneArguments, PretrainArguments

    top = _run_cli("--help")
    assert top.returncode == 0 and all(c in top.stdout for c in ("pretrain", "finetune", "build-corpus"))
    pretrain = _run_cli("pretrain", "--help")
    assert pretrain.returncode == 0, pretrain.stderr
    text = _flat(pretrain.stdout)
    for f in dataclasses.fields(PretrainArguments):
        _expect_field(text, PretrainArguments, f.name, f"--{f.name}")
    mlqa = _run_cli("finetune", "mlqa", "--help")
    assert mlqa.returncode == 0, mlqa.stderr
    text = _flat(mlqa.stdout)
    cls = FinetuneArguments.for_task("mlqa")
    for f in dataclasses.fields(cls):
        if f.name != "task":
            assert f"--{f.name} " in text, f.name  # every TrainingArguments field too
    for name in ("n_best_size", "max_answer_length", "doc_stride", "max_seq_length", "max_predict_samples",
                 "learning_rate", "bf16"):
        _expect_field(text, cls, name, f"--{name}")
    assert {f.name for f in dataclasses.fields(TrainingArguments)} | {
        f.name for f in dataclasses.fields(MLQAArguments)} <= {f.name for f in dataclasses.fields(cls)}
    assert "--ner_dataset" not in text  # another task's field


def test_train_tokenizer_and_build_corpus_flags_come_from_their_dataclasses() -> None:
    from xlmr_hf.corpus import CorpusBuildConfig, ExecutorSettings
    from xlmr_hf.tokenization import TokenizerTrainingConfig

    for command, classes in (("train-tokenizer", [TokenizerTrainingConfig]),
                             ("build-corpus", [ExecutorSettings, CorpusBuildConfig])):
        result = _run_cli(command, "--help")
        assert result.returncode == 0, result.stderr
        text = _flat(result.stdout)
        seen: set[str] = set()
        for cls in classes:  # the first class owns a shared name: --workers is the executor's
            for f in dataclasses.fields(cls):
                if f.name not in seen:
                    _expect_field(text, cls, f.name, f"--{f.name.replace('_', '-')}")
                seen.add(f.name)
    assert "--threads" in _flat(_run_cli("train-tokenizer", "--help").stdout)  # the old spelling still works


def test_train_tokenizer_unit_option(tmp_path: Path, monkeypatch, capsys) -> None:
    import types

    from xlmr_hf import tokenization

    seen = {}

    def fake_train(corpus, output, config, **kwargs):
        seen["config"] = config
        return types.SimpleNamespace(format_table=lambda: "table")

    monkeypatch.setattr(tokenization, "train_tokenizer", fake_train)
    command = ["train-tokenizer", "--corpus", str(tmp_path), "--output", str(tmp_path / "out")]
    assert main([*command, "--unit", "bytes"]) == 0 and seen["config"].unit == "bytes"
    assert main(command) == 0 and seen["config"].unit == "lines"
    capsys.readouterr()
    assert main([*command, "--unit", "tokens"]) == 2
    err = capsys.readouterr().err
    assert err == ("xlmr-hf train-tokenizer: error: unit='tokens' is not allowed: expected one of ['lines', 'bytes', "
                   "'characters'] (XLM-R: lines)\n")
    with pytest.raises(SystemExit):
        main(["train-tokenizer", "--help"])
    text = _flat(capsys.readouterr().out)
    assert "--unit str What p_i" in text and all(unit in text for unit in ("``lines``", "``bytes``", "``characters``"))


@pytest.mark.parametrize(("given", "expected"), [
    (["--padding_free"], True), (["--padding_free", "true"], True), (["--padding_free", "True"], True),
    (["--padding_free", "false"], False), (["--padding_free", "False"], False),
    (["--padding_free", "--max_steps", "3"], True),
])
def test_booleans_take_true_false_and_a_bare_flag(given: list[str], expected: bool) -> None:
    from xlmr_hf.training import load_recipe

    assert load_recipe(None, given).padding_free is expected


def test_every_failure_is_one_line_with_exit_2(tmp_path: Path) -> None:
    from xlmr_hf.data import xnli_sample_dir

    offline = _run_cli("finetune", "xnli", "--model_name_or_path", "nobody/no-such-model", "--data_dir",
                       str(xnli_sample_dir()), "--output_dir", str(tmp_path / "o"), HF_HUB_OFFLINE="1")
    assert offline.returncode == 2, offline.stderr[-2000:]
    last = offline.stderr.strip().splitlines()[-1]
    assert last.startswith("xlmr-hf finetune: error: ") and "nobody/no-such-model" in last
    assert "Traceback" not in offline.stderr
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("max_steps: 3\nlanguages: [en, fr\nseed: 1\n")
    bad = _run_cli("pretrain", str(recipe))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert re.search(rf"xlmr-hf pretrain: error: recipe '{re.escape(str(recipe))}' line \d+: ", bad.stderr)
    debug = _run_cli("--debug", "pretrain", str(recipe))
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    missing = _run_cli("pretrain", "--max_steps")
    assert missing.returncode == 2 and "error: argument --max_steps" in missing.stderr
