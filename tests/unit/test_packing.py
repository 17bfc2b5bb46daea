"""Padding-free (packed) batches: every document's outputs equal running it alone.

Two routes mark document boundaries: `cu_seqlens` (offsets over the flattened batch × length tokens) and
`position_ids` restarting at `pad_token_id + 1` (e.g. from `packed_position_ids`).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import max_abs_diff, randomize_parameters_, random_ids, tiny_xlmr_config

from xlmr_hf import XLMRobertaForMaskedLM, XLMRobertaModel
from xlmr_hf.models import packed_position_ids

TOL = 1e-5
LAYOUTS = ["post", "pre"]
IMPLS = ["eager", "sdpa", "flex_attention"]  # flex_attention runs on this CPU build (compiled on first use)
# Every packed input below flattens to 18 tokens: transformers compiles flex_attention with static shapes (and dynamic
# shapes do not compile on CPU here), so one token count means one compile for all flex tests of this file.
TOTAL = 18
DOC_LENGTHS = (5, 1, 9, 3)  # includes a one-token document


def make_model(cls, layout: str, impl: str = "eager", seed: int = 0, **overrides):
    config = tiny_xlmr_config(layout, **overrides)
    torch.manual_seed(seed)
    model = cls(config) if cls is XLMRobertaForMaskedLM else cls(config, add_pooling_layer=False)
    randomize_parameters_(model, seed)
    model.set_attn_implementation(impl)
    return model.eval()


def make_docs(config, lengths, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [random_ids((n,), config, g) for n in lengths]


def cu_from_lengths(lengths) -> torch.Tensor:
    return torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)


def per_document_hidden(model, docs) -> list[torch.Tensor]:
    """Each document run alone, with eager attention (flex/sdpa equal eager on unpacked input: test_parity). Using
    eager for the references keeps flex_attention to a few input shapes, i.e. a few torch.compile runs."""
    impl = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            return [model(input_ids=d[None]).last_hidden_state[0] for d in docs]
    finally:
        model.set_attn_implementation(impl)


# ---------------------------------------------------------------------------------------------------- positions
def test_packed_position_ids_exact_values():
    cu = torch.tensor([0, 3, 5, 6, 10])
    assert packed_position_ids(cu).tolist() == [[2, 3, 4, 2, 3, 2, 2, 3, 4, 5]]
    assert packed_position_ids(cu, padding_idx=1).tolist() == [[2, 3, 4, 2, 3, 2, 2, 3, 4, 5]]
    assert packed_position_ids(cu, padding_idx=0).tolist() == [[1, 2, 3, 1, 2, 1, 1, 2, 3, 4]]
    assert packed_position_ids(torch.tensor([0, 4], dtype=torch.int32)).tolist() == [[2, 3, 4, 5]]
    assert packed_position_ids(cu).dtype == torch.long


def test_packed_position_ids_match_unpacked_positions(tiny_config):
    """Each document's packed positions equal the ones the model derives from its ids when run alone."""
    model = XLMRobertaModel(tiny_config)
    docs = make_docs(tiny_config, DOC_LENGTHS)
    packed = packed_position_ids(cu_from_lengths(DOC_LENGTHS), tiny_config.pad_token_id)[0]
    alone = torch.cat([model.embeddings.position_ids_from_input_ids(d[None])[0] for d in docs])
    assert torch.equal(packed, alone)


# ---------------------------------------------------------------------------------------------------- one packed row
@pytest.mark.parametrize("route", ["cu_seqlens", "position_ids"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_packed_row_equals_per_document(layout, impl, route):
    model = make_model(XLMRobertaModel, layout, impl, seed=1)
    docs = make_docs(model.config, DOC_LENGTHS, seed=1)
    row = torch.cat(docs)[None]
    assert row.numel() == TOTAL
    cu = cu_from_lengths(DOC_LENGTHS)
    kwargs = {"cu_seqlens": cu} if route == "cu_seqlens" else {"position_ids": packed_position_ids(cu)}
    with torch.no_grad():
        packed = model(input_ids=row, **kwargs).last_hidden_state[0]
    expected = per_document_hidden(model, docs)
    naive = per_document_hidden(model, [row[0]])[0]  # one long sequence: documents see each other
    for (s, e), ref in zip(zip(cu[:-1].tolist(), cu[1:].tolist()), expected):
        assert max_abs_diff(packed[s:e], ref) <= TOL, f"document [{s}, {e})"
    assert max_abs_diff(naive, torch.cat(expected)) > 1e-3, "packing must differ from plain concatenation"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_packed_rows_batch_of_two_with_position_restarts(layout, impl):
    """B=2 rows, each holding 2 documents (and row 1 starts a new document at its first token)."""
    model = make_model(XLMRobertaModel, layout, impl, seed=2)
    rows = [(6, 3), (2, 7)]
    docs = [make_docs(model.config, lengths, seed=10 + i) for i, lengths in enumerate(rows)]
    input_ids = torch.stack([torch.cat(d) for d in docs])
    assert input_ids.numel() == TOTAL
    position_ids = torch.cat([packed_position_ids(cu_from_lengths(lengths)) for lengths in rows])
    assert position_ids.tolist() == [[2, 3, 4, 5, 6, 7, 2, 3, 4], [2, 3, 2, 3, 4, 5, 6, 7, 8]]
    flat_cu = torch.tensor([0, 6, 9, 11, 18])
    with torch.no_grad():
        by_positions = model(input_ids=input_ids, position_ids=position_ids).last_hidden_state
        by_cu = model(input_ids=input_ids, cu_seqlens=flat_cu).last_hidden_state
    for row, (lengths, row_docs) in enumerate(zip(rows, docs)):
        start = 0
        for n, ref in zip(lengths, per_document_hidden(model, row_docs)):
            assert max_abs_diff(by_positions[row, start:start + n], ref) <= TOL
            assert max_abs_diff(by_cu[row, start:start + n], ref) <= TOL
            start += n


@pytest.mark.parametrize("pad_positions", ["pad_id", "restart"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_packed_rows_with_trailing_padding(layout, impl, pad_positions):
    """Trailing pads (pad ids, attention_mask 0, their own position ids) leave every real token unchanged."""
    model = make_model(XLMRobertaModel, layout, impl, seed=3)
    pad = model.config.pad_token_id
    rows = [(5, 2), (4, 3)]
    width = TOTAL // 2  # 2 trailing pads per row
    input_ids = torch.full((2, width), pad)
    attention_mask = torch.zeros((2, width), dtype=torch.long)
    position_ids = torch.full((2, width), pad)
    docs = [make_docs(model.config, lengths, seed=20 + i) for i, lengths in enumerate(rows)]
    for row, lengths in enumerate(rows):
        n = sum(lengths)
        input_ids[row, :n] = torch.cat(docs[row])
        attention_mask[row, :n] = 1
        position_ids[row, :n] = packed_position_ids(cu_from_lengths(lengths), pad)[0]
        if pad_positions == "restart":  # pads as one more "document"
            position_ids[row, n:] = torch.arange(width - n) + pad + 1
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
    for row, lengths in enumerate(rows):
        start = 0
        for n, ref in zip(lengths, per_document_hidden(model, docs[row])):
            assert max_abs_diff(out[row, start:start + n], ref) <= TOL
            start += n
        assert torch.isfinite(out[row]).all()


# ---------------------------------------------------------------------------------------------------- masked LM
def mlm_labels(config, docs, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = []
    for d in docs:
        lab = torch.full_like(d, -100)
        chosen = torch.rand(d.shape, generator=g) < 0.5
        chosen[0] = True
        lab[chosen] = torch.randint(3, config.vocab_size, (int(chosen.sum()),), generator=g)
        labels.append(lab)
    return labels


@pytest.mark.parametrize("route", ["cu_seqlens", "position_ids"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_packed_masked_lm_loss_equals_per_document_losses(layout, impl, route):
    model = make_model(XLMRobertaForMaskedLM, layout, impl, seed=4)
    docs = make_docs(model.config, DOC_LENGTHS, seed=4)
    labels = mlm_labels(model.config, docs, seed=5)
    cu = cu_from_lengths(DOC_LENGTHS)
    kwargs = {"cu_seqlens": cu} if route == "cu_seqlens" else {"position_ids": packed_position_ids(cu)}
    with torch.no_grad():
        packed = model(input_ids=torch.cat(docs)[None], labels=torch.cat(labels)[None], **kwargs)
        model.set_attn_implementation("eager")  # references: see per_document_hidden
        alone = [model(input_ids=d[None], labels=lab[None]) for d, lab in zip(docs, labels)]
        model.set_attn_implementation(impl)
    counts = [int((lab != -100).sum()) for lab in labels]
    combined = sum(out.loss * n for out, n in zip(alone, counts)) / sum(counts)
    assert abs(packed.loss.item() - combined.item()) <= 1e-6
    assert max_abs_diff(packed.logits, torch.cat([out.logits for out in alone])) <= TOL
    assert torch.equal(packed.masked_positions, (torch.cat(labels) != -100).nonzero().flatten())
    # the loss also equals CE over the packed full logits
    with torch.no_grad():
        full = model(input_ids=torch.cat(docs)[None], **kwargs).logits[0]
    assert abs(F.cross_entropy(full, torch.cat(labels)).item() - packed.loss.item()) <= 1e-6


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_packed_gradients_equal_per_document(layout, impl):
    """With num_items_in_batch = all labelled tokens, sum of per-document losses == the packed loss, and so do grads."""
    model = make_model(XLMRobertaForMaskedLM, layout, impl, seed=6)
    docs = make_docs(model.config, DOC_LENGTHS, seed=6)
    labels = mlm_labels(model.config, docs, seed=7)
    n_items = int(sum((lab != -100).sum() for lab in labels))
    cu = cu_from_lengths(DOC_LENGTHS)

    packed_loss = model(input_ids=torch.cat(docs)[None], labels=torch.cat(labels)[None], cu_seqlens=cu,
                        num_items_in_batch=n_items).loss
    packed_loss.backward()
    packed_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    total = 0.0
    for d, lab in zip(docs, labels):
        loss = model(input_ids=d[None], labels=lab[None], num_items_in_batch=n_items).loss
        loss.backward()
        total += loss.item()
    assert abs(total - packed_loss.item()) <= 1e-6
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads.keys() == packed_grads.keys() and len(grads) > 10
    for name, g in grads.items():
        assert max_abs_diff(packed_grads[name], g) <= TOL, name


# ---------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("route", ["cu_seqlens", "position_ids"])
def test_document_longer_than_position_table_raises(route):
    """514 position slots hold 512 tokens per document; a 513-token document inside a packed row is refused."""
    model = make_model(XLMRobertaModel, "post", max_position_embeddings=514)
    lengths = (10, 513)
    docs = make_docs(model.config, lengths)
    cu = cu_from_lengths(lengths)
    kwargs = {"cu_seqlens": cu} if route == "cu_seqlens" else {"position_ids": packed_position_ids(cu)}
    with pytest.raises(ValueError, match="max_position_embeddings=514"):
        model(input_ids=torch.cat(docs)[None], **kwargs)
    # 512 tokens fit (and the row as a whole may be longer than 512)
    lengths = (10, 512)
    docs = make_docs(model.config, lengths)
    with torch.no_grad():
        out = model(input_ids=torch.cat(docs)[None], cu_seqlens=cu_from_lengths(lengths))
    assert out.last_hidden_state.shape == (1, 522, model.config.hidden_size)


@pytest.mark.parametrize(
    "cu",
    [
        [1, 4, 10],  # does not start at 0
        [0, 4, 9],  # does not end at the number of tokens
        [0, 4, 12],  # ends past it
        [0, 6, 4, 10],  # decreasing
        [0, 4, 4, 10],  # empty document (not strictly increasing)
        [0],  # too short
    ],
)
def test_bad_cu_seqlens_raise(cu, tiny_config):
    model = XLMRobertaModel(tiny_config).eval()
    input_ids = make_docs(tiny_config, (10,))[0][None]
    with pytest.raises(ValueError, match="cu_seqlens"):
        model(input_ids=input_ids, cu_seqlens=torch.tensor(cu))


def test_cu_seqlens_over_flattened_batch(tiny_config):
    """cu_seqlens counts tokens over batch × length; a batch of 2 rows of 5 tokens needs the total 10."""
    model = XLMRobertaModel(tiny_config).eval()
    input_ids = make_docs(tiny_config, (10,))[0].view(2, 5)
    with pytest.raises(ValueError, match="cu_seqlens"):
        model(input_ids=input_ids, cu_seqlens=torch.tensor([0, 5]))
    with torch.no_grad():
        out = model(input_ids=input_ids, cu_seqlens=torch.tensor([0, 5, 10])).last_hidden_state
        ref = model(input_ids=input_ids).last_hidden_state  # each row alone == one document per row
    assert max_abs_diff(out, ref) <= TOL
