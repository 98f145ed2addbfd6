"""The web explorer in Debian's chromium: first paint of ``/`` and the time from pressing Enter on a known word to
its k=50 neighbour map drawn.

    PALAVRA_ANN_MIN_VOCAB=100000000 .venv/bin/python benchmarks/web_bench.py [--runs 20] [--vocab 100000]
    .venv/bin/python benchmarks/web_bench.py --home PALAVRA_HOME --model NAME --words rei casa ...

Without ``--home`` it registers a 100,000-word x 100-dimension vector model in a temporary home (random vectors:
the search costs the same as with trained ones) and serves it with ``palavra serve``; with
``PALAVRA_ANN_MIN_VOCAB`` above the vocabulary it is searched exactly (no index or neighbour table to build first,
and the slowest search path). First paint is measured in a
fresh browser context each run (empty cache); the map time from the Enter keydown in the page to the first
animation frame after the map's points are in the document, over different words each run.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

# in the page: the time from Enter on #word to the frame after the map event
_MAP_PROBE = """
window.__maps = [];
document.querySelector('#word').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') window.__t0 = performance.now();
}, true);
document.addEventListener('palavra:map', () => {
  requestAnimationFrame(() => setTimeout(() => window.__maps.push(performance.now() - window.__t0), 0));
});
"""


def _home_with_model(folder: Path, vocab: int, dim: int) -> tuple[Path, list[str]]:
    sys.path.insert(0, str(ROOT))
    from models.vectors import WordVectors, save
    from pipelines.text.normalize import NormalizeConfig
    from services.factories import open_registry
    from services.settings import Settings

    words = [f"palavra{i:06d}" for i in range(vocab)]
    rnd = np.random.default_rng(0)
    home = folder / "home"
    home.mkdir(parents=True)
    # registered as `palavra` does: vocabularies past PALAVRA_ANN_MIN_VOCAB get their index and neighbour table now
    registry = open_registry(Settings(home=home))
    started = time.perf_counter()
    with registry.create("bench", "word2vec", aliases=("latest", "production")) as w:
        vectors = WordVectors(words, rnd.normal(size=(vocab, dim)).astype(np.float32))
        save(w, vectors, normalize=NormalizeConfig().model_dump(mode="json"))
    print(f"registered {vocab} x {dim} in {time.perf_counter() - started:.0f} s", flush=True)
    return home, words


def _serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PALAVRA_HOME": str(home), "PALAVRA_LOCAL_WORKERS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("palavra serve did not become ready")


def _summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return (
        f"{name}: median {statistics.median(values):.0f} ms, p90 {p90:.0f} ms, "
        f"min {values[0]:.0f} ms, max {values[-1]:.0f} ms (n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="an existing PALAVRA_HOME to serve instead")
    parser.add_argument("--model", default="bench", help="the word-vector model to explore")
    parser.add_argument("--words", nargs="*", help="known words to type (default: the model's first ones)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vocab", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=100)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        if args.home:
            home, words = args.home, list(args.words or [])
        else:
            home, vocab = _home_with_model(Path(tmp), args.vocab, args.dim)
            words = list(args.words or vocab[1 : args.runs + 1])
        if not words:
            raise SystemExit("give --words to type with --home")
        proc, url = _serve(home)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                paints = []
                for _ in range(args.runs):
                    context = browser.new_context()
                    page = context.new_page()
                    page.goto(url + "/")
                    page.wait_for_function(
                        "performance.getEntriesByName('first-contentful-paint').length > 0"
                    )
                    paints.append(
                        page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
                    )
                    context.close()
                page = browser.new_page()
                page.goto(url + "/")
                page.wait_for_selector("body[data-ready='1']")
                page.evaluate(_MAP_PROBE)
                page.select_option("#words-model", args.model)
                page.fill("#k", "50")
                for i, word in enumerate(words[: args.runs]):
                    page.fill("#word", word)
                    page.press("#word", "Enter")
                    page.wait_for_function(f"window.__maps.length > {i}")
                    if page.locator("#map .pt").count() != 51:
                        raise SystemExit(f"the map of {word!r} does not hold the word and 50 neighbours")
                maps = page.evaluate("window.__maps")
                browser.close()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    print(
        f"model: {args.model} ({'given home' if args.home else f'{args.vocab} x {args.dim} random vectors'})"
    )
    print(_summary("first contentful paint of /", paints))
    print(_summary("Enter on a known word -> k=50 map drawn", maps))


if __name__ == "__main__":
    main()
