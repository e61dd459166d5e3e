"""Embedded defaults, end to end: SQLite, the SQLite broker, a real worker, a real training job.

`make smoke` runs this with DATABASE_URL and CELERY_BROKER_URL unset.
"""

import pytest
from django.conf import settings
from django.urls import reverse

from tests.support import wait_for

pytestmark = [pytest.mark.smoke, pytest.mark.django_db(transaction=True)]


def test_a_student_trains_the_chapter_model_on_the_embedded_defaults(celery_worker, client, student, broker_url):
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert broker_url.startswith("sqla+sqlite://")

    client.force_login(student)
    form = client.get(reverse("mlworker:new") + "?preset=quick")
    assert form.status_code == 200
    response = client.post(
        reverse("mlworker:new"),
        {
            "dataset": "silhouettes-catdog",
            "arch": "efficientnet_lite0",
            "pretrained": "on",
            "epochs": 1,
            "image_size": 64,
            "valid_pct": 0.25,
            "seed": 42,
            "batch_size": 8,
            "per_class": 12,
        },  # fmt: skip
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job_url = response["Location"]
    status_url = job_url + "status/"

    def finished():
        status = client.get(status_url).json()
        return status if not status["live"] else None

    status = wait_for(finished, timeout=180, interval=1, what="the job to finish")
    assert status["state"] == "succeeded", status["error_message"]
    assert len(status["epochs"]) == 2
    page = client.get(job_url).content.decode()
    assert "Error rate" in page and "Confusion matrix" in page
