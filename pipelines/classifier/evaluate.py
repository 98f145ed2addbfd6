"""Classification metrics (scikit-learn) as JSON-ready dicts and as a readable table; evaluating a classifier."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from pipelines.classifier.data import Label, LabelledTexts, check_known_labels, label_indices
from pipelines.classifier.predictor import TextClassifier


def classification_metrics(
    y_true: npt.NDArray[np.int64] | Sequence[int],
    y_pred: npt.NDArray[np.int64] | Sequence[int],
    classes: Sequence[Label],
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = true)."""
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    names = [str(c) for c in classes]
    return {
        "texts": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": {
            "labels": names,
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def named_classes(metrics: dict[str, Any], classes: Sequence[Label], names: Sequence[str]) -> dict[str, Any]:
    """``metrics`` (:func:`classification_metrics`') with each class shown by the name ``classify`` answers with."""
    rename = {str(c): str(n) for c, n in zip(classes, names, strict=True)}
    if not metrics or all(k == v for k, v in rename.items()):
        return metrics
    out = dict(metrics)
    if isinstance(out.get("per_class"), dict):
        out["per_class"] = {rename.get(k, k): v for k, v in out["per_class"].items()}
    matrix = out.get("confusion_matrix")
    if isinstance(matrix, dict):
        out["confusion_matrix"] = {**matrix, "labels": [rename.get(k, k) for k in matrix["labels"]]}
    return out


def evaluate_classifier(clf: TextClassifier, data: LabelledTexts) -> dict[str, Any]:
    """Metrics of ``clf`` on ``data`` plus inference speed.

    Raises:
        DatasetError: ``data`` has labels the classifier was not trained on.
    """
    check_known_labels(data, clf.labels)
    y = np.asarray(label_indices(data, clf.labels), dtype=np.int64)
    started = time.perf_counter()
    pred, _ = clf.predict_indices(data.texts)
    seconds = time.perf_counter() - started
    out = classification_metrics(y, pred, clf.names)  # by the names `classify` answers with (0 -> nao_toxico)
    out["source"] = data.source
    out["texts_per_second"] = round(len(data) / seconds, 1) if seconds > 0 else None
    return out


def metrics_table(metrics: dict[str, Any]) -> str:
    """A plain-text report: summary line, per-class table, confusion matrix."""
    lines = [
        f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   texts {metrics['texts']}",
        "",
    ]
    names = list(metrics["per_class"])
    width = max([5, *(len(n) for n in names)])
    lines.append(f"{'class'.ljust(width)}  precision  recall  f1      support")
    for name, row in metrics["per_class"].items():
        lines.append(
            f"{name.ljust(width)}  {row['precision']:.4f}     {row['recall']:.4f}  {row['f1']:.4f}  {row['support']}"
        )
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    matrix = metrics["confusion_matrix"]["matrix"]
    cell = max([width, *(len(str(v)) for row in matrix for v in row)])
    lines.append(" " * (width + 2) + " ".join(n.rjust(cell) for n in names))
    for name, row in zip(names, matrix, strict=True):
        lines.append(name.ljust(width) + "  " + " ".join(str(v).rjust(cell) for v in row))
    return "\n".join(lines)
