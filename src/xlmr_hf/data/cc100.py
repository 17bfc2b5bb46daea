"""CC-100 as documents: a streaming, shardable, resumable `datasets` reader and cached per-language statistics.

`load_cc100` turns ``<lang>.txt[.xz]`` files (a directory, a list of files or URLs, or a URL template with ``{lang}``)
into rows ``{"id", "lang", "text"}``, one per document, through `CC100Builder` (one shard per file, so workers and
ranks divide the files and `IterableDataset.state_dict` resumes inside a file). `cc100_statistics` counts bytes,
documents and lines per language, cached per file. See ``docs/data_pipeline.md`` ("The CC-100 format", "Reading
CC-100") for the document rules, ids and error handling.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import lzma
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import fsspec
from tqdm.auto import tqdm

from ..corpus.xz import XZDecoder

if TYPE_CHECKING:
    import datasets

__all__ = [  # noqa: F822 (CC100Builder and CC100Config are defined on first use: see __getattr__ below)
    "CC100_LANGUAGES", "CC100_URL_TEMPLATE", "CC100Builder", "CC100Config", "CC100Error", "CC100ReadError",
    "LanguageStatistics", "ReadReport", "cc100_files", "cc100_statistics", "iter_cc100_documents", "load_cc100",
]

logger = logging.getLogger(__name__)

CC100_URL_TEMPLATE = "https://data.statmt.org/cc-100/{lang}.txt.xz"

CC100_LANGUAGES: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "bn_rom", "br", "bs", "ca", "cs", "cy", "da", "de", "el", "en",
    "eo", "es", "et", "eu", "fa", "ff", "fi", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "ha", "he", "hi", "hi_rom",
    "hr", "ht", "hu", "hy", "id", "ig", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la", "lg",
    "li", "ln", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "my", "my_zaw", "ne", "nl", "no", "ns", "om",
    "or", "pa", "pl", "ps", "pt", "qu", "rm", "ro", "ru", "sa", "si", "sc", "sd", "sk", "sl", "so", "sq", "sr", "ss",
    "su", "sv", "sw", "ta", "ta_rom", "te", "te_rom", "th", "tl", "tn", "tr", "ug", "uk", "ur", "ur_rom", "uz", "vi",
    "wo", "xh", "yi", "yo", "zh-Hans", "zh-Hant", "zu",
)
"""The 116 language codes of the statmt.org release (``<code>.txt.xz``; the five ``*_rom`` are romanised text and
``my_zaw`` is Burmese in the Zawgyi encoding), in the order of the release's listing."""

_FILE_NAME = re.compile(r"^(?P<lang>[^./\\]+)\.txt(?P<xz>\.xz)?$")
_SEPARATOR = re.compile(r"\n(?:[^\S\n]*\n)+")  # the "\n" ending a paragraph plus every blank line after it
_LEADING_BLANKS = re.compile(r"(?:[^\S\n]*\n)+")
_CHUNK = 1 << 16
_STATS_FILE = "cc100_statistics.json"
_STATS_VERSION = 1
_ON_ERROR = ("raise", "skip")

# Instantiating a DatasetBuilder "extends the module for streaming": datasets replaces this module's `open`, `os`,
# `os.path.*`, `pathlib.Path`, `glob`, ... globals with its URL-aware x-functions, for good (datasets/streaming.py).
# This module opens every file through fsspec itself, so it opts out, as datasets does for already patched modules.
_patched_for_streaming = True


class CC100Error(ValueError):
    """A CC-100 source, filter or argument that cannot be used (the message names it and what is allowed)."""


class CC100ReadError(CC100Error):
    """A truncated or corrupt xz stream; `file`, `line` (1-based, the first incomplete one) and `document` (0-based
    index of the cut document) give the position."""

    def __init__(self, message: str, file: str = "", line: int = 0, document: int = 0) -> None:
        super().__init__(message)
        self.file, self.line, self.document = file, line, document

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the position across processes (datasets' num_proc)
        return type(self), (str(self), self.file, self.line, self.document)


@dataclass
class ReadReport:
    """What reading one file produced: filled in by `iter_cc100_documents` as it goes."""

    file: str
    bytes: int = 0  # uncompressed bytes read
    documents: int = 0  # complete documents yielded
    lines: int = 0  # non-blank lines (paragraphs) in the yielded documents
    invalid_utf8_lines: int = 0  # lines holding bytes that are not UTF-8 (decoded with U+FFFD)
    error: str | None = None  # why the file was cut short (on_error="skip" only); None when read to its end

    @property
    def skipped(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class LanguageStatistics:
    """Per-language totals over its files (`cc100_statistics`)."""

    bytes: int  # uncompressed UTF-8 bytes
    compressed_bytes: int  # bytes as stored (equal to `bytes` for .txt files)
    documents: int
    lines: int  # non-empty lines (paragraphs)
    files: int
    invalid_utf8_lines: int = 0
    skipped_files: int = 0  # cut short by a truncated/corrupt xz stream (on_error="skip"); counts cover what was read


# ------------------------------------------------------------------------------------------------ reading one file
def _file_name(url: str) -> str:
    return url.split("?", 1)[0].replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _check_on_error(on_error: str) -> None:
    if on_error not in _ON_ERROR:
        raise CC100Error(f"on_error={on_error!r} is not allowed; expected 'raise' or 'skip'")


@contextlib.contextmanager
def _open_chunks(url: str, storage_options: dict[str, Any] | None) -> Iterator[tuple[Callable[[int], bytes], BinaryIO]]:
    """(read(n) -> decompressed bytes, raw file) for a ``.txt`` or ``.txt.xz`` path or fsspec URL."""
    try:
        raw = fsspec.open(url, "rb", **(storage_options or {})).open()
    except FileNotFoundError:
        raise CC100Error(f"CC-100 file {url!r} does not exist") from None
    except ImportError as error:
        raise CC100Error(_missing_filesystem(url, error)) from None
    try:
        if _file_name(url).endswith(".xz"):
            # Not lzma.LZMAFile: it stops silently at xz stream padding (zero bytes between concatenated streams).
            # The decoder returns the data decoded before an xz error, then raises it.
            yield XZDecoder(raw).read, raw
        else:
            yield raw.read, raw
    finally:
        raw.close()


def _decode(block: bytes, report: ReadReport) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        lines = []
        for line in block.split(b"\n"):
            try:
                lines.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(line.decode("utf-8", "replace"))
                report.invalid_utf8_lines += 1
        return "\n".join(lines)


def iter_cc100_documents(
    file: str | os.PathLike[str],
    *,
    on_error: str = "raise",
    storage_options: dict[str, Any] | None = None,
    report: ReadReport | None = None,
    progress: Callable[[int], object] | None = None,
) -> Iterator[str]:
    """The documents of one CC-100 file (path or fsspec URL; xz when the name ends in ``.xz``), each its paragraphs
    joined by ``"\\n"`` (rules in ``docs/data_pipeline.md``).

    `report` (optional) is filled in while reading. `progress` is called with the number of stored (compressed) bytes
    read since the previous call. A truncated or corrupt xz stream raises `CC100ReadError` (``on_error="raise"``) or
    ends the file with a logged warning (``"skip"``); documents yielded before it are complete.
    """
    _check_on_error(on_error)
    url = os.fspath(file)
    report = ReadReport(url) if report is None else report
    carry: list[str] = []  # the unfinished document: complete lines, each ending in "\n" ([] between documents)
    line_number = 0  # complete lines seen
    pending: list[bytes] = []  # bytes after the last "\n"
    position = 0
    with _open_chunks(url, storage_options) as (read, raw):
        while True:
            try:
                chunk = read(_CHUNK)
            except (EOFError, lzma.LZMAError) as error:
                what = "truncated xz stream (it ends before its end-of-stream marker)" if isinstance(
                    error, EOFError) else f"corrupt xz data ({error})"
                message = (f"{what} in CC-100 file {url!r} at uncompressed byte {report.bytes:,}: line "
                           f"{line_number + 1:,}, document index {report.documents:,}")
                if on_error == "raise":
                    raise CC100ReadError(message + "; on_error='skip' reads the documents before it and skips the "
                                         "rest of the file", url, line_number + 1, report.documents) from None
                report.error = message
                logger.warning("%s; skipped the rest of the file (%d documents read, the cut document dropped)",
                               message, report.documents)
                return
            if progress is not None:
                now = raw.tell()
                progress(now - position)
                position = now
            if chunk:
                report.bytes += len(chunk)
                cut = chunk.rfind(b"\n") + 1
                if not cut:
                    pending.append(chunk)
                    continue
                block = b"".join([*pending, chunk[:cut]]) if pending else chunk[:cut]
                pending = [chunk[cut:]] if cut < len(chunk) else []
            elif pending:  # end of file without a final newline
                block, pending = b"".join(pending) + b"\n", []
            else:
                break
            text = _decode(block, report)
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            line_number += text.count("\n")
            if carry:  # only the new text is searched, so a document without end costs linear time
                pieces = _SEPARATOR.split("\n" + text)  # "\n": a separator may start at the carry's last line end
                if len(pieces) == 1:
                    carry.append(text)
                    continue
                pieces[0] = "".join(carry)[:-1] + pieces[0]
            else:
                match = _LEADING_BLANKS.match(text)
                pieces = _SEPARATOR.split(text[match.end():] if match else text)
            last = pieces.pop()
            carry = [last] if last else []
            for document in pieces:
                report.documents += 1
                report.lines += document.count("\n") + 1
                yield document
        if carry:
            document = "".join(carry)[:-1]
            report.documents += 1
            report.lines += document.count("\n") + 1
            yield document
    if report.invalid_utf8_lines:
        logger.warning("CC-100 file %r: %d line(s) with invalid UTF-8 bytes, decoded with U+FFFD", url,
                       report.invalid_utf8_lines)


# ------------------------------------------------------------------------------------------------ resolving sources
def _missing_filesystem(url: str, error: ImportError) -> str:
    return (f"reading {url!r} needs the fsspec filesystem for {fsspec.utils.get_protocol(url)!r}: {error} "
            "(for http/https URLs: pip install 'fsspec[http]')")


def _url_to_fs(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as error:
        raise CC100Error(_missing_filesystem(url, error)) from None


def _exists(url: str, storage_options: dict[str, Any] | None) -> bool | None:
    """Whether the file exists, for local and in-memory files; None (not checked, no I/O) for remote ones."""
    if "://" not in url:
        return os.path.isfile(url)
    if fsspec.utils.get_protocol(url) not in ("file", "local", "memory"):
        return None
    fs, path = _url_to_fs(url, storage_options)
    return fs.isfile(path)


def _language_list(languages: Sequence[str] | str | None) -> list[str] | None:
    if languages is None:
        return None
    if isinstance(languages, str):
        languages = [languages]
    languages = list(dict.fromkeys(languages))
    if not languages or not all(isinstance(lang, str) and lang for lang in languages):
        raise CC100Error(f"languages={languages!r} is not allowed: give language codes, or None for all of them")
    return languages


def cc100_files(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    languages: Sequence[str] | str | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """(language, path or URL) per file of `source`, filtered to `languages`, with the checks of `load_cc100`.

    Order: the order of `languages` when given; otherwise the directory's sorted order, the list's order, or
    `CC100_LANGUAGES` for a URL template (``languages=None`` then means all 116 languages).
    """
    wanted = _language_list(languages)
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and "{lang}" in source):
        path = os.fspath(source)
        if os.path.isdir(path):
            return _filter(_directory_files(Path(path)), wanted, f"directory {path!r}")
        if os.path.isfile(path):
            return _filter(_list_files([path], storage_options), wanted, f"file {path!r}")
        raise CC100Error(
            f"source={path!r} is not an existing directory or file, and not a URL template: it has no {{lang}} "
            f"placeholder. Expected a directory of <lang>.txt.xz / <lang>.txt files, a list of such files or URLs "
            f"(a single remote file: [url]), or a template such as {CC100_URL_TEMPLATE!r}")
    if isinstance(source, str):  # URL template
        unknown = [lang for lang in wanted or () if lang not in CC100_LANGUAGES]
        if unknown:
            hints = {lang: [c for c in CC100_LANGUAGES if re.split("[-_]", c)[0] == lang.lower()]
                     or difflib.get_close_matches(lang, CC100_LANGUAGES, n=2) for lang in unknown}
            hint = "; ".join(f"{lang!r}: did you mean {' or '.join(map(repr, m))}?" for lang, m in hints.items() if m)
            raise CC100Error(f"languages={unknown} are not CC-100 language codes{' (' + hint + ')' if hint else ''}; "
                             f"a URL template takes codes from CC100_LANGUAGES ({len(CC100_LANGUAGES)}): "
                             f"{', '.join(CC100_LANGUAGES)}")
        files = [(lang, source.replace("{lang}", lang)) for lang in (wanted or CC100_LANGUAGES)]
        for lang, url in files:
            if _exists(url, storage_options) is False:
                raise CC100Error(f"CC-100 file {url!r} (language {lang!r} of template {source!r}) does not exist")
        return files
    if not isinstance(source, Sequence) or not source:
        raise CC100Error(f"source={source!r} is not allowed: expected a directory, a URL template with {{lang}} or a "
                         "non-empty list of <lang>.txt[.xz] files")
    return _filter(_list_files(source, storage_options), wanted, "the list of files")


def _directory_files(directory: Path) -> list[tuple[str, str]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.iterdir()):
        match = _FILE_NAME.match(path.name)
        if match and path.is_file():
            found.setdefault(match["lang"], []).append(path)
    if not found:
        raise CC100Error(f"directory {str(directory)!r} holds no CC-100 files: expected <lang>.txt.xz or <lang>.txt")
    both = {lang: [p.name for p in paths] for lang, paths in found.items() if len(paths) > 1}
    if both:
        raise CC100Error(f"directory {str(directory)!r} holds both a .txt and a .txt.xz file for {both}; keep one per "
                         "language (or pass a list of files)")
    return [(lang, str(paths[0])) for lang, paths in found.items()]


def _list_files(files: Sequence[str | os.PathLike[str]], storage_options: dict[str, Any] | None) -> list[tuple[str, str]]:
    result, seen = [], {}
    for index, item in enumerate(files):
        url = os.fspath(item)
        name = _file_name(url)
        match = _FILE_NAME.match(name)
        if not match:
            raise CC100Error(f"files[{index}]={url!r} is not named <lang>.txt or <lang>.txt.xz, so its language is "
                             "unknown")
        if (match["lang"], name) in seen:
            raise CC100Error(f"files[{index}]={url!r} and files[{seen[match['lang'], name]}] have the same name "
                             f"{name!r}: their document ids <lang>/<file name>/<index> would collide")
        seen[match["lang"], name] = index
        if _exists(url, storage_options) is False:
            raise CC100Error(f"CC-100 file {url!r} (files[{index}]) does not exist")
        result.append((match["lang"], url))
    return result


def _filter(files: list[tuple[str, str]], wanted: list[str] | None, where: str) -> list[tuple[str, str]]:
    if wanted is None:
        return files
    available = sorted({lang for lang, _ in files})
    missing = [lang for lang in wanted if lang not in available]
    if missing:
        raise CC100Error(f"languages={missing} are not in {where}; available: {available}")
    return [item for lang in wanted for item in files if item[0] == lang]


def _stamp(url: str, storage_options: dict[str, Any] | None) -> tuple[str, int | None, str | None]:
    """(resolved path or URL, size, modification stamp) of one file, for cache keys."""
    if "://" not in url:
        path = os.path.realpath(url)
        stat = os.stat(path)
        return path, stat.st_size, str(stat.st_mtime_ns)
    fs, path = _url_to_fs(url, storage_options)
    info = fs.info(path)
    mtime = next((info[k] for k in ("mtime", "LastModified", "last_modified", "created", "ETag", "etag")
                  if info.get(k) is not None), None)
    return fs.unstrip_protocol(path), info.get("size"), None if mtime is None else str(mtime)


# ------------------------------------------------------------------------------------------------ datasets builder
# `datasets` is imported the first time the builder is used (`load_cc100`, or the names below through the module's
# ``__getattr__``): reading files, `cc100_files` and `cc100_statistics` -- all that the pretraining stream needs --
# work without it. The classes are defined here, in this module (their ``__module__`` and so datasets' builder name and
# cache paths are unchanged), once, and published as module globals so that pickling finds them.
_BUILDER_NAMES = ("FEATURES", "CC100Config", "CC100Builder", "_TypedExamplesIterable")


def __getattr__(name: str) -> Any:
    if name in _BUILDER_NAMES:
        _define_builder()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _define_builder() -> type[datasets.GeneratorBasedBuilder]:
    """Define `FEATURES`, `CC100Config`, `CC100Builder` (and the typed examples iterable) as module globals, once;
    returns `CC100Builder`."""
    if "CC100Builder" in globals():
        return globals()["CC100Builder"]
    import datasets
    from datasets.iterable_dataset import ExamplesIterable

    try:
        from datasets.builder import (
            Key,  # datasets >= 4.1: keys carry the original shard
        )
    except ImportError:  # pragma: no cover - older datasets take any hashable key
        Key = None  # type: ignore[assignment,misc]

    FEATURES = datasets.Features({"id": datasets.Value("string"), "lang": datasets.Value("string"),
                                  "text": datasets.Value("string")})


    @dataclass
    class CC100Config(datasets.BuilderConfig):
        """`CC100Builder` configuration: the resolved files and how to read them."""

        files: tuple[tuple[str, str], ...] = ()
        """(language, path or fsspec URL) per file; one shard each."""
        split: str = "train"
        on_error: str = "raise"
        source_storage_options: dict[str, Any] | None = None
        """fsspec options for opening the files."""
        stamps: tuple[str, ...] = ()
        """Size and modification stamp per file: part of the config id, so the Arrow cache follows file changes."""


    class _TypedExamplesIterable(ExamplesIterable):
        """datasets' `ExamplesIterable`, declaring that its rows already are `FEATURES` (three plain str columns).

        Without it, `IterableDataset` encodes and decodes every row through `Features` (`FormattedExamplesIterable`),
        which costs more than reading the document. Sharding, shuffling and resharding keep the declaration."""

        @property
        def features(self) -> datasets.Features:
            return FEATURES

        @property
        def is_typed(self) -> bool:
            return True

        def _init_state_dict(self) -> dict[str, Any]:
            state = super()._init_state_dict()
            state["type"] = "ExamplesIterable"  # the same state dict as without the declaration
            return state

        @staticmethod
        def adopt(iterable: Any) -> Any:
            if type(iterable) is ExamplesIterable:  # anything else (a future datasets) is left as it is
                iterable.__class__ = _TypedExamplesIterable
            return iterable

        def shuffle_data_sources(self, generator: Any) -> Any:
            return self.adopt(super().shuffle_data_sources(generator))

        def shard_data_sources(self, num_shards: int, index: int, contiguous: bool = True) -> Any:
            return self.adopt(super().shard_data_sources(num_shards, index, contiguous=contiguous))

        def reshard_data_sources(self) -> Any:
            return self.adopt(super().reshard_data_sources())


    class CC100Builder(datasets.GeneratorBasedBuilder):
        """CC-100 documents as a `datasets` builder (no Hub script): one split, one shard per file.

        Build it through `load_cc100`, or directly:
        ``CC100Builder(files=((lang, url), ...)).as_streaming_dataset("train")``.
        """

        BUILDER_CONFIG_CLASS = CC100Config
        VERSION = datasets.Version("1.0.0")  # part of the Arrow cache path: bump it when the document rules change
        config: CC100Config

        def _info(self) -> datasets.DatasetInfo:
            return datasets.DatasetInfo(
                description="CC-100 (statmt.org release) read as documents: paragraphs joined by newlines, one row per "
                            "document, id '<lang>/<file name>/<document index>'.",
                features=FEATURES,
                homepage="https://data.statmt.org/cc-100/",
            )

        def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
            files = [(index, lang, url) for index, (lang, url) in enumerate(self.config.files)]
            return [datasets.SplitGenerator(name=self.config.split, gen_kwargs={"files": files})]

        def _get_examples_iterable_for_split(self, split_generator: datasets.SplitGenerator) -> Any:
            return _TypedExamplesIterable.adopt(super()._get_examples_iterable_for_split(split_generator))

        def _generate_examples(self, files: list[tuple[int, str, str]]) -> Iterator[tuple[Any, dict[str, str]]]:
            reports: list[ReadReport] = self.__dict__.setdefault("_read_reports", [])  # this process's files
            for index, lang, url in files:  # datasets calls this once per shard, i.e. per file
                prefix = f"{lang}/{_file_name(url)}/"
                report = ReadReport(url)
                documents = iter_cc100_documents(url, on_error=self.config.on_error, report=report,
                                                 storage_options=self.config.source_storage_options)
                for doc_index, text in enumerate(documents):
                    key = Key(index, doc_index) if Key is not None else f"{index}/{doc_index}"
                    yield key, {"id": prefix + str(doc_index), "lang": lang, "text": text}
                reports.append(report)
                if report.skipped:
                    skipped = [r.file for r in reports if r.skipped]
                    logger.warning("CC-100 reader: %d of the %d file(s) read so far in this process were cut short "
                                   "by xz errors and skipped from there: %s", len(skipped), len(reports),
                                   ", ".join(skipped))

    for cls in (CC100Config, _TypedExamplesIterable, CC100Builder):
        cls.__qualname__ = cls.__name__  # a module-level name for pickle and dill
    globals().update(FEATURES=FEATURES, CC100Config=CC100Config, CC100Builder=CC100Builder,
                     _TypedExamplesIterable=_TypedExamplesIterable)
    return CC100Builder


def load_cc100(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    languages: Sequence[str] | str | None = None,
    streaming: bool = True,
    split: str = "train",
    *,
    on_error: str = "raise",
    storage_options: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    num_proc: int | None = None,
) -> datasets.IterableDataset | datasets.Dataset:
    """CC-100 as documents: an `IterableDataset` (``streaming=True``) or an Arrow-cached `Dataset`, columns
    ``id`` (``<lang>/<file name>/<document index>``), ``lang`` and ``text`` (a document's paragraphs joined by
    ``"\\n"``).

    `source`: a directory holding ``<lang>.txt.xz`` / ``<lang>.txt`` files; an fsspec URL template with ``{lang}``
    (e.g. `CC100_URL_TEMPLATE`, ``hf://datasets/<repo>/{lang}.txt.xz``, ``file:///data/{lang}.txt.xz``; languages
    from `CC100_LANGUAGES`, all of them when `languages` is None); or a list of files or URLs named
    ``<lang>.txt[.xz]``. `languages` filters (and orders) the files. `split` names the single split.
    `on_error` (``"raise"``/``"skip"``) handles truncated or corrupt xz streams. `storage_options` go to
    `fsspec.open`. `cache_dir` and `num_proc` are the `datasets` Arrow cache and worker count (``streaming=False``).

    Raises `CC100Error` for a bad source, filter or argument before reading anything.
    """
    _check_on_error(on_error)
    if not isinstance(split, str) or not re.fullmatch(r"\w+(\.\w+)*", split):
        raise CC100Error(f"split={split!r} is not allowed: expected a split name such as 'train'")
    files = tuple(cc100_files(source, languages, storage_options=storage_options))
    import datasets

    builder_class = _define_builder()
    kwargs: dict[str, Any] = {"files": files, "split": split, "on_error": on_error,
                              "source_storage_options": storage_options}
    if streaming:
        return builder_class(dataset_name="cc100", **kwargs).as_streaming_dataset(split=split)
    stamps = tuple(f"{size}:{mtime}" for _, size, mtime in (_stamp(url, storage_options) for _, url in files))
    builder = builder_class(dataset_name="cc100", cache_dir=None if cache_dir is None else os.fspath(cache_dir),
                            stamps=stamps, **kwargs)
    try:
        builder.download_and_prepare(num_proc=num_proc)
    except datasets.exceptions.DatasetGenerationError as error:
        cause = error.__cause__
        if isinstance(cause, CC100ReadError):
            raise CC100ReadError(str(cause), cause.file, cause.line, cause.document) from None
        if isinstance(cause, CC100Error):
            raise CC100Error(str(cause)) from None
        raise
    return builder.as_dataset(split=split)


# ------------------------------------------------------------------------------------------------ statistics
def _default_stats_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "xlmr_hf" / "cc100_stats"


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("files", {}) if isinstance(data, dict) and data.get("version") == _STATS_VERSION else {}


def _save_cache(path: Path, updates: dict[str, Any]) -> None:
    """Merge `updates` into the cache file (re-read first, so concurrent writers lose at most a recount)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = {**_load_cache(path), **updates}
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                         prefix=path.name, suffix=".tmp") as handle:
            json.dump({"version": _STATS_VERSION, "files": entries}, handle, indent=1, sort_keys=True)
        os.replace(handle.name, path)
    except OSError as error:
        logger.warning("could not write the CC-100 statistics cache %s: %s", path, error)


def _count_file(url: str, on_error: str, storage_options: dict[str, Any] | None,
                progress: Callable[[int], object]) -> ReadReport:
    report = ReadReport(url)
    for _ in iter_cc100_documents(url, on_error=on_error, storage_options=storage_options, report=report,
                                  progress=progress):
        pass
    return report


def cc100_statistics(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    languages: Sequence[str] | str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    on_error: str = "raise",
    storage_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, LanguageStatistics]:
    """Per-language bytes, compressed bytes, documents, non-empty lines and files of `source` (as in `load_cc100`).

    Counting reads every file once (a tqdm bar over stored bytes); results are cached per file in
    ``<cache_dir>/cc100_statistics.json``, keyed by resolved path (or URL), size and modification time, so a changed
    file is recounted. `cache_dir` defaults to ``$XDG_CACHE_HOME/xlmr_hf/cc100_stats`` (``~/.cache/...``). A file
    whose filesystem reports neither size nor modification stamp is counted but not cached. A cached read error is
    raised again under ``on_error="raise"``.
    """
    _check_on_error(on_error)
    files = cc100_files(source, languages, storage_options=storage_options)
    cache_path = (Path(cache_dir) if cache_dir is not None else _default_stats_dir()) / _STATS_FILE
    cache = _load_cache(cache_path)
    per_file: list[tuple[str, dict[str, Any]]] = []
    todo: list[tuple[str, str, tuple[str, int | None, str | None]]] = []
    for lang, url in files:
        stamp = _stamp(url, storage_options)
        entry = cache.get(stamp[0])
        if entry and entry.get("size") == stamp[1] and entry.get("mtime") == stamp[2] and stamp[2] is not None:
            if entry["error"] and on_error == "raise":
                raise CC100Error(f"{entry['error']} (cached by cc100_statistics; on_error='skip' uses the counts "
                                 "read before it)")
            per_file.append((lang, entry))
        else:
            todo.append((lang, url, stamp))
    updates = {}
    total = sum(stamp[1] or 0 for _, _, stamp in todo)
    with tqdm(total=total, unit="B", unit_scale=True, desc="CC-100 statistics", disable=not progress or not todo) as bar:
        for lang, url, (key, size, mtime) in todo:
            report = _count_file(url, on_error, storage_options, bar.update)
            entry = {**asdict(report), "compressed_bytes": size if size is not None else report.bytes,
                     "size": size, "mtime": mtime}
            per_file.append((lang, entry))
            if size is not None and mtime is not None:
                updates[key] = entry
    if updates:
        _save_cache(cache_path, updates)
    totals: dict[str, dict[str, int]] = {}
    for lang, entry in per_file:
        t = totals.setdefault(lang, dict.fromkeys(("bytes", "compressed_bytes", "documents", "lines", "files",
                                                   "invalid_utf8_lines", "skipped_files"), 0))
        for name in ("bytes", "compressed_bytes", "documents", "lines", "invalid_utf8_lines"):
            t[name] += entry[name]
        t["files"] += 1
        t["skipped_files"] += entry["error"] is not None
    return {lang: LanguageStatistics(**totals[lang]) for lang in dict.fromkeys(lang for lang, _ in files)}

