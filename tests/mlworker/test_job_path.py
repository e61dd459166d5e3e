"""The job path for real: a Celery worker process, the test broker, tiny fastai runs on the CPU."""

import io
import os
import shutil
import signal
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageDraw

from mlworker.dispatch import job_dispatch
from mlworker.models import DatasetState, JobState, TrainingJob
from mlworker.services import dataset_check_run, dataset_upload, job_submit, jobs_redispatch
from mlworker.training import FEED_CACHE_FOLDER
from tests.mlworker.support import make_zip
from tests.support import WorkerProcess, use_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _state(job_id):
    return TrainingJob.objects.values_list("state", flat=True).get(pk=job_id)


def _wait_done(job_id, timeout=180):
    return wait_for(
        lambda: _state(job_id) not in (JobState.QUEUED, JobState.RUNNING) and _state(job_id),
        timeout=timeout,
        what=f"job {job_id} to finish",
    )


def test_it_trains_a_tiny_model_and_records_progress_and_results(celery_worker, student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    assert _wait_done(job.pk) == JobState.SUCCEEDED, TrainingJob.objects.get(pk=job.pk).error_message
    job.refresh_from_db()

    # fine_tune(1) is two fits: the frozen-body head epoch, then one whole-model epoch.
    rows = list(job.epoch_rows.order_by("epoch"))
    assert [(r.epoch, r.phase) for r in rows] == [(1, "head"), (2, "whole")]
    for r in rows:
        assert r.train_loss > 0 and r.valid_loss > 0 and 0 <= r.error_rate <= 1
        assert r.accuracy == pytest.approx(1 - r.error_rate, abs=1e-6)
    assert job.error_rate == pytest.approx(rows[-1].error_rate, abs=1e-6)
    assert job.progress == 1.0 and job.attempts == 1
    assert job.train_losses and all(loss > 0 for _, loss in job.train_losses)
    assert job.device.startswith("cpu")

    # The confusion matrix counts every validation image once.
    assert job.classes == ["False", "True"]
    assert sum(map(sum, job.confusion)) == job.n_valid > 0
    assert job.n_train + job.n_valid == 2 * tiny_settings.per_class

    # Files went to shared storage, not to the worker's local disk.
    assert default_storage.exists(job.model_file)
    assert job.top_losses and all(default_storage.exists(t["image_path"]) for t in job.top_losses)
    assert {t["actual"] for t in job.top_losses} <= {"True", "False"}


def test_a_second_job_on_the_same_images_reads_the_tensor_cache_the_first_built(
    celery_worker, worker_env, student, tiny_settings
):
    settings = replace(tiny_settings, per_class=14)  # a data set folder of its own: its cache starts empty
    folder = Path(worker_env["JOURNEY_DATA_DIR"]) / FEED_CACHE_FOLDER / f"silhouettes-catdog-n{settings.per_class}"
    shutil.rmtree(folder, ignore_errors=True)
    first = job_submit(user=student, job_settings=settings)
    assert _wait_done(first.pk) == JobState.SUCCEEDED
    (cache,) = folder.glob("64x64-*.pt")
    built = cache.stat().st_ino
    second = job_submit(user=student, job_settings=replace(settings, seed=7))
    assert _wait_done(second.pk) == JobState.SUCCEEDED
    assert [p.name for p in folder.iterdir()] == [cache.name] and cache.stat().st_ino == built
    log = celery_worker.log_path.read_text()
    assert "Data feed: a tensor cache of 28 images (0.3 MB, built now" in log
    assert "Data feed: a tensor cache of 28 images (0.3 MB, read back" in log


def test_photos_that_are_not_square_train_with_a_dataloader_worker_in_the_jobs_process(
    celery_worker, student, tiny_settings
):
    # The worker's environment asks for one DataLoader worker (tests/conftest.py): it is forked by the
    # job's training process while that process's heartbeat thread runs.
    def photo(kind, i):
        image = Image.new("RGB", (60 + i, 44), "white")
        draw = ImageDraw.Draw(image)
        (draw.ellipse if kind == "circle" else draw.rectangle)([8 + i, 8, 36 + i, 36], fill=(200, 30, 30))
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    archive = make_zip({f"shapes/{k}/{k}_{i}.png": photo(k, i) for k in ("circle", "square") for i in range(8)})
    uploaded = dataset_upload(user=student, name="photos", rule="folders", upload=SimpleUploadedFile("s.zip", archive))
    dataset = dataset_check_run(dataset_id=uploaded.pk)
    assert dataset.state == DatasetState.READY, dataset.error_message
    settings = replace(tiny_settings, dataset=dataset.key, per_class=None, batch_size=4)
    job = job_submit(user=student, job_settings=settings)
    assert _wait_done(job.pk) == JobState.SUCCEEDED, TrainingJob.objects.get(pk=job.pk).error_message
    job.refresh_from_db()
    assert job.classes == ["circle", "square"] and job.n_train + job.n_valid == 16
    log = celery_worker.log_path.read_text()
    assert "images are read one at a time by 1 DataLoader worker process (no tensor cache: not all its images" in log


def test_a_redelivered_message_does_not_run_the_job_twice(celery_worker, student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    # The same message twice, as a broker redelivery would hand it over.
    assert job_dispatch(job_id=job.pk)
    assert _wait_done(job.pk) == JobState.SUCCEEDED
    job.refresh_from_db()
    assert job.attempts == 1
    assert job.epoch_rows.count() == 2


def test_the_page_shows_live_progress_and_a_running_job_stops_when_cancelled(
    celery_worker, client, student, tiny_settings
):
    long_run = replace(tiny_settings, epochs=8, per_class=40, batch_size=4)
    job = job_submit(user=student, job_settings=long_run)
    wait_for(lambda: TrainingJob.objects.get(pk=job.pk).batch > 0, what="the first batches")

    client.force_login(student)
    status = client.get(reverse("mlworker:status", args=[job.pk])).json()
    assert status["state"] == "running" and status["live"]
    assert status["phase"] in ("head", "whole") and status["total_epochs"] == long_run.epochs + 1
    assert 0 < status["progress"] < 1 and status["batch"] >= 1 and status["n_batches"] >= status["batch"]

    response = client.post(reverse("mlworker:cancel", args=[job.pk]))
    assert response.status_code == 302
    assert _wait_done(job.pk, timeout=60) == JobState.CANCELLED
    job.refresh_from_db()
    assert job.epoch_rows.count() < long_run.epochs + 1
    assert job.model_file == ""


def test_a_job_fails_with_an_actionable_message_when_weights_are_missing(celery_worker, student, tiny_settings):
    # The worker's TORCH_HOME is empty. The form refuses this choice; a job saved before the
    # weights vanished must still fail in words an operator or student can act on.
    job = job_submit(user=student, job_settings=replace(tiny_settings, arch="resnet18"))
    assert _wait_done(job.pk) == JobState.FAILED
    job.refresh_from_db()
    assert "resnet18" in job.error_message and "TORCH_HOME" in job.error_message
    assert "Traceback" not in job.error_message


def test_a_job_saved_while_the_broker_is_down_runs_when_it_is_back(
    celery_worker, broker_url, student, tiny_settings, tmp_path
):
    down = (
        f"sqla+sqlite:///{tmp_path}/no-such-dir/broker.sqlite3"
        if broker_url.startswith("sqla")
        else ("redis://127.0.0.1:1/0")
    )
    use_broker(down)
    try:
        job = job_submit(user=student, job_settings=tiny_settings)
        job.refresh_from_db()
        assert job.state == JobState.QUEUED and job.dispatched_at is None
    finally:
        use_broker(broker_url)
    assert jobs_redispatch() == [job.pk]
    assert _wait_done(job.pk) == JobState.SUCCEEDED


def test_a_job_of_a_killed_worker_is_queued_again_and_finishes(
    celery_worker, worker_env, tmp_path, student, tiny_settings
):
    """SIGKILL the process running the training mid-job: housekeeping (beat) notices the
    silent heartbeat, queues the job again, and a worker finishes it on the second attempt."""
    from config.celery_app import app

    # The shared worker stops taking gpu work for a while, so the job goes to the worker we kill.
    shared = [f"test@{socket.gethostname()}"]
    assert app.control.cancel_consumer("gpu", destination=shared, reply=True, timeout=10)
    worker = WorkerProcess(worker_env, tmp_path / "killed.log", beat=True, name="doomed")
    try:
        long_run = replace(tiny_settings, epochs=2, per_class=20, batch_size=4)
        job = job_submit(user=student, job_settings=long_run)
        wait_for(lambda: TrainingJob.objects.get(pk=job.pk).batch > 0, what="the first batches")
        pool_child = _pool_child_of(worker.proc.pid)
        os.kill(pool_child, signal.SIGKILL)

        wait_for(
            lambda: TrainingJob.objects.filter(pk=job.pk, attempts=2).exists(),
            timeout=60,
            what="the job to be queued again and claimed a second time",
        )
        assert _wait_done(job.pk) == JobState.SUCCEEDED
        job.refresh_from_db()
        assert job.attempts == 2
        assert job.epoch_rows.count() == long_run.epochs + 1  # rows of the dead run were cleared
    finally:
        worker.stop()
        app.control.add_consumer("gpu", destination=shared, reply=True, timeout=10)


def _pool_child_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        children = [int(c) for c in fh.read().split()]
    # The celery main process has the pool child (prefork, concurrency 1) and, with -B, beat.
    for child in children:
        with open(f"/proc/{child}/task/{child}/children") as fh:
            if fh.read().split():  # the pool child is the one running the training process
                return child
    raise AssertionError(f"no pool child with a training process among {children}")
