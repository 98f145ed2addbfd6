"""The reference every classifier is reported beside: TF-IDF (word 1-2 + char_wb 2-5, sublinear) + LogisticRegression."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_union

from pipelines.classifier.data import Label, LabelledTexts, label_indices
from pipelines.classifier.evaluate import classification_metrics


def tfidf_logreg(*, seed: int = 0) -> Pipeline:
    """The baseline pipeline (scikit-learn defaults otherwise: C=1, L2, lbfgs)."""
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    return Pipeline([("tfidf", features), ("logreg", LogisticRegression(max_iter=2000, random_state=seed))])


def train_baseline(
    train: LabelledTexts, validation: LabelledTexts, classes: Sequence[Label]
) -> dict[str, Any]:
    """Fit the baseline on ``train`` and measure it on ``validation`` (same metrics as the classifier)."""
    y_train = np.asarray(label_indices(train, classes))
    y_val = np.asarray(label_indices(validation, classes))
    pipe = tfidf_logreg()
    started = time.perf_counter()
    pipe.fit(train.texts, y_train)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    pred = pipe.predict(validation.texts)
    infer = time.perf_counter() - started
    out = classification_metrics(y_val, pred, classes)
    out["name"] = "tfidf+logreg"
    out["train_seconds"] = round(seconds, 3)
    out["texts_per_second"] = round(len(validation) / infer, 1) if infer > 0 else None
    return out
