"""Which token ids begin a word: the input of whole-word masking.

fairseq's rule for SentencePiece (``--mask-whole-words``): a word begins at a piece starting with ``▁``. In scripts
written without spaces between words that makes a whole sentence (or paragraph) one "word", so masking a Chinese, Japanese
or Thai word would mask a whole line. The rule here is fairseq's plus one clause:

A token id begins a word when

1. it is a special or added token (``<s>``, ``<pad>``, ``</s>``, ``<unk>``, ``<mask>``, user symbols), or
2. its piece starts with ``▁``, or
3. its piece starts with a character of a *scriptio continua* script (`SCRIPTIO_CONTINUA_RANGES`: Han, Hiragana,
   Katakana, Thai, Lao, Khmer, Myanmar, Tibetan) that is not a combining mark: there every SentencePiece piece is its own
   word. Unigram pieces in these scripts are short (mostly 1–3 characters, often a morpheme or word), so a "word" is a
   piece, never a sentence.

Everything else continues the previous word: pieces without ``▁`` in spaced scripts (``▁Par`` ``is``), pieces starting
with a combining mark (Thai vowel and tone marks, Devanagari matras), and byte-fallback pieces ``<0xNN>`` (the bytes of
one rare character follow each other and stay with the word they appear in).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = [
    "SCRIPTIO_CONTINUA_RANGES",
    "is_scriptio_continua",
    "scriptio_continua_fraction",
    "word_ids",
    "word_start_mask",
]

SCRIPTIO_CONTINUA_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"),
    (0x0F00, 0x0FFF, "Tibetan"),
    (0x1000, 0x109F, "Myanmar"),
    (0x1780, 0x17FF, "Khmer"),
    (0x19E0, 0x19FF, "Khmer"),
    (0x2E80, 0x2FDF, "Han"),
    (0x3005, 0x3007, "Han"),
    (0x3021, 0x3029, "Han"),
    (0x3038, 0x303B, "Han"),
    (0x3040, 0x309F, "Hiragana"),
    (0x30A0, 0x30FF, "Katakana"),
    (0x31F0, 0x31FF, "Katakana"),
    (0x3400, 0x4DBF, "Han"),
    (0x4E00, 0x9FFF, "Han"),
    (0xA9E0, 0xA9FF, "Myanmar"),
    (0xAA60, 0xAA7F, "Myanmar"),
    (0xF900, 0xFAFF, "Han"),
    (0xFF66, 0xFF9F, "Katakana"),
    (0x20000, 0x3FFFF, "Han"),
)
"""(first, last, script) code point ranges of scripts written without spaces between words, sorted."""

_STARTS = [first for first, _, _ in SCRIPTIO_CONTINUA_RANGES]
_BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


def is_scriptio_continua(char: str) -> bool:
    """Whether ``char`` belongs to a script written without spaces between words."""
    code = ord(char)
    index = bisect.bisect_right(_STARTS, code) - 1
    return index >= 0 and code <= SCRIPTIO_CONTINUA_RANGES[index][1]


def scriptio_continua_fraction(text: str) -> float:
    """Share of the non-whitespace characters of ``text`` in scripts written without spaces (0.0 for empty text)."""
    chars = [c for c in text if not c.isspace()]
    return sum(map(is_scriptio_continua, chars)) / len(chars) if chars else 0.0


def _piece_starts_word(piece: str) -> bool:
    if piece.startswith("▁"):
        return True
    if not piece or _BYTE_PIECE.match(piece):
        return False
    first = piece[0]
    return is_scriptio_continua(first) and not unicodedata.category(first).startswith("M")


def word_start_mask(tokenizer) -> np.ndarray:
    """Boolean array over the ids of ``tokenizer`` (``len(tokenizer)`` entries): True where the id begins a word.

    Works for any fast SentencePiece tokenizer (ours, XLM-R's, mT5's ...); see the module docstring for the rule.
    """
    size = len(tokenizer)
    mask = np.zeros(size, dtype=bool)
    for piece, index in tokenizer.get_vocab().items():
        if index < size:
            mask[index] = _piece_starts_word(piece)
    for index in set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder):
        if index < size:
            mask[index] = True
    return mask


def word_ids(input_ids: Sequence[int] | np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Word index of every token: a running count of word starts (the first token is word 0 whatever it is)."""
    ids = np.asarray(input_ids, dtype=np.int64)
    begins = starts[ids].astype(np.int64)
    if begins.size:
        begins[0] = 1
    return np.cumsum(begins) - 1
