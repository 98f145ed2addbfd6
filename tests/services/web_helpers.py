"""What the browser tests of the web explorer share: where chromium and axe-core are, the mini evaluation sets the
served models are scored on, and the screenshots each test saves."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.registry import Registry
from tests.conftest import REPO_ROOT
from tests.services.jobs_helpers import free_port
from tests.services.vector_models import wait_ready

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO_ROOT / "runs" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "runs" / "screenshots"
DOCS_IMAGES = REPO_ROOT / "docs" / "img"
KEY = "chave-do-navegador"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def need(ok: bool, reason: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser tests: .ci/run installs it)")
    pytest.skip(reason)


_ANALOGIES = """: familia
rei rainha homem mulher
príncipe princesa menino menina
médico médica homem mulher
: gram-lugares
rei reino médico hospital
príncipe castelo menino escola
"""
_PAIRS = "rei\trainha\t9.0\nrei\treino\t7.5\ncão\tgato\t8.0\nescola\tchuva\t1.0\nhospital\tmédico\t7.0\n"


def evaluate(registry: Registry, ref: str, folder: Path) -> None:
    """Evaluate a registered model on a few analogies and word pairs and record the metrics, as training does."""
    from models.vectors import WordVectors
    from pipelines.evaluation import evaluate_embeddings as ev

    (folder / "analogias.txt").write_text(_ANALOGIES, encoding="utf-8")
    (folder / "pares.tsv").write_text(_PAIRS, encoding="utf-8")
    sets = ev.EvaluationSets(
        analogies={"mini-analogias": ev.read_analogies(folder / "analogias.txt")},
        pairs={"mini-pares": ev.read_word_pairs(folder / "pares.tsv")},
    )
    metrics = ev.evaluate_sets(WordVectors.load(registry.open(ref)), sets)
    registry.annotate(ref, {"metrics": metrics})


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
    if os.environ.get("PALAVRA_WEB_DOCS_IMAGES"):
        from PIL import Image

        # README images: the same picture in a 256-colour palette (a third of the bytes, no visible change)
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        with Image.open(SCREENSHOTS / f"{name}.png") as shot:
            shot.convert("RGB").quantize(colors=256).save(DOCS_IMAGES / f"web-{name}.png", optimize=True)


@contextlib.contextmanager
def serve(home: Path, data: Path, **settings: str) -> Iterator[str]:
    """A live ``palavra serve`` (one job worker) over ``home``, with ``settings`` added to its environment."""
    port = free_port()
    env = {
        **os.environ,
        "PALAVRA_HOME": str(home),
        "PALAVRA_DATA_ROOT": str(data),
        "PALAVRA_API_KEYS": KEY,
        "PALAVRA_LOCAL_WORKERS": "1",
        "PALAVRA_MODEL_REFRESH_S": "0.5",
        **settings,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
