"""NER task data (xlmr_hf.tasks.ner): official formats, IOB1→IOB2, Hub loading, settings, subword alignment, windows
over long sentences, merging window predictions back to one tag per word, and the error messages."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import datasets
import fixtures.ner_data as nd  # tests/ is on sys.path via tests/conftest.py
import numpy as np
import pytest
from fixtures.tiny_tokenizer import build_tiny_tokenizer
from transformers import AutoTokenizer

from xlmr_hf.tasks import TaskDataError, ner

ALL_TAGS = ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER"]
PANX_TAGS = ["O", "B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER"]


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def conll_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    directory = tmp_path_factory.mktemp("conll")
    expected = {"en": nd.write_conll2003_english(directory), "de": nd.write_conll2003_german(directory)}
    expected.update(nd.write_conll2002(directory))
    return directory, expected


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_tokenizer(directory)
    return AutoTokenizer.from_pretrained(directory)


def _dataset(rows: list[dict]) -> datasets.Dataset:
    return datasets.Dataset.from_list(rows)


def _label_to_id(labels: list[str] = ALL_TAGS) -> dict[str, int]:
    return {label: i for i, label in enumerate(labels)}


# ---------------------------------------------------------------------------------------------------- readers
def test_read_conll2003_literal_file_gives_exact_iob2_rows(tmp_path: Path) -> None:
    path = tmp_path / "eng.testa"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\n"
        "Kwame NNP I-NP I-PER\nOkafor NNP I-NP I-PER\nvisited VBD I-VP O\nLisbon NNP I-NP I-LOC\n. . O O\n\n"
        "Vesta NNP I-NP I-ORG\nFoods NNP I-NP I-ORG\nBaltic NNP I-NP B-ORG\nRail NNP I-NP I-ORG\n\n\n"
        "-DOCSTART- -X- -X- O\n\nDanish JJ I-NP I-MISC\nfans NNS I-NP O\n"
    )
    assert ner.read_conll(path, language="en") == [
        {"tokens": ["Kwame", "Okafor", "visited", "Lisbon", "."],
         "ner_tags": ["B-PER", "I-PER", "O", "B-LOC", "O"], "language": "en"},
        {"tokens": ["Vesta", "Foods", "Baltic", "Rail"],
         "ner_tags": ["B-ORG", "I-ORG", "B-ORG", "I-ORG"], "language": "en"},
        {"tokens": ["Danish", "fans"], "ner_tags": ["B-MISC", "O"], "language": "en"},
    ]


@pytest.mark.parametrize(("language", "prefix"), [("en", "eng"), ("de", "deu"), ("es", "esp"), ("nl", "ned")])
def test_read_conll_fixture_files(conll_dir, language: str, prefix: str) -> None:
    directory, expected = conll_dir
    for split, suffix in (("train", "train"), ("validation", "testa"), ("test", "testb")):
        rows = ner.read_conll(directory / f"{prefix}.{suffix}", language=language, encoding="auto")
        assert rows == expected[language][split]
    assert max(len(r["tokens"]) for r in rows) >= nd.LONG_SENTENCE_MIN_WORDS


def test_latin1_files_need_the_encoding(conll_dir) -> None:
    directory, expected = conll_dir
    with pytest.raises(TaskDataError, match=r"esp\.train.*not valid utf-8.*latin-1"):
        ner.read_conll(directory / "esp.train", language="es")
    rows = ner.read_conll(directory / "esp.train", language="es", encoding="latin-1")
    assert rows == expected["es"]["train"]
    assert "Málaga" in rows[1]["tokens"]


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        ([], []),
        (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
        (["I-PER", "I-PER", "B-PER", "I-PER"], ["B-PER", "I-PER", "B-PER", "I-PER"]),  # adjacent same-type entities
        (["I-ORG", "I-LOC", "I-LOC"], ["B-ORG", "B-LOC", "I-LOC"]),  # type change starts an entity
        (["O", "I-MISC", "O", "I-MISC"], ["O", "B-MISC", "O", "B-MISC"]),
        (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),  # IOB2 stays as it is
    ],
)
def test_iob1_to_iob2(iob1: list[str], iob2: list[str]) -> None:
    assert ner.iob1_to_iob2(iob1) == iob2
    assert ner.iob1_to_iob2(iob2) == iob2


def test_scheme_in_modes_and_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "x.train"
    path.write_text("Oslo I-LOC\nBergen B-LOC\n")
    with caplog.at_level(logging.INFO, logger="xlmr_hf.tasks.ner"):
        assert ner.read_conll(path, language="en")[0]["ner_tags"] == ["B-LOC", "B-LOC"]
    assert "IOB1 detected" in caplog.text and "converted IOB1 to IOB2 (1 tags changed" in caplog.text
    assert ner.read_conll(path, language="en", scheme_in="iob1")[0]["ner_tags"] == ["B-LOC", "B-LOC"]
    assert ner.read_conll(path, language="en", scheme_in="iob2")[0]["ner_tags"] == ["I-LOC", "B-LOC"]
    with pytest.raises(TaskDataError, match=r"scheme_in='bio'.*allowed: 'auto', 'iob1', 'iob2'"):
        ner.read_conll(path, language="en", scheme_in="bio")


def test_read_conll_tag_column(tmp_path: Path) -> None:
    path = tmp_path / "ned.train"
    path.write_text("-DOCSTART- -DOCSTART- O\nDen Art B-LOC\nHaag N I-LOC\n")
    assert ner.read_conll(path, language="nl", tag_column=2)[0]["ner_tags"] == ["B-LOC", "I-LOC"]
    with pytest.raises(TaskDataError, match=r"tag_column=0 .*allowed: 1\.\.2 or -1\.\.-2"):
        ner.read_conll(path, language="nl", tag_column=0)


@pytest.mark.parametrize("layout", ["tarball", "xtreme", "processed"])
def test_read_panx_layouts(tmp_path: Path, layout: str) -> None:
    expected = nd.write_panx(tmp_path, ("zh", "ar"), layout=layout)
    name = {"tarball": "zh/train", "xtreme": "zh-train", "processed": "train-zh.tsv"}[layout]
    rows = ner.read_panx(tmp_path / name, language="zh")
    assert rows == expected["zh"]["train"]
    assert rows[0] == {"tokens": ["张", "伟", "出", "生", "于", "北", "京", "。"],
                       "ner_tags": ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "I-LOC", "O"], "language": "zh"}


def test_read_panx_literal_exact_rows(tmp_path: Path) -> None:
    path = tmp_path / "dev"
    path.write_text("ru:Анна\tB-PER\nru:Петрова\tI-PER\nru:живёт\tO\nru:в\tO\nru:Казани\tB-LOC\n\n"
                    "ru:Банк\tB-ORG\nru:Урал\tI-ORG\n\n\n", encoding="utf-8")
    assert ner.read_panx(path, language="ru") == [
        {"tokens": ["Анна", "Петрова", "живёт", "в", "Казани"],
         "ner_tags": ["B-PER", "I-PER", "O", "O", "B-LOC"], "language": "ru"},
        {"tokens": ["Банк", "Урал"], "ner_tags": ["B-ORG", "I-ORG"], "language": "ru"},
    ]


@pytest.mark.parametrize(
    ("reader", "text", "pattern"),
    [
        ("conll", "Oslo NNP I-NP B-LOC\nBergen NNP B-LOC\n", r"x\.txt, line 2: 'Bergen NNP B-LOC' has 3 columns.*4"),
        ("conll", "Oslo\n", r"x\.txt, line 1: 'Oslo' has 1 column"),
        ("conll", "Oslo NNP E-LOC\n", r"x\.txt, line 1: NER tag 'E-LOC' is not allowed; allowed: 'O', 'B-<TYPE>'"),
        ("panx", "sw:Nairobi\tB-LOC\nsw:ni O\n", r"x\.txt, line 2: 'sw:ni O' is not '<token><TAB><tag>'"),
        ("panx", "sw:Nairobi\tB-LOC\nMombasa\tB-LOC\n", r"x\.txt, line 2: token 'Mombasa' lacks the 'sw:' prefix"),
        ("panx", "sw:Nairobi\tLOC\n", r"x\.txt, line 1: NER tag 'LOC' is not allowed"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, reader: str, text: str, pattern: str) -> None:
    path = tmp_path / "x.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TaskDataError, match=pattern):
        (ner.read_conll if reader == "conll" else ner.read_panx)(path, language="sw")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError, match=r"eng\.train' does not exist"):
        ner.read_conll(tmp_path / "eng.train", language="en")
    with pytest.raises(TaskDataError, match=r"CoNLL file '.*deu\.train' \(de\) does not exist.*deu\.testa"):
        ner.load_ner("conll", "each", languages=["de"], data_dir=tmp_path)
    with pytest.raises(TaskDataError, match=r"no PAN-X files for language 'hi'.*hi/\{train,dev,test\}"):
        ner.load_ner("wikiann", "each", languages=["hi"], data_dir=tmp_path)
    nd.write_panx(tmp_path, ("hi",))
    (tmp_path / "hi" / "test").unlink()
    with pytest.raises(TaskDataError, match=r"PAN-X file '.*hi/test' \(hi\) does not exist"):
        ner.load_ner("wikiann", "each", languages=["hi"], data_dir=tmp_path)


# ---------------------------------------------------------------------------------------------------- load_ner
def test_setting_en_trains_on_english_and_evaluates_every_language(conll_dir) -> None:
    directory, expected = conll_dir
    data = ner.load_ner("conll", "en", languages=["en", "es", "nl", "de"], data_dir=directory)
    assert set(data.train["language"]) == {"en"}
    assert data.train.to_list() == expected["en"]["train"]
    assert list(data.validation) == list(data.test) == ["en", "es", "nl", "de"]
    for language in ("es", "nl", "de"):
        assert data.validation[language].to_list() == expected[language]["validation"]
        assert data.test[language].to_list() == expected[language]["test"]
    assert data.labels == ALL_TAGS
    assert data.source["es"].endswith("esp.testb") and "ned.train" in data.source["nl"]


def test_setting_each_and_all(conll_dir) -> None:
    directory, expected = conll_dir
    each = ner.load_ner("conll", "each", languages=["nl"], data_dir=directory, train_language="es")
    assert set(each.train["language"]) == {"nl"} and list(each.validation) == ["nl"]
    assert each.train.to_list() == expected["nl"]["train"]
    every = ner.load_ner("conll", "all", languages=["es", "en"], data_dir=directory)
    assert list(every.train["language"]) == ["es"] * 25 + ["en"] * 25
    assert list(every.test) == ["es", "en"]


def test_max_examples_keep_the_first_rows(conll_dir) -> None:
    directory, expected = conll_dir
    data = ner.load_ner("conll", "all", languages=["en", "de"], data_dir=directory, max_train_examples=3,
                        max_eval_examples=2)
    assert data.train.to_list() == expected["en"]["train"][:3] + expected["de"]["train"][:3]
    assert data.validation["de"].to_list() == expected["de"]["validation"][:2]
    assert data.labels == ALL_TAGS  # from the full training data, not the first rows


def test_wikiann_local_setting_en(tmp_path: Path) -> None:
    expected = nd.write_panx(tmp_path, layout="xtreme")
    data = ner.load_ner("wikiann", "en", languages=["ar", "zh", "hi", "ru", "sw", "de"], data_dir=tmp_path)
    assert data.labels == PANX_TAGS
    assert data.train.to_list() == expected["en"]["train"]
    assert data.test["hi"].to_list() == expected["hi"]["test"]
    assert set(data.validation) == {"ar", "zh", "hi", "ru", "sw", "de"}


def test_eval_tag_absent_from_train_is_an_error(tmp_path: Path) -> None:
    nd.write_panx(tmp_path, ("sw",))
    (tmp_path / "sw" / "dev").write_text("sw:Kombe\tB-MISC\nsw:la\tO\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"language 'sw', split 'validation' has tag 'B-MISC'.*never uses"):
        ner.load_ner("wikiann", "each", languages=["sw"], data_dir=tmp_path)


@pytest.mark.parametrize(
    ("args", "kwargs", "pattern"),
    [
        (("ontonotes", "en"), {"languages": ["en"]}, r"dataset 'ontonotes' is not available; allowed: conll, wikiann"),
        (("conll", "zero"), {"languages": ["en"]}, r"setting 'zero' is not available; allowed: en, each, all"),
        (("conll", "en"), {"languages": ["fr"]}, r"language 'fr' is not available; allowed: en, nl, es, de"),
        (("conll", "en"), {"languages": ["es"], "train_language": "it"}, r"train_language 'it' is not available"),
        (("wikiann", "en"), {"languages": ["xx"]}, r"language 'xx' is not available; allowed: af, ar, .*zh"),
        (("conll", "each"), {"languages": ["es", "nl"]}, r"'each' takes exactly one language.*\['es', 'nl'\]"),
        (("conll", "en"), {"languages": []}, r"languages is empty"),
        (("conll", "en"), {"languages": ["en"], "max_train_examples": 0}, r"max_train_examples=0 is not allowed"),
    ],
)
def test_bad_arguments(args, kwargs, pattern: str) -> None:
    with pytest.raises(TaskDataError, match=pattern):
        ner.load_ner(*args, **kwargs)


# ---------------------------------------------------------------------------------------------------- Hub
def _hub_dataset(rows: list[dict], tag_names: list[str], drop: str | None = None) -> datasets.DatasetDict:
    features = datasets.Features({
        "id": datasets.Value("string"),
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=tag_names)),
    })
    table = [{"id": str(i), "tokens": r["tokens"], "ner_tags": [tag_names.index(t) for t in r["ner_tags"]]}
             for i, r in enumerate(rows)]
    part = datasets.Dataset.from_list(table, features=features)
    if drop:
        part = part.remove_columns(drop)
    return datasets.DatasetDict({"train": part, "validation": part, "test": part})


HUB_TAG_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def test_hub_conll_requests_and_int_tags(monkeypatch: pytest.MonkeyPatch, conll_dir) -> None:
    _, expected = conll_dir
    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        language = {"conll2003": "en"}.get(kwargs["data_dir"], kwargs["data_dir"])
        return _hub_dataset(expected[language]["train"], HUB_TAG_NAMES)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = ner.load_ner("conll", "en", languages=["es", "nl"])
    assert calls == [
        ("eriktks/conll2003", None, {"revision": "refs/convert/parquet", "data_dir": "conll2003"}),
        ("eriktks/conll2002", None, {"revision": "refs/convert/parquet", "data_dir": "es"}),
        ("eriktks/conll2002", None, {"revision": "refs/convert/parquet", "data_dir": "nl"}),
    ]
    assert data.train.to_list() == expected["en"]["train"]  # ints mapped to names through the ClassLabel
    assert data.test["nl"].to_list() == expected["nl"]["train"]
    assert data.labels == ALL_TAGS
    assert data.source["en"] == "eriktks/conll2003 [conll2003]"


def test_hub_wikiann_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    rows = [{"tokens": ["Juma", "Mwangi", "anaishi", "Nairobi"], "ner_tags": ["B-PER", "I-PER", "O", "B-LOC"]}]

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return _hub_dataset(rows, HUB_TAG_NAMES[:7])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = ner.load_ner("wikiann", "all", languages=["sw", "ar"])
    assert calls == [("unimelb-nlp/wikiann", "sw", {}), ("unimelb-nlp/wikiann", "ar", {})]
    assert list(data.train["language"]) == ["sw", "ar"]
    assert data.validation["ar"][0]["ner_tags"] == ["B-PER", "I-PER", "O", "B-LOC"]


def test_hub_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"tokens": ["Oslo"], "ner_tags": ["B-LOC"]}]
    result = {}
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, **kwargs: result["value"])
    with pytest.raises(TaskDataError, match=r"German.*not redistributable.*deu\.train, deu\.testa, deu\.testb"):
        ner.load_ner("conll", "each", languages=["de"])
    result["value"] = _hub_dataset(rows, HUB_TAG_NAMES, drop="ner_tags")
    with pytest.raises(TaskDataError, match=r"unimelb-nlp/wikiann \(ru\), split 'train': column 'ner_tags' is "
                                            r"missing; found \['id', 'tokens'\]"):
        ner.load_ner("wikiann", "each", languages=["ru"])
    result["value"] = datasets.DatasetDict({"train": _hub_dataset(rows, HUB_TAG_NAMES)["train"]})
    with pytest.raises(TaskDataError, match=r"split 'validation' is missing; found \['train'\]"):
        ner.load_ner("wikiann", "each", languages=["ru"])
    plain = datasets.Dataset.from_dict({"tokens": [["Oslo"]], "ner_tags": [[5]]})
    result["value"] = datasets.DatasetDict({"train": plain, "validation": plain, "test": plain})
    with pytest.raises(TaskDataError, match=r"'ner_tags' holds integers but has no ClassLabel names"):
        ner.load_ner("wikiann", "each", languages=["ru"])


# ---------------------------------------------------------------------------------------------------- alignment
def test_labels_on_first_subwords_only(tokenizer) -> None:
    rows = [{"tokens": ["Maria", "Lindqvist", "visited", "Oslo", "."],
             "ner_tags": ["B-PER", "I-PER", "O", "B-LOC", "O"], "language": "en"}]
    label_to_id = _label_to_id()
    features = ner.tokenize_and_align(_dataset(rows), tokenizer, label_to_id)
    assert len(features) == 1 and features.column_names == ["input_ids", "attention_mask", "labels",
                                                              "example_index", "word_index", "language"]
    reference = tokenizer(rows[0]["tokens"], is_split_into_words=True)
    feature = features[0]
    assert feature["input_ids"] == reference["input_ids"]
    assert feature["attention_mask"] == [1] * len(feature["input_ids"])
    previous = None
    expected_labels, expected_words = [], []
    for word in reference.word_ids():
        first = word is not None and word != previous
        expected_labels.append(label_to_id[rows[0]["ner_tags"][word]] if first else -100)
        expected_words.append(word if first else -1)
        previous = word
    assert feature["labels"] == expected_labels
    assert feature["word_index"] == expected_words
    assert feature["labels"][0] == feature["labels"][-1] == -100  # <s> and </s>
    assert sum(label != -100 for label in feature["labels"]) == 5
    assert (feature["example_index"], feature["language"]) == (0, "en")


def test_label_all_subwords_continues_b_as_i(tokenizer) -> None:
    rows = [{"tokens": ["Lindqvist"], "ner_tags": ["B-PER"], "language": "en"}]
    label_to_id = _label_to_id()
    labels = ner.tokenize_and_align(_dataset(rows), tokenizer, label_to_id, label_all_subwords=True)[0]["labels"]
    assert len(labels) > 3
    assert labels == [-100, label_to_id["B-PER"]] + [label_to_id["I-PER"]] * (len(labels) - 3) + [-100]


@pytest.mark.parametrize(("max_length", "stride"), [(6, 0), (8, 3), (16, 2), (24, 8), (40, 32), (128, 32)])
def test_windows_own_every_word_exactly_once(conll_dir, tokenizer, max_length: int, stride: int) -> None:
    _, expected = conll_dir
    rows = expected["en"]["test"] + expected["es"]["test"][-1:]
    label_to_id = _label_to_id()
    features = ner.tokenize_and_align(_dataset(rows), tokenizer, label_to_id, max_length=max_length, stride=stride)
    owned: dict[int, list[int]] = {i: [] for i in range(len(rows))}
    for feature in features:
        assert len(feature["input_ids"]) <= max_length
        example = feature["example_index"]
        for label, word in zip(feature["labels"], feature["word_index"]):
            assert (label != -100) == (word >= 0)
            if word >= 0:
                owned[example].append(word)
                assert label == label_to_id[rows[example]["ner_tags"][word]]
    for example, words in owned.items():
        assert sorted(words) == list(range(len(rows[example]["tokens"])))  # no label lost, none labelled twice
    long_features = [f for f in features if f["example_index"] == len(rows) - 1]
    subwords = len(tokenizer(rows[-1]["tokens"], is_split_into_words=True)["input_ids"])
    assert subwords > 128 and len(long_features) > 1
    assert len(long_features) <= 3 * subwords // (max_length - 2) + 1  # context never crowds out the owned words


def test_plan_windows_exact_and_properties() -> None:
    # (start, end, own_start, own_end): 4 one-subword words fit; 1 subword of context on each side of the owned span.
    assert ner._plan_windows([1] * 10, 4, 1) == [(0, 4, 0, 3), (2, 6, 3, 5), (4, 8, 5, 7), (6, 10, 7, 10)]
    assert ner._plan_windows([1] * 10, 4, 0) == [(0, 4, 0, 4), (4, 8, 4, 8), (8, 10, 8, 10)]
    assert ner._plan_windows([1] * 10, 4, 5) == ner._plan_windows([1] * 10, 4, 1)  # context capped at budget // 3
    assert ner._plan_windows([1, 2, 1, 1, 3, 1], 6, 2) == [(0, 4, 0, 2), (1, 4, 2, 3), (2, 6, 3, 6)]
    assert ner._plan_windows([3, 4, 1], 4, 2) == [(0, 1, 0, 1), (1, 2, 1, 2), (2, 3, 2, 3)]
    assert ner._plan_windows([2, 2], 4, 9) == [(0, 2, 0, 2)] and ner._plan_windows([], 4, 1) == [(0, 0, 0, 0)]
    generator = random.Random(0)
    for _ in range(300):
        budget = generator.randint(1, 12)
        stride = generator.randint(0, 5)
        lengths = [generator.randint(1, budget) for _ in range(generator.randint(0, 40))]
        windows = ner._plan_windows(lengths, budget, stride)
        owned = [w for _, _, own_start, own_end in windows for w in range(own_start, own_end)]
        assert owned == list(range(len(lengths)))
        context = min(stride, budget // 3)
        for start, end, own_start, own_end in windows:
            assert start <= own_start < own_end <= end or not lengths
            assert sum(lengths[start:end]) <= budget
            assert sum(lengths[start:own_start]) <= context and sum(lengths[own_end:end]) <= context


def test_over_long_word_is_cut_but_keeps_its_label(tokenizer, caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"tokens": ["Maria", "Lindqvist", "Oslo"], "ner_tags": ["B-PER", "I-PER", "B-LOC"], "language": "en"}]
    assert [len(tokenizer.tokenize(word)) for word in rows[0]["tokens"]] == [3, 8, 5]  # max_length 8: 6 fit
    label_to_id = _label_to_id()
    with caplog.at_level(logging.INFO, logger="xlmr_hf.tasks.ner"):
        features = ner.tokenize_and_align(_dataset(rows), tokenizer, label_to_id, max_length=8, stride=1)
    assert "1 over-long words cut to 6 subwords" in caplog.text and "'Lindqvist') has 8 subwords" in caplog.text
    long_word = [f for f in features if 1 in f["word_index"]]
    assert len(long_word) == 1 and len(long_word[0]["input_ids"]) == 8
    assert long_word[0]["labels"][1] == label_to_id["I-PER"]
    predictions = [[label if label != -100 else 0 for label in f["labels"]] for f in features]
    id_to_label = {i: label for label, i in label_to_id.items()}
    assert ner.merge_window_predictions(features, predictions, id_to_label, 1) == [rows[0]["ner_tags"]]


def test_word_without_subwords_becomes_unk(tokenizer, caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"tokens": ["Oslo", "\u200b", "Bergen"], "ner_tags": ["B-LOC", "O", "B-LOC"], "language": "en"}]
    with caplog.at_level(logging.INFO, logger="xlmr_hf.tasks.ner"):
        feature = ner.tokenize_and_align(_dataset(rows), tokenizer, _label_to_id())[0]
    assert "1 words with no subword encoded as unk_token" in caplog.text
    position = feature["word_index"].index(1)
    assert feature["input_ids"][position] == tokenizer.unk_token_id and feature["labels"][position] == 0


def test_tokenize_and_align_errors(tokenizer) -> None:
    rows = [{"tokens": ["Oslo"], "ner_tags": ["B-LOC"], "language": "en"}]
    with pytest.raises(TaskDataError, match=r"column 'ner_tags' is missing; found \['tokens', 'language'\]"):
        ner.tokenize_and_align(_dataset(rows).remove_columns("ner_tags"), tokenizer, _label_to_id())
    with pytest.raises(TaskDataError, match=r"row 0, word 0 \('Oslo'\): tag 'B-LOC' is not in label_to_id; allowed"):
        ner.tokenize_and_align(_dataset(rows), tokenizer, {"O": 0})
    with pytest.raises(TaskDataError, match=r"max_length=2 leaves no room"):
        ner.tokenize_and_align(_dataset(rows), tokenizer, _label_to_id(), max_length=2)
    with pytest.raises(TaskDataError, match=r"stride=-1 is not allowed"):
        ner.tokenize_and_align(_dataset(rows), tokenizer, _label_to_id(), stride=-1)

    class Slow:
        is_fast = False

    with pytest.raises(TaskDataError, match=r"needs a fast tokenizer"):
        ner.tokenize_and_align(_dataset(rows), Slow(), _label_to_id())


# ---------------------------------------------------------------------------------------------------- merging
@pytest.mark.parametrize("max_length", [7, 12, 128])
def test_merge_round_trip_gives_back_the_gold_tags(conll_dir, tokenizer, max_length: int) -> None:
    _, expected = conll_dir
    rows = expected["en"]["validation"] + expected["de"]["test"]
    label_to_id = _label_to_id()
    id_to_label = {i: label for label, i in label_to_id.items()}
    features = ner.tokenize_and_align(_dataset(rows), tokenizer, label_to_id, max_length=max_length, stride=3)
    width = max(len(f) for f in features["input_ids"]) + 3
    predictions = np.full((len(features), width), 7)  # a wrong tag everywhere, including padding
    for i, labels in enumerate(features["labels"]):
        for j, label in enumerate(labels):
            if label != -100:
                predictions[i, j] = label
    merged = ner.merge_window_predictions(features, predictions, id_to_label, len(rows),
                                          word_counts=[len(r["tokens"]) for r in rows])
    assert merged == [row["ner_tags"] for row in rows]


def test_merge_errors(tokenizer) -> None:
    rows = [{"tokens": ["Maria", "Lindqvist", "joined", "Baltic", "Rail", "in", "Oslo", "."],
             "ner_tags": ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O"], "language": "en"}]
    label_to_id = _label_to_id()
    id_to_label = {i: label for label, i in label_to_id.items()}
    features = ner.tokenize_and_align(_dataset(rows), tokenizer, label_to_id, max_length=10, stride=1)
    assert len(features) > 2
    gold = [[max(label, 0) for label in labels] for labels in features["labels"]]
    with pytest.raises(TaskDataError, match=r"\d+ prediction rows for \d+ features"):
        ner.merge_window_predictions(features, gold[:-1], id_to_label, 1)
    with pytest.raises(TaskDataError, match=r"example 0: predictions for \d words but it has 8; missing words \[\d"):
        ner.merge_window_predictions(features.select(range(len(features) - 1)), gold[:-1], id_to_label, 1,
                                     word_counts=[8])
    twice = datasets.concatenate_datasets([features, features.select([0])])
    with pytest.raises(TaskDataError, match=r"word 0 of example 0 is owned by two windows"):
        ner.merge_window_predictions(twice, gold + gold[:1], id_to_label, 1)
    bad = [[42] * len(row) for row in gold]
    with pytest.raises(TaskDataError, match=r"predicted id 42 has no label; allowed ids: \[0, 1, 2"):
        ner.merge_window_predictions(features, bad, id_to_label, 1)
    with pytest.raises(TaskDataError, match=r"example_index 0 is outside 0\.\.-1"):
        ner.merge_window_predictions(features, gold, id_to_label, 0)
    with pytest.raises(TaskDataError, match=r"\d+ predictions for \d+ tokens"):
        ner.merge_window_predictions(features, [row[:2] for row in gold], id_to_label, 1)
    assert ner.merge_window_predictions(features, gold, id_to_label, 1) == [rows[0]["ner_tags"]]
