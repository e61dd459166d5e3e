"""A worker's local read-through cache of stored files (exported models, data-set images).

Bounded in bytes, least recently used out first; each entry is keyed by the object's name and
version (its ETag, size and modification time), so a changed object is fetched again. Several worker
processes may share one cache folder: files appear by an atomic rename, and eviction runs under an
exclusive lock that a hit's shared lock keeps away while it marks the entry used.

Knows nothing of Django: it takes any Django-like storage (`open`, `size`, `get_modified_time`). A
storage that can say more (config.storage.PrivateS3Storage) offers `object_stat(name)` -> (etag,
size, modified) and `download_version(name, etag, fileobj)`, which fetches only that version
(False when the object has another one by now).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

# An entry used this recently is never evicted: another process may hold its path between the cache's
# answer and its own open or link.
KEEP_SECONDS = 60
# A download that died (its process killed) leaves a part file; one older than this is swept.
STALE_PART_SECONDS = 3600


class ObjectChanged(Exception):
    """The object changed while it was being fetched; the caller fetches it again."""


@dataclass(frozen=True)
class Version:
    """What changes when a stored object does."""

    size: int
    modified: float
    etag: str = ""

    @property
    def token(self) -> str:
        return f"{self.etag}|{self.size}|{self.modified:.6f}"


def object_version(storage, name: str) -> Version:
    """The object's version, in one request where the storage can say it (S3: a HEAD); FileNotFoundError
    when it is gone."""
    stat = getattr(storage, "object_stat", None)
    if stat is not None:
        etag, size, modified = stat(name)
        return Version(size=size, modified=modified, etag=etag)
    return Version(size=storage.size(name), modified=storage.get_modified_time(name).timestamp())


def _download(storage, name: str, version: Version, fh) -> None:
    download = getattr(storage, "download_version", None)
    if download is not None and version.etag:
        if not download(name, version.etag, fh):
            raise ObjectChanged(name)
        return
    with storage.open(name, "rb") as src:
        shutil.copyfileobj(src, fh, 2**20)
    if object_version(storage, name) != version:
        raise ObjectChanged(name)


class FileCache:
    """Stored objects as local files under `root`, at most about `max_bytes` of them."""

    def __init__(self, root: Path, *, max_bytes: int, keep_seconds: float = KEEP_SECONDS):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.keep_seconds = keep_seconds
        self.objects = self.root / "objects"
        self.parts = self.root / "tmp"
        self.hits = self.misses = 0
        self._count = threading.Lock()

    # ------------------------------------------------------------ reading

    def get(self, storage, name: str) -> Path:
        """A local file with the object's current bytes: from the cache when its version is there,
        else fetched now. FileNotFoundError when the object is gone from the store."""
        path, fetched = self._get(storage, name)
        if fetched:
            self.evict()
        return path

    def get_many(self, storage, names: Iterable[str], *, threads: int = 4) -> dict[str, Path]:
        """`get` for many objects, fetched a few at a time, with one eviction pass at the end."""
        names = list(dict.fromkeys(names))
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            results = list(pool.map(lambda n: self._get(storage, n), names))
        if any(fetched for _, fetched in results):
            self.evict()
        return {name: path for name, (path, _) in zip(names, results, strict=True)}

    def link(self, storage, items: Iterable[tuple[str, Path]], *, threads: int = 4) -> None:
        """Put each object `name` at its `dest` path (name, dest pairs), hard-linked from the cache
        where the file system allows, else copied. The link is the caller's own: evicting the cache's
        entry later leaves it whole (a training job's data set stays put while the job runs)."""
        items = list(items)

        def one(item):
            name, dest = item
            path, fetched = self._get(storage, name)
            dest = Path(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, dest)
            except OSError:  # another file system (EXDEV), or links not allowed: a copy of our own
                shutil.copyfile(path, dest)
            return fetched

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            fetched = list(pool.map(one, items))
        if any(fetched):
            self.evict()

    def _get(self, storage, name: str) -> tuple[Path, bool]:
        for _ in range(3):
            version = object_version(storage, name)
            path = self._path(name, version)
            if self._touch(path, version.size):
                with self._count:
                    self.hits += 1
                return path, False
            try:
                self._fetch(storage, name, version, path)
            except ObjectChanged:
                continue  # written anew while we read it: ask for its version again
            with self._count:
                self.misses += 1
            return path, True
        raise ObjectChanged(f"{name} kept changing while it was fetched")

    def _path(self, name: str, version: Version) -> Path:
        key = hashlib.sha256(f"{name}\n{version.token}".encode()).hexdigest()
        suffix = PurePosixPath(name).suffix
        suffix = suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix) else ""
        return self.objects / key[:2] / f"{key}{suffix}"

    def _touch(self, path: Path, size: int) -> bool:
        """Mark a cached entry used now, under the shared lock, so that an eviction either ran before
        (the entry is gone: fetch it) or runs after (the entry is fresh: kept)."""
        with self._lock(fcntl.LOCK_SH):
            try:
                if path.stat().st_size != size:  # a file cut short (a crash mid-write): fetch again
                    return False
                os.utime(path)
            except FileNotFoundError:
                return False
        return True

    def _fetch(self, storage, name: str, version: Version, path: Path) -> None:
        self.parts.mkdir(parents=True, exist_ok=True)
        part = self.parts / f"{uuid.uuid4().hex}.part"
        try:
            with open(part, "wb") as fh:
                _download(storage, name, version, fh)
            if part.stat().st_size != version.size:
                raise ObjectChanged(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Atomic on one file system: a reader sees the whole file or none. Two processes fetching
            # the same version both rename the same bytes into place.
            os.replace(part, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()

    # ------------------------------------------------------------ bounding

    def usage(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _entries(self) -> list[tuple[float, int, Path]]:
        entries = []
        with contextlib.suppress(FileNotFoundError):
            for folder in os.scandir(self.objects):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    for entry in os.scandir(folder.path):
                        with contextlib.suppress(FileNotFoundError):
                            st = entry.stat()
                            entries.append((st.st_mtime, st.st_size, Path(entry.path)))
        return entries

    def evict(self) -> int:
        """Remove the least recently used entries until the cache fits `max_bytes` (entries used in the
        last `keep_seconds` stay, even past the bound); returns the bytes freed."""
        freed = 0
        with self._lock(fcntl.LOCK_EX):
            entries = sorted(self._entries(), key=lambda e: e[0])
            total = sum(size for _, size, _ in entries)
            cutoff = time.time() - self.keep_seconds
            for mtime, size, path in entries:
                if total <= self.max_bytes or mtime > cutoff:
                    break
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    freed += size
                total -= size
            self._sweep_parts()
        if freed:
            log.info("file cache %s: evicted %.1f MB, %.1f MB kept", self.root, freed / 2**20, total / 2**20)
        return freed

    def _sweep_parts(self) -> None:
        old = time.time() - STALE_PART_SECONDS
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.parts):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < old:
                        os.unlink(entry.path)

    @contextlib.contextmanager
    def _lock(self, kind: int):
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, kind)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
