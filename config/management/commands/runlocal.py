"""Run the whole site on one machine: web server, a gpu-queue worker (training), a predict-queue
worker (so that predictions answer while a training runs), an uploads-queue worker (checks of
students' zips) and a cpu-queue worker with beat.

A process that exits is started again after a pause that grows with each restart; one that keeps
exiting (MAX_RESTARTS within RESTART_WINDOW seconds) stops the site with a line saying which.
Ctrl-C (or SIGTERM) stops every process it started, children included.
"""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandError

# Seconds to wait before the first, second, ... restart of a process within the window: a crash
# loop (a wrong setting, a broken broker) must not spin, and its lines must stay readable.
RESTART_DELAYS = (1, 2, 5, 10, 30)
RESTART_WINDOW = 600
MAX_RESTARTS = 5
POLL_SECONDS = 0.5


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
        procs: dict[str, subprocess.Popen] = {}
        restarts: dict[str, list[float]] = {name: [] for name in commands}  # when each was restarted
        due: dict[str, float] = {}  # exited, to be started again at this time
        stopping = False
        broken = None

        def stop(*_):
            nonlocal stopping
            stopping = True

        def start(name):
            # Own process group each, so that stopping reaches pool children and training runners.
            procs[name] = subprocess.Popen(commands[name], start_new_session=True, env=os.environ.copy())
            self.stdout.write(f"started {name} (pid {procs[name].pid})")

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        for name in commands:
            start(name)
        self.stdout.write(f"Journey is at http://{addr}/  (Ctrl-C stops everything)")
        try:
            while not stopping:
                now = time.monotonic()
                for name, p in procs.items():
                    if name in due or p.poll() is None:
                        continue
                    _signal_group(p, signal.SIGTERM)  # what is left of it: pool children, a training runner
                    restarts[name] = recent = [t for t in restarts[name] if now - t < RESTART_WINDOW]
                    if len(recent) >= MAX_RESTARTS:
                        broken = f"{name} exited with {p.returncode} {len(recent) + 1} times in {RESTART_WINDOW} s"
                        self.stderr.write(f"{broken}; stopping the rest")
                        stopping = True
                        break
                    delay = RESTART_DELAYS[min(len(recent), len(RESTART_DELAYS) - 1)]
                    self.stderr.write(f"{name} exited with {p.returncode}; starting it again in {delay} s")
                    due[name] = now + delay
                for name, at in list(due.items()):
                    if not stopping and now >= at:
                        _signal_group(procs[name], signal.SIGKILL)
                        del due[name]
                        restarts[name].append(now)
                        start(name)
                time.sleep(POLL_SECONDS)
        finally:
            self._stop_all(procs)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if broken:
            raise CommandError(f"{broken}: see its lines above")

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


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
