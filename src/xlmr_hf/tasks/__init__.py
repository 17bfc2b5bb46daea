"""Fine-tuning tasks (XNLI, NER, MLQA): data loading in the official formats or from the Hub, preprocessing,
post-processing and metrics (local `evaluate` modules: `load_metric`). Independent of the model, data and training
packages; the task modules (`xlmr_hf.tasks.xnli`, `.ner`, `.qa`) are imported on use."""

from .base import TaskData, TaskDataError
from .metrics import METRIC_NAMES, load_metric
from .scoring import (
    MLQA_LANGUAGES,
    accuracy,
    get_entities,
    normalize_answer,
    qa_scores,
    seqeval_scores,
)

__all__ = [
    "METRIC_NAMES",
    "MLQA_LANGUAGES",
    "TaskData",
    "TaskDataError",
    "accuracy",
    "get_entities",
    "load_metric",
    "normalize_answer",
    "qa_scores",
    "seqeval_scores",
]
