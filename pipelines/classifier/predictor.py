"""A trained classifier as served: texts in, labels and class probabilities out.

Its artifact (files, save and load) is owned by :mod:`pipelines.classifier.artifact`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInput
from models.mlp_numpy import NumpyBagMLP, softmax
from pipelines.classifier.data import Label
from pipelines.classifier.features import FeatureSpace
from pipelines.classifier.thresholds import decide
from pipelines.text.normalize import is_blank, unicode_problem

if (
    TYPE_CHECKING
):  # torch is imported only where a torch network is trained or loaded (serving runs without it)
    from models.mlp import BagOfFeaturesMLP

Engine = Literal["numpy", "torch"]
_BATCH = 2048


@dataclass(frozen=True)
class Classification:
    """One text's label (by name) and the probability of every label, by name."""

    label: str
    scores: dict[str, float]


class TextClassifier:
    """Feature space + network(s) + labels + decision rule. Reading is thread-safe (eval mode, no grad).

    Args:
        space: the fitted feature space (normalisation included).
        models: the trained network, or several whose probabilities are averaged: torch networks (put into eval
            mode here) as training makes them, or their numpy twins as ``artifact.load_classifier`` loads them.
        labels: class labels in output order, with their original values.
        names: the name each label answers with in :meth:`predict` (default: the label as text).
        raw_labels: answer each label as it appeared in the training data (``1``, not ``"1"``), as artifacts
            saved before label names did; their callers (scripts reading ``palavra classify``) rely on it.
        biases: per-class decision biases tuned on validation, or None for plain argmax.
    """

    def __init__(
        self,
        space: FeatureSpace,
        models: BagOfFeaturesMLP | NumpyBagMLP | Sequence[BagOfFeaturesMLP | NumpyBagMLP],
        labels: Sequence[Label],
        *,
        names: Sequence[str] | None = None,
        raw_labels: bool = False,
        biases: npt.NDArray[np.float64] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.space = space
        listed = list(models) if isinstance(models, Sequence) else [models]
        self.members: list[Any] = [m if isinstance(m, NumpyBagMLP) else m.eval() for m in listed]
        if not self.members:
            raise ValueError("a classifier needs at least one network")
        self.labels = list(labels)
        self.names = [str(label) for label in self.labels] if names is None else [str(n) for n in names]
        if len(self.names) != len(self.labels):
            raise ValueError(f"{len(self.names)} label names for {len(self.labels)} labels")
        self.raw_labels = raw_labels
        self.biases = biases
        self.info = info or {}

    @property
    def model(self) -> Any:
        """The first (or only) network."""
        return self.members[0]

    def decision(self) -> dict[str, Any]:
        """How a label follows from the scores: ``argmax``, or the tuned rule with its biases (and, for two labels,
        the probability the second label needs), so that a label that is not the top score is explained."""
        if self.biases is None:
            return {"rule": "argmax", "biases": None, "threshold": None}
        biases = [float(b) for b in self.biases]
        threshold = None
        if len(biases) == 2:  # label 1 when log p1 + b1 >= log p0 + b0, i.e. p1 >= 1 / (1 + e^(b1 - b0))
            threshold = {self.names[1]: round(1.0 / (1.0 + math.exp(biases[1] - biases[0])), 4)}
        return {
            "rule": "argmax of log(score) + bias",
            "biases": {name: round(b, 4) for name, b in zip(self.names, biases, strict=True)},
            "threshold": threshold,
        }

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = _BATCH) -> npt.NDArray[np.float32]:
        """Class probabilities (texts x classes), computed in batches."""
        out = []
        for start in range(0, len(texts), batch_size):
            bags = self.space.encode(texts[start : start + batch_size])
            probs = sum(self._member_proba(m, bags) for m in self.members)
            out.append(probs / len(self.members))
        if not out:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def _member_proba(self, member: Any, bags: Any) -> npt.NDArray[np.float32]:
        if isinstance(member, NumpyBagMLP):
            units = bags.unit_inputs() if member.pooling != "mean" else None
            return softmax(member.head(member.pool(bags.ids, bags.offsets, bags.weights, units))).astype(
                np.float32
            )
        import torch

        from pipelines.classifier.loop import model_inputs

        with torch.inference_mode():
            logits = member(**model_inputs(bags, units=member.pooling != "mean"))
            return torch.softmax(logits, dim=1).numpy()

    def predict_indices(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Predicted class indices (with the tuned decision rule) and the probabilities."""
        probs = self.predict_proba(texts)
        return decide(probs, self.biases), probs

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """Per text its label and every label's probability, all named as text (what the API answers).

        Raises:
            InvalidInput: as :meth:`predict`.
        """
        return [Classification(str(p["label"]), p["scores"]) for p in self.predict(texts)]

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text ``{"label": name, "scores": {name: probability}}``, each label under its readable name.

        Raises:
            InvalidInput: a text that is empty or holds only whitespace or invisible characters, or one that is
                not Unicode text (a lone surrogate, or a byte that was not UTF-8).
        """
        empty = [i for i, t in enumerate(texts) if not isinstance(t, str) or is_blank(t)]
        if empty:
            raise InvalidInput(
                f"empty text at position(s) {', '.join(map(str, empty[:10]))} (nothing but whitespace or invisible "
                "characters); send text to classify",
                positions=empty[:100],
            )
        broken = [(i, problem) for i, t in enumerate(texts) if (problem := unicode_problem(t))]
        if broken:
            i, problem = broken[0]
            raise InvalidInput(
                f"text at position {i} is not valid text: {problem}; send UTF-8 text",
                positions=[i for i, _ in broken[:100]],
            )
        index, probs = self.predict_indices(texts)
        names = self.names
        return [
            {
                "label": self.labels[int(i)] if self.raw_labels else names[int(i)],
                "scores": {name: round(float(p), 6) for name, p in zip(names, row, strict=True)},
            }
            for i, row in zip(index, probs, strict=True)
        ]
