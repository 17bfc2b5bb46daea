"""Training-side features: activation (gradient) checkpointing, PEFT LoRA, tied embeddings, the length guard."""

from __future__ import annotations

import warnings

import pytest
import torch
import transformers
from conftest import (
    build_pair,
    hf_config_from_ours,
    max_abs_diff,
    padded_batch,
    randomize_parameters_,
    tiny_xlmr_config,
)

from xlmr_hf import XLMRobertaForMaskedLM, XLMRobertaForSequenceClassification, XLMRobertaModel
from xlmr_hf.models import packed_position_ids

TOL = 1e-5


def mlm_batch(config, seed: int = 0):
    input_ids, attention_mask = padded_batch(config, lengths=(12, 9, 5), seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    chosen = (torch.rand(input_ids.shape, generator=g) < 0.4) & attention_mask.bool()
    chosen[0, 1] = True
    labels = torch.where(chosen, torch.randint(3, config.vocab_size, input_ids.shape, generator=g), -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


# ---------------------------------------------------------------------------------------------------- checkpointing
def enable_checkpointing(model, api: str, kwargs):
    if api == "gradient_checkpointing_enable":  # deprecated alias in transformers 5 (FutureWarning), still used widely
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    else:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)


@pytest.mark.parametrize("kwargs", [None, {"use_reentrant": True}, {"use_reentrant": False}],
                         ids=["default", "reentrant", "non_reentrant"])
@pytest.mark.parametrize("api", ["gradient_checkpointing_enable", "activation_checkpointing_enable"])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("layout", ["post", "pre"])
def test_gradient_checkpointing_same_loss_and_grads_and_engages(layout, impl, api, kwargs):
    config = tiny_xlmr_config(layout, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = randomize_parameters_(XLMRobertaForMaskedLM(config), seed=1)
    model.set_attn_implementation(impl)
    model.train()  # checkpointing only runs in training mode; dropout 0 makes it deterministic
    batch = mlm_batch(config)

    calls = []
    for layer in model.roberta.encoder.layer:
        layer.intermediate.register_forward_hook(lambda *_: calls.append(1))

    ref_loss, ref_grads = loss_and_grads(model, batch)
    assert len(calls) == config.num_hidden_layers  # one forward per layer
    assert not model.is_activation_checkpointing

    enable_checkpointing(model, api, kwargs)
    assert model.is_activation_checkpointing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert model.is_gradient_checkpointing
    assert all(layer.gradient_checkpointing for layer in model.roberta.encoder.layer)
    calls.clear()
    loss, grads = loss_and_grads(model, batch)
    # the layer bodies ran again during backward: checkpointing really engaged
    assert len(calls) == 2 * config.num_hidden_layers
    assert abs(loss.item() - ref_loss.item()) <= 1e-6
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        assert max_abs_diff(grad, ref_grads[name]) <= TOL, name

    model.activation_checkpointing_disable()
    assert not model.is_activation_checkpointing
    calls.clear()
    loss_and_grads(model, batch)
    assert len(calls) == config.num_hidden_layers


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_gradient_checkpointing_with_packed_input(impl):
    """The padding-free path (cu_seqlens / packing kwargs) survives the checkpoint wrapper."""
    config = tiny_xlmr_config("post")
    model = randomize_parameters_(XLMRobertaForMaskedLM(config), seed=2)
    model.set_attn_implementation(impl)
    model.train()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, config.vocab_size, (1, 16), generator=g)
    labels = torch.where(torch.rand(ids.shape, generator=g) < 0.5, ids, -100)
    cu = torch.tensor([0, 7, 12, 16])
    batch = {"input_ids": ids, "labels": labels, "position_ids": packed_position_ids(cu)}
    ref_loss, ref_grads = loss_and_grads(model, batch)
    model.activation_checkpointing_enable()
    loss, grads = loss_and_grads(model, batch)
    assert abs(loss.item() - ref_loss.item()) <= 1e-6
    for name, grad in grads.items():
        assert max_abs_diff(grad, ref_grads[name]) <= TOL, name


# ---------------------------------------------------------------------------------------------------- PEFT LoRA
def test_peft_lora_query_value():
    peft = pytest.importorskip("peft")
    from peft.tuners.lora import LoraLayer

    config = tiny_xlmr_config()
    model = randomize_parameters_(XLMRobertaForMaskedLM(config), seed=3).eval()
    batch = mlm_batch(config)
    with torch.no_grad():
        base_logits = model(**batch).logits.clone()

    r = 4
    lora = peft.LoraConfig(r=r, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"])
    peft_model = peft.get_peft_model(model, lora)

    wrapped = sorted(name for name, module in peft_model.named_modules() if isinstance(module, LoraLayer))
    suffixes = [name.split("roberta.", 1)[1] for name in wrapped]
    expected = sorted(f"encoder.layer.{i}.attention.self.{proj}" for i in range(config.num_hidden_layers)
                      for proj in ("query", "value"))
    assert suffixes == expected  # exactly 2 per layer

    h = config.hidden_size
    expected_trainable = config.num_hidden_layers * 2 * r * (h + h)  # lora_A (r×h) + lora_B (h×r) per module
    trainable, total = peft_model.get_nb_trainable_parameters()
    assert trainable == expected_trainable == 1024
    assert total == sum(p.numel() for p in model.parameters())
    assert all("lora_" in n for n, p in peft_model.named_parameters() if p.requires_grad)

    # lora_B starts at zero: the adapted model equals the base model until trained
    with torch.no_grad():
        assert max_abs_diff(peft_model(**batch).logits, base_logits) <= 1e-6

    peft_model.train()
    out = peft_model(**batch)
    assert out.logits.shape == (int((batch["labels"] != -100).sum()), config.vocab_size)
    out.loss.backward()
    with_grad = {n for n, p in peft_model.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n for n in with_grad)
    assert any("lora_B" in n and peft_model.get_parameter(n).grad.abs().sum() > 0 for n in with_grad)
    assert model.roberta.embeddings.word_embeddings.weight.grad is None


# ---------------------------------------------------------------------------------------------------- tied embeddings
def assert_tied(model):
    decoder, embedding = model.lm_head.decoder.weight, model.roberta.embeddings.word_embeddings.weight
    assert decoder is embedding
    assert decoder.data_ptr() == embedding.data_ptr()
    assert model.lm_head.decoder.bias is model.lm_head.bias


@pytest.mark.parametrize("layout", ["post", "pre"])
def test_tied_embeddings_after_init_save_and_load(layout, tmp_path):
    config = tiny_xlmr_config(layout)
    model = randomize_parameters_(XLMRobertaForMaskedLM(config), seed=4)
    assert_tied(model)
    model.save_pretrained(tmp_path / "ours")
    loaded = XLMRobertaForMaskedLM.from_pretrained(tmp_path / "ours")
    assert_tied(loaded)
    embedding = model.roberta.embeddings.word_embeddings.weight
    assert torch.equal(loaded.roberta.embeddings.word_embeddings.weight, embedding)
    assert torch.equal(loaded.lm_head.bias, model.lm_head.bias)

    ours_from_hf, _ = build_pair("masked_lm", config, route="save", tmp_path=tmp_path / "hf")
    assert_tied(ours_from_hf)


def test_tied_embeddings_stay_tied_through_training_step(tiny_config):
    model = randomize_parameters_(XLMRobertaForMaskedLM(tiny_config), seed=5).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = model.roberta.embeddings.word_embeddings.weight.detach().clone()
    model(**mlm_batch(tiny_config)).loss.backward()
    optimizer.step()
    assert_tied(model)
    assert not torch.equal(before, model.lm_head.decoder.weight)


def test_untied_embeddings_when_disabled(tmp_path):
    config = tiny_xlmr_config(tie_word_embeddings=False)
    model = randomize_parameters_(XLMRobertaForMaskedLM(config), seed=6)
    tied = XLMRobertaForMaskedLM(tiny_xlmr_config())
    assert model.lm_head.decoder.weight is not model.roberta.embeddings.word_embeddings.weight
    n = sum(p.numel() for p in model.parameters())
    # untied: a decoder matrix and (as in transformers, whose bias tie is dropped too) a decoder bias of its own
    assert n - sum(p.numel() for p in tied.parameters()) == config.vocab_size * (config.hidden_size + 1)
    hf = transformers.XLMRobertaForMaskedLM(hf_config_from_ours(config))
    assert n == sum(p.numel() for p in hf.parameters())
    model.save_pretrained(tmp_path)
    loaded = XLMRobertaForMaskedLM.from_pretrained(tmp_path)
    assert loaded.lm_head.decoder.weight is not loaded.roberta.embeddings.word_embeddings.weight
    assert torch.equal(loaded.lm_head.decoder.weight, model.lm_head.decoder.weight)


def test_resize_token_embeddings_keeps_tie(tiny_config):
    model = XLMRobertaForMaskedLM(tiny_config)
    model.resize_token_embeddings(120, mean_resizing=False)
    assert_tied(model)
    assert model.config.vocab_size == 120 and model.lm_head.bias.shape == (120,)
    logits = model(input_ids=torch.tensor([[0, 110, 5, 2]])).logits
    assert logits.shape == (1, 4, 120)


# ---------------------------------------------------------------------------------------------------- length guard
@pytest.mark.parametrize("cls", [XLMRobertaModel, XLMRobertaForMaskedLM, XLMRobertaForSequenceClassification])
def test_sequence_length_guard(cls):
    config = tiny_xlmr_config(max_position_embeddings=514)
    model = cls(config).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model(input_ids=torch.randint(3, config.vocab_size, (1, 512), generator=g))  # 512 tokens fit
    too_long = torch.randint(3, config.vocab_size, (1, 513), generator=g)
    with pytest.raises(ValueError, match=r"max_position_embeddings=514.*at most 512 tokens"):
        model(input_ids=too_long)
    with pytest.raises(ValueError, match=r"max_position_embeddings=514"):
        model(inputs_embeds=torch.zeros(1, 513, config.hidden_size))


def test_sequence_length_guard_tiny_table(tiny_config):
    """The limit follows the table: 40 slots, positions 2..39, hold 38 tokens."""
    model = XLMRobertaModel(tiny_config).eval()
    assert tiny_config.max_tokens == 38
    with torch.no_grad():
        model(input_ids=torch.full((2, 38), 5))
    with pytest.raises(ValueError, match=r"max_position_embeddings=40.*at most 38 tokens"):
        model(input_ids=torch.full((2, 39), 5))
