"""The load test of issue 19: a class takes a timed chapter test together while half of it launches
experiments, against the production-like stack on this machine. One command:

    .venv/bin/python bench/load/run.py --students 50 100 200 --duration 180 --publish

For each step (a number of students): a fresh database (PostgreSQL when DATABASE_URL names one: a
database `<its name>_load` beside it; else a fresh SQLite file), a class of that many students with
the chapter test open (bench/load/seed.py), the stack (bench/load/stack.py: gunicorn, the gpu /
predict / uploads / cpu workers, beat; Redis when CELERY_BROKER_URL names it), the instructor's
tiny model trained and shared with the class (what students ask predictions of), then locust
(bench/load/locustfile.py) headless on 127.0.0.1: the students sign in, the class starts the test
together, and the load runs for --duration seconds. Then the grades, predictions and experiments are
waited for (experiments still queued after --drain-jobs seconds are cancelled by the instructor,
as at the end of a class), and the nothing-lost checks (bench/load/checks.py) run. A step whose
checks fail makes the command exit 1.

Written to --out (default var/load/<time>/): results.json (every figure), summary.md (the tables),
latency.png (p95 per kind against students), and per step the request log, what the students were
told (record.json) and every process's log. --publish also copies the chart and the tables to
docs/benchmarks/ for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.load import report  # noqa: E402
from bench.load.stack import Stack, StackConfig, fresh_postgres  # noqa: E402

PUBLISHED = REPO / "docs" / "benchmarks"
# The smallest experiment the tests train (tests/conftest.py's tiny_settings): 24 silhouettes, 64 px.
TINY_EXPERIMENT = {
    "dataset": "silhouettes-catdog", "arch": "efficientnet_lite0", "pretrained": "on", "epochs": 1,
    "image_size": 64, "valid_pct": 0.25, "seed": 42, "batch_size": 8, "per_class": 12,
}  # fmt: skip
QUEUES = ("cpu", "gpu", "predict", "uploads")


@dataclass
class LoadParams:
    duration: float = 180.0  # seconds of the test phase
    spawn_rate: float = 1.0  # students arriving per second: a class comes in over a few minutes
    signin_timeout: float | None = None  # the test starts then even if some are not in (default: from N)
    think: tuple[float, float] = (2.0, 5.0)  # seconds between two saves
    read: tuple[float, float] = (5.0, 15.0)  # seconds on a section page
    experiment_share: float = 0.5
    predictions: int = 2  # per student who launches, on the class's model
    change_mind: float = 0.1  # chance, after each answer, of going back to change an earlier one
    grade_watch: float = 60.0  # seconds a student follows the grading of their test
    job_watch: float = 15.0
    prediction_watch: float = 30.0
    max_requests: int = 200_000
    cycles: int = 0  # tests each student takes (0: as many as the duration allows)
    class_model: bool = True  # the instructor trains one and shares it: what students ask predictions of
    drain_grades: float = 180.0
    drain_predictions: float = 120.0
    drain_jobs: float = 60.0  # then the instructor cancels what is still queued or running
    seed: int = 19


@dataclass
class RunConfig:
    steps: list[int]
    params: LoadParams
    out: Path
    database_url: str = ""  # the server to make fresh databases on ("" for SQLite)
    broker_url: str = ""  # "" for the embedded broker
    web_workers: int = 3
    web_threads: int = 1
    cpu_concurrency: int = 2
    train_nice: int = 10
    extra_env: dict = field(default_factory=dict)
    publish: bool = False  # also write the chart and the tables to docs/benchmarks/


# ---------------------------------------------------------------- a browser for the runner's own clicks


class Browser:
    """The instructor's own clicks around the load (training the class's model, cancelling at the end):
    through the site, as a person would, not the ORM."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw):
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def _csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def get(self, path: str) -> tuple[int, str, dict]:
        try:
            with self.opener.open(self.base + path, timeout=60) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace"), dict(e.headers)

    def post(self, path: str, fields: list[tuple[str, str]]) -> tuple[int, str, dict]:
        body = urllib.parse.urlencode([("csrfmiddlewaretoken", self._csrf()), *fields]).encode()
        request = urllib.request.Request(self.base + path, data=body, method="POST")
        request.add_header("Referer", self.base + path)
        try:
            with self.opener.open(request, timeout=60) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace"), dict(e.headers)

    def sign_in(self, username: str, password: str) -> None:
        self.get("/accounts/login/")
        status, _, _ = self.post("/accounts/login/", [("username", username), ("password", password)])
        if status != 302:
            raise RuntimeError(f"{username} could not sign in ({status})")

    def train_class_model(self, classroom_id: int, *, timeout: float = 600) -> int:
        """The instructor's tiny model, shared with the class: what the students ask predictions of."""
        self.get("/experiments/new/")
        status, _, headers = self.post("/experiments/new/", [(k, str(v)) for k, v in TINY_EXPERIMENT.items()])
        match = re.search(r"/experiments/(\d+)/$", headers.get("Location", ""))
        if status != 302 or not match:
            raise RuntimeError(f"the class's model could not be launched ({status})")
        job_id = int(match.group(1))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, body, _ = self.get(f"/experiments/{job_id}/status/")
            state = json.loads(body)
            if not state["live"]:
                if state["state"] != "succeeded":
                    raise RuntimeError(f"the class's model did not train: {state['state']} {state['error_message']}")
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"the class's model did not train within {timeout:.0f} s")
        status, _, _ = self.post(f"/experiments/models/{job_id}/share/", [("classrooms", str(classroom_id))])
        if status != 302:
            raise RuntimeError(f"the class's model could not be shared ({status})")
        return job_id

    def cancel(self, classroom_id: int, job_id: int) -> int:
        status, _, _ = self.post(f"/classes/{classroom_id}/jobs/{job_id}/cancel/", [])
        return status


# ---------------------------------------------------------------- what the machine holds, once a second


class Sampler(threading.Thread):
    """Queue lengths on the broker, database connections, grades waiting, load average: once a second."""

    def __init__(self, stack: Stack, classroom_id: int):
        super().__init__(daemon=True)
        self.stack = stack
        self.classroom_id = classroom_id
        self.samples: list[dict] = []
        self.stopping = threading.Event()

    def run(self):
        queues = _queue_reader(self.stack)
        db = _db_reader(self.stack.database_url)
        while not self.stopping.is_set():
            sample = {"t": time.time(), "load": os.getloadavg()[0]}
            try:
                sample.update(queues())
            except Exception as exc:  # noqa: BLE001 - a missed sample is not worth stopping the run for
                sample["queue_error"] = str(exc)
            try:
                sample.update(db())
            except Exception as exc:  # noqa: BLE001
                sample["db_error"] = str(exc)
            self.samples.append(sample)
            self.stopping.wait(1.0)

    def stop(self) -> list[dict]:
        self.stopping.set()
        self.join(timeout=10)
        return self.samples


def _queue_reader(stack: Stack):
    url = stack.broker_url
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url)
        prefix = stack.key_prefix
        # kombu keeps a queue's messages under its name, and those sent with a priority beside it.
        keys = {q: [f"{prefix}{q}"] + [f"{prefix}{q}\x06\x16{p}" for p in (3, 6, 9)] for q in QUEUES}

        def read():
            pipe = client.pipeline()
            for q in QUEUES:
                for k in keys[q]:
                    pipe.llen(k)
            counts = iter(pipe.execute())
            return {f"queue_{q}": sum(next(counts) for _ in keys[q]) for q in QUEUES}

        return read
    import sqlite3

    path = url.split("sqlite:///", 1)[1]

    def read_sqlite():
        with sqlite3.connect(path, timeout=5) as conn:
            rows = conn.execute(
                "SELECT q.name, COUNT(m.id) FROM kombu_queue q LEFT JOIN kombu_message m "
                "ON m.queue_id = q.id AND m.visible = 1 GROUP BY q.name"
            ).fetchall()
        found = dict(rows)
        return {f"queue_{q}": found.get(q, 0) for q in QUEUES}

    return read_sqlite


PENDING_SQL = "SELECT COUNT(*) FROM quizzes_answer WHERE verdict = 'pending'"
LIVE_JOBS_SQL = "SELECT COUNT(*) FROM mlworker_trainingjob WHERE state IN ('queued', 'running')"


def _db_reader(url: str):
    if url.startswith("postgres"):
        import psycopg

        conn = psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True)
        name = url.rsplit("/", 1)[1]

        def read():
            return {
                "db_connections": conn.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s", [name]
                ).fetchone()[0],
                # Sessions waiting for a lock this instant (a class's row, an attempt's, a student's).
                "lock_waits": conn.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [name]
                ).fetchone()[0],
                "grades_waiting": conn.execute(PENDING_SQL).fetchone()[0],
                "jobs_live": conn.execute(LIVE_JOBS_SQL).fetchone()[0],
            }

        return read
    import sqlite3

    path = url.split("sqlite:///", 1)[1]

    def read_sqlite():
        with sqlite3.connect(path, timeout=5) as conn:
            return {
                "grades_waiting": conn.execute(PENDING_SQL).fetchone()[0],
                "jobs_live": conn.execute(LIVE_JOBS_SQL).fetchone()[0],
            }

    return read_sqlite


# ---------------------------------------------------------------- one step


def locust_config(seeded, *, params: LoadParams, out: Path, model_id: int | None, n: int) -> dict:
    any_answers = [a for answers in seeded.free_text.values() for a in answers]
    return {
        "out_dir": str(out),
        "students": seeded.students,
        "instructor": seeded.instructor,
        "password": seeded.password,
        "classroom_id": seeded.classroom_id,
        "sections": seeded.sections,
        "free_text": seeded.free_text,
        "any_answers": any_answers,
        "model_id": model_id,
        "think": list(params.think),
        "read": list(params.read),
        "experiment_share": params.experiment_share,
        "predictions": params.predictions,
        "change_mind": params.change_mind,
        "grade_watch": params.grade_watch,
        "job_watch": params.job_watch,
        "prediction_watch": params.prediction_watch,
        "duration": params.duration,
        "signin_timeout": signin_timeout(params, n),
        "max_requests": params.max_requests,
        "cycles": params.cycles,
        "tiny_experiment": TINY_EXPERIMENT,
        "seed": params.seed,
    }


def signin_timeout(params: LoadParams, n: int) -> float:
    # Every student arrives (n / rate) and signs in; a password check costs about a second of CPU here.
    return params.signin_timeout or (n / params.spawn_rate + n * 0.75 + 30)


def run_locust(stack: Stack, config: dict, out: Path, *, n: int, params: LoadParams) -> float:
    """Locust headless against the stack; returns when it has stopped (by itself, after the test phase)."""
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "locust-config.json"
    config_path.write_text(json.dumps(config))
    hard_limit = int(config["signin_timeout"] + params.duration + 120)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "load" / "locustfile.py"), "--headless",
        "-u", str(n + 1), "-r", str(params.spawn_rate), "-t", f"{hard_limit}s", "--host", stack.url,
        "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5", "--csv", str(out / "locust"),
    ]  # fmt: skip
    env = {**os.environ, "JOURNEY_LOAD_CONFIG": str(config_path)}
    with open(out / "locust.log", "ab") as log:
        subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=hard_limit + 120)
    return time.time()


def _wait(what: str, predicate, timeout: float) -> float | None:
    """Seconds until predicate() held, or None at the timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return round(time.monotonic() - start, 1)
        time.sleep(1)
    print(f"  {what}: not done after {timeout:.0f} s", flush=True)
    return None


def drain(browser: Browser, classroom_id: int, params: LoadParams) -> dict:
    """Wait for the grades, the predictions and the experiments the load left behind."""
    from accounts.models import ClassMembership
    from mlworker.models import LIVE_STATES, Prediction, PredictionState, TrainingJob
    from quizzes.models import Answer, Verdict

    members = ClassMembership.objects.filter(classroom_id=classroom_id).values("user_id")
    out = {}
    out["grades_seconds"] = _wait(
        "grades",
        lambda: not Answer.objects.filter(verdict=Verdict.PENDING, attempt__user_id__in=members).exists(),
        params.drain_grades,
    )
    live_predictions = Prediction.objects.filter(
        owner_id__in=members, state__in=[PredictionState.QUEUED, PredictionState.RUNNING]
    )
    out["predictions_seconds"] = _wait("predictions", lambda: not live_predictions.exists(), params.drain_predictions)
    jobs = TrainingJob.objects.filter(owner_id__in=members)
    out["jobs_live_at_stop"] = jobs.filter(state__in=LIVE_STATES).count()
    out["jobs_seconds"] = _wait(
        "experiments", lambda: not jobs.filter(state__in=LIVE_STATES).exists(), params.drain_jobs
    )
    left = list(jobs.filter(state__in=LIVE_STATES).values_list("pk", flat=True))
    out["jobs_cancelled"] = len(left)
    for job_id in left:  # the end of the class: the instructor stops what is still waiting
        status = browser.cancel(classroom_id, job_id)
        if status != 302:
            print(f"  cancelling experiment {job_id}: {status}", flush=True)
    out["cancel_seconds"] = _wait("cancelled experiments", lambda: not jobs.filter(state__in=LIVE_STATES).exists(), 300)
    return out


def measure(classroom_id: int, *, stopped_at: float) -> dict:
    """From the database's own times: how long grades, experiments and predictions took to come back."""
    from datetime import UTC

    from accounts.models import ClassMembership
    from mlworker.models import JobState, Prediction, TrainingJob
    from quizzes.models import Answer, Attempt, QuestionType

    members = ClassMembership.objects.filter(classroom_id=classroom_id).values("user_id")
    stop = datetime.fromtimestamp(stopped_at, tz=UTC)
    graded = Answer.objects.filter(
        attempt__user_id__in=members, attempt__mode=Attempt.Mode.TEST, question__type=QuestionType.FREE_TEXT,
        graded_at__isnull=False, attempt__submitted_at__isnull=False,
    ).exclude(response=None).values_list("graded_at", "attempt__submitted_at")  # fmt: skip
    waits = [(g - s).total_seconds() for g, s in graded]
    last = max((g for g, _ in graded), default=None)
    grades = {
        "n": len(waits),
        "p50_seconds": _r(report.percentile(waits, 50)) if waits else None,
        "p95_seconds": _r(report.percentile(waits, 95)) if waits else None,
        "max_seconds": _r(max(waits)) if waits else None,
        "within_60_s": sum(1 for w in waits if w <= 60),
    }
    jobs = TrainingJob.objects.filter(owner_id__in=members)
    done = list(
        jobs.filter(state__in=[JobState.SUCCEEDED, JobState.FAILED], cancel_requested=False).values_list(
            "created_at", "started_at", "finished_at"
        )
    )
    queued = [(s - c).total_seconds() for c, s, _ in done if s]
    jobs_out = {
        "launched": jobs.count(),
        "finished_in_run": len(done),
        "failed": jobs.filter(state=JobState.FAILED).count(),
        "cancelled_at_end": jobs.filter(state=JobState.CANCELLED).count(),
        "slowest_seconds": _r(max((f - c).total_seconds() for c, _, f in done)) if done else None,
        "queue_wait_p50_seconds": _r(report.percentile(queued, 50)) if queued else None,
        "train_p50_seconds": _r(report.percentile([(f - s).total_seconds() for _, s, f in done if s], 50))
        if done
        else None,
        "last_finished_after_stop": _r((max(f for *_, f in done) - stop).total_seconds()) if done else None,
    }
    predictions = list(
        Prediction.objects.filter(owner_id__in=members, finished_at__isnull=False).values_list(
            "created_at", "finished_at"
        )
    )
    pwaits = [(f - c).total_seconds() for c, f in predictions]
    preds = {
        "n": Prediction.objects.filter(owner_id__in=members).count(),
        "p50_seconds": _r(report.percentile(pwaits, 50)) if pwaits else None,
        "p95_seconds": _r(report.percentile(pwaits, 95)) if pwaits else None,
        "max_seconds": _r(max(pwaits)) if pwaits else None,
    }
    return {
        "grades": grades,
        "jobs": jobs_out,
        "predictions": preds,
        "last_grade_after_stop": _r((last - stop).total_seconds()) if last else None,
    }


def _r(v):
    return None if v is None else round(v, 1)


def queue_figures(samples: list[dict], *, start: float, end: float) -> dict:
    window = [s for s in samples if start <= s["t"] <= end]
    out = {"max": {}, "samples": samples}
    for q in QUEUES:
        values = [s[f"queue_{q}"] for s in window if f"queue_{q}" in s]
        out["max"][q] = max(values) if values else None
    for key in ("db_connections", "lock_waits", "grades_waiting", "jobs_live", "load"):
        values = [s[key] for s in window if key in s]
        out[f"max_{key}"] = max(values) if values else None
        out[f"mean_{key}"] = round(sum(values) / len(values), 2) if values else None
    return out


def run_step(*, n: int, config: RunConfig, stack_config: StackConfig, out: Path) -> dict:
    """One step against a database that is migrated, has the chapter, and that Django in this process
    uses too (the seeding, the drain and the checks read and write it directly)."""
    from bench.load.checks import check_all
    from bench.load.seed import seed_class

    params = config.params
    out.mkdir(parents=True, exist_ok=True)
    seeded = seed_class(n_students=n)
    seeded.write(out / "class.json")
    print(f"[{n} students] starting the stack", flush=True)
    t0 = time.monotonic()
    with Stack(stack_config) as stack:
        print(f"  stack ready in {time.monotonic() - t0:.0f} s at {stack.url}; training the class's model", flush=True)
        browser = Browser(stack.url)
        browser.sign_in(seeded.instructor, seeded.password)
        t1 = time.monotonic()
        model_id = browser.train_class_model(seeded.classroom_id) if params.class_model else None
        print(f"  class model {model_id} trained in {time.monotonic() - t1:.0f} s; the class arrives", flush=True)
        sampler = Sampler(stack, seeded.classroom_id)
        sampler.start()
        started = time.time()
        lconf = locust_config(seeded, params=params, out=out, model_id=model_id, n=n)
        stopped_at = run_locust(stack, lconf, out, n=n, params=params)
        print(f"  load stopped after {stopped_at - started:.0f} s; waiting for what it left", flush=True)
        drained = drain(browser, seeded.classroom_id, params)
        samples = sampler.stop()
        alive = stack.alive()
    record = json.loads((out / "record.json").read_text())
    rows = report.read_requests(out / "requests.csv")
    test_start = record["test_started_at"] or started
    test_rows = [r for r in rows if r["t"] >= test_start and r["phase"] != "sign-in"]
    signin_rows = [r for r in rows if r["phase"] == "sign-in"]
    step = {
        "students": n,
        "sign_in_phase": report.summarise(signin_rows, seconds=test_start - started),
        "test_phase": report.summarise(test_rows, seconds=max(1.0, record["stopped_at"] - test_start)),
        "drain": drained,
        "processes_alive_at_end": alive,
        "queues": queue_figures(samples, start=test_start, end=time.time()),
        "record": {
            "attempts": len(record["attempts"]),
            "handed_in": sum(1 for a in record["attempts"].values() if a["handed_in"] is True),
            "jobs": len(record["jobs"]),
            "jobs_refused": record["jobs_refused"],
            "predictions": len(record["predictions"]),
            "signed_in": record["signed_in"],
        },
    }
    measured = measure(seeded.classroom_id, stopped_at=stopped_at)
    step.update({k: measured[k] for k in ("grades", "jobs", "predictions")})
    step["drain"]["last_grade_after_stop"] = measured["last_grade_after_stop"]
    checks = check_all(
        record=record,
        requests=((r["kind"], r["status"], r["error"]) for r in rows),
        classroom_id=seeded.classroom_id,
    )
    if not all(alive.values()):
        checks.problem("process died", ", ".join(k for k, v in alive.items() if not v))
    step["checks"] = checks.as_dict()
    (out / "step.json").write_text(json.dumps(step, indent=1, default=str))
    verdict = "pass" if checks.ok else "FAIL: " + "; ".join(checks.problems[:5])
    print(f"  nothing-lost checks: {verdict}", flush=True)
    return step


# ---------------------------------------------------------------- databases


def prepare_template(config: RunConfig, out: Path) -> tuple[str, callable]:
    """Migrate and load the chapter once; each step then starts from a copy of that database.
    Returns the URL steps use, and a function that resets it to the template."""
    if config.database_url.startswith("postgres"):
        name = config.database_url.rsplit("/", 1)[1].split("?")[0]
        template_url = fresh_postgres(config.database_url, f"{name}_load_template")
        step_name = f"{name}_load"
        _manage(template_url, "migrate", "--noinput", "-v", "0")
        _manage(template_url, "loadcourse")

        def reset() -> None:
            import psycopg

            _close_django()
            admin = config.database_url.rsplit("/", 1)[0].replace("postgres://", "postgresql://", 1) + "/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{step_name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{step_name}" TEMPLATE "{name}_load_template"')

        return template_url.rsplit("/", 1)[0] + f"/{step_name}", reset
    template = out / "template.sqlite3"
    template.unlink(missing_ok=True)
    _manage(f"sqlite:///{template}", "migrate", "--noinput", "-v", "0")
    _manage(f"sqlite:///{template}", "loadcourse")
    target = out / "journey.sqlite3"

    def reset_sqlite() -> None:
        _close_django()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(template, target)

    return f"sqlite:///{target}", reset_sqlite


def _manage(database_url: str, *args: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def _close_django() -> None:
    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "0"
    import django

    django.setup()


# ---------------------------------------------------------------- the whole run


def run(config: RunConfig) -> dict:
    out = config.out = config.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"Load run into {out}: steps {config.steps}", flush=True)
    step_url, reset = prepare_template(config, out)
    setup_django(step_url)
    steps = []
    for n in config.steps:
        reset()
        stack_config = StackConfig(
            database_url=step_url, broker_url=config.broker_url, run_dir=out / f"step-{n}",
            web_workers=config.web_workers, web_threads=config.web_threads,
            cpu_concurrency=config.cpu_concurrency, train_nice=config.train_nice, extra_env=config.extra_env,
        )  # fmt: skip
        steps.append(run_step(n=n, config=config, stack_config=stack_config, out=out / f"step-{n}"))
    results = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_at_end": os.getloadavg()},
        "database": "postgresql" if config.database_url.startswith("postgres") else "sqlite",
        "broker": "redis" if config.broker_url.startswith("redis") else "embedded sqlite",
        "stack": {
            "web_workers": config.web_workers,
            "web_threads": config.web_threads,
            "cpu_concurrency": config.cpu_concurrency,
            "train_nice": config.train_nice,
        },  # fmt: skip
        "params": asdict(config.params),
        "steps": steps,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    summary = "\n\n".join([report.summary_table(steps), *[report.step_table(s) for s in steps]])
    (out / "summary.md").write_text(summary + "\n")
    report.chart(steps, out / "latency.png", title=_title(results))
    print("\n" + summary, flush=True)
    return results


def _title(results: dict) -> str:
    st = results["stack"]
    return (
        f"Journey under a class's test, {results['database']} + {results['broker']}, {results['machine']['cpus']} "
        f"cores: gunicorn {st['web_workers']}x{st['web_threads']}, cpu worker x{st['cpu_concurrency']}"
    )


def parse(argv=None) -> RunConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--students", type=int, nargs="+", default=[50, 100, 200], help="one step per number")
    p.add_argument("--duration", type=float, default=180, help="seconds of the test phase of each step")
    p.add_argument("--spawn-rate", type=float, default=1, help="students arriving per second")
    p.add_argument("--think", type=float, nargs=2, default=[2.0, 5.0], metavar=("MIN", "MAX"))
    p.add_argument("--read", type=float, nargs=2, default=[5.0, 15.0], metavar=("MIN", "MAX"))
    p.add_argument("--experiment-share", type=float, default=0.5)
    p.add_argument("--drain-jobs", type=float, default=60)
    p.add_argument("--max-requests", type=int, default=200_000)
    p.add_argument("--web-workers", type=int, default=3)
    p.add_argument("--web-threads", type=int, default=1)
    p.add_argument("--cpu-concurrency", type=int, default=2)
    p.add_argument("--train-nice", type=int, default=10)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--publish", action="store_true", help="also write the chart and tables to docs/benchmarks/")
    a = p.parse_args(argv)
    params = LoadParams(
        duration=a.duration, spawn_rate=a.spawn_rate, think=tuple(a.think), read=tuple(a.read),
        experiment_share=a.experiment_share, drain_jobs=a.drain_jobs, max_requests=a.max_requests,
    )  # fmt: skip
    config = RunConfig(
        steps=a.students, params=params,
        out=a.out or REPO / "var" / "load" / datetime.now().strftime("%Y%m%d-%H%M%S"),
        database_url=os.environ.get("DATABASE_URL", ""), broker_url=os.environ.get("CELERY_BROKER_URL", ""),
        web_workers=a.web_workers, web_threads=a.web_threads, cpu_concurrency=a.cpu_concurrency,
        train_nice=a.train_nice, publish=a.publish,
    )  # fmt: skip
    return config


def main(argv=None) -> int:
    config = parse(argv)
    results = run(config)
    if config.publish:
        PUBLISHED.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config.out / "latency.png", PUBLISHED / "load-latency.png")
        shutil.copyfile(config.out / "summary.md", PUBLISHED / "load-summary.md")
        slim = {**results, "steps": [{**s, "queues": {k: v for k, v in s["queues"].items() if k != "samples"}}
                                     for s in results["steps"]]}  # fmt: skip
        (PUBLISHED / "load-results.json").write_text(json.dumps(slim, indent=1, default=str))
        print(f"published to {PUBLISHED.relative_to(REPO)}/", flush=True)
    return 0 if all(s["checks"]["ok"] for s in results["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
