"""The ``lm`` artifact kind: a neural language model (Bengio et al., 2003) that predicts the next token.

    previous n token ids ──> embedding rows ──> concatenation (n x dim) ──> dropout
        ──> [Linear ─> activation ─> dropout] x len(hidden) ──> adaptive softmax over the vocabulary

The softmax is :class:`torch.nn.AdaptiveLogSoftmaxWithLoss`: the vocabulary is ordered by frequency, the frequent
head is scored for every prediction and the rare tails only when needed, which keeps training fast on a CPU.

This module owns the kind's files (names, ``save`` and ``load``); every reader goes through :func:`load`:

    config.json        the network's shape (:class:`LMShape`) and the preprocessing the corpus went through
    vocab.json         the tokens, most frequent first (row i of the embedding is token i)
    weights.safetensors
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
from models.references import Kind
from models.registry import Artifact, ArtifactWriter

KIND = Kind.LM.value
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "weights.safetensors"
FILES = (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE)

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


def _best(ids: npt.NDArray[np.int64], logp: Floats, k: int) -> tuple[npt.NDArray[np.int64], Floats]:
    """The ``k`` highest of ``logp`` (and their ``ids``), in no particular order."""
    if logp.size > k:
        keep = np.argpartition(logp, logp.size - k)[logp.size - k :]
        return ids[keep], logp[keep]
    return ids, logp


class NextTokens:
    """The ``k`` most probable next tokens after one context: the network's arithmetic in numpy, for serving.

    The same numbers as :meth:`NeuralLM.log_probs` (float32), without building the whole distribution when it can
    be skipped: a token of a tail cluster has a log-probability of at most its cluster's (the head scores each
    cluster as one entry, and log P(token | cluster) <= 0), so a cluster whose own log-probability is no higher
    than the k-th best token found so far cannot hold a better one and is not scored, and of a cluster that is, only the tokens that would enter the k
    best are kept. One context through torch took 0.43 ms of CPU; here 0.12 ms (benchmarks/results/lm.md).

    Args:
        net: the network, in eval mode (its weights are shared, not copied).
        never: token ids never proposed (``<unk>``, ...).
    """

    def __init__(self, net: NeuralLM, never: Sequence[int] = ()) -> None:
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

    def _masked(self, logp: Floats, ids: npt.NDArray[np.int64]) -> Floats:
        logp[self.is_never[ids]] = -np.inf
        return logp

    def top(self, context: Sequence[int], k: int) -> list[tuple[int, float]]:
        """(token id, log-probability) of the ``k`` most probable next tokens, best first; tokens in ``never``
        are left out (so fewer than ``k`` when the vocabulary runs out)."""
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}")
        x = self.embedding[np.asarray(context, dtype=np.int64)].reshape(-1)
        for weight, bias in self.layers:
            x = activate(self.activation, weight @ x + bias)
        head = self.head @ x
        if self.head_bias is not None:
            head += self.head_bias
        head_logp = head - np.float32(_log_norm(head))
        logp = self._masked(head_logp[: self.shortlist].copy(), self.short_ids)
        ids, best = _best(self.short_ids, logp, k)
        for i, (projection, out, start, _stop) in enumerate(self.tails):
            cluster = float(head_logp[self.shortlist + i])
            floor = float(best.min()) if best.size >= k else -math.inf
            if cluster <= floor:
                continue  # no token of this cluster can beat the k-th best so far
            logits = out @ (projection @ x)
            shift = np.float32(cluster - _log_norm(logits))
            # only the tokens that would enter the k best are scored in full
            hits = np.flatnonzero(logits + shift > floor)
            rows = hits + start
            words = self._masked(logits[hits] + shift, rows)
            ids, best = _best(np.concatenate([ids, rows]), np.concatenate([best, words]), k)
        order = np.argsort(-best, kind="stable")
        return [(int(ids[j]), float(best[j])) for j in order if np.isfinite(best[j])]


@dataclass
class LMArtifact:
    """A loaded language model: the network (in eval mode), its vocabulary and how its corpus was prepared."""

    net: NeuralLM
    vocab: list[str]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {w: i for i, w in enumerate(self.vocab)}

    @property
    def shape(self) -> LMShape:
        return self.net.shape

    def id_of(self, token: str) -> int:
        return self.index.get(token, self.index[UNK])


def save(
    writer: ArtifactWriter,
    net: NeuralLM,
    vocab: Sequence[str],
    *,
    preprocessing: dict[str, Any],
    training: dict[str, Any] | None = None,
) -> None:
    """Write the kind's files into a staging folder (the registry commits them)."""
    if len(vocab) != net.shape.vocab_size:
        raise InvalidInput(f"vocabulary of {len(vocab)} tokens for a network of {net.shape.vocab_size}")
    shape = asdict(net.shape)
    writer.write_json(
        CONFIG_FILE,
        {
            "kind": KIND,
            "files": list(FILES),
            "shape": shape,
            "preprocessing": preprocessing,
            "training": training,
        },
    )
    writer.write_json(VOCAB_FILE, list(vocab))
    writer.write_tensors(WEIGHTS_FILE, dict(net.state_dict()))


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
    return LMArtifact(net=net, vocab=list(vocab), preprocessing=dict(config.get("preprocessing") or {}))
