"""``palavra collection create|add|delete|list``: document collections encoded by a registered text encoder."""

from __future__ import annotations

from pathlib import Path

import typer
from tqdm import tqdm

from models.collection import check_name
from models.errors import CollectionNotFound, DatasetError, IntegrityError
from pipelines.serving.search import add_documents, create_collection, delete_documents, read_documents
from services.cli.app import collection_app
from services.cli.output import emit_json, table, warn
from services.factories import open_collections, open_registry
from services.settings import get_settings


def _source(path: Path) -> Path:
    if not path.is_file():
        raise DatasetError(f"{path} is not a file; give a JSONL file with one document a line")
    return path


@collection_app.command("create")
def create_cli(
    name: str = typer.Argument(..., help="The collection's name."),
    source: Path = typer.Option(..., "--from", help="JSONL file, one document a line."),
    encoder: str = typer.Option(
        ..., "--encoder", help="A registered encoder (NAME, NAME@VERSION, NAME@ALIAS)."
    ),
    text_field: str = typer.Option("text", "--text-field", help="The field holding each document's text."),
    id_field: str = typer.Option("id", "--id-field", help="The field holding each document's unique id."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Encode every document of a JSONL file into a new collection (other fields are kept as metadata)."""
    settings = get_settings()
    check_name(name)  # before a progress bar is drawn: a bad name is one line, with nothing above it
    docs = read_documents(_source(source), text_field=text_field, id_field=id_field)
    with tqdm(unit=" docs", disable=quiet, desc=name) as bar:
        info = create_collection(
            open_collections(settings),
            open_registry(settings),
            name,
            docs,
            encoder=encoder,
            text_field=text_field,
            id_field=id_field,
            on_batch=bar.update,
            ann_min_docs=settings.collection_ann_min_docs,
        )
    emit_json(info)


@collection_app.command("add")
def add_cli(
    name: str = typer.Argument(..., help="The collection."),
    source: Path = typer.Option(..., "--from", help="JSONL file of new documents."),
) -> None:
    """Add documents (with new ids) to a collection, using the fields it was created with."""
    settings = get_settings()
    store = open_collections(settings)
    info = store.info(name)
    fields = {
        "text_field": info.get("text_field", "text"),
        "id_field": info.get("id_field", "id"),
    }  # create's defaults
    docs = list(read_documents(_source(source), **fields, collection=name))
    min_docs = settings.collection_ann_min_docs
    emit_json(add_documents(store, open_registry(settings), name, docs, ann_min_docs=min_docs))


@collection_app.command("remove")
def remove_cli(
    name: str = typer.Argument(..., help="The collection to remove, with all its documents."),
) -> None:
    """Remove a whole collection (a damaged one too); `collection delete` removes documents from one."""
    info = open_collections(get_settings()).remove(name)
    emit_json({"name": name, "removed": True, "documents": None if info is None else info["documents"]})


@collection_app.command("delete")
def delete_cli(
    name: str = typer.Argument(..., help="The collection."),
    ids: list[str] = typer.Argument(..., help="Ids of the documents to remove."),
) -> None:
    """Remove documents by id."""
    settings = get_settings()
    emit_json(
        delete_documents(open_collections(settings), name, ids, ann_min_docs=settings.collection_ann_min_docs)
    )


@collection_app.command("list")
def list_cli() -> None:
    """Every collection with its encoder and size (a damaged one is named on stderr)."""
    store = open_collections(get_settings())
    rows = []
    for name in store.names():
        try:
            rows.append(store.info(name))
        except IntegrityError as exc:
            warn(f"error: {exc.detail}")
        except CollectionNotFound:  # removed since it was listed
            continue
    table(rows, ["name", "documents", "encoder", "updated_at"])
