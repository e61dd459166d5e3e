"""Put the current job id on every log line, so a worker's log can be read job by job."""

import contextvars
import logging
from contextlib import contextmanager

current_job_id: contextvars.ContextVar[str] = contextvars.ContextVar("journey_job_id", default="-")


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = current_job_id.get()
        return True


@contextmanager
def job_context(job_id):
    token = current_job_id.set(str(job_id))
    try:
        yield
    finally:
        current_job_id.reset(token)
