"""Helpers for tests that run real processes: a Celery worker, a broker switch, polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def use_broker(url: str) -> None:
    """Point this process's Celery app at another broker, dropping every pooled connection."""
    from kombu import pools

    from config.celery_app import app

    pools.reset()  # kombu keeps global connection and producer pools keyed by connection
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = app.conf.broker_write_url = app.conf.broker_read_url = url


def database_url_for_workers() -> str:
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    """A real `celery worker` subprocess against the test database and broker."""

    def __init__(
        self, env: dict, log_path: Path, *, queues="gpu,cpu,predict,uploads", beat=False, name="test", wait=True
    ):
        self.log_path = log_path
        cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1",
               "-n", f"{name}@%h", "--loglevel=INFO", "--without-gossip", "--without-mingle"]  # fmt: skip
        if beat:
            cmd += ["-B", "-s", str(log_path.with_suffix(".beat"))]
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        if wait:  # else the caller starts several at once and waits for each
            self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self):
        stop_process_group(self.proc)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


def stop_process_group(proc, timeout=20):
    """SIGTERM to the process's group, SIGKILL if it is still there after `timeout` seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(predicate, *, timeout=120, interval=0.25, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
