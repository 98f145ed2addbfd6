"""The one place palavra reads its environment: ``PALAVRA_*`` variables into :class:`Settings`."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.errors import InvalidConfig
from models.neighbor_table import DEFAULT_WIDTH
from pipelines.reading.corpus import CorpusLimits


class Settings(BaseSettings):
    """Runtime configuration; every field is ``PALAVRA_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PALAVRA_", extra="ignore")

    home: Path = Field(
        default=Path("~/.palavra"), description="Registry, artifacts, caches and logs live here."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL for metadata; default SQLite under PALAVRA_HOME."
    )
    data_mirror: Path | None = Field(
        default=None,
        description="A local copy of the public data sets, laid out as the catalogue's mirror paths.",
    )
    data_root: Path | None = Field(
        default=None,
        description="Jobs may read input files only under this folder (default: PALAVRA_HOME/data).",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated keys with the write scope: routes that change state, and reads "
        "(an entry 'sha256:HEX' gives a key's digest instead of the key).",
    )
    api_read_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated read-only keys (read routes when PALAVRA_PROTECT_READS is set).",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="A file of keys, one 'read:KEY' or 'write:KEY' per line ('write:sha256:HEX' for a digest).",
    )
    protect_reads: bool = Field(default=False, description="Require an API key for read routes too.")
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Celery broker for the celery backend."
    )
    job_backend: Literal["local", "celery"] = "local"
    job_queue: str = Field(
        default="palavra-jobs",
        min_length=1,
        description="Celery queue the API sends jobs to and workers read.",
    )
    local_workers: int = Field(default=1, ge=0, description="Job worker processes `palavra serve` starts.")
    local_worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How much lower the CPU priority of `palavra serve`'s job workers (and their jobs) is than the "
        "API's: a training job beside the server takes the cores the requests do not use.",
    )
    job_timeout_s: float = Field(
        default=120.0, gt=0, description="A running job silent this long is failed (its worker died)."
    )
    heartbeat_s: float = Field(default=5.0, gt=0)
    max_k: int = Field(default=1000, ge=1)
    max_batch: int = Field(default=1024, ge=1)
    max_text_chars: int = Field(default=20_000, ge=1)
    max_results: int = Field(
        default=100_000,
        ge=1,
        description="Results one request may ask for (the answer's size): words x k of a batch of neighbours, "
        "texts x labels of a classification.",
    )
    max_config_items: int = Field(
        default=10_000,
        ge=1,
        description="List and table entries one job config may hold in all (corpus files, label names, grid values ...).",
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    corpus_max_line_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1, description="Longest line a corpus may have (a job fails past it)."
    )
    corpus_max_decompressed_bytes: int = Field(
        default=8 * 1024**3, ge=1, description="Most bytes one compressed corpus file may expand to."
    )
    corpus_max_compression_ratio: float = Field(
        default=100.0,
        gt=1,
        description="Most a compressed corpus file may expand per byte (past its first 16 MiB).",
    )
    cache_max_bytes: int = Field(
        default=20 * 1024**3,
        ge=1,
        description="Prepared corpora kept in PALAVRA_HOME/cache/corpus (least recently used evicted past it).",
    )
    ann_min_vocab: int = Field(
        default=50_000,
        ge=1,
        description="Vocabularies this large are searched through an ANN index (see models/ann.py).",
    )
    collection_ann_min_docs: int = Field(
        default=50_000,
        ge=1,
        description="Collections this large get an HNSW index for vector search (exact scan below; docs/text.md).",
    )
    collection_check_s: float = Field(
        default=0.25,
        ge=0,
        description="How often a serving worker checks a cached collection's files against the disk (0: before "
        "every search; docs/text.md).",
    )
    collection_write_wait_s: float = Field(
        default=60.0,
        ge=0,
        description="How long an add or delete waits for another writer of the same collection before a 409.",
    )
    neighbor_table_width: int = Field(
        default=DEFAULT_WIDTH,
        ge=0,
        le=1000,
        description="Neighbours precomputed per word beside the ANN index (models/neighbor_table.py); 0 = none.",
    )
    default_model: str | None = Field(
        default=None,
        description="Word vectors that answer requests naming no model (NAME, NAME@VERSION or NAME@ALIAS); "
        "default: the first word-vector model registered. A bare name follows its production alias.",
    )
    default_classifier: str | None = Field(
        default=None,
        description="Classifier that answers /v1/classify requests naming no model; default: the first registered.",
    )
    model_refresh_s: float = Field(default=2.0, gt=0, description="How often workers look for moved aliases.")
    compute_threads: int = Field(default=1, ge=1, description="BLAS / torch threads in the serving process.")
    memory_trim_s: float = Field(
        default=10.0,
        ge=0,
        description="Seconds between returns of a worker's freed heap to the system (services/api/memory.py); 0 = never.",
    )
    classifier_engine: Literal["torch", "numpy"] = Field(
        default="numpy",
        description="How served classifiers predict: numpy (the default: no torch in the workers, ~250 MB less "
        "private memory each, so a second worker stays cheap) or torch (about 2x the texts/s on warm batches).",
    )
    map_dir: Path | None = Field(
        default=None,
        description="Where served models' memory-mapped files are copied and checked before mapping (models/mapped.py; "
        "default PALAVRA_HOME/mapped; a tmpfs such as /dev/shm/palavra keeps them in memory).",
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="Prometheus multiprocess folder; `palavra serve --workers N` sets it so /metrics sums workers.",
    )

    @field_validator("api_keys", "api_read_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator(
        "home", "data_mirror", "data_root", "map_dir", "metrics_dir", "api_keys_file", mode="after"
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'registry.db'}"

    @property
    def effective_data_root(self) -> Path:
        return self.data_root or self.home / "data"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def corpus_limits(self) -> CorpusLimits:
        """What preparing a corpus may cost (line length, decompression, the cache's size)."""
        return CorpusLimits(
            max_line_bytes=self.corpus_max_line_bytes,
            max_decompressed_bytes=self.corpus_max_decompressed_bytes,
            max_compression_ratio=self.corpus_max_compression_ratio,
            max_cache_bytes=self.cache_max_bytes,
        )


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once.

    Raises:
        InvalidConfig: a ``PALAVRA_*`` variable does not validate; one line per variable, naming it and its value
            (every command printed pydantic's traceback).
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = f"PALAVRA_{field.upper()}"
            value = os.environ.get(name)
            secret = "key" in field or "url" in field  # keys, and URLs that may hold a password
            shown = f"={value!r}" if value is not None and not secret else ""
            problems.append(f"{name}{shown}: {error['msg']}")
        raise InvalidConfig(
            "; ".join(problems), fields=[str(e["loc"][0]) for e in exc.errors() if e["loc"]]
        ) from None
