"""Helpers for the class pages' tests: a job's end, written as a worker writes it; a free-text answer
waiting for an instructor."""

from mlworker.services import job_claim, job_finish
from quizzes.models import Answer
from quizzes.services import answer_grading_failed, answers_save, attempt_start, attempt_submit


def job_end(job, state, **fields):
    """Claim a queued job and finish it in `state` (with results such as error_rate), as the worker does,
    so the class pages' summaries see it as they would in production."""
    token = job_claim(job_id=job.pk, worker="tests")
    assert token and job_finish(job_id=job.pk, token=token, state=state, **fields)


def waiting_answer(student) -> Answer:
    """A free-text answer handed in for an instructor to grade (the grader gave up on it)."""
    attempt = attempt_start(user=student, quiz="history", mode="test")
    answers = {a.question.slug: a for a in attempt.answers.select_related("question")}
    answers_save(attempt=attempt, responses={answers["t-free"].position: {"text": "my words"}})
    attempt_submit(attempt=attempt)
    answer_grading_failed(answer_id=answers["t-free"].pk)
    return Answer.objects.get(pk=answers["t-free"].pk)
