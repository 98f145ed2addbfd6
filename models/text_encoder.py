"""A text encoder: one vector per text, pooled from the word vectors of a registered word-vector model.

What an encoder artifact holds (this module owns its files; the registry only stages and hashes them):

    encoder.json           {"format", "pooling", "words", "words_kind", "normalize", "dim", "sif_a", "components",
                            "hidden", "activation", "leaky_slope", "max_pool", "members", "config"}
    encoder.safetensors    word_weights (vocab,) float32       SIF weights a / (a + p(w)); absent for ``mean``
                           common (r x d) float32              common components removed from every pooled vector
                           mlp.<i>.weight / mlp.<i>.bias       the trained projection (``trained`` encoders only)
                           skip.weight                         its linear path around the MLP (format /2)
                           members.<m>.mlp..., members.<m>.skip.weight   the other members' projections (format /2)

    text ──> tokens (the word model's normalisation) ──> rows, weights ──> weighted mean of word vectors
         ──> minus its projection on the common components = x (with ``max_pool``, the element-wise maximum
             of the text's word vectors is set beside it: x has twice the word vectors' dimensions)
         ──> per member: [Linear -> activation] x n -> Linear, plus skip.weight @ x ──> unit vector
         ──> the members' unit vectors side by side, scaled to unit length (the cosine of two texts is then the
             mean of the members' cosines)

Pooling kinds: ``mean`` (every known word weighs 1), ``sif`` (smooth inverse frequency, Arora et al. 2017) and
``trained`` (SIF pooling, by default with the word vectors' element-wise maximum beside it, then an MLP trained on
sentence pairs so that cosines follow similarity scores).
Words the vocabulary lacks count with the weight of the rarest word when the model composes them from subwords,
and not at all otherwise. The encoder records the word-vector model it stands on (``name@version``) and that
model's normalisation, so a reader can tell exactly which vectors and which text processing it needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

from models.errors import IntegrityError
from models.mlp_numpy import ACTIVATIONS, activate
from models.references import Kind
from models.registry import Artifact, ArtifactWriter

FloatMatrix = npt.NDArray[np.float32]
Pooling = Literal["mean", "sif", "trained"]
POOLINGS: tuple[str, ...] = ("mean", "sif", "trained")
KIND = Kind.ENCODER.value
CONFIG_FILE = "encoder.json"
WEIGHTS_FILE = "encoder.safetensors"
FORMAT = "palavra-text-encoder/1"  # written for every encoder that /1 readers apply as it is meant
FORMAT_V2 = "palavra-text-encoder/2"  # skip paths or several members: /1 readers refuse it, not drop them
FORMATS = (FORMAT, FORMAT_V2)
# up to this many texts are pooled by a gather per text, not a sparse matrix: one query 0.24 -> 0.11 ms
FEW_TEXTS = 8


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder is: its pooling, the word model it reads and that model's normalisation."""

    pooling: str
    words: str
    words_kind: str
    normalize: dict[str, Any]
    dim: int
    sif_a: float = 1e-3
    components: int = 1
    hidden: tuple[int, ...] = ()
    activation: str = "tanh"
    leaky_slope: float = 0.01
    max_pool: bool = False
    members: int = 1
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self, *, v2: bool = False) -> dict[str, Any]:
        return {
            "format": FORMAT_V2 if v2 else FORMAT,
            "pooling": self.pooling,
            "words": self.words,
            "words_kind": self.words_kind,
            "normalize": self.normalize,
            "dim": self.dim,
            "sif_a": self.sif_a,
            "components": self.components,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "leaky_slope": self.leaky_slope,
            "max_pool": self.max_pool,
            "members": self.members,
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EncoderSpec:
        if data.get("format") not in FORMATS or data.get("pooling") not in POOLINGS:
            raise IntegrityError(
                f"{CONFIG_FILE} is not a {' or '.join(FORMATS)} document; re-register the encoder"
            )
        if data.get("activation", "tanh") not in ACTIVATIONS:
            raise IntegrityError(
                f"{CONFIG_FILE} names the activation {data['activation']!r}, which is none of "
                f"{', '.join(ACTIVATIONS)}; re-register the encoder"
            )
        return cls(
            pooling=str(data["pooling"]),
            words=str(data["words"]),
            words_kind=str(data["words_kind"]),
            normalize=dict(data["normalize"]),
            dim=int(data["dim"]),
            sif_a=float(data.get("sif_a", 1e-3)),
            components=int(data.get("components", 1)),
            hidden=tuple(int(h) for h in data.get("hidden", ())),
            activation=str(data.get("activation", "tanh")),
            leaky_slope=float(data.get("leaky_slope", 0.01)),
            max_pool=bool(data.get("max_pool", False)),
            members=int(data.get("members", 1)),
            config=dict(data.get("config", {})),
        )


def sif_weights(counts: npt.NDArray[Any] | None, vocab: int, *, a: float) -> FloatMatrix:
    """``a / (a + p(w))`` with ``p`` the word's corpus frequency; without counts, a Zipf estimate from the row rank
    (vocabularies are stored most frequent first)."""
    if counts is not None and len(counts) == vocab and float(np.sum(counts)) > 0:
        p = np.asarray(counts, dtype=np.float64) / float(np.sum(counts))
    else:
        ranks = np.arange(1, vocab + 1, dtype=np.float64)
        p = (1.0 / ranks) / float(np.sum(1.0 / ranks))
    out: FloatMatrix = (a / (a + p)).astype(np.float32)
    return out


def common_components(pooled: FloatMatrix, r: int) -> FloatMatrix:
    """The first ``r`` right singular vectors of a sample of pooled vectors (the direction every text shares)."""
    rows = pooled[np.linalg.norm(pooled, axis=1) > 0]
    if r <= 0 or rows.shape[0] < 2:
        return np.zeros((0, pooled.shape[1]), np.float32)
    _, _, vt = np.linalg.svd(rows.astype(np.float64), full_matrices=False)
    out: FloatMatrix = vt[:r].astype(np.float32)
    return out


@dataclass
class Projection:
    """One trained network: [Linear -> activation] x n -> Linear, plus ``skip @ x`` when it has a skip path."""

    layers: list[tuple[npt.NDArray[Any], npt.NDArray[Any]]]
    skip: npt.NDArray[Any] | None = None  # (out_dim x dim)

    @property
    def out_dim(self) -> int:
        return int(self.layers[-1][0].shape[0])

    def apply(self, x: FloatMatrix, activation: str, slope: float) -> FloatMatrix:
        y = x
        for i, (w, b) in enumerate(self.layers):
            y = y @ np.asarray(w, np.float32).T + np.asarray(b, np.float32)
            if i < len(self.layers) - 1:
                y = activate(activation, y, slope)
        if self.skip is not None:
            y = y + x @ np.asarray(self.skip, np.float32).T
        return y

    def tensors(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        out = {}
        for i, (w, b) in enumerate(self.layers):
            out[f"{prefix}mlp.{i}.weight"] = np.asarray(w, np.float32)
            out[f"{prefix}mlp.{i}.bias"] = np.asarray(b, np.float32)
        if self.skip is not None:
            out[f"{prefix}skip.weight"] = np.asarray(self.skip, np.float32)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, npt.NDArray[Any]], prefix: str) -> Projection | None:
        linear = re.compile(rf"^{re.escape(prefix)}mlp\.(\d+)\.weight$")
        numbered = sorted(int(m.group(1)) for k in tensors if (m := linear.match(k)))
        if not numbered:
            return None
        layers = [(tensors[f"{prefix}mlp.{i}.weight"], tensors[f"{prefix}mlp.{i}.bias"]) for i in numbered]
        return cls(layers, tensors.get(f"{prefix}skip.weight"))


def _member_prefix(m: int) -> str:
    return "" if m == 0 else f"members.{m}."


def _unit(x: FloatMatrix) -> FloatMatrix:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: FloatMatrix = (x / norms).astype(np.float32)
    return out


class TextEncoder:
    """Pool word vectors into text vectors, remove the common component, project (trained) and normalise."""

    def __init__(
        self,
        spec: EncoderSpec,
        *,
        word_weights: npt.NDArray[Any] | None = None,
        common: npt.NDArray[Any] | None = None,
        projections: list[Projection] | None = None,
    ) -> None:
        self.spec = spec
        self.word_weights = word_weights
        self.common = (
            np.asarray(common, np.float32) if common is not None else np.zeros((0, spec.dim), np.float32)
        )
        self.projections = projections or []  # trained encoders: one per member

    @property
    def out_dim(self) -> int:
        return sum(p.out_dim for p in self.projections) if self.projections else self.spec.dim

    def row_weights(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The pooling weight of each vocabulary row."""
        if self.word_weights is None:
            return np.ones(ids.shape[0], np.float32)
        out: npt.NDArray[np.float32] = np.asarray(self.word_weights[ids], dtype=np.float32)
        return out

    @property
    def unknown_weight(self) -> float:
        """The weight of a word composed from subwords: that of the rarest vocabulary word."""
        if self.word_weights is None or len(self.word_weights) == 0:
            return 1.0
        return float(np.max(self.word_weights))

    def pool(
        self,
        table: npt.NDArray[Any],
        ids: npt.NDArray[np.int64],
        starts: npt.NDArray[np.int64],
        *,
        extra_sum: FloatMatrix | None = None,
        extra_count: npt.NDArray[np.float32] | None = None,
    ) -> FloatMatrix:
        """Weighted mean per text of ``table[ids[starts[i]:starts[i+1]]]`` plus any subword vectors (``extra_*``).

        A text without a single known word pools to zeros (and stays zero after :meth:`finish`).
        """
        weights = self.row_weights(ids)
        indptr = np.append(starts, ids.shape[0])
        if starts.shape[0] <= FEW_TEXTS:  # building a sparse matrix costs more than a few gathers
            total = np.zeros((starts.shape[0], table.shape[1]), np.float32)
            for i in range(starts.shape[0]):
                lo, hi = indptr[i], indptr[i + 1]
                if hi > lo:
                    total[i] = weights[lo:hi] @ np.asarray(table[ids[lo:hi]], np.float32)
            count = np.diff(indptr).astype(np.float32)
        else:
            bag = sparse.csr_matrix((weights, ids, indptr), shape=(starts.shape[0], table.shape[0]))
            total = np.asarray(bag @ table, dtype=np.float32)
            count = np.asarray(bag.getnnz(axis=1), dtype=np.float32)
        if extra_sum is not None and extra_count is not None:
            total += extra_sum
            count += extra_count
        count[count == 0] = 1.0
        out: FloatMatrix = total / count[:, None]
        return out

    def finish(
        self,
        pooled: FloatMatrix,
        *,
        unit: bool = True,
        maxed: FloatMatrix | None = None,
        project: bool = True,
    ) -> FloatMatrix:
        """Common components removed, ``maxed`` set beside (``max_pool`` encoders), the members' networks applied
        (trained encoders, unless ``project`` is false), rows scaled to unit length.

        With several members, each member's output is scaled to unit length before they are set side by side, so
        every member weighs the same in a cosine (``unit=False`` still returns that concatenation).
        """
        x: npt.NDArray[Any] = np.asarray(pooled, dtype=np.float32)
        empty = ~np.any(x, axis=1)
        if self.common.shape[0]:
            x = x - (x @ self.common.T) @ self.common
        if maxed is not None:
            x = np.concatenate([x, np.asarray(maxed, np.float32)], axis=1)
        if not project:
            return x.astype(np.float32)
        outputs = [p.apply(x, self.spec.activation, self.spec.leaky_slope) for p in self.projections]
        if len(outputs) == 1:
            x = outputs[0]
        elif outputs:
            x = np.concatenate([_unit(y) for y in outputs], axis=1) / np.float32(np.sqrt(len(outputs)))
        x[empty] = 0.0
        return _unit(x) if unit else x.astype(np.float32)

    # -- artifacts ------------------------------------------------------------------------------------------------
    def save(self, writer: ArtifactWriter) -> None:
        """Write ``encoder.json`` and ``encoder.safetensors`` into a staging artifact."""
        tensors: dict[str, npt.NDArray[Any]] = {"common": self.common}
        if self.word_weights is not None:
            tensors["word_weights"] = np.asarray(self.word_weights, np.float32)
        for m, projection in enumerate(self.projections):
            tensors.update(projection.tensors(_member_prefix(m)))
        v2 = (
            len(self.projections) > 1
            or any(p.skip is not None for p in self.projections)
            or self.spec.max_pool
        )
        writer.write_tensor_arrays(WEIGHTS_FILE, tensors)
        writer.write_json(CONFIG_FILE, self.spec.to_json(v2=v2))

    @classmethod
    def load(cls, artifact: Artifact) -> TextEncoder:
        """Read a (verified) encoder artifact; weights stay memory-mapped."""
        spec = EncoderSpec.from_json(artifact.read_json(CONFIG_FILE))
        tensors = artifact.read_tensor_arrays(WEIGHTS_FILE)
        found = [Projection.from_tensors(tensors, _member_prefix(m)) for m in range(spec.members)]
        projections = [p for p in found if p is not None]
        if spec.pooling == "trained" and len(projections) != spec.members:
            raise IntegrityError(
                f"{WEIGHTS_FILE} holds {len(projections)} of the {spec.members} networks {CONFIG_FILE} names"
            )
        return cls(
            spec,
            word_weights=tensors.get("word_weights"),
            common=tensors.get("common"),
            projections=projections,
        )
