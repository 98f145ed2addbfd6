"""The ``lm`` artifact kind: a neural language model (Bengio et al., 2003) that predicts the next token.

    previous n token ids ──> embedding rows ──> concatenation (n x dim) ──> dropout
        ──> [Linear ─> activation ─> dropout] x len(hidden) ──> adaptive softmax over the vocabulary

The softmax is :class:`torch.nn.AdaptiveLogSoftmaxWithLoss`: the vocabulary is ordered by frequency, the frequent
head is scored for every prediction and the rare tails only when needed, which keeps training fast on a CPU.

This module owns the kind's files (names, ``save`` and ``load``); every reader goes through :func:`load`:

    config.json        the network's shape (:class:`LMShape`), the preprocessing the corpus went through and, when
                       the model has one, its n-gram component's order and mixture weight
    vocab.json         the tokens, most frequent first (row i of the embedding is token i)
    weights.safetensors
    ngram.safetensors  (optional) a Kneser-Ney n-gram model's tables (models/ngram.py) over the same token ids

With an n-gram component the model's probability is the mixture ``λ·p_network + (1 - λ)·p_ngram`` (Bengio et
al. 2003's best models mix their network with an n-gram the same way); λ was fitted on the held-out slice.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.errors import IntegrityError, InvalidInput
from models.mlp import make_activation
from models.mlp_numpy import activate
from models.ngram import NGramModel, mix_logs
from models.references import Kind
from models.registry import Artifact, ArtifactWriter

KIND = Kind.LM.value
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "weights.safetensors"
NGRAM_FILE = "ngram.safetensors"
FILES = (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE)  # and NGRAM_FILE where config.json names an n-gram

EOS = "</s>"  # a sentence boundary; also what pads the context before the first token
PARAGRAPH = "<p>"  # a paragraph (document) boundary
UNK = "<unk>"  # every word outside the vocabulary
SPECIALS = (EOS, PARAGRAPH, UNK)


def frequency_cutoffs(counts: Sequence[int], *, coverage: Sequence[float] = (0.8, 0.95)) -> list[int]:
    """Adaptive-softmax cutoffs for a vocabulary sorted by ``counts`` (descending).

    Each cutoff is the first rank at which the vocabulary covers that fraction of the tokens, so the head holds
    the words of most predictions and each tail a rarer band. Always at least one cutoff in ``[1, len - 1]``.
    """
    n = len(counts)
    if n < 2:
        raise InvalidInput("a language model needs at least two tokens in its vocabulary")
    total = float(sum(counts)) or 1.0
    cutoffs: list[int] = []
    running = 0.0
    targets = list(coverage)
    for rank, count in enumerate(counts, start=1):
        running += count
        while targets and running / total >= targets[0]:
            targets.pop(0)
            if 1 <= rank <= n - 1 and (not cutoffs or rank > cutoffs[-1]):
                cutoffs.append(rank)
    return cutoffs or [max(1, n // 2)]


@dataclass(frozen=True)
class LMShape:
    """What the network looks like: enough to rebuild it before its weights are loaded."""

    vocab_size: int
    context: int = 5
    dim: int = 64
    hidden: tuple[int, ...] = (256,)
    activation: str = "tanh"
    dropout: float = 0.1
    cutoffs: tuple[int, ...] = ()
    div_value: float = 4.0

    def __post_init__(self) -> None:
        if self.context < 1:
            raise InvalidInput(f"context must be at least 1 token, not {self.context}")
        if self.vocab_size < 2:
            raise InvalidInput("a language model needs at least two tokens in its vocabulary")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidInput(f"dropout must be in [0, 1), not {self.dropout}")
        make_activation(self.activation)  # ValueError naming the choices

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LMShape:
        obj = dict(obj)
        obj["hidden"] = tuple(obj.get("hidden", ()))
        obj["cutoffs"] = tuple(obj.get("cutoffs", ()))
        return cls(**obj)


class NeuralLM(nn.Module):
    """Embedding + concatenation + MLP + adaptive softmax: log P(next token | previous ``context`` tokens)."""

    def __init__(self, shape: LMShape, *, sparse: bool = True) -> None:
        super().__init__()
        self.shape = shape
        self.embedding = nn.Embedding(shape.vocab_size, shape.dim, sparse=sparse)
        nn.init.uniform_(self.embedding.weight, -1.0 / math.sqrt(shape.dim), 1.0 / math.sqrt(shape.dim))
        layers: list[nn.Module] = [nn.Dropout(shape.dropout)]
        width = shape.context * shape.dim
        for size in shape.hidden:
            layers += [nn.Linear(width, size), make_activation(shape.activation), nn.Dropout(shape.dropout)]
            width = size
        self.mlp = nn.Sequential(*layers)
        cutoffs = list(shape.cutoffs) or frequency_cutoffs([1] * shape.vocab_size)
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(
            width, shape.vocab_size, cutoffs=cutoffs, div_value=shape.div_value
        )

    def features(self, contexts: torch.Tensor) -> torch.Tensor:
        """The MLP's output for a batch of contexts (batch x context ids)."""
        emb = self.embedding(contexts)  # batch x context x dim
        out: torch.Tensor = self.mlp(emb.reshape(contexts.shape[0], -1))
        return out

    def forward(self, contexts: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood (nats per token) of ``targets`` after ``contexts``."""
        loss: torch.Tensor = self.softmax(self.features(contexts), targets).loss
        return loss

    def log_probs(self, contexts: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every vocabulary token (batch x vocab)."""
        out: torch.Tensor = self.softmax.log_prob(self.features(contexts))
        return out

    def parameters_count(self) -> int:
        return int(sum(p.numel() for p in self.parameters()))


Floats = npt.NDArray[np.float32]


def _log_norm(logits: Floats) -> float:
    """log(sum(exp(logits))), computed without overflow: what a log-softmax subtracts."""
    top = float(logits.max())
    return top + float(np.log(np.exp(logits - top).sum(dtype=np.float32)))


def _best(
    ids: npt.NDArray[np.int64], logp: npt.NDArray[Any], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """The ``k`` highest of ``logp`` (and their ``ids``), in no particular order; of the values tied with the k-th
    highest, those of the smallest ids (one order for every k: the k best are the first k of the k + 1 best)."""
    if logp.size > k:
        keep = np.argpartition(logp, logp.size - k)[logp.size - k :]
        edge = logp[keep].min()
        kept_ties = int(np.count_nonzero(logp[keep] == edge))
        if int(np.count_nonzero(logp == edge)) > kept_ties:  # a tie across the k-th place: decided by id
            tied = np.flatnonzero(logp == edge)
            tied = tied[np.argsort(ids[tied], kind="stable")[:kept_ties]]
            keep = np.concatenate([np.flatnonzero(logp > edge), tied])
        return ids[keep], logp[keep]
    return ids, logp


class NextTokens:
    """The ``k`` most probable next tokens after one context: the model's arithmetic in numpy, for serving.

    The same numbers as :meth:`NeuralLM.log_probs` (float32), without building the whole distribution when it can
    be skipped: a token of a tail cluster has a log-probability of at most its cluster's (the head scores each
    cluster as one entry, and log P(token | cluster) <= 0), so a cluster whose own log-probability is no higher
    than the k-th best token found so far cannot hold a better one and is not scored, and of a cluster that is,
    only the tokens that would enter the k best are kept. One context through torch took 0.43 ms of CPU; here
    0.12 ms (benchmarks/results/lm.md).

    With an n-gram component the probabilities are the mixture ``λ·p_network + (1 - λ)·p_ngram``, summed in
    float32 like the network's (over 6,000 texts, the same tokens as float64 sums, log-probabilities within 4e-7);
    a cluster is skipped when ``λ·P(cluster)`` plus a bound on its tokens' ``(1 - λ)·p_ngram`` (the scaled unigram's
    largest, plus each history part's largest add) cannot reach the k-th best.

    Args:
        net: the network, in eval mode (its weights are shared, not copied).
        never: token ids never proposed (``<unk>``, ...).
        ngram: the model's n-gram component, if it has one, and ``network_weight`` its λ.
    """

    def __init__(
        self,
        net: NeuralLM,
        never: Sequence[int] = (),
        *,
        ngram: NGramModel | None = None,
        network_weight: float = 1.0,
    ) -> None:
        shape = net.shape
        weights = {name: t.detach().numpy() for name, t in net.state_dict().items()}
        self.embedding: Floats = weights["embedding.weight"]
        self.layers = [
            (weights[f"mlp.{i}.weight"], weights[f"mlp.{i}.bias"])
            for i, m in enumerate(net.mlp)
            if isinstance(m, nn.Linear)
        ]
        self.activation = shape.activation
        softmax = net.softmax
        self.head: Floats = weights["softmax.head.weight"]
        self.head_bias: Floats | None = weights.get("softmax.head.bias")
        self.shortlist = int(softmax.shortlist_size)
        bounds = list(softmax.cutoffs)
        self.tails = [
            (weights[f"softmax.tail.{i}.0.weight"], weights[f"softmax.tail.{i}.1.weight"], start, stop)
            for i, (start, stop) in enumerate(itertools.pairwise(bounds))
        ]
        self.is_never = np.zeros(shape.vocab_size, dtype=bool)
        self.is_never[list(never)] = True
        self.short_ids = np.arange(self.shortlist, dtype=np.int64)
        # the token ids where the head's words end and each tail cluster ends
        self.edges = np.array([0, self.shortlist, *(stop for *_, stop in self.tails)], dtype=np.int64)
        self.ngram = ngram if network_weight < 1.0 else None
        # per tail cluster, the largest unigram probability: with the seen tokens' extra, a bound on p_ngram there
        self.unigram_max = (
            [float(self.ngram.unigram[start:stop].max()) for *_, start, stop in self.tails]
            if self.ngram
            else []
        )
        self.network_weight = network_weight

    def _masked(self, logp: npt.NDArray[Any], ids: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        logp[self.is_never[ids]] = -np.inf
        return logp

    def top(self, context: Sequence[int], k: int) -> list[tuple[int, float]]:
        """(token id, log-probability) of the ``k`` most probable next tokens, best first and equal ones by token
        id, so that the k best are the first k of any larger k; tokens in ``never`` are left out (so fewer than
        ``k`` when the vocabulary runs out)."""
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}")
        x = self.embedding[np.asarray(context, dtype=np.int64)].reshape(-1)
        for weight, bias in self.layers:
            x = activate(self.activation, weight @ x + bias)
        head = self.head @ x
        if self.head_bias is not None:
            head += self.head_bias
        head_logp = head - np.float32(_log_norm(head))
        if self.ngram is not None:
            ids, best = self._top_mixed(x, head_logp, self.ngram, context, k)
        else:
            ids, best = self._top_network(x, head_logp, k)
        order = np.lexsort((ids, -best))  # best first, equal values by token id
        return [(int(ids[j]), float(best[j])) for j in order if np.isfinite(best[j])]

    def _top_network(
        self, x: Floats, head_logp: Floats, k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        logp = self._masked(head_logp[: self.shortlist].copy(), self.short_ids)
        ids, best = _best(self.short_ids, logp, k)
        for i, (projection, out, start, _stop) in enumerate(self.tails):
            cluster = float(head_logp[self.shortlist + i])
            floor = float(best.min()) if best.size >= k else -math.inf
            if cluster <= floor:
                continue  # no token of this cluster can beat the k-th best so far
            logits = out @ (projection @ x)
            shift = np.float32(cluster - _log_norm(logits))
            # only the tokens that would enter the k best are scored in full (clusters come in token-id order: a
            # token equal to the k-th best has a larger id than every token so far, and loses the tie)
            hits = np.flatnonzero(logits + shift > floor)
            rows = hits + start
            words = self._masked(logits[hits] + shift, rows)
            ids, best = _best(np.concatenate([ids, rows]), np.concatenate([best, words]), k)
        return ids, best

    def _top_mixed(
        self, x: Floats, head_logp: Floats, ngram: NGramModel, context: Sequence[int], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        # in probabilities, not logs: the k best are the same, and only theirs are taken the log of at the end
        w = self.network_weight
        scale, parts = ngram.parts(context)  # p_ngram = scale · unigram, plus each part's add on its tokens
        rest_scale = (1.0 - w) * scale
        adds = [(ids, a * np.float32((1.0 - w) * factor)) for ids, a, factor in parts]
        # where each part's tokens cross the head's and the clusters' edges: one search per part
        cuts = [ids.searchsorted(self.edges) for ids, _ in adds]

        def mixed(network_p: Floats, span: int) -> Floats:
            """λ·p_network + (1 - λ)·p_ngram for the tokens of ``span`` (0: the head's words, i + 1: tail cluster
            i); 0 for those never proposed."""
            start, stop = int(self.edges[span]), int(self.edges[span + 1])
            out: Floats = network_p * np.float32(w)
            out += ngram.unigram[start:stop] * np.float32(rest_scale)
            for (ids, add), cut in zip(adds, cuts, strict=True):
                lo, hi = cut[span], cut[span + 1]
                out[ids[lo:hi] - start] += add[lo:hi]
            out[self.is_never[start:stop]] = 0.0
            return out

        ids, best = _best(self.short_ids, mixed(np.exp(head_logp[: self.shortlist]), 0), k)
        for i, (projection, out, start, _stop) in enumerate(self.tails):
            cluster = float(head_logp[self.shortlist + i])
            floor = float(best.min()) if best.size >= k else 0.0
            # the largest p_ngram a token of the cluster can have: a bound, as a token's adds may come from
            # different parts
            most = rest_scale * self.unigram_max[i]
            for (_, add), cut in zip(adds, cuts, strict=True):
                lo, hi = cut[i + 1], cut[i + 2]
                most += float(add[lo:hi].max()) if hi > lo else 0.0
            if w * math.exp(cluster) + most <= floor:
                continue  # no token of this cluster can beat the k-th best so far
            logits = out @ (projection @ x)
            # P(token) = P(cluster) · softmax(logits), the exponentials computed once (no overflow: max is 0)
            e = np.exp(logits - logits.max())
            words = mixed(e * np.float32(math.exp(cluster) / float(e.sum(dtype=np.float32))), i + 1)
            hits = np.flatnonzero(words > floor)
            ids, best = _best(np.concatenate([ids, hits + start]), np.concatenate([best, words[hits]]), k)
        with np.errstate(divide="ignore"):
            return ids, np.log(best)


@dataclass
class LMArtifact:
    """A loaded language model: the network (in eval mode), its vocabulary and how its corpus was prepared."""

    net: NeuralLM
    vocab: list[str]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    ngram: NGramModel | None = None
    network_weight: float = 1.0  # λ of the mixture with ``ngram``

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {w: i for i, w in enumerate(self.vocab)}

    @property
    def shape(self) -> LMShape:
        return self.net.shape

    def id_of(self, token: str) -> int:
        return self.index.get(token, self.index[UNK])

    def mix(
        self,
        network: npt.NDArray[np.float64],
        contexts: npt.NDArray[np.int64],
        targets: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.float64]:
        """The model's log-probability of each target: the network's (``network``, natural log per token) mixed
        with the n-gram component's, or the network's alone where the model has none."""
        return mix_log_probs(network, self.ngram, self.network_weight, contexts, targets)

    def mix_distribution(
        self, network: npt.NDArray[np.float64], context: Sequence[int]
    ) -> npt.NDArray[np.float64]:
        """The model's log-probability of every token after one context, from the network's (``network``)."""
        if self.ngram is None or self.network_weight >= 1.0:
            return network  # (λ 1: the n-gram's distribution would not count)
        with np.errstate(divide="ignore"):
            theirs = np.log(self.ngram.distribution(context))
        return mix_logs(network, theirs, self.network_weight)


def mix_log_probs(
    network: npt.NDArray[np.float64],
    ngram: NGramModel | None,
    network_weight: float,
    contexts: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """log(λ·p_network + (1 - λ)·p_ngram) per target, from the network's natural log-probabilities."""
    if ngram is None or network_weight >= 1.0:
        return network
    return mix_logs(network, ngram.log_probs(contexts, targets), network_weight)


def save(
    writer: ArtifactWriter,
    net: NeuralLM,
    vocab: Sequence[str],
    *,
    preprocessing: dict[str, Any],
    training: dict[str, Any] | None = None,
    ngram: NGramModel | None = None,
    network_weight: float = 1.0,
) -> None:
    """Write the kind's files into a staging folder (the registry commits them)."""
    if len(vocab) != net.shape.vocab_size:
        raise InvalidInput(f"vocabulary of {len(vocab)} tokens for a network of {net.shape.vocab_size}")
    mixture = None
    if ngram is not None:
        _check_ngram(ngram, net.shape)
        if not 0.0 <= network_weight <= 1.0:
            raise InvalidInput(f"the network's weight must be in [0, 1], not {network_weight}")
        mixture = {"order": ngram.order, "network_weight": network_weight, "file": NGRAM_FILE}
    writer.write_json(
        CONFIG_FILE,
        {
            "kind": KIND,
            "files": [*FILES, NGRAM_FILE] if ngram is not None else list(FILES),
            "shape": asdict(net.shape),
            "preprocessing": preprocessing,
            "training": training,
            "ngram": mixture,
        },
    )
    writer.write_json(VOCAB_FILE, list(vocab))
    writer.write_tensors(WEIGHTS_FILE, dict(net.state_dict()))
    if ngram is not None:
        writer.write_tensor_arrays(NGRAM_FILE, ngram.to_arrays())


def _check_ngram(ngram: NGramModel, shape: LMShape) -> None:
    if ngram.vocab_size != shape.vocab_size:
        raise InvalidInput(f"an n-gram over {ngram.vocab_size} tokens for a network of {shape.vocab_size}")
    if ngram.order - 1 > shape.context:
        raise InvalidInput(
            f"an order-{ngram.order} n-gram needs {ngram.order - 1} tokens of context; the network has {shape.context}"
        )


def _load_ngram(artifact: Artifact, mixture: Any, shape: LMShape) -> tuple[NGramModel, float]:
    try:
        order, weight = int(mixture["order"]), float(mixture["network_weight"])
        if not 0.0 <= weight <= 1.0:
            raise InvalidInput(f"network_weight {weight} is outside [0, 1]")
        if not artifact.exists(NGRAM_FILE):
            raise InvalidInput(f"{NGRAM_FILE} is missing")
        ngram = NGramModel.from_arrays(
            artifact.read_tensor_arrays(NGRAM_FILE), order=order, vocab_size=shape.vocab_size
        )
        _check_ngram(ngram, shape)
    except (KeyError, TypeError, ValueError, InvalidInput, IntegrityError) as exc:
        raise IntegrityError(f"{artifact.version.ref}: its n-gram component does not load ({exc})") from exc
    return ngram, weight


def load(artifact: Artifact) -> LMArtifact:
    """Rebuild the network from a verified artifact, in eval mode with gradients off.

    Raises:
        IntegrityError: a file is missing or does not match the network it describes.
    """
    for rel in FILES:
        if not artifact.exists(rel):
            raise IntegrityError(
                f"{artifact.version.ref} is missing {rel}; it is not a language model artifact"
            )
    config = artifact.read_json(CONFIG_FILE)
    vocab = artifact.read_json(VOCAB_FILE)
    try:
        shape = LMShape.from_json(config["shape"])
        net = NeuralLM(shape, sparse=False)
        net.load_state_dict(artifact.read_tensors(WEIGHTS_FILE))
    except (KeyError, TypeError, RuntimeError, InvalidInput) as exc:
        raise IntegrityError(f"{artifact.version.ref}: the weights do not match config.json ({exc})") from exc
    if len(vocab) != shape.vocab_size or UNK not in vocab or EOS not in vocab:
        raise IntegrityError(f"{artifact.version.ref}: {VOCAB_FILE} does not match config.json")
    net.eval()
    net.requires_grad_(False)
    ngram, weight = None, 1.0
    if config.get("ngram"):  # models trained before the n-gram component have none
        ngram, weight = _load_ngram(artifact, config["ngram"], shape)
    return LMArtifact(
        net=net,
        vocab=list(vocab),
        preprocessing=dict(config.get("preprocessing") or {}),
        ngram=ngram,
        network_weight=weight,
    )
