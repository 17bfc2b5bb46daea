"""Shared fixtures and factories for the xlmr-hf test suite (offline, CPU, tiny in-code configs).

Everything here is general-purpose: tiny configuration kwargs, our configs for both LayerNorm layouts, the matching
transformers configs/models, and a way to give two models identical (randomised) weights.

* ``tiny_config_kwargs(**overrides)`` — kwargs of a tiny ``XLMRobertaConfig`` (vocab 99, hidden 32, 2 layers, 4 heads,
  FFN 37, 40 positions, dropout 0 so that train mode is deterministic).
* fixtures ``tiny_config`` (post-LN, XLM-R base/large layout) and ``tiny_xl_config`` (pre-LN, XL/XXL layout).
* ``hf_config_from_ours(config)`` — the transformers ``XLMRobertaConfig`` / ``XLMRobertaXLConfig`` of the same shape.
* ``build_hf_model(head, config, seed)`` — a transformers model with seeded, randomised weights (LayerNorm gains and
  every bias included, so a missing bias or a swapped norm cannot hide behind the default init).
* ``build_pair(head, config, ...)`` — (ours, transformers) with identical weights, via ``save_pretrained`` +
  our ``from_pretrained`` (route ``"save"``) or ``load_state_dict(strict=True)`` (route ``"memory"``).
* ``padded_batch(...)`` — right-padded ``input_ids`` / ``attention_mask`` without pad ids inside real tokens.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers

import xlmr_hf
from xlmr_hf import XLMRobertaConfig

# Tiny tensors gain nothing from intra-op threads, and on a shared 2-core machine thread contention makes each op
# ~100x slower (spin-waiting). Override with XLMR_TEST_THREADS=N.
torch.set_num_threads(int(os.environ.get("XLMR_TEST_THREADS", "1")))

TINY_CONFIG_KWARGS: dict[str, Any] = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    initializer_range=0.02,
)

# Heads: name -> (our class, transformers post-LN class, transformers pre-LN class).
HEADS: dict[str, tuple[type, type, type]] = {
    "model": (xlmr_hf.XLMRobertaModel, transformers.XLMRobertaModel, transformers.XLMRobertaXLModel),
    "masked_lm": (
        xlmr_hf.XLMRobertaForMaskedLM,
        transformers.XLMRobertaForMaskedLM,
        transformers.XLMRobertaXLForMaskedLM,
    ),
    "sequence_classification": (
        xlmr_hf.XLMRobertaForSequenceClassification,
        transformers.XLMRobertaForSequenceClassification,
        transformers.XLMRobertaXLForSequenceClassification,
    ),
    "token_classification": (
        xlmr_hf.XLMRobertaForTokenClassification,
        transformers.XLMRobertaForTokenClassification,
        transformers.XLMRobertaXLForTokenClassification,
    ),
    "question_answering": (
        xlmr_hf.XLMRobertaForQuestionAnswering,
        transformers.XLMRobertaForQuestionAnswering,
        transformers.XLMRobertaXLForQuestionAnswering,
    ),
    "multiple_choice": (
        xlmr_hf.XLMRobertaForMultipleChoice,
        transformers.XLMRobertaForMultipleChoice,
        transformers.XLMRobertaXLForMultipleChoice,
    ),
}

# Head-specific config overrides (number of labels) used by `head_config`.
HEAD_OVERRIDES: dict[str, dict[str, Any]] = {
    "sequence_classification": {"num_labels": 3},
    "token_classification": {"num_labels": 5},
    "question_answering": {"num_labels": 2},
}


# ---------------------------------------------------------------------------------------------------- configs
def tiny_config_kwargs(**overrides: Any) -> dict[str, Any]:
    """A fresh dict of tiny-config kwargs (post-LN unless `layer_norm_position="pre"` is given)."""
    return {**TINY_CONFIG_KWARGS, **overrides}


def tiny_xlmr_config(layer_norm_position: str = "post", **overrides: Any) -> XLMRobertaConfig:
    """Our tiny config for either layout."""
    return XLMRobertaConfig(**tiny_config_kwargs(layer_norm_position=layer_norm_position, **overrides))


def head_config(head: str, layer_norm_position: str = "post", **overrides: Any) -> XLMRobertaConfig:
    """Tiny config with the head's label count (see `HEAD_OVERRIDES`)."""
    return tiny_xlmr_config(layer_norm_position, **{**HEAD_OVERRIDES.get(head, {}), **overrides})


@pytest.fixture
def tiny_config() -> XLMRobertaConfig:
    """Tiny post-LN (XLM-R base/large layout) config."""
    return tiny_xlmr_config("post")


@pytest.fixture
def tiny_xl_config() -> XLMRobertaConfig:
    """Tiny pre-LN (XLM-R XL/XXL layout) config."""
    return tiny_xlmr_config("pre")


@pytest.fixture(params=["post", "pre"])
def layer_norm_position(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over both LayerNorm layouts."""
    return request.param


_HF_CONFIG_FIELDS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
    "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id", "eos_token_id", "classifier_dropout",
    "tie_word_embeddings",
)


def hf_config_from_ours(config: XLMRobertaConfig) -> transformers.PreTrainedConfig:
    """transformers' `XLMRobertaConfig` (post-LN) or `XLMRobertaXLConfig` (pre-LN) with the same shape and labels."""
    cls = transformers.XLMRobertaXLConfig if config.layer_norm_position == "pre" else transformers.XLMRobertaConfig
    kwargs = {name: getattr(config, name) for name in _HF_CONFIG_FIELDS}
    return cls(**kwargs, num_labels=config.num_labels)


def hf_class(head: str, layer_norm_position: str) -> type:
    """The transformers class matching `head` for the layout."""
    return HEADS[head][2 if layer_norm_position == "pre" else 1]


def our_class(head: str) -> type:
    return HEADS[head][0]


# ---------------------------------------------------------------------------------------------------- weights
@torch.no_grad()
def randomize_parameters_(model: torch.nn.Module, seed: int = 0, std: float = 0.2) -> torch.nn.Module:
    """Overwrite every (unique) parameter with seeded noise: LayerNorm gains ~ 1 + N(0, 0.1), biases ~ N(0, 0.1),
    matrices/embeddings ~ N(0, std). Tied parameters are visited once, so ties survive."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
        leaf = name.rsplit(".", 1)[-1]
        is_norm = "LayerNorm" in name or "layer_norm" in name
        if is_norm and leaf == "weight":
            param.copy_(1.0 + 0.1 * noise)
        elif leaf == "bias" or param.dim() == 1:
            param.copy_(0.1 * noise)
        else:
            param.copy_(std * noise)
    return model


def build_hf_model(
    head: str, config: XLMRobertaConfig, seed: int = 0, attn_implementation: str = "eager"
) -> transformers.PreTrainedModel:
    """transformers' model for `head` in `config`'s layout, with seeded random weights, eval mode, fp32."""
    torch.manual_seed(seed)
    model = hf_class(head, config.layer_norm_position)(hf_config_from_ours(config))
    randomize_parameters_(model, seed)
    model.set_attn_implementation(attn_implementation)
    return model.eval()


def build_pair(
    head: str,
    config: XLMRobertaConfig,
    *,
    seed: int = 0,
    attn_implementation: str = "eager",
    route: str = "memory",
    tmp_path: Path | None = None,
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(ours, transformers') for `head` with identical weights, both in eval mode with `attn_implementation`.

    route "save": transformers' `save_pretrained(tmp_path)` then our `from_pretrained(tmp_path)` (reads its
    xlm-roberta(-xl) config.json); route "memory": our model from `config` + `load_state_dict(strict=True)`.
    """
    hf = build_hf_model(head, config, seed, attn_implementation)
    cls = our_class(head)
    if route == "save":
        if tmp_path is None:
            raise ValueError("route='save' needs tmp_path")
        hf.save_pretrained(tmp_path)
        ours = cls.from_pretrained(tmp_path, attn_implementation=attn_implementation)
    elif route == "memory":
        ours = cls(config)
        ours.load_state_dict(hf.state_dict(), strict=True)
        ours.set_attn_implementation(attn_implementation)
    else:
        raise ValueError(f"route={route!r}; allowed 'save' or 'memory'")
    return ours.eval(), hf


# ---------------------------------------------------------------------------------------------------- inputs
def random_ids(shape: tuple[int, ...], config: XLMRobertaConfig, generator: torch.Generator) -> torch.Tensor:
    """Token ids in [3, vocab): never pad (1), so positions derived from ids count every token."""
    return torch.randint(3, config.vocab_size, shape, generator=generator)


def padded_batch(
    config: XLMRobertaConfig, lengths: tuple[int, ...] = (12, 9, 5), seed: int = 0, width: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded batch: row i has `lengths[i]` real tokens (`<s>` … `</s>`), then pad ids with mask 0; the width
    is `max(lengths)` unless given."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths) if width is None else width
    input_ids = torch.full((len(lengths), width), config.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        input_ids[row, :n] = random_ids((n,), config, generator)
        input_ids[row, 0] = config.bos_token_id
        input_ids[row, n - 1] = config.eos_token_id
        attention_mask[row, :n] = 1
    return input_ids, attention_mask


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}"
    return (a.detach().float() - b.detach().float()).abs().max().item() if a.numel() else 0.0


# ---------------------------------------------------------------------------------------------------- GPU markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``gpu`` tests are skipped where torch sees no CUDA device and ``multi_gpu`` ones where it sees fewer than two.
    (The default run deselects both through setup.cfg's ``-m``; ``-m gpu`` selects them, and on a CPU machine they
    are then reported as skipped, exit status 0.)"""
    if not any(item.get_closest_marker("gpu") or item.get_closest_marker("multi_gpu") for item in items):
        return
    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for item in items:
        if item.get_closest_marker("gpu") and devices < 1:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)"))
        elif item.get_closest_marker("multi_gpu") and devices < 2:
            item.add_marker(pytest.mark.skip(reason=f"needs two or more CUDA devices, torch sees {devices}"))
