"""A trained classifier as served: texts in, labels and class probabilities out; saved and loaded as an artifact.

Artifact files (all written and read through the registry; nothing is unpickled):

    config.json          the training run (ClassifierRun, resolved)
    preprocessing.json   normalisation + feature config and the row layout (read back to encode requests)
    model.json           the network's shape and how many networks are averaged ("members")
    model.safetensors    the weights, ``members.<i>.<parameter>``
    vocab.json           the words with their own rows
    char_ngrams.npy      kept character n-gram keys (uint64, sorted)
    word_ngrams.npy      kept word n-gram keys (uint64, sorted)
    idf.npy              idf per row (float32)
    labels.json          the class labels, as they appeared in the training data
    label_names.json     the name each label answers with (absent in older artifacts: the label itself)
    decision.json        biases tuned on validation (or null)
    history.json, metrics.json, history.png
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInput
from models.mlp_numpy import NumpyBagMLP, softmax
from models.registry import Artifact, ArtifactWriter
from pipelines.classifier.config import FeatureConfig
from pipelines.classifier.data import Label, is_blank
from pipelines.classifier.features import FeatureSpace
from pipelines.classifier.label_names import LABEL_NAMES_FILE
from pipelines.classifier.thresholds import decide
from pipelines.normalize import NormalizeConfig, unicode_problem

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
            mode here) as training makes them, or their numpy twins as :func:`load_classifier` loads them.
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


def save_classifier(writer: ArtifactWriter, clf: TextClassifier) -> None:
    """Write the files a classifier needs to be loaded again (the caller adds config, history, metrics)."""
    space = clf.space
    writer.write_json(
        "preprocessing.json",
        {
            "normalize": space.normalize_config.model_dump(mode="json"),
            "features": space.config.model_dump(mode="json"),
            "layout": space.describe(),
        },
    )
    writer.write_json("model.json", {**clf.info["model"], "members": len(clf.members)})
    tensors = {f"members.{i}.{k}": v for i, m in enumerate(clf.members) for k, v in m.state_dict().items()}
    writer.write_tensors("model.safetensors", tensors)
    writer.write_json("vocab.json", space.words)
    writer.write_array("char_ngrams.npy", space.char_keys)
    writer.write_array("word_ngrams.npy", space.word_ngram_keys)
    writer.write_array("idf.npy", space.idf)
    writer.write_json("labels.json", clf.labels)
    writer.write_json(LABEL_NAMES_FILE, clf.names)
    writer.write_json("decision.json", {"biases": None if clf.biases is None else clf.biases.tolist()})


def build_model(shape: dict[str, Any]) -> BagOfFeaturesMLP:
    """A torch network from its ``model.json`` description."""
    from models.mlp import BagOfFeaturesMLP

    return BagOfFeaturesMLP(
        int(shape["rows"]),
        int(shape["dim"]),
        int(shape["num_classes"]),
        hidden=[int(h) for h in shape["hidden"]],
        activation=str(shape["activation"]),
        leaky_slope=float(shape["leaky_slope"]),
        dropout=float(shape["dropout"]),
        pooling=str(shape["pooling"]),
    )


def load_classifier(artifact: Artifact, *, engine: Engine = "torch", warm: bool = False) -> TextClassifier:
    """The classifier stored in a (verified) registry artifact of kind ``classifier``.

    Args:
        artifact: the opened registry version.
        engine: ``torch`` (the default: the trained networks, fastest on batches) or ``numpy`` (no torch import,
            weights memory-mapped and shared between processes, faster on single texts, about half the batch
            throughput). Both give the same probabilities to float32 rounding.
        warm: hash the vocabulary's character n-grams now (:meth:`FeatureSpace.warm`), so that a server's first
            requests do not pay for it (the whole load took 0.4-0.5 s for the ToLD-Br classifier).

    Raises:
        InvalidInput: the artifact is not a classifier.
    """
    if artifact.version.kind != "classifier":
        raise InvalidInput(
            f"model {artifact.version.ref} is a {artifact.version.kind} model, not a classifier",
            model=artifact.version.ref,
        )
    pre = artifact.read_json("preprocessing.json")
    space = FeatureSpace(
        FeatureConfig.model_validate(pre["features"]),
        NormalizeConfig.model_validate(pre["normalize"]),
        words=artifact.read_json("vocab.json"),
        char_keys=artifact.read_array("char_ngrams.npy", mmap=False),
        word_ngram_keys=artifact.read_array("word_ngrams.npy", mmap=False),
        idf=artifact.read_array("idf.npy", mmap=False),
    )
    shape = artifact.read_json("model.json")
    tensors = (
        artifact.read_tensors("model.safetensors")
        if engine == "torch"
        else artifact.read_tensor_arrays("model.safetensors")
    )
    members: list[Any] = []
    for i in range(int(shape.get("members", 1))):
        prefix = f"members.{i}."
        state = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
        if engine == "torch":
            model = build_model(shape)
            model.load_state_dict(state)
            members.append(model)
        else:
            members.append(
                NumpyBagMLP(
                    state,
                    activation=str(shape["activation"]),
                    leaky_slope=float(shape["leaky_slope"]),
                    pooling=str(shape["pooling"]),
                )
            )
    biases = artifact.read_json("decision.json").get("biases")
    names = artifact.read_json(LABEL_NAMES_FILE) if artifact.exists(LABEL_NAMES_FILE) else None
    if warm:
        space.warm()
    return TextClassifier(
        space,
        members,
        artifact.read_json("labels.json"),
        names=names,
        raw_labels=names is None,
        biases=None if biases is None else np.asarray(biases, dtype=np.float64),
        info={"model": shape, "ref": artifact.version.ref},
    )
