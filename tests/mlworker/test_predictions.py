"""Asking a trained model about an image: access rules without a worker, the whole path with one."""

import csv
import io
import uuid
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from mlworker.models import JobState, Prediction, PredictionState, TrainingJob
from mlworker.services import job_submit
from tests.mlworker.support import silhouette
from tests.support import wait_for


def png(color="white", size=(28, 28)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    out.seek(0)
    out.name = "upload.png"
    return out


@pytest.fixture
def trained_job(student, tiny_settings):
    """A succeeded job as a row (no worker): enough for access rules."""
    job = job_submit(user=student, job_settings=tiny_settings)
    TrainingJob.objects.filter(pk=job.pk).update(
        state=JobState.SUCCEEDED, model_file="jobs/none/model.pkl", classes=["False", "True"], error_rate=0.1
    )
    job.refresh_from_db()
    return job


@pytest.fixture
def prediction(student, trained_job):
    return Prediction.objects.create(
        owner=student, job=trained_job, source_name="cat.png", image="x.png", thumbnail="x-thumb.png",
        batch=uuid.uuid4(),
    )  # fmt: skip


def urls(job, p):
    return {
        "predict": ("post", reverse("mlworker:predict", args=[job.pk])),
        "prediction": ("get", reverse("mlworker:prediction", args=[p.pk])),
        "status": ("get", reverse("mlworker:prediction_status", args=[p.pk])),
        "image": ("get", reverse("mlworker:prediction_image", args=[p.pk, "thumb"])),
        "batch": ("get", reverse("mlworker:batch", args=[job.pk, p.batch])),
        "rename": ("post", reverse("mlworker:model_rename", args=[job.pk])),
        "delete": ("post", reverse("mlworker:model_delete", args=[job.pk])),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["predict", "prediction", "status", "image", "batch", "rename", "delete"])
@pytest.mark.parametrize("who", ["student2", "instructor", "outsider"])
def test_other_users_get_404_for_a_students_model_and_predictions(client, request, trained_job, prediction, name, who):
    client.force_login(request.getfixturevalue(who))
    method, url = urls(trained_job, prediction)[name]
    assert getattr(client, method)(url, {"name": "mine now"} if name == "rename" else {}).status_code == 404
    trained_job.refresh_from_db()
    assert trained_job.model_file and trained_job.name == ""


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["predict", "prediction", "status", "image", "batch", "rename", "delete"])
def test_anonymous_visitors_are_sent_to_log_in_for_predictions(client, trained_job, prediction, name):
    method, url = urls(trained_job, prediction)[name]
    response = getattr(client, method)(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_a_deleted_model_cannot_be_asked(client, student, trained_job):
    client.force_login(student)
    assert client.post(reverse("mlworker:model_delete", args=[trained_job.pk])).status_code == 302
    trained_job.refresh_from_db()
    assert trained_job.model_file == ""
    response = client.post(reverse("mlworker:predict", args=[trained_job.pk]), {"images": png()})
    assert response.status_code == 404


@pytest.mark.django_db
def test_bad_uploads_are_refused_with_a_message_and_good_ones_kept(client, student, trained_job):
    client.force_login(student)
    empty = io.BytesIO(b"")
    empty.name = "empty.png"
    text = io.BytesIO(b"not a picture")
    text.name = "holiday.jpg"
    response = client.post(
        reverse("mlworker:predict", args=[trained_job.pk]), {"images": [empty, text, png()]}, follow=True
    )
    page = response.content.decode()
    assert "empty.png is empty" in page and "holiday.jpg is not an image we can read" in page
    kept = Prediction.objects.get()
    assert kept.source_name == "upload.png" and default_storage.exists(kept.image)
    assert Image.open(default_storage.open(kept.image)).format == "PNG"  # re-encoded, never the raw bytes


@pytest.mark.django_db
def test_a_mid_grey_16_bit_png_is_shown_and_sent_to_the_model_mid_grey(client, student, trained_job):
    out = io.BytesIO()
    Image.new("I;16", (28, 28), 32768).save(out, format="PNG")
    out.seek(0)
    out.name = "scan-16bit.png"
    client.force_login(student)
    client.post(reverse("mlworker:predict", args=[trained_job.pk]), {"images": [out]})
    kept = Prediction.objects.get()
    # The worker predicts on the stored image, and the pages show it and its thumbnail.
    for name in (kept.image, kept.thumbnail):
        with default_storage.open(name) as fh:
            assert Image.open(fh).convert("L").getextrema() == (127, 127), name


def not_an_image(name):
    out = io.BytesIO(b"just some text, renamed")
    out.name = name
    return out


@pytest.mark.django_db
def test_a_skipped_file_is_still_named_after_the_prediction_page_reloads(client, student, trained_job):
    client.force_login(student)
    response = client.post(
        reverse("mlworker:predict", args=[trained_job.pk]), {"images": [png(), not_an_image("fake.png")]}
    )
    prediction = Prediction.objects.get()
    assert response["Location"] == prediction.get_absolute_url()
    for _ in range(2):  # the page as first shown, then as its own reload shows it once the answer is in
        page = client.get(prediction.get_absolute_url()).content.decode()
        assert "fake.png is not an image we can read" in page


@pytest.mark.django_db
def test_a_batch_page_says_which_files_were_skipped_and_why_on_every_load(client, student, trained_job):
    client.force_login(student)
    response = client.post(
        reverse("mlworker:predict", args=[trained_job.pk]),
        {"images": [png(), png("black"), not_an_image("fake.png")]},
    )
    batch = Prediction.objects.first().batch
    assert response["Location"] == reverse("mlworker:batch", args=[trained_job.pk, batch])
    for _ in range(2):
        page = client.get(response["Location"]).content.decode()
        assert "2 predictions" in page and "1 file was not sent" in page
        assert "fake.png is not an image we can read" in page


@pytest.mark.django_db
def test_top_losses_and_predictions_name_the_classes_as_the_confusion_matrix_does(client, student, trained_job):
    TrainingJob.objects.filter(pk=trained_job.pk).update(
        confusion=[[5, 1], [0, 4]],
        top_losses=[{"image_path": "x.png", "predicted": "True", "actual": "False", "loss": 2.0, "probability": 0.9}],
    )
    answered = dict(state=PredictionState.SUCCEEDED, label="True", classes=["False", "True"], probabilities=[0.2, 0.8])
    batch = uuid.uuid4()
    for name in ("a.png", "b.png"):
        Prediction.objects.create(owner=student, job=trained_job, batch=batch, source_name=name, image="x.png",
                                  thumbnail="x-thumb.png", **answered)  # fmt: skip
    client.force_login(student)
    page = client.get(reverse("mlworker:job", args=[trained_job.pk])).content.decode()
    assert '<th scope="col">dog (False)</th><th scope="col">cat (True)</th>' in page  # the confusion matrix
    assert "predicted <strong>cat (True)</strong><br>actual dog (False)" in page  # the top losses
    assert "<td>cat (True)</td>" in page  # recent predictions
    table = client.get(reverse("mlworker:batch", args=[trained_job.pk, batch])).content.decode()
    assert table.count("<td>cat (True)</td>") == 2 and '<th scope="col">p(cat (True))</th>' in table
    assert ">True<" not in table and ">False<" not in table


@pytest.mark.django_db
def test_the_images_to_pick_are_a_sample_right_and_wrong_not_the_top_losses(client, student, trained_job):
    def shown(i, predicted, actual, **more):
        return {"image_path": f"v{i}.png", "predicted": predicted, "actual": actual, "loss": 1.0 / (i + 1),
                "probability": 0.9, **more}  # fmt: skip

    kept = [shown(0, "True", "False"), shown(1, "False", "True"),
            shown(2, "True", "True", sample=True), shown(3, "False", "True", sample=True)]  # fmt: skip
    TrainingJob.objects.filter(pk=trained_job.pk).update(confusion=[[5, 1], [1, 3]], top_losses=kept)
    client.force_login(student)
    page = client.get(reverse("mlworker:job", args=[trained_job.pk])).content.decode()
    pick = page[page.index('class="pick-list"') :]
    assert 'value="2"' in pick and 'value="3"' in pick and 'value="0"' not in pick and 'value="1"' not in pick
    assert "the model said cat (True), right" in pick and "the model said dog (False), wrong" in pick
    wrong = page[page.index("What it got most wrong") : page.index('class="pick-list"')]
    assert wrong.count("<li>") == 2 and "/top-losses/2/" not in wrong and "/top-losses/1/" in wrong
    # Asking about a sampled image asks about that very image.
    with mock.patch("mlworker.services.prediction_from_validation") as ask:
        ask.return_value = Prediction(pk=1)
        client.post(reverse("mlworker:predict", args=[trained_job.pk]), {"validation": "3"})
    assert ask.call_args.kwargs["index"] == 3


@pytest.mark.django_db
def test_the_model_gallery_lists_and_renames_only_mine(client, student, student2, trained_job, tiny_settings,
                                                      django_assert_num_queries):  # fmt: skip
    theirs = job_submit(user=student2, job_settings=tiny_settings)
    TrainingJob.objects.filter(pk=theirs.pk).update(state=JobState.SUCCEEDED, model_file="jobs/t/model.pkl")
    client.force_login(student)
    client.post(reverse("mlworker:model_rename", args=[trained_job.pk]), {"name": "  Whiskers v1 "})
    # django_session, auth_user, the user's classes (none here), models page
    with django_assert_num_queries(4):
        page = client.get(reverse("mlworker:models")).content.decode()
    assert "Whiskers v1" in page and f"/experiments/{theirs.pk}/" not in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_student_trains_then_asks_is_this_a_cat(celery_worker, client, student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    wait_for(lambda: TrainingJob.objects.get(pk=job.pk).state == JobState.SUCCEEDED, timeout=180, what="training")
    client.force_login(student)

    def asked(response):
        p = Prediction.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))
        wait_for(lambda: not Prediction.objects.get(pk=p.pk).is_live, timeout=120, what="the prediction")
        p.refresh_from_db()
        return p

    first = asked(client.post(reverse("mlworker:predict", args=[job.pk]), {"images": silhouette("cat")}))
    assert first.state == PredictionState.SUCCEEDED, first.error_message
    assert first.classes == ["False", "True"] and first.label in ("True", "False")
    assert sum(first.probabilities) == pytest.approx(1.0, abs=1e-4)
    assert first.cache_hit is False
    page = client.get(first.get_absolute_url()).content.decode()
    assert f"Is this a cat?: {first.label}." in page
    assert f"Probability it's a cat: {first.probabilities[1]:.6f}" in page

    again = asked(client.post(reverse("mlworker:predict", args=[job.pk]), {"validation": 0}))
    assert again.state == PredictionState.SUCCEEDED and again.cache_hit is True  # the worker kept the model

    response = client.post(
        reverse("mlworker:predict", args=[job.pk]), {"images": [silhouette("cat"), silhouette("dog")]}
    )
    batch_url = response["Location"]
    batch = Prediction.objects.filter(job=job, batch__isnull=False)
    wait_for(lambda: not batch.filter(state__in=["queued", "running"]).exists(), timeout=120, what="the batch")
    rows = list(csv.reader(io.StringIO(client.get(batch_url + "?format=csv").content.decode())))
    assert rows[0] == ["file", "state", "predicted", "p(False)", "p(True)", "error"]
    assert sorted(r[0] for r in rows[1:]) == ["my-cat.png", "my-dog.png"]
    assert all(r[1] == "succeeded" for r in rows[1:])

    job.refresh_from_db()
    default_storage.delete(job.model_file)  # the file vanished behind the database's back
    gone = asked(client.post(reverse("mlworker:predict", args=[job.pk]), {"images": png()}))
    assert gone.state == PredictionState.FAILED and "file is gone" in gone.error_message


@pytest.mark.django_db
def test_a_zip_of_images_becomes_a_batch_with_a_csv(client, student, trained_job):
    import zipfile

    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("a.png", png("black").getvalue())
        zf.writestr("more/b.png", png("white").getvalue())
        zf.writestr("readme.txt", b"these are my pets")
        zf.writestr("../evil.png", png().getvalue())
    data.seek(0)
    data.name = "pets.zip"
    client.force_login(student)
    response = client.post(reverse("mlworker:predict", args=[trained_job.pk]), {"images": data}, follow=True)
    assert "outside its own folder" in response.content.decode()
    assert not Prediction.objects.exists()  # an unsafe archive is refused whole

    safe = io.BytesIO()
    with zipfile.ZipFile(safe, "w") as zf:
        zf.writestr("a.png", png("black").getvalue())
        zf.writestr("more/b.png", png("white").getvalue())
        zf.writestr("readme.txt", b"these are my pets")
    safe.seek(0)
    safe.name = "pets.zip"
    response = client.post(reverse("mlworker:predict", args=[trained_job.pk]), {"images": safe}, follow=True)
    assert "readme.txt was skipped" in response.content.decode()
    assert sorted(Prediction.objects.values_list("source_name", flat=True)) == ["a.png", "more/b.png"]
    batch = Prediction.objects.first().batch
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(reverse("mlworker:batch", args=[trained_job.pk, batch]) + "?format=csv").content.decode()
            )
        )
    )
    assert sorted(r[0] for r in rows[1:]) == ["a.png", "more/b.png"]
    assert all(r[1] == "queued" for r in rows[1:])
