"""The CC-100 reader: document reconstruction, ids, sources, filters, the Arrow `Dataset`, statistics and errors."""

from __future__ import annotations

import json
import logging
import lzma
import os
import pickle
import random
from pathlib import Path

import fixtures.multilingual_text as text  # tests/ is on sys.path via tests/conftest.py
import fsspec
import pytest

from xlmr_hf.data import cc100
from xlmr_hf.data.cc100 import (
    CC100_LANGUAGES,
    CC100Error,
    CC100ReadError,
    LanguageStatistics,
    ReadReport,
    cc100_files,
    cc100_statistics,
    iter_cc100_documents,
    load_cc100,
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(lzma.compress(data, preset=1) if path.name.endswith(".xz") else data)
    return path


def reference_documents(data: bytes) -> list[str]:
    """The documented rules, the slow obvious way: universal newlines, blank = empty or whitespace-only."""
    lines = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    documents, paragraphs = [], []
    for line in lines:
        if line.strip():
            paragraphs.append(line)
        elif paragraphs:
            documents.append("\n".join(paragraphs))
            paragraphs = []
    if paragraphs:
        documents.append("\n".join(paragraphs))
    return documents


def fixture_documents(lang: str, n_bytes: int, seed: int = 0) -> list[str]:
    return ["\n".join(doc) for doc in text.generate_documents(lang, n_bytes, seed)]


# ------------------------------------------------------------------------------------------------ reconstruction
CASES = {
    "plain": (b"a\nb\n\nc\n\n", ["a\nb", "c"]),
    "no trailing newline": (b"a\nb\n\nc", ["a\nb", "c"]),
    "no trailing newline, one line": (b"only", ["only"]),
    "crlf": (b"a\r\nb\r\n\r\nc\r\n\r\n", ["a\nb", "c"]),
    "lone cr": (b"a\rb\r\rc", ["a\nb", "c"]),
    "mixed line ends": (b"a\r\nb\rc\n\r\n\rd", ["a\nb\nc", "d"]),
    "run of blank lines": (b"a\n\n\n\n\nb\n\n\n", ["a", "b"]),
    "whitespace-only lines": (b"a\n \t \n\xe3\x80\x80\nb\n\x0c\nc", ["a", "b", "c"]),
    "leading blank lines": (b"\n\n  \r\n\na\n\nb\n", ["a", "b"]),
    "only blank lines": (b"\n \n\r\n\t\n", []),
    "empty file": (b"", []),
    "paragraphs kept verbatim": (b"  lead and trail  \n\tx\xe2\x80\xa8y\x0cz\n\n", ["  lead and trail  \n\tx\u2028y\x0cz"]),
    "multilingual": ("Grüße\nПривет\n\nこんにちは\n\n".encode(), ["Grüße\nПривет", "こんにちは"]),
}


@pytest.mark.parametrize("suffix", [".txt.xz", ".txt"])
@pytest.mark.parametrize("case", list(CASES))
def test_documents_reconstructed_exactly(tmp_path, case, suffix):
    data, expected = CASES[case]
    path = write(tmp_path / f"en{suffix}", data)
    report = ReadReport(str(path))
    assert list(iter_cc100_documents(path, report=report)) == expected
    assert reference_documents(data) == expected
    assert (report.documents, report.bytes, report.invalid_utf8_lines, report.error) == (len(expected), len(data), 0,
                                                                                       None)
    assert report.lines == sum(doc.count("\n") + 1 for doc in expected)


@pytest.mark.parametrize("chunk", [1, 2, 5, 64])
def test_random_inputs_match_reference_at_every_chunk_boundary(tmp_path, monkeypatch, chunk):
    """Blocks cut anywhere (inside CRLF, inside a UTF-8 character, inside a blank-line run) change nothing."""
    monkeypatch.setattr(cc100, "_CHUNK", chunk)
    pieces = ["a", "bc", "é", "字", " ", "\t", "\u3000", "\n", "\n", "\n", "\r", "\r\n", "\u2028", "\x0c"]
    for seed in range(40):
        rng = random.Random(seed)
        data = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 120))).encode()
        path = write(tmp_path / ("en.txt.xz" if seed % 2 else "en.txt"), data)
        assert list(iter_cc100_documents(path)) == reference_documents(data), (seed, data)


def test_multilingual_fixture_corpus_round_trips(tmp_path):
    sizes = {"en": 20_000, "zh": 8_000, "ar": 8_000, "th": 8_000, "hi": 8_000}
    text.write_cc100_corpus(tmp_path, sizes, seed=3)
    rows = list(load_cc100(tmp_path))
    expected = {lang: fixture_documents(lang, n, seed=3) for lang, n in sizes.items()}
    assert [row["lang"] for row in rows] == [lang for lang in sorted(sizes) for _ in expected[lang]]
    for lang in sizes:
        assert [row["text"] for row in rows if row["lang"] == lang] == expected[lang]


# ------------------------------------------------------------------------------------------------ ids and sources
@pytest.fixture
def corpus(tmp_path) -> Path:
    directory = tmp_path / "cc100"
    directory.mkdir()
    write(directory / "en.txt.xz", b"e0 p1\ne0 p2\n\ne1\n\n")
    write(directory / "fr.txt", b"f0\n\n\nf1\n\nf2")
    write(directory / "zh-Hans.txt.xz", "中文\n\n".encode())
    (directory / "README.md").write_text("not a corpus file")
    return directory


EXPECTED_ROWS = [
    {"id": "en/en.txt.xz/0", "lang": "en", "text": "e0 p1\ne0 p2"},
    {"id": "en/en.txt.xz/1", "lang": "en", "text": "e1"},
    {"id": "fr/fr.txt/0", "lang": "fr", "text": "f0"},
    {"id": "fr/fr.txt/1", "lang": "fr", "text": "f1"},
    {"id": "fr/fr.txt/2", "lang": "fr", "text": "f2"},
    {"id": "zh-Hans/zh-Hans.txt.xz/0", "lang": "zh-Hans", "text": "中文"},
]


def test_directory_rows_and_ids_are_stable(corpus):
    first = load_cc100(corpus)
    assert first.num_shards == 3
    assert list(first.features) == ["id", "lang", "text"]
    assert list(first) == EXPECTED_ROWS
    assert list(load_cc100(str(corpus))) == EXPECTED_ROWS  # a new reader: same ids


def test_dataset_equals_streamed_rows(corpus, tmp_path):
    dataset = load_cc100(corpus, streaming=False, cache_dir=tmp_path / "arrow")
    assert dataset.num_rows == 6 and dataset.to_list() == EXPECTED_ROWS == list(load_cc100(corpus))
    write(corpus / "fr.txt", b"changed\n\n")  # size and mtime change: a new Arrow cache entry, not a stale one
    dataset = load_cc100(corpus, languages=["fr"], streaming=False, cache_dir=tmp_path / "arrow", split="validation")
    assert dataset.split == "validation"
    assert dataset.to_list() == [{"id": "fr/fr.txt/0", "lang": "fr", "text": "changed"}]


def test_language_filter_selects_and_orders(corpus):
    rows = list(load_cc100(corpus, languages=["zh-Hans", "en"]))
    assert [row["id"] for row in rows] == ["zh-Hans/zh-Hans.txt.xz/0", "en/en.txt.xz/0", "en/en.txt.xz/1"]
    assert list(load_cc100(corpus, languages="fr")) == EXPECTED_ROWS[2:5]


def test_list_of_files_source(corpus):
    files = [corpus / "fr.txt", str(corpus / "en.txt.xz")]
    assert list(load_cc100(files)) == EXPECTED_ROWS[2:5] + EXPECTED_ROWS[:2]
    assert list(load_cc100(files, languages=["en"])) == EXPECTED_ROWS[:2]
    assert list(load_cc100(corpus / "fr.txt")) == EXPECTED_ROWS[2:5]  # one existing file


def test_file_url_template(corpus):
    template = f"file://{corpus}/{{lang}}.txt.xz"
    assert cc100_files(template, ["en", "zh-Hans"]) == [("en", f"file://{corpus}/en.txt.xz"),
                                                        ("zh-Hans", f"file://{corpus}/zh-Hans.txt.xz")]
    rows = list(load_cc100(template, languages=["en", "zh-Hans"]))
    assert rows == EXPECTED_ROWS[:2] + EXPECTED_ROWS[5:]


def test_memory_url_template(tmp_path):
    fs = fsspec.filesystem("memory")
    try:
        fs.pipe("/cc100-test/de.txt.xz", lzma.compress(b"d0\n\nd1\n"))
        fs.pipe("/cc100-test/ru.txt", "р0\r\n\r\nр1\r\n".encode())
        rows = list(load_cc100("memory://cc100-test/{lang}.txt.xz", languages=["de"]))
        assert rows == [{"id": "de/de.txt.xz/0", "lang": "de", "text": "d0"},
                        {"id": "de/de.txt.xz/1", "lang": "de", "text": "d1"}]
        rows = list(load_cc100(["memory://cc100-test/ru.txt"]))
        assert [row["id"] for row in rows] == ["ru/ru.txt/0", "ru/ru.txt/1"]
        assert [row["text"] for row in rows] == ["р0", "р1"]
        stats = cc100_statistics("memory://cc100-test/{lang}.txt.xz", ["de"], cache_dir=tmp_path, progress=False)
        assert stats == {"de": LanguageStatistics(bytes=7, compressed_bytes=fs.size("/cc100-test/de.txt.xz"),
                                                  documents=2, lines=2, files=1)}
        assert list(json.loads((tmp_path / "cc100_statistics.json").read_text())["files"]) == [
            "memory:///cc100-test/de.txt.xz"]  # fsspec's canonical form of the URL
    finally:
        fs.rm("/cc100-test", recursive=True)


def test_languages_list():
    assert len(CC100_LANGUAGES) == len(set(CC100_LANGUAGES)) == 116
    assert {"bn_rom", "my_zaw", "zh-Hans", "zh-Hant", "no", "ur_rom"} <= set(CC100_LANGUAGES)
    assert "zh" not in CC100_LANGUAGES


# ------------------------------------------------------------------------------------------------ bad data
def test_invalid_utf8_is_replaced_counted_and_logged(tmp_path, caplog):
    path = write(tmp_path / "en.txt.xz", b"ok\nbad \xff here\n\nalso \xc3( bad\n\xe2\x82\n\nfine\n")
    report = ReadReport(str(path))
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.data.cc100"):
        documents = list(iter_cc100_documents(path, report=report))
    assert documents == ["ok\nbad \ufffd here", "also \ufffd( bad\n\ufffd", "fine"]
    assert report.invalid_utf8_lines == 3
    assert f"{str(path)!r}: 3 line(s) with invalid UTF-8" in caplog.text
    assert [row["text"] for row in load_cc100([path])] == documents
    stats = cc100_statistics([path], cache_dir=tmp_path / "stats", progress=False)["en"]
    assert (stats.invalid_utf8_lines, stats.documents, stats.lines, stats.skipped_files) == (3, 3, 5, 0)


def truncated_corpus(tmp_path: Path) -> tuple[Path, list[str], bytes]:
    """en.txt.xz cut in half, its documents, and the decompressible prefix."""
    documents = fixture_documents("en", 60_000, seed=1)
    data = ("\n\n".join(documents) + "\n\n").encode()
    compressed = lzma.compress(data, preset=1)
    half = compressed[: len(compressed) // 2]
    path = tmp_path / "en.txt.xz"
    path.write_bytes(half)
    prefix = lzma.LZMADecompressor().decompress(half)
    assert 0 < len(prefix) < len(data)
    return path, documents, prefix


def test_truncated_xz_raises_with_position(tmp_path):
    path, documents, prefix = truncated_corpus(tmp_path)
    complete = prefix.count(b"\n\n")  # every document ends with a blank line in this file
    read: list[str] = []
    with pytest.raises(CC100ReadError) as caught:
        read.extend(iter_cc100_documents(path))  # extend keeps what was read before the error
    error = caught.value
    assert read == documents[:complete]
    assert (error.file, error.document, error.line) == (str(path), complete, prefix.count(b"\n") + 1)
    assert str(error).startswith(f"truncated xz stream (it ends before its end-of-stream marker) in CC-100 file "
                                 f"{str(path)!r} at uncompressed byte {len(prefix):,}: line {error.line:,}, "
                                 f"document index {complete:,}")
    with pytest.raises(CC100ReadError, match="truncated xz stream"):
        load_cc100(tmp_path, streaming=False, cache_dir=tmp_path / "arrow")


def test_truncated_xz_skip_is_counted_and_logged(tmp_path, caplog):
    path, documents, prefix = truncated_corpus(tmp_path)
    write(tmp_path / "fr.txt.xz", b"fr\n\n")
    complete = prefix.count(b"\n\n")
    report = ReadReport(str(path))
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.data.cc100"):
        assert list(iter_cc100_documents(path, on_error="skip", report=report)) == documents[:complete]
        rows = list(load_cc100(tmp_path, on_error="skip"))
    assert report.skipped and report.documents == complete and "truncated xz stream" in report.error
    assert [row["text"] for row in rows] == documents[:complete] + ["fr"]
    assert f"skipped the rest of the file ({complete} documents read, the cut document dropped)" in caplog.text
    assert ("1 of the 1 file(s) read so far in this process were cut short by xz errors and skipped from there: "
            f"{path}") in caplog.text
    stats = cc100_statistics(tmp_path, cache_dir=tmp_path / "stats", on_error="skip", progress=False)
    assert stats["en"] == LanguageStatistics(bytes=len(prefix), compressed_bytes=path.stat().st_size,
                                             documents=complete, lines=sum(d.count("\n") + 1 for d in
                                                                           documents[:complete]),
                                             files=1, skipped_files=1)
    with pytest.raises(CC100Error, match=r"truncated xz stream .* \(cached by cc100_statistics"):
        cc100_statistics(tmp_path, cache_dir=tmp_path / "stats", progress=False)


def test_corrupt_xz_raises_and_not_xz_raises(tmp_path):
    data = ("\n\n".join(fixture_documents("fr", 60_000)) + "\n\n").encode()
    compressed = bytearray(lzma.compress(data, preset=1))
    compressed[len(compressed) // 2] ^= 0xFF
    path = tmp_path / "fr.txt.xz"
    path.write_bytes(bytes(compressed))
    with pytest.raises(CC100ReadError, match=r"corrupt xz data \(Corrupt input data\) in CC-100 file .*fr\.txt\.xz'"
                                             r" at uncompressed byte [\d,]+: line [\d,]+, document index [\d,]+"):
        list(iter_cc100_documents(path))
    path.write_bytes(b"plain text, not xz\n")
    with pytest.raises(CC100ReadError, match="corrupt xz data .* line 1, document index 0"):
        list(iter_cc100_documents(path))
    assert list(iter_cc100_documents(path, on_error="skip")) == []


def test_read_error_pickles_with_its_position():
    error = pickle.loads(pickle.dumps(CC100ReadError("message", "x/en.txt.xz", 3, 4)))
    assert (type(error), str(error), error.file, error.line, error.document) == (
        CC100ReadError, "message", "x/en.txt.xz", 3, 4)


# ------------------------------------------------------------------------------------------------ errors
def test_source_errors(corpus, tmp_path):
    with pytest.raises(CC100Error, match=r"source='https://data.statmt.org/cc-100/en.txt.xz' is not an existing "
                                         r"directory or file, and not a URL template: it has no \{lang\} placeholder"):
        load_cc100("https://data.statmt.org/cc-100/en.txt.xz")
    with pytest.raises(CC100Error, match="is not an existing directory or file"):
        load_cc100(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt.gz").write_bytes(b"")
    with pytest.raises(CC100Error, match=r"directory '.*empty' holds no CC-100 files: expected <lang>.txt.xz or "
                                         r"<lang>.txt"):
        load_cc100(empty)
    write(corpus / "en.txt", b"x\n")
    with pytest.raises(CC100Error, match=r"holds both a .txt and a .txt.xz file for \{'en': \['en.txt', "
                                         r"'en.txt.xz'\]\}"):
        load_cc100(corpus)
    with pytest.raises(CC100Error, match=r"CC-100 file '.*/de.txt.xz' \(files\[1\]\) does not exist"):
        load_cc100([corpus / "fr.txt", corpus / "de.txt.xz"])
    with pytest.raises(CC100Error, match=r"files\[0\]='.*/README.md' is not named <lang>.txt or <lang>.txt.xz"):
        load_cc100([corpus / "README.md"])
    with pytest.raises(CC100Error, match=r"files\[1\]='.*/b/fr.txt' and files\[0\] have the same name 'fr.txt'"):
        load_cc100([corpus / "fr.txt", tmp_path / "b" / "fr.txt"])
    with pytest.raises(CC100Error, match=r"source=\[\] is not allowed"):
        load_cc100([])


def test_filter_and_argument_errors(corpus):
    with pytest.raises(CC100Error, match=r"languages=\['de', 'zh'\] are not in directory '.*cc100'; available: "
                                         r"\['en', 'fr', 'zh-Hans'\]"):
        load_cc100(corpus, languages=["en", "de", "zh"])
    with pytest.raises(CC100Error, match=r"languages=\['zh'\] are not CC-100 language codes \('zh': did you mean "
                                         r"'zh-Hans' or 'zh-Hant'\?\); a URL template takes codes from CC100_LANGUAGES \(116\): "
                                         r"af, am, ar, "):
        load_cc100("https://data.statmt.org/cc-100/{lang}.txt.xz", languages=["en", "zh"])
    with pytest.raises(CC100Error, match=r"CC-100 file 'file://.*/de.txt.xz' \(language 'de' of template "):
        load_cc100(f"file://{corpus}/{{lang}}.txt.xz", languages=["de"])
    with pytest.raises(CC100Error, match=r"languages=\[\] is not allowed"):
        load_cc100(corpus, languages=[])
    with pytest.raises(CC100Error, match=r"on_error='ignore' is not allowed; expected 'raise' or 'skip'"):
        load_cc100(corpus, on_error="ignore")
    with pytest.raises(CC100Error, match=r"split='train\[:10\]' is not allowed"):
        load_cc100(corpus, split="train[:10]")


def test_remote_template_resolves_without_io():
    """No network here: a remote template resolves without I/O (existence is checked when a file is opened)."""
    files = cc100_files(cc100.CC100_URL_TEMPLATE, ["am", "sr"])
    assert files == [("am", "https://data.statmt.org/cc-100/am.txt.xz"),
                     ("sr", "https://data.statmt.org/cc-100/sr.txt.xz")]
    assert len(cc100_files(cc100.CC100_URL_TEMPLATE)) == 116
    dataset = load_cc100("hf://datasets/someone/cc100/{lang}.txt.xz", languages=["am"])
    assert dataset.num_shards == 1


# ------------------------------------------------------------------------------------------------ statistics
def test_statistics_exact_and_cached(corpus, tmp_path, monkeypatch):
    cache = tmp_path / "stats"
    stats = cc100_statistics(corpus, cache_dir=cache, progress=False)
    en_size, zh_size = ((corpus / n).stat().st_size for n in ("en.txt.xz", "zh-Hans.txt.xz"))
    assert stats == {
        "en": LanguageStatistics(bytes=17, compressed_bytes=en_size, documents=2, lines=3, files=1),
        "fr": LanguageStatistics(bytes=11, compressed_bytes=11, documents=3, lines=3, files=1),
        "zh-Hans": LanguageStatistics(bytes=8, compressed_bytes=zh_size, documents=1, lines=1, files=1),
    }
    entries = json.loads((cache / "cc100_statistics.json").read_text())["files"]
    key = os.path.realpath(corpus / "fr.txt")
    assert entries[key]["size"] == 11 and entries[key]["mtime"] == str((corpus / "fr.txt").stat().st_mtime_ns)

    def fail(*args, **kwargs):
        raise AssertionError("counted again instead of using the cache")

    monkeypatch.setattr(cc100, "_count_file", fail)
    assert cc100_statistics(corpus, cache_dir=cache, progress=False) == stats
    assert cc100_statistics([corpus / "fr.txt"], cache_dir=cache, progress=False) == {"fr": stats["fr"]}
    monkeypatch.undo()

    write(corpus / "fr.txt", b"f0\nf0b\n\nf1\n\n")  # size changes
    assert cc100_statistics(corpus, ["fr"], cache_dir=cache, progress=False)["fr"] == LanguageStatistics(
        bytes=12, compressed_bytes=12, documents=2, lines=3, files=1)
    os.utime(corpus / "fr.txt", ns=(1, 1))  # same size, other mtime: counted again
    calls = []
    monkeypatch.setattr(cc100, "_count_file", lambda *a: calls.append(a[0]) or ReadReport(a[0], bytes=12))
    cc100_statistics(corpus, ["fr", "en"], cache_dir=cache, progress=False)
    assert calls == [str(corpus / "fr.txt")]


def test_statistics_match_reader_and_default_cache_dir(tmp_path, monkeypatch):
    sizes = {"en": 9_000, "ja": 7_000}
    paths = text.write_cc100_corpus(tmp_path / "corpus", sizes, seed=5)
    text.write_cc100_corpus(tmp_path / "plain", {"en": 9_000}, seed=5, compress=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    stats = cc100_statistics(tmp_path / "corpus")
    for lang, size in sizes.items():
        docs = text.generate_documents(lang, size, seed=5)
        data = "".join("".join(p + "\n" for p in doc) + "\n" for doc in docs).encode()
        assert stats[lang] == LanguageStatistics(bytes=len(data), compressed_bytes=paths[lang].stat().st_size,
                                                 documents=len(docs), lines=sum(map(len, docs)), files=1)
    assert (tmp_path / "xdg" / "xlmr_hf" / "cc100_stats" / "cc100_statistics.json").is_file()
    plain = cc100_statistics(tmp_path / "plain", cache_dir=tmp_path / "s2", progress=False)["en"]
    assert (plain.bytes, plain.compressed_bytes, plain.documents) == (stats["en"].bytes,) * 2 + (
        stats["en"].documents,)
    merged = cc100_statistics([paths["en"], tmp_path / "plain" / "en.txt"], cache_dir=tmp_path / "s3",
                              progress=False)
    assert merged["en"].files == 2 and merged["en"].documents == 2 * stats["en"].documents


def test_building_does_not_patch_this_module(corpus):
    """datasets patches the globals of a builder's module (os.path.*, pathlib.Path, open) unless it opts out."""
    import pathlib

    load_cc100(corpus)
    assert cc100.os is os and cc100.os.path.isdir is os.path.isdir and cc100.Path is pathlib.Path
    assert "open" not in vars(cc100)


def test_document_without_end_is_read_in_linear_time(tmp_path, monkeypatch):
    """A file without blank lines is one document: each chunk is searched once, not the whole carried document."""
    monkeypatch.setattr(cc100, "_CHUNK", 64)
    data = b"".join(b"line %d\n" % i for i in range(20_000))
    path = write(tmp_path / "en.txt", data)
    searched = []
    real = cc100._SEPARATOR
    monkeypatch.setattr(cc100, "_SEPARATOR", type("Spy", (), {"split": lambda _, s: searched.append(len(s))
                                                                or real.split(s)})())
    assert list(iter_cc100_documents(path)) == [data.decode()[:-1]]
    assert sum(searched) <= len(data) + 2 * len(searched) + 64


def test_missing_http_filesystem_is_a_clear_error(monkeypatch):
    """fsspec's https filesystem needs aiohttp (the ``fsspec[http]`` dependency); without it reading says so. The
    import failure is simulated, so nothing goes to the network."""
    import fsspec

    def no_http(*args, **kwargs):
        raise ImportError("HTTPFileSystem requires 'requests' and 'aiohttp' to be installed")

    monkeypatch.setattr(fsspec, "open", no_http)
    monkeypatch.setattr(fsspec.core, "url_to_fs", no_http)
    with pytest.raises(CC100Error, match=r"reading 'https://data.statmt.org/cc-100/am.txt.xz' needs the fsspec "
                                         r"filesystem for 'https': .*pip install 'fsspec\[http\]'"):
        next(iter(load_cc100(cc100.CC100_URL_TEMPLATE, languages=["am"])))


def test_concatenated_xz_streams_with_stream_padding_are_read_to_the_end(tmp_path):
    """xz allows zero-byte stream padding between streams; lzma.LZMAFile stopped there silently, losing stream 2."""
    first, second = "a b\nc\n\nd\n\n", "e\n\nf g\nh\n"
    path = tmp_path / "xx.txt.xz"
    path.write_bytes(lzma.compress(first.encode()) + b"\0" * 8 + lzma.compress(second.encode()))
    assert list(cc100.iter_cc100_documents(path)) == ["a b\nc", "d", "e", "f g\nh"]


def test_garbage_after_the_last_xz_stream_is_an_error(tmp_path):
    path = tmp_path / "xx.txt.xz"
    path.write_bytes(lzma.compress(b"a\n\nb\n\n") + b"garbage!")  # read as the start of a truncated stream
    with pytest.raises(cc100.CC100ReadError, match=r"truncated xz stream .* at uncompressed byte 6"):
        list(cc100.iter_cc100_documents(path))
    assert list(cc100.iter_cc100_documents(path, on_error="skip")) == ["a", "b"]
