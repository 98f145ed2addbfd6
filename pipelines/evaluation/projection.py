"""Word vectors drawn on a plane: a 2D projection of a handful of vectors (PCA, or t-SNE when asked)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInput

ProjectionMethod = Literal["pca", "tsne"]
Points = npt.NDArray[np.float64]


def _scaled(points: Points) -> Points:
    """Centred on the mean and scaled into [-1, 1] on both axes together (the shape is kept)."""
    centred = points - points.mean(axis=0)
    span = float(np.abs(centred).max())
    out: Points = centred / span if span > 0 else centred
    return out


def pca_2d(matrix: npt.NDArray[np.floating]) -> tuple[Points, list[float]]:
    """The rows of ``matrix`` on their first two principal components, and the share of variance each explains.

    The sign of each component is fixed (its largest loading positive), so the same rows always give the same
    picture.
    """
    x = np.asarray(matrix, dtype=np.float64)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    vt = vt[:2]
    signs = np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(axis=1)])
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
    coords = centred @ vt.T
    if coords.shape[1] < 2:  # one row, or one dimension: pad the missing axis
        coords = np.hstack([coords, np.zeros((coords.shape[0], 2 - coords.shape[1]))])
    total = float((s**2).sum())
    explained = [float(v) / total if total > 0 else 0.0 for v in (s[:2] ** 2)]
    explained += [0.0] * (2 - len(explained))
    return _scaled(coords), explained


def tsne_2d(matrix: npt.NDArray[np.floating], *, seed: int = 0) -> Points:
    """t-SNE (scikit-learn, cosine distances) of the rows; perplexity fitted to how few rows a map has."""
    from sklearn.manifold import TSNE  # only when asked: serving does not otherwise load scikit-learn

    x = np.asarray(matrix, dtype=np.float64)
    n = x.shape[0]
    if n < 4:
        raise InvalidInput(f"t-SNE needs at least 4 points; this map has {n} (ask for more neighbours)")
    perplexity = float(max(2.0, min(30.0, (n - 1) / 3)))
    coords = TSNE(
        n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed
    ).fit_transform(x)
    return _scaled(np.asarray(coords, dtype=np.float64))


def project_2d(
    matrix: npt.NDArray[np.floating], method: ProjectionMethod = "pca"
) -> tuple[Points, list[float] | None]:
    """2D coordinates in [-1, 1] for each row; PCA also returns the share of variance of each axis."""
    if method == "tsne":
        return tsne_2d(matrix), None
    return pca_2d(matrix)
