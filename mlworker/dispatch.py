"""Putting ids on the broker: a job's training, a prediction, a data set's check. Failure is normal
here: the row stays queued (or checking), unsent, and housekeeping sends it once the broker is back.

Tasks are sent by name, so this module never imports mlworker.tasks (which imports the services,
which import this): the worker's side and the sending side meet only in these names.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from mlworker.models import DatasetState, JobState, Prediction, PredictionState, TrainingJob, UserDataset

log = logging.getLogger(__name__)

TRAIN = "mlworker.tasks.train"
PREDICT = "mlworker.tasks.predict"
DATASET_CHECK = "mlworker.tasks.dataset_check"


def send(task_name: str, object_id: int, what: str) -> bool:
    """Put `task_name(object_id)` on the broker (routed by CELERY_TASK_ROUTES); False (logged) when
    the broker is unreachable."""
    from config.celery_app import app

    try:
        app.send_task(task_name, args=[object_id], retry=False)
    except Exception as exc:  # kombu raises several types for "broker unreachable"
        log.warning("could not queue %s %s: %s: %s", what, object_id, exc.__class__.__name__, exc)
        return False
    return True


def job_dispatch(*, job_id: int) -> bool:
    """Queue `train(job_id)` on the gpu queue; True when the broker took it.

    When the broker is down the job row keeps `dispatched_at` empty and housekeeping
    dispatches it again later; a duplicate message is harmless because only one claim wins.
    """
    if not send(TRAIN, job_id, "job"):
        return False
    TrainingJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(dispatched_at=timezone.now())
    return True


def prediction_dispatch(*, prediction_id: int) -> bool:
    """Queue `predict(prediction_id)` on the predict queue; True when the broker took it.

    When the broker is down the prediction stays queued with no `dispatched_at`, and
    housekeeping sends it once the broker is back (or fails it after the time limit).
    """
    if not send(PREDICT, prediction_id, "prediction"):
        return False
    Prediction.objects.filter(pk=prediction_id, state=PredictionState.QUEUED).update(dispatched_at=timezone.now())
    return True


def dataset_dispatch(*, dataset_id: int) -> bool:
    """Queue the check of an upload; when the broker is down it stays `checking`, unsent, and
    housekeeping sends it once the broker is back (or rejects it after the time limit)."""
    if not send(DATASET_CHECK, dataset_id, "the check of data set"):
        return False
    UserDataset.objects.filter(pk=dataset_id, state=DatasetState.CHECKING).update(dispatched_at=timezone.now())
    return True


def resend_before(now, timeout: int):
    """Messages sent before this time and still not taken were probably lost: send them again. A
    duplicate is harmless (only one claim wins); well before the time limit gives up on it."""
    return now - timedelta(seconds=min(settings.JOURNEY_REDISPATCH_AFTER, timeout // 2))
