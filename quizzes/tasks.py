"""Celery tasks of the quizzes (queue `cpu`): they take ids and call services."""

from __future__ import annotations

import logging

from celery import shared_task

from quizzes import services

log = logging.getLogger(__name__)


@shared_task(
    name="quizzes.tasks.grade_free_text",
    bind=True,
    acks_late=True,
    max_retries=3,
    default_retry_delay=15,
    # Loading the sentence model takes seconds; grading one answer, well under one.
    soft_time_limit=120,
    time_limit=180,
)
def grade_free_text(self, answer_id: int) -> str:
    try:
        return services.answer_grade_free_text(answer_id=answer_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            log.exception("grading answer %s failed %s times; giving up", answer_id, self.request.retries + 1)
            services.answer_grading_failed(answer_id=answer_id)
            return "failed"
        log.warning("grading answer %s failed (%s: %s); retrying", answer_id, exc.__class__.__name__, exc)
        raise self.retry(exc=exc) from exc


@shared_task(name="quizzes.tasks.housekeeping", time_limit=120, soft_time_limit=90)
def housekeeping() -> dict:
    """Runs from beat: hand in timed tests whose time ran out, queue stalled gradings again."""
    done = services.quizzes_housekeeping()
    if done["closed"] or done["requeued"]:
        log.info("quiz housekeeping: closed %s, requeued %s", done["closed"], done["requeued"])
    return done
