#!/usr/bin/env python
"""Write the small labelled and parallel samples shipped in the package next to the default corpus, from the project's
own hand-written test fixtures (nothing downloaded or copied):

* ``src/xlmr_hf/data/samples/parallel.json`` -- `xlmr_hf.data.parallel_sentences`: `PARALLEL_SENTENCES` sentences
  in the default corpus's ten languages, index ``i`` meaning the same in each: the 12 hand-written everyday sentences
  of ``tests/fixtures/multilingual_text.py``'s ``PARALLEL``, then the sentences of the parallel part of the default
  corpus (``tools/make_default_corpus.py``'s plans, realized by ``tools/corpus_grammar``), in order;
* ``src/xlmr_hf/data/samples/xnli/`` -- `xlmr_hf.data.xnli_sample_dir`: an XNLI look-alike in the official
  XNLI-1.0 / XNLI-MT-1.0 layouts (``tests/fixtures/xnli_data.py``; TSV only), usable as
  ``xlmr-hf finetune xnli --data_dir <that directory>``.

``python tools/make_samples.py`` rewrites them deterministically; ``--check`` compares instead of writing (exit 1 on a
difference).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "xlmr_hf" / "data" / "samples"
XNLI_LANGUAGES = ("en", "fr", "de", "ar", "zh", "hi", "sw")
PARALLEL_SENTENCES = 200


def parallel_table() -> dict[str, list[str]]:
    """Language -> `PARALLEL_SENTENCES` parallel sentences (hand-written first, then the corpus's parallel plans)."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "tools"))
    import corpus_grammar
    from fixtures.multilingual_text import PARALLEL
    from make_default_corpus import PARALLEL_DOCUMENTS, PARALLEL_SEED

    table: dict[str, list[str]] = {}
    for lang in corpus_grammar.LANGUAGES:
        module = corpus_grammar.language_module(lang)
        planned = [module.realize(sentence) for plan in corpus_grammar.parallel_documents(PARALLEL_DOCUMENTS,
                                                                                          PARALLEL_SEED)
                   for paragraph in plan for sentence in paragraph]
        table[lang] = [*PARALLEL[lang], *planned][:PARALLEL_SENTENCES]
    if min(len(sentences) for sentences in table.values()) < PARALLEL_SENTENCES:
        raise RuntimeError(f"the parallel plans hold fewer than {PARALLEL_SENTENCES} sentences")
    return table


def write(target: Path) -> list[Path]:
    """Write the samples under ``target``; returns the files written (relative to it)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fixtures.xnli_data import write_xnli_fixture

    target.mkdir(parents=True, exist_ok=True)
    (target / "parallel.json").write_text(json.dumps(parallel_table(), ensure_ascii=False, indent=1) + "\n",
                                          encoding="utf-8")
    write_xnli_fixture(target / "xnli", XNLI_LANGUAGES, jsonl=False, translate_test=False)
    return sorted(p.relative_to(target) for p in [target / "parallel.json", *(target / "xnli").rglob("*.tsv")])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    if not args.check:
        for path in write(TARGET):
            print(TARGET / path)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = write(Path(tmp))
        different = [str(p) for p in fresh if not (TARGET / p).is_file()
                     or not filecmp.cmp(Path(tmp) / p, TARGET / p, shallow=False)]
    if different:
        print("differ from a fresh generation: " + ", ".join(different), file=sys.stderr)
        return 1
    print(f"{len(fresh)} sample files match")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
