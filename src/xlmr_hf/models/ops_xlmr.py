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

__all__ = ["cpu_dropout_attention", "eager_attention_forward", "packed_position_ids"]


def packed_position_ids(cu_seqlens: torch.Tensor, padding_idx: int = 1) -> torch.LongTensor:
    """Positions of a packed row: each document restarts at ``padding_idx + 1`` (shape ``(1, total)``)."""
    cu = cu_seqlens.to(torch.long)
    lengths = cu[1:] - cu[:-1]
    starts = torch.repeat_interleave(cu[:-1], lengths)
    return (torch.arange(int(cu[-1]), device=cu.device) - starts + padding_idx + 1).unsqueeze(0)


@dataclass
class _Packing:
    """Document segmentation of a flattened batch: python bounds (for per-document attention) and tensors."""

    bounds: list[tuple[int, int]]
    cu_seqlens: torch.Tensor  # int32, (n_segments + 1,)
    segment_ids: torch.Tensor  # (1, total)
    max_length: int


def _packing_from_starts(starts: torch.Tensor) -> _Packing:
    """`starts` is a flat bool tensor marking the first token of every segment (index 0 must be True)."""
    begin = starts.nonzero().flatten()
    total = starts.numel()
    cu = torch.cat([begin, begin.new_tensor([total])])
    cpu = cu.tolist()
    bounds = list(zip(cpu[:-1], cpu[1:]))
    segment_ids = (torch.cumsum(starts.to(torch.int64), 0) - 1).unsqueeze(0)
    return _Packing(bounds, cu.to(torch.int32), segment_ids, max(e - s for s, e in bounds))


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


class _LinearCrossEntropy(torch.autograd.Function):
    """sum_i CE(x_i · Wᵀ + b, t_i) / denominator, with its gradients computed in forward (logits are not kept).

    Under autocast the matmuls run in the autocast dtype and the softmax in fp32, as `F.linear` + `F.cross_entropy`
    would; the weight gradient is written in fp32 vocabulary chunks, never materialising a half-precision copy of it.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, denominator, chunk=32768):  # noqa: ANN001, ANN205
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        with torch.autocast(device, enabled=False):
            x, w = hidden.to(dtype), weight.to(dtype)
            logits = torch.addmm(bias.to(dtype), x, w.t())
            scores = logits.to(torch.float32, copy=True)  # own copy: the softmax below works in place
            lse = torch.logsumexp(scores, dim=-1)
            loss = (lse - scores.gather(1, targets[:, None]).squeeze(1)).sum() / denominator
            ctx.grads = (None, None, None)
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
                ctx.grads = (grad_hidden, grad_weight,
                             probs.sum(0).to(bias.dtype) if ctx.needs_input_grad[2] else None)
        ctx.mark_non_differentiable(logits)
        return loss, logits

    @staticmethod
    def backward(ctx, grad_loss, grad_logits):  # noqa: ANN001, ANN205
        scale_needed = bool(grad_loss != 1)
        grads = [g if g is None or not scale_needed else g.mul_(grad_loss.to(g.dtype)) for g in ctx.grads]
        ctx.grads = None
        return (*grads, None, None, None)
