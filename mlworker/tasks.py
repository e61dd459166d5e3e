"""Celery tasks of the experiments: they take ids, claim rows and call services."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from celery import shared_task
from django.conf import settings

from config.logging import job_context
from mlworker.models import JobState
from mlworker.services import (
    MSG_TIME_LIMIT,
    PREDICTION_TASK_SECONDS,
    datasets_reap,
    datasets_redispatch,
    job_claim,
    job_finish,
    jobs_reap,
    jobs_redispatch,
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


def _local_model(job) -> Path:
    """The job's exported model as a local file, copied once from shared storage."""
    from django.core.files.storage import default_storage

    folder = Path(settings.JOURNEY_WORK_DIR) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / f"job-{job.pk}-{Path(job.model_file).stem}.pkl"
    if not local.exists():
        tmp = local.with_suffix(f".{os.getpid()}.part")
        with default_storage.open(job.model_file, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(local)
    return local


@shared_task(
    name="mlworker.tasks.predict",
    bind=True,
    acks_late=True,
    time_limit=PREDICTION_TASK_SECONDS,
    soft_time_limit=PREDICTION_TASK_SECONDS - 60,
)
def predict(self, prediction_id: int) -> None:
    """Answer one prediction (queue `predict`, its own worker, so it never waits behind a training).

    The claim records the worker: if it dies, housekeeping queues the prediction once more."""
    from django.core.files.storage import default_storage
    from django.db.models import F
    from django.utils import timezone
    from PIL import Image

    from mlworker.models import Prediction, PredictionState
    from mlworker.predicting import predict as run_predict

    claimed = Prediction.objects.filter(pk=prediction_id, state=PredictionState.QUEUED).update(
        state=PredictionState.RUNNING,
        started_at=timezone.now(),
        worker=self.request.hostname or "",
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return
    prediction = Prediction.objects.select_related("job").get(pk=prediction_id)
    job = prediction.job
    with job_context(job.pk):
        running = Prediction.objects.filter(pk=prediction_id, state=PredictionState.RUNNING)
        if not job.model_file or not default_storage.exists(job.model_file):
            running.update(
                state=PredictionState.FAILED,
                finished_at=timezone.now(),
                error_message="This model's file is gone from storage, so it cannot predict. Train it again.",
            )
            log.warning("prediction %s: model file %r missing", prediction_id, job.model_file)
            return
        try:
            learn, hit = learner_cache().get(f"{job.pk}:{job.model_file}", _local_model(job))
            with default_storage.open(prediction.image, "rb") as fh:
                image = Image.open(fh)
                image.load()
            result = run_predict(learn, image, cache_hit=hit)
        except Exception:
            log.exception("prediction %s failed", prediction_id)
            running.update(
                state=PredictionState.FAILED,
                finished_at=timezone.now(),
                error_message="The model could not make this prediction. Try again; if it fails again, "
                f"tell your instructor the prediction number ({prediction_id}).",
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
        log.info("prediction %s: %s in %.3f s (cache %s)", prediction_id, result.label, result.seconds, hit)


@shared_task(name="mlworker.tasks.dataset_check", acks_late=True, time_limit=1800, soft_time_limit=1700)
def dataset_check(dataset_id: int) -> None:
    """Check a student's uploaded zip (cpu queue): readable images, enough classes and images."""
    from mlworker.services import dataset_check_run

    dataset = dataset_check_run(dataset_id=dataset_id)
    log.info("data set %s checked: %s %s", dataset_id, dataset.state, dataset.classes)
