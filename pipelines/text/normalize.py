"""Normalisation that users control and that every trained model records, so queries are treated the same way.

:class:`NormalizeConfig` is saved inside each artifact; :class:`Normalizer` turns raw Portuguese text into the
token strings a model was trained on, and :meth:`Normalizer.word` maps a single query word the same way.

Speed: tokens never span whitespace, so the normalised tokens of each distinct whitespace-free chunk (``casa,``,
``pôs-se``) are computed once and kept in a dictionary; a text then costs one ``str.split`` and one lookup per
chunk. Sentence ends are kept in that cache as a ``"\n"`` marker, which no token can contain.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.text.tokenize import RawToken, Tokenizer

NUM_TOKEN = "<num>"
URL_TOKEN = "<url>"
EMAIL_TOKEN = "<email>"
USER_TOKEN = "<user>"

_DIGIT_RE = re.compile(r"\d")
# a lone surrogate: what a JSON "\ud800" escape or an undecodable byte read with surrogateescape (argv, stdin,
# file names) leaves in a Python string; it is not a Unicode character and cannot be encoded as UTF-8
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_HAS_WORD_CHAR = re.compile(r"\w")


class NormalizeConfig(BaseModel):
    """How raw text becomes tokens. Saved with every model; queries reuse it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lowercase: bool = True
    unicode_form: Literal["NFC", "NFKC"] = "NFC"
    fold_accents: bool = Field(default=False, description="'ação' -> 'acao' (also applied to queries).")
    numbers: Literal["keep", "zero", "token"] = Field(
        default="zero", description="keep digits, map every digit to 0, or replace number tokens by <num>."
    )
    urls: Literal["keep", "placeholder", "drop"] = "placeholder"
    emails: Literal["keep", "placeholder", "drop"] = "placeholder"
    mentions: Literal["keep", "placeholder", "drop"] = "placeholder"
    drop_punctuation: bool = True
    remove_stopwords: bool = False
    lemmatize: bool = Field(
        default=False, description="Lookup lemmas from spacy-lookups-data (lowercased first)."
    )
    lemma_overrides: dict[str, str] = Field(
        default_factory=dict, description="Entries that win over the lookup."
    )
    min_token_chars: int = Field(default=1, ge=1)
    split_sentences: bool = Field(
        default=True,
        description="Corpora: one output line per sentence (. ! ? … end one; 'Sr.' stays a word).",
    )


def fold_accents(text: str) -> str:
    """Strip combining marks: 'não' -> 'nao', 'ç' -> 'c'."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


# characters that draw nothing but are not spaces to str.isspace(): the Hangul fillers (letters to Unicode) and the
# blank Braille pattern, used as "invisible" text
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _chunks(text: str) -> list[str]:
    """The whitespace chunks the tokenizer reads, without byte-order marks: one inside text (files joined with
    ``cat``) is invisible, not part of a word, and the tokenizer's prefix, URL and sentence rules must not see it."""
    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
    return text.split()


def is_blank(text: str) -> bool:
    """True for a text with nothing to read: whitespace, control and invisible format characters only (zero-width
    spaces, a byte-order mark, NUL), combining marks with no letter to sit on, and characters that draw nothing
    (the Hangul fillers, the blank Braille pattern)."""
    stripped = text.strip()
    if not stripped:
        return True
    if stripped[0].isalnum() and stripped[0] not in _BLANK_LOOKING:  # the common case, decided at once
        return False
    return all(
        c.isspace() or c in _BLANK_LOOKING or unicodedata.category(c) in ("Cc", "Cf", "Mn", "Me")
        for c in stripped
    )


def unicode_problem(text: str) -> str | None:
    """Why ``text`` is not Unicode text, or None when it is: the first lone surrogate or undecodable byte."""
    found = _SURROGATE_RE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for one byte that was not UTF-8
        return f"the byte 0x{code - 0xDC00:02X} at character {found.start()} is not UTF-8"
    return f"character {found.start()} is a lone surrogate (U+{code:04X}), which is not a Unicode character"


_EOS = "\n"
_PLACEHOLDERS = {"url": URL_TOKEN, "email": EMAIL_TOKEN, "mention": USER_TOKEN}
_SENTENCE_END_CHARS = ".!?…"
#: The first batch of a pipe: later ones double up to the batch size asked for.
_FIRST_BATCH = 16
_CLOSERS = frozenset("»”\"')]}’›")
#: Distinct chunks a Normalizer remembers before its cache starts over.
MAX_CACHED_CHUNKS = 600_000


def _without_eos(toks: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t for t in toks if t != _EOS) if _EOS in toks else toks


def _ends_sentence(tok: RawToken) -> bool:
    return tok.kind == "punct" and not tok.text.strip(_SENTENCE_END_CHARS)


class Normalizer:
    """Raw text -> normalised token strings, following one :class:`NormalizeConfig`."""

    def __init__(self, config: NormalizeConfig | None = None, *, tokenizer: Tokenizer | None = None) -> None:
        self.config = config or NormalizeConfig()
        self.tokenizer = tokenizer or Tokenizer()
        self._flat: dict[str, tuple[str, ...]] = {}
        self._marked: dict[str, tuple[str, ...]] = {}
        self._transient: list[str] = []
        cfg = self.config
        self._policies = {"url": cfg.urls, "email": cfg.emails, "mention": cfg.mentions}

    @cached_property
    def _stopwords(self) -> frozenset[str]:
        from spacy.lang.pt.stop_words import STOP_WORDS

        words = {self._chars(w) for w in STOP_WORDS}
        return frozenset(words)

    @cached_property
    def _lemmas(self) -> dict[str, str]:
        from spacy_lookups_data import get_file

        with gzip.open(str(get_file("pt_lemma_lookup.json.gz")), "rt", encoding="utf-8") as fh:
            table: dict[str, str] = json.load(fh)
        lowered: dict[str, str] = {}
        for form, lemma in table.items():
            lowered.setdefault(form.lower(), lemma.lower())
        lowered.update({k.lower(): v.lower() for k, v in self.config.lemma_overrides.items()})
        return lowered

    def _chars(self, text: str) -> str:
        cfg = self.config
        text = unicodedata.normalize(cfg.unicode_form, text)
        if cfg.lowercase:
            text = text.lower()
        if cfg.fold_accents:
            text = fold_accents(text)
        return text

    def word(self, word: str) -> str:
        """Normalise one query word exactly as training text was (no tokenisation, no dropping)."""
        # stripped again: NFKC turns a few symbols into space + mark ("¨" -> " \u0308"), and folding drops the mark
        out = self._chars(word.replace("\ufeff", "").strip()).strip()
        if self.config.numbers == "zero":
            out = _DIGIT_RE.sub("0", out)
        if self.config.lemmatize:
            out = self._lemmas.get(out, out)
        return out

    def placeholder(self, word: str) -> str | None:
        """The placeholder training text put where ``word`` stood, or None.

        A word the tokenizer reads as one URL, e-mail, mention or number became ``<url>``, ``<email>``,
        ``<user>`` or ``<num>`` (with ``numbers="token"``) when the config says so; served vectors look a query
        word up as itself first and as this placeholder next, so ``1857`` finds ``<num>`` while a vocabulary
        that holds ``globo.com`` itself (imported vectors) still finds it.
        """
        text = word.replace("\ufeff", "").strip()
        if not text or any(c.isspace() for c in text):
            return None
        toks = self.tokenizer.chunk_tokens(text)
        if len(toks) != 1:
            return None
        kind = toks[0].kind
        if self._policies.get(kind) == "placeholder":
            return _PLACEHOLDERS[kind]
        if kind == "num" and self.config.numbers == "token":
            return NUM_TOKEN
        return None

    def _token(self, tok: RawToken) -> str | None:
        cfg = self.config
        kind = tok.kind
        policy = self._policies.get(kind)
        if policy is not None:
            if policy == "drop":
                return None
            return _PLACEHOLDERS[kind] if policy == "placeholder" else tok.text
        if kind == "num" and cfg.numbers == "token":
            return NUM_TOKEN
        letters = tok.text.isalpha()  # the common case: no punctuation or digit checks needed
        if cfg.drop_punctuation and not letters and (kind == "punct" or not _HAS_WORD_CHAR.search(tok.text)):
            return None
        text = self._chars(tok.text)
        if cfg.numbers == "zero" and not letters:
            text = _DIGIT_RE.sub("0", text)
        if cfg.remove_stopwords and text in self._stopwords:
            return None
        if cfg.lemmatize:
            text = self._lemmas.get(text, text)
        parts = text.split()
        if len(parts) != 1 or len(parts[0]) != len(text):  # NFKC turns a few symbols into space + mark
            text = "".join(parts)
        if len(text) < cfg.min_token_chars:
            return None
        return text

    def _normalize_chunk(self, raws: Sequence[RawToken]) -> tuple[str, ...]:
        """Normalised tokens of one chunk, with ``_EOS`` after a sentence end (and its closing quotes)."""
        if len(raws) == 1 and raws[0].kind == "word":  # the common chunk: one word, no sentence end
            tok = self._token(raws[0])
            return () if tok is None else (tok,)
        out: list[str] = []
        pending_end = False
        for raw in raws:
            if pending_end and raw.text not in _CLOSERS:
                out.append(_EOS)
                pending_end = False
            tok = self._token(raw)
            if tok is not None:
                out.append(tok)
            if _ends_sentence(raw):
                pending_end = True
        if pending_end:
            out.append(_EOS)
        return tuple(out)

    def _learn(self, chunks: Iterable[str]) -> None:
        flat, marked = self._flat, self._marked
        for chunk in self._transient:
            flat.pop(chunk, None)
            marked.pop(chunk, None)
        self._transient = []
        missing = list((chunks if isinstance(chunks, set) else set(chunks)).difference(flat))
        if not missing:
            return
        if len(flat) + len(missing) > MAX_CACHED_CHUNKS:
            # full: the frequent chunks (seen first) stay; these serve this batch and are forgotten after
            self._transient = missing
        for chunk, raws in zip(missing, self.tokenizer.tokenize_chunks(missing), strict=True):
            toks = self._normalize_chunk(raws)
            marked[chunk] = toks
            flat[chunk] = _without_eos(toks)

    def normalize_chunks(self, chunks: Sequence[str]) -> list[tuple[str, ...]]:
        """The normalised tokens of each whitespace-free chunk (no sentence marks), computed without caching.

        For callers that remember chunks themselves (a classifier's token table), so nothing is held twice.
        """
        out = []
        for raws in self.tokenizer.tokenize_chunks(list(chunks)):
            toks = self._normalize_chunk(raws)
            out.append(_without_eos(toks))
        return out

    def _assemble(self, chunks: list[str], cache: dict[str, tuple[str, ...]]) -> list[str]:
        out: list[str] = []
        try:
            for chunk in chunks:
                out += cache[chunk]
        except KeyError:  # evicted by another thread's batch: normalise this text without the cache
            marked = [
                t for raws in self.tokenizer.tokenize_chunks(chunks) for t in self._normalize_chunk(raws)
            ]
            out = marked if cache is self._marked else [t for t in marked if t != _EOS]
        return out

    def _chunk_lists(self, texts: Iterable[str], batch_size: int) -> Iterator[list[list[str]]]:
        """The texts' whitespace chunks in batches, each batch's unseen chunks tokenised in one spaCy call.

        Batches start small and double up to ``batch_size``: the first texts come out after a few are read, not
        after a whole cold batch (with every chunk still unseen) is tokenised, so progress shows from the start.
        """
        batch: list[list[str]] = []
        size = min(batch_size, _FIRST_BATCH)
        for text in texts:
            batch.append(_chunks(text))
            if len(batch) >= size:
                self._learn(set().union(*batch))
                yield batch
                batch = []
                size = min(batch_size, size * 2)
        if batch:
            self._learn(set().union(*batch))
            yield batch

    def tokens(self, text: str) -> list[str]:
        """The normalised tokens of one text."""
        chunks = _chunks(text)
        self._learn(chunks)
        return self._assemble(chunks, self._flat)

    def pipe(self, texts: Iterable[str], *, batch_size: int = 1000) -> Iterator[list[str]]:
        """Normalised tokens of many texts, streamed in order."""
        for batch in self._chunk_lists(texts, batch_size):
            yield from [self._assemble(chunks, self._flat) for chunks in batch]

    def marked_pipe(self, texts: Iterable[str], *, batch_size: int = 1000) -> Iterator[list[str]]:
        """Like :meth:`pipe`, with ``"\n"`` items where sentences end (the corpus writer's fast path)."""
        for batch in self._chunk_lists(texts, batch_size):
            yield from [self._assemble(chunks, self._marked) for chunks in batch]

    def pipe_sentences(self, texts: Iterable[str], *, batch_size: int = 1000) -> Iterator[list[list[str]]]:
        """The sentences of each text (lists of normalised tokens; sentences left empty are dropped)."""
        for toks in self.marked_pipe(texts, batch_size=batch_size):
            sentences: list[list[str]] = []
            current: list[str] = []
            for tok in toks:
                if tok == _EOS:
                    if current:
                        sentences.append(current)
                    current = []
                else:
                    current.append(tok)
            if current:
                sentences.append(current)
            yield sentences

    def sentences(self, text: str) -> list[list[str]]:
        """The sentences of one text: '. ! ? …' end a sentence; abbreviations such as 'Sr.' do not."""
        return next(self.pipe_sentences([text]))

    def describe(self) -> dict[str, Any]:
        """The config as JSON, for artifacts."""
        return self.config.model_dump(mode="json")
