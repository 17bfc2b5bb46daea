"""Downstream probe during pretraining: a linear classifier (L-BFGS, float64) on frozen mean-pooled features of a small
labelled set, scored per language, that reads no global random state (`load_probe_set`, `run_probe`, `EarlyStopping`).
Why mean pooling, how it stays out of the training trajectory and the probe-set format are in
``docs/pretraining.md`` ("The downstream probe")."""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..data import TokenEncoder, load_stream_tokenizer

__all__ = ["EarlyStopping", "ProbeError", "ProbeSet", "ProbeSplit", "load_probe_set", "probe_features", "run_probe"]

logger = logging.getLogger(__name__)
Label = str | int
_SPLITS = ("train", "eval")


class ProbeError(ValueError):
    """An invalid probe set or probe argument; names the file, line, field, value and what is allowed."""


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ProbeError(f"{name}={value!r}; allowed: an integer >= {minimum}")


@dataclass(frozen=True)
class ProbeSplit:
    """Tokenized examples: ``input_ids[i]`` with special tokens, class index ``labels[i]``, ``languages[i]``."""

    input_ids: list[np.ndarray]
    labels: np.ndarray
    languages: list[str]


@dataclass(frozen=True)
class ProbeSet:
    """Both splits, the class names (``classes[k]`` is the label of class index ``k``) and the truncation count."""

    train: ProbeSplit
    eval: ProbeSplit
    classes: tuple[Label, ...]
    truncated: int = 0

    @property
    def languages(self) -> list[str]:
        """The eval languages, sorted (the per-language keys of `run_probe`)."""
        return sorted(set(self.eval.languages))


def _read_rows(path: Path, split_field: bool) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    rows: dict[str, list[tuple[int, dict[str, Any]]]] = {s: [] for s in _SPLITS}
    required = ("language", "text", "label", *(("split",) if split_field else ()))
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                raise ProbeError(f"{path}:{n}: invalid JSON ({error.msg}, column {error.colno}) in {line.strip()[:80]!r}"
                                 f"; allowed: one JSON object per line") from None
            if not isinstance(row, dict):
                raise ProbeError(f"{path}:{n}: line is a JSON {type(row).__name__} {row!r:.80}; allowed: a JSON object "
                                 f"with fields {', '.join(required)}")
            for field in required:
                if field not in row:
                    raise ProbeError(f"{path}:{n}: missing field {field!r}; required fields: {', '.join(required)} "
                                     f"(optional: text_pair)")
            for field in ("language", "text", "text_pair"):
                value = row.get(field, "x")
                if not isinstance(value, str) or not value.strip():
                    raise ProbeError(f"{path}:{n}: field {field!r} = {value!r:.80} is empty or not a string; allowed: "
                                     f"a non-empty string")
            if isinstance(row["label"], bool) or not isinstance(row["label"], (str, int)):
                raise ProbeError(f"{path}:{n}: field 'label' = {row['label']!r:.80} ({type(row['label']).__name__});"
                                 f" allowed: a string or an integer")
            split = row["split"] if split_field else "train" if path.name == "train.jsonl" else "eval"
            if split not in _SPLITS:
                raise ProbeError(f"{path}:{n}: field 'split' = {split!r:.80}; allowed: 'train' or 'eval'")
            rows[split].append((n, row))
    return rows


def _fit_pair(la: int, lb: int, budget: int) -> tuple[int, int]:
    """Lengths after longest-first truncation of a pair to ``budget`` tokens."""
    if la + lb <= budget:
        return la, lb
    if min(la, lb) <= budget // 2:
        return (la, budget - la) if la < lb else (budget - lb, lb)
    return budget - budget // 2, budget // 2


def load_probe_set(path: str | Path, tokenizer: Any, *, max_length: int = 128,
                   train_languages: Sequence[str] | None = None) -> ProbeSet:
    """Read and tokenize a probe set (format: ``docs/pretraining.md``); ``train_languages`` keeps only those languages'
    training examples (cross-lingual transfer: train on ``["en"]``, score every language)."""
    _check_int(max_length, "max_length", 6)
    path = Path(path)
    if path.is_dir():
        files = {s: path / f"{s}.jsonl" for s in _SPLITS}
        for file in files.values():
            if not file.is_file():
                raise ProbeError(f"{file}: missing file; a probe-set directory holds train.jsonl and eval.jsonl")
        rows = {s: _read_rows(file, False)[s] for s, file in files.items()}
    elif path.is_file() and path.suffix == ".jsonl":
        files, rows = dict.fromkeys(_SPLITS, path), _read_rows(path, True)
    else:
        raise ProbeError(f"{path}: missing file; allowed: a directory with train.jsonl and eval.jsonl, or a .jsonl file "
                         f"whose rows have a 'split' field")
    if train_languages is not None:
        present = sorted({row["language"] for _, row in rows["train"]})
        for lang in train_languages:
            if lang not in present:
                raise ProbeError(f"{files['train']}: train_languages names language {lang!r}, which has no training "
                                 f"examples; allowed: {present}")
        rows["train"] = [(n, row) for n, row in rows["train"] if row["language"] in set(train_languages)]
    for split in _SPLITS:
        if not rows[split]:
            raise ProbeError(f"{files[split]}: the {split!r} split is empty; allowed: at least one example")
    classes = tuple(sorted({row["label"] for _, row in rows["train"]}, key=lambda v: (isinstance(v, str), v)))
    if len(classes) < 2:
        raise ProbeError(f"{files['train']}: field 'label' takes only the value(s) {list(classes)} in the training "
                         f"split; allowed: at least 2 classes")
    for n, row in rows["eval"]:
        if row["label"] not in classes:
            raise ProbeError(f"{files['eval']}:{n}: field 'label' = {row['label']!r:.80} does not occur in the "
                             f"training split; allowed: {list(classes)}")
    tokenizer = load_stream_tokenizer(tokenizer)
    encoder, bos, eos = TokenEncoder(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id
    index, truncated, splits = {label: k for k, label in enumerate(classes)}, 0, {}
    for split in _SPLITS:
        examples = [row for _, row in rows[split]]
        first = encoder.encode([row["text"] for row in examples])
        pairs = [row for row in examples if "text_pair" in row]
        second = iter(encoder.encode([row["text_pair"] for row in pairs]) if pairs else [])
        ids = []
        for row, a in zip(examples, first):
            if "text_pair" in row:
                b = next(second)
                la, lb = _fit_pair(len(a), len(b), max_length - 4)
                ids.append(np.concatenate([[bos], a[:la], [eos, eos], b[:lb], [eos]]).astype(np.int64))
                truncated += (la, lb) != (len(a), len(b))
            else:
                ids.append(np.concatenate([[bos], a[:max_length - 2], [eos]]).astype(np.int64))
                truncated += len(a) > max_length - 2
        labels = np.array([index[row["label"]] for row in examples], dtype=np.int64)
        splits[split] = ProbeSplit(ids, labels, [row["language"] for row in examples])
    if truncated:
        logger.info("probe set %s: %d example(s) truncated to max_length=%d tokens", path, truncated, max_length)
    return ProbeSet(splits["train"], splits["eval"], classes, truncated)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    while isinstance(getattr(model, "module", None), torch.nn.Module):  # DDP / accelerate wrappers
        model = model.module
    return model.roberta if isinstance(getattr(model, "roberta", None), torch.nn.Module) else model


@torch.no_grad()
def probe_features(model: torch.nn.Module, input_ids: Sequence[np.ndarray], *, batch_size: int, device: torch.device,
                   pad_token_id: int, autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
                   language_ids: Sequence[int] | None = None) -> torch.Tensor:
    """``(len(input_ids), hidden)`` float64 features on the CPU: the encoder's last hidden state mean-pooled over the
    non-padding tokens, in eval mode (batches of similar length; every module's train/eval flag is restored)."""
    _check_int(batch_size, "batch_size", 1)
    flags = [(module, module.training) for module in model.modules()]
    encoder, order = _unwrap(model), sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))
    model.eval()
    chunks = []
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids = torch.full((len(rows), max(len(input_ids[i]) for i in rows)), pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, :len(input_ids[i])] = torch.as_tensor(input_ids[i], dtype=torch.long)
                mask[r, :len(input_ids[i])] = 1
            inputs = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
            if language_ids is not None:
                inputs["language_ids"] = torch.tensor([language_ids[i] for i in rows], device=device)
            with autocast() if autocast is not None else contextlib.nullcontext():
                output = encoder(**inputs)
            hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else \
                output[0] if isinstance(output, (tuple, list)) else output
            weights = inputs["attention_mask"].unsqueeze(-1).double()
            chunks.append(((hidden.double() * weights).sum(1) / weights.sum(1).clamp(min=1)).cpu())
    finally:
        for module, training in flags:
            module.training = training
    features = torch.cat(chunks)
    result = torch.empty_like(features)
    result[torch.tensor(order)] = features
    return result


def run_probe(model: torch.nn.Module, probe_set: ProbeSet, *, batch_size: int, device: torch.device,
              pad_token_id: int, autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
              steps: int = 100, lr: float = 1.0, weight_decay: float = 1e-3, seed: int = 0,
              language_to_id: Mapping[str, int] | None = None) -> dict[str, float]:
    """``{"probe/accuracy/<lang>", "probe/accuracy" (languages weighted equally), "probe/train_accuracy"}``.

    ``steps`` L-BFGS iterations (learning rate ``lr``, strong-Wolfe line search) minimise the mean cross-entropy plus
    ``weight_decay / 2 * ||W||²``. ``language_to_id`` gives ``language_ids`` to models with language embeddings."""
    _check_int(steps, "steps", 1)
    train, evals = probe_set.train, probe_set.eval
    language_ids = None
    if language_to_id is not None:
        unknown = sorted(set(train.languages + evals.languages) - set(language_to_id))
        if unknown:
            raise ProbeError(f"probe language(s) {unknown} are not in language_to_id; allowed: {sorted(language_to_id)}")
        language_ids = [language_to_id[lang] for lang in train.languages + evals.languages]
    features = probe_features(model, train.input_ids + evals.input_ids, batch_size=batch_size, device=device,
                              pad_token_id=pad_token_id, autocast=autocast, language_ids=language_ids)
    x_train, x_eval = features[:len(train.input_ids)], features[len(train.input_ids):]
    mean, std = x_train.mean(0), x_train.std(0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    x_train, x_eval = (x_train - mean) / std, (x_eval - mean) / std
    y_train = torch.as_tensor(train.labels)
    generator = torch.Generator().manual_seed(seed)
    weight = (0.01 * torch.randn(x_train.shape[1], len(probe_set.classes), generator=generator,
                                 dtype=torch.float64)).requires_grad_()
    bias = torch.zeros(len(probe_set.classes), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=lr, max_iter=steps, history_size=20, tolerance_grad=1e-10,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x_train @ weight + bias, y_train)
        loss = loss + 0.5 * weight_decay * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        train_pred = (x_train @ weight + bias).argmax(-1).numpy()
        eval_pred = (x_eval @ weight + bias).argmax(-1).numpy()
    out: dict[str, float] = {}
    eval_languages = np.array(evals.languages)
    for lang in probe_set.languages:
        selected = eval_languages == lang
        out[f"probe/accuracy/{lang}"] = float((eval_pred[selected] == evals.labels[selected]).mean())
    out["probe/accuracy"] = sum(out[f"probe/accuracy/{lang}"] for lang in probe_set.languages) / len(probe_set.languages)
    out["probe/train_accuracy"] = float((train_pred == train.labels).mean())
    return out


class EarlyStopping:
    """Stop after ``patience`` consecutive updates that do not improve the best value by more than ``min_delta``
    (``mode="max"``: higher is better; ``"min"``: lower is better). Non-finite values never improve."""

    def __init__(self, patience: int, min_delta: float = 0.0, metric: str = "probe/accuracy",
                 mode: Literal["max", "min"] = "max") -> None:
        _check_int(patience, "patience", 1)
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not 0 <= min_delta < math.inf:
            raise ValueError(f"min_delta={min_delta!r}; allowed: a finite number >= 0")
        if mode not in ("max", "min"):
            raise ValueError(f"mode={mode!r}; allowed: 'max' or 'min'")
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric={metric!r}; allowed: a non-empty metric name such as 'probe/accuracy'")
        self.patience, self.min_delta, self.metric, self.mode = patience, float(min_delta), metric, mode
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad_updates = 0

    @property
    def should_stop(self) -> bool:
        """Whether the last `update` asked to stop."""
        return self.bad_updates >= self.patience

    def update(self, value: float, step: int) -> bool:
        """Record ``value`` (the metric at ``step``); True when training should stop now."""
        value = float(value)
        if math.isfinite(value) and (self.best is None or (value > self.best + self.min_delta if self.mode == "max"
                                                           else value < self.best - self.min_delta)):
            self.best, self.best_step, self.bad_updates = value, int(step), 0
        else:
            self.bad_updates += 1
        return self.should_stop

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (settings and counters)."""
        return {"patience": self.patience, "min_delta": self.min_delta, "metric": self.metric, "mode": self.mode,
                "best": self.best, "best_step": self.best_step, "bad_updates": self.bad_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the counters of `state_dict`; its metric and mode must match (patience/min_delta may change)."""
        for key in ("metric", "mode"):
            if state.get(key) != getattr(self, key):
                raise ValueError(f"early-stopping state has {key}={state.get(key)!r} but this run uses "
                                 f"{key}={getattr(self, key)!r}; allowed: the same {key}")
        self.best = None if state["best"] is None else float(state["best"])
        self.best_step = None if state["best_step"] is None else int(state["best_step"])
        self.bad_updates = int(state["bad_updates"])
