"""Grow a model's vocabulary to an extended tokenizer (`xlmr_hf.tokenization.extend_tokenizer`) and initialise the
new rows (`extend_embeddings`).

The word embeddings, the LM head's decoder (tied to them in `XLMRobertaForMaskedLM`) and its output bias grow to
``len(new_tokenizer)`` with the model's own ``resize_token_embeddings``, which copies every old row bit for bit; the
new rows (ids ``len(old_tokenizer) ..``) are then set by ``init``:

* ``"mean"``: the piece's text (``▁`` read as a space) is encoded with the OLD tokenizer without special tokens
  (`piece_splits`); the row is the mean of the old rows of those ids, and the bias entry the mean of their old bias
  entries. Special ids and ``<unk>`` are left out of the split, as is the ``▁`` the tokenizer puts in front of a piece
  that does not begin a word. A piece the old tokenizer cannot spell -- its split is then empty, or only the ``▁`` of
  ``▁`` + ``<unk>`` -- gets the mean of all old rows (and of all old bias entries); these fall-backs are counted,
  logged and returned.
* ``"random"``: the model's own ``_init_weights`` (normal, std ``config.initializer_range``) applied to a fresh table
  under ``torch.manual_seed(seed)`` on the CPU (the caller's random state is left as it was), bias entries 0 (what
  ``_init_weights`` gives the LM head bias).

Call it once, on the model trained with ``old_tokenizer``, before the model is wrapped for distributed training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from ..tokenization.extend import TokenizerExtensionError, check_extension

__all__ = ["EmbeddingExtension", "VocabularyError", "extend_embeddings", "piece_splits"]

logger = logging.getLogger(__name__)
_INITS = ("mean", "random")


class VocabularyError(ValueError):
    """A model, tokenizer pair or setting `extend_embeddings` cannot use; the message says which and why."""


@dataclass(frozen=True)
class EmbeddingExtension:
    """What `extend_embeddings` did."""

    old_size: int
    """``len(old_tokenizer)``: the first new id."""
    new_size: int
    """``len(new_tokenizer)``."""
    rows: int
    """Embedding rows after the extension (``new_size``, or more where the table was padded beyond the tokenizer)."""
    init: str
    from_pieces: int
    """New rows set to the mean of the old rows of their old-tokenizer split."""
    from_all: int
    """New rows set to the mean of all old rows (the split was empty or only ``<unk>``)."""
    random: int
    """New rows drawn by the model's initialiser (``init="random"``)."""
    fallback: tuple[str, ...] = ()
    """The pieces counted in ``from_all``."""

    @property
    def added(self) -> int:
        return self.new_size - self.old_size


def piece_splits(old_tokenizer: Any, pieces: Sequence[str], *, batch_size: int = 1024,
                 progress: bool = False) -> list[list[int]]:
    """The old-tokenizer ids each piece's text splits into (see the module docstring): ``▁`` becomes a space, the
    text is encoded without special tokens, special ids and ``<unk>`` are dropped, and so is a leading ``▁`` id in
    front of a piece that does not begin with ``▁`` (the tokenizer's own prefix space). A split left with nothing but
    ``▁`` for a piece that is more than ``▁`` is empty: the old tokenizer could not spell the piece."""
    skip = set(old_tokenizer.all_special_ids)
    if old_tokenizer.unk_token_id is not None:
        skip.add(old_tokenizer.unk_token_id)
    space = old_tokenizer.convert_tokens_to_ids("▁")
    splits: list[list[int]] = []
    for start in tqdm(range(0, len(pieces), batch_size), desc="split new pieces", unit="batch",
                      disable=not progress):
        chunk = list(pieces[start: start + batch_size])
        encoded = old_tokenizer([piece.replace("▁", " ") for piece in chunk], add_special_tokens=False)["input_ids"]
        for piece, ids in zip(chunk, encoded):
            if ids and not piece.startswith("▁") and ids[0] == space and space not in skip:
                ids = ids[1:]
            kept = [i for i in ids if i not in skip]
            # "▁" + <unk>: the old tokenizer knows only that the piece begins a word, which says nothing of it.
            splits.append([] if set(kept) <= {space} and piece.strip("▁") else kept)
    return splits


def _means(table: torch.Tensor, old_size: int, splits: Sequence[Sequence[int]], progress: bool) -> torch.Tensor:
    """Per split, the mean of ``table``'s old rows (float32 arithmetic), or of all old rows for an empty split."""
    base = table.detach()[:old_size]
    overall = base.float().mean(0)
    out = torch.empty((len(splits), *base.shape[1:]), dtype=torch.float32, device=base.device)
    for j, ids in enumerate(tqdm(splits, desc="mean of old rows", unit="piece", disable=not progress,
                                 mininterval=2.0)):
        out[j] = base.index_select(0, torch.tensor(ids, device=base.device)).float().mean(0) if ids else overall
    return out.to(table.dtype)


def _random_rows(model: nn.Module, count: int, hidden: int, seed: int) -> torch.Tensor:
    """``count`` rows from the model's own embedding initialiser, seeded, on the CPU (the same on every device)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = nn.Embedding(count, hidden, _weight=torch.empty(count, hidden))
        model._init_weights(fresh)
    return fresh.weight.detach()


def _check(model: nn.Module, old_tokenizer: Any, new_tokenizer: Any, init: str) -> tuple[int, int, int]:
    if init not in _INITS:
        raise VocabularyError(f"init={init!r} is not allowed: expected one of {list(_INITS)}")
    try:
        check_extension(old_tokenizer, new_tokenizer)
    except TokenizerExtensionError as error:
        raise VocabularyError(str(error)) from error
    old_size, new_size = len(old_tokenizer), len(new_tokenizer)
    rows = model.get_input_embeddings().num_embeddings
    if rows < old_size:
        raise VocabularyError(f"the model has {rows} embedding rows but old_tokenizer has {old_size} ids; expected "
                              "the tokenizer the model was trained with")
    if rows == new_size > old_size:
        raise VocabularyError(f"the model already has {rows} embedding rows = len(new_tokenizer); it looks extended "
                              f"already (extend once, from the model trained with the {old_size}-id tokenizer)")
    return old_size, new_size, rows


def _new_entries(model: nn.Module, old_size: int, pieces: Sequence[str], old_tokenizer: Any, init: str, seed: int,
                 progress: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The new rows of each table ("input", "output" when untied, "bias"), and the pieces that fell back."""
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
    untied = output is not None and output.weight is not embedding.weight
    bias = getattr(output, "bias", None) if output is not None else None
    if init == "random":
        hidden = embedding.embedding_dim
        values = {"input": _random_rows(model, len(pieces), hidden, seed)}
        if untied:
            values["output"] = _random_rows(model, len(pieces), hidden, seed + 1)
        if bias is not None:
            values["bias"] = torch.zeros(len(pieces))
        return values, []
    splits = piece_splits(old_tokenizer, pieces, progress=progress)
    values = {"input": _means(embedding.weight, old_size, splits, progress)}
    if untied:
        values["output"] = _means(output.weight, old_size, splits, progress)
    if bias is not None:
        values["bias"] = _means(bias, old_size, splits, progress)
    return values, [piece for piece, ids in zip(pieces, splits) if not ids]


@torch.no_grad()
def _write(model: nn.Module, old_size: int, values: dict[str, torch.Tensor]) -> None:
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
    targets = {"input": embedding.weight}
    if "output" in values:
        targets["output"] = output.weight
    if "bias" in values:
        targets["bias"] = output.bias
    for name, target in targets.items():
        new = values[name]
        target[old_size: old_size + len(new)] = new.to(device=target.device, dtype=target.dtype)


def extend_embeddings(model: nn.Module, old_tokenizer: Any, new_tokenizer: Any, *,
                      init: Literal["mean", "random"] = "mean", seed: int = 0,
                      progress: bool = True) -> EmbeddingExtension:
    """Resize ``model``'s word embeddings, tied LM head and output bias from ``old_tokenizer`` to ``new_tokenizer``
    (which must extend it: `xlmr_hf.tokenization.check_extension`) and initialise the new rows by ``init`` (see the
    module docstring). Old rows stay bit-identical; ``config.vocab_size`` becomes the new number of rows. Raises
    `VocabularyError` for a tokenizer that does not extend the old one, a model whose table does not match
    ``old_tokenizer``, or an unknown ``init``."""
    old_size, new_size, rows = _check(model, old_tokenizer, new_tokenizer, init)
    if new_size == old_size:
        logger.info("the new tokenizer adds no pieces: the embeddings are left as they are")
        return EmbeddingExtension(old_size, new_size, rows, init, 0, 0, 0)
    pieces = new_tokenizer.convert_ids_to_tokens(list(range(old_size, new_size)))
    values, fallback = _new_entries(model, old_size, pieces, old_tokenizer, init, seed, progress)
    if new_size > rows:
        weight = model.get_input_embeddings().weight
        devices = [weight.device.index or 0] if weight.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # its own init of the new rows draws; ours replaces them
            model.resize_token_embeddings(new_size, mean_resizing=False)
    elif rows > old_size:
        logger.info("the embedding table has %d rows for %d ids: padding rows %d..%d now hold new pieces", rows,
                    old_size, old_size, new_size - 1)
    _write(model, old_size, values)
    model.config.vocab_size = model.get_input_embeddings().num_embeddings
    added = new_size - old_size
    report = EmbeddingExtension(old_size, new_size, model.config.vocab_size, init,
                                added - len(fallback) if init == "mean" else 0, len(fallback),
                                added if init == "random" else 0, tuple(fallback))
    logger.info("embeddings %d -> %d rows: %d new rows = mean of their old-tokenizer pieces, %d = mean of all old "
                "rows%s, %d random", rows, report.rows, report.from_pieces, report.from_all,
                f" ({', '.join(map(repr, fallback[:10]))}{', ...' if len(fallback) > 10 else ''})" if fallback else "",
                report.random)
    return report
