"""What students keep in file storage: images stored re-encoded under names no one can guess, and the
per-student quota they count against. Shared by the predictions' and the data sets' services; and the
worker's local cache of what it reads back from there."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

MSG_STORAGE_FULL = (
    "Your storage is full: your images take {used} of the {quota} each student may keep, and these would "
    "not fit. Delete a data set, or a model with its predictions, that you no longer need, then try again."
)


@dataclass(frozen=True)
class Encoded:
    """An image ready to store: encoded small (see images.compact_bytes), with its thumbnail."""

    name: str
    data: bytes
    suffix: str
    thumb: bytes
    thumb_suffix: str

    @property
    def size(self) -> int:
        return len(self.data) + len(self.thumb)


def encode(name: str, image) -> Encoded:
    from mlworker.images import compact_bytes, thumbnail

    return Encoded(name, *compact_bytes(image), *thumbnail(image))


def random_name() -> str:
    """A stored file's name: random, so that no one can guess another user's file."""
    return uuid.uuid4().hex


def store_encoded(item: Encoded, prefix: str) -> tuple[str, str]:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    key = random_name()
    stored = default_storage.save(f"{prefix}/{key}{item.suffix}", ContentFile(item.data))
    thumb = default_storage.save(f"{prefix}/{key}-thumb{item.thumb_suffix}", ContentFile(item.thumb))
    return stored, thumb


def storage_check(*, user, adding: int, used: int | None = None) -> None:
    """Refuse, in words, `adding` bytes that would take the user past JOURNEY_STORAGE_QUOTA_MB."""
    from mlworker.selectors import storage_used

    used = storage_used(user=user) if used is None else used
    quota = settings.JOURNEY_STORAGE_QUOTA_MB * 2**20
    if used + adding > quota:
        raise ValidationError(
            MSG_STORAGE_FULL.format(used=megabytes(used), quota=megabytes(quota)), code="storage_quota"
        )


_file_cache = None


def file_cache():
    """This worker's cache of what it fetched from file storage (JOURNEY_CACHE_DIR, JOURNEY_CACHE_MB),
    shared by its processes: exported models for predictions, data-set images for training."""
    global _file_cache
    root, limit = Path(settings.JOURNEY_CACHE_DIR), settings.JOURNEY_CACHE_MB * 2**20
    if _file_cache is None or (_file_cache.root, _file_cache.max_bytes) != (root, limit):
        from mlworker.filecache import FileCache

        _file_cache = FileCache(root, max_bytes=limit)
    return _file_cache


def megabytes(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 2**20:.1f} MB"
