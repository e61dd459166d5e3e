"""What a student reads when the training process ends badly: what is known, never a guess told as fact."""

import signal

import pytest

from mlworker import tasks
from mlworker.models import JobState
from mlworker.services import job_submit

pytestmark = pytest.mark.django_db


class EndedProcess:
    """Stands in for the training process: it has already ended with `code` (negative: a signal)."""

    def __init__(self, code):
        self.code = code

    def __call__(self, *args, **kwargs):
        return self

    def wait(self, timeout=None):
        return self.code


def _train_ending_with(monkeypatch, job, code, oom_counts):
    counts = iter(oom_counts)
    monkeypatch.setattr(tasks.subprocess, "Popen", EndedProcess(code))
    monkeypatch.setattr(tasks, "oom_kills", lambda: next(counts))
    tasks.train(job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    return job.error_message


def test_a_sigkill_without_evidence_of_memory_is_not_called_out_of_memory(monkeypatch, student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    message = _train_ending_with(monkeypatch, job, -signal.SIGKILL, [3, 3])  # the OOM killer did nothing
    assert "SIGKILL" in message and "may have run out of memory" in message
    assert "most likely" not in message and str(job.pk) in message


def test_a_sigkill_while_the_oom_killer_struck_is_out_of_memory(monkeypatch, student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    message = _train_ending_with(monkeypatch, job, -signal.SIGKILL, [3, 4])
    assert message == tasks.MSG_OUT_OF_MEMORY and "ran out of memory" in message


def test_another_signal_is_named_and_memory_is_not_mentioned(monkeypatch, student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    message = _train_ending_with(monkeypatch, job, -signal.SIGTERM, [None, None])
    assert "SIGTERM, number 15" in message and "memory" not in message


@pytest.mark.parametrize("oom_counts", [[None, None], [None, 2], [2, None]])
def test_an_unknown_oom_count_is_no_evidence(oom_counts):
    message = tasks.exit_message(-signal.SIGKILL, job_id=7, oom_before=oom_counts[0], oom_after=oom_counts[1])
    assert "may have run out of memory" in message


def test_it_reads_the_kernels_oom_count_from_the_cgroup(tmp_path, monkeypatch):
    v1 = tmp_path / "memory.oom_control"
    v1.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n")
    monkeypatch.setattr(tasks, "OOM_COUNTERS", (str(tmp_path / "absent"), str(v1)))
    assert tasks.oom_kills() == 5
    monkeypatch.setattr(tasks, "OOM_COUNTERS", (str(tmp_path / "absent"),))
    assert tasks.oom_kills() is None
