"""Writes for training jobs: submit, claim, cancel, finish, and housekeeping."""

from __future__ import annotations

import io
import logging
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.history import history_announce as progress_refresh
from accounts.selectors import classrooms_of, students_taught_by
from mlworker.dispatch import job_dispatch, send
from mlworker.models import (
    USER_DATASET_PREFIX,
    DatasetState,
    JobState,
    Prediction,
    PredictionState,
    TrainingJob,
    UserDataset,
)

log = logging.getLogger(__name__)

# Messages a student reads on the job page: what happened and what to do about it.
MSG_WORKER_LOST = (
    "The worker running this job stopped before it finished, {attempts} times. This often means "
    "the job needed more memory than the machine had: try a smaller image size or batch size."
)
MSG_TIME_LIMIT = (
    "The job ran longer than the limit of {minutes} minutes and was stopped. "
    "Try fewer epochs, a smaller image size or fewer images."
)
MSG_PREDICTION_NOT_STARTED = (
    "No worker took this prediction within {minutes} minutes, so it was given up. The prediction "
    "service may be down or very busy: send the image again in a few minutes, and if this happens "
    "again, tell your instructor."
)
MSG_PREDICTION_LOST = (
    "The worker answering this prediction stopped before it finished. Send the image again; if it "
    "fails again, tell your instructor the prediction number ({prediction_id})."
)
MSG_DATASET_CHECK_STUCK = (
    "The check of this zip did not finish within {minutes} minutes (the checking service was down "
    "or stopped in the middle). Delete this data set and upload the zip again; a smaller zip is "
    "checked faster."
)


MSG_TOO_MANY = "Send at most {limit} images at once; you sent {sent}."
MSG_STORAGE_FULL = (
    "Your storage is full: your images take {used} of the {quota} each student may keep, and these would "
    "not fit. Delete a data set, or a model with its predictions, that you no longer need, then try again."
)


@dataclass(frozen=True)
class JobSettings:
    dataset: str
    arch: str
    pretrained: bool
    epochs: int
    image_size: int
    valid_pct: float
    seed: int
    batch_size: int
    learning_rate: float | None = None
    lr_find: bool = False
    per_class: int | None = None


def job_submit(*, user, job_settings: JobSettings) -> TrainingJob:
    """Save a queued job and queue its task once the row is committed.

    The quota is checked under a lock on the student's row so that two quick submits
    cannot both slip under it.
    """
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        active = TrainingJob.objects.filter(owner=user, state__in=[JobState.QUEUED, JobState.RUNNING]).count()
        limit = settings.JOURNEY_MAX_ACTIVE_JOBS
        if active >= limit:
            raise ValidationError(
                f"You already have {active} experiment(s) waiting or running, the most allowed at once is "
                f"{limit}. Wait for one to finish or cancel one.",
                code="quota",
            )
        job = TrainingJob.objects.create(
            owner=user, dataset_name=_upload_name(job_settings.dataset), **job_settings.__dict__
        )
        progress_refresh(user_ids=[user.pk])
        transaction.on_commit(lambda: job_dispatch(job_id=job.pk))
    return job


def _upload_name(dataset: str) -> str:
    """The name of the upload a job trains on ("" for the built-in data sets)."""
    pk = dataset.removeprefix(USER_DATASET_PREFIX)
    if pk == dataset or not pk.isdigit():
        return ""
    return UserDataset.objects.filter(pk=int(pk)).values_list("name", flat=True).first() or ""


def job_claim(*, job_id: int, worker: str) -> str | None:
    """Move a queued job to running; the run token when this call won, else None.

    Exactly one claim can win: a redelivered or duplicate message finds nothing queued.
    """
    token = uuid.uuid4().hex
    now = timezone.now()
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).only("attempts", "state").first()
        if job is None or job.state != JobState.QUEUED:
            return None
        won = TrainingJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            state=JobState.RUNNING,
            run_token=token,
            worker=worker,
            started_at=now,
            heartbeat_at=now,
            attempts=job.attempts + 1,
            phase="starting",
            progress=0.0,
            error_message="",
        )
    return token if won == 1 else None


def _teaches_owner(user, job: TrainingJob) -> bool:
    return students_taught_by(user).filter(user_id=job.owner_id).exists()


def job_cancel(*, job: TrainingJob, by) -> TrainingJob:
    """Cancel a queued job at once; ask a running one to stop at its next batch."""
    if job.owner_id != by.pk and not by.is_staff and not _teaches_owner(by, job):
        raise PermissionError("Only the job's owner, or an instructor of their class, can cancel it.")
    now = timezone.now()
    # Who and when, for the job's page: a student whose experiment an instructor stopped is told so.
    asked = {"cancel_requested": True, "cancelled_by": by, "cancelled_at": now}
    with transaction.atomic():
        if TrainingJob.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
            state=JobState.CANCELLED, finished_at=now, **asked
        ):
            progress_refresh(user_ids=[job.owner_id])
            log.info("job %s cancelled while queued", job.pk)
        else:
            TrainingJob.objects.filter(pk=job.pk, state=JobState.RUNNING, cancel_requested=False).update(**asked)
            log.info("job %s: cancel requested", job.pk)
    job.refresh_from_db()
    return job


def job_finish(*, job_id: int, token: str, state: str, **fields) -> bool:
    """Write a running job's end; only the claim that owns it may."""
    fields.setdefault("finished_at", timezone.now())
    with transaction.atomic():
        running = TrainingJob.objects.filter(pk=job_id, state=JobState.RUNNING, run_token=token)
        if running.update(state=state, **fields) != 1:
            return False
        progress_refresh(user_ids=TrainingJob.objects.filter(pk=job_id).values_list("owner_id", flat=True))
    return True


@transaction.atomic
def jobs_reap(*, now=None) -> list[int]:
    """Running jobs whose heartbeat stopped: queue them again, or fail them after too many tries."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.JOURNEY_HEARTBEAT_TIMEOUT)
    touched = []
    stale = TrainingJob.objects.filter(state=JobState.RUNNING, heartbeat_at__lt=stale_before)
    for job in stale.only("id", "attempts", "heartbeat_at", "run_token", "cancel_requested"):
        same_run = TrainingJob.objects.filter(pk=job.pk, state=JobState.RUNNING, run_token=job.run_token)
        if job.cancel_requested:
            done = same_run.update(state=JobState.CANCELLED, finished_at=now)
        elif job.attempts < settings.JOURNEY_JOB_MAX_ATTEMPTS:
            done = same_run.update(
                state=JobState.QUEUED, run_token="", dispatched_at=None, phase="", progress=0.0, batch=0
            )
            if done:
                job.epoch_rows.all().delete()
                TrainingJob.objects.filter(pk=job.pk).update(train_losses=[])
                log.warning("job %s: worker lost (heartbeat %s); queued again", job.pk, job.heartbeat_at)
        else:
            done = same_run.update(
                state=JobState.FAILED,
                finished_at=now,
                error_message=MSG_WORKER_LOST.format(attempts=job.attempts),
            )
            log.warning("job %s: worker lost %s times; failed", job.pk, job.attempts)
        if done:
            touched.append(job.pk)
    progress_refresh(user_ids=TrainingJob.objects.filter(pk__in=touched).values_list("owner_id", flat=True))
    return touched


def jobs_redispatch(*, now=None) -> list[int]:
    """Queued jobs with no message known to be on the broker: queue them again."""
    now = now or timezone.now()
    old = now - timedelta(seconds=settings.JOURNEY_REDISPATCH_AFTER)
    waiting = TrainingJob.objects.filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=old), state=JobState.QUEUED
    )
    return [
        job_id for job_id in waiting.order_by("created_at").values_list("pk", flat=True) if job_dispatch(job_id=job_id)
    ]


# ---------------------------------------------------------------- predictions and models


@dataclass(frozen=True)
class Upload:
    """One file sent for predictions: its name and its bytes, or a file to read them from (read no
    further than the size limit: an uploaded file is never read whole before its size is checked)."""

    name: str
    data: bytes | IO[bytes]

    def file(self) -> IO[bytes]:
        return io.BytesIO(self.data) if isinstance(self.data, bytes) else self.data


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


def _encoded(name: str, image) -> Encoded:
    from mlworker.images import compact_bytes, thumbnail

    return Encoded(name, *compact_bytes(image), *thumbnail(image))


def _token() -> str:
    """A stored file's name: random, so that no one can guess another user's file."""
    return uuid.uuid4().hex


def _store_encoded(item: Encoded, prefix: str) -> tuple[str, str]:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    key = _token()
    stored = default_storage.save(f"{prefix}/{key}{item.suffix}", ContentFile(item.data))
    thumb = default_storage.save(f"{prefix}/{key}-thumb{item.thumb_suffix}", ContentFile(item.thumb))
    return stored, thumb


def storage_check(*, user, adding: int, used: int | None = None) -> None:
    """Refuse, in words, `adding` bytes that would take the user past JOURNEY_STORAGE_QUOTA_MB."""
    from mlworker.selectors import storage_used

    used = storage_used(user=user) if used is None else used
    quota = settings.JOURNEY_STORAGE_QUOTA_MB * 2**20
    if used + adding > quota:
        raise ValidationError(MSG_STORAGE_FULL.format(used=_mb(used), quota=_mb(quota)), code="storage_quota")


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 2**20:.1f} MB"


def prediction_submit(
    *, user, job: TrainingJob, uploads: list[Upload], cut_off: Sequence[str] = ()
) -> tuple[list[Prediction], list[str]]:
    """Check each upload, store the good ones re-encoded, queue a prediction for each.

    Returns the predictions and one message per refused file; a bad file never stops the others.
    `cut_off` are the messages of files refused while they arrived (mlworker.uploads), told with the rest.
    The messages are also kept on the first prediction, for its page and its batch's to show.
    Images are counted before any is decoded, and decoded one at a time (each is kept only
    encoded, at the size training uses), so a request holds at most one full image in memory.
    """
    from mlworker.images import ImageRejected, open_upload, read_capped

    if not _model_usable(user, job):
        raise PermissionError("Only the owner of a trained model, or their class if it is shared, can ask it.")
    limit = settings.JOURNEY_MAX_BATCH_IMAGES
    if len(uploads) > limit:
        raise ValidationError(MSG_TOO_MANY.format(limit=limit, sent=len(uploads)), code="batch")
    singles = sum(1 for u in uploads if not u.name.lower().endswith(".zip"))
    fit = settings.JOURNEY_MAX_IMAGE_SIZE
    encoded: list[Encoded] = []
    refused: list[str] = list(cut_off)
    from_zips = 0
    for upload in uploads:
        if upload.name.lower().endswith(".zip"):
            got = _zip_images(upload, refused, room=limit - singles - from_zips, singles=singles + from_zips)
            from_zips += len(got)
            encoded += got
            continue
        try:
            data = read_capped(upload.file(), upload.name)
            encoded.append(_encoded(upload.name, open_upload(data, name=upload.name, fit=fit)))
        except ImageRejected as exc:
            refused.append(str(exc))
    storage_check(user=user, adding=sum(e.size for e in encoded))
    batch = uuid.uuid4() if len(encoded) > 1 else None
    accepted = []
    for item in encoded:
        stored, thumb = _store_encoded(item, f"predictions/{job.pk}")
        accepted.append(Prediction(owner=user, job=job, batch=batch, source_name=item.name[:255], image=stored,
                                   thumbnail=thumb, stored_bytes=item.size))  # fmt: skip
    if accepted:
        # A flash message would vanish when the page reloads itself with the answer: the pages read these.
        accepted[0].skipped = refused
    with transaction.atomic():
        created = Prediction.objects.bulk_create(accepted)
        for prediction in created:
            transaction.on_commit(lambda pk=prediction.pk: prediction_dispatch(prediction_id=pk))
    return created, refused


def _zip_images(upload: Upload, refused: list[str], *, room: int, singles: int) -> list[Encoded]:
    """The images of a zip sent for predictions, read with the same checks as a data set's; more
    than `room` images is refused before any is decoded."""
    import tempfile

    from mlworker.archives import ArchiveRejected, Item, Limits, TooManyImages, scan_zip

    limit = settings.JOURNEY_MAX_BATCH_IMAGES
    limits = Limits(max_files=limit * 4, max_images=max(room, 0), fit=settings.JOURNEY_MAX_IMAGE_SIZE)
    encoded = []
    with tempfile.NamedTemporaryFile(suffix=".zip") as local:
        try:
            _copy_capped(upload.file(), local, settings.JOURNEY_MAX_DATASET_UPLOAD_MB * 2**20)
        except ArchiveRejected as exc:
            refused.append(f"{upload.name}: {exc}")
            return []
        try:
            for entry in scan_zip(local.name, rule="any", limits=limits):
                if isinstance(entry, Item):
                    encoded.append(_encoded(entry.name, entry.image))
                else:
                    refused.append(f"{upload.name}: {entry.name} was skipped: {entry.reason}")
        except TooManyImages as exc:
            raise ValidationError(MSG_TOO_MANY.format(limit=limit, sent=singles + exc.count), code="batch") from None
        except ArchiveRejected as exc:
            refused.append(f"{upload.name}: {exc}")
            return []
    return encoded


def _copy_capped(src: IO[bytes], dst: IO[bytes], limit: int) -> None:
    """Copy an upload to a local file in chunks, refusing it once it passes `limit` bytes."""
    from mlworker.archives import ArchiveRejected
    from mlworker.uploads import zip_too_large

    copied = 0
    while chunk := src.read(2**20):
        copied += len(chunk)
        if copied > limit:
            raise ArchiveRejected(zip_too_large(limit))
        dst.write(chunk)
    dst.flush()


def prediction_from_validation(*, user, job: TrainingJob, index: int) -> Prediction:
    """Ask the model about one of its own validation images (those it found hardest)."""
    from django.core.files.storage import default_storage

    from mlworker.images import open_upload, read_capped

    if not _model_usable(user, job) or not 0 <= index < len(job.top_losses):
        raise PermissionError("No such validation image for this model.")
    item = job.top_losses[index]
    with default_storage.open(item["image_path"], "rb") as fh:
        data = read_capped(fh, "the validation image")
    name = f"validation image {index + 1} (actually {job.class_name(item['actual'])})"
    encoded = _encoded(name, open_upload(data, name="the validation image", fit=settings.JOURNEY_MAX_IMAGE_SIZE))
    storage_check(user=user, adding=encoded.size)
    stored, thumb = _store_encoded(encoded, f"predictions/{job.pk}")
    with transaction.atomic():
        prediction = Prediction.objects.create(owner=user, job=job, source_name=name, image=stored, thumbnail=thumb,
                                               stored_bytes=encoded.size)  # fmt: skip
        transaction.on_commit(lambda: prediction_dispatch(prediction_id=prediction.pk))
    return prediction


def _model_usable(user, job: TrainingJob) -> bool:
    from mlworker.selectors import models_usable_by

    return models_usable_by(user).filter(pk=job.pk).exists()


def prediction_dispatch(*, prediction_id: int) -> bool:
    """Queue `predict(prediction_id)` on the predict queue; True when the broker took it.

    When the broker is down the prediction stays queued with no `dispatched_at`, and
    housekeeping sends it once the broker is back (or fails it after the time limit).
    """
    from mlworker.tasks import predict

    if not send(predict, prediction_id, "prediction"):
        return False
    Prediction.objects.filter(pk=prediction_id, state=PredictionState.QUEUED).update(dispatched_at=timezone.now())
    return True


def _resend_before(now, timeout: int):
    # A message sent this long ago and still not taken was probably lost: send it again. A
    # duplicate is harmless (only one claim wins); well before the time limit gives up on it.
    return now - timedelta(seconds=min(settings.JOURNEY_REDISPATCH_AFTER, timeout // 2))


def predictions_reap(*, now=None) -> list[int]:
    """Fail, in words a student can act on, the predictions not answered within the time limit."""
    now = now or timezone.now()
    timeout = settings.JOURNEY_PREDICTION_TIMEOUT
    old = Prediction.objects.filter(created_at__lt=now - timedelta(seconds=timeout))
    failed = []
    for pk in old.filter(state=PredictionState.QUEUED).values_list("pk", flat=True):
        if Prediction.objects.filter(pk=pk, state=PredictionState.QUEUED).update(
            state=PredictionState.FAILED, finished_at=now,
            error_message=MSG_PREDICTION_NOT_STARTED.format(minutes=max(1, timeout // 60)),
        ):  # fmt: skip
            failed.append(pk)
    for pk in old.filter(state=PredictionState.RUNNING).values_list("pk", flat=True):
        if Prediction.objects.filter(pk=pk, state=PredictionState.RUNNING).update(
            state=PredictionState.FAILED, finished_at=now, error_message=MSG_PREDICTION_LOST.format(prediction_id=pk)
        ):
            failed.append(pk)
    if failed:
        log.warning("predictions %s: not answered within %s s; failed", failed, timeout)
    return failed


PREDICTION_TASK_SECONDS = 300  # the predict task's hard time limit: Celery kills it past this
PREDICTION_MAX_ATTEMPTS = 2  # a prediction whose worker died is tried once more, then failed


def predictions_requeue_lost(*, now=None) -> tuple[list[int], list[int]]:
    """Running predictions whose worker died: queue them again once, as jobs are; fail them after that.

    A worker is known dead when its presence row stopped beating, or was restarted, since it claimed
    the prediction; a pool child killed under a live worker shows only as a prediction running past
    the task's time limit. Returns (queued again, failed)."""
    from mlworker.models import WorkerPresence

    now = now or timezone.now()
    alive_since = now - timedelta(seconds=3 * settings.JOURNEY_WORKER_BEAT_SECONDS)
    overdue = now - timedelta(seconds=PREDICTION_TASK_SECONDS + 60)
    running = Prediction.objects.filter(state=PredictionState.RUNNING, started_at__isnull=False)
    requeued, failed = [], []
    for p in running.only("id", "worker", "started_at", "attempts"):
        alive = (
            bool(p.worker)
            and WorkerPresence.objects.filter(
                hostname=p.worker, seen_at__gte=alive_since, started_at__lte=p.started_at
            ).exists()
        )
        unknown = not p.worker  # claimed before claims recorded their worker: only the time limit tells
        if p.started_at >= overdue and (alive or unknown):
            continue
        same_claim = Prediction.objects.filter(pk=p.pk, state=PredictionState.RUNNING, started_at=p.started_at)
        if p.attempts < PREDICTION_MAX_ATTEMPTS:
            if same_claim.update(state=PredictionState.QUEUED, dispatched_at=None, started_at=None, worker=""):
                requeued.append(p.pk)
        elif same_claim.update(
            state=PredictionState.FAILED, finished_at=now, error_message=MSG_PREDICTION_LOST.format(prediction_id=p.pk)
        ):
            failed.append(p.pk)
    if requeued or failed:
        log.warning("predictions whose worker died: %s queued again, %s failed", requeued, failed)
    return requeued, failed


def predictions_redispatch(*, now=None) -> list[int]:
    """Queued predictions whose message never reached the broker, or seems lost: send them again."""
    now = now or timezone.now()
    timeout = settings.JOURNEY_PREDICTION_TIMEOUT
    waiting = Prediction.objects.filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=_resend_before(now, timeout)),
        state=PredictionState.QUEUED,
        created_at__gte=now - timedelta(seconds=timeout),
    )
    return [
        pk
        for pk in waiting.order_by("created_at").values_list("pk", flat=True)
        if prediction_dispatch(prediction_id=pk)
    ]


def _classrooms_checked(by, classrooms) -> list:
    classrooms = list(classrooms)
    if not classrooms:
        raise ValidationError("Choose a class to share with.", code="no_class")
    mine = set(classrooms_of(by).filter(pk__in=[c.pk for c in classrooms]).values_list("pk", flat=True))
    if any(c.pk not in mine for c in classrooms):
        raise ValidationError("You can share only with a class you are in.", code="not_member")
    return classrooms


def model_share(*, job: TrainingJob, by, classrooms) -> TrainingJob:
    """Let the members of these classes (the owner's own) look at the model and ask it."""
    if job.owner_id != by.pk:
        raise PermissionError("Only the model's owner can share it.")
    if job.state != JobState.SUCCEEDED or not job.model_file:
        raise ValidationError("Only a trained model that is still kept can be shared.", code="no_model")
    job.shared_with.add(*_classrooms_checked(by, classrooms))
    return job


def model_unshare(*, job: TrainingJob, by, classrooms=None) -> TrainingJob:
    """Stop sharing with these classes (all of them when None). Predictions already made stay theirs."""
    if job.owner_id != by.pk:
        raise PermissionError("Only the model's owner can stop sharing it.")
    if classrooms is None:
        job.shared_with.clear()
    else:
        job.shared_with.remove(*classrooms)
    return job


def model_rename(*, job: TrainingJob, by, name: str) -> TrainingJob:
    if job.owner_id != by.pk:
        raise PermissionError("Only the model's owner can rename it.")
    job.name = name.strip()[:100]
    job.save(update_fields=["name"])
    return job


def model_delete(*, job: TrainingJob, by) -> None:
    """Remove the exported model, its images and the owner's predictions; the experiment's record
    stays. Classmates' predictions with a shared model are theirs: they stay, marked as orphaned."""
    from django.core.files.storage import default_storage

    if job.owner_id != by.pk:
        raise PermissionError("Only the model's owner can delete it.")
    own = job.predictions.filter(owner=by)
    names = [job.model_file] + [t["image_path"] for t in job.top_losses]
    for prediction in own:
        names += [prediction.image, prediction.thumbnail]
    for name in filter(None, names):
        default_storage.delete(name)
    own.delete()
    job.shared_with.clear()
    TrainingJob.objects.filter(pk=job.pk).update(model_file="", top_losses=[])


# ---------------------------------------------------------------- the students' own data sets

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
    stored = default_storage.save(f"uploads/{_token()}.zip", upload)
    with transaction.atomic():
        dataset = UserDataset.objects.create(
            owner=user, name=name.strip()[:100], rule=rule, upload=stored, stored_bytes=upload.size
        )
        transaction.on_commit(lambda: dataset_dispatch(dataset_id=dataset.pk))
    return dataset


def dataset_dispatch(*, dataset_id: int) -> bool:
    """Queue the check of an upload; when the broker is down it stays `checking`, unsent, and
    housekeeping sends it once the broker is back (or rejects it after the time limit)."""
    from mlworker.tasks import dataset_check

    if not send(dataset_check, dataset_id, "the check of data set"):
        return False
    UserDataset.objects.filter(pk=dataset_id, state=DatasetState.CHECKING).update(dispatched_at=timezone.now())
    return True


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
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=_resend_before(now, timeout)),
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
                name = default_storage.save(f"{prefix}/{folder}/{_token()}{suffix}", ContentFile(data))
                files.append([folder, name])
                if counts[entry.label] <= 2 and len(samples) < 8:
                    data, suffix = thumbnail(entry.image, 96)
                    written += len(data)
                    sample_bytes += len(data)
                    thumb = default_storage.save(f"{prefix}/samples/{_token()}{suffix}", ContentFile(data))
                    samples.append([entry.label, thumb])
        problem = _dataset_problem(counts)
    except ArchiveRejected as exc:
        problem = str(exc)
    except StorageFull:
        quota = settings.JOURNEY_STORAGE_QUOTA_MB * 2**20
        problem = MSG_STORAGE_FULL.format(used=_mb(quota - room), quota=_mb(quota))
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


def dataset_share(*, dataset: UserDataset, by, classrooms) -> UserDataset:
    """Let the members of these classes (the owner's own) train on the data set."""
    if dataset.owner_id != by.pk:
        raise PermissionError("Only the data set's owner can share it.")
    if dataset.state != DatasetState.READY:
        raise ValidationError("Only a checked, ready data set can be shared.", code="not_ready")
    dataset.shared_with.add(*_classrooms_checked(by, classrooms))
    return dataset


def dataset_unshare(*, dataset: UserDataset, by, classrooms=None) -> UserDataset:
    """Stop sharing with these classes (all when None). Models already trained on it stay."""
    if dataset.owner_id != by.pk:
        raise PermissionError("Only the data set's owner can stop sharing it.")
    if classrooms is None:
        dataset.shared_with.clear()
    else:
        dataset.shared_with.remove(*classrooms)
    return dataset


def dataset_delete(*, dataset: UserDataset, by) -> None:
    from django.core.files.storage import default_storage

    if dataset.owner_id != by.pk:
        raise PermissionError("Only the data set's owner can delete it.")
    for name in [n for _, n in dataset.files] + [t for _, t in dataset.samples] + [dataset.upload]:
        if name:
            default_storage.delete(name)
    dataset.delete()
