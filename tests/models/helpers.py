"""Test data shared by the vector-search tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.registry import ArtifactWriter
from models.vectors import WordVectors, unit_rows


def clustered(n: int, d: int, *, seed: int = 0) -> np.ndarray:
    """Unit points around a few hundred centres: structured like embeddings, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(4, n // 50), d)).astype(np.float32)
    x = centres[rng.integers(0, centres.shape[0], size=n)] + 0.35 * rng.normal(size=(n, d)).astype(np.float32)
    return unit_rows(x)


def write_old_vectors(writer: ArtifactWriter, vectors: WordVectors, **documents: Any) -> None:
    """A word-vector artifact as registered before components were recorded: the same files, written one by one
    (``documents``: ``normalize``, ``phrases``, ``config`` as JSON), and no ``components`` in its metadata."""
    writer.write_json("vocab.json", vectors.words)
    writer.write_array("vectors.npy", np.asarray(vectors.vectors, dtype=np.float32))
    writer.write_array("vectors_norm.npy", vectors.normed)
    info: dict[str, Any] = {"dim": vectors.dim, "words": len(vectors)}
    if vectors.counts is not None:
        writer.write_array("counts.npy", np.asarray(vectors.counts, dtype=np.int64))
    if vectors.ngrams is not None:
        writer.write_array("ngrams.npy", np.asarray(vectors.ngrams, dtype=np.float32))
        info.update(min_n=vectors.min_n, max_n=vectors.max_n, bucket=int(vectors.ngrams.shape[0]))
    writer.write_json("vectors.json", info)
    for name, document in documents.items():
        writer.write_json(f"{name}.json", document)
