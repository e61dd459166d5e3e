"""The training callback's link to the database: progress, epoch rows, heartbeat, cancel flag."""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connection
from django.utils import timezone

from mlworker.models import JobEpoch, JobState, TrainingJob

log = logging.getLogger(__name__)

MAX_LOSS_POINTS = 2000


class LostClaim(Exception):
    """The job is no longer ours (housekeeping re-queued it): stop without writing."""


class DbReporter:
    """Implements mlworker.training.Reporter for one claimed run of one job.

    Writes are conditional on the run token, so a run that lost its claim cannot
    overwrite the run that replaced it. Progress is written at most every `interval`
    seconds; the per-batch losses are kept here and written with it.
    """

    def __init__(self, job_id: int, token: str, *, interval: float = 0.3):
        self.job_id, self.token, self.interval = job_id, token, interval
        self._last_write = 0.0
        self._losses: list[list[float]] = []
        self._step = 0

    def _mine(self):
        return TrainingJob.objects.filter(pk=self.job_id, state=JobState.RUNNING, run_token=self.token)

    def _write(self, **fields) -> None:
        if not self._mine().update(heartbeat_at=timezone.now(), **fields):
            raise LostClaim(f"job {self.job_id} is no longer claimed by run {self.token}")
        self._last_write = time.monotonic()

    def loss_points(self) -> list[list[float]]:
        points = self._losses
        if len(points) > MAX_LOSS_POINTS:
            stride = len(points) // MAX_LOSS_POINTS + 1
            points = points[::stride] + [points[-1]]
        return points

    def progress(self, *, phase, epoch, total_epochs, batch, n_batches, fraction, train_loss) -> None:
        self._step += 1
        if train_loss is not None:
            self._losses.append([self._step, round(float(train_loss), 5)])
        last_batch = batch >= n_batches
        if last_batch or time.monotonic() - self._last_write >= self.interval:
            self._write(
                phase=phase,
                epoch=epoch,
                total_epochs=total_epochs,
                batch=batch,
                n_batches=n_batches,
                progress=min(1.0, float(fraction)),
                train_losses=self.loss_points(),
            )

    def epoch_end(self, *, phase, epoch, train_loss, valid_loss, error_rate, accuracy, seconds) -> None:
        JobEpoch.objects.update_or_create(
            job_id=self.job_id,
            epoch=epoch,
            defaults={
                "phase": phase,
                "train_loss": train_loss,
                "valid_loss": valid_loss,
                "error_rate": error_rate,
                "accuracy": accuracy,
                "seconds": seconds,
            },
        )
        self._write(train_losses=self.loss_points())

    def should_cancel(self) -> bool:
        return TrainingJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()

    def log(self, message: str) -> None:
        log.info("%s", message)
        if message.startswith("lr_find"):
            # The page shows this phase while the learning-rate finder runs its own fits.
            self._write(phase="lr_find")


class Heartbeat(threading.Thread):
    """Beats while the run lives, through long steps without batches (data, lr_find, export)."""

    def __init__(self, job_id: int, token: str, every: float):
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.job_id, self.token, self.every = job_id, token, every
        self._stop_event = threading.Event()

    def run(self):
        try:
            while not self._stop_event.wait(self.every):
                close_old_connections()
                TrainingJob.objects.filter(pk=self.job_id, state=JobState.RUNNING, run_token=self.token).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:  # a missed beat is the reaper's business, not a crash
            log.exception("heartbeat failed")
        finally:
            connection.close()

    def stop(self):
        self._stop_event.set()
        self.join(timeout=5)
