"""MLM masking (`xlmr_hf.data.masking`): counts, 80/10/10 shares, exclusions, whole-word units, determinism, rate
schedules, validation, and TLM examples/batches run through the tiny model.

Statistical tests use fixed seeds and 4-sigma bounds computed from the exact distribution of the statistic, so they
are deterministic and fail only if the implementation is wrong.
"""

from __future__ import annotations

import json
import math

import fixtures.tiny_tokenizer as tiny  # tests/ is on sys.path via tests/conftest.py
import numpy as np
import pytest
import torch
from conftest import max_abs_diff, randomize_parameters_, tiny_config_kwargs

from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM
from xlmr_hf.data.masking import (
    MASK_SCHEDULE_TYPES,
    MASKING_MODES,
    Masker,
    MaskingError,
    MaskRateSchedule,
    collate_tlm,
    tlm_example,
)
from xlmr_hf.tokenization import word_ids, word_start_mask

VOCAB = 100
MASK_ID = VOCAB - 1
SPECIALS = [0, 1, 2, 3, MASK_ID]  # <s>, <pad>, </s>, <unk>, <mask>
POOL = np.arange(4, MASK_ID)  # the ids a random replacement may take
N_BLOCKS, BLOCK = 2000, 128


def make_masker(**kwargs) -> Masker:
    return Masker(vocab_size=VOCAB, mask_token_id=MASK_ID, special_token_ids=SPECIALS, pad_token_id=1, **kwargs)


def make_block(i: int, length: int = BLOCK) -> np.ndarray:
    """Ordinary ids with ~10% specials sprinkled in and, for odd i, a trailing padding run of varying length."""
    rng = np.random.default_rng([1234, i])
    ids = rng.integers(4, MASK_ID, length)
    specials = rng.random(length) < 0.1
    ids[specials] = rng.choice(SPECIALS, specials.sum())
    if i % 2:
        ids[length - 1 - i % 37:] = 1
    return ids


BLOCKS = [make_block(i) for i in range(N_BLOCKS)]
WORD_STARTS = np.random.default_rng(99).random(VOCAB) < 0.55
WORD_STARTS[SPECIALS] = True


def is_candidate(ids: np.ndarray) -> np.ndarray:
    return ~np.isin(ids, SPECIALS)


def reference_words(ids: np.ndarray, starts: np.ndarray) -> list[list[int]]:
    """The documented word rule, token by token: a word begins at a word-start candidate, at a candidate after a
    non-candidate or at position 0, and runs over the following non-start candidates."""
    words: list[list[int]] = []
    current: list[int] | None = None
    for position, token in enumerate(ids.tolist()):
        if token in SPECIALS:
            current = None
            continue
        if current is None or starts[token]:
            current = [position]
            words.append(current)
        else:
            current.append(position)
    return words


def within(count: float, expected: float, variance: float, sigmas: float = 4.0) -> bool:
    return abs(count - expected) <= sigmas * math.sqrt(variance) + 1e-9


# ---------------------------------------------------------------------------------------------------- counts
@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_exact_mode_count_is_floor_or_ceil_and_unbiased(rate: float) -> None:
    masker = make_masker(rate=rate)
    total, expected, variance = 0, 0.0, 0.0
    for index, ids in enumerate(BLOCKS):
        _, labels = masker.mask(ids, index)
        n = int((labels != -100).sum())
        target = rate * int(is_candidate(ids).sum())
        assert n in (math.floor(target), math.ceil(target)), (index, n, target)
        frac = target - math.floor(target)
        total, expected, variance = total + n, expected + target, variance + frac * (1 - frac)
    assert within(total, expected, variance), (total, expected, variance)


def test_bernoulli_mode_mean_and_spread() -> None:
    rate = 0.15
    masker = make_masker(rate=rate, mode="bernoulli")
    counts, candidates = [], []
    for index, ids in enumerate(BLOCKS):
        _, labels = masker.mask(ids, index)
        counts.append(int((labels != -100).sum()))
        candidates.append(int(is_candidate(ids).sum()))
    counts_arr, m = np.array(counts), np.array(candidates)
    assert within(counts_arr.sum(), rate * m.sum(), rate * (1 - rate) * m.sum())
    # Binomial spread, unlike exact mode's floor/ceil: the variance of (count - rate*m) is rate(1-rate) m on average.
    residual_var = float(np.mean((counts_arr - rate * m) ** 2))
    assert 0.8 < residual_var / (rate * (1 - rate) * m.mean()) < 1.2
    off_by_more_than_one = np.abs(counts_arr - rate * m) > 1
    assert off_by_more_than_one.sum() > N_BLOCKS // 4


@pytest.mark.parametrize("mode", MASKING_MODES)
@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.5, 0.3), (1.0, 0.0), (0.0, 1.0)])
def test_replacement_shares_exclusions_and_labels(mode: str, fractions: tuple[float, float]) -> None:
    mask_fraction, random_fraction = fractions
    masker = make_masker(rate=0.2, mode=mode, mask_fraction=mask_fraction, random_fraction=random_fraction)
    n_selected = n_mask = n_changed = 0
    replacements = []
    for index, ids in enumerate(BLOCKS):
        masked, labels = masker.mask(ids, index)
        assert masked.dtype == np.int64 and labels.dtype == np.int64 and masked.shape == ids.shape
        selected = labels != -100
        assert not selected[~is_candidate(ids)].any()  # never a special / pad / mask position
        np.testing.assert_array_equal(labels[selected], ids[selected])
        np.testing.assert_array_equal(masked[~selected], ids[~selected])
        is_mask = masked[selected] == MASK_ID
        changed = ~is_mask & (masked[selected] != ids[selected])
        assert np.isin(masked[selected][changed], POOL).all()  # random ids never special, never <mask>, never pad
        n_selected += int(selected.sum())
        n_mask += int(is_mask.sum())
        n_changed += int(changed.sum())
        replacements.append(masked[selected][~is_mask])
    # A random replacement equals the original with probability 1/len(POOL) (originals are always in POOL).
    p_mask, p_changed = mask_fraction, random_fraction * (1 - 1 / len(POOL))
    assert within(n_mask, n_selected * p_mask, n_selected * p_mask * (1 - p_mask))
    assert within(n_changed, n_selected * p_changed, n_selected * p_changed * (1 - p_changed))
    if random_fraction == 1.0:  # every selected token replaced uniformly over POOL: each id ~ n/|POOL|
        counts = np.bincount(np.concatenate(replacements), minlength=VOCAB)[POOL]
        p = 1 / len(POOL)
        assert all(within(c, n_selected * p, n_selected * p * (1 - p), 5.0) for c in counts), counts


def test_no_candidates_and_empty_block() -> None:
    masker = make_masker(rate=0.5)
    ids = np.array([0, 2, 1, 1, MASK_ID, 3])
    masked, labels = masker.mask(ids, 0)
    np.testing.assert_array_equal(masked, ids)
    assert (labels == -100).all()
    masked, labels = masker.mask(np.array([], dtype=np.int64), 0)
    assert masked.shape == (0,) and labels.shape == (0,)


def test_mask_id_and_pad_excluded_even_if_not_listed_as_special() -> None:
    masker = Masker(vocab_size=10, mask_token_id=9, special_token_ids=[0], pad_token_id=1, rate=0.9,
                    mask_fraction=0.0, random_fraction=1.0)
    assert masker.config_dict()["special_token_ids"] == [0]
    ids = np.array([9, 1, 0] * 20 + [5] * 40)
    for index in range(50):
        masked, labels = masker.mask(ids, index)
        assert (labels[:60] == -100).all()
        assert set(masked[labels != -100].tolist()) <= set(range(2, 9))


# ---------------------------------------------------------------------------------------------------- determinism
def test_determinism_and_call_order_independence() -> None:
    masker = make_masker(rate=0.3)
    first = {i: masker.mask(BLOCKS[i], i) for i in range(60)}
    other = make_masker(rate=0.3, seed=5)
    for i in reversed(range(60)):  # reversed order, interleaved with another masker, fresh instance
        other.mask(BLOCKS[i], i)
        again = make_masker(rate=0.3).mask(BLOCKS[i].astype(np.int32).tolist(), i)
        np.testing.assert_array_equal(again[0], first[i][0])
        np.testing.assert_array_equal(again[1], first[i][1])
    block = BLOCKS[0]
    by_index = {tuple(masker.mask(block, i)[1].tolist()) for i in range(60)}
    assert len(by_index) == 60  # different index -> different selection
    assert not np.array_equal(masker.mask(block, 0)[1], other.mask(block, 0)[1])  # different seed -> different


def test_golden_stream() -> None:
    """Pins the random stream (seed, tag, index -> masks): a silent change would alter resumed runs' masks."""
    masker = make_masker(rate=0.4, seed=3)
    masked, labels = masker.mask(np.arange(4, 34), 11)
    assert masked.tolist() == GOLDEN_MASKED
    assert labels.tolist() == GOLDEN_LABELS


GOLDEN_MASKED = [4, 99, 6, 7, 8, 99, 10, 11, 12, 13, 99, 15, 16, 99, 18, 19, 20, 21, 22, 99, 24, 25, 99, 27, 28, 99, 99,
                 31, 99, 39]
GOLDEN_LABELS = [-100, 5, -100, -100, -100, 9, -100, -100, -100, -100, 14, -100, 16, 17, -100, -100, -100, -100, -100,
                 23, -100, -100, 26, 27, -100, 29, 30, -100, 32, 33]


# ---------------------------------------------------------------------------------------------------- whole word
@pytest.mark.parametrize("mode", MASKING_MODES)
def test_whole_word_units_and_counts(mode: str) -> None:
    rate = 0.2
    masker = make_masker(rate=rate, mode=mode, word_starts=WORD_STARTS)
    total = expected = variance = 0.0
    for index, ids in enumerate(BLOCKS[:400]):
        _, labels = masker.mask(ids, index)
        selected = labels != -100
        words = reference_words(ids, WORD_STARTS)
        covered = np.zeros(ids.size, dtype=bool)
        n_words = 0
        for word in words:
            states = selected[word]
            assert states.all() or not states.any(), (index, word, states)  # all or none of a word
            covered[word] = True
            n_words += bool(states[0])
        assert not selected[~covered].any()
        target = rate * len(words)
        if mode == "exact":
            assert n_words in (math.floor(target), math.ceil(target)), (index, n_words, target)
            frac = target - math.floor(target)
            variance += frac * (1 - frac)
        else:
            variance += rate * (1 - rate) * len(words)
        total, expected = total + n_words, expected + target
    assert within(total, expected, variance), (total, expected, variance)


def test_whole_word_hand_example() -> None:
    starts = np.zeros(VOCAB, dtype=bool)
    starts[SPECIALS + [10, 20, 30]] = True
    # words: [10 11 12] [20 21] [13 14] (continuation after </s> opens its own word) [30]; pad at the end.
    ids = np.array([0, 10, 11, 12, 20, 21, 2, 13, 14, 30, 1])
    words = [{1, 2, 3}, {4, 5}, {7, 8}, {9}]
    masker = make_masker(rate=0.3, word_starts=starts)
    seen = set()
    for index in range(200):
        selected = set(np.flatnonzero(masker.mask(ids, index)[1] != -100).tolist())
        picked = [w for w in words if w <= selected]
        assert set().union(*picked) == selected
        assert len(picked) in (1, 2)  # 0.3 * 4 words = 1.2
        seen.update(frozenset(w) for w in picked)
    assert len(seen) == 4  # every word is selectable


def test_whole_word_with_tiny_tokenizer(tmp_path) -> None:
    tokenizer = tiny.build_tiny_tokenizer(tmp_path)
    starts = word_start_mask(tokenizer)
    masker = Masker.from_tokenizer(tokenizer, word_starts=starts, whole_word=True, rate=0.3, seed=1)
    assert masker.vocab_size == len(tokenizer) and masker.mask_token_id == len(tokenizer) - 1
    assert masker.special_token_ids == sorted(tokenizer.all_special_ids) == [0, 1, 2, 3, len(tokenizer) - 1]
    text = "The cat reads a book in Paris. Le chat lit un livre à la maison. Die Katze liest ein Buch."
    ids = np.array(tokenizer(text)["input_ids"])
    groups = word_ids(ids, starts)
    for index in range(100):
        selected = masker.mask(ids, index)[1] != -100
        for word in np.unique(groups):
            states = selected[groups == word]
            assert states.all() or not states.any()
        assert not selected[[0, len(ids) - 1]].any()


# ---------------------------------------------------------------------------------------------------- schedules
def test_schedule_values() -> None:
    constant = MaskRateSchedule("constant", 0.2)
    assert [constant.rate_at(t) for t in (0, 10**12)] == [0.2, 0.2]
    linear = MaskRateSchedule("linear", start=0.3, end=0.1, total=1000)
    assert [linear.rate_at(t) for t in (0, 500, 1000, 5000)] == pytest.approx([0.3, 0.2, 0.1, 0.1], abs=1e-15)
    cosine = MaskRateSchedule("cosine", start=0.3, end=0.1, total=1000)
    expected = [0.3, 0.3 - 0.2 * (1 - math.cos(math.pi / 4)) / 2, 0.2, 0.1, 0.1]
    assert [cosine.rate_at(t) for t in (0, 250, 500, 1000, 2000)] == pytest.approx(expected, abs=1e-15)
    mmbert = MaskRateSchedule("phases", phases=[{"until": 100, "rate": 0.30},
                                                {"until": 300, "rate": 0.15},
                                                {"until": None, "rate": 0.05}])
    points = (0, 99, 100, 299, 300, 10**15)
    assert [mmbert.rate_at(t) for t in points] == [0.30, 0.30, 0.15, 0.15, 0.05, 0.05]
    masker = make_masker(rate=mmbert.to_dict())
    assert [masker.rate_at(t) for t in points] == [0.30, 0.30, 0.15, 0.15, 0.05, 0.05]
    assert MASK_SCHEDULE_TYPES == ("constant", "linear", "cosine", "phases")


def test_schedule_from_config_and_round_trip() -> None:
    assert MaskRateSchedule.from_config(0.25).to_dict() == {"type": "constant", "rate": 0.25}
    schedule = MaskRateSchedule("cosine", start=0.3, end=0.1, total=7)
    assert MaskRateSchedule.from_config(schedule) is schedule
    for item in (schedule, MaskRateSchedule.from_config({"rate": 0.4}),
                 MaskRateSchedule("phases", phases=[{"until": 5, "rate": 0.3},
                                                    {"until": None, "rate": 0.1}])):
        data = json.loads(json.dumps(item.to_dict()))
        assert MaskRateSchedule.from_config(data) == item
    assert MaskRateSchedule.from_config({"type": "linear", "start": 0.3, "end": 0.1, "total": 9}).to_dict() == \
        {"type": "linear", "start": 0.3, "end": 0.1, "total": 9}


def test_scheduled_masker_uses_given_rate() -> None:
    masker = make_masker(rate={"type": "linear", "start": 0.3, "end": 0.1, "total": 100})
    ids = np.arange(4, 54)  # 50 candidates
    for consumed, expected in ((0, 15), (100, 5)):
        _, labels = masker.mask(ids, 3, rate=masker.rate_at(consumed))
        assert int((labels != -100).sum()) == expected  # 50 * rate is integral: floor == ceil (up to float noise)
    with pytest.raises(MaskingError, match=r"rate must be given .*'linear'"):
        masker.mask(ids, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"type": "step"}, r"schedule type must be one of .*'phases'.*got 'step'"),
        ({"rate": 0.0}, r"schedule.rate must be in \(0, 1\).*got 0.0"),
        ({"rate": 1.0}, r"schedule.rate must be in \(0, 1\).*got 1.0"),
        ({"rate": True}, r"schedule.rate must be a number .*got True"),
        ({"type": "linear", "start": 0.3, "end": 0.1}, r"'linear' needs total"),
        ({"type": "cosine", "start": 0.3, "end": 1.5, "total": 9}, r"schedule.end must be in \(0, 1\).*1.5"),
        ({"type": "linear", "start": 0.3, "end": 0.1, "total": 0}, r"total must be an integer >= 1"),
        ({"start": 0.3}, r"'constant' does not take \['start'\]"),
        ({"phases": [{"until": None, "rate": 0.1}]}, r"'constant' does not take phases"),
        ({"type": "phases", "phases": []}, r"schedule.phases must be a non-empty list"),
        ({"type": "phases", "phases": [{"until": 5, "rate": 0.1}]},
         r"phases\[0\].until must be None for the last phase, got 5"),
        ({"type": "phases", "phases": [{"until": None, "rate": 0.3}, {"until": None, "rate": 0.1}]},
         r"phases\[0\].until may be None only for the last phase"),
        ({"type": "phases", "phases": [{"until": 5, "rate": 0.3}, {"until": 5, "rate": 0.2},
                                       {"until": None, "rate": 0.1}]},
         r"phases\[1\].until must be an integer >= 6, got 5"),
        ({"type": "phases", "phases": [{"until_tokens": 5, "rate": 0.3}, {"rate": 0.1}]},
         r"phases\[0\] must have the keys \['rate', 'until'\] .*got \['rate', 'until_tokens'\]"),
        ({"type": "phases", "phases": [{"rate": 0.3}, {"rate": 0.1}]},
         r"phases\[0\] must have the keys \['rate', 'until'\] .*got \['rate'\]"),
    ],
)
def test_schedule_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(MaskingError, match=message):
        MaskRateSchedule(**kwargs)


def test_schedule_from_config_validation() -> None:
    with pytest.raises(MaskingError, match=r"unknown key\(s\) \['alpha'\]"):
        MaskRateSchedule.from_config({"type": "constant", "alpha": 0.3})
    with pytest.raises(MaskingError, match=r"rate must be a number in \(0, 1\), a schedule mapping .*got '0.15'"):
        MaskRateSchedule.from_config("0.15")
    with pytest.raises(MaskingError, match=r"consumed_tokens must be an integer >= 0, got -1"):
        MaskRateSchedule().rate_at(-1)


# ---------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": 0.0}, r"rate must be in \(0, 1\) \(exclusive\), got 0.0"),
        ({"rate": 1.0}, r"rate must be in \(0, 1\) \(exclusive\), got 1.0"),
        ({"mask_fraction": 0.8, "random_fraction": 0.3}, r"mask_fraction \+ random_fraction must be <= 1, got 0.8 \+ 0.3"),
        ({"random_fraction": -0.1}, r"random_fraction must be in \[0, 1\], got -0.1"),
        ({"mode": "poisson"}, r"mode must be one of \['exact', 'bernoulli'\], got 'poisson'"),
        ({"word_starts": np.ones(VOCAB - 1, dtype=bool)}, r"word_starts must have length vocab_size=100, got length 99"),
        ({"word_starts": np.ones(VOCAB, dtype=np.int64)}, r"word_starts must be a 1-D bool array, got dtype int64"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
    ],
)
def test_masker_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(MaskingError, match=message):
        make_masker(**kwargs)


def test_masker_id_validation() -> None:
    with pytest.raises(MaskingError, match=r"vocab_size must be > mask_token_id=99, got 99"):
        Masker(vocab_size=99, mask_token_id=99, special_token_ids=[0])
    with pytest.raises(MaskingError, match=r"special_token_ids\[1\] must be in \[0, vocab_size=10\), got 12"):
        Masker(vocab_size=10, mask_token_id=9, special_token_ids=[0, 12])
    with pytest.raises(MaskingError, match=r"every id of \[0, vocab_size=3\) is special"):
        Masker(vocab_size=3, mask_token_id=2, special_token_ids=[0])
    masker = make_masker()
    with pytest.raises(MaskingError, match=r"input_ids must be in \[0, vocab_size=100\), got id 250001"):
        masker.mask(np.array([0, 5, 250001, 2]), 0)
    with pytest.raises(MaskingError, match=r"input_ids must be in \[0, vocab_size=100\), got id -3"):
        masker.mask(np.array([0, -3, 2]), 0)
    with pytest.raises(MaskingError, match=r"input_ids must be 1-D \(one block\), got shape \(2, 3\)"):
        masker.mask(np.zeros((2, 3), dtype=np.int64), 0)
    with pytest.raises(MaskingError, match=r"input_ids must hold integer ids, got dtype float64"):
        masker.mask(np.array([4.0, 5.0]), 0)
    with pytest.raises(MaskingError, match=r"index must be an integer >= 0, got -1"):
        masker.mask(np.array([4, 5]), -1)
    with pytest.raises(MaskingError, match=r"rate must be in \(0, 1\) \(exclusive\), got 1.5"):
        masker.mask(np.array([4, 5]), 0, rate=1.5)


def test_from_tokenizer_validation(tmp_path) -> None:
    tokenizer = tiny.build_tiny_tokenizer(tmp_path)
    with pytest.raises(MaskingError, match=r"whole_word=True needs word_starts"):
        Masker.from_tokenizer(tokenizer, whole_word=True)
    with pytest.raises(MaskingError, match=r"word_starts was given but whole_word=False"):
        Masker.from_tokenizer(tokenizer, word_starts=word_start_mask(tokenizer))
    with pytest.raises(MaskingError, match=r"from_tokenizer takes \['vocab_size'\] from the tokenizer"):
        Masker.from_tokenizer(tokenizer, vocab_size=200)
    masker = Masker.from_tokenizer(tokenizer, rate=0.2, mode="bernoulli", seed=4)
    config = json.loads(json.dumps(masker.config_dict()))
    assert config == {
        "vocab_size": len(tokenizer), "mask_token_id": len(tokenizer) - 1,
        "special_token_ids": [0, 1, 2, 3, len(tokenizer) - 1], "pad_token_id": 1,
        "rate": {"type": "constant", "rate": 0.2}, "mask_fraction": 0.8, "random_fraction": 0.1,
        "mode": "bernoulli", "whole_word": False, "word_starts_sha256": None, "seed": 4,
    }
    whole = Masker.from_tokenizer(tokenizer, word_starts=word_start_mask(tokenizer), whole_word=True)
    assert whole.config_dict()["whole_word"] is True and len(whole.config_dict()["word_starts_sha256"]) == 64


# ---------------------------------------------------------------------------------------------------- TLM examples
def test_tlm_example_hand() -> None:
    example = tlm_example([10, 11, 12], [20, 21], "en", "fr")
    assert example == {
        "input_ids": [0, 10, 11, 12, 2, 2, 20, 21, 2],
        "position_ids": [2, 3, 4, 5, 6, 2, 3, 4, 5],
        "languages": ["en"] * 5 + ["fr"] * 4,
    }
    assert json.loads(json.dumps(example)) == example


def _longest_first(a: int, b: int, budget: int) -> tuple[int, int]:
    while a + b > budget:
        if a > b:
            a -= 1
        else:
            b -= 1
    return a, b


def test_tlm_truncation_longest_first() -> None:
    example = tlm_example(list(range(10, 20)), [30, 31, 32], "en", "de", max_length=10)
    assert example["input_ids"] == [0, 10, 11, 12, 2, 2, 30, 31, 32, 2]
    assert example["position_ids"] == [2, 3, 4, 5, 6, 2, 3, 4, 5, 6]
    for a in range(1, 14):
        for b in range(1, 14):
            for max_length in range(6, 24):
                ids = tlm_example([5] * a, [7] * b, "x", "y", max_length=max_length)["input_ids"]
                assert (ids.count(5), ids.count(7)) == _longest_first(a, b, max_length - 4), (a, b, max_length)
                assert len(ids) == min(a + b + 4, max_length)


def test_tlm_example_validation() -> None:
    with pytest.raises(MaskingError, match=r"max_length must be an integer >= 6, got 5"):
        tlm_example([5], [6], "en", "fr", max_length=5)
    with pytest.raises(MaskingError, match=r"target_ids must be non-empty, got \[\]"):
        tlm_example([5], [], "en", "fr")
    with pytest.raises(MaskingError, match=r"source_ids\[1\] must be an integer >= 0, got -4"):
        tlm_example([5, -4], [6], "en", "fr")
    with pytest.raises(MaskingError, match=r"target_language must be a non-empty language code, got ''"):
        tlm_example([5], [6], "en", "")


LANGS = {"en": 0, "fr": 1, "de": 2}


def test_collate_tlm_exact_batch() -> None:
    masker = make_masker(rate=0.4)
    examples = [tlm_example([10, 11, 12], [20, 21], "en", "fr"), tlm_example([30], [40], "de", "en")]
    batch = collate_tlm(examples, masker, [7, 8], language_to_id=LANGS)
    assert set(batch) == {"input_ids", "position_ids", "language_ids", "labels", "cu_seqlens"}
    masked0, labels0 = masker.mask(np.array(examples[0]["input_ids"]), 7)
    masked1, labels1 = masker.mask(np.array(examples[1]["input_ids"]), 8)
    assert batch["input_ids"].tolist() == [masked0.tolist(), masked1.tolist() + [1, 1, 1]]
    assert batch["labels"].tolist() == [labels0.tolist(), labels1.tolist() + [-100] * 3]
    assert batch["position_ids"].tolist() == [[2, 3, 4, 5, 6, 2, 3, 4, 5], [2, 3, 4, 2, 3, 4, 1, 1, 1]]
    assert batch["language_ids"].tolist() == [[0] * 5 + [1] * 4, [2] * 3 + [0] * 6]
    assert batch["cu_seqlens"].tolist() == [0, 9, 15, 18]
    assert batch["cu_seqlens"].dtype == torch.int32 and batch["input_ids"].dtype == torch.int64
    assert (labels0 != -100).any() and (labels1 != -100).sum() <= 2


def test_collate_tlm_validation() -> None:
    masker = make_masker()
    examples = [tlm_example([10], [20], "en", "sw")]
    with pytest.raises(MaskingError, match=r"indices must have one index per example \(1\), got 2"):
        collate_tlm(examples, masker, [0, 1], language_to_id=LANGS)
    with pytest.raises(MaskingError, match=r"examples\[0\].languages has \['sw'\] not in language_to_id; "
                                           r"allowed: \['de', 'en', 'fr'\]"):
        collate_tlm(examples, masker, [0], language_to_id=LANGS)


# ---------------------------------------------------------------------------------------------------- TLM model
def tlm_model(impl: str) -> XLMRobertaForMaskedLM:
    config = XLMRobertaConfig(**tiny_config_kwargs(use_language_embeddings=True, n_langs=3))
    torch.manual_seed(0)
    model = randomize_parameters_(XLMRobertaForMaskedLM(config), seed=0)
    model.set_attn_implementation(impl)
    return model.eval()


def tlm_batch() -> tuple[list[dict], dict[str, torch.Tensor]]:
    masker = Masker(vocab_size=99, mask_token_id=98, special_token_ids=[0, 1, 2, 3, 98], rate=0.3)
    rng = np.random.default_rng(5)
    examples = [
        tlm_example(rng.integers(4, 98, 7).tolist(), rng.integers(4, 98, 6).tolist(), "en", "fr"),
        tlm_example(rng.integers(4, 98, 3).tolist(), rng.integers(4, 98, 4).tolist(), "de", "en"),
    ]
    return examples, collate_tlm(examples, masker, [0, 1], language_to_id=LANGS)


def run(model, batch: dict[str, torch.Tensor], **overrides) -> torch.Tensor:
    inputs = {key: value for key, value in batch.items() if key != "labels"} | overrides
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_tlm_batch_through_model(impl: str) -> None:
    model = tlm_model(impl)
    examples, batch = tlm_batch()
    n0, n1 = (len(e["input_ids"]) for e in examples)  # 17 and 11 tokens
    with torch.no_grad():
        out = model(**batch)
    assert torch.isfinite(out.loss) and out.logits.shape[0] == int((batch["labels"] != -100).sum()) > 0
    logits = run(model, batch)
    # (b) source and target attend each other: a target token changes every source output of its pair.
    edited = batch["input_ids"].clone()
    edited[0, n0 - 2] = 50 if int(edited[0, n0 - 2]) != 50 else 51
    changed = run(model, batch, input_ids=edited)
    assert (n0, n1) == (17, 11)  # row 0: <s> + 7 source ids + </s> (positions 0..8), then </s> + 6 target ids + </s>
    assert (changed[0, :9] - logits[0, :9]).abs().amax(dim=-1).min() > 1e-4
    # (c) rows are separate segments: changing row 1 leaves row 0 unchanged.
    edited = batch["input_ids"].clone()
    edited[1, :n1] = torch.where(edited[1, :n1] > 3, 97 - edited[1, :n1] + 4, edited[1, :n1])
    assert not torch.equal(edited[1], batch["input_ids"][1])
    other = run(model, batch, input_ids=edited)
    assert max_abs_diff(other[0], logits[0]) < 1e-6
    assert max_abs_diff(other[1, :n1], logits[1, :n1]) > 1e-3
    # (d) each pair's outputs equal running it alone, unpadded, as one segment ...
    embeddings = model.roberta.embeddings
    for row, n in enumerate((n0, n1)):
        alone = {key: batch[key][row:row + 1, :n] for key in ("input_ids", "position_ids", "language_ids")}
        single = run(model, alone, cu_seqlens=torch.tensor([0, n], dtype=torch.int32))
        assert max_abs_diff(single[0], logits[row, :n]) < 1e-5
        # ... and the dense (non-packed) path: no position_ids nor cu_seqlens; the default positions 2..n+1 are
        # swapped for the TLM positions inside inputs_embeds, so the encoder sees the same embeddings.
        with torch.no_grad():
            default = torch.arange(2, n + 2).unsqueeze(0)
            inputs_embeds = (embeddings.word_embeddings(alone["input_ids"])
                             + embeddings.position_embeddings(alone["position_ids"])
                             - embeddings.position_embeddings(default))
            dense = model(inputs_embeds=inputs_embeds, language_ids=alone["language_ids"]).logits
        assert max_abs_diff(dense[0], logits[row, :n]) < 1e-5
