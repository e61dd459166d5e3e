"""The load test's nothing-lost checks (bench/load/checks.py): they pass on what the services wrote,
and each fails when something the students were told is not in the database."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from bench.load.checks import check_all
from dashboard.models import StudentProgress
from mlworker.models import JobState, Prediction
from mlworker.services import job_submit
from quizzes import tasks
from quizzes.forms import response_from_post
from quizzes.models import Answer, Attempt
from quizzes.services import answer_grade_free_text, answers_save, attempt_start, attempt_submit
from tests.dashboard.support import job_end
from tests.quizzes.support import fields_for, right_answer

pytestmark = pytest.mark.django_db

OK = [("autosave", 200, ""), ("hand in", 302, "")]


def posted(attempt, question, answer) -> list[list[str]]:
    """The fields the page posts for this answer, as the locust client records them."""
    out = []
    for name, value in fields_for(attempt, question, answer).items():
        out += [[name, v] for v in value] if isinstance(value, list) else [[name, str(value).lower()
                if isinstance(value, bool) else str(value)]]  # fmt: skip
    return out


@pytest.fixture
def handed_in(student, classroom, mini_bank, fake_grader, monkeypatch):
    """A test taken through the services, every answer saved and acknowledged, handed in and graded;
    and the record the load test's client would have kept of it."""
    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda args, **kw: None)
    attempt = attempt_start(user=student, quiz="history", mode=Attempt.Mode.TEST)
    record = {"attempts": {str(attempt.pk): {"user": student.username, "answers": {}, "handed_in": True}},
              "jobs": [], "predictions": []}  # fmt: skip
    for answer in attempt.answers.select_related("question"):
        q = answer.question
        fields = posted(attempt, q, right_answer(q))
        data = QueryDict(mutable=True)
        for name, value in fields:
            data.appendlist(name, value)
        response = response_from_post(attempt, q, answer.position, data)[0]
        answers_save(attempt=attempt, responses={answer.position: response})
        record["attempts"][str(attempt.pk)]["answers"][str(answer.position)] = {"acked": fields, "unsure": []}
    attempt_submit(attempt=attempt)
    for pk in Answer.objects.filter(attempt=attempt, verdict="pending").values_list("pk", flat=True):
        assert answer_grade_free_text(answer_id=pk) == "graded"
    return attempt, record


def check(record, classroom, requests=OK):
    return check_all(record=record, requests=requests, classroom_id=classroom.pk)


def test_it_passes_when_everything_the_students_were_told_is_there(handed_in, classroom):
    attempt, record = handed_in
    report = check(record, classroom)
    assert report.ok, report.problems
    assert report.counts["answers checked"] == attempt.answers.count()
    assert report.counts["tests handed in"] == 1 and report.counts["free-text answers graded"] == 1


def test_it_fails_when_a_saved_answer_is_gone(handed_in, classroom):
    attempt, record = handed_in
    Answer.objects.filter(attempt=attempt, position=1).update(response=None)
    report = check(record, classroom)
    assert not report.ok
    assert any(p.startswith("answer lost: ") for p in report.problems), report.problems


def test_it_fails_when_an_answer_row_is_deleted(handed_in, classroom):
    attempt, record = handed_in
    Answer.objects.filter(attempt=attempt, position=2).delete()
    assert any(p.startswith("answer missing: ") for p in check(record, classroom).problems)


def test_it_fails_when_the_database_holds_an_older_value(handed_in, classroom):
    attempt, record = handed_in
    free = Answer.objects.get(attempt=attempt, question__slug="t-free")
    Answer.objects.filter(pk=free.pk).update(response={"text": "An earlier draft."})
    assert any(p.startswith("answer lost: ") for p in check(record, classroom).problems)


def test_a_save_whose_answer_never_came_back_may_stand_or_not(handed_in, classroom):
    attempt, record = handed_in
    free = Answer.objects.get(attempt=attempt, question__slug="t-free")
    slot = record["attempts"][str(attempt.pk)]["answers"][str(free.position)]
    slot["unsure"] = [[[f"q{free.position}", "A later text the server may or may not have stored."]]]
    assert check(record, classroom).ok
    Answer.objects.filter(pk=free.pk).update(response={"text": "A later text the server may or may not have stored."})
    assert check(record, classroom).ok


def test_it_fails_when_a_grade_never_came_back(handed_in, classroom):
    attempt, record = handed_in
    Answer.objects.filter(attempt=attempt, question__slug="t-free").update(verdict="pending")
    assert any(p.startswith("grade missing: ") for p in check(record, classroom).problems)


def test_it_fails_when_an_answer_went_to_the_grader_twice(handed_in, classroom):
    attempt, record = handed_in
    Answer.objects.filter(attempt=attempt, question__slug="t-free").update(grading_round=2)
    assert any(p.startswith("graded twice: ") for p in check(record, classroom).problems)


def test_it_fails_when_a_grade_is_not_in_the_score(handed_in, classroom):
    attempt, record = handed_in
    Attempt.objects.filter(pk=attempt.pk).update(score=attempt.score - 0.1)
    assert any(p.startswith("score wrong: ") for p in check(record, classroom).problems)


def test_it_fails_when_a_hand_in_is_lost(handed_in, classroom):
    attempt, record = handed_in
    Attempt.objects.filter(pk=attempt.pk).update(state=Attempt.State.IN_PROGRESS)
    assert any(p.startswith("hand-in lost: ") for p in check(record, classroom).problems)


def test_it_fails_when_the_class_pages_missed_a_write(handed_in, classroom, student):
    _, record = handed_in
    StudentProgress.objects.filter(user=student).update(tests=0)
    assert any(p.startswith("summary wrong: StudentProgress") for p in check(record, classroom).problems)
    assert StudentProgress.objects.get(user=student).tests == 0  # the check's rebuild was rolled back


def test_it_fails_on_an_experiment_or_prediction_left_live(handed_in, classroom, student, tiny_settings):
    _, record = handed_in
    job = job_submit(user=student, job_settings=tiny_settings)
    assert any(p.startswith("experiment not finished: ") for p in check(record, classroom).problems)
    job_end(job, JobState.SUCCEEDED, model_file="jobs/x/model.pkl", error_rate=0.2)
    assert check(record, classroom).ok
    Prediction.objects.create(owner=student, job=job, source_name="cat.png", image="x.png", thumbnail="t.png")
    assert any(p.startswith("prediction not finished: ") for p in check(record, classroom).problems)


def test_it_fails_when_an_accepted_experiment_is_not_in_the_database(handed_in, classroom):
    _, record = handed_in
    record["jobs"] = [987654]
    assert any(p.startswith("experiment lost: ") for p in check(record, classroom).problems)


@pytest.mark.parametrize("request_row, kind", [(("autosave", 502, ""), "server error"),
                                               (("hand in", 0, "ConnectionResetError"), "no answer")])  # fmt: skip
def test_it_fails_on_a_server_error_or_a_request_left_unanswered(handed_in, classroom, request_row, kind):
    _, record = handed_in
    assert any(p.startswith(f"{kind}: ") for p in check(record, classroom, OK + [request_row]).problems)
