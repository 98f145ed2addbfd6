"""The sentence that ends a classifier's training: why the epoch loop stopped and which epoch's weights were kept."""

from __future__ import annotations

from pipelines.classifier.config import TrainingConfig
from pipelines.classifier.loop import FitResult


def stop_reason(result: FitResult, cfg: TrainingConfig) -> str:
    """Why the loop stopped and which epoch it kept, e.g. ``early stopping at epoch 5 of 20 (...); best epoch 2 kept``.

    Args:
        result: what the loop did (history, best epoch, the rule that stopped it).
        cfg: the training settings the loop ran with (epochs, target error, patience).
    """
    ran = len(result.history)
    last = result.history[-1] if result.history else {}
    validated = "val_loss" in last
    if result.stopped == "early_stopping":
        reason = (
            f"early stopping at epoch {ran} of {cfg.epochs} "
            f"(validation loss not better for {cfg.patience} epochs)"
        )
    elif result.stopped == "target_error":
        error = 1.0 - last["accuracy"] if validated else None
        measured = f"validation error {error:.4f}" if error is not None else "training error"
        reason = f"target error reached at epoch {ran} of {cfg.epochs} ({measured} <= {cfg.target_error:g})"
    else:
        reason = f"all {ran}/{cfg.epochs} epochs done"
    if not validated:
        return f"{reason}; last epoch kept (no validation data to choose another)"
    best = next((r for r in result.history if r["epoch"] == result.best_epoch), last)
    return f"{reason}; best epoch {result.best_epoch} kept (validation loss {best['val_loss']:.4f})"
