"""What a job that did not succeed leaves behind, removed: its half-written staging folder, reports and uploads,
and the prepared corpora made from those uploads (they could never be reused)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipelines.reading import corpus_cache
from services.jobs.inputs import UPLOADS_DIR
from services.jobs.store import JobStore
from services.settings import Settings

log = logging.getLogger(__name__)


REPORTS_DIR = "reports"


def job_output_dir(settings: Settings, job_id: str) -> Path:
    """Where a job writes files other than a model (a comparison's report): ``PALAVRA_HOME/reports/<job id>``."""
    return settings.home / REPORTS_DIR / job_id


def remove_leftovers(store: JobStore, job_id: str, *, settings: Settings) -> None:
    """Remove the job's staging folder (if its process died mid-write), its report folder and its uploads.

    Only folders inside ``PALAVRA_HOME/artifacts/.staging``, ``PALAVRA_HOME/reports`` and ``<data root>/uploads``
    are ever removed, whatever the job record says.
    """
    staging, uploads = store.cleanup_paths(job_id)
    _remove_inside(staging, settings.home / "artifacts" / ".staging")
    _remove_inside(str(job_output_dir(settings, job_id)), settings.home / REPORTS_DIR)
    _remove_inside(uploads, settings.effective_data_root / UPLOADS_DIR)
    if uploads:
        try:
            corpus_cache.prune(settings.cache_dir / "corpus")
        except OSError as exc:  # a cache that cannot be tidied now is tidied after the next preparation
            log.warning("could not prune the corpus cache: %s", exc)
    if staging:
        store.record_staging(job_id, None)


def _remove_inside(path: str | None, parent: Path) -> None:
    if not path:
        return
    target = Path(path)
    if not target.is_absolute():
        target = parent.parent / target
    try:
        target.resolve().relative_to(parent.resolve())
    except ValueError:
        log.warning("not removing %s: it is outside %s", target, parent)
        return
    if target.resolve() != parent.resolve():
        shutil.rmtree(target, ignore_errors=True)
