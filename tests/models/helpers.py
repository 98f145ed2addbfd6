"""Test data shared by the vector-search tests."""

from __future__ import annotations

import numpy as np

from models.vectors import unit_rows


def clustered(n: int, d: int, *, seed: int = 0) -> np.ndarray:
    """Unit points around a few hundred centres: structured like embeddings, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(4, n // 50), d)).astype(np.float32)
    x = centres[rng.integers(0, centres.shape[0], size=n)] + 0.35 * rng.normal(size=(n, d)).astype(np.float32)
    return unit_rows(x)
