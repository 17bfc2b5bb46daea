"""The pretraining loop as a `Pretrainer`: batches from a StatefulDataLoader with 0, 1 or 2 workers give the same
losses and resume exactly (also with another number of workers), regional compilation trains to the same losses, and
`train_step` never reads a device value on the host (only `sync` does)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from test_pretrain import metrics, overrides, setup  # noqa: F401 - setup: the module-scoped corpus/tokenizer fixture

from xlmr_hf.training import Pretrainer, load_recipe, pretrain
from xlmr_hf.training.arguments import RecipeError

NO_DROPOUT = ("{num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4, intermediate_size: 64, "
              "hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}")


def losses(output: Path) -> dict[int, float]:
    return {step: row["loss"] for step, row in metrics(output).items()}


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_give_the_same_losses_and_tokens(setup: dict[str, str], tmp_path: Path,  # noqa: F811
                                                 workers: int) -> None:
    pretrain(load_recipe(None, overrides(setup, tmp_path / "w0", max_steps=8)))
    pretrain(load_recipe(None, overrides(setup, tmp_path / "wn", max_steps=8, dataloader_num_workers=workers)))
    reference, got = metrics(tmp_path / "w0"), metrics(tmp_path / "wn")
    assert losses(tmp_path / "wn") == losses(tmp_path / "w0")  # exactly: the same batches, the same dropout
    for step in reference:
        assert {k: v for k, v in got[step].items() if k.startswith("tokens/")} == \
               {k: v for k, v in reference[step].items() if k.startswith("tokens/")}


@pytest.mark.parametrize(("before", "after"), [(2, 2), (0, 2), (2, 1)])
def test_resume_is_exact_with_workers(setup: dict[str, str], tmp_path: Path, before: int,  # noqa: F811
                                      after: int) -> None:
    """A checkpoint written with ``before`` workers resumes with ``after`` workers to the uninterrupted run."""
    pretrain(load_recipe(None, overrides(setup, tmp_path / "ref", max_steps=12, save_steps=6)))
    first = tmp_path / "first"
    pretrain(load_recipe(None, overrides(setup, first, max_steps=12, save_steps=6, dataloader_num_workers=before)))
    resumed = tmp_path / "resumed"
    pretrain(load_recipe(None, overrides(setup, resumed, max_steps=12, save_steps=6, dataloader_num_workers=after,
                                         resume_from_checkpoint=str(first / "checkpoint-6"))))
    reference = losses(tmp_path / "ref")
    assert losses(first) == reference
    assert losses(resumed) == {step: reference[step] for step in range(7, 13)}
    assert metrics(resumed)[12]["tokens/en"] == metrics(tmp_path / "ref")[12]["tokens/en"]


@pytest.mark.parametrize("padding_free", ["false", "true"])
def test_torch_compile_trains_to_the_same_losses(setup: dict[str, str], tmp_path: Path,  # noqa: F811
                                                 padding_free: str) -> None:
    """Regional compilation with the fused MLM loss (the default), padded and padding-free batches."""
    common = {"max_steps": 4, "model_overrides": NO_DROPOUT, "padding_free": padding_free}
    pretrain(load_recipe(None, overrides(setup, tmp_path / "eager", **common)))
    pretrain(load_recipe(None, overrides(setup, tmp_path / "compiled", torch_compile="true", **common)))
    eager, compiled = losses(tmp_path / "eager"), losses(tmp_path / "compiled")
    assert eager.keys() == compiled.keys()
    for step in eager:  # fp32: the compiled kernels fuse and reorder reductions, nothing more
        assert compiled[step] == pytest.approx(eager[step], rel=1e-4), step


def test_train_step_reads_nothing_from_the_device(setup: dict[str, str], tmp_path: Path,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Pretrainer(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=8, logging_steps=4))).setup()
    trainer.model.train()
    loop_files = {str(Path(sys.modules[m].__file__)) for m in
                  ("xlmr_hf.training.pretrain", "xlmr_hf.training.step_metrics", "xlmr_hf.training.batches")}
    reads: list[str] = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
        real = getattr(torch.Tensor, name)

        def spy(self, *args, _real=real, _name=name):  # noqa: ANN001, ANN202
            caller = sys._getframe(1).f_code.co_filename
            if caller in loop_files:
                reads.append(f"{_name} in {Path(caller).name}:{sys._getframe(1).f_lineno}")
            return _real(self, *args)

        monkeypatch.setattr(torch.Tensor, name, spy)
    for _ in range(3):  # steps 1-3: no logging, evaluation or save step
        trainer.train_step()
        trainer.after_step()
    assert reads == []
    trainer.train_step()
    trainer.after_step()  # step 4 logs: the one place the loop reads the device
    assert reads and trainer.language_tokens["en"] > 0
    monkeypatch.undo()
    trainer.finish()


def test_bad_speed_settings_are_clear_errors(setup: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(RecipeError, match="attn_implementation must be one of .*got 'flash'"):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "a", attn_implementation="flash")))
    with pytest.raises(RecipeError, match="dataloader_num_workers must be >= 0"):
        pretrain(load_recipe(None, overrides(setup, tmp_path / "b", dataloader_num_workers=-1)))
    if not torch.cuda.is_available():
        with pytest.raises(RecipeError, match="attn_implementation='flash_attention_2' cannot be used here: "):
            pretrain(load_recipe(None, overrides(setup, tmp_path / "c", attn_implementation="flash_attention_2")))


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's mallopt")
@pytest.mark.parametrize("cache", [False, True])
def test_cpu_allocator_cache_keeps_freed_buffers_mapped(cache: bool) -> None:
    """A freed 64 MiB buffer allocated again: page-faulted in again with glibc's defaults, not once cached."""
    import subprocess

    code = ("import resource, sys, torch\n"
            "from xlmr_hf.training.components import cache_cpu_allocator\n"
            f"print(cache_cpu_allocator() if {cache} else 'default')\n"
            "for _ in range(5):\n"
            "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "    buffer = torch.ones(64 * 2**20, dtype=torch.uint8); del buffer\n"
            "    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    pages = 64 * 2**20 // __import__("resource").getpagesize()
    if cache:
        assert out[0] == "True" and [int(n) for n in out[-2:]] == [0, 0]  # mapped while the heap grows, then kept
    else:
        assert all(int(n) >= pages for n in out[1:])
