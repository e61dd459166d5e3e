"""Fixtures for the mlworker tests (and the security matrix): one stored file of each kind."""

from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mlworker import dispatch, runner, services
from mlworker.models import JobState, TrainingJob
from tests.mlworker.support import good_zip, picture


@pytest.fixture
def stored_files(student, tiny_settings, tmp_path, monkeypatch):
    """One of each kind of stored file, made by the code that makes them: a trained job's exported
    model and top-loss image, a checked data set's images and samples, a prediction's images."""
    monkeypatch.setattr(dispatch, "send", lambda *args: True)
    job = services.job_submit(user=student, job_settings=tiny_settings)
    (tmp_path / "export.pkl").write_bytes(b"a learner")
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "0.png").write_bytes(picture("square", 0))
    result = SimpleNamespace(
        export_path=tmp_path / "export.pkl",
        top_losses=[{"image_path": "top/0.png", "actual": "True", "predicted": "False", "loss": 2.0}],
    )
    TrainingJob.objects.filter(pk=job.pk).update(
        state=JobState.SUCCEEDED, classes=["False", "True"], **runner._store_results(job.pk, tmp_path, result)
    )
    job.refresh_from_db()
    dataset = services.dataset_upload(user=student, name="shapes", rule="folders",
                                      upload=SimpleUploadedFile("shapes.zip", good_zip()))  # fmt: skip
    dataset = services.dataset_check_run(dataset_id=dataset.pk)
    created, _ = services.prediction_submit(
        user=student, job=job, uploads=[services.Upload("cat.png", picture("circle", 1))]
    )
    return SimpleNamespace(job=job, dataset=dataset, prediction=created[0])
