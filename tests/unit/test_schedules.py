"""TokenSchedule (`xlmr_hf.data.schedules`): exact values per type, phase lookup, next change, the saved forms, errors,
and that the sampler's alpha and the masker's rate are this one implementation."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest

from xlmr_hf.data import masking, sampling, schedules
from xlmr_hf.data.masking import (
    MASK_SCHEDULE_TYPES,
    Masker,
    MaskingError,
    MaskRateSchedule,
)
from xlmr_hf.data.sampling import SamplerError, TemperatureSampler
from xlmr_hf.data.schedules import (
    TOKEN_SCHEDULE_TYPES,
    ScheduleError,
    ScheduleRules,
    TokenSchedule,
)

SIZES = {"en": 300000, "fr": 56000, "hi": 2000, "sw": 275, "ur": 730}
CLOCKS = [0, 1, 99, 100, 101, 249, 250, 251, 499, 500, 501, 999, 1000, 1001, 1999, 2000, 2001, 10**9]
PHASES = [{"until": 100, "value": 0.75}, {"until": 500, "value": 0.5}, {"value": 0.25}]


# ------------------------------------------------------------------------------------------------------- values
def test_constant() -> None:
    schedule = TokenSchedule("constant", 0.3)
    assert [schedule.value_at(t) for t in (0, 10**15)] == [0.3, 0.3]
    assert schedule.next_change(0) == math.inf
    assert schedule.phase_index(5) == 0 and schedule.phase_at(5) is None and schedule.phases is None
    assert schedule.to_dict() == {"type": "constant", "value": 0.3}


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_anneals_exact_points(kind: str) -> None:
    schedule = TokenSchedule(kind, start=0.75, end=0.25, total=1000)
    assert schedule.value_at(0) == 0.75
    assert schedule.value_at(500) == 0.5  # both pass the exact midpoint half-way: cos(pi/2) rounds away in 1 - cos
    assert schedule.value_at(1000) == 0.25 and schedule.value_at(10**12) == 0.25  # then stays at end
    assert schedule.value_at(-5) == 0.75  # a clock below 0 counts as 0
    quarter = 0.625 if kind == "linear" else 0.75 - 0.5 * (1 - math.cos(math.pi / 4)) / 2
    assert schedule.value_at(250) == quarter
    assert schedule.to_dict() == {"type": kind, "start": 0.75, "end": 0.25, "total": 1000}


def test_cosine_is_symmetric_about_the_midpoint() -> None:
    schedule = TokenSchedule("cosine", start=1.0, end=0.0, total=1000)
    for t in (1, 100, 333, 499):
        assert schedule.value_at(t) + schedule.value_at(1000 - t) == pytest.approx(1.0, abs=1e-15)
        assert schedule.value_at(t) > schedule.value_at(t + 1)  # strictly decreasing until total


def test_phases_boundaries_and_lookup() -> None:
    schedule = TokenSchedule("phases", phases=PHASES)
    points = (0, 99, 100, 499, 500, 10**15)
    assert [schedule.value_at(t) for t in points] == [0.75, 0.75, 0.5, 0.5, 0.25, 0.25]
    assert [schedule.phase_index(t) for t in points] == [0, 0, 1, 1, 2, 2]
    assert schedule.phase_at(100) == {"until": 500, "value": 0.5}
    assert schedule.phases == [{"until": 100, "value": 0.75}, {"until": 500, "value": 0.5},
                               {"until": None, "value": 0.25}]
    schedule.phases[0]["value"] = 0.9  # copies: the schedule cannot be changed from outside
    schedule.phase_at(0)["value"] = 0.9
    assert schedule.value_at(0) == 0.75


def test_next_change() -> None:
    phases = TokenSchedule("phases", phases=PHASES)
    assert [phases.next_change(t) for t in (0, 99, 100, 499, 500, 10**9)] == [100, 100, 500, 500, math.inf, math.inf]
    linear = TokenSchedule("linear", start=0.5, end=0.25, total=10)
    assert [linear.next_change(t) for t in (0, 5, 9, 10, 11)] == [1, 6, 10, math.inf, math.inf]
    open_ended = ScheduleRules(last_until=True)  # the sampler's rule: the last phase may have an until
    last = TokenSchedule("phases", phases=[{"until": 10, "value": 1.0}, {"until": 20, "value": 2.0}], rules=open_ended)
    assert [last.next_change(t) for t in (0, 10, 19, 20, 99)] == [10, 20, 20, math.inf, math.inf]
    assert [last.value_at(t) for t in (9, 10, 20, 99)] == [1.0, 2.0, 2.0, 2.0]  # past every until: the last phase


def test_types_and_equality() -> None:
    assert TOKEN_SCHEDULE_TYPES == ("constant", "linear", "cosine", "phases")
    assert MASK_SCHEDULE_TYPES == TOKEN_SCHEDULE_TYPES
    ramp = {"start": 0.5, "end": 0.25, "total": 4}
    assert TokenSchedule("linear", **ramp) == TokenSchedule("linear", **ramp) != TokenSchedule("cosine", **ramp)
    assert TokenSchedule("constant", 0.5) != TokenSchedule("constant", 0.25)
    assert TokenSchedule("constant", np.float32(0.5)).value_at(0) == 0.5  # default rules: any finite real number
    assert "TokenSchedule" in repr(TokenSchedule("constant", 0.5))


# ------------------------------------------------------------------------------ one implementation for both users
def _same_settings(schedule: dict, key: str) -> TokenSchedule:
    """A TokenSchedule with the settings of a sampler/masker schedule mapping (any finite value, named "value")."""
    kind = schedule["type"]
    phases = [{"until": p.get("until"), "value": p[key]} for p in schedule.get("phases", [])]
    return TokenSchedule(kind, schedule.get(key), start=schedule.get("start"), end=schedule.get("end"),
                         total=schedule.get("total"), phases=phases or None, rules=ScheduleRules(integer_total=False))


SAMPLER_SCHEDULES = [
    {"type": "constant", "alpha": 0.55},
    {"type": "linear", "start": 0.7, "end": 0.3, "total": 1000},
    {"type": "cosine", "start": 0.7, "end": 0.3, "total": 1000},
    {"type": "cosine", "start": 0.1, "end": 0.9, "total": 777.5},
    {"type": "phases", "phases": [{"until": 100, "alpha": 0.7, "languages": ["en", "fr"]},
                                  {"until": 500, "alpha": 0.5}, {"alpha": 0.3}]},
]


@pytest.mark.parametrize("schedule", SAMPLER_SCHEDULES, ids=lambda s: s["type"])
def test_sampler_alpha_is_the_shared_value(schedule: dict) -> None:
    sampler = TemperatureSampler(SIZES, schedule=schedule)
    shared = _same_settings(schedule, "alpha")
    assert isinstance(sampler.alpha_schedule, TokenSchedule)
    assert [sampler.alpha_at(t) for t in CLOCKS] == [shared.value_at(t) for t in CLOCKS]
    for t in CLOCKS[:-1]:
        moved = TemperatureSampler(SIZES, schedule=schedule)
        if t:
            moved.consume("en", tokens=t)
        assert moved.stable_until() == shared.next_change(t)
        assert moved.phase == shared.phase_index(t)


MASK_SCHEDULES = [
    {"type": "constant", "rate": 0.2},
    {"type": "linear", "start": 0.3, "end": 0.1, "total": 1000},
    {"type": "cosine", "start": 0.3, "end": 0.1, "total": 1000},
    {"type": "phases", "phases": [{"until": 100, "rate": 0.3}, {"until": 500, "rate": 0.15}, {"rate": 0.05}]},
]


@pytest.mark.parametrize("schedule", MASK_SCHEDULES, ids=lambda s: s["type"])
def test_masker_rate_is_the_shared_value(schedule: dict) -> None:
    masker = Masker(vocab_size=10, mask_token_id=9, special_token_ids=[0, 1, 2], rate=schedule)
    shared = _same_settings(schedule, "rate")
    assert isinstance(masker.schedule.token_schedule, TokenSchedule)
    assert [masker.rate_at(t) for t in CLOCKS] == [shared.value_at(t) for t in CLOCKS]
    assert [masker.schedule.rate_at(t) for t in CLOCKS] == [shared.value_at(t) for t in CLOCKS]


def test_the_formula_lives_only_in_schedules() -> None:
    assert "math.cos" in inspect.getsource(schedules)
    for module in (sampling, masking):
        source = inspect.getsource(module)
        assert "math.cos" not in source and "np.cos" not in source, module.__name__
        assert "consumed_tokens < phase" not in source, module.__name__  # nor the phase lookup


def test_saved_forms_are_unchanged() -> None:
    """Checkpoints store these JSON strings: the sampler's schedule mapping and the rate schedule's `to_dict`."""
    sampler = TemperatureSampler({"en": 2, "fr": 1}, schedule={"type": "phases", "phases": [
        {"until": 10, "alpha": 0.7, "languages": ["fr", "en"]}, {"alpha": 0.3}]})
    assert json.dumps(sampler.state_dict()["config"]["schedule"]) == (
        '{"type": "phases", "phases": [{"until": 10, "alpha": 0.7, "languages": ["en", "fr"]}, '
        '{"until": null, "alpha": 0.3, "languages": ["en", "fr"]}]}')
    assert TemperatureSampler({"en": 1}, alpha=0.4).schedule == {"type": "constant", "alpha": 0.4}
    float_total = TemperatureSampler({"en": 1}, schedule={"type": "linear", "start": 0.7, "end": 0.3, "total": 1e9})
    assert json.dumps(float_total.schedule) == '{"type": "linear", "start": 0.7, "end": 0.3, "total": 1000000000.0}'
    rate = MaskRateSchedule("phases", phases=[{"until": np.int64(5), "rate": 0.3}, {"rate": 0.1}])
    assert json.dumps(rate.to_dict()) == (
        '{"type": "phases", "phases": [{"until": 5, "rate": 0.3}, {"until": null, "rate": 0.1}]}')
    ramp = MaskRateSchedule("cosine", start=0.3, end=0.1, total=np.int64(7))
    assert json.dumps(ramp.to_dict()) == '{"type": "cosine", "start": 0.3, "end": 0.1, "total": 7}'
    assert (ramp.type, ramp.rate, ramp.start, ramp.end, ramp.total, ramp.phases) == ("cosine", None, 0.3, 0.1, 7, None)


# ------------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"type": "step"}, r"^schedule\.type must be one of \['constant', 'linear', 'cosine', 'phases'\], got 'step'$"),
        ({"value": None}, r"^schedule\.value must be a finite number, got None$"),
        ({"value": math.inf}, r"^schedule\.value must be a finite number, got inf$"),
        ({"type": "linear", "start": 0.5, "end": True, "total": 3},
         r"^schedule\.end must be a finite number, got True$"),
        ({"type": "cosine", "start": 0.5, "end": 0.1, "total": 0}, r"^schedule\.total must be an integer >= 1, got 0$"),
        ({"type": "cosine", "start": 0.5, "end": 0.1, "total": 2.5},
         r"^schedule\.total must be an integer >= 1, got 2\.5$"),
        ({"type": "phases", "phases": []}, r"^schedule\.phases must be a non-empty list of phase mappings, got \[\]$"),
        ({"type": "phases", "phases": {"value": 1}}, r"^schedule\.phases must be a non-empty list"),
        ({"type": "phases", "phases": [3]},
         r"^schedule\.phases\[0\] must be a mapping with keys \['until', 'value'\], got 3$"),
        ({"type": "phases", "phases": [{"value": 1}, {"value": 2}]},
         r"^schedule\.phases\[0\] must have the keys \['until', 'value'\] .*, got \['value'\]$"),
        ({"type": "phases", "phases": [{"until": 3, "value": 1, "rate": 2}, {"value": 2}]},
         r"^schedule\.phases\[0\] must have the keys .*got \['rate', 'until', 'value'\]$"),
        ({"type": "phases", "phases": [{"until": None, "value": 1}, {"value": 2}]},
         r"^schedule\.phases\[0\]\.until may be omitted only for the last phase$"),
        ({"type": "phases", "phases": [{"until": 5, "value": 1}, {"until": 5, "value": 2}, {"value": 3}]},
         r"^schedule\.phases\[1\]\.until must be an integer token count > 5 \(strictly increasing\), got 5$"),
        ({"type": "phases", "phases": [{"until": 5.0, "value": 1}, {"value": 2}]},
         r"^schedule\.phases\[0\]\.until must be an integer token count > 0 .*got 5\.0$"),
        ({"type": "phases", "phases": [{"until": 5, "value": 1}]},
         r"^schedule\.phases\[0\]\.until must be omitted \(None\) for the last phase, got 5$"),
    ],
)
def test_default_rules_errors(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ScheduleError, match=pattern):
        TokenSchedule(**kwargs)
    assert issubclass(ScheduleError, ValueError)


def test_rules_set_name_error_prefix_wording_and_extras() -> None:
    class MyError(ValueError):
        pass

    def positive(value: object, field: str) -> float:
        if not isinstance(value, float) or value <= 0:
            raise MyError(f"{field} must be a float > 0, got {value!r}")
        return value

    def tags(phase: dict, field: str) -> dict:
        if not isinstance(phase.get("tag", ""), str):
            raise MyError(f"{field}.tag must be a string, got {phase['tag']!r}")
        return {"tag": phase.get("tag", "")}

    rules = ScheduleRules(value_key="lr", check_value=positive, error=MyError, prefix="opt", phase_extras=("tag",),
                          check_extras=tags, strict_phase_keys=False,
                          messages={"total": "{prefix}.total: bad {value!r}"})
    schedule = TokenSchedule("phases", phases=[{"until": 4, "lr": 1.0, "tag": "warm"}, {"lr": 0.5}], rules=rules)
    assert schedule.to_dict() == {"type": "phases", "phases": [{"until": 4, "lr": 1.0, "tag": "warm"},
                                                               {"until": None, "lr": 0.5, "tag": ""}]}
    assert schedule.phase_at(4) == {"until": None, "lr": 0.5, "tag": ""}
    assert TokenSchedule("constant", 2.0, rules=rules).to_dict() == {"type": "constant", "lr": 2.0}
    with pytest.raises(MyError, match=r"^opt\.lr must be a float > 0, got 0\.0$"):
        TokenSchedule("constant", 0.0, rules=rules)
    with pytest.raises(MyError, match=r"^opt\.phases\[1\]\.lr must be a float > 0, got None$"):  # not strict: no key
        TokenSchedule("phases", phases=[{"until": 4, "lr": 1.0}, {"tag": "x"}], rules=rules)
    with pytest.raises(MyError, match=r"^opt\.phases\[0\]\.tag must be a string, got 3$"):
        TokenSchedule("phases", phases=[{"until": 4, "lr": 1.0, "tag": 3}, {"lr": 0.5}], rules=rules)
    with pytest.raises(MyError, match=r"^opt\.total: bad 0$"):
        TokenSchedule("linear", start=1.0, end=0.5, total=0, rules=rules)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"type": "linear", "start": 0.7, "end": 0.3, "total": math.nan},
         "schedule.total must be a positive finite number of tokens, got nan"),
        ({"type": "phases", "phases": [{"alpha": 0.5, "rate": 0.1}]},
         "schedule.phases[0] has unknown key(s) ['rate']; allowed: ['alpha', 'languages', 'until']"),
        ({"type": "phases", "phases": [{"alpha": 0.5}, {"alpha": 0.5}]},
         "schedule.phases[0].until may be omitted only for the last phase"),
        ({"type": "phases", "phases": [{"until": 10}, {"alpha": 0.5}]},
         "schedule.phases[0].alpha must be a number in (0, 1], got None"),
        ({"type": "phases", "phases": [7]},
         "schedule.phases[0] must be a mapping with keys until/alpha/languages, got 7"),
        ({"type": "phases", "phases": "ab"}, "schedule.phases must be a non-empty list of phase mappings, got 'ab'"),
        ({"type": "phases", "phases": [{"until": 10, "alpha": 0.5, "languages": ["xx"]}, {"until": 5, "alpha": 0.5}]},
         "schedule.phases[0].languages names unknown language(s) ['xx']; allowed: ['en', 'fr', 'hi', 'sw', 'ur']"),
    ],
)
def test_sampler_schedule_errors_keep_their_wording(schedule: dict, message: str) -> None:
    with pytest.raises(SamplerError) as caught:
        TemperatureSampler(SIZES, schedule=schedule)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "phases", "phases": [{"until": 5, "rate": 0.3}, {"until": 7, "rate": 0.2}]},
         "schedule.phases[1].until must be None for the last phase, got 7"),
        ({"type": "phases", "phases": [{"until": 5, "rate": 0.3}, {"until": 5, "rate": 0.2}, {"rate": 0.1}]},
         "schedule.phases[1].until must be an integer >= 6, got 5"),
        ({"type": "phases", "phases": [7]}, "schedule.phases[0] must be a mapping with keys until, rate; got 7"),
        ({"type": "phases", "phases": "ab"},
         "schedule.phases must be a non-empty list of {until, rate} mappings, got 'ab'"),
        ({"type": "phases", "phases": [{"until": 5}, {"rate": 0.1}]},
         ("schedule.phases[0] must have the keys ['rate', 'until'] ('until' may be omitted in the last phase, as in "
          "the sampler's schedule), got ['until']")),
        ({"type": "linear", "start": 0.3, "end": 0.1, "total": 2.0}, "schedule.total must be an integer >= 1, got 2.0"),
        ({"type": "cosine", "start": 0.3, "end": 1.0, "total": 2},
         "schedule.end must be in (0, 1) (exclusive), got 1.0"),
    ],
)
def test_masker_schedule_errors_keep_their_wording(kwargs: dict, message: str) -> None:
    with pytest.raises(MaskingError) as caught:
        MaskRateSchedule(**kwargs)
    assert str(caught.value) == message


def test_sampler_last_phase_may_keep_an_until() -> None:
    """The sampler (unlike the masker) accepts an ``until`` in the last phase: past it, the last phase stays."""
    sampler = TemperatureSampler(SIZES, schedule={"type": "phases", "phases": [{"until": 10, "alpha": 0.7},
                                                                               {"until": 20, "alpha": 0.2}]})
    assert [sampler.alpha_at(t) for t in (9, 10, 20, 99)] == [0.7, 0.2, 0.2, 0.2]
    sampler.consume("en", tokens=25)
    assert sampler.stable_until() == math.inf and sampler.phase == 1
