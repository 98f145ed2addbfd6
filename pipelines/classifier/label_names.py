"""Readable names for a classifier's labels: ``0`` answers as ``nao_toxico``.

Where the names come from, first match wins:

1. the run's ``label_names`` (``--label-names 0=nao_toxico,1=toxico``, or ``label_names`` in a config file);
2. the catalogue entry of a known data set, for its label column (ToLD-Br's ``toxic``);
3. the labels themselves, as text (string labels such as ``pos`` / ``neg`` are already readable).

The names are saved in the artifact (its ``label_names`` component, pipelines/classifier/artifact.py); an artifact
without them answers raw labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.errors import DatasetError, InvalidInput
from pipelines.classifier.data import Label
from pipelines.reading.datasets import catalogue


def parse_label_names(spec: str) -> dict[str, str]:
    """``"0=nao_toxico,1=toxico"`` -> ``{"0": "nao_toxico", "1": "toxico"}``.

    Raises:
        InvalidInput: a part without ``=``, an empty label or name, or a label given twice.
    """
    out: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        label, eq, name = (s.strip() for s in part.partition("="))
        if not eq or not label or not name:
            raise InvalidInput(
                f"--label-names takes LABEL=NAME pairs separated by commas (0=nao_toxico,1=toxico), not {part!r}"
            )
        if label in out:
            raise InvalidInput(f"--label-names names the label {label!r} twice")
        out[label] = name
    return out


def catalogue_label_names(spec: str, label_column: str) -> dict[str, str]:
    """The names the catalogue gives the labels of ``label_column`` in data set ``spec`` (empty when none)."""
    entry = catalogue().get(spec)
    if entry is None:
        return {}
    return dict(entry.label_names.get(label_column, {}))


def resolve_label_names(
    classes: Sequence[Label], *, given: Mapping[str, str], train: str, label_column: str
) -> list[str]:
    """One readable name per class, in the classes' order.

    Raises:
        DatasetError: ``given`` names a label the training data does not have, or gives two labels one name.
    """
    known = [str(c) for c in classes]
    source = dict(given) or catalogue_label_names(train, label_column)
    unknown = [label for label in source if label not in known]
    if given and unknown:
        raise DatasetError(
            f"label names for labels the training data does not have: {', '.join(map(repr, unknown))}; "
            f"its labels are {', '.join(map(repr, known))}"
        )
    names = [source.get(label, label) for label in known]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DatasetError(f"two labels would answer with the same name: {', '.join(map(repr, repeated))}")
    return names
