"""End to end: extend a small tokenizer trained on en/fr/de with pieces learnt on Swahili and Greek text (a language
the old tokenizer splits into many pieces, and a script it cannot spell), from a folder with sentencepiece.bpe.model,
one with only tokenizer.json and one with only the .model; old ids, the <mask> slot, SentencePiece vs fast ids,
fertility, the CLI and its errors."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import numpy as np
import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from transformers import AutoTokenizer, XLMRobertaTokenizer

from xlmr_hf.cli import main
from xlmr_hf.tokenization import (
    MASK_PIECE,
    TokenizerExtensionError,
    TokenizerTrainingConfig,
    check_extension,
    extend_sentencepiece_model,
    extend_tokenizer,
    iter_lines,
    train_tokenizer,
)

OLD_VOCAB, NEW_VOCAB, ADD = 400, 400, 150
SETTINGS = dict(vocab_size=NEW_VOCAB, heldout_sentences=20, num_threads=1, progress=False)
SPECIAL_IDS = ("bos_token_id", "pad_token_id", "eos_token_id", "unk_token_id", "sep_token_id", "cls_token_id",
               "mask_token_id")
Piece = sentencepiece_model_pb2.ModelProto.SentencePiece


def fairseq_ids(sp: spm.SentencePieceProcessor, line: str) -> list[int]:
    return [0, *(3 if i == 0 else i + 1 for i in sp.encode(line)), 2]


def read_proto(path: Path) -> sentencepiece_model_pb2.ModelProto:
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(path.read_bytes())
    return proto


def corpus_lines(directory: Path) -> dict[str, list[str]]:
    return {path.name.split(".")[0]: [line for line in iter_lines(path) if line.strip()]
            for path in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("extend")


@pytest.fixture(scope="module")
def old_dir(work: Path) -> Path:
    text.write_cc100_corpus(work / "old-corpus", {"en": 20_000, "fr": 20_000, "de": 20_000}, seed=0)
    config = TokenizerTrainingConfig(vocab_size=OLD_VOCAB, heldout_sentences=20, num_threads=1)
    train_tokenizer(work / "old-corpus", work / "old", config, progress=False)
    return work / "old"


@pytest.fixture(scope="module")
def new_corpus(work: Path) -> Path:
    text.write_cc100_corpus(work / "new-corpus", {"sw": 20_000, "el": 20_000}, seed=1)
    return work / "new-corpus"


@pytest.fixture(scope="module")
def extended(old_dir: Path, new_corpus: Path, work: Path):
    return extend_tokenizer(old_dir, new_corpus, ADD, output_dir=work / "ext", **SETTINGS)


@pytest.fixture(scope="module")
def json_only(old_dir: Path, new_corpus: Path, work: Path):
    source = work / "old-json-only"
    shutil.copytree(old_dir, source)
    (source / "sentencepiece.bpe.model").unlink()
    return extend_tokenizer(source, new_corpus, ADD, output_dir=work / "ext-json", **SETTINGS)


@pytest.fixture(scope="module")
def expected_pieces(old_dir: Path, new_corpus: Path, work: Path) -> list[tuple[str, float]]:
    """Independently: train-tokenizer's own model of the new text, its normal pieces best first, minus the old ones."""
    train_tokenizer(new_corpus, work / "reference", TokenizerTrainingConfig(
        vocab_size=NEW_VOCAB, heldout_sentences=20, num_threads=1), progress=False)
    proto = read_proto(work / "reference" / "sentencepiece.bpe.model")
    known = set(AutoTokenizer.from_pretrained(old_dir).get_vocab())
    normal = sorted(((p.piece, p.score) for p in proto.pieces if p.type == Piece.NORMAL), key=lambda item: -item[1])
    return [item for item in normal if item[0] not in known]


@pytest.mark.parametrize("source", ["model", "json"])
def test_old_ids_keep_their_pieces_and_new_pieces_follow(source, extended, json_only, old_dir, expected_pieces):
    result = extended if source == "model" else json_only
    old = AutoTokenizer.from_pretrained(old_dir)
    new = AutoTokenizer.from_pretrained(result.output_dir)
    assert type(new) is XLMRobertaTokenizer and new.is_fast
    assert len(old) == OLD_VOCAB + 2 and len(new) == len(old) + ADD == result.new_size
    assert new.convert_ids_to_tokens(list(range(len(old)))) == old.convert_ids_to_tokens(list(range(len(old))))
    assert {name: getattr(new, name) for name in SPECIAL_IDS} == {name: getattr(old, name) for name in SPECIAL_IDS}
    assert new.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) == [0, 1, 2, 3]
    assert new.mask_token_id == len(old) - 1 == OLD_VOCAB + 1
    # The new pieces: the new model's unknown pieces, best score first, with their scores, at ids len(old) ..
    added = new.convert_ids_to_tokens(list(range(len(old), len(new))))
    assert added == list(result.added) == [piece for piece, _ in expected_pieces[:ADD]]
    vocab = json.loads((result.output_dir / "tokenizer.json").read_text())["model"]["vocab"]
    scores = [(piece, np.float32(score)) for piece, score in vocab[len(old):]]  # SentencePiece scores are float32
    assert scores == [(piece, np.float32(score)) for piece, score in expected_pieces[:ADD]]
    names = {path.name for path in result.output_dir.iterdir()}
    expected = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "extension_summary.json"}
    assert names == (expected | {"sentencepiece.bpe.model"} if source == "model" else expected)
    assert result.sentencepiece_model is (source == "model")
    assert (result.candidates, result.known) == (NEW_VOCAB - 3, NEW_VOCAB - 3 - len(expected_pieces))
    check_extension(old, new)


def test_mask_slot_is_a_control_piece_and_the_fairseq_offset_holds(extended, old_dir):
    old_proto = read_proto(old_dir / "sentencepiece.bpe.model")
    proto = read_proto(extended.output_dir / "sentencepiece.bpe.model")
    new = AutoTokenizer.from_pretrained(extended.output_dir)
    n_old = len(old_proto.pieces)
    assert [(p.piece, p.score, p.type) for p in proto.pieces[:n_old]] == [
        (p.piece, p.score, p.type) for p in old_proto.pieces]
    mask = proto.pieces[n_old]
    assert (mask.piece, mask.type, n_old + 1) == (MASK_PIECE, Piece.CONTROL, new.mask_token_id)
    assert len(proto.pieces) + 1 == len(new) and proto.trainer_spec.vocab_size == len(proto.pieces)
    sp = spm.SentencePieceProcessor(model_file=str(extended.output_dir / "sentencepiece.bpe.model"))
    assert sp.is_control(new.mask_token_id - 1) and sp.id_to_piece(new.mask_token_id - 1) == "<mask>"
    for new_id in range(extended.old_size, len(new)):  # every new piece: SentencePiece id + 1 = fast id
        piece = new.convert_ids_to_tokens(new_id)
        assert sp.piece_to_id(piece) + 1 == new_id and sp.get_score(new_id - 1) == proto.pieces[new_id - 1].score
        assert sp.get_piece_size() > new_id - 1 and not sp.is_control(new_id - 1) and not sp.is_unknown(new_id - 1)


def test_the_control_piece_changes_no_segmentation(old_dir, new_corpus, work):
    """The old model plus only the <mask> control piece encodes every text exactly as the old model."""
    old_bytes = (old_dir / "sentencepiece.bpe.model").read_bytes()
    old_sp = spm.SentencePieceProcessor(model_proto=old_bytes)
    with_mask = spm.SentencePieceProcessor(model_proto=extend_sentencepiece_model(old_bytes, []))
    assert with_mask.get_piece_size() == old_sp.get_piece_size() + 1
    lines = [line for lines in corpus_lines(new_corpus).values() for line in lines[:60]]
    lines += [line for lines in corpus_lines(work / "old-corpus").values() for line in lines[:60]]
    lines += ["<mask>", "a <mask> b", "x<mask>y"]
    for line in lines:
        assert with_mask.encode(line) == old_sp.encode(line), line
    with pytest.raises(TokenizerExtensionError, match=r"piece '▁the' is already in the SentencePiece model"):
        extend_sentencepiece_model(old_bytes, [("▁the", -1.0)])


def test_sentencepiece_and_fast_tokenizer_agree_id_for_id(extended, new_corpus, work):
    sp = spm.SentencePieceProcessor(model_file=str(extended.output_dir / "sentencepiece.bpe.model"))
    new = AutoTokenizer.from_pretrained(extended.output_dir)
    lines = {**corpus_lines(new_corpus), "en": corpus_lines(work / "old-corpus")["en"][:200]}
    lines["parallel"] = [line for lang in ("sw", "el", "en", "fr", "de", "ru") for line in text.PARALLEL[lang]]
    used_new = 0
    for lang, batch in lines.items():
        encoded = new(batch)["input_ids"]
        for line, ids in zip(batch, encoded):
            assert ids == fairseq_ids(sp, line), (lang, line)
            used_new += sum(i >= extended.old_size for i in ids)
    assert used_new > 1000  # the new pieces are really exercised
    heldout = sum(len(sample.heldout) for sample in extended.languages.values())
    assert extended.agreement == (heldout, heldout) and heldout > 0


def test_fertility_of_the_added_languages(extended, old_dir):
    old = AutoTokenizer.from_pretrained(old_dir)
    new = AutoTokenizer.from_pretrained(extended.output_dir)
    for lang in ("sw", "el"):
        lines = extended.languages[lang].heldout
        words = sum(len(line.split()) for line in lines)
        for tokenizer, stats in ((old, extended.before[lang]), (new, extended.after[lang])):
            ids = tokenizer(lines, add_special_tokens=False)["input_ids"]
            assert (stats.texts, stats.words, stats.tokens) == (len(lines), words, sum(map(len, ids)))
            assert stats.unknown_tokens == sum(row.count(3) for row in ids)
    sw_before, sw_after = extended.before["sw"], extended.after["sw"]
    assert sw_after.tokens_per_word < 0.7 * sw_before.tokens_per_word  # Swahili: far fewer pieces per word
    el_before, el_after = extended.before["el"], extended.after["el"]
    assert el_before.unknown_rate > 0.3 and el_after.unknown_rate < 0.5 * el_before.unknown_rate  # Greek: spelt
    summary = json.loads((extended.output_dir / "extension_summary.json").read_text())
    assert summary == json.loads(json.dumps(extended.to_dict()))
    assert summary["languages"]["sw"]["after"]["tokens_per_word"] == sw_after.tokens_per_word
    assert (summary["old_size"], summary["new_size"], summary["mask_token_id"]) == (402, 552, 401)
    assert summary["settings"]["alpha"] == 0.3 and summary["settings"]["vocab_size"] == NEW_VOCAB


def test_json_only_and_model_only_folders_give_the_same_tokenizer(extended, json_only, old_dir, new_corpus, work):
    assert (json_only.output_dir / "tokenizer.json").read_bytes() == (
        extended.output_dir / "tokenizer.json").read_bytes()
    assert json_only.agreement is None and json_only.added == extended.added
    source = work / "old-model-only"
    shutil.copytree(old_dir, source)
    (source / "tokenizer.json").unlink()
    result = extend_tokenizer(source, new_corpus, ADD, output_dir=work / "ext-model", **SETTINGS)
    for name in ("tokenizer.json", "sentencepiece.bpe.model"):
        assert (result.output_dir / name).read_bytes() == (extended.output_dir / name).read_bytes(), name


def test_a_model_repository_folder_keeps_its_tokenizer_class(extended, old_dir, new_corpus, work):
    """As many Hub repositories: tokenizer.json, a tokenizer_config.json without tokenizer_class and the model's
    config.json (where AutoTokenizer finds the class). config.json is not copied, so the class is recorded."""
    source = work / "old-hub"
    source.mkdir()
    shutil.copyfile(old_dir / "tokenizer.json", source / "tokenizer.json")
    (source / "tokenizer_config.json").write_text('{"model_max_length": 512}')
    (source / "config.json").write_text('{"model_type": "xlm-roberta", "vocab_size": 402}')
    result = extend_tokenizer(source, new_corpus, ADD, output_dir=work / "ext-hub", **SETTINGS)
    assert json.loads((result.output_dir / "tokenizer_config.json").read_text()) == {
        "model_max_length": 512, "tokenizer_class": "XLMRobertaTokenizer"}
    new = AutoTokenizer.from_pretrained(result.output_dir)
    assert type(new) is XLMRobertaTokenizer and new.mask_token_id == 401 and len(new) == 402 + ADD
    assert (result.output_dir / "tokenizer.json").read_bytes() == (extended.output_dir / "tokenizer.json").read_bytes()


def test_an_extended_tokenizer_extends_again(extended, new_corpus, tmp_path):
    """A second extension: <mask> already has its piece, so the new pieces simply follow."""
    again = extend_tokenizer(extended.output_dir, new_corpus, 20, output_dir=tmp_path / "again", vocab_size=500,
                             heldout_sentences=20, num_threads=1, progress=False)
    first = AutoTokenizer.from_pretrained(extended.output_dir)
    second = AutoTokenizer.from_pretrained(tmp_path / "again")
    check_extension(first, second)
    assert len(second) == len(first) + 20 and second.mask_token_id == first.mask_token_id == 401
    proto = read_proto(tmp_path / "again" / "sentencepiece.bpe.model")
    assert [p.piece for p in proto.pieces].count(MASK_PIECE) == 1 and len(proto.pieces) + 1 == len(second)
    assert again.agreement[0] == again.agreement[1]


def test_fewer_new_pieces_than_requested_adds_all_of_them(old_dir, new_corpus, tmp_path, expected_pieces, caplog):
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.tokenization.extend"):
        result = extend_tokenizer(old_dir, new_corpus, NEW_VOCAB - 3, output_dir=tmp_path / "all", **SETTINGS)
    assert list(result.added) == [piece for piece, _ in expected_pieces]
    assert len(result.added) == result.candidates - result.known < result.requested == NEW_VOCAB - 3
    assert f"only {len(expected_pieces)} of the {NEW_VOCAB - 3} pieces of the new model are not in the old " in (
        caplog.text)
    assert f"added {len(expected_pieces)} of {NEW_VOCAB - 3} requested pieces" in result.format_table()


def test_check_extension_refuses_what_is_not_an_extension(extended, old_dir, work):
    old = AutoTokenizer.from_pretrained(old_dir)
    new = AutoTokenizer.from_pretrained(extended.output_dir)
    with pytest.raises(TokenizerExtensionError, match=r"^the new tokenizer has 402 ids, fewer than the old one's 552"):
        check_extension(new, old)
    other = AutoTokenizer.from_pretrained(work / "reference")  # same size, other pieces
    first = next(i for i in range(len(old)) if old.convert_ids_to_tokens(i) != other.convert_ids_to_tokens(i))
    with pytest.raises(TokenizerExtensionError) as info:
        check_extension(old, other)
    assert str(info.value) == (
        f"the new tokenizer does not extend the old one: id {first} is {other.convert_ids_to_tokens(first)!r} in the "
        f"new tokenizer but {old.convert_ids_to_tokens(first)!r} in the old one; expected every old id to keep its "
        "piece and new pieces to follow")


def test_cli_extends_and_prints_the_table(old_dir, new_corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["extend-tokenizer", "--tokenizer", str(old_dir), "--corpus", str(new_corpus), "--add-pieces", "100",
               "--output", str(out), "--vocab-size", "300", "--alpha", "0.5", "--languages", "sw", "--threads", "1",
               "--heldout-sentences", "20"])
    printed = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert printed[0].split() == ["lang", "held-out", "words", "pieces/word", "change", "unk"]
    assert printed[1].startswith("sw ") and " -> " in printed[1] and len(printed) == 5
    assert printed[2].startswith("added 100 of 100 requested pieces") and "402 -> 502 ids" in printed[2]
    assert printed[3].startswith("sentencepiece.bpe.model + tokenizer.json in ")
    assert printed[4] == f"summary: {out / 'extension_summary.json'}"
    summary = json.loads((out / "extension_summary.json").read_text())
    assert summary["settings"]["alpha"] == 0.5 and list(summary["languages"]) == ["sw"]
    assert len(AutoTokenizer.from_pretrained(out)) == 502


def test_cli_errors_are_one_line(old_dir, new_corpus, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    base = ["extend-tokenizer", "--corpus", str(new_corpus), "--output", str(tmp_path / "out")]
    cases = [
        (["--tokenizer", str(tmp_path / "missing"), "--add-pieces", "5"],
         f"tokenizer={str(tmp_path / 'missing')!r} is not a directory; expected a tokenizer folder holding "
         "sentencepiece.bpe.model and/or tokenizer.json"),
        (["--tokenizer", str(tmp_path / "empty"), "--add-pieces", "5"],
         f"tokenizer folder {str(tmp_path / 'empty')!r} holds neither sentencepiece.bpe.model nor tokenizer.json; "
         "expected an XLM-R tokenizer folder with at least one of them"),
        (["--tokenizer", str(old_dir), "--add-pieces", "0"], "add_pieces=0 is not allowed: expected an integer >= 1"),
        (["--tokenizer", str(old_dir), "--add-pieces", "5", "--languages", "sw", "xx"],
         f"languages=['xx'] are not in corpus directory {str(new_corpus)!r}; available: ['el', 'sw']"),
        (["--tokenizer", str(old_dir), "--add-pieces", "5", "--alpha", "1.5"],
         "alpha=1.5 is not allowed: expected 0 <= alpha <= 1 (XLM-R: 0.3)"),
        (["--tokenizer", str(old_dir), "--add-pieces", "50", "--vocab-size", "20"],
         "vocab_size=20 is not allowed for add_pieces=50: the new model needs room for <unk>, <s>, </s> and the "
         "pieces (>= 53; default 2 x add_pieces)"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        assert capsys.readouterr().err == f"xlmr-hf extend-tokenizer: error: {message}\n"
    assert not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("mine")
    assert main([*base, "--tokenizer", str(old_dir), "--add-pieces", "5"]) == 2
    assert capsys.readouterr().err == (f"xlmr-hf extend-tokenizer: error: output_dir={str(tmp_path / 'out')!r} exists "
                                       "and is not empty; choose another one or overwrite it (overwrite=True, "
                                       "--overwrite true)\n")


def test_python_m_with_an_unreachable_hub_id_is_one_line(new_corpus, tmp_path):
    """A name that is no local folder is tried as a Hub repository id; offline, that fails in one line."""
    run = subprocess.run(
        [sys.executable, "-m", "xlmr_hf", "extend-tokenizer", "--tokenizer", "nobody/no-such-tokenizer", "--corpus",
         str(new_corpus), "--add-pieces", "5", "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("xlmr-hf extend-tokenizer: error: tokenizer='nobody/no-such-tokenizer' is not a directory, "
                           "and no Hub repository of that name can be fetched (LocalEntryNotFoundError: ")
    assert last.endswith("expected a tokenizer folder holding sentencepiece.bpe.model and/or tokenizer.json, or a "
                         "Hub id")
