#!/usr/bin/env python
"""Write the small labelled and parallel samples shipped in the package next to the default corpus, from the project's
own hand-written test fixtures (nothing downloaded or copied):

* ``src/xlmr_hf/data/samples/parallel.json`` -- `xlmr_hf.data.parallel_sentences`: the same 12 everyday
  sentences in 16 languages (``tests/fixtures/multilingual_text.py``'s ``PARALLEL``);
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


def write(target: Path) -> list[Path]:
    """Write the samples under ``target``; returns the files written (relative to it)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fixtures.multilingual_text import PARALLEL
    from fixtures.xnli_data import write_xnli_fixture

    target.mkdir(parents=True, exist_ok=True)
    (target / "parallel.json").write_text(json.dumps({lang: list(s) for lang, s in PARALLEL.items()},
                                                     ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
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
