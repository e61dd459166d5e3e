"""Uploads cannot exhaust a process's memory: sizes are checked while reading, pixel counts from the
header before decoding, and a zip's images are counted before any is opened."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageFile

from mlworker import archives, images, services
from mlworker.archives import Limits, scan_zip
from mlworker.images import MAX_PIXELS, ImageRejected, open_upload
from mlworker.models import JobState, Prediction, TrainingJob
from tests.mlworker.test_datasets_upload import make_zip, picture

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
    monkeypatch.setattr(services, "send", lambda *args: True)
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
    whole before its size was checked."""
    monkeypatch.setattr(images, "MAX_UPLOAD_BYTES", 100_000)
    handed = []
    real = services.prediction_submit

    def submit(*, user, job, uploads):
        handed.extend((type(u.data), u.data.tell()) for u in uploads if not isinstance(u.data, bytes))
        return real(user=user, job=job, uploads=uploads)

    monkeypatch.setattr(services, "prediction_submit", submit)
    client.force_login(student)
    big = SimpleUploadedFile("big.png", b"\x89PNG" + b"\0" * 3_000_000, content_type="image/png")
    response = client.post(reverse("mlworker:predict", args=[model.pk]), {"images": big}, follow=True)
    assert "big.png is 2.9 MB; the most we accept is 0 MB" in response.content.decode()
    assert len(handed) == 1 and handed[0][1] == 0  # the file itself, not one byte read yet
    assert Prediction.objects.count() == 0


def test_an_oversized_zip_for_predictions_is_refused_while_it_is_copied(student, model, settings):
    settings.JOURNEY_MAX_DATASET_UPLOAD_MB = 1
    stream = Spy(io.BytesIO(b"PK" + b"\0" * (3 * 2**20)))
    created, refused = services.prediction_submit(user=student, job=model, uploads=[services.Upload("big.zip", stream)])
    assert created == [] and refused == ["big.zip: The zip is larger than 1 MB, the most we accept."]
    assert len(stream.asked) == 2  # stopped at the first chunk past the limit
