"""The API documentation pages work offline: every asset they load is served by palavra itself."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.settings import Settings

# every URL a page loads: src/href attributes, and the spec URL handed to the UI's script
_URLS = re.compile(
    r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']|spec-url=["']([^"']+)["']"""
)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_pages_load_every_asset_from_the_server(settings: Settings, page: str) -> None:
    client = TestClient(create_app(settings))
    r = client.get(page)
    assert r.status_code == 200
    html = r.text
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, flags=re.IGNORECASE), html
    urls = [next(u for u in groups if u) for groups in _URLS.findall(html)]
    assert any(u.endswith(".js") for u in urls), urls
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), url
        served = client.get(url)
        assert served.status_code == 200, url
        assert served.content, url
    # the assets are counted under their mount, not as "unmatched" (the label of paths no route knows)
    with TestClient(create_app(settings)) as started:  # /metrics needs the app's lifespan
        started.get(urls[0] if urls[0].startswith("/docs-assets/") else "/docs-assets/swagger-ui.css")
        metrics = started.get("/metrics").text
    assert 'route="/docs-assets/{path}",status="200"' in metrics
    assert 'route="unmatched",status="200"' not in metrics


def test_api_openapi_document_has_every_schema_it_references(settings: Settings) -> None:
    """ReDoc refuses to render a document with a dangling ``$ref`` ("Invalid reference token")."""
    document = TestClient(create_app(settings)).get("/openapi.json").json()
    text = json.dumps(document)
    referenced = set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text))
    assert "JobRequest" in referenced
    assert referenced <= set(document["components"]["schemas"])
