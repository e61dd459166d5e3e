"""The experiment pages: the form, and who may see and touch which job."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from mlworker.models import JobState, TrainingJob
from mlworker.presets import PRESETS, PRESETS_BY_KEY
from mlworker.services import job_cancel, job_claim, job_submit

pytestmark = pytest.mark.django_db

FORM = {
    "dataset": "silhouettes-catdog", "arch": "efficientnet_lite0", "pretrained": "on", "epochs": 1,
    "image_size": 64, "valid_pct": 0.2, "seed": 42, "batch_size": 32,
}  # fmt: skip


@pytest.fixture
def job(student, tiny_settings):
    return job_submit(user=student, job_settings=tiny_settings)


def job_urls(job):
    return {
        "detail": ("get", reverse("mlworker:job", args=[job.pk])),
        "status": ("get", reverse("mlworker:status", args=[job.pk])),
        "cancel": ("post", reverse("mlworker:cancel", args=[job.pk])),
        "model": ("get", reverse("mlworker:model", args=[job.pk])),
        "top_loss": ("get", reverse("mlworker:top_loss", args=[job.pk, 0])),
        "compare": ("get", reverse("mlworker:compare") + f"?a={job.pk}&b={job.pk}"),
    }


@pytest.mark.parametrize("name", ["detail", "status", "cancel", "model", "top_loss", "compare"])
@pytest.mark.parametrize("who", ["student2", "instructor", "outsider"])
def test_other_users_get_404_for_a_students_job(client, request, job, name, who):
    client.force_login(request.getfixturevalue(who))
    method, url = job_urls(job)[name]
    assert getattr(client, method)(url).status_code == 404
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and not job.cancel_requested


@pytest.mark.parametrize("name", ["detail", "status", "cancel", "model", "top_loss", "compare"])
def test_anonymous_visitors_are_sent_to_log_in(client, job, name):
    method, url = job_urls(job)[name]
    response = getattr(client, method)(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_owner_sees_the_job_and_its_status(client, student, job):
    client.force_login(student)
    assert client.get(reverse("mlworker:job", args=[job.pk])).status_code == 200
    status = client.get(reverse("mlworker:status", args=[job.pk])).json()
    assert status["state"] == "queued" and status["queue_position"] == 1 and status["live"]


def test_the_job_page_shows_the_chapters_code_with_the_jobs_values(client, student, tiny_settings):
    from dataclasses import replace

    job = job_submit(user=student, job_settings=replace(tiny_settings, learning_rate=0.003, reproducible=True))
    client.force_login(student)
    page = client.get(reverse("mlworker:job", args=[job.pk])).content.decode()
    code = page.split('<code class="language-python">', 1)[1].split("</code></pre>", 1)[0]
    assert code == escape(
        "set_seed(42, reproducible=True)\n"
        "path = Path('silhouettes-catdog')  # the first 12 images of each class\n"
        "dls = ImageDataLoaders.from_name_func(\n"
        "    path, get_image_files(path), label_func=is_cat, valid_pct=0.25, seed=42, item_tfms=Resize(64), bs=8)\n"
        "learn = vision_learner(dls, efficientnet_lite0, metrics=error_rate)\n"
        "learn.fine_tune(1, base_lr=0.003)"
    )


def test_cancel_is_post_only(client, student, job):
    client.force_login(student)
    assert client.get(reverse("mlworker:cancel", args=[job.pk])).status_code == 405
    assert client.post(reverse("mlworker:cancel", args=[job.pk])).status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_the_jobs_list_shows_only_the_users_jobs(client, student, student2, tiny_settings, django_assert_num_queries):
    mine = job_submit(user=student, job_settings=tiny_settings)
    theirs = job_submit(user=student2, job_settings=tiny_settings)
    client.force_login(student)
    # django_session, auth_user, jobs page, GPU workers alive, the jobs they run, jobs waiting in the queue
    with django_assert_num_queries(6):
        page = client.get(reverse("mlworker:jobs")).content.decode()
    assert f"#{mine.pk}<" in page and f"#{theirs.pk}<" not in page


def test_the_form_starts_from_the_chapters_values(client, student):
    client.force_login(student)
    form = client.get(reverse("mlworker:new")).context["form"]
    assert (form["valid_pct"].value(), form["seed"].value(), form["image_size"].value(), form["epochs"].value()) == (
        0.2, 42, 224, 1,
    )  # fmt: skip


def test_the_form_lists_each_preset_with_what_it_costs_and_gives(client, student):
    client.force_login(student)
    page = client.get(reverse("mlworker:new")).content.decode()
    for preset in PRESETS:
        card = page.split(f'id="preset-{preset.key}"', 1)[1].split("</li>", 1)[0]
        assert f'href="{reverse("mlworker:new")}?preset={preset.key}"' in card
        assert f"<strong>Costs:</strong> {escape(preset.costs)}." in card
        assert f"<strong>Gives:</strong> {escape(preset.gives)}." in card
        assert f"<code>{escape(preset.code)}</code>" in card
    accurate = PRESETS_BY_KEY["accurate"]
    assert "7%" in accurate.gives and "minute" in accurate.costs
    assert 'class="card current" id="preset-chapter"' in page  # the form starts from the chapter's values


@pytest.mark.parametrize("key", [p.key for p in PRESETS])
def test_a_preset_fills_in_the_form_and_a_student_can_start_it(client, student, key):
    preset = PRESETS_BY_KEY[key]
    client.force_login(student)
    response = client.get(reverse("mlworker:new") + f"?preset={key}")
    form = response.context["form"]
    assert {name: form[name].value() for name in preset.initial} == preset.initial
    assert f'class="card current" id="preset-{key}"' in response.content.decode()
    sent = {k: ("on" if v is True else v) for k, v in preset.initial.items() if v is not False}
    assert client.post(reverse("mlworker:new"), sent).status_code == 302
    job = TrainingJob.objects.get(owner=student)
    assert {name: getattr(job, name) for name in preset.initial} == preset.initial


@pytest.fixture
def nothing_installed(monkeypatch, tmp_path):
    """No torchvision weights and no Pets archive: only the packaged silhouettes and EfficientNet weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fastai"))
    monkeypatch.delenv("JOURNEY_ALLOW_DOWNLOADS", raising=False)
    return tmp_path


SERVER_DETAILS = ("TORCH_HOME", "FASTAI_HOME", "JOURNEY_ALLOW_DOWNLOADS", ".pth", "oxford-iiit-pet.tgz")


def test_students_read_what_is_missing_in_plain_words_without_server_details(client, student, nothing_installed):
    client.force_login(student)
    page = client.get(reverse("mlworker:new")).content.decode()
    assert "Cats or dogs (Oxford-IIIT Pets)</strong>: Its images are not installed on this server" in page
    assert "ResNet-34 (the chapter&#x27;s)</strong>: Its pretrained weights are not installed on this server. " \
        "Pick EfficientNet-Lite0, or untick" in page  # fmt: skip
    assert str(nothing_installed) not in page and "mlassets" not in page
    assert not [d for d in SERVER_DETAILS if d in page]


def test_staff_also_read_where_the_server_looked(client, student, nothing_installed):
    student.is_staff = True
    student.save()
    client.force_login(student)
    page = client.get(reverse("mlworker:new")).content.decode()
    assert "mlassets" in page and str(nothing_installed / "torch") in page and "oxford-iiit-pet.tgz" in page


def test_an_architecture_without_weights_is_offered_from_scratch_only(client, student, nothing_installed):
    client.force_login(student)
    form = client.get(reverse("mlworker:new")).context["form"]
    options = {o["value"]: o for o in form["arch"].subwidgets[0].parent_widget.options("arch", "")}
    resnet = options["resnet34"]
    assert resnet["label"].endswith("(from scratch only here)") and resnet["attrs"]["data-no-weights"]
    assert "disabled" not in resnet["attrs"]  # it can still be trained from scratch
    assert "data-no-weights" not in options["efficientnet_lite0"]["attrs"]


def test_asking_for_missing_weights_is_refused_beside_the_field_in_plain_words(client, student, nothing_installed):
    client.force_login(student)
    response = client.post(reverse("mlworker:new"), {**FORM, "arch": "resnet34"})
    assert response.status_code == 200 and not TrainingJob.objects.exists()
    error = response.context["form"].errors["arch"][0]
    assert error == (
        "ResNet-34's pretrained weights are not installed on this server. Pick EfficientNet-Lite0, or untick "
        "'Start from pretrained ImageNet weights' to train ResNet-34 from scratch."
    )
    response = client.post(reverse("mlworker:new"), {**FORM, "dataset": "pets"})
    error = response.context["form"].errors["dataset"][0]
    assert "not installed on this server" in error and not [d for d in SERVER_DETAILS if d in error]


def test_resnet_from_scratch_needs_no_weights(
    client, student, monkeypatch, tmp_path, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("mlworker:new"), {k: v for k, v in {**FORM, "arch": "resnet34"}.items() if k != "pretrained"}
        )
    assert response.status_code == 302
    assert TrainingJob.objects.get().pretrained is False


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 0, "greater than or equal to 1"),
        ("epochs", 99, "less than or equal to 10"),
        ("image_size", 4096, "less than or equal to 320"),
        ("valid_pct", 0.9, "less than or equal to 0.5"),
        ("batch_size", "many", "Enter a whole number"),
    ],
)
def test_the_form_says_what_is_wrong(client, student, field, value, message):
    client.force_login(student)
    response = client.post(reverse("mlworker:new"), {**FORM, field: value})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not TrainingJob.objects.exists()


def test_the_form_says_when_the_quota_is_reached(client, student, tiny_settings, settings):
    settings.JOURNEY_MAX_ACTIVE_JOBS = 1
    job_submit(user=student, job_settings=tiny_settings)
    client.force_login(student)
    response = client.post(reverse("mlworker:new"), FORM)
    assert response.status_code == 200
    assert "the most allowed at once is 1" in response.content.decode()
    assert TrainingJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # so that on_commit runs when the view's transaction commits
@pytest.mark.parametrize("broker_up", [True, False])
def test_submitting_says_when_the_queue_is_unavailable_and_keeps_the_job(client, student, broker_url, broker_up):
    from tests.support import use_broker

    client.force_login(student)
    use_broker(broker_url if broker_up else "redis://127.0.0.1:1/0")
    try:
        response = client.post(reverse("mlworker:new"), FORM, follow=True)
    finally:
        use_broker(broker_url)
    job = TrainingJob.objects.get()
    # With the broker up, a worker from another test may already have claimed it.
    assert job.state in ((JobState.QUEUED, JobState.RUNNING) if broker_up else (JobState.QUEUED,))
    assert (job.dispatched_at is not None) is broker_up
    assert ("queue is unavailable right now" in response.content.decode()) is not broker_up
    job_cancel(job=job, by=student)


def test_the_job_page_shows_a_failure_in_the_students_words(client, student, job):
    token = job_claim(job_id=job.pk, worker="w")
    TrainingJob.objects.filter(pk=job.pk).update(
        state=JobState.FAILED, run_token=token, error_message="The GPU ran out of memory. Lower the batch size."
    )
    client.force_login(student)
    page = client.get(reverse("mlworker:job", args=[job.pk])).content.decode()
    assert "This experiment failed." in page and "Lower the batch size." in page


# ---------------------------------------------------------------- batch size against the data set's size


@pytest.fixture
def small_dataset(student):
    """A checked upload of 2 classes x 8 images: 13 training images at a validation share of 0.2."""
    from mlworker.models import DatasetState, UserDataset

    return UserDataset.objects.create(
        owner=student, name="shapes", rule="folders", state=DatasetState.READY, classes={"circle": 8, "square": 8}
    )


def test_it_refuses_a_batch_larger_than_the_training_images_beside_the_field(client, student, small_dataset):
    client.force_login(student)
    sent = {**FORM, "dataset": small_dataset.key, "batch_size": 32, "valid_pct": 0.2, "epochs": 2,
            "small_validation_ok": "on"}  # fmt: skip
    response = client.post(reverse("mlworker:new"), sent)
    assert response.status_code == 200 and not TrainingJob.objects.exists()
    form = response.context["form"]
    assert form.errors.keys() == {"batch_size"}
    error = form.errors["batch_size"][0]
    assert "13 training images" in error and "validation share of 0.2" in error and "13 or less" in error
    # Nothing typed is lost.
    assert (form["dataset"].value(), form["batch_size"].value(), form["epochs"].value()) == (
        small_dataset.key, "32", "2",
    )  # fmt: skip


def test_the_largest_batch_it_names_is_accepted(client, student, small_dataset, django_capture_on_commit_callbacks):
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=False):
        sent = {**FORM, "dataset": small_dataset.key, "batch_size": 13, "small_validation_ok": "on"}
        response = client.post(reverse("mlworker:new"), sent)
    assert response.status_code == 302
    assert TrainingJob.objects.get().batch_size == 13


def test_it_counts_the_images_per_class_limit_of_the_silhouettes(client, student):
    client.force_login(student)
    # 5 cats + 5 dogs: 2 kept for validation, 8 to train on.
    response = client.post(reverse("mlworker:new"), {**FORM, "per_class": 5, "batch_size": 32})
    assert "8 training images" in response.context["form"].errors["batch_size"][0]
    assert not TrainingJob.objects.exists()


def test_it_refuses_a_validation_share_that_keeps_no_image(client, student):
    from mlworker.models import DatasetState, UserDataset

    tiny = UserDataset.objects.create(
        owner=student, name="tiny", rule="folders", state=DatasetState.READY, classes={"a": 5, "b": 5}
    )
    client.force_login(student)
    response = client.post(reverse("mlworker:new"), {**FORM, "dataset": tiny.key, "valid_pct": 0.05, "batch_size": 4})
    errors = response.context["form"].errors
    assert "none of this data set's 10 images" in errors["valid_pct"][0] and "0.1" in errors["valid_pct"][0]
    assert not TrainingJob.objects.exists()


def test_it_warns_before_training_an_upload_with_a_tiny_validation_set(client, student, small_dataset):
    client.force_login(student)
    sent = {**FORM, "dataset": small_dataset.key, "batch_size": 4}
    response = client.post(reverse("mlworker:new"), sent)
    assert not TrainingJob.objects.exists()
    warning = response.context["form"].errors["valid_pct"][0]
    assert "Only 3 of its 16 images would be kept to check the model" in warning and "0.33" in warning
    assert "Train anyway, with this small validation set" in response.content.decode()  # the box to go on
    with_it = client.post(reverse("mlworker:new"), {**sent, "small_validation_ok": "on"})
    assert with_it.status_code == 302 and TrainingJob.objects.count() == 1


def test_it_warns_when_a_class_may_have_no_validation_image(client, student):
    from mlworker.models import DatasetState, UserDataset

    lopsided = UserDataset.objects.create(
        owner=student, name="lopsided", rule="folders", state=DatasetState.READY, classes={"cat": 60, "dog": 3}
    )
    client.force_login(student)
    response = client.post(reverse("mlworker:new"), {**FORM, "dataset": lopsided.key, "batch_size": 8})
    warning = response.context["form"].errors["valid_pct"][0]
    assert "Only" not in warning and "Some classes may have no image among them (too few images of dog)" in warning


def test_a_large_even_upload_trains_without_a_warning(client, student, django_capture_on_commit_callbacks):
    from mlworker.models import DatasetState, UserDataset

    even = UserDataset.objects.create(
        owner=student, name="even", rule="folders", state=DatasetState.READY, classes={"cat": 30, "dog": 30}
    )
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("mlworker:new"), {**FORM, "dataset": even.key, "batch_size": 8})
    assert response.status_code == 302
    assert "Train anyway" not in client.get(reverse("mlworker:new")).content.decode()


@pytest.mark.parametrize(
    ("n_valid", "confusion", "said"),
    [
        (2, [[0, 0], [1, 1]], "on only 2 validation images, and none of them was a dog (False)"),
        (40, [[0, 0], [10, 30]], "none of them was a dog (False)"),
        (6, [[3, 0], [1, 2]], "on only 6 validation images"),
    ],
)
def test_the_result_page_says_when_its_error_rate_rests_on_too_little(client, student, job, n_valid, confusion, said):
    TrainingJob.objects.filter(pk=job.pk).update(
        state=JobState.SUCCEEDED, classes=["False", "True"], confusion=confusion, n_valid=n_valid, error_rate=0.5,
        accuracy=0.5,
    )  # fmt: skip
    client.force_login(student)
    page = client.get(reverse("mlworker:job", args=[job.pk])).content.decode()
    assert said in page and 'id="validation-note"' in page


def test_the_result_page_has_no_such_note_for_a_fair_validation_set(client, student, job):
    TrainingJob.objects.filter(pk=job.pk).update(
        state=JobState.SUCCEEDED, classes=["False", "True"], confusion=[[20, 2], [1, 17]], n_valid=40,
        error_rate=0.075, accuracy=0.925,
    )  # fmt: skip
    client.force_login(student)
    assert 'id="validation-note"' not in client.get(reverse("mlworker:job", args=[job.pk])).content.decode()


def test_train_on_it_proposes_a_batch_size_the_data_set_can_fill(client, student, small_dataset):
    client.force_login(student)
    url = reverse("mlworker:new") + f"?preset=quick&dataset={small_dataset.key}"
    form = client.get(url).context["form"]
    assert form["dataset"].value() == small_dataset.key
    assert form["batch_size"].value() == 4  # several batches of the 13 training images
    assert "13 training images" in form.fields["batch_size"].help_text
    # The chapter's own data set keeps the preset's batch size.
    assert client.get(reverse("mlworker:new") + "?preset=quick").context["form"]["batch_size"].value() == 32


# ---------------------------------------------------------------- an upload's name wherever its jobs are listed


def test_a_job_on_an_upload_is_shown_by_the_uploads_name(client, student, small_dataset, django_assert_num_queries):
    from dataclasses import replace

    from mlworker.jobsettings import JobSettings

    settings = JobSettings(dataset=small_dataset.key, arch="efficientnet_lite0", pretrained=True, epochs=1,
                           image_size=64, valid_pct=0.2, seed=42, batch_size=4)  # fmt: skip
    job = job_submit(user=student, job_settings=settings)
    chapter = job_submit(user=student, job_settings=replace(settings, dataset="silhouettes-catdog"))
    assert (job.dataset_label, chapter.dataset_label) == ("shapes", "silhouettes-catdog")
    small_dataset.delete()  # the job's record keeps the name it was trained under
    client.force_login(student)
    header = client.get(reverse("mlworker:job", args=[job.pk])).content.decode()
    assert '<p class="settings">shapes · efficientnet_lite0' in header
    # django_session, auth_user, jobs page, GPU workers alive, the jobs they run, jobs waiting in the queue
    with django_assert_num_queries(6):
        listing = client.get(reverse("mlworker:jobs")).content.decode()
    assert "<td>shapes</td>" in listing and small_dataset.key not in listing
    compare = client.get(reverse("mlworker:compare") + f"?a={job.pk}&b={chapter.pk}").content.decode()
    assert "<td>shapes</td><td>silhouettes-catdog</td>" in compare


def test_a_running_job_says_who_asked_to_stop_it(client, student, job):
    job_claim(job_id=job.pk, worker="w1")
    job_cancel(job=job, by=student)
    client.force_login(student)
    page = client.get(reverse("mlworker:job", args=[job.pk])).content.decode()
    assert "You asked to cancel it on" in page and "it stops at its next batch." in page


def test_the_job_page_says_fine_tune_runs_one_more_epoch_than_asked(client, student, job):
    client.force_login(student)
    page = client.get(reverse("mlworker:job", args=[job.pk])).content.decode()
    assert "<code>fine_tune(1)</code> trains the new head alone for one epoch" in page
    assert "then the whole model for 1 epoch: 2 epochs in all" in page
