"""The ``xlmr-hf`` console script (also ``python -m xlmr_hf``): ``info``, ``demo``, ``convert``, ``train-tokenizer``,
``extend-tokenizer``, ``build-corpus``, ``pretrain`` and ``finetune TASK``, each mapping onto one function of the
package. The options of the last five are generated from their settings dataclasses (`xlmr_hf.settings`). Any failure
ends with one line ``xlmr-hf <command>: error: ...`` and exit status 2 (``--debug`` shows the traceback)."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .settings import RecipeError, SettingsParser, build_settings

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


@dataclass
class TokenizerJob:
    """What ``xlmr-hf train-tokenizer`` trains on and where it writes (the settings are `TokenizerTrainingConfig`)."""

    corpus: str = field(metadata={"help": "CC-100 directory: one <lang>.txt.xz or <lang>.txt per language"})
    output: str = field(metadata={"help": "directory to write the tokenizer to"})
    languages: list[str] | None = field(default=None, metadata={"help": "only these languages (default: all)"})
    overwrite: bool = field(default=False, metadata={"help": "replace a non-empty output directory"})


@dataclass
class ExtendTokenizerJob:
    """What ``xlmr-hf extend-tokenizer`` extends, learns from and writes (see `xlmr_hf.tokenization.extend_tokenizer`);
    the sampling settings mean what they mean for ``train-tokenizer``."""

    tokenizer: str = field(metadata={"help": (
        "tokenizer to extend: a folder with sentencepiece.bpe.model and/or tokenizer.json in XLM-R's id layout, or "
        "a Hub repository id")})
    corpus: str = field(metadata={"help": "CC-100 directory of the new text: one <lang>.txt.xz or <lang>.txt per "
                                          "language; 'default': the corpus embedded in the package"})
    add_pieces: int = field(metadata={"help": (
        "pieces to add (>= 1): the new model's pieces the old vocabulary lacks, best first; fewer when fewer are new")})
    output: str = field(metadata={"help": "directory to write the extended tokenizer to"})
    languages: list[str] | None = field(default=None, metadata={"help": "only these languages (default: all)"})
    alpha: float = field(default=0.3, metadata={"help": "language sampling exponent in [0, 1]: q_i ∝ p_i^α"})
    vocab_size: int | None = field(default=None, metadata={"help": (
        "pieces of the SentencePiece model trained on the new text (default: 2 × add_pieces)")})
    unit: str = field(default="lines", metadata={"help": "what p_i is measured in: lines, bytes or characters"})
    max_sentences: int | None = field(default=10_000_000, metadata={"help": (
        "cap on the training sentences drawn, repetitions counted (null: the corpus's own number)")})
    heldout_sentences: int = field(default=1000, metadata={"help": (
        "held-out lines per language on which fertility is measured before and after")})
    character_coverage: float = field(default=0.9995, metadata={"help": (
        "share of characters the new model must cover")})
    num_threads: int | None = field(default=None, metadata={"help": "SentencePiece trainer threads (default: all "
                                                                     "CPU cores)"})
    seed: int = field(default=0, metadata={"help": "seed of the sample draw and of SentencePiece"})
    overwrite: bool = field(default=False, metadata={"help": "replace a non-empty output directory"})


@dataclass
class CorpusJob:
    """What ``xlmr-hf build-corpus`` reads and where it writes (the settings are `CorpusBuildConfig`)."""

    input: list[str] = field(metadata={"help": (
        "files or directories: .txt[.xz|.gz] (blank-line documents), .jsonl[.gz|.xz], .warc.wet[.gz]")})
    output: str = field(metadata={"help": "output directory"})
    overwrite: bool = field(default=False, metadata={"help": (
        "clear an output directory that holds files no earlier build wrote there (else refused)")})


@dataclass
class TokenizeJob:
    """What ``xlmr-hf tokenize-corpus`` reads and writes (see `xlmr_hf.data.tokenize_corpus`)."""

    corpus: str = field(metadata={"help": "CC-100 directory (<lang>.txt[.xz]) or URL template with {lang}"})
    tokenizer: str = field(metadata={"help": "tokenizer directory or Hub id (the one pretraining will use)"})
    output: str = field(metadata={"help": "directory to write the pre-tokenized corpus to"})
    languages: list[str] | None = field(default=None, metadata={"help": "only these languages (default: all)"})
    workers: int = field(default=1, metadata={"help": "processes on this machine (datasets map with num_proc)"})
    num_nodes: int = field(default=1, metadata={"help": (
        "machines sharing the work (each runs this command with its node_rank; default from SLURM_ARRAY_TASK_COUNT)")})
    node_rank: int = field(default=0, metadata={"help": (
        "this machine's share, 0..num_nodes-1 (default from SLURM_ARRAY_TASK_ID)")})
    seq_len: list[int] = field(default_factory=lambda: [512], metadata={"help": (
        "block lengths whose block tables are written (pretraining with another seq_len plans from the lengths)")})
    overwrite: bool = field(default=False, metadata={"help": "replace an output directory written otherwise"})


def cmd_tokenize_corpus(args: argparse.Namespace) -> int:
    """Pre-tokenize a CC-100 corpus (`xlmr_hf.data.tokenize_corpus`) and print per-language figures."""
    import os

    from .data import tokenize_corpus

    given = args.settings_parser.settings_values(args)
    job = build_settings(TokenizeJob, given)
    num_nodes = job.num_nodes if "num_nodes" in given else int(os.environ.get("SLURM_ARRAY_TASK_COUNT", 1))
    node_rank = job.node_rank if "node_rank" in given else int(os.environ.get("SLURM_ARRAY_TASK_ID", 0))
    manifest = tokenize_corpus(job.corpus, job.tokenizer, job.output, languages=job.languages, workers=job.workers,
                               num_nodes=num_nodes, node_rank=node_rank, seq_lens=job.seq_len,
                               overwrite=job.overwrite)
    if not manifest.get("languages"):
        print(f"node {node_rank}/{num_nodes} done; {len(manifest['missing'])} part(s) left to other nodes")
        return 0
    print(f"{'language':<9} {'documents':>10} {'lines':>10} {'MB':>9} {'tokens':>12}")
    for lang, row in manifest["languages"].items():
        print(f"{lang:<9} {row['documents']:>10,} {row['lines']:>10,} {row['bytes'] / 1e6:>9.2f} {row['tokens']:>12,}")
    print(f"manifest: {job.output}/manifest.json")
    return 0


def _split(values: dict[str, Any], cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values of the fields of ``cls``, the rest)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}, {k: v for k, v in values.items() if k not in names}


def cmd_train_tokenizer(args: argparse.Namespace) -> int:
    """Train an XLM-R-layout tokenizer (see `xlmr_hf.tokenization.train_tokenizer`) and print its summary."""
    from .tokenization import TokenizerTrainingConfig, train_tokenizer

    job, settings = _split(args.settings_parser.settings_values(args), TokenizerJob)
    job = build_settings(TokenizerJob, job)
    result = train_tokenizer(job.corpus, job.output, build_settings(TokenizerTrainingConfig, settings),
                             languages=job.languages, overwrite=job.overwrite)
    print(result.format_table())
    print(f"summary: {job.output}/training_summary.json")
    return 0


def cmd_extend_tokenizer(args: argparse.Namespace) -> int:
    """Extend a tokenizer with pieces learnt on new text (`xlmr_hf.tokenization.extend_tokenizer`) and print the
    fertility table."""
    import dataclasses

    from .tokenization import EXTENSION_SUMMARY, extend_tokenizer

    job = build_settings(ExtendTokenizerJob, args.settings_parser.settings_values(args))
    options = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)
               if f.name not in ("tokenizer", "corpus", "add_pieces", "output")}
    corpus = job.corpus
    if corpus == "default":
        from .data import default_corpus_dir

        corpus = str(default_corpus_dir())
    result = extend_tokenizer(job.tokenizer, corpus, job.add_pieces, output_dir=job.output, **options)
    print(result.format_table())
    print(f"summary: {Path(job.output) / EXTENSION_SUMMARY}")
    return 0


def cmd_build_corpus(args: argparse.Namespace) -> int:
    """Build a CC-100-format corpus as datatrove jobs on a local pool, Slurm or Ray (see
    `xlmr_hf.corpus.build_corpus_datatrove`) and print its manifest summary."""
    from .corpus import CorpusBuildConfig, ExecutorSettings, build_corpus_datatrove

    job, settings = _split(args.settings_parser.settings_values(args), CorpusJob)
    execution, settings = _split(settings, ExecutorSettings)
    job = build_settings(CorpusJob, job)
    execution = build_settings(ExecutorSettings, execution)
    _quiet_datatrove_tracebacks()
    report = build_corpus_datatrove(job.input, job.output, build_settings(CorpusBuildConfig, settings), execution,
                                    overwrite=job.overwrite)
    if report is None:  # Slurm: submitted (or, dry run, written)
        logs = Path(job.output) / ".work-datatrove"
        verb = "written (dry run, nothing submitted)" if execution.dry_run else "submitted"
        print(f"Slurm jobs {verb}: signatures -> duplicates -> filter -> merge; job scripts: "
              f"{logs}/<key>/logs/<job>/launch_script.slurm; the merge job writes {job.output}/manifest.json")
        return 0
    print(report.format_table())
    return 0


def _quiet_datatrove_tracebacks() -> None:
    """datatrove logs a failing task's traceback (loguru) before re-raising; on the command line the error is our one
    line, so tasks run in this process log the message without the traceback (the task log files under
    ``.work-datatrove/`` keep everything else). Pool workers (``--workers`` > 1) are separate processes."""
    from loguru import logger

    logger.configure(patcher=lambda record: record.update(exception=None))


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Pretrain (or resume) from a YAML recipe plus ``--field value`` overrides (`xlmr_hf.training.pretrain`)."""
    from .training import load_recipe, pretrain

    result = pretrain(load_recipe(args.recipe, args.settings_parser.settings_values(args)))
    if result["eval_after"] is not None:
        from .training.evaluation import format_eval_table

        print("held-out masked-LM loss and accuracy per language" + (" (before -> after)" if result["eval_before"]
                                                                     else ""))
        print(format_eval_table(result["eval_before"], result["eval_after"], result.get("eval_baseline")))
    print(f"step {result['step']}: loss {result['loss']:.4f}")
    print(f"checkpoint: {result['checkpoint']}")
    print(f"metrics: {result['metrics']}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    """Run an ablation recipe over its variants and seeds (`xlmr_hf.training.ablation`); print the table."""
    from .training.ablation import markdown_report, run_ablation

    result = run_ablation(args.recipe, output_dir=args.output_dir, work_dir=args.work_dir, quick=args.quick,
                          seeds=args.seeds)
    print(markdown_report(result))
    print(f"results: {Path(args.output_dir) / result['name']}.json (.md, .png)")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune a registered task from a YAML recipe plus overrides (`xlmr_hf.training.finetune`)."""
    from .tasks import get_task
    from .training import FinetuneArguments, finetune, load_recipe
    from .training.finetune import format_results

    settings = load_recipe(args.recipe, args.settings_parser.settings_values(args),
                           cls=FinetuneArguments.for_task(args.task))
    result = finetune(settings)
    print(format_results(result, get_task(args.task).metrics_reported))
    output = Path(settings.output_dir)
    print(f"tables: {output / 'results.md'}, {output / 'results.csv'}, {output / 'results.json'}")
    return 0


class _ListLanguages(argparse.Action):
    """``--list-languages``: print the lid.176 language codes and exit."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from .data import LID176_LANGUAGES

        print(" ".join(sorted(LID176_LANGUAGES)))
        parser.exit()


def _add_settings_commands(sub: Any, command: str | None, task: str | None) -> None:
    """The commands whose options come from settings dataclasses; only the one being run builds its options (the
    others would import what it does not need)."""
    tok = sub.add_parser("train-tokenizer", help="train a SentencePiece unigram tokenizer on α-sampled text",
                         description="Train an XLM-R-layout SentencePiece unigram tokenizer on a CC-100 directory "
                                     "sampled with temperature alpha; writes sentencepiece.bpe.model, tokenizer.json, "
                                     "tokenizer_config.json, special_tokens_map.json and training_summary.json.")
    tok.set_defaults(func=cmd_train_tokenizer, settings_parser=tok)
    if command == "train-tokenizer":
        from .tokenization import TokenizerTrainingConfig

        tok.add_settings(TokenizerJob, dashes=True, title="input and output")
        tok.add_settings(TokenizerTrainingConfig, dashes=True,
                         aliases={"num_threads": ["--threads"], "user_defined_symbols": ["--user-symbols"]})
    _add_extend_tokenizer(sub, command)
    build = sub.add_parser(
        "build-corpus", help="clean raw text / JSONL / WET into a CC-100-format corpus with fastText LID",
        description="Stages, in order: Unicode normalization, paragraph normalization, paragraph dedup across all "
                    "inputs (keep the first), minimum length, fastText lid.176 language ID, optional KenLM "
                    "perplexity filter or buckets. Writes <lang>.txt.xz per language and manifest.json. Runs as "
                    "four datatrove jobs (signatures, duplicates, filter, merge) with --executor local|slurm|ray; "
                    "a rerun skips the tasks datatrove marked complete.")
    build.set_defaults(func=cmd_build_corpus, settings_parser=build)
    if command == "build-corpus":
        from .corpus import CorpusBuildConfig, ExecutorSettings

        build.add_argument("--list-languages", "--list_languages", action=_ListLanguages,
                           help="print the lid.176 language codes (the values --languages takes) and exit")
        build.add_settings(CorpusJob, dashes=True, title="input and output")
        build.add_settings(ExecutorSettings, dashes=True, title="execution (datatrove)")
        build.add_settings(CorpusBuildConfig, dashes=True, skip={"workers"})
    tokenize = sub.add_parser(
        "tokenize-corpus", help="write a CC-100 corpus's token ids once (Arrow), for runs that outgrow one process",
        description="Tokenize every document of a CC-100 corpus into memory-mapped Arrow files (one row per "
                    "document: input_ids with </s> after each paragraph, paragraph_lengths, lines, bytes) plus block "
                    "tables and manifest.json. `corpus: OUTPUT` in a pretraining recipe then reads only each rank's "
                    "own blocks. Finished parts are kept: a rerun does what is missing.")
    tokenize.set_defaults(func=cmd_tokenize_corpus, settings_parser=tokenize)
    if command == "tokenize-corpus":
        tokenize.add_settings(TokenizeJob, dashes=True)
    pre = sub.add_parser("pretrain", help="masked-LM pretraining on Accelerate (see recipes/pretrain/)",
                         usage="xlmr-hf pretrain [RECIPE.yaml] [--field value ...]",
                         description="Pretrain (or resume) from a YAML recipe; --field value overrides it.")
    pre.set_defaults(func=cmd_pretrain, settings_parser=pre)
    pre.add_argument("recipe", nargs="?", help="a YAML recipe (recipes/pretrain/*.yaml); optional")
    if command == "pretrain":
        from .training import PretrainArguments

        pre.add_settings(PretrainArguments)
    _add_finetune(sub, command, task)


def _add_extend_tokenizer(sub: Any, command: str | None) -> None:
    ext = sub.add_parser("extend-tokenizer", help="add pieces learnt on new text to a tokenizer, keeping every old id",
                         description="Train a SentencePiece unigram model on the α-sampled new corpus (as "
                                     "train-tokenizer does) and append the pieces the old vocabulary lacks after the "
                                     "old ids (<mask> included); writes tokenizer.json (and sentencepiece.bpe.model "
                                     "where the old folder has one) plus extension_summary.json, and prints pieces "
                                     "per word and unknown rate per language before and after. Initialise the new "
                                     "embedding rows with xlmr_hf.training.vocabulary.extend_embeddings.")
    ext.set_defaults(func=cmd_extend_tokenizer, settings_parser=ext)
    if command == "extend-tokenizer":
        ext.add_settings(ExtendTokenizerJob, dashes=True, title="input, output and sampling",
                         aliases={"num_threads": ["--threads"]})


def _add_finetune(sub: Any, command: str | None, task: str | None) -> None:
    usage = "xlmr-hf finetune TASK [RECIPE.yaml] [--field value ...]"
    if command != "finetune":  # the task registry imports every task module: only when fine-tuning
        sub.add_parser("finetune", help="fine-tuning on Trainer: XNLI, NER, MLQA (see recipes/finetune/)", usage=usage)
        return
    from .tasks import get_task, task_names

    names = task_names()
    fine = sub.add_parser("finetune", usage=usage,
                          description="Fine-tune and evaluate every language; --field value overrides the recipe. "
                                      "Tasks: " + "; ".join(f"{n}: {get_task(n).help}" for n in names)
                                      + ". `xlmr-hf finetune TASK --help` lists the task's fields, TrainingArguments' "
                                        "included.")
    fine.set_defaults(func=cmd_finetune, settings_parser=fine)
    fine.add_argument("task", choices=names, help="the task")
    fine.add_argument("recipe", nargs="?", help="a YAML recipe (recipes/finetune/*.yaml); optional")
    if task in names:
        from .training import FinetuneArguments

        fine.add_settings(FinetuneArguments.for_task(task), skip={"task"})


def _command_of(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """(command, the positional after it) of a command line, without parsing it."""
    positionals, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--log-level":
            skip = True
        elif not item.startswith("-"):
            positionals.append(item)
            if len(positionals) == 2:
                break
    return (positionals + [None, None])[0], (positionals + [None, None])[1]


def build_parser(argv: Sequence[str] = ()) -> SettingsParser:
    """The argument parser of the ``xlmr-hf`` command (with the options of the command in ``argv``)."""
    parser = SettingsParser(prog="xlmr-hf", description="XLM-R on the Hugging Face stack.")
    parser.add_argument("--log-level", dest="cli_log_level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging level (default INFO)")
    parser.add_argument("--debug", dest="show_traceback", action="store_true",
                        help="show the traceback of an error (and DEBUG logging)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=SettingsParser)
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

    ablate = sub.add_parser("ablate", help="run an ablation recipe (recipes/ablations/) over variants and seeds",
                            description="Run every variant x seed of an ablation recipe; write <name>.json, .md "
                                        "and .png (mean ± std over seeds) into --output_dir.")
    ablate.add_argument("recipe", help="ablation recipe (YAML), e.g. recipes/ablations/alpha_tradeoff.yaml")
    ablate.add_argument("--output_dir", default="results/ablations",
                        help="where the results go (default results/ablations)")
    ablate.add_argument("--work_dir", default=None,
                        help="where the runs' checkpoints and tokenizers go (default runs/ablations/<name>)")
    ablate.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds to run instead of the recipe's")
    ablate.add_argument("--quick", action="store_true",
                        help="the recipe's quick version: its quick overrides (tiny model, few steps) and quick_seeds")
    ablate.set_defaults(func=cmd_ablate)
    _add_settings_commands(sub, *_command_of(argv))
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    ours = type(error).__module__.startswith("xlmr_hf")
    if (ours or isinstance(error, (ValueError, OSError))) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xlmr-hf`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)[0] or ""
    try:
        parser = build_parser(argv)
        args, rest = parser.parse_known_args(argv)
        if rest:
            settings = getattr(args, "settings_parser", None)
            if settings is None:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            settings.reject_unknown(rest)
    except RecipeError as error:  # bad command line: argparse's message, one line
        print(f"xlmr-hf{' ' + command if command else ''}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    level = "DEBUG" if args.show_traceback else args.cli_log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except Exception as error:  # noqa: BLE001 -- every failure ends as one line (the traceback with --debug)
        if args.show_traceback:
            traceback.print_exc()
        print(f"xlmr-hf {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
