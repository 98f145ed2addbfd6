"""Score an encoder on sentence pairs: Pearson and Spearman of cosines against gold scores, MSE on their scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from models.errors import DatasetError, InvalidInput
from pipelines.text_encoder.pairs import Pair
from pipelines.text_encoder.served import TextEncoderModel


def gold_range(pairs: Sequence[Pair]) -> tuple[float, float]:
    """The scale of the gold scores (ASSIN: 1 to 5), read from the pairs."""
    scores = [p.score for p in pairs]
    low, high = min(scores), max(scores)
    if high <= low:
        raise DatasetError("every pair has the same score; correlation needs scores that vary")
    return low, high


def correlations(predicted: Sequence[float], gold: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman of two score lists."""
    p, g = np.asarray(predicted, np.float64), np.asarray(gold, np.float64)
    if np.ptp(p) == 0:
        return {"pearson": 0.0, "spearman": 0.0}
    return {
        "pearson": float(stats.pearsonr(p, g).statistic),
        "spearman": float(stats.spearmanr(p, g).statistic),
    }


def evaluate_pairs(model: TextEncoderModel, pairs: Sequence[Pair]) -> dict[str, Any]:
    """Pearson and Spearman of cosine vs gold; MSE of ``low + (high - low) * max(cosine, 0)`` vs gold."""
    low, high = gold_range(pairs)
    cosines = np.asarray(model.similarity([(p.sentence1, p.sentence2) for p in pairs]), np.float64)
    if np.ptp(cosines) == 0:  # a correlation with a constant is undefined, not 0
        raise InvalidInput(
            f"the encoder gave all {len(pairs)} pairs the same cosine ({cosines[0]:g}), so correlation is "
            "undefined; do the texts hold words its word-vector model knows?"
        )
    gold = np.asarray([p.score for p in pairs], np.float64)
    scaled = low + (high - low) * np.clip(cosines, 0.0, 1.0)
    return {
        "pairs": len(pairs),
        **correlations(cosines.tolist(), gold.tolist()),
        "mse": float(np.mean((scaled - gold) ** 2)),
        "scale": [low, high],
    }
