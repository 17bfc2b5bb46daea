"""Held-out masked-LM loss and accuracy per language, for the pretraining loop.

The evaluation set is fixed once per run: the first documents of each language of a held-out corpus, up to ``tokens``
tokens per language, tokenized like the training stream, packed with ``complete_doc`` (no block mixes documents or
languages) and masked by `Masker` with its own seed, so the same positions are scored at every evaluation and in every
process. Bounding the set by tokens, not documents, keeps its cost independent of how long a language's documents are.

Evaluation runs the model in eval mode (no dropout) with the labels, so the vocabulary projection runs only at the
masked positions (not at every position: that is most of the cost of a full-logits pass), and consumes no random
numbers: it does not change the training trajectory.
"""

from __future__ import annotations

import collections
import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

from ..data import (
    Block,
    Masker,
    Packer,
    TokenEncoder,
    cc100_files,
    collate_blocks,
    iter_cc100_documents,
)

__all__ = ["build_eval_sets", "evaluate", "format_eval_table", "most_frequent_token_accuracy", "piece_characters"]

_EVAL_SEED_OFFSET = 7919  # the held-out masking never shares a random stream with the training masking


def build_eval_sets(corpus: str, tokenizer: Any, *, languages: Sequence[str] | None, seq_len: int, tokens: int,
                    seed: int) -> dict[str, list[Block]]:
    """Masked blocks per language: the first documents of each language of ``corpus``, up to ``tokens`` tokens.

    Each language's documents are read in order (its files in `cc100_files` order), tokenized like the training stream
    and packed with ``complete_doc`` until the blocks hold at least ``tokens`` tokens (``<s>`` and ``</s>`` count);
    the set is then cut to exactly ``tokens`` tokens (all of them when the language has fewer): the last block keeps
    its start (``<s>`` included) and loses its end. A block is never cut below 2 tokens: when only one token of room
    would be left for it, the block before gives up its last token. The blocks are then masked by `Masker` with a seed
    of their own (``seed`` + a fixed offset), block ``i`` with index ``i``, so the set is a pure function of the
    corpus, the tokenizer, ``languages``, ``seq_len``, ``tokens`` and ``seed``.
    """
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 2:
        raise ValueError(f"tokens must be an int >= 2, got {tokens!r}")
    encoder = TokenEncoder(tokenizer)
    masker = Masker.from_tokenizer(tokenizer, seed=seed + _EVAL_SEED_OFFSET)
    files: dict[str, list[str]] = {}
    for lang, url in cc100_files(corpus, languages):
        files.setdefault(lang, []).append(url)
    sets: dict[str, list[Block]] = {}
    for lang in sorted(files):
        packer = Packer(seq_len, mode="complete_doc", bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
        blocks: list[Block] = []
        held = 0
        for document in (doc for url in files[lang] for doc in iter_cc100_documents(url)):
            for block in packer.add_document(encoder.encode(document.split("\n")), lang):
                blocks.append(block)
                held += len(block)
            if held >= tokens:
                break
        blocks.extend(packer.flush())  # complete_doc emits every document's blocks: nothing is pending here
        masked = []
        for index, block in enumerate(_first_tokens(blocks, tokens)):
            ids, labels = masker.mask(block.input_ids, index)
            masked.append(Block(ids, block.segment_starts, block.languages, labels))
        sets[lang] = masked
    return sets


def _cut(block: Block, length: int) -> Block:
    """The first ``length`` (>= 2) tokens of an unmasked ``block``, with the segments that start among them."""
    starts = tuple(start for start in block.segment_starts if start < length)
    return Block(block.input_ids[:length].copy(), starts, block.languages[:len(starts)])


def _first_tokens(blocks: list[Block], tokens: int) -> list[Block]:
    """``blocks`` cut to their first ``tokens`` tokens in all (see `build_eval_sets`)."""
    kept: list[Block] = []
    held = 0
    for block in blocks:
        room = tokens - held
        if room <= 0:
            break
        if len(block) <= room:
            kept.append(block)
            held += len(block)
            continue
        if room == 1 and kept and len(kept[-1]) > 2:  # a 1-token block is no block: take the token from the one before
            kept[-1] = _cut(kept[-1], len(kept[-1]) - 1)
            room = 2
        if room >= 2:
            kept.append(_cut(block, room))
        break
    return kept


@torch.no_grad()
def evaluate(model: torch.nn.Module, sets: dict[str, list[Block]], *, batch_size: int, device: torch.device,
             pad_token_id: int, autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
             language_to_id: Mapping[str, int] | None = None,
             piece_chars: torch.Tensor | None = None) -> dict[str, float]:
    """``{"eval/loss/<lang>", "eval/accuracy/<lang>", "eval/loss", "eval/accuracy"}``: token-weighted over masked
    positions (the overall figures weight every language equally). With ``piece_chars`` (characters per token id,
    `piece_characters`) also ``"eval/bits_per_char/<lang>"`` and its mean: the summed loss in bits over the characters
    of the masked tokens, which compares models with different tokenizers.

    The model is called with the labels, so its head runs only at the masked positions and ``logits`` holds one row
    per masked position, in row-major order over ``labels != -100`` (`XLMRobertaForMaskedLM`; full ``(B, L, V)``
    logits are accepted too). The loss is the float32 cross-entropy summed over those rows, not the model's own loss
    (a mean, maybe fused); the fused head is switched off meanwhile (`config.fused_mlm_loss`), so the logits are returned.
    ``language_to_id`` gives ``language_ids`` to models with language embeddings."""
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    try:
        with _unfused_mlm_loss(model):
            for lang, blocks in sets.items():
                loss_sum, correct, count, chars = 0.0, 0, 0, 0
                for start in range(0, len(blocks), batch_size):
                    batch = collate_blocks(blocks[start:start + batch_size], pad_token_id=pad_token_id,
                                           language_to_id=language_to_id)
                    labels = batch.pop("labels").to(device)
                    batch = {k: v.to(device) for k, v in batch.items()}
                    with autocast() if autocast is not None else contextlib.nullcontext():
                        logits = model(**batch, labels=labels).logits
                    selected = labels != -100
                    if logits.dim() == 3:  # a model that ignores labels for its logits
                        logits = logits[selected]
                    picked, targets = logits.float(), labels[selected]
                    loss_sum += float(torch.nn.functional.cross_entropy(picked, targets, reduction="sum"))
                    correct += int((picked.argmax(-1) == targets).sum())
                    count += int(targets.numel())
                    if piece_chars is not None:
                        chars += int(piece_chars[targets.cpu()].sum())
                out[f"eval/loss/{lang}"] = loss_sum / max(count, 1)
                out[f"eval/accuracy/{lang}"] = correct / max(count, 1)
                if piece_chars is not None:
                    out[f"eval/bits_per_char/{lang}"] = loss_sum / math.log(2) / max(chars, 1)
    finally:
        model.train(was_training)
    languages = list(sets)
    if languages:
        out["eval/loss"] = sum(out[f"eval/loss/{lang}"] for lang in languages) / len(languages)
        out["eval/accuracy"] = sum(out[f"eval/accuracy/{lang}"] for lang in languages) / len(languages)
        if piece_chars is not None:
            out["eval/bits_per_char"] = sum(out[f"eval/bits_per_char/{lang}"] for lang in languages) / len(languages)
    return out


def piece_characters(tokenizer: Any) -> torch.Tensor:
    """Characters of text per token id (``int64``, one entry per id of ``tokenizer``): a piece's length with its
    word-start marker ``▁`` counted as the space it stands for; special tokens count 0."""
    special = set(tokenizer.all_special_ids)
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return torch.tensor([0 if i in special or piece is None else len(piece) for i, piece in enumerate(pieces)],
                        dtype=torch.int64)


def most_frequent_token_accuracy(sets: Mapping[str, Sequence[Block]]) -> dict[str, float]:
    """Per language, the accuracy of always predicting the token that is most frequent among the set's masked targets
    (the unigram baseline a model must beat to have learnt anything beyond token frequencies)."""
    out = {}
    for lang, blocks in sets.items():
        counts: collections.Counter[int] = collections.Counter()
        for block in blocks:
            labels = block.labels
            counts.update(int(t) for t in labels[labels != -100]) if labels is not None else None
        total = sum(counts.values())
        out[lang] = counts.most_common(1)[0][1] / total if total else 0.0
    return out


@contextlib.contextmanager
def _unfused_mlm_loss(model: torch.nn.Module) -> Iterator[None]:
    """Switch off ``config.fused_mlm_loss`` on every submodule's config that has it on, then switch it back on.

    The fused projection + cross-entropy exists to compute gradients inside the forward; evaluation wants only the
    logits, which the plain head computes (the model also takes the plain head whenever grad mode is off)."""
    configs = {id(config): config for module in model.modules()
               if getattr(config := getattr(module, "config", None), "fused_mlm_loss", False) is True}
    for config in configs.values():
        config.fused_mlm_loss = False
    try:
        yield
    finally:
        for config in configs.values():
            config.fused_mlm_loss = True


def format_eval_table(before: dict[str, float] | None, after: dict[str, float],
                      baseline: Mapping[str, float] | None = None) -> str:
    """A per-language table of held-out loss/accuracy (before → after when ``before`` is given), with the
    most-frequent-token accuracy (`most_frequent_token_accuracy`) as a last column when ``baseline`` is given."""
    langs = sorted(key.rsplit("/", 1)[1] for key in after if key.startswith("eval/loss/"))
    header = "language  loss_before  loss_after  acc_before  acc_after" if before else "language  loss  accuracy"
    lines = [header + ("  acc_most_frequent" if baseline else "")]
    for lang in [*langs, "mean"]:
        key = "" if lang == "mean" else f"/{lang}"
        if before:
            line = (f"{lang:<8}  {before[f'eval/loss{key}']:>11.4f}  {after[f'eval/loss{key}']:>10.4f}  "
                    f"{before[f'eval/accuracy{key}']:>10.3f}  {after[f'eval/accuracy{key}']:>9.3f}")
        else:
            line = f"{lang:<8}  {after[f'eval/loss{key}']:.4f}  {after[f'eval/accuracy{key}']:>8.3f}"
        if baseline:
            value = (sum(baseline[lang] for lang in langs) / len(langs) if lang == "mean" and langs
                     else baseline.get(lang))
            line += f"  {value:>17.3f}" if value is not None else ""
        lines.append(line)
    return "\n".join(lines)
