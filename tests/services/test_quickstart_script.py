"""`make quickstart PORT=N`: the port is checked before minutes of fetching and training (a newcomer's run found a
busy port failing only when the server started, at the end)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services.jobs_helpers import REPO_ROOT


def _quickstart(port: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PALAVRA_HOME": str(home)}
    env.pop("PORT", None)
    # -o: the install step counts as done (the suite runs from an installed .venv), so only the script runs
    return subprocess.run(
        ["make", "-s", "-o", ".venv/bin/palavra", "quickstart", f"PORT={port}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_quickstart_refuses_a_busy_port_before_fetching_or_training(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = _quickstart(str(port), tmp_path / "home")
    assert run.returncode != 0
    assert run.stdout == ""  # not even the first step's heading
    assert run.stderr.splitlines()[0] == (
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use): another process listens there; stop "
        f"it or choose another PORT (e.g. PORT={port + 1})"
    )
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("port", ["abc", "0", "70000", "-1"])
def test_quickstart_refuses_a_port_that_is_not_a_number(tmp_path: Path, port: str) -> None:
    run = _quickstart(port, tmp_path / "home")
    assert run.returncode != 0
    assert run.stdout == ""
    assert run.stderr.splitlines()[0] == (
        f"error: PORT={port!r} is not a port number (1-65535); e.g. make quickstart PORT=8001"
    )
    assert not (tmp_path / "home").exists()


def test_quickstart_run_again_serves_the_new_version_of_both_models(tmp_path: Path) -> None:
    """A second `make quickstart` trained version 2 of both models but moved only the vectors' production alias:
    the server answered with new vectors and the old classifier (a newcomer's run)."""
    bin_dir = tmp_path / "meu bin"  # a folder with a space: BIN is quoted
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    # records its arguments; a training answers as a second run's would (version 2)
    stub = bin_dir / "palavra"
    stub.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'if [ "$1" = train ]; then\n'
        '  name=$(echo "$*" | sed -e "s/.*--name \\([^ ]*\\).*/\\1/")\n'
        '  echo "{\\"model\\": \\"$name@2\\"}"\n'
        "fi\n"
        'if [ "$1" = neighbors ]; then echo \'{"word": "x", "neighbors": []}\'; fi\n',
        encoding="utf-8",
    )
    stub.chmod(0o755)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    (bin_dir / "python").chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "BIN": str(bin_dir), "PORT": str(port), "PALAVRA_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        ["bash", "scripts/quickstart.sh"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    made = calls.read_text(encoding="utf-8").splitlines()
    assert "models alias pt-vetores production 2" in made
    assert "models alias toxicidade production 2" in made
    assert made[-1] == f"serve --host 127.0.0.1 --port {port}"
