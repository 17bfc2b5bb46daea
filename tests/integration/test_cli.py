"""The `xlmr-hf` console script: help, info, demo and convert."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
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
    with pytest.raises(FileExistsError):
        main(["convert", str(tmp_path / "ours"), str(tmp_path / "hf"), "--to", "transformers"])
