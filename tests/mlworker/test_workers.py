"""The GPU workers and the queue on the jobs pages: Celery's replies in words, the cache, a broker
that is down, and (marker `worker`) a real worker answering."""

import socket
import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from accounts.services import classroom_create, classroom_join
from mlworker import workers
from mlworker.models import JobState, TrainingJob
from mlworker.services import job_submit
from mlworker.workers import CurrentTask, GpuWorker, WorkersStatus

# Saved before the autouse stub in tests/conftest.py replaces it for each test.
REAL_ASK = workers._ask_workers
TRAIN = "mlworker.tasks.train"
PREDICT = "mlworker.tasks.predict"


def replies(running: dict[str, list]):
    """Fake `active_queues` and `active` replies: every named worker consumes gpu, plus a cpu-only one."""
    queues = {host: [{"name": "gpu"}, {"name": "cpu"}] for host in running}
    queues["cpu@box"] = [{"name": "cpu"}]
    return queues, {host: tasks for host, tasks in running.items()}


def test_it_keeps_the_workers_of_the_gpu_queue_and_their_tasks():
    queues, active = replies({"gpu1@box": [{"name": TRAIN, "args": [12]}], "gpu0@box": []})
    status = workers.status_from_replies(queues, active)
    assert status == WorkersStatus(
        known=True,
        workers=(GpuWorker("gpu0@box", ()), GpuWorker("gpu1@box", (CurrentTask(TRAIN, 12),))),
    )
    assert status.online == 2
    assert WorkersStatus(known=False).online is None


def test_it_reads_a_tasks_id_from_its_args_or_their_repr():
    assert [workers._object_id({"args": a}) for a in ([7], "[7]", "(7,)", ["x"], [], None, [1, 2])] == [
        7, 7, 7, None, None, None, None,
    ]  # fmt: skip


def test_a_worker_that_answers_queues_but_not_active_counts_as_online_and_idle():
    queues, _ = replies({"gpu0@box": []})
    status = workers.status_from_replies(queues, {})
    assert [(w.hostname, w.tasks) for w in status.workers] == [("gpu0@box", ())]


def _job(pk, name=""):
    return TrainingJob(pk=pk, name=name)


def test_it_names_only_the_jobs_the_viewer_may_see_and_says_busy_for_the_rest():
    status = WorkersStatus(
        known=True,
        workers=(
            GpuWorker("a@box", ()),
            GpuWorker("b@box", (CurrentTask(TRAIN, 3),)),
            GpuWorker("c@box", (CurrentTask(TRAIN, 99),)),
            GpuWorker("d@box", (CurrentTask(PREDICT, 3),)),  # prediction 3, not job 3
        ),
    )
    lines = workers.worker_lines(status, jobs=[_job(3, "cats"), _job(4)], describe=lambda j: f"{j.display_name}!")
    assert [(line.hostname, line.doing, line.url) for line in lines] == [
        ("a@box", "idle", ""),
        ("b@box", "cats!", reverse("mlworker:job", args=[3])),
        ("c@box", "busy", ""),
        ("d@box", "busy", ""),
    ]


def test_it_asks_once_per_cache_period_and_says_unknown_when_asking_fails(monkeypatch, settings):
    calls = []

    def broken():
        calls.append(1)
        raise OSError("connection refused")

    monkeypatch.setattr(workers, "_ask_workers", broken)
    assert workers.workers_status() == WorkersStatus(known=False)
    assert workers.workers_status() == WorkersStatus(known=False)
    assert len(calls) == 1  # the unknown answer is cached too
    settings.JOURNEY_WORKERS_CACHE_SECONDS = 0
    cache.delete(workers.CACHE_KEY)
    workers.workers_status()
    workers.workers_status()
    assert len(calls) == 3


@pytest.mark.parametrize("down", ["redis://127.0.0.1:1/0", "sqla+sqlite:///{tmp}/no-such-dir/broker.sqlite3"])
def test_a_broker_that_is_down_gives_unknown_quickly(monkeypatch, settings, broker_url, tmp_path, down):
    from tests.support import use_broker

    monkeypatch.setattr(workers, "_ask_workers", REAL_ASK)
    settings.JOURNEY_WORKERS_TIMEOUT = 0.5
    use_broker(down.format(tmp=tmp_path))
    try:
        started = time.monotonic()
        status = workers.workers_status()
        elapsed = time.monotonic() - started
    finally:
        use_broker(broker_url)
    assert status.known is False and elapsed < 5


# ---------------------------------------------------------------- pages


@pytest.mark.django_db
def test_the_jobs_list_shows_the_workers_the_students_own_job_and_the_queue(
    client, student, student2, tiny_settings, monkeypatch
):
    mine = job_submit(user=student, job_settings=tiny_settings)
    theirs = job_submit(user=student2, job_settings=tiny_settings)
    job_submit(user=student2, job_settings=tiny_settings)  # waiting
    TrainingJob.objects.filter(pk__in=[mine.pk, theirs.pk]).update(state=JobState.RUNNING)
    running = {"gpu0@box": [{"name": TRAIN, "args": [mine.pk]}], "gpu1@box": [{"name": TRAIN, "args": [theirs.pk]}]}
    monkeypatch.setattr(workers, "_ask_workers", lambda: replies(running))
    client.force_login(student)
    page = client.get(reverse("mlworker:jobs")).content.decode()
    assert "GPU workers online: <strong>2</strong>" in page
    url = reverse("mlworker:job", args=[mine.pk])
    assert f'<code>gpu0@box</code>: <a href="{url}">your experiment #{mine.pk}</a>' in page
    assert "<code>gpu1@box</code>: busy" in page and f"#{theirs.pk}" not in page.split("</section>")[0]
    assert "Experiments waiting in the queue: <strong>1</strong>" in page


@pytest.mark.django_db
def test_the_class_jobs_page_names_the_classs_job_and_only_busy_for_another_class(
    client, instructor, student, make_user, tiny_settings, monkeypatch
):
    other_student = make_user("student3")
    classroom = classroom_create(by=instructor, name="Monday group")
    classroom_join(user=student, code=classroom.code)
    ours = job_submit(user=student, job_settings=tiny_settings)
    TrainingJob.objects.filter(pk=ours.pk).update(name="cats at 64 px")
    other = job_submit(user=other_student, job_settings=tiny_settings)
    running = {"gpu0@box": [{"name": TRAIN, "args": [ours.pk]}], "gpu1@box": [{"name": TRAIN, "args": [other.pk]}]}
    monkeypatch.setattr(workers, "_ask_workers", lambda: replies(running))
    client.force_login(instructor)
    page = client.get(reverse("accounts:class_jobs", args=[classroom.pk])).content.decode()
    url = reverse("mlworker:job", args=[ours.pk])
    assert f'<code>gpu0@box</code>: <a href="{url}">cats at 64 px, student</a>' in page
    assert "<code>gpu1@box</code>: busy" in page and "student3" not in page
    assert "Experiments waiting in the queue: <strong>2</strong>" in page


@pytest.mark.django_db
def test_the_jobs_page_says_unknown_when_the_workers_do_not_answer(client, student, monkeypatch):
    def down():
        raise ConnectionRefusedError

    monkeypatch.setattr(workers, "_ask_workers", down)
    client.force_login(student)
    response = client.get(reverse("mlworker:jobs"))
    assert response.status_code == 200
    assert "GPU workers online: <strong>unknown</strong>" in response.content.decode()


# ---------------------------------------------------------------- a real worker


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_answers_and_shows_on_the_jobs_page(celery_worker, client, student, settings):
    settings.JOURNEY_WORKERS_TIMEOUT = 3.0  # the embedded broker polls for replies about once a second
    status = workers.workers_status()
    hostname = f"test@{socket.gethostname()}"
    assert status.known and hostname in [w.hostname for w in status.workers]
    client.force_login(student)
    page = client.get(reverse("mlworker:jobs")).content.decode()
    assert "GPU workers online: <strong>" in page and f"<code>{hostname}</code>: " in page
