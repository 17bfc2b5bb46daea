"""CUDA correctness (``-m gpu``; skipped where torch sees no GPU, see tests/conftest.py): parity with transformers'
`XLMRobertaForMaskedLM` on the GPU in fp32 and bf16 autocast for sdpa and flash-attention-2 (where ``flash_attn``
imports), the padding-free path (``cu_seqlens``) against padded per-document runs, the fused MLM loss and the sparse
embedding gradient against the plain path, a short pretraining run under ``recipes/accelerate/zero2.yaml`` (DeepSpeed
ZeRO-2, one process, NCCL; where deepspeed imports) and exact resume on the GPU.

Run on a GPU machine with ``python -m pytest -m gpu tests/gpu`` (``benchmarks/gpu/run.sh`` does, on a bare one).
About a minute on an H200; the models are tiny, so these check correctness, not speed.

Tolerances: fp32 with TF32 off (torch's default for matmuls) compares to 1e-4; under bf16 autocast both sides round
every matmul to bf16 at different points (ours fuses q/k/v and the LM head's loss), so outputs are compared relative
to their magnitude (3e-2) and losses to 1e-2. A resumed fp32 run must give the uninterrupted run's losses and weights
to 1e-5 (bf16: 2e-3): only the order of floating-point atomics in some CUDA kernels (attention backward) may differ,
while a wrong RNG, optimizer or data state shows as differences of 1e-2 and more.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import build_pair, padded_batch, tiny_xlmr_config

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]
CUDA = torch.device("cuda")
SHAPE = {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 130}
HAS_FLASH = importlib.util.find_spec("flash_attn") is not None
HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
IMPLEMENTATIONS = ["sdpa", pytest.param("flash_attention_2", marks=pytest.mark.skipif(
    not HAS_FLASH, reason="flash_attn does not import here"))]


def relative_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    a, b = a.detach().float(), b.detach().float()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def mlm_inputs(config, lengths=(100, 64, 17), seed: int = 0) -> dict[str, torch.Tensor]:
    """Right-padded rows with 15% of the real tokens labelled (one label at least), on the GPU."""
    ids, mask = padded_batch(config, lengths=lengths, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    chosen = (torch.rand(ids.shape, generator=g) < 0.15) & mask.bool()
    chosen[0, 1] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return {"input_ids": ids.to(CUDA), "attention_mask": mask.to(CUDA), "labels": labels.to(CUDA)}


def set_switch(model: torch.nn.Module, name: str, value: bool) -> None:
    """Set a speed switch of our masked LM wherever this version keeps it: a config field (saved with checkpoints)
    and/or a model attribute (older versions)."""
    found = False
    if hasattr(model.config, name):
        setattr(model.config, name, value)
        found = True
    if hasattr(type(model), name) or name in vars(model):
        try:
            setattr(model, name, value)
            found = True
        except AttributeError:  # a read-only property over the config field
            pass
    if not found:
        pytest.skip(f"this model has no {name} switch")


# ------------------------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("layout", ["post", "pre"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_parity_with_transformers_on_cuda(layout: str, precision: str, implementation: str) -> None:
    if implementation == "flash_attention_2" and precision == "fp32":
        pytest.skip("flash-attention runs in half precision only")
    config = tiny_xlmr_config(layout, **SHAPE)
    # transformers' side keeps sdpa (its flash path needs its own checks); ours runs `implementation`
    ours, theirs = build_pair("masked_lm", config, attn_implementation="sdpa")
    ours.to(CUDA), theirs.to(CUDA)
    if implementation != "sdpa":
        ours.set_attn_implementation(implementation)
    inputs = mlm_inputs(config)
    real = inputs["attention_mask"].bool()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        hidden_ours = ours.roberta(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])[0]
        hidden_theirs = theirs.roberta(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])[0]
        loss_ours, loss_theirs = ours(**inputs).loss, theirs(**inputs).loss
    if precision == "fp32":
        assert (hidden_ours[real] - hidden_theirs[real]).abs().max().item() <= 1e-4
        assert loss_ours.item() == pytest.approx(loss_theirs.item(), abs=1e-4)
    else:
        assert relative_diff(hidden_ours[real], hidden_theirs[real]) <= 3e-2
        assert loss_ours.item() == pytest.approx(loss_theirs.item(), rel=1e-2)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_packed_cu_seqlens_equals_padded_documents(precision: str, implementation: str) -> None:
    """One packed row with ``cu_seqlens`` gives each document's outputs of a padded batch (ours, then transformers')."""
    if implementation == "flash_attention_2" and precision == "fp32":
        pytest.skip("flash-attention runs in half precision only")
    config = tiny_xlmr_config("post", **SHAPE)
    ours, theirs = build_pair("masked_lm", config, attn_implementation="sdpa")
    ours.to(CUDA), theirs.to(CUDA)
    lengths = (100, 64, 17, 3)
    ids, mask = padded_batch(config, lengths=lengths, seed=3)
    packed = torch.cat([ids[row, :n] for row, n in enumerate(lengths)])[None].to(CUDA)
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=CUDA)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        padded = theirs.roberta(input_ids=ids.to(CUDA), attention_mask=mask.to(CUDA))[0]
        padded_ours = ours.roberta(input_ids=ids.to(CUDA), attention_mask=mask.to(CUDA))[0]
        if implementation != "sdpa":
            ours.set_attn_implementation(implementation)
        flat = ours.roberta(input_ids=packed, cu_seqlens=cu_seqlens)[0][0]
    offset = 0
    for row, n in enumerate(lengths):
        for reference in (padded, padded_ours):
            if precision == "fp32":
                assert (flat[offset:offset + n] - reference[row, :n]).abs().max().item() <= 1e-4, row
            else:
                assert relative_diff(flat[offset:offset + n], reference[row, :n]) <= 3e-2, row
        offset += n


# --------------------------------------------------------------------------------------------- speed switches
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize(("fused", "sparse"), [(True, False), (False, True), (True, True)])
def test_fused_loss_and_sparse_embedding_grad_match_the_plain_path(precision: str, fused: bool, sparse: bool) -> None:
    config = tiny_xlmr_config("post", **SHAPE)
    fast, _ = build_pair("masked_lm", config, attn_implementation="sdpa")
    plain = copy.deepcopy(fast)
    fast.to(CUDA).train(), plain.to(CUDA).train()  # dropout is 0 in the tiny config: train mode is deterministic
    set_switch(fast, "fused_mlm_loss", fused)
    set_switch(fast, "sparse_embedding_grad", sparse)
    set_switch(plain, "fused_mlm_loss", False)
    set_switch(plain, "sparse_embedding_grad", False)
    inputs = mlm_inputs(config, seed=5)
    losses = []
    for model in (fast, plain):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**inputs).loss
        loss.backward()
        losses.append(loss.item())
    tolerance = {"fp32": (1e-4, 1e-5), "bf16": (2e-2, 2e-3)}[precision]  # (rtol, atol)
    assert losses[0] == pytest.approx(losses[1], rel=tolerance[0])
    grads = dict(plain.named_parameters())
    for name, param in fast.named_parameters():
        assert param.grad is not None, name
        got = param.grad.to_dense() if param.grad.is_sparse else param.grad
        assert not got.is_sparse and got.layout == torch.strided, name
        torch.testing.assert_close(got, grads[name].grad, rtol=tolerance[0], atol=tolerance[1], msg=name)


def test_tied_decoder_gradient_is_dense_with_sparse_lookup() -> None:
    config = tiny_xlmr_config("post", **SHAPE)
    model, _ = build_pair("masked_lm", config)
    model.to(CUDA).train()
    set_switch(model, "sparse_embedding_grad", True)
    model(**mlm_inputs(config)).loss.backward()
    grad = model.roberta.embeddings.word_embeddings.weight.grad
    assert grad is not None and grad.layout == torch.strided and torch.isfinite(grad).all()


# ------------------------------------------------------------------------------------------- pretraining loop
@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
    from fixtures.tiny_tokenizer import build_tiny_tokenizer

    directory = tmp_path_factory.mktemp("corpus")
    text.write_cc100_corpus(directory, {"en": 20000, "fr": 8000, "de": 4000, "sw": 1500}, seed=5)
    tokenizer = tmp_path_factory.mktemp("tok")
    build_tiny_tokenizer(tokenizer)
    return {"corpus": str(directory), "tokenizer": str(tokenizer)}


@pytest.fixture
def fresh_accelerate() -> object:
    """A fresh accelerate state for each in-process run: its state is a per-process singleton, and a second run with
    another mixed_precision would otherwise be refused."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def run_fields(corpus: dict[str, str], output: Path, **extra: object) -> list[str]:
    """``--field value`` pairs of a 12-step run (checkpoints every 6) of a tiny model with dropout on."""
    fields = {"corpus": corpus["corpus"], "tokenizer": corpus["tokenizer"], "output_dir": str(output),
              "model_overrides": "{num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, "
                                 "intermediate_size: 128}",
              "seq_len": 64, "global_batch_size": 8, "micro_batch_size": 4, "learning_rate": "2.0e-3",
              "warmup_steps": 3, "max_steps": 12, "save_steps": 6, "logging_steps": 1, "mixed_precision": "no",
              "seed": 3, "save_total_limit": 3}
    fields.update(extra)
    return [item for key, value in fields.items() for item in (f"--{key}", str(value))]


def step_losses(output: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows if "loss" in row}


def load_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForMaskedLM

    import xlmr_hf  # noqa: F401 - registers our classes with the Auto classes

    return AutoModelForMaskedLM.from_pretrained(checkpoint).state_dict()


@pytest.mark.usefixtures("fresh_accelerate")
@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_resume_on_cuda_is_exact(corpus: dict[str, str], tmp_path: Path, precision: str) -> None:
    """12 steps straight == the same run killed after its step-6 checkpoint and resumed (dropout on: the CUDA RNG
    state is part of the checkpoint)."""
    from xlmr_hf.training.arguments import load_recipe
    from xlmr_hf.training.pretrain import pretrain

    run = tmp_path / "run"
    result = pretrain(load_recipe(None, run_fields(corpus, run, mixed_precision=precision)))
    assert result["step"] == 12
    straight, weights = step_losses(run), load_weights(run / "checkpoint-12")
    shutil.rmtree(run / "checkpoint-12")  # as if killed after step 12 was logged but before it was saved
    resumed = pretrain(load_recipe(None, run_fields(corpus, run, mixed_precision=precision,
                                                    resume_from_checkpoint=str(run / "checkpoint-6"))))
    assert resumed["step"] == 12
    again = step_losses(run)
    assert sorted(again) == list(range(1, 13))
    tolerance = 1e-5 if precision == "no" else 2e-3
    for step in range(7, 13):
        assert again[step] == pytest.approx(straight[step], abs=tolerance), step
    final = load_weights(run / "checkpoint-12")
    for name, tensor in weights.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=tolerance, msg=name)


@pytest.mark.usefixtures("fresh_accelerate")
@pytest.mark.skipif(not HAS_DEEPSPEED, reason="deepspeed does not import here")
def test_zero2_on_one_gpu_matches_plain_run(corpus: dict[str, str], tmp_path: Path) -> None:
    """``accelerate launch --config_file recipes/accelerate/zero2.yaml --num_processes 1`` (DeepSpeed ZeRO-2, NCCL)
    trains to the plain single-process losses and writes a checkpoint that loads with `from_pretrained`."""
    from xlmr_hf.training.arguments import load_recipe
    from xlmr_hf.training.pretrain import pretrain

    no_dropout = ("{num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, intermediate_size: 128, "
                  "hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}")
    reference = tmp_path / "plain"
    pretrain(load_recipe(None, run_fields(corpus, reference, model_overrides=no_dropout)))
    output = tmp_path / "zero2"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "recipes/accelerate/zero2.yaml",
               "--num_processes", "1", "-m", "xlmr_hf.cli", "pretrain",
               *run_fields(corpus, output, model_overrides=no_dropout)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    assert (output / "checkpoint-12" / "training_state" / "deepspeed").is_dir()  # really DeepSpeed
    mine, ref = step_losses(output), step_losses(reference)
    assert sorted(mine) == list(range(1, 13))
    for step, loss in ref.items():
        assert mine[step] == pytest.approx(loss, abs=1e-4), step
    weights, expected = load_weights(output / "checkpoint-12"), load_weights(reference / "checkpoint-12")
    for name, tensor in expected.items():
        torch.testing.assert_close(weights[name], tensor, rtol=0, atol=1e-4, msg=name)
