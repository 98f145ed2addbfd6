from __future__ import annotations

import pytest
import torch

from models.mlp import BagOfFeaturesMLP, make_activation


def _inputs() -> dict[str, object]:
    # two texts: the first has two tokens (rows 1,2 and row 3), the second is empty
    ids = torch.tensor([1, 2, 3])
    return {
        "ids": ids,
        "offsets": torch.tensor([0, 3]),
        "weights": torch.tensor([0.25, 0.25, 0.5]),
        "units": (torch.tensor([0, 2]), torch.tensor([0.5, 0.5, 1.0]), torch.tensor([2, 0])),
    }


@pytest.mark.parametrize("pooling", ["mean", "max", "mean_max"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu"])
def test_mlp_gives_one_row_of_logits_per_text(pooling: str, activation: str) -> None:
    torch.manual_seed(0)
    model = BagOfFeaturesMLP(10, 8, 3, hidden=[8, 4], activation=activation, pooling=pooling).eval()
    logits = model(**_inputs())
    assert logits.shape == (2, 3)
    assert torch.isfinite(logits).all()


def test_mlp_pooling_matches_weighted_mean_and_token_max() -> None:
    model = BagOfFeaturesMLP(10, 4, 2, hidden=[], pooling="mean_max").eval()
    with torch.no_grad():
        model.embedding.weight.copy_(torch.arange(40, dtype=torch.float32).reshape(10, 4))
    pooled = model.pool(**_inputs())  # type: ignore[arg-type]
    w = model.embedding.weight.detach()
    mean = 0.25 * w[1] + 0.25 * w[2] + 0.5 * w[3]
    token_max = torch.maximum((w[1] + w[2]) / 2, w[3])
    assert torch.allclose(pooled[0], torch.cat([mean, token_max]))
    assert torch.equal(pooled[1], torch.zeros(8))  # an empty text pools to zeros


def test_mlp_embedding_gradients_are_sparse_and_touch_only_used_rows() -> None:
    model = BagOfFeaturesMLP(10, 4, 2, hidden=[4], pooling="mean_max", dropout=0.0)
    model(**_inputs()).sum().backward()  # type: ignore[arg-type]
    grad = model.embedding.weight.grad
    assert grad is not None
    assert grad.is_sparse
    assert set(grad.coalesce().indices()[0].tolist()) <= {1, 2, 3}


def test_mlp_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError, match="pooling"):
        BagOfFeaturesMLP(10, 4, 2, pooling="attention")
    with pytest.raises(ValueError, match="activation"):
        make_activation("swish")
    with pytest.raises(ValueError, match="two classes"):
        BagOfFeaturesMLP(10, 4, 1)


def test_mlp_leaky_relu_uses_its_slope() -> None:
    act = make_activation("leaky_relu", slope=0.2)
    assert act(torch.tensor([-1.0])).item() == pytest.approx(-0.2)
