"""`DocumentReader`: an endless, exactly resumable reader of one language's CC-100 files.

It returns the documents `xlmr_hf.data.cc100.iter_cc100_documents` yields (same text, same order), wraps to the first
file after the last one (counting epochs), and saves its position as a decompressed byte offset. Resuming seeks to
that offset (through the xz stream or block that holds it), so no document is lost or repeated. See
``docs/data_pipeline.md`` ("DocumentReader") for how splitting, seeking and xz errors are handled.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import logging
import lzma
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import fsspec

from .cc100 import (
    CC100Error,
    CC100ReadError,
    _check_on_error,
    _file_name,
    _missing_filesystem,
)
from ..corpus.xz import XZContainerError, XZStream, read_at, XZDecoder, xz_streams

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DOCUMENT_READER_STATE_VERSION", "DocumentReader", "XZContainerError", "XZStream", "xz_streams"]

logger = logging.getLogger(__name__)

DOCUMENT_READER_STATE_VERSION = 1
"""``state_dict()["version"]``; `DocumentReader.load_state_dict` accepts only this version."""

_CHUNK = 1 << 20  # decompressed bytes per read (tests lower it to put documents across chunk boundaries)
_SKIP_CHUNK = 1 << 20  # decompressed bytes per read while discarding up to a resume offset

# Line ends and blank lines, on bytes. _WHITESPACE: the UTF-8 encodings of the characters `[^\S\n]` matches in str
# patterns, without "\r" (a line end here); tests check the list against Python's own `re`.
_EOL = rb"(?:\r\n|\r(?!\n)|\n)"
_WHITESPACE = (rb"(?:[\t\x0b\x0c\x1c-\x1f ]|\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f"
               rb"|\xe3\x80\x80)")
_SPLIT_CR = re.compile(rb"(" + _EOL + rb"(?:" + _WHITESPACE + rb"*" + _EOL + rb")+)")  # captured: split keeps it
_LEADING_CR = re.compile(rb"(?:" + _WHITESPACE + rb"*" + _EOL + rb")+")
_SPLIT_LF = re.compile(rb"(\n(?:" + _WHITESPACE + rb"*\n)+)")  # the same on data without "\r" (faster)
_LEADING_LF = re.compile(rb"(?:" + _WHITESPACE + rb"*\n)+")
# Every byte that can occur in a separator: a separator reaching into new data starts after the carry's last other byte.
_SEPARATOR_BYTES = bytes(sorted(set(b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \xc2\x85\xa0\xe1\x9a\x80\xe2\x81\x9f\xe3"
                                    + bytes(range(0x80, 0x8b)) + b"\xa8\xa9\xaf")))



# ------------------------------------------------------------------------------------------------ the reader
def _state_name(url: str) -> str:
    """How a file is named in the state: the base name of a local path, the URL (without query) of a remote file."""
    if "://" in url and not url.startswith("file://"):
        return url.split("?", 1)[0]
    return _file_name(url)


class _Source:
    """One open file, positioned at a decompressed offset: `read(n)` gives the decompressed bytes from there."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None, offset: int, warned: set[str]) -> None:
        self.url, self.storage_options = url, storage_options
        self.xz = _file_name(url).endswith(".xz")
        self._open()
        try:
            self._seek(offset, warned)
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        try:
            self.raw: BinaryIO = fsspec.open(self.url, "rb", **(self.storage_options or {})).open()
        except FileNotFoundError:
            raise CC100Error(f"CC-100 file {self.url!r} does not exist") from None
        except ImportError as error:
            raise CC100Error(_missing_filesystem(self.url, error)) from None
        self.decoder = XZDecoder(self.raw) if self.xz else None

    def read(self, size: int) -> bytes:
        return self.decoder.read(size) if self.decoder is not None else self.raw.read(size)

    def close(self) -> None:
        self.raw.close()

    def _beyond_end(self, offset: int, size: int) -> CC100Error:
        return CC100Error(f"resume offset {offset:,} is beyond the end of CC-100 file {self.url!r} ({size:,} "
                          "decompressed bytes): the file changed since the state was saved")

    def _seek(self, offset: int, warned: set[str]) -> None:
        """Position the source at decompressed byte `offset`: seek when possible, else read and discard."""
        if offset == 0:
            return
        skip = offset
        try:
            if not self.xz:
                self.raw.seek(0, os.SEEK_END)
                size = self.raw.tell()
                if offset > size:
                    raise self._beyond_end(offset, size)
                self.raw.seek(offset)
                return
            streams = xz_streams(self.raw)
        except (XZContainerError, OSError, ValueError, NotImplementedError) as error:
            if isinstance(error, CC100Error):
                raise
            if self.url not in warned:
                warned.add(self.url)
                logger.warning("CC-100 file %r: cannot seek in it (%s); resuming reads it from the start and "
                               "discards %d decompressed bytes", self.url, error, offset)
            self.close()
            self._open()
        else:
            total = streams[-1].uncompressed_start + streams[-1].uncompressed_size
            if offset > total:
                raise self._beyond_end(offset, total)
            if offset == total:
                self.raw.seek(streams[-1].compressed_end)
                return
            filled = [stream for stream in streams if stream.uncompressed_size]  # they cover [0, total)
            chosen = filled[bisect.bisect_right([s.uncompressed_start for s in filled], offset) - 1]
            block = bisect.bisect_right([start for _, start in chosen.blocks], offset) - 1
            if block <= 0:
                self.raw.seek(chosen.compressed_start)
                skip = offset - chosen.uncompressed_start
            else:
                header = read_at(self.raw, chosen.compressed_start, 12)
                block_start, uncompressed_start = chosen.blocks[block]
                self.raw.seek(block_start)
                assert self.decoder is not None
                self.decoder.enter_block(header, chosen.uncompressed_start + chosen.uncompressed_size
                                         - uncompressed_start, chosen.index_start - block_start,
                                         chosen.compressed_end)
                skip = offset - uncompressed_start
        while skip:
            data = self.read(min(skip, _SKIP_CHUNK))
            if not data:
                raise self._beyond_end(offset, offset - skip)
            skip -= len(data)


def _check_int(state: Mapping[str, Any], key: str, low: int, high: int | None = None) -> int:
    value = state.get(key)
    if type(value) is not int or value < low or (high is not None and value > high):
        allowed = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        raise CC100Error(f"DocumentReader state {key!r}={value!r} is not allowed; expected {allowed}")
    return value


class DocumentReader:
    """Endless, exactly resumable reader of one language's CC-100 files (read in order; at the end it wraps to the
    first file and `epoch` increases).

    `files`: paths or fsspec URLs of ``<lang>.txt`` / ``<lang>.txt.xz`` files (xz when the name ends in ``.xz``).
    `language` names the files in messages. `storage_options` go to `fsspec.open`. `on_error`: ``"raise"`` or
    ``"skip"`` for a truncated or corrupt xz stream (see ``docs/data_pipeline.md``).

    ``next(reader)`` returns the next document's text, as `iter_cc100_documents` would. `state_dict` /
    `load_state_dict` save and restore the position (see ``docs/data_pipeline.md``). The open file is released by
    `close` (or leaving a ``with`` block); iterating again reopens it at the current position.
    """

    def __init__(self, files: Sequence[str | os.PathLike[str]], *, language: str = "",
                 storage_options: dict[str, Any] | None = None, on_error: str = "raise") -> None:
        if isinstance(files, (str, os.PathLike)) or not isinstance(files, Sequence) or not files:
            raise CC100Error(f"files={files!r} is not allowed; expected a non-empty list of CC-100 file paths or URLs")
        for index, item in enumerate(files):
            if not isinstance(item, (str, os.PathLike)) or not os.fspath(item):
                raise CC100Error(f"files[{index}]={item!r} is not allowed; expected a path or URL string")
        if not isinstance(language, str):
            raise CC100Error(f"language={language!r} is not allowed; expected a language code string")
        _check_on_error(on_error)
        self.language = language
        self.on_error = on_error
        self.storage_options = storage_options
        self._urls: list[str] = [str(os.fspath(item)) for item in files]
        self._names: list[str] = [_state_name(url) for url in self._urls]
        self._warned: set[str] = set()
        # position after the document returned last (what state_dict saves)
        self._documents = 0
        self._last: tuple[str, int, int, int] = ("", 0, 0, 0)  # (text, file index, offset after it, epoch)
        self._reset_reading()

    def _reset_reading(self) -> None:
        """Forget what was read ahead: reading restarts at the position after the document returned last."""
        self._source: _Source | None = None
        self._ready: collections.deque[tuple[str, int, int, int]] = collections.deque()  # (text, file, offset, epoch)
        _, self._read_file, offset, self._read_epoch = self._last
        self._carry, self._carry_offset = b"", offset  # the unfinished document and where it starts
        self._file_started_at_zero = offset == 0
        self._file_documents = 0  # documents found in the file being read
        self._fruitless_files = 0  # whole files read in a row without a document

    # ---------------------------------------------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        ready = self._ready
        while not ready:
            self._fill()
        self._last = last = ready.popleft()
        self._documents += 1
        return last[0]

    @property
    def epoch(self) -> int:
        """Completed passes over all files before the document returned last (0 during the first pass)."""
        return self._last[3]

    @property
    def documents(self) -> int:
        """Documents returned in total (over all epochs, including those before a `load_state_dict`)."""
        return self._documents

    def _fill(self) -> None:
        """Read one chunk of the current file and queue the documents it completes (or move on to the next file)."""
        carry = self._carry
        try:
            if self._source is None:  # positioning it may decode xz data up to the offset
                self._source = _Source(self._urls[self._read_file], self.storage_options, self._carry_offset,
                                       self._warned)
            chunk = self._source.read(max(_CHUNK, len(carry)))
        except (EOFError, lzma.LZMAError) as error:
            self._read_error(error)
            chunk = None
        if chunk:
            self._split(carry + chunk, len(carry), final=False)
            return
        if chunk is not None and carry:  # end of the file: the last document may lack its final newline
            self._split(carry if carry.endswith((b"\n", b"\r")) else carry + b"\n", len(carry), final=True)
        self._next_file()

    def _read_error(self, error: BaseException) -> None:
        url = self._urls[self._read_file]
        what = ("truncated xz stream (it ends before its end-of-stream marker)" if isinstance(error, EOFError)
                else f"corrupt xz data ({error})")
        position = self._carry_offset + len(self._carry)
        message = f"{what} in CC-100 file {url!r} at uncompressed byte {position:,}"
        if self.on_error == "raise":
            self.close()
            raise CC100ReadError(message + "; on_error='skip' reads the documents before it and skips the rest of the "
                                 "file", url) from None
        logger.warning("%s; skipped the rest of the file (the cut document dropped)", message)

    def _next_file(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        if self._file_documents:
            self._fruitless_files = 0
        elif self._file_started_at_zero:  # a whole file without documents (a resumed file's rest does not count)
            self._fruitless_files += 1
            if self._fruitless_files >= len(self._urls):
                self.close()
                raise CC100Error(f"language {self.language!r}: files {self._urls} contain no documents")
        self._read_file += 1
        if self._read_file == len(self._urls):
            self._read_file, self._read_epoch = 0, self._read_epoch + 1
            logger.debug("language %r: pass %d over %d file(s) done", self.language, self._read_epoch, len(self._urls))
        self._carry, self._carry_offset = b"", 0
        self._file_started_at_zero, self._file_documents = True, 0

    def _split(self, buffer: bytes, searched: int, final: bool) -> None:
        """Queue the documents `buffer` completes; keep the rest as the carry. ``buffer[:searched]`` (the old carry)
        holds no complete separator. With `final` the buffer is the rest of the file (plus a "\\n" when it had no
        final line end): its last document is queued too."""
        base = self._carry_offset
        has_cr = b"\r" in buffer
        match = (_LEADING_CR if has_cr else _LEADING_LF).match(buffer)
        start = match.end() if match else 0
        separator = _SPLIT_CR if has_cr else _SPLIT_LF
        # a separator reaching into the new data starts after the old carry's last byte that cannot be in one
        search = len(buffer[:searched].rstrip(_SEPARATOR_BYTES))
        if search > start:
            parts = separator.split(buffer[search:])
            parts[0] = buffer[start:search] + parts[0]
        else:
            parts = separator.split(buffer[start:] if start else buffer)
        rest = parts.pop()  # parts: document, separator, document, separator, ...
        documents = parts[0::2]
        ends = list(itertools.accumulate(map(len, parts), initial=base + start))  # offsets after every part
        offsets = ends[2::2]
        end = ends[-1]
        if final:
            if offsets:  # a final buffer may end with an added "\n" that is not in the file
                offsets[-1] = min(offsets[-1], base + searched)
            if rest:  # the last document: everything up to its final line end
                documents.append(rest[:-2 if rest.endswith(b"\r\n") else -1])
                offsets.append(base + searched)
            rest, end = b"", base + searched
        try:
            texts = list(map(bytes.decode, documents))
        except UnicodeDecodeError:
            texts = [document.decode("utf-8", "replace") for document in documents]
        if has_cr:
            texts = [text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text for text in texts]
        self._ready.extend(zip(texts, itertools.repeat(self._read_file), offsets, itertools.repeat(self._read_epoch)))
        self._file_documents += len(texts)
        self._carry, self._carry_offset = rest, end

    # ---------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The position after the document returned last (plain ints and strings, JSON-serialisable): ``version``,
        ``files`` (base names of local files, URLs of remote ones), ``file_index``, ``offset`` (the decompressed byte
        offset in that file where the next document's bytes, or the blank lines before them, start), ``documents``
        and ``epoch``."""
        _, file_index, offset, epoch = self._last
        return {"version": DOCUMENT_READER_STATE_VERSION, "files": list(self._names), "file_index": file_index,
                "offset": offset, "documents": self._documents, "epoch": epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from `state` (from `state_dict`, possibly through JSON): the next document is the one that
        followed when it was saved. Raises `CC100Error` naming the field when the state is not for these files."""
        if not isinstance(state, Mapping):
            raise CC100Error(f"DocumentReader state={state!r} is not allowed; expected the dict of state_dict()")
        if state.get("version") != DOCUMENT_READER_STATE_VERSION:
            raise CC100Error(f"DocumentReader state 'version'={state.get('version')!r} is not supported; expected "
                             f"{DOCUMENT_READER_STATE_VERSION}")
        files = state.get("files")
        if not isinstance(files, (list, tuple)) or list(files) != self._names:
            raise CC100Error(f"DocumentReader state 'files'={files!r} differs from this reader's files "
                             f"{self._names} (language {self.language!r}): the state belongs to other files")
        file_index = _check_int(state, "file_index", 0, len(self._names) - 1)
        offset = _check_int(state, "offset", 0)
        documents = _check_int(state, "documents", 0)
        epoch = _check_int(state, "epoch", 0)
        self.close()
        self._last, self._documents = ("", file_index, offset, epoch), documents
        self._reset_reading()

    # ---------------------------------------------------------------------------------------------- resources
    def close(self) -> None:
        """Release the open file; the position is kept (iterating again reopens the file there)."""
        if self._source is not None:
            self._source.close()
        self._reset_reading()

    def __getstate__(self) -> dict[str, Any]:
        """Pickling (e.g. to DataLoader workers) keeps the position, not the open file nor what was read ahead."""
        state = dict(self.__dict__)
        for name in ("_source", "_ready", "_carry"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_reading()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        _, file_index, offset, epoch = self._last
        return (f"DocumentReader(language={self.language!r}, files={len(self._urls)}, file_index={file_index}, "
                f"offset={offset}, documents={self._documents}, epoch={epoch})")
