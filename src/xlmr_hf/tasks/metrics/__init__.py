"""Task metrics shipped as local `evaluate` modules (Hub metric names cannot be loaded offline).

`load_metric` loads one of `METRIC_NAMES` from the ``<name>.py`` file next to this one through `evaluate.load`, which
reads a local path without any network access (no Hub lookup, no environment change needed):

* ``load_metric("squad")``: SQuAD v1.1 ``exact_match`` / ``f1`` (0-100);
* ``load_metric("mlqa", language="zh")``: the same with the official MLQA rules of the answer language (required;
  one of ``en es de ar hi vi zh``; it becomes the module's ``config_name``);
* ``load_metric("seqeval", scheme="IOB2", zero_division=0)``: entity scores with the keys of the Hub ``seqeval``
  metric; both options may also be passed to ``compute`` to override the loaded ones;
* ``load_metric("xnli")``: ``accuracy`` (0-1).

Besides the metric options, the `evaluate.load` options ``cache_dir``, ``keep_in_memory``, ``experiment_id``,
``num_process`` and ``process_id`` (distributed evaluation) are passed through. The scoring itself lives in
`xlmr_hf.tasks.scoring`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evaluate

from ..scoring import MLQA_LANGUAGES

__all__ = ["EVALUATE_OPTIONS", "METRIC_NAMES", "METRIC_OPTIONS", "load_metric", "metric_path"]

METRIC_NAMES: tuple[str, ...] = ("seqeval", "squad", "xnli", "mlqa")
"""Names `load_metric` accepts."""

METRIC_OPTIONS: dict[str, tuple[str, ...]] = {
    "seqeval": ("scheme", "zero_division"),
    "squad": (),
    "xnli": (),
    "mlqa": ("language",),
}
"""Metric-specific keyword options of `load_metric`, by metric name."""

EVALUATE_OPTIONS: tuple[str, ...] = ("cache_dir", "keep_in_memory", "experiment_id", "num_process", "process_id")
"""`evaluate.load` options `load_metric` passes through for every metric."""


def metric_path(name: str) -> Path:
    """The local `evaluate` module file of metric ``name`` (one of `METRIC_NAMES`)."""
    if name not in METRIC_NAMES:
        raise ValueError(f"metric name: {name!r} is not shipped; allowed: {', '.join(METRIC_NAMES)}")
    return Path(__file__).with_name(f"{name}.py")


def load_metric(name: str, **config: Any) -> evaluate.EvaluationModule:
    """Load the packaged metric ``name`` as an `evaluate.EvaluationModule` (``compute``/``add_batch`` as usual).

    ``config`` takes the metric's options (`METRIC_OPTIONS`: ``language`` for ``mlqa``, required; ``scheme`` and
    ``zero_division`` for ``seqeval``) and the pass-through `EVALUATE_OPTIONS`; any other key is an error."""
    path = metric_path(name)
    allowed = METRIC_OPTIONS[name] + EVALUATE_OPTIONS
    unknown = sorted(key for key in config if key not in allowed)
    if unknown:
        raise ValueError(f"load_metric({name!r}): unknown option(s) {unknown}; allowed: {', '.join(allowed)}")
    config_name = None
    if name == "mlqa":
        language = config.pop("language", None)
        if language not in MLQA_LANGUAGES:
            shown = "missing" if language is None else repr(language)
            raise ValueError(
                f"load_metric('mlqa') language: {shown}; allowed: {', '.join(MLQA_LANGUAGES)} "
                "(the language of the context and answer)"
            )
        config_name = language
    return evaluate.load(str(path), config_name=config_name, **config)
