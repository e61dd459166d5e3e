"""Start-up configuration: clear one-line errors, and a production profile that refuses laptop defaults."""

import os
import subprocess
import sys

import pytest

from tests.support import REPO

PRODUCTION = {
    "JOURNEY_ENV": "production",
    "SECRET_KEY": "k" * 20 + "-a-long-random-production-secret-for-tests-" + "z" * 10,
    "ALLOWED_HOSTS": "journey.example.org",
    "DATABASE_URL": "postgres://journey@db.example.org:5432/journey",
    "CELERY_BROKER_URL": "redis://redis.example.org:6379/0",
}


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "JOURNEY_ENV")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("DATABASE_URL", "mysql://root@db/journey", "DATABASE_URL is malformed"),
        ("DATABASE_URL", "postgres://", "DATABASE_URL is malformed"),
        ("DATABASE_URL", "not a url", "DATABASE_URL is malformed"),
        ("CELERY_BROKER_URL", "redis://localhost:port/0", "CELERY_BROKER_URL is malformed"),
        ("CELERY_BROKER_URL", "kafka://localhost", "CELERY_BROKER_URL is malformed"),
        ("JOURNEY_MAX_EPOCHS", "ten", "JOURNEY_MAX_EPOCHS must be a whole number"),
    ],
)
def test_a_malformed_setting_stops_start_up_with_one_line_naming_it(name, value, words):
    result = manage("check", **{name: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_the_celery_worker_also_stops_with_one_line():
    env = {**os.environ, "DATABASE_URL": "mysql://root@db/journey"}
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "worker"], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Journey cannot start: DATABASE_URL is malformed: scheme 'mysql' is not one of "
        "postgres://USER@HOST:PORT/NAME or sqlite:///PATH"
    ]


@pytest.mark.parametrize(
    "missing, error",
    [("SECRET_KEY", "SECRET_KEY"), ("ALLOWED_HOSTS", "journey.E002"), ("DATABASE_URL", "journey.E003"),
     ("CELERY_BROKER_URL", "journey.E004")],
)  # fmt: skip
def test_production_refuses_to_start_without_its_settings(missing, error):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", **env)
    assert result.returncode != 0
    assert error in result.stderr


def test_production_passes_the_deploy_checklist():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_embedded_defaults_need_no_setting_at_all():
    result = manage("check")
    assert result.returncode == 0, result.stderr


def test_the_web_process_loads_no_numpy_torch_or_fastai():
    """Every URL's view imported, as a web server does at its first request: the ML libraries belong to
    the workers (a web process that imports them carries hundreds of MB and slower requests)."""
    code = (
        "import sys, django; django.setup(); import config.urls; "
        # The job form checks which architectures' weights are here on every page (mlworker.assets).
        "from mlworker.forms import JobForm; JobForm(); "
        "print(sorted(m for m in ('numpy', 'torch', 'torchvision', 'fastai', 'pandas') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "[]"


def _env_example_key():
    line = next(x for x in (REPO / ".env.example").read_text().splitlines() if x.startswith("SECRET_KEY="))
    return line.split("=", 1)[1]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(_env_example_key(), id="the-env-example-placeholder"),
        pytest.param("django-insecure-" + "x7#kq!2vz&m9p$w4r8t@b6n1c3e5g0h" * 2, id="django-insecure"),
        pytest.param("please-change-me-" + "a1b2c3d4e5f6g7h8i9j0" * 3, id="change-me"),
        pytest.param("aB3$xY9!qW2@eR7#tZ5%uI1^oP8&", id="short"),
        pytest.param("abab" * 20, id="few-distinct-characters"),
        pytest.param("journey-development-only-key", id="the-laptop-key"),
    ],
)
def test_production_refuses_a_placeholder_or_weak_secret_key(key, settings):
    from config.checks import production_settings_check

    settings.PRODUCTION = True
    settings.SECRET_KEY = key
    errors = production_settings_check(None)
    assert [e.id for e in errors if e.id == "journey.E001"] == ["journey.E001"], errors


def test_production_accepts_a_long_random_secret_key(settings):
    import secrets

    from config.checks import production_settings_check

    settings.PRODUCTION = True
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    assert "journey.E001" not in [e.id for e in production_settings_check(None)]


def test_production_start_up_refuses_the_env_example_key():
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": _env_example_key()})
    assert result.returncode != 0 and "journey.E001" in result.stderr


def test_a_key_prefix_keeps_two_sites_apart_on_one_redis():
    code = "from django.conf import settings; print(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get('global_keyprefix'))"
    env = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "JOURNEY_BROKER_KEY_PREFIX": "site-b:"}
    assert manage("shell", "--no-imports", "-c", code, **env).stdout.strip() == "site-b:"
    # The embedded broker has no keys to prefix: the setting leaves it alone.
    embedded = manage("shell", "--no-imports", "-c", code, JOURNEY_BROKER_KEY_PREFIX="site-b:")
    assert embedded.stdout.strip() == "None"
