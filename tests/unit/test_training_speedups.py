"""The training-speed paths of the model give the same numbers as the plain ones.

* fused vocabulary projection + cross-entropy (`config.fused_mlm_loss`), gradients computed in forward;
* sparse lookup gradient for the tied embedding (`config.sparse_embedding_grad`);
* one GEMM for q/k/v, bypassed for hooked or wrapped projections;
* `cpu_dropout_attention`, used instead of SDPA's all-fp32 math fallback when training with attention dropout on CPU
  (`config.cpu_dropout_attention`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM
from xlmr_hf.models.modeling_xlmr import cpu_dropout_attention


def _model(seed: int = 0, **overrides) -> XLMRobertaForMaskedLM:
    torch.manual_seed(seed)
    settings = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                    max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config = XLMRobertaConfig(**{**settings, **overrides})
    model = XLMRobertaForMaskedLM(config)
    with torch.no_grad():
        model.lm_head.bias.normal_(0, 0.1)
    return model


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 98, (3, 12), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, 2], labels[:, 7], labels[0, 9] = ids[:, 2], ids[:, 7], ids[0, 9]
    return ids, labels


def _grads(model, ids, labels, *, fused: bool, sparse: bool, autocast: bool, scale: float = 1.0, **kw):
    model.zero_grad(set_to_none=True)
    model.config.fused_mlm_loss, model.config.sparse_embedding_grad = fused, sparse
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(input_ids=ids, labels=labels, **kw)
    (out.loss * scale).backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_fused_loss_and_grads_equal_plain_path_fp32():
    model, (ids, labels) = _model(), _batch()
    ref, ref_grads = _grads(model, ids, labels, fused=False, sparse=False, autocast=False)
    out, grads = _grads(model, ids, labels, fused=True, sparse=True, autocast=False)
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-6
    assert torch.allclose(out.logits, ref.logits, atol=1e-6)
    assert grads.keys() == ref_grads.keys()
    for name in ref_grads:
        assert not grads[name].is_sparse, name
        assert torch.allclose(grads[name], ref_grads[name], atol=1e-6, rtol=1e-5), name


def test_fused_loss_and_grads_match_plain_path_under_bf16_autocast():
    model, (ids, labels) = _model(), _batch()
    ref, ref_grads = _grads(model, ids, labels, fused=False, sparse=False, autocast=True)
    out, grads = _grads(model, ids, labels, fused=True, sparse=True, autocast=True)
    assert out.logits.dtype == ref.logits.dtype == torch.bfloat16
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-3
    for name in ref_grads:
        scale = ref_grads[name].abs().max().item() + 1e-8
        assert (grads[name] - ref_grads[name]).abs().max().item() <= 2e-2 * scale, name


def test_fused_gradients_follow_the_upstream_gradient_and_num_items():
    model, (ids, labels) = _model(), _batch()
    _, once = _grads(model, ids, labels, fused=True, sparse=True, autocast=False)
    _, thrice = _grads(model, ids, labels, fused=True, sparse=True, autocast=False, scale=3.0)
    for name in once:
        assert torch.allclose(thrice[name], 3 * once[name], atol=1e-6, rtol=1e-5), name
    n = int((labels != -100).sum())
    out, _ = _grads(model, ids, labels, fused=True, sparse=True, autocast=False, num_items_in_batch=2 * n)
    ref = F.cross_entropy(model(input_ids=ids).logits.reshape(-1, 99), labels.reshape(-1), reduction="sum") / (2 * n)
    assert abs(out.loss.item() - ref.item()) <= 1e-6


def test_fused_path_computes_no_gradients_without_grad_mode(monkeypatch):
    import xlmr_hf.models.modeling_xlmr as modeling

    model, (ids, labels) = _model(), _batch()
    assert model.config.fused_mlm_loss
    fused_calls, decoder_calls = [], []
    monkeypatch.setattr(modeling._LinearCrossEntropy, "apply", lambda *a: fused_calls.append(1))
    model.lm_head.decoder.register_forward_hook(lambda *_: decoder_calls.append(1))
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
    assert not fused_calls and decoder_calls == [1]  # the plain head: no gradient work without grad mode
    assert out.loss.grad_fn is None and not out.logits.requires_grad
    full = model(input_ids=ids).logits.detach()
    assert torch.allclose(out.logits, full.reshape(-1, 99)[out.masked_positions], atol=1e-6)
    ref = F.cross_entropy(full.reshape(-1, 99), labels.reshape(-1))
    assert abs(out.loss.item() - ref.item()) <= 1e-6


def _twice(model, ids, labels, *, fused: bool, scale: float = 1.0):
    """Gradients after ``backward(retain_graph=True)`` then a second ``backward()`` of ``scale * loss``."""
    model.zero_grad(set_to_none=True)
    model.config.fused_mlm_loss = fused
    loss = model(input_ids=ids, labels=labels).loss * scale
    loss.backward(retain_graph=True)
    first = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    loss.backward()
    return first, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_fused_loss_supports_a_second_backward_with_the_plain_gradients():
    model, (ids, labels) = _model(), _batch()
    for scale in (1.0, 0.5):  # unit upstream gradient (no scaling) and a scaled one (copies of the saved gradients)
        ref_first, ref_second = _twice(model, ids, labels, fused=False, scale=scale)
        first, second = _twice(model, ids, labels, fused=True, scale=scale)
        assert first.keys() == ref_first.keys() == second.keys()
        for name in ref_first:
            assert torch.allclose(first[name], ref_first[name], atol=1e-6, rtol=1e-5), name
            assert torch.allclose(second[name], ref_second[name], atol=1e-6, rtol=1e-5), name
            assert torch.allclose(second[name], 2 * first[name], atol=1e-6, rtol=1e-5), name


def test_bad_label_ids_raise_clear_error():
    model, (ids, labels) = _model(), _batch()
    labels[0, 2] = 99
    try:
        model(input_ids=ids, labels=labels)
    except ValueError as err:
        assert "labels" in str(err) and "99" in str(err) and "vocab_size=99" in str(err)
    else:
        raise AssertionError("labels outside the vocabulary must raise")


def test_untied_decoder_keeps_dense_gradients():
    model, (ids, labels) = _model(tie_word_embeddings=False), _batch()
    assert model.lm_head.decoder.weight is not model.roberta.embeddings.word_embeddings.weight
    _, grads = _grads(model, ids, labels, fused=True, sparse=True, autocast=False)
    assert not grads["roberta.embeddings.word_embeddings.weight"].is_sparse
    # AdamW accepts every gradient (it rejects sparse ones)
    torch.optim.AdamW(model.parameters()).step()


def test_fused_qkv_is_bypassed_for_hooked_projections():
    model, (ids, _) = _model(), _batch()
    model.eval()
    seen = []
    handle = model.roberta.encoder.layer[0].attention.self.query.register_forward_hook(
        lambda module, args, output: seen.append(output.shape)
    )
    hooked = model(input_ids=ids).logits
    handle.remove()
    plain = model(input_ids=ids).logits
    assert seen == [torch.Size([3, 12, 32])]
    assert torch.allclose(hooked, plain, atol=1e-6)


def test_cpu_dropout_attention_equals_sdpa_without_dropout_and_with_masks():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
    module = torch.nn.Module()
    keep = torch.ones(2, 1, 9, 9, dtype=torch.bool)
    keep[1, :, :, 6:] = False  # second row: last three keys are padding
    for mask in (None, keep, torch.zeros(2, 1, 9, 9).masked_fill(~keep, torch.finfo(torch.float32).min)):
        ours, _ = cpu_dropout_attention(module, q, k, v, mask, scaling=8**-0.5, dropout=0.0)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)
        assert torch.allclose(ours, ref, atol=1e-6)


def test_cpu_dropout_attention_drops_at_rate_p_and_rescales():
    torch.manual_seed(0)
    q = k = torch.zeros(1, 1, 64, 4)  # uniform attention: every weight is 1/64
    v = torch.eye(64)[None, None]  # output row i = attention weights of query i
    out, _ = cpu_dropout_attention(torch.nn.Module(), q, k, v, None, scaling=1.0, dropout=0.25)
    weights = out[0, :, 0, :]
    kept = weights > 0
    assert abs(kept.float().mean().item() - 0.75) < 0.02
    assert torch.allclose(weights[kept], torch.full_like(weights[kept], 1 / 64 / 0.75))


def test_training_with_attention_dropout_uses_the_cpu_path(monkeypatch):
    import xlmr_hf.models.modeling_xlmr as modeling

    calls = []
    original = modeling.cpu_dropout_attention
    monkeypatch.setattr(modeling, "cpu_dropout_attention", lambda *a, **k: calls.append(1) or original(*a, **k))
    model = _model(attention_probs_dropout_prob=0.1)
    model.set_attn_implementation("sdpa")
    ids, labels = _batch()
    model.train()(input_ids=ids, labels=labels).loss.backward()
    assert len(calls) == model.config.num_hidden_layers
    model.eval()(input_ids=ids)
    assert len(calls) == model.config.num_hidden_layers  # inference keeps SDPA's fused kernels
