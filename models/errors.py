"""The one error tree of palavra.

Every error palavra raises on purpose derives from :class:`PalavraError`; the HTTP layer maps the branches
to status codes (``services/api/errors.py``) and the CLI prints ``detail`` and exits with code 2.

    PalavraError
    ├── InvalidInput                 bad argument or config (HTTP 422)
    │   ├── InvalidConfig            a training / normalisation config that does not validate
    │   ├── CorpusError              a corpus file that cannot be read (names the file and line)
    │   │   └── EmptyCorpus          nothing left to train on
    │   ├── DatasetError             a labelled dataset with a missing column, one class, unseen labels ...
    │   └── PathNotAllowed           a path outside the configured data root
    ├── NotFound                     (HTTP 404)
    │   ├── ModelNotFound            no such model, version or alias
    │   ├── UnknownWord              a query word outside the vocabulary (lists the words, suggests spellings)
    │   ├── DatasetNotFound          a name that is not in the dataset catalogue
    │   ├── CollectionNotFound       no document collection by that name
    │   └── JobNotFound
    ├── TooLarge                     a request over a configured limit (HTTP 413)
    ├── Conflict                     a state change that cannot happen now (HTTP 409)
    ├── NotReady                     models or the database are not available yet (HTTP 503)
    │   ├── DatabaseUnavailable
    │   │   └── DatabaseGone         the SQLite file was deleted while palavra had it open
    │   └── DiskFull                 no space left on the device a file was being written to
    ├── IntegrityError               an artifact whose files do not match their recorded sha256
    └── DownloadError                a public data set could not be fetched or did not match its checksum
"""

from __future__ import annotations

import errno
from typing import Any


class PalavraError(Exception):
    """Base of every error palavra raises on purpose.

    Args:
        detail: a sentence that says what went wrong and what to do about it.
        **extra: structured fields that travel with the error (e.g. ``words=[...]``); the API puts them in the
            response body beside ``error`` and ``detail``.
    """

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def code(self) -> str:
        return type(self).__name__


class InvalidInput(PalavraError):
    """An argument, file or config that palavra cannot use as given."""


class InvalidConfig(InvalidInput):
    """A configuration that does not validate."""


class CorpusError(InvalidInput):
    """A corpus file that cannot be read."""


class EmptyCorpus(CorpusError):
    """A corpus that yields no tokens after preprocessing."""


class DatasetError(InvalidInput):
    """A labelled dataset that cannot be trained or evaluated on."""


class PathNotAllowed(InvalidInput):
    """A path outside the configured data root."""


class NotFound(PalavraError):
    """Something named that does not exist."""


class ModelNotFound(NotFound):
    """No model, version or alias by that name."""


class UnknownWord(NotFound):
    """Query words outside a model's vocabulary."""


class DatasetNotFound(NotFound):
    """A dataset name that the catalogue does not know."""


class CollectionNotFound(NotFound):
    """No document collection by that name."""


class JobNotFound(NotFound):
    """No job with that id."""


class TooLarge(PalavraError):
    """A request over a configured limit."""


class Conflict(PalavraError):
    """A state change that cannot happen in the current state."""


class NotReady(PalavraError):
    """Something needed is not loaded or reachable yet."""


class DatabaseUnavailable(NotReady):
    """The metadata database cannot be reached."""


class DatabaseGone(DatabaseUnavailable):
    """The SQLite database file was deleted (or replaced) while palavra had it open: nothing is written to it."""


class DiskFull(NotReady):
    """No space (or quota) left on the device a file was being written to; retry once space is freed."""

    @classmethod
    def from_os_error(cls, exc: OSError) -> DiskFull | None:
        """The DiskFull an OSError means, or None: ENOSPC / EDQUOT, or numpy's short write (``tofile`` and
        ``save`` raise ``OSError("N requested and M written")`` without an errno when the device fills up)."""
        short_write = exc.errno is None and "requested and" in str(exc) and "written" in str(exc)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) and not short_write:
            return None
        where = f" writing {exc.filename}" if exc.filename else ""
        return cls(f"no space left on the device{where}; free disk space and try again (nothing was kept)")


class IntegrityError(PalavraError):
    """An artifact whose files do not match the sha256 recorded when it was written."""


class DownloadError(PalavraError):
    """A public data set could not be fetched, or its bytes did not match the pinned checksum."""
