"""End to end: train an XLM-R-layout tokenizer on a 16-language CC-100 directory written by the fixtures, load it with
AutoTokenizer and compare it with SentencePiece under fairseq's layout, the summary, word starts, the CLI and errors."""

from __future__ import annotations

import json
from pathlib import Path

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import numpy as np
import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerFast,
    XLMRobertaTokenizer,
    pipeline,
)

from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM
from xlmr_hf.cli import main
from xlmr_hf.tokenization import (
    TokenizerTrainingConfig,
    TokenizerTrainingError,
    allocate_budget,
    alpha_probabilities,
    train_tokenizer,
    word_ids,
    word_start_mask,
)
from xlmr_hf.tokenization import training as training_module

VOCAB = 1200
BYTES_PER_LANGUAGE = {lang: 40_000 if lang in ("en", "fr") else 12_000 for lang in text.LANGUAGES}
JAMO = next(s for s in text.TRICKY if "\u1112" in s)  # a word written with conjoining jamo (U+1112 U+1161 U+11AB)
DECOMPOSED = "caf" + "e\u0301"  # "é" written as e + COMBINING ACUTE ACCENT, which NFKC composes

def fairseq_ids(sp: spm.SentencePieceProcessor, line: str) -> list[int]:
    """The reference for XLM-R ids: SentencePiece under fairseq's dictionary layout (transformers 5 has no slow
    XLM-R tokenizer to compare with)."""
    return [0, *(3 if i == 0 else i + 1 for i in sp.encode(line)), 2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cc100")
    text.write_cc100_corpus(directory, BYTES_PER_LANGUAGE, seed=0)
    return directory


@pytest.fixture(scope="module")
def trained(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("tok")
    config = TokenizerTrainingConfig(vocab_size=VOCAB, heldout_sentences=20, num_threads=2)
    return train_tokenizer(corpus, out, config, progress=False)


@pytest.fixture(scope="module")
def loaded(trained):
    tokenizer = AutoTokenizer.from_pretrained(trained.output_dir)
    sp = spm.SentencePieceProcessor(model_file=str(trained.output_dir / "sentencepiece.bpe.model"))
    return tokenizer, sp


def test_saved_files_load_as_fast_xlmr_tokenizer_with_fairseq_layout(trained, loaded) -> None:
    tokenizer, sp = loaded
    names = {p.name for p in trained.output_dir.iterdir()}
    assert names == {"sentencepiece.bpe.model", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "training_summary.json"}
    assert type(tokenizer) is XLMRobertaTokenizer and tokenizer.is_fast
    assert len(tokenizer) == VOCAB + 2 == sp.get_piece_size() + 2
    assert tokenizer.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) == [0, 1, 2, 3]
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id) == (0, 2, VOCAB + 1)
    assert tokenizer.model_max_length == 512
    # Every SentencePiece piece i > 2 sits at i + 1, with its score.
    for i in (3, 4, 100, VOCAB - 1):
        assert tokenizer.convert_ids_to_tokens(i + 1) == sp.id_to_piece(i)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((trained.output_dir / "sentencepiece.bpe.model").read_bytes())
    assert [p.piece for p in proto.pieces[:3]] == ["<unk>", "<s>", "</s>"]
    assert proto.trainer_spec.model_type == sentencepiece_model_pb2.TrainerSpec.UNIGRAM
    assert proto.normalizer_spec.name == "nmt_nfkc"
    special = json.loads((trained.output_dir / "special_tokens_map.json").read_text())
    assert special["mask_token"]["content"] == "<mask>" and special["mask_token"]["lstrip"] is True
    assert {special[k] for k in ("bos_token", "cls_token")} == {"<s>"} and special["pad_token"] == "<pad>"


@pytest.mark.parametrize("lang", sorted(text.LANGUAGES))
def test_ids_equal_sentencepiece_in_every_script(loaded, lang: str) -> None:
    tokenizer, sp = loaded
    for line in text.PARALLEL[lang]:
        assert tokenizer(line)["input_ids"] == fairseq_ids(sp, line), line


def test_ids_equal_sentencepiece_on_normalisation_edge_cases(loaded) -> None:
    tokenizer, sp = loaded
    cases = [line for line in text.TRICKY if line != JAMO]
    assert len(cases) >= 20
    batch = tokenizer(cases)["input_ids"]
    for line, ids in zip(cases, batch):
        assert ids == fairseq_ids(sp, line), repr(line)


@pytest.mark.xfail(strict=True, reason="tokenizers' Precompiled normaliser does not compose conjoining Hangul jamo "
                                       "into syllables as SentencePiece does (official XLM-R tokenizers share this)")
def test_conjoining_jamo_known_divergence(loaded) -> None:
    tokenizer, sp = loaded
    assert tokenizer(JAMO)["input_ids"] == fairseq_ids(sp, JAMO)


def _normalize(sp_model: Path):
    normalizer = spm.SentencePieceNormalizer(model_file=str(sp_model), add_dummy_prefix=False,
                                             escape_whitespaces=False, remove_extra_whitespaces=False)
    return normalizer.normalize


@pytest.mark.parametrize("source", ["parallel", "tricky"])
def test_offsets_map_back_to_the_original_text(trained, loaded, source: str) -> None:
    """Tokens whose spans overlap (a lone "▁" points at the next character, as in official XLM-R; several pieces of
    one character such as "ﬃ") form a group. Groups are ordered, disjoint and inside the text; each group's
    normalised source text equals its pieces without "▁"; together they cover every non-space character."""
    tokenizer, _ = loaded
    normalize = _normalize(trained.output_dir / "sentencepiece.bpe.model")
    lines = [s for lang in text.LANGUAGES for s in text.PARALLEL[lang]] if source == "parallel" else [
        s for s in text.TRICKY if s != JAMO and DECOMPOSED not in s]
    for line in lines:
        enc = tokenizer(line, return_offsets_mapping=True, add_special_tokens=False)
        pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
        groups: list[list] = []
        for piece, (start, end) in zip(pieces, enc["offset_mapping"]):
            assert 0 <= start <= end <= len(line)
            if groups and start < groups[-1][1]:
                groups[-1][1] = max(groups[-1][1], end)
                groups[-1][2].append(piece)
            else:
                assert not groups or start >= groups[-1][1]
                groups.append([start, end, [piece]])
        covered = set()
        for start, end, group in groups:
            covered.update(range(start, end))
            if "<unk>" not in group:
                assert normalize(line[start:end]).replace(" ", "") == "".join(group).replace("▁", ""), (
                    repr(line), line[start:end], group)
        missing = [c for i, c in enumerate(line) if i not in covered and normalize(c).strip()]
        assert not missing, (repr(line), missing)


@pytest.mark.xfail(strict=True, reason="tokenizers aligns a character composed by NFKC (e + U+0301 -> é) with its "
                                       "first source character only, so the combining mark falls outside the offsets")
def test_offsets_of_composed_characters_known_gap(loaded) -> None:
    tokenizer, _ = loaded
    line = f"{DECOMPOSED} au lait"
    enc = tokenizer(line, return_offsets_mapping=True, add_special_tokens=False)
    covered = {i for start, end in enc["offset_mapping"] for i in range(start, end)}
    assert line.index("\u0301") in covered


def test_pair_template_and_mask_token(loaded) -> None:
    tokenizer, _ = loaded
    a = tokenizer("Hello world", add_special_tokens=False)["input_ids"]
    b = tokenizer("Bonjour", add_special_tokens=False)["input_ids"]
    assert tokenizer("Hello world", "Bonjour")["input_ids"] == [0, *a, 2, 2, *b, 2]
    ids = tokenizer("The cat <mask> a book.")["input_ids"]
    assert ids.count(tokenizer.mask_token_id) == 1
    # <mask> absorbs the space before it (lstrip), as in XLM-R's tokenizer: no lone "▁" in front of it.
    assert tokenizer.convert_ids_to_tokens(ids[ids.index(tokenizer.mask_token_id) - 1]) != "▁"


def test_summary_shares_fertility_and_json(trained) -> None:
    summary = json.loads((trained.output_dir / "training_summary.json").read_text())
    assert summary == json.loads(json.dumps(trained.to_dict()))
    languages = summary["languages"]
    assert list(languages) == sorted(text.LANGUAGES)
    sizes = {lang: entry["sentences"] for lang, entry in languages.items()}
    assert summary["unit"] == summary["settings"]["unit"] == "lines"  # p_i in sentences by default, as XLM-R
    assert {lang: entry["p"] for lang, entry in languages.items()} == {
        lang: n / sum(sizes.values()) for lang, n in sizes.items()}
    budget = summary["sampled_sentences"]
    assert budget == sum(entry["sentences"] - entry["heldout_sentences"] for entry in languages.values())
    assert {lang: e["sampled_sentences"] for lang, e in languages.items()} == allocate_budget(
        budget, alpha_probabilities(sizes, 0.3))
    assert languages["sw"]["passes"] > 1 > languages["en"]["passes"]  # α moves mass from en to the small languages
    for lang, entry in languages.items():
        held = entry["heldout"]
        assert held["texts"] == entry["heldout_sentences"] > 0
        expected_unit = "character" if lang in ("zh", "ja", "th") else "word"
        assert held["fertility_unit"] == expected_unit, lang
        assert held["fertility"] == (held["tokens_per_character"] if expected_unit == "character"
                                     else held["tokens_per_word"])
        assert 0.0 <= held["unknown_rate"] < 0.05
    assert summary["vocab_size"] == VOCAB + 2 and summary["tokenizer_class"] == "XLMRobertaTokenizer"
    assert "fertility" in trained.format_table() and "sw" in trained.format_table()
    assert trained.format_table().splitlines()[0].split()[2:5] == ["p_i", "(lines)", "q_i"]


def test_word_starts_follow_the_documented_rule(loaded) -> None:
    tokenizer, _ = loaded
    starts = word_start_mask(tokenizer)
    assert starts.shape == (len(tokenizer),) and starts.dtype == np.bool_
    assert starts[[0, 1, 2, 3, tokenizer.mask_token_id]].all()
    for piece, index in tokenizer.get_vocab().items():
        if piece.startswith("▁"):
            assert starts[index], piece
    # Spaced scripts: one word per whitespace word.
    line = text.PARALLEL["en"][0]
    ids = tokenizer(line, add_special_tokens=False)["input_ids"]
    assert word_ids(ids, starts)[-1] + 1 == len(line.split())
    # Scripts without spaces: never one word per sentence; every word is a single piece.
    for lang in ("zh", "ja", "th"):
        line = text.PARALLEL[lang][1]
        ids = tokenizer(line, add_special_tokens=False)["input_ids"]
        n_words = word_ids(ids, starts)[-1] + 1
        assert n_words >= max(3, len(ids) // 3), (lang, n_words, len(ids))
    # A Thai combining vowel or tone mark never begins a word.
    marks = [i for p, i in tokenizer.get_vocab().items() if p and p[0] in "\u0e31\u0e34\u0e35\u0e48\u0e49"]
    assert marks and not starts[marks].any()


def test_byte_fallback_and_user_symbols(corpus: Path, tmp_path: Path) -> None:
    config = TokenizerTrainingConfig(vocab_size=VOCAB, byte_fallback=True, user_defined_symbols=("<sep>", "@@"),
                                     heldout_sentences=5)
    result = train_tokenizer(corpus, tmp_path, config, languages=["en", "zh", "ar"], progress=False)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "sentencepiece.bpe.model"))
    assert isinstance(tokenizer, PreTrainedTokenizerFast) and type(tokenizer) is not XLMRobertaTokenizer
    assert result.to_dict()["tokenizer_class"] == type(tokenizer).__name__
    lines = [*text.PARALLEL["ru"], *text.PARALLEL["hi"], "a<sep>b x@@y @@ z", "Zürich<sep>東京 😀👍🏽",
             *[s for s in text.TRICKY if s != JAMO]]
    for line in lines:
        ids = tokenizer(line)["input_ids"]
        assert ids == fairseq_ids(sp, line), repr(line)
        assert tokenizer.unk_token_id not in ids  # unknown characters are spelt as bytes
        assert tokenizer.decode(ids, skip_special_tokens=True) == sp.decode(sp.encode(line))
    assert tokenizer.tokenize("a<sep>b") == sp.encode_as_pieces("a<sep>b")
    assert "<sep>" in tokenizer.tokenize("a<sep>b") and "@@" in tokenizer.tokenize("x@@y")


def test_training_is_deterministic(corpus: Path, tmp_path: Path, trained) -> None:
    config = TokenizerTrainingConfig(vocab_size=VOCAB, heldout_sentences=20, num_threads=2)
    train_tokenizer(corpus, tmp_path, config, progress=False)
    for name in ("sentencepiece.bpe.model", "tokenizer.json"):
        assert (tmp_path / name).read_bytes() == (trained.output_dir / name).read_bytes(), name


def test_vocabulary_too_small_fails_before_sentencepiece(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    def not_called(*args, **kwargs):
        raise AssertionError("SentencePiece must not start")

    monkeypatch.setattr(training_module, "_train_sentencepiece", not_called)
    config = TokenizerTrainingConfig(vocab_size=200, character_coverage=1.0)
    with pytest.raises(TokenizerTrainingError, match=r"vocab_size=200 is too small: character_coverage=1.0 needs "
                                                     r"\d+ characters .* use vocab_size > \d+"):
        train_tokenizer(corpus, tmp_path / "out", config, progress=False)
    assert not (tmp_path / "out").exists()


def test_required_characters_agree_with_sentencepiece(corpus: Path, tmp_path: Path) -> None:
    """Our pre-check and SentencePiece's own check draw the line at the same vocabulary size."""
    languages = ["en", "ru", "el"]
    with pytest.raises(TokenizerTrainingError, match=r"use vocab_size > (\d+)") as info:
        train_tokenizer(corpus, tmp_path / "a", TokenizerTrainingConfig(vocab_size=20, character_coverage=1.0),
                        languages=languages, progress=False)
    limit = int(info.value.args[0].rsplit("vocab_size > ", 1)[1].split()[0])
    config = TokenizerTrainingConfig(vocab_size=limit + 1, character_coverage=1.0, heldout_sentences=0)
    result = train_tokenizer(corpus, tmp_path / "b", config, languages=languages, progress=False)
    assert len(result.tokenizer) == limit + 3


def test_vocabulary_too_large_is_a_clear_error(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(TokenizerTrainingError, match=r"vocab_size=60000 cannot be reached .* <= \d+"):
        train_tokenizer(corpus, tmp_path, TokenizerTrainingConfig(vocab_size=60_000), languages=["sw"],
                        progress=False)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vocab_size", 3, r"vocab_size=3 is not allowed"),
        ("alpha", 1.2, r"alpha=1.2 is not allowed: expected 0 <= alpha <= 1"),
        ("unit", "tokens", (r"^unit='tokens' is not allowed: expected one of \['lines', 'bytes', 'characters'\] "
                            r"\(XLM-R: lines\)$")),
        ("max_sentences", 0, r"max_sentences=0 is not allowed"),
        ("character_coverage", 0.0, r"character_coverage=0.0 is not allowed"),
        ("num_threads", 0, r"num_threads=0 is not allowed"),
        ("user_defined_symbols", ("<mask>",), r"user_defined_symbols=\['<mask>'\] is not allowed"),
        ("user_defined_symbols", ("a b",), r"without whitespace"),
        ("user_defined_symbols", ("@@", "@@"), r"duplicates"),
    ],
)
def test_config_errors_name_the_field(field: str, value, message: str) -> None:
    with pytest.raises(TokenizerTrainingError, match=message):
        TokenizerTrainingConfig(**{field: value})


def test_cli_trains_and_prints_the_summary(corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tok"
    rc = main(["train-tokenizer", "--corpus", str(corpus), "--output", str(out), "--vocab-size", "600",
               "--alpha", "0.5", "--languages", "en", "th", "ar", "--max-sentences", "100", "--threads", "1"])
    printed = capsys.readouterr().out
    assert rc == 0
    summary = json.loads((out / "training_summary.json").read_text())
    assert list(summary["languages"]) == ["en", "th", "ar"] and summary["sampled_sentences"] == 100
    assert summary["settings"]["alpha"] == 0.5
    for lang in ("en", "th", "ar"):
        assert f"\n{lang} " in printed
    assert "601" in printed or "602" in printed
    assert type(AutoTokenizer.from_pretrained(out)) is XLMRobertaTokenizer


def test_cli_unit_bytes_measures_p_in_bytes(corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tok"
    rc = main(["train-tokenizer", "--corpus", str(corpus), "--output", str(out), "--vocab-size", "600",
               "--languages", "en", "th", "ar", "--max-sentences", "100", "--threads", "1", "--unit", "bytes"])
    printed = capsys.readouterr().out
    assert rc == 0
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["unit"] == summary["settings"]["unit"] == "bytes"
    languages = summary["languages"]
    total = sum(entry["bytes"] for entry in languages.values())
    assert {lang: e["p"] for lang, e in languages.items()} == {lang: e["bytes"] / total for lang, e in languages.items()}
    lines = sum(entry["sentences"] for entry in languages.values())
    assert languages["th"]["p"] > languages["th"]["sentences"] / lines  # Thai: 3 bytes per character
    assert summary["sampled_sentences"] == 100  # the budget is still in lines
    assert "p_i (bytes)" in printed.splitlines()[0]


def test_cli_bad_input_exits_2_with_one_line(corpus: Path, tmp_path: Path, capsys) -> None:
    rc = main(["train-tokenizer", "--corpus", str(corpus), "--output", str(tmp_path), "--vocab-size", "600",
               "--languages", "en", "xx"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "xlmr-hf train-tokenizer: error: languages=['xx'] are not in" in err and "Traceback" not in err


def test_trained_tokenizer_drives_our_model_in_fill_mask(loaded) -> None:
    tokenizer, _ = loaded
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=64)
    model = XLMRobertaForMaskedLM(config).eval()
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=3)
    predictions = fill(f"Я люблю {tokenizer.mask_token} книги.")
    assert len(predictions) == 3 and all(0.0 <= p["score"] <= 1.0 for p in predictions)


def test_cli_refuses_a_non_empty_output_unless_overwritten(corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tok"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    command = ["train-tokenizer", "--corpus", str(corpus), "--output", str(out), "--vocab-size", "300",
               "--languages", "en", "--max-sentences", "100", "--threads", "1"]
    assert main(command) == 2
    assert f"output_dir={str(out)!r} exists and is not empty" in capsys.readouterr().err
    assert main([*command, "--overwrite"]) == 0
    assert not (out / "notes.txt").exists() and (out / "tokenizer.json").is_file()
