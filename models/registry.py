"""The artifact registry: named models with immutable versions and movable aliases.

An artifact is a folder ``<home>/artifacts/<name>/<version>/`` holding ``config.json``, ``metadata.json`` (the
sha256 of every other file, metrics, library versions, created_at) and weights as ``.npy`` or ``.safetensors``.
Metadata rows live in SQLite by default or PostgreSQL when a URL says so (SQLAlchemy Core).

Only this module and the two it is built on touch artifacts: trainers write through :class:`ArtifactWriter`,
loaders read through :class:`Artifact` (both in :mod:`models.artifact`, speaking JSON, numpy arrays and
safetensors, never pickle); names, versions, aliases and what a bare name means are :mod:`models.references`.
A version is staged in a temporary folder and renamed into place once complete, so a crash never leaves half an
artifact under a real name; a checksum mismatch refuses to load. Work that belongs in every artifact of a kind (a
search index) is a :class:`CommitHook` added with :meth:`Registry.add_commit_hook`. The database is reached through
:class:`models.database.Database`, shared with the job store.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from models.artifact import Artifact, ArtifactWriter, ModelVersion, file_checksums, sha256_file
from models.database import Database, sqlite_url
from models.errors import Conflict, InvalidInput, ModelNotFound
from models.mapped import MappedFiles
from models.references import (
    ALIAS_RE,
    KINDS,
    MAX_VERSION,
    NAME_RE,
    NAME_RULE,
    PRODUCTION,
    REF_RE,
    RESERVED_ALIASES,
    a_kind,
    bare_missing,
    bare_version,
    check_alias,
    check_name,
    family,
    none_registered,
    parse_ref,
    version_number,
)
from models.registry_schema import library_versions, meta, model_aliases, model_versions
from models.staging import staged, sweep_staging

# the registry's public names: its own, and those of the artifact and reference modules it is built on
__all__ = [
    "ALIAS_RE",
    "KINDS",
    "MAX_VERSION",
    "NAME_RE",
    "NAME_RULE",
    "PRODUCTION",
    "REF_RE",
    "RESERVED_ALIASES",
    "Artifact",
    "ArtifactWriter",
    "CommitHook",
    "ModelVersion",
    "Registry",
    "bare_missing",
    "bare_version",
    "check_name",
    "library_versions",
    "model_aliases",
    "model_versions",
    "parse_ref",
    "sha256_file",
    "version_number",
]

log = logging.getLogger(__name__)


class CommitHook(Protocol):
    """Work done on every version a registry commits, just before it is hashed (e.g. building a search index).

    The contract:

    - a hook runs once per commit, after the ``create`` block has exited cleanly, in the order the hooks were added
      (:meth:`Registry.add_commit_hook`); a plain function taking the writer is a hook;
    - it receives the writer of the complete staged folder and may add files (``writer.file``, ``write_json``,
      ``write_array``) and keys of ``writer.metadata``; what it adds is checksummed like the trainer's own files;
    - raising aborts the commit: the hooks after it do not run, the staged folder is removed, no version is
      recorded and the exception reaches the caller of ``create``; nothing appears under a real name;
    - it never moves or removes the staged folder and never touches other versions.
    """

    def __call__(self, writer: ArtifactWriter, /) -> None: ...


@dataclass
class _Summary:
    name: str
    kind: str
    versions: list[int] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)


class Registry:
    """Named models, immutable versions and movable aliases over one database and one artifact folder.

    Args:
        home: folder whose ``artifacts/`` subfolder holds the version folders (shared by every worker).
        database_url: SQLAlchemy URL; ``None`` means SQLite at ``home/registry.db``.
        map_dir: where verified copies of memory-mapped files go (``None``: ``home/mapped``); see models/mapped.py.
    """

    def __init__(self, home: Path, database_url: str | None = None, *, map_dir: Path | None = None) -> None:
        self.home = Path(home)
        self.root = self.home / "artifacts"
        self.root.mkdir(parents=True, exist_ok=True)
        self.mapped = MappedFiles(map_dir or self.home / "mapped")
        self.mapped.sweep()  # copies left by processes that have ended (each live user holds a lock on its own)
        self.db = Database.open(database_url or sqlite_url(self.home), name="metadata database")
        self._commit_hooks: list[CommitHook] = []
        file = self.db.file.path if self.db.file is not None else None
        created = file if file is not None and not file.exists() else None  # by this process, in a moment
        self.db.create_tables(meta)
        if created is not None:
            self._warn_unlisted_versions(created)
        self._backfill_production()

    @property
    def engine(self) -> sa.Engine:
        """The database engine (the job store opens its tables on the same one)."""
        return self.db.engine

    def add_commit_hook(self, hook: CommitHook) -> None:
        """Run ``hook`` on every version committed from now on, after the hooks added before it."""
        self._commit_hooks.append(hook)

    @property
    def commit_hooks(self) -> tuple[CommitHook, ...]:
        """The hooks every commit runs, in order."""
        return tuple(self._commit_hooks)

    def _warn_unlisted_versions(self, database: Path) -> None:
        """Say so when a new database was just created beside version folders it does not list.

        Most likely the old ``registry.db`` was deleted (``rm``, a cleanup script): the command that created the
        new one goes on (it may be what the user wants), but a running server follows that file and drops every
        model, so the user hears of it now rather than from a server that has nothing to serve.
        """
        folders = [
            p
            for p in self.root.glob("*/*")
            if p.name.isdigit() and not p.parent.name.startswith(".") and p.is_dir()
        ]
        if folders:
            log.warning(
                "created a new, empty registry database %s, but %d model version folder(s) under %s exist that it "
                "does not list; if the old database was deleted, put it back from a backup (docs/http.md)",
                database,
                len(folders),
                self.root,
            )

    def _backfill_production(self) -> None:
        """Give every name registered before ``production`` was automatic the alias, at the version it meant then.

        A bare name used to mean the newest version; pinning that version keeps what such names answer today and
        stops them moving when a new version arrives.
        """
        with self.db.begin() as conn:
            has_alias = sa.select(model_aliases.c.name).where(model_aliases.c.alias == PRODUCTION)
            rows = conn.execute(
                sa.select(model_versions.c.name, sa.func.max(model_versions.c.version).label("v"))
                .where(model_versions.c.name.not_in(has_alias))
                .group_by(model_versions.c.name)
            ).all()
            for row in rows:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            model_aliases.insert().values(
                                name=row.name, alias=PRODUCTION, version=row.v, updated_at=datetime.now(UTC)
                            )
                        )
                except SAIntegrityError:
                    continue  # another process pinned it at the same moment

    def ping(self) -> None:
        """Raise :class:`~models.errors.DatabaseUnavailable` when the database does not answer."""
        self.db.ping()

    def check_file(self) -> None:
        """Raise :class:`~models.errors.DatabaseGone` when the SQLite file was deleted while open (one ``stat``)."""
        self.db.check_file()

    # -- writing ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def create(
        self, name: str, kind: str, *, aliases: tuple[str, ...] = ("latest",)
    ) -> Iterator[ArtifactWriter]:
        """Stage a new version of ``name``; commit it when the block exits cleanly, discard it otherwise.

        The block writes files through the yielded writer and may fill ``writer.metadata`` (metrics, data hash,
        config). On exit the registry hashes every file, writes ``metadata.json``, renames the folder into
        ``artifacts/<name>/<version>`` and records the version; ``writer.version`` then holds the result.
        """
        self.check_kind(name, kind)
        # what writers killed mid-way (SIGKILL, an unhandled SIGTERM) left: gigabytes, for a large model
        swept = sweep_staging(self.root)
        if swept:
            log.info("removed %d staging folder(s) that stopped registrations left", swept)
        with staged(self.root) as staging:  # removed on any exit; renamed into place on success
            writer = ArtifactWriter(staging, name=name, kind=kind)
            yield writer
            writer.version = self._commit(writer, aliases=aliases)  # type: ignore[attr-defined]

    def check_kind(self, name: str, kind: str) -> None:
        """Refuse, before any work, a version of ``kind`` under a name that holds another family of model.

        Raises:
            InvalidInput: a bad name or an unknown kind.
            Conflict: ``name`` holds models of another family (a classifier under a word-vector model's name).
        """
        check_name(name)
        if kind not in KINDS:
            raise InvalidInput(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
        with self.db.begin() as conn:
            self._refuse_another_kind(conn, name, kind)

    @staticmethod
    def _refuse_another_kind(conn: sa.Connection, name: str, kind: str) -> None:
        """Conflict when the version ``name`` means (its production alias, else its newest) is of another family.

        The version a name means decides, not every version it ever had: a name registered before names kept one
        kind can still take new versions of the kind it answers as.
        """
        production = conn.execute(
            sa.select(model_versions.c.kind)
            .join(
                model_aliases,
                sa.and_(
                    model_aliases.c.name == model_versions.c.name,
                    model_aliases.c.version == model_versions.c.version,
                ),
            )
            .where(model_versions.c.name == name, model_aliases.c.alias == PRODUCTION)
        ).scalar()
        held = (
            production
            or conn.execute(
                sa.select(model_versions.c.kind)
                .where(model_versions.c.name == name)
                .order_by(model_versions.c.version.desc())
                .limit(1)
            ).scalar()
        )
        if held is not None and family(held) != family(kind):
            raise Conflict(
                f"model {name!r} holds {a_kind(held)} model; {a_kind(kind)} model needs another name (the "
                "versions of one name are of one kind, so that the name answers the same routes whichever "
                "version it means)",
                model=name,
            )

    def _commit(self, writer: ArtifactWriter, *, aliases: tuple[str, ...]) -> ModelVersion:
        for hook in self._commit_hooks:
            hook(writer)
        files = file_checksums(writer.path, skip={"metadata.json"})
        created = datetime.now(UTC)
        meta = {
            "name": writer.name,
            "kind": writer.kind,
            "created_at": created.isoformat(),
            "files": files,
            "versions": library_versions(),
            **writer.metadata,
        }
        writer.write_json("metadata.json", meta)
        for rel in [
            *files,
            "metadata.json",
        ]:  # versions are immutable: nothing should open their files to write
            (writer.path / rel).chmod(0o444)
        (self.root / writer.name).mkdir(parents=True, exist_ok=True)
        for _attempt in range(1000):
            version = self._next_version(writer.name)
            final = self.root / writer.name / str(version)
            if final.exists():
                continue
            try:
                # atomic; fails (non-empty target) when another writer took the same number first
                os.rename(writer.path, final)
            except OSError:
                continue
            try:
                with self.db.begin() as conn:
                    if (
                        self.db.dialect == "postgresql"
                    ):  # one registration of a name at a time, across processes
                        conn.execute(
                            sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": writer.name}
                        )
                    # again, in the transaction that registers: another process may have registered the name
                    # with another kind while this one trained
                    self._refuse_another_kind(conn, writer.name, writer.kind)
                    conn.execute(
                        model_versions.insert().values(
                            name=writer.name,
                            version=version,
                            kind=writer.kind,
                            path=final.relative_to(self.root).as_posix(),
                            created_at=created,
                            metadata_json=json.dumps(meta, ensure_ascii=False, default=str),
                        )
                    )
                    for alias in aliases:
                        self._upsert_alias(conn, writer.name, alias, version)
                    if PRODUCTION not in aliases:
                        self._claim_production(conn, writer.name, version)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                raise
            return self.get(f"{writer.name}@{version}")
        raise Conflict(f"could not allocate a version number for {writer.name!r}")  # pragma: no cover

    def _next_version(self, name: str) -> int:
        with self.db.begin() as conn:
            current = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(model_versions.c.name == name)
            ).scalar()
        on_disk = [int(p.name) for p in (self.root / name).iterdir() if p.name.isdigit()]
        return max([current or 0, *on_disk]) + 1

    @staticmethod
    def _upsert_alias(conn: sa.Connection, name: str, alias: str, version: int) -> None:
        now = datetime.now(UTC)
        updated = conn.execute(
            model_aliases.update()
            .where(model_aliases.c.name == name, model_aliases.c.alias == alias)
            .values(version=version, updated_at=now)
        )
        if updated.rowcount == 0:
            try:
                with conn.begin_nested():
                    conn.execute(
                        model_aliases.insert().values(name=name, alias=alias, version=version, updated_at=now)
                    )
            except SAIntegrityError:
                conn.execute(
                    model_aliases.update()
                    .where(model_aliases.c.name == name, model_aliases.c.alias == alias)
                    .values(version=version, updated_at=now)
                )

    @staticmethod
    def _claim_production(conn: sa.Connection, name: str, version: int) -> None:
        """Point ``production`` at ``version`` when the name has none yet (its first version); never move it."""
        taken = conn.execute(
            sa.select(model_aliases.c.version).where(
                model_aliases.c.name == name, model_aliases.c.alias == PRODUCTION
            )
        ).first()
        if taken is not None:
            return
        try:
            with conn.begin_nested():
                conn.execute(
                    model_aliases.insert().values(
                        name=name, alias=PRODUCTION, version=version, updated_at=datetime.now(UTC)
                    )
                )
        except SAIntegrityError:
            return  # a concurrent first version claimed it

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``name@alias`` at ``version`` (which must exist); returns that version."""
        # before a reference is built from it: 'w@' was reported as "invalid model reference 'w@@1'"
        check_name(name)
        check_alias(alias)
        target = self.get(f"{name}@{version}")
        # an alias moved to a damaged version made every request for it fail (503) until moved back
        problems = Artifact(target).problems()
        if problems:
            raise Conflict(
                f"{target.ref}: {problems[0]}; {name}@{alias} was not moved (`palavra doctor` lists every damaged "
                "file)",
                version=target.version,
            )
        with self.db.begin() as conn:
            self._upsert_alias(conn, name, alias, version)
        return self.get(target.ref)

    def annotate(self, ref: str, patch: dict[str, Any]) -> ModelVersion:
        """Merge ``patch`` into a version's metadata: results measured after registration (an index's recall).

        Files and their checksums never change; ``metadata.json`` is rewritten atomically beside them.
        """
        mv = self.get(ref)
        meta = {**mv.metadata, **patch}
        text = json.dumps(meta, ensure_ascii=False, default=str)
        with self.db.begin() as conn:
            conn.execute(
                model_versions.update()
                .where(model_versions.c.name == mv.name, model_versions.c.version == mv.version)
                .values(metadata_json=text)
            )
        tmp = mv.path / f".metadata.{uuid.uuid4().hex}.json"
        tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        tmp.chmod(0o444)
        os.replace(tmp, mv.path / "metadata.json")
        return self.get(mv.ref)

    def delete_alias(self, name: str, alias: str) -> int:
        """Remove ``name@alias``; returns the version it pointed at.

        Raises:
            InvalidInput: ``production`` (what a bare name means: move it instead) or ``latest`` (kept by the
                registry), or a bad name.
            ModelNotFound: no such model, or it has no such alias.
        """
        check_name(name)
        if not ALIAS_RE.fullmatch(alias):
            raise InvalidInput(f"invalid alias {alias!r}: start with a letter; letters, digits, '_' or '-'")
        if alias == PRODUCTION:
            raise InvalidInput(
                f"the {PRODUCTION} alias is what a bare model name means; move it to another version instead"
            )
        if alias.casefold() in RESERVED_ALIASES:
            raise InvalidInput(f"the alias {alias!r} is kept by the registry (always the newest version)")
        self.versions(name)  # ModelNotFound for an unknown name, with its suggestions
        with self.db.begin() as conn:
            version = conn.execute(
                sa.select(model_aliases.c.version).where(
                    model_aliases.c.name == name, model_aliases.c.alias == alias
                )
            ).scalar()
            conn.execute(
                model_aliases.delete().where(model_aliases.c.name == name, model_aliases.c.alias == alias)
            )
        if version is None:
            raise ModelNotFound(f"model {name!r} has no alias {alias!r}", model=name)
        return int(version)

    # -- reading ----------------------------------------------------------------------------------------------
    def _row_to_version(self, row: sa.Row[Any], aliases: tuple[str, ...]) -> ModelVersion:
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        return ModelVersion(
            name=row.name,
            version=row.version,
            kind=row.kind,
            path=self.root / row.path,
            created_at=created,
            metadata=json.loads(row.metadata_json),
            aliases=aliases,
        )

    def _aliases_of(self, conn: sa.Connection, name: str) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {}
        for row in conn.execute(
            sa.select(model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.name == name)
            .order_by(model_aliases.c.alias)
        ):
            out.setdefault(row.version, []).append(row.alias)
        return {k: tuple(v) for k, v in out.items()}

    def get(self, ref: str, *, kind: str | tuple[str, ...] | None = None) -> ModelVersion:
        """Resolve ``name``, ``name@N`` or ``name@alias``; a bare name means its ``production`` alias."""
        name, selector = parse_ref(ref)
        with self.db.begin() as conn:
            aliases = self._aliases_of(conn, name)
            if selector is None:
                version = bare_version(name, {(name, a): v for v, names in aliases.items() for a in names})
                if version is None and aliases:
                    raise bare_missing(name)
            elif (number := version_number(selector)) is not None:
                version = number
            else:
                version = next((v for v, a in aliases.items() if selector in a), None)
                if version is None and aliases:
                    raise ModelNotFound(f"model {name!r} has no alias {selector!r}", model=ref)
            row = None
            if version is not None:
                row = conn.execute(
                    sa.select(model_versions).where(
                        model_versions.c.name == name, model_versions.c.version == version
                    )
                ).first()
        if row is None:
            if not aliases:  # the name itself is unknown, not just this version or alias
                raise self._unknown_name(name, ref=ref)
            hint = "; `palavra models list` shows what is registered"
            raise ModelNotFound(f"model {ref!r} is not registered{hint}", model=ref)
        found = self._row_to_version(row, aliases.get(row.version, ()))
        kinds = (kind,) if isinstance(kind, str) else kind
        if kinds and found.kind not in kinds:
            raise InvalidInput(
                f"model {found.ref} is {a_kind(found.kind)} model; this needs {a_kind(*kinds)} model",
                model=ref,
            )
        return found

    def _unknown_name(self, name: str, *, ref: str) -> ModelNotFound:
        """The error for a name nothing was registered under, suggesting registered names spelled alike."""
        with self.db.begin() as conn:
            names = list(conn.execute(sa.select(model_versions.c.name).distinct()).scalars())
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        if not close:  # also catch case slips such as Machado for machado
            close = [n for n in names if n.lower() == name.lower()][:3]
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        return ModelNotFound(
            f"model {name!r} is not registered{hint} (`palavra models list` shows what is)",
            model=ref,
            suggestions=close,
        )

    def default(self, kinds: tuple[str, ...]) -> ModelVersion:
        """The model that answers when a request names none: the first name registered of these kinds.

        It resolves as its bare name does (its ``production`` alias), so registering other models, or new versions
        of this one, never changes what a request without a model gets; moving ``production`` does.
        """
        first = sa.func.min(model_versions.c.created_at)
        with self.db.begin() as conn:
            names = conn.execute(
                sa.select(model_versions.c.name)
                .where(model_versions.c.kind.in_(kinds))
                .group_by(model_versions.c.name)
                .order_by(first, model_versions.c.name)
            ).scalars()
            ordered = list(names)
        for name in ordered:
            # a registry written before a name kept one kind may hold these kinds under a name that means another
            found = self.get(name)
            if found.kind in kinds:
                return found
        raise ModelNotFound(none_registered(*kinds))

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first."""
        check_name(name)
        with self.db.begin() as conn:
            aliases = self._aliases_of(conn, name)
            rows = conn.execute(
                sa.select(model_versions)
                .where(model_versions.c.name == name)
                .order_by(model_versions.c.version)
            ).all()
        if not rows:
            raise self._unknown_name(name, ref=name)
        return [self._row_to_version(r, aliases.get(r.version, ())) for r in rows]

    def list(self, *, kind: str | None = None) -> list[ModelVersion]:
        """The newest version of every model (with its aliases), by name."""
        with self.db.begin() as conn:
            latest = (
                sa.select(model_versions.c.name, sa.func.max(model_versions.c.version).label("v"))
                .group_by(model_versions.c.name)
                .subquery()
            )
            query = sa.select(model_versions).join(
                latest,
                sa.and_(model_versions.c.name == latest.c.name, model_versions.c.version == latest.c.v),
            )
            if kind:
                if kind not in KINDS:
                    raise InvalidInput(f"unknown model kind {kind!r}; use {', '.join(KINDS)}")
                query = query.where(model_versions.c.kind == kind)
            rows = conn.execute(query.order_by(model_versions.c.name)).all()
            return [self._row_to_version(r, self._aliases_of(conn, r.name).get(r.version, ())) for r in rows]

    def alias_map(self) -> dict[tuple[str, str], int]:
        """Every ``(name, alias) -> version``; cheap, so serving workers poll it to notice moved aliases."""
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(model_aliases.c.name, model_aliases.c.alias, model_aliases.c.version)
            )
            return {(r.name, r.alias): r.version for r in rows}

    def open(self, ref: str, *, kind: str | tuple[str, ...] | None = None, verify: bool = True) -> Artifact:
        """The files of a version, checked against their sha256 before anything loads them."""
        artifact = Artifact(self.get(ref, kind=kind), self.mapped)
        if verify:
            artifact.verify()
        return artifact
