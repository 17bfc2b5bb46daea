"""The downstream probe (xlmr_hf.training.probe): file format and errors, known-answer probes on fake encoders,
padding-invariant pooling, a tiny real model (determinism, untouched global RNG, restored flags), early stopping."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path
from types import SimpleNamespace

import fixtures.tiny_tokenizer as tiny  # tests/ is on sys.path via tests/conftest.py
import numpy as np
import pytest
import torch
from fixtures.probe_data import TOPICS, probe_rows, write_probe_set
from transformers import AutoTokenizer

from xlmr_hf import XLMRobertaConfig, XLMRobertaForMaskedLM
from xlmr_hf.training.probe import (
    EarlyStopping,
    ProbeError,
    ProbeSet,
    ProbeSplit,
    load_probe_set,
    probe_features,
    run_probe,
)

CPU = torch.device("cpu")
CLASSES = ("family", "food", "school", "travel", "weather")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    tiny.build_tiny_tokenizer(directory)
    return AutoTokenizer.from_pretrained(directory)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def row(lang: str = "en", text: str = "The cat reads.", label: object = "a", **extra: object) -> dict:
    return {"language": lang, "text": text, "label": label, **extra}


# ---------------------------------------------------------------------------------------------------- format
def test_fixture_labels_every_parallel_sentence() -> None:
    assert len(TOPICS) == 12 and sorted(set(TOPICS)) == list(CLASSES)
    assert [r["label"] for r in probe_rows(["de"])] == list(TOPICS)


def test_directory_set_tokenizes_like_the_tokenizer(tmp_path: Path, tokenizer) -> None:
    probe = load_probe_set(write_probe_set(tmp_path), tokenizer, max_length=64)
    assert probe.classes == CLASSES and probe.truncated == 0
    assert probe.train.languages == ["en"] * 12 and probe.languages == ["de", "en", "es", "fr", "sw"]
    assert probe.eval.labels.tolist() == [CLASSES.index(t) for t in TOPICS] * 5
    texts = [r["text"] for r in probe_rows(["en", "de"])]
    assert [ids.tolist() for ids in probe.eval.input_ids[:24]] == tokenizer(texts)["input_ids"]


def test_single_file_equals_directory(tmp_path: Path, tokenizer) -> None:
    a = load_probe_set(write_probe_set(tmp_path / "d", train_languages=("en", "fr")), tokenizer)
    b = load_probe_set(write_probe_set(tmp_path / "f", train_languages=("en", "fr"), single_file=True), tokenizer)
    assert b.classes == a.classes and b.train.languages == a.train.languages == ["en"] * 12 + ["fr"] * 12
    for x, y in ((a.train, b.train), (a.eval, b.eval)):
        assert [i.tolist() for i in x.input_ids] == [i.tolist() for i in y.input_ids]
        assert x.labels.tolist() == y.labels.tolist()


def test_pairs_integer_labels_and_truncation(tmp_path: Path, tokenizer, caplog: pytest.LogCaptureFixture) -> None:
    long_a, long_b = "Meine Schwester liest ein Buch. " * 6, "Le chat trouve la lettre. " * 6
    rows = [row(text="The cat reads.", text_pair="A book.", label=1, split="train"),
            row(text="My sister loves bread.", label=0, split="train"),
            row(text=long_a, text_pair="Paka.", label=1, split="eval"),
            row(text=long_a, text_pair=long_b, label=0, split="eval")]
    with caplog.at_level(logging.INFO, logger="xlmr_hf.training.probe"):
        probe = load_probe_set(write_jsonl(tmp_path / "p.jsonl", rows), tokenizer, max_length=20)
    assert probe.classes == (0, 1) and probe.train.labels.tolist() == [1, 0]
    assert probe.train.input_ids[0].tolist() == tokenizer("The cat reads.", "A book.")["input_ids"]
    assert probe.truncated == 2 and "2 example(s) truncated to max_length=20" in caplog.text
    a, b = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in (long_a, long_b))
    pair_b = tokenizer("Paka.", add_special_tokens=False)["input_ids"]
    # Longest first: the long text gives way to the short one; two long texts share the 16 slots equally.
    assert probe.eval.input_ids[0].tolist() == [0, *a[:16 - len(pair_b)], 2, 2, *pair_b, 2]
    assert probe.eval.input_ids[1].tolist() == [0, *a[:8], 2, 2, *b[:8], 2]


def test_train_languages_restricts_training_only(tmp_path: Path, tokenizer) -> None:
    path = write_probe_set(tmp_path, train_languages=("en", "de"))
    probe = load_probe_set(path, tokenizer, train_languages=["de"])
    assert probe.train.languages == ["de"] * 12 and len(probe.eval.languages) == 60
    with pytest.raises(ProbeError, match=re.escape("train_languages names language 'ja', which has no training "
                                                   "examples; allowed: ['de', 'en']")):
        load_probe_set(path, tokenizer, train_languages=["de", "ja"])


GOOD = [row(label="a"), row(label="b")]
ERRORS = [  # (train lines, eval lines, expected message after the file name)
    (GOOD + ['{"language": "en", "text": "x",'], GOOD,
     ":3: invalid JSON (Expecting property name enclosed in double quotes, column 32)"),
    ([GOOD[0], "[1, 2]"], GOOD, ":2: line is a JSON list [1, 2]; allowed: a JSON object with fields language, text"),
    ([GOOD[0], {"language": "en", "text": "x"}], GOOD,
     ":2: missing field 'label'; required fields: language, text, label (optional: text_pair)"),
    ([GOOD[0], "", row(text="  ")], GOOD, ":3: field 'text' = '  ' is empty or not a string; allowed: a non-empty"),
    (GOOD, [row(lang="")], ":1: field 'language' = '' is empty or not a string"),
    (GOOD, [row(text_pair=3)], ":1: field 'text_pair' = 3 is empty or not a string"),
    (GOOD + [row(label=1.5)], GOOD, ":3: field 'label' = 1.5 (float); allowed: a string or an integer"),
    (GOOD + [row(label=True)], GOOD, ":3: field 'label' = True (bool); allowed: a string or an integer"),
    (GOOD, [GOOD[0], row(label="z")],
     ":2: field 'label' = 'z' does not occur in the training split; allowed: ['a', 'b']"),
    ([GOOD[0], GOOD[0]], GOOD,
     ": field 'label' takes only the value(s) ['a'] in the training split; allowed: at least 2 classes"),
    (GOOD, [""], ": the 'eval' split is empty; allowed: at least one example"),
]


@pytest.mark.parametrize(("train", "evals", "message"), ERRORS)
def test_errors_name_file_line_field_value_and_allowed(tmp_path: Path, tokenizer, train, evals, message) -> None:
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "eval.jsonl", evals)
    is_eval = evals is not GOOD
    with pytest.raises(ProbeError) as error:
        load_probe_set(tmp_path, tokenizer)
    assert str(error.value).startswith(str(tmp_path / ("eval.jsonl" if is_eval else "train.jsonl")) + message)


def test_single_file_split_and_missing_files(tmp_path: Path, tokenizer) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [row(label="a", split="train"), row(label="b", split="test")])
    with pytest.raises(ProbeError, match=re.escape(f"{path}:2: field 'split' = 'test'; allowed: 'train' or 'eval'")):
        load_probe_set(path, tokenizer)
    write_jsonl(tmp_path / "p.jsonl", [row(label="a")])
    with pytest.raises(ProbeError, match=re.escape(f"{path}:1: missing field 'split'")):
        load_probe_set(path, tokenizer)
    write_jsonl(tmp_path / "train.jsonl", GOOD)
    with pytest.raises(ProbeError, match=re.escape(f"{tmp_path / 'eval.jsonl'}: missing file; a probe-set directory")):
        load_probe_set(tmp_path, tokenizer)
    with pytest.raises(ProbeError, match=re.escape(f"{tmp_path / 'nope'}: missing file; allowed: a directory")):
        load_probe_set(tmp_path / "nope", tokenizer)
    with pytest.raises(ProbeError, match=re.escape("max_length=5; allowed: an integer >= 6")):
        load_probe_set(path, tokenizer, max_length=5)


# ---------------------------------------------------------------------------------------------------- fake encoders
class TableEncoder(torch.nn.Module):
    """Hidden state of a token = a fixed row of `table` (no mixing between positions)."""

    def __init__(self, table: torch.Tensor, as_tuple: bool = False) -> None:
        super().__init__()
        self.table, self.as_tuple = torch.nn.Embedding.from_pretrained(table.float()), as_tuple

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> object:
        hidden = self.table(input_ids)
        return (hidden,) if self.as_tuple else SimpleNamespace(last_hidden_state=hidden)


def one_hot_table(size: int = 40) -> torch.Tensor:
    table = torch.eye(size)
    table[1] = 5.0  # the pad token has a large embedding: pooling over it would show
    return table


def split(examples: list[tuple[list[int], int, str]]) -> ProbeSplit:
    return ProbeSplit([np.array(ids) for ids, _, _ in examples], np.array([y for _, y, _ in examples]),
                      [lang for _, _, lang in examples])


def separable_set(rng: random.Random) -> ProbeSet:
    """Class k has token 10+k plus 1-4 label-free noise tokens (20/21 in en; 30/31, unseen in training, in de)."""
    def example(k: int, lang: str) -> tuple[list[int], int, str]:
        base = 20 if lang == "en" else 30
        return [10 + k, *(base + rng.randrange(2) for _ in range(rng.randint(1, 4)))], k, lang
    train = [example(k, "en") for _ in range(6) for k in range(3)]
    evals = [example(k, lang) for lang in ("en", "de") for _ in range(4) for k in range(3)]
    return ProbeSet(split(train), split(evals), ("x", "y", "z"))


def test_linearly_separable_features_give_accuracy_one() -> None:
    model = TableEncoder(one_hot_table())
    result = run_probe(model, separable_set(random.Random(0)), batch_size=5, device=CPU, pad_token_id=1)
    assert result == {"probe/accuracy/de": 1.0, "probe/accuracy/en": 1.0, "probe/accuracy": 1.0,
                      "probe/train_accuracy": 1.0}


def test_uninformative_language_scores_the_share_of_the_predicted_class() -> None:
    table = one_hot_table()
    table[20] = table[10]  # every "xx" token looks exactly like the class-0 token: constant features
    train = [([10 + k] * n, k, "en") for n in (1, 2, 3) for k in range(3)]
    xx_labels = [0, 1, 2, 1, 2, 2]
    evals = [([10 + k] * 4, k, "en") for k in range(3)] + [([20] * (i + 1), y, "xx") for i, y in enumerate(xx_labels)]
    result = run_probe(TableEncoder(table), ProbeSet(split(train), split(evals), (0, 1, 2)), batch_size=4,
                       device=CPU, pad_token_id=1)
    share = xx_labels.count(0) / len(xx_labels)  # all predicted class 0, as the identical class-0 training features
    assert result["probe/train_accuracy"] == 1.0 and result["probe/accuracy/en"] == 1.0
    assert result["probe/accuracy/xx"] == share and result["probe/accuracy"] == (1.0 + share) / 2


def test_mean_pooling_ignores_padding_and_unwraps_encoders() -> None:
    table = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    ids = [np.array([0, 5, 7, 2]), np.array([0, 5, 7, 9, 9, 9, 9, 2])]
    alone = probe_features(TableEncoder(table), ids[:1], batch_size=1, device=CPU, pad_token_id=1)
    padded = probe_features(TableEncoder(table), ids[::-1], batch_size=2, device=CPU, pad_token_id=1)
    assert torch.equal(alone[0], padded[1]) and torch.equal(alone[0], table[ids[0]].double().mean(0))
    outer = torch.nn.Module()  # a DDP-like `.module` around a model holding `.roberta`, which returns a tuple
    outer.module = torch.nn.Module()
    outer.module.roberta = TableEncoder(table, as_tuple=True)
    assert torch.equal(probe_features(outer, ids[::-1], batch_size=2, device=CPU, pad_token_id=1), padded)


def test_language_ids_are_passed_from_language_to_id() -> None:
    class LanguageEncoder(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, language_ids: torch.Tensor):
            return SimpleNamespace(last_hidden_state=language_ids[:, None, None].float().expand(*input_ids.shape, 1))

    probe = ProbeSet(split([([5], 0, "en"), ([5], 1, "de")]), split([([5], 0, "en"), ([5, 6], 1, "de")]), (0, 1))
    assert run_probe(LanguageEncoder(), probe, batch_size=2, device=CPU, pad_token_id=1,
                     language_to_id={"en": 0, "de": 1})["probe/accuracy"] == 1.0
    with pytest.raises(ProbeError, match=re.escape("probe language(s) ['de'] are not in language_to_id; allowed: "
                                                   "['en']")):
        run_probe(LanguageEncoder(), probe, batch_size=2, device=CPU, pad_token_id=1, language_to_id={"en": 0})


# ---------------------------------------------------------------------------------------------------- tiny real model
@pytest.fixture(scope="module")
def tiny_model_and_set(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> tuple[XLMRobertaForMaskedLM, ProbeSet]:
    probe = load_probe_set(write_probe_set(tmp_path_factory.mktemp("probe")), tokenizer, max_length=64)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=66, pad_token_id=1, bos_token_id=0,
                              eos_token_id=2)  # default dropout 0.1: train mode would be random
    torch.manual_seed(0)
    return XLMRobertaForMaskedLM(config), probe


def rng_states() -> tuple:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def test_tiny_model_probe_is_deterministic_and_side_effect_free(tiny_model_and_set) -> None:
    model, probe = tiny_model_and_set
    model.train()
    model.roberta.encoder.layer[0].eval()  # mixed flags come back exactly as they were
    flags = [m.training for m in model.modules()]
    before = rng_states()
    first = run_probe(model, probe, batch_size=8, device=CPU, pad_token_id=1, steps=50)
    after = rng_states()
    assert torch.equal(before[0], after[0]) and before[2] == after[2]
    assert all(np.array_equal(a, b) for a, b in zip(before[1], after[1]))
    assert [m.training for m in model.modules()] == flags
    assert set(first) == {f"probe/accuracy/{lang}" for lang in ("de", "en", "es", "fr", "sw")} | {
        "probe/accuracy", "probe/train_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in first.values())
    assert first["probe/accuracy"] == pytest.approx(np.mean([first[f"probe/accuracy/{x}"] for x in probe.languages]))
    assert run_probe(model, probe, batch_size=8, device=CPU, pad_token_id=1, steps=50) == first
    with pytest.raises(ProbeError, match=re.escape("steps=0; allowed: an integer >= 1")):
        run_probe(model, probe, batch_size=8, device=CPU, pad_token_id=1, steps=0)
    with pytest.raises(ProbeError, match=re.escape("batch_size=0; allowed: an integer >= 1")):
        run_probe(model, probe, batch_size=0, device=CPU, pad_token_id=1)


def test_tiny_model_features_do_not_depend_on_padding(tiny_model_and_set) -> None:
    model, probe = tiny_model_and_set
    ids = probe.eval.input_ids[:12]
    one_by_one = torch.cat([probe_features(model, [x], batch_size=1, device=CPU, pad_token_id=1) for x in ids])
    batched = probe_features(model, ids, batch_size=12, device=CPU, pad_token_id=1)
    assert len({len(x) for x in ids}) > 1
    torch.testing.assert_close(batched, one_by_one, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------- early stopping
def test_early_stopping_sequences() -> None:
    stop = EarlyStopping(patience=3)
    assert [stop.update(v, s) for s, v in enumerate((0.1, 0.2, 0.2, 0.15, 0.19), 1)] == [False] * 4 + [True]
    assert (stop.best, stop.best_step, stop.bad_updates) == (0.2, 2, 3)
    delta = EarlyStopping(patience=2, min_delta=0.05)
    assert [delta.update(v, s) for s, v in enumerate((0.5, 0.54, 0.56, 0.6, 0.6))] == [False, False, False, False,
                                                                                       True]
    assert (delta.best, delta.best_step) == (0.56, 2)
    low = EarlyStopping(patience=1, metric="eval/loss", mode="min")
    assert [low.update(v, s) for s, v in enumerate((3.0, 2.5, float("nan"), 2.0, 2.0))] == [False, False, True,
                                                                                          False, True]
    assert (low.best, low.best_step) == (2.0, 3)


def test_early_stopping_state_round_trip_and_arguments() -> None:
    stop = EarlyStopping(patience=3, min_delta=0.01)
    for step, value in enumerate((0.3, 0.5, 0.4)):
        stop.update(value, step * 100)
    state = json.loads(json.dumps(stop.state_dict()))
    resumed = EarlyStopping(patience=3, min_delta=0.01)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == stop.state_dict() == {"patience": 3, "min_delta": 0.01, "metric": "probe/accuracy",
                                                         "mode": "max", "best": 0.5, "best_step": 100,
                                                         "bad_updates": 1}
    assert [resumed.update(v, 300) for v in (0.45, 0.5)] == [stop.update(v, 300) for v in (0.45, 0.5)] == [False, True]
    with pytest.raises(ValueError, match=re.escape("state has mode='max' but this run uses mode='min'")):
        EarlyStopping(3, mode="min").load_state_dict(state)
    for kwargs, message in (({"patience": 0}, "patience=0; allowed: an integer >= 1"),
                            ({"patience": 2.0}, "patience=2.0; allowed"),
                            ({"patience": 1, "min_delta": -0.1}, "min_delta=-0.1; allowed: a finite number >= 0"),
                            ({"patience": 1, "mode": "maximum"}, "mode='maximum'; allowed: 'max' or 'min'"),
                            ({"patience": 1, "metric": ""}, "metric=''; allowed")):
        with pytest.raises(ValueError, match=re.escape(message)):
            EarlyStopping(**kwargs)
