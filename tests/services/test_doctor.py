"""``palavra doctor``: healthy exits 0; a damaged artifact, a half-registered folder, a succeeded job without its
model and a running job without a worker each exit 1 with the problem named (text and ``--json``)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from models.registry import Registry
from services.cli.main import main
from services.jobs.store import JobStore
from services.settings import Settings, get_settings
from tests.services.vector_models import register

UUIDS = ["0" * 31 + str(i) for i in range(4)]


@pytest.fixture
def env(settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("PALAVRA_HOME", str(settings.home))
    get_settings.cache_clear()
    register(registry, "ok")
    register(registry, "dmg")
    yield registry
    get_settings.cache_clear()


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["doctor", *args])
    out, _err = capsys.readouterr()
    return int(info.value.code or 0), out


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_doctor_healthy_registry_exits_0(env: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _doctor(capsys)
    assert code == 0, out
    assert "checked 2 model versions" in out
    assert out.strip().endswith("healthy")


def test_doctor_reports_damaged_artifact_and_lost_jobs(
    env: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    target = env.get("dmg@1").path / "vectors_norm.npy"
    target.chmod(0o644)
    with target.open("r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x00\x20\x40")  # one float now 2.5, same size
    (env.get("ok@1").path / "vocab.json").unlink()
    shutil.copytree(env.get("ok@1").path, env.root / "ok" / "7")  # a folder the registry never recorded
    store = JobStore.from_registry(env)
    for job_id in UUIDS[:3]:
        store.create(job_id, "word2vec", {}, backend="local")
    worker = f"worker@{socket.gethostname()}:1"
    store.claim(UUIDS[0], worker)
    store.succeed(UUIDS[0], worker, model_name="gone", model_version=3)
    store.claim(UUIDS[1], f"worker@{socket.gethostname()}:{_dead_pid()}")
    store.claim(UUIDS[2], worker)
    store.succeed(UUIDS[2], worker, model_name="ok", model_version=1)

    code, out = _doctor(capsys)
    assert code == 1
    assert "model dmg@1: vectors_norm.npy does not match its recorded sha256" in out
    assert "model ok@1: vocab.json is missing" in out
    assert "model ok@7: the folder" in out
    assert f"job {UUIDS[0]}: succeeded, but its model gone@3 is not registered" in out
    assert f"job {UUIDS[1]}: running, but its worker process" in out
    assert UUIDS[2] not in out

    code, out = _doctor(capsys, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["healthy"] is False
    assert report["jobs_checked"] == 3
    assert {(p["area"], p["subject"]) for p in report["problems"]} == {
        ("model", "dmg@1"),
        ("model", "ok@1"),
        ("model", "ok@7"),
        ("job", UUIDS[0]),
        ("job", UUIDS[1]),
    }


def test_doctor_checks_collections_against_their_checksums(
    env: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    """Collections were outside ``palavra doctor``: a collection whose bytes changed (same size, so opening it
    does not notice), one missing a file and one whose collection.json is not JSON each exit 1, named."""
    from models.collection import CollectionStore, Document
    from pipelines.serving.search import create_collection
    from pipelines.text_encoder.build import pooling_model, register_encoder

    model, _ = pooling_model(env, "ok", pooling="mean")
    register_encoder(env, "frases", model, metadata={})
    store = CollectionStore(env.home)
    docs = [Document("d1", "o rei e a rainha", {}), Document("d2", "a casa e o lar", {})]
    for name in ("boa", "mexida", "falta", "ilegivel"):
        create_collection(store, env, name, docs, encoder="frases")
    code, out = _doctor(capsys)
    assert code == 0, out
    assert "checked 3 model versions, 4 collections" in out  # the encoder is a version too

    gen = store.info("mexida")["data"]
    target = store.path("mexida") / gen / "vectors.npy"
    with target.open("r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x00\x20\x40")
    (store.path("falta") / store.info("falta")["data"] / "offsets.npy").unlink()
    (store.path("ilegivel") / "collection.json").write_text("{", encoding="utf-8")
    code, out = _doctor(capsys)
    assert code == 1, out
    assert f"collection mexida: {gen}/vectors.npy does not match its recorded sha256" in out
    assert f"collection falta: {store.info('falta')['data']}/offsets.npy is missing" in out
    assert "collection ilegivel: collection.json is not readable JSON" in out
    assert "collection boa" not in out
    code, out = _doctor(capsys, "--json")
    report = json.loads(out)
    assert (code, report["collections_checked"]) == (1, 4)
    assert {(p["area"], p["subject"]) for p in report["problems"]} == {
        ("collection", "mexida"),
        ("collection", "falta"),
        ("collection", "ilegivel"),
    }


def test_doctor_reports_collections_refused_by_their_check_or_their_opening(
    env: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    """`"files": ["a"]` in a collection.json was a traceback from `palavra doctor`; a generation that is not a number,
    an index that collection.json names but is not there and a data folder in another collection were not reported
    at all. Each is now a problem naming the collection and what is wrong, and the healthy one is not named."""
    from models.collection import CollectionStore, Document
    from pipelines.serving.search import create_collection
    from pipelines.text_encoder.build import pooling_model, register_encoder

    model, _ = pooling_model(env, "ok", pooling="mean")
    register_encoder(env, "frases", model, metadata={})
    store = CollectionStore(env.home)
    docs = [Document("d1", "o rei e a rainha", {}), Document("d2", "a casa e o lar", {})]
    edits = {
        "lista": lambda d: d.update(files=["a"]),
        "geracao": lambda d: d.update(generation="abc"),
        "indice": lambda d: d.update(ann={"file": "ann-zzz.faiss", "ids": "ann-zzz.ids.json"}),
        "fora": lambda d: d.update(data="../boa/" + d["data"]),
    }
    for name in ("boa", *edits):
        create_collection(store, env, name, docs, encoder="frases")
    for name, change in edits.items():
        path = store.path(name) / "collection.json"
        info = json.loads(path.read_text(encoding="utf-8"))
        change(info)
        path.write_text(json.dumps(info), encoding="utf-8")

    code, out = _doctor(capsys)
    assert code == 1, out
    assert "Traceback" not in out
    assert "collection lista: collection.json field 'files' is [\"a\"], not an object" in out
    assert "collection geracao: collection.json field 'generation' is \"abc\"" in out
    assert "collection indice: ann-zzz.ids.json is missing" in out
    assert "collection fora: collection.json field 'data' is" in out
    assert "collection boa" not in out
    code, out = _doctor(capsys, "--json")
    assert {p["subject"] for p in json.loads(out)["problems"]} == set(edits)
