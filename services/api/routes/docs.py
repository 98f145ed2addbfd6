"""``GET /docs`` (Swagger UI) and ``GET /redoc`` (ReDoc), with every asset served by palavra itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they stay blank on a machine without internet. The
assets here come from the ``fastapi-offline`` package (Swagger UI's bundle and CSS, ReDoc's standalone bundle, a
favicon), are mounted under :data:`ASSETS_PATH`, and the pages link them by server-relative URL.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

ASSETS_PATH = "/docs-assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def assets_dir() -> Path:
    """The folder of the packaged Swagger UI / ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def _asset(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"


def _openapi_url(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}{request.app.openapi_url}"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset(request, "swagger-ui.css"),
        swagger_favicon_url=_asset(request, "favicon.png"),
        oauth2_redirect_url=f"{request.scope.get('root_path', '')}{OAUTH2_REDIRECT_PATH}",
        # the validator badge would ask validator.swagger.io about the schema
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_PATH)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=_asset(request, "redoc.standalone.js"),
        redoc_favicon_url=_asset(request, "favicon.png"),
        with_google_fonts=False,
    )


def install_docs(app: FastAPI, *, extra_schemas: tuple[type[BaseModel], ...] = ()) -> None:
    """Serve the documentation pages and their assets; the app must be built with ``docs_url=None, redoc_url=None``.

    Args:
        extra_schemas: request models that routes reference by hand (``openapi_extra``) rather than through a
            parameter; they are added to the document's components so that every ``$ref`` resolves (ReDoc refuses
            to render a document with one that does not).
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")
    app.include_router(router)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in extra_schemas:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in schema.pop("$defs", {}).items():
                    schemas.setdefault(name, definition)
                schemas.setdefault(model.__name__, schema)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
