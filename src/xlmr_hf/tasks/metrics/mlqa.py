"""MLQA exact match and F1 under the official per-language MLQA rules, as a local `evaluate` metric module (loaded by
`xlmr_hf.tasks.load_metric("mlqa", language=...)`).

The language of the context and answer is the module's ``config_name`` (one of ``en es de ar hi vi zh``); the
scoring is `xlmr_hf.tasks.scoring.qa_scores` with that language (Unicode punctuation, per-language articles, mixed
segmentation for zh). SQuAD-rules scores of the same predictions come from the ``squad`` module. Absolute imports
only, because `evaluate` copies this file into its modules cache before importing it."""

from __future__ import annotations

from typing import Any

import evaluate

from xlmr_hf.tasks.metrics.squad import QA_FEATURES
from xlmr_hf.tasks.scoring import MLQA_LANGUAGES, qa_scores

__all__ = ["Mlqa"]

_DESCRIPTION = (
    "Exact match and token F1 (0-100) of extractive QA answers under the official MLQA evaluation rules of the "
    "answer language (config_name)."
)
_INPUTS = """
Args:
    predictions: list of {"id": str, "prediction_text": str}.
    references: list of {"id": str, "answers": {"text": list[str], "answer_start": list[int]}}.
Returns:
    {"exact_match": float, "f1": float}, both on 0-100, normalized with the rules of the module's language
    (config_name); a question without a prediction scores 0.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Mlqa(evaluate.Metric):
    """MLQA exact match and F1 for one answer language (``config_name``)."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in MLQA_LANGUAGES:
            shown = "missing" if self.config_name == "default" else repr(self.config_name)
            raise ValueError(
                f"mlqa language (config_name): {shown}; allowed: {', '.join(MLQA_LANGUAGES)} "
                "(e.g. load_metric('mlqa', language='zh'))"
            )
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Lewis et al., MLQA: Evaluating Cross-lingual Extractive Question Answering, ACL 2020.",
            inputs_description=_INPUTS,
            features=QA_FEATURES,
            reference_urls=["https://github.com/facebookresearch/MLQA"],
        )

    @property
    def language(self) -> str:
        """The answer language whose MLQA rules this module applies."""
        return self.config_name

    def _compute(self, predictions: list[dict[str, Any]], references: list[dict[str, Any]]) -> dict[str, float]:
        return qa_scores(predictions, references, language=self.config_name)
