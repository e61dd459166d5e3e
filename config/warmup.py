"""Load what a worker's tasks need when its process starts, not when the first task arrives: the
free-text grader on the `cpu` queue (the first grade of the day waited 16 s for it), torch and
fastai on the `predict` queue (the first prediction waited 9 s)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def _grader() -> None:
    from quizzes.grading import warm_up

    warm_up()


def _predictor() -> None:
    import fastai.vision.all  # noqa: F401  (what load_learner and predict import on first use)
    import torch  # noqa: F401


WARMERS = {"cpu": _grader, "predict": _predictor}


def pin_threads(queues) -> int | None:
    """Give torch JOURNEY_GRADER_THREADS threads in a process that grades (the `cpu` queue's): the
    worker's concurrency already runs one grading per process, and each process's torch taking every
    core made them, the web server and training fight over the same cores (a grade took 0.6 s
    instead of 0.14 s on two busy cores). Returns the threads set, None when left as torch has it."""
    from django.conf import settings

    threads = settings.JOURNEY_GRADER_THREADS
    if "cpu" not in set(queues) or not threads:
        return None
    import torch

    torch.set_num_threads(threads)
    return threads


def warm_up(queues) -> list[str]:
    """Run the warmer of each queue this worker consumes; a failure is logged, never fatal (the task
    then loads what it needs itself, as before). Returns the queues warmed."""
    done = []
    for queue in sorted(set(queues) & set(WARMERS)):
        started = time.perf_counter()
        try:
            WARMERS[queue]()
        except Exception:
            log.exception("could not warm up the %s queue's worker; its first task will load what it needs", queue)
            continue
        log.info("%s worker ready in %.1f s", queue, time.perf_counter() - started)
        done.append(queue)
    return done
