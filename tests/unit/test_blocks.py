"""Block planning from lengths (`LanguageBlocks`) against the reference `Packer`, on random documents with empty
paragraphs and documents, paragraphs longer than a block and epochs; accounting and resume from the cursor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xlmr_hf.data import Packer
from xlmr_hf.data.blocks import DocumentRun, LanguageBlocks

EOS = 2


class ListSource:
    """A language of in-memory documents (lists of paragraph ids) as a `DocumentSource`; state: a document index."""

    language = "xx"

    def __init__(self, documents: list[list[np.ndarray]], with_tokens: bool = True) -> None:
        self.documents, self.with_tokens, self.next = documents, with_tokens, 0

    def seek(self, state: int | None) -> None:
        self.next = state or 0

    def read(self, min_tokens: int) -> DocumentRun:
        starts, ends, lines, sizes, tokens, states, total = [0], [], [], [], [], [], 0
        while total < max(min_tokens, 1) and self.next < len(self.documents):
            states.append(self.next)
            document = self.documents[self.next]
            for ids in document:
                if len(ids):
                    tokens.extend([*ids.tolist(), EOS])
                    total += len(ids) + 1
                    ends.append(total)
            starts.append(total)
            lines.append(len(document))
            sizes.append(10 * len(document) + 1)
            self.next += 1
        last = self.next == len(self.documents)
        if last:
            self.next = 0
        states.append(self.next)
        return DocumentRun(np.array(starts), np.array(ends, dtype=np.int64), np.array(lines), np.array(sizes), last,
                           np.array(tokens, dtype=np.int64) if self.with_tokens else None, states)

    def flat(self) -> np.ndarray:
        return np.array([t for d in self.documents for p in d if len(p) for t in [*p.tolist(), EOS]])


def random_documents(rng: np.random.Generator, count: int, seq_len: int) -> list[list[np.ndarray]]:
    documents = []
    for _ in range(count):
        paragraphs = []
        for _ in range(int(rng.integers(0, 5))):
            kind = rng.random()
            length = 0 if kind < 0.1 else int(rng.integers(seq_len, 3 * seq_len)) if kind < 0.2 else int(
                rng.integers(1, seq_len // 2 + 1))
            paragraphs.append(rng.integers(5, 50, size=length))
        documents.append(paragraphs)
    documents[0].append(rng.integers(5, 50, size=3))  # the language has tokens
    return documents


def reference_blocks(documents: list[list[np.ndarray]], seq_len: int, mode: str, epochs: int) -> list:
    packer = Packer(seq_len, mode=mode, bos_token_id=0, eos_token_id=EOS)
    out = []
    for _ in range(epochs):
        for document in documents:
            out.extend(packer.add_document(document, "xx"))
        out.extend(packer.flush())  # an epoch end ends a block
    return out


@pytest.mark.parametrize("mode", ["complete", "complete_doc"])
@pytest.mark.parametrize("seed", range(6))
def test_plan_from_lengths_equals_packer(mode: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    seq_len = int(rng.integers(4, 24))
    documents = random_documents(rng, int(rng.integers(1, 40)), seq_len)
    expected = reference_blocks(documents, seq_len, mode, epochs=3)
    blocks = LanguageBlocks(ListSource(documents), seq_len, mode)
    got = []
    while len(got) < len(expected):  # taken in uneven steps, as the stream does
        n = min(int(rng.integers(1, 9)), len(expected) - len(got))
        for tokens, inside in blocks.take(n, payload=True):
            got.append(([0, *tokens.tolist()], (0, *(int(s) + 1 for s in inside))))
    for (ids, starts), block in zip(got, expected, strict=True):
        assert ids == block.input_ids.tolist()
        assert starts == block.segment_starts


def test_accounting_counts_each_document_once_per_epoch() -> None:
    rng = np.random.default_rng(7)
    documents = random_documents(rng, 30, 12)
    source = ListSource(documents)
    blocks = LanguageBlocks(source, 12, "complete")
    total = len(reference_blocks(documents, 12, "complete", epochs=2))
    plan = blocks.peek(total)
    assert int(plan.documents.sum()) == 2 * len(documents)
    assert int(plan.lines.sum()) == 2 * sum(len(d) for d in documents)
    assert int(plan.tokens.sum()) == 2 * len(source.flat()) + total  # + one <s> a block
    assert blocks.epoch_tokens == len(source.flat())
    ends = np.cumsum([sum(len(p) + 1 for p in d if len(p)) for d in documents])
    for start, end, docs in zip(plan.starts[:10], plan.ends[:10], plan.documents[:10]):
        assert docs == np.count_nonzero((ends > start if start else ends >= 0) & (ends <= end))


@pytest.mark.parametrize("mode", ["complete", "complete_doc"])
def test_resume_from_the_cursor_state(mode: str) -> None:
    rng = np.random.default_rng(3)
    documents = random_documents(rng, 25, 10)
    reference = LanguageBlocks(ListSource(documents), 10, mode)
    expected = [(t.tolist(), s.tolist()) for t, s in reference.take(120, payload=True)]
    for stop in (0, 1, 17, 59, 118):
        first = LanguageBlocks(ListSource(documents), 10, mode)
        first.take(stop, payload=True)
        first.peek(9)  # planned ahead of the cursor: not part of the state
        state = json.loads(json.dumps(first.state_dict()))
        resumed = LanguageBlocks(ListSource(documents), 10, mode)
        resumed.load_state_dict(state)
        got = [(t.tolist(), s.tolist()) for t, s in resumed.take(120 - stop, payload=True)]
        assert got == expected[stop:], stop


def test_a_language_without_tokens_is_a_clear_error() -> None:
    blocks = LanguageBlocks(ListSource([[np.zeros(0, dtype=np.int64)]]), 8, "complete")
    with pytest.raises(ValueError, match="language 'xx' has no tokens"):
        blocks.peek(1)
