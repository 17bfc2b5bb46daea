"""Conversion between xlmr-hf checkpoints, transformers' ``xlm-roberta`` / ``xlm-roberta-xl`` and fairseq XLM-R.

Parameter names of xlmr-hf equal transformers', so the transformers direction only translates the config and checks
that every tensor moves. fairseq names are renamed with `FAIRSEQ_KEY_MAP`; any other fairseq key is an error. Every
writer here is atomic, and fairseq ``model.pt`` files are read with ``weights_only=True``. `convert` is what
``xlmr-hf convert`` runs. See ``docs/models.md`` ("Conversion") for the name-mapping tables.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import torch
import transformers
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import logging

from .configuration_xlmr import XLMRobertaConfig
from .modeling_xlmr import (
    XLMRobertaForMaskedLM,
    XLMRobertaForMultipleChoice,
    XLMRobertaForQuestionAnswering,
    XLMRobertaForSequenceClassification,
    XLMRobertaForTokenClassification,
    XLMRobertaModel,
    XLMRobertaPreTrainedModel,
)

__all__ = [
    "FAIRSEQ_KEY_MAP",
    "HEADS",
    "Head",
    "convert",
    "convert_fairseq_state_dict",
    "export_to_transformers",
    "import_from_transformers",
    "load_fairseq_checkpoint",
    "to_transformers_config",
]

logger = logging.get_logger(__name__)

Head = Literal[
    "model", "masked-lm", "sequence-classification", "token-classification", "question-answering", "multiple-choice"
]

# Head name -> our class. The transformers class has the same name ("XLMRobertaXL..." for the pre-LN layout).
HEADS: dict[str, type[XLMRobertaPreTrainedModel]] = {
    "model": XLMRobertaModel,
    "masked-lm": XLMRobertaForMaskedLM,
    "sequence-classification": XLMRobertaForSequenceClassification,
    "token-classification": XLMRobertaForTokenClassification,
    "question-answering": XLMRobertaForQuestionAnswering,
    "multiple-choice": XLMRobertaForMultipleChoice,
}
_SUFFIX = {head: cls.__name__.removeprefix("XLMRoberta") for head, cls in HEADS.items()}
# Longest prefix first: "XLMRobertaXLForMaskedLM" must not read as "XLMRoberta" + "XLForMaskedLM".
_ARCHITECTURE_PREFIXES = ("XLMRobertaXL", "XLMRoberta", "Roberta")
_HF_PREFIX = {"post": "XLMRoberta", "pre": "XLMRobertaXL"}
_HF_CONFIG = {"post": "XLMRobertaConfig", "pre": "XLMRobertaXLConfig"}

# Config fields that mean the same in our config and transformers' xlm-roberta(-xl) configs.
_SHARED_FIELDS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
    "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id", "eos_token_id", "classifier_dropout",
    "tie_word_embeddings", "chunk_size_feed_forward", "problem_type",
)
# from_pretrained keywords that also locate the config.json.
_HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only", "subfolder", "force_download")
# Tokenizer files carried along when a checkpoint directory is converted (weights-only formats have none).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                    "sentencepiece.bpe.model")

# ------------------------------------------------------------------------------------------------ fairseq names
_SE = r"(?:encoder|decoder)\.sentence_encoder\."
_LM = r"(?:encoder|decoder)\.lm_head\."
_R = "roberta.encoder.layer."
_COMMON: tuple[tuple[str, str], ...] = (
    (_SE + r"embed_tokens\.weight", "roberta.embeddings.word_embeddings.weight"),
    (_SE + r"embed_positions\.weight", "roberta.embeddings.position_embeddings.weight"),
    (_SE + r"layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)", _R + r"\1.attention.self.query.\2"),
    (_SE + r"layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)", _R + r"\1.attention.self.key.\2"),
    (_SE + r"layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)", _R + r"\1.attention.self.value.\2"),
    (_SE + r"layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)", _R + r"\1.attention.output.dense.\2"),
    (_SE + r"layers\.(\d+)\.fc1\.(weight|bias)", _R + r"\1.intermediate.dense.\2"),
    (_SE + r"layers\.(\d+)\.fc2\.(weight|bias)", _R + r"\1.output.dense.\2"),
    (_LM + r"dense\.(weight|bias)", r"lm_head.dense.\1"),
    (_LM + r"layer_norm\.(weight|bias)", r"lm_head.layer_norm.\1"),
    (_LM + r"weight", "lm_head.decoder.weight"),
    (_LM + r"bias", "lm_head.bias"),
)
#: (fairseq regular expression, xlmr-hf replacement) pairs per ``layer_norm_position``; matched with `re.fullmatch`.
FAIRSEQ_KEY_MAP: dict[str, tuple[tuple[str, str], ...]] = {
    "post": _COMMON + (
        (_SE + r"(?:layernorm_embedding|emb_layer_norm)\.(weight|bias)", r"roberta.embeddings.LayerNorm.\1"),
        (_SE + r"layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", _R + r"\1.attention.output.LayerNorm.\2"),
        (_SE + r"layers\.(\d+)\.final_layer_norm\.(weight|bias)", _R + r"\1.output.LayerNorm.\2"),
    ),
    "pre": _COMMON + (
        (_SE + r"layer_norm\.(weight|bias)", r"roberta.encoder.LayerNorm.\1"),
        (_SE + r"layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", _R + r"\1.attention.self_attn_layer_norm.\2"),
        (_SE + r"layers\.(\d+)\.final_layer_norm\.(weight|bias)", _R + r"\1.LayerNorm.\2"),
    ),
}
_IN_PROJ = re.compile(r"(?P<prefix>.*\.self_attn\.)in_proj_(?P<kind>weight|bias)")
_HEAD_KEY = re.compile(r"classification_heads\.(?P<name>.+)\.(?P<part>dense|out_proj)\.(?P<kind>weight|bias)")
_DROPPED_SUFFIXES = (".version", "_float_tensor")


# ------------------------------------------------------------------------------------------------ small helpers
def _names(keys: object, limit: int = 20) -> str:
    keys = sorted(keys)  # type: ignore[call-overload]
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _check_head(head: str) -> str:
    if head not in HEADS:
        raise ValueError(f"head={head!r} is invalid: allowed {list(HEADS)}.")
    return head


def _head_of_architecture(name: str) -> str | None:
    """``"XLMRobertaXLForMaskedLM"`` → ``"masked-lm"``; None for unknown class names."""
    for prefix in _ARCHITECTURE_PREFIXES:
        if name.startswith(prefix):
            suffix = name[len(prefix):]
            return next((head for head, known in _SUFFIX.items() if known == suffix), None)
    return None


def _head_of_model(model: XLMRobertaPreTrainedModel) -> str:
    for head, cls in HEADS.items():
        if type(model) is cls:
            return head
    for head, cls in HEADS.items():  # subclasses of our heads
        if isinstance(model, cls):
            return head
    raise TypeError(f"{type(model).__name__} is not one of the xlmr-hf classes {[c.__name__ for c in HEADS.values()]}.")


def _head_from_config(config: PreTrainedConfig, where: str) -> str:
    architectures = getattr(config, "architectures", None) or []
    for name in architectures:
        head = _head_of_architecture(name)
        if head is not None:
            return head
    raise ValueError(
        f"{where}: config.architectures={architectures!r} names no known XLM-R head; pass head= one of {list(HEADS)}."
    )


def _transformers_class(layer_norm_position: str, head: str) -> type[PreTrainedModel]:
    return getattr(transformers, _HF_PREFIX[layer_norm_position] + _SUFFIX[head])


def _is_head_key(key: str, model_cls: type[XLMRobertaPreTrainedModel]) -> bool:
    """Keys a model of `model_cls` may legitimately lack when loaded from another head's checkpoint."""
    if model_cls is XLMRobertaModel:
        return key.startswith("pooler.")
    return not key.startswith("roberta.") or key.startswith("roberta.pooler.")


def _build_with_weights(
    cls: type[nn.Module], config: PreTrainedConfig, state_dict: Mapping[str, torch.Tensor], where: str
) -> nn.Module:
    """Instantiate `cls` without initialising it and take `state_dict` as its tensors (strict; storage is shared).

    Building on the meta device means no random initialisation and no second copy of the weights, which matters at
    XL/XXL size. Tied parameters are re-tied afterwards; tensors that only share storage by accident are cloned.
    """
    with torch.device("meta"):
        model = cls(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    missing, unexpected = set(expected) - set(state_dict), set(state_dict) - set(expected)
    if missing or unexpected:
        raise ValueError(
            f"{where}: the weights do not fit {cls.__name__}: missing [{_names(missing)}], "
            f"unexpected [{_names(unexpected)}]."
        )
    wrong = [f"{k}: {tuple(state_dict[k].shape)} != {tuple(s)}" for k, s in expected.items()
             if tuple(state_dict[k].shape) != tuple(s)]
    if wrong:
        raise ValueError(f"{where}: shapes differ from {cls.__name__}'s (got != expected): {'; '.join(wrong[:20])}.")
    tied = model.get_expanded_tied_weights_keys(all_submodels=True) if isinstance(model, PreTrainedModel) else {}
    for target, source in tied.items():
        if target in state_dict and source in state_dict and not torch.equal(state_dict[target], state_dict[source]):
            raise ValueError(f"{where}: {target} differs from {source}, which config.tie_word_embeddings=True ties "
                             "it to; allowed: equal tensors, or tie_word_embeddings=False.")
    model.load_state_dict(dict(state_dict), strict=True, assign=True)
    if tied:
        model.tie_weights()
    _untangle_shared_storage(model)
    on_meta = [name for name, param in model.named_parameters() if param.is_meta]
    if on_meta:  # cannot happen after a strict load; a guard against silently empty weights
        raise RuntimeError(f"{where}: parameters left uninitialised: {_names(on_meta)}.")
    return model


def _untangle_shared_storage(model: nn.Module) -> None:
    """Clone parameters that share storage with another parameter without being the same (tied) parameter."""
    seen: dict[tuple[torch.device, int], nn.Parameter] = {}
    for full_name, param in list(model.named_parameters(remove_duplicate=False)):
        if param.is_meta:
            continue
        key = (param.device, param.untyped_storage().data_ptr())
        first = seen.setdefault(key, param)
        if first is not param:
            owner_name, _, name = full_name.rpartition(".")
            owner = model.get_submodule(owner_name) if owner_name else model
            setattr(owner, name, nn.Parameter(param.detach().clone(), requires_grad=param.requires_grad))


def _map_once(
    state_dict: Mapping[str, torch.Tensor], function: Callable[[torch.Tensor], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Apply `function` to every tensor, once per distinct view (tied entries stay shared and cost no extra copy)."""
    done: dict[tuple[object, ...], torch.Tensor] = {}
    out = {}
    for key, tensor in state_dict.items():
        view = (tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
                tuple(tensor.stride()), tensor.dtype)
        if view not in done:
            done[view] = function(tensor)
        out[key] = done[view]
    return out


def _load_checked(
    path: str | os.PathLike, head: str | None, where: str, **from_pretrained_kwargs: object
) -> XLMRobertaPreTrainedModel:
    """Our `from_pretrained` (reads ours and transformers' formats), failing when weights are missing or unused.

    When `head` differs from the checkpoint's own head, only the new head's weights may be missing (they are freshly
    initialised, as transformers does for fine-tuning); every encoder weight must be present.
    """
    hub_kwargs = {k: v for k, v in from_pretrained_kwargs.items() if k in _HUB_KWARGS}
    config = XLMRobertaConfig.from_pretrained(path, **hub_kwargs)
    source_head = _head_from_config(config, where) if head is None else None
    if head is None:
        head = source_head
    else:
        _check_head(head)
        architectures = getattr(config, "architectures", None) or []
        source_head = next((h for h in map(_head_of_architecture, architectures) if h), None)
    cls = HEADS[head]
    model, info = cls.from_pretrained(path, output_loading_info=True, **from_pretrained_kwargs)
    missing, unexpected = set(info["missing_keys"]), set(info["unexpected_keys"])
    if info.get("mismatched_keys"):
        raise ValueError(f"{where}: weights with the wrong shape: {_names(k for k, *_ in info['mismatched_keys'])}.")
    if head != source_head:  # a different head: only its own weights may be new
        missing = {k for k in missing if not _is_head_key(k, cls)}
        unexpected = set()
    if missing or unexpected:
        raise ValueError(
            f"{where}: {cls.__name__} did not load cleanly: missing [{_names(missing)}], unused [{_names(unexpected)}]."
        )
    return model


def _copy_tokenizer_files(source: str | os.PathLike, destination: Path) -> list[str]:
    """Copy tokenizer files from a local checkpoint directory; `auto_map` entries are removed from their config."""
    source_dir = Path(source)
    copied = []
    if not source_dir.is_dir():
        return copied
    for name in _TOKENIZER_FILES:
        src = source_dir / name
        if not src.is_file():
            continue
        if name == "tokenizer_config.json":
            data = json.loads(src.read_text(encoding="utf-8"))
            data.pop("auto_map", None)
            (destination / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            shutil.copy2(src, destination / name)
        copied.append(name)
    return copied


def _atomic_write(output_dir: str | os.PathLike, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` on a fresh directory next to `output_dir`, then rename it into place.

    A non-empty `output_dir` is refused unless `overwrite`; on any failure the temporary directory is removed and an
    existing `output_dir` is left untouched.
    """
    output = Path(output_dir).expanduser().absolute()
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"output_dir={str(output)!r} exists and is not a directory.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output_dir={str(output)!r} exists and is not empty; pass overwrite=True to replace it."
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:12]
    tmp = output.parent / f".{output.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        write(tmp)
        if output.exists():
            old = output.parent / f".{output.name}.old-{tag}"
            output.rename(old)
            try:
                tmp.rename(output)
            except BaseException:
                old.rename(output)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output


# ------------------------------------------------------------------------------------------------ transformers
def to_transformers_config(config: XLMRobertaConfig) -> PreTrainedConfig:
    """Translate our config to transformers' `XLMRobertaConfig` (post-LN) or `XLMRobertaXLConfig` (pre-LN).

    Shapes, special ids, eps, dropouts, tying and the label metadata (`num_labels`, `id2label`, `label2id`,
    `problem_type`) are carried over; `architectures` is set by `save_pretrained`.

    Raises:
        ValueError: when `config.use_language_embeddings` is True (vanilla transformers has no language embeddings)
            or the layout is unknown.
    """
    if config.use_language_embeddings:
        raise ValueError(
            "XLMRobertaConfig.use_language_embeddings=True cannot be exported: transformers' xlm-roberta has no "
            "language embeddings (allowed: False). Keep the checkpoint in xlmr-hf format."
        )
    position = config.layer_norm_position
    if position not in _HF_CONFIG:
        raise ValueError(f"XLMRobertaConfig.layer_norm_position={position!r} is invalid: allowed 'post' or 'pre'.")
    values = {name: getattr(config, name) for name in _SHARED_FIELDS if hasattr(config, name)}
    values["id2label"] = dict(config.id2label)
    if config.label2id is not None:
        values["label2id"] = dict(config.label2id)
    dtype = getattr(config, "dtype", None)
    if dtype is not None:
        values["dtype"] = dtype
    return getattr(transformers, _HF_CONFIG[position])(**values)


def export_to_transformers(
    model_or_dir: XLMRobertaPreTrainedModel | str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    head: Head | None = None,
    overwrite: bool = False,
    max_shard_size: int | str = "50GB",
    copy_tokenizer: bool = True,
) -> Path:
    """Save a vanilla transformers ``xlm-roberta`` (post-LN) or ``xlm-roberta-xl`` (pre-LN) checkpoint.

    The result has transformers' `model_type`, safetensors weights, no `auto_map` and no python files, and loads with
    plain transformers (`AutoModelForMaskedLM.from_pretrained(output_dir)`, ...).

    Args:
        model_or_dir: one of our models (any head), or a directory / Hub id of an xlmr-hf checkpoint.
        output_dir: where the checkpoint goes; written atomically.
        head: only for a directory: load it as this head instead of its `config.architectures` one (the new head's
            weights are then freshly initialised). The exported class is the same head's transformers class, e.g.
            `XLMRobertaForMaskedLM` → `XLMRobertaForMaskedLM` / `XLMRobertaXLForMaskedLM`.
        overwrite: replace a non-empty `output_dir` (otherwise FileExistsError).
        max_shard_size: passed to `save_pretrained`.
        copy_tokenizer: for a local directory, copy its tokenizer files (without `auto_map`).

    Returns:
        The absolute path of `output_dir`.
    """
    source_dir = None
    if isinstance(model_or_dir, XLMRobertaPreTrainedModel):
        if head is not None and _check_head(head) != _head_of_model(model_or_dir):
            raise ValueError(
                f"head={head!r} differs from the given model's head {_head_of_model(model_or_dir)!r}; the model is "
                "exported as it is (pass head=None)."
            )
        model = model_or_dir
    elif isinstance(model_or_dir, (str, os.PathLike)):
        to_transformers_config(XLMRobertaConfig.from_pretrained(model_or_dir))  # fail before loading any weights
        model = _load_checked(model_or_dir, head, where=f"export_to_transformers({str(model_or_dir)!r})")
        source_dir = model_or_dir
    else:
        raise TypeError(
            f"model_or_dir has type {type(model_or_dir).__name__}; allowed: an xlmr-hf model or a checkpoint path."
        )
    hf_config = to_transformers_config(model.config)
    hf_cls = _transformers_class(model.config.layer_norm_position, _head_of_model(model))
    hf_model = _build_with_weights(hf_cls, hf_config, model.state_dict(), where="export_to_transformers")

    def write(tmp: Path) -> None:
        hf_model.save_pretrained(tmp, max_shard_size=max_shard_size)
        if copy_tokenizer and source_dir is not None:
            _copy_tokenizer_files(source_dir, tmp)

    out = _atomic_write(output_dir, overwrite, write)
    logger.info(f"Exported {type(model).__name__} as transformers {hf_cls.__name__} to {out}.")
    return out


def import_from_transformers(
    path_or_model: PreTrainedModel | str | os.PathLike,
    head: Head | None = None,
    **from_pretrained_kwargs: object,
) -> XLMRobertaPreTrainedModel:
    """Load a transformers ``xlm-roberta`` / ``xlm-roberta-xl`` (or ``roberta``) model as our class of the same head.

    Args:
        path_or_model: a checkpoint directory / Hub id, or an in-memory transformers model (its weights are copied).
        head: one of `HEADS`; default: the checkpoint's own head (`config.architectures` or the model's class).
            Another head keeps the encoder and initialises the new head, as `from_pretrained` does for fine-tuning.
        from_pretrained_kwargs: passed to our `from_pretrained` for a path (e.g. `dtype`).

    Returns:
        The model in eval mode. Every encoder weight must be present (ValueError otherwise); with the checkpoint's own
        head every weight must be present and used.
    """
    if isinstance(path_or_model, (str, os.PathLike)):
        return _load_checked(path_or_model, head, where=f"import_from_transformers({str(path_or_model)!r})",
                             **from_pretrained_kwargs)
    if not isinstance(path_or_model, PreTrainedModel) or isinstance(path_or_model, XLMRobertaPreTrainedModel):
        raise TypeError(
            f"path_or_model has type {type(path_or_model).__name__}; allowed: a path or a transformers xlm-roberta "
            "model (an xlmr-hf model needs no import)."
        )
    if from_pretrained_kwargs:
        raise TypeError(f"from_pretrained keywords {sorted(from_pretrained_kwargs)} apply to paths only.")
    source = path_or_model
    source_head = _head_of_architecture(type(source).__name__)
    if source_head is None:
        raise ValueError(f"{type(source).__name__} is not a transformers XLM-R/RoBERTa head; allowed: "
                         f"{[_HF_PREFIX['post'] + s for s in _SUFFIX.values()]} and their XL/Roberta variants.")
    head = source_head if head is None else _check_head(head)
    config = XLMRobertaConfig.from_dict(source.config.to_dict())
    config.architectures = [HEADS[head].__name__]
    cls = HEADS[head]
    if head == source_head:
        model = _build_with_weights(cls, config, _map_once(source.state_dict(), lambda t: t.detach().clone()),
                                    where=f"import_from_transformers({type(source).__name__})")
    else:
        model = cls(config)
        target_base = getattr(model, model.base_model_prefix, model)
        source_base = getattr(source, source.base_model_prefix, source)
        result = target_base.load_state_dict(source_base.state_dict(), strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("pooler.")]
        unexpected = [k for k in result.unexpected_keys if not k.startswith("pooler.")]
        if missing or unexpected:
            raise ValueError(f"import_from_transformers: encoder weights do not match: missing [{_names(missing)}], "
                             f"unexpected [{_names(unexpected)}].")
        logger.warning(f"import_from_transformers: {cls.__name__} head weights are newly initialised "
                       f"(the source model is a {type(source).__name__}).")
    return model.eval()


# ------------------------------------------------------------------------------------------------ fairseq
def _split_in_proj(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Legacy fairseq attention stores q, k, v stacked in `in_proj_weight` / `in_proj_bias`: split them."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        match = _IN_PROJ.fullmatch(key)
        if match is None:
            out[key] = tensor
            continue
        if tensor.shape[0] % 3:
            raise ValueError(f"fairseq key {key!r} has shape {tuple(tensor.shape)}: dim 0 is not 3 × hidden.")
        for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
            out[f"{match['prefix']}{name}.{match['kind']}"] = part
    return out


def convert_fairseq_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: XLMRobertaConfig,
    classification_head: str | None = None,
) -> dict[str, torch.Tensor]:
    """Rename a fairseq RoBERTa/XLM-R state dict to xlmr-hf names (those of `XLMRobertaForMaskedLM`).

    Follows `FAIRSEQ_KEY_MAP[config.layer_norm_position]`; token-type embeddings (absent in fairseq) are zeros of
    shape `(type_vocab_size, hidden_size)`. Tensors are not copied (the result shares them with the input).

    Args:
        state_dict: the fairseq model's weights (``checkpoint["model"]``).
        config: the target shape; every tensor must match it.
        classification_head: also map ``classification_heads.<name>`` to ``classifier.*`` (the head of
            `XLMRobertaForSequenceClassification`); the LM head is then optional (kept when present).

    Raises:
        ValueError: naming the keys, for unmapped fairseq keys, missing or duplicated weights, shapes that do not fit
            `config`, a missing classification head, or an LM head that differs from the embeddings while
            `config.tie_word_embeddings` is True.
    """
    if config.use_language_embeddings:
        raise ValueError("XLMRobertaConfig.use_language_embeddings=True: fairseq XLM-R has no language embeddings "
                         "(allowed: False).")
    rules = [(re.compile(pattern), target) for pattern, target in FAIRSEQ_KEY_MAP[config.layer_norm_position]]
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unmapped, skipped_heads, dropped = [], set(), 0
    for key, tensor in _split_in_proj(state_dict).items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"fairseq key {key!r} holds a {type(tensor).__name__}, not a tensor.")
        if key.endswith(_DROPPED_SUFFIXES):
            dropped += 1
            continue
        head_match = _HEAD_KEY.fullmatch(key)
        if head_match is not None:
            if head_match["name"] != classification_head:
                skipped_heads.add(head_match["name"])
                continue
            target = f"classifier.{head_match['part']}.{head_match['kind']}"
        else:
            target = next((rx.sub(repl, key) for rx, repl in rules if rx.fullmatch(key)), None)
        if target is None:
            unmapped.append(key)
            continue
        if target in out:
            raise ValueError(f"fairseq keys {origin[target]!r} and {key!r} both map to {target!r}.")
        out[target], origin[target] = tensor, key
    if unmapped:
        raise ValueError(
            f"{len(unmapped)} fairseq key(s) have no xlmr-hf counterpart for layer_norm_position="
            f"{config.layer_norm_position!r}: {_names(unmapped)}. Nothing is dropped silently; see FAIRSEQ_KEY_MAP."
        )
    if skipped_heads:
        logger.warning(f"Skipped fairseq classification head(s) {sorted(skipped_heads)} "
                       f"(classification_head={classification_head!r}).")
    if classification_head is not None and not any(k.startswith("classifier.") for k in out):
        raise ValueError(f"classification_head={classification_head!r} is not in the checkpoint; allowed: "
                         f"{sorted(skipped_heads)}.")

    embeddings = out.get("roberta.embeddings.word_embeddings.weight")
    if embeddings is None:
        raise ValueError("fairseq state dict lacks 'encoder.sentence_encoder.embed_tokens.weight' "
                         "(-> roberta.embeddings.word_embeddings.weight).")
    has_lm_head = any(k.startswith("lm_head.") for k in out)
    if "lm_head.decoder.weight" not in out and has_lm_head and config.tie_word_embeddings:
        out["lm_head.decoder.weight"] = embeddings
    if config.tie_word_embeddings and "lm_head.decoder.weight" in out and not torch.equal(
            out["lm_head.decoder.weight"], embeddings):
        raise ValueError("fairseq 'encoder.lm_head.weight' differs from 'embed_tokens.weight' but "
                         "XLMRobertaConfig.tie_word_embeddings=True; allowed: equal weights, or set "
                         "tie_word_embeddings=False.")
    if "lm_head.bias" in out:
        out["lm_head.decoder.bias"] = out["lm_head.bias"]
    out["roberta.embeddings.token_type_embeddings.weight"] = embeddings.new_zeros(
        (config.type_vocab_size, embeddings.shape[-1]))

    # Compare with the model the weights are meant for (built on the meta device: no memory, no init).
    with torch.device("meta"):
        expected = {k: v.shape for k, v in XLMRobertaForMaskedLM(config).state_dict().items()}
        if classification_head is not None:
            expected.update({k: v.shape for k, v in XLMRobertaForSequenceClassification(config).state_dict().items()
                             if k.startswith("classifier.")})
    lm_head_optional = classification_head is not None and not has_lm_head
    required = {k for k in expected if not (lm_head_optional and k.startswith("lm_head."))}
    missing = sorted(required - set(out))
    if missing:
        raise ValueError(f"fairseq state dict lacks weights for: {_names(missing)} "
                         f"(config: num_hidden_layers={config.num_hidden_layers}, "
                         f"layer_norm_position={config.layer_norm_position!r}).")
    extra = sorted(set(out) - set(expected))
    if extra:
        raise ValueError(f"fairseq weights {_names(origin.get(k, k) for k in extra)} do not fit the config "
                         f"(num_hidden_layers={config.num_hidden_layers}).")
    wrong = [f"{origin.get(k, k)}: {tuple(t.shape)} != {tuple(expected[k])}" for k, t in out.items()
             if tuple(t.shape) != tuple(expected[k])]
    if wrong:
        raise ValueError(f"fairseq shapes differ from the config's (got != expected): {'; '.join(wrong[:20])}.")
    logger.info(f"Converted {len(out)} fairseq tensors ({dropped} bookkeeping keys dropped).")
    return out


def load_fairseq_checkpoint(
    path: str | os.PathLike,
    config: XLMRobertaConfig,
    *,
    classification_head: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> XLMRobertaForMaskedLM | XLMRobertaForSequenceClassification:
    """Read a fairseq ``model.pt`` (a file, or a directory holding one) into our model, strictly.

    The file is read with ``torch.load(weights_only=True)`` (``argparse.Namespace`` args allowed); nothing else is
    unpickled. Returns an `XLMRobertaForMaskedLM`, or with `classification_head` an
    `XLMRobertaForSequenceClassification` (num_labels must match the head), in eval mode, with weights cast to
    `dtype` (fairseq releases are often fp16; fp16 → fp32 is exact). The tokenizer is not converted.
    """
    file = Path(path)
    if file.is_dir():
        file = file / "model.pt"
    if not file.is_file():
        raise FileNotFoundError(f"fairseq checkpoint {str(file)!r} does not exist.")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{str(file)!r} holds Python objects that torch.load(weights_only=True) refuses to unpickle (newer fairseq "
            "stores an omegaconf 'cfg'); xlmr-hf never unpickles arbitrary objects. If you trust the file, re-save its "
            "weights once and convert the new file: python -c \"import torch; ck = torch.load('model.pt', "
            "weights_only=False); torch.save({'model': ck['model']}, 'model_state.pt')\""
        ) from error
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        state_dict = checkpoint["model"]
    elif isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state_dict = checkpoint  # a bare state dict
    else:
        raise ValueError(f"{str(file)!r} has no 'model' state dict (top-level keys: "
                         f"{sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__}).")
    weights = convert_fairseq_state_dict(state_dict, config, classification_head=classification_head)
    weights = _map_once(weights, lambda t: t.to(dtype) if t.is_floating_point() else t)
    cls: type[XLMRobertaPreTrainedModel] = XLMRobertaForMaskedLM
    if classification_head is not None:
        cls = XLMRobertaForSequenceClassification
        weights = {k: t for k, t in weights.items() if not k.startswith("lm_head.")}
    config = copy.deepcopy(config)  # the caller's config object is not modified
    config.architectures = [cls.__name__]
    config.dtype = dtype
    model = _build_with_weights(cls, config, weights, where=f"load_fairseq_checkpoint({str(file)!r})")
    logger.info(f"Loaded fairseq checkpoint {file} as {cls.__name__}.")
    return model.eval()


# ------------------------------------------------------------------------------------------------ entry point
def convert(
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    to: Literal["transformers", "xlmr-hf"],
    source_format: Literal["xlmr-hf", "transformers", "fairseq"],
    preset: str | None = None,
    config: XLMRobertaConfig | str | os.PathLike | None = None,
    config_overrides: Mapping[str, object] | None = None,
    head: Head | None = None,
    classification_head: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a checkpoint between formats and write it atomically to `output_dir` (what ``xlmr-hf convert`` runs).

    ==============  ================  ============================================================================
    source_format   to                what happens
    ==============  ================  ============================================================================
    xlmr-hf         transformers      `export_to_transformers` (tokenizer files copied)
    transformers    xlmr-hf           `import_from_transformers`, then our `save_pretrained` (tokenizer copied)
    fairseq         xlmr-hf           `load_fairseq_checkpoint`, then our `save_pretrained`
    fairseq         transformers      `load_fairseq_checkpoint`, then `export_to_transformers`
    ==============  ================  ============================================================================

    Args:
        source: checkpoint directory (xlmr-hf, transformers) or fairseq ``model.pt`` / its directory.
        output_dir: destination directory; refused when non-empty unless `overwrite`.
        to: target format.
        source_format: format of `source`.
        preset: fairseq only: the shape, a name of `PRESETS` (e.g. ``"base"``, ``"xl"``).
        config: fairseq only, instead of `preset`: an `XLMRobertaConfig` or a path to its ``config.json``/directory.
        config_overrides: fairseq only: fields replacing the preset's/config's (e.g. ``{"num_labels": 3}``).
        head: xlmr-hf/transformers sources: load as this head (default: the checkpoint's own).
        classification_head: fairseq only: also convert ``classification_heads.<name>`` into a sequence classifier.
        overwrite: replace a non-empty `output_dir`.

    Returns:
        The absolute path of the written checkpoint.
    """
    if to not in ("transformers", "xlmr-hf"):
        raise ValueError(f"to={to!r} is invalid: allowed 'transformers' or 'xlmr-hf'.")
    if source_format not in ("xlmr-hf", "transformers", "fairseq"):
        raise ValueError(f"source_format={source_format!r} is invalid: allowed 'xlmr-hf', 'transformers', 'fairseq'.")
    if source_format == to:
        raise ValueError(f"source_format={source_format!r} equals to={to!r}: nothing to convert.")
    if source_format != "fairseq":
        for name, value in (("preset", preset), ("config", config), ("config_overrides", config_overrides),
                            ("classification_head", classification_head)):
            if value is not None:
                raise ValueError(f"{name}={value!r} applies to source_format='fairseq' only; the {source_format} "
                                 "checkpoint carries its own config.")
    if source_format == "xlmr-hf":
        return export_to_transformers(source, output_dir, head=head, overwrite=overwrite)

    if source_format == "transformers":
        model = import_from_transformers(source, head=head)
    else:
        if head is not None:
            raise ValueError(f"head={head!r} does not apply to source_format='fairseq': it gives 'masked-lm', or "
                             "'sequence-classification' with classification_head=<name>.")
        model = load_fairseq_checkpoint(source, _fairseq_config(preset, config, config_overrides),
                                        classification_head=classification_head)
        if to == "transformers":
            return export_to_transformers(model, output_dir, overwrite=overwrite)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        if source_format == "transformers":
            _copy_tokenizer_files(source, tmp)

    out = _atomic_write(output_dir, overwrite, write)
    logger.info(f"Wrote xlmr-hf {type(model).__name__} to {out}.")
    return out


def _fairseq_config(
    preset: str | None, config: XLMRobertaConfig | str | os.PathLike | None, overrides: Mapping[str, object] | None
) -> XLMRobertaConfig:
    """The target shape of a fairseq conversion: exactly one of `preset` / `config`, plus overrides."""
    if (preset is None) == (config is None):
        raise ValueError("A fairseq checkpoint carries no usable config: pass exactly one of preset= (allowed: the "
                         "names of xlmr_hf.PRESETS) or config=.")
    if preset is not None:
        return XLMRobertaConfig.from_preset(preset, **dict(overrides or {}))
    if not isinstance(config, XLMRobertaConfig):
        config = XLMRobertaConfig.from_pretrained(config)
    values = {**config.to_dict(), **dict(overrides or {})}
    return XLMRobertaConfig.from_dict(values)
