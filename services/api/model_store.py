"""Loaded models keyed by ``name@version``, and the alias snapshot each worker polls to swap models without a restart.

Each worker process holds one :class:`ModelStore`. A background thread reads the registry's aliases and newest
versions every ``model_refresh_s``; when they change it loads every version that a moved alias (or a bare name, or
a kind's default) now points at *before* publishing the new :class:`Snapshot` in one assignment. Requests resolve
names against whichever snapshot is current and keep a reference to the model they got, so a swap never fails a
request in flight: old versions answer until the new ones are ready, then idle old versions are dropped.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from models.errors import InvalidInput, ModelNotFound, NotReady, PalavraError
from models.references import VECTOR_KINDS, Kind, a_kind, none_registered
from models.registry import ModelVersion, Registry, bare_version, parse_ref, version_number

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the served types only: the CLI and the API start without torch (language models need it)
    from pipelines.classifier.predictor import TextClassifier
    from pipelines.lm.predictor import LanguageModel
    from pipelines.serving.served_vectors import ServedVectors
    from pipelines.text_encoder.served import TextEncoderModel

M = TypeVar("M")
# a wanted version that failed to load is tried again on a poll at most this often (loading checks every file's
# sha256: a damaged large model must not be hashed every 2 s)
RETRY_FAILED_S = 60.0
Key = tuple[str, int]
Loader = Callable[[Registry, ModelVersion], Any]


@dataclass(frozen=True)
class Group(Generic[M]):
    """The routes serving one type of model ``M``: the kinds they accept and the name their default goes by."""

    name: str
    kinds: tuple[str, ...]


EMBEDDINGS: Group[ServedVectors] = Group("embeddings", VECTOR_KINDS)
CLASSIFIER: Group[TextClassifier] = Group("classifier", (Kind.CLASSIFIER.value,))
ENCODER: Group[TextEncoderModel] = Group("encoder", (Kind.ENCODER.value,))
LM: Group[LanguageModel] = Group("lm", (Kind.LM.value,))
GROUPS: tuple[Group[Any], ...] = (EMBEDDINGS, CLASSIFIER, ENCODER, LM)


@dataclass
class Loaded(Generic[M]):
    """A model in memory and the registry version it came from."""

    version: ModelVersion
    model: M
    loaded_s: float
    last_used: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> Key:
        return (self.version.name, self.version.version)

    def describe(self) -> dict[str, Any]:
        return {"name": self.version.name, "version": self.version.version, "kind": self.version.kind}


@dataclass(frozen=True)
class Snapshot:
    """What names and aliases meant at one poll of the registry."""

    aliases: dict[tuple[str, str], int] = field(default_factory=dict)
    newest: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Key] = field(default_factory=dict)

    @property
    def fingerprint(self) -> tuple[frozenset[Any], frozenset[Any]]:
        return frozenset(self.aliases.items()), frozenset(self.newest.items())

    def bare(self, name: str) -> Key | None:
        """The version a bare name means (the registry's one rule: its production alias)."""
        version = bare_version(name, self.aliases)
        return (name, version) if version is not None else None

    def wanted(self) -> set[Key]:
        """Versions every worker keeps loaded: each kind's default and each production alias."""
        keys = set(self.defaults.values())
        keys.update((name, v) for (name, alias), v in self.aliases.items() if alias == "production")
        return keys


class ModelStore:
    """Resolve ``NAME[@VERSION|@ALIAS]`` to a loaded model; poll the registry and swap versions in the background.

    Args:
        registry: where versions and aliases are read.
        loaders: kind -> function loading a verified artifact into the object routes use.
        refresh_s: seconds between polls of the registry.
        max_idle_s: an unwanted version unused this long is dropped from memory.
        defaults: group (``embeddings``, ``classifier``) -> the model reference that answers requests naming no
            model; a group left out gets the first model of its kinds ever registered (:meth:`Registry.default`).
    """

    def __init__(
        self,
        registry: Registry,
        loaders: dict[str, Loader],
        *,
        refresh_s: float = 2.0,
        max_idle_s: float = 60.0,
        defaults: dict[str, str] | None = None,
    ) -> None:
        self.registry = registry
        self.configured_defaults = {g: ref for g, ref in (defaults or {}).items() if ref}
        self.loaders = loaders
        self.refresh_s = refresh_s
        self.max_idle_s = max_idle_s
        self.snapshot = Snapshot()
        self.started = False
        self.errors: dict[str, str] = {}
        self.last_poll_error: str | None = None
        self.on_change: Callable[[list[Loaded[Any]]], None] | None = None
        self._loaded: dict[Key, Loaded[Any]] = {}
        self._locks: dict[Key, threading.Lock] = {}
        self._mutex = threading.Lock()
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_retry = -math.inf

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, *, poll: bool = True) -> None:
        """Load what the registry says to serve now, then poll for moved aliases in a daemon thread."""
        try:
            self.refresh()
        except PalavraError as exc:
            self.last_poll_error = exc.detail
            log.warning("model store started without the registry: %s", exc.detail)
        self.started = True
        if poll:
            self._thread = threading.Thread(target=self._poll, name="palavra-model-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.refresh_s + 5)

    def _poll(self) -> None:
        while not self._stop.wait(self.refresh_s):
            try:
                self.refresh()
                self.last_poll_error = None
            except PalavraError as exc:
                self.last_poll_error = exc.detail
                log.warning("could not refresh models: %s", exc.detail)
            except Exception:
                log.exception("unexpected error while refreshing models")

    # -- polling and swapping ----------------------------------------------------------------------------------
    def _read_snapshot(self, aliases: dict[tuple[str, str], int], heads: list[ModelVersion]) -> Snapshot:
        defaults: dict[str, Key] = {}
        for group in GROUPS:
            configured = self.configured_defaults.get(group.name)
            if configured is not None:
                try:
                    mv = self.registry.get(configured, kind=group.kinds)
                except PalavraError as exc:
                    self.errors[f"default {group.name} model"] = exc.detail
                    continue
                self.errors.pop(f"default {group.name} model", None)
                defaults[group.name] = (mv.name, mv.version)
            else:
                try:  # not only from heads: a name's newest version may be of another kind than the one it means
                    mv = self.registry.default(group.kinds)
                except ModelNotFound:
                    continue
                defaults[group.name] = (mv.name, mv.version)
        return Snapshot(
            aliases=aliases,
            newest={mv.name: mv.version for mv in heads},
            kinds={mv.name: mv.kind for mv in heads},
            defaults=defaults,
        )

    def refresh(self) -> bool:
        """Poll once; load what moved, then publish the new snapshot. Returns whether anything changed."""
        with self._refreshing:  # the poller and an alias-moving request must not publish out of order
            return self._refresh()

    def _refresh(self) -> bool:
        old = self.snapshot
        aliases = self.registry.alias_map()
        heads = self.registry.list()
        newest = {mv.name: mv.version for mv in heads}
        if (frozenset(aliases.items()), frozenset(newest.items())) == old.fingerprint and self.started:
            return self._retry_failed(old)
        new = self._read_snapshot(aliases, heads)
        for key in sorted(self._targets(old, new)):
            try:
                self._ensure(key)
                self.errors.pop(f"{key[0]}@{key[1]}", None)
            except PalavraError as exc:
                self.errors[f"{key[0]}@{key[1]}"] = exc.detail
                self._last_retry = time.monotonic()  # the next try waits RETRY_FAILED_S
                log.error("could not load %s@%s: %s", key[0], key[1], exc.detail)
        self.snapshot = new  # one assignment: requests see the old or the new mapping, never half of each
        self._evict(new)
        self.registry.mapped.sweep()  # private copies of files that no worker maps any more
        if self.on_change is not None:
            self.on_change(self.loaded())
        return True

    def _retry_failed(self, snap: Snapshot) -> bool:
        """Load again, at most every :data:`RETRY_FAILED_S`, the wanted versions that failed to load (a full disk
        or a file being copied back): a worker does not serve without one for the rest of its life. Returns
        whether one loaded."""
        now = time.monotonic()
        failed = [
            key
            for key in sorted(snap.wanted())
            if key not in self._loaded and f"{key[0]}@{key[1]}" in self.errors
        ]
        if not failed or now - self._last_retry < RETRY_FAILED_S:
            return False
        self._last_retry = now
        loaded = False
        for key in failed:
            try:
                self._ensure(key)
            except PalavraError as exc:
                self.errors[f"{key[0]}@{key[1]}"] = exc.detail
                continue
            self.errors.pop(f"{key[0]}@{key[1]}", None)
            log.info("loaded %s@%s, which had failed to load", *key)
            loaded = True
        if loaded and self.on_change is not None:
            self.on_change(self.loaded())
        return loaded

    def _targets(self, old: Snapshot, new: Snapshot) -> set[Key]:
        """Versions to load before a swap: the new wanted set, and new targets of anything loaded now."""
        targets = new.wanted()
        loaded = set(self._loaded)
        for (name, alias), version in new.aliases.items():
            before = old.aliases.get((name, alias))
            if before is not None and (name, before) in loaded:
                targets.add((name, version))
        for name in new.newest:
            before_key, after_key = old.bare(name), new.bare(name)
            if before_key in loaded and after_key is not None:
                targets.add(after_key)
        return targets

    def _evict(self, snap: Snapshot) -> None:
        keep = (
            snap.wanted()
            | {snap.bare(n) for n in snap.newest}
            | {(n, v) for (n, _), v in snap.aliases.items()}
        )
        now = time.monotonic()
        with self._mutex:
            for key, item in list(self._loaded.items()):
                if key not in keep and now - item.last_used > self.max_idle_s:
                    del self._loaded[key]
                    log.info("dropped %s@%s from memory", *key)

    # -- loading -----------------------------------------------------------------------------------------------
    def _ensure(self, key: Key) -> Loaded[Any]:
        item = self._loaded.get(key)
        if item is not None:
            return item
        with self._mutex:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one load per version even when many requests ask at once
            item = self._loaded.get(key)
            if item is None:
                try:
                    item = self._load(key)
                except ModelNotFound:
                    with self._mutex:  # no lock kept per version that does not exist (anyone may ask for @N)
                        if self._locks.get(key) is lock:
                            del self._locks[key]
                    raise
                with self._mutex:
                    self._loaded[key] = item
        return item

    def _load(self, key: Key) -> Loaded[Any]:
        mv = self.registry.get(f"{key[0]}@{key[1]}")
        loader = self.loaders.get(mv.kind)
        if loader is None:
            raise NotReady(f"this server cannot load {mv.kind} models ({mv.ref})", model=mv.ref)
        started = time.perf_counter()
        try:
            model = loader(self.registry, mv)
        except PalavraError:
            raise
        except Exception as exc:  # a broken artifact or loader must not take the other models down with it
            log.exception("could not load %s", mv.ref)
            raise NotReady(
                f"{mv.ref} could not be loaded ({type(exc).__name__}: {exc})", model=mv.ref
            ) from exc
        item: Loaded[Any] = Loaded(version=mv, model=model, loaded_s=time.perf_counter() - started)
        log.info("loaded %s (%s) in %.2fs", mv.ref, mv.kind, item.loaded_s)
        return item

    # -- resolving requests ------------------------------------------------------------------------------------
    def _snapshot_key(self, ref: str | None, group: Group[Any]) -> Key | None:
        """The version ``ref`` names according to the current snapshot alone (None: the snapshot does not know)."""
        snap = self.snapshot
        if ref is None:
            return snap.defaults.get(group.name)
        name, selector = parse_ref(ref)
        version = version_number(selector) if selector is not None else None
        if version is not None:
            return (name, version)
        if selector is None:
            return snap.bare(name)
        version = snap.aliases.get((name, selector))
        return (name, version) if version is not None else None

    def _key_for(self, ref: str | None, group: Group[Any]) -> Key:
        found = self._snapshot_key(ref, group)
        if found is not None:
            return found
        if ref is None:
            configured = self.configured_defaults.get(group.name)
            if configured is not None:
                return self._key_for(
                    configured, group
                )  # the configured default, registered since the last poll
            raise ModelNotFound(none_registered(*group.kinds))
        mv = self.registry.get(ref)  # registered since the last poll, or not at all (ModelNotFound)
        return (mv.name, mv.version)

    def get(self, ref: str | None, group: Group[M]) -> Loaded[M]:
        """The loaded model answering ``ref`` (``None``: the group's default), loading it on first use.

        Raises:
            ModelNotFound: no such model, version or alias.
            InvalidInput: the model is of another kind than the route serves.
            NotReady: the store has not started.
        """
        if not self.started:
            raise NotReady("models are still loading; retry in a few seconds")
        configured = self.configured_defaults.get(group.name) if ref is None else None
        if configured is None:
            return self._get(ref, group)
        try:
            return self._get(ref, group)
        except (InvalidInput, ModelNotFound) as exc:  # the server's setting is wrong, not the request
            raise NotReady(
                f"this server's default {group.name} model, {configured!r}, does not answer ({exc.detail}); name "
                "a model in the request, or correct the server's setting",
                model=configured,
            ) from None

    def _get(self, ref: str | None, group: Group[M]) -> Loaded[M]:
        key = self._key_for(ref, group)
        kinds = group.kinds
        # the snapshot knows each name's newest version's kind: refuse that one before loading it (a registry
        # written before a name kept one kind may hold others under the same name: those are checked once loaded)
        known_kind = self.snapshot.kinds.get(key[0]) if self.snapshot.newest.get(key[0]) == key[1] else None
        if known_kind is not None and known_kind not in kinds:
            raise InvalidInput(
                f"model {key[0]!r} is {a_kind(known_kind)} model; this route needs {a_kind(*kinds)} model",
                model=ref,
            )
        item = self._ensure(key)
        if item.version.kind not in kinds:
            raise InvalidInput(
                f"model {item.version.ref} is {a_kind(item.version.kind)} model; this route needs "
                f"{a_kind(*kinds)} model",
                model=ref,
            )
        item.last_used = time.monotonic()
        return item

    def peek(self, ref: str | None, group: Group[M]) -> Loaded[M] | None:
        """The model :meth:`get` would return when it is already loaded and needs no registry query, else None.

        Never blocks (no database, no loading), so ``async`` routes can call it on the event loop; on None they
        hand the request to :meth:`get` in a worker thread, which also raises the proper errors.
        """
        if not self.started:
            return None
        try:
            key = self._snapshot_key(ref, group)
        except PalavraError:  # a malformed ref: get() reports it
            return None
        item = self._loaded.get(key) if key is not None else None
        if item is None or item.version.kind not in group.kinds:
            return None
        item.last_used = time.monotonic()
        return item

    def loaded(self) -> list[Loaded[Any]]:
        return sorted(self._loaded.values(), key=lambda item: item.key)

    def is_loaded(self, keys: Iterable[Key]) -> bool:
        return all(k in self._loaded for k in keys)
