"""Stored files in a real S3-compatible store (SeaweedFS on the loopback address, tests/fixtures/
objectstore.py): the services and views work on it as on local disk, every object answers only its
owner through the views, the bucket refuses readers without keys, a signed link opens one object
for a short time from the host it was made for, and a worker's cache fetches a changed object again."""

import io
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from mlworker import services
from mlworker.filecache import FileCache
from mlworker.models import Prediction
from tests.mlworker.support import KINDS, assert_only_the_owner_gets, good_zip, served_files

pytestmark = pytest.mark.django_db


def http_get(url):
    """(status, body, headers) of a plain GET, as a browser without cookies or keys would do it."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def stored_bytes(name):
    with default_storage.open(name, "rb") as fh:
        return fh.read()


@pytest.fixture
def files(s3_storage, stored_files):
    """One of each kind of stored file, made by the code that makes them, in the bucket."""
    return stored_files


@pytest.fixture
def signed_links(settings, s3_storage):
    settings.JOURNEY_SIGNED_LINKS = True
    return s3_storage


# ---------------------------------------------------------------- where the files are


def test_every_kind_of_stored_file_goes_to_the_bucket_and_none_to_local_disk(files, object_store, settings):
    names = [name for _, name in served_files(files).values()] + [name for _, name in files.dataset.files]
    client = object_store.client()
    for name in names:
        assert client.head_object(Bucket=object_store.bucket, Key=name)["ContentLength"] > 0, name
        assert not (settings.MEDIA_ROOT / name).exists(), name


def test_deleting_a_model_and_a_data_set_removes_their_objects(files, student, object_store):
    job, dataset = files.job, files.dataset
    gone = [job.model_file, job.top_losses[0]["image_path"], files.prediction.image, files.prediction.thumbnail]
    gone += [name for _, name in dataset.files] + [name for _, name in dataset.samples]
    services.model_delete(job=job, by=student)
    services.dataset_delete(dataset=dataset, by=student)
    assert [name for name in gone if default_storage.exists(name)] == []


def test_housekeeping_lists_and_sweeps_orphaned_zips_in_the_bucket(s3_storage, student):
    orphan = default_storage.save(f"uploads/{uuid.uuid4().hex}.zip", ContentFile(b"PK"))
    waiting = services.dataset_upload(user=student, name="waits", rule="folders",
                                      upload=SimpleUploadedFile("w.zip", good_zip()))  # fmt: skip
    removed = services.uploads_sweep(now=timezone.now() + timedelta(days=2))
    assert orphan in removed and not default_storage.exists(orphan)
    assert waiting.upload not in removed and default_storage.exists(waiting.upload)  # its check still waits


# ---------------------------------------------------------------- who gets them


@pytest.mark.parametrize("kind", KINDS)
def test_only_the_owner_gets_each_kind_of_stored_file_through_its_view(client, files, student, student2, outsider,
                                                                       kind):  # fmt: skip
    url, name = served_files(files)[kind]
    assert_only_the_owner_gets(client, url, stored_bytes(name), owner=student, others=(student2, outsider))


def test_the_bucket_refuses_every_object_to_a_reader_without_keys(files, object_store):
    for kind, (_, name) in served_files(files).items():
        status, body, _ = http_get(f"{object_store.endpoint}/{object_store.bucket}/{name}")
        assert status == 403 and b"AccessDenied" in body, kind
    status, _, _ = http_get(f"{object_store.endpoint}/{object_store.bucket}?list-type=2")
    assert status == 403  # nor lists what is there


@pytest.mark.parametrize("kind", KINDS)
def test_a_signed_link_is_given_to_the_owner_only_and_opens_that_file(client, files, signed_links, student,
                                                                      student2, outsider, kind):  # fmt: skip
    url, name = served_files(files)[kind]
    for other in (student2, outsider):
        client.force_login(other)
        response = client.get(url)
        assert response.status_code == 404 and "Location" not in response, other.username
    client.force_login(student)
    response = client.get(url)
    assert response.status_code == 302 and "no-store" in response["Cache-Control"]
    link = response["Location"]
    assert link.startswith(f"{signed_links.endpoint}/{signed_links.bucket}/{name}?") and "X-Amz-Signature=" in link
    status, body, headers = http_get(link)
    assert status == 200 and body == stored_bytes(name)
    if kind == "exported model":  # a download, named for the student
        assert headers["Content-Disposition"] == f'attachment; filename="journey-job-{files.job.pk}.pkl"'


def test_a_signed_link_opens_its_one_object_only_and_not_for_long(client, files, signed_links, student, student2,
                                                                  settings):  # fmt: skip
    theirs = services.dataset_upload(user=student2, name="theirs", rule="folders",
                                     upload=SimpleUploadedFile("t.zip", good_zip()))  # fmt: skip
    theirs = services.dataset_check_run(dataset_id=theirs.pk)
    client.force_login(student)
    url, name = served_files(files)["data-set sample"]
    link = client.get(url)["Location"]
    # The signature covers the object's name: pointed at another student's image, it opens nothing.
    forged = link.replace(name, theirs.samples[0][1])
    status, body, _ = http_get(forged)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    assert http_get(link)[0] == 200

    settings.AWS_QUERYSTRING_EXPIRE = 1
    short = client.get(url)["Location"]
    time.sleep(2.5)
    status, body, _ = http_get(short)
    assert status == 403 and b"expired" in body


def test_signed_links_are_made_for_the_stores_public_host(client, files, signed_links, student, settings):
    port = urlsplit(signed_links.endpoint).port
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = f"http://localhost:{port}"
    settings.STORAGES = dict(settings.STORAGES)  # a new storage object, with the new setting
    client.force_login(student)
    url, name = served_files(files)["top-loss image"]
    link = client.get(url)["Location"]
    assert link.startswith(f"http://localhost:{port}/{signed_links.bucket}/{name}?")
    assert http_get(link)[:2] == (200, stored_bytes(name))
    # Signed for the public host, it is no good at another: the signature covers the host.
    assert http_get(link.replace("localhost", "127.0.0.1", 1))[0] == 403


# ---------------------------------------------------------------- the workers' cache, on the store


def test_the_worker_cache_fetches_an_object_again_when_it_changes_in_the_store(s3_storage, tmp_path):
    name = default_storage.save(f"jobs/0/{uuid.uuid4().hex}/model.pkl", ContentFile(b"learner, first export"))
    cache = FileCache(tmp_path / "cache", max_bytes=10**6)
    first = cache.get(default_storage, name)
    assert first.read_bytes() == b"learner, first export" and cache.get(default_storage, name) == first
    assert (cache.misses, cache.hits) == (1, 1)
    etag = default_storage.object_stat(name)[0]

    # Rewritten under the same name, same size: only the ETag (and the time) tell.
    s3_storage.client().put_object(Bucket=s3_storage.bucket, Key=name, Body=b"learner, other export")
    second = cache.get(default_storage, name)
    assert second != first and second.read_bytes() == b"learner, other export" and cache.misses == 2
    # A download asks for the version it was told of, and is refused another.
    assert default_storage.download_version(name, etag, io.BytesIO()) is False


def test_a_prediction_is_answered_from_the_cached_model_and_says_so_when_it_is_gone(files, student, settings):
    from mlworker.services.predictions import local_model_path

    local = local_model_path(files.job)
    assert local.read_bytes() == stored_bytes(files.job.model_file)
    assert local.is_relative_to(settings.JOURNEY_CACHE_DIR)
    default_storage.delete(files.job.model_file)
    with pytest.raises(FileNotFoundError):
        local_model_path(files.job)
    p = Prediction.objects.select_related("job").get(pk=files.prediction.pk)
    Prediction.objects.filter(pk=p.pk).update(state="running")
    services.prediction_answer(prediction=p)
    p.refresh_from_db()
    assert p.state == "failed" and "gone from storage" in p.error_message
