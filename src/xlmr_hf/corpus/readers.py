"""Corpus file I/O for the builder: input readers (plain text, JSONL, Common Crawl WET; optionally gzip / xz), the
paragraph normalisation and dedup key of stages 1–3, and the CC-100 shard writer and merge.

Readers yield `RawDocument`s. Unreadable streams raise `CorpusInputError`; malformed records raise or are skipped
and counted (``on_error``); invalid UTF-8 is replaced and counted (`ReadStats`). `ShardWriter` writes xz streams of
~4 MiB that `xlmr_hf.data.DocumentReader` can seek to. See ``docs/data_pipeline.md`` ("Inputs", "Stages") for the
formats, the error rules and the dedup key.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import lzma
import os
import re
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "INPUT_FORMATS",
    "CorpusBuildError",
    "CorpusInputError",
    "RawDocument",
    "ReadStats",
    "ShardWriter",
    "compression_of",
    "detect_format",
    "merge_shards",
    "normalize_for_dedup",
    "normalize_paragraph",
    "normalized_paragraph_hash",
    "read_documents",
    "read_jsonl",
    "read_text",
    "read_wet",
]

INPUT_FORMATS = ("text", "jsonl", "wet")
_COMPRESSIONS = {".gz": "gzip", ".xz": "xz"}
_FORMAT_SUFFIXES = (  # longest first
    (".warc.wet", "wet"),
    (".wet", "wet"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".txt", "text"),
)
SUPPORTED_SUFFIXES = tuple(s + c for s, _ in _FORMAT_SUFFIXES for c in ("", ".gz", ".xz"))

# Decompression / I/O failures surface as these (gzip.BadGzipFile is an OSError; truncation is an EOFError).
_STREAM_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)
_SURROGATES = re.compile("[\ud800-\udfff]")


class CorpusBuildError(ValueError):
    """A corpus build that cannot go on: invalid settings, inputs or models (a ``ValueError``, so the CLI reports it
    in one line)."""


class CorpusInputError(CorpusBuildError):
    """An input that cannot be read as its format; ``path`` and ``position`` (a human-readable place) say where."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, position: str | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.position = position


@dataclass
class RawDocument:
    """One document as read: raw ``paragraphs`` (not normalised, possibly empty strings), where it starts, its URL."""

    paragraphs: list[str]
    position: str
    url: str | None = None


@dataclass
class ReadStats:
    """What a reader saw besides documents. ``bad_records`` are only non-zero with ``on_error="skip"``."""

    invalid_utf8: int = 0
    """Lines (text, JSONL) or records (WET) that held invalid UTF-8 and were decoded with U+FFFD replacements."""
    bad_records: int = 0
    """Malformed JSONL lines / WARC records skipped (``on_error="skip"``)."""
    skipped_records: int = 0
    """WARC records that are not ``conversion`` records (``warcinfo``, ``request``, ``response``, ...)."""
    bad_record_examples: list[str] = field(default_factory=list)
    """The first few bad-record messages, for the manifest."""

    def to_dict(self) -> dict:
        return {
            "invalid_utf8": self.invalid_utf8,
            "bad_records": self.bad_records,
            "skipped_records": self.skipped_records,
            "bad_record_examples": list(self.bad_record_examples),
        }


def detect_format(path: str | os.PathLike) -> tuple[str, str | None]:
    """``(format, compression)`` of ``path`` from its name: format in `INPUT_FORMATS`, compression ``"gzip"``,
    ``"xz"`` or ``None``. Raises `CorpusBuildError` listing `SUPPORTED_SUFFIXES` for an unknown name."""
    name = Path(path).name.lower()
    compression = None
    for suffix, kind in _COMPRESSIONS.items():
        if name.endswith(suffix):
            name, compression = name[: -len(suffix)], kind
            break
    for suffix, fmt in _FORMAT_SUFFIXES:
        if name.endswith(suffix):
            return fmt, compression
    raise CorpusBuildError(
        f"input {str(path)!r}: cannot tell the format from the file name; supported endings are "
        f"{', '.join(SUPPORTED_SUFFIXES)} (or set input_format to one of {', '.join(INPUT_FORMATS)})"
    )


def compression_of(path: str | os.PathLike) -> str | None:
    name = str(path).lower()
    return next((kind for suffix, kind in _COMPRESSIONS.items() if name.endswith(suffix)), None)


def _open_binary(path: Path) -> BinaryIO:
    compression = compression_of(path)
    try:
        if compression == "gzip":
            return gzip.open(path, "rb")  # type: ignore[return-value]
        if compression == "xz":
            return lzma.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except _STREAM_ERRORS as error:
        raise CorpusInputError(f"input {str(path)!r}: cannot open: {error}", path, "open") from error


def _stream_error(path: Path, where: str, error: BaseException) -> CorpusInputError:
    compression = compression_of(path)
    kind = f"corrupt or truncated {compression} stream" if compression else "read error"
    return CorpusInputError(f"input {str(path)!r}: {kind} {where}: {type(error).__name__}: {error}", path, where)


def _decode(raw: bytes, stats: ReadStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.invalid_utf8 += 1
        return raw.decode("utf-8", errors="replace")


def _bad_record(message: str, path: Path, position: str, on_error: str, stats: ReadStats) -> None:
    if on_error == "raise":
        raise CorpusInputError(f"input {str(path)!r}: {message} at {position} (set on_error='skip' to skip such "
                               "records)", path, position)
    stats.bad_records += 1
    if len(stats.bad_record_examples) < 5:
        stats.bad_record_examples.append(f"{position}: {message}")


def _lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``(line number, decompressed offset, raw line)`` with stream errors turned into `CorpusInputError`."""
    lineno, offset = 0, 0
    with _open_binary(path) as stream:
        iterator = iter(stream)
        while True:
            try:
                raw = next(iterator)
            except StopIteration:
                return
            except _STREAM_ERRORS as error:
                raise _stream_error(path, f"after line {lineno} (decompressed byte offset {offset})", error) from error
            lineno += 1
            yield lineno, offset, raw
            offset += len(raw)


def read_text(path: str | os.PathLike, stats: ReadStats | None = None) -> Iterator[RawDocument]:
    """Documents of a plain-text file: paragraph per line, documents separated by (whitespace-only) blank lines."""
    path, stats = Path(path), stats if stats is not None else ReadStats()
    paragraphs: list[str] = []
    start = 0
    for lineno, _, raw in _lines(path):
        line = _decode(raw, stats)
        if line.strip():
            if not paragraphs:
                start = lineno
            paragraphs.append(line.rstrip("\r\n"))
        elif paragraphs:
            yield RawDocument(paragraphs, f"line {start}")
            paragraphs = []
    if paragraphs:
        yield RawDocument(paragraphs, f"line {start}")


def read_jsonl(
    path: str | os.PathLike, text_field: str = "text", on_error: str = "raise", stats: ReadStats | None = None
) -> Iterator[RawDocument]:
    """Documents of a JSONL file: the string ``text_field`` of each object, split into paragraphs at ``"\\n"``."""
    path, stats = Path(path), stats if stats is not None else ReadStats()
    for lineno, _, raw in _lines(path):
        if not raw.strip():
            continue
        position = f"line {lineno}"
        try:
            record = json.loads(_decode(raw, stats))
        except json.JSONDecodeError as error:
            _bad_record(f"invalid JSON ({error.msg}, column {error.colno})", path, position, on_error, stats)
            continue
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            what = "not a JSON object" if not isinstance(record, dict) else (
                f"no {text_field!r} field" if text_field not in record else
                f"{text_field!r} is {type(text).__name__}, not a string")
            _bad_record(f"{what} (jsonl_text_field={text_field!r})", path, position, on_error, stats)
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from "\udxxx" escapes
            stats.invalid_utf8 += 1
            text = _SURROGATES.sub("\ufffd", text)
        yield RawDocument(text.split("\n"), position)


def read_wet(
    path: str | os.PathLike, on_error: str = "raise", stats: ReadStats | None = None, keep_title: bool = False
) -> Iterator[RawDocument]:
    """Documents of a WET file: the payload of each ``WARC-Type: conversion`` record, one paragraph per line.

    ``keep_title=False`` (cc_net) drops the first payload line, which Common Crawl fills with the page title.
    """
    path, stats = Path(path), stats if stats is not None else ReadStats()
    with _open_binary(path) as stream:
        offset = 0
        record_no = 0

        def readline() -> bytes:
            nonlocal offset
            try:
                line = stream.readline()
            except _STREAM_ERRORS as error:
                raise _stream_error(path, f"at decompressed byte offset {offset} (record {record_no})", error) from error
            offset += len(line)
            return line

        line = readline()
        while line:
            if not line.strip():  # blank lines between records
                line = readline()
                continue
            record_no += 1
            position = f"record {record_no} (decompressed byte offset {offset - len(line)})"
            if not line.startswith(b"WARC/"):
                _bad_record(f"expected a 'WARC/1.0' line, found {line[:40]!r}", path, position, on_error, stats)
                line = _resync(readline)
                continue
            headers: dict[str, str] = {}
            line = readline()
            while line.strip():
                name, sep, value = line.decode("utf-8", errors="replace").partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
                line = readline()
            if not line:
                raise _stream_error(path, f"in the header block of {position}", EOFError("file ends inside a header"))
            try:
                length = int(headers["content-length"])
                if length < 0:
                    raise ValueError(length)
            except (KeyError, ValueError):
                _bad_record(f"WARC header without a valid Content-Length ({headers.get('content-length')!r})",
                            path, position, on_error, stats)
                line = _resync(readline)
                continue
            try:
                payload = stream.read(length)
            except _STREAM_ERRORS as error:
                raise _stream_error(path, f"in the payload of {position}", error) from error
            offset += len(payload)
            if len(payload) < length:
                raise _stream_error(path, f"in the payload of {position}",
                                    EOFError(f"Content-Length {length} but only {len(payload)} bytes left"))
            line = readline()
            if headers.get("warc-type", "").lower() != "conversion":
                stats.skipped_records += 1
                continue
            lines = _decode(payload, stats).split("\n")
            if not keep_title and lines:
                lines = lines[1:]
            yield RawDocument(lines, position, headers.get("warc-target-uri"))


def _resync(readline) -> bytes:
    """Skip lines up to the next one starting with ``WARC/`` (returned) or the end of the stream (``b""``)."""
    line = readline()
    while line and not line.startswith(b"WARC/"):
        line = readline()
    return line


def read_documents(
    path: str | os.PathLike,
    input_format: str = "auto",
    *,
    text_field: str = "text",
    on_error: str = "raise",
    stats: ReadStats | None = None,
    keep_title: bool = False,
) -> Iterator[RawDocument]:
    """Documents of ``path`` in ``input_format`` (``"auto"``: from the file name, see `detect_format`)."""
    fmt = detect_format(path)[0] if input_format == "auto" else input_format
    if fmt == "text":
        return read_text(path, stats)
    if fmt == "jsonl":
        return read_jsonl(path, text_field, on_error, stats)
    if fmt == "wet":
        return read_wet(path, on_error, stats, keep_title)
    raise CorpusBuildError(f"input_format={input_format!r} is invalid; allowed: 'auto', {', '.join(INPUT_FORMATS)}")


# ------------------------------------------------------------------------------------------------- normalisation
def normalize_paragraph(text: str, normalization: str = "NFC") -> str:
    """Stages 1–2 for one paragraph: Unicode normalisation, then strip and collapse whitespace runs to one space."""
    if normalization != "none":
        text = unicodedata.normalize(normalization, text)
    return " ".join(text.split())


@functools.lru_cache(maxsize=1)
def _dedup_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in (*range(0x40000), *range(0xE0000, 0xE1000)):  # P*, Cc, Cf, Nd only occur in planes 0-3 and 14
        char = chr(cp)
        category = unicodedata.category(char)
        if category == "Nd":
            table[cp] = "0"
        elif (category[0] == "P" or category in ("Cc", "Cf")) and not char.isspace():
            table[cp] = None
    return table


def normalize_for_dedup(text: str) -> str:
    """The dedup key: lowercase, Unicode digits → ``0``, punctuation (``P*``) and control/format characters
    (``Cc``/``Cf``) removed, whitespace collapsed. Depends on the Python's Unicode database (in the manifest)."""
    return " ".join(text.lower().translate(_dedup_table()).split())


def normalized_paragraph_hash(text: str) -> bytes:
    """8-byte ``blake2b`` digest of `normalize_for_dedup` (stable across processes and runs, unlike ``hash()``)."""
    return hashlib.blake2b(normalize_for_dedup(text).encode("utf-8"), digest_size=8).digest()


# ------------------------------------------------------------------------------------------- CC-100 writer
class ShardWriter:
    """The CC-100 text of one input, per (bucket, language): buffered to a temporary file, then compressed to
    ``<bucket>__<lang>.shard`` in ``directory`` (xz streams of ~`SHARD_STREAM_BYTES` each, see `finish`); ``counts``
    has documents/paragraphs/characters/bytes per ``"<bucket>/<lang>"``. ``preset=None`` leaves the shard
    uncompressed."""

    def __init__(self, directory: Path, preset: int | None) -> None:
        self.directory, self.preset = directory, preset
        self.buffers: dict[tuple[str, str], list[str]] = {}
        self.sizes: dict[tuple[str, str], int] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, bucket: str, lang: str, paragraphs: list[str]) -> None:
        text = "\n".join(paragraphs) + "\n\n"
        key = (bucket, lang)
        self.buffers.setdefault(key, []).append(text)
        self.sizes[key] = self.sizes.get(key, 0) + len(text)
        c = self.counts.setdefault(f"{bucket}/{lang}", {"documents": 0, "paragraphs": 0, "characters": 0, "bytes": 0})
        c["documents"] += 1
        c["paragraphs"] += len(paragraphs)
        c["characters"] += sum(map(len, paragraphs))
        c["bytes"] += len(text.encode("utf-8"))
        if self.sizes[key] > 1 << 22:
            self._flush(key)

    def _raw(self, key: tuple[str, str]) -> Path:
        return self.directory / f"{key[0]}__{key[1]}.raw"

    def _flush(self, key: tuple[str, str]) -> None:
        with open(self._raw(key), "a", encoding="utf-8", newline="") as handle:
            handle.write("".join(self.buffers[key]))
        self.buffers[key], self.sizes[key] = [], 0

    def finish(self) -> None:
        """Write every buffered (bucket, language) to its ``.shard``: with a preset, a concatenation of independent xz
        streams, a new one after the first document end (``"\\n\\n"``) at or past each `SHARD_STREAM_BYTES` of
        uncompressed text, so that readers can seek to a stream (`xlmr_hf.data.docreader`). Deterministic: the same
        text and preset give the same bytes."""
        for key in list(self.buffers):
            self._flush(key)
            raw, target = self._raw(key), self.directory / f"{key[0]}__{key[1]}.shard"
            if self.preset is None:
                os.replace(raw, target)
                continue
            with open(raw, "rb") as source, open(target, "wb") as sink:
                _compress_streams(source, sink, self.preset)
            raw.unlink()


SHARD_STREAM_BYTES = 1 << 22
"""Uncompressed bytes per xz stream of a shard (each stream ends at the first document end at or after this size)."""


def _compress_streams(source: BinaryIO, sink: BinaryIO, preset: int) -> None:
    """Compress `source` (documents, each ending in ``"\\n\\n"``) into `sink` as xz streams cut after the first
    ``"\\n\\n"`` that completes `SHARD_STREAM_BYTES` or more bytes of the current stream (at least one stream)."""
    compressor: lzma.LZMACompressor | None = None
    size = 0  # uncompressed bytes in the current stream
    last = b""  # the byte before `chunk` (a "\n\n" may straddle two chunks)
    while chunk := source.read(1 << 20):
        position = 0
        while position < len(chunk):
            if compressor is None:
                compressor = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)
                size = 0
            target = position + max(SHARD_STREAM_BYTES - size, 0)  # cut at the first document end >= target
            if position == 0 and target <= 1 and last == b"\n" and chunk[:1] == b"\n":
                end = 1
            else:
                found = chunk.find(b"\n\n", max(target - 2, position))
                end = found + 2 if found >= 0 else -1
            if end < 0:
                sink.write(compressor.compress(chunk[position:]))
                size += len(chunk) - position
                break
            sink.write(compressor.compress(chunk[position:end]))
            sink.write(compressor.flush())
            compressor, position = None, end
        last = chunk[-1:]
    if compressor is not None or not sink.tell():
        sink.write((compressor or lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                                                      preset=preset)).flush())


def merge_shards(output_dir: Path, shards: list[tuple[Path, dict[str, dict[str, int]]]], preset: int | None
                 ) -> list[dict[str, Any]]:
    """Concatenate per-input shards (``(directory, ShardWriter.counts)`` in input order) into the final files:
    ``<lang>.txt[.xz]``, or ``<bucket>/<lang>.txt[.xz]`` with buckets. Returns one entry per file (counts, sha256)."""
    keys = sorted({tuple(name.split("/")) for _, counts in shards for name in counts})
    outputs = []
    for bucket, lang in keys:
        relative = Path(bucket, f"{lang}.txt") if bucket else Path(f"{lang}.txt")
        relative = relative.with_name(relative.name + (".xz" if preset is not None else ""))
        target = output_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        digest = hashlib.sha256()
        totals = {"documents": 0, "paragraphs": 0, "characters": 0, "bytes": 0}
        with open(tmp, "wb") as sink:
            for directory, counts in shards:
                part = counts.get(f"{bucket}/{lang}")
                if part is None:
                    continue
                for name in totals:
                    totals[name] += part[name]
                with open(directory / f"{bucket}__{lang}.shard", "rb") as source:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
                        digest.update(chunk)
        os.replace(tmp, target)
        outputs.append({"path": relative.as_posix(), "language": lang, "bucket": bucket or None, **totals,
                        "file_bytes": target.stat().st_size, "sha256": digest.hexdigest()})
    return outputs
