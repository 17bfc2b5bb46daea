"""End to end: the corpus builders on hand-generated multilingual plain-text, JSONL and WET inputs — every check runs
on the datatrove builder (`build_corpus_datatrove`, what ``xlmr-hf build-corpus`` runs) and on the one-process
`build_corpus`.

Twelve languages in ten scripts (Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai, Han, kana, Hangul) are
spread over four inputs of three formats, with repeated paragraphs (boilerplate variants that differ only in case,
digits and punctuation; whole documents copied into a later file). Checked: routing accuracy, exact dedup counts,
manifest consistency, CC-100 readability, byte-identical output for 1 and 2 workers, reruns and ``languages``.
"""

from __future__ import annotations

import gzip
import json
import lzma
import random
import shutil
from collections import Counter
from pathlib import Path

import fixtures.multilingual_text as text
import pytest

from xlmr_hf.corpus import cleaning
from xlmr_hf.corpus.cleaning import STAGES, CorpusBuildConfig, build_corpus
from xlmr_hf.corpus.distributed import ExecutorSettings, build_corpus_datatrove
from xlmr_hf.corpus.readers import normalize_paragraph
from xlmr_hf.tokenization.corpus import discover_corpus, iter_lines

LANGS = ("en", "fr", "de", "ru", "el", "ar", "he", "hi", "th", "zh", "ja", "ko")
BOILERPLATE = [  # each pair has the same dedup key (case, digits, punctuation differ)
    ("Copyright © 2024 Example Ltd. All rights reserved.", "copyright © 1999 example ltd — all rights reserved"),
    ("Subscribe to our newsletter!", "SUBSCRIBE to our newsletter…"),
    ("Cookies help us deliver our services (read more).", "Cookies help us deliver our services: read more"),
]


def make_inputs(directory: Path) -> tuple[list[Path], list[list[tuple[str, list[str]]]]]:
    """Four inputs and, for each, its documents as the builder will see them: ``(true language, paragraphs)``."""
    rng = random.Random(7)
    documents = [(lang, doc) for i, lang in enumerate(LANGS) for doc in text.generate_documents(lang, 12_000, seed=i)]
    rng.shuffle(documents)
    parts: list[list[tuple[str, list[str]]]] = [[], [], [], []]
    for i, (lang, doc) in enumerate(documents):
        doc = list(doc)
        if i % 5 == 0:  # boilerplate at the end of every 5th document, alternating variants
            doc.append(BOILERPLATE[i % 3][(i // 5) % 2])
        parts[i % 4].append((lang, doc))
    parts[3].extend(parts[0][:3])  # whole documents repeated in a later file
    parts[2].append(("en", [" ", "\t"]))  # a record that normalises to nothing
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "a.txt", directory / "b.jsonl.gz", directory / "c.warc.wet.gz", directory / "d.txt.xz"]
    paths[0].write_text("".join("\n".join(d) + "\n\n" for _, d in parts[0]), encoding="utf-8")
    rows = [json.dumps({"id": i, "content": "\n".join(d), "lang_hint": "?"}, ensure_ascii=False)
            for i, (_, d) in enumerate(parts[1])]
    paths[1].write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    records = [b"WARC/1.0\r\nWARC-Type: warcinfo\r\nContent-Length: 12\r\n\r\nisPartOf: x\n\r\n\r\n"]
    for i, (_, d) in enumerate(parts[2]):
        payload = "\n".join([f"Page title {i}", *d]).encode()
        head = (f"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: http://site{i}.example/\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(payload)}\r\n\r\n")
        records.append(head.encode() + payload + b"\r\n\r\n")
    paths[2].write_bytes(b"".join(gzip.compress(r) for r in records))
    paths[3].write_bytes(lzma.compress("".join("\n".join(d) + "\n\n" for _, d in parts[3]).encode()))
    return paths, parts


def expected_dedup(parts) -> tuple[int, int, int]:
    """(paragraphs after normalisation, paragraphs removed, documents removed) by a plain keep-first set."""
    seen: set[str] = set()
    total = removed = docs_removed = 0
    for part in parts:
        for _, doc in part:
            paragraphs = [q for q in (normalize_paragraph(p) for p in doc) if q]
            if not paragraphs:
                continue
            kept = 0
            for p in paragraphs:
                key = cleaning.normalize_for_dedup(p)
                total += 1
                if key in seen:
                    removed += 1
                else:
                    seen.add(key)
                    kept += 1
            docs_removed += kept == 0
    return total, removed, docs_removed


def read_cc100(path: Path) -> list[list[str]]:
    data = lzma.decompress(path.read_bytes()).decode()
    assert data.endswith("\n\n") and "\n\n\n" not in data and not data.startswith("\n")
    return [doc.split("\n") for doc in data[:-2].split("\n\n")]


def build(builder: str, paths, out: Path, config: CorpusBuildConfig, workers: int = 1):
    """One build with ``builder``: the datatrove jobs (with ``workers > 1``: 3 tasks on ``workers`` processes) or
    the one-process builder (with ``workers`` pool processes)."""
    if builder == "datatrove":
        settings = ExecutorSettings(tasks=3 if workers > 1 else 1, workers=workers)
        return build_corpus_datatrove(paths, out, config, settings)
    config.workers = workers
    return build_corpus(paths, out, config, progress=False)


@pytest.fixture(scope="module", params=["datatrove", "one-process"])
def corpus(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("build_corpus")
    paths, parts = make_inputs(root / "inputs")
    report = build(request.param, paths, root / "out1", CorpusBuildConfig(jsonl_text_field="content"))
    return root, paths, parts, report


def test_routing_accuracy(corpus):
    root, _, parts, report = corpus
    truth = {normalize_paragraph(p): lang for part in parts for lang, doc in part for p in doc}
    for variants in BOILERPLATE:
        for variant in variants:
            truth.pop(normalize_paragraph(variant), None)
    correct = routed = 0
    for output in report.outputs:
        for doc in read_cc100(root / "out1" / output["path"]):
            votes = Counter(truth[p] for p in doc if p in truth)
            routed += 1
            correct += votes.most_common(1)[0][0] == output["language"]
    lid = report.stages[STAGES.index("language_id")]
    accuracy = correct / lid.documents_in  # documents dropped below the threshold count as misrouted
    print(f"\nrouting accuracy: {correct}/{lid.documents_in} = {accuracy:.4f} "
          f"({routed} routed, {lid.documents_removed} below threshold; documents >= 300 chars)")
    assert lid.documents_in >= 100 and accuracy >= 0.95
    assert {o["language"] for o in report.outputs} == set(LANGS)


def test_dedup_counts_are_exact(corpus):
    _, _, parts, report = corpus
    total, removed, docs_removed = expected_dedup(parts)
    dedup = report.stages[STAGES.index("dedup")]
    assert (dedup.paragraphs_in, dedup.paragraphs_removed, dedup.documents_removed) == (total, removed, docs_removed)
    assert removed >= 3 + sum(len(doc) for _, doc in parts[0][:3])  # boilerplate variants + repeated documents
    assert docs_removed >= 3


def test_manifest_counts_are_consistent(corpus):
    root, paths, _, _report = corpus
    manifest = json.loads((root / "out1" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["line_joiner"] == "" and manifest["settings"]["lid_threshold"] == 0.5
    assert manifest["settings"]["lid_granularity"] == "document" and manifest["settings"]["normalization"] == "NFC"
    assert len(manifest["lid_model"]["sha256"]) == 64 and manifest["lid_model"]["path"].endswith("lid.176.ftz")
    previous = None
    for stage in manifest["stages"]:
        assert stage["documents_in"] - stage["documents_removed"] + stage["documents_added"] == stage["documents_out"]
        assert stage["paragraphs_in"] - stage["paragraphs_removed"] == stage["paragraphs_out"]
        if previous is not None:
            assert (stage["documents_in"], stage["paragraphs_in"]) == (previous["documents_out"], previous["paragraphs_out"])
        previous = stage
    languages = manifest["languages"]
    for key in ("documents", "paragraphs"):
        assert sum(c[key] for c in languages.values()) == manifest["stages"][-1][f"{key}_out"]
        assert sum(o[key] for o in manifest["outputs"]) == manifest["stages"][-1][f"{key}_out"]
    for c in languages.values():
        assert c["identified_documents"] - c["below_threshold_documents"] - c["not_selected_documents"] - \
            c["perplexity_removed_documents"] == c["documents"]
    assert [i["status"] for i in manifest["inputs"]] == ["done"] * 4
    assert [Path(i["path"]).name for i in manifest["inputs"]] == [p.name for p in paths]
    assert sum(i["documents"] for i in manifest["inputs"]) == manifest["totals"]["documents_read"]
    assert manifest["inputs"][2]["read"]["skipped_records"] == 1  # warcinfo
    assert manifest["totals"]["documents_out"] == manifest["stages"][-1]["documents_out"]


def test_output_is_cc100(corpus):
    root, _, _, report = corpus
    out = root / "out1"
    files = discover_corpus(out)  # the tokenizer trainer's CC-100 reader accepts the directory
    assert sorted(files) == sorted(LANGS)
    for output in report.outputs:
        path = out / output["path"]
        lines = list(iter_lines(path))
        docs = read_cc100(path)
        assert len(docs) == output["documents"] and sum(map(len, docs)) == output["paragraphs"]
        assert sum(1 for line in lines if not line) == output["documents"]
        assert all(line == " ".join(line.split()) for line in lines)  # normalised: no stray whitespace
        assert len(lzma.decompress(path.read_bytes())) == output["bytes"]


def test_two_workers_give_identical_bytes(corpus):
    root, paths, _, report = corpus
    builder = "datatrove" if "executor" in report.environment else "one-process"
    parallel = build(builder, paths, root / "out2", CorpusBuildConfig(jsonl_text_field="content"), workers=2)
    assert [o["path"] for o in parallel.outputs] == [o["path"] for o in report.outputs]
    for output in report.outputs:
        assert (root / "out2" / output["path"]).read_bytes() == (root / "out1" / output["path"]).read_bytes()
    assert [s.__dict__ for s in parallel.stages] == [s.__dict__ for s in report.stages]
    if builder == "datatrove":
        assert parallel.environment["executor"] == "local" and parallel.languages == report.languages
    else:
        assert parallel.environment["start_method"] in ("forkserver", "spawn")


def test_rerun_skips_finished_inputs(tmp_path, monkeypatch):  # the datatrove builder's: test_build_corpus_datatrove
    paths, _ = make_inputs(tmp_path / "inputs")
    config = CorpusBuildConfig(jsonl_text_field="content", compress_preset=1)
    first = build_corpus(paths, tmp_path / "out", config, progress=False)
    reads: list[str] = []
    original = cleaning.read_documents

    def counting(path, *args, **kwargs):
        reads.append(Path(path).name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(cleaning, "read_documents", counting)
    second = build_corpus(paths, tmp_path / "out", config, progress=False)
    assert reads == [] and [i["status"] for i in second.inputs] == ["reused"] * 4
    assert [o["sha256"] for o in second.outputs] == [o["sha256"] for o in first.outputs]
    # a changed last input: only it is read again (both passes); earlier inputs keep their results
    with lzma.open(paths[3], "at", encoding="utf-8") as handle:  # a second xz stream
        handle.write("Dieser Absatz wurde erst später an die letzte Datei angehängt, damit sie sich ändert.\n"
                     "Die Bibliothek im Stadtzentrum öffnet am Montag wieder, nachdem das Dach repariert wurde.\n"
                     "Viele Leser freuen sich darauf, endlich wieder in den hellen Räumen lernen zu können.\n"
                     "Am Abend gibt es dort eine Lesung für Kinder und Eltern aus der ganzen Nachbarschaft.\n\n")
    third = build_corpus(paths, tmp_path / "out", config, progress=False)
    assert reads == ["d.txt.xz", "d.txt.xz"]
    assert [i["status"] for i in third.inputs] == ["reused", "reused", "reused", "done"]
    assert third.languages["de"]["documents"] == first.languages["de"]["documents"] + 1
    # a changed setting of pass 2 only: hashes reused, every input filtered again
    reads.clear()
    fourth = build_corpus(paths, tmp_path / "out", CorpusBuildConfig(jsonl_text_field="content", compress_preset=1,
                                                                     lid_threshold=0.6), progress=False)
    assert sorted(reads) == sorted(p.name for p in paths)
    assert all(i["hashes_reused"] and i["status"] == "done" for i in fourth.inputs)
    assert len(list((tmp_path / "out" / ".work" / "p2").iterdir())) == 4  # stale results cleaned up


def test_languages_filter(corpus, tmp_path):
    _, paths, _, report = corpus
    builder = "datatrove" if "executor" in report.environment else "one-process"
    config = CorpusBuildConfig(jsonl_text_field="content", languages=["ru", "zh", "ar"], compress_preset=1)
    filtered = build(builder, paths, tmp_path / "out", config)
    assert sorted(o["path"] for o in filtered.outputs) == ["ar.txt.xz", "ru.txt.xz", "zh.txt.xz"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file()) == [
        "ar.txt.xz", "manifest.json", "ru.txt.xz", "zh.txt.xz"]
    for lang in ("ru", "zh", "ar"):
        assert filtered.languages[lang]["documents"] == report.languages[lang]["documents"]
    assert filtered.languages["en"]["not_selected_documents"] == report.languages["en"]["documents"]
    not_selected = sum(c["not_selected_documents"] for c in filtered.languages.values())
    lid = filtered.stages[STAGES.index("language_id")]
    assert lid.documents_removed == not_selected + report.stages[STAGES.index("language_id")].documents_removed
    # rerunning into the same directory without the filter adds the other files; with it again removes them
    shutil.rmtree(tmp_path / "out" / (".work-datatrove" if builder == "datatrove" else ".work"))
    build(builder, paths, tmp_path / "out", CorpusBuildConfig(jsonl_text_field="content", compress_preset=1))
    assert len(list((tmp_path / "out").glob("*.txt.xz"))) == len(LANGS)
    build(builder, paths, tmp_path / "out", config)
    assert len(list((tmp_path / "out").glob("*.txt.xz"))) == 3


def test_cli_build_corpus_writes_cc100_and_prints_the_manifest(tmp_path: Path, capsys) -> None:
    from xlmr_hf.cli import main
    from xlmr_hf.data import load_cc100

    source = tmp_path / "raw.txt"
    documents = [text.generate_documents(lang, 1500, seed=7)[0] for lang in ("en", "ru", "zh")]
    source.write_text("\n\n".join("\n".join(doc) for doc in documents) + "\n", encoding="utf-8")
    out = tmp_path / "cc100"
    rc = main(["build-corpus", "--input", str(source), "--output", str(out), "--min-document-chars", "100",
               "--compress-preset", "1"])
    printed = capsys.readouterr().out
    assert rc == 0 and "manifest.json" in printed
    assert sorted(p.name for p in out.glob("*.txt.xz")) == ["en.txt.xz", "ru.txt.xz", "zh.txt.xz"]
    rows = list(load_cc100(out))
    assert sorted(row["lang"] for row in rows) == ["en", "ru", "zh"]
    by_lang = {row["lang"]: row["text"] for row in rows}
    assert by_lang["ru"] == "\n".join(documents[1])


def test_cli_build_corpus_bad_language_exits_2(tmp_path: Path, capsys) -> None:
    from xlmr_hf.cli import main

    (tmp_path / "raw.txt").write_text("hello\n", encoding="utf-8")
    rc = main(["build-corpus", "--input", str(tmp_path / "raw.txt"), "--output", str(tmp_path / "o"),
               "--languages", "xx"])
    err = capsys.readouterr().err
    assert rc == 2 and "xlmr-hf build-corpus: error:" in err and "xx" in err and "Traceback" not in err


def test_an_output_holding_other_files_is_refused_unless_overwritten(tmp_path: Path, capsys) -> None:
    from xlmr_hf.cli import main

    source = tmp_path / "raw.txt"
    documents = [text.generate_documents(lang, 1500, seed=7)[0] for lang in ("en", "ru")]
    source.write_text("\n\n".join("\n".join(doc) for doc in documents) + "\n", encoding="utf-8")
    out = tmp_path / "cc100"
    out.mkdir()
    (out / "en.txt").write_text("someone else's corpus\n", encoding="utf-8")
    build = ["build-corpus", "--input", str(source), "--output", str(out), "--min-document-chars", "100"]
    assert main(build) == 2
    err = capsys.readouterr().err
    assert "holds files no earlier build wrote there (en.txt); choose an empty directory or set overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["en.txt"]  # untouched
    assert main([*build, "--overwrite", "true"]) == 0
    assert sorted(p.name for p in out.glob("*.txt*")) == ["en.txt.xz", "ru.txt.xz"]  # no en.txt beside en.txt.xz
    assert main(build) == 0  # a rerun into the build's own output is fine
