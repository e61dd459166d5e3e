"""Who trains right now: the GPU workers that are alive and the job each runs.

Every worker process writes a WorkerPresence row when it is ready and every
JOURNEY_WORKER_BEAT_SECONDS after that (a thread in the worker's main process, started by Celery's
worker_ready signal; see config/celery_app.py), and deletes it when it stops cleanly. A worker
killed outright just stops beating and drops off after three missed beats. Pages read the rows and
the running jobs (which record the worker that claimed them) from the database: they never wait on
the broker, and they work the same on Redis and on the embedded SQLite broker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from mlworker.models import JobState, TrainingJob, WorkerPresence

log = logging.getLogger(__name__)

GPU_QUEUE = "gpu"


# ---------------------------------------------------------------- the workers' side


def presence_beat(*, hostname: str, queues: Iterable[str], now=None, starting: bool = False) -> None:
    """Say that this worker is alive and which queues it consumes now. `starting`: the first beat of
    a worker process, which restarts the row's clock (a worker killed outright leaves its row, and
    housekeeping must tell its successor of the same name from it; see predictions_requeue_lost)."""
    now = now or timezone.now()
    names = ",".join(sorted(set(queues)))
    fields = {"queues": names, "seen_at": now} | ({"started_at": now} if starting else {})
    updated = WorkerPresence.objects.filter(hostname=hostname).update(**fields)
    if not updated:
        WorkerPresence.objects.update_or_create(
            hostname=hostname, defaults={"queues": names, "seen_at": now, "started_at": now}
        )


def presence_clear(*, hostname: str) -> None:
    WorkerPresence.objects.filter(hostname=hostname).delete()


class PresenceBeat(threading.Thread):
    """Beats for one worker until stopped. `queues` is asked afresh each time, so a queue added or
    cancelled through remote control shows on the next beat."""

    def __init__(self, hostname: str, queues: Callable[[], Iterable[str]], every: float):
        super().__init__(name="presence-beat", daemon=True)
        self.hostname, self.queues, self.every = hostname, queues, every
        self._stop_event = threading.Event()

    def run(self):
        starting = True
        try:
            while True:
                try:
                    close_old_connections()
                    presence_beat(hostname=self.hostname, queues=self.queues(), starting=starting)
                    starting = False
                except Exception:  # a database blip costs one beat, never the worker
                    log.exception("presence beat failed")
                if self._stop_event.wait(self.every):
                    break
        finally:
            connection.close()

    def stop(self):
        self._stop_event.set()
        self.join(timeout=5)
        try:
            presence_clear(hostname=self.hostname)
        finally:
            connection.close()


_beat: PresenceBeat | None = None


def on_worker_ready(sender=None, **kwargs) -> None:
    """Celery's worker_ready: `sender` is the worker's consumer."""
    global _beat

    def queues():
        return [q.name for q in sender.task_consumer.queues]

    _beat = PresenceBeat(sender.hostname, queues, settings.JOURNEY_WORKER_BEAT_SECONDS)
    _beat.start()


def on_worker_shutdown(**kwargs) -> None:
    global _beat
    if _beat is not None:
        _beat.stop()
        _beat = None


# ---------------------------------------------------------------- the pages' side


@dataclass(frozen=True)
class GpuWorker:
    hostname: str
    job_ids: tuple[int, ...] = ()


def gpu_workers_online(*, now=None) -> list[GpuWorker]:
    """The workers consuming the gpu queue that beat within the last three beats, each with the
    jobs it runs. Two queries."""
    now = now or timezone.now()
    since = now - timedelta(seconds=3 * settings.JOURNEY_WORKER_BEAT_SECONDS)
    hosts = [
        w.hostname
        for w in WorkerPresence.objects.filter(seen_at__gte=since).order_by("hostname")
        if GPU_QUEUE in w.queue_names
    ]
    # Every running job, not only those of `hosts`: as many as there are GPUs busy, and always
    # exactly one query (an empty `__in` would skip it).
    running: dict[str, list[int]] = {}
    for host, pk in TrainingJob.objects.filter(state=JobState.RUNNING).values_list("worker", "pk"):
        running.setdefault(host, []).append(pk)
    return [GpuWorker(host, tuple(sorted(running.get(host, [])))) for host in hosts]


def jobs_waiting_count() -> int:
    """Experiments waiting for a GPU worker: the database's queued rows, whoever owns them."""
    return TrainingJob.objects.filter(state=JobState.QUEUED).count()


@dataclass(frozen=True)
class WorkerLine:
    hostname: str
    doing: str
    url: str = ""


def worker_lines(
    workers: Iterable[GpuWorker], *, jobs: Iterable[TrainingJob], describe: Callable[[TrainingJob], str]
) -> list[WorkerLine]:
    """One line per GPU worker, in words a viewer may read: a job among `jobs` (those the viewer may
    see) is described by `describe`; any other job is only "busy"; no job is "idle"."""
    mine = {job.pk: job for job in jobs}
    lines = []
    for w in workers:
        if not w.job_ids:
            lines.append(WorkerLine(w.hostname, "idle"))
            continue
        shown = [mine[pk] for pk in w.job_ids if pk in mine]
        if shown:
            lines.append(WorkerLine(w.hostname, "; ".join(describe(j) for j in shown), shown[0].get_absolute_url()))
        else:
            lines.append(WorkerLine(w.hostname, "busy"))
    return lines


def workers_panel(*, jobs: Iterable[TrainingJob], describe: Callable[[TrainingJob], str]) -> dict:
    """What the jobs pages show about the workers and the queue (at most three queries)."""
    workers = gpu_workers_online()
    return {
        "online": len(workers),
        "lines": worker_lines(workers, jobs=jobs, describe=describe),
        "waiting": jobs_waiting_count(),
    }
