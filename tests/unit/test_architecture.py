"""Package structure: import-linter contracts hold and importing the package has no side effect beyond Auto
registration."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports (import-linter, a dev dependency) is not installed next to this interpreter")
    result = subprocess.run([exe, "--config", str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


def test_import_registers_auto_classes_and_nothing_else():
    code = (
        "import logging, sys, torch\n"
        "before = (torch.get_num_threads(), torch.get_default_dtype(), logging.getLogger().level, "
        "len(logging.getLogger().handlers))\n"
        "import xlmr_hf\n"
        "from transformers import AutoConfig, AutoModelForMaskedLM\n"
        "after = (torch.get_num_threads(), torch.get_default_dtype(), logging.getLogger().level, "
        "len(logging.getLogger().handlers))\n"
        "assert before == after, (before, after)\n"
        "assert type(AutoConfig.for_model('xlmr-hf')).__name__ == 'XLMRobertaConfig'\n"
        "assert AutoModelForMaskedLM._model_mapping[xlmr_hf.XLMRobertaConfig] is xlmr_hf.XLMRobertaForMaskedLM\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
