"""Writes for training jobs: submit, claim, cancel, finish, housekeeping; and the trained model a job
leaves: rename, delete."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.history import history_announce
from accounts.selectors import students_taught_by
from mlworker.dispatch import job_dispatch
from mlworker.jobsettings import JobSettings
from mlworker.models import USER_DATASET_PREFIX, JobState, TrainingJob, UserDataset

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
            owner=user, dataset_name=_upload_name(job_settings.dataset), **asdict(job_settings)
        )
        history_announce(user_ids=[user.pk])
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
            history_announce(user_ids=[job.owner_id])
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
        history_announce(user_ids=TrainingJob.objects.filter(pk=job_id).values_list("owner_id", flat=True))
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
    history_announce(user_ids=TrainingJob.objects.filter(pk__in=touched).values_list("owner_id", flat=True))
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
