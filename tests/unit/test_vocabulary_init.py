"""`xlmr_hf.training.vocabulary.extend_embeddings`: old rows and bias entries bit-identical, the tied LM head, each
new row the mean of the old rows of its old-tokenizer split (computed here independently with SentencePiece), the
fall-back to the mean of all rows, seeded random init with the configured std, and the errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from conftest import randomize_parameters_, tiny_xlmr_config
from fixtures.tiny_tokenizer import build_tiny_tokenizer
from transformers import AutoTokenizer

from xlmr_hf import XLMRobertaForMaskedLM
from xlmr_hf.tokenization import extend_tokenizer_json
from xlmr_hf.training.vocabulary import EmbeddingExtension, VocabularyError, extend_embeddings, piece_splits

# Word-start pieces the old tokenizer spells, a word-internal one ("shelf": no "▁" from the prefix space), a repeated
# piece ("i" twice in "▁Nairobi"), and two it cannot spell (Greek and a snowman are not in its training text).
PIECES = ("▁lettre", "▁Nairobi", "shelf", "▁bookshelf", "▁Καλημέρα", "☃")
UNSPELLABLE = ("▁Καλημέρα", "☃")


def extend_folder(old_dir: Path, pieces, out: Path):
    """A tokenizer folder extending ``old_dir`` by ``pieces`` (tokenizer.json only), loaded with AutoTokenizer."""
    out.mkdir()
    for path in old_dir.iterdir():
        if path.name not in ("tokenizer.json", "sentencepiece.bpe.model"):
            shutil.copyfile(path, out / path.name)
    old_json = (old_dir / "tokenizer.json").read_text(encoding="utf-8")
    (out / "tokenizer.json").write_text(extend_tokenizer_json(old_json, [(p, -12.0) for p in pieces]), "utf-8")
    return AutoTokenizer.from_pretrained(out)


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("vocab")
    build_tiny_tokenizer(root / "old")
    old = AutoTokenizer.from_pretrained(root / "old")
    new = extend_folder(root / "old", PIECES, root / "new")
    many = extend_folder(root / "old", [f"▁q{i}" for i in range(400)], root / "many")
    sp = spm.SentencePieceProcessor(model_file=str(root / "old" / "sentencepiece.bpe.model"))
    return old, new, many, sp, root


def tiny_model(vocab_size: int, seed: int = 0, **overrides) -> XLMRobertaForMaskedLM:
    torch.manual_seed(seed)
    model = XLMRobertaForMaskedLM(tiny_xlmr_config(vocab_size=vocab_size, **overrides))
    return randomize_parameters_(model, seed=seed)  # a non-zero bias, so bias means are tested too


def reference_split(sp: spm.SentencePieceProcessor, piece: str) -> list[int]:
    """The rule, computed from SentencePiece under fairseq's offset: "▁" -> space, <unk> (SentencePiece 0) dropped,
    the prefix-space "▁" dropped before a word-internal piece, and a split of only "▁" counted as none."""
    ids = [3 if i == 0 else i + 1 for i in sp.encode(piece.replace("▁", " "))]
    space = sp.piece_to_id("▁") + 1
    if not piece.startswith("▁") and ids and ids[0] == space:
        ids = ids[1:]
    ids = [i for i in ids if i != 3]
    return [] if set(ids) <= {space} else ids


def test_splits_follow_the_rule(tokenizers) -> None:
    old, _, _, sp, _ = tokenizers
    splits = piece_splits(old, PIECES)
    assert splits == [reference_split(sp, piece) for piece in PIECES]
    by_piece = dict(zip(PIECES, splits))
    assert old.convert_ids_to_tokens(by_piece["shelf"])[0] != "▁" and "▁" in old.convert_ids_to_tokens(
        by_piece["▁bookshelf"])
    ids = by_piece["▁Nairobi"]
    assert len(ids) > len(set(ids))  # a repeated piece counts twice in the mean
    assert [piece for piece, ids in by_piece.items() if not ids] == list(UNSPELLABLE)


def test_old_rows_and_bias_stay_bit_identical_and_the_head_stays_tied(tokenizers) -> None:
    old, new, _, _, _ = tokenizers
    model = tiny_model(len(old))
    embedding = model.roberta.embeddings.word_embeddings.weight.detach().clone()
    bias = model.lm_head.bias.detach().clone()
    others = {name: p.detach().clone() for name, p in model.named_parameters() if "word_embeddings" not in name
              and name != "lm_head.bias"}
    report = extend_embeddings(model, old, new, progress=False)
    assert report == EmbeddingExtension(len(old), len(new), len(new), "mean", 4, 2, 0, UNSPELLABLE)
    assert report.added == len(PIECES)
    after = model.roberta.embeddings.word_embeddings
    assert after.weight.shape == (len(new), 32) and model.lm_head.bias.shape == (len(new),)
    assert torch.equal(after.weight[: len(old)], embedding) and torch.equal(model.lm_head.bias[: len(old)], bias)
    assert model.lm_head.decoder.weight is after.weight and model.lm_head.decoder.bias is model.lm_head.bias
    assert model.config.vocab_size == len(new) == model.lm_head.decoder.out_features
    for name, value in others.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    ids = torch.tensor([[0, len(old), len(new) - 1, 2]])
    assert model(input_ids=ids).logits.shape == (1, 4, len(new))


def test_each_new_row_is_the_mean_of_its_old_split(tokenizers) -> None:
    old, new, _, sp, _ = tokenizers
    model = tiny_model(len(old), seed=1)
    embedding = model.roberta.embeddings.word_embeddings.weight.detach().clone()
    bias = model.lm_head.bias.detach().clone()
    extend_embeddings(model, old, new, progress=False)
    rows, biases = model.roberta.embeddings.word_embeddings.weight.detach(), model.lm_head.bias.detach()
    for offset, piece in enumerate(PIECES):
        new_id = len(old) + offset
        assert new.convert_ids_to_tokens(new_id) == piece
        ids = reference_split(sp, piece)
        if ids:
            expected_row = torch.stack([embedding[i] for i in ids]).mean(0)
            expected_bias = torch.stack([bias[i] for i in ids]).mean(0)
        else:
            expected_row, expected_bias = embedding.mean(0), bias.mean(0)
        assert torch.equal(rows[new_id], expected_row), piece
        assert torch.equal(biases[new_id], expected_bias), piece
    assert not torch.equal(rows[len(old)], rows[len(old) + 1])


def test_random_init_uses_the_initializer_range_and_the_seed(tokenizers) -> None:
    old, _, many, _, _ = tokenizers
    rows = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        model = tiny_model(len(old), initializer_range=0.05)
        embedding = model.roberta.embeddings.word_embeddings.weight.detach().clone()
        state = torch.get_rng_state()
        report = extend_embeddings(model, old, many, init="random", seed=seed, progress=False)
        assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched
        assert (report.random, report.from_pieces, report.from_all) == (400, 0, 0)
        weight = model.roberta.embeddings.word_embeddings.weight.detach()
        assert torch.equal(weight[: len(old)], embedding)
        assert torch.equal(model.lm_head.bias[len(old):], torch.zeros(400))  # _init_weights' LM-head bias
        rows[name] = weight[len(old):].clone()
    assert torch.equal(rows["a"], rows["b"]) and not torch.equal(rows["a"], rows["c"])
    assert abs(rows["a"].std().item() / 0.05 - 1) < 0.03 and abs(rows["a"].mean().item()) < 0.002


def test_a_padded_table_reuses_its_padding_rows(tokenizers) -> None:
    old, new, _, _, _ = tokenizers
    model = tiny_model(len(old) + 3)  # three padding rows beyond the tokenizer
    embedding = model.roberta.embeddings.word_embeddings.weight.detach().clone()
    report = extend_embeddings(model, old, new, progress=False)
    weight = model.roberta.embeddings.word_embeddings.weight.detach()
    assert report.rows == weight.shape[0] == len(new) == model.config.vocab_size
    assert torch.equal(weight[: len(old)], embedding[: len(old)])
    assert not torch.equal(weight[len(old): len(old) + 3], embedding[len(old):])  # the padding rows now hold pieces
    assert torch.equal(weight[len(old)], embedding[reference_split(tokenizers[3], PIECES[0])].mean(0))
    assert torch.equal(weight[len(new) - 1], embedding[: len(old)].mean(0))  # "☃": the mean of the old rows only


def test_errors_are_one_line_and_name_the_problem(tokenizers) -> None:
    old, new, many, _, root = tokenizers
    model = tiny_model(len(old))
    with pytest.raises(VocabularyError, match=r"^init='zeros' is not allowed: expected one of \['mean', 'random'\]$"):
        extend_embeddings(model, old, new, init="zeros")
    # A tokenizer whose old ids are not all in place: the first and second pieces swapped.
    swapped = root / "swapped"
    shutil.copytree(root / "new", swapped)
    text = (swapped / "tokenizer.json").read_text(encoding="utf-8")
    a, b = old.convert_ids_to_tokens(10), old.convert_ids_to_tokens(11)
    text = text.replace(f'"{a}"', "\0").replace(f'"{b}"', f'"{a}"').replace("\0", f'"{b}"')
    (swapped / "tokenizer.json").write_text(text, encoding="utf-8")
    bad = AutoTokenizer.from_pretrained(swapped)
    with pytest.raises(VocabularyError) as info:
        extend_embeddings(model, old, bad)
    assert str(info.value) == (f"the new tokenizer does not extend the old one: id 10 is {b!r} in the new tokenizer "
                               f"but {a!r} in the old one; expected every old id to keep its piece and new pieces to "
                               "follow")
    with pytest.raises(VocabularyError, match=r"^the new tokenizer has \d+ ids, fewer than the old one's \d+"):
        extend_embeddings(model, new, old)
    with pytest.raises(VocabularyError, match=rf"^the model has 50 embedding rows but old_tokenizer has {len(old)} "
                                              "ids; expected the tokenizer the model was trained with$"):
        extend_embeddings(tiny_model(50), old, new)
    assert model.config.vocab_size == len(old)  # nothing changed so far
    extend_embeddings(model, old, new, progress=False)
    with pytest.raises(VocabularyError, match=rf"^the model already has {len(new)} embedding rows = "
                                              r"len\(new_tokenizer\); it looks extended already"):
        extend_embeddings(model, old, new)
    same = extend_embeddings(tiny_model(len(old)), old, old)
    assert (same.added, same.rows) == (0, len(old))
