"""Why a classifier's training stopped and which epoch it kept, as its closing line says."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import Registry
from pipelines.classifier.config import TrainingConfig
from pipelines.classifier.loop import FitResult
from pipelines.classifier.stopping import stop_reason
from pipelines.classifier.train import train_classifier
from pipelines.runs.progress import Progress
from tests.conftest import review_run


def _history(val_losses: list[float], accuracy: float = 0.8) -> list[dict[str, float]]:
    return [
        {"epoch": i, "train_loss": 1.0 / i, "val_loss": v, "accuracy": accuracy, "macro_f1": accuracy}
        for i, v in enumerate(val_losses, start=1)
    ]


@pytest.mark.parametrize(
    ("result", "cfg", "expected"),
    [
        (
            FitResult(_history([0.6, 0.4, 0.5, 0.55, 0.6]), best_epoch=2, stopped="early_stopping"),
            TrainingConfig(epochs=20, patience=3),
            "early stopping at epoch 5 of 20 (validation loss not better for 3 epochs); "
            "best epoch 2 kept (validation loss 0.4000)",
        ),
        (
            FitResult(_history([0.6, 0.3], accuracy=0.95), best_epoch=2, stopped="target_error"),
            TrainingConfig(epochs=20, target_error=0.1),
            "target error reached at epoch 2 of 20 (validation error 0.0500 <= 0.1); "
            "best epoch 2 kept (validation loss 0.3000)",
        ),
        (
            FitResult(_history([0.6, 0.5, 0.55]), best_epoch=2),
            TrainingConfig(epochs=3),
            "all 3/3 epochs done; best epoch 2 kept (validation loss 0.5000)",
        ),
        (
            FitResult([{"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.7}], best_epoch=2),
            TrainingConfig(epochs=2),
            "all 2/2 epochs done; last epoch kept (no validation data to choose another)",
        ),
    ],
)
def test_stop_reason_names_the_rule_and_the_kept_epoch(
    result: FitResult, cfg: TrainingConfig, expected: str
) -> None:
    assert stop_reason(result, cfg) == expected


def test_training_ends_with_a_final_report_naming_the_curves(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    seen: list[Progress] = []
    run = review_run(reviews_csv, training={"epochs": 40, "patience": 1})
    version = train_classifier(run, registry=registry, progress=seen.append)
    final = seen[-1]
    assert final.final
    assert [p for p in seen if p.final] == [final]
    assert final.message is not None
    epochs = [p for p in seen if p.stage == "train" and p.epoch is not None]
    assert f"early stopping at epoch {len(epochs)} of 40" in final.message
    metrics = registry.open(version.ref).read_json("metrics.json")
    assert metrics["training"]["stopped"] == "early_stopping"
    assert f"best epoch {metrics['training']['best_epoch']} kept" in final.message
    assert str(version.path / "history.png") in final.message
    assert (version.path / "history.png").is_file()
    assert (epochs[-1].done, epochs[-1].total, epochs[-1].unit) == (len(epochs), 40, "epoch")


def test_prepare_steps_count_up_to_their_total(registry: Registry, reviews_csv: dict[str, Path]) -> None:
    seen: list[Progress] = []
    train_classifier(review_run(reviews_csv), registry=registry, progress=seen.append)
    steps = [p for p in seen if p.stage == "prepare"]
    assert [p.done for p in steps] == list(range(len(steps)))
    assert steps[-1].done == steps[-1].total
    assert all(p.unit == "step" and p.message for p in steps)
