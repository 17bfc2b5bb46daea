#!/usr/bin/env python
"""CC-100 reader throughput: ours (`xlmr_hf.data.load_cc100`) vs `datasets`' text loader plus grouping lines into
documents, same files, same process.

The corpus is the synthetic 16-language fixture (`tests/fixtures/multilingual_text.py`) written as a CC-100 directory
of ``<lang>.txt.xz`` (``--size-mb`` of uncompressed UTF-8 split evenly, xz preset 1), so nothing is downloaded.
Every figure is the whole corpus read once, single process, in documents/s and uncompressed MB/s:

* **ours**: ``for row in load_cc100(dir)`` (streaming `IterableDataset`, rows ``{id, lang, text}``).
* **anchor**: ``load_dataset("text", data_files=files, streaming=True, split="train")`` yields one row per line;
  consecutive non-blank lines are joined with ``"\\n"`` into a document, a blank or whitespace-only line ends it
  (the same rules as ours). No ids.

For information (not ratios): ours without `datasets` (`iter_cc100_documents` over the files), the text loader's
``sample_by="paragraph"`` (splits on ``"\\n\\n"``: right on a clean file, wrong on runs of blank lines or
whitespace-only lines), xz decompression alone (the floor), and the cost of `IterableDataset.load_state_dict`
resuming inside a file (datasets re-reads the file up to the saved document).

Timed runs alternate ours / anchor (order swapped each round); the best of ``--repeats`` is kept. Before timing,
ours and the anchor must produce the same documents (count and SHA-256 of the texts): otherwise exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import lzma
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from _common import machine_info

logger = logging.getLogger("bench_cc100_reader")

ROOT = Path(__file__).resolve().parent.parent
MB = 10**6
PACKAGES = ("datasets", "fsspec", "pyarrow")
CODE = [ROOT / "src/xlmr_hf/data/cc100.py"]


def _cpu_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return user + nice + system + irq + softirq, steal


def timed(fn: Callable[[], Any]) -> dict[str, Any]:
    """Wall and CPU seconds of ``fn()``, and the cores other processes used and the hypervisor stole meanwhile."""
    j0, r0, start = _cpu_jiffies(), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    r1, j1 = resource.getrusage(resource.RUSAGE_SELF), _cpu_jiffies()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    hz = os.sysconf("SC_CLK_TCK")
    return {"value": value, "wall_s": wall, "cpu_s": cpu,
            "others_cores": max(0.0, ((j1[0] - j0[0]) / hz - cpu) / wall), "steal_cores": (j1[1] - j0[1]) / hz / wall}


def wait_idle(limit_s: float, threshold: float = 0.15) -> float:
    """Wait up to ``limit_s`` for other processes to use fewer than ``threshold`` cores; returns what they used."""
    deadline, others = time.monotonic() + limit_s, 0.0
    while True:
        j0, r0 = _cpu_jiffies(), resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(0.5)
        j1, r1 = _cpu_jiffies(), resource.getrusage(resource.RUSAGE_SELF)
        own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        others = max(0.0, ((j1[0] - j0[0]) / os.sysconf("SC_CLK_TCK") - own) / 0.5)
        if others < threshold or time.monotonic() > deadline:
            return others


def digest(documents: Iterable[str]) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for text in documents:
        h.update(text.encode())
        h.update(b"\0")
        n += 1
    return n, h.hexdigest()[:16]


def group_lines(rows: Iterable[dict[str, str]]) -> Iterator[str]:
    """The anchor's grouping: blank or whitespace-only line = document boundary."""
    paragraphs: list[str] = []
    for row in rows:
        line = row["text"]
        if line.strip():
            paragraphs.append(line)
        elif paragraphs:
            yield "\n".join(paragraphs)
            paragraphs = []
    if paragraphs:
        yield "\n".join(paragraphs)


def runners(corpus: Path, files: list[str]) -> dict[str, Callable[[], Iterator[str]]]:
    from datasets import load_dataset

    from xlmr_hf.data.cc100 import iter_cc100_documents, load_cc100

    def xz_only() -> Iterator[str]:
        for file in files:
            with lzma.open(file) as f:
                while f.read(1 << 20):
                    pass
        return iter(())

    return {
        "ours": lambda: (row["text"] for row in load_cc100(corpus)),
        "anchor": lambda: group_lines(load_dataset("text", data_files=files, streaming=True, split="train")),
        "ours, no datasets": lambda: (d for file in files for d in iter_cc100_documents(file)),
        "text sample_by=paragraph": lambda: (row["text"] for row in load_dataset(
            "text", data_files=files, streaming=True, split="train", sample_by="paragraph")),
        "xz decompression only": xz_only,
    }


def bench_resume(corpus: Path, per_file: int) -> dict[str, Any]:
    """Seconds to the first row after `load_state_dict` at document 0 and at the last document of a file."""
    from xlmr_hf.data.cc100 import load_cc100

    out = {}
    for name, index in (("file start", 0), ("last document of a file", per_file - 1)):
        state = {"examples_iterable": {"shard_idx": 1, "shard_example_idx": index, "type": "ExamplesIterable"},
                 "epoch": 0}

        def first_row(state: dict[str, Any] = state) -> str:
            dataset = load_cc100(corpus)
            dataset.load_state_dict(state)
            return next(iter(dataset))["id"]

        best = min((timed(first_row) for _ in range(3)), key=lambda r: r["wall_s"])
        out[name] = {"document": index, "first_id": best["value"], "wall_s": best["wall_s"]}
    return out


def render(res: dict[str, Any]) -> str:
    m, c = res["machine"], res["corpus"]
    bar = "=" * 110
    lines = [
        bar,
        "CC-100 reader: xlmr_hf load_cc100 (ours) vs datasets' text loader + grouping lines into documents (anchor)",
        f"date {m['date_utc']} | CPU {m['cpu']} | {m['logical_cores']} logical cores | RAM {m['mem_total_gib']} GiB",
        f"python {m['python']} | datasets {m['datasets']} | fsspec {m['fsspec']} | pyarrow {m['pyarrow']}",
        f"command: {res['command']}",
        (f"code: commit {m['commit']}, uncommitted changes in src/xlmr_hf/data/cc100.py: {m['reader_uncommitted']} | "
         f"cc100.py sha256 {m['reader_sha256']}"),
        f"load average (1/5/15 min) at start {m['load_avg_start']}, at end {res['load_avg_end']}",
        bar,
        (f"corpus: {c['files']} files (<lang>.txt.xz, 16 languages), {c['bytes'] / MB:.1f} MB uncompressed, "
         f"{c['compressed'] / MB:.1f} MB xz, {c['documents']:,} documents, {c['lines']:,} lines"),
        (f"check: ours and anchor yield the same documents: {res['check']['equal']} "
         f"(ours {res['check']['ours']}, anchor {res['check']['anchor']})"),
        (f"single process, whole corpus once, best of {res['args']['repeats']} (ours/anchor alternating); "
         "cores = CPU s / wall s; oth/steal = cores used by other processes / stolen by the hypervisor during the "
         "kept run"),
        f"{'reader':<28}{'wall s':>9}{'docs/s':>12}{'MB/s':>9}{'cores':>7}{'oth/steal':>11}  documents",
    ]
    for name, r in res["runs"].items():
        docs = f"{r['documents']:,}" if r["documents"] else "-"
        rate = f"{r['documents'] / r['wall_s']:,.0f}" if r["documents"] else "-"
        lines.append(f"{name:<28}{r['wall_s']:>9.3f}{rate:>12}{c['bytes'] / MB / r['wall_s']:>9.1f}"
                     f"{r['cpu_s'] / r['wall_s']:>7.2f}{r['others_cores']:>6.2f}/{r['steal_cores']:.2f}  {docs}")
    ours, anchor = res["runs"]["ours"], res["runs"]["anchor"]
    paired = sorted(a["wall_s"] / o["wall_s"] for o, a in zip(res["all_runs"]["ours"], res["all_runs"]["anchor"]))
    lines.append(f"ratio ours/anchor: documents/s {anchor['wall_s'] / ours['wall_s']:.2f}x of the best runs "
                 f"(time {ours['wall_s'] / anchor['wall_s']:.2f}x); per round (adjacent runs) median "
                 f"{paired[len(paired) // 2]:.2f}x, range {paired[0]:.2f}-{paired[-1]:.2f}x")
    lines.append("resume (IterableDataset.load_state_dict into file 2 of the corpus, time to the first row, best of 3):")
    for name, r in res["resume"].items():
        lines.append(f"  at {name} (document {r['document']:,}): {r['wall_s']:.3f} s -> {r['first_id']}")
    lines.append(bar)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=64.0,
                        help="uncompressed MB over the 16 fixture languages, one file each (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per reader, best kept (default 5)")
    parser.add_argument("--wait-idle", type=float, default=30.0,
                        help="before each timed run, wait up to this many seconds for other processes to go below "
                             "0.15 cores (default 30)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--workdir", type=Path, help="keep the corpus here (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("datasets").setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT / "tests"))
    import fixtures.multilingual_text as fixture

    res: dict[str, Any] = {"machine": machine_info(PACKAGES, CODE, "reader"), "command": "python " + " ".join(
        [os.path.relpath(__file__, ROOT), *(sys.argv[1:] if argv is None else argv)]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-cc100-") as tmp:
        corpus = args.workdir or Path(tmp)
        per_lang = int(args.size_mb * MB / len(fixture.LANGUAGES))
        logger.info("writing %d x %.1f MB of fixture text to %s", len(fixture.LANGUAGES), per_lang / MB, corpus)
        paths = fixture.write_cc100_corpus(corpus, {lang: per_lang for lang in fixture.LANGUAGES}, seed=0)
        files = sorted(str(p) for p in paths.values())
        raw = [lzma.decompress(Path(f).read_bytes()) for f in files]
        per_file = len([d for d in re.split(rb"\n\n+", raw[1]) if d.strip()])
        res["corpus"] = {"files": len(files), "bytes": sum(map(len, raw)),
                         "compressed": sum(Path(f).stat().st_size for f in files),
                         "documents": sum(len([d for d in re.split(rb"\n\n+", r) if d.strip()]) for r in raw),
                         "lines": sum(len([x for x in r.split(b"\n") if x.strip()]) for r in raw)}
        del raw
        run = runners(corpus, files)
        check = {name: digest(run[name]()) for name in ("ours", "anchor", "ours, no datasets")}
        res["check"] = {"equal": len(set(check.values())) == 1, **{k: list(v) for k, v in check.items()}}
        if not res["check"]["equal"]:
            logger.error("readers disagree: %s", check)
            print(json.dumps(res["check"], indent=2))
            return 1
        order = list(run)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
        for repeat in range(args.repeats):
            for name in order if repeat % 2 == 0 else order[::-1]:
                others = wait_idle(args.wait_idle)
                logger.info("repeat %d: %s (other processes before: %.2f cores)", repeat + 1, name, others)
                r = timed(lambda name=name: sum(1 for _ in run[name]()))
                results[name].append({"documents": r.pop("value"), **r})
        res["runs"] = {name: min(rs, key=lambda r: r["wall_s"]) for name, rs in results.items()}
        res["all_runs"] = results
        logger.info("resume")
        res["resume"] = bench_resume(corpus, per_file)
    res["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
