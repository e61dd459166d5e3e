"""Job services without a worker: quotas, claiming, cancelling, housekeeping."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from mlworker import dispatch
from mlworker.models import JobState, TrainingJob
from mlworker.services import job_cancel, job_claim, job_finish, job_submit, jobs_reap

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """What reached the broker, which stands in for it: (task name, id) pairs."""
    sent = []
    monkeypatch.setattr(dispatch, "send", lambda name, object_id, what: sent.append((name, object_id)) or True)
    return sent


def test_it_saves_a_queued_job_and_dispatches_after_commit(student, tiny_settings, sent,
                                                           django_capture_on_commit_callbacks):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        job = job_submit(user=student, job_settings=tiny_settings)
        assert sent == []  # the task is queued only once the row is committed
    assert sent == [("mlworker.tasks.train", job.pk)]
    job.refresh_from_db()
    assert (job.state, job.owner) == (JobState.QUEUED, student)
    assert job.dispatched_at is not None  # housekeeping will not send it again
    assert job.job_settings == tiny_settings


def test_a_job_waits_unsent_while_the_broker_is_down(student, tiny_settings, monkeypatch,
                                                     django_capture_on_commit_callbacks):  # fmt: skip
    monkeypatch.setattr(dispatch, "send", lambda *args: False)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_submit(user=student, job_settings=tiny_settings)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.dispatched_at is None  # housekeeping sends it later


def test_it_refuses_more_live_jobs_than_the_quota(student, tiny_settings, settings):
    settings.JOURNEY_MAX_ACTIVE_JOBS = 2
    job_submit(user=student, job_settings=tiny_settings)
    job_submit(user=student, job_settings=tiny_settings)
    with pytest.raises(ValidationError, match="most allowed at once is 2"):
        job_submit(user=student, job_settings=tiny_settings)
    assert TrainingJob.objects.filter(owner=student).count() == 2


def test_finished_jobs_do_not_count_against_the_quota(student, tiny_settings, settings):
    settings.JOURNEY_MAX_ACTIVE_JOBS = 1
    first = job_submit(user=student, job_settings=tiny_settings)
    job_cancel(job=first, by=student)
    second = job_submit(user=student, job_settings=tiny_settings)
    assert second.state == JobState.QUEUED


def test_quota_is_per_student(student, student2, tiny_settings, settings):
    settings.JOURNEY_MAX_ACTIVE_JOBS = 1
    job_submit(user=student, job_settings=tiny_settings)
    assert job_submit(user=student2, job_settings=tiny_settings).state == JobState.QUEUED


def test_only_one_claim_wins(student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    first = job_claim(job_id=job.pk, worker="a")
    second = job_claim(job_id=job.pk, worker="b")
    assert first and second is None
    job.refresh_from_db()
    assert (job.state, job.attempts, job.worker, job.run_token) == (JobState.RUNNING, 1, "a", first)


def test_a_cancelled_job_cannot_be_claimed(student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    job_cancel(job=job, by=student)
    assert job_claim(job_id=job.pk, worker="a") is None
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_cancelling_a_running_job_raises_its_flag(student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    job_claim(job_id=job.pk, worker="a")
    job = job_cancel(job=job, by=student)
    assert job.state == JobState.RUNNING and job.cancel_requested


def test_another_student_cannot_cancel(student, student2, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    with pytest.raises(PermissionError):
        job_cancel(job=job, by=student2)


def test_only_the_owning_run_can_finish_a_job(student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    token = job_claim(job_id=job.pk, worker="a")
    assert not job_finish(job_id=job.pk, token="not-mine", state=JobState.SUCCEEDED)
    assert job_finish(job_id=job.pk, token=token, state=JobState.SUCCEEDED)


def _stale(job, seconds):
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_reaper_requeues_a_job_whose_heartbeat_stopped(student, tiny_settings, settings):
    settings.JOURNEY_HEARTBEAT_TIMEOUT = 30
    job = job_submit(user=student, job_settings=tiny_settings)
    job_claim(job_id=job.pk, worker="a")
    _stale(job, 31)
    assert jobs_reap() == [job.pk]
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.run_token == "" and job.dispatched_at is None


def test_reaper_leaves_a_job_with_a_fresh_heartbeat(student, tiny_settings, settings):
    settings.JOURNEY_HEARTBEAT_TIMEOUT = 30
    job = job_submit(user=student, job_settings=tiny_settings)
    job_claim(job_id=job.pk, worker="a")
    _stale(job, 10)
    assert jobs_reap() == []


def test_reaper_fails_a_job_after_too_many_lost_workers(student, tiny_settings, settings):
    settings.JOURNEY_HEARTBEAT_TIMEOUT = 30
    settings.JOURNEY_JOB_MAX_ATTEMPTS = 2
    job = job_submit(user=student, job_settings=tiny_settings)
    for _ in range(2):
        job_claim(job_id=job.pk, worker="a")
        _stale(job, 31)
        jobs_reap()
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "stopped before it finished, 2 times" in job.error_message
    assert "smaller image size or batch size" in job.error_message
