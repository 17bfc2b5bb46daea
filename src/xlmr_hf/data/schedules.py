"""One schedule of a value over consumed tokens, shared by the language sampler's alpha and the masker's rate.

`TokenSchedule` is a value as a function of the schedule clock (tokens consumed so far): ``constant``, ``linear`` or
``cosine`` from ``start`` to ``end`` over ``total`` tokens (then ``end``), or ``phases`` (phase ``i`` applies while
the clock is below its ``until``). Its users differ only in what they call the value, which values they allow, the
error class and the wording of their errors: a `ScheduleRules` says that, so each user keeps its own messages while
the formulas, the phase lookup and the validation live here once. See ``docs/data_pipeline.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["TOKEN_SCHEDULE_TYPES", "ScheduleError", "ScheduleRules", "TokenSchedule"]

TOKEN_SCHEDULE_TYPES: tuple[str, ...] = ("constant", "linear", "cosine", "phases")


class ScheduleError(ValueError):
    """Invalid schedule with the default `ScheduleRules`; the message names the field, the value and what is allowed."""


def _check_finite(value: Any, field: str) -> float:
    """The default value check: any finite real number."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)):
        raise ScheduleError(f"{field} must be a finite number, got {value!r}")
    return float(value)


_DEFAULT_MESSAGES: dict[str, str] = {
    "phases": "{prefix}.phases must be a non-empty list of phase mappings, got {value!r}",
    "phase": "{field} must be a mapping with keys {allowed}, got {value!r}",
    "phase_keys": "{field} must have the keys {allowed} ('until' may be omitted in the last phase), got {keys}",
    "until_missing": "{field}.until may be omitted only for the last phase",
    "until": "{field}.until must be an integer token count > {previous} (strictly increasing), got {value!r}",
    "last_until": "{field}.until must be omitted (None) for the last phase, got {value!r}",
    "total": "{prefix}.total must be an integer >= 1, got {value!r}",
}


@dataclasses.dataclass(frozen=True)
class ScheduleRules:
    """What a user of `TokenSchedule` calls its value, which values it allows and how its errors read.

    Attributes:
        value_key: the value's name: the constant value's field and each phase's key (``"alpha"``, ``"rate"``).
        check_value: ``(value, field) -> float``; raises (naming ``field``) for a value not allowed.
        error: the exception class of the structural errors below.
        prefix: the field prefix of error messages (``"schedule"`` gives ``schedule.total``, ``schedule.phases[1]``).
        messages: templates overriding the defaults, by name: ``phases`` (the list), ``phase`` (a phase not a
            mapping), ``phase_keys``, ``until_missing`` (``until`` None before the last phase), ``until``,
            ``last_until`` (``until`` given in the last phase, when not allowed) and ``total``. They are formatted
            with ``prefix``, ``field`` (``<prefix>.phases[i]``), ``value``, ``previous`` (the last ``until``, 0 at
            first), ``minimum`` (``previous + 1``), ``keys`` (a phase's keys, sorted), ``unknown`` and ``allowed``.
        phase_extras: phase keys besides ``until`` and the value key that ``check_extras`` reads.
        check_extras: ``(phase, field) -> dict``: the checked extras stored after the value in the phase (e.g. the
            sampler's ``languages``); called for each phase once its ``until`` and value are checked.
        strict_phase_keys: True: a phase must have the value key and, unless last, ``until`` (``phase_keys`` error,
            also for unknown keys); False: only unknown keys are an error, a missing value goes to ``check_value``.
        last_until: True: the last phase may have an ``until`` (its phase then lasts forever anyway).
        integer_total: True: ``total`` is an integer >= 1; False: any positive finite number.
    """

    value_key: str = "value"
    check_value: Callable[[Any, str], float] = _check_finite
    error: type[Exception] = ScheduleError
    prefix: str = "schedule"
    messages: Mapping[str, str] = dataclasses.field(default_factory=dict)
    phase_extras: tuple[str, ...] = ()
    check_extras: Callable[[Mapping[str, Any], str], dict[str, Any]] | None = None
    strict_phase_keys: bool = True
    last_until: bool = False
    integer_total: bool = True

    def fail(self, name: str, **values: Any) -> Exception:
        """The error named ``name`` (a `messages` key), formatted with ``values`` and the prefix."""
        template = self.messages.get(name, _DEFAULT_MESSAGES[name])
        return self.error(template.format(prefix=self.prefix, **values))


class TokenSchedule:
    """A value as a function of consumed tokens (the schedule clock); pure, no state besides its settings.

    Args:
        type: one of `TOKEN_SCHEDULE_TYPES`.
        value: the ``constant`` value (read only by ``constant``).
        start, end, total: ``linear``/``cosine``: the value goes from ``start`` (clock 0) to ``end`` (clock
            ``total``) and stays at ``end``; cosine uses the weight ``(1 - cos(pi * t)) / 2``, ``t = clock / total``.
        phases: ``phases``: ``[{"until": int | None, <value_key>: float, **extras}, ...]``; phase ``i`` applies while
            the clock is < its ``until`` (strictly increasing); the last phase, and only it, omits ``until`` (or has
            None; `ScheduleRules.last_until` may allow an ``until`` there, after which the last phase stays).
        rules: the value's name, allowed values and error wording (`ScheduleRules`; default: any finite number
            called ``value``, `ScheduleError`).

    Arguments a type does not read are ignored: callers reject them with their own wording.
    """

    def __init__(
        self,
        type: str = "constant",  # the config key is "type"
        value: float | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        total: float | None = None,
        phases: Sequence[Mapping[str, Any]] | None = None,
        rules: ScheduleRules | None = None,
    ) -> None:
        self.rules = rules if rules is not None else ScheduleRules()
        if type not in TOKEN_SCHEDULE_TYPES:
            raise self.rules.error(f"{self.rules.prefix}.type must be one of {list(TOKEN_SCHEDULE_TYPES)}, "
                                   f"got {type!r}")
        self.type = type
        self.value: float | None = None
        self.start: float | None = None
        self.end: float | None = None
        self.total: float | None = None
        self._phases: list[dict[str, Any]] = []
        check, prefix = self.rules.check_value, self.rules.prefix
        if type == "constant":
            self.value = check(value, f"{prefix}.{self.rules.value_key}")
        elif type == "phases":
            self._phases = self._check_phases(phases)
        else:
            self.start = check(start, f"{prefix}.start")
            self.end = check(end, f"{prefix}.end")
            self.total = self._check_total(total)

    # ----------------------------------------------------------------------------------------------- validation
    def _check_total(self, total: Any) -> float | int:
        rules = self.rules
        if rules.integer_total:
            if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or int(total) < 1:
                raise rules.fail("total", value=total)
            return int(total)
        if isinstance(total, bool) or not isinstance(total, (int, float)) or not 0 < total < math.inf:
            raise rules.fail("total", value=total)
        return total

    def _check_phase_keys(self, phase: Any, field: str, last: bool) -> None:
        rules, key = self.rules, self.rules.value_key
        allowed = sorted({"until", key, *rules.phase_extras})
        if not isinstance(phase, Mapping):
            raise rules.fail("phase", field=field, value=phase, allowed=allowed)
        keys = set(phase)
        unknown = sorted(keys - set(allowed))
        missing = rules.strict_phase_keys and not ({key} if last else {key, "until"}) <= keys
        if unknown or missing:
            raise rules.fail("phase_keys", field=field, keys=sorted(keys), unknown=unknown, allowed=allowed)

    def _check_phases(self, phases: Any) -> list[dict[str, Any]]:
        rules = self.rules
        if isinstance(phases, (str, bytes, Mapping)) or not isinstance(phases, Sequence) or not phases:
            raise rules.fail("phases", value=phases)
        checked: list[dict[str, Any]] = []
        previous = 0
        for i, phase in enumerate(phases):
            field = f"{rules.prefix}.phases[{i}]"
            last = i == len(phases) - 1
            self._check_phase_keys(phase, field, last)
            until = phase.get("until")
            if until is None:
                if not last:
                    raise rules.fail("until_missing", field=field)
            elif last and not rules.last_until:
                raise rules.fail("last_until", field=field, value=until)
            else:
                if isinstance(until, bool) or not isinstance(until, (int, np.integer)) or int(until) <= previous:
                    raise rules.fail("until", field=field, value=until, previous=previous, minimum=previous + 1)
                until = previous = int(until)
            row = {"until": until, rules.value_key: rules.check_value(phase.get(rules.value_key),
                                                                     f"{field}.{rules.value_key}")}
            if rules.check_extras is not None:
                row.update(rules.check_extras(phase, field))
            checked.append(row)
        return checked

    # ---------------------------------------------------------------------------------------------------- values
    @property
    def phases(self) -> list[dict[str, Any]] | None:
        """The checked phases (copies; ``until`` None in the open-ended last one), or None for other types."""
        return [dict(phase) for phase in self._phases] if self.type == "phases" else None

    def phase_index(self, consumed_tokens: int) -> int:
        """Index of the phase in force at ``consumed_tokens`` (the last one past every ``until``); 0 for other types."""
        for i, phase in enumerate(self._phases):
            if phase["until"] is None or consumed_tokens < phase["until"]:
                return i
        return max(len(self._phases) - 1, 0)

    def phase_at(self, consumed_tokens: int) -> dict[str, Any] | None:
        """The phase in force at ``consumed_tokens`` (a copy, extras included), or None for other types."""
        return dict(self._phases[self.phase_index(consumed_tokens)]) if self._phases else None

    def value_at(self, consumed_tokens: int) -> float:
        """The value once ``consumed_tokens`` tokens have been consumed (pure; a clock below 0 counts as 0)."""
        if self.type == "constant":
            return float(self.value)  # type: ignore[arg-type]
        if self.type == "phases":
            return float(self._phases[self.phase_index(consumed_tokens)][self.rules.value_key])
        frac = min(max(consumed_tokens / self.total, 0.0), 1.0)  # type: ignore[operator]
        weight = frac if self.type == "linear" else (1.0 - math.cos(math.pi * frac)) / 2.0
        return float(self.start + (self.end - self.start) * weight)  # type: ignore[operator]

    def next_change(self, consumed_tokens: int) -> float:
        """The clock after ``consumed_tokens`` at which the value (or, with phases, the phase) next may change.

        ``inf`` when never: constant, the last phase, or an anneal past ``total``. Phases: the current phase's
        ``until``. Linear/cosine: ``consumed_tokens + 1`` until ``total`` (every token moves the value)."""
        if self.type == "constant":
            return math.inf
        if self.type == "phases":
            until = self._phases[self.phase_index(consumed_tokens)]["until"]
            return math.inf if until is None or consumed_tokens >= until else float(until)
        return consumed_tokens + 1.0 if consumed_tokens < self.total else math.inf  # type: ignore[operator]

    # ----------------------------------------------------------------------------------------------------- state
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable settings: ``{"type", <value_key>}``, ``{"type", "start", "end", "total"}`` or
        ``{"type", "phases"}`` (each phase ``{"until", <value_key>, **extras}``)."""
        if self.type == "constant":
            return {"type": "constant", self.rules.value_key: self.value}
        if self.type == "phases":
            return {"type": "phases", "phases": [dict(phase) for phase in self._phases]}
        return {"type": self.type, "start": self.start, "end": self.end, "total": self.total}

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TokenSchedule) and self.rules.value_key == other.rules.value_key
                and self.to_dict() == other.to_dict())

    __hash__ = None  # type: ignore[assignment]  # compared by settings, like a dict

    def __repr__(self) -> str:
        return f"TokenSchedule({self.to_dict()!r}, value_key={self.rules.value_key!r})"
