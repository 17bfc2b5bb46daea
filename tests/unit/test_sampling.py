"""TemperatureSampler: the formula, deterministic order-independent draws, schedules, caps, resume and errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xlmr_hf.data import sampling
from xlmr_hf.data.sampling import (
    SamplerError,
    SamplerExhaustedError,
    TemperatureSampler,
    temperature_probabilities,
)

ISSUE_SIZES = {"en": 300000, "fr": 56000, "hi": 2000, "sw": 275, "ur": 730}


def expected_q(sizes: dict[str, float], alpha: float) -> dict[str, float]:
    total = sum(sizes.values())
    powered = {k: (v / total) ** alpha for k, v in sizes.items()}
    norm = sum(powered.values())
    return {k: v / norm for k, v in powered.items()}


def test_probabilities_equal_formula() -> None:
    for alpha in (0.3, 0.5, 0.7):
        sampler = TemperatureSampler(ISSUE_SIZES, alpha=alpha)
        expected = expected_q(ISSUE_SIZES, alpha)
        assert list(sampler.probabilities) == sorted(ISSUE_SIZES)
        for lang, q in sampler.probabilities.items():
            assert q == pytest.approx(expected[lang], rel=1e-12, abs=0)
        assert math.fsum(sampler.probabilities.values()) == pytest.approx(1.0, abs=1e-12)


def test_issue_example_en_share() -> None:
    q = TemperatureSampler(ISSUE_SIZES, alpha=0.3).probabilities
    assert q["en"] == pytest.approx(0.4731, abs=5e-5)
    assert abs(q["en"] - 0.372) > 0.1  # not the tutorial's 37.2%
    assert q["sw"] > 275 / sum(ISSUE_SIZES.values())  # upsampled


def test_alpha_one_gives_p() -> None:
    q = temperature_probabilities(ISSUE_SIZES, 1.0)
    total = sum(ISSUE_SIZES.values())
    for lang, size in ISSUE_SIZES.items():
        assert q[lang] == pytest.approx(size / total, rel=1e-12)


def test_empirical_shares_converge() -> None:
    sampler = TemperatureSampler(ISSUE_SIZES, alpha=0.3, seed=123)
    n = 200_000
    draws = sampler.sample_many(range(n))
    for lang, q in sampler.probabilities.items():
        share = draws.count(lang) / n
        # Binomial standard error; 4 SE gives a two-sided false-failure rate ~6e-5 per language for a good generator
        # (and the test is deterministic for a fixed seed).
        assert abs(share - q) <= 4 * math.sqrt(q * (1 - q) / n), (lang, share, q)


def test_sample_pure_and_order_independent() -> None:
    a = TemperatureSampler(ISSUE_SIZES, seed=7)
    b = TemperatureSampler(ISSUE_SIZES, seed=7)
    forward = [a.sample(i) for i in range(500)]
    backward = [b.sample(i) for i in reversed(range(500))][::-1]
    assert forward == backward
    assert forward == TemperatureSampler(ISSUE_SIZES, seed=7).sample_many(range(500))
    assert a.sample(10_000_000_000) == b.sample(10_000_000_000)
    assert list(iter_take(TemperatureSampler(ISSUE_SIZES, seed=7), 500)) == forward


def iter_take(sampler: TemperatureSampler, n: int) -> list[str]:
    return [next(sampler) for _ in range(n)]


def test_different_seeds_differ() -> None:
    a = TemperatureSampler(ISSUE_SIZES, seed=0).sample_many(range(1000))
    b = TemperatureSampler(ISSUE_SIZES, seed=1).sample_many(range(1000))
    assert a != b
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 300


def test_ranks_and_workers_reassemble_global_sequence() -> None:
    n, world, workers = 1000, 2, 2
    reference = TemperatureSampler(ISSUE_SIZES, seed=3).sample_many(range(n))
    streams = world * workers
    parts: dict[int, str] = {}
    for rank in range(world):
        for worker in range(workers):
            sampler = TemperatureSampler(ISSUE_SIZES, seed=3)  # each process builds its own
            slot = rank * workers + worker
            for index in range(slot, n, streams):  # index = k * (world * workers) + rank * workers + worker
                parts[index] = sampler.sample(index)
    assert [parts[i] for i in range(n)] == reference


def test_phases_step_alpha_and_join_languages() -> None:
    schedule = {
        "type": "phases",
        "phases": [
            {"until": 1000, "alpha": 0.7, "languages": ["en", "fr"]},
            {"until": 2000, "alpha": 0.5, "languages": ["en", "fr", "hi"]},
            {"alpha": 0.3},
        ],
    }
    sampler = TemperatureSampler(ISSUE_SIZES, schedule=schedule, seed=1)
    assert sampler.alpha == 0.7
    q = sampler.probabilities
    assert q["hi"] == q["sw"] == q["ur"] == 0.0
    assert q["en"] == pytest.approx(expected_q({"en": 300000, "fr": 56000}, 0.7)["en"], rel=1e-12)
    assert set(sampler.sample_many(range(2000))) == {"en", "fr"}
    assert [sampler.alpha_at(t) for t in (0, 999, 1000, 1999, 2000, 10**9)] == [0.7, 0.7, 0.5, 0.5, 0.3, 0.3]

    sampler.consume("en", tokens=999, documents=3)
    assert sampler.alpha == 0.7 and sampler.phase == 0
    sampler.consume("fr", tokens=1)  # 1000 tokens: boundary reached, hi joins
    assert sampler.alpha == 0.5 and sampler.phase == 1
    assert sampler.probabilities["hi"] > 0 and sampler.probabilities["sw"] == 0
    sampler.consume("hi", tokens=1000)
    assert sampler.alpha == 0.3
    assert sampler.probabilities == pytest.approx(expected_q(ISSUE_SIZES, 0.3), rel=1e-12)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_anneal_start_middle_end(kind: str) -> None:
    sampler = TemperatureSampler(ISSUE_SIZES, schedule={"type": kind, "start": 0.7, "end": 0.3, "total": 1000})
    assert sampler.alpha_at(0) == pytest.approx(0.7)
    assert sampler.alpha_at(500) == pytest.approx(0.5)  # both anneals pass the midpoint at half-way
    assert sampler.alpha_at(1000) == pytest.approx(0.3)
    assert sampler.alpha_at(5000) == pytest.approx(0.3)
    quarter = sampler.alpha_at(250)
    if kind == "linear":
        assert quarter == pytest.approx(0.6)
    else:
        assert quarter == pytest.approx(0.7 - 0.4 * (1 - math.cos(math.pi / 4)) / 2)
    sampler.consume("en", tokens=500)
    assert sampler.alpha == pytest.approx(0.5)
    assert sampler.probabilities == pytest.approx(expected_q(ISSUE_SIZES, sampler.alpha), rel=1e-12)


def test_caps_remove_exhausted_language_and_renormalize() -> None:
    sizes = {"en": 1000, "fr": 100, "sw": 10}
    sampler = TemperatureSampler(sizes, alpha=0.3, caps={"sw": 2})
    assert sampler.probabilities["sw"] > 0
    sampler.consume("sw", tokens=19)
    assert "sw" not in sampler.exhausted
    sampler.consume("sw", tokens=1)  # 20 = 2 passes x 10 tokens
    assert sampler.exhausted == {"sw"}
    assert sampler.probabilities["sw"] == 0.0
    assert sampler.probabilities == pytest.approx({**expected_q({"en": 1000, "fr": 100}, 0.3), "sw": 0.0})
    assert "sw" not in sampler.sample_many(range(5000))
    assert sampler.accounting()["sw"]["exhausted"] == 1.0


def test_caps_for_all_languages_exhaust_everything() -> None:
    sampler = TemperatureSampler({"a": 10, "b": 5}, caps=1, unit="documents")
    sampler.consume("a", tokens=999, documents=10)
    assert sampler.active == ["b"]
    assert set(sampler.sample_many(range(100))) == {"b"}
    sampler.consume("b", documents=5)
    with pytest.raises(SamplerExhaustedError, match="exhausted"):
        sampler.sample(0)
    with pytest.raises(StopIteration):
        next(sampler)


def test_accounting_and_log_dict() -> None:
    sampler = TemperatureSampler({"en": 100, "fr": 100}, alpha=1.0, seed=5)
    langs = iter_take(sampler, 100)
    sampler.consume("en", tokens=30, documents=2)
    sampler.consume("fr", tokens=10, documents=1)
    acc = sampler.accounting()
    assert acc["en"]["draws"] + acc["fr"]["draws"] == 100
    assert acc["en"]["draws"] == langs.count("en")
    assert acc["en"]["share"] == pytest.approx(0.75) and acc["fr"]["share"] == pytest.approx(0.25)
    assert acc["en"]["target"] == pytest.approx(0.5)
    logged = sampler.log_dict()
    assert logged["share/en"] == pytest.approx(0.75)
    assert logged["target/fr"] == pytest.approx(0.5)
    assert logged["tokens/en"] == 30.0 and logged["documents/fr"] == 1.0
    assert logged["consumed_tokens"] == 40.0 and logged["alpha"] == 1.0
    assert all(isinstance(v, float) for v in logged.values())


def _driven_sampler() -> TemperatureSampler:
    schedule = {"type": "phases", "phases": [{"until": 500, "alpha": 0.7, "languages": ["en", "fr"]}, {"alpha": 0.3}]}
    return TemperatureSampler(ISSUE_SIZES, seed=11, schedule=schedule, caps={"sw": 0.05})


def _drive(sampler: TemperatureSampler, steps: int) -> list[str]:
    out = []
    for _ in range(steps):
        lang = next(sampler)
        out.append(lang)
        sampler.consume(lang, tokens=3, documents=1)
    return out


def test_state_dict_json_round_trip_resumes_exactly() -> None:
    reference = _driven_sampler()
    _drive(reference, 600)  # crosses the phase boundary at 500 tokens, then exhausts sw (cap 0.05 x 275 units)
    state = json.loads(json.dumps(reference.state_dict()))
    assert state["exhausted"] == ["sw"] and state["phase"] == 1
    expected = _drive(reference, 1000)

    restored = _driven_sampler()
    restored.load_state_dict(state)
    assert restored.position == 600 and restored.alpha == 0.3 and restored.exhausted == {"sw"}
    assert _drive(restored, 1000) == expected
    assert restored.state_dict() == reference.state_dict()


def test_state_resumes_in_fresh_process() -> None:
    reference = _driven_sampler()
    _drive(reference, 300)
    state = json.dumps(reference.state_dict())
    expected = _drive(reference, 200)
    code = (
        # Load the module from its file, in a bare package over its directory, so the child skips the package's heavy
        # imports (torch); it needs only numpy (and its sibling module schedules.py).
        "import importlib.util, json, sys, types\n"
        "package = types.ModuleType('bare'); package.__path__ = "
        f"[{str(Path(sampling.__file__).parent)!r}]; sys.modules['bare'] = package\n"
        f"spec = importlib.util.spec_from_file_location('bare.sampling', {sampling.__file__!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "assert 'torch' not in sys.modules\n"
        "TemperatureSampler = mod.TemperatureSampler\n"
        f"s = TemperatureSampler({ISSUE_SIZES!r}, seed=11, caps={{'sw': 0.05}}, schedule={{'type': 'phases', "
        "'phases': [{'until': 500, 'alpha': 0.7, 'languages': ['en', 'fr']}, {'alpha': 0.3}]})\n"
        "s.load_state_dict(json.loads(sys.stdin.read()))\n"
        "out = []\n"
        "for _ in range(200):\n"
        "    lang = next(s); out.append(lang); s.consume(lang, tokens=3, documents=1)\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], input=state, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == expected


def test_load_state_rejects_other_config() -> None:
    state = TemperatureSampler(ISSUE_SIZES, seed=1).state_dict()
    with pytest.raises(SamplerError, match=r"state\.config"):
        TemperatureSampler(ISSUE_SIZES, seed=2).load_state_dict(state)
    with pytest.raises(SamplerError, match=r"state\.version"):
        TemperatureSampler(ISSUE_SIZES, seed=1).load_state_dict({**state, "version": 99})


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"alpha": 0.0}, r"alpha must be in \(0, 1\].*0\.0"),
        ({"alpha": -0.5}, r"alpha must be in \(0, 1\].*-0\.5"),
        ({"alpha": 1.5}, r"alpha must be in \(0, 1\].*1\.5"),
        ({"alpha": float("nan")}, r"alpha must be in \(0, 1\].*nan"),
        ({"sizes": {}}, r"sizes must be a non-empty mapping"),
        ({"sizes": {"en": 0, "fr": 0}}, r"at least one positive size.*all are zero"),
        ({"sizes": {"en": -1, "fr": 3}}, r"sizes\['en'\] must be a finite number >= 0 \(tokens\), got -1"),
        ({"sizes": {"en": float("inf")}}, r"sizes\['en'\] must be a finite number >= 0.*inf"),
        ({"sizes": {"en": 1}, "unit": "words"}, r"unit must be one of .*'tokens'.*got 'words'"),
        (
            {"schedule": {"type": "phases", "phases": [{"alpha": 0.5, "languages": ["en", "xx"]}]}},
            r"schedule\.phases\[0\]\.languages names unknown language\(s\) \['xx'\]; allowed",
        ),
        ({"schedule": {"type": "warmup"}}, r"schedule\.type must be one of .*got 'warmup'"),
        (
            {"schedule": {"type": "phases", "phases": [{"until": 10, "alpha": 0.7}, {"until": 5, "alpha": 0.5}]}},
            r"schedule\.phases\[1\]\.until must be an integer token count > 10",
        ),
        ({"schedule": {"type": "linear", "start": 0.7, "end": 0.3, "total": 0}}, r"schedule\.total must be a positive finite number of tokens, got 0"),
        ({"schedule": {"type": "cosine", "start": 0.7, "end": 2.0, "total": 5}}, r"schedule\.end must be in \(0, 1\]"),
        ({"caps": 0}, r"caps must be a positive finite number of passes.*got 0"),
        ({"caps": {"xx": 2}}, r"caps names unknown language\(s\) \['xx'\]"),
        ({"caps": {"en": -1}}, r"caps\['en'\] must be a positive finite number of passes.*got -1"),
        ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*64\), got -1"),
    ],
)
def test_errors_name_field_value_and_allowed(kwargs: dict, pattern: str) -> None:
    args = {"sizes": ISSUE_SIZES, **kwargs}
    with pytest.raises(SamplerError, match=pattern):
        TemperatureSampler(**args)
    assert issubclass(SamplerError, ValueError)


def test_consume_errors() -> None:
    sampler = TemperatureSampler(ISSUE_SIZES)
    with pytest.raises(SamplerError, match=r"language 'xx' is unknown; allowed"):
        sampler.consume("xx", tokens=1)
    with pytest.raises(SamplerError, match=r"tokens must be an integer >= 0, got -3"):
        sampler.consume("en", tokens=-3)
    capped_bytes = TemperatureSampler({"en": 10}, unit="bytes", caps=1)
    with pytest.raises(SamplerError, match=r"units \(bytes\) must be given"):
        capped_bytes.consume("en", tokens=4)
    with pytest.raises(SamplerError, match=r"index must be an integer >= 0, got -1"):
        sampler.sample(-1)


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**64 - 1])
def test_scalar_draw_path_equals_array_path(seed: int) -> None:
    """`sample` (pure-Python SplitMix64 + bisect) and `sample_many` (numpy) agree on every index."""
    from xlmr_hf.data.sampling import _uniform, _uniforms

    indices = np.concatenate([np.arange(3000), np.array([2**40 + 7, 2**62 - 1, 2**63 - 1])])
    assert [_uniform(seed, int(i)) for i in indices] == _uniforms(seed, indices).tolist()
    sampler = TemperatureSampler({"en": 300000, "fr": 56000, "hi": 2000, "sw": 275, "ur": 730}, seed=seed)
    assert [sampler.sample(int(i)) for i in indices] == sampler.sample_many(indices)
