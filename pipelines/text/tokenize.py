"""Portuguese tokenisation that gives the tokens of spaCy's ``spacy.blank("pt")`` tokenizer, faster.

spaCy cuts a text at whitespace and then tokenizes each whitespace-free chunk (prefixes, suffixes, infixes,
special cases such as ``Sr.``, URLs). palavra does the same split with ``str.split()`` and keeps the tokens of each
distinct chunk in a dictionary: a chunk of letters only (``casa``, ``São``) is one token and never reaches spaCy;
any other chunk (``pôs-se``, ``d'água``, ``10h30``, ``R$``, ``1.994,20``, ``casa,``, e-mails, URLs, emoji) is
tokenized by spaCy once, in a batch with the other unseen chunks, and remembered.

One spaCy quirk makes its output depend on the neighbouring chunk: its special-case matcher (emoticons such as
``:)`` and ``:))``) also tries token runs across a space, and an overlapping cross-space candidate can cancel a
match inside a chunk (spaCy cuts ``(pt:) )`` into ``( pt : ) )`` but ``(pt:)`` alone into ``( pt :)``). palavra
tokenizes every chunk as spaCy does when it stands alone. ``benchmarks/tokenize_bench.py`` measures the agreement
with spaCy run on whole documents: it is above 99.99% of the tokens of the real corpus.

Each token comes with a coarse kind (word, num, punct, url, email, mention) that normalisation uses.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from spacy.tokens import Token

log = logging.getLogger(__name__)

TokenKind = Literal["word", "num", "punct", "url", "email", "mention"]

#: Distinct chunks remembered; past this, new chunks are tokenised for the batch at hand and then forgotten, so
#: memory stays bounded in long-running servers while the frequent chunks (seen first) stay cached.
MAX_CACHED_CHUNKS = 600_000
_SPACY_BATCH = 2000
# spaCy peels prefixes and suffixes one character at a time, copying the rest each time: a chunk of n marks
# ("——————...") costs O(n^2) (20,000 of them took 49 s). In a chunk longer than _LONG_CHUNK characters, each run
# of more than _PIECE marks (punctuation, symbols) goes to spaCy in pieces of _PIECE, in linear time; words, numbers
# and URLs stay whole. In the 15M-token corpus one chunk is that long, and none holds such a run.
_LONG_CHUNK = 200
_PIECE = 32
_MARK_RUN = re.compile(rf"[^\w\s]{{{_PIECE + 1},}}")  # more than _PIECE marks in a row


def _cut_mark_runs(chunk: str) -> list[str]:
    """``chunk`` with each run of more than ``_PIECE`` marks cut into pieces of ``_PIECE``; the rest stays whole
    (a long URL or word is still one piece)."""
    pieces: list[str] = []
    at = 0
    for run in _MARK_RUN.finditer(chunk):
        if run.start() > at:
            pieces.append(chunk[at : run.start()])
        pieces += [chunk[i : min(i + _PIECE, run.end())] for i in range(run.start(), run.end(), _PIECE)]
        at = run.end()
    if at < len(chunk):
        pieces.append(chunk[at:])
    return pieces


_OPENERS = frozenset('([{«"“')
_CLOSERS = frozenset(',;:!?)]}"”»')
_DOT_AFTER = frozenset(')]}!?"”»')  # a lone "." after these is cut off, as after a lowercase letter
_LATIN_END = "\u0250"  # letters below this are Latin (Basic, Latin-1, Extended-A/B)


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


def _flag_kind(text: str, email: int, url: int, num: int, punct: int, currency: int) -> TokenKind:
    """:func:`_kind` from the lexeme flags of ``Doc.to_array`` (no Token objects)."""
    if email:
        return "email"
    if url:
        return "url"
    if text.startswith("@") and len(text) > 1:
        return "mention"
    if num:
        return "num"
    if punct or currency:
        return "punct"
    return "word"


def import_spacy_without_torch() -> None:
    """Import spaCy's Portuguese tokenizer without torch: spaCy imports thinc, which imports torch when it is
    installed (about 120 MB of private memory in a serving worker that never runs torch; docs/text.md).

    torch is hidden from that one import only; ``import torch`` works as usual afterwards (thinc alone goes on
    without it, and palavra never runs torch through thinc). Call it while no other thread of the process may
    import torch: a serving worker does so at start, before it takes requests. Nothing happens when spaCy or
    torch is imported already.
    """
    if "spacy" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # None in sys.modules: `import torch` fails
    try:
        import spacy
        import spacy.lang.pt  # noqa: F401
    finally:
        del sys.modules["torch"]


class Tokenizer:
    """spaCy's Portuguese tokenizer, exposed as plain token strings with kinds; whitespace tokens are dropped."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[RawToken, ...]] = {}
        self._transient: list[str] = []

    @cached_property
    def nlp(self):  # type: ignore[no-untyped-def]
        import spacy

        return spacy.blank("pt")

    @cached_property
    def _specials(self) -> frozenset[str]:
        return frozenset(self.nlp.tokenizer.rules)

    @cached_property
    def _longest_special(self) -> int:
        return max(len(special) for special in self._specials)

    @cached_property
    def _num_words(self) -> frozenset[str]:
        from spacy.lang.pt import lex_attrs

        return frozenset(lex_attrs._num_words) | frozenset(lex_attrs._ordinal_words)

    def spacy_tokens(self, text: str) -> list[RawToken]:
        """The reference: spaCy's tokenizer run on the whole text, whitespace tokens dropped."""
        return [RawToken(t.text, _kind(t)) for t in self.nlp.tokenizer(text) if not t.is_space]

    def _word(self, text: str) -> RawToken:
        # spaCy's Portuguese like_num, for letters and hyphens only: number and ordinal words
        return RawToken(text, "num" if text.lower() in self._num_words else "word")

    def _easy(self, chunk: str) -> tuple[RawToken, ...] | None:
        """spaCy's tokens for the common simple chunks, without asking spaCy; None for anything else.

        Simple means: letters only (``casa``), ASCII digits only, or Latin letters (hyphens allowed inside,
        ``pôs-se``) with opening marks ``( [ { « " “`` before and closing marks ``, ; : ! ? ) ] } " ” »``, ``.``
        (after a lowercase letter or a closing mark) or ``..``/``...`` after (``(casa),`` ``disse...``). Chunks
        with a special case anywhere inside (``Sr.``, emoticons such as ``):``) go to spaCy. The rules were
        checked against spaCy on every distinct chunk of the 15M-token corpus (775k of 854k are simple).
        """
        if chunk in self._specials or "º" in chunk or "ª" in chunk:
            return None
        if chunk.isalpha():
            return (self._word(chunk),)
        if chunk.isdigit():
            return (RawToken(chunk, "num"),) if chunk.isascii() else None
        if max(chunk) >= _LATIN_END:
            return None
        stem, last = chunk[:-1], chunk[-1]
        if stem.isalpha() and (last in _CLOSERS or (last == "." and stem[-1].islower())):
            # the commonest shape by far ("casa," "disse."), peeled without the general loop
            return None if stem in self._specials else (self._word(stem), RawToken(last, "punct"))
        return self._peel(chunk)

    def _peel(self, chunk: str) -> tuple[RawToken, ...] | None:
        start = 0
        while start < len(chunk) and chunk[start] in _OPENERS:
            start += 1
        end, closers = len(chunk), []  # closing marks, right to left
        while end > start:
            mark = chunk[end - 1]
            if mark == ".":
                dots = len(chunk[start:end]) - len(chunk[start:end].rstrip("."))
                if dots == 1 and not (
                    chunk[end - 2 : end - 1].islower() or chunk[end - 2 : end - 1] in _DOT_AFTER
                ):
                    break
                mark = chunk[end - dots : end]
            elif mark not in _CLOSERS:
                break
            closers.append(mark)
            end -= len(mark)
        core = chunk[start:end]
        if not core or not (core.isalpha() or all(part.isalpha() for part in core.split("-"))):
            return None
        if self._has_special(chunk, start, end):
            return None
        marks = [RawToken(c, "punct") for c in chunk[:start]]
        return (*marks, self._word(core), *(RawToken(c, "punct") for c in reversed(closers)))

    def _has_special(self, chunk: str, start: int, end: int) -> bool:
        """Whether spaCy would meet a special case while peeling: a run of marks or a partly peeled chunk."""
        specials, longest = self._specials, self._longest_special
        for run in (chunk[:start], chunk[end:]):
            for a in range(len(run)):
                if any(run[a:b] in specials for b in range(a + 2, min(len(run), a + longest) + 1)):
                    return True
        return any(
            chunk[a:b] in specials
            for a in range(max(0, end - longest), start + 1)
            for b in range(end, min(len(chunk), a + longest) + 1)
        )

    def _hard(self, chunks: list[str]) -> list[tuple[RawToken, ...]]:
        """spaCy's tokens of each chunk; in a chunk over ``_LONG_CHUNK`` characters, long runs of marks are cut."""
        if all(len(c) <= _LONG_CHUNK for c in chunks):
            return self._spacy_chunks(chunks)
        pieces: list[str] = []
        counts: list[int] = []
        for chunk in chunks:
            cut = _cut_mark_runs(chunk) if len(chunk) > _LONG_CHUNK else [chunk]
            pieces += cut
            counts.append(len(cut))
        tokens = iter(self._spacy_chunks(pieces))
        return [tuple(tok for _ in range(n) for tok in next(tokens)) for n in counts]

    def _spacy_chunks(self, chunks: list[str]) -> list[tuple[RawToken, ...]]:
        """spaCy's tokens of each chunk, one spaCy call per batch of chunks joined by single spaces."""
        from spacy.attrs import IDX, IS_CURRENCY, IS_PUNCT, LENGTH, LIKE_EMAIL, LIKE_NUM, LIKE_URL, SPACY

        attrs = [IDX, LENGTH, SPACY, LIKE_EMAIL, LIKE_URL, LIKE_NUM, IS_PUNCT, IS_CURRENCY]
        out: list[tuple[RawToken, ...]] = []
        for start in range(0, len(chunks), _SPACY_BATCH):
            batch = chunks[start : start + _SPACY_BATCH]
            # a newline token between chunks keeps spaCy's special-case matcher (":)", ":))" ...) from
            # pairing the end of one chunk with the start of an unrelated next one
            joined = " \n ".join(batch)
            groups: list[tuple[RawToken, ...]] = []
            current: list[RawToken] = []
            for idx, length, _space, *flags in self.nlp.tokenizer(joined).to_array(attrs).tolist():
                text = joined[idx : idx + length]
                if text[0] == "\n":  # the separator, as spaCy cuts it: "\\n "
                    groups.append(tuple(current))
                    current = []
                else:
                    current.append(RawToken(text, _flag_kind(text, *flags)))
            groups.append(tuple(current))
            if len(groups) != len(batch):  # never seen in practice; stay exact anyway
                log.warning("spaCy batch split into %d groups for %d chunks", len(groups), len(batch))
                groups = [tuple(self.spacy_tokens(c)) for c in batch]
            out.extend(groups)
        return out

    def tokenize_chunks(self, chunks: list[str]) -> list[tuple[RawToken, ...]]:
        """The tokens of each whitespace-free chunk, computed without touching the cache.

        For callers that keep their own cache (the Normalizer). Subclasses that tokenise differently are
        asked through their own :meth:`pipe`.
        """
        if type(self).pipe is not Tokenizer.pipe:
            return [tuple(toks) for toks in self.pipe(chunks)]
        out: list[tuple[RawToken, ...] | None] = [self._easy(c) for c in chunks]
        hard = [c for c, toks in zip(chunks, out, strict=True) if toks is None]
        if hard:
            tokens = iter(self._hard(hard))
            out = [toks if toks is not None else next(tokens) for toks in out]
        return out  # type: ignore[return-value]

    def learn(self, chunks: Iterable[str]) -> None:
        """Tokenize the chunks not yet seen (whitespace-free strings) and remember their tokens."""
        cache = self._cache
        for chunk in self._transient:
            cache.pop(chunk, None)
        self._transient = []
        missing = list((chunks if isinstance(chunks, set) else set(chunks)).difference(cache))
        if not missing:
            return
        if len(cache) + len(missing) > MAX_CACHED_CHUNKS:
            self._transient = missing
        cache.update(zip(missing, self.tokenize_chunks(missing), strict=True))

    def chunk_tokens(self, chunk: str) -> tuple[RawToken, ...]:
        """The tokens of one whitespace-free chunk."""
        toks = self._cache.get(chunk)
        if toks is None:
            toks = self.tokenize_chunks([chunk])[0]
        return toks

    def _assemble(self, chunks: list[str]) -> list[RawToken]:
        cache = self._cache
        out: list[RawToken] = []
        try:
            for chunk in chunks:
                out += cache[chunk]
        except KeyError:  # evicted by another thread's batch: compute this text without the cache
            out = [tok for toks in self.tokenize_chunks(chunks) for tok in toks]
        return out

    def tokens(self, text: str) -> list[RawToken]:
        """Tokens of one text; whitespace tokens are dropped."""
        chunks = text.split()
        self.learn(chunks)
        return self._assemble(chunks)

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

    def _flush(self, batch: list[list[str]]) -> list[list[RawToken]]:
        self.learn(set().union(*batch))
        return [self._assemble(chunks) for chunks in batch]
