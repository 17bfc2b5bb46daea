"""Fine-tuning tasks (XNLI, NER, MLQA): data loading in the official formats or from the Hub, preprocessing,
post-processing, metrics (local `evaluate` modules: `load_metric`) and the task registry (`register_task`,
`get_task`, `task_names`). Independent of the model, data and training packages; the task modules
(`xlmr_hf.tasks.xnli`, `.ner`, `.qa`) are imported on use."""

from .base import EvalSet, Task, TaskData, TaskDataError
from .metrics import METRIC_NAMES, load_metric
from .registry import get_task, register_task, task_names
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
    "EvalSet",
    "Task",
    "TaskData",
    "TaskDataError",
    "accuracy",
    "get_entities",
    "get_task",
    "load_metric",
    "normalize_answer",
    "qa_scores",
    "register_task",
    "seqeval_scores",
    "task_names",
]
