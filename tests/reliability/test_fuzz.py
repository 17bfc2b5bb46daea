"""Seeded fuzzing of the public APIs users feed directly: the recipe loader, the temperature sampler, the packer and
the masker. Every case either works (and keeps the component's invariants) or raises the component's own
`ValueError` with a message; anything else is a defect. 1,000+ cases each, the same every run."""

from __future__ import annotations

import random
import string
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xlmr_hf.data import Masker, Packer, TemperatureSampler
from xlmr_hf.data.masking import MaskingError
from xlmr_hf.data.packing import PackingError
from xlmr_hf.data.sampling import SamplerError, SamplerExhaustedError
from xlmr_hf.training import PretrainArguments, RecipeError, load_recipe

CASES = 1000
FIELDS = ["max_steps", "seq_len", "alpha", "languages", "model_overrides", "mixed_precision", "learning_rate",
          "padding_free", "report_to", "corpus", "nan_policy", "push_format", "save_total_limit", "max_step",
          "learnig_rate", "seed", "eval_steps", "probe_train_languages", "global_batch_size"]


def _pick(rng: random.Random, good: list[Any], bad: list[Any], p_bad: float = 0.08) -> Any:
    """Mostly a valid value, sometimes an invalid one."""
    return rng.choice(bad) if rng.random() < p_bad else rng.choice(good)


def _value(rng: random.Random) -> str:
    return rng.choice([
        str(rng.randint(-5, 10**6)), f"{rng.uniform(-2, 2):.3g}", "null", "true", "False", "no", "bf16", "nan", "inf",
        "[en, fr]", "[1, 2", "{a: 1}", "{num_hidden_layers: 2}", "", "'quoted'", "[[]]", "- x", "1e-4", "0x1F",
        "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 12))),
    ])


def test_recipe_loader(tmp_path: Path) -> None:
    rng, outcomes = random.Random(1), Counter()
    for case in range(CASES):
        overrides: list[str] = []
        for _ in range(rng.randint(0, 4)):
            name = rng.choice(FIELDS).replace("_", rng.choice("_-")) if rng.random() < 0.9 else rng.choice(
                ["x", "--", "-a"])
            overrides += [f"--{name}"] + ([_value(rng)] if rng.random() < 0.9 else [])
        recipe = None
        if rng.random() < 0.4:
            recipe = tmp_path / f"{case}.yaml"
            lines = [f"{rng.choice(FIELDS)}: {_value(rng)}" for _ in range(rng.randint(0, 4))]
            recipe.write_text("\n".join(lines) if rng.random() < 0.9 else _value(rng), encoding="utf-8")
        try:
            args = load_recipe(recipe, overrides)
        except RecipeError as error:  # the only allowed failure: a clear, one-line message
            assert str(error) and "\n" not in str(error).strip("\n").split("; fields:")[0], (recipe, overrides)
            outcomes["refused"] += 1
            continue
        assert isinstance(args, PretrainArguments)
        args.validate()  # what loaded is valid
        outcomes["loaded"] += 1
    assert outcomes["loaded"] > 50 and outcomes["refused"] > 50, outcomes
    print(f"recipe loader: {CASES} cases, {dict(outcomes)}")


def test_temperature_sampler() -> None:
    rng, outcomes = random.Random(2), Counter()
    for _ in range(CASES):
        sizes: Any = {lang: _pick(rng, [0, 1, rng.uniform(1, 1e9)], [-1.0, float("nan"), "7"], 0.05)
                      for lang in rng.sample(["en", "fr", "sw", "zh", "ur"], rng.randint(0, 5))}
        kwargs: dict[str, Any] = {"alpha": _pick(rng, [0.3, 1.0, 0.7, 0.01], [0.0, 1.5, -0.1, float("nan")]),
                                  "seed": _pick(rng, [0, 7, 2**64 - 1], [2**64, -1]),
                                  "caps": _pick(rng, [None, 1.0, 3.5, {"en": 2.0}], [0.0, {"xx": 1.0}, -2]),
                                  "unit": _pick(rng, ["tokens", "documents"], ["pages", "bytes"])}
        try:
            sampler = TemperatureSampler(sizes, **kwargs)
            probabilities = sampler.probabilities
            assert abs(sum(probabilities.values()) - 1.0) < 1e-9
            drawn = sampler.sample_many(range(rng.randint(0, 50)))
            assert set(drawn) <= {lang for lang, q in probabilities.items() if q > 0}
            for lang in drawn:
                sampler.consume(lang, tokens=rng.randint(0, 1000), documents=1, units=rng.uniform(0, 10))
            restored = TemperatureSampler(sizes, **kwargs)
            restored.load_state_dict(sampler.state_dict())
            assert restored.state_dict() == sampler.state_dict()
            outcomes["ok"] += 1
        except (SamplerError, SamplerExhaustedError):
            outcomes["refused"] += 1
    assert outcomes["ok"] > 100 and outcomes["refused"] > 100, outcomes
    print(f"{CASES} cases, {dict(outcomes)}")


def test_packer() -> None:
    rng, outcomes = random.Random(3), Counter()
    for _ in range(CASES):
        seq_len = rng.choice([4, 5, 8, 32, 3, 0])
        mode = rng.choice(["complete", "complete_doc", "none"])
        try:
            packer = Packer(seq_len, mode=mode, bos_token_id=0, eos_token_id=2)
            fed = 0
            blocks = []
            for _ in range(rng.randint(0, 6)):
                document = [np.asarray([rng.randint(4, 99) for _ in range(rng.randint(0, 3 * seq_len))])
                            for _ in range(rng.randint(0, 3))]
                if rng.random() < 0.05:
                    document = [[-1]] if rng.random() < 0.5 else "text"
                blocks += packer.add_document(document, rng.choice(["en", "fr"]))
                fed += sum(len(p) + 1 for p in document if len(p))
            blocks += packer.flush()
            assert all(1 < len(b.input_ids) <= seq_len and b.input_ids[0] == 0 for b in blocks)
            assert sum(len(b.input_ids) - 1 for b in blocks) == fed  # every token once (plus one <s> per block)
            outcomes["ok"] += 1
        except PackingError:
            outcomes["refused"] += 1
    assert outcomes["ok"] > 100 and outcomes["refused"] > 100, outcomes
    print(f"{CASES} cases, {dict(outcomes)}")


def test_masker() -> None:
    rng, outcomes = random.Random(4), Counter()
    for _ in range(CASES):
        vocab = _pick(rng, [10, 100, 6], [0, 3])
        try:
            masker = Masker(vocab_size=vocab, mask_token_id=_pick(rng, [vocab - 1], [vocab, -1]),
                            special_token_ids=_pick(rng, [[0, 1, 2, 3], [0, 2], []], [[vocab + 1], "ab"]),
                            pad_token_id=1, rate=_pick(rng, [0.15, 0.5, 0.99, {"type": "constant", "rate": 0.2}],
                                                       [0.0, 1.0, 1.5, {"type": "wave"}]),
                            mask_fraction=_pick(rng, [0.8, 1.0, 0.0, 0.5], [1.2, -0.1]),
                            random_fraction=_pick(rng, [0.1, 0.0], [0.5, -1.0]),
                            mode=_pick(rng, ["exact", "bernoulli"], ["other"]), seed=_pick(rng, [0, 9], [-3]))
            ids = np.asarray([rng.randint(0, max(vocab - 1, 0)) for _ in range(rng.randint(0, 60))], dtype=np.int64)
            if rng.random() < 0.05:
                ids = ids + vocab
            masked, labels = masker.mask(ids, rng.randint(0, 10**6))
            again = masker.mask(ids, 0)
            assert np.array_equal(again[0], masker.mask(ids, 0)[0])  # a pure function of (seed, index, ids)
            special = np.isin(ids, masker.special_token_ids + [masker.pad_token_id])
            assert (labels[special] == -100).all() and (masked[special] == ids[special]).all()
            assert ((labels == -100) | (labels == ids)).all() and (masked[labels == -100] == ids[labels == -100]).all()
            assert masked.min(initial=0) >= 0 and masked.max(initial=0) < vocab
            outcomes["ok"] += 1
        except MaskingError:
            outcomes["refused"] += 1
    assert outcomes["ok"] > 100 and outcomes["refused"] > 100, outcomes
    print(f"{CASES} cases, {dict(outcomes)}")


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")
