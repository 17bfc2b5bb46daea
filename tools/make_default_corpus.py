#!/usr/bin/env python
"""Generate the default corpus embedded in the package (``src/xlmr_hf/data/default_corpus/``).

The corpus lets a fresh install pretrain a debug model on real language without downloading anything. Its text is
written by the project's own sentence grammar (``tools/corpus_grammar/``): a language-independent planner draws
documents (a cast of people, an animal and places; a past story, a present routine or scene, or a future plan) as
sentence structures, and one module per language realizes them with that language's vocabulary, morphology,
agreement, word order, function words and punctuation. Nothing is downloaded or copied from elsewhere.

Every language's training file starts with `PARALLEL_DOCUMENTS` documents realized from the same plans (the
parallel part of the corpus: ``tools/make_samples.py`` takes the parallel sentence sample from it), followed by
documents planned with the language's own seed.

Layout (the CC-100 one, read by ``xlmr_hf.data.iter_cc100_documents``, ``cc100_files`` and ``DocumentReader``):

* ``<lang>.txt.xz`` per language: UTF-8, one paragraph per line, an empty line after every document (so the
  file ends with ``"\\n\\n"``). The xz file is a concatenation of independent xz streams
  (``lzma.compress(..., format=lzma.FORMAT_XZ, preset=9)``), each at most `STREAM_MAX_BYTES` uncompressed and cut
  at a document end, so ``DocumentReader`` can resume by seeking to a stream instead of decoding the whole file.
* ``heldout/<lang>.txt.xz`` per language: the held-out split for evaluation during pretraining, in the same format
  (a single xz stream each), about `HELDOUT_BYTES` of text per language generated with `HELDOUT_SEED` instead of
  `SEED`, so it is different text from the training file (the build fails if any held-out document is identical to
  a training document of its language).
* ``codeswitch/<lang>.txt.xz`` per language: held-out code-switched text (every other sentence in `PARTNER`'s
  language, from plans of their own), for evaluating models on mixed-language input; a single xz stream each.
* ``MANIFEST.json``: how the files were made and, per language, its script, documents, paragraphs, uncompressed
  bytes and SHA-256, and the xz file's bytes, SHA-256 and stream count; the same for the held-out files under
  ``"heldout"``.

Language sizes are deliberately unequal (English 40 % down to Swahili under 2 %), like CC-100's long tail, so that
temperature sampling has something to do. The output is deterministic: the same grammar and the same liblzma
give byte-identical files (``tests/unit/test_default_corpus.py`` regenerates them and compares).

Usage (from the repository root; only the standard library is needed)::

    python tools/make_default_corpus.py               # rewrite src/xlmr_hf/data/default_corpus/ (and heldout/)
    python tools/make_default_corpus.py --output DIR  # write somewhere else
    python tools/make_default_corpus.py --check       # exit 1 if the committed files differ from a fresh build
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "src" / "xlmr_hf" / "data" / "default_corpus"
GRAMMAR = "tools/corpus_grammar/"

SEED = "train"
HELDOUT_DIR = "heldout"  # subdirectory of the held-out split
HELDOUT_SEED = "heldout"  # not SEED: the held-out text must not repeat the training text
CODESWITCH_DIR = "codeswitch"  # subdirectory of the code-switched held-out text
CODESWITCH_SEED = "codeswitch"
CODESWITCH_BYTES = 10_000
PARTNER = {"en": "fr"}  # the language every other sentence of codeswitch/<lang> is in; default "en"
PARALLEL_SEED = "parallel"
PARALLEL_DOCUMENTS = 24  # documents realized from the same plans at the start of every training file
HELDOUT_BYTES = 10_000  # target uncompressed UTF-8 bytes per language (equal for every language)
STREAM_MAX_BYTES = 256 * 1024  # uncompressed bytes per xz stream, at most
XZ_PRESET = 9

# language -> (script, target uncompressed UTF-8 bytes). The total is ~3 MB; largest / smallest = 24.
SIZES: dict[str, tuple[str, int]] = {
    "en": ("Latin", 1_200_000),
    "ru": ("Cyrillic", 440_000),
    "fr": ("Latin", 340_000),
    "de": ("Latin", 260_000),
    "zh": ("Han", 200_000),
    "ar": ("Arabic", 170_000),
    "hi": ("Devanagari", 140_000),
    "el": ("Greek", 110_000),
    "th": ("Thai", 90_000),
    "sw": ("Latin", 50_000),
}

NOTE = (
    f"Grammatical text written by the project's sentence grammar ({GRAMMAR}): documents planned as sentence structures "
    "and realized by one module per language (its vocabulary, morphology, agreement and word order); the first "
    f"{PARALLEL_DOCUMENTS} documents of every language are the same plans (parallel text). Nothing was downloaded or "
    "copied. Sizes are deliberately unequal. Regenerate with: python tools/make_default_corpus.py"
)


def _grammar():
    """``tools/corpus_grammar``, imported with ``tools/`` on ``sys.path``."""
    tools = str(ROOT / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import corpus_grammar

    return corpus_grammar


def serialise(documents: list[list[str]]) -> list[bytes]:
    """The CC-100 bytes of each document: its paragraphs, one per line, then an empty line."""
    return [("".join(paragraph + "\n" for paragraph in document) + "\n").encode("utf-8") for document in documents]


def compress(parts: list[bytes], max_bytes: int = STREAM_MAX_BYTES) -> tuple[bytes, int]:
    """Concatenated xz streams of at most `max_bytes` uncompressed each, cut between `parts`; (data, streams)."""
    streams: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for part in parts:
        if len(part) > max_bytes:
            raise ValueError(f"a document of {len(part):,} bytes does not fit in one xz stream of {max_bytes:,}")
        if size + len(part) > max_bytes:
            streams.append(lzma.compress(b"".join(chunk), format=lzma.FORMAT_XZ, preset=XZ_PRESET))
            chunk, size = [], 0
        chunk.append(part)
        size += len(part)
    if chunk:
        streams.append(lzma.compress(b"".join(chunk), format=lzma.FORMAT_XZ, preset=XZ_PRESET))
    return b"".join(streams), len(streams)


def _entry(documents: list[list[str]]) -> tuple[bytes, dict[str, object]]:
    """The xz file of `documents` and its manifest entry (documents, paragraphs, bytes, SHA-256s, streams)."""
    parts = serialise(documents)
    data = b"".join(parts)
    xz, streams = compress(parts)
    return xz, {
        "documents": len(documents),
        "paragraphs": sum(len(document) for document in documents),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "xz_bytes": len(xz),
        "xz_sha256": hashlib.sha256(xz).hexdigest(),
        "xz_streams": streams,
    }


def build() -> dict[str, bytes]:
    """File name (relative to the output directory) -> contents of the whole corpus: every ``<lang>.txt.xz``, every
    ``heldout/<lang>.txt.xz`` and ``MANIFEST.json``."""
    grammar = _grammar()
    files: dict[str, bytes] = {}
    languages: dict[str, dict[str, object]] = {}
    heldout: dict[str, dict[str, object]] = {}
    codeswitch: dict[str, dict[str, object]] = {}
    plans = grammar.parallel_documents(PARALLEL_DOCUMENTS, PARALLEL_SEED)
    for lang, (script, target) in sorted(SIZES.items()):
        documents = [grammar.realize_plan(plan, lang) for plan in plans]
        documents += grammar.documents(lang, target - sum(len(b) for b in serialise(documents)), seed=SEED)
        xz, entry = _entry(documents)
        files[f"{lang}.txt.xz"] = xz
        languages[lang] = {"script": script, "target_bytes": target, **entry}
        for directory, held, split in (
                (HELDOUT_DIR, grammar.documents(lang, HELDOUT_BYTES, seed=HELDOUT_SEED), heldout),
                (CODESWITCH_DIR, grammar.codeswitch_documents(lang, PARTNER.get(lang, "en"), CODESWITCH_BYTES,
                                                              seed=CODESWITCH_SEED), codeswitch)):
            copies = [document for document in held if document in documents]
            if copies:
                raise RuntimeError(f"{lang}: {len(copies)} {directory} document(s) are identical to training "
                                   "documents; change its seed")
            xz, entry = _entry(held)
            if entry["xz_streams"] != 1:
                raise RuntimeError(f"{lang}: {directory}/{lang}.txt.xz should be a single xz stream, not "
                                   f"{entry['xz_streams']}")
            files[f"{directory}/{lang}.txt.xz"] = xz
            split[lang] = entry
    manifest = {
        "name": "xlmr-hf default corpus",
        "note": NOTE,
        "generator": "tools/make_default_corpus.py",
        "source": GRAMMAR,
        "seed": SEED,
        "parallel": {"documents": PARALLEL_DOCUMENTS, "seed": PARALLEL_SEED,
                     "note": f"the first {PARALLEL_DOCUMENTS} documents of every <lang>.txt.xz are the same plans, "
                             "realized in each language"},
        "format": "CC-100: <lang>.txt.xz, UTF-8, one paragraph per line, an empty line after every document",
        "xz": f"independent xz streams (lzma.compress, FORMAT_XZ, preset={XZ_PRESET}) of at most "
              f"{STREAM_MAX_BYTES} uncompressed bytes each, cut at document ends",
        "stream_max_bytes": STREAM_MAX_BYTES,
        "languages": languages,
        "total": {
            "languages": len(languages),
            "scripts": len({entry["script"] for entry in languages.values()}),
            "documents": sum(int(entry["documents"]) for entry in languages.values()),  # type: ignore[call-overload]
            "paragraphs": sum(int(entry["paragraphs"]) for entry in languages.values()),  # type: ignore[call-overload]
            "bytes": sum(int(entry["bytes"]) for entry in languages.values()),  # type: ignore[call-overload]
            "xz_bytes": sum(int(entry["xz_bytes"]) for entry in languages.values()),  # type: ignore[call-overload]
        },
        "heldout": {
            "directory": HELDOUT_DIR,
            "note": f"held-out split for evaluation during pretraining: {HELDOUT_DIR}/<lang>.txt.xz, same format, one "
                    f"xz stream each, about {HELDOUT_BYTES} bytes per language planned with seed {HELDOUT_SEED!r}; no "
                    "document is identical to a training document of its language",
            "seed": HELDOUT_SEED,
            "target_bytes": HELDOUT_BYTES,
            "languages": heldout,
            "total": {key: sum(int(entry[key]) for entry in heldout.values())  # type: ignore[call-overload]
                      for key in ("documents", "paragraphs", "bytes", "xz_bytes")},
        },
        "codeswitch": {
            "directory": CODESWITCH_DIR,
            "note": f"held-out code-switched text: {CODESWITCH_DIR}/<lang>.txt.xz, same format, one xz stream each, "
                    f"about {CODESWITCH_BYTES} bytes per language planned with seed {CODESWITCH_SEED!r}; every other "
                    "sentence of a paragraph is in the partner language",
            "partner": {lang: PARTNER.get(lang, "en") for lang in sorted(SIZES)},
            "seed": CODESWITCH_SEED,
            "target_bytes": CODESWITCH_BYTES,
            "languages": codeswitch,
            "total": {key: sum(int(entry[key]) for entry in codeswitch.values())  # type: ignore[call-overload]
                      for key in ("documents", "paragraphs", "bytes", "xz_bytes")},
        },
    }
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return files


def _stale(directory: Path, files: dict[str, bytes]) -> list[str]:
    """Corpus-like files in `directory` or its ``heldout/`` that this build does not write (a dropped language), as
    names relative to `directory`."""
    stale = []
    for folder in (directory, directory / HELDOUT_DIR, directory / CODESWITCH_DIR):
        if folder.is_dir():
            stale += [p.relative_to(directory).as_posix() for p in folder.iterdir()
                      if p.relative_to(directory).as_posix() not in files
                      and (p.name.endswith(".txt.xz") or p.name.endswith(".txt"))]
    return sorted(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"directory to write (default: {DEFAULT_OUTPUT.relative_to(ROOT)})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files in --output differ from a fresh build")
    args = parser.parse_args(argv)
    files = build()
    stale = _stale(args.output, files)
    if args.check:
        differ = [name for name, data in files.items()
                  if not (args.output / name).is_file() or (args.output / name).read_bytes() != data]
        for name in differ + stale:
            print(f"{'differs or missing' if name in differ else 'not generated'}: {args.output / name}")
        return 1 if differ or stale else 0
    if stale:
        print(f"{args.output} holds corpus files this script does not generate: {', '.join(stale)}; remove them "
              "first", file=sys.stderr)
        return 1
    (args.output / HELDOUT_DIR).mkdir(parents=True, exist_ok=True)
    (args.output / CODESWITCH_DIR).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.output / name).write_bytes(data)
    manifest = json.loads(files["MANIFEST.json"])
    for lang, entry in manifest["languages"].items():
        print(f"{lang}: {entry['documents']:>5} documents, {entry['bytes']:>9,} bytes, xz {entry['xz_bytes']:>7,} "
              f"bytes in {entry['xz_streams']} stream(s)")
    total = manifest["total"]
    print(f"total: {total['languages']} languages, {total['scripts']} scripts, {total['bytes']:,} bytes, "
          f"xz {total['xz_bytes']:,} bytes -> {args.output}")
    held = manifest["heldout"]
    print(f"heldout: {len(held['languages'])} languages, "
          f"{min(e['bytes'] for e in held['languages'].values()):,}-"
          f"{max(e['bytes'] for e in held['languages'].values()):,} bytes each, {held['total']['bytes']:,} bytes, "
          f"xz {held['total']['xz_bytes']:,} bytes -> {args.output / HELDOUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
