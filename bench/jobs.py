"""Benchmarks of the training-job path, each a ratio against a baseline measured in the same run.

    .venv/bin/python bench/jobs.py overhead [--repeats 3]      # Journey job vs plain script
    .venv/bin/python bench/jobs.py dispatch [--samples 20]     # submit -> running, warm worker
    .venv/bin/python bench/jobs.py quality                     # pretrained vs from scratch

It uses its own SQLite database and media under var/bench/ and starts its own worker; with
CELERY_BROKER_URL set (Redis) it uses that broker, else the embedded SQLite broker.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "var" / "bench"
sys.path.insert(0, str(REPO))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["JOURNEY_VAR_DIR"] = str(BENCH)
os.environ.pop("DATABASE_URL", None)
os.environ.setdefault("JOURNEY_DATA_DIR", str(REPO / "var" / "data"))
os.environ["JOURNEY_MAX_ACTIVE_JOBS"] = "1000"
BENCH.mkdir(parents=True, exist_ok=True)

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from mlworker.jobsettings import JobSettings  # noqa: E402
from mlworker.models import JobState, TrainingJob  # noqa: E402
from mlworker.services import job_cancel, job_submit  # noqa: E402
from tests.support import WorkerProcess, wait_for  # noqa: E402

DEFAULT = JobSettings(
    dataset="silhouettes-catdog", arch="efficientnet_lite0", pretrained=True, epochs=1, image_size=64,
    valid_pct=0.2, seed=42, batch_size=32,
)  # fmt: skip


def percentile(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def setup():
    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worker = WorkerProcess(env, BENCH / "worker.log", name="bench")
    return user, worker


def run_job(user, job_settings, timeout=1800):
    t0 = time.perf_counter()
    job = job_submit(user=user, job_settings=job_settings)
    wait_for(
        lambda: TrainingJob.objects.filter(pk=job.pk).exclude(state__in=[JobState.QUEUED, JobState.RUNNING]).exists(),
        timeout=timeout, interval=0.05, what=f"job {job.pk}",
    )  # fmt: skip
    wall = time.perf_counter() - t0
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    return wall, job


# Same seed, split and weights train the same model: the two error rates agree to an image or two of
# the 400 validation images (slack for CPU kernels that do not add up in the same order every time).
# A larger gap means the two runs did not train, or were not read as, the same model, and the ratio
# compares two different things.
SAME_MODEL_TOLERANCE = 0.01


def plain(job_settings):
    s = job_settings
    cmd = [sys.executable, str(REPO / "bench" / "plain_chapter.py"), "--dataset", s.dataset, "--arch", s.arch,
           "--image-size", str(s.image_size), "--batch-size", str(s.batch_size), "--epochs", str(s.epochs),
           "--valid-pct", str(s.valid_pct), "--seed", str(s.seed),
           "--data-root", os.environ["JOURNEY_DATA_DIR"]]  # fmt: skip
    if s.per_class is not None:
        cmd += ["--per-class", str(s.per_class)]
    if not s.pretrained:
        cmd.append("--no-pretrained")
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return time.perf_counter() - t0, json.loads(out.strip().splitlines()[-1])


def overhead(repeats):
    user, worker = setup()
    try:
        run_job(user, DEFAULT)  # warm: prepared images, page cache
        rows, differ = [], []
        for i in range(repeats):
            p_wall, p = plain(DEFAULT)
            j_wall, job = run_job(user, DEFAULT)
            rows.append((j_wall, p_wall))
            print(f"run {i + 1}: journey {j_wall:.1f} s (error {job.error_rate:.4f}), "
                  f"plain {p_wall:.1f} s (error {p['error_rate']:.4f}), ratio {j_wall / p_wall:.3f}")  # fmt: skip
            if abs(job.error_rate - p["error_rate"]) > SAME_MODEL_TOLERANCE:
                differ.append(i + 1)
        ratios = [j / p for j, p in rows]
        print(f"median ratio journey/plain: {statistics.median(ratios):.3f} "
              f"(journey median {statistics.median(j for j, _ in rows):.1f} s, "
              f"plain median {statistics.median(p for _, p in rows):.1f} s, {repeats} pairs)")  # fmt: skip
    finally:
        worker.stop()
    if differ:
        sys.exit(f"FAILED: in run(s) {differ} the Journey job and the plain script ended more than "
                 f"{SAME_MODEL_TOLERANCE} apart in error rate: they did not train the same model, so the ratio "
                 "means nothing.")  # fmt: skip


def dispatch(samples):
    from config.celery_app import app

    user, worker = setup()
    tiny = replace(DEFAULT, per_class=20)
    latencies = []
    try:
        for _ in range(samples):
            t0 = time.perf_counter()
            job_id = job_submit(user=user, job_settings=tiny).pk
            started = TrainingJob.objects.filter(pk=job_id, state__in=[JobState.RUNNING, JobState.SUCCEEDED])
            wait_for(started.exists, timeout=120, interval=0.005, what="running")
            latencies.append(time.perf_counter() - t0)
            job_cancel(job=TrainingJob.objects.get(pk=job_id), by=user)
            live = TrainingJob.objects.filter(pk=job_id, state__in=[JobState.QUEUED, JobState.RUNNING])
            wait_for(lambda q=live: not q.exists(), timeout=120, interval=0.05, what="stop")
            # Let the stopped job's process exit and the worker go idle: this measures a warm,
            # idle worker, not one still tearing down the previous job.
            time.sleep(3)
        ms = [x * 1000 for x in latencies]
        print(f"broker {app.conf.broker_url.split('://')[0]}: submit -> running, {samples} samples: "
              f"p50 {percentile(ms, 0.5):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms")  # fmt: skip
    finally:
        worker.stop()


def quality():
    user, worker = setup()
    try:
        for pretrained in (True, False):
            s = replace(DEFAULT, pretrained=pretrained)
            wall, job = run_job(user, s)
            print(f"pretrained={pretrained}: error rate {job.error_rate:.4f}, job wall {wall:.1f} s "
                  f"(training process {job.seconds:.1f} s) on {job.device}")  # fmt: skip
    finally:
        worker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["overhead", "dispatch", "quality"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=20)
    a = parser.parse_args()
    {"overhead": lambda: overhead(a.repeats), "dispatch": lambda: dispatch(a.samples), "quality": quality}[a.which]()
