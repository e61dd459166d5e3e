"""Remote control works on every broker Journey runs on, the embedded one included."""

import pytest

from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.worker


def test_inspect_ping_answers_from_workers_of_both_queues(worker_env, tmp_path):
    from config.celery_app import app

    gpu = WorkerProcess(worker_env, tmp_path / "gpu.log", queues="gpu", name="pinggpu")
    cpu = WorkerProcess(worker_env, tmp_path / "cpu.log", queues="cpu", name="pingcpu")
    try:

        def answered():
            replies = app.control.inspect(timeout=3).ping() or {}
            names = {name.split("@")[0] for name in replies}
            return names >= {"pinggpu", "pingcpu"} and replies

        replies = wait_for(answered, timeout=60, interval=0.5, what="ping replies")
        assert all(reply == {"ok": "pong"} for reply in replies.values())
        active = app.control.inspect(timeout=3, destination=[n for n in replies if n.startswith("pinggpu")])
        assert list(active.active_queues().values())[0][0]["name"] == "gpu"
    finally:
        gpu.stop()
        cpu.stop()
