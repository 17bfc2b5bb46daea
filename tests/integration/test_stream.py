"""The pretraining stream end to end: tokenizer fast path, batches, no document lost or repeated, exact resume in a new
process, DataLoader worker and world-size invariance, accounting, schedules and bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import numpy as np
import pytest
import torch
from fixtures.tiny_tokenizer import build_tiny_tokenizer
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from xlmr_hf.data import (
    CC100Error,
    DocumentReader,
    PretrainingStream,
    SamplerError,
    StreamError,
    TokenEncoder,
    iter_cc100_documents,
)

SIZES = {"en": 30000, "fr": 9000, "sw": 2500, "de": 6000}  # bytes written per language


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cc100")
    text.write_cc100_corpus(directory, SIZES, seed=3)
    return directory


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tok")
    build_tiny_tokenizer(directory)
    return directory


def make(corpus: Path, tokenizer_dir: Path, **overrides):
    kwargs = {"seq_len": 48, "batch_size": 2, "sizes": SIZES, "seed": 11, "shuffle_blocks": 24}
    kwargs.update(overrides)
    return PretrainingStream(corpus, str(tokenizer_dir), **kwargs)


def digest(batch: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(batch):
        h.update(key.encode())
        h.update(batch[key].numpy().tobytes())
        h.update(str(tuple(batch[key].shape)).encode())
    return h.hexdigest()


def take(iterable, n: int) -> list[dict[str, torch.Tensor]]:
    out: list[dict[str, torch.Tensor]] = []
    if n == 0:
        return out
    for batch in iterable:
        out.append(batch)
        if len(out) == n:
            break
    return out


def originals(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])


# ------------------------------------------------------------------------------------------------- tokenization
def test_sentencepiece_fast_path_matches_hf_tokenizer(tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    fast = TokenEncoder(tokenizer)
    assert fast.fast
    paragraphs = [s for lang in ("en", "fr", "de", "sw", "zh", "ar") for s in text.PARALLEL[lang][:6]] + ["  x  y ", "é"]
    expected = tokenizer(paragraphs, add_special_tokens=False)["input_ids"]
    assert [ids.tolist() for ids in fast.encode(paragraphs)] == expected
    (tokenizer_dir / "hf_only").mkdir(exist_ok=True)
    tokenizer.save_pretrained(tokenizer_dir / "hf_only")
    slow = TokenEncoder(AutoTokenizer.from_pretrained(tokenizer_dir / "hf_only"))
    assert not slow.fast
    assert [ids.tolist() for ids in slow.encode(paragraphs)] == expected


# ------------------------------------------------------------------------------------------------------ batches
def test_batches_are_masked_packed_blocks(corpus: Path, tokenizer_dir: Path) -> None:
    stream = make(corpus, tokenizer_dir, return_language_counts=True, pad_to_seq_len=True)
    mask_id = stream.tokenizer.mask_token_id
    specials = set(stream.tokenizer.all_special_ids)
    selected = candidates = 0
    for batch in take(stream, 50):
        assert batch["input_ids"].shape == (2, 48) and batch["attention_mask"].shape == (2, 48)
        assert (batch["input_ids"][:, 0] == 0).all()
        real = batch["attention_mask"].bool()
        assert (batch["input_ids"][~real] == 1).all() and (batch["labels"][~real] == -100).all()
        labels = batch["labels"][batch["labels"] != -100]
        assert not set(labels.tolist()) & specials
        orig = originals(batch)
        candidates += int((real & ~torch.isin(orig, torch.tensor(sorted(specials)))).sum())
        selected += len(labels)
        assert int(batch["language_token_counts"].sum()) == int(real.sum())
        assert set(batch["input_ids"][real].tolist()) <= set(range(len(stream.tokenizer)))
        assert mask_id in batch["input_ids"].tolist()[0] + batch["input_ids"].tolist()[1] or len(labels) < 3
    assert abs(selected / candidates - 0.15) < 0.02


def test_no_document_lost_or_repeated(corpus: Path, tokenizer_dir: Path) -> None:
    """One language, packing `complete`, no shuffling: the stream's unmasked tokens are exactly the documents in file
    order."""
    stream = make(corpus, tokenizer_dir, languages=["fr"], sizes={"fr": 1}, padding_free=True, shuffle_blocks=1)
    tokens: list[int] = []
    for batch in take(stream, 40):
        orig = originals(batch)[0]
        starts = batch["cu_seqlens"].tolist()
        tokens.extend(t for t in orig.tolist())
        assert starts[0] == 0 and starts[-1] == orig.numel()
    stream_tokens = [t for t in tokens if t != 0]  # drop the <s> of each block
    encoder = TokenEncoder(stream.tokenizer)
    expected: list[int] = []
    for document in iter_cc100_documents(corpus / "fr.txt.xz"):
        for ids in encoder.encode(document.split("\n")):
            expected.extend([*ids.tolist(), 2])
        if len(expected) > len(stream_tokens):
            break
    assert stream_tokens == expected[: len(stream_tokens)]


def test_complete_doc_blocks_hold_one_document(corpus: Path, tokenizer_dir: Path) -> None:
    stream = make(corpus, tokenizer_dir, packing="complete_doc", padding_free=True)
    for batch in take(stream, 30):
        assert batch["cu_seqlens"].numel() == 3  # two blocks, each one segment


def test_language_ids_per_token(corpus: Path, tokenizer_dir: Path) -> None:
    ids = {"de": 0, "en": 1, "fr": 2, "sw": 3}
    stream = make(corpus, tokenizer_dir, language_ids=ids, padding_free=True, return_language_counts=True)
    for batch in take(stream, 20):
        counts = torch.bincount(batch["language_ids"][0], minlength=4)
        assert counts.tolist() == batch["language_token_counts"].tolist()


def test_whole_word_masking_selects_whole_words(corpus: Path, tokenizer_dir: Path) -> None:
    from xlmr_hf.tokenization import word_ids, word_start_mask

    stream = make(corpus, tokenizer_dir, whole_word=True, padding_free=True)
    starts = word_start_mask(stream.tokenizer)
    specials = np.array(stream.tokenizer.all_special_ids)
    partial_words = selected_words = 0
    for batch in take(stream, 40):
        orig = originals(batch)[0].numpy()
        selected = (batch["labels"][0] != -100).numpy()
        words = word_ids(orig, starts)
        for word in np.unique(words[selected]):
            if np.isin(orig[words == word], specials).any():  # e.g. "<unk>" + a piece: the piece is its own word
                continue
            members = selected[words == word]
            selected_words += 1
            partial_words += not members.all()
    assert selected_words > 100 and partial_words == 0


def test_caps_end_the_stream_after_one_pass(corpus: Path, tokenizer_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    counts = {lang: sum(1 for _ in iter_cc100_documents(corpus / f"{lang}.txt.xz")) for lang in SIZES}
    stream = make(corpus, tokenizer_dir, unit="documents", sizes=counts, caps=1.0)
    batches = list(stream)
    accounting = stream.accounting()
    assert {lang: row["documents"] for lang, row in accounting.items()} == counts  # each document exactly once
    assert all(blocks.epoch == 1 for blocks in stream.blocks)  # each language's cursor at the end of its one pass
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    packed = sum(row["tokens"] for row in accounting.values())  # every block's tokens, its <s> included
    assert real + stream.dropped_tokens == packed  # every consumed token is in a batch or counted as dropped
    assert stream.dropped_blocks < 4  # at most one global batch short
    assert any("every language reached its cap" in r.message for r in caplog.records) == (stream.dropped_blocks > 0)


# ------------------------------------------------------------------------------------------------------- resume
_RESUME_SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    sys.path.insert(0, sys.argv[4])
    from test_stream import make, digest, take
    from pathlib import Path
    stream = make(Path(sys.argv[1]), Path(sys.argv[2]))
    stream.load_state_dict(json.loads(Path(sys.argv[3]).read_text()))
    print(json.dumps([digest(b) for b in take(stream, int(sys.argv[5]))]))
""")


def test_resume_in_new_process_gives_next_1000_batches(corpus: Path, tokenizer_dir: Path, tmp_path: Path) -> None:
    stop = int(np.random.default_rng(2026).integers(5, 60))
    reference = [digest(b) for b in take(make(corpus, tokenizer_dir), stop + 1000)]
    stream = make(corpus, tokenizer_dir)
    assert [digest(b) for b in take(stream, stop)] == reference[:stop]
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(stream.state_dict()))
    tests_dir = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", _RESUME_SCRIPT, str(corpus), str(tokenizer_dir), str(state_file),
         str(Path(__file__).parent), "1000"],
        check=False, capture_output=True, text=True, cwd=tests_dir, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == reference[stop:]


def test_resume_in_process_after_json_round_trip_many_points(corpus: Path, tokenizer_dir: Path) -> None:
    kwargs = {"padding_free": True, "packing": "complete_doc", "masking": "bernoulli", "alpha": 0.7}
    reference = [digest(b) for b in take(make(corpus, tokenizer_dir, **kwargs), 80)]
    for stop in (0, 1, 7, 33):
        stream = make(corpus, tokenizer_dir, **kwargs)
        take(stream, stop)
        restored = make(corpus, tokenizer_dir, **kwargs)
        restored.load_state_dict(json.loads(json.dumps(stream.state_dict())))
        assert [digest(b) for b in take(restored, 80 - stop)] == reference[stop:]


def test_state_mismatch_is_a_clear_error(corpus: Path, tokenizer_dir: Path) -> None:
    state = make(corpus, tokenizer_dir).state_dict()
    with pytest.raises(StreamError, match=r"state.config differs from this stream in \['seq_len'\]"):
        make(corpus, tokenizer_dir, seq_len=64).load_state_dict(state)
    with pytest.raises(StreamError, match="state.version must be 2"):
        make(corpus, tokenizer_dir).load_state_dict({"version": 7})


# ---------------------------------------------------------------------------------------------- process layout
@pytest.mark.parametrize("loader_cls", [DataLoader, StatefulDataLoader])
def test_same_batches_for_0_1_2_workers(corpus: Path, tokenizer_dir: Path, loader_cls: type) -> None:
    reference = [digest(b) for b in take(make(corpus, tokenizer_dir), 24)]
    for workers in (1, 2):
        loader = loader_cls(make(corpus, tokenizer_dir), batch_size=None, num_workers=workers)
        assert [digest(b) for b in take(loader, 24)] == reference, workers


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resume(corpus: Path, tokenizer_dir: Path, workers: int) -> None:
    reference = [digest(b) for b in take(make(corpus, tokenizer_dir), 30)]
    loader = StatefulDataLoader(make(corpus, tokenizer_dir), batch_size=None, num_workers=workers)
    it = iter(loader)
    assert [digest(next(it)) for _ in range(13)] == reference[:13]
    state = json.loads(json.dumps(loader.state_dict()))
    del it, loader
    resumed = StatefulDataLoader(make(corpus, tokenizer_dir), batch_size=None, num_workers=workers)
    resumed.load_state_dict(state)
    assert [digest(b) for b in take(resumed, 17)] == reference[13:]


def test_ranks_take_slices_of_the_global_batch(corpus: Path, tokenizer_dir: Path) -> None:
    kwargs = {"pad_to_seq_len": True}
    single = take(make(corpus, tokenizer_dir, batch_size=4, **kwargs), 20)
    ranks = [take(make(corpus, tokenizer_dir, batch_size=2, world_size=2, rank=r, **kwargs), 20) for r in (0, 1)]
    for step, whole in enumerate(single):
        for key, value in whole.items():
            assert torch.equal(value, torch.cat([ranks[0][step][key], ranks[1][step][key]])), (step, key)


# -------------------------------------------------------------------------------------------- accounting, schedules
def test_accounting_tracks_targets(corpus: Path, tokenizer_dir: Path) -> None:
    """The language of every block is drawn from q: realized block and token shares follow the targets."""
    stream = make(corpus, tokenizer_dir, unit="documents", sizes={"de": 100, "en": 1000, "fr": 300, "sw": 30})
    take(stream, 300)
    accounting = stream.accounting()
    draws = sum(row["draws"] for row in accounting.values())
    assert draws == stream.sampler.position >= 600  # one draw per block (planning runs ahead by < one window)
    for lang, row in accounting.items():
        assert row["target"] == pytest.approx(stream.target_probabilities[lang])
        assert abs(row["draws"] / draws - row["target"]) < 0.06, lang
        assert abs(row["share"] - row["target"]) < 0.06, lang
    logged = stream.log_dict()
    assert logged["data/batches"] == 300.0 and "data/share/en" in logged and "data/target/sw" in logged


def test_mask_rate_schedule_by_consumed_tokens(corpus: Path, tokenizer_dir: Path) -> None:
    schedule = {"type": "phases", "phases": [{"until": 3000, "rate": 0.30}, {"rate": 0.05}]}
    stream = make(corpus, tokenizer_dir, mask_rate=schedule)
    early = take(stream, 12)  # < 2 x 48 tokens per batch: well before 3000 consumed tokens
    take(stream, 30)
    late = take(stream, 60)

    def share(batches: list) -> float:
        selected = sum(int((b["labels"] != -100).sum()) for b in batches)
        real = sum(int((originals(b) > 3).sum()) for b in batches)
        return selected / real

    assert stream.sampler.consumed_tokens > 3000
    assert 0.25 < share(early) < 0.35 and 0.03 < share(late) < 0.07


# -------------------------------------------------------------------------------------------------- bad input
def test_bad_settings_are_clear_errors(corpus: Path, tokenizer_dir: Path) -> None:
    with pytest.raises(StreamError, match=r"tokenizer's vocabulary \(\d+ ids\) is larger than the model's vocab_size=99"):
        make(corpus, tokenizer_dir, model_vocab_size=99)
    with pytest.raises(SamplerError, match=r"alpha must be in \(0, 1\]"):
        make(corpus, tokenizer_dir, alpha=0)
    with pytest.raises(SamplerError, match=r"alpha must be in \(0, 1\]"):
        make(corpus, tokenizer_dir, alpha=1.5)
    with pytest.raises(SamplerError, match="at least one positive size"):
        make(corpus, tokenizer_dir, sizes=dict.fromkeys(SIZES, 0))
    with pytest.raises(SamplerError, match="xx"):
        make(corpus, tokenizer_dir, schedule={"type": "phases", "phases": [{"alpha": 0.3, "languages": ["en", "xx"]}]})
    with pytest.raises(StreamError, match=r"sizes must name exactly the corpus languages .*\['sw'\] have no size"):
        make(corpus, tokenizer_dir, sizes={"de": 1, "en": 1, "fr": 1})
    with pytest.raises(StreamError, match="sizes must be given when unit='tokens'"):
        make(corpus, tokenizer_dir, sizes=None, unit="tokens")
    with pytest.raises(StreamError, match=r"rank must be an integer in \[0, world_size=2\), got 2"):
        make(corpus, tokenizer_dir, world_size=2, rank=2)
    with pytest.raises(StreamError, match="packing must be one of"):
        make(corpus, tokenizer_dir, packing="none")
    with pytest.raises(StreamError, match=r"language_ids has no id for language\(s\) \['sw'\]"):
        make(corpus, tokenizer_dir, language_ids={"de": 0, "en": 1, "fr": 2})
    with pytest.raises(CC100Error, match="not an existing directory"):
        make(corpus / "missing", tokenizer_dir)


def test_default_sizes_are_counted_from_the_corpus(corpus: Path, tokenizer_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    stream = make(corpus, tokenizer_dir, sizes=None, unit="documents")
    expected = {lang: sum(1 for _ in iter_cc100_documents(corpus / f"{lang}.txt.xz")) for lang in SIZES}
    assert stream.sampler.sizes == {lang: float(n) for lang, n in sorted(expected.items())}


def test_reader_used_by_the_stream_is_exported() -> None:
    assert DocumentReader.__module__ == "xlmr_hf.data.docreader"
