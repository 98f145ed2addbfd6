"""API key scopes: read and write keys from the environment or a keys file, kept as digests, never logged."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path

import pytest

from models.errors import InvalidConfig
from models.registry import Registry
from services.api.keys import KeyRing
from services.cli.main import main
from services.settings import Settings, get_settings
from tests.services.vector_models import register, serving

WRITE = "escrita-4f1c9a7e2b"
READ = "leitura-8d3e6b0a51"
FILE_WRITE = "arquivo-escrita-77a2c1"
FILE_READ = "arquivo-leitura-19be04"
HASHED_ENV = "so-o-hash-no-ambiente-5c"
ALL_KEYS = [WRITE, READ, FILE_WRITE, FILE_READ, HASHED_ENV]
MOVE = "/v1/models/w2v/aliases/production"


def _hex(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(settings: Settings, registry: Registry, tmp_path: Path) -> Settings:
    register(registry, "w2v")
    keys_file = tmp_path / "keys"
    keys_file.write_text(
        f"# scope:key, or scope:sha256:digest\n\nwrite:sha256:{_hex(FILE_WRITE)}\n  READ : {FILE_READ}\n",
        encoding="utf-8",
    )
    keys_file.chmod(0o600)
    return settings.model_copy(
        update={
            "api_keys": [WRITE, f"sha256:{_hex(HASHED_ENV)}"],
            "api_read_keys": [READ],
            "api_keys_file": keys_file,
            "model_refresh_s": 0.1,
        }
    )


@pytest.mark.parametrize("protect_reads", [False, True])
def test_api_keys_read_scope_reads_and_only_write_scope_writes(keyed: Settings, protect_reads: bool) -> None:
    with serving(keyed.model_copy(update={"protect_reads": protect_reads})) as client:
        reads = {
            key: client.get("/v1/models", headers=_bearer(key) if key else {}).status_code
            for key in ["", "errada", *ALL_KEYS]
        }
        writes = {}
        for key in ["", "errada", READ, FILE_READ, WRITE, FILE_WRITE, HASHED_ENV]:
            r = client.put(MOVE, json={"version": 1}, headers={"X-API-Key": key} if key else {})
            writes[key] = (r.status_code, r.json()["error"] if r.status_code >= 400 else None)
    closed = 401 if protect_reads else 200
    assert reads == {"": closed, "errada": closed, **dict.fromkeys(ALL_KEYS, 200)}
    assert writes == {
        "": (401, "Unauthorized"),
        "errada": (401, "Unauthorized"),
        READ: (403, "Forbidden"),
        FILE_READ: (403, "Forbidden"),
        WRITE: (200, None),
        FILE_WRITE: (200, None),
        HASHED_ENV: (200, None),
    }


@pytest.mark.parametrize("protect_reads", [False, True])
def test_api_keys_metrics_is_a_read_and_health_and_ready_stay_open(
    keyed: Settings, protect_reads: bool
) -> None:
    """/metrics counts every route and names the loaded versions: with protected reads it needs a key, as the
    other reads do; /health and /ready answer load balancers and probes, which send none."""
    with serving(keyed.model_copy(update={"protect_reads": protect_reads})) as client:
        bare = {path: client.get(path).status_code for path in ("/metrics", "/health", "/ready")}
        keyed_metrics = client.get("/metrics", headers=_bearer(READ))
        denied = client.get("/metrics")
    assert bare == {"/metrics": 401 if protect_reads else 200, "/health": 200, "/ready": 200}
    assert keyed_metrics.status_code == 200
    assert "palavra_http_requests_total" in keyed_metrics.text
    if protect_reads:
        assert denied.json()["error"] == "Unauthorized"
        assert "palavra_http_requests_total" not in denied.text


def test_api_keys_are_kept_as_digests_and_never_logged(
    keyed: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(keyed.model_copy(update={"protect_reads": True})) as client:
        ring: KeyRing = client.app.state.keys  # type: ignore[attr-defined]
        bodies = [
            client.put(MOVE, json={"version": 1}, headers=_bearer(READ)).text,
            client.put(MOVE, json={"version": 1}, headers=_bearer("chave-errada-0")).text,
            client.get("/v1/models", headers=_bearer("chave-errada-1")).text,
            client.put(MOVE, json={"version": 1}, headers=_bearer(WRITE)).text,
            client.get("/v1/models", headers=_bearer(FILE_READ)).text,
        ]
    stored = repr(ring)
    assert stored == "KeyRing(write=3, read=2)"
    assert [scope for _, scope in ring.digests] == ["write", "write", "read", "write", "read"]
    assert all(len(digest) == 32 for digest, _ in ring.digests)
    assert "API keys: 3 with the write scope, 2 read-only" in caplog.text
    for secret in [*ALL_KEYS, "chave-errada-0", "chave-errada-1"]:
        assert secret not in caplog.text
        assert secret not in stored
        assert _hex(secret) not in caplog.text
        assert not any(secret in body for body in bodies)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("admin:super-segredo-1\n", "line 1: expected 'read:KEY', 'write:KEY'"),
        ("# ok\nsuper-segredo-1\n", "line 2: expected 'read:KEY'"),
        ("write:\n", "line 1: expected"),
        (
            "write:sha256:abc123super-segredo-1\n",
            "line 1: 'sha256:' must be followed by the key's 64 hex digits",
        ),
    ],
)
def test_api_keys_file_errors_name_the_line_not_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidConfig, match=message) as info:
        KeyRing.from_settings(Settings(home=tmp_path, api_keys_file=path))
    assert "super-segredo" not in str(info.value)


def test_api_keys_file_from_the_environment_and_serve_refuses_a_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "keys"
    good.write_text(f"read:{READ}\nwrite:sha256:{_hex(WRITE)}\n", encoding="utf-8")
    monkeypatch.setenv("PALAVRA_API_KEYS", "a, b")
    monkeypatch.setenv("PALAVRA_API_READ_KEYS", READ)
    monkeypatch.setenv("PALAVRA_API_KEYS_FILE", str(good))
    ring = KeyRing.from_settings(Settings())
    assert [ring.scope_of(k) for k in ("a", "b", READ, WRITE, "c", None)] == [
        "write", "write", "read", "write", None, None,
    ]  # fmt: skip
    monkeypatch.setenv("PALAVRA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PALAVRA_API_KEYS_FILE", str(tmp_path / "nada"))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as info:
            main(["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("error: PALAVRA_API_KEYS_FILE")
    assert "cannot be read" in err
    assert len(err.strip().splitlines()) == 1


def test_api_keys_file_readable_by_others_with_clear_keys_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from services.api.app import create_app

    path = tmp_path / "keys"
    path.write_text(f"write:{WRITE}\n", encoding="utf-8")
    path.chmod(0o644)
    settings = Settings(home=tmp_path, api_keys_file=path, local_workers=0)
    KeyRing.from_settings(settings)  # what `palavra serve` reads before its workers start
    assert "chmod 600" in caplog.text
    assert WRITE not in caplog.text
    create_app(settings)  # what each worker builds: it warned again (twice at start with one worker)
    assert caplog.text.count("chmod 600") == 1, caplog.text


def test_api_keys_beyond_ascii_match_the_bytes_the_client_sends(
    settings: Settings, registry: Registry
) -> None:
    register(registry, "w2v")
    with serving(settings.model_copy(update={"api_keys": ["chave-ação-ü"]})) as client:
        good = client.put(MOVE, json={"version": 1}, headers={"X-API-Key": "chave-ação-ü".encode()})
        other = client.put(MOVE, json={"version": 1}, headers={"X-API-Key": b"chave-acao-u"})
    assert (good.status_code, other.status_code) == (200, 401)


def test_api_keys_readme_key_file_example_works_as_written(tmp_path: Path, settings: Settings) -> None:
    """README's key-file lines, run as a newcomer pastes them after the serving block (which sets only $KEY): the
    read key they wrote was an undefined $READ_KEY, so the file held 'read:' and `palavra serve` refused it."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme[
        : readme.index("PALAVRA_API_KEYS_FILE=~/.palavra-keys PALAVRA_PROTECT_READS=true palavra serve")
    ]
    lines = block.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("```bash"))
    script = "\n".join(lines[start + 1 :])
    env = {"PATH": os.environ["PATH"], "KEY": "chave-de-escrita", "HOME": str(tmp_path)}
    subprocess.run(
        ["bash", "-euc", f'{script}\nprintf %s "$READ_KEY" > read_key'], cwd=tmp_path, env=env, check=True
    )
    keys = tmp_path / ".palavra-keys"  # written under HOME, outside the checkout
    assert keys.stat().st_mode & 0o077 == 0
    ring = KeyRing.from_settings(settings.model_copy(update={"api_keys_file": keys}))
    assert ring.scope_of("chave-de-escrita") == "write"
    assert ring.scope_of((tmp_path / "read_key").read_text()) == "read"


def test_api_keys_a_read_key_on_a_server_without_write_keys_is_403(
    settings: Settings, registry: Registry
) -> None:
    """With read keys only, a valid read key on a write route was a 401 (as if it were unknown), so a client
    re-sent credentials that were fine; it is a 403 that says the server has no write keys. No key stays 401."""
    register(registry, "w2v")
    with serving(settings.model_copy(update={"api_keys": [], "api_read_keys": [READ]})) as client:
        known = client.put(MOVE, json={"version": 1}, headers=_bearer(READ))
        unknown = client.put(MOVE, json={"version": 1}, headers=_bearer("errada"))
    assert (known.status_code, known.json()["error"]) == (403, "Forbidden")
    assert "no API keys with the write scope" in known.json()["detail"]
    assert (unknown.status_code, unknown.headers["www-authenticate"]) == (401, "Bearer")
    assert "PALAVRA_API_KEYS" in unknown.json()["detail"]
