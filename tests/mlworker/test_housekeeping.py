"""Housekeeping beyond training jobs: predictions and dataset checks saved while the broker was
down are sent later; those whose worker died, or whose message was lost, are given up in words."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from mlworker import dispatch, services, tasks
from mlworker.models import DatasetState, JobState, Prediction, PredictionState, TrainingJob, UserDataset
from mlworker.services import datasets as dataset_services
from tests.mlworker.support import good_zip, png_bytes, png_file

pytestmark = pytest.mark.django_db


class Broker:
    """Stands in for `send`: up or down, and what it was given."""

    def __init__(self, up=True):
        self.up, self.sent = up, []

    def __call__(self, task_name, object_id, what):
        if self.up:
            self.sent.append((task_name, object_id))
        return self.up


@pytest.fixture
def broker(monkeypatch):
    b = Broker()
    monkeypatch.setattr(dispatch, "send", b)
    return b


@pytest.fixture
def model(student, tiny_settings):
    job = services.job_submit(user=student, job_settings=tiny_settings)
    TrainingJob.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, model_file="jobs/m/model.pkl")
    job.refresh_from_db()
    return job


def _ask(student, model, django_capture_on_commit_callbacks) -> Prediction:
    with django_capture_on_commit_callbacks(execute=True):
        created, _ = services.prediction_submit(
            user=student, job=model, uploads=[services.Upload("a.png", png_bytes())]
        )
    return Prediction.objects.get(pk=created[0].pk)


def _age(model_cls, pk, seconds, **fields):
    model_cls.objects.filter(pk=pk).update(created_at=timezone.now() - timedelta(seconds=seconds), **fields)


# ---------------------------------------------------------------- predictions


def test_a_prediction_saved_while_the_broker_is_down_waits_and_is_sent_later(
    student, model, broker, django_capture_on_commit_callbacks
):
    broker.up = False
    prediction = _ask(student, model, django_capture_on_commit_callbacks)
    assert prediction.state == PredictionState.QUEUED and prediction.dispatched_at is None
    assert services.predictions_redispatch() == []  # still down: nothing taken, nothing changed

    broker.up = True
    assert services.predictions_redispatch() == [prediction.pk]
    assert broker.sent == [("mlworker.tasks.predict", prediction.pk)]
    prediction.refresh_from_db()
    assert prediction.dispatched_at is not None
    assert services.predictions_redispatch() == []  # sent once, not again at every beat


def test_a_prediction_whose_message_was_lost_is_sent_again(student, model, broker, settings,
                                                           django_capture_on_commit_callbacks):  # fmt: skip
    settings.JOURNEY_PREDICTION_TIMEOUT, settings.JOURNEY_REDISPATCH_AFTER = 600, 600
    prediction = _ask(student, model, django_capture_on_commit_callbacks)
    assert broker.sent == [("mlworker.tasks.predict", prediction.pk)]
    Prediction.objects.filter(pk=prediction.pk).update(dispatched_at=timezone.now() - timedelta(seconds=301))
    assert services.predictions_redispatch() == [prediction.pk]  # half the time limit passed unanswered


def test_predictions_past_the_time_limit_fail_in_words(student, model, broker, settings,
                                                       django_capture_on_commit_callbacks):  # fmt: skip
    settings.JOURNEY_PREDICTION_TIMEOUT = 600
    never_taken = _ask(student, model, django_capture_on_commit_callbacks)
    worker_died = _ask(student, model, django_capture_on_commit_callbacks)
    fresh = _ask(student, model, django_capture_on_commit_callbacks)
    _age(Prediction, never_taken.pk, 601, dispatched_at=None)
    _age(Prediction, worker_died.pk, 601, state=PredictionState.RUNNING)
    _age(Prediction, fresh.pk, 590, state=PredictionState.RUNNING)
    broker.sent.clear()

    assert tasks.housekeeping()["predictions_failed"] == [never_taken.pk, worker_died.pk]
    assert broker.sent == []  # what was given up is not sent again
    never_taken.refresh_from_db(), worker_died.refresh_from_db(), fresh.refresh_from_db()
    assert never_taken.state == PredictionState.FAILED and never_taken.finished_at
    assert "within 10 minutes" in never_taken.error_message and "send the image again" in never_taken.error_message
    assert worker_died.state == PredictionState.FAILED
    assert (
        "stopped before it finished" in worker_died.error_message and str(worker_died.pk) in worker_died.error_message
    )
    assert fresh.state == PredictionState.RUNNING
    assert services.predictions_reap() == []


def test_the_student_reads_that_the_prediction_service_is_down(client, student, model, broker,
                                                               django_capture_on_commit_callbacks):  # fmt: skip
    broker.up = False
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mlworker:predict", args=[model.pk]), {"images": png_file()}, follow=True)
    assert "prediction service is unavailable right now" in response.content.decode()
    assert Prediction.objects.get().state == PredictionState.QUEUED


def test_a_prediction_answers_after_a_late_redispatch_only_once(student, model, broker,
                                                                django_capture_on_commit_callbacks):  # fmt: skip
    """The task claims queued rows only: a duplicate message after housekeeping re-sent it does nothing."""
    prediction = _ask(student, model, django_capture_on_commit_callbacks)
    Prediction.objects.filter(pk=prediction.pk).update(state=PredictionState.SUCCEEDED, label="True")
    tasks.predict(prediction.pk)
    prediction.refresh_from_db()
    assert (
        prediction.state == PredictionState.SUCCEEDED and prediction.label == "True" and prediction.started_at is None
    )


# ---------------------------------------------------------------- dataset checks


def _upload(student, django_capture_on_commit_callbacks) -> UserDataset:
    with django_capture_on_commit_callbacks(execute=True):
        dataset = services.dataset_upload(user=student, name="shapes", rule="folders",
                                          upload=SimpleUploadedFile("shapes.zip", good_zip()))  # fmt: skip
    return UserDataset.objects.get(pk=dataset.pk)


def test_an_upload_saved_while_the_broker_is_down_is_checked_later(student, broker,
                                                                   django_capture_on_commit_callbacks):  # fmt: skip
    broker.up = False
    dataset = _upload(student, django_capture_on_commit_callbacks)
    assert dataset.state == DatasetState.CHECKING and dataset.dispatched_at is None and dataset.upload

    broker.up = True
    assert tasks.housekeeping()["datasets_dispatched"] == [dataset.pk]
    assert broker.sent == [("mlworker.tasks.dataset_check", dataset.pk)]
    assert services.datasets_redispatch() == []
    assert services.dataset_check_run(dataset_id=dataset.pk).state == DatasetState.READY


def test_a_check_already_taken_by_a_worker_is_not_sent_again(student, broker, settings,
                                                             django_capture_on_commit_callbacks):  # fmt: skip
    dataset = _upload(student, django_capture_on_commit_callbacks)
    # A worker claimed it (the upload field is emptied by the claim), then went silent.
    UserDataset.objects.filter(pk=dataset.pk).update(upload="", dispatched_at=timezone.now() - timedelta(days=1))
    assert services.datasets_redispatch() == []


def test_a_check_past_the_time_limit_is_rejected_in_words_and_its_files_freed(
    student, broker, settings, django_capture_on_commit_callbacks
):
    settings.JOURNEY_DATASET_CHECK_TIMEOUT = 3600
    dataset = _upload(student, django_capture_on_commit_callbacks)
    partial = default_storage.save(f"datasets/{dataset.pk}/square/00001.png", ContentFile(png_bytes()))
    zip_name = dataset.upload
    _age(UserDataset, dataset.pk, 3601)
    broker.sent.clear()

    assert tasks.housekeeping()["datasets_rejected"] == [dataset.pk]
    assert broker.sent == []
    dataset.refresh_from_db()
    assert dataset.state == DatasetState.REJECTED
    assert (
        "did not finish within 60 minutes" in dataset.error_message and "upload the zip again" in dataset.error_message
    )
    assert not default_storage.exists(zip_name) and not default_storage.exists(partial)


def test_a_check_that_ends_after_it_was_given_up_keeps_nothing(student, broker, monkeypatch,
                                                               django_capture_on_commit_callbacks):  # fmt: skip
    dataset = _upload(student, django_capture_on_commit_callbacks)
    real_problem = dataset_services._dataset_problem

    def given_up_meanwhile(counts):
        # Housekeeping rejects the data set while the worker is still writing its images.
        UserDataset.objects.filter(pk=dataset.pk).update(state=DatasetState.REJECTED, error_message="given up")
        return real_problem(counts)

    monkeypatch.setattr(dataset_services, "_dataset_problem", given_up_meanwhile)
    result = services.dataset_check_run(dataset_id=dataset.pk)
    assert result.state == DatasetState.REJECTED and result.error_message == "given up" and result.files == []
    assert not default_storage.exists(f"datasets/{dataset.pk}/square/00001.png")


def test_a_fresh_check_is_left_alone(student, broker, django_capture_on_commit_callbacks):
    dataset = _upload(student, django_capture_on_commit_callbacks)
    _age(UserDataset, dataset.pk, 60)
    assert services.datasets_reap() == [] and services.datasets_redispatch() == []
    assert UserDataset.objects.get(pk=dataset.pk).state == DatasetState.CHECKING


# ---------------------------------------------------------------- a prediction whose worker died


def _claimed_by(prediction, worker, *, seconds_ago=30, attempts=1):
    Prediction.objects.filter(pk=prediction.pk).update(
        state=PredictionState.RUNNING, worker=worker, attempts=attempts,
        started_at=timezone.now() - timedelta(seconds=seconds_ago),
    )  # fmt: skip


def _beat(hostname, *, started_seconds_ago, seen_seconds_ago=0):
    from mlworker.models import WorkerPresence

    now = timezone.now()
    WorkerPresence.objects.update_or_create(hostname=hostname, defaults={
        "queues": "predict", "started_at": now - timedelta(seconds=started_seconds_ago),
        "seen_at": now - timedelta(seconds=seen_seconds_ago),
    })  # fmt: skip


def test_the_predict_task_records_its_worker_and_counts_the_attempt(student, model, broker,
                                                                   django_capture_on_commit_callbacks):  # fmt: skip
    prediction = _ask(student, model, django_capture_on_commit_callbacks)
    import socket

    tasks.predict.apply(args=[prediction.pk])  # as a worker runs it (the model file is missing: it fails)
    prediction.refresh_from_db()
    assert prediction.attempts == 1 and prediction.worker == socket.gethostname()  # eager: the machine's name


def test_a_prediction_whose_worker_died_is_queued_again_once_then_failed(
    student, model, broker, settings, django_capture_on_commit_callbacks
):
    settings.JOURNEY_WORKER_BEAT_SECONDS = 10
    prediction = _ask(student, model, django_capture_on_commit_callbacks)
    _claimed_by(prediction, "predict@box")
    _beat("predict@box", started_seconds_ago=600, seen_seconds_ago=31)  # three beats missed: dead
    broker.sent.clear()

    result = tasks.housekeeping()
    assert result["predictions_requeued"] == [prediction.pk] and result["predictions_dispatched"] == [prediction.pk]
    assert broker.sent == [("mlworker.tasks.predict", prediction.pk)]  # sent again at once
    prediction.refresh_from_db()
    assert prediction.state == PredictionState.QUEUED and prediction.worker == "" and prediction.started_at is None

    _claimed_by(prediction, "predict@box", attempts=2)  # the retry's worker dies too
    result = tasks.housekeeping()
    assert result["predictions_failed"] == [prediction.pk] and result["predictions_requeued"] == []
    prediction.refresh_from_db()
    assert prediction.state == PredictionState.FAILED and "stopped before it finished" in prediction.error_message


def test_a_worker_restarted_under_the_same_name_does_not_hide_the_lost_prediction(
    student, model, broker, django_capture_on_commit_callbacks
):
    prediction = _ask(student, model, django_capture_on_commit_callbacks)
    _claimed_by(prediction, "predict@box", seconds_ago=30)
    _beat("predict@box", started_seconds_ago=5)  # beating, but started after the claim: a new process
    assert services.predictions_requeue_lost() == ([prediction.pk], [])


def test_a_prediction_past_the_tasks_time_limit_is_lost_even_if_its_worker_beats(
    student, model, broker, django_capture_on_commit_callbacks
):
    """A pool child killed under a live worker: only the clock tells."""
    prediction = _ask(student, model, django_capture_on_commit_callbacks)
    _claimed_by(prediction, "predict@box", seconds_ago=services.PREDICTION_TASK_SECONDS + 61)
    _beat("predict@box", started_seconds_ago=3600)
    assert services.predictions_requeue_lost() == ([prediction.pk], [])


def test_a_prediction_its_live_worker_runs_is_left_alone(student, model, broker, django_capture_on_commit_callbacks):
    prediction = _ask(student, model, django_capture_on_commit_callbacks)
    _claimed_by(prediction, "predict@box", seconds_ago=100)
    _beat("predict@box", started_seconds_ago=3600)
    assert services.predictions_requeue_lost() == ([], [])
    assert Prediction.objects.get(pk=prediction.pk).state == PredictionState.RUNNING


# ---------------------------------------------------------------- orphaned uploads


def _aged_file(name, seconds):
    import os

    stamp = (timezone.now() - timedelta(seconds=seconds)).timestamp()
    os.utime(default_storage.path(name), (stamp, stamp))


def test_a_zip_whose_check_died_with_its_worker_is_removed_after_the_time_limit(
    student, broker, settings, django_capture_on_commit_callbacks
):
    settings.JOURNEY_DATASET_CHECK_TIMEOUT = 3600
    dead = _upload(student, django_capture_on_commit_callbacks)
    waiting = _upload(student, django_capture_on_commit_callbacks)
    fresh = _upload(student, django_capture_on_commit_callbacks)
    # The worker checking `dead` took its zip off the row (its claim), then died.
    UserDataset.objects.filter(pk=dead.pk).update(upload="")
    _aged_file(dead.upload, 3601)
    _aged_file(waiting.upload, 3601)  # still on its row: datasets_reap's to give up, not the sweep's
    UserDataset.objects.filter(pk=waiting.pk).update(created_at=timezone.now())
    UserDataset.objects.filter(pk=fresh.pk).update(upload="")
    _aged_file(fresh.upload, 60)  # its check is still running

    assert tasks.housekeeping()["uploads_removed"] == [dead.upload]
    assert not default_storage.exists(dead.upload)
    assert default_storage.exists(waiting.upload) and default_storage.exists(fresh.upload)
    assert services.uploads_sweep() == []
