"""Temperature-based language sampling with schedules, epoch caps, exact resume and live accounting.

`TemperatureSampler` draws the language of each global sample from ``q_i = p_i**alpha / sum_j p_j**alpha``. A draw is
a pure function of (seed, current alpha and active set, index), so it does not depend on workers or ranks; schedules
and caps advance only with the consumption reported to `TemperatureSampler.consume`. See ``docs/data_pipeline.md``
("Temperature sampling") for the determinism contract, the schedules and the caps.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .schedules import ScheduleRules, TokenSchedule

__all__ = [
    "SAMPLER_UNITS",
    "SCHEDULE_TYPES",
    "SamplerError",
    "SamplerExhaustedError",
    "TemperatureSampler",
    "temperature_probabilities",
]

logger = logging.getLogger(__name__)

SAMPLER_UNITS: tuple[str, ...] = ("tokens", "bytes", "documents", "lines")
SCHEDULE_TYPES: tuple[str, ...] = ("constant", "phases", "linear", "cosine")
_STATE_VERSION = 1
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class SamplerError(ValueError):
    """Invalid sampler configuration, argument or state; the message names the field, the value and what is allowed."""


class SamplerExhaustedError(RuntimeError):
    """Every language has reached its cap (or no active language has data left): nothing can be drawn."""


def _check_alpha(alpha: Any, field: str) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise SamplerError(f"{field} must be a number in (0, 1], got {alpha!r}")
    value = float(alpha)
    if math.isnan(value) or value <= 0.0 or value > 1.0:
        raise SamplerError(f"{field} must be in (0, 1] (finite, > 0, <= 1), got {alpha!r}")
    return value


# The sampler's wording of schedule errors (`TokenSchedule` validates; `TemperatureSampler` adds ``languages``).
_ALPHA_RULES = ScheduleRules(
    value_key="alpha",
    check_value=_check_alpha,
    error=SamplerError,
    messages={
        "phases": "{prefix}.phases must be a non-empty list of phase mappings, got {value!r}",
        "phase": "{field} must be a mapping with keys until/alpha/languages, got {value!r}",
        "phase_keys": "{field} has unknown key(s) {unknown}; allowed: {allowed}",
        "until_missing": "{field}.until may be omitted only for the last phase",
        "until": "{field}.until must be an integer token count > {previous} (strictly increasing), got {value!r}",
        "total": "{prefix}.total must be a positive finite number of tokens, got {value!r}",
    },
    phase_extras=("languages",),
    strict_phase_keys=False,
    last_until=True,
    integer_total=False,
)


def temperature_probabilities(sizes: Mapping[str, float], alpha: float) -> dict[str, float]:
    """Return ``q_i = p_i**alpha / sum_j p_j**alpha`` with ``p_i = sizes[i] / sum(sizes)``, keys in sorted order.

    Languages of size 0 get ``q = 0``. Raises `SamplerError` for a bad ``alpha`` or if all sizes are zero."""
    alpha = _check_alpha(alpha, "alpha")
    total = float(sum(sizes.values()))
    if not total > 0.0:
        raise SamplerError(f"sizes must contain at least one positive size, got {dict(sizes)!r}")
    powered = {lang: (size / total) ** alpha if size > 0 else 0.0 for lang, size in sorted(sizes.items())}
    norm = sum(powered.values())
    return {lang: value / norm for lang, value in powered.items()}


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _mix64_int(x: int) -> int:
    """`_mix64` on one Python int (the scalar path of `TemperatureSampler.sample`; equal bit for bit)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _uniform(seed: int, index: int) -> float:
    """`_uniforms` for one index, in pure Python (~20× faster than the array path for a single draw)."""
    key = _mix64_int((seed + _GOLDEN) & _MASK64)
    bits = _mix64_int(key ^ _mix64_int((index * _GOLDEN + 1) & _MASK64))
    return (bits >> 11) * (1.0 / (1 << 53))


def _uniforms(seed: int, indices: np.ndarray) -> np.ndarray:
    """Uniforms in [0, 1) that are a pure function of ``(seed, index)`` (counter-based, order independent)."""
    key = _mix64(np.array([(seed + _GOLDEN) & _MASK64], dtype=np.uint64))
    with np.errstate(over="ignore"):
        bits = _mix64(key ^ _mix64(indices.astype(np.uint64) * np.uint64(_GOLDEN) + np.uint64(1)))
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class TemperatureSampler:
    """Deterministic temperature sampler over languages; see ``docs/data_pipeline.md`` for the contract.

    Args:
        sizes: language -> data size in ``unit`` (non-negative, finite; at least one positive).
        alpha: constant temperature exponent in (0, 1]; ignored when ``schedule`` is given.
        seed: non-negative integer seed (< 2**64).
        schedule: None (constant ``alpha``), ``{"type": "constant", "alpha": a}``,
            ``{"type": "phases", "phases": [{"until": N_tokens | None, "alpha": a, "languages": [...]}, ...]}``
            (phase ``i`` applies while consumed tokens < ``until``; the last phase may omit ``until``; ``languages``
            is the set active in that phase, omitted = all; languages not active have ``q = 0``), or
            ``{"type": "linear" | "cosine", "start": a0, "end": a1, "total": N_tokens}`` (alpha anneals with the
            consumed tokens and stays at ``end`` afterwards).
        caps: maximum passes over a language's data: one positive number for all, or language -> passes (languages
            not named are uncapped).
        unit: the unit of ``sizes``: one of `SAMPLER_UNITS`.
    """

    def __init__(
        self,
        sizes: Mapping[str, float],
        alpha: float = 0.3,
        seed: int = 0,
        *,
        schedule: Mapping[str, Any] | None = None,
        caps: float | Mapping[str, float] | None = None,
        unit: str = "tokens",
    ) -> None:
        if unit not in SAMPLER_UNITS:
            raise SamplerError(f"unit must be one of {list(SAMPLER_UNITS)}, got {unit!r}")
        self.unit = unit
        self.sizes = self._check_sizes(sizes)
        self.languages: list[str] = sorted(self.sizes)
        self.base_alpha = _check_alpha(alpha, "alpha")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MASK64:
            raise SamplerError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        self.seed = seed
        self._alpha_schedule = self._check_schedule(schedule)
        self.schedule: dict[str, Any] = self._alpha_schedule.to_dict()  # the config form (checkpoints)
        self.caps = self._check_caps(caps)
        self.position = 0
        self.tokens = dict.fromkeys(self.languages, 0)
        self.documents = dict.fromkeys(self.languages, 0)
        self.units: dict[str, float] = dict.fromkeys(self.languages, 0.0)
        self.draws = dict.fromkeys(self.languages, 0)
        self.exhausted: set[str] = set()
        self._refresh()

    # ----------------------------------------------------------------------------------------------- validation
    def _check_sizes(self, sizes: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(sizes, Mapping) or not sizes:
            raise SamplerError(f"sizes must be a non-empty mapping language -> size in {self.unit}, got {sizes!r}")
        checked: dict[str, float] = {}
        for lang, size in sizes.items():
            if not isinstance(lang, str) or not lang:
                raise SamplerError(f"sizes keys must be non-empty language strings, got {lang!r}")
            ok = isinstance(size, (int, float)) and not isinstance(size, bool)
            if not ok or not math.isfinite(float(size)) or float(size) < 0:
                raise SamplerError(f"sizes[{lang!r}] must be a finite number >= 0 ({self.unit}), got {size!r}")
            checked[lang] = float(size)
        if not any(v > 0 for v in checked.values()):
            raise SamplerError(f"sizes must contain at least one positive size ({self.unit}), all are zero: {checked}")
        return checked

    def _check_languages(self, langs: Any, field: str) -> list[str]:
        if isinstance(langs, str) or not isinstance(langs, Sequence) or not langs:
            raise SamplerError(f"{field} must be a non-empty list of languages from sizes, got {langs!r}")
        unknown = [lang for lang in langs if lang not in self.sizes]
        if unknown:
            raise SamplerError(f"{field} names unknown language(s) {unknown}; allowed: {self.languages}")
        if not any(self.sizes[lang] > 0 for lang in langs):
            raise SamplerError(f"{field} must contain a language with positive size, got {list(langs)}")
        return sorted(set(langs))

    def _schedule_rules(self) -> ScheduleRules:
        """The alpha flavour of `ScheduleRules`: SamplerError, alpha in (0, 1], phases may name ``languages``."""
        return dataclasses.replace(_ALPHA_RULES, check_extras=self._phase_languages)

    def _phase_languages(self, phase: Mapping[str, Any], field: str) -> dict[str, Any]:
        langs = phase.get("languages")
        return {"languages": self.languages if langs is None else self._check_languages(langs, f"{field}.languages")}

    def _check_schedule(self, schedule: Mapping[str, Any] | None) -> TokenSchedule:
        rules = self._schedule_rules()
        if schedule is None:
            return TokenSchedule("constant", self.base_alpha, rules=rules)
        if not isinstance(schedule, Mapping):
            raise SamplerError(f"schedule must be None or a mapping with 'type' in {list(SCHEDULE_TYPES)}")
        kind = schedule.get("type")
        if kind not in SCHEDULE_TYPES:
            raise SamplerError(f"schedule.type must be one of {list(SCHEDULE_TYPES)}, got {kind!r}")
        allowed = {
            "constant": {"type", "alpha"},
            "phases": {"type", "phases"},
            "linear": {"type", "start", "end", "total"},
            "cosine": {"type", "start", "end", "total"},
        }[kind]
        extra = sorted(set(schedule) - allowed)
        if extra:
            raise SamplerError(f"schedule ({kind}) has unknown key(s) {extra}; allowed: {sorted(allowed)}")
        return TokenSchedule(kind, schedule.get("alpha", self.base_alpha), start=schedule.get("start"),
                             end=schedule.get("end"), total=schedule.get("total"), phases=schedule.get("phases"),
                             rules=rules)

    def _check_caps(self, caps: float | Mapping[str, float] | None) -> dict[str, float]:
        def one(value: Any, field: str) -> float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(float(value)) or float(value) <= 0:
                raise SamplerError(f"{field} must be a positive finite number of passes (epochs), got {value!r}")
            return float(value)

        if caps is None:
            return {}
        if isinstance(caps, Mapping):
            unknown = [lang for lang in caps if lang not in self.sizes]
            if unknown:
                raise SamplerError(f"caps names unknown language(s) {unknown}; allowed: {self.languages}")
            return {lang: one(value, f"caps[{lang!r}]") for lang, value in sorted(caps.items())}
        return {lang: one(caps, "caps") for lang in self.languages}

    # ------------------------------------------------------------------------------------------------- schedule
    @property
    def consumed_tokens(self) -> int:
        """Total tokens reported through `consume` (the schedule clock)."""
        return sum(self.tokens.values())

    @property
    def alpha_schedule(self) -> TokenSchedule:
        """The alpha schedule (the shared `TokenSchedule`; its phases carry their ``languages``)."""
        return self._alpha_schedule

    def alpha_at(self, consumed_tokens: int) -> float:
        """The scheduled alpha once ``consumed_tokens`` tokens have been consumed (pure; no state change)."""
        return self._alpha_schedule.value_at(consumed_tokens)

    def languages_at(self, consumed_tokens: int) -> list[str]:
        """Languages joined by the schedule at ``consumed_tokens`` (before cap exhaustion), sorted."""
        phase = self._alpha_schedule.phase_at(consumed_tokens)
        return list(self.languages if phase is None else phase["languages"])

    def _refresh(self) -> None:
        """Recompute alpha, the active set, q and the CDF from the consumed accounting (the only place they change)."""
        clock = self.consumed_tokens
        self.alpha = self.alpha_at(clock)
        self.phase = self._alpha_schedule.phase_index(clock)
        joined = self.languages_at(clock)
        active = [lang for lang in joined if lang not in self.exhausted and self.sizes[lang] > 0]
        if getattr(self, "_key", None) == (self.alpha, active):
            return  # q depends only on alpha and the active set: most `consume` calls change neither
        self._key = (self.alpha, active)
        self.active = active
        if self.active:
            q = temperature_probabilities({lang: self.sizes[lang] for lang in self.active}, self.alpha)
            self._q = {lang: q.get(lang, 0.0) for lang in self.languages}
            self._cdf = np.cumsum([q[lang] for lang in self.active])
            self._cdf_list = self._cdf.tolist()
        else:
            self._cdf_list = []
            self._q = dict.fromkeys(self.languages, 0.0)
            self._cdf = np.zeros(0)

    def stable_until(self) -> float:
        """The schedule clock (consumed tokens) at which alpha or the joined languages next change; ``inf`` if never.
        Caps aside, draws until then use the current distribution (the stream plans them in one vectorized go)."""
        return self._alpha_schedule.next_change(self.consumed_tokens)

    def advance(self, draws: Mapping[str, int]) -> None:
        """Count draws made with `sample_many` at the current position (``language → draws``) and move past them."""
        for lang, count in draws.items():
            self.draws[lang] += int(count)
            self.position += int(count)

    @property
    def probabilities(self) -> dict[str, float]:
        """Current target ``q`` for every language (0 for languages not joined or exhausted), sorted by language."""
        return dict(self._q)

    # ---------------------------------------------------------------------------------------------------- draws
    def sample_many(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        """Languages of the global samples ``indices`` under the current distribution (pure; no accounting)."""
        if not self.active:
            raise SamplerExhaustedError(
                f"all languages are exhausted or inactive (caps={self.caps}, exhausted={sorted(self.exhausted)})"
            )
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and int(idx.min()) < 0:
            raise SamplerError(f"sample indices must be >= 0, got minimum {int(idx.min())}")
        positions = np.searchsorted(self._cdf, _uniforms(self.seed, idx), side="right")
        positions = np.minimum(positions, len(self.active) - 1)  # guards cdf[-1] rounding slightly below 1
        return [self.active[int(i)] for i in positions]

    def sample_codes(self, indices: np.ndarray) -> np.ndarray:
        """Like `sample_many`, as positions in `languages` (an int64 array; no strings are made)."""
        if not self.active:
            raise SamplerExhaustedError(
                f"all languages are exhausted or inactive (caps={self.caps}, exhausted={sorted(self.exhausted)})"
            )
        positions = np.searchsorted(self._cdf, _uniforms(self.seed, np.asarray(indices, dtype=np.int64)), "right")
        codes = np.array([self.languages.index(lang) for lang in self.active], dtype=np.int64)
        return codes[np.minimum(positions, len(self.active) - 1)]

    def sample(self, index: int) -> str:
        """Language of global sample ``index``: a pure function of (seed, current alpha/active set, index)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise SamplerError(f"index must be an integer >= 0, got {index!r}")
        if not self.active:
            return self.sample_many([int(index)])[0]  # raises SamplerExhaustedError
        position = bisect.bisect_right(self._cdf_list, _uniform(self.seed, int(index)))  # = searchsorted "right"
        return self.active[min(position, len(self.active) - 1)]

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        """Draw the language at the current position, advance it and count the draw; StopIteration when exhausted."""
        try:
            lang = self.sample(self.position)
        except SamplerExhaustedError:
            raise StopIteration from None
        self.position += 1
        self.draws[lang] += 1
        return lang

    # ------------------------------------------------------------------------------------------------ accounting
    def consume(self, language: str, tokens: int = 0, documents: int = 0, units: float | None = None) -> None:
        """Report data consumed for ``language``; advances the schedule clock and checks caps.

        ``units`` is the consumption in the sampler's ``unit`` (for caps); it defaults to ``tokens`` when
        ``unit == "tokens"`` and to ``documents`` when ``unit == "documents"``; for "bytes"/"lines" it must be given
        whenever caps are set."""
        if language not in self.sizes:
            raise SamplerError(f"consume: language {language!r} is unknown; allowed: {self.languages}")
        for name, value in (("tokens", tokens), ("documents", documents)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise SamplerError(f"consume: {name} must be an integer >= 0, got {value!r}")
        if units is None:
            if self.unit == "tokens":
                units = tokens
            elif self.unit == "documents":
                units = documents
            elif self.caps:
                raise SamplerError(f"consume: units ({self.unit}) must be given when caps are set and unit={self.unit!r}")
            else:
                units = 0.0
        if not math.isfinite(float(units)) or float(units) < 0:
            raise SamplerError(f"consume: units must be a finite number >= 0 ({self.unit}), got {units!r}")
        old_alpha, old_phase = self.alpha, self.phase
        self.tokens[language] += int(tokens)
        self.documents[language] += int(documents)
        self.units[language] += float(units)
        cap = self.caps.get(language)
        if cap is not None and language not in self.exhausted and self.units[language] >= cap * self.sizes[language]:
            self.exhausted.add(language)
            logger.info(
                "language %s exhausted: %.6g %s consumed >= cap %.6g x size %.6g; renormalizing",
                language, self.units[language], self.unit, cap, self.sizes[language],
            )
        self._refresh()
        if self.phase != old_phase:
            logger.info("sampler phase %d -> %d at %d tokens: alpha=%.4g languages=%s",
                        old_phase, self.phase, self.consumed_tokens, self.alpha, self.active)
        elif self.alpha != old_alpha:
            logger.debug("sampler alpha %.6g -> %.6g at %d tokens", old_alpha, self.alpha, self.consumed_tokens)

    def accounting(self) -> dict[str, dict[str, float]]:
        """Per language: consumed tokens/documents/units, draws, realized shares and the current target ``q``.

        ``share`` is the language's fraction of consumed tokens (0 if none consumed), ``draw_share`` its fraction of
        draws made by iteration; ``target`` is the current ``q``."""
        total_tokens = self.consumed_tokens
        total_draws = sum(self.draws.values())
        return {
            lang: {
                "tokens": self.tokens[lang],
                "documents": self.documents[lang],
                "units": self.units[lang],
                "draws": self.draws[lang],
                "share": self.tokens[lang] / total_tokens if total_tokens else 0.0,
                "draw_share": self.draws[lang] / total_draws if total_draws else 0.0,
                "target": self._q[lang],
                "exhausted": float(lang in self.exhausted),
            }
            for lang in self.languages
        }

    def log_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat metrics, e.g. ``share/en``, ``target/en``, ``tokens/en``, plus ``alpha`` and ``consumed_tokens``."""
        out: dict[str, float] = {
            f"{prefix}alpha": self.alpha,
            f"{prefix}phase": float(self.phase),
            f"{prefix}consumed_tokens": float(self.consumed_tokens),
            f"{prefix}position": float(self.position),
            f"{prefix}active_languages": float(len(self.active)),
        }
        for lang, row in self.accounting().items():
            for key, value in row.items():
                out[f"{prefix}{key}/{lang}"] = float(value)
        return out

    # ---------------------------------------------------------------------------------------------------- state
    def _config(self) -> dict[str, Any]:
        return {"sizes": dict(self.sizes), "unit": self.unit, "seed": self.seed, "schedule": self.schedule,
                "caps": dict(self.caps)}

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state: position, accounting, exhausted languages, current alpha and the config."""
        return {
            "version": _STATE_VERSION,
            "config": self._config(),
            "position": self.position,
            "tokens": dict(self.tokens),
            "documents": dict(self.documents),
            "units": dict(self.units),
            "draws": dict(self.draws),
            "exhausted": sorted(self.exhausted),
            "alpha": self.alpha,
            "phase": self.phase,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict`; the sampler configuration (sizes, unit, seed, schedule, caps) must match."""
        if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
            got = state.get("version") if isinstance(state, Mapping) else type(state).__name__
            raise SamplerError(f"state.version must be {_STATE_VERSION}, got {got!r}")
        mine = self._config()
        theirs = state.get("config")
        # A JSON round trip turns tuples into lists: compare through the same normalization.
        if json.loads(json.dumps(mine)) != json.loads(json.dumps(theirs)):
            raise SamplerError(f"state.config does not match this sampler: state has {theirs!r}, sampler has {mine!r}")
        for field in ("tokens", "documents", "units", "draws"):
            values = state.get(field)
            if not isinstance(values, Mapping) or set(values) != set(self.languages):
                raise SamplerError(f"state.{field} must map exactly the languages {self.languages}, got {values!r}")
        exhausted = state.get("exhausted", [])
        if any(lang not in self.sizes for lang in exhausted):
            raise SamplerError(f"state.exhausted names unknown language(s): {exhausted}; allowed: {self.languages}")
        position = state.get("position")
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise SamplerError(f"state.position must be an integer >= 0, got {position!r}")
        self.position = position
        self.tokens = {lang: int(state["tokens"][lang]) for lang in self.languages}
        self.documents = {lang: int(state["documents"][lang]) for lang in self.languages}
        self.units = {lang: float(state["units"][lang]) for lang in self.languages}
        self.draws = {lang: int(state["draws"][lang]) for lang in self.languages}
        self.exhausted = set(exhausted)
        self._refresh()
        if not math.isclose(self.alpha, float(state.get("alpha", self.alpha)), rel_tol=0, abs_tol=1e-12):
            raise SamplerError(f"state.alpha {state.get('alpha')!r} disagrees with the schedule's {self.alpha!r}")

    def __repr__(self) -> str:
        return (f"TemperatureSampler(languages={len(self.languages)}, unit={self.unit!r}, alpha={self.alpha:.4g}, "
                f"schedule={self.schedule['type']!r}, seed={self.seed}, position={self.position})")
