"""``import xlmr_hf`` is cheap: `xlmr_hf.corpus` loads neither torch nor transformers, and the XLM-R classes are
registered with transformers' Auto classes as soon as those are imported, whichever transformers import comes first.
Each case runs in a fresh interpreter (the test process has long imported everything)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_corpus_package_imports_neither_torch_nor_transformers() -> None:
    out = _run("""
        import xlmr_hf.corpus, sys
        assert 'torch' not in sys.modules
        from xlmr_hf.corpus import *  # every public name, resolved
        import xlmr_hf.corpus.cleaning, xlmr_hf.corpus.pipeline
        heavy = sorted(m for m in ('torch', 'transformers', 'datasets', 'xlmr_hf.models') if m in sys.modules)
        print(heavy, len(xlmr_hf.corpus.__all__))
    """)
    assert out.startswith("[] ")


def test_import_xlmr_hf_alone_is_cheap_and_names_load_on_use() -> None:
    out = _run("""
        import sys, xlmr_hf
        before = sorted(m for m in ('torch', 'transformers', 'xlmr_hf.models') if m in sys.modules)
        model = xlmr_hf.XLMRobertaForMaskedLM  # loads (and registers) on first use
        from transformers import AutoConfig
        print(before, model.__module__, type(AutoConfig.for_model('xlmr-hf')).__module__)
    """)
    assert out == "[] xlmr_hf.models.modeling_xlmr xlmr_hf.models.configuration_xlmr"


@pytest.mark.parametrize("first_import", [
    "from transformers import AutoConfig",
    "from transformers import AutoModelForMaskedLM",
    "from transformers import PreTrainedModel",
    "import transformers.modeling_layers",
    "from transformers import Trainer",
    "import accelerate",
])
def test_auto_classes_know_xlmr_hf_after_any_transformers_import(first_import: str) -> None:
    out = _run(f"""
        import sys, xlmr_hf
        {first_import}
        # registered as soon as transformers' Auto classes are loaded (not before: accelerate alone loads none)
        registered = ('xlmr_hf.models' in sys.modules) == ('transformers.models.auto.configuration_auto' in sys.modules)
        from transformers import AutoConfig, AutoModelForMaskedLM
        config = AutoConfig.for_model('xlmr-hf', num_hidden_layers=1, hidden_size=8, num_attention_heads=2,
                                      intermediate_size=8, vocab_size=20)
        model = AutoModelForMaskedLM.from_config(config)
        hooks = [type(f).__name__ for f in sys.meta_path if type(f).__module__ == 'xlmr_hf._registration']
        print(registered, type(model).__name__, type(model).__module__, hooks)
    """)
    assert out == "True XLMRobertaForMaskedLM xlmr_hf.models.modeling_xlmr []"


def test_transformers_imported_before_xlmr_hf_registers_at_once() -> None:
    out = _run("""
        import sys
        from transformers import AutoModel
        import xlmr_hf
        from transformers import AutoConfig
        print('xlmr_hf.models' in sys.modules, type(AutoConfig.for_model('xlmr-hf')).__name__)
    """)
    assert out == "True XLMRobertaConfig"
