"""Linear interpolation of two language models from their per-token probabilities on the same tokens.

    p(token) = λ · p_a(token) + (1 - λ) · p_b(token)

Both models must have scored the same token stream, one log-probability (natural log) per token, in order.
λ is chosen on one part of the tokens (:func:`best_weight`) and the mixture is measured on another, so the
reported perplexity is not fitted to the tokens it is measured on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInput
from models.ngram import mix_logs

LogProbs = npt.NDArray[np.float64]
#: λ from 0 to 1 in steps of 0.01: a finer step moves the perplexity by less than the rounding of the inputs
WEIGHTS = tuple(i / 100 for i in range(101))


def _pair(log_a: Sequence[float] | LogProbs, log_b: Sequence[float] | LogProbs) -> tuple[LogProbs, LogProbs]:
    a = np.asarray(log_a, dtype=np.float64)
    b = np.asarray(log_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InvalidInput(f"the two models scored different token streams ({a.shape} vs {b.shape} tokens)")
    if a.size == 0:
        raise InvalidInput("no tokens to interpolate")
    return a, b


def mixture_log_probs(
    log_a: Sequence[float] | LogProbs, log_b: Sequence[float] | LogProbs, weight: float
) -> LogProbs:
    """log(λ·p_a + (1-λ)·p_b) per token, computed in log space (a probability of 1e-300 stays finite)."""
    if not 0.0 <= weight <= 1.0:
        raise InvalidInput(f"the interpolation weight must be in [0, 1], not {weight}")
    a, b = _pair(log_a, log_b)
    return mix_logs(a, b, weight)


def perplexity_of(log_probs: Sequence[float] | LogProbs) -> float:
    """exp of the mean negative log-probability."""
    values = np.asarray(log_probs, dtype=np.float64)
    if values.size == 0:
        raise InvalidInput("no tokens to measure")
    return float(math.exp(-float(values.mean())))


def best_weight(
    log_a: Sequence[float] | LogProbs,
    log_b: Sequence[float] | LogProbs,
    *,
    weights: Sequence[float] = WEIGHTS,
) -> float:
    """The λ of ``weights`` whose mixture has the lowest perplexity on these tokens (the first, on a tie)."""
    a, b = _pair(log_a, log_b)
    scores = [float(mixture_log_probs(a, b, w).mean()) for w in weights]
    return float(weights[int(np.argmax(scores))])


@dataclass(frozen=True)
class Interpolation:
    """λ fitted on the tuning tokens, and the perplexities of both models and their mixture on the test tokens."""

    weight: float
    tune_tokens: int
    test_tokens: int
    perplexity_a: float
    perplexity_b: float
    perplexity_mixture: float


def interpolate(
    log_a: Sequence[float] | LogProbs, log_b: Sequence[float] | LogProbs, *, split: int
) -> Interpolation:
    """λ chosen on tokens ``[:split]``, every perplexity measured on tokens ``[split:]``."""
    a, b = _pair(log_a, log_b)
    if not 0 < split < a.size:
        raise InvalidInput(f"the split must leave tokens on both sides, not {split} of {a.size}")
    weight = best_weight(a[:split], b[:split])
    test_a, test_b = a[split:], b[split:]
    return Interpolation(
        weight=weight,
        tune_tokens=split,
        test_tokens=int(test_a.size),
        perplexity_a=perplexity_of(test_a),
        perplexity_b=perplexity_of(test_b),
        perplexity_mixture=perplexity_of(mixture_log_probs(test_a, test_b, weight)),
    )
