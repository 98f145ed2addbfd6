"""Job records and their log lines in the registry's database (SQLite by default, PostgreSQL by URL).

Every state change is one conditional UPDATE (``... WHERE state = 'running' AND worker = :me``), so the API,
any number of workers and the reaper can race on a job and exactly one of them wins each transition.

A job's progress is one :class:`~pipelines.runs.progress.Progress` kept whole as JSON (``progress_json``); rows written
before that column existed keep theirs in the ``stage`` ... ``message`` columns, which are still read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from models.database import Database
from models.errors import Conflict, JobNotFound
from models.registry import Registry
from pipelines.runs.progress import Progress
from services.jobs.job import Job, JobLogLine, JobState

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a job id can be (new ones are uuid4 hex)

MAX_LOG_CHARS = 2000

_meta = sa.MetaData()
jobs_table = sa.Table(
    "jobs",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("backend", sa.String(16), nullable=False),
    sa.Column("config_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    sa.Column("worker", sa.String(128)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("progress_json", sa.Text),
    # a job's progress before progress_json: still read for rows that older versions wrote, no longer written
    sa.Column("stage", sa.String(64)),
    sa.Column("fraction", sa.Float),
    sa.Column("epoch", sa.Integer),
    sa.Column("loss", sa.Float),
    sa.Column("message", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("model_name", sa.String(64)),
    sa.Column("model_version", sa.Integer),
    sa.Column("result_json", sa.Text),
    sa.Column("committing", sa.Boolean, nullable=False, default=False),
    sa.Column("staging_path", sa.Text),
    sa.Column("upload_dir", sa.Text),
    sa.Index("ix_jobs_state_created", "state", "created_at"),
    sa.Index("ix_jobs_kind", "kind"),
)
job_logs_table = sa.Table(
    "job_logs",
    _meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("line", sa.Text, nullable=False),
)

_ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp palavra writes is UTC
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _progress_of(row: sa.Row[Any]) -> Progress | None:
    """The progress a job row holds: its JSON, or the columns an older version wrote; None before any report."""
    if row.progress_json:
        return Progress.from_dict(json.loads(row.progress_json))
    if row.stage is None:
        return None
    return Progress(
        stage=row.stage, fraction=row.fraction, epoch=row.epoch, loss=row.loss, message=row.message
    )


def _merged(previous: Progress | None, report: Progress) -> Progress:
    """A job's progress after ``report``: what it says, and what earlier reports said that it leaves out.

    Fraction, epoch, loss and message carry over from any earlier report (the epoch and loss training reached
    stay on the job while it saves). What is counted (``done``, ``total``, ``unit``) and ``extra`` describe
    one stage: they carry over only within it.
    """
    before = previous or Progress(stage=report.stage)
    same_stage = previous is not None and previous.stage == report.stage[:64]
    counts = report.done is not None or report.total is not None
    counted = report if counts or not same_stage else before
    return Progress(
        stage=report.stage[:64],
        fraction=before.fraction if report.fraction is None else min(1.0, max(0.0, report.fraction)),
        epoch=before.epoch if report.epoch is None else report.epoch,
        loss=before.loss if report.loss is None else _finite(report.loss),
        message=report.message[:MAX_LOG_CHARS] if report.message else before.message,
        extra=report.extra or (before.extra if same_stage else {}),
        done=_finite(counted.done),
        total=_finite(counted.total),
        unit=counted.unit,
        final=report.final,
    )


def _progress_json(progress: Progress | None) -> str | None:
    if progress is None:
        return None
    return json.dumps(progress.to_dict(), ensure_ascii=False, default=str)


def _row_to_job(row: sa.Row[Any]) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        state=JobState(row.state),
        config=json.loads(row.config_json),
        created_at=_utc(row.created_at),
        progress=_progress_of(row),
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at),
        heartbeat_at=_aware(row.heartbeat_at),
        worker=row.worker,
        attempts=row.attempts,
        error=row.error,
        model_name=row.model_name,
        model_version=row.model_version,
        committing=bool(row.committing),
        backend=row.backend,
        result=json.loads(row.result_json) if row.result_json else None,
    )


def _add_missing_columns(conn: sa.Connection) -> None:
    """Columns added to the jobs tables since a database was created (all nullable): ALTER TABLE ... ADD COLUMN."""
    inspector = sa.inspect(conn)
    for table in (jobs_table, job_logs_table):
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")


def _insert_log(conn: sa.Connection, job_id: str, lines: Sequence[str]) -> None:
    """Append ``lines`` to the job's log in the transaction of ``conn`` (each cut at MAX_LOG_CHARS)."""
    now = _now()
    conn.execute(
        job_logs_table.insert(),
        [{"job_id": job_id, "at": now, "line": line[:MAX_LOG_CHARS]} for line in lines],
    )


class JobStore:
    """Reads and conditional state changes of job records.

    Args:
        engine: the registry's engine (or one on the same URL); the tables are created when missing.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.db = Database(
            engine, name="job database", advice="jobs cannot be submitted or read until it answers again"
        )
        # write-ahead logging on SQLite: workers, the API and job processes share one file and readers must
        # never block the writer
        self.db.create_tables(_meta, upgrade=_add_missing_columns, wal=True)

    @classmethod
    def from_registry(cls, registry: Registry) -> JobStore:
        return cls(registry.engine)

    @property
    def engine(self) -> sa.Engine:
        return self.db.engine

    def ping(self) -> None:
        """Raise :class:`~models.errors.DatabaseUnavailable` unless the database answers."""
        self.db.ping()

    def _update(self, job_id: str, *conditions: Any, log_line: str | None = None, **values: Any) -> bool:
        """Update the job where ``conditions`` hold; ``log_line`` is logged in the same transaction if it did."""
        with self.db.begin() as conn:
            result = conn.execute(
                jobs_table.update().where(jobs_table.c.id == job_id, *conditions).values(**values)
            )
            if result.rowcount == 1 and log_line is not None:
                _insert_log(conn, job_id, [log_line])
        return result.rowcount == 1

    # -- creating and reading -------------------------------------------------------------------------------
    def create(
        self, job_id: str, kind: str, config: dict[str, Any], *, backend: str, upload_dir: str | None = None
    ) -> Job:
        """Record a new queued job; the job as recorded (read in the same transaction: an idle worker woken in
        between could already have claimed it, and a submit then answered "running" for a job it had just queued)."""
        with self.db.begin() as conn:
            conn.execute(
                jobs_table.insert().values(
                    id=job_id,
                    kind=kind,
                    state=JobState.QUEUED.value,
                    backend=backend,
                    config_json=json.dumps(config, ensure_ascii=False, default=str),
                    created_at=_now(),
                    attempts=0,
                    committing=False,
                    upload_dir=upload_dir,
                )
            )
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).one()
        return _row_to_job(row)

    def get(self, job_id: str) -> Job:
        if not _JOB_ID.fullmatch(job_id):  # never sent to the database (PostgreSQL refuses a NUL in text)
            raise JobNotFound(f"no job with id {job_id!r}; `palavra jobs list` shows the jobs", job=job_id)
        with self.db.begin() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}; `palavra jobs list` shows the jobs", job=job_id)
        return _row_to_job(row)

    def list_jobs(
        self, *, state: JobState | None = None, kind: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Job], int]:
        """Jobs newest first, filtered by state and kind; returns one page and the total count."""
        conditions = []
        if state is not None:
            conditions.append(jobs_table.c.state == state.value)
        if kind is not None:
            conditions.append(jobs_table.c.kind == kind)
        with self.db.begin() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(jobs_table).where(*conditions)
            ).scalar()
            rows = conn.execute(
                sa.select(jobs_table)
                .where(*conditions)
                .order_by(jobs_table.c.created_at.desc(), jobs_table.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [_row_to_job(r) for r in rows], int(total or 0)

    def cleanup_paths(self, job_id: str) -> tuple[str | None, str | None]:
        """The staging folder a job's process was writing and the folder its uploads were saved in."""
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(jobs_table.c.staging_path, jobs_table.c.upload_dir).where(jobs_table.c.id == job_id)
            ).first()
        return (row.staging_path, row.upload_dir) if row is not None else (None, None)

    # -- transitions -----------------------------------------------------------------------------------------
    def claim(self, job_id: str, worker: str) -> bool:
        """queued -> running for ``worker``; false when another worker took it or it was cancelled."""
        now = _now()
        return self._update(
            job_id,
            jobs_table.c.state == JobState.QUEUED.value,
            state=JobState.RUNNING.value,
            worker=worker,
            started_at=now,
            heartbeat_at=now,
            attempts=jobs_table.c.attempts + 1,
        )

    def claim_next(self, worker: str, *, backend: str) -> str | None:
        """Claim the oldest queued job of ``backend``; its id, or None when the queue is empty."""
        with self.db.begin() as conn:
            candidates = conn.execute(
                sa.select(jobs_table.c.id)
                .where(jobs_table.c.state == JobState.QUEUED.value, jobs_table.c.backend == backend)
                .order_by(jobs_table.c.created_at)
                .limit(4)
            ).scalars()
            ids: list[str] = list(candidates)
        for job_id in ids:
            if self.claim(job_id, worker):
                return job_id
        return None

    def heartbeat(self, job_id: str, worker: str) -> bool:
        """Record that ``worker`` still runs the job; false once the job is no longer running there."""
        return self._update(
            job_id,
            jobs_table.c.state == JobState.RUNNING.value,
            jobs_table.c.worker == worker,
            heartbeat_at=_now(),
        )

    def still_running(self, job_id: str, worker: str) -> bool:
        """A read-only check that the job is running on ``worker`` (it may have been cancelled or reaped)."""
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(jobs_table.c.state, jobs_table.c.worker).where(jobs_table.c.id == job_id)
            ).first()
        return row is not None and row.state == JobState.RUNNING.value and row.worker == worker

    def _progress(self, job_id: str) -> Progress | None:
        """The job's progress as stored (only the job's own process reports, so reading then writing is safe)."""
        with self.db.begin() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return None if row is None else _progress_of(row)

    def report(self, job_id: str, progress: Progress) -> bool:
        """Store a progress report of a running job; false when the job is no longer running.

        The job keeps the whole report, with what earlier reports said that it leaves out (see :func:`_merged`).
        """
        merged = _merged(self._progress(job_id), progress)
        return self._update(
            job_id, jobs_table.c.state == JobState.RUNNING.value, progress_json=_progress_json(merged)
        )

    def record_staging(self, job_id: str, path: str | None) -> None:
        """Remember the staging folder the job is writing, so whoever ends the job can remove it."""
        self._update(job_id, staging_path=path)

    def begin_commit(self, job_id: str, worker: str) -> bool:
        """Running -> committing (no longer cancellable); false when the job was cancelled or reaped first."""
        return self._update(
            job_id,
            jobs_table.c.state == JobState.RUNNING.value,
            jobs_table.c.worker == worker,
            committing=True,
        )

    def succeed(
        self,
        job_id: str,
        worker: str,
        *,
        model_name: str | None,
        model_version: int | None,
        result: dict[str, Any] | None = None,
        log_line: str | None = None,
    ) -> bool:
        """running -> succeeded; ``log_line`` is logged with the change, so whoever sees the state sees the line."""
        return self._update(
            job_id,
            jobs_table.c.state == JobState.RUNNING.value,
            jobs_table.c.worker == worker,
            log_line=log_line,
            **_succeeded(model_name, model_version, self._progress(job_id)),
            result_json=json.dumps(result, ensure_ascii=False, default=str) if result is not None else None,
        )

    def fail(
        self, job_id: str, error: str, *, worker: str | None = None, log_line: str | None = None
    ) -> bool:
        """running -> failed with ``error``; only the worker that runs it when ``worker`` is given.

        ``log_line`` is logged with the change, so whoever sees the state sees the line.
        """
        conditions = [jobs_table.c.state == JobState.RUNNING.value]
        if worker is not None:
            conditions.append(jobs_table.c.worker == worker)
        return self._update(
            job_id,
            *conditions,
            log_line=log_line,
            state=JobState.FAILED.value,
            finished_at=_now(),
            committing=False,
            error=error[:MAX_LOG_CHARS],
        )

    def fail_queued(self, job_id: str, error: str) -> bool:
        """queued -> failed: a job that could not be handed to any worker."""
        return self._update(
            job_id,
            jobs_table.c.state == JobState.QUEUED.value,
            state=JobState.FAILED.value,
            finished_at=_now(),
            error=error[:MAX_LOG_CHARS],
        )

    def cancel(self, job_id: str) -> Job:
        """queued or running -> cancelled; the worker running it notices within a second and kills it.

        Raises:
            JobNotFound: no such job.
            Conflict: the job already ended, or it is registering its model (too late to cancel).
        """
        job = self.get(job_id)
        if not job.state.terminal and self._update(
            job_id,
            jobs_table.c.state.in_(_ACTIVE),
            jobs_table.c.committing.is_(False),
            log_line="cancelled",
            state=JobState.CANCELLED.value,
            finished_at=_now(),
        ):
            return self.get(job_id)
        job = self.get(job_id)
        if job.committing and job.state is JobState.RUNNING:
            raise Conflict(f"job {job_id} is registering its model; it is too late to cancel it", job=job_id)
        raise Conflict(f"job {job_id} already {job.state.value}; there is nothing to cancel", job=job_id)

    def stale(self, timeout_s: float) -> tuple[list[Job], datetime]:
        """Running jobs whose last heartbeat is older than ``timeout_s``, and the cutoff used."""
        cutoff = _now() - timedelta(seconds=timeout_s)
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(jobs_table).where(
                    jobs_table.c.state == JobState.RUNNING.value, jobs_table.c.heartbeat_at < cutoff
                )
            ).all()
        return [_row_to_job(r) for r in rows], cutoff

    def fail_if_stale(self, job_id: str, cutoff: datetime, error: str) -> bool:
        """Fail the job unless a heartbeat arrived after ``cutoff`` since it was read as stale (logged with it)."""
        return self._update(
            job_id,
            jobs_table.c.state == JobState.RUNNING.value,
            jobs_table.c.heartbeat_at < cutoff,
            log_line=f"failed: {error}",
            state=JobState.FAILED.value,
            finished_at=_now(),
            committing=False,
            error=error[:MAX_LOG_CHARS],
        )

    def succeed_if_stale(
        self,
        job_id: str,
        cutoff: datetime,
        *,
        model_name: str,
        model_version: int,
        log_line: str | None = None,
    ) -> bool:
        """Succeed a silent job whose model was registered before its worker died (between the two writes)."""
        return self._update(
            job_id,
            jobs_table.c.state == JobState.RUNNING.value,
            jobs_table.c.heartbeat_at < cutoff,
            log_line=log_line,
            **_succeeded(model_name, model_version, self._progress(job_id)),
        )

    # -- the Celery backend's publishing record --------------------------------------------------------------
    def mark_published(self, job_id: str) -> None:
        self._update(job_id, published_at=_now())

    def unpublished(self, older_than_s: float) -> list[str]:
        """Queued Celery jobs never handed to the broker (the API died between recording and sending)."""
        cutoff = _now() - timedelta(seconds=older_than_s)
        with self.db.begin() as conn:
            return list(
                conn.execute(
                    sa.select(jobs_table.c.id).where(
                        jobs_table.c.state == JobState.QUEUED.value,
                        jobs_table.c.backend == "celery",
                        jobs_table.c.published_at.is_(None),
                        jobs_table.c.created_at < cutoff,
                    )
                ).scalars()
            )

    def stranded(self, older_than_s: float) -> list[tuple[str, Any]]:
        """Queued Celery jobs last sent to the broker over ``older_than_s`` ago: ``(id, published_at)`` pairs.

        ``published_at`` is returned as the database holds it, for :meth:`mark_republished`'s condition.
        """
        cutoff = _now() - timedelta(seconds=older_than_s)
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(jobs_table.c.id, jobs_table.c.published_at).where(
                    jobs_table.c.state == JobState.QUEUED.value,
                    jobs_table.c.backend == "celery",
                    jobs_table.c.published_at < cutoff,
                )
            ).all()
        return [(r.id, r.published_at) for r in rows]

    def mark_republished(self, job_id: str, was: Any) -> bool:
        """Take the right to send a stranded job again: true for exactly one caller per ``published_at``.

        False when another worker re-sent it first, or it is no longer queued (started, cancelled).
        """
        return self._update(
            job_id,
            jobs_table.c.state == JobState.QUEUED.value,
            jobs_table.c.published_at == was,
            published_at=_now(),
        )

    # -- log lines -------------------------------------------------------------------------------------------
    def log(self, job_id: str, *lines: str) -> None:
        if not lines:
            return
        with self.db.begin() as conn:
            _insert_log(conn, job_id, lines)

    def logs(self, job_id: str, *, after: int = 0, limit: int = 200) -> list[JobLogLine]:
        """Log lines with ``seq > after``, oldest first; with ``after=0`` the last ``limit`` lines."""
        if not _JOB_ID.fullmatch(job_id):
            return []
        query = sa.select(job_logs_table).where(job_logs_table.c.job_id == job_id)
        with self.db.begin() as conn:
            if after:
                rows = conn.execute(
                    query.where(job_logs_table.c.seq > after).order_by(job_logs_table.c.seq).limit(limit)
                ).all()
            else:
                rows = list(
                    reversed(conn.execute(query.order_by(job_logs_table.c.seq.desc()).limit(limit)).all())
                )
        return [JobLogLine(seq=r.seq, at=_utc(r.at), line=r.line) for r in rows]


def _succeeded(
    model_name: str | None, model_version: int | None, progress: Progress | None
) -> dict[str, Any]:
    """The columns of a job that ended well, with the model version it registered (if any): all of it is done."""
    return {
        "state": JobState.SUCCEEDED.value,
        "finished_at": _now(),
        "progress_json": _progress_json(progress and replace(progress, fraction=1.0)),
        "committing": False,
        "staging_path": None,
        "model_name": model_name,
        "model_version": model_version,
    }
