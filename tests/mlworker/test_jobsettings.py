"""A job's settings are defined once (mlworker.jobsettings): the form, the model, training and the
compare page all follow that definition, bounds included."""

from dataclasses import asdict, replace

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from mlworker.forms import CHAPTER_DEFAULTS, JobForm
from mlworker.jobsettings import SETTING_NAMES, JobSettings, knob, settings_problem
from mlworker.models import TrainingJob
from mlworker.services import job_submit
from mlworker.training import TrainConfig, TrainingError, validate_config

BOUNDED = [name for name in SETTING_NAMES if "minimum" in knob(name).metadata]


def outside(name) -> list:
    """Values just outside a setting's bounds."""
    meta = knob(name).metadata
    lo, hi = meta["minimum"], meta.get("maximum")
    return (
        [lo - 1, *([hi + 1] if hi is not None else [])] if meta.get("whole") else [lo / 2, *([hi * 1.5] if hi else [])]
    )


def test_the_chapters_values_are_the_defaults_and_within_the_bounds():
    assert CHAPTER_DEFAULTS == {"dataset": "silhouettes-catdog", "arch": "efficientnet_lite0", "pretrained": True,
                                "epochs": 1, "image_size": 224, "valid_pct": 0.2, "seed": 42, "batch_size": 64,
                                "lr_find": False, "reproducible": False}  # fmt: skip
    assert settings_problem(JobSettings()) == ""


@pytest.mark.parametrize("name", BOUNDED)
def test_the_form_training_and_the_model_refuse_the_same_values(name):
    meta = knob(name).metadata
    column = TrainingJob._meta.get_field(name)
    for value in outside(name):
        assert name in JobForm({**CHAPTER_DEFAULTS, name: value}).errors, value
        with pytest.raises(TrainingError, match=f"(?i){meta['noun']}"):
            validate_config(replace(TrainConfig(), **{name: value}))
        with pytest.raises(ValidationError):
            column.run_validators(value)
    assert name not in JobForm({**CHAPTER_DEFAULTS, name: meta["minimum"]}).errors
    validate_config(replace(TrainConfig(), **{name: meta["minimum"]}))
    column.run_validators(meta["minimum"])


def test_the_form_caps_a_setting_at_the_operators_limit_below_the_bound(settings):
    settings.JOURNEY_MAX_IMAGE_SIZE = 96
    form = JobForm({**CHAPTER_DEFAULTS, "image_size": 97})
    assert "image_size" in form.errors
    assert form.fields["image_size"].widget.attrs["max"] == 96
    settings.JOURNEY_MAX_IMAGE_SIZE = 4096  # above the bound: the bound holds
    assert JobForm().fields["image_size"].max_value == knob("image_size").metadata["maximum"]


@pytest.mark.django_db
def test_a_job_keeps_its_settings_as_submitted_for_the_runner(student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    job.refresh_from_db()
    assert job.job_settings == tiny_settings
    config = TrainConfig(**asdict(job.job_settings), data_path=None)  # as mlworker.runner builds it
    assert all(getattr(config, name) == getattr(tiny_settings, name) for name in SETTING_NAMES)


@pytest.mark.django_db
def test_the_compare_page_lists_every_setting(client, student, tiny_settings):
    a = job_submit(user=student, job_settings=tiny_settings)
    b = job_submit(user=student, job_settings=replace(tiny_settings, seed=7))
    client.force_login(student)
    page = client.get(reverse("mlworker:compare") + f"?a={a.pk}&b={b.pk}").content.decode()
    for name in SETTING_NAMES:
        assert f'<th scope="row">{name}</th>' in page
    assert '<tr class="differs"><th scope="row">seed</th><td>42</td><td>7</td></tr>' in page
