"""Numerical parity with transformers' xlm-roberta (post-LN) and xlm-roberta-xl (pre-LN), every head.

Weights are identical (seeded random weights, LayerNorm gains and biases included) and loaded either from a
transformers checkpoint directory through our `from_pretrained`, or in memory with `load_state_dict(strict=True)`.
All runs are fp32 in eval mode on right-padded batches; every position (pads included) is compared.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    HEADS,
    build_hf_model,
    build_pair,
    head_config,
    max_abs_diff,
    our_class,
    padded_batch,
    tiny_xlmr_config,
)

TOL = 1e-5
LAYOUTS = ["post", "pre"]
IMPLS = ["eager", "sdpa"]
ROUTES = ["save", "memory"]


# ---------------------------------------------------------------------------------------------------- inputs per head
def head_inputs(head: str, config, seed: int = 0) -> dict[str, torch.Tensor]:
    """Padded inputs for `head` without labels (multiple choice: (batch=2, choices=3, length))."""
    if head == "multiple_choice":
        ids, mask = padded_batch(config, lengths=(12, 9, 5, 7, 12, 3), seed=seed)
        return {"input_ids": ids.view(2, 3, -1), "attention_mask": mask.view(2, 3, -1)}
    ids, mask = padded_batch(config, lengths=(12, 9, 5), seed=seed)
    return {"input_ids": ids, "attention_mask": mask}


def head_labels(head: str, config, inputs: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    """Label keywords for `head` (ignored positions at padding; one QA answer outside the window)."""
    g = torch.Generator().manual_seed(seed)
    mask = inputs["attention_mask"]
    if head == "masked_lm":
        labels = torch.randint(3, config.vocab_size, mask.shape, generator=g)
        chosen = (torch.rand(mask.shape, generator=g) < 0.4) & mask.bool()
        chosen[0, 1] = True  # at least one label
        return {"labels": torch.where(chosen, labels, torch.full_like(labels, -100))}
    if head == "sequence_classification":
        return {"labels": torch.randint(0, config.num_labels, (mask.shape[0],), generator=g)}
    if head == "token_classification":
        labels = torch.randint(0, config.num_labels, mask.shape, generator=g)
        return {"labels": labels.masked_fill(mask == 0, -100)}
    if head == "question_answering":
        n, length = mask.shape
        start = torch.randint(0, length, (n,), generator=g)
        end = torch.randint(0, length, (n,), generator=g)
        start[-1] = length + 30  # outside the window: clamped and ignored, as in transformers
        return {"start_positions": start, "end_positions": end}
    if head == "multiple_choice":
        return {"labels": torch.tensor([2, 0])}
    return {}


OUTPUT_FIELDS = ("last_hidden_state", "pooler_output", "logits", "start_logits", "end_logits", "loss")


def assert_outputs_close(ours, theirs, tol: float = TOL, fields=OUTPUT_FIELDS) -> None:
    compared = 0
    for field in fields:
        a, b = getattr(ours, field, None), getattr(theirs, field, None)
        if b is None:
            continue
        assert a is not None, f"our output lacks {field}"
        diff = max_abs_diff(a, b)
        assert diff <= tol, f"{field}: max |diff| = {diff:.3g} > {tol}"
        compared += 1
    assert compared, "nothing compared"


# ---------------------------------------------------------------------------------------------------- every head
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("head", list(HEADS))
def test_head_outputs_and_losses_equal_transformers(head, layout, impl, route, tmp_path):
    config = head_config(head, layout)
    ours, hf = build_pair(head, config, seed=3, attn_implementation=impl, route=route, tmp_path=tmp_path)
    assert isinstance(ours, our_class(head))
    assert ours.config.layer_norm_position == layout
    assert ours.config._attn_implementation == impl == hf.config._attn_implementation
    inputs = head_inputs(head, config)
    assert (inputs["attention_mask"] == 0).any(), "the batch must contain padding"

    with torch.no_grad():
        out, ref = ours(**inputs), hf(**inputs)
    assert_outputs_close(out, ref)  # every position, pads included
    if head == "model":
        assert out.pooler_output is not None and out.pooler_output.shape == (3, config.hidden_size)
    if head == "masked_lm":  # without labels: full logits over every position
        assert out.logits.shape == (*inputs["input_ids"].shape, config.vocab_size)

    if head == "model":
        return
    labels = head_labels(head, config, inputs)
    with torch.no_grad():
        out, ref = ours(**inputs, **labels), hf(**inputs, **labels)
    assert out.loss is not None and ref.loss is not None
    if head == "masked_lm":
        mask = labels["labels"] != -100
        assert abs(out.loss.item() - ref.loss.item()) <= 1e-6
        assert out.logits.shape == (int(mask.sum()), config.vocab_size)
        assert max_abs_diff(out.logits, ref.logits[mask]) <= TOL
        assert torch.equal(out.masked_positions, mask.flatten().nonzero().flatten())
    else:
        assert_outputs_close(out, ref)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("problem_type", ["regression", "single_label_classification", "multi_label_classification"])
def test_sequence_classification_problem_types_equal_transformers(layout, problem_type):
    num_labels = 1 if problem_type == "regression" else 3
    config = head_config("sequence_classification", layout, num_labels=num_labels)
    ours, hf = build_pair("sequence_classification", config, seed=4)
    inputs = head_inputs("sequence_classification", config)
    g = torch.Generator().manual_seed(0)
    if problem_type == "regression":
        labels = torch.randn(3, generator=g)
    elif problem_type == "single_label_classification":
        labels = torch.tensor([0, 2, 1])
    else:
        labels = (torch.rand(3, 3, generator=g) > 0.5).float()
    with torch.no_grad():
        out, ref = ours(**inputs, labels=labels), hf(**inputs, labels=labels)
    assert ours.config.problem_type == hf.config.problem_type == problem_type
    assert_outputs_close(out, ref, fields=("logits", "loss"))


# ---------------------------------------------------------------------------------------------------- masked LM
@pytest.mark.parametrize("layout", LAYOUTS)
def test_masked_only_loss_equals_full_logit_loss(layout):
    config = head_config("masked_lm", layout)
    ours, hf = build_pair("masked_lm", config, seed=5, attn_implementation="sdpa")
    inputs = head_inputs("masked_lm", config)
    labels = head_labels("masked_lm", config, inputs)["labels"]
    with torch.no_grad():
        masked = ours(**inputs, labels=labels)
        full = ours(**inputs)  # no labels: full (B, L, V) logits
        hf_out = hf(**inputs, labels=labels)
    assert full.loss is None and full.masked_positions is None
    full_loss = F.cross_entropy(full.logits.reshape(-1, config.vocab_size), labels.reshape(-1), ignore_index=-100)
    assert abs(masked.loss.item() - full_loss.item()) <= 1e-6
    assert abs(masked.loss.item() - hf_out.loss.item()) <= 1e-6
    rows = full.logits.reshape(-1, config.vocab_size).index_select(0, masked.masked_positions)
    assert max_abs_diff(masked.logits, rows) <= TOL


@pytest.mark.parametrize("layout", LAYOUTS)
def test_masked_lm_without_any_label_does_not_crash_and_matches_transformers_nan(layout):
    """All labels -100: transformers' mean CE over zero items is NaN; ours computes the same value over no rows."""
    config = head_config("masked_lm", layout)
    ours, hf = build_pair("masked_lm", config, seed=5)
    inputs = head_inputs("masked_lm", config)
    labels = torch.full_like(inputs["input_ids"], -100)
    with torch.no_grad():
        out, ref = ours(**inputs, labels=labels), hf(**inputs, labels=labels)
    assert out.logits.shape == (0, config.vocab_size)
    assert torch.isnan(out.loss) == torch.isnan(ref.loss)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_masked_lm_gradients_equal_transformers(layout, impl):
    config = head_config("masked_lm", layout)
    ours, hf = build_pair("masked_lm", config, seed=6, attn_implementation=impl)
    inputs = head_inputs("masked_lm", config)
    labels = head_labels("masked_lm", config, inputs)["labels"]
    ours(**inputs, labels=labels).loss.backward()
    hf(**inputs, labels=labels).loss.backward()
    # remove_duplicate=False: tied weights appear under both names (which one survives dedup differs by class)
    ours_params = dict(ours.named_parameters(remove_duplicate=False))
    hf_params = dict(hf.named_parameters(remove_duplicate=False))
    assert ours_params.keys() == hf_params.keys()
    assert ours.lm_head.decoder.weight is ours.roberta.embeddings.word_embeddings.weight
    for name, p in hf_params.items():
        q = ours_params[name]
        if p.grad is None:
            assert q.grad is None or not q.grad.any(), name
            continue
        assert q.grad is not None, f"no gradient for {name}"
        diff = max_abs_diff(q.grad, p.grad)
        assert diff <= TOL, f"grad of {name}: max |diff| = {diff:.3g}"
    # the tied embedding gets both the input and the output-projection gradient
    assert ours.roberta.embeddings.word_embeddings.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("num_items", [7, torch.tensor(13)])
def test_num_items_in_batch_gives_sum_over_num_items(num_items, tiny_config):
    ours, _ = build_pair("masked_lm", tiny_config, seed=7)
    inputs = head_inputs("masked_lm", tiny_config)
    labels = head_labels("masked_lm", tiny_config, inputs)["labels"]
    with torch.no_grad():
        full = ours(**inputs).logits
        out = ours(**inputs, labels=labels, num_items_in_batch=num_items)
        mean = ours(**inputs, labels=labels).loss
    total = F.cross_entropy(full.reshape(-1, tiny_config.vocab_size), labels.reshape(-1), reduction="sum")
    n = int((labels != -100).sum())
    assert n != int(num_items)
    assert abs(out.loss.item() - total.item() / int(num_items)) <= 1e-6
    assert abs(mean.item() - total.item() / n) <= 1e-6


@pytest.mark.parametrize("head", ["sequence_classification", "token_classification", "question_answering",
                                  "multiple_choice"])
def test_other_heads_accept_num_items_in_batch(head):
    """Trainer passes `num_items_in_batch` to every model; heads that ignore it must not forward it to the encoder."""
    config = head_config(head)
    ours, hf = build_pair(head, config, seed=8)
    inputs = head_inputs(head, config)
    labels = head_labels(head, config, inputs)
    with torch.no_grad():
        out = ours(**inputs, **labels, num_items_in_batch=5)
        ref = hf(**inputs, **labels)
    assert_outputs_close(out, ref, fields=("loss",))


# ---------------------------------------------------------------------------------------------------- hidden states
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("head", list(HEADS))
def test_hidden_states_and_attentions_equal_transformers(head, layout, impl):
    config = head_config(head, layout)
    ours, hf = build_pair(head, config, seed=9, attn_implementation=impl)
    inputs = head_inputs(head, config)
    want_attentions = impl == "eager"
    with torch.no_grad():
        out = ours(**inputs, output_hidden_states=True, output_attentions=want_attentions)
        ref = hf(**inputs, output_hidden_states=True, output_attentions=want_attentions)
    assert len(out.hidden_states) == len(ref.hidden_states) == config.num_hidden_layers + 1
    for i, (a, b) in enumerate(zip(out.hidden_states, ref.hidden_states)):
        assert max_abs_diff(a, b) <= TOL, f"hidden_states[{i}]"
    if want_attentions:
        assert len(out.attentions) == len(ref.attentions) == config.num_hidden_layers
        for i, (a, b) in enumerate(zip(out.attentions, ref.attentions)):
            assert a.shape[1] == config.num_attention_heads
            assert max_abs_diff(a, b) <= TOL, f"attentions[{i}]"
        # padded keys receive no attention
        pad = inputs["attention_mask"].reshape(-1, inputs["attention_mask"].shape[-1]) == 0
        for weights in out.attentions:
            assert weights[pad[:, None, None, :].expand_as(weights)].abs().max() == 0
            assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5)


# ---------------------------------------------------------------------------------------------------- backends
@pytest.mark.parametrize("how", ["set_attn_implementation", "from_pretrained", "from_config", "config"])
def test_flash_attention_2_fails_clearly(how, tiny_config, tmp_path):
    """flash_attention_2 cannot run here (no GPU, no flash_attn): each way of asking for it fails clearly."""
    flash = "flash_attention_2"
    if how == "from_pretrained":
        our_class("masked_lm")(tiny_config).save_pretrained(tmp_path)
    model = our_class("model")(tiny_config)
    with pytest.raises((ImportError, ValueError), match="(?i)flash"):
        if how == "set_attn_implementation":
            model.set_attn_implementation(flash)
        elif how == "from_pretrained":
            our_class("masked_lm").from_pretrained(tmp_path, attn_implementation=flash)
        elif how == "from_config":
            our_class("model")._from_config(tiny_config, attn_implementation=flash)
        else:
            our_class("model")(tiny_xlmr_config(attn_implementation=flash))(input_ids=torch.tensor([[0, 5, 6, 2]]))
    if how == "set_attn_implementation":  # the failed switch leaves the model usable with its previous backend
        assert model.config._attn_implementation != flash
        model(input_ids=torch.tensor([[0, 5, 6, 2]]))


@pytest.mark.parametrize("head", ["model", "masked_lm", "token_classification"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_flex_attention_runs_on_cpu_and_equals_eager(head, layout):
    """flex_attention works on this CPU build: a padded input gives eager's (and transformers') outputs.

    transformers compiles flex_attention on first use with static shapes (dynamic shapes fail to compile on CPU here),
    so every flex test uses one (1, 18) shape - the same token count as the packed rows of test_packing.py - and the
    whole session pays for a single compile.
    """
    config = head_config(head, layout)
    ours, hf = build_pair(head, config, seed=10, attn_implementation="eager")
    input_ids, attention_mask = padded_batch(config, lengths=(13,), width=18)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    with torch.no_grad():
        eager = ours(**inputs)
        ours.set_attn_implementation("flex_attention")
        assert ours.config._attn_implementation == "flex_attention"
        flex = ours(**inputs)
        ref = hf(**inputs)
    assert_outputs_close(flex, eager, tol=1e-4)
    assert_outputs_close(flex, ref, tol=1e-4)
    if head == "masked_lm":  # the padding matters (unmasked eager run differs), so the equality above is meaningful
        ours.set_attn_implementation("eager")
        with torch.no_grad():
            unmasked = ours(input_ids=input_ids, attention_mask=torch.ones_like(attention_mask))
        assert max_abs_diff(unmasked.logits[:, :13], flex.logits[:, :13]) > 1e-3


def test_model_weights_really_random():
    """Guard for the parity tests: the seeded weights are not the default init (non-unit LayerNorm gains etc.)."""
    config = tiny_xlmr_config()
    hf = build_hf_model("masked_lm", config, seed=0)
    assert not torch.allclose(hf.roberta.embeddings.LayerNorm.weight, torch.ones(config.hidden_size))
    assert hf.lm_head.bias.abs().sum() > 0
    assert hf.lm_head.decoder.weight is hf.roberta.embeddings.word_embeddings.weight
