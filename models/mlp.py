"""The text classifier network: an embedding bag, pooling, an MLP and a softmax output.

    row ids of a text ──> embedding rows ──> pooling (weighted mean | max over tokens | both) ──> dropout
        ──> [Linear ─> activation ─> dropout] x len(hidden) ──> Linear ──> logits (softmax in the loss / predict)

The embedding produces sparse gradients (only the rows a batch touches), which is what makes training on two
cores fast; the optimizers that accept them are chosen in ``pipelines/classifier/optim.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

Pooling = Literal["mean", "max", "mean_max"]
Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu"]


def make_activation(name: str, *, slope: float = 0.01) -> nn.Module:
    """The activation module called ``name`` (``leaky_relu`` takes its negative ``slope``)."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=slope)
    raise ValueError(f"unknown activation {name!r}; use sigmoid, tanh, relu or leaky_relu")


class BagOfFeaturesMLP(nn.Module):
    """Embedding bag + pooling + MLP over bags of feature rows.

    Args:
        rows: embedding rows (the feature space's size).
        dim: embedding width.
        num_classes: output classes (2 for binary; softmax either way).
        hidden: hidden layer sizes; empty means pooled embedding -> output directly.
        activation: sigmoid, tanh, relu or leaky_relu.
        leaky_slope: negative slope of leaky_relu.
        dropout: dropout after pooling and after every hidden layer.
        pooling: ``mean`` (weighted by the per-id weights), ``max`` (per dimension over token vectors), or
            ``mean_max`` (both, concatenated).
        sparse: sparse embedding gradients (train with optimizers that accept them).
    """

    def __init__(
        self,
        rows: int,
        dim: int,
        num_classes: int,
        *,
        hidden: Sequence[int] = (64,),
        activation: Activation | str = "relu",
        leaky_slope: float = 0.01,
        dropout: float = 0.2,
        pooling: Pooling | str = "mean",
        sparse: bool = True,
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "max", "mean_max"):
            raise ValueError(f"unknown pooling {pooling!r}; use mean, max or mean_max")
        if num_classes < 2:
            raise ValueError("a classifier needs at least two classes")
        self.pooling = pooling
        self.embedding = nn.EmbeddingBag(max(rows, 1), dim, mode="sum", sparse=sparse)
        nn.init.uniform_(self.embedding.weight, -1.0 / dim, 1.0 / dim)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = dim * 2 if pooling == "mean_max" else dim
        for size in hidden:
            layers += [
                nn.Linear(width, size),
                make_activation(activation, slope=leaky_slope),
                nn.Dropout(dropout),
            ]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.mlp = nn.Sequential(*layers)

    def pool(
        self,
        ids: torch.Tensor,
        offsets: torch.Tensor,
        weights: torch.Tensor,
        units: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The pooled text vectors (batch x dim, or x 2*dim for mean_max); an empty text pools to zeros.

        ``units`` (offsets, weights and per-text counts of the token units) is needed for max pooling.
        """
        parts = []
        if self.pooling in ("mean", "mean_max"):
            parts.append(self.embedding(ids, offsets, per_sample_weights=weights))
        if self.pooling in ("max", "mean_max"):
            if units is None:
                raise ValueError("max pooling needs the token units of each text")
            parts.append(self._max_pool(ids, *units))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _max_pool(
        self,
        ids: torch.Tensor,
        unit_offsets: torch.Tensor,
        unit_weights: torch.Tensor,
        unit_counts: torch.Tensor,
    ) -> torch.Tensor:
        # a token's vector is the mean of its rows (word + character n-grams), as in fastText; then the max
        # over the tokens of each text, per dimension. Reducing whole rows first keeps this one fused bag.
        tokens = self.embedding(ids, unit_offsets, per_sample_weights=unit_weights)
        if torch.is_grad_enabled():
            out = torch.segment_reduce(
                tokens, "max", lengths=unit_counts, unsafe=True
            )  # fastest with backward
            return torch.where(torch.isfinite(out), out, torch.zeros_like(out))
        text = torch.repeat_interleave(torch.arange(unit_counts.shape[0]), unit_counts)
        out = tokens.new_zeros((unit_counts.shape[0], tokens.shape[1]))  # fastest forward; empty texts stay 0
        pooled: torch.Tensor = out.scatter_reduce(
            0, text.unsqueeze(1).expand_as(tokens), tokens, reduce="amax", include_self=False
        )
        return pooled

    def forward(
        self,
        ids: torch.Tensor,
        offsets: torch.Tensor,
        weights: torch.Tensor,
        units: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits (batch x classes) for texts given as flat row ``ids``, per-text ``offsets`` and id ``weights``."""
        out: torch.Tensor = self.mlp(self.pool(ids, offsets, weights, units))
        return out

    def describe(self) -> dict[str, Any]:
        """Shape facts for metadata."""
        return {
            "rows": int(self.embedding.weight.shape[0]),
            "dim": int(self.embedding.weight.shape[1]),
            "pooling": self.pooling,
            "parameters": int(sum(p.numel() for p in self.parameters())),
        }
