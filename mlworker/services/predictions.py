"""Writes for predictions: a student's images sent to a trained model, answered by a worker, and the
housekeeping of those whose worker or message was lost."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mlworker.dispatch import prediction_dispatch, resend_before
from mlworker.models import Prediction, PredictionState, TrainingJob
from mlworker.services.storage import Encoded, encode, storage_check, store_encoded

log = logging.getLogger(__name__)

MSG_PREDICTION_NOT_STARTED = (
    "No worker took this prediction within {minutes} minutes, so it was given up. The prediction "
    "service may be down or very busy: send the image again in a few minutes, and if this happens "
    "again, tell your instructor."
)
MSG_PREDICTION_LOST = (
    "The worker answering this prediction stopped before it finished. Send the image again; if it "
    "fails again, tell your instructor the prediction number ({prediction_id})."
)

MSG_TOO_MANY = "Send at most {limit} images at once; you sent {sent}."


@dataclass(frozen=True)
class Upload:
    """One file sent for predictions: its name and its bytes, or a file to read them from (read no
    further than the size limit: an uploaded file is never read whole before its size is checked)."""

    name: str
    data: bytes | IO[bytes]

    def file(self) -> IO[bytes]:
        return io.BytesIO(self.data) if isinstance(self.data, bytes) else self.data


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
            encoded.append(encode(upload.name, open_upload(data, name=upload.name, fit=fit)))
        except ImageRejected as exc:
            refused.append(str(exc))
    storage_check(user=user, adding=sum(e.size for e in encoded))
    batch = uuid.uuid4() if len(encoded) > 1 else None
    accepted = []
    for item in encoded:
        stored, thumb = store_encoded(item, f"predictions/{job.pk}")
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
                    encoded.append(encode(entry.name, entry.image))
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
    encoded = encode(name, open_upload(data, name="the validation image", fit=settings.JOURNEY_MAX_IMAGE_SIZE))
    storage_check(user=user, adding=encoded.size)
    stored, thumb = store_encoded(encoded, f"predictions/{job.pk}")
    with transaction.atomic():
        prediction = Prediction.objects.create(owner=user, job=job, source_name=name, image=stored, thumbnail=thumb,
                                               stored_bytes=encoded.size)  # fmt: skip
        transaction.on_commit(lambda: prediction_dispatch(prediction_id=prediction.pk))
    return prediction


def _model_usable(user, job: TrainingJob) -> bool:
    from mlworker.selectors import models_usable_by

    return models_usable_by(user).filter(pk=job.pk).exists()


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
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=resend_before(now, timeout)),
        state=PredictionState.QUEUED,
        created_at__gte=now - timedelta(seconds=timeout),
    )
    return [
        pk
        for pk in waiting.order_by("created_at").values_list("pk", flat=True)
        if prediction_dispatch(prediction_id=pk)
    ]


# ---------------------------------------------------------------- answering, on the predict queue's worker

MSG_MODEL_FILE_GONE = "This model's file is gone from storage, so it cannot predict. Train it again."
MSG_PREDICTION_FAILED = (
    "The model could not make this prediction. Try again; if it fails again, tell your instructor the "
    "prediction number ({prediction_id})."
)


def prediction_claim(*, prediction_id: int, worker: str) -> Prediction | None:
    """Move a queued prediction to running, recording the worker (if it dies, housekeeping queues the
    prediction once more); the prediction when this call won, else None: a redelivered or duplicate
    message finds nothing queued."""
    claimed = Prediction.objects.filter(pk=prediction_id, state=PredictionState.QUEUED).update(
        state=PredictionState.RUNNING, started_at=timezone.now(), worker=worker, attempts=F("attempts") + 1
    )
    return Prediction.objects.select_related("job").get(pk=prediction_id) if claimed else None


def prediction_answer(*, prediction: Prediction) -> None:
    """Ask a claimed prediction's model about its image, and write the answer, or why there is none."""
    from django.core.files.storage import default_storage
    from PIL import Image

    from mlworker.predicting import predict

    job = prediction.job
    running = Prediction.objects.filter(pk=prediction.pk, state=PredictionState.RUNNING)
    try:
        try:
            local = local_model_path(job)
        except FileNotFoundError:
            running.update(state=PredictionState.FAILED, finished_at=timezone.now(), error_message=MSG_MODEL_FILE_GONE)
            log.warning("prediction %s: model file %r missing", prediction.pk, job.model_file)
            return
        # Keyed by the local file, whose name holds the stored object's version: a model written anew
        # under the same name is loaded anew.
        learn, hit = learner_cache().get(str(local), local)
        with default_storage.open(prediction.image, "rb") as fh:
            image = Image.open(fh)
            image.load()
        result = predict(learn, image, cache_hit=hit)
    except Exception:
        log.exception("prediction %s failed", prediction.pk)
        running.update(
            state=PredictionState.FAILED,
            finished_at=timezone.now(),
            error_message=MSG_PREDICTION_FAILED.format(prediction_id=prediction.pk),
        )
        return
    running.update(
        state=PredictionState.SUCCEEDED,
        label=result.label,
        classes=result.classes,
        probabilities=result.probabilities,
        seconds=result.seconds,
        cache_hit=result.cache_hit,
        finished_at=timezone.now(),
    )
    log.info("prediction %s: %s in %.3f s (cache %s)", prediction.pk, result.label, result.seconds, hit)


_learners = None


def learner_cache():
    """This worker process's cache of loaded learners (one per process, built on first use)."""
    global _learners
    if _learners is None:
        from mlworker.predicting import LearnerCache

        _learners = LearnerCache(
            max_models=settings.JOURNEY_PREDICT_CACHE_MODELS, max_bytes=settings.JOURNEY_PREDICT_CACHE_MB * 2**20
        )
    return _learners


def local_model_path(job: TrainingJob) -> Path:
    """The job's exported model as a local file, from this worker's file cache (fetched from file
    storage the first time, and again when the stored object changes). FileNotFoundError when the
    job has no model, or its file is gone from storage."""
    from django.core.files.storage import default_storage

    from mlworker.services.storage import file_cache

    if not job.model_file:
        raise FileNotFoundError(f"job {job.pk} has no exported model")
    return file_cache().get(default_storage, job.model_file)
