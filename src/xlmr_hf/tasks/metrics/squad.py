"""SQuAD v1.1 exact match and F1 as a local `evaluate` metric module (loaded by `xlmr_hf.tasks.load_metric`).

The scoring is `xlmr_hf.tasks.scoring.qa_scores` with ``language=None`` (official SQuAD v1.1 rules); absolute
imports only, because `evaluate` copies this file into its modules cache before importing it."""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from xlmr_hf.tasks.scoring import qa_scores

__all__ = ["QA_FEATURES", "Squad"]

_DESCRIPTION = "Exact match and token F1 (0-100) of extractive QA answers under the official SQuAD v1.1 rules."
_INPUTS = """
Args:
    predictions: list of {"id": str, "prediction_text": str}.
    references: list of {"id": str, "answers": {"text": list[str], "answer_start": list[int]}}.
Returns:
    {"exact_match": float, "f1": float}, both on 0-100; a question without a prediction scores 0.
"""

QA_FEATURES = datasets.Features(
    {
        "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")},
        "references": {
            "id": datasets.Value("string"),
            "answers": datasets.Sequence(
                {"text": datasets.Value("string"), "answer_start": datasets.Value("int32")}
            ),
        },
    }
)
"""Input features shared by the SQuAD-style metrics (``squad``, ``mlqa``)."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Squad(evaluate.Metric):
    """SQuAD v1.1 exact match and F1."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Rajpurkar et al., SQuAD: 100,000+ Questions for Machine Comprehension of Text, EMNLP 2016.",
            inputs_description=_INPUTS,
            features=QA_FEATURES,
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    def _compute(self, predictions: list[dict[str, Any]], references: list[dict[str, Any]]) -> dict[str, float]:
        return qa_scores(predictions, references)
