"""Texts -> bags of feature rows for the embedding bag: words, word n-grams and hashed character n-grams.

Every text becomes a list of row ids into one embedding table laid out as

    [0, W)            words seen in at least ``min_count`` training texts
    [W, W + C)        character n-grams of words (``<word>`` padded, fastText style), kept when frequent
    [W + C, rows)     word bigrams / trigrams, kept when frequent

N-grams are identified by a stable 32-bit hash (CRC-32; word n-grams combine their words' hashes), and only
those seen in at least ``ngram_min_count`` training texts keep a row, so an unseen word still gets the rows of
the character n-grams it shares with training words, and nothing is spent on rows training never touched.
Each id carries a weight (idf or uniform), normalised to sum to 1 per text: the pooled vector is a weighted mean.

Normalisation runs through :class:`pipelines.text.normalize.Normalizer` with the run's config. Distinct tokens and
whitespace-free chunks are remembered in a :class:`~pipelines.classifier.token_table.TokenTable`, so a warm
space spends one ``split`` per text and one dictionary lookup per chunk in Python, and does the rest in numpy.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.classifier.config import FeatureConfig
from pipelines.classifier.hashing import (
    Bags,
    IdArray,
    KeyArray,
    char_keys,
    char_ngrams,
    interleave,
    is_placeholder,
    ngram_keys,
    stable_hash,
    starts_of,
)
from pipelines.classifier.token_table import TokenTable
from pipelines.classifier.tokens import RegexTokenizer
from pipelines.text.normalize import NormalizeConfig, Normalizer
from pipelines.text.tokenize import Tokenizer

__all__ = ["Bags", "FeatureSpace", "char_ngrams", "is_placeholder", "ngram_keys", "stable_hash"]

_EMPTY_IDS: IdArray = np.zeros(0, dtype=np.int64)
TABLE_LIMIT = 500_000


class FeatureSpace:
    """The fitted rows: vocabulary, kept n-gram keys and idf. Encodes texts into :class:`Bags`.

    Safe to share between threads: learning new tokens takes a lock, and each batch reads one token table.
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
        self._table = TokenTable(TABLE_LIMIT)
        self._lock = threading.Lock()
        # what warm() put in: put in again when a full table restarts
        self._warm_words: list[str] = []

    # -- tokens ----------------------------------------------------------------------------------------------
    def token_lists(self, texts: Sequence[str]) -> list[list[str]]:
        """The normalised tokens of each text, as the model sees them."""
        return list(self.normalizer.pipe(texts))

    def tokens(self, text: str) -> list[str]:
        """The normalised tokens of one text."""
        return self.token_lists([text])[0]

    def char_keys_of(self, tokens: Sequence[str]) -> list[list[int]]:
        """The distinct character n-gram keys of each token, sorted (none for placeholders such as ``<url>``)."""
        cfg = self.config
        if not cfg.uses_chars:
            return [[] for _ in tokens]
        return [char_keys(t, cfg.char_ngram_min, cfg.char_ngram_max) for t in tokens]

    def rows_for(self, tokens: Sequence[str], keys: Sequence[Sequence[int]] | None = None) -> list[IdArray]:
        """The rows of each normalised token: its word row (if any), then its kept character n-gram rows.

        ``keys`` are the tokens' :meth:`char_keys_of`, when the caller has them already.
        """
        flat, lengths = self._rows_flat(tokens, keys)
        return np.split(flat, np.cumsum(lengths)[:-1]) if len(tokens) else []

    def _rows_flat(
        self, tokens: Sequence[str], keys: Sequence[Sequence[int]] | None = None
    ) -> tuple[IdArray, IdArray]:
        """:meth:`rows_for` laid end to end, with each token's row count (no per-token arrays)."""
        n = len(tokens)
        if keys is None:
            keys = self.char_keys_of(tokens) if self.char_keys.size else [[] for _ in tokens]
        sizes = np.fromiter(map(len, keys), dtype=np.int64, count=n)
        flat = np.fromiter(itertools.chain.from_iterable(keys), dtype=np.uint64, count=int(sizes.sum()))
        chars = np.full(flat.shape[0], -1, dtype=np.int64)
        if flat.size and self.char_keys.size:
            pos = np.searchsorted(self.char_keys, flat)
            pos[pos >= self.char_keys.size] = 0
            hit = self.char_keys[pos] == flat
            chars[hit] = pos[hit] + self.char_offset
        get = self.word_index.get
        words = np.fromiter((get(t, -1) for t in tokens), dtype=np.int64, count=n)
        # each token's word row (when it has one), then its character rows, in token order
        rows = np.concatenate((words, chars))
        owner = np.concatenate((np.arange(n, dtype=np.int64), np.repeat(np.arange(n, dtype=np.int64), sizes)))
        order = np.argsort(owner, kind="stable")
        rows, owner = rows[order], owner[order]
        kept = rows >= 0
        return rows[kept], np.bincount(owner[kept], minlength=n).astype(np.int64)

    def learn(self, tokens: Sequence[str], keys: Sequence[Sequence[int]]) -> None:
        """Remember ``tokens`` with their known character n-gram keys (saves hashing them twice when fitting)."""
        with self._lock:
            table = self._table
            fresh = [i for i, t in enumerate(tokens) if t not in table.index]
            names = [tokens[i] for i in fresh]
            table.add(
                names, *self._rows_flat(names, [keys[i] for i in fresh]), [stable_hash(t) for t in names]
            )

    def warm(self, tokens: Sequence[str] | None = None) -> int:
        """Put ``tokens`` (default: the vocabulary) into the token table now; returns how many of them were new.

        A loaded model starts with an empty table, so its first requests would pay for hashing every word's
        character n-grams; serving warms the vocabulary at load instead. Each word is also remembered as a
        whitespace-free chunk (a text's ``produto`` is the chunk ``produto``), so later texts only tokenise and
        normalise chunks that are not plain vocabulary words, and only hash words never seen in training.
        """
        words = list(dict.fromkeys(self.words if tokens is None else tokens))
        with self._lock:
            self._warm_words = list(dict.fromkeys([*self._warm_words, *words]))
            fresh = [w for w in words if w not in self._table.index]
            self._warm_into(self._table, words)
        return len(fresh)

    def _warm_into(self, table: TokenTable, words: list[str]) -> None:
        """Add ``words`` as tokens and as chunks; they stay outside the table's limit. Lock held."""
        self._add_chunks(table, set(words), [w for w in words if w not in table.raw])
        table.warmed = (table.size, len(table.raw))

    # -- the token table -------------------------------------------------------------------------------------
    def _table_for(self, *, tokens: Iterable[str] = (), raws: Iterable[str] = ()) -> TokenTable:
        """A table holding every given token and whitespace-free chunk (learning missing ones under the lock)."""
        table = self._table
        tokens, raws = set(tokens), set(raws)
        if not tokens.difference(table.index) and not raws.difference(table.raw):
            return table
        with self._lock:
            table = self._table
            if table.full:
                table = TokenTable(TABLE_LIMIT)
                if self._warm_words:  # a restarted table is as warm as the first one was
                    self._warm_into(table, self._warm_words)
                self._table = table
            self._add_chunks(table, tokens, [r for r in raws if r not in table.raw])
        return table

    def _add_chunks(self, table: TokenTable, tokens: set[str], raws: list[str]) -> None:
        """Add ``tokens`` and the chunks ``raws`` (with the tokens they normalise to) to ``table``; lock held."""
        # the table remembers chunks itself: the normalizer's own chunk cache would hold them twice
        normal = self.normalizer.normalize_chunks(raws)
        tokens.update(t for toks in normal for t in toks)
        fresh = [t for t in tokens if t not in table.index]
        if fresh:
            table.add(fresh, *self._rows_flat(fresh), [stable_hash(t) for t in fresh])
        index = table.index
        for raw, toks in zip(raws, normal, strict=True):
            table.raw[raw] = tuple(index[t] for t in toks)

    # -- bags ------------------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> Bags:
        """Bags of rows for ``texts`` (one bag per text; a text with no known feature gives an empty bag).

        Tokens never span whitespace, so each distinct whitespace-separated chunk is normalised once and
        remembered as the ids of its tokens; a text then costs a ``split`` and one lookup per chunk.
        """
        chunks = [t.split() for t in texts]
        table = self._table_for(raws=set().union(*chunks) if chunks else ())
        chunk_ids = table.raw
        return self._bags(table, [[tid for chunk in doc for tid in chunk_ids[chunk]] for doc in chunks])

    def encode_tokens(self, docs: Sequence[Sequence[str]]) -> Bags:
        """Bags of rows for already normalised token lists."""
        table = self._table_for(tokens=itertools.chain.from_iterable(docs))
        index = table.index
        return self._bags(table, [[index[t] for t in doc] for doc in docs])

    def _bags(self, table: TokenTable, docs: list[list[int]]) -> Bags:
        n = len(docs)
        n_tokens = np.fromiter((len(d) for d in docs), dtype=np.int64, count=n)
        tids = np.fromiter(itertools.chain.from_iterable(docs), dtype=np.int64, count=int(n_tokens.sum()))
        token_ids, lengths = table.rows_of(tids)
        text_of = np.repeat(np.arange(n, dtype=np.int64), n_tokens)
        ids_per_text = np.bincount(text_of, weights=lengths, minlength=n).astype(np.int64)
        used = lengths > 0
        units_per_text = np.bincount(text_of[used], minlength=n).astype(np.int64)
        gram_ids, gram_text = self._word_ngram_rows(table.hashes[tids], n_tokens)
        gram_counts = np.bincount(gram_text, minlength=n).astype(np.int64)
        ids = interleave(token_ids, ids_per_text, gram_ids, gram_counts)
        total = ids_per_text + gram_counts
        unit_lengths = interleave(
            lengths[used], units_per_text, np.ones(gram_ids.shape[0], np.int64), gram_counts
        )
        return Bags(ids, total, self.weights_for(ids, total), unit_lengths, units_per_text + gram_counts)

    def _word_ngram_rows(self, hashes: KeyArray, n_tokens: IdArray) -> tuple[IdArray, IdArray]:
        if self.config.word_ngrams < 2 or not self.word_ngram_keys.size:
            return _EMPTY_IDS, _EMPTY_IDS
        starts = starts_of(n_tokens)
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
        """Per-id weights (idf or 1), normalised to sum to 1 within each text."""
        raw = self.idf[ids] if self.config.weighting == "idf" else np.ones(ids.shape[0], dtype=np.float32)
        bag = np.repeat(np.arange(lengths.shape[0]), lengths)
        sums = np.bincount(bag, weights=raw, minlength=lengths.shape[0])
        sums[sums == 0] = 1.0
        out: npt.NDArray[np.float32] = (raw / sums[bag]).astype(np.float32)
        return out

    def describe(self) -> dict[str, Any]:
        """Row counts per section, for metadata."""
        return {
            "rows": self.rows,
            "words": len(self.words),
            "char_ngrams": int(self.char_keys.size),
            "word_ngrams": int(self.word_ngram_keys.size),
        }
