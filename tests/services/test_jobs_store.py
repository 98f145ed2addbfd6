"""Job records: conditional transitions, cancellation at the commit boundary, reaping, logs; inputs and uploads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from models.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidConfig,
    InvalidInput,
    JobNotFound,
    ModelNotFound,
    PathNotAllowed,
    TooLarge,
)
from models.registry import Registry
from pipelines.runs.progress import Progress
from services.jobs.cleanup import job_output_dir, remove_leftovers
from services.jobs.inputs import DataRoot, replace_uploads, safe_filename
from services.jobs.job import JobState
from services.jobs.local import LocalBackend
from services.jobs.reaper import Reaper
from services.jobs.runner import JobRegistry, JobStopped, execute_job
from services.jobs.service import JobService
from services.jobs.store import JobStore, jobs_table
from services.settings import Settings
from tests.services.jobs_helpers import (
    Clock,
    job_settings,
    postgres_database,
    reviews_csv,
    word2vec_config,
    write_corpus,
)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def jobs_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return job_settings(tmp_path, backend="local", database_url=url, job_timeout_s=0.5)


@pytest.fixture
def base_registry(jobs_settings: Settings) -> Registry:
    jobs_settings.home.mkdir(parents=True, exist_ok=True)
    return Registry(jobs_settings.home, jobs_settings.effective_database_url)


@pytest.fixture
def store(base_registry: Registry) -> Iterator[JobStore]:
    store = JobStore.from_registry(base_registry)
    yield store
    store.engine.dispose()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The store's clock, moved by the test (heartbeats age without sleeping)."""
    clock = Clock()
    monkeypatch.setattr("services.jobs.store._now", clock)
    return clock


def test_store_create_answers_the_job_as_recorded_even_if_a_worker_claims_it_at_once(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create() read the job back in a second transaction: a worker woken at once (the local doorbell) could claim
    it in between, and the submit answered "running" for the job it had just queued (seen once in the suite)."""
    get = store.get

    def claimed_first(job_id: str) -> Any:  # a worker's claim lands between the insert and the read
        store.claim(job_id, "outro@host:1")
        return get(job_id)

    monkeypatch.setattr(store, "get", claimed_first)
    job = store.create("b" * 32, "word2vec", {"name": "x"}, backend="local")
    assert job.state is JobState.QUEUED
    assert job.worker is None


def _job(store: JobStore, job_id: str = "a" * 32) -> str:
    store.create(job_id, "word2vec", {"name": "x"}, backend="local")
    return job_id


def test_jobs_store_claim_is_won_by_exactly_one_worker(store: JobStore) -> None:
    job_id = _job(store)
    assert store.claim(job_id, "w1") is True
    assert store.claim(job_id, "w2") is False
    job = store.get(job_id)
    assert job.state is JobState.RUNNING
    assert job.worker == "w1"
    assert job.attempts == 1
    assert store.claim_next("w2", backend="local") is None


def test_jobs_store_claim_next_takes_the_oldest_of_its_backend(store: JobStore) -> None:
    store.create("c" * 32, "word2vec", {}, backend="celery")
    first = _job(store, "1" * 32)
    second = _job(store, "2" * 32)
    assert store.claim_next("w", backend="local") == first
    assert store.claim_next("w", backend="local") == second
    assert store.claim_next("w", backend="local") is None


def test_jobs_store_only_the_running_worker_reports_and_finishes(store: JobStore) -> None:
    job_id = _job(store)
    assert store.report(job_id, Progress(stage="train", epoch=1)) is False  # still queued
    store.claim(job_id, "w1")
    assert store.report(job_id, Progress(stage="train", fraction=0.5, epoch=1, loss=float("nan"))) is True
    progress = store.get(job_id).progress
    assert (progress.stage, progress.fraction, progress.epoch, progress.loss) == ("train", 0.5, 1, None)
    assert store.heartbeat(job_id, "w2") is False
    assert store.succeed(job_id, "w2", model_name="x", model_version=1) is False
    assert store.succeed(job_id, "w1", model_name="x", model_version=1) is True
    assert store.get(job_id).model_ref == "x@1"
    assert store.fail(job_id, "late", worker="w1") is False


def test_jobs_store_refuses_every_write_once_its_sqlite_file_is_deleted(tmp_path: Path) -> None:
    """The job store shares the registry's file: deleted under a worker, its heartbeats, progress and new jobs went
    to the deleted file; now each is refused with DatabaseGone, as the registry's writes are."""
    settings = job_settings(tmp_path, backend="local")
    settings.home.mkdir(parents=True)
    store = JobStore.from_registry(Registry(settings.home))
    job_id = _job(store)
    store.claim(job_id, "w1")
    database = settings.home / "registry.db"
    database.unlink()
    writes = {
        "heartbeat": lambda: store.heartbeat(job_id, "w1"),
        "report": lambda: store.report(job_id, Progress(stage="train", epoch=1)),
        "log": lambda: store.log(job_id, "epoch 1"),
        "fail": lambda: store.fail(job_id, "boom", worker="w1"),
        "create": lambda: _job(store, "b" * 32),
    }
    for what, write in writes.items():
        with pytest.raises(
            DatabaseUnavailable, match=f"the job database file {database} was deleted"
        ) as caught:
            write()
        assert caught.value.code == "DatabaseGone", what
    assert not database.exists()


def test_jobs_store_keeps_the_whole_progress_report(store: JobStore) -> None:
    job_id = _job(store)
    assert store.get(job_id).progress is None  # nothing reported yet
    store.claim(job_id, "w1")
    read = Progress(stage="preprocess", fraction=0.5, done=1500, total=3000, unit="B", extra={"files": 2})
    assert store.report(job_id, read) is True
    assert store.get(job_id).progress == read
    store.report(job_id, Progress(stage="preprocess", message="a ler frases.txt"))
    assert store.get(job_id).progress == Progress(
        stage="preprocess",
        fraction=0.5,
        message="a ler frases.txt",
        done=1500,
        total=3000,
        unit="B",
        extra={"files": 2},
    )  # the same stage keeps its count
    store.report(job_id, Progress(stage="train", epoch=2, loss=0.25, done=2, total=2, unit="epoch"))
    store.report(job_id, Progress(stage="save", message="registering x"))
    assert store.get(job_id).progress == Progress(
        stage="save", fraction=0.5, epoch=2, loss=0.25, message="registering x"
    )  # a new stage drops the count of the one before, and keeps the epoch and loss training reached
    store.report(job_id, Progress(stage="done", message="training stopped after 2/2 epochs", final=True))
    assert store.succeed(job_id, "w1", model_name="x", model_version=1) is True
    done = store.get(job_id).progress
    assert done == Progress(
        stage="done",
        fraction=1.0,
        epoch=2,
        loss=0.25,
        message="training stopped after 2/2 epochs",
        final=True,
    )


def test_jobs_store_reads_the_progress_of_rows_an_older_version_wrote(base_registry: Registry) -> None:
    engine = base_registry.engine
    older = sa.Table(
        "jobs", sa.MetaData(), *(c._copy() for c in jobs_table.columns if c.name != "progress_json")
    )
    older.create(engine)
    with engine.begin() as conn:
        conn.execute(
            older.insert().values(
                id="o" * 32,
                kind="word2vec",
                state="running",
                backend="local",
                config_json="{}",
                created_at=datetime.now(UTC),
                attempts=1,
                committing=False,
                worker="w",
                stage="train",
                fraction=0.5,
                epoch=1,
                loss=0.25,
                message="epoch 1/2",
            )
        )
    store = JobStore(engine)  # adds the progress column to the table
    assert store.get("o" * 32).progress == Progress(
        stage="train", fraction=0.5, epoch=1, loss=0.25, message="epoch 1/2"
    )
    assert store.report("o" * 32, Progress(stage="train", epoch=2, done=2, total=2, unit="epoch")) is True
    assert store.get("o" * 32).progress == Progress(
        stage="train", fraction=0.5, epoch=2, loss=0.25, message="epoch 1/2", done=2, total=2, unit="epoch"
    )


def test_jobs_store_cancel_rules(store: JobStore) -> None:
    queued = _job(store, "q" * 32)
    assert store.cancel(queued).state is JobState.CANCELLED
    with pytest.raises(Conflict, match="already cancelled"):
        store.cancel(queued)
    committing = _job(store, "m" * 32)
    store.claim(committing, "w")
    assert store.begin_commit(committing, "w") is True
    with pytest.raises(Conflict, match="too late to cancel"):
        store.cancel(committing)
    with pytest.raises(JobNotFound):
        store.cancel("0" * 32)
    for odd in (
        "a\x00b",
        "\x00",
        "../x",
        "x" * 65,
        "",
    ):  # never sent to the database (a NUL fails on PostgreSQL)
        with pytest.raises(JobNotFound):
            store.get(odd)
        with pytest.raises(JobNotFound):
            store.cancel(odd)
        assert store.logs(odd) == []


def test_jobs_store_a_cancelled_job_cannot_begin_its_commit(store: JobStore) -> None:
    job_id = _job(store)
    store.claim(job_id, "w")
    store.cancel(job_id)
    assert store.begin_commit(job_id, "w") is False


def test_jobs_registry_of_a_cancelled_job_discards_the_staged_version(
    store: JobStore, base_registry: Registry
) -> None:
    job_id = _job(store)
    store.claim(job_id, "w")
    registry = JobRegistry(base_registry, store=store, job_id=job_id, worker="w")
    with pytest.raises(JobStopped), registry.create("descartado", "word2vec") as writer:
        writer.write_json("config.json", {})
        assert store.cleanup_paths(job_id)[0] == str(writer.path)
        store.cancel(job_id)  # arrives while the artifact is being written
    with pytest.raises(ModelNotFound):
        base_registry.versions("descartado")
    assert list((base_registry.root / ".staging").iterdir()) == []


def test_jobs_registry_of_a_running_job_commits_and_marks_it_committing(
    store: JobStore, base_registry: Registry
) -> None:
    job_id = _job(store)
    store.claim(job_id, "w")
    registry = JobRegistry(base_registry, store=store, job_id=job_id, worker="w")
    with registry.create("guardado", "word2vec") as writer:
        writer.write_json("config.json", {})
    assert writer.version.metadata["job_id"] == job_id  # type: ignore[attr-defined]
    assert store.get(job_id).committing is True
    assert base_registry.commit_hooks == ()  # the guard is the job registry's own


def test_jobs_reaper_fails_silent_jobs_only(store: JobStore, jobs_settings: Settings, clock: Clock) -> None:
    silent = _job(store, "s" * 32)
    alive = _job(store, "l" * 32)
    store.claim(silent, "dead-worker")
    store.claim(alive, "live-worker")
    clock.advance(jobs_settings.job_timeout_s + 0.2)
    store.heartbeat(alive, "live-worker")
    assert Reaper(store, jobs_settings).run() == [silent]
    failed = store.get(silent)
    assert failed.state is JobState.FAILED
    assert "dead-worker stopped sending heartbeats" in (failed.error or "")
    assert store.get(alive).state is JobState.RUNNING
    assert store.heartbeat(silent, "dead-worker") is False  # a late worker learns it lost the job


def test_jobs_reaper_succeeds_a_job_whose_worker_died_after_registering_its_model(
    store: JobStore, base_registry: Registry, jobs_settings: Settings, clock: Clock
) -> None:
    earlier, registered, unfinished = "e" * 32, "r" * 32, "u" * 32
    for job_id in (earlier, registered, unfinished):  # three jobs training the same model name
        store.create(job_id, "word2vec", {"name": "guardado"}, backend="local")
        store.claim(job_id, "w")
    for job_id in (earlier, registered):
        job_registry = JobRegistry(base_registry, store=store, job_id=job_id, worker="w")
        with job_registry.create("guardado", "word2vec") as w:
            w.write_json("config.json", {})
    assert store.succeed(earlier, "w", model_name="guardado", model_version=1) is True
    assert store.begin_commit(unfinished, "w") is True  # died while writing: nothing registered
    # the worker dies here, between registering the version and recording the job's success
    clock.advance(jobs_settings.job_timeout_s + 0.2)
    assert sorted(Reaper(store, jobs_settings).run()) == sorted([registered, unfinished])
    done = store.get(registered)
    assert done.state is JobState.SUCCEEDED
    assert done.model_ref == "guardado@2"  # its own version, not the earlier job's
    failed = store.get(unfinished)
    assert failed.state is JobState.FAILED  # versions by other jobs of the same name do not count
    assert failed.model_ref is None


def test_jobs_supervisor_settles_a_job_whose_process_died_after_registering_as_succeeded(
    store: JobStore, base_registry: Registry, jobs_settings: Settings
) -> None:
    from services.jobs.supervisor import JobSupervisor

    registered, unfinished = "r" * 32, "u" * 32
    for job_id in (registered, unfinished):
        store.create(job_id, "word2vec", {"name": "salvo"}, backend="local")
        store.claim(job_id, "w")
    with JobRegistry(base_registry, store=store, job_id=registered, worker="w").create(
        "salvo", "word2vec"
    ) as w:
        w.write_json("config.json", {})
    assert store.begin_commit(unfinished, "w") is True
    supervisor = JobSupervisor(jobs_settings, store, "w")
    # the job's process was killed (-9) right after registering, before it recorded its result
    assert supervisor._settle(registered, -9) is JobState.SUCCEEDED
    assert store.get(registered).model_ref == "salvo@1"
    assert supervisor._settle(unfinished, -9) is JobState.FAILED


def test_jobs_a_reader_that_sees_a_job_end_sees_its_last_log_line(
    store: JobStore, base_registry: Registry, jobs_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event stream and `jobs submit --wait` stop at the end state: the last line must be there by then.

    The line used to be written after the state, and a reader between the two writes lost it.
    """
    from services.jobs.runner import _record_success
    from services.jobs.supervisor import JobSupervisor

    at_the_end: dict[str, list[str]] = {}

    def watching(method: Any) -> Any:
        def changed(job_id: str, *args: Any, **kwargs: Any) -> bool:
            done = method(job_id, *args, **kwargs)
            if done:  # what a reader sees the moment the state has changed
                at_the_end[job_id] = [line.line for line in store.logs(job_id)]
            return done

        return changed

    monkeypatch.setattr(store, "succeed", watching(store.succeed))
    monkeypatch.setattr(store, "fail", watching(store.fail))
    compared, registered, unfinished = "c" * 32, "r" * 32, "u" * 32
    for job_id in (compared, registered, unfinished):
        store.create(job_id, "word2vec", {"name": "salvo"}, backend="local")
        store.claim(job_id, "w")
    assert _record_success(store, compared, "w", {"runs": []}) is True
    with JobRegistry(base_registry, store=store, job_id=registered, worker="w").create(
        "salvo", "word2vec"
    ) as w:
        w.write_json("config.json", {})
    supervisor = JobSupervisor(jobs_settings, store, "w")
    assert supervisor._settle(registered, -9) is JobState.SUCCEEDED
    assert supervisor._settle(unfinished, -9) is JobState.FAILED
    assert at_the_end[compared][-1] == "succeeded"
    assert at_the_end[registered][-1] == "the job's process ended after registering salvo@1: succeeded"
    assert (
        at_the_end[unfinished][-1]
        == "failed: the job's process ended with SIGKILL (out of memory?) before recording a result"
    )
    assert [line.line for line in store.logs(compared)] == ["succeeded"]  # logged once


def test_jobs_cancelled_and_reaped_jobs_have_their_last_line_with_their_end_state(
    store: JobStore,
    base_registry: Registry,
    jobs_settings: Settings,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As above, for a cancel and for the reaper's two verdicts (their lines were written after the state)."""
    at_the_end: dict[str, list[str]] = {}

    def watching(method: Any) -> Any:
        def changed(job_id: str, *args: Any, **kwargs: Any) -> Any:
            done = method(job_id, *args, **kwargs)
            if done:
                at_the_end[job_id] = [line.line for line in store.logs(job_id)]
            return done

        return changed

    for name in ("cancel", "fail_if_stale", "succeed_if_stale"):
        monkeypatch.setattr(store, name, watching(getattr(store, name)))
    cancelled, silent, registered = "c" * 32, "s" * 32, "r" * 32
    for job_id in (cancelled, silent, registered):
        store.create(job_id, "word2vec", {"name": "guardado"}, backend="local")
    JobService(jobs_settings, store, backend=LocalBackend(jobs_settings.home)).cancel(cancelled)
    for job_id in (silent, registered):
        store.claim(job_id, "w")
    with JobRegistry(base_registry, store=store, job_id=registered, worker="w").create(
        "guardado", "word2vec"
    ) as w:
        w.write_json("config.json", {})
    clock.advance(jobs_settings.job_timeout_s + 0.2)
    assert sorted(Reaper(store, jobs_settings).run()) == sorted([silent, registered])
    assert at_the_end[cancelled] == ["cancelled"]
    assert at_the_end[silent][-1].startswith("failed: worker w stopped sending heartbeats")
    assert at_the_end[registered][-1] == (
        "its worker stopped sending heartbeats after registering guardado@1: the job succeeded"
    )
    assert [line.line for line in store.logs(cancelled)] == ["cancelled"]  # logged once


def test_jobs_store_processes_starting_at_once_on_a_new_database(
    jobs_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers and the API start together on an empty database: the one that loses the table race lives on."""
    from services.jobs import store as store_module
    from tests.conftest import lose_creation_race

    jobs_settings.home.mkdir(parents=True, exist_ok=True)
    engine = Registry(jobs_settings.home, jobs_settings.effective_database_url).engine
    with engine.begin() as conn:  # the registry's tables exist, the job store's do not yet
        assert not sa.inspect(conn).has_table(jobs_table.name)

    def other() -> None:
        JobStore(sa.create_engine(engine.url)).engine.dispose()

    attempts = lose_creation_race(monkeypatch, store_module._meta, other)
    store = JobStore(engine)
    assert len(attempts) == 3  # this process, the other one, this process again
    assert store.list_jobs() == ([], 0)
    engine.dispose()


def test_jobs_store_adds_columns_missing_from_an_older_database(base_registry: Registry) -> None:
    before = sa.MetaData()  # the jobs table as it was before comparisons kept a result
    sa.Table(
        "jobs",
        before,
        *[
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in jobs_table.columns
            if c.name != "result_json"
        ],
    )
    before.create_all(base_registry.engine)
    store = JobStore.from_registry(base_registry)
    assert "result_json" in {c["name"] for c in sa.inspect(base_registry.engine).get_columns("jobs")}
    job_id = _job(store)
    store.claim(job_id, "w")
    assert store.succeed(job_id, "w", model_name=None, model_version=None, result={"runs": []})
    assert store.get(job_id).result == {"runs": []}


def test_jobs_logs_page_forward_and_keep_the_tail(store: JobStore) -> None:
    job_id = _job(store)
    store.log(job_id, *[f"linha {i}" for i in range(10)])
    tail = store.logs(job_id, limit=3)
    assert [line.line for line in tail] == ["linha 7", "linha 8", "linha 9"]
    after = store.logs(job_id, after=tail[0].seq)
    assert [line.line for line in after] == ["linha 8", "linha 9"]


def test_jobs_execute_in_process_records_failure_with_the_error(
    store: JobStore, jobs_settings: Settings
) -> None:
    (jobs_settings.effective_data_root / "vazio.txt").write_text("\n", encoding="utf-8")
    job_id = "e" * 32
    store.create(job_id, "word2vec", word2vec_config("vazio", "vazio.txt"), backend="local")
    store.claim(job_id, "w")
    assert execute_job(jobs_settings, job_id, "w") is False
    job = store.get(job_id)
    assert job.state is JobState.FAILED
    assert (job.error or "").startswith("EmptyCorpus:")
    assert store.logs(job_id)[-1].line == f"failed: {job.error}"


def test_jobs_execute_in_process_succeeds_and_registers(store: JobStore, jobs_settings: Settings) -> None:
    corpus = write_corpus(jobs_settings, "frases.txt", 200)
    job_id = "f" * 32
    store.create(job_id, "word2vec", word2vec_config("pequeno", corpus), backend="local")
    store.claim(job_id, "w")
    assert execute_job(jobs_settings, job_id, "w") is True
    job = store.get(job_id)
    assert job.model_ref == "pequeno@1"
    assert job.committing is False


def test_jobs_compare_config_is_validated_like_the_cli_run(store: JobStore, jobs_settings: Settings) -> None:
    service = JobService(jobs_settings, store, backend=LocalBackend(jobs_settings.home))
    train = reviews_csv(jobs_settings)
    with pytest.raises(InvalidConfig, match="optimizers"):
        service.submit("compare", {"train": train, "optimizers": ["lbfgs"]})
    with pytest.raises(InvalidConfig, match="unknown field"):
        service.submit("compare", {"train": train, "optimisers": ["sgd"]})
    job = service.submit("compare", {"train": train, "activations": ["tanh"]})
    assert job.config["name"] == "compare"
    assert job.config["optimizers"] == ["sgd", "momentum", "adagrad", "rmsprop", "adam"]


def test_jobs_compare_on_one_class_fails_with_the_dataset_error(
    store: JobStore, jobs_settings: Settings
) -> None:
    job_id = "c" * 32
    train = reviews_csv(jobs_settings, ("pos",))  # one class: the grid cannot train
    store.create(job_id, "compare", {"train": train, "optimizers": ["sgd"]}, backend="local")
    store.claim(job_id, "w")
    assert execute_job(jobs_settings, job_id, "w") is False
    assert (store.get(job_id).error or "").startswith("DatasetError:")


def test_jobs_leftovers_are_removed_only_inside_their_folders(
    store: JobStore, jobs_settings: Settings, tmp_path: Path
) -> None:
    job_id = _job(store)
    report = job_output_dir(jobs_settings, job_id)
    report.mkdir(parents=True)
    (report / "report.md").write_text("# x", encoding="utf-8")
    precious = tmp_path / "precious"
    precious.mkdir()
    store.record_staging(job_id, str(precious))  # a record pointing outside the staging folder
    remove_leftovers(store, job_id, settings=jobs_settings)
    assert not report.exists()
    assert precious.is_dir()


# -- inputs ----------------------------------------------------------------------------------------------------
def test_jobs_data_root_refuses_escapes(tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    (root.root / "ok.txt").write_text("x", encoding="utf-8")
    (tmp_path / "fora.txt").write_text("x", encoding="utf-8")
    assert root.resolve("ok.txt") == root.root / "ok.txt"
    assert root.resolve(str(root.root / "ok.txt")) == root.root / "ok.txt"
    for spec in ("../fora.txt", "sub/../ok.txt", str(tmp_path / "fora.txt"), "/etc/passwd"):
        with pytest.raises(PathNotAllowed):
            root.resolve(spec)
    (root.root / "link.txt").symlink_to(tmp_path / "fora.txt")
    (root.root / "pasta").mkdir()
    (root.root / "pasta" / "link").symlink_to(tmp_path)
    for spec in ("link.txt", "pasta/link/fora.txt"):
        with pytest.raises(PathNotAllowed, match="symbolic link"):
            root.resolve(spec)
    with pytest.raises(PathNotAllowed, match="contains the symbolic link"):
        root.resolve("pasta", allow_dir=True)
    with pytest.raises(InvalidInput, match="does not exist"):
        root.resolve("nada.txt")


def test_jobs_uploads_are_named_safely_and_limited(tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..\\corpus final.txt") == "corpus_final.txt"
    assert safe_filename(".bashrc") == "bashrc"
    long = safe_filename("a" * 300 + ".txt")  # shortened before the extension, which names the format
    assert long == "a" * 124 + ".txt"
    assert safe_filename("b" * 300) == "b" * 128
    assert safe_filename("c" * 300 + ".jsonl.gz") == "c" * 119 + ".jsonl.gz"  # compressed: both suffixes kept
    assert root.save_upload("j1", "a b.txt", io.BytesIO(b"ola"), max_bytes=10) == "uploads/j1/a_b.txt"
    with pytest.raises(TooLarge):
        root.save_upload("j2", "big.txt", io.BytesIO(b"x" * 11), max_bytes=10)
    assert not root.upload_dir("j2").exists()


def test_jobs_upload_placeholders_are_replaced_and_checked() -> None:
    config = {"corpus": ["upload:a.txt", "eltec-por"], "train": "upload:b.csv"}
    saved = {"a.txt": "uploads/j/a.txt", "b.csv": "uploads/j/b.csv"}
    assert replace_uploads(config, saved) == {
        "corpus": ["uploads/j/a.txt", "eltec-por"],
        "train": "uploads/j/b.csv",
    }
    with pytest.raises(InvalidInput, match="not used"):
        replace_uploads({"train": "upload:a.txt"}, saved)
    with pytest.raises(InvalidInput, match="no file of that name"):
        replace_uploads({"train": "upload:c.txt"}, saved)
