"""Free-text grading for real: a Celery worker process, the test broker, the real grader.

It skips until quizzes/grading.py (written separately) is in the tree; then it runs with the
other worker tests."""

import importlib.util
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from courses.services import course_load
from quizzes.models import Answer, Attempt
from quizzes.services import attempt_start, question_bank_load
from tests.quizzes.support import all_right, positions
from tests.support import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.worker,
    pytest.mark.grader,
    pytest.mark.skipif(
        importlib.util.find_spec("quizzes.grading") is None, reason="quizzes/grading.py is not here yet"
    ),
]

GOOD = (
    "Overfitting is when a model memorises the particular examples it was trained on, noise and all, instead "
    "of learning patterns that hold in general. It then does well on its training data but badly on new data "
    "it has never seen, and new data is what a model is for."
)
WRONG = "Overfitting means the model has not trained long enough to learn its training data yet."


def test_a_real_worker_grades_handed_in_free_text_answers(celery_worker, client, student, tmp_path, capsys):
    course_load()
    question_bank_load()
    client.force_login(student)
    handed_in = []
    for text in (GOOD, WRONG):  # one open test of a quiz at a time: the second starts after the first is in
        attempt = attempt_start(user=student, quiz="limitations", mode="test")
        data = {**all_right(attempt), f"q{positions(attempt)['limitations-overfitting']}": text, "action": "submit"}
        assert client.post(reverse("quizzes:save", args=[attempt.pk]), data).status_code == 302
        handed_in.append(attempt)
    good, wrong = handed_in
    assert good.pk != wrong.pk

    def all_graded():
        return not Answer.objects.filter(attempt__in=[good, wrong], verdict="pending").exists()

    wait_for(all_graded, timeout=240, interval=1, what="the worker to grade every free-text answer")

    def overfitting(attempt):
        return Answer.objects.get(attempt=attempt, question__slug="limitations-overfitting")

    a, b = overfitting(good), overfitting(wrong)
    for answer in (a, b):
        assert answer.graded_by == "grader" and 0 <= answer.confidence <= 1
        assert answer.verdict in ("correct", "partial", "incorrect", "needs_review")
        assert len(answer.grader_result["covered"]) == 3
    assert a.grader_result["score"] > b.grader_result["score"]
    assert b.verdict != "correct"
    status = client.get(reverse("quizzes:status", args=[good.pk])).json()
    assert not status["pending"]
    assert Attempt.objects.get(pk=good.pk).state in ("graded", "submitted")  # submitted: awaiting an instructor

    # The batch command gives the same grades through the same path.
    source = tmp_path / "answers.jsonl"
    source.write_text(
        "\n".join(json.dumps({"question": "limitations-overfitting", "answer": t}) for t in (GOOD, WRONG))
    )
    call_command("grade_answers", str(source))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for line, answer in zip(lines, (a, b), strict=True):
        assert line["score"] == pytest.approx(answer.grader_result["score"], abs=1e-4)
        assert line["verdict"] == answer.grader_result["verdict"]
