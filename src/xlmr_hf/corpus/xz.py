"""The xz container: stream boundaries from the indexes at the end of a file, and a decoder that reads concatenated
streams with stream padding (which `lzma.LZMAFile` takes for trailing garbage and silently stops at).

Used by `xlmr_hf.data.cc100` (sequential reading) and `xlmr_hf.data.docreader` (seeking to the stream or block that
holds a resume offset). See ``docs/data_pipeline.md`` ("The xz container").
"""

from __future__ import annotations

import lzma
import os
import struct
import zlib
from typing import BinaryIO, NamedTuple

__all__ = ["XZContainerError", "XZDecoder", "XZStream", "read_at", "xz_streams"]

_RAW_CHUNK = 1 << 18  # compressed bytes per read from an xz file
_XZ_PIECE = 1 << 16  # decompressed bytes per liblzma call (an xz error loses at most this much decoded data)
_XZ_HEADER_MAGIC = b"\xfd7zXZ\x00"
_XZ_FOOTER_MAGIC = b"YZ"


class XZContainerError(ValueError):
    """An xz file whose container (stream header, index, footer, padding) cannot be parsed; the message says where."""


class XZStream(NamedTuple):
    """One xz stream of a file: where its bytes start and end in the file and where its data starts in the
    decompressed concatenation of all streams."""

    compressed_start: int
    compressed_end: int  # just after its stream footer (before any stream padding)
    uncompressed_start: int
    uncompressed_size: int
    index_start: int = 0  # file offset of the stream's index, just after its last block
    blocks: tuple[tuple[int, int], ...] = ()  # (file offset of the block, its uncompressed start in the file)


def read_at(raw: BinaryIO, position: int, size: int) -> bytes:
    raw.seek(position)
    data = raw.read(size)
    if len(data) != size:
        raise XZContainerError(f"expected {size} bytes at file offset {position}, read {len(data)}")
    return data


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """(value, next position) of an xz multibyte integer (7 bits per byte, at most 9 bytes)."""
    value = 0
    for shift in range(0, 63, 7):
        if position >= len(data):
            raise XZContainerError("index ends inside a multibyte integer")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                raise XZContainerError("index holds a non-minimal multibyte integer")
            return value, position
    raise XZContainerError("index holds a multibyte integer longer than 9 bytes")


def _parse_index(index: bytes, where: int) -> list[tuple[int, int]]:
    """(padded compressed size, uncompressed size) per block, from one stream's index field."""
    if not index or index[0] != 0:
        raise XZContainerError(f"no index indicator (0x00) at file offset {where}")
    if zlib.crc32(index[:-4]) != struct.unpack("<I", index[-4:])[0]:
        raise XZContainerError(f"index CRC32 mismatch at file offset {where}")
    count, position = _varint(index, 1)
    blocks = []
    for _ in range(count):
        unpadded, position = _varint(index, position)
        size, position = _varint(index, position)
        if unpadded < 5:
            raise XZContainerError(f"index record with unpadded size {unpadded} at file offset {where}")
        blocks.append(((unpadded + 3) & ~3, size))
    padding = index[position:-4]
    if len(padding) > 3 or (position + len(padding)) % 4 or padding.strip(b"\0"):
        raise XZContainerError(f"index records do not fill the index field at file offset {where}")
    return blocks


def xz_streams(raw: BinaryIO) -> list[XZStream]:
    """The streams of a (seekable) xz file, in file order, parsed from the end of the file: stream padding (zero
    bytes), stream footer (CRC32, backward size, flags, ``YZ``), index (indicator 0x00, record count, (unpadded size,
    uncompressed size) records, padding, CRC32), then the stream header (magic, the same flags, CRC32) found before
    the blocks. Raises `XZContainerError` when any of it is missing or inconsistent."""
    raw.seek(0, os.SEEK_END)
    end = raw.tell()
    found: list[tuple[int, int, int, list[tuple[int, int]]]] = []  # (start, end, index start, blocks), last first
    while end > 0:
        if end % 4:
            raise XZContainerError(f"xz data ending at file offset {end} is not a multiple of 4 bytes long")
        while end > 0:  # stream padding
            size = min(end, 4096)
            tail = read_at(raw, end - size, size)
            kept = len(tail.rstrip(b"\0"))
            end -= size - kept
            if kept:
                break
        if end == 0:
            break
        if end % 4:
            raise XZContainerError(f"stream padding before file offset {end} is not a multiple of 4 bytes")
        if end < 24:
            raise XZContainerError(f"{end} bytes before file offset {end} are too few for an xz stream")
        footer = read_at(raw, end - 12, 12)
        if footer[10:] != _XZ_FOOTER_MAGIC or zlib.crc32(footer[4:10]) != struct.unpack("<I", footer[:4])[0]:
            raise XZContainerError(f"no valid xz stream footer ends at file offset {end}")
        index_size = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
        index_start = end - 12 - index_size
        if index_start < 12:
            raise XZContainerError(f"the index size {index_size} of the stream ending at {end} exceeds the file")
        blocks = _parse_index(read_at(raw, index_start, index_size), index_start)
        start = index_start - sum(padded for padded, _ in blocks) - 12
        if start < 0:
            raise XZContainerError(f"the blocks of the stream ending at file offset {end} exceed the file")
        header = read_at(raw, start, 12)
        if (header[:6] != _XZ_HEADER_MAGIC or header[6:8] != footer[8:10]
                or zlib.crc32(header[6:8]) != struct.unpack("<I", header[8:])[0]):
            raise XZContainerError(f"no valid xz stream header matching the footer at {end} at file offset {start}")
        found.append((start, end, index_start, blocks))
        end = start
    if not found:
        raise XZContainerError("the file holds no xz stream")
    streams, position = [], 0
    for start, stop, index_start, blocks in reversed(found):
        offsets, compressed, uncompressed = [], start + 12, position
        for padded, size in blocks:
            offsets.append((compressed, uncompressed))
            compressed += padded
            uncompressed += size
        streams.append(XZStream(start, stop, position, uncompressed - position, index_start, tuple(offsets)))
        position = uncompressed
    return streams


class XZDecoder:
    """Decompresses the xz streams of `raw` from its current position (a stream start), skipping stream padding."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._pending = b""  # compressed bytes read but not yet given to a decompressor
        self._decompressor: lzma.LZMADecompressor | None = None
        self._error: BaseException | None = None  # raised by the next read (after the data decoded before it)
        # Inside a stream entered at a later block: [uncompressed bytes left in the stream, compressed bytes left
        # before its index, file offset after its footer]. The index is never decoded (it would not match).
        self._partial: list[int] | None = None

    def enter_block(self, header: bytes, remaining: int, block_bytes: int, stream_end: int) -> None:
        """Decode from a block that is not its stream's first (`raw` is positioned at it): the stream's `header`
        then the blocks' `block_bytes`, up to the stream's `remaining` uncompressed bytes; then go on after
        `stream_end`. The skipped blocks are not read at all."""
        self._pending, self._partial = header, [remaining, block_bytes, stream_end]
        self._decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def read(self, size: int) -> bytes:
        """Up to `size` decompressed bytes; b"" at the end. Raises EOFError (truncated) or LZMAError (corrupt) once
        the data decoded before the error has been returned. Decodes `_XZ_PIECE` bytes per call: an error loses the
        output of its call (liblzma returns none), at most that much."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        pieces: list[bytes] = []
        total = 0
        while total < size:
            try:
                out = self._decode(min(size - total, _XZ_PIECE))
            except (EOFError, lzma.LZMAError) as error:
                if not pieces:
                    raise
                self._error = error
                break
            if not out:
                break
            pieces.append(out)
            total += len(out)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _decode(self, size: int) -> bytes:
        while True:
            decompressor = self._decompressor
            if decompressor is None:
                if not self._start_stream():
                    return b""
                decompressor = self._decompressor
                assert decompressor is not None
            partial = self._partial
            data = b""
            if decompressor.needs_input:
                if self._pending:
                    data, self._pending = self._pending, b""
                elif partial is None:
                    data = self._raw.read(_RAW_CHUNK)
                elif partial[1]:
                    data = self._raw.read(min(_RAW_CHUNK, partial[1]))
                    partial[1] -= len(data)
                if not data:
                    raise EOFError("truncated xz stream (it ends before its end-of-stream marker)")
            if partial is None:
                out = decompressor.decompress(data, size)
                if decompressor.eof:
                    self._pending, self._decompressor = decompressor.unused_data, None
            else:
                out = decompressor.decompress(data, min(size, partial[0]))
                partial[0] -= len(out)
                if not partial[0]:  # the stream's data is complete: its index and footer are left out
                    self._raw.seek(partial[2])
                    self._pending, self._decompressor, self._partial = b"", None, None
            if out:
                return out

    def _start_stream(self) -> bool:
        while True:
            if not self._pending:
                self._pending = self._raw.read(_RAW_CHUNK)
                if not self._pending:
                    return False
            self._pending = self._pending.lstrip(b"\0")  # stream padding
            if self._pending:
                self._decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
                return True
