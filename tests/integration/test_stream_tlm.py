# ruff: noqa: F811 - the corpus and tokenizer_dir fixtures come from test_stream and are requested by name
"""Translation-LM batches inside the pretraining stream: the parallel corpus reader, the TLM/MLM decision per global
batch (the same for every worker count and world size), the example layout, exact resume across TLM batches, the
schedule clock, and a tiny model trained on mixed batches."""

from __future__ import annotations

import json
import logging
import lzma
from pathlib import Path

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import numpy as np
import pytest
import torch
from test_stream import (  # noqa: F401 - the stream tests' corpus and tokenizer fixtures, batch hash and take
    SIZES,
    corpus,
    digest,
    take,
    tokenizer_dir,
)
from torch.utils.data import DataLoader

from xlmr_hf.data import (
    PretrainingStream,
    StreamError,
    TokenEncoder,
    parallel_sentences,
)
from xlmr_hf.data.parallel import (
    TLM_MASK_INDEX_OFFSET,
    ParallelCorpusError,
    read_parallel_corpus,
    write_parallel_corpus,
)

LANGUAGE_IDS = {"de": 0, "en": 1, "fr": 2, "sw": 3}
PAIRS = (("en", "fr"), ("de", "en"), ("fr", "sw"))


@pytest.fixture(scope="module")
def parallel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("parallel")
    write_parallel_corpus({(a, b): list(zip(text.PARALLEL[a], text.PARALLEL[b])) for a, b in PAIRS}, directory)
    return directory


def make(corpus: Path, tokenizer_dir: Path, **overrides) -> PretrainingStream:
    kwargs = {"seq_len": 48, "batch_size": 2, "sizes": SIZES, "seed": 11, "shuffle_blocks": 24,
              "parallel_corpus": "default", "tlm_ratio": 0.4}
    kwargs.update(overrides)
    return PretrainingStream(corpus, str(tokenizer_dir), **kwargs)


def is_tlm(batch: dict[str, torch.Tensor]) -> bool:
    return "attention_mask" not in batch and batch["input_ids"].shape[0] > 1  # padded batches only in these tests


def originals(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])


# ------------------------------------------------------------------------------------------------ parallel reader
def test_default_parallel_corpus_pairs_every_two_stream_languages() -> None:
    corpus = read_parallel_corpus("default", ["sw", "en", "xx", "fr"])
    assert corpus.pairs == [("en", "fr"), ("en", "sw"), ("fr", "sw")]
    table = parallel_sentences(["en", "fr", "sw"])
    assert corpus.counts() == {"en-fr": 200, "en-sw": 200, "fr-sw": 200}
    assert corpus.sentences[200] == (1, table["en"][0], table["sw"][0]) and not corpus.skipped


def test_reader_counts_and_reports_bad_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_parallel_corpus({("de", "en"): [("Hallo Welt.", "Hello world.")]}, tmp_path, compress=True)
    lines = ["one\tun\n", "no tab here\n", "\n", "  \tvide\n", "deux\t\n", "a\tb\tc\n", " trois \t trois \n"]
    (tmp_path / "en-fr.tsv").write_text("".join(lines), encoding="utf-8")
    (tmp_path / "README.txt").write_text("not a pair file")
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.data.parallel"):
        corpus = read_parallel_corpus(tmp_path, ["de", "en", "fr"])
    assert corpus.pairs == [("de", "en"), ("en", "fr")]
    assert corpus.sentences == [(0, "Hallo Welt.", "Hello world."), (1, "one", "un"), (1, "trois", "trois")]
    assert corpus.skipped == {str(tmp_path / "en-fr.tsv"): 5}
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "en-fr.tsv" in warned[0] and "skipped 5 bad line(s)" in warned[0]
    assert "the first is line 2" in warned[0]
    with lzma.open(tmp_path / "de-en.tsv.xz", "rt", encoding="utf-8") as handle:
        assert handle.read() == "Hallo Welt.\tHello world.\n"
    assert read_parallel_corpus(tmp_path, ["en", "fr"]).pairs == [("en", "fr")]  # restricted to the languages


def test_language_codes_with_a_hyphen(tmp_path: Path) -> None:
    write_parallel_corpus({("zh-Hans", "en"): [("你好", "hello")]}, tmp_path)
    assert read_parallel_corpus(tmp_path, ["en", "zh-Hans"]).pairs == [("zh-Hans", "en")]
    with pytest.raises(ParallelCorpusError, match="ambiguous pair 'zh-Hans-en'"):
        read_parallel_corpus(tmp_path)


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(ParallelCorpusError, match=r"parallel_corpus='.*missing' is not a directory holding "
                                                  r"<l1>-<l2>\.tsv or <l1>-<l2>\.tsv\.xz files \(e\.g\. en-fr\.tsv\)"):
        read_parallel_corpus(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParallelCorpusError, match="is not a directory holding"):
        read_parallel_corpus(tmp_path / "empty")
    write_parallel_corpus({("en", "ja"): [("hello", "こんにちは")]}, tmp_path / "other")
    with pytest.raises(ParallelCorpusError, match=r"stream's languages \['de', 'en'\]; it has the pairs \['en-ja'\]"):
        read_parallel_corpus(tmp_path / "other", ["en", "de"])
    with pytest.raises(ParallelCorpusError, match=r"parallel_corpus='default' has no sentence pair .* \['fr'\]"):
        read_parallel_corpus("default", ["fr"])
    write_parallel_corpus({("en", "ja"): [("hello", "こんにちは")]}, tmp_path / "other", compress=True)
    with pytest.raises(ParallelCorpusError, match=r"holds the pair 'en-ja' twice \(en-ja.tsv and en-ja.tsv.xz\)"):
        read_parallel_corpus(tmp_path / "other")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "en-fr.tsv").write_text("no tab\n")
    with pytest.raises(ParallelCorpusError, match=r"no valid sentence pair in \['en-fr.tsv'\]"):
        read_parallel_corpus(tmp_path / "bad")
    with pytest.raises(ParallelCorpusError, match=r"pairs\[\('en', 'fr'\)\]\[0\] must be two non-empty texts"):
        write_parallel_corpus({("en", "fr"): [("a\tb", "c")]}, tmp_path / "w")


def test_stream_tlm_settings_errors(corpus: Path, tokenizer_dir: Path, parallel_dir: Path) -> None:
    for bad in (-0.1, 1.5, "0.5", True, float("nan")):
        with pytest.raises(StreamError, match=r"tlm_ratio must be a number in \[0, 1\]"):
            make(corpus, tokenizer_dir, tlm_ratio=bad)
    with pytest.raises(StreamError, match=r"tlm_ratio=0.4 needs parallel_corpus \('default' or a directory"):
        make(corpus, tokenizer_dir, parallel_corpus=None)
    with pytest.raises(StreamError, match="seq_len must be >= 6 with tlm_ratio > 0"):
        make(corpus, tokenizer_dir, seq_len=5)
    with pytest.raises(ParallelCorpusError, match=r"it has the pairs \['de-en', 'en-fr', 'fr-sw'\]"):
        make(corpus, tokenizer_dir, parallel_corpus=parallel_dir, languages=["de", "sw"], sizes={"de": 1, "sw": 1})
    state = make(corpus, tokenizer_dir, tlm_ratio=0.0).state_dict()
    with pytest.raises(StreamError, match=r"differs from this stream in \['parallel_pairs', 'tlm_ratio'\]"):
        make(corpus, tokenizer_dir).load_state_dict(state)
    with pytest.raises(StreamError, match=r"differs from this stream in \['parallel_pairs', 'tlm_ratio'\]"):
        make(corpus, tokenizer_dir, tlm_ratio=0.0).load_state_dict(make(corpus, tokenizer_dir).state_dict())


# ------------------------------------------------------------------------------------------------ the decision
def test_tlm_share_follows_the_ratio_and_batches_follow_the_decision(corpus: Path, tokenizer_dir: Path) -> None:
    stream = make(corpus, tokenizer_dir, tlm_ratio=0.3)
    decisions = [stream._tlm.is_tlm(b) for b in range(3000)]
    assert abs(np.mean(decisions) - 0.3) < 0.03
    batches = take(stream, 80)
    assert [is_tlm(b) for b in batches] == decisions[:80]
    assert stream.tlm_batches == sum(decisions[:80]) and stream.batches == 80
    assert stream.log_dict()["data/tlm_batches"] == float(sum(decisions[:80]))
    assert stream.log_dict()["data/blocks"] == float(2 * (80 - sum(decisions[:80])))
    every = make(corpus, tokenizer_dir, tlm_ratio=1.0)
    assert all(is_tlm(b) for b in take(every, 10)) and every.sampler.position == 0  # no MLM block planned


def test_tlm_ratio_zero_is_the_mlm_stream_bit_for_bit(corpus: Path, tokenizer_dir: Path) -> None:
    for extra in ({}, {"return_language_counts": True, "padding_free": True}):
        plain = PretrainingStream(corpus, str(tokenizer_dir), seq_len=48, batch_size=2, sizes=SIZES, seed=11,
                                  shuffle_blocks=24, **extra)
        zero = make(corpus, tokenizer_dir, tlm_ratio=0.0, **extra)
        assert [digest(b) for b in take(zero, 40)] == [digest(b) for b in take(plain, 40)]
        assert zero.state_dict() == plain.state_dict()


def test_mlm_batches_are_the_mlm_stream_with_tlm_batches_inserted(corpus: Path, tokenizer_dir: Path) -> None:
    mixed = take(make(corpus, tokenizer_dir, return_language_counts=True), 60)
    mlm = [b for b in mixed if not is_tlm(b)]
    plain = take(make(corpus, tokenizer_dir, tlm_ratio=0.0, return_language_counts=True), len(mlm))
    assert [digest({k: v for k, v in b.items() if k != "stream_clock"}) for b in mlm] == \
        [digest({k: v for k, v in b.items() if k != "stream_clock"}) for b in plain]


def test_same_batches_for_0_1_2_workers(corpus: Path, tokenizer_dir: Path) -> None:
    kwargs = {"return_language_counts": True, "language_ids": LANGUAGE_IDS}
    reference = [digest(b) for b in take(make(corpus, tokenizer_dir, **kwargs), 30)]
    for workers in (1, 2):
        loader = DataLoader(make(corpus, tokenizer_dir, **kwargs), batch_size=None, num_workers=workers)
        assert [digest(b) for b in take(loader, 30)] == reference, workers


def test_ranks_take_slices_of_the_global_batch(corpus: Path, tokenizer_dir: Path) -> None:
    kwargs = {"pad_to_seq_len": True, "return_language_counts": True, "language_ids": LANGUAGE_IDS}
    single = take(make(corpus, tokenizer_dir, batch_size=4, **kwargs), 24)
    ranks = [take(make(corpus, tokenizer_dir, batch_size=2, world_size=2, rank=r, **kwargs), 24) for r in (0, 1)]
    assert 4 < sum(is_tlm(b) for b in single) < 20
    for step, whole in enumerate(single):
        parts = [ranks[0][step], ranks[1][step]]
        assert set(whole) == set(parts[0]) == set(parts[1]), step
        for key, value in whole.items():
            if key == "stream_clock":  # the clock of the global batch: every rank has it
                assert int(value) == int(parts[0][key]) == int(parts[1][key])
            elif key == "language_token_counts":
                assert torch.equal(value, parts[0][key] + parts[1][key])
            elif key == "cu_seqlens":
                shift = parts[0]["input_ids"].numel()
                assert value.tolist() == parts[0][key].tolist() + [shift + x for x in parts[1][key].tolist()[1:]]
            else:
                assert torch.equal(value, torch.cat([p[key] for p in parts])), (step, key)


# ------------------------------------------------------------------------------------------------ the examples
def test_tlm_rows_are_real_pairs(corpus: Path, tokenizer_dir: Path, parallel_dir: Path) -> None:
    stream = make(corpus, tokenizer_dir, seq_len=128, parallel_corpus=parallel_dir, tlm_ratio=0.5,
                  language_ids=LANGUAGE_IDS, return_language_counts=True)
    encoder = TokenEncoder(stream.tokenizer)
    expected = {}
    for a, b in PAIRS:
        for left, right in zip(text.PARALLEL[a], text.PARALLEL[b]):
            ids_a, ids_b = (tuple(x.tolist()) for x in encoder.encode([left, right]))
            expected[(ids_a, ids_b)] = (a, b)
            expected[(ids_b, ids_a)] = (b, a)
    seen, directions, masked = set(), set(), 0
    for batch in take(stream, 40):
        if not is_tlm(batch):
            continue
        assert set(batch) == {"input_ids", "position_ids", "language_ids", "labels", "cu_seqlens",
                              "language_token_counts", "stream_clock"}
        orig, width = originals(batch), batch["input_ids"].shape[1]
        bounds = batch["cu_seqlens"].tolist()
        counts = torch.zeros(4, dtype=torch.long)
        masked += int((batch["labels"] != -100).sum())
        for row in range(orig.shape[0]):
            n = min([b - row * width for b in bounds if b > row * width] + [width])
            ids, positions = orig[row, :n].tolist(), batch["position_ids"][row, :n].tolist()
            split = positions.index(2, 1)  # positions restart at pad + 1 = 2 for the target part
            assert positions == list(range(2, 2 + split)) + list(range(2, 2 + n - split))
            assert ids[0] == 0 and ids[split - 1] == 2 and ids[split] == 2 and ids[-1] == 2
            source, target = tuple(ids[1:split - 1]), tuple(ids[split + 1:-1])
            src_lang, tgt_lang = expected[(source, target)]  # a real pair of the corpus, in either direction
            languages = batch["language_ids"][row].tolist()
            assert languages == [LANGUAGE_IDS[src_lang]] * split + [LANGUAGE_IDS[tgt_lang]] * (width - split)
            assert (batch["input_ids"][row, n:] == 1).all() and (batch["labels"][row, n:] == -100).all()
            counts[LANGUAGE_IDS[src_lang]] += split
            counts[LANGUAGE_IDS[tgt_lang]] += n - split
            seen.add((source, target))
            directions.add((src_lang, tgt_lang))
        assert torch.equal(batch["language_token_counts"], counts)
    assert len(seen) > 10 and masked > 0
    assert {("en", "fr"), ("fr", "en")} <= directions  # both directions are drawn


def test_tlm_examples_cover_the_corpus_once_per_epoch(corpus: Path, tokenizer_dir: Path, parallel_dir: Path) -> None:
    tlm = make(corpus, tokenizer_dir, parallel_corpus=parallel_dir)._tlm
    epoch = tlm.examples(0, 36)
    stored = sorted((a, b, s, t) if (a, b) in PAIRS else (b, a, t, s) for a, b, s, t in epoch)
    assert stored == sorted((a, b, s, t) for a, b in PAIRS for s, t in zip(text.PARALLEL[a], text.PARALLEL[b]))
    assert 0 < sum((a, b) in PAIRS for a, b, _, _ in epoch) < 36  # both directions
    assert tlm.examples(36, 36) != epoch  # a new order each epoch
    assert TLM_MASK_INDEX_OFFSET > 2 ** 61  # MLM positions (the other masking indices) never get there


def test_tlm_without_language_ids_and_with_padding_free(corpus: Path, tokenizer_dir: Path) -> None:
    batches = take(make(corpus, tokenizer_dir, padding_free=True), 20)
    tlm = [b for b in batches if "attention_mask" not in b and b["input_ids"].shape[0] == 2]
    assert tlm and all(set(b) == {"input_ids", "position_ids", "labels", "cu_seqlens"} for b in tlm)
    mlm = [b for b in batches if b["input_ids"].shape[0] == 1]
    assert len(mlm) + len(tlm) == 20


def test_pretokenized_corpus_gives_the_same_mixed_batches(corpus: Path, tokenizer_dir: Path, tmp_path: Path) -> None:
    from xlmr_hf.data import tokenize_corpus

    tokenize_corpus(corpus, str(tokenizer_dir), tmp_path / "tok", workers=1, seq_lens=(48,))
    kwargs = {"return_language_counts": True, "language_ids": LANGUAGE_IDS}
    online = [digest(b) for b in take(make(corpus, tokenizer_dir, **kwargs), 30)]
    assert [digest(b) for b in take(make(tmp_path / "tok", tokenizer_dir, **kwargs), 30)] == online


def test_caps_end_the_mixed_stream(corpus: Path, tokenizer_dir: Path) -> None:
    stream = make(corpus, tokenizer_dir, unit="documents", sizes={"en": 40, "fr": 40}, caps=0.25,
                  languages=["en", "fr"], return_language_counts=True)
    batches = list(stream)  # ends when the MLM blocks end
    mlm = [b for b in batches if not is_tlm(b)]
    assert stream.tlm_batches == len(batches) - len(mlm) > 0 and not stream._tlm.is_tlm(len(batches))
    accounting = stream.accounting()
    assert all(row["documents"] >= 10 for row in accounting.values())
    real = sum(int(b["attention_mask"].sum()) for b in mlm)
    assert real + stream.dropped_tokens == sum(row["tokens"] for row in accounting.values())


# ------------------------------------------------------------------------------------------------------ resume
def test_exact_resume_across_tlm_batches(corpus: Path, tokenizer_dir: Path) -> None:
    kwargs = {"return_language_counts": True, "mask_rate": {"type": "linear", "start": 0.3, "end": 0.1,
                                                            "total": 4000}}
    reference = [digest(b) for b in take(make(corpus, tokenizer_dir, **kwargs), 50)]
    decisions = [make(corpus, tokenizer_dir)._tlm.is_tlm(b) for b in range(50)]
    first_tlm = decisions.index(True)
    after_tlm = next(b for b in range(1, 50) if decisions[b - 1] and not decisions[b])
    for stop in sorted({0, first_tlm, first_tlm + 1, after_tlm, 29}):
        stream = make(corpus, tokenizer_dir, **kwargs)
        take(stream, stop)
        state = json.loads(json.dumps(stream.state_dict()))
        assert state["tlm_batches"] == sum(decisions[:stop]) and state["clock"] == stream.stream_clock
        restored = make(corpus, tokenizer_dir, **kwargs)
        restored.load_state_dict(state)
        assert [digest(b) for b in take(restored, 50 - stop)] == reference[stop:], stop


def test_resume_with_another_worker_count(corpus: Path, tokenizer_dir: Path) -> None:
    from xlmr_hf.training.batches import BatchLoader

    kwargs = {"return_language_counts": True, "language_ids": LANGUAGE_IDS}
    reference = [digest(b) for b in take(make(corpus, tokenizer_dir, **kwargs), 30)]
    loader = BatchLoader(make(corpus, tokenizer_dir, **kwargs), num_workers=2, prefetch_factor=2, pin_memory=False,
                         seed=0)
    assert [digest(next(loader)) for _ in range(13)] == reference[:13]
    state = json.loads(json.dumps(loader.stream_state()))
    assert state["tlm_batches"] > 0
    for workers in (0, 1):
        resumed = BatchLoader(make(corpus, tokenizer_dir, **kwargs), num_workers=workers, prefetch_factor=2,
                              pin_memory=False, seed=0)
        resumed.load_stream_state(state)
        assert [digest(next(resumed)) for _ in range(17)] == reference[13:], workers


# ------------------------------------------------------------------------------------------------- the clock
def test_stream_clock_and_schedule_values(corpus: Path, tokenizer_dir: Path) -> None:
    schedule = {"type": "phases", "phases": [{"until": 2000, "rate": 0.3}, {"rate": 0.05}]}
    stream = make(corpus, tokenizer_dir, shuffle_blocks=1, mask_rate=schedule, return_language_counts=True,
                  alpha=0.5, schedule={"type": "linear", "start": 0.7, "end": 0.3, "total": 4000})
    planned, clocks, shares = 0, [], {True: [], False: []}
    for batch in take(stream, 100):
        clock = int(batch["stream_clock"])
        assert batch["stream_clock"].dtype == torch.int64 and batch["stream_clock"].dim() == 0
        if not is_tlm(batch):
            planned += int(batch["attention_mask"].sum())  # no shuffling: the clock is the tokens so far
        assert clock == planned
        clocks.append(clock)
        if is_tlm(batch):
            real = (originals(batch) > 3).sum()
            shares[clock < 2000].append(float((batch["labels"] != -100).sum() / real))
    assert clocks == sorted(clocks) and clocks[-1] > 4000
    assert stream.stream_clock == clocks[-1]
    assert min(shares[True]) > 0.2 and max(shares[False]) < 0.12  # TLM batches are masked at the clock's rate
    for clock in (0, 1999, 2000, 3000, 10**6):
        values = stream.schedule_values(clock)
        assert values == {"alpha": stream.sampler.alpha_at(clock), "mask_rate": stream.masker.rate_at(clock)}
    assert stream.schedule_values(0)["alpha"] == pytest.approx(0.7)
    assert stream.schedule_values(10**6) == {"alpha": pytest.approx(0.3), "mask_rate": 0.05}
    shuffled = take(make(corpus, tokenizer_dir, return_language_counts=True), 40)
    values = [int(b["stream_clock"]) for b in shuffled]
    assert values == sorted(values) and values[-1] > values[0]  # a running maximum, also with shuffle windows


# --------------------------------------------------------------------------------------------------- the model
@pytest.mark.parametrize("padding_free", [False, True])
def test_tiny_model_trains_on_mixed_batches(corpus: Path, tokenizer_dir: Path, padding_free: bool) -> None:
    from xlmr_hf.models import XLMRobertaConfig, XLMRobertaForMaskedLM

    stream = make(corpus, tokenizer_dir, language_ids=LANGUAGE_IDS, padding_free=padding_free,
                  return_language_counts=True)
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(stream.tokenizer), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
                              use_language_embeddings=True, n_langs=4, hidden_dropout_prob=0.0,
                              attention_probs_dropout_prob=0.0)
    model = XLMRobertaForMaskedLM(config)
    kinds = set()
    for batch in take(stream, 12):
        batch.pop("language_token_counts")
        batch.pop("stream_clock")
        kinds.add(is_tlm(batch))
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        assert torch.isfinite(loss)
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
        assert model.roberta.embeddings.language_embeddings.weight.grad.abs().sum() > 0
    assert kinds == {True, False}
    model.eval()
    tlm = next(b for b in take(make(corpus, tokenizer_dir, language_ids=LANGUAGE_IDS), 12) if is_tlm(b))
    with torch.no_grad():
        whole = model(**{k: v for k, v in tlm.items() if k != "labels"}).logits
        for row in range(2):  # each row attends only to itself: the same logits as the row alone
            n = int((tlm["input_ids"][row] != 1).sum())
            alone = {k: tlm[k][row:row + 1, :n] for k in ("input_ids", "position_ids", "language_ids")}
            logits = model(**alone, cu_seqlens=torch.tensor([0, n], dtype=torch.int32)).logits
            torch.testing.assert_close(whole[row, :n], logits[0], atol=1e-5, rtol=1e-4)
