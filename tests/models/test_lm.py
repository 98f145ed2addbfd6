"""The ``lm`` artifact kind: shape checks, frequency cutoffs, and a save/load round trip through the registry."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from models import lm
from models.errors import IntegrityError, InvalidInput
from models.ngram import NGramModel
from models.registry import Registry
from pipelines.lm.ngram import estimate


def test_cutoffs_follow_frequency_and_stay_inside_the_vocabulary() -> None:
    counts = [1000, 500, 200, 100, 50, 20, 10, 5, 2, 1, 1, 1]
    cutoffs = lm.frequency_cutoffs(counts)
    assert cutoffs == sorted(set(cutoffs))
    assert all(1 <= c <= len(counts) - 1 for c in cutoffs)
    assert cutoffs == [
        3,
        4,
    ]  # 1700 of 1890 tokens (90%) pass 80% at the third word; 1800 (95.2%) at the fourth
    assert lm.frequency_cutoffs([5, 5]) == [1]
    with pytest.raises(InvalidInput):
        lm.frequency_cutoffs([3])


@pytest.mark.parametrize(
    "bad", [{"context": 0}, {"vocab_size": 1}, {"dropout": 1.0}, {"activation": "softplus"}]
)
def test_shape_refuses_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises((InvalidInput, ValueError)):
        lm.LMShape(**{"vocab_size": 10, **bad})  # type: ignore[arg-type]


def test_save_load_round_trip_gives_the_same_probabilities(registry: Registry) -> None:
    vocab = [lm.EOS, lm.PARAGRAPH, lm.UNK, "o", "menino", "foi", "para", "a", "escola"]
    shape = lm.LMShape(vocab_size=len(vocab), context=3, dim=8, hidden=(16,), cutoffs=(4,))
    torch.manual_seed(0)
    net = lm.NeuralLM(shape).eval()
    with registry.create("lm-rt", lm.KIND) as writer:
        lm.save(writer, net, vocab, preprocessing={"normalize": {"lowercase": True}})
    loaded = lm.load(registry.open("lm-rt", kind=lm.KIND))
    contexts = torch.tensor([[3, 4, 5], [1, 1, 3]])
    with torch.inference_mode():
        assert torch.allclose(loaded.net.log_probs(contexts), net.log_probs(contexts))
    assert loaded.vocab == vocab
    assert loaded.shape == shape
    assert loaded.preprocessing == {"normalize": {"lowercase": True}}
    assert not loaded.net.training
    assert not any(p.requires_grad for p in loaded.net.parameters())
    assert loaded.id_of("desconhecida") == vocab.index(lm.UNK)


def test_load_refuses_an_artifact_of_another_shape(registry: Registry) -> None:
    vocab = [lm.EOS, lm.PARAGRAPH, lm.UNK, "o"]
    net = lm.NeuralLM(lm.LMShape(vocab_size=4, context=2, dim=4, hidden=(8,), cutoffs=(2,)))
    with registry.create("lm-bad", lm.KIND) as writer:
        lm.save(writer, net, vocab, preprocessing={})
        config = {
            "kind": "lm",
            "shape": {"vocab_size": 4, "context": 3, "dim": 4, "hidden": [8], "cutoffs": [2]},
        }
        writer.write_json(lm.CONFIG_FILE, config)
    with pytest.raises(IntegrityError, match="do not match"):
        lm.load(registry.open("lm-bad", kind=lm.KIND))


@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu", "sigmoid"])
@pytest.mark.parametrize("peaked", [False, True])
def test_next_tokens_are_the_networks_k_best_without_the_never_tokens(activation: str, peaked: bool) -> None:
    torch.manual_seed(5)
    # three tail clusters, the last with a zero-width projection (div_value**3 > dim)
    shape = lm.LMShape(
        vocab_size=300,
        context=3,
        dim=12,
        hidden=(24, 16),
        activation=activation,
        cutoffs=(20, 60, 150),
        div_value=4.0,
    )
    net = lm.NeuralLM(shape, sparse=False)
    with torch.no_grad():
        if peaked:  # a head sure of itself: most clusters can be skipped
            net.softmax.head.weight.mul_(25.0)
    net.eval()
    never = (2, 30, 200)
    scorer = lm.NextTokens(net, never)
    contexts = torch.randint(0, shape.vocab_size, (40, shape.context))
    with torch.inference_mode():
        full = net.log_probs(contexts)
        full[:, list(never)] = -float("inf")
    for row, context in zip(full, contexts.tolist(), strict=True):
        for k in (1, 5, 40, 300):
            got = scorer.top(context, k)
            want_logp, want_ids = torch.topk(row, min(k, shape.vocab_size - len(never)))
            assert len(got) == want_ids.numel()
            assert not set(never) & {i for i, _ in got}
            assert [lp for _, lp in got] == pytest.approx(want_logp.tolist(), abs=1e-5)
            # the same tokens, but for a choice among tokens tied with the k-th (a zero-width cluster is uniform)
            kth = float(want_logp[-1])
            assert {i for i, lp in got if lp > kth + 1e-5} == {
                i for i in want_ids.tolist() if float(row[i]) > kth + 1e-5
            }
    with pytest.raises(InvalidInput, match="k must be at least 1"):
        scorer.top([0, 1, 2], 0)


def _net_and_ngram(vocab_size: int = 300, context: int = 3) -> tuple[lm.NeuralLM, NGramModel]:
    torch.manual_seed(7)
    shape = lm.LMShape(vocab_size=vocab_size, context=context, dim=12, hidden=(16,), cutoffs=(20, 60, 150))
    net = lm.NeuralLM(shape, sparse=False).eval()
    rng = np.random.default_rng(3)
    phrase = [40, 41, 42, 250, 251]  # a phrase the n-gram knows and the untrained network does not
    ids = np.concatenate([rng.integers(3, vocab_size, size=2000), np.tile(phrase, 80)])
    return net, estimate(ids, order=context + 1, vocab_size=vocab_size, pad=1)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.8])
def test_next_tokens_with_an_ngram_are_the_mixtures_k_best(weight: float) -> None:
    net, ngram = _net_and_ngram()
    never = (2, 30)
    scorer = lm.NextTokens(net, never, ngram=ngram, network_weight=weight)
    contexts = torch.randint(0, 300, (30, 3))
    contexts[0] = torch.tensor([41, 42, 250])  # the n-gram's phrase: 251 comes next
    with torch.inference_mode():
        network = net.log_probs(contexts).double().numpy()
    for row, context in zip(network, contexts.tolist(), strict=True):
        want = np.log(weight * np.exp(row) + (1 - weight) * ngram.distribution(context))
        want[list(never)] = -np.inf
        for k in (1, 5, 50):
            got = scorer.top(context, k)
            best = np.sort(want)[::-1][:k]
            assert [lp for _, lp in got] == pytest.approx(best.tolist(), abs=1e-5)
    if weight < 0.8:
        assert scorer.top([41, 42, 250], 1)[0][0] == 251


def test_save_load_with_an_ngram_round_trips_and_mixes(registry: Registry) -> None:
    net, ngram = _net_and_ngram()
    vocab = [lm.EOS, lm.PARAGRAPH, lm.UNK, *(f"w{i}" for i in range(297))]
    with registry.create("lm-ng", lm.KIND) as writer:
        lm.save(writer, net, vocab, preprocessing={}, ngram=ngram, network_weight=0.6)
    loaded = lm.load(registry.open("lm-ng", kind=lm.KIND))
    assert loaded.ngram is not None
    assert loaded.network_weight == 0.6
    contexts = np.array([[41, 42, 250], [5, 6, 7]])
    targets = np.array([251, 9])
    network = np.array([-3.0, -4.0])
    mixed = loaded.mix(network, contexts, targets)
    want = np.log(0.6 * np.exp(network) + 0.4 * np.exp(ngram.log_probs(contexts, targets)))
    np.testing.assert_allclose(mixed, want, rtol=1e-6)
    dist = loaded.mix_distribution(np.full(300, -np.log(300)), [41, 42, 250])
    assert np.exp(dist).sum() == pytest.approx(1.0, abs=1e-5)


def test_a_model_without_an_ngram_is_the_network_alone(registry: Registry) -> None:
    net, _ = _net_and_ngram()
    vocab = [lm.EOS, lm.PARAGRAPH, lm.UNK, *(f"w{i}" for i in range(297))]
    with registry.create("lm-plain", lm.KIND) as writer:
        lm.save(writer, net, vocab, preprocessing={})
        config = json.loads(writer.file(lm.CONFIG_FILE).read_text())
        del config["ngram"]  # as written before the n-gram component existed
        writer.write_json(lm.CONFIG_FILE, config)
    loaded = lm.load(registry.open("lm-plain", kind=lm.KIND))
    assert loaded.ngram is None
    network = np.array([-3.0, -4.0])
    assert loaded.mix(network, np.array([[3, 4, 5], [5, 6, 7]]), np.array([3, 4])) is network


@pytest.mark.parametrize("damage", ["missing", "short", "weight", "nan"])
def test_load_refuses_a_damaged_ngram(registry: Registry, damage: str) -> None:
    net, ngram = _net_and_ngram()
    vocab = [lm.EOS, lm.PARAGRAPH, lm.UNK, *(f"w{i}" for i in range(297))]
    with registry.create("lm-dmg", lm.KIND) as writer:
        lm.save(writer, net, vocab, preprocessing={}, ngram=ngram, network_weight=0.5)
        if damage == "missing":
            writer.file(lm.NGRAM_FILE).unlink()
        elif damage == "short":
            arrays = ngram.to_arrays()
            arrays["gamma.3"] = arrays["gamma.3"][:-1]
            writer.write_tensor_arrays(lm.NGRAM_FILE, arrays)
        elif damage == "nan":  # loaded, it would answer /v1/generate with a 500 (no token to sample)
            arrays = {k: np.array(a) for k, a in ngram.to_arrays().items()}
            arrays["gamma.2"][:] = np.nan
            writer.write_tensor_arrays(lm.NGRAM_FILE, arrays)
        else:
            config = json.loads(writer.file(lm.CONFIG_FILE).read_text())
            config["ngram"]["network_weight"] = 1.5
            writer.write_json(lm.CONFIG_FILE, config)
    with pytest.raises(IntegrityError, match="n-gram"):
        lm.load(registry.open("lm-dmg", kind=lm.KIND))


def test_save_refuses_an_ngram_that_does_not_fit_the_network(registry: Registry) -> None:
    net, _ = _net_and_ngram()
    vocab = [lm.EOS, lm.PARAGRAPH, lm.UNK, *(f"w{i}" for i in range(297))]
    too_long = estimate(
        np.arange(3, 200), order=5, vocab_size=300, pad=1
    )  # needs 4 tokens; the network sees 3
    with pytest.raises(InvalidInput, match="context"), registry.create("lm-x", lm.KIND) as writer:
        lm.save(writer, net, vocab, preprocessing={}, ngram=too_long, network_weight=0.5)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_next_tokens_break_ties_by_token_id_so_a_smaller_k_is_a_prefix_of_a_larger(weight: float) -> None:
    """The k best are the first k of one order (probability, then token id): asking for fewer words never gives
    other words. With the n-gram alone, words seen equally often after no known history tie exactly."""
    net, ngram = _net_and_ngram()
    scorer = lm.NextTokens(net, (2,), ngram=ngram, network_weight=weight)
    contexts = [[41, 42, 250], [3, 4, 5], [299, 298, 297], [7, 7, 7], [1, 1, 1]]
    contexts += torch.randint(0, 300, (20, 3)).tolist()
    for context in contexts:
        most = scorer.top(context, 60)
        for k in range(1, 60):
            assert scorer.top(context, k) == most[:k], (context, k)
        for (a, pa), (b, pb) in itertools.pairwise(most):
            assert pa > pb or (pa == pb and a < b), (context, a, b)
