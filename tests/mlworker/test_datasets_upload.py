"""Students' own zips: checked before use, refused or skipped with reasons, private, and trainable."""

import os
import stat
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mlworker.archives import ArchiveRejected, Item, Limits, Skipped, scan_zip
from mlworker.models import DatasetState, JobState, TrainingJob, UserDataset
from mlworker.services import dataset_check_run, dataset_upload
from tests.mlworker.support import good_zip, make_zip, picture
from tests.support import wait_for


def scan(tmp_path, data, rule="folders", limits=None):
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    return list(scan_zip(path, rule=rule, limits=limits or Limits()))


def test_it_labels_by_folder_and_skips_what_is_not_an_image(tmp_path):
    data = make_zip({"cats/a.png": picture("square", 1), "dogs/b.png": picture("circle", 1),
                     "cats/notes.txt": b"hello", "loose.png": picture("square", 2),
                     "__MACOSX/cats/._a.png": b"junk", "cats/fake.jpg": b"not really a jpeg"})  # fmt: skip
    entries = scan(tmp_path, data)
    items = {e.name: e.label for e in entries if isinstance(e, Item)}
    skipped = {e.name: e.reason for e in entries if isinstance(e, Skipped)}
    assert items == {"cats/a.png": "cats", "dogs/b.png": "dogs"}
    assert "not an image" in skipped["cats/notes.txt"] and "not an image" in skipped["cats/fake.jpg"]
    assert "class folder" in skipped["loose.png"] and "system file" in skipped["__MACOSX/cats/._a.png"]


@pytest.mark.parametrize(
    "rule, name, label",
    [("uppercase", "Bengal_1.png", "cat"), ("uppercase", "beagle_1.png", "dog"),
     ("prefix", "great_pyrenees_173.png", "great_pyrenees"), ("prefix", "nounderscore.png", None)],
)  # fmt: skip
def test_it_labels_by_the_file_name_rules(tmp_path, rule, name, label):
    entries = scan(tmp_path, make_zip({name: picture("square", 0)}), rule=rule)
    assert (entries[0].label if isinstance(entries[0], Item) else None) == label


@pytest.mark.parametrize("evil", ["../escape.png", "cats/../../escape.png", "/etc/escape.png", "C:/escape.png"])
def test_it_refuses_paths_that_leave_the_archive(tmp_path, evil):
    with pytest.raises(ArchiveRejected, match="points outside its own folder"):
        scan(tmp_path, make_zip({"cats/ok.png": picture("square", 0), evil: picture("square", 1)}))


def test_it_does_not_follow_symlinks(tmp_path):
    link = zipfile.ZipInfo("cats/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    entries = scan(tmp_path, make_zip({"cats/link.png": link, "cats/a.png": picture("square", 0)}))
    assert [e.reason for e in entries if isinstance(e, Skipped)] == ["a symbolic link; links are not followed"]


def test_it_does_not_open_nested_archives(tmp_path):
    inner = make_zip({"cats/a.png": picture("square", 0)})
    entries = scan(tmp_path, make_zip({"more.zip": inner, "cats/a.png": picture("square", 0)}))
    assert any(isinstance(e, Skipped) and "archive inside the archive" in e.reason for e in entries)


def test_it_refuses_a_zip_bomb(tmp_path):
    with pytest.raises(ArchiveRejected, match="zip bomb"):
        scan(tmp_path, make_zip({"cats/bomb.png": b"\0" * (20 * 2**20)}))


def test_it_refuses_ten_thousand_tiny_files_without_reading_them(tmp_path):
    data = make_zip({f"cats/{i}.png": b"x" for i in range(10_000)})
    with pytest.raises(ArchiveRejected, match="holds 10,000 entries; the most we accept is 2,000"):
        scan(tmp_path, data)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 truncated", b"just text"])
def test_it_refuses_what_is_not_a_zip(tmp_path, data):
    with pytest.raises(ArchiveRejected, match="not a zip archive"):
        scan(tmp_path, data)


def upload(user, data, rule="folders"):
    return dataset_upload(user=user, name="shapes", rule=rule, upload=SimpleUploadedFile("shapes.zip", data))


@pytest.mark.django_db
def test_a_good_zip_becomes_a_ready_data_set_with_a_summary(student, settings):
    dataset = dataset_check_run(dataset_id=upload(student, good_zip()).pk)
    assert dataset.state == DatasetState.READY
    assert dataset.classes == {"square": 6, "circle": 6} and len(dataset.files) == 12
    assert dataset.samples and dataset.upload == ""
    media = Path(settings.MEDIA_ROOT)
    assert all((media / name).is_file() and name.startswith(f"datasets/{dataset.pk}/") for _, name in dataset.files)


@pytest.mark.django_db
def test_too_few_images_or_classes_are_refused_in_words(student):
    one_class = make_zip({f"cats/{i}.png": picture("square", i) for i in range(6)})
    few = make_zip({**{f"cats/{i}.png": picture("square", i) for i in range(6)}, "dogs/1.png": picture("circle", 1)})
    assert "at least 2 classes" in dataset_check_run(dataset_id=upload(student, one_class).pk).error_message
    rejected = dataset_check_run(dataset_id=upload(student, few).pk)
    assert rejected.state == DatasetState.REJECTED and "dogs (1)" in rejected.error_message
    assert rejected.files == []


@pytest.mark.django_db
def test_nothing_is_written_outside_the_data_sets_folder(student, settings, tmp_path):
    media = Path(settings.MEDIA_ROOT)
    before = {p for p in media.rglob("*")}
    evil = make_zip({"../../outside.png": picture("square", 0), "cats/a.png": picture("square", 1)})
    dataset = dataset_check_run(dataset_id=upload(student, evil).pk)
    assert dataset.state == DatasetState.REJECTED and "outside its own folder" in dataset.error_message
    assert {p for p in media.rglob("*") if p.is_file()} - before == set()
    assert not (media.parent / "outside.png").exists() and not Path(os.getcwd(), "outside.png").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["student2", "outsider"])
def test_data_sets_are_private(client, request, student, who):
    dataset = dataset_check_run(dataset_id=upload(student, good_zip()).pk)
    client.force_login(request.getfixturevalue(who))
    assert dataset.name not in client.get(reverse("mlworker:datasets")).content.decode()
    assert client.get(reverse("mlworker:dataset_sample", args=[dataset.pk, 0])).status_code == 404
    assert client.post(reverse("mlworker:dataset_delete", args=[dataset.pk])).status_code == 404
    form = client.get(reverse("mlworker:new")).context["form"]
    assert dataset.key not in dict(form.fields["dataset"].choices)
    assert UserDataset.objects.filter(pk=dataset.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_student_uploads_a_zip_trains_on_it_and_predicts(celery_worker, client, student):
    client.force_login(student)
    response = client.post(
        reverse("mlworker:datasets"),
        {"name": "shapes", "rule": "folders", "archive": SimpleUploadedFile("shapes.zip", good_zip(per_class=10))},
    )
    assert response.status_code == 302
    dataset = UserDataset.objects.get(owner=student)
    wait_for(lambda: UserDataset.objects.get(pk=dataset.pk).state != DatasetState.CHECKING, what="the check")
    dataset.refresh_from_db()
    assert dataset.state == DatasetState.READY, dataset.error_message

    response = client.post(reverse("mlworker:new"), {
        "dataset": dataset.key, "arch": "efficientnet_lite0", "pretrained": "on", "epochs": 1, "image_size": 64,
        "valid_pct": 0.25, "seed": 42, "batch_size": 4, "small_validation_ok": "on",  # a tiny set: the form asks first
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    job = TrainingJob.objects.get(owner=student)
    wait_for(lambda: not TrainingJob.objects.get(pk=job.pk).is_live, timeout=180, what="training")
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.classes == ["circle", "square"] and job.n_train + job.n_valid == 20

    image = SimpleUploadedFile("mine.png", picture("square", 3), content_type="image/png")
    response = client.post(reverse("mlworker:predict", args=[job.pk]), {"images": image})
    prediction = job.predictions.get()
    wait_for(lambda: not type(prediction).objects.get(pk=prediction.pk).is_live, what="the prediction")
    prediction.refresh_from_db()
    assert prediction.state == "succeeded" and prediction.label in ("circle", "square")
    assert "Probability of each class" in client.get(prediction.get_absolute_url()).content.decode()
