"""Configuration of the xlmr-hf XLM-R model family.

One configuration class serves XLM-R base/large (post-LayerNorm, as transformers' ``xlm-roberta``), XLM-R XL/XXL
(pre-LayerNorm, as transformers' ``xlm-roberta-xl``) and the paper's ablation shapes. Defaults are XLM-R base's, unlike
transformers' ``XLMRobertaConfig`` whose defaults (30,522 vocabulary, eps 1e-12, two token types) are BERT's.

This file is copied next to saved checkpoints (``trust_remote_code``), so it imports nothing from ``xlmr_hf``.
"""

from __future__ import annotations

import copy
import functools
import os
from typing import Any, ClassVar, Literal

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import PreTrainedConfig
from transformers.utils import logging

__all__ = ["PRESETS", "XLMRobertaConfig", "XLMRobertaConfigError"]

logger = logging.get_logger(__name__)

_ACTIVATIONS = ("gelu", "gelu_new", "gelu_python", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish", "tanh")

# Shapes of the released checkpoints and of the XLM-R paper's ablations (Conneau et al., 2019, §5; Goyal et al., 2021).
# The paper gives only the widths of its XLM-7/30/100 capacity models; heads and FFN follow BERT's ratios (head dim 64,
# FFN = 4 × hidden). Ablation vocabularies have 150k pieces; like the released 250k one they get 2 extra ids (150,002).
PRESETS: dict[str, dict[str, Any]] = {
    # 12 layers × 768, 250k SentencePiece vocabulary: 278,043,648 parameters with the pooler (MaskedLM 278,295,186).
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
    # 24 layers × 1024: 559,890,432 parameters with the pooler (MaskedLM 560,142,482).
    "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
    # XLM-R XL (Goyal et al., 2021): 36 × 2560, pre-LayerNorm, 250,880-entry embedding: 3,482,485,760 parameters.
    "xl": dict(
        num_hidden_layers=36,
        hidden_size=2560,
        num_attention_heads=32,
        intermediate_size=10240,
        vocab_size=250880,
        layer_norm_position="pre",
    ),
    # XLM-R XXL: 48 × 4096, pre-LayerNorm: 10,712,735,744 parameters.
    "xxl": dict(
        num_hidden_layers=48,
        hidden_size=4096,
        num_attention_heads=32,
        intermediate_size=16384,
        vocab_size=250880,
        layer_norm_position="pre",
    ),
    # Ablations (paper §5): BERT-base shape with the 150k vocabulary used for the ablation studies.
    "bert-base-150k": dict(
        num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072, vocab_size=150002
    ),
    # Capacity-dilution study: width grows with the number of languages (7 -> 768, 30 -> 960, 100 -> 1152).
    "xlm-7": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072, vocab_size=150002),
    "xlm-30": dict(num_hidden_layers=12, hidden_size=960, num_attention_heads=15, intermediate_size=3840, vocab_size=150002),
    "xlm-100": dict(
        num_hidden_layers=12, hidden_size=1152, num_attention_heads=18, intermediate_size=4608, vocab_size=150002
    ),
}

# transformers model types whose config.json this class reads (translated on load).
_TRANSFORMERS_TYPES = {"xlm-roberta": "post", "xlm-roberta-xl": "pre", "roberta": "post"}
# Keys of transformers' configs that have no meaning for an encoder-only model and are dropped on translation.
_DROPPED_KEYS = ("use_cache", "gradient_checkpointing", "output_past", "position_embedding_type", "is_decoder",
                 "add_cross_attention", "auto_map")


def _fail(field: str, value: Any, allowed: str) -> None:
    raise ValueError(f"XLMRobertaConfig.{field}={value!r} is invalid: allowed {allowed}.")


@strict(accept_kwargs=True)
class XLMRobertaConfig(PreTrainedConfig):
    r"""Configuration of an XLM-R encoder (``model_type="xlmr-hf"``); defaults are XLM-R base's.

    Args:
        vocab_size (`int`, defaults to 250002): number of token ids, i.e. rows of the word-embedding matrix
            (250,002 for the released base/large vocabulary; 250,880 for XL/XXL, padded to a multiple of 128).
        hidden_size (`int`, defaults to 768): width of the encoder; must be a multiple of `num_attention_heads`.
        num_hidden_layers (`int`, defaults to 12): number of transformer layers.
        num_attention_heads (`int`, defaults to 12): attention heads per layer.
        intermediate_size (`int`, defaults to 3072): width of the feed-forward block.
        hidden_act (`str`, defaults to `"gelu"`): feed-forward activation (exact erf GELU as fairseq).
        hidden_dropout_prob (`float`, defaults to 0.1): dropout on embeddings and residual branches, in [0, 1).
        attention_probs_dropout_prob (`float`, defaults to 0.1): dropout on attention probabilities, in [0, 1).
        max_position_embeddings (`int`, defaults to 514): position slots; positions start at `pad_token_id + 1`, so
            sequences hold at most `max_position_embeddings - pad_token_id - 1` (512) tokens.
        type_vocab_size (`int`, defaults to 1): number of token types (XLM-R uses a single one).
        initializer_range (`float`, defaults to 0.02): std of the normal initialisation of weights.
        layer_norm_eps (`float`, defaults to 1e-5): LayerNorm epsilon (fairseq's default).
        pad_token_id (`int`, defaults to 1), bos_token_id (`int`, defaults to 0), eos_token_id (`int`, defaults to 2):
            fairseq's special ids.
        classifier_dropout (`float`, *optional*): dropout of classification heads; `None` uses `hidden_dropout_prob`.
        layer_norm_position (`"post"` | `"pre"`, defaults to `"post"`): `"post"` is BERT/XLM-R base/large (LayerNorm
            after each residual add, one on the embeddings); `"pre"` is XLM-R XL/XXL (LayerNorm before each block and
            one after the last layer, none on the embeddings).
        use_language_embeddings (`bool`, defaults to False): add a learned language embedding to every token (XLM's
            ablation); off in XLM-R. When off the model has no extra parameters.
        n_langs (`int`, defaults to 1): size of the language-embedding table; must be ≥ 1.
        tie_word_embeddings (`bool`, defaults to True): share the masked-LM decoder with the word embeddings.
        fused_mlm_loss (`bool`, defaults to True): speed switch of `XLMRobertaForMaskedLM` with labels and grad mode
            on: fuse the vocabulary projection and the cross-entropy, computing their gradients in the forward pass
            chunk by chunk, so neither the half-precision weight copy nor the logits outlive it (the returned `logits`
            carry no gradient). False backpropagates through plain logits. Same numbers either way.
        sparse_embedding_grad (`bool`, defaults to True): speed switch of `XLMRobertaForMaskedLM` with labels and tied
            weights: the word-embedding lookup produces a sparse gradient, summed into the decoder's dense one (so
            `.grad` stays dense). False uses dense lookup gradients.
        cpu_dropout_attention (`bool`, defaults to True): speed switch for training on CPU with attention dropout
            under `attn_implementation="sdpa"`: use `ops_xlmr.cpu_dropout_attention` (bf16 matmuls under autocast,
            fp32 softmax) instead of SDPA's all-fp32 math fallback. False keeps plain SDPA.

    Configs saved without the three speed switches (older xlmr-hf versions, transformers' xlm-roberta) get the
    defaults.
    """

    model_type: ClassVar[str] = "xlmr-hf"
    _auto_class: ClassVar[str | None] = "AutoConfig"

    vocab_size: int = 250002
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2
    classifier_dropout: float | int | None = None
    layer_norm_position: Literal["post", "pre"] = "post"
    use_language_embeddings: bool = False
    n_langs: int = 1
    tie_word_embeddings: bool = True
    # Speed switches: same numbers, other kernels (see the docstring).
    fused_mlm_loss: bool = True
    sparse_embedding_grad: bool = True
    cpu_dropout_attention: bool = True

    # ------------------------------------------------------------------ validation (run by @strict on init/validate)
    def validate_shapes(self) -> None:
        """Every size is a positive integer and the width splits evenly into heads."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size", "n_langs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail(name, value, "an integer >= 1")
        if self.hidden_size % self.num_attention_heads:
            _fail("hidden_size", self.hidden_size,
                  f"a multiple of num_attention_heads={self.num_attention_heads}")
        if self.layer_norm_position not in ("post", "pre"):
            _fail("layer_norm_position", self.layer_norm_position, "'post' (XLM-R base/large) or 'pre' (XL/XXL)")
        if self.hidden_act not in _ACTIVATIONS:
            _fail("hidden_act", self.hidden_act, f"one of {list(_ACTIVATIONS)}")

    def validate_probabilities(self) -> None:
        """Dropout rates lie in [0, 1); eps and the init std are positive."""
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                _fail(name, value, "a number in [0, 1)" + (" or None" if name == "classifier_dropout" else ""))
        for name in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                _fail(name, value, "a number > 0")

    def validate_special_ids(self) -> None:
        """Special ids lie inside the vocabulary and positions leave room for at least one token."""
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < self.vocab_size):
                    _fail(name, value, f"None or an integer in [0, vocab_size={self.vocab_size})")
        pad = self.pad_token_id if self.pad_token_id is not None else 0
        if self.max_position_embeddings <= pad + 1:
            _fail("max_position_embeddings", self.max_position_embeddings,
                  f"an integer > pad_token_id + 1 = {pad + 1} (positions start at pad_token_id + 1)")

    def validate_speed_switches(self) -> None:
        """The speed switches are booleans."""
        for name in ("fused_mlm_loss", "sparse_embedding_grad", "cpu_dropout_attention"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                _fail(name, value, "True or False")

    # ------------------------------------------------------------------ presets and derived values
    @property
    def max_tokens(self) -> int:
        """Longest sequence the position table holds: positions run from `pad_token_id + 1`."""
        return self.max_position_embeddings - (self.pad_token_id if self.pad_token_id is not None else 0) - 1

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> XLMRobertaConfig:
        """Build the configuration of a named shape (see `PRESETS`), e.g. ``from_preset("large", n_langs=4)``."""
        if name not in PRESETS:
            raise ValueError(f"XLMRobertaConfig.from_preset: unknown preset {name!r}; allowed: {sorted(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    # ------------------------------------------------------------------ reading transformers' configs
    @classmethod
    def translate_transformers_dict(cls, config_dict: dict[str, Any]) -> dict[str, Any]:
        """Turn the `config.json` of transformers' `xlm-roberta` / `xlm-roberta-xl` into ours.

        Raises a ValueError for settings this encoder does not implement (decoders, relative positions).
        Dicts already of type ``xlmr-hf`` (or without a type) are returned unchanged.
        """
        model_type = config_dict.get("model_type")
        if model_type in (None, cls.model_type):
            return config_dict
        if model_type not in _TRANSFORMERS_TYPES:
            raise ValueError(
                f"config.json has model_type={model_type!r}; XLMRobertaConfig reads {cls.model_type!r} and "
                f"transformers' {sorted(_TRANSFORMERS_TYPES)}."
            )
        out = copy.deepcopy(config_dict)
        position_type = out.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            _fail("position_embedding_type", position_type, "'absolute' (the only kind XLM-R uses)")
        for flag in ("is_decoder", "add_cross_attention"):
            if out.get(flag):
                _fail(flag, True, "False (xlmr-hf implements the bidirectional encoder only)")
        for key in _DROPPED_KEYS:
            out.pop(key, None)
        out["model_type"] = cls.model_type
        out["layer_norm_position"] = _TRANSFORMERS_TYPES[model_type]
        # transformers' defaults differ from ours: make them explicit so our defaults do not leak in.
        hf_defaults = {"vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12}
        if model_type == "xlm-roberta-xl":
            hf_defaults = {"vocab_size": 250880, "max_position_embeddings": 514, "type_vocab_size": 1,
                           "layer_norm_eps": 1e-5, "hidden_size": 2560, "num_hidden_layers": 36,
                           "num_attention_heads": 32, "intermediate_size": 10240}
        for key, value in hf_defaults.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> XLMRobertaConfig:
        """As `PreTrainedConfig.from_dict`, also reading transformers' xlm-roberta(-xl) configs."""
        return super().from_dict(cls.translate_transformers_dict(config_dict), **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> XLMRobertaConfig:
        """Load ours or a transformers xlm-roberta(-xl) `config.json` (local directory, file or Hub id)."""
        config_dict, kwargs = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
        return cls.from_dict(config_dict, **kwargs)


class XLMRobertaConfigError(StrictDataclassClassValidationError, ValueError):
    """An invalid `XLMRobertaConfig` value: a ValueError naming field, value and what is allowed.

    `@strict` wraps validator errors in `StrictDataclassClassValidationError` (not a ValueError); this class is both.
    """

    def __init__(self, cause: Exception):
        Exception.__init__(self, str(cause))


def _raise_value_errors(cls: type[XLMRobertaConfig]) -> type[XLMRobertaConfig]:
    strict_validate = cls.validate

    @functools.wraps(strict_validate)  # keeps the marker @strict looks for on subclasses
    def validate(self: XLMRobertaConfig) -> None:
        try:
            strict_validate(self)
        except StrictDataclassClassValidationError as err:
            if isinstance(err, ValueError) or not isinstance(err.__cause__, ValueError):
                raise
            raise XLMRobertaConfigError(err.__cause__) from err.__cause__

    cls.validate = validate
    return cls


_raise_value_errors(XLMRobertaConfig)
