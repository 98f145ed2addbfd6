"""Normalisation that users control and that every trained model records, so queries are treated the same way.

:class:`NormalizeConfig` is saved inside each artifact; :class:`Normalizer` turns raw Portuguese text into the
token strings a model was trained on, and :meth:`Normalizer.word` maps a single query word the same way.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.tokenize import RawToken, Tokenizer

NUM_TOKEN = "<num>"
URL_TOKEN = "<url>"
EMAIL_TOKEN = "<email>"
USER_TOKEN = "<user>"

_DIGIT_RE = re.compile(r"\d")
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


def fold_accents(text: str) -> str:
    """Strip combining marks: 'não' -> 'nao', 'ç' -> 'c'."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


class Normalizer:
    """Raw text -> normalised token strings, following one :class:`NormalizeConfig`."""

    def __init__(self, config: NormalizeConfig | None = None, *, tokenizer: Tokenizer | None = None) -> None:
        self.config = config or NormalizeConfig()
        self.tokenizer = tokenizer or Tokenizer()

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
        out = self._chars(word.strip())
        if self.config.numbers == "zero":
            out = _DIGIT_RE.sub("0", out)
        if self.config.lemmatize:
            out = self._lemmas.get(out, out)
        return out

    def _token(self, tok: RawToken) -> str | None:
        cfg = self.config
        if tok.kind == "url":
            return None if cfg.urls == "drop" else (URL_TOKEN if cfg.urls == "placeholder" else tok.text)
        if tok.kind == "email":
            return (
                None if cfg.emails == "drop" else (EMAIL_TOKEN if cfg.emails == "placeholder" else tok.text)
            )
        if tok.kind == "mention":
            return (
                None
                if cfg.mentions == "drop"
                else (USER_TOKEN if cfg.mentions == "placeholder" else tok.text)
            )
        if tok.kind == "num" and cfg.numbers == "token":
            return NUM_TOKEN
        if cfg.drop_punctuation and (tok.kind == "punct" or not _HAS_WORD_CHAR.search(tok.text)):
            return None
        text = self._chars(tok.text)
        if cfg.numbers == "zero":
            text = _DIGIT_RE.sub("0", text)
        if cfg.remove_stopwords and text in self._stopwords:
            return None
        if cfg.lemmatize:
            text = self._lemmas.get(text, text)
        if len(text) < cfg.min_token_chars:
            return None
        return text

    def tokens(self, text: str) -> list[str]:
        """The normalised tokens of one text."""
        out = []
        for raw in self.tokenizer.tokens(text):
            tok = self._token(raw)
            if tok is not None:
                out.append(tok)
        return out

    def pipe(self, texts: Iterable[str], *, batch_size: int = 1000) -> Iterator[list[str]]:
        """Normalised tokens of many texts, streamed in order."""
        for raw_tokens in self.tokenizer.pipe(texts, batch_size=batch_size):
            out = []
            for raw in raw_tokens:
                tok = self._token(raw)
                if tok is not None:
                    out.append(tok)
            yield out

    def describe(self) -> dict[str, Any]:
        """The config as JSON, for artifacts."""
        return self.config.model_dump(mode="json")
