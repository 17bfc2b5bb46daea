"""Entity-level precision, recall and F1 (seqeval default mode = conlleval semantics) as a local `evaluate` metric
module (loaded by `xlmr_hf.tasks.load_metric("seqeval", scheme=..., zero_division=...)`).

``scheme`` (IOB2 by default, IOB1 or IOBES) sets which tag prefixes are allowed; ``zero_division`` (0 or 1) is the
value of a 0/0 precision or recall. Both are set when loading and can be overridden per `compute` call. The scoring
is `xlmr_hf.tasks.scoring.seqeval_scores`; absolute imports only, because `evaluate` copies this file into its
modules cache before importing it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import evaluate

from xlmr_hf.tasks.scoring import seqeval_scores

__all__ = ["Seqeval"]

_DESCRIPTION = "Entity-level precision, recall and F1 and token accuracy (0-1) of tag sequences (seqeval default mode)."
_INPUTS = """
Args:
    predictions: list of tag lists, e.g. [["B-PER", "I-PER", "O"]].
    references: list of tag lists, one tag per predicted tag.
    scheme: "IOB2", "IOB1" or "IOBES" (default: the one given when loading, else "IOB2").
    zero_division: 0 or 1, the value of a 0/0 precision or recall (default: the one given when loading, else 0).
Returns:
    {<type>: {"precision", "recall", "f1", "number"}, ..., "overall_precision", "overall_recall", "overall_f1",
    "overall_accuracy"}, all on 0-1.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Seqeval(evaluate.Metric):
    """seqeval-compatible entity scores."""

    def __init__(self, scheme: str = "IOB2", zero_division: float = 0, **kwargs: Any) -> None:
        seqeval_scores([["O"]], [["O"]], scheme=scheme, zero_division=zero_division)  # validates both options
        self.scheme = scheme
        self.zero_division = zero_division
        super().__init__(**kwargs)

    def _info(self) -> evaluate.MetricInfo:
        tags = datasets.Sequence(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Nakayama, seqeval: A Python framework for sequence labeling evaluation, 2018.",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": tags, "references": tags}),
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(
        self,
        predictions: Sequence[Sequence[str]],
        references: Sequence[Sequence[str]],
        scheme: str | None = None,
        zero_division: float | None = None,
    ) -> dict[str, Any]:
        return seqeval_scores(
            predictions,
            references,
            scheme=self.scheme if scheme is None else scheme,
            zero_division=self.zero_division if zero_division is None else zero_division,
        )

