"""PNG charts of training runs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _loss_ceiling(
    histories: Mapping[str, History], keys: tuple[str, str] = ("train_loss", "val_loss")
) -> float | None:
    """A top for the loss axis: a cell whose loss explodes would otherwise flatten every other curve."""
    first = sorted(v for h in histories.values() for v in _finite([h[0].get(keys[0])] if h else []) if v == v)
    values = [v for h in histories.values() for k in keys for v in _finite([r.get(k) for r in h]) if v == v]
    if not first or not values:
        return None
    # the median of the cells that start sanely (within 100x of the lowest start): a grid where half the cells blow
    # up (a learning-rate axis of two values) kept a scale of 1e46 on which every other curve lay flat at zero
    limit = 100 * first[0] if first[0] > 0 else math.inf
    sane = [v for v in first if v <= limit]
    ceiling = 2.5 * sane[len(sane) // 2]
    return ceiling if max(values) > ceiling else None


def plot_loss_curves(histories: Mapping[str, History], path: Path, **options: Any) -> None:
    """Save :func:`loss_curves_figure` of ``histories`` (with its keyword ``options``) as a PNG at ``path``."""
    fig = loss_curves_figure(histories, **options)
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)


def loss_curves_figure(
    histories: Mapping[str, History],
    *,
    title: str = "",
    diverged: Mapping[str, int] | None = None,
    keys: tuple[str, str] = ("train_loss", "val_loss"),
    ylabel: str = "cross-entropy",
    titles: tuple[str, str] = ("train loss", "validation loss"),
    share_y: bool = True,
) -> Any:
    """A matplotlib figure: every run's train and validation loss per epoch overlaid (one colour per run, named in
    the legend).

    ``keys`` name the two figures of a history row drawn (left: training, right: validation), ``ylabel`` and
    ``titles`` what they are (a language model's perplexity, say). ``share_y``: both panels on one scale (losses,
    where training against validation is the point); otherwise each panel on its own (a language model's training
    perplexity, averaged over an epoch from its first batches, sits far above its validation perplexity).

    A run in ``diverged`` (name -> epoch) gets a cross at the top of the axes at that epoch and says so in the
    legend; losses far above the runs' starting loss are cut off so the other curves stay readable.
    """
    plt = _pyplot()
    diverged = diverged or {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), sharey=share_y)
    cmap = plt.get_cmap("tab10" if len(histories) <= 10 else "tab20")
    ceilings = (
        [_loss_ceiling(histories, keys)] * 2
        if share_y
        else [_loss_ceiling(histories, (key, key)) for key in keys]
    )
    count = len(histories)
    for i, (name, history) in enumerate(histories.items()):
        colour = cmap(i % cmap.N)
        epochs = [row["epoch"] for row in history]
        label = f"{name} (diverged at epoch {diverged[name]})" if name in diverged else name
        # earlier runs drawn wider, so a run that a later one follows exactly still shows underneath;
        # a dot where each run ends shows where its stopping rule stopped it
        width = 1.2 + 3.0 * (count - 1 - i) / max(count - 1, 1)
        for ax, key in ((left, keys[0]), (right, keys[1])):
            losses = _finite([r.get(key) for r in history])
            ax.plot(epochs, losses, color=colour, label=label, linewidth=width, alpha=0.85)
            ends = [(e, v) for e, v in zip(epochs, losses, strict=True) if v == v]
            if ends and name not in diverged:
                ax.plot([ends[-1][0]], [ends[-1][1]], marker="o", color=colour, markersize=4 + width)
    left.set(xlabel="epoch", ylabel=ylabel, title=titles[0])
    right.set(xlabel="epoch", title=titles[1])
    for ax, ceiling, key in zip((left, right), ceilings, keys, strict=True):
        if ceiling is not None:
            # the bottom too: autoscaled over the cut-off values, its margin went below zero (negative perplexity);
            # on a shared scale, over both panels' values (the second panel's limits are the first's)
            shown_keys = keys if share_y else (key,)
            shown = [
                v
                for h in histories.values()
                for k in shown_keys
                for v in _finite([r.get(k) for r in h])
                if v == v
            ]
            low = min((v for v in shown if v <= ceiling), default=0.0)
            ax.set_ylim(bottom=max(0.0, low - 0.05 * (ceiling - low)), top=ceiling)
    for i, (name, _) in enumerate(histories.items()):
        if name in diverged:
            for ax in (left, right):
                top = ax.get_ylim()[1]
                ax.plot(
                    [diverged[name]], [top], marker="x", markersize=10, color=cmap(i % cmap.N), clip_on=False
                )
    for ax in (left, right):
        ax.grid(alpha=0.3)
        _integer_epochs(ax)
    if histories:
        right.legend(fontsize=7, loc="best", ncol=1 if len(histories) <= 8 else 2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class LrPoint:
    """One cell of a learning-rate grid: its group (the other keys' values), rate and final loss."""

    group: str
    lr: float
    loss: float | None
    diverged_at: int | None = None


def plot_lr_sweep(points: Sequence[LrPoint], path: Path, *, title: str = "") -> None:
    """Final loss against the learning rate (log axis), one line per group; diverged cells as crosses on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cmap = plt.get_cmap("tab10")
    groups = list(dict.fromkeys(p.group for p in points))
    ok = [p.loss for p in points if p.loss is not None and math.isfinite(p.loss)]
    top = max(ok) * 1.15 if ok else 1.0
    for i, group in enumerate(groups):
        mine = sorted((p for p in points if p.group == group), key=lambda p: p.lr)
        kept = [p for p in mine if p.loss is not None and math.isfinite(p.loss)]
        colour = cmap(i % cmap.N)
        ax.plot([p.lr for p in kept], [p.loss for p in kept], marker="o", color=colour, label=group)
        for p in mine:
            if p.diverged_at is not None:
                ax.plot([p.lr], [top], marker="x", markersize=10, color=colour, clip_on=False)
                ax.annotate(
                    f"diverged (epoch {p.diverged_at})",
                    (p.lr, top),
                    textcoords="offset points",
                    xytext=(0, -14),
                    ha="center",
                    fontsize=7,
                    color=colour,
                )
    ax.set_xscale("log")
    ax.set_ylim(bottom=min(ok) * 0.95 if ok else 0, top=top * 1.05)
    ax.set(xlabel="learning rate (log scale)", ylabel="final loss (validation, kept epoch)", title=title)
    ax.grid(alpha=0.3, which="both")
    if len(groups) > 1 or (groups and groups[0] != "run"):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
