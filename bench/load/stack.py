"""The production-like stack of the load test, on this machine: a fresh database, gunicorn with its
workers, and a Celery worker per queue (gpu, predict, uploads, cpu) with beat, as docker-compose.yml
runs them, against PostgreSQL and Redis (or the embedded SQLite database and broker).

Nothing here imports Django: the runner decides the database before Django is set up.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]


@dataclass
class StackConfig:
    database_url: str  # the database the stack uses ("" for a fresh SQLite file in the run folder)
    broker_url: str  # "" for a fresh embedded broker file in the run folder
    run_dir: Path
    web_workers: int = 3  # docker-compose.yml's gunicorn
    web_threads: int = 1
    cpu_concurrency: int = 2  # docker-compose.yml's worker-cpu
    # Training runs on the CPU here, beside everything else: at a lower priority, so that the
    # students' requests come first (a GPU machine runs it on its own card).
    train_nice: int = 10
    extra_env: dict = field(default_factory=dict)


def fresh_postgres(url: str, name: str) -> str:
    """Drop and create database `name` on the server of `url`; the URL of the new database."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """Start with `start()`, stop with `stop()` (or use it as a context manager)."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.run_dir = config.run_dir.resolve()  # the training runner changes directory
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        # Every key this stack puts in Redis carries it: a test suite's worker on the same Redis
        # database never takes the load test's messages, nor the other way round.
        self.key_prefix = f"load-{secrets.token_hex(4)}:"
        self.env = self._env()

    # ---------------------------------------------------------------- environment

    def _env(self) -> dict:
        c = self.config
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
        database_url = c.database_url or f"sqlite:///{(self.run_dir / 'journey.sqlite3').resolve()}"
        broker_url = c.broker_url or f"sqla+sqlite:///{(self.run_dir / 'broker.sqlite3').resolve()}"
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=database_url,
            CELERY_BROKER_URL=broker_url,
            JOURNEY_BROKER_KEY_PREFIX=self.key_prefix,
            JOURNEY_VAR_DIR=str(self.run_dir),
            MEDIA_ROOT=str(self.run_dir / "media"),
            JOURNEY_WORK_DIR=str(self.run_dir / "work"),
            # The prepared silhouettes are the same for every run: kept between runs.
            JOURNEY_DATA_DIR=str(REPO / "var" / "load-data"),
            TORCH_HOME=str(self.run_dir / "torch-home"),  # no torchvision weights: nothing downloads
            HF_HUB_OFFLINE="1",
            DEBUG="0",  # DEBUG keeps every query in memory: not what a real server does
            LOG_LEVEL="WARNING",
            JOURNEY_CELERY_LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        env.update(c.extra_env)
        return env

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def broker_url(self) -> str:
        return self.env["CELERY_BROKER_URL"]

    # ---------------------------------------------------------------- processes

    def manage(self, *args: str, timeout: int = 300) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def commands(self) -> dict[str, list[str]]:
        c = self.config
        py = sys.executable
        celery = [py, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--without-gossip",
                  "--without-mingle"]  # fmt: skip
        web = [py, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
               "--workers", str(c.web_workers), "--access-logfile", str(self.run_dir / "access.log"),
               "--graceful-timeout", "10"]  # fmt: skip
        if c.web_threads > 1:
            web += ["--threads", str(c.web_threads)]
        nice = ["nice", "-n", str(c.train_nice)] if c.train_nice else []
        return {
            "web": web,
            "worker-gpu": nice + celery + ["-Q", "gpu", "-c", "1", "-n", "gpu@%h"],
            "worker-predict": celery + ["-Q", "predict", "-c", "1", "-n", "predict@%h"],
            "worker-uploads": celery + ["-Q", "uploads", "-c", "1", "-n", "uploads@%h"],
            "worker-cpu": celery + ["-Q", "cpu", "-c", str(c.cpu_concurrency), "-n", "cpu@%h"],
            "beat": [py, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
                     "-s", str(self.run_dir / "celerybeat-schedule")],
        }  # fmt: skip

    def start(self, timeout: float = 180) -> None:
        for name, cmd in self.commands().items():
            log = self.run_dir / f"{name}.log"
            self.logs[name] = log
            with open(log, "ab") as out:
                self.procs[name] = subprocess.Popen(
                    cmd, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(self.procs)
        while waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f} s: {', '.join(sorted(waiting))}; see {self.run_dir}")
            for name in sorted(waiting):
                p = self.procs[name]
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode}:\n{self.logs[name].read_text()[-3000:]}")
                if self._is_ready(name):
                    waiting.discard(name)
            time.sleep(0.3)

    def _is_ready(self, name: str) -> bool:
        if name == "web":
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False
        text = self.logs[name].read_bytes()
        if name == "beat":
            return b"beat: Starting" in text
        return b" ready." in text

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.procs.items()}

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs.values():
            _signal_group(p, signal.SIGKILL)
            p.wait()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
