"""Task metrics against hand-computed values: SQuAD v1.1 rules, the official MLQA rules of all 7 languages, seqeval
entity scores (IOB2, IOB1, IOBES) and the packaged `evaluate` modules behind `load_metric`."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from xlmr_hf.tasks.metrics import METRIC_NAMES, load_metric, metric_path
from xlmr_hf.tasks.scoring import (
    MLQA_LANGUAGES,
    accuracy,
    answer_tokens,
    exact_match_score,
    f1_score,
    get_entities,
    normalize_answer,
    qa_scores,
    seqeval_scores,
)

TWO_THIRDS = 2 * (1 / 2) * 1 / (1 / 2 + 1)  # P = 1/2, R = 1: F1 = 2PR / (P + R) = 2/3


def qa(pairs: list[tuple[str, str | list[str] | None]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SQuAD-style predictions and references from (prediction or None, gold or golds) pairs."""
    predictions, references = [], []
    for i, (prediction, golds) in enumerate(pairs):
        texts = [golds] if isinstance(golds, str) else golds
        references.append({"id": str(i), "answers": {"text": texts, "answer_start": [0] * len(texts)}})
        if prediction is not None:
            predictions.append({"id": str(i), "prediction_text": prediction})
    return predictions, references


# --- SQuAD v1.1 rules ---------------------------------------------------------------------------------------------


def test_squad_normalization_drops_case_ascii_punctuation_and_english_articles() -> None:
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"  # '-' and '!' removed, 'the' removed
    assert normalize_answer("An apple, a day") == "apple day"
    assert normalize_answer("Theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("“Beatles”") == "“beatles”"  # Unicode quotes are not in string.punctuation


def test_squad_pair_scores() -> None:
    assert exact_match_score("The Eiffel Tower.", "eiffel tower") == 1.0
    # [in, paris, france] vs [paris]: 1 common, P = 1/3, R = 1, F1 = 2 * 1/3 / (4/3) = 0.5
    assert f1_score("in Paris, France", "Paris") == pytest.approx(0.5)
    # bag of tokens: [cat, cat, dog] vs [cat]: common = min(2, 1) = 1, P = 1/3, R = 1, F1 = 0.5
    assert f1_score("cat cat dog", "cat") == pytest.approx(0.5)
    assert exact_match_score("", "the") == 1.0  # both normalize to "" (official v1.1 behaviour) ...
    assert f1_score("", "the") == 0.0  # ... but no common token gives F1 0
    assert f1_score("", "Paris") == 0.0 and exact_match_score("", "Paris") == 0.0


def test_squad_corpus_scores_max_over_golds_and_missing_prediction() -> None:
    predictions, references = qa(
        [
            ("The Eiffel Tower!", "Eiffel Tower"),  # EM 1, F1 1
            ("in Paris, France", "Paris"),  # EM 0, F1 0.5
            ("red car", ["a blue car", "the red car"]),  # golds: F1 0.5 / EM 1 F1 1 -> max EM 1, F1 1
            ("", "Paris"),  # EM 0, F1 0
            (None, "London"),  # unanswered: 0, 0
        ]
    )
    scores = qa_scores(predictions, references)
    assert scores["exact_match"] == pytest.approx(100 * 2 / 5)  # 40.0
    assert scores["f1"] == pytest.approx(100 * (1 + 0.5 + 1 + 0 + 0) / 5)  # 50.0


def test_qa_scores_accepts_squad_json_answers_and_rejects_bad_input() -> None:
    json_form = [{"id": "q", "answers": [{"text": "Paris", "answer_start": 3}]}]
    assert qa_scores([{"id": "q", "prediction_text": "paris"}], json_form) == {"exact_match": 100.0, "f1": 100.0}
    _, references = qa([("x", "Paris")])
    with pytest.raises(ValueError, match=r"predictions\.id: \['zz'\] match no reference id"):
        qa_scores([{"id": "zz", "prediction_text": "x"}], references)
    with pytest.raises(ValueError, match=r"predictions\[1\]\.id: '0' is duplicated"):
        qa_scores([{"id": "0", "prediction_text": "a"}, {"id": "0", "prediction_text": "b"}], references)
    with pytest.raises(ValueError, match=r"predictions\[0\]: missing field 'prediction_text'"):
        qa_scores([{"id": "0", "text": "a"}], references)
    with pytest.raises(ValueError, match=r"references\[0\]\.answers\.text: \[\]; expected a non-empty list"):
        qa_scores([], [{"id": "0", "answers": {"text": [], "answer_start": []}}])
    with pytest.raises(ValueError, match=r"language: 'xx' has no MLQA rules; allowed: en, es, de, ar, hi, vi, zh"):
        qa_scores([], references, language="xx")


# --- MLQA rules, one case per language where the language's rule matters -----------------------------------------


def test_mlqa_languages_are_the_official_seven() -> None:
    assert set(MLQA_LANGUAGES) == {"en", "es", "de", "ar", "hi", "vi", "zh"}


def test_mlqa_en_removes_unicode_punctuation_unlike_squad() -> None:
    assert normalize_answer("“The Beatles”", "en") == "beatles"  # “ ” are Unicode P* -> removed, then 'the'
    assert exact_match_score("“Beatles”", "Beatles", "en") == 1.0
    assert exact_match_score("“Beatles”", "Beatles") == 0.0 and f1_score("“Beatles”", "Beatles") == 0.0  # SQuAD


def test_mlqa_es_articles() -> None:
    assert normalize_answer("El Prado y las Meninas", "es") == "prado y meninas"
    assert exact_match_score("El Prado", "Prado", "es") == 1.0
    # not an article in English: [el, prado] vs [prado], P = 1/2, R = 1, F1 = 2/3
    assert f1_score("El Prado", "Prado", "en") == pytest.approx(TWO_THIRDS)
    assert exact_match_score("El Prado", "Prado", "en") == 0.0


def test_mlqa_de_articles_include_ein() -> None:
    assert normalize_answer("Der Rhein, ein Fluss", "de") == "rhein fluss"
    assert normalize_answer("Dasein", "de") == "dasein"  # whole words only
    assert exact_match_score("Der Rhein", "Rhein", "de") == 1.0
    assert f1_score("Der Rhein", "Rhein", "en") == pytest.approx(TWO_THIRDS)  # [der, rhein] vs [rhein]


def test_mlqa_vi_articles() -> None:
    assert normalize_answer("chiếc xe của Nam", "vi") == "xe nam"
    assert exact_match_score("Chiếc xe", "xe", "vi") == 1.0
    assert f1_score("Chiếc xe", "xe", "en") == pytest.approx(TWO_THIRDS)  # [chiếc, xe] vs [xe]


def test_mlqa_ar_every_al_becomes_a_space() -> None:
    assert answer_tokens("الكتاب", "ar") == ["كتاب"]
    assert answer_tokens("مالك", "ar") == ["م", "ك"]  # also inside a word (the official regex's only live branch)
    assert exact_match_score("الكتاب", "كتاب", "ar") == 1.0
    # [كتاب, مدرسة] vs [كتاب]: P = 1/2, R = 1, F1 = 2/3; whitespace-only (en) rules share no token
    assert f1_score("كتاب المدرسة", "الكتاب", "ar") == pytest.approx(TWO_THIRDS)
    assert f1_score("كتاب المدرسة", "الكتاب", "en") == 0.0
    # الطالب holds ال twice -> "ط ب": [كتاب, ط, ب] vs [كتاب]: P = 1/3, R = 1, F1 = 2 * 1/3 / (4/3) = 0.5
    assert f1_score("كتاب الطالب", "الكتاب", "ar") == pytest.approx(0.5)


def test_mlqa_hi_danda_is_punctuation_and_no_articles() -> None:
    assert normalize_answer("दिल्ली।", "hi") == "दिल्ली"  # U+0964 DEVANAGARI DANDA is category Po
    assert exact_match_score("दिल्ली।", "दिल्ली", "hi") == 1.0
    assert exact_match_score("दिल्ली।", "दिल्ली") == 0.0 and f1_score("दिल्ली।", "दिल्ली") == 0.0  # SQuAD
    assert f1_score("the दिल्ली", "दिल्ली", "hi") == pytest.approx(TWO_THIRDS)  # 'the' is kept for hi
    assert f1_score("the दिल्ली", "दिल्ली", "en") == 1.0


def test_mlqa_zh_mixed_segmentation() -> None:
    assert answer_tokens("北京大学", "zh") == ["北", "京", "大", "学"]
    assert answer_tokens("Python编程 3.12版", "zh") == ["python", "编", "程", "312", "版"]  # '.' removed first
    assert answer_tokens("\u9fa5\u9fa6\u9fa6", "zh") == ["\u9fa5", "\u9fa6\u9fa6"]  # official range ends at U+9FA5
    # 北京大学 vs 北京: 2 common of 4 predicted and 2 gold: P = 2/4, R = 2/2, F1 = 2 * 0.5 * 1 / 1.5 = 2/3
    assert f1_score("北京大学", "北京", "zh") == pytest.approx(TWO_THIRDS)
    assert exact_match_score("北京大学", "北京", "zh") == 0.0
    # [python, 编, 程] vs [python, 编, 程, 语, 言]: P = 3/3, R = 3/5, F1 = 2 * 0.6 / 1.6 = 0.75
    assert f1_score("Python编程", "Python 编程语言", "zh") == pytest.approx(0.75)
    assert exact_match_score("长城", "长城。", "zh") == 1.0  # 。 is Unicode punctuation


def test_mlqa_zh_corpus_scores_versus_squad_rules() -> None:
    predictions, references = qa(
        [
            ("北京大学", "北京"),  # MLQA EM 0, F1 2/3; SQuAD: one token each, different -> 0, 0
            ("长城", "长城。"),  # MLQA EM 1, F1 1; SQuAD: 。 kept -> 0, 0
            ("Python编程", "Python 编程语言"),  # MLQA EM 0, F1 3/4; SQuAD: [python编程] vs [python, 编程语言] -> 0
        ]
    )
    mlqa = qa_scores(predictions, references, language="zh")
    assert mlqa["exact_match"] == pytest.approx(100 / 3)  # 33.33
    assert mlqa["f1"] == pytest.approx(100 * (2 / 3 + 1 + 3 / 4) / 3)  # 100 * 29/36 = 80.56
    assert qa_scores(predictions, references) == {"exact_match": 0.0, "f1": 0.0}  # the "MLQA-zh ~17 F1" trap


# --- seqeval ------------------------------------------------------------------------------------------------------

IOB2_REFERENCES = [
    ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"],  # PER(0-1) LOC(3-4)
    ["O", "B-ORG", "I-ORG", "O"],  # ORG(1-2)
    ["B-MISC", "O", "B-PER"],  # MISC(0) PER(2)
]
IOB2_PREDICTIONS = [
    ["B-PER", "I-PER", "O", "B-LOC", "I-ORG"],  # PER(0-1) ok; type change cuts: LOC(3) ORG(4) both wrong
    ["O", "I-ORG", "I-ORG", "O"],  # an I- after O starts ORG(1-2): ok
    ["B-MISC", "I-MISC", "B-PER"],  # wrong boundary MISC(0-1); PER(2) ok
]


def test_get_entities_conlleval_semantics() -> None:
    assert get_entities(IOB2_PREDICTIONS[0]) == [("PER", 0, 1), ("LOC", 3, 3), ("ORG", 4, 4)]
    assert get_entities(["I-PER", "I-LOC", "O", "I-ORG", "B-ORG"]) == [
        ("PER", 0, 0),
        ("LOC", 1, 1),
        ("ORG", 3, 3),
        ("ORG", 4, 4),
    ]
    assert get_entities(["S-PER", "B-LOC", "E-LOC", "I-LOC", "E-PER"], "IOBES") == [
        ("PER", 0, 0),
        ("LOC", 1, 2),
        ("LOC", 3, 3),
        ("PER", 4, 4),
    ]


def test_seqeval_iob2_hand_computed() -> None:
    scores = seqeval_scores(IOB2_PREDICTIONS, IOB2_REFERENCES)
    assert list(scores) == [
        "LOC", "MISC", "ORG", "PER",
        "overall_precision", "overall_recall", "overall_f1", "overall_accuracy",
    ]  # fmt: skip
    assert scores["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "number": 2}  # tp 2, pred 2, gold 2
    assert scores["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 1}  # tp 0, pred 1, gold 1
    assert scores["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 1}  # tp 0, pred 1, gold 1
    assert scores["ORG"]["precision"] == 0.5 and scores["ORG"]["recall"] == 1.0  # tp 1, pred 2, gold 1
    assert scores["ORG"]["f1"] == pytest.approx(TWO_THIRDS) and scores["ORG"]["number"] == 1
    assert scores["overall_precision"] == 0.5  # 3 correct of 6 predicted
    assert scores["overall_recall"] == pytest.approx(0.6)  # 3 of 5 gold
    assert scores["overall_f1"] == pytest.approx(6 / 11)  # 2 * 0.5 * 0.6 / 1.1
    assert scores["overall_accuracy"] == 0.75  # tokens: 4/5 + 3/4 + 2/3 correct = 9 of 12


def test_seqeval_iob1_hand_computed() -> None:
    references = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]  # PER(0-1) PER(2) LOC(4): B- splits same-type
    predictions = [["I-PER", "I-PER", "I-PER", "O", "I-LOC"]]  # PER(0-2) LOC(4)
    scores = seqeval_scores(predictions, references, scheme="IOB1")
    assert scores["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 2}
    assert scores["LOC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "number": 1}
    assert scores["overall_precision"] == 0.5 and scores["overall_recall"] == pytest.approx(1 / 3)
    assert scores["overall_f1"] == pytest.approx(0.4)  # 2 * 1/2 * 1/3 / (5/6)
    assert scores["overall_accuracy"] == pytest.approx(0.8)  # 4 of 5 tags


def test_seqeval_iobes_and_zero_division() -> None:
    references = [["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"]]  # PER(0) LOC(1-3)
    predictions = [["S-PER", "B-LOC", "E-LOC", "E-LOC", "O"]]  # PER(0) LOC(1-2) LOC(3)
    scores = seqeval_scores(predictions, references, scheme="IOBES")
    assert scores["overall_precision"] == pytest.approx(1 / 3) and scores["overall_recall"] == 0.5
    assert scores["overall_f1"] == pytest.approx(0.4)  # 2 * 1/3 * 1/2 / (5/6)
    # a type only predicted: recall 0/0 is zero_division; all-O: every 0/0 is zero_division
    assert seqeval_scores([["B-PER"]], [["O"]])["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 0}
    assert seqeval_scores([["B-PER"]], [["O"]], zero_division=1)["PER"]["recall"] == 1.0
    all_o = seqeval_scores([["O", "O"]], [["O", "O"]], zero_division=1)
    assert (all_o["overall_precision"], all_o["overall_recall"], all_o["overall_f1"]) == (1.0, 1.0, 1.0)
    assert seqeval_scores([["O"]], [["O"]])["overall_f1"] == 0.0


@pytest.mark.parametrize(
    ("predictions", "references", "scheme", "message"),
    [
        ([["O", "B-"]], [["O", "O"]], "IOB2", r"predictions\[0\]\[1\]: tag 'B-' is not allowed for scheme IOB2"),
        ([["O"]], [["X-PER"]], "IOB2", r"references\[0\]\[0\]: tag 'X-PER' .* allowed: 'O', B-<type>, I-<type>"),
        ([["O"], ["E-PER"]], [["O"], ["O"]], "IOB1", r"predictions\[1\]\[0\]: tag 'E-PER' .* scheme IOB1"),
        ([["PER"]], [["O"]], "IOBES", r"tag 'PER' .* allowed: 'O', B-<type>, E-<type>, I-<type>, S-<type>"),
        ([["O", "O"]], [["O"]], "IOB2", r"predictions\[0\]: 2 tags but references\[0\] has 1"),
        ([["O"]], [["O"], ["O"]], "IOB2", r"predictions: 1 sentences but references has 2"),
        ([["O"]], [["O"]], "BILOU", r"scheme: 'BILOU' is not supported; allowed: IOB1, IOB2, IOBES"),
    ],
)
def test_seqeval_errors(predictions: Any, references: Any, scheme: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        seqeval_scores(predictions, references, scheme=scheme)


def test_accuracy() -> None:
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    with pytest.raises(ValueError, match="predictions: 1 values but references has 2"):
        accuracy([0], [0, 1])


# --- packaged evaluate modules ------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection attempt: loading a packaged metric must never touch the network."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_metric_files_are_in_the_package() -> None:
    assert METRIC_NAMES == ("seqeval", "squad", "xnli", "mlqa")
    assert all(metric_path(name).is_file() for name in METRIC_NAMES)


@pytest.mark.usefixtures("no_network")
def test_load_metric_qa_modules_match_scoring(tmp_path: Any) -> None:
    # evaluate needs one prediction per reference (a missing one is scored 0 by qa_scores only)
    predictions, references = qa([("北京大学", "北京"), ("El Prado", "Prado"), ("الكتاب", ["كتاب", "x"])])
    squad = load_metric("squad", cache_dir=str(tmp_path))  # file-backed like distributed evaluation
    assert squad.compute(predictions=predictions, references=references) == qa_scores(predictions, references)
    for language in MLQA_LANGUAGES:
        mlqa = load_metric("mlqa", language=language, keep_in_memory=True)
        assert mlqa.config_name == language
        expected = qa_scores(predictions, references, language=language)
        assert mlqa.compute(predictions=predictions, references=references) == expected
    zh = load_metric("mlqa", language="zh", keep_in_memory=True)
    zh.add_batch(predictions=predictions[:1], references=references[:1])
    assert zh.compute()["f1"] == pytest.approx(100 * TWO_THIRDS)


@pytest.mark.usefixtures("no_network")
def test_load_metric_seqeval_and_xnli() -> None:
    seqeval = load_metric("seqeval", keep_in_memory=True)
    assert seqeval.compute(predictions=IOB2_PREDICTIONS, references=IOB2_REFERENCES) == seqeval_scores(
        IOB2_PREDICTIONS, IOB2_REFERENCES
    )
    iob1 = load_metric("seqeval", scheme="IOB1", zero_division=1, keep_in_memory=True)
    predictions, references = [["I-PER", "O"]], [["O", "O"]]
    assert iob1.compute(predictions=predictions, references=references)["PER"]["recall"] == 1.0  # loaded option
    overridden = iob1.compute(predictions=predictions, references=references, zero_division=0)
    assert overridden["PER"]["recall"] == 0.0
    with pytest.raises(ValueError, match="tag 'S-PER' is not allowed for scheme IOB1"):
        iob1.compute(predictions=[["S-PER"]], references=[["O"]])
    xnli = load_metric("xnli", keep_in_memory=True)
    assert xnli.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2]) == {"accuracy": 0.75}
    with pytest.raises(ValueError, match=r"references\[1\]: 3 is not an XNLI class id; allowed: 0..2"):
        xnli.compute(predictions=[0, 1], references=[0, 3])


def test_load_metric_errors() -> None:
    with pytest.raises(ValueError, match="metric name: 'bleu' is not shipped; allowed: seqeval, squad, xnli, mlqa"):
        load_metric("bleu")
    with pytest.raises(ValueError, match=r"language: 'xx'; allowed: en, es, de, ar, hi, vi, zh"):
        load_metric("mlqa", language="xx")
    with pytest.raises(ValueError, match=r"language: missing; allowed: en, es, de, ar, hi, vi, zh"):
        load_metric("mlqa")
    with pytest.raises(ValueError, match=r"load_metric\('squad'\): unknown option\(s\) \['language'\]"):
        load_metric("squad", language="en")
    with pytest.raises(ValueError, match=r"scheme: 'BIO' is not supported"):
        load_metric("seqeval", scheme="BIO")
    import evaluate

    with pytest.raises(ValueError, match=r"mlqa language \(config_name\): missing; allowed: en, es"):
        evaluate.load(str(metric_path("mlqa")))  # the module itself refuses a missing language
