"""Helpers for the class pages' tests: a job's end, written as a worker writes it."""

from mlworker.services import job_claim, job_finish


def job_end(job, state, **fields):
    """Claim a queued job and finish it in `state` (with results such as error_rate), as the worker does,
    so the class pages' summaries see it as they would in production."""
    token = job_claim(job_id=job.pk, worker="tests")
    assert token and job_finish(job_id=job.pk, token=token, state=state, **fields)
