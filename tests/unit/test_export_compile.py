"""torch.export and torch.compile.

* Every head in both LayerNorm layouts exports (static and dynamic batch/length) and compiles with
  ``fullgraph=True`` in eval mode, as transformers' own XLM-R does on the same inputs, with eager outputs (1e-5, fp32).
* Padding-free batches (``position_ids`` restarts, ``cu_seqlens``) trace too: inside a graph they use a
  block-diagonal mask instead of reading document boundaries back to the host, with the eager outputs.
* Regional compilation (``layer.compile()`` per encoder layer, accelerate's ``compile_regions``) trains with the
  fused MLM loss, padded and padding-free, with the eager losses and without recompiling for new boundaries.

Full-graph checks of all heads use dynamo's ``aot_eager`` backend (the capture is what can fail; it is also much
faster on small CPUs); one test per layout runs inductor end to end.
"""

from __future__ import annotations

import pytest
import torch
from accelerate.utils import compile_regions
from conftest import HEADS, build_pair, head_config, tiny_xlmr_config
from torch._dynamo.utils import counters

from xlmr_hf import XLMRobertaForMaskedLM, XLMRobertaModel

TOL = 1e-5
LAYOUTS = ["post", "pre"]
TRAIN_RTOL = 1e-4  # fp32, dropout off: compiled (inductor) vs eager losses and gradients


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Every test compiles from scratch (no cache-size limit hit across tests, counters start at zero)."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _ids(head: str, batch: int = 2, length: int = 8, seed: int = 0) -> torch.Tensor:
    shape = (batch, 3, length) if head == "multiple_choice" else (batch, length)
    return torch.randint(3, 99, shape, generator=torch.Generator().manual_seed(seed))


def _main_output(output: dict) -> torch.Tensor:
    """The first field of a ModelOutput (last_hidden_state, logits or start_logits)."""
    return next(iter(output.values()))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


# ---------------------------------------------------------------------------------------------------- every head
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("head", list(HEADS))
@torch.no_grad()
def test_export_static_and_dynamic_every_head_like_transformers(head: str, layout: str) -> None:
    ours, theirs = build_pair(head, head_config(head, layout), attn_implementation="sdpa")
    ids = _ids(head)
    assert _max_diff(_main_output(ours(input_ids=ids)), _main_output(theirs(input_ids=ids))) <= TOL
    batch, length = torch.export.Dim("batch", max=16), torch.export.Dim("length", max=ours.config.max_tokens)
    dynamic = {"input_ids": {0: batch, 2: length} if head == "multiple_choice" else {0: batch, 1: length}}
    for model in (ours, theirs):
        static = torch.export.export(model, (), {"input_ids": ids}).module()
        assert _max_diff(_main_output(static(input_ids=ids)), _main_output(model(input_ids=ids))) <= TOL
        flexible = torch.export.export(model, (), {"input_ids": ids}, dynamic_shapes=dynamic).module()
        for batch_size, n in ((3, 11), (1, 5)):
            other = _ids(head, batch_size, n, seed=batch_size)
            assert _max_diff(_main_output(flexible(input_ids=other)), _main_output(model(input_ids=other))) <= TOL


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("head", list(HEADS))
@torch.no_grad()
def test_fullgraph_compile_every_head_like_transformers(head: str, layout: str) -> None:
    ours, theirs = build_pair(head, head_config(head, layout), attn_implementation="sdpa")
    ids = _ids(head)
    for model in (ours, theirs):
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        assert _max_diff(_main_output(compiled(input_ids=ids)), _main_output(model(input_ids=ids))) <= TOL


@pytest.mark.parametrize("layout", LAYOUTS)
@torch.no_grad()
def test_fullgraph_inductor_compile_with_padding(layout: str) -> None:
    ours, theirs = build_pair("masked_lm", head_config("masked_lm", layout), attn_implementation="sdpa")
    ids = _ids("masked_lm", length=10)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ids[1, 6:] = ours.config.pad_token_id
    reference = ours(input_ids=ids, attention_mask=mask).logits
    assert _max_diff(reference, theirs(input_ids=ids, attention_mask=mask).logits) <= TOL
    compiled = torch.compile(ours, fullgraph=True)
    assert _max_diff(compiled(input_ids=ids, attention_mask=mask).logits, reference) <= TOL


def test_position_limit_raises_eagerly_and_is_skipped_when_traced() -> None:
    model = XLMRobertaModel(tiny_xlmr_config()).eval()  # 40 positions from pad_token_id + 1 = 2: at most 38 tokens
    too_long = torch.randint(3, 99, (1, 39))
    with pytest.raises(ValueError, match=r"position_ids reach 40 but max_position_embeddings=40.*at most 38 tokens"):
        model(input_ids=too_long)
    with pytest.raises(ValueError, match="position_ids"):
        model(input_ids=too_long[:, :5], position_ids=torch.full((1, 5), -1))
    with torch.no_grad():  # no data-dependent branch in the graph: export succeeds (a valid input runs)
        exported = torch.export.export(model, (), {"input_ids": too_long[:, :38]}).module()
        assert exported(input_ids=too_long[:, :38]).last_hidden_state.shape == (1, 38, 32)


# ---------------------------------------------------------------------------------------------------- packed batches
def _packed_cases() -> dict[str, dict[str, torch.Tensor]]:
    restarts = torch.cat([torch.arange(2, 7), torch.arange(2, 9)]).repeat(2, 1)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    return {
        "position_ids": {"position_ids": restarts},
        "position_ids+padding": {"position_ids": restarts, "attention_mask": mask},
        "no_restart+padding": {"position_ids": torch.arange(2, 14).repeat(2, 1), "attention_mask": mask},
        "cu_seqlens_across_rows": {"cu_seqlens": torch.tensor([0, 5, 15, 24])},
        "cu_seqlens_within_rows": {"cu_seqlens": torch.tensor([0, 5, 12, 20, 24])},
    }


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@torch.no_grad()
def test_padding_free_batches_export_and_compile_with_eager_outputs(impl: str) -> None:
    torch.manual_seed(0)
    model = XLMRobertaModel(tiny_xlmr_config("pre")).eval()
    model.set_attn_implementation(impl)
    ids = torch.randint(3, 99, (2, 12))
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    for name, extra in _packed_cases().items():
        reference = model(input_ids=ids, **extra).last_hidden_state
        exported = torch.export.export(model, (), {"input_ids": ids, **extra}).module()
        assert _max_diff(exported(input_ids=ids, **extra).last_hidden_state, reference) <= TOL, name
        assert _max_diff(compiled(input_ids=ids, **extra).last_hidden_state, reference) <= TOL, name


# ---------------------------------------------------------------------------------------------------- regional compile
def _mlm(dropout: float) -> XLMRobertaForMaskedLM:
    torch.manual_seed(0)
    config = tiny_xlmr_config(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    model = XLMRobertaForMaskedLM(config)
    model.set_attn_implementation("sdpa")
    return model.train()


def _batches(kind: str, n: int, length: int = 16) -> list[dict[str, torch.Tensor]]:
    """`n` MLM batches (2 × length) whose documents (or padding) end at different places in every batch."""
    out = []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        ids = torch.randint(3, 99, (2, length), generator=g)
        labels = torch.where(torch.rand(2, length, generator=g) < 0.3, ids, -100)
        labels[0, 1] = ids[0, 1]
        cut = 3 + i
        batch = {"input_ids": ids, "labels": labels}
        if kind == "padded":
            batch["attention_mask"] = torch.ones_like(ids)
            batch["attention_mask"][1, length - cut:] = 0
            ids[1, length - cut:] = 1
            labels[1, length - cut:] = -100
        elif kind == "position_ids":
            first, second = torch.arange(2, 2 + cut), torch.arange(2, 2 + length - cut)
            batch["position_ids"] = torch.stack([torch.cat([first, second]), torch.cat([second, first])])
        else:  # cu_seqlens: documents may cross rows
            batch["cu_seqlens"] = torch.tensor([0, cut, cut + 9, 2 * length])
        out.append(batch)
    return out


def _train_step(model: XLMRobertaForMaskedLM, batch: dict[str, torch.Tensor], run: torch.nn.Module | None = None
                ) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and gradients (by `model`'s parameter names) of one step run by `run` (default: `model` itself)."""
    model.zero_grad(set_to_none=True)
    loss = (run or model)(**batch).loss
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _compile(model: XLMRobertaForMaskedLM, how: str, **options: str) -> torch.nn.Module:
    """`how="layers"`: ``layer.compile()`` on every encoder layer; `"regions"`: accelerate's ``compile_regions``."""
    if how == "regions":
        return compile_regions(model, **options)
    for layer in model.roberta.encoder.layer:
        layer.compile(**options)
    return model


@pytest.mark.parametrize(("how", "kind"), [("layers", "padded"), ("layers", "cu_seqlens"), ("regions", "position_ids")])
def test_compiled_regions_train_with_the_eager_losses_and_gradients(how: str, kind: str) -> None:
    """fp32, dropout off, fused MLM loss and sparse lookup gradient on (the defaults), inductor."""
    eager, model = _mlm(dropout=0.0), _mlm(dropout=0.0)
    compiled = _compile(model, how)
    for batch in _batches(kind, 2):
        loss, grads = _train_step(eager, batch)
        compiled_loss, compiled_grads = _train_step(model, batch, run=compiled)
        assert compiled_loss == pytest.approx(loss, rel=TRAIN_RTOL)
        assert grads.keys() == compiled_grads.keys()
        for name, grad in grads.items():  # relative to the tensor's scale; key biases have zero gradient (+ noise)
            assert _max_diff(compiled_grads[name], grad) <= TRAIN_RTOL * grad.abs().max().item() + 1e-9, name


@pytest.mark.parametrize("how", ["layers", "regions"])
def test_compiled_regions_train_with_dropout_without_recompiling_for_new_boundaries(how: str) -> None:
    """Five batches per layout, documents (or padding) ending elsewhere in each: graphs are made for the first batch
    of a layout only. Guards, hence recompilations, do not depend on the backend: aot_eager keeps this test fast."""
    model = _mlm(dropout=0.1)
    compiled = _compile(model, how, backend="aot_eager")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    graphs = []
    for kind in ("position_ids", "cu_seqlens", "padded"):
        for batch in _batches(kind, 5):
            loss = compiled(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            assert torch.isfinite(loss)
            graphs.append(counters["stats"]["unique_graphs"])
    assert all(graphs[i] == graphs[i - 1] for i in range(1, 15) if i % 5), graphs  # nothing new within a layout
    assert graphs[-1] <= 6, graphs
    assert not model.roberta.embeddings.word_embeddings.sparse  # restored after every step
