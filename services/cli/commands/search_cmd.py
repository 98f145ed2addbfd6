"""``palavra search``: the best documents of a collection for a query (vector, lexical or hybrid)."""

from __future__ import annotations

import typer

from pipelines.serving.search import parse_filter
from pipelines.serving.searcher_cache import SearcherCache
from services.cli.app import app
from services.cli.output import emit_json
from services.factories import open_collections, open_registry
from services.settings import get_settings


@app.command("search")
def search_cli(
    collection: str = typer.Argument(..., help="The collection to search."),
    query: str = typer.Argument(..., help="The query text."),
    k: int = typer.Option(10, "-k", "--k", help="How many documents."),
    mode: str = typer.Option("hybrid", "--mode", help="vector, lexical (BM25) or hybrid (both, fused)."),
    filters: list[str] = typer.Option(
        None,
        "--filter",
        help="field=value on metadata, compared as JSON: the value as JSON when it parses (ok=true, n=3, "
        "x=null, s='\"3\"'), else text (tema=conta); a document without the field never matches. Repeatable "
        "(all must match).",
    ),
) -> None:
    """Search a collection; prints JSON hits (id, score, text, metadata)."""
    settings = get_settings()
    searchers = SearcherCache(
        open_collections(settings), open_registry(settings), ann_min_docs=settings.collection_ann_min_docs
    )
    searcher = searchers.get(collection)
    hits = searcher.search(query, k=k, mode=mode, where=parse_filter(filters or []))
    emit_json({"collection": collection, "mode": mode, "hits": [h.__dict__ for h in hits]})
