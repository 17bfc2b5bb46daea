"""Functional pieces of the XLM-R model: packing helpers, attention functions and the fused masked-LM loss.

Kept apart from `modeling_xlmr.py` (the module tree) by concern; copied next to saved checkpoints with it
(``trust_remote_code``), so it imports only torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["cpu_dropout_attention", "detect_packing", "eager_attention_forward", "packed_position_ids"]


def packed_position_ids(cu_seqlens: torch.Tensor, padding_idx: int = 1) -> torch.LongTensor:
    """Positions of a packed row: each document restarts at ``padding_idx + 1`` (shape ``(1, total)``)."""
    cu = cu_seqlens.to(torch.long)
    lengths = cu[1:] - cu[:-1]
    starts = torch.repeat_interleave(cu[:-1], lengths)
    return (torch.arange(int(cu[-1]), device=cu.device) - starts + padding_idx + 1).unsqueeze(0)


@dataclass
class _Packing:
    """Document segmentation of a padding-free batch.

    Eager runs read the boundaries back once: python `bounds` drive one attention call per document, `cu_seqlens` and
    `max_length` feed flash kernels. Traced runs (torch.compile, torch.export) read nothing back: `bounds`,
    `cu_seqlens` and `max_length` are None and attention masks with the segment ids instead.
    """

    segment_ids: torch.Tensor  # (1, total) int64: segment of every flattened token
    row_segment_ids: torch.Tensor | None  # (batch, length) view of segment_ids when no segment crosses a row
    bounds: list[tuple[int, int]] | None = None
    cu_seqlens: torch.Tensor | None = None  # int32, (n_segments + 1,)
    max_length: int | None = None
    # Traced position_ids batches only: 0-d bool, whether any document restarts (else the batch is not packed).
    restarted: torch.Tensor | None = None


def _segment_ids(starts: torch.Tensor) -> torch.Tensor:
    """(1, total) segment index of every token; `starts` marks the first token of every segment (row-major)."""
    return (torch.cumsum(starts.flatten().to(torch.int64), 0) - 1).unsqueeze(0)


def _packing_from_starts(starts: torch.Tensor) -> _Packing:
    """Eager segmentation; `starts` is a (batch, length) bool tensor with ``starts[0, 0]`` True."""
    segment_ids = _segment_ids(starts)
    length, total = starts.shape[-1], starts.numel()
    begin = starts.flatten().nonzero().flatten()
    cu = torch.cat([begin, begin.new_tensor([total])])
    cpu = cu.tolist()
    bounds = list(zip(cpu[:-1], cpu[1:]))
    rows_apart = set(range(0, total, length)) <= set(cpu)  # every row starts a segment
    return _Packing(
        segment_ids, segment_ids.view(starts.shape) if rows_apart else None, bounds, cu.to(torch.int32),
        max(e - s for s, e in bounds),
    )


def _positions_in_segments(segment_ids: torch.Tensor, first: torch.Tensor, start: int) -> torch.LongTensor:
    """Positions counting from `start` within each segment; `first[i]` is segment i's first flat index."""
    flat = segment_ids.flatten()
    return torch.arange(flat.numel(), device=flat.device) - first[flat] + start


def _segment_mask(segments: torch.Tensor) -> torch.Tensor:
    """Block-diagonal boolean mask ``(rows, 1, length, length)``: True where query and key share a segment."""
    return segments[:, None, :, None] == segments[:, None, None, :]


def detect_packing(
    shape: tuple[int, int],
    device: torch.device,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    cu_seqlens: torch.Tensor | None,
    *,
    pad_token_id: int,
    traced: bool,
) -> tuple[_Packing | None, torch.Tensor | None]:
    """Detect a padding-free batch; returns its segmentation and the position ids to use.

    Eager runs (``traced=False``) validate `cu_seqlens` and pack only batches whose `position_ids` restart somewhere.
    Traced runs make no data-dependent decision: `cu_seqlens` is trusted, and `position_ids` always give a
    segmentation whose `restarted` flag selects packed or plain attention inside the graph.
    """
    if cu_seqlens is not None:
        return _packing_from_cu_seqlens(shape, device, cu_seqlens, position_ids, pad_token_id, traced)
    if position_ids is None or shape[1] < 2:
        return None, position_ids
    if traced and attention_mask is not None and attention_mask.dim() != 2:
        return None, position_ids  # a prepared 4-D mask is used as given
    restarts = position_ids[:, 1:] == pad_token_id + 1
    if not traced and not bool(restarts.any()):
        return None, position_ids
    starts = torch.ones(shape, dtype=torch.bool, device=device)
    starts[:, 1:] = restarts
    if attention_mask is not None and attention_mask.dim() == 2:
        # Runs of padding become segments of their own: real documents never see them.
        real = attention_mask.bool()
        starts[:, 1:] |= real[:, 1:] != real[:, :-1]
    if not traced:
        return _packing_from_starts(starts), position_ids
    segment_ids = _segment_ids(starts)
    return _Packing(segment_ids, segment_ids.view(shape), restarted=restarts.any()), position_ids


def _packing_from_cu_seqlens(
    shape: tuple[int, int], device: torch.device, cu_seqlens: torch.Tensor, position_ids: torch.Tensor | None,
    pad_token_id: int, traced: bool,
) -> tuple[_Packing, torch.Tensor]:
    """Segmentation (and positions, unless given) of documents at offsets `cu_seqlens` of the flattened batch."""
    cu = cu_seqlens.to(device=device, dtype=torch.long).flatten()
    total = shape[0] * shape[1]
    if not traced and (cu.numel() < 2 or int(cu[0]) != 0 or int(cu[-1]) != total
                       or bool((cu[1:] <= cu[:-1]).any())):
        raise ValueError(
            f"cu_seqlens={cu.tolist()[:8]}... must increase strictly from 0 to the number of tokens "
            f"({total} = batch {shape[0]} × length {shape[1]})."
        )
    starts = torch.zeros(total, dtype=torch.bool, device=device).index_fill_(0, cu[:-1], True).view(shape)
    packing = _Packing(_segment_ids(starts), None) if traced else _packing_from_starts(starts)
    if position_ids is None:
        position_ids = _positions_in_segments(packing.segment_ids, cu, pad_token_id + 1).view(shape)
    return packing, position_ids


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference attention: softmax(q·kᵀ·scaling + mask)·v; returns (batch, length, heads, head_dim) and weights."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def cpu_dropout_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention with dropout for CPU training: what SDPA's math fallback computes (SDPA's fused CPU kernels have no
    dropout), with the two matmuls in the input dtype (bf16 under autocast) and the softmax in fp32, instead of the
    fallback's all-fp32 matmuls. Accepts SDPA's boolean masks and additive float masks."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
        else:
            weights = weights + attention_mask
    weights = F.dropout(F.softmax(weights, dim=-1, dtype=torch.float32).to(value.dtype), p=dropout, training=True)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def _keep_graph() -> bool:
    """Whether the running backward keeps the graph (``retain_graph=True``); True when torch cannot tell."""
    getter = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return True if getter is None else bool(getter())


class _LateWeightGrad(torch.autograd.Function):
    """Hands `weight` a gradient that `_LinearCrossEntropy` posts to `mailbox`, late in the backward pass.

    With a tied decoder the word embedding gets two gradients: the fused loss's dense one (computed first) and the
    sparse one of the lookup (computed last). Autograd adds a sparse gradient into a dense one in place only when the
    sparse one is there first; otherwise it copies the vocab × hidden dense gradient. Autograd runs ready nodes
    created later first, so this node, created before the lookup, runs after the lookup's backward and the sum is
    in place. (Were the order different, the sum would only be out of place: the result is the same either way.)
    """

    @staticmethod
    def forward(ctx, weight, mailbox):  # noqa: ANN001, ANN205
        ctx.mailbox = mailbox
        return weight.new_zeros(())  # a token for `_LinearCrossEntropy`: it links the loss to this node

    @staticmethod
    def backward(ctx, grad_token):  # noqa: ANN001, ANN205
        return (ctx.mailbox.pop() if ctx.mailbox else None), None


class _LinearCrossEntropy(torch.autograd.Function):
    """sum_i CE(x_i · Wᵀ + b, t_i) / denominator, with its gradients computed in forward (logits are not kept).

    Under autocast the matmuls run in the autocast dtype and the softmax in fp32, as `F.linear` + `F.cross_entropy`
    would; the weight gradient is written in fp32 vocabulary chunks, never materialising a half-precision copy of it.
    The gradients are saved for backward, which scales them by the upstream gradient: in place on the last use (a
    plain ``backward()``), as copies when the graph is kept (``retain_graph=True``), so a second backward is exact.
    Call it only with grad mode on: it always computes the gradients of its inputs that require them.

    Given a `_LateWeightGrad` token and its mailbox, the weight gradient goes to the mailbox instead.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, denominator, token=None, mailbox=None,  # noqa: ANN001, ANN205
                chunk=32768):
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        ctx.mailbox = mailbox if token is not None else None
        with torch.autocast(device, enabled=False):
            x, w = hidden.to(dtype), weight.to(dtype)
            logits = torch.addmm(bias.to(dtype), x, w.t())
            scores = logits.to(torch.float32, copy=True)  # own copy: the softmax below works in place
            lse = torch.logsumexp(scores, dim=-1)
            loss = (lse - scores.gather(1, targets[:, None]).squeeze(1)).sum() / denominator
            grads = (None, None, None)
            if any(ctx.needs_input_grad[:3]):
                probs = scores.sub_(lse[:, None]).exp_()  # softmax, in place
                probs[torch.arange(targets.numel(), device=probs.device), targets] -= 1.0
                probs.div_(denominator)
                g = probs.to(dtype)
                grad_hidden = (g @ w).to(hidden.dtype) if ctx.needs_input_grad[0] else None
                del w  # free the half-precision weight copy before the fp32 weight gradient exists
                grad_weight = None
                if ctx.needs_input_grad[1]:
                    grad_weight = torch.empty_like(weight)
                    for start in range(0, weight.shape[0], chunk):
                        grad_weight[start:start + chunk].copy_(g[:, start:start + chunk].t() @ x)
                grads = (grad_hidden, grad_weight, probs.sum(0).to(bias.dtype) if ctx.needs_input_grad[2] else None)
        ctx.save_for_backward(*grads)  # released after a plain backward, kept for another one under retain_graph
        ctx.mark_non_differentiable(logits)
        return loss, logits

    @staticmethod
    def backward(ctx, grad_loss, grad_logits):  # noqa: ANN001, ANN205
        grads = list(ctx.saved_tensors)
        # A unit upstream gradient (the usual `loss.backward()`) needs no scaling; testing for it is free on CPU only.
        if grad_loss.device.type != "cpu" or not bool(grad_loss == 1):
            keep = _keep_graph()
            grads = [None if g is None else g * grad_loss.to(g.dtype) if keep else g.mul_(grad_loss.to(g.dtype))
                     for g in grads]
        token_grad = None
        if ctx.mailbox is not None:
            ctx.mailbox.append(grads[1])
            grads[1], token_grad = None, grad_loss.new_zeros(())
        return (*grads, None, None, token_grad, None, None)
