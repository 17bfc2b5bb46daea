"""Extend an XLM-R tokenizer with pieces learnt on new text, keeping every old id (``xlmr-hf extend-tokenizer``).

`extend_tokenizer(tokenizer, corpus, add_pieces, output_dir=...)`:

1. reads the old tokenizer folder (or downloads a Hub repository's tokenizer files): ``tokenizer.json`` and/or
   ``sentencepiece.bpe.model`` (checked against each other: fast id i+1 = SentencePiece piece i for i > 2, ids 0..3 =
   ``<s> <pad> </s> <unk>``);
2. trains a SentencePiece unigram model on the new corpus with `train_tokenizer` itself, so the text is α-sampled
   exactly as ``xlmr-hf train-tokenizer`` samples it, with the old model's normalisation rule;
3. takes the new model's normal pieces the old vocabulary lacks, highest score first, up to ``add_pieces`` (fewer when
   fewer are new: all of them are added, and the shortfall is logged and reported);
4. writes the extended tokenizer: ``tokenizer.json`` is the old one with the new pieces (and their scores) appended to
   its Unigram vocabulary, so they get ids ``len(old) ..``; where the old folder had a SentencePiece model, the new
   ``sentencepiece.bpe.model`` keeps fairseq's offset (piece i at id i+1) for every new piece: `<mask>`, which has
   no SentencePiece piece in XLM-R's layout (it is the last id, one past the last piece), is given a *control* piece
   at SentencePiece id ``len(old) - 2`` (fairseq id ``len(old) - 1``), and the new pieces follow it
   (`extend_sentencepiece_model`). A control piece is never produced by encoding, so SentencePiece segments any
   text exactly as before the slot was filled;
5. measures fertility (pieces per whitespace word) and the unknown rate before and after on the held-out lines that
   `train_tokenizer` set aside per language (never trained on), and checks the saved tokenizer (`check_extension`).

The tokenizer configuration files of the old folder are copied (``tokenizer_class`` is added where the folder relied
on a model ``config.json`` for it): special tokens keep their ids.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .corpus import LanguageSample
from .stats import LanguageTokenStats, tokenizer_statistics
from .training import (
    TokenizerTrainingConfig,
    TokenizerTrainingError,
    build_xlmr_tokenizer,
    publish_staged,
    train_tokenizer,
)

__all__ = [
    "EXTENSION_SUMMARY",
    "MASK_PIECE",
    "TokenizerExtensionError",
    "TokenizerExtensionResult",
    "check_extension",
    "extend_sentencepiece_model",
    "extend_tokenizer",
    "extend_tokenizer_json",
]

logger = logging.getLogger(__name__)

MASK_PIECE = "<mask>"
"""The piece that fills fairseq's ``<mask>`` slot in an extended SentencePiece model (type CONTROL)."""
EXTENSION_SUMMARY = "extension_summary.json"
"""The report `extend_tokenizer` writes beside the tokenizer."""
_SP_MODEL = "sentencepiece.bpe.model"
_FAST = "tokenizer.json"
_CONFIG_FILES = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
_FAIRSEQ_HEAD = ("<s>", "<pad>", "</s>", "<unk>")
_SP_HEAD = ("<unk>", "<s>", "</s>")
_SPECIAL_ATTRIBUTES = ("bos_token_id", "pad_token_id", "eos_token_id", "unk_token_id", "sep_token_id",
                       "cls_token_id", "mask_token_id")
_RULES = ("nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "identity")
_Piece = sentencepiece_model_pb2.ModelProto.SentencePiece
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


class TokenizerExtensionError(ValueError):
    """A tokenizer, setting or result that cannot be used to extend a vocabulary; the message names what and why."""


@dataclass
class TokenizerExtensionResult:
    """What `extend_tokenizer` wrote, and the tokenization figures of the new text before and after."""

    tokenizer: PreTrainedTokenizerBase
    """The extended tokenizer, loaded from ``output_dir`` with ``AutoTokenizer``."""
    output_dir: Path
    old_size: int
    """``len(old tokenizer)``: the first new id."""
    requested: int
    """``add_pieces``."""
    added: tuple[str, ...]
    """The new pieces, in id order (ids ``old_size ..``)."""
    candidates: int
    """Normal pieces of the SentencePiece model trained on the new text."""
    known: int
    """Of those, how many the old vocabulary already had."""
    sentencepiece_model: bool
    """Whether a ``sentencepiece.bpe.model`` was written (the old folder had one)."""
    languages: dict[str, LanguageSample]
    before: dict[str, LanguageTokenStats]
    after: dict[str, LanguageTokenStats]
    agreement: tuple[int, int] | None = None
    """(held-out lines where SentencePiece, under fairseq's offset, and the fast tokenizer give the same ids, lines
    compared); None without a SentencePiece model or held-out lines."""
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def new_size(self) -> int:
        return self.old_size + len(self.added)

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (also written to ``output_dir/extension_summary.json``)."""
        languages = {}
        for lang, sample in self.languages.items():
            before, after = self.before.get(lang), self.after.get(lang)
            languages[lang] = {
                "sentences": sample.sentences, "p": sample.p, "q": sample.q,
                "sampled_sentences": sample.sampled_sentences, "heldout_sentences": len(sample.heldout),
                "before": before.to_dict() if before else None, "after": after.to_dict() if after else None,
            }
        return {
            "tokenizer_class": type(self.tokenizer).__name__, "old_size": self.old_size, "new_size": self.new_size,
            "mask_token_id": self.tokenizer.mask_token_id, "requested": self.requested, "added": len(self.added),
            "candidates": self.candidates, "known": self.known, "first_added": list(self.added[:20]),
            "sentencepiece_model": self.sentencepiece_model,
            "agreement": list(self.agreement) if self.agreement else None,
            "settings": self.settings, "languages": languages, "seconds": self.seconds,
        }

    def format_table(self) -> str:
        """A plain-text table: pieces per whitespace word and unknown rate per language, before -> after."""
        rows = [f"{'lang':<8} {'held-out':>8} {'words':>9} {'pieces/word':>17} {'change':>8} {'unk':>17}"]
        for lang in self.languages:
            before, after = self.before.get(lang), self.after.get(lang)
            if not (before and after and before.words):
                rows.append(f"{lang:<8} {'0':>8} {'-':>9} {'n/a':>17} {'n/a':>8} {'n/a':>17}")
                continue
            change = after.tokens_per_word / before.tokens_per_word - 1 if before.tokens_per_word else 0.0
            rows.append(f"{lang:<8} {before.texts:>8,} {before.words:>9,} "
                        f"{before.tokens_per_word:>7.3f} -> {after.tokens_per_word:<6.3f} {100 * change:>+7.1f}% "
                        f"{100 * before.unknown_rate:>6.2f}% -> {100 * after.unknown_rate:.2f}%")
        rows.append(f"added {len(self.added):,} of {self.requested:,} requested pieces ({self.candidates:,} pieces in "
                    f"the new model, {self.known:,} already known); {self.old_size:,} -> {self.new_size:,} ids, "
                    f"new ids {self.old_size:,}..{self.new_size - 1:,}, <mask> stays {self.tokenizer.mask_token_id}")
        files = "sentencepiece.bpe.model + tokenizer.json" if self.sentencepiece_model else "tokenizer.json"
        agree = (f"; SentencePiece = fast on {self.agreement[0]}/{self.agreement[1]} held-out lines"
                 if self.agreement else "")
        rows.append(f"{files} in {self.output_dir}{agree}")
        return "\n".join(rows)


def check_extension(old_tokenizer: PreTrainedTokenizerBase, new_tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise `TokenizerExtensionError` unless ``new_tokenizer`` extends ``old_tokenizer``: at least as many ids,
    the same piece at every old id, and the same special-token ids."""
    old_size, new_size = len(old_tokenizer), len(new_tokenizer)
    if new_size < old_size:
        raise TokenizerExtensionError(f"the new tokenizer has {new_size} ids, fewer than the old one's {old_size}: "
                                      "expected the old ids followed by new pieces")
    old = old_tokenizer.convert_ids_to_tokens(list(range(old_size)))
    new = new_tokenizer.convert_ids_to_tokens(list(range(old_size)))
    if old != new:
        i = next(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
        raise TokenizerExtensionError(
            f"the new tokenizer does not extend the old one: id {i} is {new[i]!r} in the new tokenizer but {old[i]!r} "
            "in the old one; expected every old id to keep its piece and new pieces to follow")
    for name in _SPECIAL_ATTRIBUTES:
        a, b = getattr(old_tokenizer, name, None), getattr(new_tokenizer, name, None)
        if a != b:
            raise TokenizerExtensionError(f"the new tokenizer's {name} is {b}, the old one's {a}: special ids must "
                                          "not move")


def extend_sentencepiece_model(model_proto: bytes, pieces: Sequence[tuple[str, float]]) -> bytes:
    """An XLM-R-layout SentencePiece model with ``pieces`` (text, score) appended as normal pieces.

    Under fairseq's offset SentencePiece piece i is id i+1, and ``<mask>`` is the id after the last piece, so the
    first appended piece would land on ``<mask>``. A model without a `MASK_PIECE` therefore first gets one, of type
    CONTROL, at that id; a model that already has it (extended before) just grows.
    """
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_proto)
    present = {piece.piece for piece in proto.pieces}
    if MASK_PIECE not in present:
        proto.pieces.add(piece=MASK_PIECE, score=0.0, type=_Piece.CONTROL)
        present.add(MASK_PIECE)
    for text, score in pieces:
        if text in present:
            raise TokenizerExtensionError(f"piece {text!r} is already in the SentencePiece model")
        proto.pieces.add(piece=text, score=score, type=_Piece.NORMAL)
        present.add(text)
    proto.trainer_spec.vocab_size = len(proto.pieces)
    return proto.SerializeToString()


def extend_tokenizer_json(tokenizer_json: str, pieces: Sequence[tuple[str, float]]) -> str:
    """A ``tokenizer.json`` (Unigram model) with ``pieces`` (text, score) appended to its vocabulary: ids
    ``len(vocab) ..``. Refused when an added token sits beyond the vocabulary (a new piece would take its id)."""
    data = json.loads(tokenizer_json)
    model = data.get("model") or {}
    if model.get("type") != "Unigram":
        raise TokenizerExtensionError(f"tokenizer.json has a {model.get('type')!r} model; expected Unigram "
                                      "(SentencePiece unigram, as XLM-R)")
    vocab = model["vocab"]
    beyond = [token["content"] for token in data.get("added_tokens", []) if token["id"] >= len(vocab)]
    if beyond:
        raise TokenizerExtensionError(f"tokenizer.json has added tokens {beyond} beyond its {len(vocab)}-piece "
                                      "vocabulary; new pieces would take their ids")
    known = {piece for piece, _ in vocab}
    clash = [text for text, _ in pieces if text in known]
    if clash:
        raise TokenizerExtensionError(f"pieces {clash[:5]} are already in tokenizer.json")
    vocab.extend([text, float(score)] for text, score in pieces)
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False)).to_str(pretty=True)


@dataclass
class _Old:
    """The old tokenizer as read from its folder (``folder`` holds its tokenizer.json and configuration files)."""

    folder: Path
    tokenizer: PreTrainedTokenizerBase
    tokenizer_json: str
    model_proto: bytes | None


def _load(folder: Path, what: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TokenizerExtensionError(f"{what} {str(folder)!r} cannot be loaded with AutoTokenizer: "
                                      f"{' '.join(str(error).split())}") from error


def _check_layout(vocab: Sequence[str], proto: sentencepiece_model_pb2.ModelProto | None, where: str) -> None:
    """Fast ids 0..3 are fairseq's specials; with a SentencePiece model, fast id i+1 = piece i for every i > 2."""
    if tuple(vocab[:4]) != _FAIRSEQ_HEAD or MASK_PIECE not in vocab:
        raise TokenizerExtensionError(f"{where}: ids 0..3 are {list(vocab[:4])} and <mask> is "
                                      f"{'present' if MASK_PIECE in vocab else 'missing'}; expected XLM-R's layout "
                                      f"{list(_FAIRSEQ_HEAD)} ... <mask>")
    if proto is None:
        return
    pieces = [piece.piece for piece in proto.pieces]
    if tuple(pieces[:3]) != _SP_HEAD or len(vocab) - len(pieces) not in (1, 2):
        raise TokenizerExtensionError(
            f"{where}: {_SP_MODEL} has {len(pieces)} pieces beginning {pieces[:3]} for {len(vocab)} fast ids; "
            f"expected pieces {list(_SP_HEAD)} ... and len(pieces) + 2 ids (or + 1 once <mask> has a piece)")
    for i in range(3, len(pieces)):
        if vocab[i + 1] != pieces[i]:
            raise TokenizerExtensionError(f"{where}: SentencePiece piece {i} is {pieces[i]!r} but fast id {i + 1} is "
                                          f"{vocab[i + 1]!r}; {_SP_MODEL} and tokenizer.json disagree")
    if len(vocab) - len(pieces) == 2 and vocab[-1] != MASK_PIECE:
        raise TokenizerExtensionError(f"{where}: the last fast id is {vocab[-1]!r}; expected <mask>")


def _resolve(tokenizer: str | os.PathLike) -> Path:
    """A local folder as it is; a name that is no local path but could be a Hub repository id is downloaded (its
    tokenizer files and config.json only)."""
    path = Path(tokenizer)
    if path.exists() or not _REPO_ID.fullmatch(str(tokenizer)):
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(tokenizer), allow_patterns=[_SP_MODEL, _FAST, *_CONFIG_FILES, "config.json"]))
    except Exception as error:  # noqa: BLE001 -- offline, unknown repository, no access: one line, with the cause
        raise TokenizerExtensionError(
            f"tokenizer={str(tokenizer)!r} is not a directory, and no Hub repository of that name can be fetched "
            f"({type(error).__name__}: {' '.join(str(error).split())[:300]}); expected a tokenizer folder holding "
            f"{_SP_MODEL} and/or {_FAST}, or a Hub id") from error


def _read_old(source: Path, scratch: Path) -> _Old:
    where = f"tokenizer folder {str(source)!r}"
    if not source.is_dir():
        raise TokenizerExtensionError(f"tokenizer={str(source)!r} is not a directory; expected a tokenizer folder "
                                      f"holding {_SP_MODEL} and/or {_FAST}")
    has_model, has_json = (source / _SP_MODEL).is_file(), (source / _FAST).is_file()
    if not (has_model or has_json):
        raise TokenizerExtensionError(f"{where} holds neither {_SP_MODEL} nor {_FAST}; expected an XLM-R tokenizer "
                                      "folder with at least one of them")
    proto_bytes, proto, folder = None, None, source
    if has_model:
        proto_bytes, proto = (source / _SP_MODEL).read_bytes(), sentencepiece_model_pb2.ModelProto()
        try:
            proto.ParseFromString(proto_bytes)
        except Exception as error:  # noqa: BLE001 -- protobuf's DecodeError is not a ValueError
            raise TokenizerExtensionError(f"{str(source / _SP_MODEL)!r} is not a SentencePiece model: "
                                          f"{error}") from error
    if not has_json:  # the fast tokenizer train-tokenizer would have saved beside this model
        if MASK_PIECE in {piece.piece for piece in proto.pieces}:
            raise TokenizerExtensionError(f"{where} has an extended {_SP_MODEL} (with a <mask> piece) but no "
                                          f"{_FAST}; give the folder with both")
        folder = scratch / "old"
        build_xlmr_tokenizer(proto_bytes).save_pretrained(folder)
    tokenizer_json = (folder / _FAST).read_text(encoding="utf-8")
    vocab = [piece for piece, _ in json.loads(tokenizer_json).get("model", {}).get("vocab", [])]
    _check_layout(vocab, proto, where)
    tokenizer = _load(folder, "tokenizer folder")
    if len(tokenizer) != len(vocab):
        raise TokenizerExtensionError(f"{where}: the tokenizer has {len(tokenizer)} ids but its Unigram vocabulary "
                                      f"{len(vocab)}; tokens added beyond the vocabulary would collide with the new "
                                      "pieces")
    return _Old(folder, tokenizer, tokenizer_json, proto_bytes)


def _select_pieces(model_proto: bytes, known: set[str], add_pieces: int) -> tuple[list[tuple[str, float]], int, int]:
    """(the new model's normal pieces not in ``known``, best score first, at most ``add_pieces``; normal pieces;
    of which known)."""
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_proto)
    normal = [(piece.piece, piece.score) for piece in proto.pieces if piece.type == _Piece.NORMAL]
    normal.sort(key=lambda item: -item[1])  # stable: SentencePiece's order among equal scores
    fresh = [item for item in normal if item[0] not in known]
    return fresh[:add_pieces], len(normal), len(normal) - len(fresh)


def _agreement(tokenizer: PreTrainedTokenizerBase, model_proto: bytes, texts: Sequence[str]) -> tuple[int, int]:
    """Lines of ``texts`` where the fast tokenizer's ids equal SentencePiece's under fairseq's offset."""
    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    fast = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    same = sum(ids == [3 if i == 0 else i + 1 for i in sp.encode(text)] for ids, text in zip(fast, texts))
    return same, len(texts)


def _measure(old: _Old, new: PreTrainedTokenizerBase, staging: Path, heldout: Mapping[str, Sequence[str]],
             progress: bool) -> tuple[dict, dict, tuple[int, int] | None]:
    """Statistics of the old and the new tokenizer on the held-out lines, and SentencePiece-vs-fast agreement."""
    before = tokenizer_statistics(old.tokenizer, heldout, progress=progress)
    after = tokenizer_statistics(new, heldout, progress=progress)
    texts = [text for lines in heldout.values() for text in lines]
    if old.model_proto is None or not texts:
        return before, after, None
    agreement = _agreement(new, (staging / _SP_MODEL).read_bytes(), texts)
    if agreement[0] != agreement[1]:
        logger.warning("SentencePiece and the fast tokenizer differ on %d of %d held-out lines",
                       agreement[1] - agreement[0], agreement[1])
    return before, after, agreement


def _training_config(old: _Old, add_pieces: int, vocab_size: int | None, options: Mapping[str, Any]
                     ) -> TokenizerTrainingConfig:
    if not isinstance(add_pieces, int) or isinstance(add_pieces, bool) or add_pieces < 1:
        raise TokenizerExtensionError(f"add_pieces={add_pieces!r} is not allowed: expected an integer >= 1")
    if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size < add_pieces + 3):
        raise TokenizerExtensionError(f"vocab_size={vocab_size!r} is not allowed for add_pieces={add_pieces}: the "
                                      f"new model needs room for <unk>, <s>, </s> and the pieces (>= "
                                      f"{add_pieces + 3}; default 2 x add_pieces)")
    rule = "nmt_nfkc"
    if old.model_proto is not None:
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(old.model_proto)
        rule = proto.normalizer_spec.name if proto.normalizer_spec.name in _RULES else rule
    return TokenizerTrainingConfig(vocab_size=vocab_size or max(8, 2 * add_pieces), normalization_rule_name=rule,
                                   **options)


def _train_new_model(corpus: Any, scratch: Path, config: TokenizerTrainingConfig, languages: Sequence[str] | None,
                     default_size: bool, progress: bool):
    try:
        return train_tokenizer(corpus, scratch / "new", config, languages=languages, progress=progress)
    except TokenizerTrainingError as error:
        if "vocab_size" not in str(error) or not default_size:
            raise
        raise TokenizerExtensionError(f"the SentencePiece model of the new text (vocab_size={config.vocab_size} = "
                                      f"2 x add_pieces by default) cannot be trained: {error}; set vocab_size "
                                      "(--vocab-size) or change add_pieces") from error


def _write(staging: Path, old: _Old, pieces: Sequence[tuple[str, float]]) -> None:
    staging.mkdir()
    (staging / _FAST).write_text(extend_tokenizer_json(old.tokenizer_json, pieces), encoding="utf-8")
    for name in _CONFIG_FILES:
        if (old.folder / name).is_file():
            shutil.copyfile(old.folder / name, staging / name)
    # A model repository's tokenizer may get its class from config.json, which is not copied: record the class.
    config_path = staging / _CONFIG_FILES[0]
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    if "tokenizer_class" not in config:
        config["tokenizer_class"] = type(old.tokenizer).__name__
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if old.model_proto is not None:
        (staging / _SP_MODEL).write_bytes(extend_sentencepiece_model(old.model_proto, pieces))


def _load_extended(staging: Path, old: _Old, added: int) -> PreTrainedTokenizerBase:
    """The written tokenizer, loaded as users will load it, checked to extend the old one by ``added`` ids."""
    new = _load(staging, "the extended tokenizer")
    check_extension(old.tokenizer, new)
    if len(new) != len(old.tokenizer) + added:
        raise TokenizerExtensionError(f"the extended tokenizer has {len(new)} ids; expected {len(old.tokenizer)} + "
                                      f"{added}")
    return new


def _check_output(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise TokenizerExtensionError(f"output_dir={str(output_dir)!r} exists and is not empty; choose another one "
                                      "or overwrite it (overwrite=True, --overwrite true)")


def extend_tokenizer(
    tokenizer: str | os.PathLike,
    corpus: str | os.PathLike | Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]],
    add_pieces: int,
    *,
    output_dir: str | os.PathLike,
    alpha: float = 0.3,
    languages: Sequence[str] | None = None,
    seed: int = 0,
    vocab_size: int | None = None,
    unit: str = "lines",
    max_sentences: int | None = 10_000_000,
    heldout_sentences: int = 1000,
    character_coverage: float = 0.9995,
    num_threads: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> TokenizerExtensionResult:
    """Add up to ``add_pieces`` pieces learnt on ``corpus`` to the tokenizer folder ``tokenizer``; write the result to
    ``output_dir`` (see the module docstring).

    ``corpus`` is a CC-100 directory (``<lang>.txt[.xz]``) or a mapping language -> file(s); ``languages``, ``alpha``,
    ``unit``, ``max_sentences``, ``heldout_sentences``, ``character_coverage``, ``num_threads`` and ``seed`` are
    `TokenizerTrainingConfig`'s, for the SentencePiece model trained on it, whose size is ``vocab_size`` (default
    ``2 * add_pieces``: part of what it learns is already known). A non-empty ``output_dir`` is refused unless
    ``overwrite``. Bad input raises `TokenizerExtensionError`, `TokenizerTrainingError` or `CorpusError` (all
    ``ValueError``) naming the setting or file.
    """
    output_dir = Path(output_dir)
    _check_output(output_dir, overwrite)
    options = dict(alpha=alpha, unit=unit, max_sentences=max_sentences, heldout_sentences=heldout_sentences,
                   character_coverage=character_coverage, num_threads=num_threads, seed=seed)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".extend-", dir=output_dir.parent) as scratch:
        scratch = Path(scratch)
        old = _read_old(_resolve(tokenizer), scratch)
        config = _training_config(old, add_pieces, vocab_size, options)
        start = time.perf_counter()
        trained = _train_new_model(corpus, scratch, config, languages, vocab_size is None, progress)
        seconds = {"train": time.perf_counter() - start}
        pieces, candidates, known = _select_pieces((scratch / "new" / _SP_MODEL).read_bytes(),
                                                   set(old.tokenizer.get_vocab()), add_pieces)
        if len(pieces) < add_pieces:
            logger.warning("only %d of the %d pieces of the new model are not in the old vocabulary: adding %d, not "
                           "the %d requested (a larger vocab_size gives more)", len(pieces), candidates, len(pieces),
                           add_pieces)
        staging = scratch / "out"
        _write(staging, old, pieces)
        new = _load_extended(staging, old, len(pieces))
        start = time.perf_counter()
        heldout = {lang: sample.heldout for lang, sample in trained.languages.items() if sample.heldout}
        before, after, agreement = _measure(old, new, staging, heldout, progress)
        seconds["statistics"] = time.perf_counter() - start
        settings = {"tokenizer": str(tokenizer), "add_pieces": add_pieces, "languages": list(trained.languages),
                    "vocab_size": config.vocab_size, "normalization_rule_name": config.normalization_rule_name,
                    **options}
        result = TokenizerExtensionResult(
            new, output_dir, len(old.tokenizer), add_pieces, tuple(text for text, _ in pieces), candidates, known,
            old.model_proto is not None, trained.languages, before, after, agreement, settings, seconds)
        (staging / EXTENSION_SUMMARY).write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")
        publish_staged(staging, output_dir, overwrite)
    new.name_or_path = str(output_dir)
    logger.info("extended %s: %d -> %d ids (%d pieces added)", tokenizer, result.old_size, result.new_size,
                len(pieces))
    return result
