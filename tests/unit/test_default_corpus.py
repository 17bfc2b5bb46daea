"""The default corpus shipped in the package: files, manifest, scripts, sizes, readers, the held-out split, package
data, regeneration."""

from __future__ import annotations

import collections
import fnmatch
import hashlib
import itertools
import lzma
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import xlmr_hf.data
from xlmr_hf.data import DocumentReader, cc100_files, iter_cc100_documents, xz_streams
from xlmr_hf.data import default_corpus as module
from xlmr_hf.data.default_corpus import (
    DEFAULT_CORPUS_LANGUAGES,
    default_corpus_dir,
    default_corpus_manifest,
    default_heldout_dir,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "make_default_corpus.py"
# first word of unicodedata.name(letter) -> the script name used in MANIFEST.json
SCRIPTS = {"LATIN": "Latin", "CYRILLIC": "Cyrillic", "ARABIC": "Arabic", "DEVANAGARI": "Devanagari", "CJK": "Han",
           "THAI": "Thai", "GREEK": "Greek", "HEBREW": "Hebrew", "HANGUL": "Hangul", "HIRAGANA": "Hiragana",
           "KATAKANA": "Katakana"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return default_corpus_manifest()


@pytest.fixture(scope="module")
def texts() -> dict[str, bytes]:
    """Language -> the decompressed bytes of its file."""
    directory = default_corpus_dir()
    return {lang: lzma.decompress((directory / f"{lang}.txt.xz").read_bytes()) for lang in DEFAULT_CORPUS_LANGUAGES}


def _corpus_files(directory: Path) -> dict[str, bytes]:
    """Relative POSIX path -> contents of every file under `directory` (the held-out subfolder included)."""
    return {path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def _check_layout(data: bytes, entry: dict, name: str) -> None:
    """`data` is strict UTF-8 in the CC-100 layout and matches the manifest `entry` (documents and paragraphs)."""
    text = data.decode("utf-8")  # strict: valid UTF-8
    # CC-100 layout: paragraph lines, one empty line after every document, nothing else
    assert text.endswith("\n\n") and not text.startswith("\n") and "\n\n\n" not in text and "\r" not in text, name
    lines = text.split("\n")[:-1]
    assert all(line == "" or not line.isspace() for line in lines), name
    assert entry["paragraphs"] == sum(1 for line in lines if line), name
    assert entry["documents"] == text.count("\n\n"), name


def test_module_api(manifest: dict) -> None:
    assert module.__all__ == ["DEFAULT_CORPUS_LANGUAGES", "default_codeswitch_dir", "default_corpus_dir",
                              "default_corpus_manifest", "default_heldout_dir", "parallel_sentences", "xnli_sample_dir"]
    assert xlmr_hf.data.default_heldout_dir is default_heldout_dir
    directory = default_corpus_dir()
    assert isinstance(directory, Path) and directory.is_dir()
    assert directory == Path(xlmr_hf.data.__file__).parent / "default_corpus"
    heldout = default_heldout_dir()
    assert isinstance(heldout, Path) and heldout.is_dir()
    assert heldout == directory / manifest["heldout"]["directory"] == directory / "heldout"
    codeswitch = module.default_codeswitch_dir()
    assert codeswitch == directory / manifest["codeswitch"]["directory"] == directory / "codeswitch"
    assert xlmr_hf.data.default_codeswitch_dir is module.default_codeswitch_dir
    again = default_corpus_manifest()
    assert again == manifest and again is not manifest  # a fresh dict: callers may modify theirs


def test_files_exist_for_every_language(manifest: dict) -> None:
    assert DEFAULT_CORPUS_LANGUAGES == tuple(sorted(manifest["languages"]))
    directory = default_corpus_dir()
    expected = {f"{lang}.txt.xz" for lang in DEFAULT_CORPUS_LANGUAGES} | {"MANIFEST.json", "heldout", "codeswitch"}
    assert {path.name for path in directory.iterdir()} == expected
    assert (directory / "heldout").is_dir()
    assert cc100_files(directory) == [(lang, str(directory / f"{lang}.txt.xz")) for lang in DEFAULT_CORPUS_LANGUAGES]
    # the held-out split: one file per language and nothing else
    heldout = default_heldout_dir()
    assert DEFAULT_CORPUS_LANGUAGES == tuple(sorted(manifest["heldout"]["languages"]))
    assert {path.name for path in heldout.iterdir()} == {f"{lang}.txt.xz" for lang in DEFAULT_CORPUS_LANGUAGES}
    assert cc100_files(heldout) == [(lang, str(heldout / f"{lang}.txt.xz")) for lang in DEFAULT_CORPUS_LANGUAGES]


def test_manifest_matches_files(manifest: dict, texts: dict[str, bytes]) -> None:
    directory = default_corpus_dir()
    for lang, entry in manifest["languages"].items():
        data, xz = texts[lang], (directory / f"{lang}.txt.xz").read_bytes()
        assert entry["bytes"] == len(data), lang
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), lang
        assert entry["xz_bytes"] == len(xz), lang
        assert entry["xz_sha256"] == hashlib.sha256(xz).hexdigest(), lang
        _check_layout(data, entry, lang)
    total = manifest["total"]
    assert total["languages"] == len(manifest["languages"])
    for key in ("documents", "paragraphs", "bytes", "xz_bytes"):
        assert total[key] == sum(entry[key] for entry in manifest["languages"].values()), key


def test_heldout_matches_manifest(manifest: dict) -> None:
    heldout = manifest["heldout"]
    assert heldout["seed"] != manifest["seed"]  # different text from the training files
    directory = default_heldout_dir()
    for lang, entry in heldout["languages"].items():
        path = directory / f"{lang}.txt.xz"
        xz = path.read_bytes()
        data = lzma.decompress(xz)
        assert entry["bytes"] == len(data) and 8_000 <= len(data) <= 12_000, lang
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), lang
        assert entry["xz_bytes"] == len(xz), lang
        assert entry["xz_sha256"] == hashlib.sha256(xz).hexdigest(), lang
        _check_layout(data, entry, f"heldout/{lang}")
        with path.open("rb") as raw:
            streams = xz_streams(raw)
        assert len(streams) == entry["xz_streams"] == 1, lang  # a single xz stream
        assert streams[0].compressed_end == len(xz) and streams[0].uncompressed_size == len(data), lang
        documents = list(iter_cc100_documents(path))
        assert len(documents) == entry["documents"] and all(documents), lang
    for key in ("documents", "paragraphs", "bytes", "xz_bytes"):
        assert heldout["total"][key] == sum(entry[key] for entry in heldout["languages"].values()), key


def test_heldout_documents_are_not_training_documents() -> None:
    training = dict(cc100_files(default_corpus_dir()))
    for lang, path in cc100_files(default_heldout_dir()):
        seen = set(iter_cc100_documents(training[lang]))
        heldout = list(iter_cc100_documents(path))
        assert heldout and not seen.intersection(heldout), lang
        assert len(set(heldout)) == len(heldout), lang  # and no document twice in the held-out split


def test_default_heldout_dir_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "_HELDOUT", "no-such-heldout")
    with pytest.raises(FileNotFoundError, match="held-out split is missing.*make_default_corpus.py"):
        default_heldout_dir()


def test_languages_and_scripts(manifest: dict, texts: dict[str, bytes]) -> None:
    scripts = {}
    for lang, data in texts.items():
        letters = collections.Counter(unicodedata.name(ch).split()[0] for ch in data.decode("utf-8")
                                      if unicodedata.category(ch).startswith("L"))
        script, count = letters.most_common(1)[0]
        assert count >= 0.99 * sum(letters.values()), (lang, letters.most_common(3))
        assert SCRIPTS[script] == manifest["languages"][lang]["script"], lang
        scripts[lang] = script
    assert len(scripts) >= 8
    assert len(set(scripts.values())) >= 5 and manifest["total"]["scripts"] == len(set(scripts.values()))


def test_sizes_are_unequal_and_small(manifest: dict) -> None:
    sizes = {lang: entry["bytes"] for lang, entry in manifest["languages"].items()}
    assert max(sizes.values()) / min(sizes.values()) >= 10
    assert len(set(sizes.values())) == len(sizes)
    compressed = sum((default_corpus_dir() / f"{lang}.txt.xz").stat().st_size for lang in DEFAULT_CORPUS_LANGUAGES)
    assert compressed < 1_000_000  # the budget for the whole wheel's corpus is 4 MB of xz
    assert 2_000_000 <= sum(sizes.values()) <= 4_000_000


def test_iter_cc100_documents_counts(manifest: dict) -> None:
    for lang, path in cc100_files(default_corpus_dir()):
        documents = list(iter_cc100_documents(path))
        assert len(documents) == manifest["languages"][lang]["documents"], lang
        assert all(documents), lang


def test_xz_streams_end_at_documents(manifest: dict) -> None:
    limit = manifest["stream_max_bytes"]
    assert limit == 256 * 1024
    for lang in DEFAULT_CORPUS_LANGUAGES:
        path = default_corpus_dir() / f"{lang}.txt.xz"
        data = path.read_bytes()
        with path.open("rb") as raw:
            streams = xz_streams(raw)
        assert len(streams) == manifest["languages"][lang]["xz_streams"], lang
        assert streams[-1].compressed_end == len(data)
        for stream in streams:
            assert 0 < stream.uncompressed_size <= limit, lang
            piece = lzma.decompress(data[stream.compressed_start:stream.compressed_end], format=lzma.FORMAT_XZ)
            assert len(piece) == stream.uncompressed_size and piece.endswith(b"\n\n"), lang  # cut at a document end
    assert manifest["languages"]["en"]["xz_streams"] >= 2  # so the next test crosses a stream boundary


def test_document_reader_resumes_across_streams() -> None:
    path = default_corpus_dir() / "en.txt.xz"
    expected = list(iter_cc100_documents(path))
    with path.open("rb") as raw:
        second = xz_streams(raw)[1].uncompressed_start
    ends = list(itertools.accumulate(len(d.encode("utf-8")) + 2 for d in expected))  # offset after each "\n\n"
    cut = ends.index(second)  # expected[cut] ends the first stream
    reader = DocumentReader([path], language="en")
    assert [next(reader) for _ in range(cut + 2)] == expected[:cut + 2]  # the first document of the second stream too
    state = reader.state_dict()
    assert state["offset"] == ends[cut + 1] > second  # resuming seeks into the second stream
    reader.close()
    resumed = DocumentReader([path], language="en")
    resumed.load_state_dict(state)
    assert [next(resumed) for _ in range(len(expected) - cut - 2)] == expected[cut + 2:]
    assert next(resumed) == expected[0] and resumed.epoch == 1
    resumed.close()


def test_package_data_covers_the_files() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["xlmr_hf.data"]
    names = [f"default_corpus/{name}" for name in _corpus_files(default_corpus_dir())]
    assert any(name.startswith("default_corpus/heldout/") for name in names)
    for name in names:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def _documents(path: Path) -> list[str]:
    return list(iter_cc100_documents(path))


def test_language_id_agrees_with_the_files_language() -> None:
    """fastText lid.176 (the cleaner's language ID) names each document's language as its file does, for at least
    95 % of the documents of every language (training, held-out and the parallel part)."""
    from xlmr_hf.corpus.lid import LanguageIdentifier, label_to_code

    lid = LanguageIdentifier()
    for lang in DEFAULT_CORPUS_LANGUAGES:
        for path in (default_corpus_dir() / f"{lang}.txt.xz", default_heldout_dir() / f"{lang}.txt.xz"):
            documents = _documents(path)
            agree = sum(label_to_code(lid.predict(document.replace("\n", " "))[0]) == lang for document in documents)
            assert agree >= 0.95 * len(documents), (path.name, agree, len(documents))


def _units(lang: str, line: str) -> list[str]:
    """Words (characters for Chinese and Thai, which do not separate words by spaces), punctuation split off."""
    if lang in ("zh", "th"):
        return [ch for ch in line if not ch.isspace()]
    return [word for word in re.split(r"[\s,.;:?!؟،।\"()]+", line.lower()) if word]


def test_word_order_carries_information() -> None:
    """Held-out word bigrams are found in the training text much more often than the bigrams of the same held-out lines
    with their words shuffled: the text has word order, not word salad. (At the time of writing: found 0.61-0.999 of
    the held-out bigrams, 0.10-0.53 after shuffling; Thai counts character bigrams over a small alphabet.)"""
    rng = random.Random(0)
    for lang in DEFAULT_CORPUS_LANGUAGES:
        seen = {pair for document in _documents(default_corpus_dir() / f"{lang}.txt.xz")
                for line in document.split("\n") for pair in itertools.pairwise(_units(lang, line))}
        lines = [line for document in _documents(default_heldout_dir() / f"{lang}.txt.xz")
                 for line in document.split("\n")]
        held, shuffled = [], []
        for line in lines:
            units = _units(lang, line)
            held += itertools.pairwise(units)
            rng.shuffle(units)
            shuffled += itertools.pairwise(units)
        found = sum(pair in seen for pair in held) / len(held)
        found_shuffled = sum(pair in seen for pair in shuffled) / len(shuffled)
        assert found >= 1.5 * found_shuffled and found >= found_shuffled + 0.25, (lang, found, found_shuffled)


def test_codeswitch_split(manifest: dict) -> None:
    """codeswitch/<lang>.txt.xz: documents of the language whose every other sentence is in the partner language."""
    from xlmr_hf.data import default_codeswitch_dir
    from xlmr_hf.corpus.lid import LanguageIdentifier, label_to_code

    lid = LanguageIdentifier()
    split = manifest["codeswitch"]
    assert split["partner"] == {lang: "fr" if lang == "en" else "en" for lang in DEFAULT_CORPUS_LANGUAGES}
    for lang in ("de", "ru", "zh", "en"):
        path = default_codeswitch_dir() / f"{lang}.txt.xz"
        _check_layout(lzma.decompress(path.read_bytes()), split["languages"][lang], path.name)
        paragraph = next(p for d in _documents(path) for p in d.split("\n") if p.count(".") + p.count("。") >= 4)
        sentences = [s for s in re.split(r"(?<=[.?。？])\s*", paragraph) if s]
        labels = [label_to_code(lid.predict(s)[0]) for s in sentences[:2]]
        assert labels == [lang, split["partner"][lang]], (lang, sentences[:2], labels)


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    subprocess.run([sys.executable, str(SCRIPT), "--output", str(out)], check=True, capture_output=True, text=True)
    committed = _corpus_files(default_corpus_dir())
    regenerated = _corpus_files(out)
    assert sorted(regenerated) == sorted(committed)
    assert {f"heldout/{lang}.txt.xz" for lang in DEFAULT_CORPUS_LANGUAGES} <= set(committed)
    for name, data in committed.items():  # decompressed text first: a clearer failure than differing xz bytes
        if name.endswith(".xz"):
            assert lzma.decompress(regenerated[name]) == lzma.decompress(data), (
                f"{name}: the generated text changed; rerun python tools/make_default_corpus.py")
    assert regenerated == committed, "rerun python tools/make_default_corpus.py (or liblzma's output changed)"

    # --check: nothing to report on a fresh build, a changed file is reported with exit status 1
    check = [sys.executable, str(SCRIPT), "--check", "--output", str(out)]
    ok = subprocess.run(check, check=False, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (out / "sw.txt.xz").write_bytes(b"")
    bad = subprocess.run(check, check=False, capture_output=True, text=True)
    assert bad.returncode == 1 and "sw.txt.xz" in bad.stdout
    (out / "sw.txt.xz").write_bytes(committed["sw.txt.xz"])
    (out / "heldout" / "th.txt.xz").write_bytes(b"")  # the held-out files are checked too
    (out / "heldout" / "xx.txt.xz").write_bytes(b"")  # and a held-out language the script does not generate
    bad = subprocess.run(check, check=False, capture_output=True, text=True)
    assert bad.returncode == 1, bad.stdout
    assert "differs or missing" in bad.stdout and "heldout/th.txt.xz" in bad.stdout
    assert "not generated" in bad.stdout and "heldout/xx.txt.xz" in bad.stdout and "sw.txt.xz" not in bad.stdout


def test_shipped_samples_equal_a_fresh_generation_from_the_fixtures() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(root / "tools" / "make_samples.py"), "--check"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "10 sample files match" in result.stdout


def test_parallel_sentences_and_the_xnli_sample() -> None:
    import fixtures.multilingual_text as text
    import pytest

    from xlmr_hf.data import parallel_sentences, xnli_sample_dir
    from xlmr_hf.tasks import xnli

    table = parallel_sentences()
    assert sorted(table) == list(DEFAULT_CORPUS_LANGUAGES) and {len(s) for s in table.values()} == {200}
    assert all(table[lang][:12] == list(text.PARALLEL[lang]) for lang in table)  # the hand-written ones first
    # the rest are sentences of the parallel part of the corpus: the first documents of every training file
    for lang in ("en", "sw", "zh"):
        head = lzma.decompress((default_corpus_dir() / f"{lang}.txt.xz").read_bytes()).decode("utf-8")[:60_000]
        assert all(sentence in head for sentence in table[lang][12:40]), lang
    assert table["en"][12] != table["en"][13] and len(set(table["fr"])) > 150
    assert list(parallel_sentences(["zh", "en"])) == ["zh", "en"]
    with pytest.raises(ValueError, match=r"\['xx'\] have no parallel sentences; allowed: \['ar', "):
        parallel_sentences(["en", "xx"])
    data = xnli.load_xnli("cross-lingual-transfer", languages=["en", "ar"], data_dir=str(xnli_sample_dir()))
    assert (len(data.train), len(data.validation["ar"]), len(data.test["ar"])) == (36, 12, 12)
