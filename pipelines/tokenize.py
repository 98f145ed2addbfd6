"""Portuguese tokenisation with spaCy's ``spacy.blank("pt")`` tokenizer (the tokenizer alone, no pipeline).

Each token comes with a coarse kind (word, num, punct, url, email, mention, space) that normalisation uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from spacy.tokens import Token

TokenKind = Literal["word", "num", "punct", "url", "email", "mention"]


@dataclass(frozen=True, slots=True)
class RawToken:
    """One token as the tokenizer cut it, before normalisation."""

    text: str
    kind: TokenKind


def _kind(tok: Token) -> TokenKind:
    if tok.like_email:
        return "email"
    if tok.like_url:
        return "url"
    text = tok.text
    if text.startswith("@") and len(text) > 1:
        return "mention"
    if tok.like_num:
        return "num"
    if tok.is_punct or tok.is_currency:
        return "punct"
    return "word"


class Tokenizer:
    """spaCy's Portuguese tokenizer, exposed as plain token strings with kinds."""

    @cached_property
    def nlp(self):  # type: ignore[no-untyped-def]
        import spacy

        return spacy.blank("pt")

    def tokens(self, text: str) -> list[RawToken]:
        """Tokens of one text; whitespace tokens are dropped."""
        return [RawToken(t.text, _kind(t)) for t in self.nlp.tokenizer(text) if not t.is_space]

    def pipe(self, texts: Iterable[str], *, batch_size: int = 1000) -> Iterator[list[RawToken]]:
        """Tokens of many texts, in order."""
        for doc in self.nlp.tokenizer.pipe(texts, batch_size=batch_size):
            yield [RawToken(t.text, _kind(t)) for t in doc if not t.is_space]
