"""Decision rules tuned on validation: per-class biases added to log-probabilities before the argmax.

For two classes this is a threshold on the positive class's probability (a bias of ``ln((1 - t) / t)`` predicts
class 1 exactly when ``p1 >= t``); for more classes, coordinate ascent over one bias per class. The biases are
kept only when they raise validation macro-F1 by at least ``MIN_GAIN``, and they are steps on a coarse grid, so
that a few hundred validation texts cannot be overfitted by much.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Probs = npt.NDArray[np.float32]
_THRESHOLDS = np.round(np.arange(0.20, 0.801, 0.02), 2)
_BIASES = np.round(np.arange(-1.5, 1.501, 0.1), 2)
_STEP_GAIN = 1e-4
# kept only above this validation gain: smaller ones are within the noise of a few thousand texts (macro-F1's
# standard error is about 0.01 there) and did not carry over to test data on ToLD-Br
MIN_GAIN = 0.01


def decide(probs: Probs, biases: npt.NDArray[np.float64] | None) -> npt.NDArray[np.int64]:
    """Class index per row: argmax of ``log p + biases`` (plain argmax without biases)."""
    if biases is None:
        out: npt.NDArray[np.int64] = probs.argmax(axis=1).astype(np.int64)
        return out
    scores = np.log(np.clip(probs, 1e-12, 1.0)) + biases
    out = scores.argmax(axis=1).astype(np.int64)
    return out


def macro_f1(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> float:
    """``sklearn.metrics.f1_score(y, pred, average="macro", zero_division=0)``, the same float, in numpy alone.

    The tuning below calls it hundreds of times a training, and each epoch once: scikit-learn's argument checks
    cost ~4 ms a call, the counting here ~50 us. The arithmetic is scikit-learn's (2 tp / (true + predicted)
    over the labels present in either, then their nan-mean), so the two agree to the last bit.
    """
    if len(y) == 0:
        from sklearn.metrics import f1_score  # here, not at import: serving only needs decide()

        return float(f1_score(y, pred, average="macro", zero_division=0))
    labels, index = np.unique(np.concatenate([y, pred]), return_inverse=True)
    true_index, pred_index = index[: len(y)], index[len(y) :]
    true_sum = np.bincount(true_index, minlength=len(labels)).astype(np.float64)
    pred_sum = np.bincount(pred_index, minlength=len(labels)).astype(np.float64)
    tp_sum = np.bincount(true_index[true_index == pred_index], minlength=len(labels)).astype(np.float64)
    f_score = (1 + 1.0) * tp_sum / (1.0 * true_sum + pred_sum)  # every label is in y or pred: no zero
    return float(np.nanmean(f_score))


def _binary(probs: Probs, y: npt.NDArray[np.int64]) -> tuple[float, npt.NDArray[np.float64]]:
    best_f1, best_t = -1.0, 0.5
    for t in _THRESHOLDS:
        f1 = macro_f1(y, (probs[:, 1] >= t).astype(np.int64))
        # ties go to the threshold nearest 0.5 (the untuned rule)
        if f1 > best_f1 + 1e-12 or (abs(f1 - best_f1) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best_f1, best_t = f1, float(t)
    return best_f1, np.array([0.0, math.log((1.0 - best_t) / best_t)])


def _multiclass(
    probs: Probs, y: npt.NDArray[np.int64], *, rounds: int = 2
) -> tuple[float, npt.NDArray[np.float64]]:
    biases = np.zeros(probs.shape[1])
    best_f1 = macro_f1(y, decide(probs, biases))
    for _ in range(rounds):
        improved = False
        for c in range(probs.shape[1]):
            for b in _BIASES:
                trial = biases.copy()
                trial[c] = b
                f1 = macro_f1(y, decide(probs, trial))
                if f1 > best_f1 + _STEP_GAIN:
                    best_f1, biases, improved = f1, trial, True
        if not improved:
            break
    return best_f1, biases


def tune_biases(
    probs: Probs, y: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64] | None, float, float]:
    """Biases that raise validation macro-F1 by at least ``MIN_GAIN``, or None.

    Returns:
        (biases or None, macro-F1 with plain argmax, best macro-F1 the search found).
    """
    plain = macro_f1(y, decide(probs, None))
    if probs.shape[0] == 0:
        return None, plain, plain
    tuned, biases = _binary(probs, y) if probs.shape[1] == 2 else _multiclass(probs, y)
    if tuned < plain + MIN_GAIN:
        return None, plain, tuned
    return biases, plain, tuned
