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
from mlworker.dispatch import DATASET_CHECK, PREDICT, TRAIN
from mlworker.models import JobState
from mlworker.services import (
    MSG_TIME_LIMIT,
    PREDICTION_TASK_SECONDS,
    dataset_check_run,
    datasets_reap,
    datasets_redispatch,
    job_claim,
    job_finish,
    jobs_reap,
    jobs_redispatch,
    prediction_answer,
    prediction_claim,
    predictions_reap,
    predictions_redispatch,
    predictions_requeue_lost,
    uploads_sweep,
)

log = logging.getLogger(__name__)

MSG_OUT_OF_MEMORY = (
    "The training process ran out of memory and the system stopped it. Lower the batch size or the "
    "image size and try again."
)
MSG_KILLED = (
    "The training process was stopped by a signal ({signal}) before it finished: something outside "
    "the training stopped it, for example the worker being shut down. Try again; if it happens "
    "again, tell your instructor the job number ({job_id})."
)
MSG_KILLED_MAYBE_MEMORY = (
    "The training process was stopped by the system (signal {signal}) before it finished. It may "
    "have run out of memory, or the worker was shut down. Try again with a smaller batch size or "
    "image size; if it happens again, tell your instructor the job number ({job_id})."
)
MSG_CRASHED = (
    "The training process ended unexpectedly (exit code {code}). Try again; if it happens again, "
    "tell your instructor the job number ({job_id})."
)

_PR_SET_PDEATHSIG = 1
# Where the kernel counts the processes it killed for lack of memory in this container
# (cgroup v2, then v1); a count that rose while the training ran is the evidence of it.
OOM_COUNTERS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


def oom_kills() -> int | None:
    """How many processes the kernel's OOM killer ended in this cgroup so far; None when unknown."""
    for path in OOM_COUNTERS:
        try:
            with open(path) as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def exit_message(code: int, *, job_id: int, oom_before: int | None, oom_after: int | None) -> str:
    """What a student reads about a training process that ended with `code` (not 0): memory only when
    the kernel says so, else the signal as it is, and memory as one possibility among others."""
    if code >= 0:
        return MSG_CRASHED.format(code=code, job_id=job_id)
    signum = -code
    try:
        name = f"{signal.Signals(signum).name}, number {signum}"
    except ValueError:
        name = f"number {signum}"
    if signum != signal.SIGKILL:
        return MSG_KILLED.format(signal=name, job_id=job_id)
    if oom_before is not None and oom_after is not None and oom_after > oom_before:
        return MSG_OUT_OF_MEMORY
    # The kernel's OOM killer sends SIGKILL, but so do people and supervisors: without the count, a maybe.
    return MSG_KILLED_MAYBE_MEMORY.format(signal=name, job_id=job_id)


def _die_with_parent():  # pragma: no cover - runs in the child between fork and exec
    # If the worker is killed (even with SIGKILL) the training process must not run on
    # unsupervised: the kernel sends it SIGKILL when its parent dies.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@shared_task(
    name=TRAIN,
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
        oom_before = oom_kills()
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
            message = exit_message(code, job_id=job_id, oom_before=oom_before, oom_after=oom_kills())
            if job_finish(job_id=job_id, token=token, state=JobState.FAILED, error_message=message):
                log.warning("training process exited with %s", code)


@shared_task(name="mlworker.tasks.housekeeping", time_limit=120, soft_time_limit=90)
def housekeeping() -> dict:
    """Runs every few seconds from beat: recover jobs of dead workers, re-send what was never
    sent (broker down) or seems lost, and give up, with a message, on predictions and dataset
    checks that waited past their time limit. Giving up comes first, so nothing is sent twice."""
    result = {
        "reaped": jobs_reap(),
        "dispatched": jobs_redispatch(),
        "predictions_failed": predictions_reap(),
    }
    result["predictions_requeued"], lost = predictions_requeue_lost()
    result["predictions_failed"] += lost
    result |= {
        "predictions_dispatched": predictions_redispatch(),
        "datasets_rejected": datasets_reap(),
        "datasets_dispatched": datasets_redispatch(),
        "uploads_removed": uploads_sweep(),
    }
    if any(result.values()):
        log.info("housekeeping: %s", {k: v for k, v in result.items() if v})
    return result


@shared_task(
    name=PREDICT,
    bind=True,
    acks_late=True,
    time_limit=PREDICTION_TASK_SECONDS,
    soft_time_limit=PREDICTION_TASK_SECONDS - 60,
)
def predict(self, prediction_id: int) -> None:
    """Answer one prediction (queue `predict`, its own worker, so it never waits behind a training)."""
    prediction = prediction_claim(prediction_id=prediction_id, worker=self.request.hostname or "")
    if prediction is None:
        return
    with job_context(prediction.job_id):
        prediction_answer(prediction=prediction)


@shared_task(name=DATASET_CHECK, acks_late=True, time_limit=1800, soft_time_limit=1700)
def dataset_check(dataset_id: int) -> None:
    """Check a student's uploaded zip (uploads queue): readable images, enough classes and images."""
    dataset = dataset_check_run(dataset_id=dataset_id)
    log.info("data set %s checked: %s %s", dataset_id, dataset.state, dataset.classes)
