"""Held-out masked-LM loss and accuracy per language, for the pretraining loop.

The evaluation set is fixed once per run: the first ``documents`` documents of each language of a held-out corpus,
tokenized like the training stream, packed with ``complete_doc`` (no block mixes documents or languages) and masked by
`Masker` with its own seed, so the same positions are scored at every evaluation and in every process. Evaluation runs
the model in eval mode (no dropout) and consumes no random numbers: it does not change the training trajectory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from itertools import islice
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

__all__ = ["build_eval_sets", "evaluate", "format_eval_table"]

_EVAL_SEED_OFFSET = 7919  # the held-out masking never shares a random stream with the training masking


def build_eval_sets(corpus: str, tokenizer: Any, *, languages: Sequence[str] | None, seq_len: int, documents: int,
                    seed: int) -> dict[str, list[Block]]:
    """Masked blocks per language from the first ``documents`` documents of each language of ``corpus``."""
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
        texts = (doc for url in files[lang] for doc in iter_cc100_documents(url))
        for document in islice(texts, documents):
            blocks.extend(packer.add_document(encoder.encode(document.split("\n")), lang))
        blocks.extend(packer.flush())
        masked = []
        for index, block in enumerate(blocks):
            ids, labels = masker.mask(block.input_ids, index)
            masked.append(Block(ids, block.segment_starts, block.languages, labels))
        sets[lang] = masked
    return sets


@torch.no_grad()
def evaluate(model: torch.nn.Module, sets: dict[str, list[Block]], *, batch_size: int, device: torch.device,
             pad_token_id: int, autocast: Callable[[], contextlib.AbstractContextManager] | None = None
             ) -> dict[str, float]:
    """``{"eval/loss/<lang>", "eval/accuracy/<lang>", "eval/loss", "eval/accuracy"}``: token-weighted over masked
    positions (the overall figures weight every language equally)."""
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    try:
        for lang, blocks in sets.items():
            loss_sum, correct, count = 0.0, 0, 0
            for start in range(0, len(blocks), batch_size):
                batch = collate_blocks(blocks[start:start + batch_size], pad_token_id=pad_token_id)
                labels = batch.pop("labels").to(device)
                batch = {k: v.to(device) for k, v in batch.items()}
                with autocast() if autocast is not None else contextlib.nullcontext():
                    logits = model(**batch).logits
                selected = labels != -100
                picked, targets = logits[selected].float(), labels[selected]
                loss_sum += float(torch.nn.functional.cross_entropy(picked, targets, reduction="sum"))
                correct += int((picked.argmax(-1) == targets).sum())
                count += int(selected.sum())
            out[f"eval/loss/{lang}"] = loss_sum / max(count, 1)
            out[f"eval/accuracy/{lang}"] = correct / max(count, 1)
    finally:
        model.train(was_training)
    languages = list(sets)
    if languages:
        out["eval/loss"] = sum(out[f"eval/loss/{lang}"] for lang in languages) / len(languages)
        out["eval/accuracy"] = sum(out[f"eval/accuracy/{lang}"] for lang in languages) / len(languages)
    return out


def format_eval_table(before: dict[str, float] | None, after: dict[str, float]) -> str:
    """A per-language table of held-out loss/accuracy (before → after when ``before`` is given)."""
    langs = sorted(key.rsplit("/", 1)[1] for key in after if key.startswith("eval/loss/"))
    lines = ["language  loss_before  loss_after  acc_before  acc_after" if before else "language  loss  accuracy"]
    for lang in [*langs, "mean"]:
        key = "" if lang == "mean" else f"/{lang}"
        if before:
            lines.append(f"{lang:<8}  {before[f'eval/loss{key}']:>11.4f}  {after[f'eval/loss{key}']:>10.4f}  "
                         f"{before[f'eval/accuracy{key}']:>10.3f}  {after[f'eval/accuracy{key}']:>9.3f}")
        else:
            lines.append(f"{lang:<8}  {after[f'eval/loss{key}']:.4f}  {after[f'eval/accuracy{key}']:.3f}")
    return "\n".join(lines)
