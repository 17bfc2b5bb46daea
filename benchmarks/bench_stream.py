#!/usr/bin/env python
"""The pretraining stream: tokens/s and resume time, ours (`xlmr_hf.data.PretrainingStream`) vs the HF path, same
files, same tokenizer, same process; per-rank scaling over world sizes and DataLoader workers, online and
pre-tokenized; and the speed of `xlmr-hf tokenize-corpus`.

Corpus: the synthetic multilingual fixture (`tests/fixtures/multilingual_text.py`), 8 languages with unequal sizes,
``--size-mb`` of uncompressed UTF-8, written as a CC-100 directory of ``<lang>.txt.xz`` cut into independent xz streams
of ~4 MiB (the layout `xlmr-hf build-corpus` writes), so nothing is downloaded. Tokenizer: an XLM-R-layout SentencePiece
unigram model of ``--vocab-size`` pieces trained on the corpus with `xlmr_hf.tokenization.train_tokenizer`.

Throughput (batches of 8 × 512, α = 0.3 temperature sampling, 15% masking with 80/10/10):

* **ours**: ``PretrainingStream(dir, tokenizer, seq_len=512, batch_size=8)`` (packing ``complete``, exact masking);
  tokens = non-pad tokens of the batches.
* **anchor** (transformers' ``run_mlm.py`` path with language sampling): per language
  ``load_dataset("text", data_files=..., streaming=True)``, ``interleave_datasets(probabilities=q, seed=...)`` with the
  same q, ``map(tokenize, batched=True)`` (the HF fast tokenizer, ``return_special_tokens_mask=True``),
  ``map(group_texts, batched=True)`` into 512-token blocks, ``DataLoader(batch_size=8, collate_fn=
  DataCollatorForLanguageModeling(mlm_probability=0.15))``; tokens = 8 × 512 per batch.

Both run ``--batches`` batches after one warm-up batch; timed runs alternate (order swapped each round), the best of
``--repeats`` is kept.

Resume after D consumed documents (D = 10^5 and 10^6):

* **ours**: the state of a stream whose sampler and readers have passed D documents (made by advancing the sampler and
  readers directly: tokenizing 10^6 documents only to produce a state would add minutes and does not change what a
  restore does); timed: ``load_state_dict(state)`` + the first batch, on a stream constructed beforehand.
* **anchor**: the HF pipeline iterated for D examples (lines: fewer bytes than D documents, which favours it), its
  ``state_dict()`` taken (each language's text stream is ``.repeat(None)``-ed, so it restarts at its end as our
  readers do); timed: a fresh pipeline's ``load_state_dict(state)`` + the first batch (datasets re-reads each
  file up to the saved example, the "skipping" users complain about).

Scaling: rank 0 of ``--world-sizes`` (each rank plans every block and reads the tokens of its own), its own batches'
tokens/s, online (the CC-100 files) and pre-tokenized (`tokenize_corpus` output); then ``--workers`` DataLoader
workers at world size 1. tokenize-corpus: MB of text per second, 1 worker and the most workers asked for.

Prints both figures and the ratios; ``--json`` writes them with the machine description.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import lzma
import operator
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import machine_info

logger = logging.getLogger("bench_stream")

ROOT = Path(__file__).resolve().parent.parent
SHARES = {"en": 0.35, "fr": 0.15, "de": 0.12, "ru": 0.10, "zh": 0.10, "ar": 0.08, "hi": 0.06, "sw": 0.04}
STREAM_BYTES = 1 << 22
PACKAGES = ("torch", "transformers", "datasets", "sentencepiece", "tokenizers", "numpy")
CODE = [ROOT / "src/xlmr_hf/data"]


def write_corpus(directory: Path, size_mb: float) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import fixtures.multilingual_text as fixture

    directory.mkdir(parents=True, exist_ok=True)
    for lang, share in SHARES.items():
        documents = fixture.generate_documents(lang, int(size_mb * 1e6 * share), seed=1)
        parts, size, out = [], 0, bytearray()
        for doc in documents:
            text = ("".join(p + "\n" for p in doc) + "\n").encode("utf-8")
            parts.append(text)
            size += len(text)
            if size >= STREAM_BYTES:
                out += lzma.compress(b"".join(parts), format=lzma.FORMAT_XZ, preset=1)
                parts, size = [], 0
        if parts:
            out += lzma.compress(b"".join(parts), format=lzma.FORMAT_XZ, preset=1)
        (directory / f"{lang}.txt.xz").write_bytes(bytes(out))


def train_tokenizer(corpus: Path, directory: Path, vocab_size: int) -> None:
    from xlmr_hf.tokenization import TokenizerTrainingConfig
    from xlmr_hf.tokenization import train_tokenizer as train

    train(corpus, directory, TokenizerTrainingConfig(vocab_size=vocab_size, max_sentences=300_000,
                                                    heldout_sentences=100, num_threads=2), progress=False)


# --------------------------------------------------------------------------------------------------------- ours
def our_stream(corpus: Path, tokenizer: Path, seed: int = 0) -> Any:
    from xlmr_hf.data import PretrainingStream

    return PretrainingStream(corpus, str(tokenizer), seq_len=512, batch_size=8, seed=seed)


def our_tokens(corpus: Path, tokenizer: Path, batches: int) -> Callable[[], int]:
    def run() -> int:  # two shuffle windows after the first batch: the planning (tokenizing) of later ones is timed
        return rank_tokens(corpus, tokenizer, 1, 0, 2)
    return run


# ------------------------------------------------------------------------------------------------------- anchor
def hf_pipeline(corpus: Path, tokenizer_dir: Path, seed: int = 0) -> tuple[Any, Any, list[int]]:
    """(dataset of 512-token blocks, MLM collator, [text lines tokenized so far])."""
    from datasets import interleave_datasets, load_dataset
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling

    from xlmr_hf.data import cc100_statistics, temperature_probabilities

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    languages = sorted(SHARES)
    stats = cc100_statistics(corpus, languages, progress=False)
    q = temperature_probabilities({lang: stats[lang].bytes for lang in languages}, 0.3)
    # .repeat(None): each language restarts at its end, like our readers (the 10^6-document resume needs epochs)
    streams = [load_dataset("text", data_files=str(corpus / f"{lang}.txt.xz"), streaming=True,
                            split="train").repeat(None) for lang in languages]
    mixed = interleave_datasets(streams, probabilities=[q[lang] for lang in languages], seed=seed)

    lines = [0]

    def tokenize(examples: dict[str, list]) -> dict[str, list]:
        lines[0] += len(examples["text"])
        return tokenizer(examples["text"], return_special_tokens_mask=True)

    def group_texts(examples: dict[str, list]) -> dict[str, list]:  # transformers' run_mlm.py recipe
        concatenated = {k: functools.reduce(operator.iadd, examples[k], []) for k in examples}
        total = (len(concatenated["input_ids"]) // 512) * 512
        return {k: [t[i:i + 512] for i in range(0, total, 512)] for k, t in concatenated.items()}

    dataset = mixed.map(tokenize, batched=True, remove_columns=["text"]).map(group_texts, batched=True)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    return dataset, collator, lines


def hf_batches(dataset: Any, collator: Any) -> Iterator[dict]:
    buffer = []
    for example in dataset:
        buffer.append(example)
        if len(buffer) == 8:
            yield collator(buffer)
            buffer = []


def hf_tokens(corpus: Path, tokenizer: Path, batches: int) -> Callable[[], tuple[int, float]]:
    def run() -> tuple[int, float]:
        dataset, collator, _ = hf_pipeline(corpus, tokenizer)
        it = hf_batches(dataset, collator)
        next(it)
        start = time.perf_counter()
        tokens = sum(next(it)["input_ids"].numel() for _ in range(batches))
        return tokens, time.perf_counter() - start
    return run


# ------------------------------------------------------------------------------------------------------- resume
def our_resume(corpus: Path, tokenizer: Path, documents: int, shuffle_blocks: int = 8192) -> dict[str, float]:
    from xlmr_hf.data import PretrainingStream

    def make() -> Any:
        return PretrainingStream(corpus, str(tokenizer), seq_len=512, batch_size=8, seed=0,
                                 shuffle_blocks=shuffle_blocks)

    stream = make()
    start = time.perf_counter()
    # Reach the position a run would have after `documents` documents by planning shuffle windows only (what a real
    # run does too, minus masking the batches it would have trained on).
    while sum(row["documents"] for row in stream.accounting().values()) < documents:
        stream._plan_window()
    group = stream.batch_size * stream.world_size
    stream._batch = stream._next_window * stream.shuffle_blocks // group
    stream._windows = {}
    state = json.loads(json.dumps(stream.state_dict()))
    prepare = time.perf_counter() - start
    fresh = make()
    start = time.perf_counter()
    fresh.load_state_dict(state)
    batch = next(iter(fresh))
    seconds = time.perf_counter() - start
    assert batch["input_ids"].shape[0] == 8
    return {"seconds": seconds, "prepare_seconds": prepare, "state_bytes": len(json.dumps(state)),
            "max_epoch": max(blocks.epoch for blocks in fresh.blocks), "shuffle_blocks": shuffle_blocks}


def hf_resume(corpus: Path, tokenizer: Path, documents: int) -> dict[str, float]:
    dataset, _, lines = hf_pipeline(corpus, tokenizer)
    start = time.perf_counter()
    for _ in dataset:  # the text lines pass through tokenize in batches of 1000
        if lines[0] >= documents:
            break
    state = dataset.state_dict()
    prepare = time.perf_counter() - start
    fresh, collator, _ = hf_pipeline(corpus, tokenizer)
    start = time.perf_counter()
    fresh.load_state_dict(state)
    batch = next(hf_batches(fresh, collator))
    seconds = time.perf_counter() - start
    assert batch["input_ids"].shape[0] == 8
    return {"seconds": seconds, "prepare_seconds": prepare, "lines": lines[0]}


# ------------------------------------------------------------------------------------------------------ scaling
def rank_tokens(corpus: Path, tokenizer: Path, world_size: int, workers: int, windows: int,
                own_every: int = 1) -> tuple[int, float]:
    """Tokens/s of rank 0's own batches at ``world_size`` (every rank plans all blocks, materializes its own), over
    ``windows`` shuffle windows after the first batch (which plans the first window: a start-up cost, excluded), so
    the planning of later windows is inside the timing."""
    from torch.utils.data import DataLoader

    from xlmr_hf.data import PretrainingStream

    stream = PretrainingStream(corpus, str(tokenizer), seq_len=512, batch_size=8, seed=0, rank=0,
                               world_size=world_size)
    batches = max(1, windows * stream.shuffle_blocks // (8 * world_size * own_every))
    loader = DataLoader(stream, batch_size=None, num_workers=workers, prefetch_factor=8 if workers else None)
    it = iter(loader)
    for _ in range(max(workers, 1)):
        next(it)
    start = time.perf_counter()
    tokens = sum(int(next(it)["attention_mask"].sum()) for _ in range(batches))
    return tokens, time.perf_counter() - start


def split_tokens(corpus: Path, tokenizer: Path, workers: int, windows: int) -> float:
    """Tokens/s that ``workers`` DataLoader workers produce together when each has a core: every worker's own batches
    timed in this process (`get_worker_info` answered as that worker would see it), rates summed. It measures the
    split of work without the IPC of the batches and without the main process competing for this machine's cores."""
    import types

    import xlmr_hf.data.stream as stream_module

    total, original = 0.0, stream_module.get_worker_info
    try:
        for worker in range(workers):
            stream_module.get_worker_info = lambda w=worker: types.SimpleNamespace(id=w, num_workers=workers)
            tokens, seconds = rank_tokens(corpus, tokenizer, 1, 0, windows, own_every=workers)
            total += tokens / seconds
    finally:
        stream_module.get_worker_info = original
    return total


def tokenize_speed(corpus: Path, tokenizer: Path, out: Path, workers: int) -> dict[str, float]:
    from xlmr_hf.data import tokenize_corpus

    start = time.perf_counter()
    manifest = tokenize_corpus(corpus, str(tokenizer), out, workers=workers, overwrite=True)
    seconds = time.perf_counter() - start
    megabytes = sum(row["bytes"] for row in manifest["languages"].values()) / 1e6
    return {"seconds": seconds, "megabytes": megabytes, "mb_per_s": megabytes / seconds,
            "mb_per_s_per_worker": megabytes / seconds / workers}


def scaling(corpus: Path, tokenized: Path, tokenizer: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"world_sizes": {}, "workers": {}}
    for source, path in (("online", corpus), ("tokenized", tokenized)):
        for world_size in args.world_sizes:
            tokens, seconds = rank_tokens(path, tokenizer, world_size, 0, args.windows)
            out["world_sizes"].setdefault(source, {})[str(world_size)] = tokens / seconds
            logger.info("%s, world size %d: rank 0 %.0f tokens/s", source, world_size, tokens / seconds)
        for workers in args.workers:
            tokens, seconds = rank_tokens(path, tokenizer, 1, workers, args.windows)
            out["workers"].setdefault(source, {})[str(workers)] = tokens / seconds
            logger.info("%s, %d DataLoader workers: %.0f tokens/s", source, workers, tokens / seconds)
            split = split_tokens(path, tokenizer, max(workers, 1), args.windows)
            out.setdefault("split", {}).setdefault(source, {})[str(workers)] = split
            logger.info("%s, %d workers, one core each: %.0f tokens/s", source, workers, split)
    return out


def report_scaling(result: dict[str, Any], args: argparse.Namespace) -> None:
    sizes, workers = result["world_sizes"], result["workers"]
    for source in sizes:
        row = "  ".join(f"ws {w}: {sizes[source][str(w)]:,.0f}" for w in args.world_sizes)
        print(f"per-rank tokens/s, {source:9s}  {row}")
        row = "  ".join(f"{w} workers: {workers[source][str(w)]:,.0f}" for w in args.workers)
        print(f"tokens/s by DataLoader workers on this machine, {source:9s}  {row}")
        row = "  ".join(f"{w} workers: {result['split'][source][str(w)]:,.0f}" for w in args.workers)
        print(f"tokens/s by workers with a core each, {source:9s}  {row}")
    tok = sizes["tokenized"]
    low, high = str(min(args.world_sizes)), str(max(args.world_sizes))
    ratio = tok[high] / tok[low]
    print(f"pre-tokenized per-rank tokens/s at world size {high} / {low}: {ratio:.2f} (goal >= 0.8)")
    result["world_size_ratio"] = ratio
    if len(args.workers) > 1:
        w0, w1 = str(min(args.workers)), str(max(args.workers))
        split = result["split"]["tokenized"]
        worker_ratio = split[w1] / split[w0]
        loader_ratio = workers["tokenized"][w1] / workers["tokenized"][w0]
        print(f"pre-tokenized tokens/s with {w1} workers / {w0}: {worker_ratio:.2f} with a core each (goal >= 1.7); "
              f"{loader_ratio:.2f} through the DataLoader on this machine's {os.cpu_count()} cores")
        result["worker_ratio"], result["loader_worker_ratio"] = worker_ratio, loader_ratio
        # Projection: a 16-core node runs 16 producers (the ranks' DataLoader workers) on their own cores; each
        # delivers what one worker does here at world size 64 (the slowest per-rank figure), from pre-tokenized data.
        per_worker = min(split[w1] / int(w1), tok[high])
        result["node_projection"] = 16 * per_worker
        print(f"projected tokens/s of one 16-core node: 16 x {per_worker:,.0f} = {16 * per_worker:,.0f} "
              "(goal >= 3,000,000)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=60.0, help="uncompressed corpus size (default 60)")
    parser.add_argument("--vocab-size", type=int, default=16000, help="SentencePiece pieces (default 16000)")
    parser.add_argument("--batches", type=int, default=40, help="timed batches of 8x512 per run (default 40)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path, best kept (default 3)")
    parser.add_argument("--resume-documents", type=int, nargs="*", default=[10**5, 10**6])
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[1, 2, 8, 64],
                        help="world sizes whose rank 0 is timed (default 1 2 8 64)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers (default 0 2)")
    parser.add_argument("--windows", type=int, default=2, help="shuffle windows timed per scaling run (default 2)")
    parser.add_argument("--skip-anchor", action="store_true", help="only the scaling and tokenize-corpus figures")
    parser.add_argument("--workdir", type=Path, help="keep corpus and tokenizer here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("xlmr_hf").setLevel(logging.WARNING)
    info = machine_info(PACKAGES, CODE, "data")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        corpus, tokenizer = work / "corpus", work / "tokenizer"
        if not corpus.exists():
            logger.info("writing a %.0f MB corpus to %s", args.size_mb, corpus)
            write_corpus(corpus, args.size_mb)
        if not (tokenizer / "tokenizer.json").exists():
            logger.info("training a %d-piece tokenizer", args.vocab_size)
            train_tokenizer(corpus, tokenizer, args.vocab_size)
        result: dict[str, Any] = {"machine": info, "settings": vars(args) | {"workdir": str(work)}}
        tokenized = work / "tokenized"
        result["tokenize_corpus"] = {}
        for workers in sorted({1, max(args.workers + [1])}):
            speed = tokenize_speed(corpus, tokenizer, tokenized, workers)
            result["tokenize_corpus"][str(workers)] = speed
            print(f"tokenize-corpus, {workers} worker(s): {speed['megabytes']:.1f} MB in {speed['seconds']:.1f} s = "
                  f"{speed['mb_per_s']:.2f} MB/s ({speed['mb_per_s_per_worker']:.2f} MB/s per worker)")
        result["scaling"] = scaling(corpus, tokenized, tokenizer, args)
        report_scaling(result["scaling"], args)
        if args.skip_anchor:
            if args.json:
                args.json.write_text(json.dumps(result, indent=2, default=str))
            return 0
        ours, theirs = [], []
        for round_ in range(args.repeats):
            order = [("ours", our_tokens, ours), ("anchor", hf_tokens, theirs)]
            for name, make, sink in order if round_ % 2 == 0 else order[::-1]:
                tokens, seconds = make(corpus, tokenizer, args.batches)()
                sink.append((tokens, seconds))
                logger.info("%s: %d tokens in %.2f s = %.0f tokens/s", name, tokens, seconds, tokens / seconds)
        result["throughput"] = {
            name: dict(zip(("tokens", "seconds"), min(runs, key=lambda r: r[1] / r[0])))
            for name, runs in (("ours", ours), ("anchor", theirs))}
        for row in result["throughput"].values():
            row["tokens_per_s"] = row["tokens"] / row["seconds"]
        ratio = result["throughput"]["ours"]["tokens_per_s"] / result["throughput"]["anchor"]["tokens_per_s"]
        result["throughput"]["ratio"] = ratio
        print(f"tokens/s  ours {result['throughput']['ours']['tokens_per_s']:,.0f}  anchor "
              f"{result['throughput']['anchor']['tokens_per_s']:,.0f}  ratio {ratio:.2f}x (goal >= 3x)")
        result["resume"] = {}
        for documents in args.resume_documents:
            for label, path, blocks in (("pre-tokenized", tokenized, 8192), ("online, shuffle_blocks 1024", corpus,
                                                                               1024)):
                other = our_resume(path, tokenizer, documents, blocks)
                result.setdefault("resume_variants", {})[f"{label} {documents}"] = other
                print(f"resume at {documents:,} documents, {label}: {other['seconds']:.3f} s")
            mine = our_resume(corpus, tokenizer, documents)
            logger.info("ours at %d documents: %s", documents, mine)
            hf = hf_resume(corpus, tokenizer, documents)
            logger.info("anchor at %d documents: %s", documents, hf)
            result["resume"][str(documents)] = {"ours": mine, "anchor": hf,
                                                "ratio": hf["seconds"] / mine["seconds"]}
            print(f"resume at {documents:,} documents  ours {mine['seconds']:.3f} s  anchor {hf['seconds']:.2f} s  "
                  f"anchor/ours {hf['seconds'] / mine['seconds']:.0f}x (goal: ours <= 1 s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
