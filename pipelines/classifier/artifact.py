"""The ``classifier`` artifact: this module owns its files, writes them (:func:`save_classifier`), records its
components (models/components.py) and reads them back (:func:`load_classifier`, :func:`read_report`). Nothing is
unpickled:

    model        preprocessing.json   normalisation + feature config and the row layout (read back to encode requests)
                 model.json           the network's shape and how many networks are averaged ("members")
                 model.safetensors    the weights, ``members.<i>.<parameter>``
                 vocab.json           the words with their own rows
                 char_ngrams.npy      kept character n-gram keys (uint64, sorted)
                 word_ngrams.npy      kept word n-gram keys (uint64, sorted)
                 idf.npy              idf per row (float32)
                 labels.json          the class labels, as they appeared in the training data
                 decision.json        biases tuned on validation (or null)
    label_names  label_names.json     the name each label answers with (absent in older artifacts: the label itself)
    config       config.json          the training run (ClassifierRun, resolved)
    metrics      metrics.json         the evaluation on validation (and the baseline's, when one was trained)
    history      history.json         the per-epoch curves
    plot         history.png          the curves drawn

Versions registered before components were recorded are read by the files they hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models import components
from models.errors import InvalidInput
from models.mlp_numpy import NumpyBagMLP
from models.references import Kind, a_kind
from models.registry import Artifact, ArtifactWriter
from pipelines.classifier.config import FeatureConfig
from pipelines.classifier.features import FeatureSpace
from pipelines.classifier.predictor import Engine, TextClassifier
from pipelines.text.normalize import NormalizeConfig

if (
    TYPE_CHECKING
):  # torch is imported only where a torch network is trained or loaded (serving runs without it)
    from models.mlp import BagOfFeaturesMLP

KIND = Kind.CLASSIFIER.value
PREPROCESSING_FILE = "preprocessing.json"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.json"
CHAR_NGRAMS_FILE = "char_ngrams.npy"
WORD_NGRAMS_FILE = "word_ngrams.npy"
IDF_FILE = "idf.npy"
LABELS_FILE = "labels.json"
DECISION_FILE = "decision.json"
LABEL_NAMES_FILE = "label_names.json"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
PLOT_FILE = "history.png"
COMPONENTS: dict[str, tuple[str, ...]] = {
    "model": (
        PREPROCESSING_FILE,
        MODEL_FILE,
        WEIGHTS_FILE,
        VOCAB_FILE,
        CHAR_NGRAMS_FILE,
        WORD_NGRAMS_FILE,
        IDF_FILE,
        LABELS_FILE,
        DECISION_FILE,
    ),
    "label_names": (LABEL_NAMES_FILE,),
    "config": (CONFIG_FILE,),
    "metrics": (METRICS_FILE,),
    "history": (HISTORY_FILE,),
    "plot": (PLOT_FILE,),
}


def save_classifier(
    writer: ArtifactWriter,
    clf: TextClassifier,
    *,
    config: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    metrics: Mapping[str, Any] | None = None,
    plot: Callable[[Path], None] | None = None,
) -> None:
    """Write a classifier into a staging artifact and record its components (the registry commits it).

    Args:
        writer: the staging artifact, of kind ``classifier``.
        clf: the trained classifier (feature space, networks, labels and their names, decision rule).
        config: the resolved training run.
        history: the per-epoch curves.
        metrics: the evaluation.
        plot: draws the training curves into the path it is given.
    """
    space = clf.space
    writer.write_json(
        PREPROCESSING_FILE,
        {
            "normalize": space.normalize_config.model_dump(mode="json"),
            "features": space.config.model_dump(mode="json"),
            "layout": space.describe(),
        },
    )
    writer.write_json(MODEL_FILE, {**clf.info["model"], "members": len(clf.members)})
    tensors = {f"members.{i}.{k}": v for i, m in enumerate(clf.members) for k, v in m.state_dict().items()}
    writer.write_tensors(WEIGHTS_FILE, tensors)
    writer.write_json(VOCAB_FILE, space.words)
    writer.write_array(CHAR_NGRAMS_FILE, space.char_keys)
    writer.write_array(WORD_NGRAMS_FILE, space.word_ngram_keys)
    writer.write_array(IDF_FILE, space.idf)
    writer.write_json(LABELS_FILE, clf.labels)
    writer.write_json(DECISION_FILE, {"biases": None if clf.biases is None else clf.biases.tolist()})
    writer.write_json(LABEL_NAMES_FILE, clf.names)
    written = ["model", "label_names"]
    if config is not None:
        writer.write_json(CONFIG_FILE, dict(config))
        written.append("config")
    if metrics is not None:
        writer.write_json(METRICS_FILE, dict(metrics))
        written.append("metrics")
    if history is not None:
        writer.write_json(HISTORY_FILE, list(history))
        written.append("history")
    if plot is not None:
        plot(writer.file(PLOT_FILE))
        written.append("plot")
    for name in written:
        components.record(writer, COMPONENTS, name)


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
        IntegrityError: it holds no model, or a component's files without recording it.
    """
    if artifact.version.kind != KIND:
        raise InvalidInput(
            f"model {artifact.version.ref} is {a_kind(artifact.version.kind)} model, not a classifier",
            model=artifact.version.ref,
        )
    parts = components.held(artifact, COMPONENTS, required="model")
    pre = artifact.read_json(PREPROCESSING_FILE)
    space = FeatureSpace(
        FeatureConfig.model_validate(pre["features"]),
        NormalizeConfig.model_validate(pre["normalize"]),
        words=artifact.read_json(VOCAB_FILE),
        char_keys=artifact.read_array(CHAR_NGRAMS_FILE, mmap=False),
        word_ngram_keys=artifact.read_array(WORD_NGRAMS_FILE, mmap=False),
        idf=artifact.read_array(IDF_FILE, mmap=False),
    )
    shape = artifact.read_json(MODEL_FILE)
    tensors = (
        artifact.read_tensors(WEIGHTS_FILE)
        if engine == "torch"
        else artifact.read_tensor_arrays(WEIGHTS_FILE)
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
    biases = artifact.read_json(DECISION_FILE).get("biases")
    names = artifact.read_json(LABEL_NAMES_FILE) if "label_names" in parts else None
    if warm:
        space.warm()
    return TextClassifier(
        space,
        members,
        artifact.read_json(LABELS_FILE),
        names=names,
        raw_labels=names is None,
        biases=None if biases is None else np.asarray(biases, dtype=np.float64),
        info={"model": shape, "ref": artifact.version.ref},
    )


def read_report(artifact: Artifact) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """The evaluation and the per-epoch curves recorded at training (None for what the version does not hold).

    Reads those two files only, each checked against its recorded sha256; the weights are not touched.
    """
    parts = components.held(artifact, COMPONENTS)
    metrics = artifact.read_json(METRICS_FILE) if "metrics" in parts else None
    history = artifact.read_json(HISTORY_FILE) if "history" in parts else None
    return metrics, history
