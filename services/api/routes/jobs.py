"""Batch training jobs over HTTP: submit, list, show, cancel, and a server-sent event stream of progress.

``POST /v1/jobs`` takes JSON (``{"kind", "config"}``) or a multipart form (``kind``, ``config`` as JSON or TOML
text or file, and the files the config names as ``upload:<filename>``). Uploads stream to the data root under
``PALAVRA_MAX_UPLOAD_BYTES``; every other body keeps the app-wide limit.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message

from models.errors import DiskFull, InvalidInput, NotReady, TooLarge
from pipelines.runs.config_io import validation_message
from pipelines.text.normalize import unicode_problem
from services.api.deps import SettingsDep, read_access, require_key
from services.api.job_schemas import (
    JobAccepted,
    JobDetail,
    JobKindName,
    JobLogOut,
    JobPage,
    JobRequest,
    JobStateName,
    JobSummary,
    detail_of,
    summary_of,
)
from services.api.schemas import ERROR_RESPONSES, WHOLE_NUMBER, WRITE_RESPONSES
from services.jobs.inputs import no_space, replace_uploads, safe_filename
from services.jobs.job import JobState
from services.jobs.service import JobService, new_job_id
from services.settings import Settings

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
# the one route that takes multipart uploads (PALAVRA_MAX_UPLOAD_BYTES, not the JSON limit)
UPLOAD_PATH = "/v1/jobs"

JobIdPath = Path(description="The job id returned by POST /v1/jobs.", max_length=64)
EVENT_POLL_S = 0.5
KEEPALIVE_S = 15.0
MAX_FORM_FILES = 16
MAX_CONFIG_BYTES = 1024 * 1024
LOG_LINES = 100

_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["kind", "config"],
                    "properties": {
                        "kind": {
                            "type": "string",
                            "enum": ["word2vec", "classifier", "compare", "lm", "compare_lm", "collection"],
                        },
                        "config": {
                            "type": "string",
                            "description": "The config as JSON or TOML (text or file).",
                        },
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Input files; the config names each as 'upload:<filename>'.",
                        },
                    },
                }
            },
        },
    }
}


def get_jobs(request: Request) -> JobService:
    """The app's job service, opened on first use over the registry's database."""
    service: JobService | None = getattr(request.app.state, "jobs", None)
    if service is None:
        registry = getattr(request.app.state, "registry", None)
        if registry is None:
            raise NotReady("the registry is not open yet; retry in a few seconds")
        service = JobService.open(request.app.state.settings, registry)
        request.app.state.jobs = service
    return service


JobsDep = Annotated[JobService, Depends(get_jobs)]


# -- submitting ----------------------------------------------------------------------------------------------
def _limited(request: Request, max_bytes: int) -> Request:
    """The request with a body that raises :class:`TooLarge` once more than ``max_bytes`` arrive."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(
            f"a job upload of {int(declared)} bytes is over this server's limit of {max_bytes} bytes "
            "(PALAVRA_MAX_UPLOAD_BYTES)",
            limit=max_bytes,
        )
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > max_bytes:
            raise TooLarge(
                f"a job upload of more than {max_bytes} bytes is over this server's limit "
                "(PALAVRA_MAX_UPLOAD_BYTES)",
                limit=max_bytes,
            )
        return message

    return Request(request.scope, receive)


async def _config_text(value: str | UploadFile | None) -> str:
    if value is None:
        raise InvalidInput("the form has no 'config' field; send the job's config as JSON or TOML")
    if isinstance(value, str):
        return value
    raw = await value.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise TooLarge(f"the config file is over {MAX_CONFIG_BYTES} bytes", limit=MAX_CONFIG_BYTES)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the config is not UTF-8 text") from None


def _parse_config(text: str) -> dict[str, Any]:
    """A JSON object or a TOML document."""
    try:
        data: Any = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"the config is neither a JSON object nor valid TOML: {exc}") from None
    except RecursionError:  # lists in lists hundreds deep: the parsers recurse once a level
        raise InvalidInput(
            "the config nests too deep to read (lists or tables hundreds of levels deep)"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput("the config must be a JSON object or a TOML document")
    return data


def _check_config(config: dict[str, Any], settings: Settings) -> None:
    """Refuse a config whose lists and tables name more entries than a job may (each entry costs a path check or
    more, and every read of the job carries them all), or that holds a string that is not Unicode text (JSON
    allows a lone surrogate escape; no path can hold one). A table's entries count as a list's do, so a limit on
    lists is not bypassed by a mapping (``label_names``, ``grid``) of as many keys."""
    items = -len(config)  # the config's own top-level fields are its shape, not entries
    pending: list[Any] = [config]
    while pending:
        value = pending.pop()
        if isinstance(value, dict | list):
            items += len(value)
            if items > settings.max_config_items:
                raise TooLarge(
                    f"the job config holds more than {settings.max_config_items} list or table entries (corpus "
                    "files, label names and the like), this server's limit (PALAVRA_MAX_CONFIG_ITEMS); name a "
                    "folder instead of its files",
                    limit=settings.max_config_items,
                )
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and (problem := unicode_problem(value)):
            raise InvalidInput(f"the config holds a string that is not Unicode text: {problem}")


def _save_uploads(
    service: JobService, settings: Settings, job_id: str, files: list[UploadFile]
) -> dict[str, str]:
    saved: dict[str, str] = {}
    stored: dict[str, str] = {}  # the name on disk -> the name sent
    for upload in files:
        name = upload.filename or "upload"
        if name in saved:
            raise InvalidInput(f"two uploaded files are called {name!r}; give them different names")
        stored_as = safe_filename(name)
        other = stored.setdefault(stored_as, name)
        if other != name:
            raise InvalidInput(
                f"uploaded files {other!r} and {name!r} would both be stored as {stored_as!r} "
                "(names keep letters, digits, '.', '_' and '-'); rename one"
            )
        upload.file.seek(0)
        saved[name] = service.data_root.save_upload(
            job_id, name, upload.file, max_bytes=settings.max_upload_bytes
        )
    return saved


def _check_form_fields(form: FormData) -> None:
    """``kind`` and ``config`` once each, and no other text field: a second one was taken silently (the last won),
    as was a field no job reads, where the query string and a JSON body refuse both. Files may come under any name.
    """
    texts = [key for key, value in form.multi_items() if not isinstance(value, UploadFile)]
    unknown = sorted({key for key in texts if key not in ("kind", "config")})
    if unknown:
        raise InvalidInput(
            f"unknown form field {', '.join(repr(k) for k in unknown)}; a job's form holds 'kind', 'config' and "
            "its files (docs/jobs.md)"
        )
    for key in ("kind", "config"):
        if len(form.getlist(key)) > 1:
            raise InvalidInput(f"the form gives {key!r} more than once; give it once")


async def _submit_multipart(request: Request, service: JobService, settings: Settings) -> JobSummary:
    try:
        form: FormData = await _limited(request, settings.max_upload_bytes).form(
            max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FILES, max_part_size=MAX_CONFIG_BYTES
        )
    except OSError as exc:  # the parser spools large parts to temporary files
        if not no_space(exc):
            raise
        raise DiskFull(
            "no space left on device for the upload's temporary files; free disk space and submit again"
        ) from exc
    _check_form_fields(form)
    kind = form.get("kind")
    if not isinstance(kind, str):
        raise InvalidInput(
            "the form has no 'kind' field (word2vec, classifier, compare, lm, compare_lm or collection)"
        )
    config = _parse_config(await _config_text(form.get("config")))
    _check_config(config, settings)
    files = [f for key, f in form.multi_items() if key != "config" and isinstance(f, UploadFile)]
    job_id = new_job_id()
    try:
        uploaded = await anyio.to_thread.run_sync(_save_uploads, service, settings, job_id, files)
        config = replace_uploads(config, uploaded)
        job = await anyio.to_thread.run_sync(lambda: service.submit(kind, config, job_id=job_id))
    except BaseException:
        service.data_root.remove_uploads(job_id)
        raise
    finally:
        await form.close()
    return summary_of(job)


async def _submit_json(request: Request, service: JobService, settings: Settings) -> JobSummary:
    try:
        body = JobRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, source="request body")) from None
    _check_config(body.config, settings)
    job = await anyio.to_thread.run_sync(lambda: service.submit(body.kind, body.config))
    return summary_of(job)


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    dependencies=[Depends(require_key)],
    responses={**WRITE_RESPONSES, 503: {"description": "The database or the job broker does not answer."}},
    openapi_extra=_SUBMIT_BODY,
)
async def submit_job(request: Request, response: Response, settings: SettingsDep) -> JobAccepted:
    """Queue a job (word2vec, classifier, compare, lm, compare_lm or collection); answers at once with its id and URL.

    The config is validated and its input files checked before anything is queued: a config error or a path
    outside the data root is a 422 and no job is recorded.
    """
    service = await anyio.to_thread.run_sync(get_jobs, request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        job = await _submit_multipart(request, service, settings)
    else:
        job = await _submit_json(request, service, settings)
    response.headers["Location"] = job.url
    return JobAccepted(id=job.id, kind=job.kind, state=job.state, url=job.url)


# -- reading and cancelling ----------------------------------------------------------------------------------
@router.get("", response_model=JobPage, dependencies=[Depends(read_access)], responses=ERROR_RESPONSES)
def list_jobs(
    service: JobsDep,
    state: JobStateName | None = Query(None, description="Only jobs in this state."),
    kind: JobKindName | None = Query(None, description="Only jobs of this kind."),
    limit: Annotated[int, Query(ge=1, le=500), WHOLE_NUMBER] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1), WHOLE_NUMBER] = 0,
) -> JobPage:
    """Jobs, newest first, one page at a time."""
    jobs, total = service.list_jobs(
        state=JobState(state) if state else None, kind=kind, limit=limit, offset=offset
    )
    return JobPage(items=[summary_of(j) for j in jobs], total=total, limit=limit, offset=offset)


@router.get(
    "/{job_id}", response_model=JobDetail, dependencies=[Depends(read_access)], responses=ERROR_RESPONSES
)
def show_job(service: JobsDep, job_id: str = JobIdPath) -> JobDetail:
    """One job: state, progress, config, error, the model it registered, and its last log lines."""
    job = service.get(job_id)
    return detail_of(job, service.logs(job_id, limit=LOG_LINES))


@router.delete(
    "/{job_id}",
    response_model=JobSummary,
    dependencies=[Depends(require_key)],
    responses={
        **WRITE_RESPONSES,
        409: {"description": "The job already ended, or is registering its model."},
    },
)
def cancel_job(service: JobsDep, job_id: str = JobIdPath) -> JobSummary:
    """Cancel a queued or running job; its worker stops it within a second and no model is registered."""
    return summary_of(service.cancel(job_id))


# -- server-sent events --------------------------------------------------------------------------------------
def _event(name: str, data: Any, *, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _last_event_id(request: Request) -> int:
    """The log line a reconnecting client saw last (``Last-Event-ID``, sent by EventSource): the stream goes on after
    it rather than sending every line again. Anything but a whole number is no id."""
    given = request.headers.get("last-event-id", "").strip()
    return int(given) if given.isdecimal() and len(given) <= 18 else 0


async def _events(request: Request, service: JobService, job_id: str) -> AsyncIterator[str]:
    last_seen: str | None = None
    last_seq = _last_event_id(request)
    idle = 0.0
    while True:
        job = await anyio.to_thread.run_sync(service.get, job_id)
        lines = await anyio.to_thread.run_sync(partial(service.logs, job_id, after=last_seq))
        for line in lines:
            last_seq = line.seq
            log_line = JobLogOut(seq=line.seq, at=line.at, line=line.line).model_dump(mode="json")
            yield _event("log", log_line, event_id=line.seq)
        summary = summary_of(job).model_dump(mode="json")
        snapshot = json.dumps(summary, sort_keys=True)
        if snapshot != last_seen:
            last_seen, idle = snapshot, 0.0
            yield _event("progress", summary)
        if job.state.terminal:
            yield _event("end", summary)
            return
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_POLL_S)
        idle += EVENT_POLL_S


@router.get(
    "/{job_id}/events",
    dependencies=[Depends(read_access)],
    responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
def job_events(request: Request, service: JobsDep, job_id: str = JobIdPath) -> StreamingResponse:
    """Server-sent events until the job ends: ``progress`` (the job summary, when it changes), ``log`` (each new
    log line, its ``id`` the line's number) and a final ``end``. A client that reconnects with ``Last-Event-ID``
    gets the log lines after that one."""
    service.get(job_id)  # 404 before the stream starts
    return StreamingResponse(
        _events(request, service, job_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
