"""Texts -> bags of feature rows for the embedding bag: words, word n-grams and hashed character n-grams.

Every text becomes a list of row ids into one embedding table laid out as

    [0, W)            words seen in at least ``min_count`` training texts
    [W, W + C)        character n-grams of words (``<word>`` padded, fastText style), kept when frequent
    [W + C, rows)     word bigrams / trigrams, kept when frequent

N-grams are identified by a stable 32-bit hash (CRC-32; word n-grams combine their words' hashes), and only
those seen in at least ``ngram_min_count`` training texts keep a row, so an unseen word still gets the rows of
the character n-grams it shares with training words, and nothing is spent on rows training never touched.
Each id carries a weight (idf or uniform), normalised to sum to 1 per text: the pooled vector is a weighted mean.

Normalisation runs through :class:`pipelines.normalize.Normalizer` with the run's config; because tokenising a
token gives back that token, the normalised form and the row ids of each distinct token string are cached.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.classifier.config import FeatureConfig
from pipelines.classifier.tokens import RegexTokenizer
from pipelines.normalize import NormalizeConfig, Normalizer
from pipelines.tokenize import Tokenizer

IdArray = npt.NDArray[np.int64]
KeyArray = npt.NDArray[np.uint64]
_MIX = np.uint64(0x100000001B3)  # FNV prime: mixes word hashes into n-gram keys
_EMPTY_IDS: IdArray = np.zeros(0, dtype=np.int64)
_CACHE_LIMIT = 500_000
_MAX_WORD_CHARS = 40


def _starts(lengths: IdArray) -> IdArray:
    starts = np.zeros(lengths.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _gather(starts: IdArray, lengths: IdArray) -> IdArray:
    """Positions of the ranges ``[start, start + length)`` laid end to end."""
    return np.repeat(starts - _starts(lengths), lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _interleave(first: IdArray, first_counts: IdArray, second: IdArray, second_counts: IdArray) -> IdArray:
    """Per text, its run of ``first`` then its run of ``second`` (both laid out text after text)."""
    total = first_counts + second_counts
    starts = _starts(total)
    out = np.empty(int(total.sum()), dtype=np.int64)
    out[np.repeat(starts - _starts(first_counts), first_counts) + np.arange(first.shape[0])] = first
    if second.shape[0]:
        dest = np.repeat(starts + first_counts - _starts(second_counts), second_counts)
        out[dest + np.arange(second.shape[0])] = second
    return out


@dataclass(frozen=True)
class Bags:
    """A batch of texts as row ids, for an embedding bag.

    Each text's ids are a run of units: one per token (its word row and character n-gram rows) and one per
    word n-gram. Mean pooling uses ``weights`` (summing to 1 per text); max pooling averages each unit (a
    fastText-style token vector) and takes the maximum over the text's units.

    Attributes:
        ids: every row id, text after text.
        lengths: ids per text.
        weights: one per id; each text's weights sum to 1 (an empty text has none).
        unit_lengths: ids per unit, units text after text (a unit never has 0 ids).
        unit_counts: units per text.
    """

    ids: IdArray
    lengths: IdArray
    weights: npt.NDArray[np.float32]
    unit_lengths: IdArray
    unit_counts: IdArray

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def offsets(self) -> IdArray:
        return _starts(self.lengths)

    def take(self, index: npt.NDArray[np.int64]) -> Bags:
        """The texts at ``index``, in that order."""
        positions = _gather(self.offsets[index], self.lengths[index])
        units = _gather(_starts(self.unit_counts)[index], self.unit_counts[index])
        return Bags(
            self.ids[positions],
            self.lengths[index],
            self.weights[positions],
            self.unit_lengths[units],
            self.unit_counts[index],
        )


def stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def is_placeholder(token: str) -> bool:
    return len(token) > 2 and token[0] == "<" and token[-1] == ">"


def char_ngrams(word: str, lo: int, hi: int) -> list[str]:
    """Character n-grams of ``<word>`` (fastText's padding), ``lo`` to ``hi`` characters long."""
    padded = f"<{word[:_MAX_WORD_CHARS]}>"
    return [padded[i : i + n] for n in range(lo, hi + 1) for i in range(len(padded) - n + 1)]


def ngram_keys(hashes: npt.NDArray[np.uint64], starts: IdArray, n: int) -> tuple[KeyArray, IdArray]:
    """Keys of the word n-grams inside each text (never across texts) and the text each belongs to.

    ``hashes`` are the token hashes of a batch laid end to end; ``starts`` the index of each text's first token.
    """
    total = hashes.shape[0]
    if total < n:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    text_of = np.repeat(np.arange(starts.shape[0]), np.diff(np.append(starts, total)))
    keys = hashes[: total - n + 1].copy()
    for k in range(1, n):
        keys = (keys * _MIX) ^ hashes[k : total - n + 1 + k]
    keys ^= np.uint64(n)  # bigram and trigram keys never coincide
    valid = text_of[: total - n + 1] == text_of[n - 1 :]
    return keys[valid], text_of[: total - n + 1][valid]


class FeatureSpace:
    """The fitted rows: vocabulary, kept n-gram keys and idf. Encodes texts into :class:`Bags`.

    Safe to share between threads: the caches only gain entries (up to a bound) and entries never change, so a
    lost race only computes an entry twice.
    """

    def __init__(
        self,
        config: FeatureConfig,
        normalize: NormalizeConfig,
        *,
        words: Sequence[str],
        char_keys: KeyArray,
        word_ngram_keys: KeyArray,
        idf: npt.NDArray[np.float32],
    ) -> None:
        self.config = config
        self.normalize_config = normalize
        tokenizer: Tokenizer = RegexTokenizer() if config.tokenizer == "regex" else Tokenizer()
        self.normalizer = Normalizer(normalize, tokenizer=tokenizer)
        self.words = list(words)
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.char_keys = np.asarray(char_keys, dtype=np.uint64)
        self.word_ngram_keys = np.asarray(word_ngram_keys, dtype=np.uint64)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.char_offset = len(self.words)
        self.ngram_offset = self.char_offset + len(self.char_keys)
        self.rows = self.ngram_offset + len(self.word_ngram_keys)
        if self.idf.shape[0] != self.rows:
            raise ValueError(f"idf has {self.idf.shape[0]} entries for {self.rows} rows")
        self._raw_cache: dict[str, tuple[str, ...]] = {}
        self._token_cache: dict[str, tuple[IdArray, int]] = {}

    # -- tokens ----------------------------------------------------------------------------------------------
    def token_lists(self, texts: Sequence[str]) -> list[list[str]]:
        """The normalised tokens of each text, as the model sees them.

        With the regex tokenizer, each distinct raw token is normalised once (all of a batch's new ones in one
        call to the Normalizer) and remembered.
        """
        tokenizer = self.normalizer.tokenizer
        if not isinstance(tokenizer, RegexTokenizer):
            return list(self.normalizer.pipe(texts))
        raws = [tokenizer.strings(t) for t in texts]
        cache = self._raw_cache
        missing = [r for r in set().union(*raws) if r not in cache] if raws else []
        if not missing:
            return [[tok for raw in doc for tok in cache[raw]] for doc in raws]
        fresh = dict(zip(missing, map(tuple, self.normalizer.pipe(missing)), strict=True))
        if len(cache) + len(fresh) <= _CACHE_LIMIT:
            cache.update(fresh)
            return [[tok for raw in doc for tok in cache[raw]] for doc in raws]
        return [[tok for raw in doc for tok in (cache.get(raw) or fresh[raw])] for doc in raws]

    def tokens(self, text: str) -> list[str]:
        """The normalised tokens of one text."""
        return self.token_lists([text])[0]

    def rows_for(self, tokens: Sequence[str]) -> list[IdArray]:
        """The rows of each normalised token: its word row (if any), then its kept character n-gram rows."""
        cfg = self.config
        keys_per_token: list[list[int]] = [[] for _ in tokens]
        if cfg.uses_chars and self.char_keys.size:
            lo, hi = cfg.char_ngram_min, cfg.char_ngram_max
            keys_per_token = [
                [] if is_placeholder(t) else sorted({stable_hash(g) for g in char_ngrams(t, lo, hi)})
                for t in tokens
            ]
        sizes = np.fromiter((len(k) for k in keys_per_token), dtype=np.int64, count=len(tokens))
        flat = np.fromiter(
            (h for keys in keys_per_token for h in keys), dtype=np.uint64, count=int(sizes.sum())
        )
        rows = np.full(flat.shape[0], -1, dtype=np.int64)
        if flat.size:
            pos = np.searchsorted(self.char_keys, flat)
            pos[pos >= self.char_keys.size] = 0
            hit = self.char_keys[pos] == flat
            rows[hit] = pos[hit] + self.char_offset
        out = []
        for tok, part in zip(tokens, np.split(rows, np.cumsum(sizes)[:-1]), strict=True):
            chars = part[part >= 0]
            word = self.word_index.get(tok)
            out.append(np.concatenate(([word], chars)).astype(np.int64) if word is not None else chars)
        return out

    def _token_table(self, docs: Sequence[Sequence[str]]) -> dict[str, tuple[IdArray, int]]:
        """The token cache, holding every token of ``docs`` (or a copy-free fallback when the cache is full)."""
        cache = self._token_cache
        missing = list({t for doc in docs for t in doc}.difference(cache))
        if not missing:
            return cache
        fresh = {t: (rows, stable_hash(t)) for t, rows in zip(missing, self.rows_for(missing), strict=True)}
        if len(cache) + len(fresh) <= _CACHE_LIMIT:
            cache.update(fresh)
            return cache
        return {t: cache.get(t) or fresh[t] for doc in docs for t in doc}

    # -- bags ------------------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> Bags:
        """Bags of rows for ``texts`` (one bag per text; a text with no known feature gives an empty bag)."""
        return self.encode_tokens(self.token_lists(texts))

    def encode_tokens(self, docs: Sequence[Sequence[str]]) -> Bags:
        """Bags of rows for already normalised token lists."""
        parts: list[IdArray] = []
        unit_sizes: list[int] = []
        token_ids_per_text = np.zeros(len(docs), dtype=np.int64)
        units_per_text = np.zeros(len(docs), dtype=np.int64)
        n_tokens = np.zeros(len(docs), dtype=np.int64)
        hashes: list[int] = []
        table = self._token_table(docs)
        for i, doc in enumerate(docs):
            count = units = 0
            for tok in doc:
                rows, h = table[tok]
                hashes.append(h)
                size = rows.shape[0]
                if size:
                    parts.append(rows)
                    unit_sizes.append(size)
                    count += size
                    units += 1
            token_ids_per_text[i] = count
            units_per_text[i] = units
            n_tokens[i] = len(doc)
        token_ids = np.concatenate(parts) if parts else _EMPTY_IDS
        gram_ids, gram_text = self._word_ngram_rows(np.asarray(hashes, dtype=np.uint64), n_tokens)
        gram_counts = np.bincount(gram_text, minlength=len(docs)).astype(np.int64)
        ids = _interleave(token_ids, token_ids_per_text, gram_ids, gram_counts)
        lengths = token_ids_per_text + gram_counts
        unit_lengths = _interleave(
            np.asarray(unit_sizes, dtype=np.int64),
            units_per_text,
            np.ones(gram_ids.shape[0], dtype=np.int64),
            gram_counts,
        )
        return Bags(ids, lengths, self.weights_for(ids, lengths), unit_lengths, units_per_text + gram_counts)

    def _word_ngram_rows(self, hashes: KeyArray, n_tokens: IdArray) -> tuple[IdArray, IdArray]:
        if self.config.word_ngrams < 2 or not self.word_ngram_keys.size:
            return _EMPTY_IDS, _EMPTY_IDS
        starts = np.zeros(n_tokens.shape[0], dtype=np.int64)
        np.cumsum(n_tokens[:-1], out=starts[1:])
        all_ids, all_text = [], []
        for n in range(2, self.config.word_ngrams + 1):
            keys, text_of = ngram_keys(hashes, starts, n)
            pos = np.searchsorted(self.word_ngram_keys, keys)
            pos[pos >= self.word_ngram_keys.size] = 0
            hit = self.word_ngram_keys[pos] == keys
            all_ids.append(pos[hit] + self.ngram_offset)
            all_text.append(text_of[hit])
        ids = np.concatenate(all_ids)
        text = np.concatenate(all_text)
        order = np.argsort(text, kind="stable")
        return ids[order].astype(np.int64), text[order]

    def weights_for(self, ids: IdArray, lengths: IdArray) -> npt.NDArray[np.float32]:
        raw = self.idf[ids] if self.config.weighting == "idf" else np.ones(ids.shape[0], dtype=np.float32)
        bag = np.repeat(np.arange(lengths.shape[0]), lengths)
        sums = np.bincount(bag, weights=raw, minlength=lengths.shape[0])
        sums[sums == 0] = 1.0
        out: npt.NDArray[np.float32] = (raw / sums[bag]).astype(np.float32)
        return out

    # -- persistence -----------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "words": len(self.words),
            "char_ngrams": int(self.char_keys.size),
            "word_ngrams": int(self.word_ngram_keys.size),
        }
