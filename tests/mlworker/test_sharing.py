"""Sharing a trained model or a checked data set with a class: who may see, ask, train on, change."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import ClassMembership
from accounts.services import classroom_create, classroom_join
from mlworker import selectors
from mlworker.assets import AssetMissing
from mlworker.models import DatasetState, JobState, Prediction, TrainingJob, UserDataset
from mlworker.runner import _materialize_user_dataset
from mlworker.services import (
    Upload,
    dataset_check_run,
    dataset_upload,
    job_submit,
    model_delete,
    prediction_submit,
    share,
    unshare,
)
from tests.mlworker.support import good_zip, png_bytes, png_file

pytestmark = pytest.mark.django_db

ROLES = ["owner", "classmate", "classmate_unshared", "other_student", "outsider", "anonymous"]
LOGIN = "login"


@pytest.fixture
def people(make_user, instructor, student, student2, other_student, classroom, other_classroom):
    """Class A (shared with, the shared `classroom`): the owner and a classmate. Class B (not shared
    with): the owner and another classmate. Class C (`other_classroom`): a student of another class.
    An outsider in no class."""
    a, c = classroom, other_classroom
    b = classroom_create(by=instructor, name="Friday group")
    classmate_unshared = make_user("student4")
    for user, room in [(student, b), (classmate_unshared, b)]:
        classroom_join(user=user, code=room.code)
    return {
        "owner": student, "classmate": student2, "classmate_unshared": classmate_unshared,
        "other_student": other_student, "outsider": make_user("outsider", role="none"),
        "a": a, "b": b, "c": c,
    }  # fmt: skip


def _trained(user, tiny_settings, **fields) -> TrainingJob:
    job = job_submit(user=user, job_settings=tiny_settings)
    top = default_storage.save(f"jobs/{job.pk}/top_losses/0.png", ContentFile(png_bytes("black")))
    model = default_storage.save(f"jobs/{job.pk}/model.pkl", ContentFile(b"not really a learner"))
    TrainingJob.objects.filter(pk=job.pk).update(
        state=JobState.SUCCEEDED, model_file=model, classes=["False", "True"], error_rate=0.125,
        top_losses=[{"image_path": top, "actual": "True", "predicted": "False", "loss": 2.0, "probability": 0.9}],
        **fields,
    )  # fmt: skip
    job.refresh_from_db()
    return job


@pytest.fixture
def shared_model(people, tiny_settings):
    job = _trained(people["owner"], tiny_settings, name="Whiskers")
    share(item=job, by=people["owner"], classrooms=[people["a"]])
    return job


@pytest.fixture
def shared_dataset(people):
    upload = SimpleUploadedFile("shapes.zip", good_zip())
    dataset = dataset_upload(user=people["owner"], name="my shapes", rule="folders", upload=upload)
    dataset = dataset_check_run(dataset_id=dataset.pk)
    assert dataset.state == DatasetState.READY
    share(item=dataset, by=people["owner"], classrooms=[people["a"]])
    return dataset


@pytest.fixture
def clients(people):
    out = {"anonymous": Client()}
    for role in ROLES[:-1]:
        out[role] = Client()
        out[role].force_login(people[role])
    return out


def _only(*roles, ok=200, other=404):
    return {role: (ok if role in roles else other) for role in ROLES[:-1]} | {"anonymous": LOGIN}


def matrix(job, dataset, people):
    """name: (method, url, data factory, expected status per role)."""
    b = people["b"].pk
    return {
        "model results": ("get", reverse("mlworker:job", args=[job.pk]), None, _only("owner", "classmate")),
        "model status": ("get", reverse("mlworker:status", args=[job.pk]), None, _only("owner", "classmate")),
        "top-loss image": ("get", reverse("mlworker:top_loss", args=[job.pk, 0]), None, _only("owner", "classmate")),
        "model file": ("get", reverse("mlworker:model", args=[job.pk]), None, _only("owner")),
        "predict": (
            "post",
            reverse("mlworker:predict", args=[job.pk]),
            lambda: {"images": png_file()},
            _only("owner", "classmate", ok=302),
        ),  # fmt: skip
        "predict a validation image": (
            "post",
            reverse("mlworker:predict", args=[job.pk]),
            lambda: {"validation": 0},
            _only("owner", "classmate", ok=302),
        ),  # fmt: skip
        "rename": (
            "post",
            reverse("mlworker:model_rename", args=[job.pk]),
            lambda: {"name": "mine"},
            _only("owner", ok=302),
        ),  # fmt: skip
        "share model": (
            "post",
            reverse("mlworker:model_share", args=[job.pk]),
            lambda: {"classrooms": [b]},
            _only("owner", ok=302),
        ),  # fmt: skip
        "unshare model": (
            "post",
            reverse("mlworker:model_unshare", args=[job.pk]),
            lambda: {"classrooms": [b]},
            _only("owner", ok=302),
        ),  # fmt: skip
        "share data set": (
            "post",
            reverse("mlworker:dataset_share", args=[dataset.pk]),
            lambda: {"classrooms": [b]},
            _only("owner", ok=302),
        ),  # fmt: skip
        "unshare data set": (
            "post",
            reverse("mlworker:dataset_unshare", args=[dataset.pk]),
            lambda: {"classrooms": [b]},
            _only("owner", ok=302),
        ),  # fmt: skip
        "data set sample": (
            "get",
            reverse("mlworker:dataset_sample", args=[dataset.pk, 0]),
            None,
            _only("owner", "classmate"),
        ),
        "delete data set": (
            "post",
            reverse("mlworker:dataset_delete", args=[dataset.pk]),
            lambda: {},
            _only("owner", ok=302),
        ),  # fmt: skip
        "delete model": ("post", reverse("mlworker:model_delete", args=[job.pk]), lambda: {}, _only("owner", ok=302)),
    }


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_what_it_should(people, shared_model, shared_dataset, clients, role):
    failures = []
    for name, (method, url, data, expected) in matrix(shared_model, shared_dataset, people).items():
        client = clients[role]
        response = client.get(url) if method == "get" else client.post(url, data())
        want = expected[role]
        if want == LOGIN:
            ok = response.status_code == 302 and response["Location"].startswith(reverse("login"))
        else:
            ok = response.status_code == want
        if not ok:
            failures.append(f"{name} as {role}: {response.status_code}, expected {want}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ["classmate", "classmate_unshared", "other_student", "outsider", "anonymous"])
def test_what_is_not_theirs_stays_as_it_was(people, shared_model, shared_dataset, clients, role):
    for _name, (method, url, data, _expected) in matrix(shared_model, shared_dataset, people).items():
        if method == "post":
            clients[role].post(url, data())
    shared_model.refresh_from_db()
    assert shared_model.name == "Whiskers" and shared_model.model_file
    assert list(shared_model.shared_with.all()) == [people["a"]]
    assert list(UserDataset.objects.get(pk=shared_dataset.pk).shared_with.all()) == [people["a"]]
    assert not Prediction.objects.exclude(owner__in=[people["owner"], people["classmate"]]).exists()


@pytest.mark.parametrize(
    "role, sees", [("owner", True), ("classmate", True), ("classmate_unshared", False), ("other_student", False),
                   ("outsider", False)],
)  # fmt: skip
def test_the_shared_data_set_is_in_the_training_form_only_for_the_class(people, shared_dataset, clients, role, sees):
    form = clients[role].get(reverse("mlworker:new")).context["form"]
    assert (shared_dataset.key in dict(form.fields["dataset"].choices)) is sees


@pytest.mark.parametrize(
    "role, sees", [("classmate", True), ("classmate_unshared", False), ("other_student", False), ("outsider", False)]
)
def test_the_gallery_shows_classmates_models_with_their_owner(people, shared_model, clients, role, sees):
    page = clients[role].get(reverse("mlworker:models")).content.decode()
    assert ("Shared with your class" in page) is sees
    assert ("Whiskers" in page and "0.1250" in page and people["owner"].username in page) is sees


def test_the_anonymous_training_form_asks_to_log_in(clients):
    response = clients["anonymous"].get(reverse("mlworker:new"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_owner_shares_and_unshares_from_the_gallery(people, tiny_settings, clients):
    job = _trained(people["owner"], tiny_settings)
    classmate = clients["classmate"]
    assert classmate.get(job.get_absolute_url()).status_code == 404
    page = clients["owner"].get(reverse("mlworker:models")).content.decode()
    assert reverse("mlworker:model_share", args=[job.pk]) in page and "Monday group" in page

    clients["owner"].post(reverse("mlworker:model_share", args=[job.pk]), {"classrooms": [people["a"].pk]})
    assert classmate.get(job.get_absolute_url()).status_code == 200
    assert "Ask this model" in classmate.get(job.get_absolute_url()).content.decode()

    clients["owner"].post(reverse("mlworker:model_unshare", args=[job.pk]), {"classrooms": [people["a"].pk]})
    assert classmate.get(job.get_absolute_url()).status_code == 404
    assert classmate.post(reverse("mlworker:predict", args=[job.pk]), {"images": png_file()}).status_code == 404


def test_sharing_and_unsharing_need_the_csrf_token_and_a_post(people, shared_model, shared_dataset):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(people["owner"])
    for name in ("model_share", "model_unshare"):
        url = reverse(f"mlworker:{name}", args=[shared_model.pk])
        assert strict.post(url, {"classrooms": [people["b"].pk]}).status_code == 403
        assert strict.get(url).status_code == 405
    for name in ("dataset_share", "dataset_unshare"):
        url = reverse(f"mlworker:{name}", args=[shared_dataset.pk])
        assert strict.post(url, {"classrooms": [people["b"].pk]}).status_code == 403
        assert strict.get(url).status_code == 405
    assert list(shared_model.shared_with.all()) == [people["a"]]
    assert list(shared_dataset.shared_with.all()) == [people["a"]]


def test_the_owner_can_share_only_with_their_own_classes(people, tiny_settings, clients):
    job = _trained(people["owner"], tiny_settings)
    with pytest.raises(ValidationError, match="only with a class you are in"):
        share(item=job, by=people["owner"], classrooms=[people["c"]])
    response = clients["owner"].post(
        reverse("mlworker:model_share", args=[job.pk]), {"classrooms": [people["c"].pk]}, follow=True
    )
    assert "Choose one of your classes." in response.content.decode()
    assert not job.shared_with.exists()
    with pytest.raises(PermissionError):
        share(item=job, by=people["classmate"], classrooms=[people["a"]])


def test_only_trained_models_and_ready_data_sets_can_be_shared(people, tiny_settings):
    queued = job_submit(user=people["owner"], job_settings=tiny_settings)
    with pytest.raises(ValidationError, match="trained model"):
        share(item=queued, by=people["owner"], classrooms=[people["a"]])
    checking = dataset_upload(user=people["owner"], name="x", rule="folders",
                              upload=SimpleUploadedFile("x.zip", good_zip()))  # fmt: skip
    with pytest.raises(ValidationError, match="ready"):
        share(item=checking, by=people["owner"], classrooms=[people["a"]])


def test_leaving_the_class_ends_the_access_at_once(people, shared_model, shared_dataset, clients):
    classmate = clients["classmate"]
    assert classmate.get(shared_model.get_absolute_url()).status_code == 200
    ClassMembership.objects.filter(user=people["classmate"], classroom=people["a"]).delete()
    assert classmate.get(shared_model.get_absolute_url()).status_code == 404
    assert (
        classmate.post(reverse("mlworker:predict", args=[shared_model.pk]), {"images": png_file()}).status_code == 404
    )
    assert shared_dataset.key not in dict(
        classmate.get(reverse("mlworker:new")).context["form"].fields["dataset"].choices
    )


def test_the_owner_leaving_the_class_ends_the_share(people, shared_model, shared_dataset):
    assert selectors.models_usable_by(people["classmate"]).filter(pk=shared_model.pk).exists()
    ClassMembership.objects.filter(user=people["owner"], classroom=people["a"]).delete()
    assert not selectors.models_usable_by(people["classmate"]).filter(pk=shared_model.pk).exists()
    assert not selectors.datasets_usable_by(people["classmate"]).filter(pk=shared_dataset.pk).exists()


def test_a_classmates_predictions_are_theirs(people, shared_model, clients):
    response = clients["classmate"].post(reverse("mlworker:predict", args=[shared_model.pk]), {"images": png_file()})
    prediction = Prediction.objects.get()
    assert prediction.owner == people["classmate"] and response["Location"] == prediction.get_absolute_url()
    assert clients["classmate"].get(prediction.get_absolute_url()).status_code == 200
    assert clients["owner"].get(prediction.get_absolute_url()).status_code == 404
    owner_page = clients["owner"].get(shared_model.get_absolute_url()).content.decode()
    assert prediction.get_absolute_url() not in owner_page
    classmate_page = clients["classmate"].get(shared_model.get_absolute_url()).content.decode()
    assert prediction.get_absolute_url() in classmate_page


def test_deleting_a_shared_model_keeps_classmates_history(people, shared_model, clients):
    mine = prediction_submit(user=people["owner"], job=shared_model, uploads=[Upload("a.png", png_bytes())])[0][0]
    theirs, _ = prediction_submit(
        user=people["classmate"], job=shared_model, uploads=[Upload("b.png", png_bytes()), Upload("c.png", png_bytes())]
    )
    model_delete(job=shared_model, by=people["owner"])
    assert not Prediction.objects.filter(pk=mine.pk).exists() and not default_storage.exists(mine.image)
    classmate = clients["classmate"]
    page = classmate.get(theirs[0].get_absolute_url())
    assert page.status_code == 200 and "Model deleted" in page.content.decode()
    assert shared_model.get_absolute_url() not in page.content.decode()  # the results page is gone for them
    assert classmate.get(reverse("mlworker:prediction_image", args=[theirs[0].pk, "thumb"])).status_code == 200
    batch = classmate.get(reverse("mlworker:batch", args=[shared_model.pk, theirs[0].batch]))
    assert batch.status_code == 200 and "Model deleted" in batch.content.decode()
    assert classmate.get(shared_model.get_absolute_url()).status_code == 404


def test_unsharing_keeps_the_classmates_predictions_and_says_why(people, shared_model, clients):
    theirs = prediction_submit(user=people["classmate"], job=shared_model, uploads=[Upload("b.png", png_bytes())])
    unshare(item=shared_model, by=people["owner"])
    page = clients["classmate"].get(theirs[0][0].get_absolute_url()).content.decode()
    assert "no longer shared with you" in page


def test_a_classmate_trains_on_a_shared_data_set_until_it_is_unshared(people, shared_dataset, clients, tmp_path):
    response = clients["classmate"].post(reverse("mlworker:new"), {
        "dataset": shared_dataset.key, "arch": "efficientnet_lite0", "pretrained": "on", "epochs": 1,
        "image_size": 64, "valid_pct": 0.25, "seed": 42, "batch_size": 4,
        "small_validation_ok": "on",  # the shared set is tiny: the form asks first (tested in test_views)
    })  # fmt: skip
    assert response.status_code == 302
    job = TrainingJob.objects.get(owner=people["classmate"])
    assert job.dataset == shared_dataset.key
    folder = _materialize_user_dataset(job, tmp_path / "job-1")  # what the training process does first
    assert sorted(p.name for p in folder.iterdir()) == ["circle", "square"]

    unshare(item=shared_dataset, by=people["owner"])
    # This worker's cache still holds the images: asked before anything is read from it.
    with pytest.raises(AssetMissing, match="no longer shared with you"):
        _materialize_user_dataset(job, tmp_path / "job-2")
    assert not (tmp_path / "job-2").exists()


def test_the_gallery_costs_the_same_whatever_the_number_of_models(people, tiny_settings, clients,
                                                                  django_assert_num_queries):  # fmt: skip
    for n in range(3):
        share(item=_trained(people["owner"], tiny_settings, name=f"m{n}"), by=people["owner"],
                    classrooms=[people["a"]])  # fmt: skip
        _trained(people["classmate"], tiny_settings)
    # django_session, auth_user, the user's classes, own models, their classes (prefetch), shared models
    with django_assert_num_queries(6):
        page = clients["classmate"].get(reverse("mlworker:models")).content.decode()
    assert all(f"m{n}" in page for n in range(3))


def test_the_data_page_offers_sharing_to_the_owner_and_lists_shared_sets_for_the_class(people, shared_dataset,
                                                                                       clients):  # fmt: skip
    owner_page = clients["owner"].get(reverse("mlworker:datasets")).content.decode()
    assert reverse("mlworker:dataset_unshare", args=[shared_dataset.pk]) in owner_page  # shared with Monday
    assert reverse("mlworker:dataset_share", args=[shared_dataset.pk]) in owner_page and "Friday group" in owner_page
    classmate_page = clients["classmate"].get(reverse("mlworker:datasets")).content.decode()
    assert "Shared with your class" in classmate_page and "my shapes" in classmate_page
    assert reverse("mlworker:dataset_share", args=[shared_dataset.pk]) not in classmate_page
    sample = reverse("mlworker:dataset_sample", args=[shared_dataset.pk, 0])
    assert sample in classmate_page  # what the images look like, before training on them
    assert clients["classmate"].get(sample)["Content-Type"] == "image/png"
    assert "my shapes" not in clients["classmate_unshared"].get(reverse("mlworker:datasets")).content.decode()
