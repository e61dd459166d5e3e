"""Workers on other hosts, for real: the web (this test's process) and three Celery workers, each
"host" with its own local folders (JOURNEY_VAR_DIR, media, data, work, cache) and nothing shared but
the database, the broker and the object store (SeaweedFS on loopback). A student's zip is checked on
one host, a model trained on it on another, and a prediction answered with it on a third."""

import socket
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mlworker.models import DatasetState, JobState, Prediction, PredictionState, TrainingJob, UserDataset
from tests.mlworker.support import good_zip, picture
from tests.support import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

# Each host runs what a deployment would put there: the GPU host trains, a second GPU host answers
# predictions, and the web's host checks the uploads (the queues are the production ones).
HOSTS = {"host-a": "gpu", "host-b": "predict", "host-c": "uploads"}


def host_env(worker_env: dict, object_store, root: Path) -> dict:
    """A worker's environment on a host of its own: the shared services, and only local folders."""
    root.mkdir(parents=True)
    return {
        **worker_env,
        **object_store.env(),
        "JOURNEY_VAR_DIR": str(root),
        "MEDIA_ROOT": str(root / "media"),  # unused with the store: the test checks it stays empty
        "JOURNEY_DATA_DIR": str(root / "data"),
        "JOURNEY_WORK_DIR": str(root / "work"),
        "JOURNEY_CACHE_DIR": str(root / "cache"),
    }


@pytest.fixture
def hosts(worker_env, object_store, tmp_path):
    """A worker on each host, consuming its queue alone (the suite's shared worker, if it runs, stops
    consuming those queues meanwhile)."""
    from config.celery_app import app

    shared = [f"test@{socket.gethostname()}"]
    for queue in HOSTS.values():
        app.control.cancel_consumer(queue, destination=shared, reply=True, timeout=5)
    started = {}
    try:
        for name, queue in HOSTS.items():
            env = host_env(worker_env, object_store, tmp_path / name)
            started[name] = WorkerProcess(env, tmp_path / f"{name}.log", queues=queue, name=name, wait=False)
        for worker in started.values():
            worker.wait_ready(timeout=180)
        yield {name: (tmp_path / name, worker) for name, worker in started.items()}
    finally:
        for worker in started.values():
            worker.stop()
        for queue in HOSTS.values():
            app.control.add_consumer(queue, destination=shared, reply=True, timeout=5)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_model_trained_on_one_host_answers_on_another_and_an_upload_is_checked_on_a_third(
    client, s3_storage, hosts, student, student2, outsider, settings
):
    web_media = {p for p in files_under(Path(settings.MEDIA_ROOT))}
    client.force_login(student)

    # A student's zip, through the web, to the store; checked on host C.
    response = client.post(reverse("mlworker:datasets"), {
        "name": "shapes", "rule": "folders", "archive": SimpleUploadedFile("shapes.zip", good_zip(per_class=8)),
    })  # fmt: skip
    assert response.status_code == 302
    dataset = UserDataset.objects.get(owner=student)
    dataset = wait_for(
        lambda: UserDataset.objects.exclude(state=DatasetState.CHECKING).filter(pk=dataset.pk).first(),
        timeout=120, what="the zip's check",
    )  # fmt: skip
    assert dataset.state == DatasetState.READY, dataset.error_message
    logs = {name: worker.log_path.read_text() for name, (_, worker) in hosts.items()}
    assert [name for name, log in logs.items() if f"data set {dataset.pk} checked" in log] == ["host-c"]

    # Trained on host A, from the images in the store.
    response = client.post(reverse("mlworker:new"), {
        "dataset": dataset.key, "arch": "efficientnet_lite0", "pretrained": "on", "epochs": 1, "image_size": 64,
        "valid_pct": 0.25, "seed": 42, "batch_size": 4, "small_validation_ok": "on",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    job = TrainingJob.objects.get(owner=student)
    job = wait_for(
        lambda: TrainingJob.objects.exclude(state__in=[JobState.QUEUED, JobState.RUNNING]).filter(pk=job.pk).first(),
        timeout=400, interval=1, what="the training on host A",
    )  # fmt: skip
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.worker.startswith("host-a@") and job.n_train + job.n_valid == 16
    assert job.class_names == ["circle", "square"]
    assert default_storage.exists(job.model_file)
    assert all(default_storage.exists(t["image_path"]) for t in job.top_losses)

    # Asked on host B, which never saw the training: the model comes from the store.
    response = client.post(reverse("mlworker:predict", args=[job.pk]), {
        "images": SimpleUploadedFile("mine.png", picture("circle", 2), content_type="image/png"),
    })  # fmt: skip
    assert response.status_code == 302
    prediction = Prediction.objects.get(owner=student, job=job)
    prediction = wait_for(
        lambda: Prediction.objects.exclude(state__in=[PredictionState.QUEUED, PredictionState.RUNNING])
        .filter(pk=prediction.pk).first(),
        timeout=180, interval=0.5, what="the prediction on host B",
    )  # fmt: skip
    assert prediction.state == PredictionState.SUCCEEDED, prediction.error_message
    assert prediction.worker.startswith("host-b@") and prediction.label in ("circle", "square")
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-4)

    # What each host keeps is its own: A cached the data set's images and cleaned its scratch folder,
    # B cached the model (the bytes in the store), and no host, the web's included, wrote a stored file.
    a, b, c = (hosts[name][0] for name in HOSTS)
    with default_storage.open(job.model_file, "rb") as fh:
        model_bytes = fh.read()
    assert len(files_under(a / "cache" / "objects")) == len(dataset.files)
    assert files_under(a / "work") == []
    assert [p.read_bytes() == model_bytes for p in files_under(b / "cache" / "objects")] == [True]
    assert files_under(c / "cache") == [] and files_under(c / "work") == []
    for root in (a, b, c):
        assert files_under(root / "media") == [], root.name
    assert {p for p in files_under(Path(settings.MEDIA_ROOT))} == web_media

    # The web hands the model to its owner alone, from the store.
    response = client.get(reverse("mlworker:model", args=[job.pk]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == model_bytes
    for other in (student2, outsider):
        client.force_login(other)
        assert client.get(reverse("mlworker:model", args=[job.pk])).status_code == 404
        assert client.get(reverse("mlworker:prediction_image", args=[prediction.pk, "full"])).status_code == 404
