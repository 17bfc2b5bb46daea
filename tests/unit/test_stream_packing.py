"""Packing tokenized documents into blocks (fairseq `complete` / `complete_doc`) and collating them into model inputs.

Hand examples pin exact blocks, segments and tensors; property tests over many seeded random documents check token
conservation, block bounds, greedy filling, segment bookkeeping and exact resume; an integration test checks that a
padding-free batch gives the same logits as running every document segment alone.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from conftest import max_abs_diff, randomize_parameters_, tiny_xlmr_config

from xlmr_hf import XLMRobertaForMaskedLM
from xlmr_hf.data.packing import (
    PACKING_MODES,
    Block,
    Packer,
    PackingError,
    collate_blocks,
)
from xlmr_hf.models import packed_position_ids

BOS, PAD, EOS = 0, 1, 2
LANGS = ("en", "fr", "de", "sw")

# Hand-made stream (seq_len=8, i.e. 7 tokens after <s>): (language, paragraphs).
HAND_DOCS: list[tuple[str, list[list[int]]]] = [
    ("en", [[10, 11], [12, 13]]),  # A: units of 3 + 3 -> pending 7
    ("fr", [[20], [21, 22]]),  # B: unit of 2 does not fit 7 -> emit A; B -> pending 6
    ("de", [[30]]),  # C: unit of 2 fills the block exactly -> emitted at once
    ("sw", [[40, 41, 42], [43, 44, 45]]),  # D: 4 + 4 > 7 -> two blocks, the second one pending
    ("en", [list(range(50, 60))]),  # E: unit of 11 > 7 -> emit D, one chunk of 7, remainder of 4 pending
    ("fr", [[], [70]]),  # F: empty paragraph skipped; unit of 2 joins E's remainder
    ("de", [[], []]),  # G: nothing
]


def blocks_as_lists(blocks: list[Block]) -> list[tuple[list[int], tuple[int, ...], tuple[str, ...]]]:
    return [(b.input_ids.tolist(), b.segment_starts, b.languages) for b in blocks]


def run_stream(packer: Packer, docs) -> list[list[Block]]:
    """Blocks returned by each add_document call, then the flush."""
    out = [packer.add_document(paragraphs, language) for language, paragraphs in docs]
    return [*out, packer.flush()]


# ---------------------------------------------------------------------------------------------------- hand examples
def test_complete_hand_example_exact_blocks_segments_and_emission_points():
    packer = Packer(8, mode="complete")
    per_call = [blocks_as_lists(blocks) for blocks in run_stream(packer, HAND_DOCS)]
    assert per_call == [
        [],  # A stays pending (7 tokens)
        [([0, 10, 11, 2, 12, 13, 2], (0,), ("en",))],  # B's first unit (2) does not fit 7 + 2 > 8: A emitted short
        [([0, 20, 2, 21, 22, 2, 30, 2], (0, 6), ("fr", "de"))],  # C starts a segment at 6; full block emitted now
        [([0, 40, 41, 42, 2], (0,), ("sw",))],  # D's second unit (4) does not fit 5 + 4 > 8
        [
            ([0, 43, 44, 45, 2], (0,), ("sw",)),  # partial block emitted before splitting E's long paragraph
            ([0, 50, 51, 52, 53, 54, 55, 56], (0,), ("en",)),  # full chunk of 7, no </s>
        ],
        [],  # F joins E's remainder: [0, 57, 58, 59, 2, 70, 2]
        [],  # G is empty
        [([0, 57, 58, 59, 2, 70, 2], (0, 5), ("en", "fr"))],  # continuation of E is segment 0, F starts at 5
    ]
    assert packer.pending_tokens == 0
    assert packer.counters == {
        "documents": 7, "paragraphs": 9, "skipped_empty_paragraphs": 3, "skipped_empty_documents": 1,
        "split_paragraphs": 1, "blocks": 6,
    }


def test_complete_doc_hand_example_never_mixes_documents():
    packer = Packer(8, mode="complete_doc")
    per_call = [blocks_as_lists(blocks) for blocks in run_stream(packer, HAND_DOCS)]
    assert per_call == [
        [([0, 10, 11, 2, 12, 13, 2], (0,), ("en",))],
        [([0, 20, 2, 21, 22, 2], (0,), ("fr",))],
        [([0, 30, 2], (0,), ("de",))],
        [([0, 40, 41, 42, 2], (0,), ("sw",)), ([0, 43, 44, 45, 2], (0,), ("sw",))],
        [([0, 50, 51, 52, 53, 54, 55, 56], (0,), ("en",)), ([0, 57, 58, 59, 2], (0,), ("en",))],
        [([0, 70, 2], (0,), ("fr",))],
        [],
        [],
    ]


def test_pending_tokens_counts_the_partial_block_with_its_bos():
    packer = Packer(8)
    assert packer.pending_tokens == 0
    packer.add_document([[10, 11]], "en")
    assert packer.pending_tokens == 4
    packer.add_document([[12]], "fr")
    assert packer.pending_tokens == 6
    assert blocks_as_lists(packer.flush()) == [([0, 10, 11, 2, 12, 2], (0, 4), ("en", "fr"))]
    assert packer.pending_tokens == 0
    assert packer.flush() == []


def test_long_paragraph_split_exact_values():
    packer = Packer(5)  # chunks of 4 tokens after <s>
    packer.add_document([[90]], "en")  # pending [0, 90, 2]
    blocks = packer.add_document([list(range(100, 110)), [120]], "fr")  # unit of 11 = 4 + 4 + 3
    assert blocks_as_lists(blocks) == [
        ([0, 90, 2], (0,), ("en",)),  # emitted first, although 3 tokens of the long unit would fit
        ([0, 100, 101, 102, 103], (0,), ("fr",)),
        ([0, 104, 105, 106, 107], (0,), ("fr",)),
        # remainder [108, 109, 2] (4 tokens with <s>) + unit [120, 2] does not fit 5: emitted
        ([0, 108, 109, 2], (0,), ("fr",)),
    ]
    assert blocks_as_lists(packer.flush()) == [([0, 120, 2], (0,), ("fr",))]


def test_long_paragraph_exact_multiple_keeps_eos_at_the_end_of_the_last_chunk():
    packer = Packer(5)
    blocks = packer.add_document([[100, 101, 102, 103, 104, 105, 106]], "en")  # unit of 8 = 4 + 4
    assert blocks_as_lists(blocks) == [
        ([0, 100, 101, 102, 103], (0,), ("en",)),
        ([0, 104, 105, 106, 2], (0,), ("en",)),
    ]
    assert packer.pending_tokens == 0
    # a unit of exactly seq_len - 1 is not split: it fills an empty block exactly
    assert blocks_as_lists(packer.add_document([[7, 8, 9]], "de")) == [([0, 7, 8, 9, 2], (0,), ("de",))]
    assert packer.counters["split_paragraphs"] == 1


def test_numpy_paragraphs_and_custom_special_ids():
    packer = Packer(6, bos_token_id=5, eos_token_id=6)
    blocks = packer.add_document([np.array([10, 11], dtype=np.int32), np.array([], dtype=np.int64)], "en")
    assert blocks == []
    block = packer.flush()[0]
    assert block.input_ids.dtype == np.int64
    assert block.input_ids.tolist() == [5, 10, 11, 6]
    assert len(block) == 4 and block.segment_lengths() == (4,)
    assert packer.counters["skipped_empty_paragraphs"] == 1


# ---------------------------------------------------------------------------------------------------- properties
def random_stream(seed: int, n_docs: int, max_len: int) -> list[tuple[str, list[list[int]]]]:
    """Documents of 0-5 paragraphs, lengths 0..max_len (some longer than a block), ids in [3, 300) (never <s>/</s>)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 17])))
    docs = []
    for _ in range(n_docs):
        n_par = int(rng.integers(0, 6))
        paragraphs = [rng.integers(3, 300, size=int(rng.integers(0, max_len + 1))).tolist() for _ in range(n_par)]
        docs.append((LANGS[int(rng.integers(0, len(LANGS)))], paragraphs))
    return docs


def stream_reference(docs):
    """Concatenated units, the document index of every unit token and the end offset of every unit."""
    tokens, doc_of_token = [], []
    for index, (_, paragraphs) in enumerate(docs):
        for paragraph in paragraphs:
            if paragraph:
                tokens.extend([*paragraph, EOS])
                doc_of_token.extend([index] * (len(paragraph) + 1))
    return np.array(tokens, dtype=np.int64), np.array(doc_of_token, dtype=np.int64)


@pytest.mark.parametrize("mode", PACKING_MODES)
@pytest.mark.parametrize("seq_len", [4, 7, 16, 33])
def test_packing_properties_over_random_documents(mode, seq_len):
    docs = random_stream(seed=seq_len, n_docs=250, max_len=2 * seq_len)
    packer = Packer(seq_len, mode=mode)
    blocks = [b for call in run_stream(packer, docs) for b in call]
    tokens, doc_of_token = stream_reference(docs)
    assert len(tokens) > 20 * seq_len  # the stream is not trivial
    # conservation: blocks minus their <s> are exactly the stream of units, in order
    np.testing.assert_array_equal(np.concatenate([b.input_ids[1:] for b in blocks]), tokens)
    offset = 0
    for i, block in enumerate(blocks):
        ids = block.input_ids
        assert 2 <= len(ids) <= seq_len and ids[0] == BOS and BOS not in ids[1:].tolist()
        if ids[-1] != EOS:  # only a non-final chunk of a long paragraph ends without </s>, and it is full
            assert len(ids) == seq_len and EOS not in ids.tolist()
        docs_here = doc_of_token[offset:offset + len(ids) - 1]
        change = np.flatnonzero(docs_here[1:] != docs_here[:-1]) + 2  # offsets (with <s>) where a new doc starts
        assert block.segment_starts == (0, *change.tolist())
        assert block.languages == tuple(docs[d][0] for d in [docs_here[0], *docs_here[change - 1]])
        if mode == "complete_doc":
            assert len(block.segment_starts) == 1
        if i + 1 < len(blocks):
            nxt = blocks[i + 1].input_ids
            eos_at = np.flatnonzero(nxt == EOS)
            first_piece = int(eos_at[0]) if len(eos_at) else len(nxt) - 1  # tokens of the unit (piece) after <s>
            ends_document = doc_of_token[offset + len(ids) - 2] != doc_of_token[offset + len(ids) - 1]
            if mode == "complete" or not ends_document:
                # greedy: a block is only emitted when the next unit (or chunk) does not fit
                assert len(ids) + first_piece > seq_len, (i, ids.tolist(), nxt.tolist())
        offset += len(ids) - 1
    assert packer.counters["blocks"] == len(blocks)
    assert packer.counters["documents"] == len(docs)
    assert packer.counters["paragraphs"] == sum(1 for _, ps in docs for p in ps if p)
    assert packer.counters["skipped_empty_paragraphs"] == sum(1 for _, ps in docs for p in ps if not p)
    assert packer.counters["skipped_empty_documents"] == sum(1 for _, ps in docs if not any(ps))


def test_complete_doc_starts_every_document_on_a_new_block():
    docs = random_stream(seed=3, n_docs=200, max_len=20)
    packer = Packer(12, mode="complete_doc")
    calls = run_stream(packer, docs)
    assert calls[-1] == []  # nothing pending after a document in complete_doc
    for (language, paragraphs), blocks in zip(docs, calls):
        units = [[*p, EOS] for p in paragraphs if p]
        assert [t for b in blocks for t in b.input_ids[1:].tolist()] == [t for u in units for t in u]
        assert all(b.languages == (language,) and b.segment_starts == (0,) for b in blocks)


# ---------------------------------------------------------------------------------------------------- state
@pytest.mark.parametrize("mode", PACKING_MODES)
def test_state_dict_json_round_trip_mid_stream_gives_identical_blocks(mode):
    docs = random_stream(seed=11, n_docs=60, max_len=14)
    full = Packer(9, mode=mode)
    reference = blocks_as_lists([b for call in run_stream(full, docs) for b in call])
    for cut in range(0, len(docs) + 1, 3):
        first = Packer(9, mode=mode)
        head = [b for language, ps in docs[:cut] for b in first.add_document(ps, language)]
        state = json.loads(json.dumps(first.state_dict()))
        resumed = Packer(9, mode=mode)
        resumed.load_state_dict(state)
        assert resumed.pending_tokens == first.pending_tokens
        assert resumed.counters == first.counters
        tail = [b for call in run_stream(resumed, docs[cut:]) for b in call]
        assert blocks_as_lists(head + tail) == reference, cut
        assert resumed.counters == full.counters


def test_state_dict_exact_content():
    packer = Packer(8)
    packer.add_document([[10, 11], []], "en")
    packer.add_document([[12]], "fr")
    assert packer.state_dict() == {
        "version": 1, "seq_len": 8, "mode": "complete", "bos_token_id": 0, "eos_token_id": 2,
        "pending": {"input_ids": [0, 10, 11, 2, 12, 2], "segment_starts": [0, 4], "languages": ["en", "fr"]},
        "counters": {"documents": 2, "paragraphs": 2, "skipped_empty_paragraphs": 1, "skipped_empty_documents": 0,
                     "split_paragraphs": 0, "blocks": 0},
    }


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("seq_len", 9, r"state.seq_len=9 does not match this packer's seq_len=8"),
        ("mode", "complete_doc", r"state.mode='complete_doc' does not match this packer's mode='complete'"),
        ("bos_token_id", 5, r"state.bos_token_id=5 does not match"),
        ("eos_token_id", 5, r"state.eos_token_id=5 does not match"),
        ("version", 2, r"state.version must be 1, got 2"),
    ],
)
def test_load_state_dict_config_mismatch_errors(field, value, match):
    source = Packer(8)
    source.add_document([[10, 11]], "en")
    state = {**source.state_dict(), field: value}
    target = Packer(8)
    target.add_document([[20]], "fr")
    before = target.state_dict()
    with pytest.raises(PackingError, match=match):
        target.load_state_dict(state)
    assert target.state_dict() == before  # unchanged


@pytest.mark.parametrize(
    ("pending", "match"),
    [
        ({"input_ids": [0, 10, 11, 2, 12, 13, 14, 2], "segment_starts": [0], "languages": ["en"]},
         r"state.pending.input_ids must be <s>=0 .* shorter than seq_len=8; got 8 ids"),
        ({"input_ids": [5, 10, 2], "segment_starts": [0], "languages": ["en"]}, r"state.pending.input_ids must be"),
        ({"input_ids": [0, 10, 11], "segment_starts": [0], "languages": ["en"]}, r"state.pending.input_ids must be"),
        ({"input_ids": [0, 10, 2], "segment_starts": [1], "languages": ["en"]}, r"segment_starts must start at 0"),
        ({"input_ids": [0, 10, 2], "segment_starts": [0], "languages": ["en", "fr"]}, r"one entry per segment \(1\)"),
        ({"input_ids": [0, -1, 2], "segment_starts": [0], "languages": ["en"]}, r"non-negative int ids, got -1"),
        ({"input_ids": [], "segment_starts": [0], "languages": []}, r"has no input_ids but segments \[0\]"),
        ({"input_ids": [0, 10, 2], "segment_starts": 0, "languages": ["en"]}, r"segment_starts must be a list"),
        ({"input_ids": [0, 10, 2]}, r"state.pending must be a mapping with input_ids, segment_starts and languages"),
    ],
)
def test_load_state_dict_rejects_corrupt_pending(pending, match):
    state = {**Packer(8).state_dict(), "pending": pending}
    with pytest.raises(PackingError, match=match):
        Packer(8).load_state_dict(state)


def test_load_state_dict_rejects_bad_counters_and_non_mapping():
    state = Packer(8).state_dict()
    with pytest.raises(PackingError, match=r"state.counters must be a mapping with keys"):
        Packer(8).load_state_dict({**state, "counters": {"documents": 1}})
    with pytest.raises(PackingError, match=r"state.counters.blocks must be an int >= 0, got -1"):
        Packer(8).load_state_dict({**state, "counters": {**state["counters"], "blocks": -1}})
    with pytest.raises(PackingError, match=r"state must be a mapping .*got list"):
        Packer(8).load_state_dict([])


# ---------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seq_len": 3}, r"seq_len must be an int >= 4, got 3"),
        ({"seq_len": "8"}, r"seq_len must be an int >= 4, got '8'"),
        ({"seq_len": True}, r"seq_len must be an int >= 4, got True"),
        ({"seq_len": 8.0}, r"seq_len must be an int >= 4, got 8.0"),
        ({"seq_len": 8, "mode": "eos"}, r"mode must be one of \('complete', 'complete_doc'\), got 'eos'"),
        ({"seq_len": 8, "bos_token_id": -1}, r"bos_token_id must be an int >= 0, got -1"),
        ({"seq_len": 8, "bos_token_id": 2}, r"bos_token_id and eos_token_id must differ, both are 2"),
    ],
)
def test_packer_config_errors(kwargs, match):
    with pytest.raises(PackingError, match=match):
        Packer(**kwargs)


@pytest.mark.parametrize(
    ("paragraphs", "language", "match"),
    [
        ([[3, 4], [5, -2]], "en", r"paragraphs\[1\] must hold non-negative int ids, got -2 at index 1"),
        ([[3, 4.5]], "en", r"paragraphs\[0\] must hold non-negative int ids, got dtype float64"),
        ([[True, False]], "en", r"paragraphs\[0\] must hold non-negative int ids, got dtype bool"),
        ([[[3, 4]]], "en", r"paragraphs\[0\] must be a 1-D sequence .* got shape \(1, 2\)"),
        ([3, 4], "en", r"paragraphs\[0\] must be a 1-D sequence .* got shape \(\)"),
        (["abc"], "en", r"paragraphs\[0\] must be a 1-D sequence of non-negative int ids, got a str"),
        ("abc", "en", r"paragraphs must be a sequence of id sequences, got str"),
        ([[3, 4]], "", r"language must be a non-empty str, got ''"),
        ([[3, 4]], None, r"language must be a non-empty str, got None"),
    ],
)
def test_add_document_errors_leave_the_packer_unchanged(paragraphs, language, match):
    packer = Packer(8)
    packer.add_document([[10]], "en")
    before = packer.state_dict()
    with pytest.raises(PackingError, match=match):
        packer.add_document(paragraphs, language)
    assert packer.state_dict() == before


def test_block_validation_errors():
    with pytest.raises(PackingError, match=r"Block.segment_starts must start at 0 .* block length 3, got \(0, 3\)"):
        Block(np.array([0, 5, 2]), (0, 3), ("en", "fr"))
    with pytest.raises(PackingError, match=r"increase strictly .* got \(0, 2, 2\)"):
        Block(np.array([0, 5, 2, 6]), (0, 2, 2), ("en", "fr", "de"))
    with pytest.raises(PackingError, match=r"Block.languages must have one entry per segment \(2\), got 1"):
        Block(np.array([0, 5, 2, 6]), (0, 2), ("en",))
    with pytest.raises(PackingError, match=r"Block.labels must be 1-D with the block length 3, got shape \(2,\)"):
        Block(np.array([0, 5, 2]), (0,), ("en",), labels=np.array([-100, 5]))
    with pytest.raises(PackingError, match=r"Block.input_ids must hold at least one token"):
        Block(np.array([], dtype=np.int64), (0,), ("en",))
    block = Block([0, 5, 2, 6, 2], (0, 3), ("en", "fr"))
    assert block.input_ids.dtype == np.int64 and block.segment_lengths() == (3, 2) and len(block) == 5


# ---------------------------------------------------------------------------------------------------- collation
def hand_blocks(with_labels: bool = True) -> list[Block]:
    b1 = Block(np.array([0, 10, 11, 2, 20, 2]), (0, 4), ("en", "fr"))
    b2 = Block(np.array([0, 30, 31, 2]), (0,), ("de",))
    if with_labels:
        b1.labels = np.array([-100, 10, -100, -100, 20, -100])
        b2.labels = np.array([-100, -100, 31, -100])
    return [b1, b2]


LANGUAGE_TO_ID = {"en": 0, "fr": 1, "de": 2}


def test_collate_padded_exact_tensors():
    out = collate_blocks(hand_blocks(), language_to_id=LANGUAGE_TO_ID)
    assert set(out) == {"input_ids", "attention_mask", "labels", "language_ids"}
    assert all(t.dtype == torch.long for t in out.values())
    assert out["input_ids"].tolist() == [[0, 10, 11, 2, 20, 2], [0, 30, 31, 2, 1, 1]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]
    assert out["labels"].tolist() == [[-100, 10, -100, -100, 20, -100], [-100, -100, 31, -100, -100, -100]]
    assert out["language_ids"].tolist() == [[0, 0, 0, 0, 1, 1], [2, 2, 2, 2, 2, 2]]  # pads: row's first language


def test_collate_padded_pad_to_and_custom_pad_without_labels():
    out = collate_blocks(hand_blocks(with_labels=False), pad_token_id=7, pad_to=8)
    assert set(out) == {"input_ids", "attention_mask"}
    assert out["input_ids"].tolist() == [[0, 10, 11, 2, 20, 2, 7, 7], [0, 30, 31, 2, 7, 7, 7, 7]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]]


def test_collate_padding_free_document_boundaries_exact_tensors():
    out = collate_blocks(hand_blocks(), padding_free=True, language_to_id=LANGUAGE_TO_ID)
    assert set(out) == {"input_ids", "cu_seqlens", "position_ids", "labels", "language_ids"}
    assert out["cu_seqlens"].dtype == torch.int32
    assert all(out[k].dtype == torch.long for k in ("input_ids", "position_ids", "labels", "language_ids"))
    assert out["input_ids"].tolist() == [[0, 10, 11, 2, 20, 2, 0, 30, 31, 2]]
    assert out["cu_seqlens"].tolist() == [0, 4, 6, 10]
    assert out["position_ids"].tolist() == [[2, 3, 4, 5, 2, 3, 2, 3, 4, 5]]
    assert out["labels"].tolist() == [[-100, 10, -100, -100, 20, -100, -100, -100, 31, -100]]
    assert out["language_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 2, 2, 2, 2]]
    assert torch.equal(out["position_ids"], packed_position_ids(out["cu_seqlens"], PAD))


def test_collate_padding_free_block_boundaries_exact_tensors():
    out = collate_blocks(hand_blocks(with_labels=False), padding_free=True, boundaries="block", pad_token_id=3)
    assert set(out) == {"input_ids", "cu_seqlens", "position_ids"}
    assert out["cu_seqlens"].tolist() == [0, 6, 10]
    assert out["position_ids"].tolist() == [[4, 5, 6, 7, 8, 9, 4, 5, 6, 7]]
    assert torch.equal(out["position_ids"], packed_position_ids(out["cu_seqlens"], 3))


def test_collate_position_ids_match_packed_position_ids_on_random_blocks():
    docs = random_stream(seed=5, n_docs=80, max_len=12)
    packer = Packer(10)
    blocks = [b for call in run_stream(packer, docs) for b in call]
    for boundaries in ("document", "block"):
        out = collate_blocks(blocks, padding_free=True, boundaries=boundaries)
        assert torch.equal(out["position_ids"], packed_position_ids(out["cu_seqlens"], PAD))
        starts = [0]
        for b in blocks:
            offs = b.segment_starts if boundaries == "document" else (0,)
            starts[-1:] = [starts[-1] + s for s in offs] + [starts[-1] + len(b)]
        assert out["cu_seqlens"].tolist() == starts


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pad_to": 5}, r"pad_to=5 is shorter than the longest block \(6 tokens\); allowed: >= 6"),
        ({"pad_to": 8, "padding_free": True}, r"pad_to applies only to padded batches"),
        ({"boundaries": "sentence"}, r"boundaries must be one of \('document', 'block'\), got 'sentence'"),
        ({"language_to_id": {"en": 0, "fr": 1}}, r"language 'de' is not in language_to_id; allowed: \['en', 'fr'\]"),
        ({"language_to_id": {"en": 0, "fr": 1, "de": -1}}, r"language_to_id\['de'\] must be an int >= 0, got -1"),
        ({"pad_token_id": -1}, r"pad_token_id must be an int >= 0, got -1"),
    ],
)
def test_collate_errors(kwargs, match):
    with pytest.raises(PackingError, match=match):
        collate_blocks(hand_blocks(), **kwargs)


def test_collate_errors_on_blocks():
    blocks = hand_blocks()
    blocks[1].labels = None
    with pytest.raises(PackingError, match=r"labels must be set on all blocks or on none; blocks \[1\] have labels"):
        collate_blocks(blocks)
    blocks = hand_blocks()
    blocks[0].labels = np.array([-100, 5])
    with pytest.raises(PackingError, match=r"blocks\[0\].labels must be 1-D with the block length 6"):
        collate_blocks(blocks, padding_free=True)
    with pytest.raises(PackingError, match=r"blocks must be a non-empty sequence of Block"):
        collate_blocks([])
    with pytest.raises(PackingError, match=r"blocks\[1\] must be a Block, got list"):
        collate_blocks([hand_blocks()[0], [0, 1]])


# ---------------------------------------------------------------------------------------------------- model
def tiny_model(seed: int = 0, **overrides) -> XLMRobertaForMaskedLM:
    config = tiny_xlmr_config("post", **overrides)  # vocab 99, 40 positions: seq_len <= 38
    torch.manual_seed(seed)
    model = XLMRobertaForMaskedLM(config)
    randomize_parameters_(model, seed)
    return model.eval()


def model_blocks(seq_len: int = 16) -> list[Block]:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([42, 17])))
    packer = Packer(seq_len)
    blocks: list[Block] = []
    for doc in range(12):
        n_paragraphs = int(rng.integers(1, 3))
        paragraphs = [rng.integers(3, 99, size=int(rng.integers(1, 9))).tolist() for _ in range(n_paragraphs)]
        blocks.extend(packer.add_document(paragraphs, LANGS[doc % 3]))
    blocks.extend(packer.flush())
    assert sum(len(b.segment_starts) > 1 for b in blocks) >= 2  # the batch really mixes documents inside blocks
    return blocks


@pytest.mark.parametrize("language_embeddings", [False, True])
def test_padding_free_document_batch_equals_each_segment_alone(language_embeddings):
    overrides = {"use_language_embeddings": True, "n_langs": 3} if language_embeddings else {}
    model = tiny_model(**overrides)
    blocks = model_blocks()
    language_to_id = LANGUAGE_TO_ID if language_embeddings else None
    batch = collate_blocks(blocks, padding_free=True, language_to_id=language_to_id)
    with torch.no_grad():
        packed = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
        flat = batch["input_ids"][0]
        cu = batch["cu_seqlens"].tolist()
        assert len(cu) - 1 == sum(len(b.segment_starts) for b in blocks)
        for start, end in itertools.pairwise(cu):
            kwargs = {}
            if language_embeddings:
                kwargs["language_ids"] = batch["language_ids"][:, start:end]
            alone = model(input_ids=flat[None, start:end], **kwargs).logits[0]  # positions 2.. from the ids
            assert max_abs_diff(packed[start:end], alone) < 1e-5, (start, end)


def test_padding_free_block_batch_equals_padded_batch():
    model = tiny_model(seed=1)
    blocks = model_blocks()
    padded = collate_blocks(blocks)
    packed = collate_blocks(blocks, padding_free=True, boundaries="block")
    with torch.no_grad():
        padded_logits = model(**padded).logits
        packed_logits = model(**packed).logits[0]
    offset = 0
    for row, block in enumerate(blocks):
        n = len(block)
        assert max_abs_diff(packed_logits[offset:offset + n], padded_logits[row, :n]) < 1e-5, row
        offset += n
