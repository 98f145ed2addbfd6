"""Job overhead and throughput on both backends, with real `palavra worker` processes; prints markdown tables.

    nice .venv/bin/python benchmarks/jobs_bench.py [--kind classifier|word2vec] [--overhead-jobs 10]
        [--batch 12] [--parts overhead,throughput]

- overhead: one idle, warmed-up worker per backend (local: SQLite; celery: Redis + a scratch PostgreSQL database);
  jobs submitted one at a time; submit -> running is the job record's ``started_at - created_at`` (both written
  by the database's clients on this machine), and submit -> first progress as seen by polling.
- throughput: ``--batch`` small jobs submitted at once to the Celery queue, drained by 1 and then 2 workers;
  wall time from the first submit to the last job's end.

Needs PostgreSQL and Redis on loopback (POSTGRES_URL / REDIS_URL below, or PALAVRA_TEST_* as in tests/conftest.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from services.jobs.job import JobState
from services.jobs.service import JobService
from services.settings import Settings

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "PALAVRA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PALAVRA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SENTENCES = [
    ("o filme é ótimo e emocionante", "pos"),
    ("adorei o livro, recomendo muito", "pos"),
    ("que produto maravilhoso, chegou rápido", "pos"),
    ("o atendimento foi excelente", "pos"),
    ("péssimo serviço, nunca mais volto", "neg"),
    ("o produto chegou quebrado e atrasado", "neg"),
    ("que filme chato e longo", "neg"),
    ("não gostei, dinheiro jogado fora", "neg"),
]


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    name = f"palavra_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(root: Path, backend: str, database_url: str | None) -> Settings:
    settings = Settings(
        home=root / "home",
        data_root=root / "data",
        database_url=database_url,
        job_backend=backend,
        broker_url=REDIS_URL,
        job_queue=f"palavra-bench-{uuid.uuid4().hex[:8]}",
        heartbeat_s=1.0,
        job_timeout_s=60.0,
        local_workers=0,
    )
    settings.effective_data_root.mkdir(parents=True, exist_ok=True)
    return settings


def env_for(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALAVRA_")}
    for field in ("home", "data_root", "database_url", "job_backend", "broker_url", "job_queue"):
        value = getattr(settings, field)
        if value is not None:
            env[f"PALAVRA_{field.upper()}"] = str(value)
    env["PALAVRA_HEARTBEAT_S"] = str(settings.heartbeat_s)
    env["PALAVRA_JOB_TIMEOUT_S"] = str(settings.job_timeout_s)
    return env


@contextlib.contextmanager
def worker_processes(settings: Settings, n: int, log_dir: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = []
    for i in range(n):
        with (log_dir / f"worker-{settings.job_backend}-{n}-{i}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.cli.main", "worker", "--backend", settings.job_backend],
                    cwd=REPO,
                    env=env_for(settings),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        yield procs
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        forget_queue(settings)


def forget_queue(settings: Settings) -> None:
    """Remove the Redis keys the benchmark's queue left behind."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    queue = settings.job_queue
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    # messages of killed workers, which Redis would restore into the queue an hour later
    for tag, raw in client.hgetall("unacked").items():
        if json.loads(raw)[-1] == queue:  # [message, exchange, routing key]
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.close()


def job_config(kind: str, settings: Settings, name: str) -> dict[str, Any]:
    data = settings.effective_data_root
    if kind == "classifier":
        path = data / "avaliacoes.csv"
        if not path.exists():
            rows = [f'"{t} {i % 7}",{label}' for i in range(40) for t, label in SENTENCES]
            path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
        return {"name": name, "train": path.name, "training": {"epochs": 3, "threads": 1}}
    path = data / "frases.txt"
    if not path.exists():
        path.write_text(
            "\n".join(" ".join(t for t, _ in SENTENCES) for _ in range(300)) + "\n", encoding="utf-8"
        )
    return {
        "name": name,
        "corpus": [path.name],
        "evaluate": False,
        "train": {"algorithm": "word2vec", "vector_size": 16, "min_count": 1, "epochs": 2, "workers": 1},
    }


def wait_state(service: JobService, job_id: str, done: set[JobState], *, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.store.get(job_id).state in done:
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"job {job_id} did not reach {done}")


TERMINAL = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


def overhead(kind: str, backend: str, n: int, root: Path, database_url: str | None) -> dict[str, Any]:
    settings = make_settings(root / f"overhead-{backend}", backend, database_url)
    service = JobService.open(settings)
    with worker_processes(settings, 1, root):
        warm = service.submit(kind, job_config(kind, settings, "warmup"))
        wait_state(service, warm.id, TERMINAL)
        starts, first_progress, failures = [], [], 0
        for i in range(n):
            time.sleep(0.5)  # the worker is idle, polling / blocked on the queue
            t0 = time.monotonic()
            job = service.submit(kind, job_config(kind, settings, f"overhead-{i}"))
            wait_state(service, job.id, {JobState.RUNNING, *TERMINAL})
            while (rec := service.store.get(job.id)).progress.stage is None and not rec.state.terminal:
                time.sleep(0.01)
            first_progress.append(time.monotonic() - t0)
            wait_state(service, job.id, TERMINAL)
            rec = service.store.get(job.id)
            failures += rec.state is not JobState.SUCCEEDED
            started = rec.started_at or rec.created_at
            starts.append((started - rec.created_at).total_seconds())
    return {
        "backend": backend,
        "jobs": n,
        "failed": failures,
        "p50": statistics.median(starts),
        "max": max(starts),
        "progress_p50": statistics.median(first_progress),
    }


def throughput(kind: str, batch: int, workers: int, root: Path, database_url: str) -> dict[str, Any]:
    settings = make_settings(root / f"throughput-{workers}", "celery", database_url)
    service = JobService.open(settings)
    with worker_processes(settings, workers, root):
        warm = [service.submit(kind, job_config(kind, settings, f"warm-{i}")) for i in range(workers)]
        for job in warm:
            wait_state(service, job.id, TERMINAL)
        jobs = [service.submit(kind, job_config(kind, settings, f"batch-{i}")) for i in range(batch)]
        while not all(service.store.get(j.id).state in TERMINAL for j in jobs):
            time.sleep(0.5)  # gently: this process shares the cores with the workers
        records = [service.store.get(j.id) for j in jobs]
    # the records' own timestamps: first submitted -> last finished
    ends = [r.finished_at for r in records if r.finished_at is not None]
    seconds = (max(ends) - min(r.created_at for r in records)).total_seconds()
    states = [r.state for r in records]
    used = {r.worker for r in records}
    run_times = [
        (r.finished_at - r.started_at).total_seconds() for r in records if r.finished_at and r.started_at
    ]
    return {
        "workers": workers,
        "jobs": batch,
        "seconds": seconds,
        "job_p50": statistics.median(run_times),
        "failed": sum(s is not JobState.SUCCEEDED for s in states),
        "errors": sorted({r.error or r.state.value for r in records if r.state is not JobState.SUCCEEDED}),
        "workers_used": len(used),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", default="classifier", choices=["classifier", "word2vec"])
    parser.add_argument("--overhead-jobs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--parts", default="overhead,throughput")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as tmp, scratch_database() as pg:
        root = Path(tmp)
        if "overhead" in parts:
            print(f"\n### Submit -> running, one idle worker ({args.kind} jobs)\n")
            print("| backend | jobs | failed | submit->running p50 | max | submit->first progress p50 |")
            print("|---|---:|---:|---:|---:|---:|")
            for backend, url in (("local", None), ("celery", pg)):
                r = overhead(args.kind, backend, args.overhead_jobs, root, url)
                print(
                    f"| {r['backend']} | {r['jobs']} | {r['failed']} | {r['p50'] * 1000:.0f} ms | "
                    f"{r['max'] * 1000:.0f} ms | {r['progress_p50'] * 1000:.0f} ms |",
                    flush=True,
                )
        if "throughput" in parts:
            print(f"\n### {args.batch} small {args.kind} jobs on the Celery backend\n")
            print("| workers | jobs | failed | workers used | job run time p50 | wall time | vs 1 worker |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
            base = None
            for n in (1, 2):
                r = throughput(args.kind, args.batch, n, root, pg)
                base = base or r["seconds"]
                for error in r["errors"]:
                    print(f"<!-- failed: {error} -->")
                print(
                    f"| {n} | {r['jobs']} | {r['failed']} | {r['workers_used']} | {r['job_p50']:.2f} s | "
                    f"{r['seconds']:.2f} s | "
                    f"{r['seconds'] / base:.2f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
