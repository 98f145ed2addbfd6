"""The hashing rules every feature space shares, and the bags of row ids they produce.

Rules: CRC-32 of strings (stable across processes and machines), fastText-style padded character n-grams, and word
n-gram keys mixed from word hashes. :class:`Bags` is a batch of texts as flat embedding row ids, with per-id
weights and token units.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IdArray = npt.NDArray[np.int64]
KeyArray = npt.NDArray[np.uint64]
_MIX = np.uint64(0x100000001B3)  # FNV prime: mixes word hashes into n-gram keys
MAX_WORD_CHARS = 40


def stable_hash(text: str) -> int:
    """CRC-32 of the UTF-8 bytes: the same in every process (unlike ``hash``)."""
    return zlib.crc32(text.encode("utf-8"))


def is_placeholder(token: str) -> bool:
    """``<user>``, ``<url>``, ...: tokens that get no character n-grams."""
    return len(token) > 2 and token[0] == "<" and token[-1] == ">"


def char_ngrams(word: str, lo: int, hi: int) -> list[str]:
    """Character n-grams of ``<word>`` (fastText's padding), ``lo`` to ``hi`` characters long."""
    padded = f"<{word[:MAX_WORD_CHARS]}>"
    return [padded[i : i + n] for n in range(lo, hi + 1) for i in range(len(padded) - n + 1)]


def char_keys(word: str, lo: int, hi: int) -> list[int]:
    """The distinct, sorted :func:`stable_hash` keys of ``word``'s :func:`char_ngrams` (none for placeholders)."""
    if is_placeholder(word):
        return []
    padded = f"<{word[:MAX_WORD_CHARS]}>"
    crc = zlib.crc32
    if padded.isascii():  # one encoding; a byte slice is then the same n-gram as a character slice
        data = padded.encode("ascii")
        return sorted({crc(data[i : i + n]) for n in range(lo, hi + 1) for i in range(len(data) - n + 1)})
    return sorted({crc(g.encode("utf-8")) for g in char_ngrams(word, lo, hi)})


def ngram_keys(hashes: KeyArray, starts: IdArray, n: int) -> tuple[KeyArray, IdArray]:
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


def starts_of(lengths: IdArray) -> IdArray:
    starts = np.zeros(lengths.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _gather(starts: IdArray, lengths: IdArray) -> IdArray:
    """Positions of the ranges ``[start, start + length)`` laid end to end."""
    return np.repeat(starts - starts_of(lengths), lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def interleave(first: IdArray, first_counts: IdArray, second: IdArray, second_counts: IdArray) -> IdArray:
    """Per text, its run of ``first`` then its run of ``second`` (both laid out text after text)."""
    total = first_counts + second_counts
    starts = starts_of(total)
    out = np.empty(int(total.sum()), dtype=np.int64)
    out[np.repeat(starts - starts_of(first_counts), first_counts) + np.arange(first.shape[0])] = first
    if second.shape[0]:
        dest = np.repeat(starts + first_counts - starts_of(second_counts), second_counts)
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
        return starts_of(self.lengths)

    def unit_inputs(self) -> tuple[IdArray, npt.NDArray[np.float32], IdArray]:
        """What max pooling needs: each unit's start in ``ids``, the weight of each id within its unit
        (1 / the unit's length: a unit's vector is the mean of its rows) and the units per text."""
        lengths = self.unit_lengths
        offsets = starts_of(lengths)
        weights = np.repeat((1.0 / np.maximum(lengths, 1)).astype(np.float32), lengths)
        return offsets, weights, self.unit_counts

    def take(self, index: npt.NDArray[np.int64]) -> Bags:
        """The texts at ``index``, in that order."""
        positions = _gather(self.offsets[index], self.lengths[index])
        units = _gather(starts_of(self.unit_counts)[index], self.unit_counts[index])
        return Bags(
            self.ids[positions],
            self.lengths[index],
            self.weights[positions],
            self.unit_lengths[units],
            self.unit_counts[index],
        )


def concat_bags(first: Bags, second: Bags) -> Bags:
    """The texts of ``first`` followed by those of ``second``."""
    return Bags(
        np.concatenate([first.ids, second.ids]),
        np.concatenate([first.lengths, second.lengths]),
        np.concatenate([first.weights, second.weights]),
        np.concatenate([first.unit_lengths, second.unit_lengths]),
        np.concatenate([first.unit_counts, second.unit_counts]),
    )
