"""The CC-100 reader under data parallelism and checkpointing: DataLoader workers x ranks see every document exactly
once, and `IterableDataset.state_dict()` resumes exactly, inside a file, also after a JSON round trip."""

from __future__ import annotations

import json
from collections import Counter

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import pytest
import torch
from datasets import Value, interleave_datasets
from datasets.distributed import split_dataset_by_node

from xlmr_hf.data.cc100 import CC100ReadError, iter_cc100_documents, load_cc100

SIZES = {"en": 6_000, "fr": 4_000, "de": 3_000, "ru": 5_000, "ar": 2_500}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cc100")
    text.write_cc100_corpus(directory, SIZES, seed=7)
    return directory


@pytest.fixture(scope="module")
def full_stream(corpus) -> list[dict[str, str]]:
    rows = list(load_cc100(corpus))
    expected = [{"id": f"{lang}/{lang}.txt.xz/{i}", "lang": lang, "text": "\n".join(doc)}
                for lang in sorted(SIZES) for i, doc in enumerate(text.generate_documents(lang, SIZES[lang], seed=7))]
    assert rows == expected
    return rows


def loader_ids(corpus, languages, rank: int) -> list[str]:
    dataset = split_dataset_by_node(load_cc100(corpus, languages=languages), rank=rank, world_size=2)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    return [row["id"] for row in loader]


@pytest.mark.parametrize("languages", [["ar", "de", "en", "fr"], list(SIZES)], ids=["4 files", "5 files"])
def test_two_ranks_two_workers_see_every_document_once(corpus, full_stream, languages):
    """4 files / 2 ranks: datasets gives each rank 2 whole files (one per worker). 5 files: n_shards is not divisible
    by world_size, so datasets switches to its "examples" strategy: every rank reads every file (each worker the same
    files on both ranks) and keeps every 2nd document. Both cover each document exactly once."""
    per_rank = [loader_ids(corpus, languages, rank) for rank in range(2)]
    expected = Counter(row["id"] for row in full_stream if row["lang"] in languages)
    assert Counter(per_rank[0] + per_rank[1]) == expected
    files = [{i.rsplit("/", 1)[0] for i in ids} for ids in per_rank]
    if len(languages) == 4:  # whole files per rank (shards), interleaved across ranks: 0, 2 and 1, 3
        assert files == [{"ar/ar.txt.xz", "en/en.txt.xz"}, {"de/de.txt.xz", "fr/fr.txt.xz"}]
    else:  # every rank sees documents of every file, and the two ranks alternate documents within a worker's stream
        assert files[0] == files[1] == {f"{lang}/{lang}.txt.xz" for lang in SIZES}
        assert abs(len(per_rank[0]) - len(per_rank[1])) <= 2


def resume_at(corpus, k: int, json_round_trip: bool, **split) -> tuple[list[dict], list[dict]]:
    """Iterate k rows, take the state, continue on a fresh dataset built in the same process."""
    def build():
        dataset = load_cc100(corpus)
        return split_dataset_by_node(dataset, **split) if split else dataset

    dataset, head = build(), []
    for row in dataset:
        head.append(row)
        if len(head) == k:
            break
    state = dataset.state_dict()
    if json_round_trip:
        state = json.loads(json.dumps(state))
    resumed = build()
    resumed.load_state_dict(state)
    return head, list(resumed)


def test_resume_mid_file_continues_exactly(corpus, full_stream):
    lengths = Counter(row["lang"] for row in full_stream)
    first_file = lengths["ar"]
    for k, round_trip in [(1, False), (first_file // 2, True), (first_file, False), (first_file + 3, True),
                          (len(full_stream) - 1, False)]:
        head, tail = resume_at(corpus, k, round_trip)
        assert head + tail == full_stream, k
        if 0 < k < len(full_stream):
            assert tail[0]["id"] == full_stream[k]["id"]
    head, tail = resume_at(corpus, first_file + 3, json_round_trip=True)
    dataset = load_cc100(corpus)
    for i, _ in enumerate(dataset):
        if i == first_file + 2:
            break
    assert dataset.state_dict()["examples_iterable"] == {"shard_idx": 1, "shard_example_idx": 3,
                                                         "type": "ExamplesIterable"}


def test_resume_on_one_rank(corpus):
    """A rank's stream (5 files, world_size 2: the "examples" strategy) resumes exactly too."""
    rank_stream = list(split_dataset_by_node(load_cc100(corpus), rank=1, world_size=2))
    head, tail = resume_at(corpus, 11, True, rank=1, world_size=2)
    assert head + tail == rank_stream


def test_rows_skip_datasets_per_row_feature_casting(corpus):
    """The builder declares its rows typed, so datasets adds no FormattedExamplesIterable (a per-row encode and
    decode); the features stay declared, and split/worker sharding keeps the declaration."""
    from datasets.iterable_dataset import FormattedExamplesIterable

    dataset = load_cc100(corpus)
    assert dict(dataset.features) == {"id": Value("string"), "lang": Value("string"), "text": Value("string")}
    for candidate in (dataset, split_dataset_by_node(dataset, rank=0, world_size=5),
                      split_dataset_by_node(dataset, rank=0, world_size=2)):
        iterable = candidate._prepare_ex_iterable_for_iteration()
        assert not isinstance(iterable, FormattedExamplesIterable)
        assert iterable.features == dataset.features


def test_shuffle_interleave_and_num_proc(corpus, full_stream, tmp_path):
    """The declared row types survive datasets' own transformations: file-order shuffling, interleaving (with exact
    resume) and the multi-process Arrow build."""
    shuffled = list(load_cc100(corpus).shuffle(seed=1, buffer_size=4))
    assert Counter(row["id"] for row in shuffled) == Counter(row["id"] for row in full_stream)
    assert shuffled != full_stream

    def mix():
        parts = [load_cc100(corpus, languages=lang) for lang in ("en", "fr")]
        return interleave_datasets(parts, probabilities=[0.5, 0.5], seed=0, stopping_strategy="all_exhausted")

    everything = list(mix())
    assert {row["lang"] for row in everything} == {"en", "fr"}
    assert mix().features == load_cc100(corpus).features
    dataset, head = mix(), []
    for row in dataset:
        head.append(row)
        if len(head) == 9:
            break
    resumed = mix()
    resumed.load_state_dict(json.loads(json.dumps(dataset.state_dict())))
    assert head + list(resumed) == everything
    arrow = load_cc100(corpus, streaming=False, cache_dir=tmp_path, num_proc=2)
    assert arrow.to_list() == full_stream


def test_read_error_in_a_dataloader_worker_keeps_its_type(corpus, tmp_path):
    whole = (corpus / "en.txt.xz").read_bytes()
    (tmp_path / "en.txt.xz").write_bytes(whole[: len(whole) * 3 // 4])
    (tmp_path / "fr.txt.xz").write_bytes((corpus / "fr.txt.xz").read_bytes())
    loader = torch.utils.data.DataLoader(load_cc100(tmp_path), batch_size=None, num_workers=2)
    with pytest.raises(CC100ReadError, match=r"truncated xz stream .* in CC-100 file '.*/en\.txt\.xz'"):
        list(loader)
    rows = list(torch.utils.data.DataLoader(load_cc100(tmp_path, on_error="skip"), batch_size=None, num_workers=2))
    readable = len(list(iter_cc100_documents(tmp_path / "en.txt.xz", on_error="skip")))
    expected = [f"en/en.txt.xz/{i}" for i in range(readable)] + [row["id"] for row in load_cc100(corpus, "fr")]
    assert readable > 0 and Counter(row["id"] for row in rows) == Counter(expected)
