"""docker-compose.yml against palavra itself: its commands exist, its variables are settings, and the commands it
names for the API and the workers run a job against the real local Redis and PostgreSQL (no Docker engine here).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml

from services.cli.app import app
from services.cli.commands import load_commands
from services.settings import Settings
from tests.conftest import REDIS_URL, REPO_ROOT
from tests.services.jobs_helpers import (
    HTTP_TIMEOUT_S,
    api_healthy,
    forget_queue,
    free_port,
    postgres_database,
    wait_until,
    word2vec_config,
    write_corpus,
)

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
PALAVRA_SERVICES = ("api", "worker")
SETTINGS_VARS = {f"PALAVRA_{name.upper()}" for name in Settings.model_fields}
KEY = "chave-de-teste"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def parse_cli(argv: list[str]) -> tuple[Any, dict[str, Any]]:
    """The palavra command ``argv`` names and its parsed options; raises if either does not exist."""
    assert argv[0] == "palavra", f"{argv}: services run the palavra console script"
    load_commands()  # every command: this checks names, not what one process would import
    command: Any = typer.main.get_command(app)
    args = argv[1:]
    name = "palavra"
    while hasattr(command, "commands"):  # a group: descend into the named subcommand
        sub = command.get_command(command.make_context(name, [], resilient_parsing=True), args[0])
        assert sub is not None, f"`palavra {args[0]}` is not a command"
        name, command, args = args[0], sub, args[1:]
    ctx = command.make_context(name, list(args))  # unknown options or bad values raise here
    return command, ctx.params


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if name in variables:
            return variables[name]
        if op == ":?":
            raise AssertionError(f"compose needs ${name}: {arg}")
        return arg

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_compose_has_the_services_volumes_and_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"api", "worker", "redis", "postgres"}
    for name, service in services.items():
        assert "test" in service["healthcheck"], f"{name} has no health check"
    worker = services["worker"]
    assert "container_name" not in worker  # --scale worker=N needs generated names
    assert "ports" not in worker
    # API and workers share the artifact and job-input volumes at the same paths, and the same settings
    assert services["api"]["volumes"] == worker["volumes"]
    assert {v.split(":")[0] for v in worker["volumes"]} <= set(compose["volumes"])
    assert services["api"]["environment"] == worker["environment"]
    assert worker["environment"]["PALAVRA_JOB_BACKEND"] == "celery"


@pytest.mark.parametrize("service", PALAVRA_SERVICES)
def test_compose_commands_exist_in_the_palavra_cli(compose: dict[str, Any], service: str) -> None:
    command, params = parse_cli(compose["services"][service]["command"])
    assert command.name == {"api": "serve", "worker": "worker"}[service]
    if service == "worker":
        assert params["backend"] == "celery"


def test_compose_rejects_what_the_cli_does_not_know() -> None:
    with pytest.raises(Exception, match="No such option: --queue"):
        parse_cli(["palavra", "worker", "--queue", "x"])
    with pytest.raises(AssertionError, match="not a command"):
        parse_cli(["palavra", "celery-worker"])


@pytest.mark.parametrize("service", PALAVRA_SERVICES)
def test_compose_environment_is_palavra_settings(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env: dict[str, str] = compose["services"][service]["environment"]
    unknown = set(env) - SETTINGS_VARS
    assert not unknown, f"{service} sets variables palavra does not read: {sorted(unknown)}"
    for key in list(os.environ):
        if key.startswith("PALAVRA_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, interpolate(str(value), {"PALAVRA_API_KEYS": KEY}))
    settings = Settings()  # every value validates
    assert settings.job_backend == "celery"
    assert settings.api_keys == [KEY]
    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql+psycopg://")


def test_dockerfile_sets_only_palavra_settings() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    names = set(re.findall(r"\b(PALAVRA_[A-Z0-9_]+)=", text))
    assert names
    assert names <= SETTINGS_VARS
    cmd = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert cmd is not None
    parse_cli(yaml.safe_load(cmd.group(1)))


# -- the same commands against the real local services -----------------------------------------------------------
def _local_env(compose_env: dict[str, str], *, root: Path, database_url: str, queue: str) -> dict[str, str]:
    """Compose's environment with its hosts and volumes pointed at loopback services and temporary folders."""
    local = {
        "PALAVRA_HOME": str(root / "home"),
        "PALAVRA_DATA_ROOT": str(root / "data"),
        "PALAVRA_DATABASE_URL": database_url,
        "PALAVRA_BROKER_URL": REDIS_URL,
        "PALAVRA_JOB_QUEUE": queue,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALAVRA_")}
    for key, value in compose_env.items():
        env[key] = local.get(key, interpolate(str(value), {"PALAVRA_API_KEYS": KEY}))
    return env


def _with_option(argv: list[str], option: str, value: str) -> list[str]:
    i = argv.index(option)
    return [*argv[: i + 1], value, *argv[i + 2 :]]


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", *argv[1:]],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(timeout=30)


@pytest.fixture
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.mark.services
def test_compose_commands_run_jobs_on_real_services_and_an_api_restart_loses_none(
    compose: dict[str, Any], tmp_path: Path, database_url: str
) -> None:
    services = compose["services"]
    queue = f"palavra-compose-{uuid.uuid4().hex[:10]}"
    env = _local_env(services["api"]["environment"], root=tmp_path, database_url=database_url, queue=queue)
    port = free_port()
    api_argv = _with_option(
        _with_option(services["api"]["command"], "--port", str(port)), "--host", "127.0.0.1"
    )
    alive = tmp_path / "worker.alive"
    worker_argv = _with_option(services["worker"]["command"], "--alive-file", str(alive))
    url = f"http://127.0.0.1:{port}"
    settings = Settings(home=tmp_path / "home", data_root=tmp_path / "data", job_queue=queue)
    settings.effective_data_root.mkdir(parents=True)
    corpus = write_corpus(settings, "frases.txt", 200)
    headers = {"Authorization": f"Bearer {KEY}"}

    api = _start(api_argv, env, tmp_path / "api.log")
    worker = None
    try:
        wait_until(lambda: api_healthy(url), timeout=60, what="the API to answer")
        ids = []
        for i in range(3):  # no worker yet: they wait in Redis
            r = httpx.post(
                f"{url}/v1/jobs",
                json={"kind": "word2vec", "config": word2vec_config(f"c{i}", corpus)},
                headers=headers,
                timeout=HTTP_TIMEOUT_S,
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        _stop(api, signal.SIGKILL)  # the API dies with jobs queued
        api = _start(api_argv, env, tmp_path / "api.log")
        wait_until(lambda: api_healthy(url), timeout=60, what="the restarted API to answer")
        worker = _start(worker_argv, env, tmp_path / "worker.log")
        states = wait_until(
            lambda: (
                (s := [httpx.get(f"{url}/v1/jobs/{i}", timeout=HTTP_TIMEOUT_S).json()["state"] for i in ids])
                and all(x in ("succeeded", "failed", "cancelled") for x in s)
                and s
            ),
            timeout=120,
            every=0.5,
            what="the queued jobs to finish",
        )
        assert states == ["succeeded"] * 3, (tmp_path / "worker.log").read_text()
        models = sorted(
            httpx.get(f"{url}/v1/jobs/{i}", timeout=HTTP_TIMEOUT_S).json()["model"]["ref"] for i in ids
        )
        assert models == ["c0@1", "c1@1", "c2@1"]
        assert time.time() - alive.stat().st_mtime < 30  # the worker's health check passes
    finally:
        if worker is not None:
            _stop(worker)
        _stop(api)
        forget_queue(settings)
    assert not alive.exists()  # removed on a clean stop
