"""Celery tasks of the experiments: they take ids, claim rows and call services."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys

from celery import shared_task
from django.conf import settings

from config.logging import job_context
from mlworker.models import JobState
from mlworker.services import MSG_TIME_LIMIT, job_claim, job_finish, jobs_reap, jobs_redispatch

log = logging.getLogger(__name__)

MSG_KILLED = (
    "The training process was stopped by the system before it finished, most likely because it ran "
    "out of memory. Lower the batch size or the image size and try again."
)
MSG_CRASHED = (
    "The training process ended unexpectedly (exit code {code}). Try again; if it happens again, "
    "tell your instructor the job number ({job_id})."
)

_PR_SET_PDEATHSIG = 1


def _die_with_parent():  # pragma: no cover - runs in the child between fork and exec
    # If the worker is killed (even with SIGKILL) the training process must not run on
    # unsupervised: the kernel sends it SIGKILL when its parent dies.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@shared_task(
    name="mlworker.tasks.train",
    bind=True,
    acks_late=True,
    # Above the runner's own limit, so that the runner's limit (with its message) fires first.
    time_limit=settings.JOURNEY_MAX_JOB_SECONDS + 300,
    soft_time_limit=settings.JOURNEY_MAX_JOB_SECONDS + 240,
)
def train(self, job_id: int) -> None:
    with job_context(job_id):
        token = job_claim(job_id=job_id, worker=self.request.hostname or "worker")
        if token is None:
            log.info("nothing to claim: the job is not queued (done, cancelled or taken)")
            return
        log.info("claimed; starting the training process")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlworker.runner", str(job_id), token],
            cwd=str(settings.BASE_DIR),
            preexec_fn=_die_with_parent,
        )
        limit = settings.JOURNEY_MAX_JOB_SECONDS
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            job_finish(
                job_id=job_id,
                token=token,
                state=JobState.FAILED,
                error_message=MSG_TIME_LIMIT.format(minutes=limit // 60 or 1),
            )
            log.warning("training process ran past %s s and was killed", limit)
            return
        if code != 0:
            message = MSG_KILLED if code in (-signal.SIGKILL, 137) else MSG_CRASHED.format(code=code, job_id=job_id)
            if job_finish(job_id=job_id, token=token, state=JobState.FAILED, error_message=message):
                log.warning("training process exited with %s", code)


@shared_task(name="mlworker.tasks.housekeeping", time_limit=120, soft_time_limit=90)
def housekeeping() -> dict:
    """Runs every few seconds from beat: recover jobs of dead workers, re-send unsent jobs."""
    reaped = jobs_reap()
    sent = jobs_redispatch()
    if reaped or sent:
        log.info("housekeeping: reaped %s, dispatched %s", reaped, sent)
    return {"reaped": reaped, "dispatched": sent}
