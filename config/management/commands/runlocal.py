"""Run the whole site on one machine: web server, a gpu-queue worker (training), a predict-queue
worker (so that predictions answer while a training runs), an uploads-queue worker (checks of
students' zips) and a cpu-queue worker with beat.

Ctrl-C (or SIGTERM) stops every process it started, children included.
"""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


def process_commands(py: str, addr: str) -> dict[str, list[str]]:
    """The processes to start, by name: every queue has a worker, so nothing waits forever."""
    celery = [py, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO"]
    return {
        "web": [py, "manage.py", "runserver", addr, "--noreload"],
        "worker-gpu": celery + ["-Q", "gpu", "-c", "1", "-n", "gpu@%h"],
        # Its own process, so that a prediction answers while a training holds worker-gpu.
        "worker-predict": celery + ["-Q", "predict", "-c", "1", "-n", "predict@%h"],
        # Zip checks decode images for minutes at worst: never on the worker that grades and keeps house.
        "worker-uploads": celery + ["-Q", "uploads", "-c", "1", "-n", "uploads@%h"],
        "worker-cpu": celery + ["-Q", "cpu", "-c", "1", "-n", "cpu@%h", "-B"],
    }


class Command(BaseCommand):
    help = "Start the web server and Celery workers (gpu, predict, uploads, cpu + beat) in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr, **options):
        commands = process_commands(sys.executable, addr)
        procs = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, cmd in commands.items():
            # Own process group each, so that stopping reaches pool children and training runners.
            procs[name] = subprocess.Popen(cmd, start_new_session=True, env=os.environ.copy())
            self.stdout.write(f"started {name} (pid {procs[name].pid})")
        self.stdout.write(f"Journey is at http://{addr}/  (Ctrl-C stops everything)")
        try:
            while not stopping:
                for name, p in procs.items():
                    if p.poll() is not None:
                        self.stderr.write(f"{name} exited with {p.returncode}; stopping the rest")
                        stopping = True
                time.sleep(0.5)
        finally:
            self._stop_all(procs)

    def _stop_all(self, procs):
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in procs.values():
            try:
                os.killpg(p.pid, signal.SIGKILL)  # whatever is left of the group, stragglers too
            except ProcessLookupError:
                pass
        self.stdout.write("stopped web and workers")
