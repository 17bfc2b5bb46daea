"""What every fine-tuning task provides: the raw examples of a run (`TaskData`), the features of an evaluation split
with what scoring needs (`EvalSet`), and the `Task` interface that `xlmr_hf.training.finetune` drives. A task is
registered with `xlmr_hf.tasks.register_task` (see ``docs/finetuning.md``, "Adding a task")."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["EvalSet", "Task", "TaskData", "TaskDataError"]

logger = logging.getLogger(__name__)


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


@dataclass
class EvalSet:
    """Features of several languages concatenated in a fixed order (``features``; ``slices`` per language), the raw
    examples and per-language features they came from, and what scoring needs (``labels``, ``options``): one Trainer
    evaluation scores every language. ``score(predictions)`` gives ``{language: {metric: value}}`` on 0-100."""

    features: Any
    languages: list[str]
    slices: dict[str, slice]
    examples: dict[str, Any]
    parts: dict[str, Any]
    task: Task
    labels: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def score(self, predictions: Any, *, monitor: Any = None) -> dict[str, dict[str, float]]:
        return self.task.score(self, predictions, monitor)


class Task(ABC):
    """One fine-tuning task. Subclasses set the class attributes and fill in the abstract methods; ``arguments`` is
    an optional dataclass of the task's own settings, added to the fine-tuning settings of this task (recipe, command
    line and ``--help``). Methods receive the resolved settings as ``args``."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    help: ClassVar[str] = ""
    settings: ClassVar[tuple[str, ...]] = ()
    primary: ClassVar[str] = ""
    metrics_reported: ClassVar[tuple[str, ...]] = ()
    auto_class: ClassVar[str] = ""
    pipeline_tag: ClassVar[str] = ""
    hub_datasets: ClassVar[tuple[str, ...]] = ()
    default_max_seq_length: ClassVar[int] = 128
    arguments: ClassVar[type | None] = None

    def validate(self, args: Any) -> None:
        """Check the task's own settings (errors name the field, the value and what is allowed)."""

    @abstractmethod
    def all_languages(self, args: Any) -> Sequence[str]:
        """Every language the task (in this configuration) can evaluate."""

    def available_languages(self, args: Any) -> Sequence[str] | None:
        """The languages a local ``data_dir`` holds (None: all of `all_languages`); used when no languages are
        given."""
        return None

    def languages(self, args: Any) -> list[str]:
        """The evaluation languages: ``args.languages`` (checked), else every language of the task that the data
        holds (a local ``data_dir`` may hold fewer; those left out are logged)."""
        allowed = list(self.all_languages(args))
        if args.languages is not None:
            unknown = [lang for lang in args.languages if allowed and lang not in allowed]
            if unknown:
                raise TaskDataError(f"languages={list(args.languages)!r}: {unknown} not in {self.name}; allowed: "
                                    f"{allowed}")
            return list(args.languages)
        available = self.available_languages(args)
        if available is None:
            return allowed
        chosen = [lang for lang in allowed if lang in set(available)]
        if not chosen:
            raise TaskDataError(f"data_dir={args.data_dir!r} holds none of the {self.name} languages {allowed}")
        if len(chosen) < len(allowed):
            logger.info("%s: data_dir %s holds %d of %d languages; evaluating %s (set languages to choose)",
                        self.name, args.data_dir, len(chosen), len(allowed), ", ".join(chosen))
        return chosen

    @abstractmethod
    def load(self, args: Any, languages: list[str]) -> TaskData:
        """The raw examples of one run evaluated on ``languages``."""

    @abstractmethod
    def features(self, args: Any, dataset: Any, tokenizer: Any, labels: list[str] | None, train: bool) -> Any:
        """Tokenized features of one split (training features when ``train``)."""

    @abstractmethod
    def score(self, evalset: EvalSet, predictions: Any, monitor: Any) -> dict[str, dict[str, float]]:
        """``{language: {metric: value}}`` of the Trainer's predictions on ``evalset.features``."""

    def options(self, args: Any) -> dict[str, Any]:
        """Settings that `score` needs, carried by each `EvalSet`."""
        return {}

    def eval_set(self, args: Any, splits: Mapping[str, Any], tokenizer: Any, labels: list[str] | None) -> EvalSet:
        from datasets import concatenate_datasets

        parts = {lang: self.features(args, dataset, tokenizer, labels, train=False) for lang, dataset in
                 splits.items()}
        slices, start = {}, 0
        for lang, part in parts.items():
            slices[lang] = slice(start, start + len(part))
            start += len(part)
        return EvalSet(concatenate_datasets(list(parts.values())), list(splits), slices, dict(splits), parts, self,
                       labels=labels, options=self.options(args))

    def model(self, args: Any, labels: list[str] | None) -> Any:
        import transformers

        auto = getattr(transformers, self.auto_class)
        if labels:
            return auto.from_pretrained(args.model_name_or_path, num_labels=len(labels),
                                        id2label=dict(enumerate(labels)),
                                        label2id={label: i for i, label in enumerate(labels)})
        return auto.from_pretrained(args.model_name_or_path)

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)
