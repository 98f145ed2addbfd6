"""The trained encoder: SIF pooling over frozen word vectors, then an MLP trained as a siamese network.

Both sentences of a pair go through the same network; the loss is the squared error between the cosine of their
outputs and the gold score rescaled to [0, 1]. The MLP uses the classifier's activations and optimizers
(pipelines/classifier/optim.py), stops early on the validation loss, and is seeded. Without validation pairs, a
slice of the training pairs is held out so that no sentence is on both sides (:func:`split_by_sentence`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from models.errors import DatasetError
from models.mlp import make_activation
from models.registry import Registry
from pipelines.classifier.config import TrainingConfig
from pipelines.classifier.optim import build_optimizers
from pipelines.runs.progress import Progress, ProgressCallback, ignore_progress
from pipelines.text_encoder.build import pooling_model
from pipelines.text_encoder.evaluate import correlations, gold_range
from pipelines.text_encoder.pairs import Pair
from pipelines.text_encoder.served import TextEncoderModel

log = logging.getLogger(__name__)


class EncoderTraining(BaseModel):
    """The siamese MLP and its optimisation."""

    model_config = ConfigDict(extra="forbid")

    # defaults: the best of the two networks measured on ASSIN 2 (benchmarks/results/text.md)
    hidden: list[int] = Field(default_factory=lambda: [1024, 512], max_length=8)
    out_dim: int = Field(default=256, ge=2, le=4096)
    activation: Literal["sigmoid", "tanh", "relu", "leaky_relu"] = "leaky_relu"
    optimizer: Literal["sgd", "momentum", "adagrad", "rmsprop", "adam"] = "adam"
    lr: float | None = Field(default=None, gt=0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    epochs: int = Field(default=100, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1, le=65_536)
    patience: int | None = Field(default=12, ge=0)
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    seed: int = Field(default=7, ge=0, le=2**32 - 1)
    threads: int = Field(default=1, ge=1, le=256)


class _Tower(nn.Module):
    def __init__(self, dim: int, cfg: EncoderTraining) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), make_activation(cfg.activation), nn.Dropout(cfg.dropout)]
            width = h
        layers.append(nn.Linear(width, cfg.out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)  # type: ignore[no-any-return]


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _features(model: TextEncoderModel, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    pooled = model.pooled([s for p in pairs for s in (p.sentence1, p.sentence2)])
    finished = model.encoder.finish(pooled, unit=False)
    x = torch.from_numpy(np.ascontiguousarray(finished))
    return x[0::2], x[1::2]


def _cosine(tower: _Tower, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return nn.functional.cosine_similarity(tower(a), tower(b), dim=1)


def split_by_sentence(pairs: Sequence[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Hold out about ``fraction`` of ``pairs`` so that no sentence occurs on both sides.

    Pair sets such as ASSIN 2 build many pairs from one sentence; a plain random split puts a sentence's other
    pairs in training, so the validation score flatters the network and early stopping comes late. Pairs that share
    a sentence (directly or through others) form one group; whole groups are drawn, in a seeded order. When the
    groups are too large for that (fewer than half of the pairs wanted could be held out), the split is random.
    """
    parent = list(range(len(pairs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, p in enumerate(pairs):
        for sentence in (p.sentence1, p.sentence2):
            j = first.setdefault(sentence, i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(pairs)):
        groups.setdefault(root(i), []).append(i)
    order = [groups[k] for k in sorted(groups)]
    np.random.default_rng(seed).shuffle(order)  # type: ignore[arg-type]
    want = max(1, int(len(pairs) * fraction))
    held: set[int] = set()
    for group in order:
        if len(held) >= want:
            break
        if len(held) + len(group) <= 2 * want:
            held.update(group)
    if len(held) < want / 2:  # the pairs hang together in a few large groups: fall back to a plain split
        held = {int(i) for i in np.random.default_rng(seed).permutation(len(pairs))[:want]}
    return (
        [p for i, p in enumerate(pairs) if i not in held],
        [p for i, p in enumerate(pairs) if i in held],
    )


def train_siamese(
    registry: Registry,
    words_ref: str,
    train: Sequence[Pair],
    validation: Sequence[Pair] | None,
    *,
    cfg: EncoderTraining,
    sif_a: float = 1e-3,
    components: int = 1,
    progress: ProgressCallback | None = None,
) -> tuple[TextEncoderModel, dict[str, Any]]:
    """A ``trained`` encoder over ``words_ref`` and its report (history, best epoch, validation Pearson).

    ``progress`` gets a ``prepare`` report while the pairs are pooled, then a ``train`` report per epoch (counted
    in epochs, with the losses and the validation Pearson in its message).
    """
    say = progress or ignore_progress
    _seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    if validation is None:
        train, validation = split_by_sentence(train, cfg.validation_fraction, cfg.seed)
    if len(train) < 2:
        raise DatasetError("training an encoder needs at least two sentence pairs")
    low, high = gold_range(train)
    say(
        Progress(
            stage="prepare", message=f"pooling the word vectors of {len(train) + len(validation):,} pairs"
        )
    )
    texts = [s for p in train for s in (p.sentence1, p.sentence2)]
    model, _ = pooling_model(
        registry, words_ref, pooling="sif", sif_a=sif_a, components=components, sample=texts
    )
    ta, tb = _features(model, train)
    va, vb = _features(model, validation)
    ty = torch.tensor([(p.score - low) / (high - low) for p in train], dtype=torch.float32)
    vy = torch.tensor([(p.score - low) / (high - low) for p in validation], dtype=torch.float32)
    tower = _Tower(ta.shape[1], cfg)
    optimizers = build_optimizers(
        tower,
        TrainingConfig(optimizer=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, seed=cfg.seed),
    )
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    history: list[dict[str, float]] = []
    generator = torch.Generator().manual_seed(cfg.seed)
    say(Progress(stage="train", fraction=0.0, done=0, total=cfg.epochs, unit="epoch"))
    for epoch in range(1, cfg.epochs + 1):
        tower.train()
        perm = torch.randperm(len(ty), generator=generator)
        total = 0.0
        for start in range(0, len(perm), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            loss = nn.functional.mse_loss(_cosine(tower, ta[idx], tb[idx]), ty[idx])
            for opt in optimizers:
                opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            for opt in optimizers:
                opt.step()
            total += float(loss.detach()) * len(idx)
        tower.eval()
        with torch.no_grad():
            vcos = _cosine(tower, va, vb)
            vloss = float(nn.functional.mse_loss(vcos, vy))
        row = {
            "epoch": epoch,
            "loss": total / len(ty),
            "val_loss": vloss,
            "val_pearson": correlations(vcos.tolist(), vy.tolist())["pearson"],
        }
        history.append(row)
        say(
            Progress(
                stage="train",
                fraction=epoch / cfg.epochs,
                epoch=epoch,
                loss=row["loss"],
                done=epoch,
                total=cfg.epochs,
                unit="epoch",
                message=f"epoch {epoch}/{cfg.epochs}: loss {row['loss']:.4f}, validation loss {vloss:.4f}, "
                f"Pearson {row['val_pearson']:.4f}",
            )
        )
        log.info(
            "epoch %d: loss %.4f val_loss %.4f val_pearson %.4f",
            epoch,
            row["loss"],
            vloss,
            row["val_pearson"],
        )
        if best is None or vloss < best[0]:
            best = (vloss, epoch, {k: v.detach().clone() for k, v in tower.state_dict().items()})
        elif cfg.patience and epoch - best[1] >= cfg.patience:
            break
    if best is None:  # pragma: no cover  (epochs >= 1 always sets it)
        raise DatasetError("training ran no epoch")
    say(
        Progress(
            stage="train",
            final=True,
            message=f"kept epoch {best[1]} of {len(history)} (the lowest validation loss; Pearson "
            f"{history[best[1] - 1]['val_pearson']:.4f})",
        )
    )
    tower.load_state_dict(best[2])
    linears = [m for m in tower.mlp if isinstance(m, nn.Linear)]
    model.encoder.layers = [
        (m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears
    ]
    spec = model.encoder.spec
    model.encoder.spec = type(spec)(
        **{
            **spec.__dict__,
            "pooling": "trained",
            "hidden": tuple(cfg.hidden),
            "activation": cfg.activation,
            "config": cfg.model_dump(mode="json"),
        }
    )
    report = {
        "best_epoch": best[1],
        "epochs_run": len(history),
        "validation": {"pearson": history[best[1] - 1]["val_pearson"], "loss": best[0]},
        "history": history,
    }
    return model, report
