"""Predictions have their own queue and worker: one answers while a training holds the gpu worker."""

import socket
from dataclasses import replace

import pytest

from config.celery_app import app
from mlworker.models import JobState, Prediction, PredictionState, TrainingJob
from mlworker.services import Upload, job_cancel, job_submit, prediction_submit
from tests.mlworker.support import silhouette
from tests.support import WorkerProcess, wait_for


def test_predictions_and_training_go_to_different_queues():
    route = app.amqp.router.route
    assert route({}, "mlworker.tasks.predict")["queue"].name == "predict"
    assert route({}, "mlworker.tasks.train")["queue"].name == "gpu"


def _state(model, pk):
    return model.objects.values_list("state", flat=True).get(pk=pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_prediction_answers_while_a_training_runs(celery_worker, worker_env, tmp_path, student, tiny_settings):
    model = job_submit(user=student, job_settings=tiny_settings)
    wait_for(lambda: _state(TrainingJob, model.pk) == JobState.SUCCEEDED, timeout=180, what="the first model")
    model.refresh_from_db()

    # As in production: the shared worker (gpu, concurrency 1) stops taking predictions, and a
    # worker of the predict queue alone answers them.
    shared = [f"test@{socket.gethostname()}"]
    assert app.control.cancel_consumer("predict", destination=shared, reply=True, timeout=10)
    predictor = WorkerProcess(worker_env, tmp_path / "predict.log", queues="predict", name="predict")
    training = None
    try:
        long_run = replace(tiny_settings, epochs=10, per_class=60, image_size=96, batch_size=4)
        training = job_submit(user=student, job_settings=long_run)
        wait_for(lambda: TrainingJob.objects.get(pk=training.pk).batch > 0, what="the training to be under way")

        created, refused = prediction_submit(
            user=student, job=model, uploads=[Upload("my-cat.png", silhouette("cat").getvalue())]
        )
        assert not refused
        wait_for(
            lambda: _state(Prediction, created[0].pk) not in (PredictionState.QUEUED, PredictionState.RUNNING),
            timeout=120,
            what="the prediction",
        )
        # Answered while the training still held the gpu worker.
        assert _state(TrainingJob, training.pk) == JobState.RUNNING
        answer = Prediction.objects.get(pk=created[0].pk)
        assert answer.state == PredictionState.SUCCEEDED, answer.error_message
        assert answer.classes == ["False", "True"]
    finally:
        if training is not None:
            job_cancel(job=training, by=student)
            wait_for(lambda: not TrainingJob.objects.get(pk=training.pk).is_live, timeout=120, what="the cancel")
        predictor.stop()
        app.control.add_consumer("predict", destination=shared, reply=True, timeout=10)
