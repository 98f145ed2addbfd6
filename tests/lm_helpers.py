"""A tiny language model trained through the real pipeline on the fixtures' Portuguese sentences (about a second)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.registry import ModelVersion, Registry
from pipelines.lm.config import make_run
from pipelines.lm.train import train_lm
from pipelines.reading.datasets import DataCatalog

TINY = {
    "context": 3,
    "dim": 16,
    "hidden": [32],
    "epochs": 4,
    "batch_size": 64,
    "lr": 0.01,
    "min_count": 1,
    "holdout": 0.05,
    "workers": 1,
    "seed": 3,
}


def train_tiny_lm(
    registry: Registry, corpus: Path, cache: Path, name: str = "tiny-lm", **changes: Any
) -> ModelVersion:
    run = make_run({"name": name, "corpus": [str(corpus)], **TINY, **changes})
    return train_lm(run, registry=registry, catalog=DataCatalog(None, cache), cache_dir=cache)
