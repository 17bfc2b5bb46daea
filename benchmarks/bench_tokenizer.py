#!/usr/bin/env python
"""Tokenizer training and encoding: ours (`xlmr_hf.tokenization`) vs the anchors (`tokenizers`, `sentencepiece`).

Two measurements, each printed as ours, the anchor and ours/anchor:

1. Training, per input size (``--sizes-mb``, uncompressed UTF-8 over 16 languages of the synthetic multilingual
   fixture, written as a CC-100 directory of ``<lang>.txt.xz``). Every measurement runs in a *fresh subprocess*, which
   reports its wall time, CPU time and peak RSS (VmHWM, reset with ``/proc/self/clear_refs`` after the imports, so
   it is the peak of the training itself; the RSS after the imports is shown separately).
   * ours: `train_tokenizer(corpus, out, TokenizerTrainingConfig(vocab_size=N), progress=False)`. Its wall time
     covers **everything the function does**: the counting pass, the α-sampling pass (xz decoding both times),
     SentencePiece training, the held-out statistics pass and saving. The ``.seconds`` split is shown. If
     SentencePiece says the vocabulary is too large for the sample, the run is repeated with the maximum it
     suggests, and the anchor gets that same size.
   * anchor: `tokenizers.Tokenizer(models.Unigram())` with an NFKC normaliser and a Metaspace pre-tokenizer,
     `UnigramTrainer(vocab_size=N, max_piece_length=16)`, `train_from_iterator` over every non-empty line of the
     same files (unsampled, read from the ``.xz`` files inside the timed region), then `save`.
2. Encoding throughput (tokens/s, ``add_special_tokens=False``) of the tokenizer trained on the largest input, on
   held-out text (``--encode-mb`` of `generate_documents` with another seed, one paragraph per line), in batches of
   ``--batch`` lines, at 1 and 2 threads, each in a fresh subprocess (``RAYON_NUM_THREADS`` must be set before
   `tokenizers` is imported; ``TOKENIZERS_PARALLELISM=true``). One untimed warm-up pass, then the best of
   ``--repeats`` repeats; a repeat is as many whole passes over the text as take ``--min-seconds`` (a SentencePiece
   pass over 2 MB takes well under 0.1 s), and its time is divided by the passes.
   * ours: the saved fast tokenizer, ``AutoTokenizer.from_pretrained(out)(batch)``; for information also its
     backend alone, ``backend_tokenizer.encode_batch`` (no conversion to Python lists by transformers).
   * anchor: ``SentencePieceProcessor(model_file=out/sentencepiece.bpe.model).encode(batch, num_threads=T)``.
   Before timing, the ids of the two are compared on every line under fairseq's mapping (SentencePiece id 0 -> 3,
   i -> i + 1); any difference aborts the run (exit status 1), except on lines holding conjoining Hangul jamo.

Run `python benchmarks/bench_tokenizer.py --help`; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import lzma
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULT, machine_info, run_worker

logger = logging.getLogger("bench_tokenizer")

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20
MB = 10**6
PACKAGES = ("tokenizers", "sentencepiece", "transformers", "xlmr-hf")
CODE = [ROOT / "src/xlmr_hf/tokenization"]  # its *.py files
JAMO = re.compile("[\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff]")  # conjoining Hangul jamo
SCRIPT = Path(__file__).resolve()


# ---------------------------------------------------------------------------------------------------------------
# Subprocess side
# ---------------------------------------------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE).group(1))


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, steal) clock ticks of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return user + nice + system + irq + softirq, steal


def _others(j0: tuple[int, int], j1: tuple[int, int], own_cpu: float, wall: float) -> dict[str, float]:
    """Cores used by other processes (busy minus our CPU time) and stolen by the hypervisor over ``wall`` s."""
    hz = os.sysconf("SC_CLK_TCK")
    others = max(0.0, ((j1[0] - j0[0]) / hz - own_cpu) / wall)
    return {"others_cores": others, "steal_cores": (j1[1] - j0[1]) / hz / wall}


def _measure(fn: Any) -> dict[str, Any]:
    """Run ``fn()`` and return its wall/CPU seconds and the process's RSS before and at its peak (MiB)."""
    import gc

    gc.collect()
    reset = _reset_peak()
    base = _status_kib("VmRSS")
    j0, cpu0, start = _cpu_jiffies(), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    cpu1, j1 = resource.getrusage(resource.RUSAGE_SELF), _cpu_jiffies()
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"value": value, "wall_s": wall, "cpu_s": cpu, "rss_base_mib": base / 1024, "rss_peak_mib": peak / 1024,
            "peak_reset": reset, **_others(j0, j1, cpu, wall)}


def worker_train_ours(p: dict[str, Any]) -> dict[str, Any]:
    from xlmr_hf.tokenization import (
        TokenizerTrainingConfig,
        TokenizerTrainingError,
        train_tokenizer,
    )

    config = TokenizerTrainingConfig(vocab_size=p["vocab_size"], seed=0)
    try:
        m = _measure(lambda: train_tokenizer(p["corpus"], p["out"], config, progress=False))
    except TokenizerTrainingError as error:
        found = re.search(r"<=\s*(\d+)", str(error))
        return {"error": str(error), "suggested_vocab_size": int(found.group(1)) if found else None}
    result = m.pop("value")
    m.update(seconds=result.seconds, vocab_size=len(result.tokenizer) - 2,
             sampled_sentences=sum(s.sampled_sentences for s in result.languages.values()),
             unique_sentences=sum(s.unique_sentences for s in result.languages.values()),
             sentences=sum(s.sentences for s in result.languages.values()))
    return m


def worker_train_anchor(p: dict[str, Any]) -> dict[str, Any]:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    def lines() -> Any:
        for path in sorted(Path(p["corpus"]).glob("*.txt.xz")):
            with lzma.open(path, "rt", encoding="utf-8") as f:
                yield from (line.rstrip("\n") for line in f if line.strip())

    def train() -> int:
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=p["vocab_size"], special_tokens=["<unk>", "<s>", "</s>"],
                                          unk_token="<unk>", max_piece_length=16, show_progress=False)
        tok.train_from_iterator(lines(), trainer=trainer)
        tok.save(str(Path(p["out"]) / "anchor-tokenizer.json"))
        return tok.get_vocab_size()

    m = _measure(train)
    m["vocab_size"] = m.pop("value")
    return m


def worker_encode(p: dict[str, Any]) -> dict[str, Any]:
    lines = Path(p["lines"]).read_text(encoding="utf-8").split("\n")
    batches = [lines[i:i + p["batch"]] for i in range(0, len(lines), p["batch"])]
    if p["who"] == "spm":
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(Path(p["tokenizer"]) / "sentencepiece.bpe.model"))
        threads = p["threads"]

        def one_pass() -> int:
            return sum(len(ids) for batch in batches for ids in sp.encode(batch, num_threads=threads))
    elif p["who"] == "fast":
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(p["tokenizer"])

        def one_pass() -> int:
            return sum(len(ids) for batch in batches for ids in tok(batch, add_special_tokens=False)["input_ids"])
    else:  # "backend": the tokenizers.Tokenizer inside the fast tokenizer, without transformers' list conversion
        from transformers import AutoTokenizer

        backend = AutoTokenizer.from_pretrained(p["tokenizer"]).backend_tokenizer

        def one_pass() -> int:
            return sum(len(e.ids) for batch in batches for e in backend.encode_batch(batch, add_special_tokens=False))

    start = time.perf_counter()
    tokens = one_pass()  # warm-up; a timed repeat is as many passes as take >= min_seconds
    passes = max(1, int(p["min_seconds"] / max(time.perf_counter() - start, 1e-6)) + 1)
    times, cpus, others = [], [], []
    for _ in range(p["repeats"]):
        j0, c0, start = _cpu_jiffies(), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(passes):
            if one_pass() != tokens:
                raise RuntimeError("token count changed between passes")
        wall = time.perf_counter() - start
        c1, j1 = resource.getrusage(resource.RUSAGE_SELF), _cpu_jiffies()
        cpu = c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime
        times.append(wall / passes)
        cpus.append(cpu / passes)
        others.append(_others(j0, j1, cpu, wall))
    best = min(range(len(times)), key=times.__getitem__)
    return {"tokens": tokens, "lines": len(lines), "passes_per_repeat": passes, "pass_times_s": times,
            "best_s": times[best], "tokens_per_s": tokens / times[best], "cores": cpus[best] / times[best],
            **{key: max(o[key] for o in others) for key in ("others_cores", "steal_cores")}}


WORKERS = {"train-ours": worker_train_ours, "train-anchor": worker_train_anchor, "encode": worker_encode}


# ---------------------------------------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------------------------------------
def write_corpus(directory: Path, total_mb: float) -> int:
    """The fixture's CC-100 directory, ``total_mb`` split evenly over its 16 languages; returns uncompressed bytes."""
    sys.path.insert(0, str(ROOT / "tests"))
    import fixtures.multilingual_text as m

    per_lang = int(total_mb * MB / len(m.LANGUAGES))
    paths = m.write_cc100_corpus(directory, {lang: per_lang for lang in m.LANGUAGES}, seed=0)
    return sum(len(lzma.decompress(path.read_bytes())) for path in paths.values())


def bench_training(work: Path, sizes_mb: list[float], vocab_size: int) -> list[dict[str, Any]]:
    rows = []
    for size in sizes_mb:
        corpus = work / f"corpus-{size:g}MB"
        start = time.perf_counter()
        n_bytes = write_corpus(corpus, size)
        logger.info("corpus %s: %.2f MB uncompressed (written in %.1f s)", corpus, n_bytes / MB,
                    time.perf_counter() - start)
        out, vocab, attempts = work / f"tok-{size:g}MB", vocab_size, []
        while True:
            logger.info("training ours at %g MB, vocab_size=%d (fresh subprocess)", size, vocab)
            ours = run_worker(SCRIPT, "train-ours", {"corpus": str(corpus), "out": str(out), "vocab_size": vocab})
            if "error" not in ours:
                break
            attempts.append({"vocab_size": vocab, "error": ours["error"]})
            logger.warning("vocab_size=%d rejected: %s", vocab, ours["error"])
            if not ours["suggested_vocab_size"] or ours["suggested_vocab_size"] >= vocab:
                raise RuntimeError(f"training failed: {ours['error']}")
            vocab = ours["suggested_vocab_size"]
        logger.info("training anchor (tokenizers UnigramTrainer) at %g MB, vocab_size=%d", size, vocab)
        anchor = run_worker(SCRIPT, "train-anchor", {"corpus": str(corpus), "out": str(out), "vocab_size": vocab})
        rows.append({"size_mb": size, "input_bytes": n_bytes, "vocab_size": vocab, "rejected": attempts,
                     "tokenizer": str(out), "ours": ours, "anchor": anchor})
    return rows


def make_encode_text(path: Path, total_mb: float) -> tuple[int, int]:
    sys.path.insert(0, str(ROOT / "tests"))
    import fixtures.multilingual_text as m

    per_lang = int(total_mb * MB / len(m.LANGUAGES))
    lines = [p for lang in m.LANGUAGES for doc in m.generate_documents(lang, per_lang, seed=12345) for p in doc]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return len(lines), len(text.encode("utf-8"))


def check_ids(tokenizer_dir: str, lines_path: Path) -> dict[str, int]:
    """Fast tokenizer ids == fairseq-mapped SentencePiece ids on every line (jamo lines only counted)."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    lines = lines_path.read_text(encoding="utf-8").split("\n")
    sp = spm.SentencePieceProcessor(model_file=str(Path(tokenizer_dir) / "sentencepiece.bpe.model"))
    fast = AutoTokenizer.from_pretrained(tokenizer_dir)(lines, add_special_tokens=False)["input_ids"]
    bad = jamo = 0
    for line, ids, sp_ids in zip(lines, fast, sp.encode(lines), strict=True):
        if ids != [3 if i == 0 else i + 1 for i in sp_ids]:
            if JAMO.search(line):
                jamo += 1
                continue
            if not bad:
                logger.error("ids differ on line %r:\n fast %s\n spm  %s", line[:200], ids[:40], sp_ids[:40])
            bad += 1
    return {"lines": len(lines), "mismatched": bad, "mismatched_jamo": jamo}


def bench_encoding(tokenizer_dir: str, lines_path: Path, batch: int, repeats: int,
                   min_seconds: float) -> list[dict[str, Any]]:
    rows = []
    for threads in (1, 2):
        env = {"RAYON_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "true"}
        row: dict[str, Any] = {"threads": threads}
        for who in ("fast", "backend", "spm"):
            logger.info("encoding: %s, %d thread(s) (fresh subprocess)", who, threads)
            row[who] = run_worker(SCRIPT, "encode", {"who": who, "tokenizer": tokenizer_dir, "lines": str(lines_path),
                                                     "threads": threads, "batch": batch, "repeats": repeats,
                                                     "min_seconds": min_seconds}, env)
        if len({row[who]["tokens"] for who in ("fast", "backend", "spm")}) != 1:
            raise RuntimeError(f"token counts differ between encoders: {row}")
        rows.append(row)
    return rows


def render(res: dict[str, Any]) -> str:
    info, out = res["machine"], []
    out += ["=" * 118,
            "xlmr_hf tokenizer (ours) vs tokenizers' UnigramTrainer / sentencepiece (anchors), fresh subprocess each",
            f"date {info['date_utc']} | CPU {info['cpu']} | {info['logical_cores']} logical cores | "
            f"RAM {info['mem_total_gib']} GiB",
            f"python {info['python']} | tokenizers {info['tokenizers']} | sentencepiece {info['sentencepiece']} | "
            f"transformers {info['transformers']} | xlmr_hf {info['xlmr-hf']}",
            f"command: {res['command']}",
            f"code: commit {info['commit']}, uncommitted changes in src/xlmr_hf/tokenization: "
            f"{info['tokenization_uncommitted']} | tokenization/*.py sha256 {info['tokenization_sha256']}",
            f"load average (1/5/15 min) at start {info['load_avg_start']}, at end {res['load_avg_end']} "
            "(> 2 means other processes competed for the cores)",
            "=" * 118, "",
            "TRAINING — wall s and peak RSS of one run in a fresh subprocess; input MB = uncompressed UTF-8 (10^6 B)",
            "  ours   = train_tokenizer(): count pass + α-sample pass + SentencePiece unigram + held-out statistics "
            "+ save (all included)",
            "  anchor = tokenizers Unigram + UnigramTrainer, train_from_iterator over the same lines (unsampled, "
            "no statistics) + save",
            "  rss0 = RSS after imports; peak = peak RSS during the run (VmHWM reset after imports); "
            "MiB/MB = (peak - rss0) / input MB; cores = CPU s / wall s",
            "  oth/steal = cores used by other processes / stolen by the hypervisor during the run (0/0 = clean; "
            "2 cores in all)",
            f"{'MB':>6} {'vocab':>6} {'who':>7} {'wall s':>8} {'count':>6} {'sample':>6} {'train':>7} "
            f"{'stats':>6} {'s/MB':>7} {'cores':>5} {'rss0':>6} {'peak':>6} {'MiB/MB':>7} {'oth/steal':>10}"]
    for row in res["training"]:
        mb = row["input_bytes"] / MB
        for who in ("ours", "anchor"):
            r = row[who]
            s = r.get("seconds", {})
            split = " ".join(f"{s[k]:>{w}.2f}" if k in s else f"{'—':>{w}}"
                             for k, w in (("count", 6), ("sample", 6), ("train", 7), ("statistics", 6)))
            out.append(f"{mb:>6.2f} {r['vocab_size']:>6} {who:>7} {r['wall_s']:>8.2f} {split} "
                       f"{r['wall_s'] / mb:>7.2f} {r['cpu_s'] / r['wall_s']:>5.2f} {r['rss_base_mib']:>6.0f} "
                       f"{r['rss_peak_mib']:>6.0f} {(r['rss_peak_mib'] - r['rss_base_mib']) / mb:>7.1f} "
                       f"{r['others_cores']:>5.2f}/{r['steal_cores']:.2f}")
        o, a = row["ours"], row["anchor"]
        out.append(f"{'':>6} {'':>6} {'ratio':>7}  ours/anchor: time {o['wall_s'] / a['wall_s']:.2f}x "
                   f"(SentencePiece step alone {o['seconds']['train'] / a['wall_s']:.2f}x), peak RSS "
                   f"{o['rss_peak_mib'] / a['rss_peak_mib']:.2f}x, above imports "
                   f"{(o['rss_peak_mib'] - o['rss_base_mib']) / (a['rss_peak_mib'] - a['rss_base_mib']):.2f}x")
        for rej in row["rejected"]:
            out.append(f"{'':>14} note: vocab_size={rej['vocab_size']} was rejected; used the suggested maximum")
    enc = res["encoding"]
    out += ["", f"ENCODING — tokens/s, add_special_tokens=False, batches of {res['args']['batch']} lines, best of "
            f"{res['args']['repeats']} repeats (each >= {res['args']['min_seconds']:g} s of whole passes) after a "
            f"warm-up pass; tokenizer trained on {enc['trained_on_mb']:g} MB (vocab {enc['vocab_size']})",
            f"  text: {enc['lines']:,} held-out lines, {enc['bytes'] / MB:.2f} MB, {enc['tokens']:,} tokens | id check "
            f"vs SentencePiece (fairseq mapping): {enc['check']['mismatched']} mismatched lines of "
            f"{enc['check']['lines']:,} (+{enc['check']['mismatched_jamo']} jamo lines skipped)",
            "  fast = AutoTokenizer(...)(batch); backend = its tokenizers.Tokenizer.encode_batch (information); "
            "spm = SentencePieceProcessor.encode(batch, num_threads)",
            f"{'threads':>7} {'fast tok/s':>12} {'backend tok/s':>14} {'spm tok/s':>12} {'fast/spm':>9} "
            f"{'backend/spm':>12} {'cores f/b/s':>15} {'max oth/steal':>14}"]
    for row in enc["rows"]:
        f, b, s = (row[k]["tokens_per_s"] for k in ("fast", "backend", "spm"))
        cores = "/".join(f"{row[k]['cores']:.2f}" for k in ("fast", "backend", "spm"))
        oth = max(row[k]["others_cores"] for k in ("fast", "backend", "spm"))
        steal = max(row[k]["steal_cores"] for k in ("fast", "backend", "spm"))
        out.append(f"{row['threads']:>7} {f:>12,.0f} {b:>14,.0f} {s:>12,.0f} {f / s:>8.2f}x {b / s:>11.2f}x "
                   f"{cores:>15} {f'{oth:.2f}/{steal:.2f}':>14}")
    out.append("=" * 118)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1.0, 4.0],
                        help="training input sizes, MB of uncompressed text over all 16 languages (default 1 4)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece pieces (default 8000)")
    parser.add_argument("--encode-mb", type=float, default=2.0, help="held-out text to encode, MB (default 2)")
    parser.add_argument("--batch", type=int, default=1000, help="lines per encode call (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed encode repeats, best kept (default 3)")
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="a timed repeat runs whole passes over the text for at least this long (default 1)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--workdir", type=Path, help="keep corpora and tokenizers here (default: a temp dir)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT + json.dumps(WORKERS[args.worker[0]](json.loads(args.worker[1]))), flush=True)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    res: dict[str, Any] = {"machine": machine_info(PACKAGES, CODE, "tokenization"), "command": "python " + " ".join(
        [os.path.relpath(__file__, ROOT), *(sys.argv[1:] if argv is None else argv)]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "worker"}}
    with tempfile.TemporaryDirectory(prefix="bench-tokenizer-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        res["training"] = bench_training(work, args.sizes_mb, args.vocab_size)
        last = res["training"][-1]
        lines_path = work / "encode.txt"
        n_lines, n_bytes = make_encode_text(lines_path, args.encode_mb)
        check = check_ids(last["tokenizer"], lines_path)
        logger.info("id check: %s", check)
        if check["mismatched"]:
            logger.error("fast tokenizer and SentencePiece disagree on %d lines; not timing", check["mismatched"])
            return 1
        rows = bench_encoding(last["tokenizer"], lines_path, args.batch, args.repeats, args.min_seconds)
        res["encoding"] = {"trained_on_mb": last["size_mb"], "vocab_size": last["ours"]["vocab_size"],
                           "lines": n_lines, "bytes": n_bytes, "tokens": rows[0]["spm"]["tokens"], "check": check,
                           "rows": rows}
    res["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
