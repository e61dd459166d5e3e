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


def test_upload_checks_have_their_own_worker_away_from_grading_and_housekeeping():
    from django.conf import settings

    commands = process_commands("python", "127.0.0.1:8000")
    assert settings.CELERY_TASK_ROUTES["mlworker.tasks.dataset_check"]["queue"] == "uploads"
    uploads = [name for name, c in commands.items() if "uploads" in _queues(c)]
    assert len(uploads) == 1 and _queues(commands[uploads[0]]) == {"uploads"}
    assert "-B" not in commands[uploads[0]]  # beat (housekeeping) stays with the cpu worker
