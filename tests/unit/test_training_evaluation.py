"""Held-out evaluation (xlmr_hf.training.evaluation): the set is bounded by tokens per language, and `evaluate` runs the
LM head only at the masked positions yet gives the figures of a full-logits pass."""

from __future__ import annotations

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import fixtures.tiny_tokenizer as tiny
import numpy as np
import pytest
import torch
from conftest import randomize_parameters_
from transformers import AutoTokenizer

from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM
from xlmr_hf.data import (
    Block,
    Packer,
    TokenEncoder,
    cc100_files,
    collate_blocks,
    iter_cc100_documents,
)
from xlmr_hf.training.evaluation import build_eval_sets, evaluate

CPU = torch.device("cpu")
SEQ_LEN = 32
SIZES = {"en": 8000, "sw": 900}  # sw holds fewer tokens than the larger budgets below


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    tiny.build_tiny_tokenizer(directory)
    return AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("heldout")
    text.write_cc100_corpus(directory, SIZES, seed=11)
    return str(directory)


@pytest.fixture(scope="module")
def full_packing(corpus: str, tokenizer) -> dict[str, list[Block]]:
    """Every document of each language packed with complete_doc, unmasked: what the eval set is a prefix of."""
    encoder = TokenEncoder(tokenizer)
    out: dict[str, list[Block]] = {}
    for lang, url in cc100_files(corpus, None):
        packer = Packer(SEQ_LEN, mode="complete_doc", bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
        blocks = out.setdefault(lang, [])
        for document in iter_cc100_documents(url):
            blocks.extend(packer.add_document(encoder.encode(document.split("\n")), lang))
        blocks.extend(packer.flush())
    return out


def unmasked(block: Block) -> np.ndarray:
    return np.where(block.labels != -100, block.labels, block.input_ids)


def held_tokens(blocks: list[Block]) -> int:
    return sum(len(block) for block in blocks)


# ---------------------------------------------------------------------------------------------------- the set
@pytest.mark.parametrize("tokens", [16, 301, 1000, 4000, 10**7])
def test_eval_set_holds_exactly_min_of_tokens_and_available(corpus: str, tokenizer, full_packing, tokens: int) -> None:
    sets = build_eval_sets(corpus, tokenizer, languages=None, seq_len=SEQ_LEN, tokens=tokens, seed=3)
    assert sorted(sets) == sorted(SIZES)
    available = {lang: held_tokens(blocks) for lang, blocks in full_packing.items()}
    assert available["sw"] < 1000 and 4000 < available["en"]  # both cases are exercised
    for lang, blocks in sets.items():
        assert held_tokens(blocks) == min(tokens, available[lang]), lang
        reference = full_packing[lang]
        assert len(blocks) <= len(reference)
        for block, whole in zip(blocks, reference, strict=False):
            assert 2 <= len(block) <= SEQ_LEN and block.input_ids[0] == tokenizer.bos_token_id
            assert np.array_equal(unmasked(block), whole.input_ids[:len(block)])  # the first documents, in order
            assert block.segment_starts == tuple(s for s in whole.segment_starts if s < len(block))
            assert set(block.languages) == {lang}
        lengths = [(len(block), len(whole)) for block, whole in zip(blocks, reference, strict=False)]
        assert all(kept == whole for kept, whole in lengths[:-2])  # only the end is cut
        if len(lengths) >= 2 and lengths[-2][0] != lengths[-2][1]:  # a 1-token remainder: see the next test
            assert lengths[-2][0] == lengths[-2][1] - 1 and lengths[-1][0] == 2
        assert sum(int((block.labels != -100).sum()) for block in blocks) > 0


def test_eval_set_never_leaves_a_one_token_block(corpus: str, tokenizer, full_packing) -> None:
    """One token of room left for the next block: the block before gives up its last token, the count stays exact."""
    reference = full_packing["en"]
    tokens = held_tokens(reference[:3]) + 1
    blocks = build_eval_sets(corpus, tokenizer, languages=["en"], seq_len=SEQ_LEN, tokens=tokens, seed=0)["en"]
    assert held_tokens(blocks) == tokens
    assert [len(b) for b in blocks] == [len(reference[0]), len(reference[1]), len(reference[2]) - 1, 2]
    assert np.array_equal(unmasked(blocks[2]), reference[2].input_ids[:-1])
    assert np.array_equal(unmasked(blocks[3]), reference[3].input_ids[:2])


def test_eval_set_is_deterministic_and_rejects_a_tiny_budget(corpus: str, tokenizer) -> None:
    one = build_eval_sets(corpus, tokenizer, languages=None, seq_len=SEQ_LEN, tokens=700, seed=5)
    two = build_eval_sets(corpus, tokenizer, languages=None, seq_len=SEQ_LEN, tokens=700, seed=5)
    for lang in one:
        assert len(one[lang]) == len(two[lang])
        for a, b in zip(one[lang], two[lang], strict=True):
            assert np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.labels, b.labels)
            assert (a.segment_starts, a.languages) == (b.segment_starts, b.languages)
    with pytest.raises(ValueError, match="tokens must be an int >= 2"):
        build_eval_sets(corpus, tokenizer, languages=None, seq_len=SEQ_LEN, tokens=1, seed=5)


# ---------------------------------------------------------------------------------------------------- evaluate
def tiny_model(tokenizer, *, fused: bool = True) -> XLMRobertaForMaskedLM:
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=SEQ_LEN + 2, pad_token_id=1,
                              bos_token_id=0, eos_token_id=2)  # default dropout 0.1: eval mode must switch it off
    torch.manual_seed(0)
    model = randomize_parameters_(XLMRobertaForMaskedLM(config), seed=4)
    if not fused:
        model.config.fused_mlm_loss = False
    return model


@torch.no_grad()
def full_logits_reference(model, sets: dict[str, list[Block]], *, batch_size: int, pad_token_id: int) -> dict:
    """The former computation: full (B, L, V) logits, then the masked positions picked out."""
    model.eval()
    out = {}
    for lang, blocks in sets.items():
        loss_sum, correct, count = 0.0, 0, 0
        for start in range(0, len(blocks), batch_size):
            batch = collate_blocks(blocks[start:start + batch_size], pad_token_id=pad_token_id)
            labels = batch.pop("labels")
            logits = model(**batch).logits
            assert logits.shape == (*labels.shape, model.config.vocab_size)
            selected = labels != -100
            picked, targets = logits[selected].float(), labels[selected]
            loss_sum += float(torch.nn.functional.cross_entropy(picked, targets, reduction="sum"))
            correct += int((picked.argmax(-1) == targets).sum())
            count += int(selected.sum())
        out[f"eval/loss/{lang}"] = loss_sum / count
        out[f"eval/accuracy/{lang}"] = correct / count
    out["eval/loss"] = sum(out[f"eval/loss/{lang}"] for lang in sets) / len(sets)
    out["eval/accuracy"] = sum(out[f"eval/accuracy/{lang}"] for lang in sets) / len(sets)
    return out


@pytest.mark.parametrize("fused", [True, False], ids=["fused_head", "plain_head"])
def test_evaluate_equals_the_full_logits_computation(corpus: str, tokenizer, fused: bool) -> None:
    sets = build_eval_sets(corpus, tokenizer, languages=None, seq_len=SEQ_LEN, tokens=900, seed=1)
    model = tiny_model(tokenizer, fused=fused)
    model.train()
    result = evaluate(model, sets, batch_size=5, device=CPU, pad_token_id=tokenizer.pad_token_id)
    assert model.training  # restored
    assert model.config.fused_mlm_loss is fused  # restored as it was
    reference = full_logits_reference(model, sets, batch_size=5, pad_token_id=tokenizer.pad_token_id)
    assert set(result) == set(reference)
    for key, value in reference.items():
        assert result[key] == pytest.approx(value, rel=1e-5, abs=1e-5), key
    assert 0.0 < result["eval/accuracy"] < 1.0 and result["eval/loss"] > 0.0


def test_evaluate_calls_the_model_with_labels_and_runs_the_head_on_masked_rows_only(corpus: str, tokenizer) -> None:
    sets = build_eval_sets(corpus, tokenizer, languages=None, seq_len=SEQ_LEN, tokens=600, seed=2)
    model = tiny_model(tokenizer)
    calls: list[bool] = []
    dense_rows: list[int] = []
    decoder_rows: list[int] = []
    model.register_forward_pre_hook(lambda _, args, kwargs: calls.append(kwargs.get("labels") is not None),
                                    with_kwargs=True)
    model.lm_head.dense.register_forward_hook(lambda _, args, out: dense_rows.append(args[0].shape[0]))
    model.lm_head.decoder.register_forward_hook(lambda _, args, out: decoder_rows.append(args[0].shape[0]))
    result = evaluate(model, sets, batch_size=4, device=CPU, pad_token_id=tokenizer.pad_token_id)

    batches = [collate_blocks(blocks[s:s + 4], pad_token_id=tokenizer.pad_token_id)
               for blocks in sets.values() for s in range(0, len(blocks), 4)]
    masked = [int((batch["labels"] != -100).sum()) for batch in batches]
    positions = [batch["labels"].numel() for batch in batches]
    assert calls == [True] * len(batches)
    assert dense_rows == masked and all(m < p for m, p in zip(masked, positions, strict=True))  # n_masked, not B × L
    assert decoder_rows == masked  # the plain head ran: the fused one would compute gradients under no_grad too
    assert model.config.fused_mlm_loss is True and "fused_mlm_loss" not in vars(model)
    assert result == pytest.approx(full_logits_reference(model, sets, batch_size=4,
                                                         pad_token_id=tokenizer.pad_token_id), rel=1e-5, abs=1e-5)


def test_evaluate_accepts_a_model_that_returns_full_logits(corpus: str, tokenizer) -> None:
    """A masked-LM without the masked-only head (full logits even with labels) gives the same figures."""
    sets = build_eval_sets(corpus, tokenizer, languages=["sw"], seq_len=SEQ_LEN, tokens=300, seed=2)
    model = tiny_model(tokenizer)

    class FullLogits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, labels: torch.Tensor, **batch: torch.Tensor):
            return self.inner(**batch)

    result = evaluate(FullLogits(), sets, batch_size=4, device=CPU, pad_token_id=tokenizer.pad_token_id)
    reference = full_logits_reference(model, sets, batch_size=4, pad_token_id=tokenizer.pad_token_id)
    assert result == pytest.approx(reference, rel=1e-5, abs=1e-5)
