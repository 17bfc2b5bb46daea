"""Train an XLM-R-layout SentencePiece unigram tokenizer on α-sampled multilingual text and save it for transformers.

`train_tokenizer(corpus, output_dir, config)`:

1. finds the language files (`corpus.discover_corpus`) and checks they can be read;
2. counts sentences (and their bytes and characters) per language and draws the α-smoothed sample plus held-out
   slices (`corpus.sample_corpus`), with p_i measured in ``config.unit`` (lines by default);
3. checks, before any training, that ``vocab_size`` leaves room for the characters SentencePiece must keep
   (``character_coverage``), with SentencePiece's own normaliser and rule;
4. trains SentencePiece (unigram; ``<unk>``=0, ``<s>``=1, ``</s>``=2 exactly as XLM-R's ``sentencepiece.bpe.model``);
5. wraps it as a fast tokenizer with fairseq's ids (`build_xlmr_tokenizer`): ``<s>``=0, ``<pad>``=1, ``</s>``=2,
   ``<unk>``=3, SentencePiece piece i>2 at i+1, ``<mask>`` last — ``vocab_size + 2`` ids in all (250,002 for 250,000);
6. writes ``sentencepiece.bpe.model``, ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json`` and
   ``training_summary.json`` (sample shares, fertility and unknown rate per language on the held-out slices), moving
   them into ``output_dir`` only when everything has been written.

``AutoTokenizer.from_pretrained(output_dir)`` then returns transformers' ``XLMRobertaTokenizer`` (fast, `tokenizers`
backed) whose ids equal SentencePiece's under fairseq's layout. With ``byte_fallback=True`` the class recorded is
transformers' generic fast tokenizer (``TokenizersBackend``): ``XLMRobertaTokenizer`` rebuilds its Unigram model without
byte fallback when it loads, which would turn every byte piece into ``<unk>``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from tokenizers import AddedToken, decoders
from tokenizers.models import Unigram
from transformers import PreTrainedTokenizerFast, XLMRobertaTokenizer

from .corpus import (
    SAMPLE_UNITS,
    LanguageSample,
    count_sentences,
    discover_corpus,
    sample_corpus,
)
from .stats import LanguageTokenStats, tokenizer_statistics

__all__ = [
    "SPECIAL_TOKENS",
    "TokenizerTrainingConfig",
    "TokenizerTrainingError",
    "TokenizerTrainingResult",
    "build_xlmr_tokenizer",
    "publish_staged",
    "required_characters",
    "train_tokenizer",
]

logger = logging.getLogger(__name__)

SPECIAL_TOKENS: dict[str, str] = {
    "bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>",
    "sep_token": "</s>", "cls_token": "<s>", "mask_token": "<mask>",
}
"""transformers' special-token attributes of an XLM-R tokenizer (ids 0, 1, 2, 3 and the last id)."""

_META_PIECES = ("<unk>", "<s>", "</s>")  # SentencePiece ids 0, 1, 2 in XLM-R's sentencepiece.bpe.model
_RESERVED = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}
SUMMARY_FILE = "training_summary.json"


class TokenizerTrainingError(ValueError):
    """A setting or corpus the tokenizer cannot be trained with; the message names the field and what is allowed."""


@dataclass
class TokenizerTrainingConfig:
    """Settings of `train_tokenizer`. Defaults follow XLM-R where it is known (unigram, 250k pieces, α = 0.3)."""

    vocab_size: int = 250_000
    """SentencePiece pieces, ``<unk>``/``<s>``/``</s>`` included (XLM-R: 250,000). The tokenizer has ``vocab_size + 2``
    ids: fairseq adds ``<pad>`` and ``<mask>``."""
    alpha: float = 0.3
    """Language sampling exponent in [0, 1]: q_i ∝ p_i^α (1 = proportional to data, 0 = uniform)."""
    unit: str = "lines"
    """What p_i, a language's share of the corpus, is measured in: ``lines`` (valid lines, i.e. sentences n_i: the
    XLM-R paper's definition), ``bytes`` (UTF-8 bytes of the valid lines) or ``characters`` (characters of the valid
    lines). The sample is still counted in lines and split by q_i; only p_i changes."""
    max_sentences: int | None = 10_000_000
    """Cap on the training sentences drawn over all languages (repetitions counted). The sample never exceeds the
    corpus's own number of training lines; ``None`` = exactly that many."""
    character_coverage: float = 0.9995
    """Share of characters the vocabulary must cover (SentencePiece's default; rarer characters become ``<unk>``)."""
    byte_fallback: bool = False
    """Add the 256 byte pieces so unknown characters are spelt as UTF-8 bytes (XLM-R: off)."""
    user_defined_symbols: tuple[str, ...] = ()
    """Strings always kept as one piece (SentencePiece ``user_defined_symbols``)."""
    num_threads: int | None = None
    """SentencePiece trainer threads; ``None`` = all CPU cores."""
    seed: int = 0
    """Seed of the sample draw and of SentencePiece's random generator."""
    heldout_sentences: int = 1000
    """Held-out lines per language for the fertility report (at most a tenth of the language's lines)."""
    max_sentence_length: int = 4192
    """Longest line in UTF-8 bytes; longer lines are left out and counted (SentencePiece's default)."""
    max_sentencepiece_length: int = 16
    """Longest piece in characters (SentencePiece's default)."""
    normalization_rule_name: str = "nmt_nfkc"
    """SentencePiece normalisation (XLM-R: ``nmt_nfkc``)."""
    model_max_length: int = 512
    """``model_max_length`` written to the tokenizer config (XLM-R: 512)."""

    def __post_init__(self) -> None:
        self.user_defined_symbols = tuple(self.user_defined_symbols)
        if not isinstance(self.vocab_size, int) or self.vocab_size < 8:
            raise TokenizerTrainingError(f"vocab_size={self.vocab_size!r} is not allowed: expected an integer >= 8")
        if not isinstance(self.alpha, (int, float)) or not 0.0 <= self.alpha <= 1.0:
            raise TokenizerTrainingError(f"alpha={self.alpha!r} is not allowed: expected 0 <= alpha <= 1 "
                                         "(XLM-R: 0.3)")
        if self.unit not in SAMPLE_UNITS:
            raise TokenizerTrainingError(f"unit={self.unit!r} is not allowed: expected one of {list(SAMPLE_UNITS)} "
                                         "(XLM-R: lines)")
        if self.max_sentences is not None and (not isinstance(self.max_sentences, int) or self.max_sentences < 1):
            raise TokenizerTrainingError(f"max_sentences={self.max_sentences!r} is not allowed: expected a positive "
                                         "integer or None")
        if not 0.0 < self.character_coverage <= 1.0:
            raise TokenizerTrainingError(f"character_coverage={self.character_coverage!r} is not allowed: expected "
                                         "0 < character_coverage <= 1")
        if self.num_threads is not None and self.num_threads < 1:
            raise TokenizerTrainingError(f"num_threads={self.num_threads!r} is not allowed: expected >= 1 or None")
        for name in ("heldout_sentences",):
            if getattr(self, name) < 0:
                raise TokenizerTrainingError(f"{name}={getattr(self, name)!r} is not allowed: expected >= 0")
        for name in ("max_sentence_length", "max_sentencepiece_length", "model_max_length"):
            if getattr(self, name) < 1:
                raise TokenizerTrainingError(f"{name}={getattr(self, name)!r} is not allowed: expected >= 1")
        symbols = self.user_defined_symbols
        bad = [s for s in symbols if not isinstance(s, str) or not s or any(c.isspace() for c in s) or s in _RESERVED]
        if bad or len(set(symbols)) != len(symbols):
            raise TokenizerTrainingError(
                f"user_defined_symbols={list(symbols)!r} is not allowed: expected distinct non-empty strings without "
                f"whitespace, none of {sorted(_RESERVED)}" + (f" (bad: {bad})" if bad else " (duplicates)"))


@dataclass
class TokenizerTrainingResult:
    """What `train_tokenizer` produced: the tokenizer, where it is, and the per-language report."""

    tokenizer: PreTrainedTokenizerFast
    output_dir: Path
    languages: dict[str, LanguageSample]
    statistics: dict[str, LanguageTokenStats]
    config: TokenizerTrainingConfig
    required_characters: int
    seconds: dict[str, float] = field(default_factory=dict)
    unit: str = "lines"
    """What p_i was measured in: ``config.unit``, or ``"sizes"`` when `train_tokenizer` was given ``sizes``."""

    def to_dict(self) -> dict:
        """The JSON summary (also written to ``output_dir/training_summary.json``)."""
        languages = {}
        for lang, sample in self.languages.items():
            entry = {key: value for key, value in asdict(sample).items() if key not in ("heldout", "language")}
            entry["passes"] = sample.passes
            entry["heldout_sentences"] = len(sample.heldout)
            stats = self.statistics.get(lang)
            entry["heldout"] = stats.to_dict() if stats is not None else None
            languages[lang] = entry
        total = sum(sample.sampled_sentences for sample in self.languages.values())
        return {
            "tokenizer_class": type(self.tokenizer).__name__,
            "vocab_size": len(self.tokenizer),
            "sentencepiece_vocab_size": len(self.tokenizer) - 2,
            "required_characters": self.required_characters,
            "sampled_sentences": total,
            "unit": self.unit,
            "settings": asdict(self.config),
            "languages": languages,
            "seconds": self.seconds,
        }

    def format_table(self) -> str:
        """A plain-text table of the summary, one row per language."""
        p_label = f"p_i ({self.unit})"
        width = max(7, len(p_label))
        rows = [(f"{'lang':<8} {'sentences':>10} {p_label:>{width}} {'q_i':>7} {'sampled':>10} {'chars':>12} "
                 f"{'passes':>7} {'fertility':>14} {'unk':>7}")]
        for lang, sample in self.languages.items():
            stats = self.statistics.get(lang)
            fert = f"{stats.fertility:.3f}/{stats.fertility_unit[:4]}" if stats and stats.texts else "n/a"
            unk = f"{100 * stats.unknown_rate:.2f}%" if stats and stats.texts else "n/a"
            rows.append(f"{lang:<8} {sample.sentences:>10,} {sample.p:>{width}.4f} {sample.q:>7.4f} "
                        f"{sample.sampled_sentences:>10,} {sample.sampled_characters:>12,} {sample.passes:>7.2f} "
                        f"{fert:>14} {unk:>7}")
        rows.append(f"vocabulary: {len(self.tokenizer):,} ids ({len(self.tokenizer) - 2:,} SentencePiece pieces + "
                    f"<pad> + <mask>); required characters {self.required_characters:,}; "
                    f"{type(self.tokenizer).__name__} in {self.output_dir}")
        return "\n".join(rows)


class _CharCounter:
    """Weighted character counts of SentencePiece-normalised sentences, batched through the C++ normaliser."""

    def __init__(self, rule_name: str, user_symbols: Sequence[str], batch: int = 4096):
        self.normalizer = spm.SentencePieceNormalizer(rule_name=rule_name)
        self.user_symbols = user_symbols
        self.pending: dict[int, list[str]] = {}
        self.counts: Counter[str] = Counter()
        self.batch = batch

    def add(self, sentence: str, count: int) -> None:
        for symbol in self.user_symbols:  # SentencePiece blanks meta pieces out of the training text
            sentence = sentence.replace(symbol, " ")
        bucket = self.pending.setdefault(count, [])
        bucket.append(sentence)
        if len(bucket) >= self.batch:
            self._flush(count)

    def _flush(self, count: int) -> None:
        normalized = "".join(self.normalizer.normalize(self.pending.pop(count)))
        for char, n in Counter(normalized).items():
            self.counts[char] += n * count

    def finish(self) -> Counter[str]:
        for count in list(self.pending):
            self._flush(count)
        self.counts.pop(" ", None)
        return self.counts


def required_characters(char_counts: Mapping[str, int], character_coverage: float) -> int:
    """How many distinct characters SentencePiece must keep: the most frequent ones until ``character_coverage`` of all
    character occurrences is reached (its rule: frequency descending, ties by code point)."""
    total = sum(char_counts.values())
    covered = needed = 0
    for _, count in sorted(char_counts.items(), key=lambda item: (-item[1], item[0])):
        if total and covered / total >= character_coverage:
            break
        covered += count
        needed += 1
    return needed


def build_xlmr_tokenizer(model_proto: bytes, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """A fast tokenizer with fairseq's XLM-R ids for a SentencePiece unigram model in XLM-R's layout.

    The model must have ``<unk>``, ``<s>``, ``</s>`` at SentencePiece ids 0, 1, 2 (as XLM-R's
    ``sentencepiece.bpe.model``). Returns ``XLMRobertaTokenizer`` or, with byte fallback, the generic fast class
    holding the same backend plus byte fallback.
    """
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_proto)
    head = tuple(piece.piece for piece in proto.pieces[:3])
    if proto.trainer_spec.model_type != sentencepiece_model_pb2.TrainerSpec.UNIGRAM or head != _META_PIECES:
        raise TokenizerTrainingError(
            f"the SentencePiece model is not in XLM-R's layout: expected a unigram model with pieces 0..2 = "
            f"{list(_META_PIECES)}, got model_type={proto.trainer_spec.model_type} and pieces {list(head)}")
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(piece.piece, piece.score) for piece in proto.pieces[3:]]
    vocab.append(("<mask>", 0.0))
    mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
    tokenizer = XLMRobertaTokenizer(
        vocab=vocab,
        add_prefix_space=True,
        _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap,
        mask_token=mask,
        model_max_length=model_max_length,
    )
    if not proto.trainer_spec.byte_fallback:
        return tokenizer
    backend = tokenizer.backend_tokenizer
    backend.model = Unigram(vocab, unk_id=3, byte_fallback=True)
    backend.decoder = decoders.Sequence(
        [decoders.Metaspace(replacement="▁", prepend_scheme="always"), decoders.ByteFallback(), decoders.Fuse()])
    return PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=model_max_length,
                                   **{**SPECIAL_TOKENS, "mask_token": mask})


def _train_sentencepiece(tsv: Path, prefix: Path, config: TokenizerTrainingConfig) -> bytes:
    spm.set_random_generator_seed(config.seed)
    try:
        spm.SentencePieceTrainer.train(
            input=str(tsv),
            input_format="tsv",
            model_prefix=str(prefix),
            model_type="unigram",
            vocab_size=config.vocab_size,
            character_coverage=config.character_coverage,
            byte_fallback=config.byte_fallback,
            user_defined_symbols=list(config.user_defined_symbols),
            num_threads=config.num_threads or os.cpu_count() or 1,
            max_sentence_length=config.max_sentence_length,
            max_sentencepiece_length=config.max_sentencepiece_length,
            normalization_rule_name=config.normalization_rule_name,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            hard_vocab_limit=True,
            minloglevel=0 if logger.isEnabledFor(logging.DEBUG) else 1,
        )
    except RuntimeError as error:
        message = str(error)
        if "Vocabulary size too high" in message or "vocab_size" in message.lower():
            raise TokenizerTrainingError(
                f"vocab_size={config.vocab_size} cannot be reached on this sample: {message.strip()} — lower "
                "vocab_size or give more text (max_sentences, more files)") from error
        raise TokenizerTrainingError(f"SentencePiece training failed: {message.strip()}") from error
    # The trainer spec records the scratch paths; keep file names only so the same run gives the same bytes.
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(prefix.with_suffix(".model").read_bytes())
    del proto.trainer_spec.input[:]
    proto.trainer_spec.input.append(tsv.name)
    proto.trainer_spec.model_prefix = "sentencepiece.bpe"
    return proto.SerializeToString()


def _write_outputs(directory: Path, tokenizer, model_proto: bytes, summary: dict) -> None:
    tokenizer.save_pretrained(directory)
    (directory / "sentencepiece.bpe.model").write_bytes(model_proto)
    special = {key: value for key, value in SPECIAL_TOKENS.items() if key != "mask_token"}
    special["mask_token"] = {"content": "<mask>", "lstrip": True, "rstrip": False, "normalized": False,
                             "single_word": False}
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    (directory / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def train_tokenizer(
    corpus: str | os.PathLike | Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]],
    output_dir: str | os.PathLike,
    config: TokenizerTrainingConfig | None = None,
    *,
    languages: Sequence[str] | None = None,
    sizes: Mapping[str, float] | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> TokenizerTrainingResult:
    """Train an XLM-R-layout tokenizer on ``corpus`` and save it to ``output_dir`` (see the module docstring).

    ``corpus`` is a CC-100 directory or a mapping language → file(s); ``languages`` restricts it; ``sizes`` gives p_i
    (any unit; the summary's ``unit`` is then ``"sizes"``) instead of the counts in ``config.unit``. A non-empty
    ``output_dir`` is refused unless ``overwrite`` (then its contents are replaced once the new tokenizer is
    complete). Bad input raises `CorpusError` or `TokenizerTrainingError` (both ``ValueError``) before SentencePiece
    starts.
    """
    config = config or TokenizerTrainingConfig()
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise TokenizerTrainingError(f"output_dir={str(output_dir)!r} exists and is not empty; choose another one or "
                                     "overwrite it (overwrite=True, --overwrite true)")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    files = discover_corpus(corpus, languages)
    counts = count_sentences(files, config.max_sentence_length, progress=progress)
    seconds["count"] = time.perf_counter() - start

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tokenizer-", dir=output_dir.parent) as scratch:
        scratch = Path(scratch)
        chars = _CharCounter(config.normalization_rule_name, config.user_defined_symbols)
        tsv = scratch / "sample.tsv"
        with tsv.open("w", encoding="utf-8", newline="\n") as handle:
            def write(sentence: str, count: int) -> None:
                # SentencePiece's tsv input is "text<TAB>count"; its normaliser maps a tab to a space anyway.
                handle.write(f"{sentence.replace(chr(9), ' ')}\t{count}\n")
                chars.add(sentence, count)

            start = time.perf_counter()
            samples = sample_corpus(
                files, counts, write, alpha=config.alpha, max_sentences=config.max_sentences,
                heldout_sentences=config.heldout_sentences, max_sentence_length=config.max_sentence_length,
                sizes=sizes, unit=config.unit, seed=config.seed, progress=progress)
            seconds["sample"] = time.perf_counter() - start
        char_counts = chars.finish()
        needed = required_characters(char_counts, config.character_coverage)
        reserved = len(_META_PIECES) + len(config.user_defined_symbols) + (256 if config.byte_fallback else 0)
        if needed + reserved >= config.vocab_size:
            raise TokenizerTrainingError(
                f"vocab_size={config.vocab_size} is too small: character_coverage={config.character_coverage} needs "
                f"{needed} characters in the vocabulary plus {reserved} reserved pieces (<unk>, <s>, </s>"
                f"{', user symbols' if config.user_defined_symbols else ''}"
                f"{', 256 bytes' if config.byte_fallback else ''}); use vocab_size > {needed + reserved} or lower "
                "character_coverage")
        logger.info("training SentencePiece unigram: vocab_size=%d, %d distinct sentences, %d required characters",
                    config.vocab_size, sum(s.unique_sentences for s in samples.values()), needed)
        start = time.perf_counter()
        model_proto = _train_sentencepiece(tsv, scratch / "spm", config)
        seconds["train"] = time.perf_counter() - start

        tokenizer = build_xlmr_tokenizer(model_proto, config.model_max_length)
        start = time.perf_counter()
        heldout = {lang: sample.heldout for lang, sample in samples.items() if sample.heldout}
        statistics = tokenizer_statistics(tokenizer, heldout, progress=progress)
        seconds["statistics"] = time.perf_counter() - start
        result = TokenizerTrainingResult(tokenizer, output_dir, samples, statistics, config, needed, seconds,
                                         unit=config.unit if sizes is None else "sizes")

        staging = scratch / "out"
        _write_outputs(staging, tokenizer, model_proto, result.to_dict())
        publish_staged(staging, output_dir, overwrite)
    tokenizer.name_or_path = str(output_dir)
    return result


def publish_staged(staging: Path, output_dir: Path, overwrite: bool) -> None:
    """Move the files of a finished ``staging`` folder into ``output_dir`` (replacing it first with ``overwrite``)."""
    if output_dir.is_dir() and overwrite:
        shutil.rmtree(output_dir)
    elif output_dir.exists() and overwrite:
        output_dir.unlink()
    output_dir.mkdir(exist_ok=True)
    for path in staging.iterdir():
        os.replace(path, output_dir / path.name)
