"""One preprocessing worker process: ``python -m pipelines.text.preprocess_worker`` (started by ``prepare_corpus``).

It reads a job as JSON on stdin (its slices of the input, the normalisation config, its part file), writes the
part file, and reports on stdout, one JSON object a line: ``{"bytes": n}`` as it reads, then ``{"result": ...}``,
``{"error": {"type": ..., "detail": ...}}`` for a palavra error, or ``{"crash": traceback}`` for a bug.

A plain subprocess rather than ``multiprocessing``: it does not re-import the parent's ``__main__`` (the whole CLI),
and it may be started from daemon processes such as celery workers, which ``multiprocessing`` refuses.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from models.errors import PalavraError
from pipelines.reading.corpus import CorpusLimits, Slice
from pipelines.text.normalize import NormalizeConfig
from pipelines.text.preprocess import write_part


def _emit(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def _exit_with_parent(parent_pid: int, out_path: Path) -> None:
    """Stop (and remove the part file) when the process that started this one is gone, e.g. a killed job."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    out_path.unlink(missing_ok=True)
    os._exit(1)


def run(job: dict[str, Any], out: TextIO) -> int:
    """Do one job; the exit status (0 done, 1 failed)."""
    try:
        result = write_part(
            [Slice.from_json(s) for s in job["slices"]],
            NormalizeConfig.model_validate(job["config"]),
            Path(job["out_path"]),
            text_field=job["text_field"],
            on_bytes=lambda n: _emit(out, {"bytes": n}),
            limits=CorpusLimits.from_json(job["limits"]) if "limits" in job else None,
        )
    except PalavraError as exc:
        _emit(out, {"error": {"type": type(exc).__name__, "detail": exc.detail}})
        return 1
    except Exception:
        _emit(out, {"crash": traceback.format_exc()})
        return 1
    _emit(out, {"result": dataclasses.asdict(result)})
    return 0


if __name__ == "__main__":
    # This process only tokenises: keep thinc (imported by spaCy) from importing torch, which costs ~1.3 s of
    # CPU and ~230 MB per worker for nothing. Only here, never in a process that imports this module.
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
    job = json.load(sys.stdin)
    if job.get("parent_pid"):
        watch = (int(job["parent_pid"]), Path(job["out_path"]))
        threading.Thread(target=_exit_with_parent, args=watch, daemon=True).start()
    sys.exit(run(job, sys.stdout))
