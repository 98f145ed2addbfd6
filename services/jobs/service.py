"""What the API and the CLI do with jobs: submit (validate, record, queue), read, list, cancel."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from models.errors import Conflict, DatabaseUnavailable, InvalidInput, ModelNotFound, NotReady
from models.references import VECTOR_KINDS
from models.registry import Registry
from services.factories import open_catalog, open_collections, open_registry
from services.jobs.backend import JobBackend, open_backend
from services.jobs.cleanup import remove_leftovers
from services.jobs.inputs import UPLOADS_DIR, DataRoot, check_inputs
from services.jobs.job import Job, JobLogLine, JobState
from services.jobs.kinds import JobKind, is_dataset, job_kind
from services.jobs.reaper import Reaper
from services.jobs.store import JobStore
from services.settings import Settings

log = logging.getLogger(__name__)


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobService:
    """Jobs over one store and one backend.

    Reads also run the reaper (at most once per heartbeat interval), so a job whose worker died is failed even
    when no other worker is left to notice. A reaper that cannot write (the database refuses writes, say on a
    full disk) never stops a read from answering.
    """

    def __init__(
        self, settings: Settings, store: JobStore, *, backend: JobBackend, registry: Registry | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.registry = registry  # when given, models a config names are looked up at submit
        self.data_root = DataRoot(settings.effective_data_root)
        self.reaper = Reaper(store, settings)

    @classmethod
    def open(cls, settings: Settings, registry: Registry | None = None) -> JobService:
        registry = registry or open_registry(settings)
        return cls(
            settings, JobStore.from_registry(registry), backend=open_backend(settings), registry=registry
        )

    def submit(self, kind: str, config: dict[str, object], *, job_id: str | None = None) -> Job:
        """Validate ``config`` for ``kind``, check its inputs, record the job and queue it.

        Files uploaded with the job must already be under ``<data root>/uploads/<job_id>/``.

        Raises:
            InvalidInput: unknown kind, invalid config, or an input outside the data root / missing.
            Conflict: the name the job would register holds another kind of model.
            NotReady: the backend's broker does not answer (the job is recorded as failed, not left queued).
        """
        spec = job_kind(kind)
        run = spec.validate(config, source=f"{kind} job config")
        check_inputs(
            spec.inputs(run),
            is_dataset=is_dataset,
            data_root=self.data_root,
            corpora=spec.corpora(run) if spec.corpora is not None else (),
        )
        self._check_models(spec, run)
        job_id = job_id or new_job_id()
        uploads = self.data_root.upload_dir(job_id)
        job = self.store.create(
            job_id,
            kind,
            run.model_dump(mode="json"),
            backend=self.backend.name,
            upload_dir=f"{UPLOADS_DIR}/{job_id}" if uploads.exists() else None,
        )
        try:
            self.backend.publish(job_id)
        except NotReady as exc:
            self.store.fail_queued(job_id, exc.detail)
            remove_leftovers(self.store, job_id, settings=self.settings)
            raise
        self.store.mark_published(job_id)
        return job

    def _check_models(self, spec: JobKind, run: object) -> None:
        """A registered model the config builds on (a classifier's ``embeddings``) must exist before queueing, and
        the name the job registers must not hold another kind of model."""
        if spec.name == "collection":
            self._check_collection(run)
            return
        if spec.name in ("classifier", "compare"):
            self._check_columns(run)
        name = getattr(run, "name", None)
        if spec.registers is not None and isinstance(name, str) and self.registry is not None:
            self.registry.check_kind(name, spec.registers(run))
        ref = getattr(run, "embeddings", None)
        if not ref or self.registry is None:
            return
        try:
            self.registry.get(ref, kind=VECTOR_KINDS)
        except ModelNotFound as exc:
            raise InvalidInput(
                f"unknown embeddings model {ref!r}: {exc.detail}; list them with `palavra models list --kind word2vec`",
                field="embeddings",
            ) from exc

    def _check_columns(self, run: Any) -> None:
        """The text and label columns must be in the training and validation files, as far as a look at their
        header shows, before the job is queued (a missing one failed only in the worker). A catalogue file that
        would have to be downloaded first is left to the job."""
        from pipelines.classifier.data import check_columns

        catalog = open_catalog(self.settings)
        for spec in (run.train, run.validation):
            if not spec:
                continue
            if is_dataset(spec):
                paths = catalog.local(spec) or []
            else:
                try:
                    paths = [self.data_root.resolve(spec)]
                except InvalidInput:  # a folder: the reading says what it takes
                    paths = []
            for path in paths:
                check_columns(path, text_column=run.text_column, label_column=run.label_column)

    def _check_collection(self, run: Any) -> None:
        """A collection job's name must be free and valid, and its encoder a registered encoder, before it is
        queued (each failed only in the worker, after the job was accepted)."""
        from models.collection import check_name

        check_name(run.name)
        if run.name in open_collections(self.settings).names():
            raise Conflict(
                f"collection {run.name!r} already exists; add documents to it or pick another name"
            )
        if self.registry is None:
            return
        try:
            self.registry.get(run.encoder, kind="encoder")
        except ModelNotFound as exc:
            raise InvalidInput(
                f"unknown encoder {run.encoder!r}: {exc.detail}; list them with `palavra models list --kind encoder`",
                field="encoder",
            ) from exc

    def get(self, job_id: str) -> Job:
        self._reap()
        return self.store.get(job_id)

    def _reap(self) -> None:
        try:
            self.reaper.maybe_run()
        except DatabaseUnavailable as exc:
            log.warning("reaper: %s", exc.detail)

    def list_jobs(
        self, *, state: JobState | None = None, kind: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Job], int]:
        self._reap()
        return self.store.list_jobs(state=state, kind=kind, limit=limit, offset=offset)

    def logs(self, job_id: str, *, after: int = 0, limit: int = 200) -> list[JobLogLine]:
        return self.store.logs(job_id, after=after, limit=limit)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (its worker stops it within a second; nothing is registered).

        Raises:
            JobNotFound, Conflict: see :meth:`JobStore.cancel`.
        """
        job = self.store.cancel(job_id)  # logs "cancelled" with the change
        if job.worker is None:
            # never started: no worker will clean up after it
            remove_leftovers(self.store, job_id, settings=self.settings)
        return job
