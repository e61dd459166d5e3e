"""The load test in small: two students for a few seconds through the load test's own runner
(bench/load/run.py's `run_step`): gunicorn, a worker per queue and beat as processes, locust
headless, the drain and the nothing-lost checks. It proves the harness and the checks on every
`make test`; its figures mean nothing (bench/load/README.md says how to take the real ones).

On PostgreSQL and Redis (CI) the stack runs on the test database and on the suite's Redis database
under a key prefix of its own, so the suite's own worker never takes its messages. On the embedded
defaults (a laptop's `make test`) the stack runs on the test's SQLite file, with a fresh embedded
broker file of its own: the same processes and checks, on the database a laptop runs.
"""

from __future__ import annotations

import pytest

from bench.load.run import LoadParams, RunConfig, run_step
from bench.load.stack import StackConfig
from tests.support import database_url_for_workers

pytestmark = [pytest.mark.load, pytest.mark.django_db(transaction=True)]


def test_a_few_students_taking_the_test_and_training_lose_nothing(bank, broker_url, tmp_path):
    params = LoadParams(
        duration=60, spawn_rate=10, think=(0.1, 0.3), read=(0.2, 0.5), experiment_share=0.5, predictions=1,
        change_mind=0.3, cycles=1, class_model=False, grade_watch=30, job_watch=45, prediction_watch=20,
        drain_grades=60, drain_predictions=30, drain_jobs=5,
    )  # fmt: skip
    stack = StackConfig(
        database_url=database_url_for_workers(),
        broker_url=broker_url if broker_url.startswith("redis") else "",
        run_dir=tmp_path / "step",
        web_workers=2,
        cpu_concurrency=1,
    )
    config = RunConfig(steps=[2], params=params, out=tmp_path)
    step = run_step(n=2, config=config, stack_config=stack, out=tmp_path / "step")

    assert step["checks"]["ok"], step["checks"]["problems"]
    assert step["record"]["signed_in"] == 2 and step["record"]["handed_in"] == 2
    counts = step["checks"]["counts"]
    assert counts["answers checked"] >= 2 * 15 and counts["tests handed in"] == 2
    assert step["jobs"]["launched"] == 1  # one student in two launches
    assert step["test_phase"]["kinds"]["autosave"]["n"] >= 2 * 15
    assert step["test_phase"]["5xx"] == 0 and step["test_phase"]["unanswered"] == 0
