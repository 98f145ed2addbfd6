"""Portuguese tokenisation that gives exactly the tokens of spaCy's ``spacy.blank("pt")`` tokenizer, faster.

spaCy cuts a text at whitespace and then tokenizes each whitespace-free chunk on its own (prefixes, suffixes,
infixes, special cases such as ``Sr.``, URLs). palavra does the same split with ``str.split()`` and keeps the
tokens of each distinct chunk in a dictionary: a chunk of letters only (``casa``, ``São``) is one token and never
reaches spaCy; any other chunk (``pôs-se``, ``d'água``, ``10h30``, ``R$``, ``1.994,20``, ``casa,``, e-mails, URLs,
emoji) is tokenized by spaCy once, in a batch with the other unseen chunks, and remembered. Chunks are independent
in spaCy (no Portuguese special case spans whitespace), so the result is token-for-token spaCy's;
``benchmarks/tokenize_bench.py`` measures the agreement on the real corpus.

Each token comes with a coarse kind (word, num, punct, url, email, mention) that normalisation uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from spacy.tokens import Doc, Token

TokenKind = Literal["word", "num", "punct", "url", "email", "mention"]

#: Distinct chunks remembered before the cache starts over (bounds memory in long-running servers).
MAX_CACHED_CHUNKS = 500_000


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


def _split_doc(doc: Doc, n_chunks: int) -> list[tuple[RawToken, ...]] | None:
    """The tokens of a doc made of ``n_chunks`` chunks joined by single spaces, grouped per chunk."""
    groups: list[tuple[RawToken, ...]] = []
    current: list[RawToken] = []
    for tok in doc:
        current.append(RawToken(tok.text, _kind(tok)))
        if tok.whitespace_:
            groups.append(tuple(current))
            current = []
    if current:
        groups.append(tuple(current))
    return groups if len(groups) == n_chunks else None


class Tokenizer:
    """spaCy's Portuguese tokenizer, exposed as plain token strings with kinds; whitespace tokens are dropped."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[RawToken, ...]] = {}

    @cached_property
    def nlp(self):  # type: ignore[no-untyped-def]
        import spacy

        return spacy.blank("pt")

    @cached_property
    def _specials(self) -> frozenset[str]:
        return frozenset(self.nlp.tokenizer.rules)

    @cached_property
    def _like_num(self) -> Any:
        from spacy.lang.pt.lex_attrs import like_num

        return like_num

    def spacy_tokens(self, text: str) -> list[RawToken]:
        """The reference: spaCy's tokenizer run on the whole text, whitespace tokens dropped."""
        return [RawToken(t.text, _kind(t)) for t in self.nlp.tokenizer(text) if not t.is_space]

    def _easy(self, chunk: str) -> tuple[RawToken, ...] | None:
        """The tokens of a letters-only chunk without asking spaCy, or None when the chunk is not that easy."""
        if chunk.isalpha() and chunk not in self._specials:
            return (RawToken(chunk, "num" if self._like_num(chunk) else "word"),)
        return None

    def learn(self, chunks: Iterable[str]) -> None:
        """Tokenize the chunks not yet seen (whitespace-free strings) and remember their tokens."""
        if len(self._cache) > MAX_CACHED_CHUNKS:
            self._cache = {}
        cache = self._cache
        hard: list[str] = []
        for chunk in chunks:
            if chunk in cache:
                continue
            easy = self._easy(chunk)
            if easy is None:
                hard.append(chunk)
                cache[chunk] = ()  # placeholder so a chunk repeated in this batch is queued once
            else:
                cache[chunk] = easy
        for start in range(0, len(hard), 2000):
            batch = hard[start : start + 2000]
            groups = _split_doc(self.nlp.tokenizer(" ".join(batch)), len(batch))
            if groups is None:  # never seen in practice; stay exact anyway
                groups = [tuple(self.spacy_tokens(c)) for c in batch]
            cache.update(zip(batch, groups, strict=True))

    def chunk_tokens(self, chunk: str) -> tuple[RawToken, ...]:
        """The tokens of one whitespace-free chunk."""
        toks = self._cache.get(chunk)
        if toks is None:
            self.learn((chunk,))
            toks = self._cache[chunk]
        return toks

    def tokens(self, text: str) -> list[RawToken]:
        """Tokens of one text; whitespace tokens are dropped."""
        chunks = text.split()
        self.learn(chunks)
        cache = self._cache
        out: list[RawToken] = []
        for chunk in chunks:
            out.extend(cache[chunk])
        return out

    def pipe(self, texts: Iterable[str], *, batch_size: int = 1000) -> Iterator[list[RawToken]]:
        """Tokens of many texts, in order."""
        batch: list[list[str]] = []
        for text in texts:
            batch.append(text.split())
            if len(batch) >= batch_size:
                yield from self._flush(batch)
                batch = []
        if batch:
            yield from self._flush(batch)

    def _flush(self, batch: list[list[str]]) -> Iterator[list[RawToken]]:
        self.learn(chunk for chunks in batch for chunk in chunks)
        cache = self._cache
        for chunks in batch:
            out: list[RawToken] = []
            for chunk in chunks:
                out.extend(cache[chunk])
            yield out
