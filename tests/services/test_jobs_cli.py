"""``palavra jobs submit|list|show|cancel`` and ``palavra worker``: JSON on stdout, one-line errors, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.jobs.local import LocalWorkerPool
from services.settings import Settings, get_settings
from tests.conftest import REPO_ROOT
from tests.services.cli_helpers import run
from tests.services.jobs_helpers import (
    HTTP_TIMEOUT_S,
    Backend,
    api_healthy,
    free_port,
    job_settings,
    pid_alive,
    settings_env,
    wait_until,
    word2vec_config,
    write_corpus,
)

TOML = """
name = "pela-linha"
corpus = ["frases.txt"]
evaluate = false
[train]
algorithm = "word2vec"
min_count = 1
epochs = 2
"""


@pytest.fixture
def cli_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    settings = job_settings(tmp_path, backend="local")
    for key, value in settings_env(settings).items():
        if key.startswith("PALAVRA_"):
            monkeypatch.setenv(key, value)
    write_corpus(settings, "frases.txt", 200)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@pytest.fixture
def worker_settings(
    job_backends: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Like ``cli_settings``, on the session's local backend, whose worker processes are running."""
    backend = job_backends("local")
    backend.ensure_workers(1)
    for key, value in settings_env(backend.settings).items():
        if key.startswith("PALAVRA_"):
            monkeypatch.setenv(key, value)
    write_corpus(backend.settings, "frases.txt", 200)
    get_settings.cache_clear()
    yield backend.settings
    get_settings.cache_clear()


def test_jobs_cli_submit_list_show_cancel(
    cli_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(TOML, encoding="utf-8")
    code, out, _ = run(["jobs", "submit", "word2vec", "--config", str(config)], capsys)
    assert code == 0
    job = json.loads(out)
    assert job["state"] == "queued"
    code, out, _ = run(["jobs", "list", "--state", "queued"], capsys)
    assert code == 0
    assert job["id"] in out
    code, out, _ = run(["jobs", "show", job["id"]], capsys)
    assert json.loads(out)["config"]["name"] == "pela-linha"
    code, out, _ = run(["jobs", "cancel", job["id"]], capsys)
    assert json.loads(out) == {"id": job["id"], "state": "cancelled"}
    code, _, err = run(["jobs", "cancel", job["id"]], capsys)
    assert code == 2
    assert err.strip() == f"error: job {job['id']} already cancelled; there is nothing to cancel"


def test_jobs_cli_submit_wait_follows_the_job_to_its_model(
    worker_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(TOML, encoding="utf-8")
    code, out, err = run(["jobs", "submit", "word2vec", "--config", str(config), "--wait"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["state"] == "succeeded"
    assert result["model"]["ref"] == "pela-linha@1"
    assert "waiting" in err


def _descendants(pid: int) -> list[int]:
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [grand for child in children for grand in (child, *_descendants(child))]


def test_jobs_pool_starts_again_a_worker_that_dies(
    cli_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    config = tmp_path / "run.toml"
    config.write_text(TOML, encoding="utf-8")
    nice = 7
    with LocalWorkerPool(cli_settings, 1, nice=nice, check_s=0.2, restart_s=0.5) as pool:
        first = pool.processes[0]
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)  # as the kernel's OOM killer would
        wait_until(
            lambda: pool.processes[0] is not first and pool.processes[0].is_alive(),
            timeout=30,
            what="a new worker in the dead one's place",
        )
        assert pool.restarts == 1
        assert first.exitcode == -signal.SIGKILL  # reaped, not left a zombie
        code, out, err = run(["jobs", "submit", "word2vec", "--config", str(config), "--wait"], capsys)
        assert code == 0, err
        assert json.loads(out)["state"] == "succeeded"  # queued jobs still have a worker
        second = pool.processes[0]
        assert second.pid is not None
        # the worker, and the forkserver its jobs are forked from, run below the API's priority (a restarted one too)
        expected = min(os.getpriority(os.PRIO_PROCESS, 0) + nice, 19)
        tree = [second.pid, *_descendants(second.pid)]
        assert len(tree) >= 2, tree  # the forkserver started for the job
        assert {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in tree} == dict.fromkeys(tree, expected)
        second.terminate()  # a requested stop (Ctrl-C reaches every process of the group): exit 0, no restart
        second.join(30)
        assert second.exitcode == 0
        assert pool.wait_rounds(2, timeout_s=30)  # a whole round saw it stopped
        assert pool.processes[0] is second
        assert pool.restarts == 1
    assert pool.processes == []


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["jobs", "submit", "fasttext", "--config", "{config}"], "unknown job kind 'fasttext'"),
        (["jobs", "submit", "word2vec", "--config", "{missing}"], "does not exist"),
        (["jobs", "list", "--state", "perdido"], "unknown state 'perdido'"),
        (["jobs", "list", "--kind", "foo"], "unknown job kind 'foo'"),
        (["jobs", "show", "nada"], "no job with id 'nada'"),
        (["worker", "--backend", "kafka"], "unknown --backend 'kafka'"),
    ],
)
def test_jobs_cli_bad_input_is_one_line_and_exit_2(
    cli_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(TOML, encoding="utf-8")
    argv = [a.format(config=config, missing=tmp_path / "nada.toml") for a in argv]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("error: ")
    assert fragment in err
    assert len(err.strip().splitlines()) == 1


def test_jobs_serve_alone_runs_jobs_in_its_local_workers(tmp_path: Path) -> None:
    settings = job_settings(tmp_path, backend="local", local_workers=1, api_keys=["segredo"])
    corpus = write_corpus(settings, "frases.txt", 200)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=settings_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: api_healthy(url), timeout=60, what="palavra serve to answer")
        r = httpx.post(
            f"{url}/v1/jobs",
            json={"kind": "word2vec", "config": word2vec_config("servido", corpus)},
            headers={"Authorization": "Bearer segredo"},
            timeout=HTTP_TIMEOUT_S,
        )
        assert r.status_code == 202
        job = wait_until(
            lambda: (
                (j := httpx.get(f"{url}{r.json()['url']}", timeout=HTTP_TIMEOUT_S).json())["state"]
                in ("succeeded", "failed")
                and j
            ),
            timeout=120,
            what="the job to end",
        )
        assert job["state"] == "succeeded", job
        worker_pid = int(job["worker"].rsplit(":", 1)[1])
        assert job["worker"].startswith("local@")
        assert worker_pid != serve.pid
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=30)
    wait_until(lambda: not pid_alive(worker_pid), timeout=20, what="the local worker to stop with serve")
