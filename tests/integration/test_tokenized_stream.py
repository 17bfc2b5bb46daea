"""Pre-tokenized corpora: `tokenize-corpus` output read by `datasets`, the same batches as the online stream for world
sizes 1, 2, 8 and 0, 1, 2 DataLoader workers, exact resume on both paths, shuffled blocks that mix languages when one
document holds most of a language, and the command line."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import fixtures.multilingual_text as text
import numpy as np
import pytest
import torch
from fixtures.tiny_tokenizer import build_tiny_tokenizer
from torchdata.stateful_dataloader import StatefulDataLoader

from xlmr_hf.cli import main
from xlmr_hf.data import (
    PretrainingStream,
    StreamError,
    TokenEncoder,
    TokenizedCorpusError,
    iter_cc100_documents,
    tokenize_corpus,
)

SIZES = {"en": 30000, "fr": 9000, "sw": 2500, "de": 6000}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tok")
    build_tiny_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cc100")
    text.write_cc100_corpus(directory, SIZES, seed=5)
    return directory


@pytest.fixture(scope="module")
def tokenized(corpus: Path, tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tokenized") / "out"
    tokenize_corpus(corpus, str(tokenizer_dir), out, workers=2, seq_lens=(40,))
    return out


def make(corpus: Path, tokenizer_dir: Path, **overrides) -> PretrainingStream:
    kwargs = {"seq_len": 40, "batch_size": 2, "seed": 4, "shuffle_blocks": 30, "return_language_counts": True}
    kwargs.update(overrides)
    return PretrainingStream(corpus, str(tokenizer_dir), **kwargs)


def take(iterable, n: int) -> list[dict[str, torch.Tensor]]:
    out = []
    for batch in iterable:
        out.append(batch)
        if len(out) == n:
            break
    return out


def assert_same(left: list[dict], right: list[dict]) -> None:
    assert len(left) == len(right)
    for step, (a, b) in enumerate(zip(left, right)):
        assert a.keys() == b.keys(), step
        for key in a:
            assert torch.equal(a[key], b[key]), (step, key)


# --------------------------------------------------------------------------------------------------- the format
def test_the_format_is_arrow_that_datasets_reads(corpus: Path, tokenizer_dir: Path, tokenized: Path) -> None:
    from datasets import Dataset
    from transformers import AutoTokenizer

    manifest = json.loads((tokenized / "manifest.json").read_text())
    part = tokenized / "fr" / manifest["languages"]["fr"]["parts"][0]
    rows = Dataset.from_file(str(part))
    documents = list(iter_cc100_documents(corpus / "fr.txt.xz"))
    assert len(rows) == len(documents) == manifest["languages"]["fr"]["documents"]
    encoder = TokenEncoder(AutoTokenizer.from_pretrained(tokenizer_dir))
    for row, document in zip(rows, documents):
        units = [[*ids.tolist(), 2] for ids in encoder.encode(document.split("\n")) if len(ids)]
        assert row["input_ids"] == [t for unit in units for t in unit]
        assert row["paragraph_lengths"] == [len(unit) for unit in units]
        assert row["lines"] == len(document.split("\n"))
        assert row["bytes"] == len(document.encode()) + 2
    assert manifest["languages"]["fr"]["tokens"] == sum(len(r) for r in rows["input_ids"])
    assert "blocks-complete-40.npy" in manifest["languages"]["fr"]["block_tables"]


# ----------------------------------------------------------------------------------------------- same batches
@pytest.mark.parametrize("settings", [{}, {"packing": "complete_doc", "padding_free": True, "unit": "bytes"},
                                      {"seq_len": 24, "masking": "bernoulli"}])
@pytest.mark.parametrize("world_size", [1, 2, 8])
def test_same_batches_online_and_pretokenized(corpus: Path, tokenizer_dir: Path, tokenized: Path, world_size: int,
                                              settings: dict) -> None:
    batches = 160 // world_size  # several epochs of the small languages, several shuffle windows
    for rank in sorted({0, world_size - 1}):
        online = take(make(corpus, tokenizer_dir, world_size=world_size, rank=rank, **settings), batches)
        offline = take(make(tokenized, tokenizer_dir, world_size=world_size, rank=rank, **settings), batches)
        assert_same(online, offline)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("source", ["online", "tokenized"])
def test_same_batches_for_dataloader_workers(corpus: Path, tokenizer_dir: Path, tokenized: Path, workers: int,
                                             source: str) -> None:
    path = corpus if source == "online" else tokenized
    reference = take(make(corpus, tokenizer_dir), 40)
    loader = torch.utils.data.DataLoader(make(path, tokenizer_dir), batch_size=None, num_workers=workers)
    assert_same(take(loader, 40), reference)


@pytest.mark.parametrize("source", ["online", "tokenized"])
def test_exact_resume_from_a_few_kb(corpus: Path, tokenizer_dir: Path, tokenized: Path, source: str) -> None:
    path = corpus if source == "online" else tokenized
    reference = take(make(path, tokenizer_dir, packing="complete_doc"), 90)
    for stop in (1, 14, 15, 44):  # 15 batches = one window of 30 blocks: resume at and inside window edges
        stream = make(path, tokenizer_dir, packing="complete_doc")
        take(stream, stop)
        state = json.dumps(stream.state_dict())
        assert len(state) < 8000
        resumed = make(path, tokenizer_dir, packing="complete_doc")
        resumed.load_state_dict(json.loads(state))
        assert_same(take(resumed, 90 - stop), reference[stop:])


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resume_pretokenized(tokenized: Path, tokenizer_dir: Path, workers: int) -> None:
    reference = take(make(tokenized, tokenizer_dir), 40)
    loader = StatefulDataLoader(make(tokenized, tokenizer_dir), batch_size=None, num_workers=workers)
    it = iter(loader)
    assert_same([next(it) for _ in range(17)], reference[:17])
    state = json.loads(json.dumps(loader.state_dict()))
    del it, loader
    resumed = StatefulDataLoader(make(tokenized, tokenizer_dir), batch_size=None, num_workers=workers)
    resumed.load_state_dict(state)
    assert_same(take(resumed, 23), reference[17:])


def test_each_rank_reads_only_its_own_blocks(tokenized: Path, tokenizer_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from xlmr_hf.data import TokenizedSource

    read = []
    original = TokenizedSource.tokens
    monkeypatch.setattr(TokenizedSource, "tokens", lambda self, s, e: read.append(e - s) or original(self, s, e))
    batches = take(make(tokenized, tokenizer_dir, world_size=8, rank=3, padding_free=True), 20)
    assert len(read) == 20 * 2  # two blocks a batch: the other 7 ranks' 140 blocks were planned, never read
    assert sum(read) + len(read) == sum(int(b["input_ids"].numel()) for b in batches)  # + one <s> a block


# ------------------------------------------------------------------------------------------------ shuffling
def write_skewed_corpus(directory: Path) -> None:
    """uk: one document holding ~90% of the language's text; the others: many small documents."""
    rng = np.random.default_rng(0)
    words = {lang: [f"{lang}{i}" for i in range(40)] for lang in ("de", "en", "fr", "uk")}

    def paragraph(lang: str) -> str:
        return " ".join(rng.choice(words[lang], size=int(rng.integers(4, 12))))

    for lang in words:
        documents = [[paragraph(lang) for _ in range(3)] for _ in range(60)]
        if lang == "uk":
            documents = [[paragraph(lang) for _ in range(1600)]] + documents[:20]
        data = "".join("".join(p + "\n" for p in doc) + "\n" for doc in documents)
        (directory / f"{lang}.txt.xz").write_bytes(lzma.compress(data.encode(), format=lzma.FORMAT_XZ))


def test_batches_mix_languages_at_the_sampled_shares(tmp_path: Path, tokenizer_dir: Path) -> None:
    """The finding: batch b was blocks b·B … (b+1)·B−1 in stream order, so one long document filled dozens of batches
    with one language. Every block's language is now drawn from q, and windows of blocks are shuffled."""
    write_skewed_corpus(tmp_path)
    stream = make(tmp_path, tokenizer_dir, batch_size=16, seq_len=64, shuffle_blocks=256, alpha=0.5)
    batches = take(stream, 60)
    target = stream.target_probabilities
    shares = torch.stack([b["language_token_counts"].float() / b["language_token_counts"].sum() for b in batches])
    languages_per_batch = (shares > 0).sum(1).float().mean()
    assert languages_per_batch > 3.5  # the finding: 1.25
    assert shares.max(1).values.mean() < 0.6  # the finding: the top language held 95% of a batch
    mean = shares.mean(0)
    for i, lang in enumerate(stream.languages):
        assert abs(float(mean[i]) - target[lang]) < 0.06, (lang, float(mean[i]), target[lang])
    runs = [int(b["language_token_counts"][stream.languages.index("uk")] == b["language_token_counts"].sum())
            for b in batches]
    assert sum(runs) == 0  # no batch is all Ukrainian


# -------------------------------------------------------------------------------------------------- errors, CLI
def test_a_mismatched_tokenizer_or_unfinished_corpus_is_a_clear_error(tokenized: Path, tokenizer_dir: Path,
                                                                     tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    other = tmp_path / "other_tok"
    grown = AutoTokenizer.from_pretrained(tokenizer_dir)
    grown.add_tokens(["zzqq"])
    grown.save_pretrained(other)
    with pytest.raises(StreamError, match="was written with another tokenizer"):
        make(tokenized, other)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "manifest.json").write_text('{"format": "xlmr-hf-tokens", "version": 99}')
    with pytest.raises(TokenizedCorpusError, match="version 99"):
        make(unfinished, other)


def test_cli_tokenize_corpus_on_two_nodes_and_rerun(corpus: Path, tokenizer_dir: Path, tmp_path: Path,
                                                   tokenized: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "nodes"
    args = ["tokenize-corpus", "--corpus", str(corpus), "--tokenizer", str(tokenizer_dir), "--output", str(out),
            "--num-nodes", "2", "--seq-len", "40"]
    assert main([*args, "--node-rank", "1"]) == 0
    assert "left to other nodes" in capsys.readouterr().out
    assert not (out / "manifest.json").exists()
    assert main([*args, "--node-rank", "0"]) == 0
    assert "manifest:" in capsys.readouterr().out
    mine, theirs = json.loads((out / "manifest.json").read_text()), json.loads((tokenized / "manifest.json").read_text())
    for lang, row in theirs["languages"].items():
        assert {k: v for k, v in mine["languages"][lang].items() if k != "tokenize_seconds"} == {
            k: v for k, v in row.items() if k != "tokenize_seconds"}
        for part in row["parts"]:
            assert (out / lang / part).read_bytes() == (tokenized / lang / part).read_bytes()
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/*.arrow")}
    assert main([*args, "--node-rank", "0"]) == 0  # a rerun keeps finished parts
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.arrow")} == before
    assert main(["tokenize-corpus", "--corpus", str(corpus), "--tokenizer", str(tokenizer_dir), "--output",
                 str(corpus)]) == 2
    assert "is not empty and was not written with this tokenizer" in capsys.readouterr().err
