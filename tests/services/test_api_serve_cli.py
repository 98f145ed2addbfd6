from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from models.registry import Registry
from services.settings import Settings
from tests.conftest import REPO_ROOT
from tests.services.jobs_helpers import free_port
from tests.services.vector_models import register, wait_ready


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "0"],
        ["--port", "70000"],
        ["--log-level", "loud"],
        ["--host", "a" * 70 + ".example"],  # the IDNA codec's error was a traceback (a review)
    ],
)
def test_api_serve_rejects_bad_options(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "serve", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:")


def _serve_until_it_stops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``palavra serve`` run to its end: a serve that is refused stops at once (120 s is a server that started)."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "serve", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )


def test_api_serve_refuses_a_busy_port_in_one_line_before_starting_anything(tmp_path: Path) -> None:
    """uvicorn found a busy port only after its startup (and after the job workers had started), and said so in
    its own log lines; the command now stops first, in one line naming the port."""
    home = tmp_path / "home"
    env = {**os.environ, "PALAVRA_HOME": str(home), "PALAVRA_LOCAL_WORKERS": "1"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _serve_until_it_stops(env, "--port", str(port), "--workers", "2")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use): another process listens there; "
        f"stop it or choose another --port (e.g. --port={port + 1})"
    ]
    assert "INFO" not in proc.stderr
    assert not (home / "registry.db").exists()  # nothing started: no job worker opened the registry


def test_api_serve_runs_two_workers_that_answer(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    port = free_port()
    env = {
        **os.environ,
        "PALAVRA_HOME": str(settings.home),
        "PALAVRA_MODEL_REFRESH_S": "0.2",
        "PALAVRA_LOCAL_WORKERS": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "serve", "--port", str(port), "--workers", "2"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(proc, url, timeout_s=180)  # two cold interpreters on a loaded 2-core machine
        r = httpx.get(f"{url}/v1/neighbors", params={"word": "Rei", "k": 2}, timeout=5)
        assert r.status_code == 200
        assert r.headers["x-palavra-model"] == "w2v@1"
        register(registry, "w2v", seed=3, aliases=("latest", "production"))
        seen: set[str] = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and seen != {"w2v@2"}:
            seen = {
                httpx.get(f"{url}/v1/neighbors", params={"word": "rei"}, timeout=5).headers["x-palavra-model"]
                for _ in range(8)
            }
        assert seen == {"w2v@2"}  # both workers swapped
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert "palavra_http_requests_total" in metrics
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.stderr is not None
    # the start log says how many keys of each scope were read (docs/http.md); the CLI's own log showed none
    assert (
        "INFO:     API keys: 0 with the write scope, 0 read-only (reads are open)"
        in proc.stderr.read().decode()
    )


def test_api_serve_refuses_protected_reads_with_no_key(tmp_path: Path) -> None:
    """An empty keys file with PALAVRA_PROTECT_READS started a server that answered 401 to every read, though no
    key could be valid, and logged nothing."""
    keys = tmp_path / "keys"
    keys.write_text("# no key yet\n", encoding="utf-8")
    keys.chmod(0o600)
    env = {
        **os.environ,
        "PALAVRA_HOME": str(tmp_path / "home"),
        "PALAVRA_API_KEYS_FILE": str(keys),
        "PALAVRA_PROTECT_READS": "true",
    }
    proc = _serve_until_it_stops(env, "--port", str(free_port()))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: PALAVRA_PROTECT_READS=true but no API key is configured")


def test_api_serve_cli_starts_without_training_libraries() -> None:
    """`palavra serve` (and every command) starts without torch or scikit-learn: a supervisor process holding them
    would cost ~170 MB of private memory doing nothing, and every command would take seconds to start."""
    script = (
        "import sys, json\n"
        "import services.cli.main\n"
        "print(json.dumps(sorted(m for m in ('torch', 'sklearn', 'gensim', 'spacy') if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
