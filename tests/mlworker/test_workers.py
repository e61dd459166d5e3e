"""The GPU workers and the queue on the jobs pages: the presence rows workers write, what a viewer
may read of them, and (marker `worker`) a real worker that shows up, and leaves when it stops."""

import socket
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from mlworker import workers
from mlworker.models import JobState, TrainingJob, WorkerPresence
from mlworker.services import job_submit
from mlworker.workers import GpuWorker
from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.django_db


def _alive(hostname, queues=("gpu", "cpu"), seconds_ago=0):
    workers.presence_beat(hostname=hostname, queues=queues, now=timezone.now() - timedelta(seconds=seconds_ago))


def _running(job, worker):
    TrainingJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING, worker=worker)


def test_a_beat_creates_then_refreshes_one_row_per_worker():
    _alive("gpu0@box", seconds_ago=50)
    first = WorkerPresence.objects.get()
    _alive("gpu0@box", queues=("gpu",))
    again = WorkerPresence.objects.get()
    assert again.started_at == first.started_at and again.seen_at > first.seen_at
    assert again.queue_names == ["gpu"]


def test_only_recent_workers_of_the_gpu_queue_count_with_the_jobs_they_run(settings, student, tiny_settings):
    settings.JOURNEY_WORKER_BEAT_SECONDS = 10
    _alive("gpu1@box")
    _alive("gpu0@box", seconds_ago=25)  # two beats missed: still online
    _alive("gone@box", seconds_ago=31)  # three missed: gone
    _alive("cpu@box", queues=("cpu",))
    job = job_submit(user=student, job_settings=tiny_settings)
    _running(job, "gpu1@box")
    finished = job_submit(user=student, job_settings=tiny_settings)
    TrainingJob.objects.filter(pk=finished.pk).update(state=JobState.SUCCEEDED, worker="gpu0@box")
    # worker presence, running jobs on those workers
    assert workers.gpu_workers_online() == [GpuWorker("gpu0@box", ()), GpuWorker("gpu1@box", (job.pk,))]


def test_a_cleared_worker_is_gone_at_once():
    _alive("gpu0@box")
    workers.presence_clear(hostname="gpu0@box")
    assert workers.gpu_workers_online() == []


def _job(pk, name=""):
    return TrainingJob(pk=pk, name=name)


def test_it_names_only_the_jobs_the_viewer_may_see_and_says_busy_for_the_rest():
    online = [GpuWorker("a@box", ()), GpuWorker("b@box", (3,)), GpuWorker("c@box", (99,))]
    lines = workers.worker_lines(online, jobs=[_job(3, "cats"), _job(4)], describe=lambda j: f"{j.display_name}!")
    assert [(line.hostname, line.doing, line.url) for line in lines] == [
        ("a@box", "idle", ""),
        ("b@box", "cats!", reverse("mlworker:job", args=[3])),
        ("c@box", "busy", ""),
    ]


# ---------------------------------------------------------------- pages


def test_the_jobs_list_shows_the_workers_the_students_own_job_and_the_queue(client, student, student2, tiny_settings):
    mine = job_submit(user=student, job_settings=tiny_settings)
    theirs = job_submit(user=student2, job_settings=tiny_settings)
    job_submit(user=student2, job_settings=tiny_settings)  # waiting
    _alive("gpu0@box")
    _alive("gpu1@box")
    _running(mine, "gpu0@box")
    _running(theirs, "gpu1@box")
    client.force_login(student)
    page = client.get(reverse("mlworker:jobs")).content.decode()
    assert "GPU workers online: <strong>2</strong>" in page
    url = reverse("mlworker:job", args=[mine.pk])
    assert f'<code>gpu0@box</code>: <a href="{url}">your experiment #{mine.pk}</a>' in page
    assert "<code>gpu1@box</code>: busy" in page and f"#{theirs.pk}" not in page.split("</section>")[0]
    assert "Experiments waiting in the queue: <strong>1</strong>" in page


def test_the_class_jobs_page_names_the_classs_job_and_only_busy_for_another_class(
    client, classroom, instructor, student, other_student, tiny_settings
):
    ours = job_submit(user=student, job_settings=tiny_settings)
    TrainingJob.objects.filter(pk=ours.pk).update(name="cats at 64 px")
    other = job_submit(user=other_student, job_settings=tiny_settings)
    _alive("gpu0@box")
    _alive("gpu1@box")
    _running(ours, "gpu0@box")
    _running(other, "gpu1@box")
    job_submit(user=other_student, job_settings=tiny_settings)  # waits, whoever's it is
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_jobs", args=[classroom.pk])).content.decode()
    url = reverse("mlworker:job", args=[ours.pk])
    assert f'<code>gpu0@box</code>: <a href="{url}">cats at 64 px, student</a>' in page
    assert "<code>gpu1@box</code>: busy" in page and "student3" not in page
    assert "Experiments waiting in the queue: <strong>1</strong>" in page


def test_the_jobs_page_says_when_no_worker_is_online(client, student, settings):
    _alive("gpu0@box", seconds_ago=3 * settings.JOURNEY_WORKER_BEAT_SECONDS + 1)
    client.force_login(student)
    page = client.get(reverse("mlworker:jobs")).content.decode()
    assert "GPU workers online: <strong>0</strong>" in page and "wait safely in the queue" in page
    assert "gpu0@box" not in page


# ---------------------------------------------------------------- real workers


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_shows_on_the_jobs_page_while_it_runs_and_leaves_when_it_stops(
    celery_worker, worker_env, client, student, tmp_path
):
    shared = f"test@{socket.gethostname()}"
    visitor = f"visitor@{socket.gethostname()}"
    client.force_login(student)
    worker = WorkerProcess(worker_env, tmp_path / "visitor.log", queues="gpu", name="visitor")
    try:
        wait_for(lambda: {shared, visitor} <= {w.hostname for w in workers.gpu_workers_online()}, timeout=30,
                 what="both workers' beats")  # fmt: skip
        page = client.get(reverse("mlworker:jobs")).content.decode()
        assert f"<code>{shared}</code>: idle" in page and f"<code>{visitor}</code>: idle" in page
    finally:
        worker.stop()
    assert not WorkerPresence.objects.filter(hostname=visitor).exists()  # a clean stop clears its row
    assert f"<code>{visitor}</code>" not in client.get(reverse("mlworker:jobs")).content.decode()


def test_a_worker_processs_first_beat_restarts_its_rows_clock():
    """A worker killed outright leaves its row; its successor of the same name must not inherit its
    start (housekeeping reads it to tell that a prediction's worker died)."""
    _alive("predict@box", seconds_ago=50)
    first = WorkerPresence.objects.get()
    workers.presence_beat(hostname="predict@box", queues=("predict",), starting=True)
    assert WorkerPresence.objects.get().started_at > first.started_at
