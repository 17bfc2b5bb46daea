"""Run settings of `xlmr-hf pretrain`: recipe + overrides, types, unknown fields and batch arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlmr_hf.training import PretrainArguments, RecipeError, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def test_recipe_then_overrides(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("max_steps: 7\nlanguages: [en, fr]\nmixed_precision: bf16\nmodel_overrides: {hidden_size: 64}\n")
    args = load_recipe(recipe, ["--max_steps", "9", "--learning_rate=3e-4", "--mixed_precision", "no",
                                "--corpus", "data/cc100", "--resume_from_checkpoint", "latest"])
    assert (args.max_steps, args.learning_rate, args.mixed_precision) == (9, 3e-4, "no")
    assert args.languages == ["en", "fr"] and args.model_overrides == {"hidden_size": 64}
    assert (args.corpus, args.resume_from_checkpoint) == ("data/cc100", "latest")
    assert load_recipe(None, ["--languages", "en,sw"]).languages == ["en", "sw"]
    assert load_recipe(None, {"corpus": None}).corpus is None


def test_shipped_debug_recipe_loads() -> None:
    args = load_recipe(ROOT / "recipes/pretrain/debug.yaml")
    assert args.batch_arithmetic(1) == 2 and args.mixed_precision == "no"


def test_eval_tokens_default_and_override() -> None:
    assert PretrainArguments().eval_tokens == 16384
    assert load_recipe(None, ["--eval_tokens", "16"]).eval_tokens == 16


@pytest.mark.parametrize(("overrides", "message"), [
    (["--max_step", "3"], r"unknown field 'max_step' \(did you mean 'max_steps'\?\)"),
    (["--max_steps", "ten"], r"max_steps must be int, got 'ten'"),
    (["--max_steps", "0"], r"max_steps must be >= 1, got 0"),
    (["--eval_tokens", "15"], r"eval_tokens must be >= 16, got 15"),
    (["--eval_documents", "50"], r"unknown field 'eval_documents'"),  # replaced by eval_tokens
    (["--mixed_precision", "fp8"], r"mixed_precision must be one of \['no', 'bf16', 'fp16'\], got 'fp8'"),
    (["--learning_rate", "2"], r"learning_rate must be in \(0, 1\), got 2"),
    (["--seq_len", "null"], r"seq_len may not be null"),
    (["max_steps", "3"], r"overrides must be --field value pairs, got 'max_steps'"),
    (["--max_steps"], r"override --max_steps has no value"),
])
def test_bad_settings(overrides: list[str], message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        load_recipe(None, overrides)


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "none.yaml")


def test_batch_arithmetic() -> None:
    args = PretrainArguments(global_batch_size=8192, micro_batch_size=32)
    assert args.batch_arithmetic(8) == 32  # 8 GPUs × 32 × 32 accumulation = 8192 sequences, as in the paper
    with pytest.raises(RecipeError, match=r"global_batch_size=8192 is not divisible by processes \(3\) × "
                                          r"micro_batch_size \(32\) = 96"):
        args.batch_arithmetic(3)
    fixed = PretrainArguments(global_batch_size=64, micro_batch_size=8, gradient_accumulation_steps=2)
    assert fixed.batch_arithmetic(4) == 2
    with pytest.raises(RecipeError, match=r"global_batch_size=64 must equal processes \(2\) × micro_batch_size "
                                          r"\(8\) × gradient_accumulation_steps \(2\) = 32"):
        fixed.batch_arithmetic(2)


@pytest.mark.parametrize(("name", "preset", "layouts"), [
    ("base", "base", {64: 4, 8: 32}),
    ("large", "large", {64: 8, 8: 64}),
])
def test_shipped_paper_recipes_reach_8192_sequences(name: str, preset: str, layouts: dict[int, int]) -> None:
    """The arithmetic in the recipes' comments holds: processes × micro-batch × accumulation = 8192."""
    args = load_recipe(ROOT / f"recipes/pretrain/{name}.yaml")
    assert (args.model_preset, args.seq_len, args.global_batch_size, args.alpha) == (preset, 512, 8192, 0.3)
    for processes, accumulation in layouts.items():
        assert args.batch_arithmetic(processes) == accumulation
        assert processes * args.micro_batch_size * accumulation == 8192


def test_training_flops_per_token_counts_the_lm_head_on_masked_tokens_only() -> None:
    import torch

    from xlmr_hf.models import XLMRobertaConfig, XLMRobertaForMaskedLM
    from xlmr_hf.training import training_flops_per_token

    config = XLMRobertaConfig.from_preset("base")
    with torch.device("meta"):
        model = XLMRobertaForMaskedLM(config)
    h, v = 768, 250002
    layer = 4 * (h * h + h) + 2 * h + (h * 3072 + 3072) + (3072 * h + h) + 2 * h
    encoder = 12 * layer + 2 * h  # + the embedding LayerNorm; word/position/type embeddings are lookups
    head = (h * h + h) + 2 * h + v + v * h  # transform, its LayerNorm, the output bias, the (tied) projection
    attention = 12 * 12 * h * 512
    assert training_flops_per_token(config, model, 512) == 6 * encoder + 6 * 0.15 * head + attention
    assert training_flops_per_token(config, model, 512, mask_rate=1.0) == 6 * encoder + 6 * head + attention
