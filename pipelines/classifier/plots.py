"""PNG charts of training runs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

History = Sequence[Mapping[str, Any]]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) if v is not None and math.isfinite(float(v)) else math.nan for v in values]


def plot_history(history: History, path: Path, *, title: str = "") -> None:
    """Loss (train, validation) and validation accuracy / macro-F1 per epoch, side by side."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    left.plot(epochs, _finite([r.get("train_loss") for r in history]), marker="o", label="train loss")
    if any("val_loss" in r for r in history):
        left.plot(epochs, _finite([r.get("val_loss") for r in history]), marker="o", label="validation loss")
        right.plot(epochs, _finite([r.get("accuracy") for r in history]), marker="o", label="accuracy")
        right.plot(epochs, _finite([r.get("macro_f1") for r in history]), marker="o", label="macro-F1")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    right.set(xlabel="epoch", title="validation")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_loss_curves(histories: Mapping[str, History], path: Path, *, title: str = "") -> None:
    """Every run's train and validation loss per epoch overlaid (one colour per run)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    cmap = plt.get_cmap("tab20")
    for i, (name, history) in enumerate(histories.items()):
        colour = cmap(i % 20)
        epochs = [row["epoch"] for row in history]
        left.plot(epochs, _finite([r.get("train_loss") for r in history]), color=colour, label=name)
        right.plot(epochs, _finite([r.get("val_loss") for r in history]), color=colour, label=name)
    left.set(xlabel="epoch", ylabel="cross-entropy", title="train loss")
    right.set(xlabel="epoch", title="validation loss")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    if histories:
        right.legend(fontsize=7, loc="upper right", ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
