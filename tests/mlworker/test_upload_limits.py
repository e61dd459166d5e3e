"""Uploads cannot exhaust a process's memory: sizes are checked while reading, pixel counts from the
header before decoding, and a zip's images are counted before any is opened."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image, ImageFile

from mlworker import archives, dispatch, images, services
from mlworker.archives import Limits, scan_zip
from mlworker.images import MAX_PIXELS, ImageRejected, open_upload
from mlworker.models import JobState, Prediction, TrainingJob, UserDataset
from tests.mlworker.support import make_zip, picture

pytestmark = pytest.mark.django_db


def pixel_bomb(width, height):
    """A real PNG of one colour: a few kilobytes that decode to width x height pixels."""
    out = io.BytesIO()
    Image.new("1", (width, height), 1).save(out, format="PNG", optimize=True)
    return out.getvalue()


@pytest.fixture
def decoded(monkeypatch):
    """The sizes of the images decoded while the test runs."""
    sizes = []
    real_load = ImageFile.ImageFile.load

    def load(self):
        sizes.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes


@pytest.fixture
def model(student, tiny_settings, monkeypatch):
    monkeypatch.setattr(dispatch, "send", lambda *args: True)
    job = services.job_submit(user=student, job_settings=tiny_settings)
    TrainingJob.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, model_file="jobs/m/model.pkl")
    job.refresh_from_db()
    return job


def test_a_pixel_bomb_is_refused_as_too_large_before_it_is_decoded(decoded):
    bomb = pixel_bomb(8000, 8000)
    assert len(bomb) < 20_000 and 8000 * 8000 > MAX_PIXELS
    with pytest.raises(ImageRejected, match=r"bomb.png is too large: 8000×8000 pixels"):
        open_upload(bomb, name="bomb.png")
    assert decoded == []


def test_a_zip_of_pixel_bombs_for_predictions_decodes_none_of_them(student, model, decoded):
    """The review's 6.5 KB zip of six 6,300 x 6,300 PNGs took a web process to 1.3 GB."""
    bomb = pixel_bomb(6300, 6300)
    uploads = [
        services.Upload("bombs.zip", make_zip({f"b{i}.png": bomb for i in range(6)})),
        services.Upload("ok.png", picture("square", 1)),
    ]
    created, refused = services.prediction_submit(user=student, job=model, uploads=uploads)
    assert len(created) == 1 and len(refused) == 6
    assert all("too large: 6300×6300 pixels" in r for r in refused), refused
    assert set(decoded) == {(64, 64)}  # only the small image was decoded


def test_a_zip_with_too_many_images_is_refused_before_any_is_opened(student, model, settings, monkeypatch):
    settings.JOURNEY_MAX_BATCH_IMAGES = 5
    opened = []
    real = archives.open_upload
    monkeypatch.setattr(archives, "open_upload", lambda *a, **k: opened.append(1) or real(*a, **k))
    entries = {f"p{i}.png": picture("circle", i) for i in range(5)}
    uploads = [services.Upload("many.zip", make_zip(entries)), services.Upload("one.png", picture("square", 1))]
    with pytest.raises(ValidationError, match="Send at most 5 images at once; you sent 6"):
        services.prediction_submit(user=student, job=model, uploads=uploads)
    assert opened == [] and Prediction.objects.count() == 0


def test_scan_zip_counts_images_before_opening_any(tmp_path, decoded):
    from mlworker.archives import TooManyImages

    path = tmp_path / "a.zip"
    # notes.txt counts: what is an image is known only once it is opened.
    path.write_bytes(make_zip({f"cats/{i}.png": picture("circle", i) for i in range(4)} | {"cats/notes.txt": b"x"}))
    with pytest.raises(TooManyImages, match="holds 5 images; the most we accept at once is 3"):
        next(scan_zip(path, rule="folders", limits=Limits(max_images=3)))
    assert decoded == []


class Spy:
    """Wraps an uploaded file and records how much each read asked for."""

    def __init__(self, inner):
        self.inner, self.asked = inner, []

    def read(self, n=-1):
        self.asked.append(n)
        return self.inner.read(n)


def test_an_image_stream_is_read_no_further_than_the_limit(student, model):
    stream = Spy(io.BytesIO(b"\xff" * (images.MAX_UPLOAD_BYTES + 5 * 2**20)))  # its size is not known up front
    created, refused = services.prediction_submit(
        user=student, job=model, uploads=[services.Upload("huge.jpg", stream)]
    )
    assert created == [] and refused == ["huge.jpg is more than 10 MB; the most we accept is 10 MB."]
    assert stream.asked == [images.MAX_UPLOAD_BYTES + 1]


def test_an_upload_of_known_size_over_the_limit_is_not_read_at_all(student, model):
    big = SimpleUploadedFile("big.png", b"\0" * (images.MAX_UPLOAD_BYTES + 1), content_type="image/png")
    spy = Spy(big)
    spy.size = big.size
    created, refused = services.prediction_submit(user=student, job=model, uploads=[services.Upload("big.png", spy)])
    assert refused == ["big.png is 10.0 MB; the most we accept is 10 MB."] and spy.asked == []


def test_the_predict_page_hands_the_files_over_unread(client, student, model, monkeypatch):
    """The review's three 300 MB posts took the web process from 97 MB to 976 MB: each file was read
    whole before its size was checked. (One past its limit does not even reach the view: below.)"""
    handed = []
    real = services.prediction_submit

    def submit(*, user, job, uploads, **kwargs):
        handed.extend((type(u.data), u.data.tell()) for u in uploads if not isinstance(u.data, bytes))
        return real(user=user, job=job, uploads=uploads, **kwargs)

    monkeypatch.setattr(services, "prediction_submit", submit)
    client.force_login(student)
    big = SimpleUploadedFile("big.png", b"\x89PNG" + b"\0" * 3_000_000, content_type="image/png")
    response = client.post(reverse("mlworker:predict", args=[model.pk]), {"images": big}, follow=True)
    assert "big.png is not an image we can read" in response.content.decode()
    assert len(handed) == 1 and handed[0][1] == 0  # the file itself, not one byte read yet
    assert Prediction.objects.count() == 0


def test_an_oversized_zip_for_predictions_is_refused_while_it_is_copied(student, model, settings):
    settings.JOURNEY_MAX_DATASET_UPLOAD_MB = 1
    stream = Spy(io.BytesIO(b"PK" + b"\0" * (3 * 2**20)))
    created, refused = services.prediction_submit(user=student, job=model, uploads=[services.Upload("big.zip", stream)])
    assert created == [] and refused == ["big.zip: The zip is larger than 1 MB, the most we accept."]
    assert len(stream.asked) == 2  # stopped at the first chunk past the limit


# ---------------------------------------------------------------- cut off while it arrives


@pytest.fixture
def kept(monkeypatch):
    """How many bytes of each uploaded file Django's own handlers kept (in memory or in a temporary
    file on disk): every byte of a file that is not cut off goes through one of them."""
    from django.core.files import uploadhandler

    counts = {}
    for cls in (uploadhandler.MemoryFileUploadHandler, uploadhandler.TemporaryFileUploadHandler):
        real = cls.receive_data_chunk

        def receive(self, raw_data, start, real=real):
            if getattr(self, "activated", True):  # the memory handler passes on what it does not keep
                counts[self.file_name] = counts.get(self.file_name, 0) + len(raw_data)
            return real(self, raw_data, start)

        monkeypatch.setattr(cls, "receive_data_chunk", receive)
    return counts


def test_an_image_past_its_limit_is_cut_off_while_it_arrives(client, student, model, monkeypatch, kept):
    monkeypatch.setattr(images, "MAX_UPLOAD_BYTES", 2**20)
    client.force_login(student)
    big = SimpleUploadedFile("big.png", b"\x89PNG" + b"\0" * (5 * 2**20), content_type="image/png")
    response = client.post(reverse("mlworker:predict", args=[model.pk]), {"images": big}, follow=True)
    assert "big.png is more than 1 MB; the most we accept is 1 MB." in response.content.decode()
    assert 0 < kept["big.png"] <= 2**20  # of 5 MB: the rest was read from the connection and dropped
    assert Prediction.objects.count() == 0


def test_an_image_cut_off_is_told_beside_the_others_predictions(client, student, model, monkeypatch, kept):
    monkeypatch.setattr(images, "MAX_UPLOAD_BYTES", 2**20)
    client.force_login(student)
    sent = [
        SimpleUploadedFile("big.png", b"\x89PNG" + b"\0" * (3 * 2**20), content_type="image/png"),
        SimpleUploadedFile("a.png", picture("square", 1), content_type="image/png"),
        SimpleUploadedFile("b.png", picture("circle", 2), content_type="image/png"),
    ]
    response = client.post(reverse("mlworker:predict", args=[model.pk]), {"images": sent}, follow=True)
    assert [p.source_name for p in Prediction.objects.order_by("pk")] == ["a.png", "b.png"]
    assert "big.png is more than 1 MB; the most we accept is 1 MB." in response.content.decode()
    assert 0 < kept["big.png"] <= 2**20 and kept["a.png"] == len(picture("square", 1))


def test_a_zip_for_predictions_past_its_limit_is_cut_off_while_it_arrives(client, student, model, settings, kept):
    settings.JOURNEY_MAX_DATASET_UPLOAD_MB = 1
    client.force_login(student)
    big = SimpleUploadedFile("big.zip", b"PK" + b"\0" * (3 * 2**20), content_type="application/zip")
    response = client.post(reverse("mlworker:predict", args=[model.pk]), {"images": big}, follow=True)
    assert "big.zip: The zip is larger than 1 MB, the most we accept." in response.content.decode()
    assert 0 < kept["big.zip"] <= 2**20


def test_a_data_set_zip_past_its_limit_is_cut_off_while_it_arrives(client, student, settings, kept):
    settings.JOURNEY_MAX_DATASET_UPLOAD_MB = 1
    client.force_login(student)
    big = SimpleUploadedFile("big.zip", b"PK" + b"\0" * (3 * 2**20), content_type="application/zip")
    response = client.post(reverse("mlworker:datasets"), {"name": "big", "rule": "folders", "archive": big})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The zip is larger than 1 MB, the most we accept." in page and "This field is required" not in page
    assert 0 < kept["big.zip"] <= 2**20
    assert not UserDataset.objects.exists()


def test_the_upload_pages_still_check_the_csrf_token(student, model, settings):
    """The cut-off handler goes in before the token is read (so the view, not the middleware, checks
    it): a post without the token is still refused, and one with it still passes."""
    settings.JOURNEY_MAX_DATASET_UPLOAD_MB = 1
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(student)
    zip_ = SimpleUploadedFile("d.zip", make_zip({"a/1.png": picture("square", 1)}))
    data = {"name": "d", "rule": "folders", "archive": zip_}
    assert strict.post(reverse("mlworker:datasets"), data).status_code == 403
    image = SimpleUploadedFile("a.png", picture("square", 1), content_type="image/png")
    assert strict.post(reverse("mlworker:predict", args=[model.pk]), {"images": image}).status_code == 403
    assert not UserDataset.objects.exists() and not Prediction.objects.exists()

    strict.get(reverse("mlworker:datasets"))  # sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    big = SimpleUploadedFile("big.zip", b"PK" + b"\0" * (3 * 2**20))
    data = {"name": "big", "rule": "folders", "archive": big, "csrfmiddlewaretoken": token}
    response = strict.post(reverse("mlworker:datasets"), data)
    assert response.status_code == 200 and "The zip is larger than 1 MB" in response.content.decode()
