"""Workers load what their queues need when they start (config/warmup.py)."""

from __future__ import annotations

import logging

from config import warmup
from quizzes import grader_model


def test_a_cpu_worker_loads_the_grader_before_its_first_task():
    grader_model.load.cache_clear()
    assert warmup.warm_up({"cpu": object()}) == ["cpu"]
    assert grader_model.load.cache_info().currsize == 1  # the first grade finds it loaded


def test_a_worker_warms_only_its_own_queues(monkeypatch):
    ran = []
    monkeypatch.setattr(warmup, "WARMERS", {"cpu": lambda: ran.append("cpu"), "predict": lambda: ran.append("predict")})
    assert warmup.warm_up(["gpu", "predict"]) == ["predict"] and ran == ["predict"]


def test_a_failed_warm_up_is_logged_and_the_worker_starts_anyway(monkeypatch, caplog):
    def broken():
        raise OSError("weights missing")

    monkeypatch.setattr(warmup, "WARMERS", {"cpu": broken})
    with caplog.at_level(logging.ERROR, logger="config.warmup"):
        assert warmup.warm_up(["cpu"]) == []
    assert "could not warm up the cpu queue" in caplog.text


def test_a_grading_process_gives_torch_the_threads_the_setting_says(settings):
    import torch

    before = torch.get_num_threads()
    try:
        settings.JOURNEY_GRADER_THREADS = 1
        assert warmup.pin_threads(["gpu"]) is None and torch.get_num_threads() == before
        assert warmup.pin_threads(["cpu"]) == 1 and torch.get_num_threads() == 1
        settings.JOURNEY_GRADER_THREADS = 0  # torch's own default: left alone
        assert warmup.pin_threads(["cpu"]) is None
    finally:
        torch.set_num_threads(before)
