"""The optimizer knob: one named algorithm for the dense layers and its sparse counterpart for the embedding.

The embedding's gradients are sparse (only the rows a batch touched), so it cannot use every torch optimizer:

    name       dense layers                      embedding (sparse gradients)
    sgd        torch SGD                         torch SGD (supports sparse gradients)
    momentum   torch SGD(momentum=m)             LazyMomentum (below)
    adagrad    torch Adagrad                     torch Adagrad (supports sparse gradients)
    rmsprop    torch RMSprop                     LazyRMSprop (below)
    adam       torch Adam                        LazyAdam (SparseAdam's algorithm, below)

The lazy variants follow SparseAdam's rule: a row's state (velocity, squared-gradient average) changes only on the
steps that touch the row, so rare words do not decay between their appearances. That is the only difference from
the dense algorithms, and it is also what SparseAdam does to Adam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from pipelines.classifier.config import TrainingConfig


class LazyMomentum(Optimizer):
    """SGD with (heavy-ball) momentum for sparse gradients; untouched rows keep their velocity."""

    def __init__(self, params: Iterable[torch.Tensor], *, lr: float, momentum: float = 0.9) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]  # noqa: ARG002
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                velocity = state["velocity"]
                v = velocity.index_select(0, rows).mul_(group["momentum"]).add_(values)
                velocity.index_copy_(0, rows, v)
                p.index_add_(0, rows, v, alpha=-group["lr"])


class LazyRMSprop(Optimizer):
    """RMSprop for sparse gradients; a row's squared-gradient average is updated when the row is touched."""

    def __init__(
        self, params: Iterable[torch.Tensor], *, lr: float, alpha: float = 0.99, eps: float = 1e-8
    ) -> None:
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]  # noqa: ARG002
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                state = self.state[p]
                if "square_avg" not in state:
                    state["square_avg"] = torch.zeros_like(p)
                square_avg = state["square_avg"]
                avg = square_avg.index_select(0, rows).mul_(group["alpha"])
                avg.addcmul_(values, values, value=1.0 - group["alpha"])
                square_avg.index_copy_(0, rows, avg)
                p.index_add_(0, rows, values / (avg.sqrt() + group["eps"]), alpha=-group["lr"])


class LazyAdam(Optimizer):
    """Adam for sparse gradients: SparseAdam's lazy moments, with per-row bias correction, via row indexing.

    torch's SparseAdam masks its full moment tensors every step, which costs time in proportion to the whole
    table; this version reads and writes only the touched rows (several times faster on large tables), and
    corrects each row's moments by the number of times that row was updated.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]  # noqa: ARG002
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                state = self.state[p]
                if not state:
                    state.update(
                        exp_avg=torch.zeros_like(p),
                        exp_avg_sq=torch.zeros_like(p),
                        row_steps=torch.zeros(p.shape[0], dtype=p.dtype, device=p.device),
                    )
                m = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(values, alpha=1.0 - beta1)
                v = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
                v.addcmul_(values, values, value=1.0 - beta2)
                state["exp_avg"].index_copy_(0, rows, m)
                state["exp_avg_sq"].index_copy_(0, rows, v)
                # bias correction by each row's own number of updates: a row first touched late in training
                # would otherwise get a step ~3x larger than Adam's first step (SparseAdam uses the global count)
                steps = state["row_steps"].index_select(0, rows).add_(1.0)
                state["row_steps"].index_copy_(0, rows, steps)
                correction1 = (1.0 - torch.pow(beta1, steps)).unsqueeze(1)
                correction2 = (1.0 - torch.pow(beta2, steps)).unsqueeze(1)
                denom = v.sqrt_().div_(correction2.sqrt_()).add_(group["eps"])
                p.index_add_(0, rows, m.div_(denom).div_(correction1), alpha=-group["lr"])


def _dense(name: str, params: list[nn.Parameter], cfg: TrainingConfig, lr: float) -> Optimizer:
    wd = cfg.weight_decay
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


def _sparse(name: str, params: list[nn.Parameter], cfg: TrainingConfig, lr: float) -> Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return LazyMomentum(params, lr=lr, momentum=cfg.momentum)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "rmsprop":
        return LazyRMSprop(params, lr=lr)
    return LazyAdam(params, lr=lr)


def embedding_scale(cfg: TrainingConfig, mean_ids_per_text: float) -> float:
    """The embedding's learning-rate multiplier: as configured, else 1 (adaptive) or ids per text (sgd, momentum)."""
    if cfg.embedding_lr_scale is not None:
        return cfg.embedding_lr_scale
    return max(1.0, mean_ids_per_text) if cfg.optimizer in ("sgd", "momentum") else 1.0


def build_optimizers(
    model: nn.Module, cfg: TrainingConfig, *, mean_ids_per_text: float = 1.0
) -> list[Optimizer]:
    """Optimizers for ``model``: the configured algorithm on dense parameters, its sparse form on sparse ones.

    A parameter counts as sparse when it belongs to an embedding created with ``sparse=True``. Pooling gives each
    embedding row about ``1 / ids per text`` of a text's gradient; Adam, Adagrad and RMSprop divide that scale
    away, plain SGD and momentum do not, so their embedding learning rate is multiplied by the mean number of ids
    per text (unless ``embedding_lr_scale`` says otherwise).
    """
    sparse_params: list[nn.Parameter] = []
    dense_params: list[nn.Parameter] = []
    for module in model.modules():
        is_sparse = bool(getattr(module, "sparse", False))
        for p in module.parameters(recurse=False):
            if p.requires_grad:
                (sparse_params if is_sparse else dense_params).append(p)
    lr = cfg.effective_lr
    out = []
    if dense_params:
        out.append(_dense(cfg.optimizer, dense_params, cfg, lr))
    if sparse_params:
        out.append(_sparse(cfg.optimizer, sparse_params, cfg, lr * embedding_scale(cfg, mean_ids_per_text)))
    return out


def current_lr(optimizers: list[Optimizer]) -> float:
    """The learning rate of the first optimizer (the dense layers'), for the history."""
    group: dict[str, Any] = optimizers[0].param_groups[0]
    return float(group["lr"])
