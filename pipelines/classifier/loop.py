"""The epoch loop: mini-batches, per-epoch history, and the stopping rules (max epochs, target error, patience)."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional as F
from torch.optim import Optimizer

from models.errors import InvalidInput
from models.mlp import BagOfFeaturesMLP
from pipelines.classifier.config import TrainingConfig
from pipelines.classifier.hashing import Bags
from pipelines.classifier.optim import current_lr
from pipelines.classifier.thresholds import macro_f1
from pipelines.runs.progress import Progress, ProgressCallback, ignore_progress

Labels = npt.NDArray[np.int64]


@dataclass
class FitResult:
    """What the loop did: one history row per epoch, the epoch whose weights were kept, and why it stopped."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = "max_epochs"


def model_inputs(bags: Bags, *, units: bool = True) -> dict[str, Any]:
    """The tensors :class:`BagOfFeaturesMLP` takes for ``bags`` (token units only when max pooling needs them)."""
    out: dict[str, Any] = {
        "ids": torch.from_numpy(bags.ids),
        "offsets": torch.from_numpy(bags.offsets),
        "weights": torch.from_numpy(bags.weights),
    }
    if units:
        out["units"] = tuple(torch.from_numpy(a) for a in bags.unit_inputs())
    return out


@torch.no_grad()
def predict_logits(model: BagOfFeaturesMLP, bags: Bags, *, batch_size: int = 2048) -> torch.Tensor:
    """Logits for every bag, in eval mode, batched."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(bags), batch_size):
        index = np.arange(start, min(start + batch_size, len(bags)), dtype=np.int64)
        out.append(model(**model_inputs(bags.take(index), units=model.pooling != "mean")))
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, 2))


def _validate(
    model: BagOfFeaturesMLP, bags: Bags, y: Labels, weight: torch.Tensor | None
) -> tuple[float, float, float]:
    logits = predict_logits(model, bags)
    loss = float(F.cross_entropy(logits, torch.from_numpy(y), weight=weight))
    pred = logits.argmax(dim=1).numpy()
    accuracy = float((pred == y).mean())
    return loss, accuracy, macro_f1(y, pred)


def _train_epoch(
    model: BagOfFeaturesMLP,
    optimizers: list[Optimizer],
    bags: Bags,
    y: Labels,
    *,
    cfg: TrainingConfig,
    weight: torch.Tensor | None,
    generator: torch.Generator,
) -> tuple[float, float]:
    """One pass in a seeded random order; returns the mean training loss and the running error rate."""
    model.train()
    order = torch.randperm(len(bags), generator=generator).numpy()
    total_loss, wrong = 0.0, 0
    step = cfg.batch_length(len(order))
    for start in range(0, len(order), step):
        index = order[start : start + step]
        target = torch.from_numpy(y[index])
        batch = bags.take(index)
        logits = model(**model_inputs(batch, units=model.pooling != "mean"))
        loss = F.cross_entropy(logits, target, weight=weight, label_smoothing=cfg.label_smoothing)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            opt.step()
        total_loss += float(loss.detach()) * len(index)
        wrong += int((logits.argmax(dim=1) != target).sum())
    return total_loss / max(len(order), 1), wrong / max(len(order), 1)


def fit(
    model: BagOfFeaturesMLP,
    optimizers: list[Optimizer],
    train: tuple[Bags, Labels],
    validation: tuple[Bags, Labels] | None,
    *,
    cfg: TrainingConfig,
    class_weight: torch.Tensor | None = None,
    progress: ProgressCallback = ignore_progress,
) -> FitResult:
    """Train ``model`` in place; with validation data, the weights of the best epoch (lowest loss) are kept.

    Raises:
        InvalidInput: the loss became NaN or infinite (learning rate too high for this optimizer).
    """
    generator = torch.Generator().manual_seed(cfg.seed)
    result = FitResult()
    best_loss, best_state, waited = math.inf, None, 0
    # the training stage starts now: without this report the first epoch ran under the stage before ("prepare");
    # no message, so a job logs no line for it
    progress(Progress(stage="train", fraction=0.0, done=0, total=cfg.epochs, unit="epoch"))
    for epoch in range(1, cfg.epochs + 1):
        started = time.perf_counter()
        train_loss, train_error = _train_epoch(
            model, optimizers, *train, cfg=cfg, weight=class_weight, generator=generator
        )
        if not math.isfinite(train_loss):
            raise InvalidInput(
                f"training diverged at epoch {epoch} (loss is {train_loss}) with {cfg.optimizer} at lr "
                f"{cfg.effective_lr}; lower the learning rate (--lr)",
                history=[*result.history, {"epoch": epoch, "train_loss": train_loss}],
            )
        row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "lr": current_lr(optimizers)}
        error = train_error
        if validation is not None:
            val_loss, accuracy, macro_f1 = _validate(model, *validation, class_weight)
            row.update(val_loss=val_loss, accuracy=accuracy, macro_f1=macro_f1)
            error = 1.0 - accuracy
            if val_loss < best_loss:
                best_loss, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
                result.best_epoch = epoch
            else:
                waited += 1
        else:
            result.best_epoch = epoch
        row["seconds"] = time.perf_counter() - started
        result.history.append(row)
        progress(
            Progress(
                stage="train",
                fraction=epoch / cfg.epochs,
                epoch=epoch,
                loss=train_loss,
                message=_describe(row),
                extra={
                    "epochs": cfg.epochs,
                    **{k: v for k, v in row.items() if k not in ("epoch", "train_loss")},
                },
                done=epoch,
                total=cfg.epochs,
                unit="epoch",
            )
        )
        if cfg.target_error is not None and error <= cfg.target_error:
            result.stopped = "target_error"
            break
        if validation is not None and cfg.patience and waited >= cfg.patience:
            result.stopped = "early_stopping"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def _describe(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}", f"loss {row['train_loss']:.4f}"]
    if "val_loss" in row:
        parts += [
            f"val_loss {row['val_loss']:.4f}",
            f"acc {row['accuracy']:.4f}",
            f"macro_f1 {row['macro_f1']:.4f}",
        ]
    return ", ".join(parts)


def class_weight_tensor(weights: list[float] | None) -> torch.Tensor | None:
    return torch.tensor(weights, dtype=torch.float32) if weights is not None else None


def set_seed(seed: int) -> None:
    """Seed torch and numpy so two runs with one config give identical weights."""
    torch.manual_seed(seed)
    np.random.seed(seed)
