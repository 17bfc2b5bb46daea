"""The xlmr-hf XLM-R model family: one file for the encoder and every head.

Module tree and parameter names equal transformers' ``xlm-roberta`` (``layer_norm_position="post"``) and
``xlm-roberta-xl`` (``"pre"``), so official checkpoints load unchanged and PEFT ``target_modules=["query", "value"]``
works. Differences from transformers, all output-preserving:

* ``XLMRobertaForMaskedLM`` computes the LM head and the loss only where ``labels != -100``; its ``logits`` are then
  the ``(n_masked, vocab)`` rows of those positions (row-major order, ``masked_positions`` gives their flat index).
  Without labels it returns full ``(batch, length, vocab)`` logits (fill-mask, inference).
* A padding-free path: pass ``cu_seqlens`` (document boundaries over the flattened tokens) or ``position_ids`` that
  restart at ``pad_token_id + 1`` for every document. Documents never attend to each other, positions restart, and
  each document's outputs equal running it alone.
* Optional language embeddings (XLM's ablation), off by default.

This file is copied next to saved checkpoints (``trust_remote_code``) with the two files it imports relatively,
``configuration_xlmr`` and ``ops_xlmr`` (attention functions, packing helpers, the fused MLM loss).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN, gelu
from transformers.masking_utils import create_bidirectional_mask, packed_sequence_mask_function
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.pytorch_utils import apply_chunking_to_forward
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import capture_outputs

from .configuration_xlmr import XLMRobertaConfig
from .ops_xlmr import (
    _LateWeightGrad,
    _LinearCrossEntropy,
    _Packing,
    _segment_mask,
    cpu_dropout_attention,
    detect_packing,
    eager_attention_forward,
    packed_position_ids,
)

__all__ = [
    "AUTO_MAP",
    "cpu_dropout_attention",
    "XLMRobertaForMaskedLM",
    "XLMRobertaForMultipleChoice",
    "XLMRobertaForQuestionAnswering",
    "XLMRobertaForSequenceClassification",
    "XLMRobertaForTokenClassification",
    "XLMRobertaMaskedLMOutput",
    "XLMRobertaModel",
    "XLMRobertaPreTrainedModel",
    "packed_position_ids",
]

logger = logging.get_logger(__name__)

# Written into every saved config.json so that `trust_remote_code=True` finds each class where xlmr-hf is absent.
AUTO_MAP = {
    "AutoConfig": "configuration_xlmr.XLMRobertaConfig",
    "AutoModel": "modeling_xlmr.XLMRobertaModel",
    "AutoModelForMaskedLM": "modeling_xlmr.XLMRobertaForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_xlmr.XLMRobertaForSequenceClassification",
    "AutoModelForTokenClassification": "modeling_xlmr.XLMRobertaForTokenClassification",
    "AutoModelForQuestionAnswering": "modeling_xlmr.XLMRobertaForQuestionAnswering",
    "AutoModelForMultipleChoice": "modeling_xlmr.XLMRobertaForMultipleChoice",
}


# ---------------------------------------------------------------------------------------------------- embeddings
@torch.compiler.disable
def _eager_lookup(embedding: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """The word-embedding lookup outside any compiled graph: inductor has no kernels for its sparse gradient
    (`config.sparse_embedding_grad`), so a compiled embeddings module runs just this call eagerly."""
    return embedding(input_ids)


class XLMRobertaEmbeddings(nn.Module):
    """Word + position (+ token type, + optional language) embeddings; LayerNorm only in the post-LN layout."""

    def __init__(self, config: XLMRobertaConfig):
        super().__init__()
        self.padding_idx = config.pad_token_id
        self.max_positions = config.max_position_embeddings
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        if config.use_language_embeddings:
            self.language_embeddings = nn.Embedding(config.n_langs, config.hidden_size)
        if config.layer_norm_position == "post":
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def position_ids_from_input_ids(self, input_ids: torch.Tensor) -> torch.LongTensor:
        """fairseq's `make_positions`: non-pad tokens count from ``padding_idx + 1``, pads keep ``padding_idx``."""
        mask = input_ids.ne(self.padding_idx).int()
        return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + self.padding_idx

    def check_positions(self, position_ids: torch.Tensor) -> None:
        """Raise a ValueError naming the limit when a position falls outside the table (eager runs only: under
        torch.compile / torch.export the check would be a data-dependent branch, and is skipped)."""
        if not position_ids.numel():
            return
        top, bottom = int(position_ids.max()), int(position_ids.min())
        if top >= self.max_positions or bottom < 0:
            raise ValueError(
                f"position_ids reach {top if bottom >= 0 else bottom} but max_position_embeddings="
                f"{self.max_positions}: sequences (or packed documents) may hold at most "
                f"{self.max_positions - self.padding_idx - 1} tokens, since positions start at pad_token_id + 1 = "
                f"{self.padding_idx + 1}. Truncate or split the input."
            )

    def forward(
        self,
        input_ids: torch.LongTensor | None,
        token_type_ids: torch.LongTensor | None,
        position_ids: torch.LongTensor | None,
        inputs_embeds: torch.Tensor | None,
        language_ids: torch.LongTensor | None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            if getattr(self.word_embeddings, "sparse", False) and torch.compiler.is_compiling():
                inputs_embeds = _eager_lookup(self.word_embeddings, input_ids)
            else:
                inputs_embeds = self.word_embeddings(input_ids)
        batch, length = inputs_embeds.shape[:2]
        if position_ids is None:
            if input_ids is not None:
                position_ids = self.position_ids_from_input_ids(input_ids)
            else:  # padding cannot be seen in embeddings: sequential positions
                position_ids = torch.arange(
                    self.padding_idx + 1, length + self.padding_idx + 1, device=inputs_embeds.device
                ).expand(batch, length)
        if not torch.compiler.is_compiling():  # reading positions back is a data-dependent branch: eager only
            self.check_positions(position_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros((batch, length), dtype=torch.long, device=inputs_embeds.device)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids) + self.position_embeddings(position_ids)
        if hasattr(self, "language_embeddings"):
            if language_ids is None:
                raise ValueError(
                    "language_ids is None but config.use_language_embeddings=True: pass language_ids (batch,) or "
                    "(batch, length) with values in [0, n_langs)."
                )
            if language_ids.dim() == 1:
                language_ids = language_ids[:, None].expand(batch, length)
            embeddings = embeddings + self.language_embeddings(language_ids)
        elif language_ids is not None:
            raise ValueError("language_ids were given but config.use_language_embeddings=False; allowed: None.")
        if hasattr(self, "LayerNorm"):
            embeddings = self.LayerNorm(embeddings)
        return self.dropout(embeddings)


# ---------------------------------------------------------------------------------------------------- attention
class XLMRobertaSelfAttention(nn.Module):
    """Multi-head self-attention dispatched through transformers' attention interface."""

    def __init__(self, config: XLMRobertaConfig, layer_idx: int | None = None):
        super().__init__()
        self.config = config
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.scaling = self.attention_head_size**-0.5
        self.is_causal = False
        self.layer_idx = layer_idx
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        packing: _Packing | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        shape = (*input_shape, -1, self.attention_head_size)
        projections = (self.query, self.key, self.value)
        if all(type(p) is nn.Linear and p.bias is not None and not (p._forward_hooks or p._forward_pre_hooks)
               for p in projections):
            # One GEMM for q, k and v (the input is cast once under autocast); wrapped or hooked modules (PEFT,
            # quantised linears, forward hooks) keep their own forward below.
            weight = torch.cat([p.weight for p in projections])
            bias = torch.cat([p.bias for p in projections])
            query, key, value = (
                t.view(shape).transpose(1, 2) for t in F.linear(hidden_states, weight, bias).chunk(3, dim=-1)
            )
        else:
            query, key, value = (p(hidden_states).view(shape).transpose(1, 2) for p in projections)
        implementation = self.config._attn_implementation or "eager"
        attention: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        dropout = self.dropout.p if self.training else 0.0
        if (implementation == "sdpa" and dropout > 0 and query.device.type == "cpu"
                and self.config.cpu_dropout_attention):
            attention = cpu_dropout_attention  # SDPA would fall back to all-fp32 math here: same result, slower
        if packing is not None and implementation not in ("eager", "flex_attention") and "flash" not in implementation:
            attend = self._segment_masked if torch.compiler.is_compiling() else self._per_document
            output, weights = attend(attention, query, key, value, packing, dropout=dropout, **kwargs), None
        else:
            if packing is not None and "flash" in implementation:
                kwargs.update(cu_seq_lens_q=packing.cu_seqlens, cu_seq_lens_k=packing.cu_seqlens,
                              max_length_q=packing.max_length, max_length_k=packing.max_length)
            output, weights = attention(
                self, query, key, value, attention_mask, dropout=dropout, scaling=self.scaling, **kwargs
            )
        return output.reshape(*input_shape, -1).contiguous(), weights

    def _per_document(self, attention: Callable, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      packing: _Packing, **kwargs: Any) -> torch.Tensor:
        """Variable-length attention without a T×T mask, eager runs: one call per document (python bounds)."""
        parts = [
            attention(self, query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], None, scaling=self.scaling,
                      **kwargs)[0]
            for s, e in packing.bounds
        ]
        return torch.cat(parts, dim=1)

    def _segment_masked(self, attention: Callable, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        packing: _Packing, **kwargs: Any) -> torch.Tensor:
        """Variable-length attention inside torch.compile: one call with a block-diagonal boolean mask built from the
        segment ids (per row when no document crosses a row), so the graph neither loops over documents nor depends
        on where they start: new boundaries reuse the compiled code."""
        segments = packing.row_segment_ids if packing.row_segment_ids is not None else packing.segment_ids
        rows, length = segments.shape
        query, key, value = (
            t.reshape(self.num_attention_heads, rows, length, self.attention_head_size).transpose(0, 1)
            for t in (query, key, value)
        )
        output = attention(self, query, key, value, _segment_mask(segments), scaling=self.scaling, **kwargs)[0]
        return output.reshape(1, rows * length, self.num_attention_heads, self.attention_head_size)


class XLMRobertaOutput(nn.Module):
    """Projection back to the hidden size + dropout + residual (+ LayerNorm in the post-LN layout); used after the
    attention (`attention.output`, input width hidden) and after the feed-forward (`output`, input width ffn)."""

    def __init__(self, config: XLMRobertaConfig, in_features: int | None = None):
        super().__init__()
        self.dense = nn.Linear(in_features or config.hidden_size, config.hidden_size)
        if config.layer_norm_position == "post":
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.dense(hidden_states)) + input_tensor
        return self.LayerNorm(hidden_states) if hasattr(self, "LayerNorm") else hidden_states


class XLMRobertaAttention(nn.Module):
    """Self-attention block; the pre-LN layout normalises its input with `self_attn_layer_norm`."""

    def __init__(self, config: XLMRobertaConfig, layer_idx: int | None = None):
        super().__init__()
        self.self = XLMRobertaSelfAttention(config, layer_idx=layer_idx)
        self.output = XLMRobertaOutput(config)
        if config.layer_norm_position == "pre":
            self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        normed = self.self_attn_layer_norm(hidden_states) if hasattr(self, "self_attn_layer_norm") else hidden_states
        attention_output, weights = self.self(normed, attention_mask, **kwargs)
        return self.output(attention_output, hidden_states), weights


class XLMRobertaIntermediate(nn.Module):
    """First feed-forward projection and activation."""

    def __init__(self, config: XLMRobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class XLMRobertaLayer(GradientCheckpointingLayer):
    """One transformer layer; the pre-LN layout normalises the feed-forward input with `LayerNorm`."""

    def __init__(self, config: XLMRobertaConfig, layer_idx: int | None = None):
        super().__init__()
        self.chunk_size_feed_forward = config.chunk_size_feed_forward
        self.attention = XLMRobertaAttention(config, layer_idx=layer_idx)
        self.intermediate = XLMRobertaIntermediate(config)
        self.output = XLMRobertaOutput(config, config.intermediate_size)
        if config.layer_norm_position == "pre":
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        attention_output, _ = self.attention(hidden_states, attention_mask, **kwargs)
        return apply_chunking_to_forward(self.feed_forward_chunk, self.chunk_size_feed_forward, 1, attention_output)

    def feed_forward_chunk(self, attention_output: torch.Tensor) -> torch.Tensor:
        normed = self.LayerNorm(attention_output) if hasattr(self, "LayerNorm") else attention_output
        return self.output(self.intermediate(normed), attention_output)


class XLMRobertaEncoder(nn.Module):
    """The layer stack (+ a final LayerNorm in the pre-LN layout)."""

    def __init__(self, config: XLMRobertaConfig):
        super().__init__()
        self.layer = nn.ModuleList([XLMRobertaLayer(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        if config.layer_norm_position == "pre":
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask, **kwargs)
        return self.LayerNorm(hidden_states) if hasattr(self, "LayerNorm") else hidden_states


class XLMRobertaPooler(nn.Module):
    """dense + tanh on the first token, as BERT's pooler."""

    def __init__(self, config: XLMRobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


class XLMRobertaLMHead(nn.Module):
    """dense, GELU, LayerNorm, then the (tied) vocabulary projection."""

    def __init__(self, config: XLMRobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(gelu(self.dense(features))))


class XLMRobertaClassificationHead(nn.Module):
    """Sentence-level head on `<s>`: dropout, dense, tanh, dropout, projection."""

    def __init__(self, config: XLMRobertaConfig):
        super().__init__()
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features[:, 0, :])
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


# ---------------------------------------------------------------------------------------------------- base classes
class XLMRobertaPreTrainedModel(PreTrainedModel):
    """Weight init, attention-backend flags, Auto metadata and checkpoint compatibility shared by every head."""

    config: XLMRobertaConfig
    config_class = XLMRobertaConfig
    base_model_prefix = "roberta"
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["XLMRobertaEmbeddings", "XLMRobertaLayer"]
    _can_record_outputs = {"hidden_states": XLMRobertaLayer, "attentions": XLMRobertaSelfAttention}
    # Old checkpoints carry buffers we do not register; heads without a pooler ignore released pooler weights.
    _keys_to_ignore_on_load_unexpected = [r"position_ids", r"token_type_ids$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, XLMRobertaLMHead):
            module.bias.zero_()

    def _encode(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs):  # noqa: ANN001
        """Run `self.roberta` for a head; loss-only keywords (Trainer's `num_items_in_batch`) stay out."""
        kwargs.pop("num_items_in_batch", None)
        return self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids, inputs_embeds=inputs_embeds, return_dict=True, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """As `PreTrainedModel.save_pretrained`; the config also maps every Auto class to our code (`auto_map`)."""
        self.config.auto_map = dict(AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)


class XLMRobertaModel(XLMRobertaPreTrainedModel):
    """The bare XLM-R encoder with a pooler (dense + tanh on `<s>`), as transformers' `XLMRobertaModel`.

    Padding-free batches: give ``cu_seqlens`` (int tensor of document offsets over the flattened tokens) or
    ``position_ids`` restarting at ``pad_token_id + 1`` for each document, with no padding ``attention_mask``.
    """

    _auto_class = "AutoModel"

    def __init__(self, config: XLMRobertaConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = XLMRobertaEmbeddings(config)
        self.encoder = XLMRobertaEncoder(config)
        self.pooler = XLMRobertaPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def _packing(
        self,
        shape: tuple[int, int],
        device: torch.device,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        cu_seqlens: torch.Tensor | None,
    ) -> tuple[_Packing | None, torch.Tensor | None]:
        """Detect a padding-free batch (`ops_xlmr.detect_packing`); traced runs (torch.compile, torch.export) make
        no data-dependent decision, except under flash kernels, which need host-side lengths."""
        traced = torch.compiler.is_compiling() and "flash" not in (self.config._attn_implementation or "eager")
        return detect_packing(shape, device, attention_mask, position_ids, cu_seqlens,
                              pad_token_id=self.config.pad_token_id, traced=traced)

    def _encode_traced_packing(
        self, embeddings: torch.Tensor, packing: _Packing, attention_mask: torch.Tensor | None, kwargs: dict
    ) -> torch.Tensor:
        """A padding-free batch inside torch.compile / torch.export: one explicit mask (built without reading values
        back) for every attention implementation; rows stay apart when no document crosses a row."""
        segments = packing.row_segment_ids if packing.row_segment_ids is not None else packing.segment_ids
        hidden = embeddings.reshape(*segments.shape, embeddings.shape[-1])
        same_segment = packed_sequence_mask_function(segments)
        mask_function = same_segment
        if packing.restarted is not None:  # from position_ids: packed iff a document restarts, as in eager runs
            restarted = packing.restarted
            real = (attention_mask.bool() if attention_mask is not None and attention_mask.dim() == 2
                    else torch.ones_like(segments, dtype=torch.bool))

            def mask_function(b: Any, h: Any, q: Any, kv: Any) -> torch.Tensor:  # else the usual padding mask
                return torch.where(restarted, same_segment(b, h, q, kv), real[b, kv])

        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=None,
                                         and_mask_function=mask_function, allow_is_bidirectional_skip=False)
        return self.encoder(hidden, mask, **kwargs).view(embeddings.shape)

    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None, position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        language_ids: torch.LongTensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling:
        r"""
        language_ids (`torch.LongTensor` of shape `(batch,)` or `(batch, length)`, *optional*):
            Language of each sequence/token; required iff `config.use_language_embeddings`.
        cu_seqlens (`torch.Tensor` of shape `(n_documents + 1,)`, *optional*):
            Offsets of the documents packed in the flattened `(batch × length)` tokens (padding-free batches).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds.")
        shape = tuple((input_ids if input_ids is not None else inputs_embeds[..., 0]).shape)
        if len(shape) != 2:
            raise ValueError(f"input_ids must have shape (batch, length); got {list(shape)}.")
        device = (input_ids if input_ids is not None else inputs_embeds).device
        packing, position_ids = self._packing(shape, device, attention_mask, position_ids, cu_seqlens)
        embeddings = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds, language_ids)
        if packing is None:
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=embeddings, attention_mask=attention_mask)
            hidden = self.encoder(embeddings, mask, **kwargs)
        elif packing.bounds is None:
            hidden = self._encode_traced_packing(embeddings, packing, attention_mask, kwargs)
        else:
            flat = embeddings.reshape(1, -1, embeddings.shape[-1])
            mask = None
            if (self.config._attn_implementation or "eager") in ("eager", "flex_attention"):
                mask = create_bidirectional_mask(
                    config=self.config, inputs_embeds=flat, attention_mask=None,
                    and_mask_function=packed_sequence_mask_function(packing.segment_ids),
                    allow_is_bidirectional_skip=False,
                )
            hidden = self.encoder(flat, mask, packing=packing, **kwargs).view(embeddings.shape)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)


# ---------------------------------------------------------------------------------------------------- heads
@dataclass
class XLMRobertaMaskedLMOutput(MaskedLMOutput):
    """`MaskedLMOutput` plus `masked_positions`: flat indices (into batch × length) of the rows of `logits` when the
    head ran only on labelled positions; None when `logits` covers every position."""

    masked_positions: torch.LongTensor | None = None


class XLMRobertaForMaskedLM(XLMRobertaPreTrainedModel):
    """Masked LM: with `labels`, the vocabulary projection and the loss run only on positions whose label != -100.

    Training speed-ups are config fields (saved in config.json): `config.fused_mlm_loss` fuses the projection and the
    cross-entropy when grad mode is on (gradients computed in forward; the returned `logits` carry no gradient) and
    `config.sparse_embedding_grad` makes the tied lookup's gradient sparse (summed into the decoder's dense one).
    """

    _auto_class = "AutoModelForMaskedLM"
    _tied_weights_keys = {
        "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }
    _keys_to_ignore_on_load_unexpected = [r"pooler", r"position_ids", r"token_type_ids$"]
    accepts_loss_kwargs = True

    def __init__(self, config: XLMRobertaConfig):
        super().__init__(config)
        self.roberta = XLMRobertaModel(config, add_pooling_layer=False)
        self.lm_head = XLMRobertaLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def _speed_paths(self, has_labels: bool) -> tuple[bool, bool]:
        """Whether this call takes the fused head and the sparse lookup gradient (the config's speed switches)."""
        if not (has_labels and torch.is_grad_enabled()):
            return False, False  # the fused head computes gradients in its forward: without grad mode, plain is less
        embedding, decoder = self.roberta.embeddings.word_embeddings, self.lm_head.decoder
        fused = bool(self.config.fused_mlm_loss and type(decoder) is nn.Linear and decoder.bias is not None)
        # The tied decoder gives the shared weight a dense gradient anyway, so the lookup's gradient can be sparse:
        # that skips a zero-filled vocab × hidden buffer and a dense add per step (autograd sums sparse into dense).
        sparse = bool(self.config.sparse_embedding_grad and embedding.weight.requires_grad
                      and decoder.weight is embedding.weight)
        return fused, sparse

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None, position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> XLMRobertaMaskedLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch, length)`, *optional*):
            Target ids at masked positions, -100 elsewhere. When given, `logits` holds only the labelled rows.
        num_items_in_batch (`int` or tensor, *optional*):
            Number of labelled tokens over the whole (accumulated, all-device) batch: the loss is then
            `sum / num_items_in_batch` instead of the mean, as Trainer expects.
        """
        num_items = kwargs.pop("num_items_in_batch", None)
        embedding, decoder = self.roberta.embeddings.word_embeddings, self.lm_head.decoder
        fused, sparse = self._speed_paths(labels is not None)
        late: tuple[torch.Tensor | None, list | None] = (None, None)
        if sparse:
            embedding.sparse = True
            if fused:  # made before the lookup, so the sparse gradient is summed in place (`ops_xlmr._LateWeightGrad`)
                mailbox: list = []
                late = (_LateWeightGrad.apply(embedding.weight, mailbox), mailbox)
        try:
            outputs = self.roberta(
                input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
                inputs_embeds=inputs_embeds, return_dict=True, **kwargs,
            )
        finally:
            if sparse:
                embedding.sparse = False
        sequence_output = outputs.last_hidden_state
        if labels is None:
            return XLMRobertaMaskedLMOutput(
                logits=self.lm_head(sequence_output), hidden_states=outputs.hidden_states,
                attentions=outputs.attentions,
            )
        labels = labels.to(sequence_output.device)
        if labels.shape != sequence_output.shape[:-1]:
            raise ValueError(f"labels must have shape {list(sequence_output.shape[:-1])}; got {list(labels.shape)}.")
        flat_labels = labels.reshape(-1)
        positions = (flat_labels != -100).nonzero().flatten()
        selected = sequence_output.reshape(-1, sequence_output.shape[-1]).index_select(0, positions)
        targets = flat_labels.index_select(0, positions)
        if (targets.numel() and not torch.compiler.is_compiling()
                and (int(targets.min()) < 0 or int(targets.max()) >= self.config.vocab_size)):
            raise ValueError(f"labels must be -100 or ids in [0, vocab_size={self.config.vocab_size}); got values "
                             f"in [{int(targets.min())}, {int(targets.max())}].")
        denominator = num_items if num_items is not None else targets.numel()
        if fused:
            features = self.lm_head.layer_norm(gelu(self.lm_head.dense(selected)))
            loss, logits = _LinearCrossEntropy.apply(features, decoder.weight, decoder.bias, targets, denominator,
                                                     *late)
        else:
            logits = self.lm_head(selected)
            loss = F.cross_entropy(logits.float(), targets, reduction="sum") / denominator
        return XLMRobertaMaskedLMOutput(
            loss=loss, logits=logits, masked_positions=positions, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class XLMRobertaForSequenceClassification(XLMRobertaPreTrainedModel):
    """Classification/regression on `<s>` (XNLI, GLUE)."""

    _auto_class = "AutoModelForSequenceClassification"
    _keys_to_ignore_on_load_unexpected = [r"pooler", r"lm_head", r"position_ids", r"token_type_ids$"]
    accepts_loss_kwargs = False

    def __init__(self, config: XLMRobertaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = XLMRobertaModel(config, add_pooling_layer=False)
        self.classifier = XLMRobertaClassificationHead(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None, position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        outputs = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs)
        logits = self.classifier(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression":
                loss = F.mse_loss(logits.squeeze(), labels.squeeze()) if self.num_labels == 1 else F.mse_loss(
                    logits, labels)
            elif self.config.problem_type == "single_label_classification":
                loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits, labels)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class XLMRobertaForMultipleChoice(XLMRobertaPreTrainedModel):
    """Multiple choice: pooled `<s>` of each (context, choice) pair, one score per choice."""

    _auto_class = "AutoModelForMultipleChoice"
    _keys_to_ignore_on_load_unexpected = [r"lm_head", r"position_ids", r"token_type_ids$"]
    accepts_loss_kwargs = False

    def __init__(self, config: XLMRobertaConfig):
        super().__init__(config)
        self.roberta = XLMRobertaModel(config, add_pooling_layer=True)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> MultipleChoiceModelOutput:
        r"""Inputs have shape `(batch, num_choices, length)`."""
        num_choices = input_ids.shape[1] if input_ids is not None else inputs_embeds.shape[1]

        def flat(t: torch.Tensor | None, keep: int = 1) -> torch.Tensor | None:
            return None if t is None else t.reshape(-1, *t.shape[t.dim() - keep:])

        language_ids = kwargs.pop("language_ids", None)
        if language_ids is not None:
            batch = (input_ids if input_ids is not None else inputs_embeds).shape[0]
            if language_ids.dim() == 1 and language_ids.shape[0] == batch:  # one language per example
                language_ids = language_ids.repeat_interleave(num_choices)
            elif language_ids.dim() >= 2:  # (batch, choices[, length])
                language_ids = flat(language_ids, language_ids.dim() - 2)
        outputs = self.roberta(
            flat(input_ids), attention_mask=flat(attention_mask), token_type_ids=flat(token_type_ids),
            position_ids=flat(position_ids), inputs_embeds=flat(inputs_embeds, 2), language_ids=language_ids,
            return_dict=True, **{k: v for k, v in kwargs.items() if k != "num_items_in_batch"},
        )
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)
        loss = F.cross_entropy(logits, labels.to(logits.device)) if labels is not None else None
        return MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class XLMRobertaForTokenClassification(XLMRobertaPreTrainedModel):
    """Per-token classification (NER): dropout + linear on every position."""

    _auto_class = "AutoModelForTokenClassification"
    _keys_to_ignore_on_load_unexpected = [r"pooler", r"lm_head", r"position_ids", r"token_type_ids$"]
    accepts_loss_kwargs = False

    def __init__(self, config: XLMRobertaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.roberta = XLMRobertaModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None, position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> TokenClassifierOutput:
        outputs = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs)
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.to(logits.device).view(-1))
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class XLMRobertaForQuestionAnswering(XLMRobertaPreTrainedModel):
    """Extractive QA: start/end logits per token (SQuAD, MLQA)."""

    _auto_class = "AutoModelForQuestionAnswering"
    _keys_to_ignore_on_load_unexpected = [r"pooler", r"lm_head", r"position_ids", r"token_type_ids$"]
    accepts_loss_kwargs = False

    def __init__(self, config: XLMRobertaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = XLMRobertaModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None, position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.LongTensor | None = None,
        end_positions: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> QuestionAnsweringModelOutput:
        outputs = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, kwargs)
        start_logits, end_logits = self.qa_outputs(outputs.last_hidden_state).split(1, dim=-1)
        start_logits, end_logits = start_logits.squeeze(-1).contiguous(), end_logits.squeeze(-1).contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.size(1)  # answers outside the window are ignored, as in transformers
            start = start_positions.reshape(-1).to(start_logits.device).clamp(0, ignored)
            end = end_positions.reshape(-1).to(end_logits.device).clamp(0, ignored)
            loss = (F.cross_entropy(start_logits, start, ignore_index=ignored)
                    + F.cross_entropy(end_logits, end, ignore_index=ignored)) / 2
        return QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
