"""`manage.py runlocal` starts a worker for every queue a task is routed to."""

from django.conf import settings

from config.management.commands.runlocal import process_commands


def _queues(command):
    return set(command[command.index("-Q") + 1].split(",")) if "-Q" in command else set()


def test_every_routed_queue_has_a_local_worker():
    commands = process_commands("python", "127.0.0.1:8000")
    consumed = set().union(*(_queues(c) for c in commands.values()))
    assert {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()} <= consumed


def test_predictions_do_not_share_a_worker_with_training():
    commands = process_commands("python", "127.0.0.1:8000")
    predict = [name for name, c in commands.items() if "predict" in _queues(c)]
    gpu = [name for name, c in commands.items() if "gpu" in _queues(c)]
    assert len(predict) == 1 and predict != gpu and _queues(commands[predict[0]]) == {"predict"}


# ---------------------------------------------------------------- restarts


def _run_until(monkeypatch, commands, *, stop_when, deadline=20.0, **knobs):
    """Run `manage.py runlocal` on stand-in processes, SIGTERM it once stop_when() holds (or at the
    deadline); its stdout, its stderr and the CommandError it raised, if any."""
    import io
    import os
    import signal
    import threading
    import time

    from django.core.management import CommandError, call_command

    from config.management.commands import runlocal

    monkeypatch.setattr(runlocal, "process_commands", lambda py, addr: commands)
    monkeypatch.setattr(runlocal, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(runlocal, "RESTART_DELAYS", (0.1, 0.2))
    for name, value in knobs.items():
        monkeypatch.setattr(runlocal, name, value)
    finished = threading.Event()

    def watch():
        end = time.monotonic() + deadline
        while not finished.is_set() and not stop_when() and time.monotonic() < end:
            time.sleep(0.05)
        if not finished.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # runlocal's own handler takes it

    out, err, error = io.StringIO(), io.StringIO(), None
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        call_command("runlocal", stdout=out, stderr=err)
    except CommandError as e:
        error = e
    finally:
        finished.set()
        watcher.join()
    return out.getvalue(), err.getvalue(), error


def test_it_starts_again_a_worker_that_exits_and_keeps_the_rest_running(monkeypatch, tmp_path):
    import sys

    crashed, back = tmp_path / "crashed", tmp_path / "back"
    flaky = (
        f"import pathlib, sys, time\n"
        f"if not pathlib.Path({str(crashed)!r}).exists():\n"
        f"    pathlib.Path({str(crashed)!r}).touch(); sys.exit(3)\n"
        f"pathlib.Path({str(back)!r}).touch(); time.sleep(60)\n"
    )
    commands = {
        "web": [sys.executable, "-c", "import time; time.sleep(60)"],
        "worker-cpu": [sys.executable, "-c", flaky],
    }
    out, err, error = _run_until(monkeypatch, commands, stop_when=back.exists)
    assert back.exists() and error is None
    assert "worker-cpu exited with 3; starting it again in 0.1 s" in err
    assert out.count("started worker-cpu") == 2 and out.count("started web") == 1
    assert "stopped web and workers" in out


def test_a_worker_that_keeps_exiting_stops_the_site_with_a_line(monkeypatch):
    import os
    import re
    import sys

    commands = {
        "web": [sys.executable, "-c", "import time; time.sleep(60)"],
        "worker-cpu": [sys.executable, "-c", "raise SystemExit(2)"],
    }
    out, err, error = _run_until(monkeypatch, commands, stop_when=lambda: False, MAX_RESTARTS=3)
    assert error is not None and "worker-cpu exited with 2 4 times" in str(error)
    assert err.count("starting it again") == 3 and "stopping the rest" in err
    # The delays grew: 0.1 s, then 0.2 s for every later restart.
    assert re.findall(r"again in ([\d.]+) s", err) == ["0.1", "0.2", "0.2"]
    web_pid = int(re.search(r"started web \(pid (\d+)\)", out).group(1))
    try:
        os.kill(web_pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


def test_upload_checks_have_their_own_worker_away_from_grading_and_housekeeping():
    from django.conf import settings

    commands = process_commands("python", "127.0.0.1:8000")
    assert settings.CELERY_TASK_ROUTES["mlworker.tasks.dataset_check"]["queue"] == "uploads"
    uploads = [name for name, c in commands.items() if "uploads" in _queues(c)]
    assert len(uploads) == 1 and _queues(commands[uploads[0]]) == {"uploads"}
    assert "-B" not in commands[uploads[0]]  # beat (housekeeping) stays with the cpu worker
