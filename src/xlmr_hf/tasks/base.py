"""What every fine-tuning task module returns: the raw examples of one run, by split and language."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TaskData", "TaskDataError"]


class TaskDataError(ValueError):
    """Task data that cannot be used; the message names the file or dataset, the field, the value and what is
    allowed."""


@dataclass
class TaskData:
    """Raw (untokenized) examples of one fine-tuning run.

    ``train`` is one `datasets.Dataset` (every row has a ``language`` column); ``validation`` and ``test`` map a
    language code (or ``"<context>-<question>"`` for cross-lingual QA pairs) to a `datasets.Dataset`. ``labels`` are
    the class or tag names in id order (None for extractive QA). ``source`` says where the data came from (Hub ids or
    files), for the results table."""

    train: Any
    validation: dict[str, Any]
    test: dict[str, Any]
    labels: list[str] | None = None
    source: dict[str, str] = field(default_factory=dict)
