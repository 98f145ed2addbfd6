"""Fixtures of the services tests: the CLI's environment, job backends whose worker processes every jobs test of a
session shares, and the web explorer's browser tests' home, server, browser and page."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from models.registry import Registry
from services.settings import Settings, get_settings
from tests.conftest import review_run
from tests.lm_helpers import train_tiny_lm
from tests.services.jobs_helpers import Backend, shared_backends
from tests.services.web_helpers import CHROMIUM, CHROMIUM_ARGS, evaluate, need, serve


@pytest.fixture(scope="session")
def job_backends(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Backend]]:
    """``get("local" | "celery")``: a backend with its workers, stopped at session end.

    The first call starts the workers of every backend the session's tests use, so that their imports (torch,
    gensim and spaCy, seconds of CPU each) overlap the first tests instead of waiting for a test of that backend.
    """
    used = set()
    for item in request.session.items:
        if "job_backends" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("skip"):
            callspec = getattr(item, "callspec", None)
            used.add(callspec.params.get("backend", "local") if callspec else "local")
    with shared_backends(tmp_path_factory.mktemp("job-backends")) as get:

        def get_first(name: str) -> Backend:
            backend = get(name)
            for other in sorted(used - {name}):
                get(other)
            return backend

        yield get_first


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test's settings as the CLI reads them: its PALAVRA_HOME, and no data mirror."""
    monkeypatch.setenv("PALAVRA_HOME", str(settings.home))
    monkeypatch.delenv("PALAVRA_DATA_MIRROR", raising=False)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def explorer_home(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_word2vec: Any,
    reviews_csv: dict[str, Path],
    pt_corpus_file: Path,
) -> tuple[Path, Path]:
    """(home, data root): two word-vector models, a trained classifier, a text encoder and a tiny language
    model."""
    need(CHROMIUM.is_file(), f"no browser at {CHROMIUM} (apt-get install chromium)")
    from pipelines.classifier.train import train_classifier

    root = tmp_path_factory.mktemp("explorer")
    home, data = root / "home", root / "data"
    home.mkdir()
    data.mkdir()
    registry = Registry(home)
    tiny_word2vec(registry, "word2vec")
    tiny_word2vec(registry, "word2vec")  # a second version, to move an alias between
    tiny_word2vec(registry, "fasttext")
    train_classifier(review_run(reviews_csv), registry=registry)
    evaluate(registry, "tiny-fasttext@1", root)
    from pipelines.text_encoder.build import pooling_model, register_encoder

    encoder, _ = pooling_model(registry, "tiny-word2vec@1", pooling="mean")
    register_encoder(registry, "frases", encoder, metadata={})
    train_tiny_lm(registry, pt_corpus_file, root / "lm-cache", name="conto")
    for split, path in reviews_csv.items():
        shutil.copyfile(path, data / f"{split}.csv")
    return home, data


@pytest.fixture(scope="module")
def server(explorer_home: tuple[Path, Path]) -> Iterator[str]:
    """A live ``palavra serve`` (one job worker) over :func:`explorer_home`."""
    with serve(*explorer_home) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 860}, locale="pt-BR")
    context.set_default_timeout(15_000)
    p = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    missing: list[str] = []  # a file the page asks for that the server lacks (the API's own 404s are answers)
    p.on("response", lambda r: missing.append(r.url) if r.status == 404 and "/v1/" not in r.url else None)
    p.goto(server + "/")
    p.wait_for_selector("body[data-ready='1']")
    yield p
    context.close()
    assert errors == [], errors  # no script error on the page
    assert outside == [], outside  # nothing fetched from anywhere but the server
    assert missing == [], missing  # no 404 in the browser's console (a favicon it went looking for)
