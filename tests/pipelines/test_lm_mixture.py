"""Per-token scores of a language model, document restarts, and the interpolation of two models' scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.errors import InvalidInput
from models.lm import LMShape, NeuralLM
from pipelines.lm.data import contexts_of, restart_at_boundaries
from pipelines.lm.mixture import best_weight, interpolate, mixture_log_probs, perplexity_of
from pipelines.lm.train import mean_nll, token_log_probs


def test_mixture_of_two_models_is_the_weighted_sum_of_their_probabilities() -> None:
    p_a = np.array([0.5, 0.1, 0.02])
    p_b = np.array([0.1, 0.3, 0.0001])
    mixed = mixture_log_probs(np.log(p_a), np.log(p_b), 0.25)
    assert np.exp(mixed) == pytest.approx(0.25 * p_a + 0.75 * p_b)
    assert mixture_log_probs(np.log(p_a), np.log(p_b), 1.0) == pytest.approx(np.log(p_a))
    assert mixture_log_probs(np.log(p_a), np.log(p_b), 0.0) == pytest.approx(np.log(p_b))
    # log space: probabilities far below float64's smallest normal number do not underflow to log(0)
    tiny = mixture_log_probs([-800.0], [-900.0], 0.5)
    assert tiny[0] == pytest.approx(-800.0 + math.log(0.5))


def test_perplexity_is_exp_of_the_mean_negative_log_probability() -> None:
    assert perplexity_of(np.log([0.25, 0.25, 0.25])) == pytest.approx(4.0)
    assert perplexity_of(np.log([0.5, 0.125])) == pytest.approx(4.0)


def test_weight_is_chosen_on_the_tuning_tokens_and_reported_on_the_others() -> None:
    # model a is right on the first half, model b on the second: a weight fitted on the first half favours a,
    # and the second half then punishes it; fitting and reporting on the same tokens would hide that
    good, bad = math.log(0.9), math.log(0.01)
    log_a = [good] * 10 + [bad] * 10
    log_b = [bad] * 10 + [good] * 10
    result = interpolate(log_a, log_b, split=10)
    assert result.weight == 1.0
    assert result.tune_tokens == 10
    assert result.test_tokens == 10
    assert result.perplexity_a == pytest.approx(100.0)
    assert result.perplexity_b == pytest.approx(1 / 0.9)
    assert result.perplexity_mixture == pytest.approx(100.0)
    # where the models complement each other token by token the mixture beats both
    mixed = [good, bad] * 10
    other = [bad, good] * 10
    assert best_weight(mixed, other) == pytest.approx(0.5)
    both = interpolate(mixed, other, split=10)
    assert both.perplexity_mixture < min(both.perplexity_a, both.perplexity_b)


@pytest.mark.parametrize(
    ("log_a", "log_b", "split"),
    [([0.0, -1.0], [0.0], 1), ([], [], 0), ([-1.0, -1.0], [-1.0, -1.0], 2), ([-1.0, -1.0], [-1.0, -1.0], 0)],
)
def test_streams_of_different_lengths_or_no_tokens_on_a_side_are_refused(
    log_a: list[float], log_b: list[float], split: int
) -> None:
    with pytest.raises(InvalidInput):
        interpolate(log_a, log_b, split=split)


def test_token_scores_average_to_the_training_loss() -> None:
    torch.manual_seed(0)
    net = NeuralLM(LMShape(vocab_size=40, context=3, dim=8, hidden=(16,), cutoffs=(10, 25)))
    ids = np.random.default_rng(0).integers(0, 40, size=5000).astype(np.int64)
    ctx = contexts_of(ids, 3, pad=1)
    scores = token_log_probs(net, ctx, ids)
    assert scores.shape == (5000,)
    assert -scores.mean() == pytest.approx(mean_nll(net, ctx, ids), rel=1e-5)
    # each score is the log-probability the full distribution gives the target
    net.eval()  # no dropout, as when scoring
    with torch.no_grad():
        full = net.log_probs(torch.from_numpy(np.ascontiguousarray(ctx[:5])))
    expected = full[torch.arange(5), torch.from_numpy(ids[:5])].double().numpy()
    assert scores[:5] == pytest.approx(expected, abs=1e-5)


def test_document_restart_hides_the_previous_document_from_the_context() -> None:
    p = 0  # the boundary token, which also pads
    ids = np.array([5, 6, 7, p, 8, 9, p, 4], dtype=np.int64)
    running = contexts_of(ids, 3, pad=p)
    restarted = restart_at_boundaries(running, ids, p)
    assert running[4].tolist() == [6, 7, p]  # 8 sees the end of the previous document ...
    assert restarted[4].tolist() == [p, p, p]  # ... unless the context restarts at its start
    assert restarted[5].tolist() == [p, p, 8]
    assert restarted[6].tolist() == [p, 8, 9]
    assert restarted[7].tolist() == [p, p, p]
    assert restarted[:4].tolist() == running[:4].tolist()  # the first document is unchanged
