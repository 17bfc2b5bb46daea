"""Masked-LM masking (exact count or Bernoulli, 80/10/10, whole-word, rate schedules) and TLM examples.

`Masker.mask` turns one block of token ids into ``(masked_ids, labels)`` as a pure function of (seed, block index,
ids, rate), so the masker has no RNG state to save. `MaskRateSchedule` maps consumed tokens to a rate; `tlm_example`
and `collate_tlm` build XLM's translation-LM batches. See ``docs/data_pipeline.md`` ("Masking", "TLM examples") for
the exact rules.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .schedules import TOKEN_SCHEDULE_TYPES, ScheduleRules, TokenSchedule

__all__ = [
    "MASKING_MODES",
    "MASK_SCHEDULE_TYPES",
    "MaskRateSchedule",
    "Masker",
    "MaskingError",
    "collate_tlm",
    "tlm_example",
]

logger = logging.getLogger(__name__)

MASKING_MODES: tuple[str, ...] = ("exact", "bernoulli")
MASK_SCHEDULE_TYPES: tuple[str, ...] = TOKEN_SCHEDULE_TYPES  # ("constant", "linear", "cosine", "phases")
_MASK_TAG = 0x4D41534B  # "MASK": separates the masker's random streams from other components' with the same seed
_IGNORE_INDEX = -100


class MaskingError(ValueError):
    """Invalid masking/TLM configuration or input; the message names the field, the value and what is allowed."""


# ---------------------------------------------------------------------------------------------------- validation
def _check_int(value: Any, field: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise MaskingError(f"{field} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise MaskingError(f"{field} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_rate(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise MaskingError(f"{field} must be a number in (0, 1), got {value!r}")
    rate = float(value)
    if not 0.0 < rate < 1.0:  # also rejects NaN
        raise MaskingError(f"{field} must be in (0, 1) (exclusive), got {value!r}")
    return rate


def _check_fraction(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise MaskingError(f"{field} must be a number in [0, 1], got {value!r}")
    fraction = float(value)
    if not 0.0 <= fraction <= 1.0:
        raise MaskingError(f"{field} must be in [0, 1], got {value!r}")
    return fraction


# The masker's wording of schedule errors (`TokenSchedule` validates them).
_RATE_RULES = ScheduleRules(
    value_key="rate",
    check_value=_check_rate,
    error=MaskingError,
    messages={
        "phases": "{prefix}.phases must be a non-empty list of {{until, rate}} mappings, got {value!r}",
        "phase": "{field} must be a mapping with keys until, rate; got {value!r}",
        "phase_keys": "{field} must have the keys {allowed} ('until' may be omitted in the last phase, as in the "
                      "sampler's schedule), got {keys}",
        "until_missing": "{field}.until may be None only for the last phase",
        "until": "{field}.until must be an integer >= {minimum}, got {value!r}",
        "last_until": "{field}.until must be None for the last phase, got {value!r}",
        "total": "{prefix}.total must be an integer >= 1, got {value!r}",
    },
)


# ---------------------------------------------------------------------------------------------------- schedule
class MaskRateSchedule:
    """Mask rate as a function of consumed tokens.

    Types:
        ``"constant"``: ``rate`` always.
        ``"linear"`` / ``"cosine"``: from ``start`` (0 consumed tokens) to ``end`` (``total`` consumed), then
        ``end``; cosine uses the weight ``(1 - cos(pi * t)) / 2`` with ``t = consumed / total``.
        ``"phases"``: ``[{"until": int | None, "rate": float}, ...]``; phase ``i`` applies while consumed
        tokens < its ``until`` (strictly increasing); the last phase, and only it, has ``until: None``.
        mmBERT: ``[{"until": A, "rate": 0.30}, {"until": B, "rate": 0.15}, {"until": None,
        "rate": 0.05}]``.

    Every rate is in (0, 1). ``rate`` is read only by ``"constant"`` (its default 0.15 is ignored by the other types);
    ``start``/``end``/``total`` only by linear/cosine and ``phases`` only by ``"phases"``: giving one to a
    type that does not read it is an error.
    """

    def __init__(
        self,
        type: str = "constant",  # the config key is "type"
        rate: float = 0.15,
        *,
        start: float | None = None,
        end: float | None = None,
        total: int | None = None,
        phases: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        if type not in MASK_SCHEDULE_TYPES:
            raise MaskingError(f"schedule type must be one of {list(MASK_SCHEDULE_TYPES)}, got {type!r}")
        ramp = {"start": start, "end": end, "total": total}
        if type in ("linear", "cosine"):
            for name, value in ramp.items():
                if value is None:
                    raise MaskingError(f"schedule type {type!r} needs {name}, got None")
        else:
            given = [name for name, value in ramp.items() if value is not None]
            if given:
                raise MaskingError(f"schedule type {type!r} does not take {given}; only 'linear'/'cosine' read them")
        if type != "phases" and phases is not None:
            raise MaskingError(f"schedule type {type!r} does not take phases; only type 'phases' reads them")
        self._schedule = TokenSchedule(type, rate, start=start, end=end, total=total, phases=phases,
                                       rules=_RATE_RULES)

    @property
    def token_schedule(self) -> TokenSchedule:
        """The shared `TokenSchedule` behind this rate schedule."""
        return self._schedule

    @property
    def type(self) -> str:
        """One of `MASK_SCHEDULE_TYPES`."""
        return self._schedule.type

    @property
    def rate(self) -> float | None:
        """The constant rate (None for the other types)."""
        return self._schedule.value

    @property
    def start(self) -> float | None:
        """linear/cosine: the rate at 0 consumed tokens (None for the other types)."""
        return self._schedule.start

    @property
    def end(self) -> float | None:
        """linear/cosine: the rate from ``total`` consumed tokens on (None for the other types)."""
        return self._schedule.end

    @property
    def total(self) -> int | None:
        """linear/cosine: the consumed tokens over which the rate moves (None for the other types)."""
        return self._schedule.total  # type: ignore[return-value]  # integer_total: an int

    @property
    def phases(self) -> list[dict[str, Any]] | None:
        """phases: ``[{"until", "rate"}, ...]`` (copies; None for the other types)."""
        return self._schedule.phases

    def rate_at(self, consumed_tokens: int) -> float:
        """The masking rate once ``consumed_tokens`` (>= 0) tokens have been consumed (pure)."""
        return self._schedule.value_at(_check_int(consumed_tokens, "consumed_tokens"))

    @classmethod
    def from_config(cls, value: float | Mapping[str, Any] | MaskRateSchedule) -> MaskRateSchedule:
        """A schedule from a number (constant rate), a mapping of this class's keyword arguments (e.g. `to_dict`'s
        output; ``type`` defaults to ``"constant"``) or an existing schedule (returned as is)."""
        if isinstance(value, MaskRateSchedule):
            return value
        if isinstance(value, Mapping):
            allowed = {"type", "rate", "start", "end", "total", "phases"}
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise MaskingError(f"rate schedule has unknown key(s) {unknown}; allowed: {sorted(allowed)}")
            return cls(**dict(value))
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise MaskingError(f"rate must be a number in (0, 1), a schedule mapping or a MaskRateSchedule, "
                               f"got {value!r}")
        return cls("constant", _check_rate(value, "rate"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; ``MaskRateSchedule.from_config(s.to_dict()) == s``."""
        return self._schedule.to_dict()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MaskRateSchedule) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable attributes: unhashable, like a dict

    def __repr__(self) -> str:
        return f"MaskRateSchedule({self.to_dict()!r})"


# ---------------------------------------------------------------------------------------------------- masker
class Masker:
    """MLM masking of 1-D token blocks; see ``docs/data_pipeline.md`` ("Masking") for the exact rules.

    Args:
        vocab_size: number of ids (the model's vocabulary); must exceed every id used.
        mask_token_id: id of ``<mask>``.
        special_token_ids: ids never selected nor drawn as random replacements (``tokenizer.all_special_ids``).
        pad_token_id: padding id (excluded like the special ids).
        rate: a number in (0, 1), a `MaskRateSchedule` mapping or a `MaskRateSchedule`.
        mask_fraction / random_fraction: shares of selected tokens replaced by ``<mask>`` / a random id (each >= 0,
            sum <= 1); the rest keep their id.
        mode: ``"exact"`` (fairseq) or ``"bernoulli"`` (transformers).
        word_starts: bool array of length ``vocab_size`` (``xlmr_hf.tokenization.word_start_mask(tokenizer)``);
            given -> whole-word masking.
        seed: non-negative integer.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        mask_token_id: int,
        special_token_ids: Sequence[int],
        pad_token_id: int = 1,
        rate: float | Mapping[str, Any] | MaskRateSchedule = 0.15,
        mask_fraction: float = 0.8,
        random_fraction: float = 0.1,
        mode: str = "exact",
        word_starts: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        self.vocab_size = _check_int(vocab_size, "vocab_size", minimum=1)
        self.mask_token_id = _check_int(mask_token_id, "mask_token_id")
        if self.mask_token_id >= self.vocab_size:
            raise MaskingError(f"vocab_size must be > mask_token_id={self.mask_token_id}, got {self.vocab_size}")
        self.pad_token_id = _check_int(pad_token_id, "pad_token_id")
        if self.pad_token_id >= self.vocab_size:
            raise MaskingError(f"pad_token_id must be in [0, vocab_size={self.vocab_size}), got {pad_token_id!r}")
        if isinstance(special_token_ids, (str, bytes)) or not isinstance(special_token_ids, (Sequence, np.ndarray)):
            raise MaskingError(f"special_token_ids must be a sequence of ids, got {special_token_ids!r}")
        specials = set()
        for i, token_id in enumerate(special_token_ids):
            value = _check_int(token_id, f"special_token_ids[{i}]")
            if value >= self.vocab_size:
                raise MaskingError(f"special_token_ids[{i}] must be in [0, vocab_size={self.vocab_size}), "
                                   f"got {value}")
            specials.add(value)
        self.special_token_ids: list[int] = sorted(specials)
        self.schedule = MaskRateSchedule.from_config(rate)
        self.mask_fraction = _check_fraction(mask_fraction, "mask_fraction")
        self.random_fraction = _check_fraction(random_fraction, "random_fraction")
        if self.mask_fraction + self.random_fraction > 1.0:
            raise MaskingError(f"mask_fraction + random_fraction must be <= 1, got {self.mask_fraction} + "
                               f"{self.random_fraction} = {self.mask_fraction + self.random_fraction}")
        if mode not in MASKING_MODES:
            raise MaskingError(f"mode must be one of {list(MASKING_MODES)}, got {mode!r}")
        self.mode = mode
        self.seed = _check_int(seed, "seed")
        # excluded[id]: never a candidate, never a random replacement.
        self._excluded = np.zeros(self.vocab_size, dtype=bool)
        self._excluded[self.special_token_ids] = True
        self._excluded[[self.pad_token_id, self.mask_token_id]] = True
        self._random_pool = np.flatnonzero(~self._excluded).astype(np.int64)
        if self.random_fraction > 0 and self._random_pool.size == 0:
            raise MaskingError(f"random_fraction={self.random_fraction} > 0 but every id of [0, vocab_size="
                               f"{self.vocab_size}) is special: no id to draw replacements from")
        self.word_starts: np.ndarray | None = None
        if word_starts is not None:
            starts = np.asarray(word_starts)
            if starts.dtype != np.bool_ or starts.ndim != 1:
                raise MaskingError(f"word_starts must be a 1-D bool array, got dtype {starts.dtype} with shape "
                                   f"{starts.shape}")
            if starts.shape[0] != self.vocab_size:
                raise MaskingError(f"word_starts must have length vocab_size={self.vocab_size}, got length "
                                   f"{starts.shape[0]}")
            self.word_starts = starts.copy()
        logger.debug("Masker %s", self.config_dict())

    @classmethod
    def from_tokenizer(
        cls, tokenizer: Any, *, word_starts: np.ndarray | None = None, whole_word: bool = False, **kwargs: Any
    ) -> Masker:
        """A masker with ``vocab_size=len(tokenizer)``, the tokenizer's mask/pad ids and ``all_special_ids``.

        ``whole_word=True`` needs ``word_starts`` (``xlmr_hf.tokenization.word_start_mask(tokenizer)``);
        ``word_starts`` with ``whole_word=False`` is an error (ambiguous). ``kwargs`` are the other `Masker`
        arguments (rate, mask_fraction, random_fraction, mode, seed).
        """
        fixed = sorted({"vocab_size", "mask_token_id", "special_token_ids", "pad_token_id"} & set(kwargs))
        if fixed:
            raise MaskingError(f"from_tokenizer takes {fixed} from the tokenizer; do not pass them (use Masker(...))")
        if whole_word and word_starts is None:
            raise MaskingError("whole_word=True needs word_starts (xlmr_hf.tokenization.word_start_mask(tokenizer)), "
                               "got None")
        if not whole_word and word_starts is not None:
            raise MaskingError("word_starts was given but whole_word=False; pass whole_word=True or omit word_starts")
        mask_token_id = getattr(tokenizer, "mask_token_id", None)
        if mask_token_id is None:
            raise MaskingError(f"tokenizer.mask_token_id must be an id, got None ({type(tokenizer).__name__} has no "
                               "mask token)")
        pad_token_id = getattr(tokenizer, "pad_token_id", None)
        if pad_token_id is None:
            raise MaskingError(f"tokenizer.pad_token_id must be an id, got None ({type(tokenizer).__name__})")
        return cls(
            vocab_size=len(tokenizer),
            mask_token_id=mask_token_id,
            special_token_ids=list(tokenizer.all_special_ids),
            pad_token_id=pad_token_id,
            word_starts=word_starts,
            **kwargs,
        )

    @property
    def whole_word(self) -> bool:
        """True when masking whole words (``word_starts`` given)."""
        return self.word_starts is not None

    def rate_at(self, consumed_tokens: int) -> float:
        """The scheduled masking rate after ``consumed_tokens`` tokens."""
        return self.schedule.rate_at(consumed_tokens)

    def _generator(self, index: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, _MASK_TAG, index])))

    def _check_ids(self, input_ids: Any) -> np.ndarray:
        ids = np.asarray(input_ids)
        if ids.ndim != 1:
            raise MaskingError(f"input_ids must be 1-D (one block), got shape {ids.shape}")
        if ids.size == 0:
            return ids.astype(np.int64)
        if not np.issubdtype(ids.dtype, np.integer):
            raise MaskingError(f"input_ids must hold integer ids, got dtype {ids.dtype}")
        ids = ids.astype(np.int64, copy=False)
        low, high = int(ids.min()), int(ids.max())
        if low < 0:
            raise MaskingError(f"input_ids must be in [0, vocab_size={self.vocab_size}), got id {low}")
        if high >= self.vocab_size:
            raise MaskingError(f"input_ids must be in [0, vocab_size={self.vocab_size}), got id {high} (is the "
                               "tokenizer's vocabulary larger than the model's?)")
        return ids

    def mask(self, input_ids: np.ndarray, index: int, *, rate: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mask one 1-D block: returns ``(masked_ids, labels)``, both new int64 arrays of the input's length.

        ``labels`` hold the original id at selected positions and -100 elsewhere. ``index`` (>= 0) is the block's
        global index. ``rate`` overrides the schedule (pass ``self.rate_at(consumed_tokens)``); it may be omitted
        only with a constant schedule. A pure function of ``(seed, index, input_ids, rate)``.
        """
        ids = self._check_ids(input_ids)
        index = _check_int(index, "index")
        if rate is None:
            if self.schedule.type != "constant":
                raise MaskingError(f"rate must be given (masker.rate_at(consumed_tokens)) with a {self.schedule.type!r}"
                                   " rate schedule, got None")
            rate = self.schedule.rate
        rate = _check_rate(rate, "rate")
        rng = self._generator(index)
        candidates = ~self._excluded[ids]
        if self.word_starts is None:
            unit_starts = np.flatnonzero(candidates)
        else:
            # A word starts at a word-start token, at the first position and right after any non-candidate token;
            # non-candidate tokens are one-token words of their own that are never selected.
            begins = self.word_starts[ids] | ~candidates
            if begins.size:
                begins[0] = True
                begins[1:] |= ~candidates[:-1]
            unit_starts = np.flatnonzero(begins & candidates)
        n_units = unit_starts.size
        if self.mode == "exact":
            count = min(int(rate * n_units + rng.random()), n_units)
            chosen = unit_starts[np.sort(rng.permutation(n_units)[:count])] if count else unit_starts[:0]
        else:
            chosen = unit_starts[rng.random(n_units) < rate]
        if self.word_starts is None:
            selected = np.zeros(ids.size, dtype=bool)
            selected[chosen] = True
        else:
            word_of = np.cumsum(begins) - 1
            word_selected = np.zeros(int(word_of[-1]) + 1 if ids.size else 0, dtype=bool)
            word_selected[word_of[chosen]] = True
            selected = word_selected[word_of]
        positions = np.flatnonzero(selected)
        labels = np.full(ids.size, _IGNORE_INDEX, dtype=np.int64)
        labels[positions] = ids[positions]
        masked = ids.copy()
        if positions.size:
            decision = rng.random(positions.size)
            masked[positions[decision < self.mask_fraction]] = self.mask_token_id
            randomised = positions[(decision >= self.mask_fraction)
                                   & (decision < self.mask_fraction + self.random_fraction)]
            if randomised.size:
                masked[randomised] = self._random_pool[rng.integers(0, self._random_pool.size, randomised.size)]
        return masked, labels

    def config_dict(self) -> dict[str, Any]:
        """JSON-serialisable configuration (for checkpoints and logs); ``word_starts`` is recorded as its SHA-256."""
        digest = None
        if self.word_starts is not None:
            digest = hashlib.sha256(np.packbits(self.word_starts).tobytes()).hexdigest()
        return {
            "vocab_size": self.vocab_size,
            "mask_token_id": self.mask_token_id,
            "special_token_ids": list(self.special_token_ids),
            "pad_token_id": self.pad_token_id,
            "rate": self.schedule.to_dict(),
            "mask_fraction": self.mask_fraction,
            "random_fraction": self.random_fraction,
            "mode": self.mode,
            "whole_word": self.whole_word,
            "word_starts_sha256": digest,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return f"Masker({self.config_dict()!r})"


# ---------------------------------------------------------------------------------------------------- TLM
def _check_ids_list(values: Any, field: str) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise MaskingError(f"{field} must be a sequence of token ids, got {values!r}")
    out = [_check_int(value, f"{field}[{i}]") for i, value in enumerate(values)]
    if not out:
        raise MaskingError(f"{field} must be non-empty, got []")
    return out


def _truncated_lengths(source: int, target: int, budget: int) -> tuple[int, int]:
    """Longest-first truncation: drop one token at a time from the longer side (the target on ties)."""
    if source + target <= budget:
        return source, target
    kept_target = min(target, max(budget - source, budget // 2))
    return min(source, budget - kept_target), kept_target


def tlm_example(
    source_ids: Sequence[int],
    target_ids: Sequence[int],
    source_language: str,
    target_language: str,
    *,
    max_length: int = 256,
    bos_token_id: int = 0,
    eos_token_id: int = 2,
    pad_token_id: int = 1,
) -> dict[str, Any]:
    """One translation-LM example: ``input_ids = <s> src </s> </s> tgt </s>``.

    Returns ``{"input_ids", "position_ids", "languages"}`` (plain lists, one entry per token): positions are
    ``pad_token_id + 1, ...`` over ``<s> src </s>`` and restart at ``pad_token_id + 1`` over ``</s> tgt </s>``;
    ``languages`` is ``source_language`` over the first part and ``target_language`` over the second. When the pair
    exceeds ``max_length`` (>= 6), src and tgt are truncated at their ends longest-first (one token at a time from the
    longer side, the target on ties) so that the total is exactly ``max_length``; the four specials are always kept
    and each side keeps at least one token.
    """
    source = _check_ids_list(source_ids, "source_ids")
    target = _check_ids_list(target_ids, "target_ids")
    for field, language in (("source_language", source_language), ("target_language", target_language)):
        if not isinstance(language, str) or not language:
            raise MaskingError(f"{field} must be a non-empty language code, got {language!r}")
    max_length = _check_int(max_length, "max_length", minimum=6)
    bos = _check_int(bos_token_id, "bos_token_id")
    eos = _check_int(eos_token_id, "eos_token_id")
    pad = _check_int(pad_token_id, "pad_token_id")
    n_source, n_target = _truncated_lengths(len(source), len(target), max_length - 4)
    if (n_source, n_target) != (len(source), len(target)):
        logger.debug("TLM pair truncated from (%d, %d) to (%d, %d) tokens", len(source), len(target), n_source,
                     n_target)
    first = [bos, *source[:n_source], eos]
    second = [eos, *target[:n_target], eos]
    return {
        "input_ids": first + second,
        "position_ids": list(range(pad + 1, pad + 1 + len(first))) + list(range(pad + 1, pad + 1 + len(second))),
        "languages": [source_language] * len(first) + [target_language] * len(second),
    }


def collate_tlm(
    examples: Sequence[Mapping[str, Any]],
    masker: Masker,
    indices: Sequence[int],
    *,
    language_to_id: Mapping[str, int],
    pad_token_id: int = 1,
    rate: float | None = None,
) -> dict[str, torch.Tensor]:
    """Mask `tlm_example` outputs (``masker.mask(ids, indices[i], rate=rate)``) and collate them, right-padded.

    Returns int64 ``input_ids``, ``position_ids``, ``language_ids``, ``labels`` of shape ``(B, L)`` (``L`` = longest
    example) and int32 ``cu_seqlens`` over the flattened ``B * L`` tokens with a boundary at each row start and at
    each row's padding start: each pair is one attention segment (source and target attend each other) and each
    padding run is a segment of its own. Pads get ``input_ids = pad_token_id``, ``labels = -100``,
    ``position_ids = pad_token_id`` (the pad position row) and the row's target language. No ``attention_mask``:
    the model's padding-free path is driven by ``cu_seqlens`` and uses the given ``position_ids`` as they are.
    """
    if not isinstance(masker, Masker):
        raise MaskingError(f"masker must be a Masker, got {type(masker).__name__}")
    if len(examples) == 0:
        raise MaskingError("examples must be non-empty, got 0 examples")
    if len(indices) != len(examples):
        raise MaskingError(f"indices must have one index per example ({len(examples)}), got {len(indices)}")
    pad = _check_int(pad_token_id, "pad_token_id")
    rows = []
    for row, example in enumerate(examples):
        if not isinstance(example, Mapping) or not {"input_ids", "position_ids", "languages"} <= set(example):
            raise MaskingError(f"examples[{row}] must be a tlm_example() dict with input_ids, position_ids, "
                               f"languages; got {example!r}")
        length = len(example["input_ids"])
        if length == 0 or len(example["position_ids"]) != length or len(example["languages"]) != length:
            raise MaskingError(f"examples[{row}] must have non-empty input_ids, position_ids and languages of one "
                               f"length, got lengths {length}, {len(example['position_ids'])}, "
                               f"{len(example['languages'])}")
        unknown = sorted(set(example["languages"]) - set(language_to_id))
        if unknown:
            raise MaskingError(f"examples[{row}].languages has {unknown} not in language_to_id; allowed: "
                               f"{sorted(language_to_id)}")
        masked, labels = masker.mask(np.asarray(example["input_ids"], dtype=np.int64), indices[row], rate=rate)
        languages = [int(language_to_id[language]) for language in example["languages"]]
        rows.append((masked, labels, np.asarray(example["position_ids"], dtype=np.int64), languages))
    batch, width = len(rows), max(len(r[0]) for r in rows)
    input_ids = np.full((batch, width), pad, dtype=np.int64)
    labels = np.full((batch, width), _IGNORE_INDEX, dtype=np.int64)
    position_ids = np.full((batch, width), pad, dtype=np.int64)
    language_ids = np.empty((batch, width), dtype=np.int64)
    boundaries = []
    for row, (masked, row_labels, positions, languages) in enumerate(rows):
        n = masked.size
        input_ids[row, :n] = masked
        labels[row, :n] = row_labels
        position_ids[row, :n] = positions
        language_ids[row, :n] = languages
        language_ids[row, n:] = languages[-1]
        boundaries.append(row * width)
        if n < width:
            boundaries.append(row * width + n)
    boundaries.append(batch * width)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "position_ids": torch.from_numpy(position_ids),
        "language_ids": torch.from_numpy(language_ids),
        "labels": torch.from_numpy(labels),
        "cu_seqlens": torch.tensor(boundaries, dtype=torch.int32),
    }
