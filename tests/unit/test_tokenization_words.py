"""The word-start rule of `xlmr_hf.tokenization.words` on hand-made vocabularies, and the fertility unit rule."""

from __future__ import annotations

import numpy as np

from xlmr_hf.tokenization import (
    is_scriptio_continua,
    scriptio_continua_fraction,
    word_ids,
    word_start_mask,
)


class _Vocab:
    """The three members `word_start_mask` reads from a tokenizer."""

    def __init__(self, pieces: list[str], special: list[int]):
        self.pieces = pieces
        self.all_special_ids = special
        self.added_tokens_decoder = {i: pieces[i] for i in special}

    def get_vocab(self) -> dict[str, int]:
        return {piece: i for i, piece in enumerate(self.pieces)}

    def __len__(self) -> int:
        return len(self.pieces)


PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁Par", "is", "▁", "中国", "人", "▁東京", "ไทย", "\u0e35", "\u0e48",
          "<0xE4>", ".", "\u093f", "ab", "한국", "<mask>"]
EXPECTED = [True, True, True, True, True, False, True, True, True, True, True, False, False,
            False, False, False, False, False, True]


def test_word_start_mask_rule() -> None:
    mask = word_start_mask(_Vocab(PIECES, [0, 1, 2, 3, 18]))
    assert mask.dtype == np.bool_
    assert dict(zip(PIECES, mask.tolist())) == dict(zip(PIECES, EXPECTED))


def test_word_ids_count_word_starts() -> None:
    mask = np.array(EXPECTED)
    ids = [4, 5, 14, 7, 8, 9, 10, 11, 12]  # ▁Par is . 中国 人 ▁東京 ไทย ี ่
    assert word_ids(ids, mask).tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4]
    assert word_ids([5, 5], mask).tolist() == [0, 0]  # the first token opens word 0 even when it is a continuation
    assert word_ids([], mask).tolist() == []


def test_scriptio_continua_detection() -> None:
    assert all(map(is_scriptio_continua, "中ひカไກ်ក"))
    assert not any(map(is_scriptio_continua, "aЖ한ا ह1"))
    assert scriptio_continua_fraction("我爱 Pa") == 0.5
    assert scriptio_continua_fraction("   ") == 0.0
