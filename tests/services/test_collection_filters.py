"""Metadata filters compare JSON values (before: Python's ``str()`` of each, so ``true`` matched only "True", a
missing field matched "None", ``3`` did not match ``3.0`` and a list or an object matched nothing), and the JSONL
reader refuses what the HTTP routes refuse, naming the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.collection import CollectionStore, Document
from models.errors import DatasetError, InvalidInput
from models.registry import Registry
from pipelines.serving.search import create_collection, parse_filter, read_documents
from pipelines.serving.searcher_cache import SearcherCache
from pipelines.text_encoder.build import pooling_model, register_encoder
from services.settings import Settings
from tests.services.vector_models import register

WORDS = ["gato", "casa", "mar", "sol"]
METADATA: dict[str, dict[str, Any]] = {
    "bool-true": {"ok": True, "n": 3, "s": "3", "nulo": None, "tags": ["a"], "obj": {"a": 1}},
    "bool-false": {"ok": False, "n": 3.0, "s": "x"},
    "text-True": {"ok": "True", "n": "3", "s": 3},
    "one": {"ok": 1, "n": 3.5},
    "none": {},
}


@pytest.fixture
def searcher(settings: Settings, registry: Registry) -> Any:
    register(registry, "w2v", words=WORDS)
    model, _ = pooling_model(registry, "w2v", pooling="mean")
    register_encoder(registry, "frases", model, metadata={})
    store = CollectionStore(settings.home)
    docs = [Document(i, "o gato na casa", m) for i, m in METADATA.items()]
    create_collection(store, registry, "filtros", docs, encoder="frases")
    return SearcherCache(store, registry).get("filtros")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"ok": True}, {"bool-true"}),  # before: nothing (only "True" matched)
        ({"ok": False}, {"bool-false"}),
        ({"ok": "True"}, {"text-True", "bool-true"}),  # the text, and true (Python's spelling, sent as text)
        ({"ok": "true"}, {"bool-true"}),  # a string also matches the boolean it spells
        ({"ok": 1}, {"one"}),  # 1 is not true
        ({"n": 3}, {"bool-true", "bool-false", "text-True"}),  # 3, 3.0 and the text "3"
        ({"n": 3.0}, {"bool-true", "bool-false", "text-True"}),
        ({"n": "3"}, {"bool-true", "bool-false", "text-True"}),  # the string, and the number it spells
        ({"s": 3}, {"text-True", "bool-true"}),  # the number 3 and the text "3" (not "x")
        ({"n": 3.5}, {"one"}),
        ({"nulo": None}, {"bool-true"}),  # an explicit null only (before: every document without the field)
        ({"nulo": "None"}, set()),
        ({"falta": None}, set()),
        ({"falta": ""}, set()),
        ({"ok": True, "n": 3}, {"bool-true"}),  # all must match
        ({"ok": True, "n": 3.5}, set()),
    ],
)
def test_collection_filter_compares_json_values(
    searcher: Any, where: dict[str, Any], expected: set[str]
) -> None:
    for mode in ("vector", "lexical", "hybrid"):
        assert {h.id for h in searcher.search("gato", k=10, mode=mode, where=where)} == expected, mode


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            {"tags": ["a"]},
            "filter 'tags': a filter value is a string, number, true, false or null, not a list",
        ),
        ({"obj": {"a": 1}}, "not an object"),
        ({"n": float("nan")}, "nan is not a JSON number"),
        ({"n": float("inf")}, "inf is not a JSON number"),
    ],
)
def test_collection_filter_refuses_lists_objects_and_non_finite_numbers(
    searcher: Any, where: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match="filter '") as info:
        searcher.search("gato", where=where)
    assert message in info.value.detail


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("ok=true", True),
        ("ok=True", "True"),  # not JSON: the text
        ("nulo=null", None),
        ("nulo=None", "None"),
        ("n=3", "3"),  # a number stays text (it matches the number it spells, and the text)
        ("versao=1.10", "1.10"),  # read as a number it would lose its 0 and miss the text "1.10"
        ("n=-0", "-0"),
        ('s="3"', "3"),  # quoted: the string
        ("tema=conta", "conta"),
        ("cep=01310", "01310"),  # a leading zero is not JSON: the text
        ("x=NaN", "NaN"),  # Python's json reads NaN; JSON does not
        ("x=", ""),
        ("url=a=b", "a=b"),
    ],
)
def test_collection_parse_filter_reads_json_literals_and_quoted_strings(item: str, value: object) -> None:
    parsed = parse_filter([item])
    assert list(parsed.values()) == [value]
    assert type(next(iter(parsed.values()))) is type(value)  # true is a bool, not the int 1


def test_collection_parse_filter_refuses_a_list_or_object_value() -> None:
    with pytest.raises(InvalidInput, match=r"not a list; to match the text itself, quote it as JSON"):
        parse_filter(['tags=["a"]'])
    with pytest.raises(InvalidInput, match="not an object"):
        parse_filter(['obj={"a": 1}'])


def test_collection_parse_filter_refuses_a_field_given_twice() -> None:
    """``--filter n=2 --filter n=3`` searched for n=3 alone (the last won), though documents must match every
    filter (a hostile probe)."""
    with pytest.raises(InvalidInput, match=r"^filter field 'n' is given twice"):
        parse_filter(["n=2", " n =3"])
    assert parse_filter(["n=2", "m=3"]) == {"n": "2", "m": "3"}


def _read(path: Path, text: str) -> list[Document]:
    path.write_text(text, encoding="utf-8")
    return list(read_documents(path, text_field="text", id_field="id"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "1", "text": null}', "line 1: its text field 'text' is null, not a string"),
        ('{"id": "1", "text": ""}', "line 1: its text field 'text' is empty"),
        ('{"id": "1", "text": 5}', "line 1: its text field 'text' is a number (5), not a string"),
        ('{"id": "", "text": "a casa"}', "line 1: its id field 'id' is empty"),
        ('{"id": "  ", "text": "a casa"}', "line 1: its id field 'id' is empty"),
        ('{"id": null, "text": "a casa"}', "line 1: its id field 'id' is null, not a string"),
        ('{"id": true, "text": "a casa"}', "line 1: its id field 'id' is true, not a string"),
        ('{"id": ["a"], "text": "a casa"}', "line 1: its id field 'id' is a list, not a string"),
        ('{"id": {"a": 1}, "text": "a casa"}', "line 1: its id field 'id' is an object, not a string"),
        ('{"id": "' + "x" * 257 + '", "text": "a casa"}', "its id has 257 characters; the limit is 256"),
        ('{"id": "\\ud800", "text": "a casa"}', "its id field 'id' is not Unicode text"),
        ('{"id": "1", "text": "a casa", "x": NaN}', "line 1 holds NaN, which is not a finite number"),
        ('{"id": "1", "text": "a casa", "x": [-Infinity]}', "line 1 holds -Infinity, which is not a finite"),
        ('{"id": "1", "text": "a casa", "x": 1e999}', "line 1 holds 1e999, which is not a finite number"),
        ('{"id": "1", "texto": "a casa"}', "line 1 has no text field 'text' (fields: id, texto)"),
    ],
)
def test_collection_read_documents_names_the_line_and_what_is_wrong(
    tmp_path: Path, line: str, message: str
) -> None:
    with pytest.raises(DatasetError) as info:
        _read(tmp_path / "docs.jsonl", line + "\n")
    assert message in info.value.detail
    assert info.value.extra["line"] == 1
    if "has no text field" not in message:
        assert "has no text field" not in info.value.detail  # a field that is there is not called missing
        assert "has no id field" not in info.value.detail


def test_collection_read_documents_takes_a_numeric_id_as_its_text(tmp_path: Path) -> None:
    docs = _read(tmp_path / "n.jsonl", '{"id": 7, "text": "a casa"}\n{"id": 12.0, "text": "o gato"}\n')
    assert [d.id for d in docs] == ["7", "12.0"]  # as before: pandas writes 12.0 for a column with gaps


def test_collection_read_documents_reads_a_byte_order_mark_and_strips_ids(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    rows = [{"id": " d1 ", "text": "o gato", "ok": True}, {"id": "d2", "text": "a casa", "n": 3.0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8-sig")
    docs = list(read_documents(path, text_field="text", id_field="id"))
    assert docs == [Document("d1", "o gato", {"ok": True}), Document("d2", "a casa", {"n": 3.0})]


def test_collection_read_documents_names_a_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "1", "text": "a casa"}\n{"id": "2", "text": "a a\xe7\xe3o"}\n')
    with pytest.raises(DatasetError, match=r"line 2 is not UTF-8 text \(byte 0xE7"):
        list(read_documents(path, text_field="text", id_field="id"))
