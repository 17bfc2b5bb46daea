"""XNLI accuracy as a local `evaluate` metric module (loaded by `xlmr_hf.tasks.load_metric("xnli")`).

Labels are the XNLI class ids 0, 1, 2 (entailment, neutral, contradiction); the scoring is
`xlmr_hf.tasks.scoring.accuracy`. Absolute imports only, because `evaluate` copies this file into its modules cache
before importing it."""

from __future__ import annotations

import datasets
import evaluate

from xlmr_hf.tasks.scoring import accuracy

__all__ = ["XNLI_NUM_LABELS", "Xnli"]

XNLI_NUM_LABELS = 3
"""XNLI class ids are 0 .. XNLI_NUM_LABELS - 1."""

_DESCRIPTION = "Accuracy (0-1) of XNLI class predictions."
_INPUTS = """
Args:
    predictions: list of int class ids in 0..2.
    references: list of int class ids in 0..2.
Returns:
    {"accuracy": float} on 0-1.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Xnli(evaluate.Metric):
    """XNLI accuracy."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Conneau et al., XNLI: Evaluating Cross-lingual Sentence Representations, EMNLP 2018.",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://github.com/facebookresearch/XNLI"],
        )

    def _compute(self, predictions: list[int], references: list[int]) -> dict[str, float]:
        for field, values in (("predictions", predictions), ("references", references)):
            for index, value in enumerate(values):
                if not 0 <= value < XNLI_NUM_LABELS:
                    raise ValueError(
                        f"{field}[{index}]: {value!r} is not an XNLI class id; allowed: 0..{XNLI_NUM_LABELS - 1}"
                    )
        return {"accuracy": accuracy(predictions, references)}
