"""Reads of training jobs, always scoped to the user who asks."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from accounts.selectors import students_taught_by
from mlworker.models import DatasetState, JobState, Prediction, TrainingJob, UserDataset

LIST_FIELDS = (
    "id", "name", "owner_id", "created_at", "state", "dataset", "arch", "pretrained", "epochs", "image_size",
    "batch_size", "error_rate", "seconds", "progress", "device",
)  # fmt: skip


def jobs_visible_to(user, *, read_only: bool = False) -> QuerySet[TrainingJob]:
    """The jobs a user may see: their own; to read only, also those of the students in the
    classes they teach. Everyone else's is as absent as a missing one."""
    if not user.is_authenticated:
        return TrainingJob.objects.none()
    if read_only:
        return TrainingJob.objects.filter(Q(owner=user) | Q(owner_id__in=students_taught_by(user)))
    return TrainingJob.objects.filter(owner=user)


def job_get(*, user, job_id: int, read_only: bool = False) -> TrainingJob:
    """One job the user may see (or, with read_only, look at), or 404."""
    return get_object_or_404(jobs_visible_to(user, read_only=read_only), pk=job_id)


def jobs_list(*, user) -> QuerySet[TrainingJob]:
    return jobs_visible_to(user).only(*LIST_FIELDS)


def job_active_count(*, user) -> int:
    return TrainingJob.objects.filter(owner=user, state__in=[JobState.QUEUED, JobState.RUNNING]).count()


def job_queue_position(*, job: TrainingJob) -> int | None:
    """1 when the job is next in line; None once it is no longer waiting."""
    if job.state != JobState.QUEUED:
        return None
    ahead = TrainingJob.objects.filter(state=JobState.QUEUED, created_at__lt=job.created_at).count()
    return ahead + 1


def model_get(*, user, job_id: int) -> TrainingJob:
    """A trained model of the user's: a succeeded job whose exported file is kept; else 404."""
    return get_object_or_404(jobs_visible_to(user).exclude(model_file=""), pk=job_id, state=JobState.SUCCEEDED)


def models_list(*, user) -> QuerySet[TrainingJob]:
    return jobs_visible_to(user).filter(state=JobState.SUCCEEDED).exclude(model_file="").only(*LIST_FIELDS)


def predictions_visible_to(user) -> QuerySet[Prediction]:
    if not user.is_authenticated:
        return Prediction.objects.none()
    return Prediction.objects.filter(owner=user)


def prediction_get(*, user, prediction_id: int) -> Prediction:
    return get_object_or_404(predictions_visible_to(user).select_related("job"), pk=prediction_id)


def predictions_for(*, user, job: TrainingJob, batch=None) -> QuerySet[Prediction]:
    qs = predictions_visible_to(user).filter(job=job)
    return qs.filter(batch=batch) if batch else qs


def datasets_visible_to(user) -> QuerySet[UserDataset]:
    if not user.is_authenticated:
        return UserDataset.objects.none()
    return UserDataset.objects.filter(owner=user)


def dataset_get(*, user, dataset_id: int) -> UserDataset:
    return get_object_or_404(datasets_visible_to(user), pk=dataset_id)


def dataset_ready_list(*, user) -> QuerySet[UserDataset]:
    return datasets_visible_to(user).filter(state=DatasetState.READY).only("id", "name", "classes")
