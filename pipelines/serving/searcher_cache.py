"""The searchers a serving worker keeps open, one per collection, checked against the disk before they answer."""

from __future__ import annotations

import logging
import threading
import time

from models.collection import CollectionStore, Stamp
from models.registry import Registry
from pipelines.serving.search import Searcher
from pipelines.text_encoder.served import TextEncoderModel, load_text_encoder

# how often a searcher cache looks for collections removed since it opened them
PRUNE_S = 5.0
# how often a cached searcher's files are checked against the disk (SearcherCache)
CHECK_S = 0.25

log = logging.getLogger(__name__)


class SearcherCache:
    """Searchers by collection name, opened again when the collection changes (adds and deletes show at once).

    Before a cached searcher answers, :meth:`get` checks that it still reads what is on disk: collection.json is the
    same generation and the same file (device, inode, size, mtime and ctime: a collection put back from a backup at
    the same generation is another file), and, at most every ``check_s`` seconds, that each file the searcher maps
    or holds open is the file it opened, whole (:meth:`Snapshot.changed <models.collection.Snapshot.changed>`: the
    same inode and size). Every search is checked with ``check_s=0``: under 16 concurrent requests that cost a
    vector search 0.26-0.74 ms of CPU (about 2.0 ms -> 2.3-2.7 ms on 100,000 documents; each stat hands the GIL to
    another request thread), so by default a worker looks every 0.25 s. Otherwise the
    searcher is dropped and the collection opened again, which refuses a truncated or missing file with
    :class:`IntegrityError` naming it; reading a memory map past the end of a truncated file would kill the process
    with SIGBUS. Measured on the reference machine, loaded (benchmarks/collection_check.py): the file check is 28-37
    us per search (9 stats; 10 with an HNSW index), the whole :meth:`get` of a cached searcher 44-56 us (one more
    stat, for collection.json), where reading collection.json, as :meth:`get` did before, cost 37-52 us. A file
    truncated after a check, before the next, can still kill the process: the check narrows the window to
    ``check_s`` (to the search itself with 0), it does not close it.

    Searchers of collections that were removed (or whose collection.json is another file) are dropped every
    ``prune_s`` seconds, as another collection is asked for, so their file descriptors and maps are released; one
    removed through this cache's server is dropped at once (:meth:`drop`).
    """

    def __init__(
        self,
        store: CollectionStore,
        registry: Registry,
        *,
        ann_min_docs: int | None = None,
        prune_s: float = PRUNE_S,
        check_s: float = CHECK_S,
    ) -> None:
        self.store = store
        self.registry = registry
        self.ann_min_docs = ann_min_docs
        self.prune_s = prune_s
        self.check_s = check_s
        self._items: dict[str, Searcher] = {}
        self._models: dict[str, TextEncoderModel] = {}
        self._lock = threading.Lock()
        self._pruned = time.monotonic()

    def model(self, ref: str) -> TextEncoderModel:
        """The encoder ``ref`` (a ``name@version``: immutable, so loaded once)."""
        item = self._models.get(ref)
        if item is None:
            item = self._models[ref] = load_text_encoder(self.registry, ref)
        return item

    def names(self) -> list[str]:
        """The collections with a searcher open."""
        return sorted(self._items)

    def cached(self, name: str) -> Searcher | None:
        """The cached searcher of ``name`` when it is current (:meth:`get`'s checks pass), without opening anything:
        None when :meth:`get` would have to open the collection (or refuse it)."""
        # searches of other collections release a removed one's maps too, not only get(); on the event loop, so
        # never waiting for the lock a collection being opened in a worker thread holds
        self._prune(wait=False)
        item = self._items.get(name)
        if item is None or self._stale(item, self.store.stamp(name)) is not None:
            return None
        return item

    def drop(self, name: str) -> None:
        """Forget the searcher of ``name`` now (it was removed): its file descriptors and maps go with the last
        search still holding it."""
        with self._lock:
            self._items.pop(name, None)

    def get(self, name: str) -> Searcher:
        """The searcher of the collection's current generation, checked against the disk (above).

        Raises:
            CollectionNotFound: no collection called ``name`` (a searcher it had is dropped).
            IntegrityError: collection.json or a file of the collection is damaged (naming it; a searcher it had
                is dropped).
        """
        self._prune()
        stamp = self.store.stamp(name)
        item = self._items.get(name)
        why = None if item is None else self._stale(item, stamp)
        if item is not None and why is None:
            return item
        stale = item
        with self._lock:
            # dropped first: its maps go with the last search holding it, even if opening again fails
            item = self._items.pop(name, None)
            if item is not None and item is stale and why:
                log.warning(
                    "collection %r: %s; opening it again", name, why
                )  # once: the next thread finds the new
            if item is None or item is stale or self._stale(item, self.store.stamp(name)) is not None:
                snapshot = self.store.read(name, with_index=self.ann_min_docs is not None)
                model = self.model(snapshot.info["encoder"])
                item = Searcher(snapshot, model, ann_min_docs=self.ann_min_docs)
            self._items[name] = item
        return item

    def _stale(self, item: Searcher, stamp: Stamp | None) -> str | None:
        """Why ``item`` no longer reads the collection as it is on disk (collection.json another file than the one
        it was opened with, or a file it maps changed: that change, in words), or None when it does. Its files are
        looked at once every ``check_s`` seconds at most (each stat hands the GIL to another request thread)."""
        if item.snapshot.stamp != stamp:
            return ""  # another generation, or a collection put back: nothing to warn about
        now = time.monotonic()
        if now - item.checked < self.check_s:
            return None
        changed = item.snapshot.changed()
        if changed is None:
            item.checked = now
            return None
        return "{} {}".format(*changed)

    def _prune(self, *, wait: bool = True) -> None:
        """Drop the searchers of collections removed, or put back from a backup, since they were opened (at most
        once every ``prune_s`` seconds). ``wait=False``: when another thread holds the lock (opening a collection),
        leave it to the next prune rather than wait."""
        now = time.monotonic()
        if now - self._pruned < self.prune_s:
            return
        stale = [
            (n, item) for n, item in list(self._items.items()) if item.snapshot.stamp != self.store.stamp(n)
        ]
        if not stale:
            self._pruned = now
            return
        if not self._lock.acquire(blocking=wait):
            return
        try:
            for name, item in stale:
                if self._items.get(name) is item:
                    del self._items[name]
            self._pruned = now
        finally:
            self._lock.release()
