"""API keys with scopes, kept only as sha256 digests.

Two scopes: ``read`` opens the read routes when ``PALAVRA_PROTECT_READS`` is set; ``write`` opens the routes that
change state (jobs, aliases) and reads too. Keys come from the environment or a file:

    PALAVRA_API_KEYS        comma-separated write keys
    PALAVRA_API_READ_KEYS   comma-separated read-only keys
    PALAVRA_API_KEYS_FILE   one ``SCOPE:KEY`` per line (``read`` or ``write``); ``#`` starts a comment

Anywhere a key is given, ``sha256:<64 hex digits>`` gives its digest instead (``printf %s KEY | sha256sum``), so a
file or an environment need not hold the key itself. Keys are random tokens, so one unsalted sha256 is enough to
make a leaked list useless; a presented key is hashed and compared against every digest in constant time. Neither
keys nor digests are ever logged or echoed in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from models.errors import InvalidConfig
from services.settings import Settings

log = logging.getLogger(__name__)

Scope = Literal["read", "write"]
HASH_PREFIX = "sha256:"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_FILE_LINE = "'read:KEY', 'write:KEY', 'read:sha256:HEX' or 'write:sha256:HEX'"


def key_digest(key: str) -> bytes:
    """The sha256 of a key as sent in a header (latin-1 there, so the bytes are the ones the client sent)."""
    try:
        raw = key.encode("latin-1")
    except UnicodeEncodeError:  # a configured key with characters past latin-1: its UTF-8 bytes
        raw = key.encode("utf-8", "surrogateescape")
    return hashlib.sha256(raw).digest()


def configured_digests(keys: list[str], *, where: str) -> list[bytes]:
    """The digests of configured keys (each a key, or ``sha256:HEX``); ``where`` names them in errors."""
    return [_configured_digest(key, where=f"{where}, entry {i}")[0] for i, key in enumerate(keys, start=1)]


def _configured_digest(entry: str, *, where: str) -> tuple[bytes, bool]:
    """The digest of a configured entry (a key, or ``sha256:HEX``) and whether it was given hashed."""
    if entry.startswith(HASH_PREFIX):
        hexdigest = entry[len(HASH_PREFIX) :].strip()
        if not _HEX_DIGEST.fullmatch(hexdigest):
            raise InvalidConfig(f"{where}: '{HASH_PREFIX}' must be followed by the key's 64 hex digits")
        return bytes.fromhex(hexdigest), True
    try:
        return hashlib.sha256(entry.encode("utf-8")).digest(), False
    except UnicodeEncodeError:
        raise InvalidConfig(f"{where}: a key holds bytes that are not UTF-8") from None


@dataclass(frozen=True, repr=False)
class KeyRing:
    """The digests of the configured keys with their scopes."""

    digests: tuple[tuple[bytes, Scope], ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        return f"KeyRing(write={self.count('write')}, read={self.count('read')})"

    @classmethod
    def from_settings(cls, settings: Settings, *, warn: bool = True) -> KeyRing:
        """Read the keys of ``settings`` (and its keys file).

        ``warn``: log a warning when the keys file holds keys in clear and other users may read it. ``palavra serve``
        reads the file once before its workers start and warns there; each worker's app reads it again quietly.

        Raises:
            InvalidConfig: the keys file is missing, unreadable or has a line that is not ``SCOPE:KEY``, or a
                ``sha256:`` entry is not 64 hex digits (the message names the line, never its content); or reads are
                protected and no key is configured at all.
        """
        entries: list[tuple[bytes, Scope]] = []
        sources: list[tuple[str, Scope, list[str]]] = [
            ("PALAVRA_API_KEYS", "write", settings.api_keys),
            ("PALAVRA_API_READ_KEYS", "read", settings.api_read_keys),
        ]
        for variable, scope, keys in sources:
            entries.extend((digest, scope) for digest in configured_digests(keys, where=variable))
        if settings.api_keys_file is not None:
            entries.extend(_read_file(settings.api_keys_file, warn=warn))
        ring = cls(tuple(entries))
        if settings.protect_reads and not entries:
            raise InvalidConfig(
                "PALAVRA_PROTECT_READS=true but no API key is configured (PALAVRA_API_KEYS, PALAVRA_API_READ_KEYS or "
                "a key in PALAVRA_API_KEYS_FILE): every request would be refused; add a key or unset it"
            )
        log.info("%s", ring.summary(settings))
        return ring

    def summary(self, settings: Settings) -> str:
        """What ``palavra serve`` says of its keys at start: how many of each scope, never a key."""
        reads = "reads need a key" if settings.protect_reads else "reads are open"
        return (
            f"API keys: {self.count('write')} with the write scope, {self.count('read')} read-only ({reads})"
        )

    def count(self, scope: Scope) -> int:
        return sum(1 for _, s in self.digests if s == scope)

    def scope_of(self, presented: str | None) -> Scope | None:
        """The scope of a presented key (``write`` when it has both), or None for no key or an unknown one.

        Every digest is compared, in constant time, whatever matches first.
        """
        if not presented:
            return None
        given = key_digest(presented)
        can_read = can_write = False
        for digest, scope in self.digests:
            match = hmac.compare_digest(given, digest)
            can_write |= match and scope == "write"
            can_read |= match
        return "write" if can_write else "read" if can_read else None


def _read_file(path: Path, *, warn: bool) -> list[tuple[bytes, Scope]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidConfig(f"PALAVRA_API_KEYS_FILE {path} cannot be read: {reason}") from None
    entries: list[tuple[bytes, Scope]] = []
    raw_keys = False
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        scope, _, value = text.partition(":")
        scope, value = scope.strip().lower(), value.strip()
        where = f"PALAVRA_API_KEYS_FILE {path}, line {number}"
        if scope not in ("read", "write") or not value:
            raise InvalidConfig(f"{where}: expected {_FILE_LINE}")
        digest, hashed = _configured_digest(value, where=where)
        raw_keys |= not hashed
        entries.append((digest, "write" if scope == "write" else "read"))
    if warn and raw_keys and path.stat().st_mode & 0o077:
        log.warning(
            "%s holds keys in clear and other users may read it: chmod 600 it, or store 'sha256:HEX' digests",
            path,
        )
    return entries
