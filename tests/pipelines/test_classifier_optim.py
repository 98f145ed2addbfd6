"""The lazy sparse optimizers equal their dense algorithm when every row is touched, and the factory pairs them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.mlp import BagOfFeaturesMLP
from pipelines.classifier.config import TrainingConfig
from pipelines.classifier.optim import LazyAdam, LazyMomentum, LazyRMSprop, build_optimizers, embedding_scale
from pipelines.classifier.thresholds import decide, macro_f1, tune_biases


def _steps(opt_factory, *, sparse: bool, steps: int = 5) -> torch.Tensor:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    emb = nn.Embedding(4, 3, sparse=sparse)
    opt = opt_factory(emb.parameters())
    ids = torch.tensor([0, 1, 2, 3, 1])
    for step in range(steps):
        opt.zero_grad()
        (emb(ids) * (step + 1)).pow(2).sum().backward()
        opt.step()
    return emb.weight.detach().clone()


@pytest.mark.parametrize(
    ("lazy", "dense"),
    [
        (lambda p: LazyAdam(p, lr=0.1), lambda p: torch.optim.Adam(p, lr=0.1)),
        (lambda p: LazyRMSprop(p, lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
        (
            lambda p: LazyMomentum(p, lr=0.01, momentum=0.9),
            lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
        ),
    ],
)
def test_optim_lazy_equals_dense_when_every_row_is_touched(lazy, dense) -> None:  # type: ignore[no-untyped-def]
    torch.testing.assert_close(_steps(lazy, sparse=True), _steps(dense, sparse=False), rtol=1e-4, atol=1e-5)


def test_optim_lazy_adam_leaves_untouched_rows_alone() -> None:
    emb = nn.Embedding(4, 2, sparse=True)
    before = emb.weight.detach().clone()
    opt = LazyAdam(emb.parameters(), lr=0.1)
    emb(torch.tensor([1])).sum().backward()
    opt.step()
    after = emb.weight.detach()
    assert torch.equal(after[[0, 2, 3]], before[[0, 2, 3]])
    assert not torch.equal(after[1], before[1])


@pytest.mark.parametrize(
    ("name", "dense_type", "sparse_type"),
    [
        ("sgd", torch.optim.SGD, torch.optim.SGD),
        ("momentum", torch.optim.SGD, LazyMomentum),
        ("adagrad", torch.optim.Adagrad, torch.optim.Adagrad),
        ("rmsprop", torch.optim.RMSprop, LazyRMSprop),
        ("adam", torch.optim.Adam, LazyAdam),
    ],
)
def test_optim_factory_pairs_dense_and_sparse(name: str, dense_type: type, sparse_type: type) -> None:
    model = BagOfFeaturesMLP(20, 4, 2, hidden=[4])
    cfg = TrainingConfig(optimizer=name, momentum=0.8)
    dense, sparse = build_optimizers(model, cfg, mean_ids_per_text=30.0)
    assert type(dense) is dense_type
    assert type(sparse) is sparse_type
    assert dense.param_groups[0]["lr"] == cfg.effective_lr
    assert sparse.param_groups[0]["params"] == [model.embedding.weight]
    scale = 30.0 if name in ("sgd", "momentum") else 1.0
    assert sparse.param_groups[0]["lr"] == pytest.approx(cfg.effective_lr * scale)
    if name == "momentum":
        assert dense.param_groups[0]["momentum"] == 0.8


def test_optim_embedding_scale_can_be_set() -> None:
    assert embedding_scale(TrainingConfig(optimizer="sgd", embedding_lr_scale=2.0), 100.0) == 2.0
    assert embedding_scale(TrainingConfig(optimizer="adam"), 100.0) == 1.0


def test_thresholds_binary_moves_the_cut_when_it_raises_macro_f1() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(np.int64)
    # the positive class is under-scored: its probability sits around 0.35
    p1 = np.clip(np.where(y == 1, 0.40, 0.20) + rng.normal(0, 0.08, 400), 0.01, 0.99)
    probs = np.stack([1 - p1, p1], axis=1).astype(np.float32)
    biases, before, after = tune_biases(probs, y)
    assert biases is not None
    assert after > before
    assert (decide(probs, biases) == 1).sum() > (decide(probs, None) == 1).sum()


@pytest.mark.parametrize("classes", [1, 2, 3, 7])
def test_macro_f1_is_scikit_learns_to_the_last_bit(classes: int) -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(classes)
    for n in (1, 2, 5, 40, 333):
        y = rng.integers(0, classes, n)
        # predictions that are often right, miss some labels of y, and name labels y never has
        pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, classes + 2, n))
        for truth, guess in ((y, pred), (y, np.zeros(n, dtype=np.int64)), (y, y)):
            expected = float(f1_score(truth, guess, average="macro", zero_division=0))
            assert macro_f1(truth, guess) == expected


def test_thresholds_left_alone_when_argmax_is_best() -> None:
    y = np.array([0, 1, 0, 1, 2, 2], dtype=np.int64)
    probs = np.eye(3, dtype=np.float32)[y] * 0.9 + 0.1 / 3
    biases, before, after = tune_biases(probs, y)
    assert biases is None
    assert before == after == 1.0
