"""The three fine-tuning tasks behind one small interface for `xlmr_hf.training.finetune`.

A `TaskAdapter` knows, for its task, the default languages, how to load the data (`xlmr_hf.tasks`), which Auto head
to load, how to build training features, and how to turn the Trainer's predictions on an evaluation set into
per-language scores (on 0–100). An `EvalSet` holds the features of every language of one split concatenated in a fixed
order, so a single Trainer evaluation scores all languages and the model can be selected on one or all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arguments import RecipeError
from .finetune_arguments import FinetuneArguments

__all__ = ["EvalSet", "TaskAdapter", "adapter_for"]


@dataclass
class EvalSet:
    """Features of several languages concatenated (``features``), their order (``languages``) and ``score``, which
    maps the Trainer's predictions on ``features`` to ``{language: {metric: value}}``."""

    features: Any
    languages: list[str]
    slices: dict[str, slice]
    examples: dict[str, Any]
    parts: dict[str, Any]
    adapter: TaskAdapter

    def score(self, predictions: Any, *, monitor: Any = None) -> dict[str, dict[str, float]]:
        return self.adapter.score(self, predictions, monitor)


def _concatenate(parts: Mapping[str, Any]) -> tuple[Any, dict[str, slice]]:
    from datasets import concatenate_datasets

    slices, start = {}, 0
    for lang, part in parts.items():
        slices[lang] = slice(start, start + len(part))
        start += len(part)
    return concatenate_datasets(list(parts.values())), slices


class TaskAdapter(ABC):
    """Base class: subclasses fill in the task-specific parts (the abstract methods)."""

    task = ""
    primary = ""
    metrics_reported: tuple[str, ...] = ()
    auto_class = ""

    def languages(self, args: FinetuneArguments) -> list[str]:
        allowed = self.all_languages(args)
        if args.languages is None:
            return list(allowed)
        unknown = [lang for lang in args.languages if allowed and lang not in allowed]
        if unknown:
            raise RecipeError(f"languages={args.languages!r}: {unknown} not in {self.task}; allowed: {list(allowed)}")
        return list(args.languages)

    @abstractmethod
    def all_languages(self, args: FinetuneArguments) -> Sequence[str]:
        """Task-specific (see the subclasses)."""

    @abstractmethod
    def load(self, args: FinetuneArguments, languages: list[str]) -> Any:
        """Task-specific (see the subclasses)."""

    def model(self, args: FinetuneArguments, data: Any) -> Any:
        import transformers

        auto = getattr(transformers, self.auto_class)
        if data.labels:
            return auto.from_pretrained(args.model_name_or_path, num_labels=len(data.labels),
                                        id2label=dict(enumerate(data.labels)),
                                        label2id={label: i for i, label in enumerate(data.labels)})
        return auto.from_pretrained(args.model_name_or_path)

    @abstractmethod
    def train_features(self, args: FinetuneArguments, dataset: Any, tokenizer: Any) -> Any:
        """Task-specific (see the subclasses)."""

    @abstractmethod
    def eval_features(self, args: FinetuneArguments, dataset: Any, tokenizer: Any) -> Any:
        """Task-specific (see the subclasses)."""

    def eval_set(self, args: FinetuneArguments, splits: Mapping[str, Any], tokenizer: Any) -> EvalSet:
        parts = {lang: self.eval_features(args, dataset, tokenizer) for lang, dataset in splits.items()}
        features, slices = _concatenate(parts)
        return EvalSet(features, list(splits), slices, dict(splits), parts, self)

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    @abstractmethod
    def score(self, evalset: EvalSet, predictions: Any, monitor: Any) -> dict[str, dict[str, float]]:
        """Task-specific (see the subclasses)."""


class XNLIAdapter(TaskAdapter):
    task, primary, metrics_reported = "xnli", "accuracy", ("accuracy",)
    auto_class = "AutoModelForSequenceClassification"

    def all_languages(self, args: FinetuneArguments) -> Sequence[str]:
        from ..tasks import xnli

        return xnli.LANGUAGES

    def load(self, args: FinetuneArguments, languages: list[str]) -> Any:
        from ..tasks import xnli

        return xnli.load_xnli(args.resolved_setting(), languages=languages, data_dir=args.data_dir,
                              train_language=args.train_language, max_train_examples=args.max_train_examples,
                              max_eval_examples=args.max_eval_examples)

    def train_features(self, args: FinetuneArguments, dataset: Any, tokenizer: Any) -> Any:
        from ..tasks import xnli

        return xnli.preprocess_xnli(dataset, tokenizer, max_length=args.resolved_max_length())

    def eval_features(self, args: FinetuneArguments, dataset: Any, tokenizer: Any) -> Any:
        return self.train_features(args, dataset, tokenizer)

    def score(self, evalset: EvalSet, predictions: Any, monitor: Any) -> dict[str, dict[str, float]]:
        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        predicted = np.asarray(logits).argmax(-1)
        gold = np.asarray(evalset.features["labels"])
        if monitor is not None:
            monitor.check_predictions(predicted.tolist())
        return {lang: {"accuracy": 100.0 * float((predicted[part] == gold[part]).mean())}
                for lang, part in evalset.slices.items()}


class NERAdapter(TaskAdapter):
    task, primary, metrics_reported = "ner", "f1", ("f1", "precision", "recall")
    auto_class = "AutoModelForTokenClassification"

    def all_languages(self, args: FinetuneArguments) -> Sequence[str]:
        from ..tasks import ner

        return ner.CONLL_LANGUAGES if args.ner_dataset == "conll" else ner.PANX_LANGUAGES

    def load(self, args: FinetuneArguments, languages: list[str]) -> Any:
        from ..tasks import ner

        data = ner.load_ner(args.ner_dataset, args.resolved_setting(), languages=languages, data_dir=args.data_dir,
                            train_language=args.train_language, max_train_examples=args.max_train_examples,
                            max_eval_examples=args.max_eval_examples)
        self._label_to_id = {label: i for i, label in enumerate(data.labels)}
        return data

    def train_features(self, args: FinetuneArguments, dataset: Any, tokenizer: Any) -> Any:
        from ..tasks import ner

        return ner.tokenize_and_align(dataset, tokenizer, self._label_to_id, max_length=args.resolved_max_length(),
                                      stride=args.stride or 32)

    def eval_features(self, args: FinetuneArguments, dataset: Any, tokenizer: Any) -> Any:
        return self.train_features(args, dataset, tokenizer)

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def score(self, evalset: EvalSet, predictions: Any, monitor: Any) -> dict[str, dict[str, float]]:
        from ..tasks import load_metric, ner

        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        predicted = np.asarray(logits).argmax(-1)
        id_to_label = {i: label for label, i in self._label_to_id.items()}
        metric = load_metric("seqeval")
        out, every_tag = {}, []
        for lang, part in evalset.slices.items():
            examples = evalset.examples[lang]
            tags = ner.merge_window_predictions(evalset.parts[lang], predicted[part], id_to_label, len(examples),
                                                word_counts=[len(tokens) for tokens in examples["tokens"]])
            every_tag.extend(tag for sentence in tags for tag in sentence)
            scores = metric.compute(predictions=tags, references=list(examples["ner_tags"]))
            out[lang] = {"f1": 100.0 * scores["overall_f1"], "precision": 100.0 * scores["overall_precision"],
                         "recall": 100.0 * scores["overall_recall"]}
        if monitor is not None:
            monitor.check_predictions(every_tag, none_label="O", unit="words")
        return out


class MLQAAdapter(TaskAdapter):
    task, primary = "mlqa", "f1"
    metrics_reported = ("f1", "exact_match", "squad_f1", "squad_exact_match")
    auto_class = "AutoModelForQuestionAnswering"

    def all_languages(self, args: FinetuneArguments) -> Sequence[str]:
        from ..tasks import qa

        return qa.MLQA_LANGUAGES

    def load(self, args: FinetuneArguments, languages: list[str]) -> Any:
        from ..tasks import qa

        pairs = [tuple(pair.split("-")) for pair in args.eval_pairs]
        return qa.load_qa(eval_languages=languages, eval_pairs=pairs or None, data_dir=args.data_dir,
                          squad_file=args.squad_file, max_train_examples=args.max_train_examples,
                          max_eval_examples=args.max_eval_examples)

    def train_features(self, args: FinetuneArguments, dataset: Any, tokenizer: Any) -> Any:
        from ..tasks import qa

        return qa.prepare_train_features(dataset, tokenizer, max_length=args.resolved_max_length(),
                                         doc_stride=args.stride or 128)

    def eval_features(self, args: FinetuneArguments, dataset: Any, tokenizer: Any) -> Any:
        from ..tasks import qa

        return qa.prepare_eval_features(dataset, tokenizer, max_length=args.resolved_max_length(),
                                        doc_stride=args.stride or 128)

    def score(self, evalset: EvalSet, predictions: Any, monitor: Any) -> dict[str, dict[str, float]]:
        from ..tasks import load_metric, qa

        start, end = (np.asarray(p) for p in predictions[:2])
        squad = load_metric("squad")
        out = {}
        for key, part in evalset.slices.items():
            examples = evalset.examples[key]
            texts = qa.postprocess_qa(examples, evalset.parts[key], start[part], end[part], n_best=self._n_best,
                                      max_answer_length=self._max_answer_length)
            preds = [{"id": i, "prediction_text": texts[i]} for i in examples["id"]]
            refs = [{"id": i, "answers": a} for i, a in zip(examples["id"], examples["answers"], strict=True)]
            official = load_metric("mlqa", language=key.split("-")[0]).compute(predictions=preds, references=refs)
            rules = squad.compute(predictions=preds, references=refs)
            out[key] = {"f1": official["f1"], "exact_match": official["exact_match"], "squad_f1": rules["f1"],
                        "squad_exact_match": rules["exact_match"]}
        return out

    def eval_set(self, args: FinetuneArguments, splits: Mapping[str, Any], tokenizer: Any) -> EvalSet:
        self._n_best, self._max_answer_length = args.n_best, args.max_answer_length  # read by score
        return super().eval_set(args, splits, tokenizer)


_ADAPTERS = {"xnli": XNLIAdapter, "ner": NERAdapter, "mlqa": MLQAAdapter}


def adapter_for(task: str) -> TaskAdapter:
    if task not in _ADAPTERS:
        raise RecipeError(f"task={task!r}; allowed: {sorted(_ADAPTERS)}")
    return _ADAPTERS[task]()
