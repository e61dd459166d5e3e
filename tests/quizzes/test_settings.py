"""The quiz settings read from the environment: bad values stop start-up with one clear line."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_choice, env_float
from tests.support import REPO


def test_env_float_and_env_choice_read_and_check_values(monkeypatch):
    monkeypatch.setenv("X_FLOAT", "0.25")
    monkeypatch.setenv("X_CHOICE", "last")
    assert env_float("X_FLOAT", 0.6, minimum=0, maximum=1) == 0.25
    assert env_float("X_UNSET", 0.6) == 0.6
    assert env_choice("X_CHOICE", "best", ("best", "last")) == "last"
    assert env_choice("X_UNSET", "best", ("best", "last")) == "best"
    for raw, words in (("high", "must be a number"), ("1.5", "must be between 0 and 1")):
        monkeypatch.setenv("X_FLOAT", raw)
        with pytest.raises(ImproperlyConfigured, match=words):
            env_float("X_FLOAT", 0.6, minimum=0, maximum=1)
    monkeypatch.setenv("X_CHOICE", "worst")
    with pytest.raises(ImproperlyConfigured, match="X_CHOICE must be one of best, last, got 'worst'"):
        env_choice("X_CHOICE", "best", ("best", "last"))


def test_a_bad_quiz_setting_stops_start_up_with_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env={**env, "JOURNEY_QUIZ_GRADING": "worst"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Journey cannot start: JOURNEY_QUIZ_GRADING must be one of best, last, got 'worst'"
    ]
