"""The tiny XLM-R-layout tokenizer fixture (tests/fixtures/tiny_tokenizer.py): ids, templates, offsets, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest
import sentencepiece as spm
from transformers import AutoTokenizer, XLMRobertaTokenizer

import fixtures.tiny_tokenizer as tiny  # tests/ is on sys.path via tests/conftest.py

TEXT_A = "Meine Schwester liest ein Buch in Berlin."
TEXT_B = "Le chat trouve la lettre à la maison."


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    tiny.build_tiny_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> XLMRobertaTokenizer:
    return AutoTokenizer.from_pretrained(tokenizer_dir)


def test_saved_folder_reloads_as_fast_xlmr_tokenizer(tokenizer_dir: Path, tokenizer) -> None:
    assert (tokenizer_dir / "tokenizer.json").is_file()
    assert isinstance(tokenizer, XLMRobertaTokenizer)
    assert tokenizer.is_fast
    assert type(tokenizer).__name__ == "XLMRobertaTokenizer"


def test_special_ids_follow_fairseq_layout(tokenizer) -> None:
    n = len(tokenizer)
    assert 100 <= n <= 200
    assert tokenizer.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) == [0, 1, 2, 3]
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (
        0, 1, 2, 3)
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id) == (0, 2)
    assert tokenizer.mask_token == "<mask>" and tokenizer.mask_token_id == n - 1
    assert tokenizer.convert_ids_to_tokens(n - 1) == "<mask>"
    # Ordinary pieces sit strictly between <unk> and <mask>, and ids are dense.
    vocab = tokenizer.get_vocab()
    assert sorted(vocab.values()) == list(range(n))
    assert all(4 <= i < n - 1 for piece, i in vocab.items() if piece not in ("<s>", "<pad>", "</s>", "<unk>", "<mask>"))


def test_single_and_pair_templates(tokenizer) -> None:
    single = tokenizer(TEXT_A)["input_ids"]
    assert single[0] == 0 and single[-1] == 2
    assert 0 not in single[1:-1] and 2 not in single[1:-1]
    a = tokenizer(TEXT_A, add_special_tokens=False)["input_ids"]
    b = tokenizer(TEXT_B, add_special_tokens=False)["input_ids"]
    assert single == [0, *a, 2]
    pair = tokenizer(TEXT_A, TEXT_B)
    assert pair["input_ids"] == [0, *a, 2, 2, *b, 2]  # <s> A </s></s> B </s>
    assert pair.sequence_ids() == [None, *[0] * len(a), None, None, *[1] * len(b), None]
    assert "token_type_ids" not in pair  # XLM-R has one token type; the tokenizer does not emit them


def test_offsets_mapping_is_available_and_points_into_the_text(tokenizer) -> None:
    enc = tokenizer(TEXT_A, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    assert len(offsets) == len(enc["input_ids"])
    assert offsets[0] == (0, 0) and offsets[-1] == (0, 0)  # specials
    for start, end in offsets[1:-1]:
        assert 0 <= start <= end <= len(TEXT_A)
    # Every word of the text is covered by the offsets of its pieces.
    covered = "".join(TEXT_A[s:e] for s, e in offsets[1:-1] if TEXT_A[s:e] != " ")
    assert set(covered) >= set(TEXT_A.replace(" ", ""))
    assert enc.word_ids()[0] is None and enc.word_ids()[-1] is None


def test_ids_equal_sentencepiece_reference(tokenizer) -> None:
    """The reference for XLM-R ids: sentencepiece ids under the fairseq layout (<unk> 0 -> 3, piece i -> i + 1)."""
    sp = spm.SentencePieceProcessor(model_proto=tiny.train_tiny_sentencepiece())
    assert sp.unk_id() == 0 and sp.bos_id() == 1 and sp.eos_id() == 2 and sp.pad_id() == -1
    assert sp.get_piece_size() == len(tokenizer) - 2  # fairseq adds <pad> and <mask>
    for text in [*tiny.tiny_corpus()[::97], TEXT_A, TEXT_B, "Qué? Ünïcode ﬁne  spaces"]:
        expected = [0, *(3 if i == 0 else i + 1 for i in sp.encode(text)), 2]
        assert tokenizer(text)["input_ids"] == expected, text


def test_mask_token_is_recognised_in_text(tokenizer) -> None:
    ids = tokenizer("Die Katze <mask> ein Buch.")["input_ids"]
    assert ids.count(tokenizer.mask_token_id) == 1


def test_build_is_deterministic(tmp_path: Path, tokenizer_dir: Path) -> None:
    tiny.build_tiny_tokenizer(tmp_path)
    assert (tmp_path / "tokenizer.json").read_bytes() == (tokenizer_dir / "tokenizer.json").read_bytes()
