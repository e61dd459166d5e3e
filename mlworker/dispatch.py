"""Putting a job's id on the broker. Failure is normal here: the row stays queued."""

from __future__ import annotations

import logging

from django.utils import timezone

from mlworker.models import JobState, TrainingJob

log = logging.getLogger(__name__)


def send(task, object_id: int, what: str) -> bool:
    """Put `task(object_id)` on the broker; False (logged) when the broker is unreachable."""
    try:
        task.apply_async(args=[object_id], retry=False)
    except Exception as exc:  # kombu raises several types for "broker unreachable"
        log.warning("could not queue %s %s: %s: %s", what, object_id, exc.__class__.__name__, exc)
        return False
    return True


def job_dispatch(*, job_id: int) -> bool:
    """Queue `train(job_id)` on the gpu queue; True when the broker took it.

    When the broker is down the job row keeps `dispatched_at` empty and housekeeping
    dispatches it again later; a duplicate message is harmless because only one claim wins.
    """
    from mlworker.tasks import train

    if not send(train, job_id, "job"):
        return False
    TrainingJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(dispatched_at=timezone.now())
    return True
