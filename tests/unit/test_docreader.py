"""`DocumentReader`: documents equal to `iter_cc100_documents`, endless passes, exact and seek-based resumption, the
xz container parser, errors, and the multi-stream shards `ShardWriter` writes."""

from __future__ import annotations

import io
import itertools
import json
import logging
import lzma
import pickle
import random
import re
import zlib
from pathlib import Path

import pytest

from xlmr_hf.corpus import readers
from xlmr_hf.data import docreader
from xlmr_hf.data.cc100 import CC100Error, CC100ReadError, iter_cc100_documents
from xlmr_hf.data.docreader import (
    DOCUMENT_READER_STATE_VERSION,
    DocumentReader,
    XZContainerError,
    XZStream,
    xz_streams,
)

TRICKY = {
    "plain": b"a\nb\n\nc\n\n",
    "no final newline": b"a\nb\n\nc",
    "crlf": b"a\r\nb\r\n\r\nc\r\n\r\n",
    "lone cr": b"a\rb\r\rc",
    "mixed line ends": b"a\r\nb\rc\n\r\n\rd",
    "cr then lf blank": b"a\r\r\nb\n\r\n\r\nc\r",
    "run of blank lines": b"a\n\n\n\n\nb\n\n\n",
    "whitespace-only lines": b"a\n \t \n\xe3\x80\x80\nb\n\x0c\nc\n\x1c\x1f\nd\n\xc2\x85\xc2\xa0\ne\n\xe2\x80\xa9\nf",
    "leading blank lines": b"\n\n  \r\n\na\n\nb\n",
    "paragraphs kept verbatim": b"  lead and trail  \n\tx\xe2\x80\xa8y\x0cz\n\n  \nnext ",
    "invalid utf-8": b"ok\n\xff\xfe bad\n\n\xe4\xb8\n\xe4\xb8\xad\xe6\n\n\xe3\x80 not blank\n\nend\xc2",
    "trailing whitespace line": b"a\n   ",
    "multilingual": "Grüße\nПривет\n\nこんにちは\n\n".encode(),
}
PIECES = [b"a", b"bc", b" ", b"\t", b"\n", b"\n", b"\r", b"\r\n", b"\xe3\x80\x80", b"\xc2\x85", b"\xe2\x80\xa8",
          b"\xff", b"\xe4\xb8", "字".encode(), b"\x0c", b"\x1c", b"\n\n"]


def write(path: Path, data: bytes, cuts: tuple[int, ...] = (), padding: int = 0) -> Path:
    """`data` as `path`: plain, or xz (one stream per piece between `cuts`, `padding` zero bytes between streams)."""
    if not path.name.endswith(".xz"):
        path.write_bytes(data)
        return path
    bounds = [0, *cuts, len(data)]
    streams = [lzma.compress(data[a:b], preset=0) for a, b in itertools.pairwise(bounds)]
    path.write_bytes((b"\0" * padding).join(streams))
    return path


def reference(tmp_path: Path, data: bytes) -> list[str]:
    """What `iter_cc100_documents` reads from `data` as a plain file."""
    return list(iter_cc100_documents(write(tmp_path / "ref.txt", data)))


def take(reader: DocumentReader, n: int) -> list[str]:
    return [next(reader) for _ in range(n)]


@pytest.fixture(autouse=True)
def _quiet_cc100(caplog):
    caplog.set_level(logging.ERROR, logger="xlmr_hf.data.cc100")  # its invalid UTF-8 counts are not under test


# ------------------------------------------------------------------------------------------------ same documents
def test_whitespace_bytes_match_python_re():
    """The bytes separator regex treats exactly the characters `[^\\S\\n]` matches (less "\\r") as blank."""
    whitespace = re.compile(docreader._WHITESPACE + b"+")
    expected = {chr(c) for c in range(0x110000) if re.match(r"[^\S\n]", chr(c))} - {"\r"}
    assert len(expected) == 27
    for c in range(0x110000):
        char = chr(c)
        if 0xD800 <= c <= 0xDFFF:
            continue
        assert bool(whitespace.fullmatch(char.encode())) == (char in expected), hex(c)
    assert set(docreader._SEPARATOR_BYTES) >= {b for char in expected | {"\n", "\r"} for b in char.encode()}


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
@pytest.mark.parametrize("suffix", [".txt", ".txt.xz"])
@pytest.mark.parametrize("case", list(TRICKY))
def test_tricky_texts_equal_iter_cc100_documents(tmp_path, monkeypatch, case, suffix, chunk):
    monkeypatch.setattr(docreader, "_CHUNK", chunk)
    data = TRICKY[case]
    expected = list(iter_cc100_documents(write(tmp_path / f"xx{suffix}", data)))
    assert expected  # every case has documents
    cuts = (len(data) // 3, len(data) // 2) if suffix.endswith(".xz") else ()
    with DocumentReader([write(tmp_path / f"xx{suffix}", data, cuts)]) as reader:
        assert take(reader, 3 * len(expected)) == expected * 3  # and every later pass repeats the first
        assert reader.epoch == 2 and reader.documents == 3 * len(expected)


@pytest.mark.parametrize("suffix", [".txt", ".txt.xz"])
def test_random_texts_equal_reference_across_chunks_and_streams(tmp_path, monkeypatch, suffix):
    for seed in range(150):
        rng = random.Random(seed)
        monkeypatch.setattr(docreader, "_CHUNK", rng.randint(1, 9))
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 80)))
        expected = reference(tmp_path, data)
        if not expected:
            continue
        cuts = tuple(sorted(rng.randint(0, len(data)) for _ in range(3)))  # may cut inside "\r\n" or a character
        path = write(tmp_path / f"xx{suffix}", data, cuts, padding=4 * rng.randint(0, 2))
        assert take(DocumentReader([path]), 2 * len(expected)) == expected * 2, (seed, data)


def test_long_documents_span_many_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(docreader, "_CHUNK", 16)
    documents = ["x" * 5000 + "\n" + "é" * 3000, "short", "\u3000y" * 2000]
    path = write(tmp_path / "xx.txt.xz", ("\n\n".join(documents) + "\n").encode(), cuts=(7001, 9000))
    assert take(DocumentReader([path]), 6) == documents * 2


def test_files_in_order_wrap_and_epochs(tmp_path):
    a = write(tmp_path / "xx.txt", b"a0\n\na1\n")
    (tmp_path / "b").mkdir()
    b = write(tmp_path / "b" / "xx.txt.xz", b"b0\n\n")
    empty = write(tmp_path / "empty.txt", b"\n \n")  # a file without documents is passed over
    c = write(tmp_path / "c.txt", b"\n\nc0\nc1")
    reader = DocumentReader([a, b, empty, str(c)], language="xx")
    assert (reader.epoch, reader.documents) == (0, 0)
    seen = []
    for _ in range(12):
        seen.append((next(reader), reader.epoch, reader.documents))
    one_pass = ["a0", "a1", "b0", "c0\nc1"]
    assert [text for text, _, _ in seen] == one_pass * 3
    assert [epoch for _, epoch, _ in seen] == [0] * 4 + [1] * 4 + [2] * 4
    assert [count for _, _, count in seen] == list(range(1, 13))
    assert iter(reader) is reader


@pytest.mark.parametrize("files", [[b""], [b"\n\n \r\n"], [b"", b"\t\n"]])
def test_files_without_documents_raise(tmp_path, files):
    paths = [write(tmp_path / f"f{i}.txt", data) for i, data in enumerate(files)]
    reader = DocumentReader(paths, language="xx")
    names = [str(p) for p in paths]
    with pytest.raises(CC100Error, match=re.escape(f"language 'xx': files {names} contain no documents")):
        next(reader)


def test_no_documents_is_detected_after_resuming_at_the_end(tmp_path):
    path = write(tmp_path / "xx.txt", b"only\n")
    reader = DocumentReader([path], language="xx")
    assert next(reader) == "only"
    state = reader.state_dict()
    path.write_bytes(b"\n" * 5)  # the same size: the state still fits, the file has no documents any more
    resumed = DocumentReader([path], language="xx")
    resumed.load_state_dict(state)
    with pytest.raises(CC100Error, match="contain no documents"):
        next(resumed)


# ------------------------------------------------------------------------------------------------ resumption
LAYOUTS = {"txt": (".txt", (), 0), "xz single": (".txt.xz", (), 0), "xz multi": (".txt.xz", (5, 17, 40, 41), 4)}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_resume_at_every_document_continues_exactly(tmp_path, monkeypatch, layout):
    monkeypatch.setattr(docreader, "_CHUNK", 4)
    suffix, cuts, padding = LAYOUTS[layout]
    data = b"\n\nd0\r\nx\n\nd1\n \nd2 \xe3\x80\x80\n\n\n\nd3\rd3\r\r\nd4\n\n\xff\n\nd6\nlast"
    path = write(tmp_path / f"xx{suffix}", data, cuts, padding)
    other = write(tmp_path / "yy.txt.xz", b"y0\n\ny1\n\n", cuts=(4,))
    files = [path, other]
    expected = (reference(tmp_path, data) + ["y0", "y1"]) * 3
    reader = DocumentReader(files)
    states = []
    for _ in range(len(expected) - 9):
        states.append(json.loads(json.dumps(reader.state_dict())))  # through JSON, as in a checkpoint
        next(reader)
    for index, state in enumerate(states):
        assert state["documents"] == index
        resumed = DocumentReader(files)
        resumed.load_state_dict(state)
        assert (resumed.documents, resumed.epoch) == (state["documents"], state["epoch"])
        assert take(resumed, 9) == expected[index:index + 9], index
        assert resumed.documents == index + 9
        assert resumed.epoch == (index + 8) // 9


def test_resume_at_random_points_of_random_files(tmp_path, monkeypatch):
    for seed in range(60):
        rng = random.Random(1000 + seed)
        monkeypatch.setattr(docreader, "_CHUNK", rng.randint(1, 9))
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 80)))
        expected = reference(tmp_path, data)
        if not expected:
            continue
        suffix = ".txt.xz" if seed % 2 else ".txt"
        cuts = tuple(sorted(rng.randint(0, len(data)) for _ in range(3)))
        path = write(tmp_path / f"xx{suffix}", data, cuts, padding=4 * (seed % 3))
        reader = DocumentReader([path])
        take(reader, rng.randint(0, 2 * len(expected)))
        resumed = DocumentReader([path])
        resumed.load_state_dict(reader.state_dict())
        assert take(resumed, len(expected) + 1) == take(reader, len(expected) + 1), (seed, data)
        assert resumed.state_dict() == reader.state_dict()


def test_state_dict_layout(tmp_path):
    path = write(tmp_path / "xx.txt", b"\n\nab\n\n\ncd\r\n\r\nef")
    reader = DocumentReader([path, "memory://bucket/yy.txt.xz?version=3"], language="xx")
    assert reader.state_dict() == {"version": DOCUMENT_READER_STATE_VERSION, "files": ["xx.txt",
                                   "memory://bucket/yy.txt.xz"], "file_index": 0, "offset": 0, "documents": 0,
                                   "epoch": 0}
    assert next(reader) == "ab"
    assert reader.state_dict()["offset"] == 7  # "\n\nab\n\n\n": where "cd" starts
    assert next(reader) == "cd"
    assert reader.state_dict()["offset"] == 13
    assert next(reader) == "ef"
    assert reader.state_dict()["offset"] == 15  # the end of the file


def test_close_keeps_the_position(tmp_path, monkeypatch):
    monkeypatch.setattr(docreader, "_CHUNK", 3)
    path = write(tmp_path / "xx.txt.xz", b"a\n\nb\n\nc\n\nd", cuts=(3, 6))
    with DocumentReader([path]) as reader:
        assert take(reader, 2) == ["a", "b"]
    assert reader._source is None
    assert take(reader, 4) == ["c", "d", "a", "b"]
    reader.close()
    reader.close()


BAD_STATES = [
    ({"version": 2}, r"state 'version'=2 is not supported; expected 1"),
    ({"files": ["other.txt"]}, (r"state 'files'=\['other.txt'\] differs from this reader's files \['xx.txt'\] "
                                r"\(language 'xx'\)")),
    ({"file_index": 1}, r"state 'file_index'=1 is not allowed; expected an int in \[0, 0\]"),
    ({"offset": -1}, r"state 'offset'=-1 is not allowed; expected an int >= 0"),
    ({"offset": 2.0}, r"state 'offset'=2.0 is not allowed"),
    ({"documents": True}, r"state 'documents'=True is not allowed"),
    ({"epoch": None}, r"state 'epoch'=None is not allowed"),
]


@pytest.mark.parametrize(("change", "message"), BAD_STATES)
def test_invalid_states_are_rejected(tmp_path, change, message):
    reader = DocumentReader([write(tmp_path / "xx.txt", b"a\n\nb\n")], language="xx")
    with pytest.raises(CC100Error, match=message):
        reader.load_state_dict({**reader.state_dict(), **change})
    with pytest.raises(CC100Error, match="state=\\[\\] is not allowed; expected the dict of state_dict"):
        reader.load_state_dict([])  # type: ignore[arg-type]
    assert take(reader, 2) == ["a", "b"]  # a rejected state leaves the reader as it was


@pytest.mark.parametrize("suffix", [".txt", ".txt.xz"])
def test_offset_beyond_the_file_is_an_error(tmp_path, suffix):
    path = write(tmp_path / f"xx{suffix}", b"a\n\nb\n", cuts=(3,) if suffix.endswith("xz") else ())
    reader = DocumentReader([path])
    reader.load_state_dict({**reader.state_dict(), "offset": 6})
    with pytest.raises(CC100Error, match=r"resume offset 6 is beyond the end of CC-100 file .*xx\.txt(\.xz)?' \(5 "
                                         r"decompressed bytes\): the file changed"):
        next(reader)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"files": []}, r"files=\[\] is not allowed; expected a non-empty list"),
    ({"files": "xx.txt"}, r"files='xx.txt' is not allowed"),
    ({"files": ["a.txt", 3]}, r"files\[1\]=3 is not allowed; expected a path or URL string"),
    ({"files": ["a.txt"], "on_error": "ignore"}, r"on_error='ignore' is not allowed; expected 'raise' or 'skip'"),
    ({"files": ["a.txt"], "language": 5}, r"language=5 is not allowed"),
])
def test_invalid_arguments(kwargs, message):
    files = kwargs.pop("files")
    with pytest.raises(CC100Error, match=message):
        DocumentReader(files, **kwargs)


def test_missing_file(tmp_path):
    with pytest.raises(CC100Error, match=r"CC-100 file '.*nope\.txt' does not exist"):
        next(DocumentReader([tmp_path / "nope.txt"]))


# ------------------------------------------------------------------------------------------------ xz container
def test_xz_streams_hand_checked(tmp_path):
    parts = [b"first stream\n\n" * 3, b"", b"second\n" * 50, b"x"]
    streams = [lzma.compress(part, preset=0) for part in parts]
    data = streams[0] + b"\0" * 4 + streams[1] + streams[2] + b"\0" * 12 + streams[3] + b"\0" * 8
    sizes = [len(s) for s in streams]
    assert all(size % 4 == 0 for size in sizes)
    c1 = sizes[0] + 4
    c2 = c1 + sizes[1]
    c3 = c2 + sizes[2] + 12
    index_sizes = [8, 8, 12, 8]  # indicator, count, record varints (350 takes two bytes), padding to 4, CRC32
    ends = [sizes[0], c2, c2 + sizes[2], c3 + sizes[3]]
    index_starts = [end - 12 - size for end, size in zip(ends, index_sizes)]
    assert xz_streams(io.BytesIO(data)) == [
        XZStream(0, ends[0], 0, 42, index_starts[0], ((12, 0),)),
        XZStream(c1, c2, 42, 0, index_starts[1], ()),
        XZStream(c2, ends[2], 42, 350, index_starts[2], ((c2 + 12, 42),)),
        XZStream(c3, ends[3], 392, 1, index_starts[3], ((c3 + 12, 392),)),
    ]


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def multi_block_stream(parts: list[bytes]) -> tuple[bytes, list[int]]:
    """One xz stream holding a block per part (Python's lzma writes one block per stream), built from single-block
    streams: their blocks, a new index of their records, a new footer. Also the file offset of each block."""
    blocks, records, offsets = [], [], []
    for part in parts:
        single = lzma.compress(part, preset=0)
        index_size = (int.from_bytes(single[-8:-4], "little") + 1) * 4
        index = single[-12 - index_size:-12]
        assert index[:2] == b"\0\1"  # indicator, one record
        position, values = 2, []
        for _ in range(2):  # unpadded size, uncompressed size
            value = shift = 0
            while True:
                byte = index[position]
                position += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            values.append(value)
        assert values[1] == len(part)
        offsets.append(12 + sum(map(len, blocks)))
        blocks.append(single[12:-12 - index_size])
        records.append(varint(values[0]) + varint(values[1]))
    header = lzma.compress(b"", preset=0)[:12]
    index = b"\0" + varint(len(parts)) + b"".join(records)
    index += b"\0" * (-len(index) % 4)
    index += zlib.crc32(index).to_bytes(4, "little")
    backward = (len(index) // 4 - 1).to_bytes(4, "little") + header[6:8]
    footer = zlib.crc32(backward).to_bytes(4, "little") + backward + b"YZ"
    return header + b"".join(blocks) + index + footer, offsets


def test_resume_inside_a_multi_block_stream_reads_only_the_later_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(docreader, "_CHUNK", 64)
    documents = [f"doc {i} " + "q" * (i % 5) for i in range(60)]
    data = "".join(doc + "\r\n\n" for doc in documents).encode()
    cuts = [0, 97, 301, 302, 555, len(data)]  # block boundaries inside documents and line ends
    parts = [data[a:b] for a, b in itertools.pairwise(cuts)]
    stream, offsets = multi_block_stream(parts)
    assert lzma.decompress(stream) == data
    tail = lzma.compress(b"tail\n", preset=0)
    path = tmp_path / "xx.txt.xz"
    path.write_bytes(stream + b"\0" * 4 + tail)
    streams = xz_streams(io.BytesIO(path.read_bytes()))
    assert [s.blocks for s in streams] == [tuple(zip(offsets, cuts)), ((len(stream) + 4 + 12, len(data)),)]
    expected = (documents + ["tail"]) * 2
    reader = DocumentReader([path])
    states = []
    for _ in range(len(expected) - 5):
        states.append(reader.state_dict())
        next(reader)
    for index, state in enumerate(states):
        resumed = DocumentReader([path])
        resumed.load_state_dict(state)
        assert take(resumed, 5) == expected[index:index + 5], index
    # resume in the fourth block: the first three blocks are not decoded (corrupting them changes nothing)
    state = next(s for s in states if s["offset"] > cuts[3] + 20 and s["epoch"] == 0)
    position = states.index(state)
    raw = bytearray(path.read_bytes())
    raw[offsets[1] + 14:offsets[3] - 4] = b"\x55" * (offsets[3] - 4 - offsets[1] - 14)
    path.write_bytes(bytes(raw))
    resumed = DocumentReader([path])
    resumed.load_state_dict(state)
    assert take(resumed, len(documents) + 1 - position) == expected[position:len(documents) + 1]
    with pytest.raises(CC100ReadError, match="corrupt xz data"):
        take(DocumentReader([path]), len(documents))


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: d + b"\0\0", "not a multiple of 4 bytes"),
    (lambda d: b"\0" * len(d), "holds no xz stream"),
    (lambda d: d[:-2] + b"ZZ", "no valid xz stream footer ends at file offset"),
    (lambda d: d[:-12] + bytes([d[-12] ^ 1]) + d[-11:], "no valid xz stream footer"),
    (lambda d: d[:7] + bytes([d[7] ^ 1]) + d[8:], "no valid xz stream header matching the footer at"),
    (lambda d: b"\1\0\0\0" + d, "stream padding before file offset 1 is not a multiple of 4 bytes"),
    (lambda d: d[:-16] + bytes([d[-16] ^ 1]) + d[-15:], "index CRC32 mismatch"),
    (lambda d: b"junk" + d[:4], "too few for an xz stream"),
])
def test_xz_streams_rejects_damaged_containers(damage, message):
    data = lzma.compress(b"hello\n\n" * 10, preset=0)
    with pytest.raises(XZContainerError, match=message):
        xz_streams(io.BytesIO(damage(data)))


def test_resume_into_a_later_stream_decompresses_only_that_stream(tmp_path, monkeypatch):
    documents = [f"doc {i} " + "z" * (i % 7) for i in range(40)]
    data = "".join(doc + "\n\n" for doc in documents).encode()
    cuts = tuple(data.index(f"doc {i} ".encode()) for i in (10, 20, 30))
    path = write(tmp_path / "xx.txt.xz", data, cuts, padding=4)
    reader = DocumentReader([path])
    take(reader, 25)
    state = reader.state_dict()
    decoded = []
    original_read = docreader.XZDecoder.read
    monkeypatch.setattr(docreader.XZDecoder, "read", lambda self, n: decoded.append(original_read(self, n))
                        or decoded[-1])
    resumed = DocumentReader([path])
    resumed.load_state_dict(state)
    assert take(resumed, 15) == documents[25:40]
    assert sum(map(len, decoded)) == len(data) - cuts[1]  # from the third stream's start to the end, once
    # the first two streams' payload is now corrupt: resuming into the third stream still works
    raw = bytearray(path.read_bytes())
    streams = xz_streams(io.BytesIO(bytes(raw)))
    for stream in streams[:2]:
        middle = (stream.compressed_start + stream.compressed_end) // 2
        raw[middle - 2:middle + 2] = b"\xaa\x55\xaa\x55"
    path.write_bytes(bytes(raw))
    resumed = DocumentReader([path])
    resumed.load_state_dict(state)
    assert take(resumed, 15) == documents[25:40]
    with pytest.raises(CC100ReadError, match="corrupt xz data"):
        take(DocumentReader([path]), 40)


def test_unparseable_container_falls_back_to_decompressing_from_the_start(tmp_path, monkeypatch, caplog):
    def fail(raw):
        raise XZContainerError("simulated")

    monkeypatch.setattr(docreader, "xz_streams", fail)
    path = write(tmp_path / "xx.txt.xz", b"a\n\nb\n\nc\n\nd\n", cuts=(6,))
    reader = DocumentReader([path])
    states = []
    for _ in range(4):
        next(reader)
        states.append(reader.state_dict())
    resumed = DocumentReader([path])
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.data.docreader"):
        for state, expected in zip(states, ["b", "c", "d", "a"]):
            resumed.load_state_dict(state)
            assert next(resumed) == expected
    warnings = [r.getMessage() for r in caplog.records if r.name == "xlmr_hf.data.docreader"]
    assert len(warnings) == 1 and "cannot seek in it (simulated)" in warnings[0] and "xx.txt.xz" in warnings[0]


# ------------------------------------------------------------------------------------------------ xz errors
def truncated_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = "".join(f"document {i}\nline two {i}\n\n" for i in range(300)).encode()
    whole = lzma.compress(data, preset=0)
    path = tmp_path / "xx.txt.xz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path, data


def test_truncated_xz_raises(tmp_path):
    path, _ = truncated_file(tmp_path)
    with pytest.raises(CC100ReadError, match=r"truncated xz stream .* in CC-100 file '.*xx\.txt\.xz' at uncompressed "
                                             r"byte [\d,]+; on_error='skip'"):
        take(DocumentReader([path]), 300)


def test_truncated_xz_skip_ends_the_file_like_iter_cc100_documents(tmp_path, caplog):
    path, _ = truncated_file(tmp_path)
    expected = list(iter_cc100_documents(path, on_error="skip"))
    assert 0 < len(expected) < 300
    other = write(tmp_path / "yy.txt", b"y\n")
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.data.docreader"):
        reader = DocumentReader([path, other], on_error="skip")
        assert take(reader, 2 * len(expected) + 2) == (expected + ["y"]) * 2
    assert any("truncated xz stream" in r.getMessage() and "skipped the rest of the file" in r.getMessage()
               for r in caplog.records)


def test_resume_into_a_truncated_part(tmp_path):
    path, data = truncated_file(tmp_path)
    whole = tmp_path / "whole" / "xx.txt.xz"
    whole.parent.mkdir()
    whole.write_bytes(lzma.compress(data, preset=0))
    reader = DocumentReader([whole])
    take(reader, 290)
    state = reader.state_dict()
    other = write(tmp_path / "yy.txt", b"y\n")
    resumed = DocumentReader([path])
    resumed.load_state_dict(state)
    with pytest.raises(CC100ReadError, match="truncated xz stream"):
        next(resumed)
    state["files"].append("yy.txt")
    resumed = DocumentReader([path, other], on_error="skip")
    resumed.load_state_dict(state)
    assert next(resumed) == "y" and resumed.state_dict()["file_index"] == 1


def test_pickled_reader_continues_at_its_position(tmp_path, monkeypatch):
    monkeypatch.setattr(docreader, "_CHUNK", 2)
    reader = DocumentReader([write(tmp_path / "xx.txt.xz", b"a\n\nb\n\nc\n\nd\n", cuts=(4,))], language="xx")
    assert take(reader, 2) == ["a", "b"]
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.state_dict() == reader.state_dict() and copy.language == "xx"
    assert take(copy, 3) == take(reader, 3) == ["c", "d", "a"]


def test_corrupt_xz_raise_and_skip(tmp_path, caplog):
    rng = random.Random(0)
    data = "".join(f"document {i} {rng.random()}\n\n" for i in range(20000)).encode()
    raw = bytearray(lzma.compress(data, preset=0))
    raw[len(raw) // 2:len(raw) // 2 + 8] = b"\x00\xff" * 4
    path = tmp_path / "xx.txt.xz"
    path.write_bytes(bytes(raw) + lzma.compress(b"after\n", preset=0))
    with pytest.raises(CC100ReadError, match=r"corrupt xz data \(Corrupt input data\) in CC-100 file '.*xx\.txt\.xz' "
                                             r"at uncompressed byte [\d,]+; on_error='skip'"):
        take(DocumentReader([path]), 20001)
    before = list(iter_cc100_documents(path, on_error="skip"))
    with caplog.at_level(logging.WARNING, logger="xlmr_hf.data.docreader"):
        documents = take(DocumentReader([path], on_error="skip"), 2 * len(before))
    wrap = documents.index(documents[0], 1)  # the second pass starts after the corrupt point: the rest is skipped
    assert 0 < wrap <= len(before) < wrap + 1000  # lost before the corrupt point: at most one decode call's output
    assert documents[:wrap] == before[:wrap] and documents[wrap:2 * wrap] == before[:wrap]
    assert any("corrupt xz data" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------------ shard writer
def test_shard_writer_cuts_streams_at_document_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "SHARD_STREAM_BYTES", 100)
    rng = random.Random(5)
    documents = [[("w" * rng.randint(1, 12)) for _ in range(rng.randint(1, 4))] for _ in range(120)]

    def build(directory: Path) -> bytes:
        directory.mkdir()
        writer = readers.ShardWriter(directory, preset=0)
        for paragraphs in documents:
            writer.add("", "xx", paragraphs)
        writer.finish()
        return (directory / "__xx.shard").read_bytes()

    shard = build(tmp_path / "one")
    assert build(tmp_path / "two") == shard  # deterministic
    text = "".join("\n".join(p) + "\n\n" for p in documents).encode()
    assert lzma.decompress(shard) == text
    streams = xz_streams(io.BytesIO(shard))
    assert len(streams) > 10 and streams[-1].compressed_end == len(shard)
    for stream in streams[:-1]:
        piece = text[stream.uncompressed_start:stream.uncompressed_start + stream.uncompressed_size]
        assert piece.endswith(b"\n\n") and piece.find(b"\n\n", 98) == len(piece) - 2  # first document end >= 100
    path = tmp_path / "xx.txt.xz"
    path.write_bytes(shard)
    assert take(DocumentReader([path]), len(documents)) == ["\n".join(p) for p in documents]


def test_shard_writer_empty_and_straddling_chunks(monkeypatch):
    monkeypatch.setattr(readers, "SHARD_STREAM_BYTES", 4)

    class Chunks(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(3)  # "\n\n" split across reads

    sink = io.BytesIO()
    readers._compress_streams(Chunks(b"ab\n\ncd\n\nef\n\nghij\n\n"), sink, 0)
    streams = xz_streams(io.BytesIO(sink.getvalue()))
    assert [(s.uncompressed_start, s.uncompressed_size) for s in streams] == [(0, 4), (4, 4), (8, 4), (12, 6)]
    empty = io.BytesIO()
    readers._compress_streams(io.BytesIO(b""), empty, 0)
    assert lzma.decompress(empty.getvalue()) == b"" and len(xz_streams(io.BytesIO(empty.getvalue()))) == 1
