"""Reads of training jobs, models, predictions and data sets, always scoped to the user who asks.

This module alone decides who may see or use what. Sharing with a class is read here, at every
request, from the class memberships as they are now: nothing about it is cached.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.models import ClassMembership
from accounts.selectors import students_taught_by
from mlworker.models import DatasetState, JobState, Prediction, TrainingJob, UserDataset

LIST_FIELDS = (
    "id", "name", "owner_id", "created_at", "state", "dataset", "dataset_name", "arch", "pretrained", "epochs",
    "image_size", "batch_size", "error_rate", "seconds", "progress", "device",
)  # fmt: skip


def _shared_with(model, user) -> Exists:
    """True for the rows of `model` shared with a class that both the user and the row's owner
    are members of right now (leaving the class, or the owner leaving it, ends the access)."""
    through = model.shared_with.through
    mine = ClassMembership.objects.filter(user=user).values("classroom_id")
    return Exists(
        through.objects.filter(
            **{model._meta.model_name: OuterRef("pk")},
            classroom_id__in=mine,
            classroom__memberships__user_id=OuterRef("owner_id"),
        )
    )


def models_usable_by(user) -> QuerySet[TrainingJob]:
    """Trained models (succeeded, exported file kept) the user may ask: their own, and those
    shared with a class they are in."""
    if not user.is_authenticated:
        return TrainingJob.objects.none()
    return (
        TrainingJob.objects.filter(state=JobState.SUCCEEDED)
        .exclude(model_file="")
        .filter(Q(owner=user) | _shared_with(TrainingJob, user))
    )


def datasets_usable_by(user) -> QuerySet[UserDataset]:
    """Checked data sets the user may train on: their own, and those shared with a class they are in."""
    if not user.is_authenticated:
        return UserDataset.objects.none()
    return UserDataset.objects.filter(state=DatasetState.READY).filter(Q(owner=user) | _shared_with(UserDataset, user))


def jobs_visible_to(user, *, read_only: bool = False) -> QuerySet[TrainingJob]:
    """The jobs a user may see: their own; to read only, also those of the students in the
    classes they teach, and the trained models shared with a class they are in. Everyone
    else's is as absent as a missing one."""
    if not user.is_authenticated:
        return TrainingJob.objects.none()
    if read_only:
        return TrainingJob.objects.filter(
            Q(owner=user) | Q(owner_id__in=students_taught_by(user)) | Q(pk__in=models_usable_by(user).values("pk"))
        )
    return TrainingJob.objects.filter(owner=user)


def job_can_read(*, user, job_id: int) -> bool:
    return jobs_visible_to(user, read_only=True).filter(pk=job_id).exists()


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
    """A trained model of the user's own (to rename, delete or share); else 404."""
    return get_object_or_404(models_usable_by(user).filter(owner=user), pk=job_id)


def model_usable_get(*, user, job_id: int) -> TrainingJob:
    """A trained model the user may ask (their own or shared with their class); else 404."""
    return get_object_or_404(models_usable_by(user), pk=job_id)


def models_list(*, user) -> QuerySet[TrainingJob]:
    return models_usable_by(user).filter(owner=user).only(*LIST_FIELDS, "name")


def models_shared_with(*, user) -> QuerySet[TrainingJob]:
    """Classmates' models shared with the user's classes, with their owners' names."""
    return (
        models_usable_by(user)
        .exclude(owner=user)
        .select_related("owner")
        .only(*LIST_FIELDS, "name", "owner__username", "owner__first_name", "owner__last_name")
    )


def predictions_visible_to(user) -> QuerySet[Prediction]:
    if not user.is_authenticated:
        return Prediction.objects.none()
    return Prediction.objects.filter(owner=user)


def prediction_get(*, user, prediction_id: int) -> Prediction:
    return get_object_or_404(predictions_visible_to(user).select_related("job"), pk=prediction_id)


def predictions_for(*, user, job: TrainingJob, batch=None) -> QuerySet[Prediction]:
    qs = predictions_visible_to(user).filter(job=job)
    return qs.filter(batch=batch) if batch else qs


def prediction_batch_get(*, user, job_id: int, batch) -> list[Prediction]:
    """The user's own predictions of one batch (kept even after the model was deleted or
    unshared); 404 when there are none."""
    predictions = list(predictions_visible_to(user).filter(job_id=job_id, batch=batch).select_related("job"))
    if not predictions:
        raise Http404("No such batch.")
    return predictions


def datasets_visible_to(user) -> QuerySet[UserDataset]:
    if not user.is_authenticated:
        return UserDataset.objects.none()
    return UserDataset.objects.filter(owner=user)


def dataset_get(*, user, dataset_id: int) -> UserDataset:
    return get_object_or_404(datasets_visible_to(user), pk=dataset_id)


def dataset_get_to_read(*, user, dataset_id: int) -> UserDataset:
    """A data set the user may look at: their own, or one shared with a class they are in (whose
    sample images a classmate sees before training on it)."""
    return get_object_or_404(datasets_visible_to(user) | datasets_usable_by(user), pk=dataset_id)


def dataset_ready_list(*, user) -> QuerySet[UserDataset]:
    """The data sets the training form offers: the user's own ready ones and those shared with them."""
    return (
        datasets_usable_by(user)
        .select_related("owner")
        .only("id", "name", "classes", "owner_id", "owner__username", "owner__first_name", "owner__last_name")
        .order_by("-created_at", "-id")
    )


def datasets_own(*, user) -> QuerySet[UserDataset]:
    return datasets_visible_to(user).prefetch_related("shared_with")


def datasets_shared_with(*, user) -> QuerySet[UserDataset]:
    return datasets_usable_by(user).exclude(owner=user).select_related("owner")


def storage_used(*, user) -> int:
    """Bytes the user keeps in file storage: their data sets (a zip while it is checked, then its
    images) and their predictions' images, as recorded on the rows when stored. Two queries."""
    datasets = UserDataset.objects.filter(owner=user).aggregate(n=Sum("stored_bytes"))["n"] or 0
    predictions = Prediction.objects.filter(owner=user).aggregate(n=Sum("stored_bytes"))["n"] or 0
    return datasets + predictions
