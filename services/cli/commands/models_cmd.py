"""``palavra models list|show|alias``: read and move what the registry holds."""

from __future__ import annotations

import typer

from models.references import KINDS
from services.cli.app import models_app
from services.cli.output import emit_json, table
from services.factories import open_registry
from services.settings import get_settings
from services.timestamps import public_metadata


@models_app.command("list")
def list_models(
    kind: str | None = typer.Option(None, help=f"Only models of this kind ({', '.join(KINDS)})."),
) -> None:
    """List registered models: newest version and aliases of each."""
    registry = open_registry(get_settings())
    rows = [
        {
            "name": mv.name,
            "kind": mv.kind,
            "latest": mv.version,
            "aliases": ",".join(
                f"{alias}={version}"
                for (name, alias), version in sorted(registry.alias_map().items())
                if name == mv.name
            ),
            "created": mv.created_at.strftime("%Y-%m-%d %H:%M"),
        }
        for mv in registry.list(kind=kind)
    ]
    table(rows, ["name", "kind", "latest", "aliases", "created"])


@models_app.command("show")
def show_model(ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS.")) -> None:
    """Print one version's metadata as JSON."""
    mv = open_registry(get_settings()).get(ref)
    emit_json(
        {
            "name": mv.name,
            "version": mv.version,
            "kind": mv.kind,
            "aliases": list(mv.aliases),
            "path": str(mv.path),
            "metadata": public_metadata(mv.metadata, mv.created_at),
        }
    )


@models_app.command("alias")
def set_alias(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias to move, e.g. production."),
    version: int | None = typer.Argument(None, help="Version the alias should point at."),
    delete: bool = typer.Option(
        False, "--delete", help="Remove the alias instead (not production or latest)."
    ),
) -> None:
    """Point NAME@ALIAS at VERSION, or remove it with --delete (serving workers follow within seconds)."""
    registry = open_registry(get_settings())
    if delete:
        if version is not None:
            raise typer.BadParameter("--delete takes no version", param_hint="VERSION")
        previous = registry.delete_alias(name, alias)
        emit_json({"name": name, "alias": alias, "deleted": True, "previous": previous})
        return
    if version is None:
        raise typer.BadParameter(
            "give the version the alias should point at (or --delete)", param_hint="VERSION"
        )
    mv = registry.set_alias(name, alias, version)
    emit_json({"name": mv.name, "alias": alias, "version": mv.version})
