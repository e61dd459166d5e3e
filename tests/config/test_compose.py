"""docker-compose.yml cannot run here, so prove it is well formed and points at what exists."""

import re
from pathlib import Path

import pytest
import yaml

from tests.support import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_it_has_every_production_service():
    assert {
        "postgres",
        "redis",
        "web",
        "worker-gpu0",
        "worker-predict0",
        "worker-uploads",
        "worker-cpu",
        "beat",
    } <= set(SERVICES)


def test_every_named_volume_is_declared():
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_web_and_workers_share_media_and_model_caches():
    for name in ("web", "worker-gpu0", "worker-predict0", "worker-uploads", "worker-cpu"):
        volumes = SERVICES[name]["volumes"]
        assert "media:/var/lib/journey/media" in volumes and "model-cache:/cache" in volumes


def test_the_gpu_worker_owns_one_gpu_with_concurrency_one():
    gpu = SERVICES["worker-gpu0"]
    command = gpu["command"]
    assert command[command.index("-Q") + 1] == "gpu" and command[command.index("-c") + 1] == "1"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert devices["driver"] == "nvidia" and devices["capabilities"] == ["gpu"]
    assert gpu["environment"]["CUDA_VISIBLE_DEVICES"] == devices["device_ids"][0]


def test_predictions_have_their_own_worker_on_the_same_gpu():
    predict, gpu = SERVICES["worker-predict0"], SERVICES["worker-gpu0"]
    command = predict["command"]
    assert command[command.index("-Q") + 1] == "predict" and command[command.index("-c") + 1] == "1"
    assert predict["deploy"] == gpu["deploy"]
    assert predict["environment"]["CUDA_VISIBLE_DEVICES"] == gpu["environment"]["CUDA_VISIBLE_DEVICES"]
    assert "predict0@" in command[command.index("-n") + 1]
    assert "predict0@" in predict["healthcheck"]["test"][-1]


def test_every_queue_a_task_is_routed_to_has_a_worker():
    from django.conf import settings

    consumed = set()
    for service in SERVICES.values():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "config", "worker"]:
            consumed |= set(command[command.index("-Q") + 1].split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed <= consumed and settings.CELERY_TASK_ROUTES["mlworker.tasks.predict"]["queue"] == "predict"


def test_the_cpu_worker_takes_the_cpu_queue():
    command = SERVICES["worker-cpu"]["command"]
    assert command[command.index("-Q") + 1] == "cpu"


def test_upload_checks_have_their_own_worker_so_grading_and_housekeeping_never_wait_behind_them():
    from django.conf import settings

    command = SERVICES["worker-uploads"]["command"]
    assert command[command.index("-Q") + 1] == "uploads"
    assert (
        "uploads@" in command[command.index("-n") + 1]
        and "uploads@" in SERVICES["worker-uploads"]["healthcheck"]["test"][-1]
    )
    assert settings.CELERY_TASK_ROUTES["mlworker.tasks.dataset_check"]["queue"] == "uploads"
    assert SERVICES["worker-uploads"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_services_wait_for_healthy_dependencies():
    for name in ("web", "worker-gpu0", "worker-predict0", "worker-uploads", "worker-cpu", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "web"):
        assert SERVICES[name]["healthcheck"]["test"]


def test_web_healthcheck_uses_the_healthz_url():
    from django.urls import resolve

    url = SERVICES["web"]["healthcheck"]["test"][-1]
    assert resolve(re.sub(r"^https?://[^/]+", "", url)).url_name == "healthz"


@pytest.mark.parametrize("name", ["web", "migrate"])
def test_commands_name_modules_and_manage_commands_that_exist(name):
    from django.core.management import get_commands

    command = SERVICES[name]["command"]
    text = " ".join(command)
    for module in re.findall(r"([\w.]+):application", text):
        assert (REPO / (module.replace(".", "/") + ".py")).exists()
    for managed in re.findall(r"manage\.py (\w+)", text):
        assert managed in get_commands()


def test_celery_commands_point_at_the_project_app():
    for name, service in SERVICES.items():
        command = service.get("command") or []
        if command[:1] == ["celery"]:
            assert command[1:3] == ["-A", "config"], name
    assert Path(REPO / "config" / "celery_app.py").exists()


def test_the_env_example_sets_what_production_requires():
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    for key in ("JOURNEY_ENV", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "POSTGRES_PASSWORD"):
        assert example.get(key), key
    assert example["DATABASE_URL"].startswith("postgres://") and "@postgres:" in example["DATABASE_URL"]
    assert example["CELERY_BROKER_URL"].startswith("redis://redis:")


def test_the_dockerfile_installs_the_pinned_requirements():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "-r requirements.txt" in dockerfile and "--no-deps -r requirements-nodeps.txt" in dockerfile


def _env_example():
    return dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )


def test_the_env_example_trusts_no_proxy_since_compose_publishes_gunicorn_itself():
    """The web port is gunicorn's, published to the world: an X-Forwarded-For header there is
    whatever the client wrote."""
    web = SERVICES["web"]
    assert web["command"][0] == "gunicorn" and web.get("ports")
    proxies = web.get("environment", {}).get(
        "JOURNEY_TRUSTED_PROXIES", _env_example().get("JOURNEY_TRUSTED_PROXIES", "0")
    )
    assert int(proxies) == 0


def test_a_forged_forwarded_for_does_not_change_the_counted_address_with_the_example_settings(
    client, settings, django_user_model
):
    from django.test import RequestFactory
    from django.urls import reverse

    from accounts.backends import client_ip

    settings.JOURNEY_TRUSTED_PROXIES = int(_env_example()["JOURNEY_TRUSTED_PROXIES"])
    forged = RequestFactory().get("/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.2")
    assert client_ip(forged) == "192.0.2.10"

    django_user_model.objects.create_user(username="victim", password="pw-for-tests-1")
    for n in range(5):  # a guesser rotating forged addresses is still one address
        client.post(
            reverse("login"), {"username": "victim", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        )
    response = client.post(reverse("login"), {"username": "victim", "password": "pw-for-tests-1"})
    assert response.status_code == 429
