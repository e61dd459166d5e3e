"""Writes for the students' own data sets: upload a zip, check it on the uploads queue, delete it, and
the housekeeping of checks that never finished and zips no check waits for."""

from __future__ import annotations

import logging
import re
import shutil
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mlworker.dispatch import dataset_dispatch, resend_before
from mlworker.models import DatasetState, UserDataset
from mlworker.services.storage import MSG_STORAGE_FULL, megabytes, random_name, storage_check

log = logging.getLogger(__name__)

MSG_DATASET_CHECK_STUCK = (
    "The check of this zip did not finish within {minutes} minutes (the checking service was down "
    "or stopped in the middle). Delete this data set and upload the zip again; a smaller zip is "
    "checked faster."
)


MIN_CLASSES, MIN_PER_CLASS = 2, 5


def dataset_upload(*, user, name: str, rule: str, upload) -> UserDataset:
    """Keep the zip in storage and queue its check; nothing of it is used before the check."""
    from django.core.files.storage import default_storage

    from mlworker.archives import RULES

    if rule not in RULES:
        raise ValidationError("Choose how the images are labelled.", code="rule")
    limit = settings.JOURNEY_MAX_DATASET_UPLOAD_MB * 2**20
    if upload.size > limit:
        raise ValidationError(
            f"The zip is {upload.size / 2**20:.0f} MB; the most we accept is {limit // 2**20} MB.", code="size"
        )
    # Refused here only when the storage is already full: the check, which knows the images' stored
    # size (much smaller than most zips), refuses a data set that would not fit.
    storage_check(user=user, adding=0)
    stored = default_storage.save(f"uploads/{random_name()}.zip", upload)
    with transaction.atomic():
        dataset = UserDataset.objects.create(
            owner=user, name=name.strip()[:100], rule=rule, upload=stored, stored_bytes=upload.size
        )
        transaction.on_commit(lambda: dataset_dispatch(dataset_id=dataset.pk))
    return dataset


def datasets_reap(*, now=None) -> list[int]:
    """Reject the uploads whose check did not finish within the time limit, and free their files."""
    from django.core.files.storage import default_storage

    now = now or timezone.now()
    timeout = settings.JOURNEY_DATASET_CHECK_TIMEOUT
    stuck = UserDataset.objects.filter(state=DatasetState.CHECKING, created_at__lt=now - timedelta(seconds=timeout))
    rejected = []
    for dataset in stuck.only("id", "upload"):
        if UserDataset.objects.filter(pk=dataset.pk, state=DatasetState.CHECKING).update(
            state=DatasetState.REJECTED, upload="", files=[], samples=[],
            error_message=MSG_DATASET_CHECK_STUCK.format(minutes=max(1, timeout // 60)),
        ):  # fmt: skip
            if dataset.upload:
                default_storage.delete(dataset.upload)
            _delete_tree(default_storage, f"datasets/{dataset.pk}")  # what a dead check had written
            rejected.append(dataset.pk)
    if rejected:
        log.warning("data sets %s: check not finished within %s s; rejected", rejected, timeout)
    return rejected


def uploads_sweep(*, now=None) -> list[str]:
    """Delete the zips in `uploads/` older than the check's time limit that no check waits for: a
    check that died with its worker (it had taken the zip off its row) or a data set deleted meanwhile."""
    from django.core.files.storage import default_storage

    now = now or timezone.now()
    old = now - timedelta(seconds=settings.JOURNEY_DATASET_CHECK_TIMEOUT)
    try:
        _, names = default_storage.listdir("uploads")
    except (FileNotFoundError, NotADirectoryError):
        return []
    waiting = set(
        UserDataset.objects.filter(state=DatasetState.CHECKING).exclude(upload="").values_list("upload", flat=True)
    )
    removed = []
    for name in sorted(names):
        path = f"uploads/{name}"
        if path in waiting:
            continue
        try:
            if default_storage.get_modified_time(path) >= old:
                continue
        except FileNotFoundError:
            continue
        default_storage.delete(path)
        removed.append(path)
    if removed:
        log.warning("removed %s orphaned upload(s): %s", len(removed), removed)
    return removed


def _delete_tree(storage, prefix: str) -> None:
    try:
        folders, files = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        storage.delete(f"{prefix}/{name}")
    for folder in folders:
        _delete_tree(storage, f"{prefix}/{folder}")


def datasets_redispatch(*, now=None) -> list[int]:
    """Uploads whose check was never taken (broker down, or message lost): send the check again."""
    now = now or timezone.now()
    timeout = settings.JOURNEY_DATASET_CHECK_TIMEOUT
    waiting = UserDataset.objects.filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=resend_before(now, timeout)),
        state=DatasetState.CHECKING,
        created_at__gte=now - timedelta(seconds=timeout),
    ).exclude(upload="")  # an empty upload means a worker has claimed the check
    return [pk for pk in waiting.order_by("created_at").values_list("pk", flat=True) if dataset_dispatch(dataset_id=pk)]


def _folder_for(label: str, taken: set[str]) -> str:
    # Folder names come from our own slug, never from the archive's paths.
    base = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "class"
    folder, n = base, 2
    while folder in taken:
        folder, n = f"{base}-{n}", n + 1
    taken.add(folder)
    return folder


def dataset_check_run(*, dataset_id: int) -> UserDataset:
    """Read the uploaded zip, keep the usable images re-encoded, and decide whether it can train."""
    import tempfile

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from mlworker.archives import ArchiveRejected, Item, Limits, scan_zip
    from mlworker.images import compact_bytes, thumbnail
    from mlworker.selectors import storage_used

    dataset = UserDataset.objects.get(pk=dataset_id)
    upload = dataset.upload
    # Claim the check: a redelivered message finds the upload already taken and does nothing.
    if not upload or not UserDataset.objects.filter(pk=dataset_id, state=DatasetState.CHECKING, upload=upload).update(
        upload=""
    ):
        return dataset
    limits = Limits(max_files=settings.JOURNEY_DATASET_MAX_FILES, fit=settings.JOURNEY_MAX_IMAGE_SIZE)
    # What the user may still store: the quota less all else they keep (this upload's zip aside).
    room = settings.JOURNEY_STORAGE_QUOTA_MB * 2**20 - (storage_used(user=dataset.owner) - dataset.stored_bytes)
    prefix = f"datasets/{dataset.pk}"
    folders: dict[str, str] = {}
    counts: dict[str, int] = {}
    files, samples, skipped = [], [], []
    written = sample_bytes = 0
    try:
        with tempfile.NamedTemporaryFile(suffix=".zip") as local:
            with default_storage.open(upload, "rb") as src:
                shutil.copyfileobj(src, local)
            local.flush()
            for entry in scan_zip(local.name, rule=dataset.rule, limits=limits):
                if not isinstance(entry, Item):
                    skipped.append([entry.name, entry.reason])
                    continue
                folder = folders.get(entry.label) or folders.setdefault(
                    entry.label, _folder_for(entry.label, set(folders.values()))
                )
                counts[entry.label] = counts.get(entry.label, 0) + 1
                data, suffix = compact_bytes(entry.image)
                written += len(data)
                if written > room:
                    raise StorageFull()
                name = default_storage.save(f"{prefix}/{folder}/{random_name()}{suffix}", ContentFile(data))
                files.append([folder, name])
                if counts[entry.label] <= 2 and len(samples) < 8:
                    data, suffix = thumbnail(entry.image, 96)
                    written += len(data)
                    sample_bytes += len(data)
                    thumb = default_storage.save(f"{prefix}/samples/{random_name()}{suffix}", ContentFile(data))
                    samples.append([entry.label, thumb])
        problem = _dataset_problem(counts)
    except ArchiveRejected as exc:
        problem = str(exc)
    except StorageFull:
        quota = settings.JOURNEY_STORAGE_QUOTA_MB * 2**20
        problem = MSG_STORAGE_FULL.format(used=megabytes(quota - room), quota=megabytes(quota))
    finally:
        default_storage.delete(upload)
    fields = {"classes": counts, "files": files, "folders": folders, "samples": samples, "skipped": skipped,
              "stored_bytes": written}  # fmt: skip
    if problem:
        for _, name in files:
            default_storage.delete(name)
        fields.update(state=DatasetState.REJECTED, error_message=problem, files=[], stored_bytes=sample_bytes)
    else:
        fields.update(state=DatasetState.READY)
    if not UserDataset.objects.filter(pk=dataset.pk, state=DatasetState.CHECKING).update(**fields):
        # Housekeeping gave up on this check meanwhile (or the data set was deleted): keep nothing.
        for _, name in fields["files"]:
            default_storage.delete(name)
        for _, name in samples:
            default_storage.delete(name)
        log.warning("data set %s: the check finished after it was given up; its images are dropped", dataset.pk)
    return UserDataset.objects.filter(pk=dataset.pk).first() or dataset


class StorageFull(Exception):
    """The images of a data set being checked no longer fit in their owner's storage quota."""


def _dataset_problem(counts: dict[str, int]) -> str:
    if len(counts) < MIN_CLASSES:
        found = ", ".join(counts) or "none"
        return f"A data set needs at least {MIN_CLASSES} classes; this one has {len(counts)} ({found})."
    small = [f"{label} ({n})" for label, n in counts.items() if n < MIN_PER_CLASS]
    if small:
        return f"Every class needs at least {MIN_PER_CLASS} images; these have fewer: {', '.join(small)}."
    return ""


def dataset_delete(*, dataset: UserDataset, by) -> None:
    from django.core.files.storage import default_storage

    if dataset.owner_id != by.pk:
        raise PermissionError("Only the data set's owner can delete it.")
    for name in [n for _, n in dataset.files] + [t for _, t in dataset.samples] + [dataset.upload]:
        if name:
            default_storage.delete(name)
    dataset.delete()
