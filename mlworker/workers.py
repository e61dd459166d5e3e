"""Who trains right now: the GPU workers that answer Celery's remote control and what each runs.

Asked through `app.control.inspect` (so it works on Redis and on the embedded SQLite broker), with
a short timeout, and cached for a few seconds: a page never waits long for it and never fails
because of it. When the broker or the workers do not answer, the status says "unknown".
How many experiments wait is read from the database, not from the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from mlworker.models import JobState, TrainingJob

log = logging.getLogger(__name__)

CACHE_KEY = "mlworker:workers-status"
GPU_QUEUE = "gpu"
TRAIN_TASK = "mlworker.tasks.train"
PREDICT_TASK = "mlworker.tasks.predict"


@dataclass(frozen=True)
class CurrentTask:
    name: str
    object_id: int | None  # the job's (or prediction's) id: each task takes one id


@dataclass(frozen=True)
class GpuWorker:
    hostname: str
    tasks: tuple[CurrentTask, ...] = ()


@dataclass(frozen=True)
class WorkersStatus:
    known: bool  # False when the broker or the workers did not answer in time
    workers: tuple[GpuWorker, ...] = ()

    @property
    def online(self) -> int | None:
        return len(self.workers) if self.known else None


def _object_id(task: dict) -> int | None:
    args = task.get("args")
    if isinstance(args, (list, tuple)) and len(args) == 1:
        try:
            return int(args[0])
        except (TypeError, ValueError):
            return None
    if isinstance(args, str):  # a worker asked with safe=True answers with the repr: "[12]" or "(12,)"
        digits = args.strip("[](), ")
        return int(digits) if digits.isdigit() else None
    return None


def status_from_replies(queues: dict | None, active: dict | None) -> WorkersStatus:
    """Celery's `active_queues` and `active` replies -> the workers consuming the gpu queue and
    what each is running. Replies map a worker's hostname to a list; a worker that answered
    `active_queues` but not `active` is counted as online with nothing known to be running.
    """
    workers = []
    for hostname in sorted(queues or {}):
        if not any(q.get("name") == GPU_QUEUE for q in (queues[hostname] or [])):
            continue
        tasks = tuple(
            CurrentTask(name=t.get("name", ""), object_id=_object_id(t)) for t in (active or {}).get(hostname) or []
        )
        workers.append(GpuWorker(hostname=hostname, tasks=tasks))
    return WorkersStatus(known=True, workers=tuple(workers))


def _ask_workers() -> tuple[dict, dict]:
    from config.celery_app import app

    timeout = settings.JOURNEY_WORKERS_TIMEOUT
    with app.connection_for_write() as conn:
        # No retries: kombu's default retry loop would hold the page for seconds when the broker is down.
        conn.ensure_connection(max_retries=0, timeout=timeout)
        # With no idea how many workers there are, the first question waits its whole timeout...
        queues = app.control.inspect(timeout=timeout, connection=conn).active_queues() or {}
        gpu = [h for h, qs in queues.items() if any(q.get("name") == GPU_QUEUE for q in qs or [])]
        if not gpu:
            return queues, {}
        # ...the second knows who should answer, and returns as soon as they have.
        active = app.control.inspect(timeout=timeout, connection=conn, destination=gpu, limit=len(gpu)).active()
    return queues, active or {}


def workers_status() -> WorkersStatus:
    """The GPU workers online and their current tasks, at most JOURNEY_WORKERS_CACHE_SECONDS old."""
    status = cache.get(CACHE_KEY)
    if status is not None:
        return status
    try:
        status = status_from_replies(*_ask_workers())
    except Exception as exc:  # broker down, refused, timed out: the page says "unknown"
        log.warning("could not ask the workers: %s: %s", exc.__class__.__name__, exc)
        status = WorkersStatus(known=False)
    # An unknown answer is cached too, so a broker that is down slows one page every few seconds, not all.
    cache.set(CACHE_KEY, status, settings.JOURNEY_WORKERS_CACHE_SECONDS)
    return status


def jobs_waiting_count() -> int:
    """Experiments waiting for a GPU worker: the database's queued rows, whoever owns them."""
    return TrainingJob.objects.filter(state=JobState.QUEUED).count()


@dataclass(frozen=True)
class WorkerLine:
    hostname: str
    doing: str
    url: str = ""


def worker_lines(
    status: WorkersStatus, *, jobs: Iterable[TrainingJob], describe: Callable[[TrainingJob], str]
) -> list[WorkerLine]:
    """One line per GPU worker, in words a viewer may read: a job among `jobs` (those the viewer may
    see) is described by `describe`; any other task is only "busy"; no task is "idle"."""
    mine = {job.pk: job for job in jobs}
    lines = []
    for w in status.workers:
        if not w.tasks:
            lines.append(WorkerLine(w.hostname, "idle"))
            continue
        shown = [mine[t.object_id] for t in w.tasks if t.name == TRAIN_TASK and t.object_id in mine]
        if shown:
            lines.append(WorkerLine(w.hostname, "; ".join(describe(j) for j in shown), shown[0].get_absolute_url()))
        else:
            lines.append(WorkerLine(w.hostname, "busy"))
    return lines


def workers_panel(*, jobs: Iterable[TrainingJob], describe: Callable[[TrainingJob], str]) -> dict:
    """What the jobs pages show about the workers and the queue (one database query: the count)."""
    status = workers_status()
    return {
        "known": status.known,
        "online": status.online,
        "lines": worker_lines(status, jobs=jobs, describe=describe),
        "waiting": jobs_waiting_count(),
    }
