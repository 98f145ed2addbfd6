"""The public data set catalogue: names -> local files, from a mirror or downloaded at pinned commits.

Entries live in ``catalogue.json`` beside this module (regenerate with ``scripts/build_catalogue.py MIRROR``). Each
file has a mirror-relative path, the raw-content URL of its upstream repository at a pinned commit, and a sha256
wherever the mirror's bytes are the upstream bytes. :meth:`DataCatalog.resolve` takes a name or a path:

* with a mirror, files come from it (sha256 checked where known);
* otherwise from ``cache_dir/datasets/`` (same layout), downloading what is missing: temp file, checksum, rename;
* ToLD-Br files are members of upstream zips; ELTeC novels are TEI XML converted to text (no sha256: converted);
* ``corpus-ptwiki`` (converted from 26,916 HTML pages) and ``analogies-lx-br-dev`` (a fixed sample) are mirror-only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from models.errors import DatasetNotFound, DownloadError, InvalidConfig
from pipelines.reading.tei import tei_to_text

log = logging.getLogger(__name__)

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")
RAW_GITHUB = "https://raw.githubusercontent.com"
_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class DataFile:
    """One file of a data set: where it sits in a mirror and where it comes from upstream."""

    mirror: str
    url: str | None = None
    sha256: str | None = None
    member: str | None = None
    convert: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A catalogue entry."""

    name: str
    kind: str
    description: str
    license: str
    files: tuple[DataFile, ...] = ()
    parts: tuple[str, ...] = ()
    text_field: str | None = None
    label_field: str | None = None
    label_names: dict[str, dict[str, str]] = field(default_factory=dict)  # label column -> label -> name
    mirror_only: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _parse(entry: dict[str, Any]) -> Dataset:
    known = {f.name for f in Dataset.__dataclass_fields__.values()}
    return Dataset(
        name=entry["name"],
        kind=entry["kind"],
        description=entry["description"],
        license=entry["license"],
        files=tuple(DataFile(**f) for f in entry.get("files", ())),
        parts=tuple(entry.get("parts", ())),
        text_field=entry.get("text_field"),
        label_field=entry.get("label_field"),
        label_names=entry.get("label_names", {}),
        mirror_only=entry.get("mirror_only"),
        extra={k: v for k, v in entry.items() if k not in known},
    )


@cache
def catalogue() -> dict[str, Dataset]:
    """Every entry of the catalogue, by name."""
    entries = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    return {e["name"]: _parse(e) for e in entries}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class DataCatalog:
    """Resolve catalogue names (or plain paths) to local files.

    Args:
        mirror: a local copy laid out as the catalogue's mirror paths (``PALAVRA_DATA_MIRROR``), or None.
        cache_dir: downloads go to ``cache_dir/datasets/``.
        base_url: replaces ``https://raw.githubusercontent.com`` in upstream URLs (a proxy, or a local copy
            served over ``file://`` / ``http://``).
    """

    def __init__(self, mirror: Path | None, cache_dir: Path, *, base_url: str | None = None) -> None:
        self.mirror = mirror
        self.cache_dir = cache_dir
        self.base_url = base_url.rstrip("/") if base_url else None
        self._verified: set[tuple[Path, int, int]] = set()

    @property
    def names(self) -> list[str]:
        return sorted(catalogue())

    def get(self, name: str) -> Dataset:
        """The entry called ``name``.

        Raises:
            DatasetNotFound: listing the known names.
        """
        try:
            return catalogue()[name]
        except KeyError:
            raise DatasetNotFound(
                f"no data set or file called '{name}'; known data sets: {', '.join(self.names)}",
                known=self.names,
            ) from None

    def sources(self, spec: str) -> list[str]:
        """The sources ``spec`` is made of: a catalogue entry's parts (recursively), else ``[spec]`` itself."""
        ds = catalogue().get(spec)
        if ds is None or not ds.parts:
            return [spec]
        return [s for part in ds.parts for s in self.sources(part)]

    def resolve(self, spec: str) -> list[Path]:
        """Local files for a catalogue name, or ``[path]`` for an existing file or folder.

        Raises:
            DatasetNotFound: ``spec`` is neither a known name nor an existing path.
            DownloadError: a download failed, a checksum did not match, or the entry needs a mirror.
        """
        if spec not in catalogue():
            path = Path(spec).expanduser()
            try:
                exists = path.exists()
            except OSError as exc:  # a name the filesystem refuses (too long, ...)
                raise DatasetNotFound(
                    f"no data set or file called '{spec[:200]}' ({exc.strerror or exc})", known=self.names
                ) from None
            if exists:
                return [path]
        ds = self.get(spec)
        if ds.parts:
            return [p for part in ds.parts for p in self.resolve(part)]
        return [self._file(ds, f) for f in ds.files]

    def local(self, spec: str) -> list[Path] | None:
        """The files of a catalogue name that are here already (mirror or download cache), found without
        downloading or checking them; None when one of them is not (or the name is not in the catalogue)."""
        if spec not in catalogue():
            return None
        ds = self.get(spec)
        if ds.parts:
            found = [self.local(part) for part in ds.parts]
            return None if any(f is None for f in found) else [p for f in found for p in f or []]
        paths = []
        for f in ds.files:
            here = [
                p
                for p in (
                    self.mirror / f.mirror if self.mirror is not None else None,
                    self.cache_dir / "datasets" / f.mirror,
                )
                if p is not None and p.is_file()
            ]
            if not here:
                return None
            paths.append(here[0])
        return paths

    def _file(self, ds: Dataset, f: DataFile) -> Path:
        if self.mirror is not None:
            if (
                not self.mirror.is_dir()
            ):  # a typo in the path: downloads began and the mirror-only sets went missing
                raise InvalidConfig(
                    f"PALAVRA_DATA_MIRROR={self.mirror} is not a folder; point it at a copy of the data sets, or "
                    "unset it to download them"
                )
            local = self.mirror / f.mirror
            if local.is_file():
                self._verify(local, f, origin="mirror")
                return local
        cached = self.cache_dir / "datasets" / f.mirror
        if cached.is_file():
            self._verify(cached, f, origin="cache")
            return cached
        if ds.mirror_only or f.url is None:
            raise DownloadError(
                f"{ds.name} is available from a local mirror only ({ds.mirror_only or 'no upstream URL'}); "
                f"put the file at MIRROR/{f.mirror} and set PALAVRA_DATA_MIRROR=MIRROR"
            )
        self._download(f, cached)
        return cached

    def _verify(self, path: Path, f: DataFile, *, origin: str) -> None:
        if f.sha256 is None:
            return
        st = path.stat()
        key = (path, st.st_size, st.st_mtime_ns)
        if key in self._verified:
            return
        actual = sha256_file(path)
        if actual != f.sha256:
            raise DownloadError(
                f"{origin} file {path} does not match the pinned sha256 ({actual[:12]}… != {f.sha256[:12]}…); "
                "replace it with the pinned upstream version" + (" or delete it" if origin == "cache" else "")
            )
        self._verified.add(key)

    def _url(self, url: str) -> str:
        if self.base_url and url.startswith(RAW_GITHUB):
            return self.base_url + url[len(RAW_GITHUB) :]
        return url

    def _download(self, f: DataFile, target: Path) -> None:
        url = self._url(f.url or "")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
            fetched = Path(tmp) / "fetched"
            log.info("downloading %s", url)
            _fetch(url, fetched)
            result = Path(tmp) / "result"
            if f.member is not None:
                _extract_member(fetched, f.member, result, url=url)
            elif f.convert == "eltec-tei":
                tei_to_text(fetched, result)
            else:
                fetched.rename(result)
            if f.sha256 is not None and (actual := sha256_file(result)) != f.sha256:
                raise DownloadError(
                    f"{url}: sha256 {actual[:12]}… does not match the pinned {f.sha256[:12]}…; "
                    "the upstream file changed or the download was altered"
                )
            os.replace(result, target)


def _fetch(url: str, target: Path) -> None:
    if not url.startswith(("https://", "http://", "file://")):
        raise DownloadError(f"{url}: only http(s):// and file:// URLs are fetched")
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp, target.open("wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out, 1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(
            f"cannot download {url} ({reason}); check the network, or use a local mirror (PALAVRA_DATA_MIRROR)"
        ) from exc


def _extract_member(archive: Path, member: str, target: Path, *, url: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
            if not names:
                raise DownloadError(f"{url}: the zip has no member {member}")
            with zf.open(names[0]) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{url}: not a zip file ({exc}); the download may be truncated") from exc
