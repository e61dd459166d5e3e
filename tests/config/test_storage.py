"""The file-storage settings: one setting switches to the object store, the checks ask for what it
needs, and `manage.py storage_init` makes the bucket and refuses one that anyone can read."""

import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from tests.support import REPO

S3 = {
    "JOURNEY_STORAGE": "s3",
    "AWS_S3_ENDPOINT_URL": "http://store.internal:8333",
    "AWS_ACCESS_KEY_ID": "journey",
    "AWS_SECRET_ACCESS_KEY": "a-secret-for-tests",
}


def settings_in_a_new_process(**env) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'backend': s.STORAGES['default']['BACKEND'], 'img': s.JOURNEY_CSP['img-src'], "
        "'bucket': s.AWS_STORAGE_BUCKET_NAME, 'expire': s.AWS_QUERYSTRING_EXPIRE}))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JOURNEY_STORAGE", "AWS_", "JOURNEY_SIGNED"))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_local_files_are_the_default_and_one_setting_switches_to_the_object_store():
    assert settings_in_a_new_process()["backend"] == "django.core.files.storage.FileSystemStorage"
    s3 = settings_in_a_new_process(**S3)
    assert s3["backend"] == "config.storage.PrivateS3Storage"
    assert s3["bucket"] == "journey" and s3["expire"] == 300
    assert s3["img"] == ["'self'", "data:"]  # the views send the files themselves: nothing else to allow


def test_signed_links_let_pages_show_images_from_the_stores_public_host_only():
    found = settings_in_a_new_process(
        **S3, JOURNEY_SIGNED_LINKS="1", AWS_S3_PUBLIC_ENDPOINT_URL="https://files.school.example:9000/"
    )
    assert found["img"] == ["'self'", "data:", "https://files.school.example:9000"]


@pytest.mark.parametrize(
    "settings_changed, error",
    [
        ({"JOURNEY_STORAGE": "s3", "AWS_ACCESS_KEY_ID": ""}, "journey.E005"),
        ({"JOURNEY_STORAGE": "s3", "AWS_SECRET_ACCESS_KEY": ""}, "journey.E005"),
        ({"JOURNEY_STORAGE": "local", "JOURNEY_SIGNED_LINKS": True}, "journey.E006"),
    ],
)
def test_the_checks_say_what_the_storage_settings_lack(settings, settings_changed, error):
    from config.checks import storage_settings_check

    settings.AWS_ACCESS_KEY_ID, settings.AWS_SECRET_ACCESS_KEY = "journey", "a-secret"
    for name, value in settings_changed.items():
        setattr(settings, name, value)
    assert [e.id for e in storage_settings_check(None)] == [error]


def test_the_object_store_with_its_keys_passes_the_checks(settings):
    from config.checks import storage_settings_check

    for name, value in S3.items():
        setattr(settings, name, value)
    settings.JOURNEY_SIGNED_LINKS = True
    assert storage_settings_check(None) == []


def test_storage_init_with_local_files_makes_the_media_folder(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    out = io.StringIO()
    call_command("storage_init", stdout=out)
    assert settings.MEDIA_ROOT.is_dir() and "local disk" in out.getvalue()


def test_storage_init_finds_the_bucket_again_and_proves_it_private(s3_storage):
    out = io.StringIO()
    call_command("storage_init", stdout=out)  # the session's fixture ran it first, and made the bucket
    said = out.getvalue()
    assert "already there" in said and "write, read and delete work" in said and "refused (HTTP 403)" in said
    assert s3_storage.client().list_objects_v2(Bucket=s3_storage.bucket, Prefix="journey-probe/")["KeyCount"] == 0


def test_storage_init_refuses_a_bucket_that_anyone_can_read(s3_storage, settings):
    client = s3_storage.client()
    client.create_bucket(Bucket="journey-public")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                       "Resource": ["arn:aws:s3:::journey-public/*"]}],
    }  # fmt: skip
    client.put_bucket_policy(Bucket="journey-public", Policy=json.dumps(policy))
    settings.AWS_STORAGE_BUCKET_NAME = "journey-public"
    settings.STORAGES = dict(settings.STORAGES)  # a new storage object, on that bucket
    with pytest.raises(CommandError, match="answers readers without keys"):
        call_command("storage_init", stdout=io.StringIO())


def test_storage_init_says_which_store_does_not_answer(s3_storage, settings):
    settings.AWS_SECRET_ACCESS_KEY = "not-the-secret"
    settings.STORAGES = dict(settings.STORAGES)
    with pytest.raises(CommandError, match="does not work with these settings"):
        call_command("storage_init", stdout=io.StringIO())


def test_production_refuses_the_example_store_secret(settings):
    from config.checks import production_settings_check

    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    settings.PRODUCTION, settings.JOURNEY_STORAGE = True, "s3"
    settings.AWS_SECRET_ACCESS_KEY = example["AWS_SECRET_ACCESS_KEY"]
    assert "journey.E007" in [e.id for e in production_settings_check(None)]
    settings.AWS_SECRET_ACCESS_KEY = "q8Vt2x-JmR0aLw9sPzK4nB7yHc1fDe6u"
    assert "journey.E007" not in [e.id for e in production_settings_check(None)]
