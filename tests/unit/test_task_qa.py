"""Extractive QA (xlmr_hf.tasks.qa): SQuAD/MLQA files and Hub loading (monkeypatched `datasets.load_dataset`),
training and evaluation windows with character offsets in Chinese, Arabic, Hindi, Vietnamese and English,
n-best post-processing on constructed logits, and the error messages for bad input."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import datasets
import fixtures.tiny_tokenizer as tiny  # tests/ is on sys.path via tests/conftest.py
import numpy as np
import pytest
from fixtures import qa_data
from transformers import AutoTokenizer

from xlmr_hf.tasks import TaskDataError
from xlmr_hf.tasks.qa import (
    MLQA_LANGUAGES,
    QA_FEATURES,
    load_qa,
    mlqa_file_path,
    postprocess_qa,
    prepare_eval_features,
    prepare_train_features,
    read_squad_json,
)

SMALL = {"max_length": 64, "doc_stride": 16, "max_query_length": 16}  # several windows for the longer contexts


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("qa_data")
    qa_data.write_squad_train(directory)
    qa_data.write_mlqa(directory)
    return directory


@pytest.fixture(scope="module")
def qa_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("qa_tokenizer")
    qa_data.build_qa_tokenizer(directory, vocab_size=1000)
    return AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    tiny.build_tiny_tokenizer(directory)
    return AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def task(data_dir: Path) -> Any:
    return load_qa(data_dir=data_dir, eval_pairs=[("de", "en"), ("zh", "ar")])


def _write(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def _rows(dataset: Any) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in dataset}


# ---------------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------------
HAND_WRITTEN = {
    "version": "1.1",
    "data": [
        {"title": "Rivers", "paragraphs": [
            {"context": "The Silver River flows east. It is 120 km long.", "qas": [
                {"id": "q1", "question": "Which way does it flow?", "answers": [{"text": "east", "answer_start": 23}]},
                {"id": "q2", "question": "How long is it?", "answers": [
                    {"text": "120 km", "answer_start": 35}, {"text": "120 km long", "answer_start": 35}]},
            ]},
        ]},
        {"title": "天气", "paragraphs": [
            {"context": "今天下雨，明天晴天。", "qas": [
                {"id": "q3", "question": "明天天气怎么样？", "answers": [{"text": "晴天", "answer_start": 7}]},
            ]},
        ]},
    ],
}


def test_read_squad_json_exact_rows(tmp_path: Path) -> None:
    rows = read_squad_json(_write(tmp_path / "f.json", HAND_WRITTEN), language="en", question_language="de")
    assert rows == [
        {"id": "q1", "title": "Rivers", "context": "The Silver River flows east. It is 120 km long.",
         "question": "Which way does it flow?", "answers": {"text": ["east"], "answer_start": [23]},
         "language": "en", "question_language": "de"},
        {"id": "q2", "title": "Rivers", "context": "The Silver River flows east. It is 120 km long.",
         "question": "How long is it?", "answers": {"text": ["120 km", "120 km long"], "answer_start": [35, 35]},
         "language": "en", "question_language": "de"},
        {"id": "q3", "title": "天气", "context": "今天下雨，明天晴天。", "question": "明天天气怎么样？",
         "answers": {"text": ["晴天"], "answer_start": [7]}, "language": "en", "question_language": "de"},
    ]
    assert read_squad_json(tmp_path / "f.json", language="zh")[0]["question_language"] == "zh"


def test_fixture_files_in_every_language(data_dir: Path) -> None:
    ids: dict[str, set[str]] = {}
    for split, our_split in (("dev", "validation"), ("test", "test")):
        for language in MLQA_LANGUAGES:
            path = data_dir / "MLQA_V1" / split / f"{split}-context-{language}-question-{language}.json"
            assert mlqa_file_path(data_dir, our_split, language, language) == path
            assert mlqa_file_path(data_dir / "MLQA_V1", our_split, language, language) == path
            rows = read_squad_json(path, language=language)
            assert len(rows) == 3
            for row in rows:
                start, text = row["answers"]["answer_start"][0], row["answers"]["text"][0]
                assert row["context"][start:start + len(text)] == text
            ids.setdefault(split, set()).update(row["id"] for row in rows)
    assert len(ids["dev"]) == len(ids["test"]) == 3 and not ids["dev"] & ids["test"]  # parallel ids shared
    cross = read_squad_json(mlqa_file_path(data_dir, "validation", "de", "en"), language="de", question_language="en")
    assert [row["question"] for row in cross] == [qa_data.MLQA_QA[key]["en"][0] for key in ("village", "bus", "doctor")]
    assert [row["answers"]["text"] for row in cross] == [["am Meer"], ["mit dem Bus"], ["Arzt"]]
    squad = read_squad_json(data_dir / "train-v1.1.json", language="en")
    assert len(squad) == 27 and len({row["id"] for row in squad}) == 27


def test_misaligned_answers_dropped_for_training_kept_for_evaluation(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = json.loads(json.dumps(HAND_WRITTEN))
    broken["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 22  # " eas" != "east"
    path = _write(tmp_path / "broken.json", broken)
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.tasks.qa"):
        train = read_squad_json(path, language="en", drop_misaligned=True)
    assert [row["id"] for row in train] == ["q2", "q3"]
    assert "1 of 3 questions" in caplog.text and "q1" in caplog.text and "dropped" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.tasks.qa"):
        evaluation = read_squad_json(path, language="en")
    assert [row["id"] for row in evaluation] == ["q1", "q2", "q3"] and "kept" in caplog.text


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("data"), "top level: missing field 'data'"),
    (lambda d: d["data"][0]["paragraphs"][0].pop("context"), "data[0].paragraphs[0]: missing field 'context'"),
    (lambda d: d["data"][1]["paragraphs"][0]["qas"][0].pop("question"),
     "data[1].paragraphs[0].qas[0]: missing field 'question'"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][1]["answers"][1].pop("text"),
     "data[0].paragraphs[0].qas[1].answers[1]: missing field 'text'"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="23"),
     "answers[0].answer_start: expected a JSON int, got str"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(answers=[]), "'answers' is empty"),
    (lambda d: d["data"][1]["paragraphs"][0]["qas"][0].update(id="q1"), "question id 'q1' appears twice"),
])
def test_read_errors_name_file_and_field(tmp_path: Path, mutate: Any, message: str) -> None:
    document = json.loads(json.dumps(HAND_WRITTEN))
    mutate(document)
    path = _write(tmp_path / "bad.json", document)
    with pytest.raises(TaskDataError, match="bad.json") as info:
        read_squad_json(path, language="en")
    assert message in str(info.value)


def test_read_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError, match=r"nope\.json: file not found"):
        read_squad_json(tmp_path / "nope.json", language="en")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"bad\.json: not a readable UTF-8 JSON file"):
        read_squad_json(tmp_path / "bad.json", language="en")


# ---------------------------------------------------------------------------------------------------------------------
# load_qa: local files
# ---------------------------------------------------------------------------------------------------------------------
def test_load_qa_local_keys_and_rows(task: Any, data_dir: Path) -> None:
    keys = [*MLQA_LANGUAGES, "de-en", "zh-ar"]
    assert list(task.validation) == keys and list(task.test) == keys
    assert task.labels is None and len(task.train) == 27 and task.train.features == QA_FEATURES
    assert set(task.train["language"]) == {"en"}
    assert task.source["train"] == str(data_dir / "train-v1.1.json")
    assert "MLQA_V1" in task.source["validation"] and "MLQA_V1" in task.source["test"]
    pair = task.test["zh-ar"][0]
    assert pair["language"] == "zh" and pair["question_language"] == "ar"
    assert pair["context"] == qa_data.mlqa_context("test", "zh")
    assert pair["question"] == qa_data.MLQA_QA["coat"]["ar"][0]
    assert pair["answers"]["text"] == ["厚外套"] and pair["title"] == "日常生活"
    assert _rows(task.test["zh-ar"]).keys() == _rows(task.test["zh"]).keys()  # parallel ids


def test_load_qa_limits_and_duplicate_keys(data_dir: Path) -> None:
    small = load_qa(data_dir=data_dir / "MLQA_V1", squad_file=data_dir / "train-v1.1.json", eval_languages=["ar"],
                    eval_pairs=[("ar", "ar"), ("hi", "vi")], max_train_examples=5, max_eval_examples=2)
    assert list(small.validation) == ["ar", "hi-vi"] and len(small.train) == 5
    assert all(len(d) == 2 for d in (*small.validation.values(), *small.test.values()))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"eval_languages": ["en", "fr"]},
     r"eval_languages: unknown MLQA language 'fr'; allowed: en, es, de, ar, hi, vi, zh"),
    ({"eval_languages": "en"}, "sequence of language codes"),
    ({"eval_pairs": [("de", "xx")]}, r"eval_pairs \('de', 'xx'\) \(question language\): unknown MLQA language 'xx'"),
    ({"eval_pairs": [("sw", "en")]}, r"\(context language\): unknown MLQA language 'sw'"),
    ({"eval_pairs": [("de",)]}, "not a \\(context_language, question_language\\) pair"),
    ({"eval_pairs": [3]}, "not a \\(context_language, question_language\\) pair"),
    ({"max_eval_examples": 0}, "max_eval_examples: expected a positive integer"),
])
def test_load_qa_bad_arguments(data_dir: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskDataError, match=message):
        load_qa(data_dir=data_dir, **kwargs)


def test_load_qa_missing_files(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError, match=r"train-v1\.1\.json: file not found"):
        load_qa(data_dir=tmp_path)
    qa_data.write_squad_train(tmp_path)
    qa_data.write_mlqa(tmp_path, languages=("en",))
    with pytest.raises(TaskDataError, match=r"dev-context-de-question-de\.json: MLQA validation file .* not found"):
        load_qa(data_dir=tmp_path, eval_languages=["en", "de"])


# ---------------------------------------------------------------------------------------------------------------------
# load_qa: Hub (datasets.load_dataset monkeypatched)
# ---------------------------------------------------------------------------------------------------------------------
def _hub_rows(language: str, split: str, question_language: str) -> list[dict[str, Any]]:
    file_split = "dev" if split == "validation" else "test"
    document = qa_data.mlqa_json(file_split, language, question_language)
    paragraph = document["data"][0]["paragraphs"][0]
    return [{"context": paragraph["context"], "question": qa["question"], "id": qa["id"],
             "answers": {"answer_start": [a["answer_start"] for a in qa["answers"]],
                         "text": [a["text"] for a in qa["answers"]]}}
            for qa in paragraph["qas"]]


class FakeHub:
    """Records `load_dataset` calls; SQuAD rows have a title, MLQA rows (as on the Hub) do not."""

    def __init__(self, squad_path: Path | None = None, drop_column: str | None = None) -> None:
        self.calls: list[tuple[str, str | None, dict[str, Any]]] = []
        self.squad_path, self.drop_column = squad_path, drop_column

    def __call__(self, path: str, name: str | None = None, **kwargs: Any) -> Any:
        self.calls.append((path, name, kwargs))
        if path == "rajpurkar/squad":
            rows = read_squad_json(self.squad_path, language="en")
            rows = [{k: row[k] for k in ("id", "title", "context", "question", "answers")} for row in rows]
            rows[1]["answers"] = {"text": ["nowhere"], "answer_start": [0]}  # misaligned: dropped for training
            return datasets.Dataset.from_list(rows)
        assert path == "facebook/mlqa" and not kwargs
        _, context_language, question_language = name.split(".")
        splits = {}
        for split in ("validation", "test"):
            dataset = datasets.Dataset.from_list(_hub_rows(context_language, split, question_language))
            splits[split] = dataset.remove_columns(self.drop_column) if self.drop_column else dataset
        return datasets.DatasetDict(splits)


def test_load_qa_from_hub(monkeypatch: pytest.MonkeyPatch, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeHub(squad_path=data_dir / "train-v1.1.json")
    monkeypatch.setattr(datasets, "load_dataset", fake)
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.tasks.qa"):
        result = load_qa(eval_languages=["zh", "ar"], eval_pairs=[("de", "en")])
    assert fake.calls == [("rajpurkar/squad", None, {"split": "train"}), ("facebook/mlqa", "mlqa.zh.zh", {}),
                          ("facebook/mlqa", "mlqa.ar.ar", {}), ("facebook/mlqa", "mlqa.de.en", {})]
    assert len(result.train) == 26 and "1 of 27 questions" in caplog.text
    assert result.train.features == QA_FEATURES and result.validation["zh"].features == QA_FEATURES
    assert result.source == {"train": "rajpurkar/squad (train)",
                             "validation": "facebook/mlqa (mlqa.<c>.<q>, validation)",
                             "test": "facebook/mlqa (mlqa.<c>.<q>, test)"}
    local = load_qa(data_dir=data_dir, eval_languages=["zh", "ar"], eval_pairs=[("de", "en")])
    for split in ("validation", "test"):
        for key in ("zh", "ar", "de-en"):
            hub_rows = getattr(result, split)[key].to_list()
            local_rows = [{**row, "title": ""} for row in getattr(local, split)[key].to_list()]
            assert hub_rows == local_rows


def test_load_qa_squad_file_with_hub_mlqa(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    fake = FakeHub()
    monkeypatch.setattr(datasets, "load_dataset", fake)
    result = load_qa(squad_file=data_dir / "train-v1.1.json", eval_languages=["hi"])
    assert fake.calls == [("facebook/mlqa", "mlqa.hi.hi", {})] and len(result.train) == 27


def test_load_qa_hub_errors(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    fake = FakeHub(drop_column="answers")
    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(TaskDataError, match=r"'facebook/mlqa' config 'mlqa\.vi\.vi' \(split validation\): missing "
                                            r"column\(s\) answers"):
        load_qa(squad_file=data_dir / "train-v1.1.json", eval_languages=["vi"])

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Dataset scripts are no longer supported, but found mlqa.py")

    monkeypatch.setattr(datasets, "load_dataset", unavailable)
    with pytest.raises(TaskDataError, match=r"'facebook/mlqa' config 'mlqa\.en\.en': could not be loaded "
                                            r"\(RuntimeError: Dataset scripts .*\); .* data_dir="):
        load_qa(squad_file=data_dir / "train-v1.1.json", eval_languages=["en"])


# ---------------------------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------------------------
def _labelled_text(feature: dict[str, Any], context: str) -> str:
    start, end = feature["start_positions"], feature["end_positions"]
    return context[feature["offset_mapping"][start][0]:feature["offset_mapping"][end][1]]


@pytest.mark.parametrize("language", ["en", "es", "de", "ar", "hi", "vi", "zh"])
def test_train_labels_recover_the_answer(task: Any, qa_tokenizer: Any, language: str) -> None:
    for split in (task.validation, task.test):
        examples = _rows(split[language])
        features = prepare_train_features(split[language], qa_tokenizer, max_length=512, keep_offsets=True)
        assert len(features) == len(examples)  # one window each at max_length=512
        for feature in features:
            example = examples[feature["example_id"]]
            assert feature["start_positions"] > 0
            assert _labelled_text(feature, example["context"]) == example["answers"]["text"][0]


def test_train_windows_of_a_long_context(task: Any, qa_tokenizer: Any) -> None:
    millbrook = task.train.filter(lambda row: row["title"] == "Millbrook")
    assert len(millbrook) == 9
    plain = prepare_train_features(millbrook, qa_tokenizer, **SMALL)
    assert plain.column_names == ["input_ids", "attention_mask", "start_positions", "end_positions"]
    features = prepare_train_features(millbrook, qa_tokenizer, **SMALL, keep_offsets=True)
    assert plain["start_positions"] == features["start_positions"]
    examples = _rows(millbrook)
    per_example: dict[str, list[dict[str, Any]]] = {}
    for feature in features:
        assert len(feature["input_ids"]) <= SMALL["max_length"]
        per_example.setdefault(feature["example_id"], []).append(feature)
    for example_id, windows in per_example.items():
        example = examples[example_id]
        start_char = example["answers"]["answer_start"][0]
        end_char = start_char + len(example["answers"]["text"][0])
        assert len(windows) > 3  # ~700 characters of English in a 64-token window
        for left, right in itertools.pairwise(windows):  # doc_stride = context tokens shared by consecutive windows
            left_spans = [o for o in left["offset_mapping"] if o is not None]
            right_spans = [o for o in right["offset_mapping"] if o is not None]
            assert left_spans[-SMALL["doc_stride"]:] == right_spans[:SMALL["doc_stride"]]
        labelled = 0
        for window in windows:
            spans = [o for o in window["offset_mapping"] if o is not None]
            inside = spans[0][0] <= start_char and end_char <= spans[-1][1]
            if inside:
                labelled += 1
                assert _labelled_text(window, example["context"]) == example["answers"]["text"][0]
            else:
                assert (window["start_positions"], window["end_positions"]) == (0, 0)  # <s>
        assert labelled >= 1


def test_answer_boundary_inside_a_token_is_covered_and_counted(
        tiny_tokenizer: Any, qa_tokenizer: Any, caplog: pytest.LogCaptureFixture) -> None:
    # The tiny tokenizer has no Han characters: a whole Chinese run is one <unk> token, wider than the answer.
    context = qa_data.mlqa_context("dev", "zh")
    zh = datasets.Dataset.from_list([{"id": "zh", "question": "Wo?", "context": context,
                                      "answers": {"text": ["医生"], "answer_start": [context.index("医生")]}}])
    with caplog.at_level(logging.INFO, logger="xlmr_hf.tasks.qa"):
        feature = prepare_train_features(zh, tiny_tokenizer, keep_offsets=True)[0]
    recovered = _labelled_text(feature, context)
    assert "医生" in recovered and recovered != "医生"
    assert "(1 of them with an answer boundary inside a token" in caplog.text
    # An Arabic answer without its attached preposition: "الحافلة" inside "بالحافلة".
    context = qa_data.mlqa_context("dev", "ar")
    ar = datasets.Dataset.from_list([{"id": "ar", "question": "كيف؟", "context": context,
                                      "answers": {"text": ["الحافلة"], "answer_start": [context.index("الحافلة")]}}])
    feature = prepare_train_features(ar, qa_tokenizer, keep_offsets=True)[0]
    assert "الحافلة" in _labelled_text(feature, context)


def test_long_questions_are_cut_to_max_query_length(task: Any, qa_tokenizer: Any) -> None:
    example = task.validation["en"][1]  # "by bus"
    long = {**example, "question": "   " + " ".join([example["question"]] * 10)}
    dataset = datasets.Dataset.from_list([long])
    features = prepare_eval_features(dataset, qa_tokenizer, max_length=96, doc_stride=16, max_query_length=12)
    train = prepare_train_features(dataset, qa_tokenizer, max_length=96, doc_stride=16, max_query_length=12,
                                   keep_offsets=True)
    assert len(features) > 1
    cut = qa_tokenizer(long["question"].lstrip(), add_special_tokens=False)["input_ids"][:12]
    for feature in features:
        first_context = next(k for k, o in enumerate(feature["offset_mapping"]) if o is not None)
        assert first_context == 1 + 12 + 2  # <s>, 12 question tokens, </s></s>
        assert feature["input_ids"][1:13] == cut
    assert any(f["start_positions"] for f in train)
    assert all(_labelled_text(f, example["context"]) == "by bus" for f in train if f["start_positions"])


def test_eval_features_offsets_only_for_context_tokens(task: Any, qa_tokenizer: Any) -> None:
    dataset = task.test["hi"]
    features = prepare_eval_features(dataset, qa_tokenizer, max_length=80, doc_stride=16, max_query_length=32)
    assert features.column_names == ["input_ids", "attention_mask", "example_id", "offset_mapping"]
    assert set(features["example_id"]) == set(dataset["id"]) and len(features) > len(dataset)
    contexts = {row["id"]: (row["question"], row["context"]) for row in dataset}
    for feature in features:
        question, context = contexts[feature["example_id"]]
        offsets = feature["offset_mapping"]
        assert len(offsets) == len(feature["input_ids"]) == len(feature["attention_mask"])
        # <s>, the question, </s></s> and the final </s> have no offsets; the context tokens are one run in order
        kept = [k for k, o in enumerate(offsets) if o is not None]
        assert kept == list(range(kept[0], kept[-1] + 1)) and kept[-1] == len(offsets) - 2
        question_ids = qa_tokenizer(question, add_special_tokens=False)["input_ids"]
        assert kept[0] == 1 + len(question_ids) + 2
        assert feature["input_ids"][1:1 + len(question_ids)] == question_ids
        assert all(0 <= offsets[k][0] < offsets[k][1] <= len(context) for k in kept)


def test_feature_errors(task: Any, qa_tokenizer: Any) -> None:
    with pytest.raises(TaskDataError, match=r"QA training data: missing column\(s\) answers; present: .*; required"):
        prepare_train_features(task.validation["en"].remove_columns("answers"), qa_tokenizer)
    with pytest.raises(TaskDataError, match=r"QA evaluation data: missing column\(s\) question"):
        prepare_eval_features([{"id": "a", "context": "x"}], qa_tokenizer)
    with pytest.raises(ValueError, match="must be larger than doc_stride"):
        prepare_eval_features(task.validation["en"], qa_tokenizer, max_length=40, doc_stride=30, max_query_length=8)
    with pytest.raises(TypeError, match="fast tokenizer"):
        prepare_eval_features(task.validation["en"], SimpleNamespace(is_fast=False))


# ---------------------------------------------------------------------------------------------------------------------
# Post-processing
# ---------------------------------------------------------------------------------------------------------------------
def _gold_tokens(offsets: list[Any], start_char: int, end_char: int) -> tuple[int, int]:
    starts = [k for k, o in enumerate(offsets) if o is not None and o[0] == start_char]
    ends = [k for k, o in enumerate(offsets) if o is not None and o[1] == end_char]
    return starts[-1], ends[-1]


def _logits(features: Any, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Zero logits, as `Trainer.predict` returns them: one row per feature, padded with -100."""
    width = width or max(len(ids) for ids in features["input_ids"])
    start = np.full((len(features), width), -100.0)
    for i, ids in enumerate(features["input_ids"]):
        start[i, :len(ids)] = 0.0
    return start, start.copy()


@pytest.mark.parametrize("language", ["zh", "ar", "hi", "en"])
def test_postprocess_recovers_exact_answers(task: Any, qa_tokenizer: Any, language: str) -> None:
    examples = task.test[language]
    features = prepare_eval_features(examples, qa_tokenizer, **SMALL)
    assert len(features) > len(examples)
    start_logits, end_logits = _logits(features)
    gold = {row["id"]: (row["answers"]["answer_start"][0], row["answers"]["text"][0]) for row in examples}
    last_window: dict[str, tuple[int, int, int]] = {}  # example id -> (feature, start token, end token)
    for i, feature in enumerate(features):
        start_char, text = gold[feature["example_id"]]
        kept = [k for k, o in enumerate(feature["offset_mapping"]) if o is not None]
        start_logits[i, 0] = end_logits[i, 0] = 50.0  # <s> (outside the context) is never an answer
        start_logits[i, kept[0]] = end_logits[i, kept[1]] = 3.0  # a valid span in every window, scoring 6
        offsets = feature["offset_mapping"]
        if offsets[kept[0]][0] <= start_char and start_char + len(text) <= offsets[kept[-1]][1]:
            last_window[feature["example_id"]] = (i, *_gold_tokens(offsets, start_char, start_char + len(text)))
    assert last_window.keys() == gold.keys()
    for i, s, e in last_window.values():  # the gold span of the last window holding the answer scores 9
        start_logits[i, s], end_logits[i, e] = 5.0, 4.0
    predictions = postprocess_qa(examples, features, start_logits, end_logits)
    assert predictions == {example_id: text for example_id, (_, text) in gold.items()}


def _one_example(task: Any, qa_tokenizer: Any) -> tuple[Any, Any, list[Any], str]:
    examples = task.validation["ar"].select([1])  # "بالحافلة", single window
    features = prepare_eval_features(examples, qa_tokenizer)
    assert len(features) == 1
    return examples, features, features[0]["offset_mapping"], examples[0]["context"]


def test_postprocess_span_rules(task: Any, qa_tokenizer: Any) -> None:
    examples, features, offsets, context = _one_example(task, qa_tokenizer)
    example_id = examples[0]["id"]
    kept = [k for k, o in enumerate(offsets) if o is not None]
    a, b, c = kept[2], kept[4], kept[15]

    def predict(starts: dict[int, float], ends: dict[int, float], **kwargs: Any) -> str:
        start_logits, end_logits = _logits(features)
        for k, v in starts.items():
            start_logits[0, k] = v
        for k, v in ends.items():
            end_logits[0, k] = v
        return postprocess_qa(examples, features, start_logits, end_logits, **kwargs)[example_id]

    expected = context[offsets[a][0]:offsets[b][1]].strip()
    assert predict({a: 3.0}, {b: 3.0}) == expected
    # (c, b) scores best but ends before it starts
    assert predict({c: 9.0, a: 3.0}, {b: 9.0}) == expected
    # a span longer than max_answer_length is skipped for a shorter, lower-scoring one
    assert predict({a: 9.0}, {c: 9.0, b: 1.0}, max_answer_length=c - a) == expected
    assert predict({a: 9.0}, {c: 9.0, b: 1.0}) == context[offsets[a][0]:offsets[c][1]].strip()
    # n_best=1 only looks at the single best start and end
    assert predict({a: 9.0}, {c: 9.0, b: 8.0}, n_best=1, max_answer_length=c - a) == ""
    # the question / special tokens score highest but are never part of an answer
    assert predict({0: 99.0, 1: 98.0, a: 1.0}, {0: 99.0, 1: 98.0, b: 1.0}) == expected


def test_postprocess_empty_prediction_is_counted(
        task: Any, qa_tokenizer: Any, caplog: pytest.LogCaptureFixture) -> None:
    examples, features, offsets, _ = _one_example(task, qa_tokenizer)
    start_logits, end_logits = _logits(features)
    start_logits[0, :], end_logits[0, :] = -100.0, -100.0
    last = max(k for k, o in enumerate(offsets) if o is not None)
    start_logits[0, last], end_logits[0, last - 1] = 5.0, 5.0  # only end < start in the top 1
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.tasks.qa"):
        predictions = postprocess_qa(examples, features, start_logits, end_logits, n_best=1)
    assert predictions == {examples[0]["id"]: ""}
    assert "1 of 1 examples have no valid answer span" in caplog.text


def test_postprocess_accepts_lists_and_ragged_logits(task: Any, qa_tokenizer: Any) -> None:
    examples, features, offsets, context = _one_example(task, qa_tokenizer)
    kept = [k for k, o in enumerate(offsets) if o is not None]
    start = np.zeros(len(offsets))
    end = np.zeros(len(offsets))
    start[kept[1]], end[kept[3]] = 1.0, 1.0
    predictions = postprocess_qa(examples.to_list(), features.to_list(), [start], [end])
    assert predictions[examples[0]["id"]] == context[offsets[kept[1]][0]:offsets[kept[3]][1]].strip()


def test_postprocess_errors(task: Any, qa_tokenizer: Any) -> None:
    examples, features, _, _ = _one_example(task, qa_tokenizer)
    start_logits, end_logits = _logits(features)
    with pytest.raises(ValueError, match=r"one row per feature \(1 features\)"):
        postprocess_qa(examples, features, np.zeros((2, 5)), end_logits)
    with pytest.raises(TaskDataError, match="not among the examples"):
        postprocess_qa(task.validation["ar"].select([0]), features, start_logits, end_logits)
    with pytest.raises(TaskDataError, match="appears twice"):
        postprocess_qa([examples[0], examples[0]], features, start_logits, end_logits)
    with pytest.raises(TaskDataError, match=r"QA features: row 0 has no offset_mapping"):
        postprocess_qa(examples, [{"example_id": examples[0]["id"]}], start_logits, end_logits)
    with pytest.raises(ValueError, match="logits"):
        postprocess_qa(examples, features, start_logits[:, :3], end_logits[:, :3])
