"""The trained encoder: SIF pooling over frozen word vectors, then an MLP trained as a siamese network.

By default the network reads the SIF mean (common component removed) and beside it the element-wise maximum of the
word vectors (``max_pool``), each feature standardised over the training sentences (folded into the saved first
layer), and a linear map of that input is added to its output (``skip``). Both sentences of a pair go through the
same network; the loss is the squared error between the cosine of their outputs and the gold score rescaled to
[0, 1]. The MLP uses the classifier's activations and optimizers (pipelines/classifier/optim.py), stops early on
the validation loss, and is seeded. Without validation pairs, a slice of the training pairs is held out so that no
sentence is on both sides (:func:`split_by_sentence`). With ``members`` > 1, that many networks are trained from
consecutive seeds and the encoder sets their unit outputs side by side.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from models.errors import DatasetError, InvalidInput
from models.mlp import make_activation
from models.registry import Registry
from models.text_encoder import Projection
from pipelines.classifier.config import DEFAULT_LR as CLASSIFIER_LR
from pipelines.classifier.config import MAX_HIDDEN, MAX_LR, TrainingConfig
from pipelines.classifier.optim import build_optimizers
from pipelines.runs.progress import Progress, ProgressCallback, ignore_progress
from pipelines.text_encoder.build import pooling_model
from pipelines.text_encoder.evaluate import correlations, gold_range
from pipelines.text_encoder.pairs import Pair
from pipelines.text_encoder.served import TextEncoderModel

log = logging.getLogger(__name__)


# the classifier's learning rates (pipelines/classifier/config.py), but a third of adam's: with standardised
# input and the skip path, adam at 0.001 had its best validation loss after 1-5 epochs
DEFAULT_LR: dict[str, float] = {**CLASSIFIER_LR, "adam": 3e-4}


class EncoderTraining(BaseModel):
    """The siamese MLP and its optimisation."""

    model_config = ConfigDict(extra="forbid")

    # defaults: measured on ASSIN 2 over the default word vectors, chosen by the validation split's Pearson over
    # three seeds (benchmarks/results/text.md, 2026-12-03)
    hidden: list[Annotated[int, Field(ge=1, le=MAX_HIDDEN)]] = Field(
        default_factory=lambda: [1024, 512], max_length=8
    )
    out_dim: int = Field(default=256, ge=2, le=4096)
    activation: Literal["sigmoid", "tanh", "relu", "leaky_relu"] = "leaky_relu"
    optimizer: Literal["sgd", "momentum", "adagrad", "rmsprop", "adam"] = "adam"
    lr: float | None = Field(
        default=None, gt=0, le=MAX_LR, allow_inf_nan=False
    )  # None: DEFAULT_LR[optimizer]
    weight_decay: float = Field(default=0.0, ge=0.0, le=MAX_LR, allow_inf_nan=False)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    # the element-wise maximum of the word vectors read beside the SIF mean
    max_pool: bool = True
    # each input feature scaled to mean 0, deviation 1 over the training sentences (folded into the saved weights)
    standardize: bool = True
    # a linear map of the pooled vector added to the MLP's output
    skip: bool = True
    # towers trained from seeds seed, seed + 1, ...; the encoder's cosine is the mean of theirs (3 members: about
    # +0.003 validation Pearson for 3x the training time, encoding time and vector size; not the default)
    members: int = Field(default=1, ge=1, le=16)
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
        # a linear path around the MLP: the output starts from a linear map of the pooled vector, which the
        # MLP corrects, instead of having to carry through its non-linear layers what SIF alone already gets
        self.skip = nn.Linear(dim, cfg.out_dim, bias=False) if cfg.skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.mlp(x)
        return y + self.skip(x) if self.skip is not None else y


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _features(model: TextEncoderModel, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    features = model.features(model.tokens([s for p in pairs for s in (p.sentence1, p.sentence2)]))
    x = torch.from_numpy(np.ascontiguousarray(features))
    return x[0::2], x[1::2]


def _standardizer(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and standard deviation of each input feature over the training sentences (both sides)."""
    both = torch.cat([a, b])
    return both.mean(dim=0), both.std(dim=0) + 1e-6


def _exported(tower: _Tower, standardizer: tuple[torch.Tensor, torch.Tensor] | None) -> Projection:
    """The tower as :class:`TextEncoder` applies it: to the pooled vector as it is, not standardised.

    ``(x - m) / s`` is folded into the layers that read ``x``: ``W (x - m) / s + b = (W / s) x + (b - (W / s) m)``,
    the skip path's constant term going into the last layer's bias.
    """
    linears = [m for m in tower.mlp if isinstance(m, nn.Linear)]
    layers = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]
    skip = tower.skip.weight.detach().numpy().copy() if tower.skip is not None else None
    if standardizer is not None:
        mean, std = (t.numpy().astype(np.float64) for t in standardizer)
        w, b = layers[0]
        layers[0] = ((w / std).astype(np.float32), (b - (w / std) @ mean).astype(np.float32))
        if skip is not None:
            w_last, b_last = layers[-1]
            layers[-1] = (w_last, (b_last - (skip / std) @ mean).astype(np.float32))
            skip = (skip / std).astype(np.float32)
    return Projection(layers, skip)


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


@dataclass
class _Data:
    """Pooled (and standardised) features of both sides of the pairs, and targets rescaled to [0, 1]."""

    ta: torch.Tensor
    tb: torch.Tensor
    ty: torch.Tensor
    va: torch.Tensor
    vb: torch.Tensor
    vy: torch.Tensor


def _train_member(
    data: _Data, cfg: EncoderTraining, member: int, say: ProgressCallback
) -> tuple[_Tower, dict[str, Any]]:
    """One member's tower, trained with seed ``cfg.seed + member`` and kept at its lowest validation loss."""
    seed = cfg.seed + member
    torch.manual_seed(seed)
    tower = _Tower(data.ta.shape[1], cfg)
    optimizer_lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.optimizer]
    optimizers = build_optimizers(
        tower,
        TrainingConfig(
            optimizer=cfg.optimizer,
            lr=optimizer_lr,
            weight_decay=cfg.weight_decay,
            seed=seed,
        ),
    )
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    diverged_at: int | None = None
    history: list[dict[str, float]] = []
    generator = torch.Generator().manual_seed(seed)
    stage = "train" if cfg.members == 1 else f"train {member + 1}/{cfg.members}"
    say(Progress(stage=stage, fraction=0.0, done=0, total=cfg.epochs, unit="epoch"))
    for epoch in range(1, cfg.epochs + 1):
        tower.train()
        perm = torch.randperm(len(data.ty), generator=generator)
        total = 0.0
        for start in range(0, len(perm), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            loss = nn.functional.mse_loss(_cosine(tower, data.ta[idx], data.tb[idx]), data.ty[idx])
            for opt in optimizers:
                opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            for opt in optimizers:
                opt.step()
            total += float(loss.detach()) * len(idx)
        tower.eval()
        with torch.no_grad():
            vcos = _cosine(tower, data.va, data.vb)
        vloss = float(nn.functional.mse_loss(vcos, data.vy))
        if not (math.isfinite(total) and math.isfinite(vloss)):
            if best is None:  # no finite epoch to keep: NaN weights would be saved, and served as nulls
                raise InvalidInput(
                    f"training diverged at epoch {epoch} (loss is {total / len(data.ty)}, validation loss {vloss}) "
                    f"with {cfg.optimizer} at lr {optimizer_lr}; lower the learning rate (--lr)"
                )
            # the best finite epoch is kept, as early stopping keeps it
            log.warning("%s: training diverged at epoch %d; keeping epoch %d", stage, epoch, best[1])
            diverged_at = epoch
            break
        row = {
            "epoch": epoch,
            "loss": total / len(data.ty),
            "val_loss": vloss,
            "val_pearson": correlations(vcos.tolist(), data.vy.tolist())["pearson"],
        }
        if cfg.members > 1:
            row["member"] = member + 1
        history.append(row)
        say(
            Progress(
                stage=stage,
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
            "%s, epoch %d: loss %.4f val_loss %.4f val_pearson %.4f",
            stage,
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
    tower.load_state_dict(best[2])
    tower.eval()
    report = {
        "seed": seed,
        "best_epoch": best[1],
        "epochs_run": len(history),
        "validation": {"pearson": history[best[1] - 1]["val_pearson"], "loss": best[0]},
        "history": history,
    }
    if diverged_at is not None:
        report["diverged_at"] = diverged_at
    return tower, report


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
    """A ``trained`` encoder over ``words_ref`` and its report (history, best epochs, validation Pearson).

    ``cfg.members`` towers are trained on the same pairs, each from its own seed (``cfg.seed``, ``cfg.seed + 1``,
    ...); the encoder sets their unit outputs side by side, so its cosine is the mean of theirs. ``progress`` gets
    a ``prepare`` report while the pairs are pooled, then a ``train`` report per epoch of each member (counted in
    epochs, with the losses and the validation Pearson in its message).
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
    model.encoder.spec = replace(model.encoder.spec, max_pool=cfg.max_pool)
    ta, tb = _features(model, train)
    va, vb = _features(model, validation)
    standardizer = _standardizer(ta, tb) if cfg.standardize else None
    if standardizer is not None:  # the pooled vectors' features differ widely in scale
        mean, std = standardizer
        ta, tb, va, vb = ((x - mean) / std for x in (ta, tb, va, vb))
    data = _Data(
        ta,
        tb,
        torch.tensor([(p.score - low) / (high - low) for p in train], dtype=torch.float32),
        va,
        vb,
        torch.tensor([(p.score - low) / (high - low) for p in validation], dtype=torch.float32),
    )
    members = [_train_member(data, cfg, m, say) for m in range(cfg.members)]
    model.encoder.projections = [_exported(tower, standardizer) for tower, _ in members]
    spec = model.encoder.spec
    model.encoder.spec = type(spec)(
        **{
            **spec.__dict__,
            "pooling": "trained",
            "hidden": tuple(cfg.hidden),
            "activation": cfg.activation,
            "members": cfg.members,
            "max_pool": cfg.max_pool,
            "config": cfg.model_dump(mode="json"),
        }
    )
    reports = [r for _, r in members]
    together = _validation_pearson(model, validation)
    kept = ", ".join(f"{r['best_epoch']} of {r['epochs_run']}" for r in reports)
    say(
        Progress(
            stage="train",
            final=True,
            message=f"kept epoch {kept} (the lowest validation loss{' of each member' if len(reports) > 1 else ''}"
            f"; validation Pearson {together:.4f})",
        )
    )
    report: dict[str, Any] = {
        "best_epoch": [r["best_epoch"] for r in reports] if len(reports) > 1 else reports[0]["best_epoch"],
        "epochs_run": sum(r["epochs_run"] for r in reports),
        "validation": {
            "pearson": together,
            "loss": float(np.mean([r["validation"]["loss"] for r in reports])),
        },
        "history": [row for r in reports for row in r["history"]],
    }
    diverged = [r.get("diverged_at") for r in reports]
    if any(d is not None for d in diverged):  # the epoch at which a member's loss stopped being finite
        report["diverged_at"] = diverged if len(reports) > 1 else diverged[0]
    if len(reports) > 1:
        report["members"] = [{k: v for k, v in r.items() if k != "history"} for r in reports]
    return model, report


def _validation_pearson(model: TextEncoderModel, validation: Sequence[Pair]) -> float:
    """The Pearson correlation of the finished encoder's cosines with the validation scores."""
    cosines = model.similarity([(p.sentence1, p.sentence2) for p in validation])
    return correlations(cosines, [p.score for p in validation])["pearson"]
