"""Grades of one test landing at the same moment (the cpu worker grades two answers at once): each
grader adds up the test's score, and neither may miss the other's grade. The load test found it
(bench/load): a test stored 0.30 where its answers gave 0.33, and stayed "submitted" when every
grade was in. Needs PostgreSQL: SQLite runs one writer at a time, so the race cannot happen there."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from quizzes import services, tasks
from quizzes.models import Answer, Attempt, QuestionType
from quizzes.services import answer_grade_free_text, answers_save, attempt_start, attempt_submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_grades_of_one_test_landing_at_once_both_count(student, bank, fake_grader, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs two writers at once: PostgreSQL")
    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda args, **kw: None)
    attempt = attempt_start(user=student, quiz="deep-learning-for-everyone", mode=Attempt.Mode.TEST)
    free = list(attempt.answers.filter(question__type=QuestionType.FREE_TEXT).order_by("position"))
    assert len(free) == 2
    answers_save(attempt=attempt, responses={a.position: {"text": "A fine answer in my own words."} for a in free})
    attempt_submit(attempt=attempt)

    # Each grader stops after adding up the score, before its commit, until the other is there too
    # (or 3 s have passed: with the lock, the second one waits on the first and never gets there).
    meeting = threading.Barrier(2, timeout=3)
    announce = services.history_announce

    def announce_after_meeting(**kw):
        try:
            meeting.wait()
        except threading.BrokenBarrierError:
            pass
        announce(**kw)

    monkeypatch.setattr(services, "history_announce", announce_after_meeting)
    results = []

    def grade(answer_id):
        try:
            results.append(answer_grade_free_text(answer_id=answer_id))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=grade, args=(a.pk,)) for a in free]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == ["graded", "graded"]

    attempt.refresh_from_db()
    scores = list(Answer.objects.filter(attempt=attempt).values_list("score", flat=True))
    assert attempt.state == Attempt.State.GRADED
    assert attempt.score == pytest.approx(sum(scores) / len(scores))
    assert sum(scores) >= 2  # both free-text answers were graded right, and both count
