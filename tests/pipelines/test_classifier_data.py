from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.errors import DatasetError
from pipelines.classifier.data import (
    LabelledTexts,
    check_known_labels,
    check_trainable,
    label_indices,
    read_labelled,
    sort_labels,
)


def _csv(tmp_path: Path, text: str, name: str = "dados.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_data_reads_csv_and_keeps_label_names(tmp_path: Path) -> None:
    path = _csv(tmp_path, 'texto,rotulo\n"Ótimo, recomendo",Yes\nPéssimo,No\n')
    data = read_labelled(path, text_column="texto", label_column="rotulo")
    assert data.texts == ["Ótimo, recomendo", "Péssimo"]
    assert data.labels == ["Yes", "No"]
    assert data.classes() == ["No", "Yes"]


def test_data_reads_jsonl_with_integer_labels(tmp_path: Path) -> None:
    path = tmp_path / "dados.jsonl"
    rows = [{"text": "bom", "label": 1}, {"text": "ruim", "label": 0}, {"text": "ok", "label": 10}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    data = read_labelled(path, text_column="text", label_column="label")
    assert data.labels == [1, 0, 10]
    assert data.classes() == [0, 1, 10]  # numeric order, not "0", "1", "10" by accident


def test_data_missing_column_names_the_columns_there(tmp_path: Path) -> None:
    path = _csv(tmp_path, "text,toxic\nolá,0\n")
    with pytest.raises(DatasetError, match=r"no column 'label'.*'text', 'toxic'.*--label-column") as raised:
        read_labelled(path, text_column="text", label_column="label")
    # a job submitted over HTTP (or a config file) sets the columns under other names: the message gives both
    assert "text_column / label_column in a config or a job" in str(raised.value)
    # separated by semicolons: its one column is named 'text;label' (a hostile probe), and the message says why
    path = _csv(tmp_path, "text;label\nolá;0\n")
    with pytest.raises(DatasetError, match="the file seems separated by ';'"):
        read_labelled(path, text_column="text", label_column="label")


def test_data_empty_texts_are_reported_with_their_lines(tmp_path: Path) -> None:
    path = _csv(
        tmp_path, "text,label\nbom,1\n   ,0\nruim,0\n,1\n\u200b\u00a0,1\n"
    )  # the last: invisible only
    with pytest.raises(DatasetError, match=r"3 row\(s\) have an empty text.*lines 3, 5, 6"):
        read_labelled(path, text_column="text", label_column="label")


def test_data_empty_texts_can_be_skipped_and_counted(tmp_path: Path) -> None:
    path = _csv(tmp_path, "text,label\nbom,1\n   ,0\nruim,0\n,1\n\u200b\u00a0,\n")
    data = read_labelled(path, text_column="text", label_column="label", skip_empty=True)
    assert data.texts == ["bom", "ruim"]
    assert data.labels == ["1", "0"]
    assert data.skipped_empty == (3, 5, 6)
    only_empty = _csv(tmp_path, "text,label\n ,1\n")
    with pytest.raises(DatasetError, match="no rows with a text"):
        read_labelled(only_empty, text_column="text", label_column="label", skip_empty=True)


def test_data_missing_labels_are_reported(tmp_path: Path) -> None:
    path = _csv(tmp_path, "text,label\nbom,1\nruim,\n")
    with pytest.raises(DatasetError, match="no label"):
        read_labelled(path, text_column="text", label_column="label")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("dados.txt", "bom\n", "use a .csv, .tsv or .jsonl"),
        ("dados.jsonl", '{"text": "bom", "label": 1}\n{nope\n', "line 2: not valid JSON"),
        ("dados.jsonl", '["bom", 1]\n', "JSON object per line"),
        ("dados.jsonl", '{"text": "bom", "label": 1}\n\n{"text": "mau"}\n', r"line 3: no field 'label'"),
        ("dados.jsonl", '{"text": "bom"}\n', r"has no column 'label'; its columns are 'text'"),
        ("dados.csv", "text,label\n", "has no rows"),
    ],
)
def test_data_bad_files_say_what_is_wrong(tmp_path: Path, name: str, content: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        read_labelled(_csv(tmp_path, content, name), text_column="text", label_column="label")


def test_data_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_labelled(tmp_path / "nada.csv", text_column="text", label_column="label")
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nação,1\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_labelled(path, text_column="text", label_column="label")


def test_data_texts_that_are_not_unicode_name_their_lines(tmp_path: Path) -> None:
    """JSON allows a lone surrogate escape; such a text cannot be encoded, so it is refused with its line."""
    path = tmp_path / "dados.jsonl"
    path.write_bytes(b'{"t": "bom", "l": 1}\n{"t": "ola \\ud800", "l": 0}\n{"t": "\\udcff", "l": 0}\n')
    with pytest.raises(
        DatasetError, match=r"line 2: the 't' text is not valid text \(character 4 is a lone"
    ) as info:
        read_labelled(path, text_column="t", label_column="l")
    assert info.value.extra["lines"] == [2, 3]


def test_data_single_class_and_lonely_class_are_not_trainable() -> None:
    with pytest.raises(DatasetError, match="at least two classes"):
        check_trainable(LabelledTexts(["a", "b"], ["x", "x"], "t.csv"))
    with pytest.raises(DatasetError, match="single example: 'y'"):
        check_trainable(LabelledTexts(["a", "b", "c"], ["x", "x", "y"], "t.csv"))
    assert check_trainable(LabelledTexts(["a", "b", "c", "d"], ["x", "y", "x", "y"], "t.csv")) == ["x", "y"]


def test_data_labels_that_read_the_same_are_refused_by_name(tmp_path: Path) -> None:
    """A JSONL label column holding both 1 and "1" failed after preparation with "two labels would answer with the
    same name: '0', '1'", though no names were given (a hostile probe)."""
    path = tmp_path / "d.jsonl"
    rows = [("bom", 1), ("ótimo", "1"), ("ruim", 0), ("péssimo", 0), ("legal", 1), ("chato", "0")]
    path.write_text("".join(json.dumps({"t": t, "l": label}) + "\n" for t, label in rows), encoding="utf-8")
    data = read_labelled(path, text_column="t", label_column="l")
    with pytest.raises(DatasetError, match=r"d\.jsonl: the labels 1 \(int\) and '1' \(str\) read the same"):
        check_trainable(data)


@pytest.mark.parametrize("content", ["", "\n", "\ufeff"])
def test_data_an_empty_csv_is_called_empty(tmp_path: Path, content: str) -> None:
    """It was "has no column 'text' and 'toxic'; its columns are none"."""
    path = tmp_path / "vazio.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=r"vazio\.csv is empty: a header line naming the columns"):
        read_labelled(path, text_column="text", label_column="toxic")


def test_data_unseen_labels_are_named() -> None:
    data = LabelledTexts(["a", "b"], ["pos", "talvez"], "teste.csv")
    with pytest.raises(DatasetError, match=r"never saw in training: 'talvez'.*knows 'neg', 'pos'"):
        check_known_labels(data, ["neg", "pos"])


def test_data_labels_match_as_text_across_formats() -> None:
    data = LabelledTexts(["a", "b"], ["1", "0"], "teste.csv")
    check_known_labels(data, [0, 1])
    assert label_indices(data, [0, 1]) == [1, 0]
    assert sort_labels(["b", "10", "2", "a"]) == ["2", "10", "a", "b"]


def test_data_check_columns_reads_the_header_and_leaves_other_problems_to_the_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a job's submit runs: a missing column is the reading's error; an unreadable file is not an error here
    (a PermissionError at submit was a 500)."""
    from pipelines.classifier.data import check_columns

    path = _csv(tmp_path, "text,toxic\nolá,0\n")
    with pytest.raises(DatasetError, match=r"no column 'label'"):
        check_columns(path, text_column="text", label_column="label")
    check_columns(path, text_column="text", label_column="toxic")

    def refused(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "open", refused)
    check_columns(path, text_column="text", label_column="label")
