"""An interpolated modified Kneser-Ney n-gram model over token ids: the language model's second component.

Bengio et al. (2003) report their network's best perplexities mixed with an n-gram model: the network
generalises to contexts it never saw, the n-gram remembers the exact phrases it did. palavra's ``lm`` artifact
holds both and mixes their probabilities (models/lm.py); this module is the n-gram's tables and arithmetic.

For an order-``m`` history ``h`` (the last ``m - 1`` tokens) and a next token ``w`` (Chen & Goodman, 1998):

    p_m(w | h) = a_m(h w) + gamma_m(h) · p_{m-1}(w | h without its oldest token)
    p_0(w)     = 1 / vocabulary size

``a`` is the discounted count of ``h w`` over the history's total and ``gamma`` the mass the discounts freed;
counts are raw at the highest order and continuation counts (distinct tokens seen before) below it. A history
never seen gets ``gamma = 1``: the next order down answers. Every distribution sums to 1 and no token gets 0.

The tables (``to_arrays``): for each order ``m >= 2``, its n-grams sorted by ``key = prefix id · V + w`` (the
prefix is an ``m - 1``-gram, its id its row in order ``m - 1``'s table; an order-1 id is the token id), ``a`` per
n-gram, and ``gamma`` per row of the order below (histories). A history's n-grams are one contiguous run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.errors import IntegrityError, InvalidInput

Ids = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]
#: the highest order a model may have (memory and artifact size grow with every order)
MAX_ORDER = 8


def mix_logs(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], weight: float
) -> npt.NDArray[np.float64]:
    """log(λ·p_a + (1 - λ)·p_b) from natural log-probabilities, in log space (1e-300 stays finite); λ in [0, 1]."""
    if weight >= 1.0:
        return a
    if weight <= 0.0:
        return b
    out: npt.NDArray[np.float64] = np.logaddexp(a + math.log(weight), b + math.log1p(-weight))
    return out


def _find(keys: Ids, queries: Ids) -> Ids:
    """The row of each query in sorted ``keys``, -1 where it is absent."""
    pos = np.searchsorted(keys, queries)
    inside = pos < len(keys)
    found = np.zeros(len(queries), dtype=bool)
    found[inside] = keys[pos[inside]] == queries[inside]
    return np.where(found, pos, -1).astype(np.int64)


def _probabilities(values: Floats, *, positive: bool = False) -> bool:
    """Whether every value is in [0, 1] (in (0, 1] with ``positive``); NaN is not."""
    low = values > 0 if positive else values >= 0
    return bool(np.all(low & (values <= 1)))


@dataclass(frozen=True)
class NGramModel:
    """The tables of an order-``order`` model over ``vocab_size`` token ids (see the module's docstring)."""

    order: int
    vocab_size: int
    unigram: Floats  # p_1(w) for every token id
    keys: tuple[Ids, ...]  # keys[m - 2]: order m's sorted keys, m = 2..order
    discounted: tuple[Floats, ...]  # a per key
    gamma: tuple[Floats, ...]  # gamma[m - 2]: per row of order m - 1's table (order 1: per token id)

    def __post_init__(self) -> None:
        if not 1 <= self.order <= MAX_ORDER:
            raise InvalidInput(f"an n-gram order must be from 1 to {MAX_ORDER}, not {self.order}")
        levels = self.order - 1
        if not (len(self.keys) == len(self.discounted) == len(self.gamma) == levels):
            raise IntegrityError(f"an order-{self.order} n-gram model needs {levels} tables of each kind")
        tables: list[npt.NDArray[np.generic]] = [self.unigram, *self.keys, *self.discounted, *self.gamma]
        if any(t.ndim != 1 for t in tables):
            raise IntegrityError("the n-gram tables must be one-dimensional")
        if len(self.unigram) != self.vocab_size:
            raise IntegrityError("the n-gram unigram table does not match the vocabulary")
        # the lookups trust what follows: a table that breaks it would answer wrong numbers or NaN, not fail
        if not _probabilities(self.unigram, positive=True):
            raise IntegrityError("the n-gram unigram table holds values that are not probabilities")
        rows_below = self.vocab_size
        for keys, a, gamma in zip(self.keys, self.discounted, self.gamma, strict=True):
            if len(keys) != len(a) or len(gamma) != rows_below:
                raise IntegrityError("the n-gram tables do not match each other")
            if len(keys) and (
                keys[0] < 0 or keys[-1] >= rows_below * self.vocab_size or not np.all(keys[1:] > keys[:-1])
            ):
                raise IntegrityError("the n-gram keys are not sorted or point past their histories")
            if not (_probabilities(a) and _probabilities(gamma)):
                raise IntegrityError("the n-gram tables hold values that are not probabilities")
            rows_below = len(keys)

    @property
    def entries(self) -> int:
        """How many n-grams the tables hold (every order, the vocabulary included)."""
        return self.vocab_size + sum(len(k) for k in self.keys)

    # -- histories ------------------------------------------------------------------------------------------
    def _history_rows(self, contexts: Ids, length: int) -> Ids:
        """The table row of each context's last ``length`` tokens (an order-``length`` n-gram), -1 if unseen."""
        rows = contexts[:, -length].astype(np.int64, copy=True)
        for step in range(2, length + 1):
            seen = rows >= 0
            query = rows[seen] * self.vocab_size + contexts[seen, -length + step - 1]
            rows[seen] = _find(self.keys[step - 2], query)
        return rows

    def log_probs(self, contexts: Ids, targets: Ids) -> npt.NDArray[np.float64]:
        """Natural log of p(target | context) for each row: ``contexts`` is n x (at least ``order - 1``) token ids,
        oldest first (the network's layout), ``targets`` n token ids."""
        contexts = np.asarray(contexts, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        if contexts.ndim != 2 or len(contexts) != len(targets) or contexts.shape[1] < self.order - 1:
            raise InvalidInput(
                f"contexts must be {len(targets)} rows of at least {self.order - 1} ids, not {contexts.shape}"
            )
        p = self.unigram[targets].astype(np.float64)
        for m in range(2, self.order + 1):
            rows = self._history_rows(contexts, m - 1)
            seen = np.flatnonzero(rows >= 0)
            if not seen.size:
                break  # no longer history was seen either
            hit = _find(self.keys[m - 2], rows[seen] * self.vocab_size + targets[seen])
            a = np.where(hit >= 0, self.discounted[m - 2][np.maximum(hit, 0)], 0.0)
            p[seen] = a + self.gamma[m - 2][rows[seen]] * p[seen]
        out: npt.NDArray[np.float64] = np.log(p)
        return out

    def distribution(self, context: Sequence[int]) -> npt.NDArray[np.float64]:
        """p(w | context) for every token id ``w``: one context's whole distribution (sums to 1)."""
        scale, parts = self.parts(context)
        p: npt.NDArray[np.float64] = np.multiply(self.unigram, scale, dtype=np.float64)
        for ids, a, factor in parts:
            p[ids] += np.multiply(a, factor, dtype=np.float64)
        return p

    def _history_row(self, context: Ids, length: int) -> int:
        """:meth:`_history_rows` for one context, with scalar lookups (a request's path): -1 if unseen."""
        row = int(context[-length])
        for step in range(2, length + 1):
            keys = self.keys[step - 2]
            query = row * self.vocab_size + int(context[-length + step - 1])
            pos = int(keys.searchsorted(query))
            if pos == len(keys) or int(keys[pos]) != query:
                return -1
            row = pos
        return row

    def parts(self, context: Sequence[int]) -> tuple[float, list[tuple[Ids, Floats, float]]]:
        """One context's distribution without building it: ``p(w) = scale · unigram[w]``, plus, for each found
        history, ``factor · a[i]`` for ``w = ids[i]`` (``ids`` sorted and unique within a part; a token seen
        after several histories is in several parts; ``a`` is a view of the tables).

        The recursion ``p_m = a_m + gamma_m · p_{m-1}`` unrolled: the unigram is scaled by every found history's
        gamma, and each order's ``a`` by the gammas of the orders above it.
        """
        ctx = np.asarray(context, dtype=np.int64).reshape(-1)
        if len(ctx) < self.order - 1:
            raise InvalidInput(f"a context of at least {self.order - 1} ids is needed, not {len(ctx)}")
        found: list[tuple[int, int]] = []
        for m in range(2, self.order + 1):
            row = self._history_row(ctx, m - 1)
            if row < 0:
                break  # no longer history was seen either
            found.append((m, row))
        scale = 1.0
        parts: list[tuple[Ids, Floats, float]] = []
        for m, row in reversed(found):
            keys = self.keys[m - 2]
            first = row * self.vocab_size  # the row's keys are first + token id
            lo = int(keys.searchsorted(first))
            hi = int(keys.searchsorted(first + self.vocab_size))
            if hi > lo:
                parts.append((keys[lo:hi] - first, self.discounted[m - 2][lo:hi], scale))
            scale *= float(self.gamma[m - 2][row])
        return scale, parts

    # -- storage ----------------------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        out: dict[str, npt.NDArray[np.generic]] = {"unigram": self.unigram}
        for m, (keys, a, gamma) in enumerate(
            zip(self.keys, self.discounted, self.gamma, strict=True), start=2
        ):
            out[f"keys.{m}"], out[f"discounted.{m}"], out[f"gamma.{m}"] = keys, a, gamma
        return out

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, npt.NDArray[np.generic]], *, order: int, vocab_size: int
    ) -> NGramModel:
        """The model from :meth:`to_arrays`'s tables. Raises IntegrityError where one is missing or mis-shaped."""
        try:
            levels = range(2, order + 1)
            return cls(
                order=order,
                vocab_size=vocab_size,
                unigram=np.asarray(arrays["unigram"], dtype=np.float32),
                keys=tuple(np.asarray(arrays[f"keys.{m}"], dtype=np.int64) for m in levels),
                discounted=tuple(np.asarray(arrays[f"discounted.{m}"], dtype=np.float32) for m in levels),
                gamma=tuple(np.asarray(arrays[f"gamma.{m}"], dtype=np.float32) for m in levels),
            )
        except KeyError as exc:
            raise IntegrityError(f"the n-gram tables lack {exc.args[0]}") from exc
