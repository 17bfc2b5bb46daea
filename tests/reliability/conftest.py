"""The fault-injection suite's data: a small corpus and tokenizer (its run settings: `fixtures.reliability`)."""

from __future__ import annotations

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import pytest
from fixtures.tiny_tokenizer import build_tiny_tokenizer


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    corpus = tmp_path_factory.mktemp("corpus")
    text.write_cc100_corpus(corpus, {"en": 20000, "fr": 8000, "de": 4000, "sw": 1500}, seed=5)
    tokenizer = tmp_path_factory.mktemp("tok")
    build_tiny_tokenizer(tokenizer)
    return {"corpus": str(corpus), "tokenizer": str(tokenizer)}


