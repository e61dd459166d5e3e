"""Shared test set-up: users of every kind, two classes, a blocked network, and a real Celery worker."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

# Fixtures every test package uses, defined once (tests/fixtures/) and offered here to all.
from tests.fixtures.files import stored_files  # noqa: E402, F401
from tests.fixtures.objectstore import object_store, s3_storage  # noqa: E402, F401
from tests.fixtures.quizzes import bank, content, eager_celery, fake_grader, mini_bank  # noqa: E402, F401
from tests.support import REPO, WorkerProcess, database_url_for_workers, use_broker

# ---------------------------------------------------------------- network


_real_connect = socket.socket.connect


def _loopback_only(sock, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
        if not ok:
            raise OSError(f"tests may not use the network (tried {host})")
    return _real_connect(sock, address)


@pytest.fixture(autouse=True)
def _block_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


# ---------------------------------------------------------------- users


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Every user fixture hashes a password; the production hash costs ~0.5 s here, and a test module
    # that makes seven users per test spent most of its time hashing. Nothing here tests the hash itself.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(django_user_model):
    def make(username, *, role="student", password="pw-for-tests-1"):
        from django.contrib.auth.models import Group

        user = django_user_model.objects.create_user(username=username, password=password)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def student(make_user):
    return make_user("student")


@pytest.fixture
def student2(make_user):
    return make_user("student2")


@pytest.fixture
def instructor(make_user):
    return make_user("teacher", role="instructor")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider", role="none")


# ---------------------------------------------------------------- classes
# Made through the services, as an instructor and their students would: the instructor's class with
# both students, and another instructor's class with a student of its own.


@pytest.fixture
def other_instructor(make_user):
    return make_user("teacher2", role="instructor")


@pytest.fixture
def other_student(make_user):
    return make_user("student3")


@pytest.fixture
def classroom(instructor, student, student2):
    from accounts.services import classroom_create, classroom_join

    c = classroom_create(by=instructor, name="Monday group")
    classroom_join(user=student, code=c.code)
    classroom_join(user=student2, code=c.code)
    return c


@pytest.fixture
def other_classroom(other_instructor, other_student):
    from accounts.services import classroom_create, classroom_join

    c = classroom_create(by=other_instructor, name="Tuesday group")
    classroom_join(user=other_student, code=c.code)
    return c


# ---------------------------------------------------------------- files


@pytest.fixture(scope="session")
def shared_media(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _media_root(settings, shared_media):
    settings.MEDIA_ROOT = shared_media


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("file-cache")


@pytest.fixture(autouse=True)
def _file_cache_dir(settings, shared_cache):
    # What a test's process fetches from storage (a prediction answered in-process) is cached here,
    # not in the repository's var/.
    settings.JOURNEY_CACHE_DIR = shared_cache


# ---------------------------------------------------------------- broker and worker


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory):
    """Redis (or whatever CELERY_BROKER_URL names) when set, else a fresh embedded SQLite broker."""
    url = os.environ.get("CELERY_BROKER_URL") or f"sqla+sqlite:///{tmp_path_factory.mktemp('broker')}/broker.sqlite3"
    use_broker(url)
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        for queue in ("gpu", "cpu", "predict", "uploads"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # a queue that never existed has nothing to purge
                pass
    return url


@pytest.fixture(scope="session")
def worker_env(django_db_setup, django_db_blocker, broker_url, shared_media, shared_cache, tmp_path_factory):
    with django_db_blocker.unblock():
        db_url = database_url_for_workers()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=broker_url,
        MEDIA_ROOT=str(shared_media),
        JOURNEY_DATA_DIR=str(REPO / "var" / "test-data"),
        JOURNEY_WORK_DIR=str(tmp_path_factory.mktemp("work")),
        JOURNEY_CACHE_DIR=str(shared_cache),
        TORCH_HOME=str(tmp_path_factory.mktemp("torch-home")),  # no torchvision weights: nothing downloads
        JOURNEY_HEARTBEAT_SECONDS="1",
        JOURNEY_HEARTBEAT_TIMEOUT="5",
        # Transactional tests empty the tables between tests: a worker's presence row comes back within a second.
        JOURNEY_WORKER_BEAT_SECONDS="1",
        JOURNEY_HOUSEKEEPING_SECONDS="2",
        JOURNEY_REDISPATCH_AFTER="600",
        # Images that the tensor cache cannot hold are read by a forked DataLoader worker, as on a GPU worker.
        JOURNEY_LOADER_WORKERS="1",
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    return env


@pytest.fixture(scope="session")
def celery_worker(worker_env, tmp_path_factory):
    """One worker for every queue (gpu, cpu, predict, uploads), shared by the tests that need one. Tests using
    it must be transactional (`django_db(transaction=True)`) so the worker sees their rows."""
    worker = WorkerProcess(worker_env, tmp_path_factory.mktemp("logs") / "worker.log")
    yield worker
    worker.stop()


@pytest.fixture
def tiny_settings():
    from mlworker.jobsettings import JobSettings

    return JobSettings(
        dataset="silhouettes-catdog", arch="efficientnet_lite0", pretrained=True, epochs=1, image_size=64,
        valid_pct=0.25, seed=42, batch_size=8, per_class=12,
    )  # fmt: skip
