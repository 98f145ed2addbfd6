"""The classifier network's forward pass in numpy, for serving: the same arithmetic as :class:`models.mlp.BagOfFeaturesMLP`
in eval mode, without importing torch.

A serving worker that answers ``/v1/classify`` only needs the forward pass. Importing torch costs every process
about 140 MB of private memory, and the weights read through numpy can stay memory-mapped (shared between
workers); both matter when a server runs several workers (benchmarks/results/serving.md).

    row ids ──> embedding rows x weights ──> sum per text (weighted mean)      ┐
    row ids ──> mean of each token's rows ──> max per text over its tokens      ┴─> [Linear -> activation] x n -> Linear
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

Array = npt.NDArray[Any]
Ids = npt.NDArray[np.int64]
Units = tuple[Ids, npt.NDArray[np.float32], Ids]
_LINEAR = re.compile(r"^mlp\.(\d+)\.weight$")


def _bag_sum(
    table: Array, ids: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], weights: npt.NDArray[np.float32]
) -> Array:
    """An embedding bag (mode "sum" with per-id weights): for each segment ``ids[starts[i]:starts[i+1]]``, the
    weighted sum of those rows of ``table``; an empty segment gives zeros. One sparse x dense product."""
    indptr = np.append(starts, ids.shape[0])
    bag = sparse.csr_matrix((weights, ids, indptr), shape=(starts.shape[0], table.shape[0]))
    return np.asarray(bag @ table, dtype=np.float32)


def _segment_max(rows: Array, counts: npt.NDArray[np.int64]) -> Array:
    """Per-dimension max over consecutive groups of ``counts[i]`` rows (0 for an empty group)."""
    out = np.zeros((counts.shape[0], rows.shape[1]), dtype=np.float32)
    starts = np.zeros(counts.shape[0], dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    nonempty = counts > 0
    if nonempty.any():
        out[nonempty] = np.maximum.reduceat(rows, starts[nonempty], axis=0)
    return out


ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")


def activate(name: str, x: Array, slope: float = 0.01) -> Array:
    """``x`` through the activation called ``name`` (float32 in, float32 out), as :func:`models.mlp.make_activation`'s
    module computes it; ``leaky_relu`` takes its negative ``slope``."""
    if name == "relu":
        return np.maximum(x, np.float32(0.0))
    if name == "leaky_relu":
        return np.where(x >= 0.0, x, x * np.float32(slope))
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype, copy=False)
    raise ValueError(f"unknown activation {name!r}; use sigmoid, tanh, relu or leaky_relu")


class NumpyBagMLP:
    """Inference-only twin of :class:`models.mlp.BagOfFeaturesMLP`, built from its saved weights.

    Args:
        weights: the network's state dict as arrays (``embedding.weight``, ``mlp.<i>.weight`` / ``.bias``);
            memory-mapped arrays are used as they are, never copied or written.
        activation: the hidden layers' activation.
        leaky_slope: negative slope of ``leaky_relu``.
        pooling: ``mean``, ``max`` or ``mean_max``, as trained.
    """

    def __init__(
        self,
        weights: Mapping[str, Array],
        *,
        activation: str,
        leaky_slope: float = 0.01,
        pooling: str = "mean",
    ) -> None:
        if pooling not in ("mean", "max", "mean_max"):
            raise ValueError(f"unknown pooling {pooling!r}; use mean, max or mean_max")
        activate(
            activation, np.zeros(1, dtype=np.float32), leaky_slope
        )  # unknown names fail here, not per request
        self.embedding = weights["embedding.weight"]
        order = sorted(int(m.group(1)) for key in weights if (m := _LINEAR.match(key)))
        if not order:
            raise ValueError("the weights hold no output layer (mlp.<i>.weight)")
        self.layers = [
            (np.ascontiguousarray(weights[f"mlp.{i}.weight"].T), np.asarray(weights[f"mlp.{i}.bias"]))
            for i in order
        ]
        self.activation = activation
        self.leaky_slope = leaky_slope
        self.pooling = pooling

    def pool(
        self, ids: Ids, offsets: Ids, weights: npt.NDArray[np.float32], units: Units | None = None
    ) -> Array:
        """Pooled text vectors (texts x dim, or x 2*dim for mean_max), as the torch network computes them."""
        parts = []
        if self.pooling in ("mean", "mean_max"):
            parts.append(_bag_sum(self.embedding, ids, offsets, weights))
        if self.pooling in ("max", "mean_max"):
            if units is None:
                raise ValueError("max pooling needs the token units of each text")
            unit_offsets, unit_weights, unit_counts = units
            tokens = _bag_sum(self.embedding, ids, unit_offsets, unit_weights)
            parts.append(_segment_max(tokens, unit_counts))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def head(self, pooled: Array) -> Array:
        """Logits (texts x classes) of pooled text vectors: the MLP after :meth:`pool`."""
        x = pooled
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < len(self.layers) - 1:
                x = activate(self.activation, x, self.leaky_slope)
        return x.astype(np.float32, copy=False)


def softmax(logits: Array) -> Array:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: Array = e / e.sum(axis=1, keepdims=True)
    return out
