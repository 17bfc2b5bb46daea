"""Per-language tokenizer statistics: fertility and unknown-token rate (the "tokenization tax").

Fertility is tokens per whitespace-separated word, except for text written mostly (more than half of its non-space
characters) in a script without spaces between words (`words.SCRIPTIO_CONTINUA_RANGES`: Chinese, Japanese, Thai, ...),
where "words" would be whole clauses: there it is tokens per non-space character. Both figures are always reported;
``fertility``/``fertility_unit`` say which one applies. Special tokens (``<s>``, ``</s>``) are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from tqdm.auto import tqdm

from .words import scriptio_continua_fraction

__all__ = ["LanguageTokenStats", "tokenizer_statistics"]


@dataclass(frozen=True)
class LanguageTokenStats:
    """Tokenizer figures for one language's texts."""

    texts: int
    """Number of texts measured."""
    words: int
    """Whitespace-separated words."""
    characters: int
    """Non-whitespace characters."""
    tokens: int
    """Tokens, special tokens excluded."""
    unknown_tokens: int
    """Tokens equal to the unknown id."""
    fertility_unit: str
    """``"word"``, or ``"character"`` for scripts written without spaces."""

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    @property
    def tokens_per_character(self) -> float:
        return self.tokens / self.characters if self.characters else 0.0

    @property
    def fertility(self) -> float:
        """Tokens per word, or per character when ``fertility_unit == "character"``."""
        return self.tokens_per_character if self.fertility_unit == "character" else self.tokens_per_word

    @property
    def unknown_rate(self) -> float:
        return self.unknown_tokens / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "tokens_per_word": self.tokens_per_word,
                "tokens_per_character": self.tokens_per_character, "fertility": self.fertility,
                "unknown_rate": self.unknown_rate}


def tokenizer_statistics(
    tokenizer, texts: Mapping[str, Sequence[str]], batch_size: int = 1000, progress: bool = True
) -> dict[str, LanguageTokenStats]:
    """Fertility and unknown-token rate of ``tokenizer`` (any fast tokenizer) per language of ``texts``."""
    unk = tokenizer.unk_token_id
    results = {}
    for lang, lines in tqdm(texts.items(), desc="fertility", unit="lang", disable=not progress):
        lines = list(lines)
        tokens = unknown = 0
        for start in range(0, len(lines), batch_size):
            encoded = tokenizer(lines[start: start + batch_size], add_special_tokens=False)["input_ids"]
            tokens += sum(map(len, encoded))
            unknown += sum(ids.count(unk) for ids in encoded) if unk is not None else 0
        joined = "\n".join(lines)
        unit = "character" if scriptio_continua_fraction(joined) > 0.5 else "word"
        results[lang] = LanguageTokenStats(
            texts=len(lines),
            words=sum(len(line.split()) for line in lines),
            characters=sum(not c.isspace() for c in joined),
            tokens=tokens,
            unknown_tokens=unknown,
            fertility_unit=unit,
        )
    return results
