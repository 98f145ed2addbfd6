"""``palavra doctor``: check every registered artifact and every collection against its checksums and every job
against the registry.

What it reports (each as one problem naming the model version, the collection or the job):

- a registered version whose folder or files are missing, or whose files no longer match their recorded sha256;
- a version folder on disk that the registry has no row for (a registration that stopped half-way);
- a collection whose collection.json cannot be read or holds a field of the wrong kind (or a path outside the
  collection's folder), whose files are missing or no longer match the sha256 recorded when they were written (or
  were written before checksums were recorded), or that cannot be opened, its index included (a size or shape
  that is not the one recorded, an index file missing or not matching its ids);
- a succeeded job whose model version is not registered;
- a running job whose worker is gone: no heartbeat for ``job_timeout_s``, or a worker process on this machine
  that no longer exists.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.collection import CollectionStore
from models.errors import CollectionNotFound, ModelNotFound
from models.registry import Artifact, Registry
from services.jobs.job import Job, JobState
from services.jobs.store import JobStore

PAGE = 500


@dataclass(frozen=True)
class Problem:
    """One thing found wrong: what it concerns (``model``, ``collection`` or ``job``), which one, and a sentence
    saying what."""

    area: str
    subject: str
    problem: str


@dataclass
class Report:
    models_checked: int = 0
    collections_checked: int = 0
    files_checked: int = 0
    jobs_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "models_checked": self.models_checked,
            "collections_checked": self.collections_checked,
            "files_checked": self.files_checked,
            "jobs_checked": self.jobs_checked,
            "problems": [asdict(p) for p in self.problems],
        }


def check_artifacts(registry: Registry, report: Report) -> None:
    """Every version of every model: folder present, every recorded file present with its sha256."""
    registered: set[tuple[str, str]] = set()
    for head in registry.list():
        for mv in registry.versions(head.name):
            registered.add((mv.name, str(mv.version)))
            report.models_checked += 1
            report.files_checked += len(mv.metadata.get("files", {}))
            if not mv.path.is_dir():
                report.problems.append(Problem("model", mv.ref, f"its folder {mv.path} is missing"))
                continue
            for problem in Artifact(mv).problems():
                report.problems.append(Problem("model", mv.ref, problem))
    for folder in sorted(registry.root.glob("*/*")):
        if folder.parent.name.startswith(".") or not folder.name.isdigit() or not folder.is_dir():
            continue
        if (folder.parent.name, folder.name) not in registered:
            report.problems.append(
                Problem(
                    "model",
                    f"{folder.parent.name}@{folder.name}",
                    f"the folder {folder} is not registered (a registration stopped before its record was written)",
                )
            )


def check_collections(store: CollectionStore, report: Report) -> None:
    """Every collection: collection.json readable and of the right kinds, every recorded file present with its
    sha256, and the collection (with its index) opening."""
    for name in store.names():
        report.collections_checked += 1
        try:
            problems = store.problems(name)
            if not problems:
                report.files_checked += len(store.info(name).get("files") or {})
        except CollectionNotFound:  # removed since it was listed
            continue
        except Exception as exc:  # a diagnosis names what it could not check; it never stops at a traceback
            problems = [f"could not be checked ({type(exc).__name__}: {exc})"]
        for problem in problems:
            report.problems.append(Problem("collection", name, problem))


def _all_jobs(store: JobStore) -> list[Job]:
    out: list[Job] = []
    while True:
        page, total = store.list_jobs(limit=PAGE, offset=len(out))
        out.extend(page)
        if not page or len(out) >= total:
            return out


def _worker_gone(worker: str | None) -> bool:
    """True when ``role@host:pid`` names a process on this machine that does not exist."""
    if not worker or "@" not in worker:
        return False
    host, _, pid = worker.rpartition("@")[2].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def check_jobs(registry: Registry, store: JobStore, report: Report, *, timeout_s: float) -> None:
    """Succeeded jobs name a registered version; running jobs have a live worker."""
    now = datetime.now(UTC)
    for job in _all_jobs(store):
        report.jobs_checked += 1
        if job.state is JobState.SUCCEEDED and job.model_ref is not None:
            try:
                registry.get(job.model_ref)
            except ModelNotFound:
                report.problems.append(
                    Problem("job", job.id, f"succeeded, but its model {job.model_ref} is not registered")
                )
        elif job.state is JobState.RUNNING:
            beat = job.heartbeat_at or job.started_at
            silent = (now - beat).total_seconds() if beat is not None else None
            if silent is not None and silent > timeout_s:
                report.problems.append(
                    Problem(
                        "job", job.id, f"running, but no heartbeat for {silent:.0f} s (worker {job.worker})"
                    )
                )
            elif _worker_gone(job.worker):
                report.problems.append(
                    Problem("job", job.id, f"running, but its worker process {job.worker} no longer exists")
                )


def diagnose(
    registry: Registry,
    store: JobStore,
    *,
    timeout_s: float,
    collections: CollectionStore | None = None,
) -> Report:
    """Check artifacts, collections (when given) and jobs; the report lists every problem found."""
    report = Report()
    check_artifacts(registry, report)
    if collections is not None:
        check_collections(collections, report)
    check_jobs(registry, store, report, timeout_s=timeout_s)
    return report
