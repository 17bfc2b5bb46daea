"""Corpus discovery, reading and the α-smoothed sample of `xlmr_hf.tokenization.corpus`."""

from __future__ import annotations

import lzma
from collections import Counter
from pathlib import Path

import pytest

from xlmr_hf.tokenization import (
    CorpusError,
    allocate_budget,
    alpha_probabilities,
    count_sentences,
    discover_corpus,
    iter_lines,
    sample_corpus,
)


def _write(path: Path, text: str) -> Path:
    if path.name.endswith(".xz"):
        with lzma.open(path, "wb") as handle:
            handle.write(text.encode("utf-8"))
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


def _corpus(directory: Path, lines: dict[str, int]) -> Path:
    """<lang>.txt.xz files with numbered, distinct lines and a blank line after every third (CC-100 documents)."""
    directory.mkdir(parents=True, exist_ok=True)
    for lang, n in lines.items():
        text = "".join(f"{lang} sentence {i}\n" + ("\n" if i % 3 == 2 else "") for i in range(n))
        _write(directory / f"{lang}.txt.xz", text)
    return directory


def _sample(directory: Path, **kwargs) -> tuple[dict, Counter]:
    files = discover_corpus(directory, kwargs.pop("languages", None))
    counts = count_sentences(files, kwargs.get("max_sentence_length", 4192), progress=False)
    written: Counter = Counter()

    def writer(sentence: str, count: int) -> None:
        assert sentence not in written, "a line was written twice"
        written[sentence] = count

    samples = sample_corpus(files, counts, writer, progress=False, **kwargs)
    return samples, written


def test_alpha_probabilities_match_the_formula() -> None:
    sizes = {"en": 300_000, "fr": 56_000, "hi": 2_000, "sw": 275, "ur": 730}
    q = alpha_probabilities(sizes, 0.3)
    total = sum(sizes.values())
    norm = sum((s / total) ** 0.3 for s in sizes.values())
    for lang, size in sizes.items():
        assert q[lang] == pytest.approx((size / total) ** 0.3 / norm, rel=1e-12)
    assert q["en"] == pytest.approx(0.4731, abs=1e-4)  # not the 37.2% a tutorial prints
    assert alpha_probabilities(sizes, 1.0)["sw"] == pytest.approx(275 / total)
    assert list(alpha_probabilities(sizes, 0.0).values()) == pytest.approx([0.2] * 5)
    with pytest.raises(ValueError, match=r"alpha=1\.5 is not allowed"):
        alpha_probabilities(sizes, 1.5)
    with pytest.raises(ValueError, match="sizes must be finite"):
        alpha_probabilities({"en": -1}, 0.3)


def test_allocate_budget_is_exact_and_proportional() -> None:
    q = {"a": 0.5, "b": 0.3333, "c": 0.1667}
    counts = allocate_budget(1000, q)
    assert sum(counts.values()) == 1000
    assert all(abs(counts[k] - 1000 * q[k]) < 1 for k in q)
    assert allocate_budget(7, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 3, "b": 2, "c": 2}


def test_sampled_shares_follow_alpha_and_small_languages_repeat(tmp_path: Path) -> None:
    directory = _corpus(tmp_path / "c", {"en": 3000, "fr": 600, "sw": 40})
    samples, written = _sample(directory, alpha=0.3, max_sentences=2000, heldout_sentences=50, seed=1)
    budget = 2000
    assert sum(s.sampled_sentences for s in samples.values()) == budget
    expected = allocate_budget(budget, alpha_probabilities({"en": 3000, "fr": 600, "sw": 40}, 0.3))
    for lang, sample in samples.items():
        assert sample.sampled_sentences == expected[lang]
        assert sum(c for line, c in written.items() if line.startswith(lang)) == expected[lang]
        assert sample.q == pytest.approx(expected[lang] / budget, abs=1 / budget)
    # sw has 36 training lines for a quota above them: every line repeats ⌊k/P⌋ or ⌊k/P⌋+1 times
    sw = [c for line, c in written.items() if line.startswith("sw")]
    repeats = expected["sw"] // 36
    assert len(sw) == 36 and set(sw) <= {repeats, repeats + 1} and repeats >= 2
    # en is subsampled without replacement
    assert {c for line, c in written.items() if line.startswith("en")} == {1}


def test_heldout_is_disjoint_deterministic_and_seeded(tmp_path: Path) -> None:
    directory = _corpus(tmp_path / "c", {"en": 500, "fr": 80})
    first, written = _sample(directory, heldout_sentences=20, seed=3)
    again, written_again = _sample(directory, heldout_sentences=20, seed=3)
    other, _ = _sample(directory, heldout_sentences=20, seed=4)
    assert len(first["en"].heldout) == 20 and len(first["fr"].heldout) == 8  # at most a tenth of the lines
    assert not set(first["en"].heldout) & set(written)
    assert first["en"].heldout == again["en"].heldout and written == written_again
    assert first["en"].heldout != other["en"].heldout
    # with no cap, the budget is the corpus's training lines
    assert sum(written.values()) == (500 - 20) + (80 - 8)


def test_budget_never_exceeds_the_corpus(tmp_path: Path) -> None:
    directory = _corpus(tmp_path / "c", {"en": 100, "fr": 10})
    samples, written = _sample(directory, max_sentences=10_000_000, heldout_sentences=0)
    assert sum(written.values()) == 110
    assert samples["fr"].passes > 1 > samples["en"].passes


def test_sizes_override_p_and_long_lines_are_counted(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    _write(directory / "en.txt", "short line\n" + "x" * 50 + "\nanother\n\n")
    _write(directory / "de.txt", "kurz\n")
    samples, written = _sample(directory, sizes={"en": 1, "de": 3}, max_sentence_length=20, heldout_sentences=0)
    assert samples["en"].skipped_too_long == 1 and samples["en"].sentences == 2
    assert "x" * 50 not in written
    assert samples["de"].p == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"sizes has no entry for languages \['en'\]"):
        _sample(directory, sizes={"de": 3})


def _unequal_corpus(directory: Path) -> Path:
    """en: 30 ASCII lines of 10 bytes (plus a blank and an over-long line); zh: 10 Han lines of 20 characters, 60
    bytes. Lines 30:10, bytes 300:600, characters 300:200."""
    directory.mkdir()
    en = [f"{i:02d}" + "a" * 8 for i in range(30)]
    zh = [chr(0x4E00 + i) + "\u6f22" * 19 for i in range(10)]
    _write(directory / "en.txt", "\n".join([*en[:15], "", "x" * 80, *en[15:]]) + "\n")
    _write(directory / "zh.txt.xz", "\n".join(zh) + "\n")
    return directory


@pytest.mark.parametrize(
    ("unit", "sizes"),
    [("lines", {"en": 30, "zh": 10}), ("bytes", {"en": 300, "zh": 600}), ("characters", {"en": 300, "zh": 200})],
)
def test_p_is_measured_in_the_chosen_unit(tmp_path: Path, unit: str, sizes: dict[str, int]) -> None:
    directory = _unequal_corpus(tmp_path / "c")
    samples, written = _sample(directory, unit=unit, alpha=1.0, heldout_sentences=0, max_sentence_length=64)
    assert {lang: (s.sentences, s.bytes, s.characters) for lang, s in samples.items()} == {
        "en": (30, 300, 300), "zh": (10, 600, 200)}
    assert samples["en"].skipped_too_long == 1  # neither it nor the blank line counts in any unit
    total = sum(sizes.values())
    assert {lang: s.p for lang, s in samples.items()} == {lang: size / total for lang, size in sizes.items()}
    assert {lang: s.q for lang, s in samples.items()} == alpha_probabilities(sizes, 1.0)
    # Only p_i changes: the budget is still the corpus's 40 training lines, split by q_i.
    assert sum(written.values()) == 40
    expected = allocate_budget(40, alpha_probabilities(sizes, 1.0))
    assert {lang: s.sampled_sentences for lang, s in samples.items()} == expected
    assert expected == {"lines": {"en": 30, "zh": 10}, "bytes": {"en": 13, "zh": 27},
                        "characters": {"en": 24, "zh": 16}}[unit]


def test_unknown_unit_is_refused(tmp_path: Path) -> None:
    directory = _unequal_corpus(tmp_path / "c")
    with pytest.raises(ValueError, match=r"^unit='tokens' is not allowed: expected one of \['lines', 'bytes', "
                                         r"'characters'\]$"):
        _sample(directory, unit="tokens")


def test_iter_lines_strips_line_ends(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.txt.xz", "a\r\nb\n\nc")
    assert list(iter_lines(path)) == ["a", "b", "", "c"]


def test_discover_reads_directories_and_mappings(tmp_path: Path) -> None:
    directory = _corpus(tmp_path / "c", {"en": 3, "fr": 3})
    _write(directory / "de.txt", "Hallo\n")
    (directory / "README.md").write_text("not a corpus file")
    files = discover_corpus(directory)
    assert list(files) == ["de", "en", "fr"]
    assert discover_corpus(directory, ["fr", "en"]) == {"fr": files["fr"], "en": files["en"]}
    mapping = discover_corpus({"xx": directory / "de.txt", "yy": [directory / "en.txt.xz"]})
    assert mapping == {"xx": [directory / "de.txt"], "yy": [directory / "en.txt.xz"]}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing", "is not a directory"),
        (lambda d: d, "holds no language files"),
        (lambda d: {"en": d / "nope.txt"}, "does not exist"),
    ],
)
def test_bad_corpus_is_a_clear_error(tmp_path: Path, setup, message: str) -> None:
    with pytest.raises(CorpusError, match=message):
        discover_corpus(setup(tmp_path))


def test_unknown_language_filter_lists_the_available_ones(tmp_path: Path) -> None:
    directory = _corpus(tmp_path / "c", {"en": 3, "fr": 3})
    with pytest.raises(CorpusError, match=r"languages=\['xx'\] are not in .* available: \['en', 'fr'\]"):
        discover_corpus(directory, ["en", "xx"])


def test_corrupt_and_truncated_files_fail_before_any_pass_and_bad_utf8_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "corrupt.txt.xz").write_bytes(b"this is not xz")
    with pytest.raises(CorpusError, match=r"corrupt\.txt\.xz' cannot be read"):
        discover_corpus({"en": tmp_path / "corrupt.txt.xz"})
    # invalid UTF-8: replaced and counted, as the CC-100 reader and the pretraining stream do (no refusal)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\r\nthé\nok\rend\n".encode("latin-1"))
    sample = count_sentences(discover_corpus({"fr": tmp_path / "latin1.txt"}), progress=False)["fr"]
    assert (sample.sentences, sample.invalid_utf8_lines) == (4, 2)
    assert list(iter_lines(tmp_path / "latin1.txt")) == ["caf\ufffd au lait", "th\ufffd", "ok", "end"]
    # A truncated stream passes the probe (its first block is fine) and fails while counting, naming the line.
    blob = lzma.compress("".join(f"line {i} {'x' * 50}\n" for i in range(20000)).encode(), preset=0)
    (tmp_path / "cut.txt.xz").write_bytes(blob[: len(blob) // 2])
    files = discover_corpus({"en": tmp_path / "cut.txt.xz"})
    with pytest.raises(CorpusError, match=r"cut\.txt\.xz' cannot be read after line \d+"):
        count_sentences(files, progress=False)


def test_empty_language_is_an_error_before_sampling(tmp_path: Path) -> None:
    directory = _corpus(tmp_path / "c", {"en": 30})
    _write(directory / "fr.txt", "\n\n   \n")
    with pytest.raises(CorpusError, match=r"languages \['fr'\] have no usable lines"):
        _sample(directory)
