"""XNLI task data: every setting from hand-written files in the official layouts (tests/fixtures/xnli_data.py), the
Hub path with a monkeypatched `datasets.load_dataset`, preprocessing, and the error messages of bad input."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import datasets
import fixtures.tiny_tokenizer as tiny  # tests/ is on sys.path via tests/conftest.py
import pytest
from fixtures.xnli_data import (
    DEFAULT_LANGUAGES,
    fixture_pairs,
    tokenize_like_release,
    write_xnli_fixture,
)
from transformers import AutoTokenizer

from xlmr_hf.tasks import TaskData, TaskDataError
from xlmr_hf.tasks.xnli import (
    HUB_ID,
    LABELS,
    LANGUAGES,
    SETTINGS,
    load_xnli,
    preprocess_xnli,
)

LABEL_ID = {"entailment": 0, "neutral": 1, "contradiction": 2}
N_TRAIN, N_EVAL = 36, 12  # fixture pairs per language


@pytest.fixture(scope="module")
def xnli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_xnli_fixture(tmp_path_factory.mktemp("xnli"))


@pytest.fixture
def own_dir(tmp_path: Path) -> Path:
    """A private copy to damage."""
    return write_xnli_fixture(tmp_path / "xnli", languages=("en", "fr", "zh"))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    tiny.build_tiny_tokenizer(directory)
    return AutoTokenizer.from_pretrained(directory)


def rows(dataset: datasets.Dataset) -> list[tuple[str, str, int, str]]:
    return list(zip(dataset["premise"], dataset["hypothesis"], dataset["label"], dataset["language"], strict=True))


def expected_eval(lang: str, split: str, text_lang: str | None = None) -> list[tuple[str, str, int, str]]:
    pairs, text = fixture_pairs(lang, split), fixture_pairs(text_lang or lang, split)
    return [(str(t["premise"]), str(t["hypothesis"]), LABEL_ID[str(p["label"])], lang)
            for p, t in zip(pairs, text, strict=True)]


def expected_train(lang: str) -> list[tuple[str, str, int, str]]:
    return [(tokenize_like_release(str(p["premise"])), tokenize_like_release(str(p["hypothesis"])),
             LABEL_ID[str(p["label"])], lang) for p in fixture_pairs(lang, "train")]


def replace_in(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


# ----------------------------------------------------------------------------------------------------------------------
# Settings from local files
# ----------------------------------------------------------------------------------------------------------------------
def test_constants() -> None:
    assert LABELS == ("entailment", "neutral", "contradiction")  # facebook/xnli ClassLabel order
    assert len(LANGUAGES) == 15 and LANGUAGES[0] == "en"
    assert SETTINGS == ("cross-lingual-transfer", "translate-train", "translate-train-all", "translate-test")


def test_cross_lingual_transfer(xnli_dir: Path) -> None:
    data = load_xnli("cross-lingual-transfer", languages=DEFAULT_LANGUAGES, data_dir=str(xnli_dir))
    assert isinstance(data, TaskData) and data.labels == list(LABELS)
    assert rows(data.train) == expected_train("en")  # English MultiNLI, contradictory -> 2
    assert data.train["label"][:3] == [0, 1, 2] and data.train["label"].count(2) == N_TRAIN // 3
    assert data.train.features["label"] == datasets.Value("int64")
    assert list(data.validation) == list(DEFAULT_LANGUAGES) == list(data.test)
    for lang in DEFAULT_LANGUAGES:
        assert rows(data.validation[lang]) == expected_eval(lang, "dev")
        assert rows(data.test[lang]) == expected_eval(lang, "test")
        assert data.test[lang].column_names == ["premise", "hypothesis", "label", "language"]
    assert data.source == {"train": str(xnli_dir / "XNLI-MT-1.0/multinli/multinli.train.en.tsv"),
                           "validation": str(xnli_dir / "XNLI-1.0/xnli.dev.tsv"),
                           "test": str(xnli_dir / "XNLI-1.0/xnli.test.tsv")}


def test_cross_lingual_transfer_other_train_language(xnli_dir: Path) -> None:
    data = load_xnli("cross-lingual-transfer", languages=["en", "sw"], data_dir=str(xnli_dir), train_language="fr")
    assert rows(data.train) == expected_train("fr")
    assert list(data.test) == ["en", "sw"]


def test_quoted_fields_are_read_verbatim(xnli_dir: Path) -> None:
    # the English second negation frame starts a field with an unbalanced-looking double quote
    data = load_xnli("cross-lingual-transfer", languages=["en"], data_dir=str(xnli_dir))
    quoted = [h for h in data.train["hypothesis"] if h.startswith('"')]
    assert quoted == [h for _, h, _, _ in expected_train("en") if h.startswith('"')] and len(quoted) == 6
    assert '"My mother cooks rice with fish every Sunday evening." is not true.' in data.test["en"]["hypothesis"]


def test_translate_train(xnli_dir: Path) -> None:
    data = load_xnli("translate-train", languages=["zh"], data_dir=str(xnli_dir))
    assert rows(data.train) == expected_train("zh")
    assert set(data.train["language"]) == {"zh"}
    assert list(data.validation) == ["zh"] and rows(data.validation["zh"]) == expected_eval("zh", "dev")


def test_translate_train_all(xnli_dir: Path) -> None:
    data = load_xnli("translate-train-all", languages=["en", "ar", "hi"], data_dir=str(xnli_dir))
    assert rows(data.train) == expected_train("en") + expected_train("ar") + expected_train("hi")
    assert list(data.test) == ["en", "ar", "hi"]
    capped = load_xnli("translate-train-all", languages=["en", "ar", "hi"], data_dir=str(xnli_dir),
                       max_train_examples=10, max_eval_examples=5)
    assert capped.train["language"] == ["en"] * 4 + ["ar"] * 3 + ["hi"] * 3  # the cap is shared evenly
    assert rows(capped.train)[4:7] == expected_train("ar")[:3]
    assert {lang: len(d) for lang, d in capped.validation.items()} == {"en": 5, "ar": 5, "hi": 5}
    assert rows(capped.test["hi"]) == expected_eval("hi", "test")[:5]


def test_translate_test(xnli_dir: Path) -> None:
    data = load_xnli("translate-test", languages=["fr", "zh", "en"], data_dir=str(xnli_dir))
    assert rows(data.train) == expected_train("en")
    for lang in ("fr", "zh", "en"):  # English text, original language kept
        assert rows(data.test[lang]) == expected_eval(lang, "test", text_lang="en")
        assert rows(data.validation[lang]) == expected_eval(lang, "dev", text_lang="en")
    assert data.source["test"].split("; ") == [str(xnli_dir / f"XNLI-MT-1.0/xnli/xnli.test.{lang}.tsv")
                                               for lang in ("fr", "zh", "en")]


def test_translate_test_english_falls_back_to_xnli(own_dir: Path) -> None:
    for suffix in ("tsv", "jsonl"):
        for infix in ("dev", "test"):
            (own_dir / f"XNLI-MT-1.0/xnli/xnli.{infix}.en.{suffix}").unlink()
    data = load_xnli("translate-test", languages=["en", "fr"], data_dir=str(own_dir))
    assert rows(data.test["en"]) == expected_eval("en", "test")
    assert data.source["test"] == (f"{own_dir / 'XNLI-MT-1.0/xnli/xnli.test.fr.tsv'}; "
                                   f"{own_dir / 'XNLI-1.0/xnli.test.tsv'}")


def test_translate_test_file_with_several_languages(own_dir: Path) -> None:
    # a translated file that holds several languages: only the rows of the requested one are used
    path = own_dir / "XNLI-MT-1.0/xnli/xnli.test.fr.tsv"
    other = (own_dir / "XNLI-MT-1.0/xnli/xnli.test.zh.tsv").read_text(encoding="utf-8").split("\n", 1)[1]
    path.write_text(path.read_text(encoding="utf-8") + other, encoding="utf-8")
    data = load_xnli("translate-test", languages=["fr"], data_dir=str(own_dir))
    assert rows(data.test["fr"]) == expected_eval("fr", "test", text_lang="en")


def test_flat_layout_and_jsonl(tmp_path: Path, xnli_dir: Path) -> None:
    reference = load_xnli("cross-lingual-transfer", languages=["en", "ar"], data_dir=str(xnli_dir))
    flat = write_xnli_fixture(tmp_path / "flat", languages=("en", "ar"), flat=True)
    assert (flat / "xnli.dev.tsv").is_file() and (flat / "multinli/multinli.train.en.tsv").is_file()
    for infix in ("dev", "test"):
        (flat / f"xnli.{infix}.tsv").unlink()  # only the .jsonl twins remain
    data = load_xnli("cross-lingual-transfer", languages=["en", "ar"], data_dir=str(flat))
    assert data.source["test"] == str(flat / "xnli.test.jsonl")
    assert rows(data.train) == rows(reference.train)
    for lang in ("en", "ar"):
        assert rows(data.test[lang]) == rows(reference.test[lang])
        assert rows(data.validation[lang]) == rows(reference.validation[lang])


def test_unlabelled_and_malformed_rows_are_counted_and_skipped(own_dir: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    dev = own_dir / "XNLI-1.0/xnli.dev.tsv"
    replace_in(dev, "\nen\tentailment\t", "\nen\t-\t")  # first English dev row: no gold label
    train = own_dir / "XNLI-MT-1.0/multinli/multinli.train.en.tsv"
    with train.open("a", encoding="utf-8") as handle:
        handle.write("a premise without the other fields\n\n")  # a short row, then a blank line
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.tasks.xnli"):
        data = load_xnli("cross-lingual-transfer", languages=["en", "fr"], data_dir=str(own_dir))
    assert rows(data.validation["en"]) == expected_eval("en", "dev")[1:]
    assert len(data.validation["fr"]) == N_EVAL and len(data.train) == N_TRAIN
    messages = [record.getMessage() for record in caplog.records]
    assert any(f"skipped 1 row(s) of {dev}: no gold label ('-') (first at line 2)" in m for m in messages)
    assert any(f"skipped 1 row(s) of {train}: 1 tab-separated fields instead of the header's 3 (first at line 38)"
               in m for m in messages)


def test_limits(xnli_dir: Path) -> None:
    data = load_xnli("translate-train", languages=["de"], data_dir=str(xnli_dir), max_train_examples=3,
                     max_eval_examples=3)
    assert rows(data.train) == expected_train("de")[:3]
    assert rows(data.test["de"]) == expected_eval("de", "test")[:3]


# ----------------------------------------------------------------------------------------------------------------------
# The Hub (facebook/xnli), with datasets.load_dataset monkeypatched
# ----------------------------------------------------------------------------------------------------------------------
def fake_config(lang: str, names: tuple[str, ...] = LABELS, drop: str | None = None) -> datasets.DatasetDict:
    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(names))})
    splits = {}
    for split, size in (("train", 6), ("validation", 3), ("test", 3)):
        columns = {"premise": [f"{lang} {split} premise {i}" for i in range(size)],
                   "hypothesis": [f"{lang} {split} hypothesis {i}" for i in range(size)],
                   "label": [i % 3 for i in range(size)]}
        dataset = datasets.Dataset.from_dict(columns, features=features)
        splits[split] = dataset.remove_columns(drop) if drop else dataset
    return datasets.DatasetDict(splits)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    calls: list[tuple] = []

    def load_dataset(path: str, name: str | None = None, **kwargs: object) -> datasets.DatasetDict:
        calls.append((path, name, kwargs))
        return fake_config(str(name))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_cross_lingual_transfer(hub: list[tuple]) -> None:
    data = load_xnli("cross-lingual-transfer", languages=["en", "fr", "ur"], max_eval_examples=2)
    assert hub == [(HUB_ID, "en", {}), (HUB_ID, "fr", {}), (HUB_ID, "ur", {})]  # each config once
    assert rows(data.train) == [(f"en train premise {i}", f"en train hypothesis {i}", i % 3, "en") for i in range(6)]
    assert data.train.features == datasets.Features({"premise": datasets.Value("string"),
                                                     "hypothesis": datasets.Value("string"),
                                                     "label": datasets.Value("int64"),
                                                     "language": datasets.Value("string")})
    assert rows(data.test["ur"]) == [("ur test premise 0", "ur test hypothesis 0", 0, "ur"),
                                     ("ur test premise 1", "ur test hypothesis 1", 1, "ur")]
    assert list(data.validation) == ["en", "fr", "ur"]
    assert data.source == {"train": "facebook/xnli:en/train", "validation": "facebook/xnli:en,fr,ur/validation",
                           "test": "facebook/xnli:en,fr,ur/test"}


def test_hub_translate_train_and_all(hub: list[tuple]) -> None:
    data = load_xnli("translate-train", languages=["sw"])
    assert hub == [(HUB_ID, "sw", {})]  # the machine-translated train split of the sw config
    assert set(data.train["language"]) == {"sw"} and data.train["premise"][0] == "sw train premise 0"
    data = load_xnli("translate-train-all", languages=["de", "th"], max_train_examples=5)
    assert data.train["language"] == ["de"] * 3 + ["th"] * 2


def test_hub_bad_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name: fake_config(name, names=("yes", "maybe", "no")))
    with pytest.raises(TaskDataError, match=r"facebook/xnli \(config 'en', split 'train'\): label names "
                                            r"\['yes', 'maybe', 'no'\] differ from the expected"):
        load_xnli("cross-lingual-transfer", languages=["en"])
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name: fake_config(name, drop="hypothesis"))
    with pytest.raises(TaskDataError, match=r"split 'train'\): missing column\(s\) hypothesis; columns found: "
                                            r"premise, label"):
        load_xnli("cross-lingual-transfer", languages=["en"])
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda path, name: datasets.DatasetDict({"train": fake_config(name)["train"]}))
    with pytest.raises(TaskDataError, match=r"facebook/xnli \(config 'en'\): no split 'validation'; splits found: "
                                            "train"):
        load_xnli("cross-lingual-transfer", languages=["en"])


def test_hub_integer_labels(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def config(labels: list[int]) -> datasets.DatasetDict:
        dataset = datasets.Dataset.from_dict({"premise": ["p"] * len(labels), "hypothesis": ["h"] * len(labels),
                                              "label": labels})
        return datasets.DatasetDict({"train": dataset, "validation": dataset, "test": dataset})

    monkeypatch.setattr(datasets, "load_dataset", lambda path, name: config([0, -1, 1, 2, -1]))
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.tasks.xnli"):
        data = load_xnli("cross-lingual-transfer", languages=["en"])
    assert data.train["label"] == [0, 1, 2] and len(data.test["en"]) == 3
    assert "skipped 2 row(s) of facebook/xnli (config 'en', split 'test'): no label (-1)" in caplog.text
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name: config([0, 1, 2, 3]))
    with pytest.raises(TaskDataError, match=r"facebook/xnli \(config 'en', split 'train'\): label value\(s\) \[3\]; "
                                            r"allowed: 0 \(entailment\), 1 \(neutral\), 2 \(contradiction\)"):
        load_xnli("cross-lingual-transfer", languages=["en"])


def test_hub_translate_test_needs_local_files(hub: list[tuple]) -> None:
    with pytest.raises(TaskDataError, match=r"'translate-test' needs local files: the Hub dataset facebook/xnli has "
                                            r"no test sets machine-translated into English"):
        load_xnli("translate-test", languages=["fr"])
    assert hub == []


# ----------------------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"setting": "zero-shot"}, (r"setting 'zero-shot' is unknown; allowed: cross-lingual-transfer, "
                                r"translate-train, translate-train-all, translate-test")),
    ({"languages": ["en", "ja"]}, (r"languages entry 'ja' is not an XNLI language; allowed: en, fr, es, de, el, "
                                   r"bg, ru, tr, ar, vi, th, zh, hi, sw, ur")),
    ({"train_language": "EN"}, r"train_language 'EN' is not an XNLI language; allowed: en, fr"),
    ({"languages": []}, r"languages is empty; give one or more of en, fr"),
    ({"max_train_examples": 0}, r"max_train_examples is 0; allowed: a positive int or None"),
    ({"max_eval_examples": 2.5}, r"max_eval_examples is 2.5; allowed: a positive int or None"),
    ({"setting": "translate-train", "languages": ["en", "fr"]},
     (r"'translate-train' trains one model per language and takes exactly one language; got languages "
      r"\['en', 'fr'\]\. Call once per language with languages=\[lang\]")),
    ({"setting": "translate-test", "train_language": "fr"}, r"train_language must be 'en'; got 'fr'"),
])
def test_argument_errors(xnli_dir: Path, kwargs: dict, message: str) -> None:
    kwargs = {"setting": "cross-lingual-transfer", "data_dir": str(xnli_dir), **kwargs}
    with pytest.raises(TaskDataError, match=message):
        load_xnli(kwargs.pop("setting"), **kwargs)


def test_missing_files(own_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TaskDataError, match=r"data_dir '.*nowhere' is not a directory"):
        load_xnli("cross-lingual-transfer", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(TaskDataError) as error:
        load_xnli("translate-train", languages=["de"], data_dir=str(own_dir))
    assert str(error.value) == ("XNLI: training set of 'de' not found; expected one of: "
                                f"{own_dir / 'XNLI-MT-1.0/multinli/multinli.train.de.tsv'}, "
                                f"{own_dir / 'multinli/multinli.train.de.tsv'}")
    with pytest.raises(TaskDataError, match=r"translate-test test set of 'de' \(translated into English\) not found; "
                                            r"expected one of: .*XNLI-MT-1\.0/xnli/xnli\.test\.de\.tsv"):
        shutil.copy(own_dir / "XNLI-MT-1.0/xnli/xnli.dev.fr.tsv", own_dir / "XNLI-MT-1.0/xnli/xnli.dev.de.tsv")
        load_xnli("translate-test", languages=["de"], data_dir=str(own_dir))
    for suffix in ("tsv", "jsonl"):
        (own_dir / f"XNLI-1.0/xnli.test.{suffix}").unlink()
    with pytest.raises(TaskDataError, match=r"XNLI test set not found; expected one of: .*XNLI-1\.0/xnli\.test\.tsv, "
                                            r".*XNLI-1\.0/xnli\.test\.jsonl, .*/xnli\.test\.tsv"):
        load_xnli("cross-lingual-transfer", languages=["en"], data_dir=str(own_dir))


def test_language_absent_from_eval_file(own_dir: Path) -> None:
    shutil.copy(own_dir / "XNLI-MT-1.0/multinli/multinli.train.en.tsv",
                own_dir / "XNLI-MT-1.0/multinli/multinli.train.vi.tsv")
    with pytest.raises(TaskDataError, match=r"xnli\.dev\.tsv: no rows with language 'vi' \(column language\); "
                                            r"languages in the file: en, fr, zh"):
        load_xnli("translate-train", languages=["vi"], data_dir=str(own_dir))


def test_missing_columns(own_dir: Path) -> None:
    train = own_dir / "XNLI-MT-1.0/multinli/multinli.train.en.tsv"
    replace_in(train, "premise\thypo\tlabel", "premise\thypothesis\tlabel")
    with pytest.raises(TaskDataError) as error:
        load_xnli("cross-lingual-transfer", languages=["en"], data_dir=str(own_dir))
    assert str(error.value) == f"{train}: missing column(s) hypo; columns found: premise, hypothesis, label"
    replace_in(train, "premise\thypothesis\tlabel", "premise\thypo\tlabel")
    dev = own_dir / "XNLI-1.0/xnli.dev.tsv"
    replace_in(dev, "language\tgold_label", "lang\tgold_label")
    with pytest.raises(TaskDataError, match=rf"{dev}: missing column\(s\) language; columns found: lang, gold_label, "
                                            "sentence1_binary_parse"):
        load_xnli("cross-lingual-transfer", languages=["en"], data_dir=str(own_dir))
    dev.unlink()
    jsonl = own_dir / "XNLI-1.0/xnli.dev.jsonl"
    replace_in(jsonl, '"sentence2": ', '"sentence_2": ', count=-1)
    with pytest.raises(TaskDataError, match=rf"{jsonl}, line 1: missing field\(s\) sentence2; fields found: "
                                            "annotator_labels, genre"):
        load_xnli("cross-lingual-transfer", languages=["en"], data_dir=str(own_dir))
    jsonl.write_text("not json\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=rf"{jsonl}, line 1: not valid JSON"):
        load_xnli("cross-lingual-transfer", languages=["en"], data_dir=str(own_dir))


def test_unknown_label(own_dir: Path) -> None:
    train = own_dir / "XNLI-MT-1.0/multinli/multinli.train.fr.tsv"
    replace_in(train, "\tneutral\n", "\tneutre\n")
    with pytest.raises(TaskDataError) as error:
        load_xnli("translate-train", languages=["fr"], data_dir=str(own_dir))
    assert str(error.value) == (f"{train}, line 3: label 'neutre' is not an XNLI label; allowed: entailment, neutral, "
                                "contradiction (or contradictory, as XNLI-MT spells it); '-' rows are skipped")
    test = own_dir / "XNLI-1.0/xnli.test.tsv"
    replace_in(test, "\nzh\tcontradiction\t", "\nzh\tContradiction\t")
    with pytest.raises(TaskDataError, match=rf"{test}, line 28: gold_label 'Contradiction' is not an XNLI label"):
        load_xnli("cross-lingual-transfer", languages=["zh"], data_dir=str(own_dir))


def test_eval_labels_missing_from_train(own_dir: Path, hub: list[tuple]) -> None:
    with pytest.raises(TaskDataError) as error:
        load_xnli("cross-lingual-transfer", languages=["fr"], data_dir=str(own_dir), max_train_examples=2)
    assert str(error.value) == (
        f"XNLI: the validation set of 'fr' ({own_dir / 'XNLI-1.0/xnli.dev.tsv'}) has label(s) 2 (contradiction) that "
        f"never occur in the training data ({own_dir / 'XNLI-MT-1.0/multinli/multinli.train.en.tsv'}), whose labels "
        "are 0 (entailment), 1 (neutral) (max_train_examples may have cut them off); allowed: evaluation labels that "
        "the training data has")
    train = own_dir / "XNLI-MT-1.0/multinli/multinli.train.en.tsv"
    train.write_text(train.read_text(encoding="utf-8").replace("\tcontradictory\n", "\tneutral\n"), encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"the validation set of 'en' .* has label\(s\) 2 \(contradiction\) that "
                                            r"never occur in the training data .*whose labels are 0 \(entailment\), "
                                            r"1 \(neutral\); allowed"):
        load_xnli("cross-lingual-transfer", languages=["en"], data_dir=str(own_dir))
    with pytest.raises(TaskDataError, match=r"validation set of 'en' \(facebook/xnli:en/validation\) has label\(s\) "
                                            r"2 "):
        load_xnli("cross-lingual-transfer", languages=["en"], max_train_examples=2, max_eval_examples=3)


# ----------------------------------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------------------------------
def test_preprocess_matches_the_tokenizer(xnli_dir: Path, tokenizer) -> None:
    data = load_xnli("cross-lingual-transfer", languages=["en", "zh"], data_dir=str(xnli_dir))
    raw = data.validation["en"]
    features = preprocess_xnli(raw, tokenizer, max_length=256)
    assert features.column_names == ["input_ids", "attention_mask", "labels", "language"]
    assert features["labels"] == raw["label"] and features["language"] == raw["language"]
    for i in range(len(raw)):
        reference = tokenizer(raw[i]["premise"], raw[i]["hypothesis"], truncation=True, max_length=256)
        assert features[i]["input_ids"] == reference["input_ids"]
        assert features[i]["attention_mask"] == [1] * len(reference["input_ids"])
    assert features[0]["input_ids"][0] == tokenizer.cls_token_id and features[0]["input_ids"][-1] == 2
    assert len({len(ids) for ids in features["input_ids"]}) > 1  # not padded


def test_preprocess_truncates(xnli_dir: Path, tokenizer) -> None:
    raw = load_xnli("translate-train", languages=["de"], data_dir=str(xnli_dir)).train
    untruncated = preprocess_xnli(raw, tokenizer, max_length=512)
    features = preprocess_xnli(raw, tokenizer, max_length=16)
    assert max(len(ids) for ids in untruncated["input_ids"]) > 16
    assert {len(ids) for ids in features["input_ids"]} == {16}
    reference = tokenizer(list(raw["premise"]), list(raw["hypothesis"]), truncation="longest_first", max_length=16)
    assert features["input_ids"] == reference["input_ids"] and features["labels"] == raw["label"]


def test_preprocess_errors(xnli_dir: Path, tokenizer) -> None:
    raw = load_xnli("translate-train", languages=["de"], data_dir=str(xnli_dir), max_train_examples=3).train
    with pytest.raises(TaskDataError, match=r"lacks column\(s\) label; columns found: premise, hypothesis, language"):
        preprocess_xnli(raw.remove_columns("label"), tokenizer)
    with pytest.raises(TaskDataError, match=r"max_length is 3; allowed: an int >= 6"):
        preprocess_xnli(raw, tokenizer, max_length=3)
