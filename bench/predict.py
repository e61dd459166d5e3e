"""Prediction benchmarks, ratios against baselines measured in the same run.

    .venv/bin/python bench/predict.py [--samples 30]

1. Latency of `learn.predict` on one image: a warm learner (kept in memory, as Journey's worker
   keeps it) against loading the exported model for every request (p50, p95, ratio).
2. Journey's warm path without the broker (the task body: claim the row, read the image from
   storage, the cached learner, predict, write the result) against plain `learn.predict` on the
   same image: what Journey adds at p50.
3. The whole round trip through a real worker and the embedded broker (submit -> succeeded).
4. Memory of a worker process holding its model cache full (JOURNEY_PREDICT_CACHE_MODELS models).
"""

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jobs  # noqa: E402 - sets up Django on the bench database
from django.conf import settings  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.db import transaction  # noqa: E402

from mlworker import tasks  # noqa: E402
from mlworker.datasets import sample_images  # noqa: E402
from mlworker.models import Prediction, PredictionState, TrainingJob  # noqa: E402
from mlworker.predicting import load, predict  # noqa: E402
from mlworker.services import Upload, prediction_submit  # noqa: E402
from mlworker.services.predictions import local_model_path  # noqa: E402
from tests.support import wait_for  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ms(values):
    return f"p50 {jobs.percentile(values, 0.5) * 1000:.1f} ms, p95 {jobs.percentile(values, 0.95) * 1000:.1f} ms"


def main(samples):
    user, worker = jobs.setup()
    try:
        _, job = jobs.run_job(user, jobs.DEFAULT)
        local = local_model_path(job)
        _, image = sample_images("silhouettes-catdog", n=1)[0]
        png = io.BytesIO()
        image.save(png, format="PNG")

        warm_learn = load(local)
        predict(warm_learn, image)
        warm = [predict(warm_learn, image).seconds for _ in range(samples)]
        cold = []
        for _ in range(max(5, samples // 3)):
            t0 = time.perf_counter()
            predict(load(local), image)
            cold.append(time.perf_counter() - t0)
        print(f"plain learn.predict, warm learner: {ms(warm)}")
        print(f"load_learner + predict per request: {ms(cold)}")
        print(f"ratio cold/warm at p50: {statistics.median(cold) / statistics.median(warm):.1f}x")

        # The task body in this process, the cache warmed first: no broker in the measurement.
        path = []
        for i in range(samples + 1):
            # One transaction: the worker never sees the row before this process has predicted it.
            with transaction.atomic():
                (p,), _ = prediction_submit(user=user, job=job, uploads=[Upload("bench.png", png.getvalue())])
                t0 = time.perf_counter()
                tasks.predict.run(p.pk)
                if i:
                    path.append(time.perf_counter() - t0)
            assert Prediction.objects.get(pk=p.pk).state == PredictionState.SUCCEEDED
        added = statistics.median(path) - statistics.median(warm)
        print(f"Journey's warm task body: {ms(path)}; adds {added * 1000:.1f} ms at p50 over plain learn.predict")

        trips = []
        for _ in range(samples):
            t0 = time.perf_counter()
            (p,), _ = prediction_submit(user=user, job=job, uploads=[Upload("bench.png", png.getvalue())])
            done = Prediction.objects.filter(pk=p.pk, state__in=[PredictionState.SUCCEEDED, PredictionState.FAILED])
            wait_for(done.exists, timeout=60, interval=0.005, what="prediction")
            trips.append(time.perf_counter() - t0)
        broker = settings.CELERY_BROKER_URL.split("://")[0]
        print(f"round trip through the worker ({broker}): {ms(trips)}")

        # In a fresh process, so that nothing else this script did is in the figure.
        n = settings.JOURNEY_PREDICT_CACHE_MODELS
        code = (
            "import re, fastai.vision.all\n"
            "from mlworker.predicting import LearnerCache\n"
            "rss = lambda: int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024\n"
            f"before = rss(); c = LearnerCache(max_models={n}, max_bytes=2**40)\n"
            f"for i in range({n}): c.get(f'copy-{{i}}', {str(local)!r})\n"
            "print(f'{c.bytes / 2**20:.1f} {rss() - before:.0f} {rss():.0f}')\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=jobs.REPO)
        weights, grew, total = out.stdout.split()
        print(f"a fresh worker-like process with fastai imported: filling its cache with {n} models ({weights} MB "
              f"of weights) adds {grew} MB resident, {total} MB in all")  # fmt: skip
        assert TrainingJob.objects.filter(pk=job.pk).exists() and default_storage.exists(job.model_file)
    finally:
        worker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=30)
    main(parser.parse_args().samples)
