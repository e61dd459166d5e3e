"""Stored files: served only through views that check who asks (never at a /media/ URL, DEBUG or
not), under names no one can guess, at the size training uses, and within each user's quota."""

import importlib
import io
import re

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import clear_url_caches, reverse
from PIL import Image

from mlworker import services
from mlworker.images import compact_bytes
from mlworker.models import DatasetState, Prediction, UserDataset
from mlworker.selectors import storage_used
from tests.mlworker.support import KINDS, assert_only_the_owner_gets, good_zip, make_zip, picture, served_files

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"[0-9a-f]{32}")


def jpeg_noise(width, height):
    """A noisy photo: the worst case for PNG (the review stored ten such 9.5 MB of JPEGs as 199 MB of PNG)."""
    rng = np.random.default_rng(0)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(out, format="JPEG", quality=85)
    return out.getvalue()


@pytest.mark.parametrize("kind", KINDS)
def test_only_the_owner_gets_each_kind_of_stored_file(client, stored_files, student, student2, outsider, kind):
    url, name = served_files(stored_files)[kind]
    with default_storage.open(name, "rb") as fh:
        stored = fh.read()
    assert_only_the_owner_gets(client, url, stored, owner=student, others=(student2, outsider))


@pytest.fixture
def debug_urls(settings):
    """The URLs as a `make run` (DEBUG on) builds them."""
    import config.urls

    settings.DEBUG = True
    importlib.reload(config.urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(config.urls)
    clear_url_caches()


def test_no_stored_file_answers_at_a_media_url_even_with_debug_on(client, stored_files, student, debug_urls):
    names = [name for _, name in served_files(stored_files).values()] + [name for _, name in stored_files.dataset.files]
    for name in names:
        assert default_storage.exists(name)
        assert client.get(f"/media/{name}").status_code == 404, name
    client.force_login(student)  # not even for the owner: the views are the one way in
    assert all(client.get(f"/media/{name}").status_code == 404 for name in names)


def test_the_names_in_storage_cannot_be_guessed(stored_files):
    names = [name for _, name in served_files(stored_files).values()] + [name for _, name in stored_files.dataset.files]
    assert all(TOKEN.search(name) for name in names), [n for n in names if not TOKEN.search(n)]
    assert len(set(names)) == len(names)


# ---------------------------------------------------------------- what is stored, and how much


def test_a_big_photo_is_stored_at_the_size_training_uses_as_a_jpeg(student, stored_files, settings):
    settings.JOURNEY_MAX_IMAGE_SIZE = 320
    photo = jpeg_noise(1600, 1200)
    created, refused = services.prediction_submit(
        user=student, job=stored_files.job, uploads=[services.Upload("holiday.jpg", photo)]
    )
    assert refused == []
    with default_storage.open(created[0].image, "rb") as fh:
        data = fh.read()
    stored = Image.open(io.BytesIO(data))
    assert stored.format == "JPEG" and stored.size == (427, 320)  # the short side fits 320, aspect kept
    assert created[0].stored_bytes == len(data) + default_storage.size(created[0].thumbnail)
    assert len(data) < len(photo) / 5


def test_a_data_sets_images_are_stored_small(student, settings):
    settings.JOURNEY_MAX_IMAGE_SIZE = 320
    photos = {f"shapes/{k}/{k}_{i}.jpg": jpeg_noise(900, 600) for k in ("a", "b") for i in range(5)}
    dataset = services.dataset_upload(user=student, name="photos", rule="folders",
                                      upload=SimpleUploadedFile("p.zip", make_zip(photos)))  # fmt: skip
    dataset = services.dataset_check_run(dataset_id=dataset.pk)
    assert dataset.state == DatasetState.READY
    sizes = [default_storage.size(name) for _, name in dataset.files]
    assert all(Image.open(default_storage.open(name)).size == (480, 320) for _, name in dataset.files)
    samples = sum(default_storage.size(name) for _, name in dataset.samples)
    assert dataset.stored_bytes == sum(sizes) + samples
    assert sum(sizes) < sum(len(p) for p in photos.values()) / 2


def test_a_small_greyscale_drawing_stays_png_when_that_is_smaller():
    drawing = Image.new("L", (28, 28), 0)
    drawing.paste(255, (5, 5, 20, 20))
    data, suffix = compact_bytes(drawing.convert("RGB"))
    assert suffix == ".png" and Image.open(io.BytesIO(data)).mode == "L"
    assert compact_bytes(Image.new("RGB", (300, 300), (200, 10, 10)))[1] == ".jpg"


def test_predictions_past_the_storage_quota_are_refused_in_words(student, student2, stored_files, settings):
    settings.JOURNEY_STORAGE_QUOTA_MB = 1
    used = storage_used(user=student)
    p = stored_files.prediction
    Prediction.objects.filter(pk=p.pk).update(stored_bytes=2**20 - used + p.stored_bytes)
    assert storage_used(user=student) == 2**20
    before = Prediction.objects.count()
    with pytest.raises(
        ValidationError, match="Your storage is full: your images take 1 MB of the 1 MB each student may keep"
    ):
        services.prediction_submit(
            user=student, job=stored_files.job, uploads=[services.Upload("b.png", picture("square", 3))]
        )
    assert Prediction.objects.count() == before
    # The quota is each user's own.
    assert storage_used(user=student2) == 0


def test_a_data_set_that_does_not_fit_the_quota_is_rejected_and_leaves_nothing(student, settings, client, tmp_path):
    settings.JOURNEY_STORAGE_QUOTA_MB = 1
    settings.MEDIA_ROOT = tmp_path / "media"  # an empty storage, to see what the check leaves
    photos = {f"shapes/{k}/{k}_{i}.jpg": jpeg_noise(900, 600) for k in ("a", "b") for i in range(8)}
    dataset = services.dataset_upload(user=student, name="photos", rule="folders",
                                      upload=SimpleUploadedFile("p.zip", make_zip(photos)))  # fmt: skip
    dataset = services.dataset_check_run(dataset_id=dataset.pk)
    assert dataset.state == DatasetState.REJECTED and "Your storage is full" in dataset.error_message
    assert dataset.files == []
    left = {p.relative_to(settings.MEDIA_ROOT).as_posix() for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()}
    assert left == {name for _, name in dataset.samples}  # the samples it shows, nothing else (nor the zip)
    assert storage_used(user=student) == dataset.stored_bytes < 2**20

    # Full already: the next zip is refused at the upload, on the page, in the same words.
    UserDataset.objects.filter(pk=dataset.pk).update(stored_bytes=2**20 + 1)
    client.force_login(student)
    more = {"name": "more", "rule": "folders", "archive": SimpleUploadedFile("m.zip", good_zip())}
    response = client.post(reverse("mlworker:datasets"), more)
    assert "Your storage is full" in response.content.decode()
    assert UserDataset.objects.filter(owner=student).count() == 1
