"""Post-processing of trained vectors: "all-but-the-top" (Mu & Viswanath, ICLR 2018).

Word vectors share a large common mean and a few dominant directions that mostly encode word frequency; subtracting
the mean and projecting out the top ``D`` principal directions makes cosine similarity follow meaning more closely.
The paper takes ``D`` about dimension / 100, as palavra does, except for the FastText half of a joined model: there
3 per 200 dimensions, measured on the joined default's 200-dimension halves on the whole corpus
(benchmarks/results/word2vec.md, "Three directions from the FastText half"): LX-SimLex-999 0.295 -> 0.308 over all
pairs, 3CosMul 27.8% -> 27.5%, 3CosAdd 29.0% -> 28.8%. Measured on FastText skip-gram vectors of a 3.7M-token
Portuguese sample (with the paper's ``D``), it helps under-trained models (5 epochs: SimLex Spearman 0.150 ->
0.184, 3CosAdd +0.9 points) but not well-trained ones (10 epochs: SimLex 0.206 -> 0.195, 3CosAdd +0.5, 3CosMul -2
points), so it is on by default for a joined model only (``postprocess = "abtt"`` turns it on for others).

The map is affine, ``v -> (v - mu) - U U^T (v - mu)``, so it is applied to FastText's n-gram buckets as well:
the vector of an unknown word, the mean of its n-gram rows, is then transformed exactly like a known word's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from models.vectors import WordVectors

#: Principal directions are estimated from this many most frequent words.
FIT_ROWS = 100_000


def default_components(dim: int, *, subword: bool = False) -> int:
    """The paper's rule, one direction per 100 dimensions (rounded, at least one); for the FastText half of a joined
    model (``subword``) three per 200, rounded half up."""
    if subword:
        return max(1, (3 * dim + 100) // 200)
    return max(1, round(dim / 100))


def _fit(
    matrix: npt.NDArray[Any], components: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    rows = np.asarray(matrix[:FIT_ROWS], dtype=np.float64)
    mean = rows.mean(axis=0)
    centred = rows - mean
    cov = centred.T @ centred
    values, vectors = np.linalg.eigh(cov)  # ascending
    top = vectors[:, ::-1][:, :components]
    explained = float(values[::-1][:components].sum() / values.sum()) if values.sum() > 0 else 0.0
    return mean, top, explained


def _apply(
    matrix: npt.NDArray[Any], mean: npt.NDArray[np.float64], top: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    out = np.empty(matrix.shape, dtype=np.float32)
    step = 65_536
    for start in range(0, matrix.shape[0], step):
        block = np.asarray(matrix[start : start + step], dtype=np.float64) - mean
        out[start : start + step] = block - (block @ top) @ top.T
    return out


def all_but_the_top(vectors: WordVectors, components: int) -> tuple[WordVectors, dict[str, Any]]:
    """Vectors with the mean and the top ``components`` principal directions removed (n-gram buckets too).

    Rows are assumed in frequency order (gensim's), so the directions come from the most frequent words.
    Returns the new vectors and a description for the artifact's metadata.
    """
    order = np.argsort(-np.asarray(vectors.counts), kind="stable") if vectors.counts is not None else None
    fit_rows = vectors.vectors[order] if order is not None else vectors.vectors
    mean, top, explained = _fit(fit_rows, min(components, vectors.dim - 1))
    ngrams = _apply(vectors.ngrams, mean, top) if vectors.ngrams is not None else None
    out = WordVectors(
        vectors.words,
        _apply(vectors.vectors, mean, top),
        counts=vectors.counts,
        ngrams=ngrams,
        min_n=vectors.min_n,
        max_n=vectors.max_n,
    )
    info = {
        "method": "all-but-the-top",
        "components": int(top.shape[1]),
        "explained_variance": round(explained, 4),
    }
    return out, info
