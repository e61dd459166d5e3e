"""A student asks a person to look at the free-text grader's grade: one click and an optional reason
on the results page. The answer joins their instructors' queue, its grade stands meanwhile, and the
instructor's decision and comment come back to the results page.

The grader is the stand-in of tests/fixtures/quizzes.fake_grader: a plain answer gets 100% ("Covers every key
point"), "WRONG" in it 0% with every key point missing, "UNSURE" sends it to review."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AnswersShown
from dashboard.models import ClassWaiting, StudentProgress
from quizzes import models, tasks
from quizzes.models import Answer, Attempt, Question
from quizzes.services import (
    ReviewRefused,
    answer_check,
    answer_grade_free_text,
    answer_review,
    answer_review_request,
    answers_save,
    attempt_start,
    attempt_submit,
    question_regrade,
)
from quizzes.views import MSG_REVIEW_ASKED
from tests.quizzes.support import positions

# The review pages grade answers to the small bank's questions.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mini_bank")]

QUEUE = reverse("quizzes:review_queue")
# What only the key says in the history quiz's free-text question.
KEY = ("REFERENCE-SENTINEL", "KEYPOINT-SENTINEL", "EXPLAIN-FREE")


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch, fake_grader):
    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda args, **kw: None)


def graded(user, text="It memorises the training data.", *, mode="test", grade=True) -> Answer:
    """Hand in a history attempt whose free-text answer the grader graded on its own (or has not yet)."""
    attempt = attempt_start(user=user, quiz="history", mode=mode)
    answers_save(attempt=attempt, responses={positions(attempt)["t-free"]: {"text": text}})
    attempt_submit(attempt=attempt)
    answer = Answer.objects.get(attempt=attempt, question__slug="t-free")
    if grade:
        answer_grade_free_text(answer_id=answer.pk)
    return fresh(answer)


def fresh(answer) -> Answer:
    return Answer.objects.select_related("attempt", "question").get(pk=answer.pk)


def as_user(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def ask_url(answer) -> str:
    return reverse("quizzes:review_request", args=[answer.pk])


def results(answer) -> str:
    return reverse("quizzes:review", args=[answer.attempt_id])


def ask(client, answer, reason=""):
    return client.post(ask_url(answer), {"reason": reason}, follow=True)


def listed(page: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'name="answers" value="(\d+)"', page)}


def block_of(page: str, answer) -> str:
    """The results page's part about one answer."""
    return page.split(f'data-result="{answer.position}"')[1].split("</article>")[0]


# ---------------------------------------------------------------- the request and the queue


def test_the_students_request_joins_their_instructors_queue_with_the_reason(
    classroom, other_classroom, instructor, other_instructor, student
):
    answer = graded(student, "WRONG: it learns the rules by heart")
    client = as_user(student)
    page = client.get(results(answer)).content.decode()
    assert f'action="{ask_url(answer)}"' in page and "Ask for a review" in page
    assert listed(as_user(instructor).get(QUEUE).content.decode()) == set()

    response = ask(client, answer, "I said it <b>memorises</b>, which is the key point.")
    assert response.redirect_chain == [(results(answer) + f"#q{answer.position}", 302)]
    assert MSG_REVIEW_ASKED in response.content.decode()
    answer = fresh(answer)
    assert answer.needs_review and answer.review_requested_at is not None
    assert answer.review_request == "I said it <b>memorises</b>, which is the key point."

    queue = as_user(instructor).get(QUEUE).content.decode()
    assert listed(queue) == {answer.pk}
    assert "The student asked for a review" in queue
    assert "I said it &lt;b&gt;memorises&lt;/b&gt;, which is the key point." in queue
    assert "<strong>0%</strong>, wrong: the grader's grade, which counts until you decide." in queue
    assert "Keep the grader's grade (0%)" in queue
    class_page = as_user(instructor).get(reverse("dashboard:class_review", args=[classroom.pk])).content.decode()
    assert listed(class_page) == {answer.pk}
    assert listed(as_user(other_instructor).get(QUEUE).content.decode()) == set()


def test_the_class_counts_the_request_as_waiting(classroom, instructor, student):
    answer = graded(student)
    assert not ClassWaiting.objects.filter(classroom=classroom).exists()
    answer_review_request(answer=answer, by=student)
    assert ClassWaiting.objects.get(classroom=classroom).answers == 1
    assert StudentProgress.objects.get(user=student).answers_waiting == 1
    badge = '<span class="badge count">1<span class="sr-only"> waiting</span></span>'
    assert badge in as_user(instructor).get(reverse("dashboard:class_dashboard", args=[classroom.pk])).content.decode()
    answer_review(answer=fresh(answer), by=instructor, score=1)
    assert not ClassWaiting.objects.filter(classroom=classroom).exists()


def test_the_grade_stands_while_the_review_waits(classroom, student):
    answer = graded(student)  # 100%, one answered question of 8
    assert answer.attempt.score == pytest.approx(1 / 8) and answer.attempt.state == Attempt.State.GRADED
    client = as_user(student)
    ask(client, answer)
    answer = fresh(answer)
    assert (answer.score, answer.verdict, answer.graded_by) == (1.0, "correct", "grader")
    assert answer.attempt.score == pytest.approx(1 / 8) and answer.attempt.state == Attempt.State.GRADED
    page = client.get(results(answer)).content.decode()
    assert 'id="attempt-score">12%<' in page
    mine = block_of(page, answer)
    assert 'data-status="requested"' in mine and "<strong>Right</strong> · 100%" in mine
    assert "You asked for a review on" in mine and "the grader's grade stands" in mine
    assert "Ask for a review" not in mine
    assert re.search(r'id="grading-status"[^>]* hidden>', page)  # "they count as zero" is not shown
    status = client.get(reverse("quizzes:status", args=[answer.attempt_id])).json()
    assert status["score_text"] == "12%" and not status["review"]
    assert {row["n"]: row["status"] for row in status["answers"]}[answer.position] == "requested"


def test_the_grade_stands_in_practice_too(classroom, instructor, student):
    attempt = attempt_start(user=student, quiz="history", mode="practice")
    n = positions(attempt)["t-free"]
    answers_save(attempt=attempt, responses={n: {"text": "WRONG, it forgets"}})
    answer = answer_check(attempt=attempt, position=n)
    answer_grade_free_text(answer_id=answer.pk)
    page = as_user(student).get(reverse("quizzes:attempt", args=[attempt.pk])).content.decode()
    assert "Wrong" in page and "Ask for a review" not in page  # only once handed in
    attempt_submit(attempt=attempt)
    ask(as_user(student), fresh(answer), "Forgetting is the opposite, I know; I meant memorising.")
    answer = fresh(answer)
    assert answer.needs_review and answer.score == 0.0 and answer.attempt.state == Attempt.State.GRADED
    assert listed(as_user(instructor).get(QUEUE).content.decode()) == {answer.pk}


def test_a_regrade_keeps_the_request_waiting(classroom, instructor, student):
    answer = graded(student)
    answer_review_request(answer=answer, by=student, reason="Please check.")
    question_regrade(question=Question.objects.get(slug="t-free"))
    answer_grade_free_text(answer_id=answer.pk)
    answer = fresh(answer)
    assert answer.needs_review and answer.score == 1.0 and answer.review_request == "Please check."
    assert answer.attempt.state == Attempt.State.GRADED
    assert listed(as_user(instructor).get(QUEUE).content.decode()) == {answer.pk}


# ---------------------------------------------------------------- the decision comes back


def test_the_instructors_decision_and_comment_reach_the_student(classroom, instructor, student):
    answer = graded(student)
    client = as_user(student)
    ask(client, answer, "Is one sentence enough?")
    teacher = as_user(instructor)
    teacher.post(
        reverse("quizzes:review_answer", args=[answer.pk]),
        {"action": "score", "score": 60, "comment": "Say why it fails on new data.", "next": QUEUE},
    )
    assert listed(teacher.get(QUEUE).content.decode()) == set()
    answer = fresh(answer)
    assert (answer.score, answer.graded_by, answer.needs_review) == (0.6, "instructor", False)
    assert answer.attempt.score == pytest.approx(0.6 / 8)
    mine = block_of(client.get(results(answer)).content.decode(), answer)
    assert 'data-status="final"' in mine and "60%" in mine and "graded by an instructor" in mine
    assert "You asked for a review on" in mine and "an instructor decided on" in mine
    assert "Say why it fails on new data." in mine
    assert "Ask for a review" not in mine  # decided: final
    # The page that polls gets the decision too.
    status = client.get(reverse("quizzes:status", args=[answer.attempt_id])).json()
    row = next(r for r in status["answers"] if r["n"] == answer.position)
    assert row["status"] == "final" and "Say why it fails on new data." in row["html"]


def test_full_marks_from_an_instructor_clear_the_missing_marks(classroom, instructor, student):
    answer = graded(student, "WRONG: it learns too slowly")
    client = as_user(student)
    before = block_of(client.get(results(answer)).content.decode(), answer)
    assert before.count("Missing:") == 2 and "✗" in before
    ask(client, answer)
    answer_review(answer=fresh(answer), by=instructor, score=1.0, comment="Right after all.")
    after = block_of(client.get(results(answer)).content.decode(), answer)
    assert "✗" not in after and "Missing:" not in after
    assert (
        after.count("Covered:") == 2
        and "(your instructor gave this answer full marks, so all of it counts as covered):" in after
    )
    # Less than full marks leaves the grader's findings as they were.
    answer_review(answer=fresh(answer), by=instructor, score=0.9)
    assert block_of(client.get(results(answer)).content.decode(), answer).count("Missing:") == 2


# ---------------------------------------------------------------- who may ask


@pytest.mark.parametrize("who", ["student2", "other_student", "outsider", "instructor", "other_instructor"])
def test_nobody_but_the_student_may_ask(request, classroom, other_classroom, student, who):
    answer = graded(student)
    response = as_user(request.getfixturevalue(who)).post(ask_url(answer), {"reason": "mine now"})
    assert response.status_code == 404
    assert not fresh(answer).needs_review and fresh(answer).review_requested_at is None


def test_anonymous_visitors_are_sent_to_log_in(client, classroom, student):
    answer = graded(student)
    response = client.post(ask_url(answer))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not fresh(answer).needs_review


def test_asking_needs_a_post_and_the_csrf_token(classroom, student):
    answer = graded(student)
    assert as_user(student).get(ask_url(answer)).status_code == 405
    assert as_user(student, enforce_csrf_checks=True).post(ask_url(answer)).status_code == 403
    assert not fresh(answer).needs_review


def test_the_service_refuses_anyone_but_the_student(classroom, student, student2):
    answer = graded(student)
    with pytest.raises(PermissionError):
        answer_review_request(answer=answer, by=student2)
    assert not fresh(answer).needs_review


# ---------------------------------------------------------------- what may be asked


def test_a_second_request_is_refused_and_keeps_the_first(classroom, student):
    answer = graded(student)
    client = as_user(student)
    ask(client, answer, "First reason.")
    asked_at = fresh(answer).review_requested_at
    page = ask(client, answer, "Second reason.").content.decode()
    assert models.MSG_REVIEW_ASKED_ALREADY in page and MSG_REVIEW_ASKED not in page
    assert (fresh(answer).review_requested_at, fresh(answer).review_request) == (asked_at, "First reason.")


def _pending(student, instructor):
    return graded(student, grade=False)


def _sent_by_the_grader(student, instructor):
    return graded(student, "UNSURE: maybe it memorises")


def _decided(student, instructor):
    return answer_review(answer=graded(student), by=instructor, score=0.5)


def _multiple_choice(student, instructor):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    answers_save(attempt=attempt, responses={positions(attempt)["t-single"]: {"choice": "b"}})
    attempt_submit(attempt=attempt)
    return Answer.objects.get(attempt=attempt, question__slug="t-single")


def _blank(student, instructor):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    attempt_submit(attempt=attempt)
    return Answer.objects.get(attempt=attempt, question__slug="t-free")


def _still_open(student, instructor):
    attempt = attempt_start(user=student, quiz="history", mode="practice")
    n = positions(attempt)["t-free"]
    answers_save(attempt=attempt, responses={n: {"text": "It memorises."}})
    answer = answer_check(attempt=attempt, position=n)
    answer_grade_free_text(answer_id=answer.pk)
    return answer


@pytest.mark.parametrize(
    "make, message",
    [
        (_pending, models.MSG_REVIEW_PENDING),
        (_sent_by_the_grader, models.MSG_REVIEW_WAITING),
        (_decided, models.MSG_REVIEW_DECIDED),
        (_multiple_choice, models.MSG_REVIEW_NOT_FREE_TEXT),
        (_blank, models.MSG_REVIEW_NOTHING),
        (_still_open, models.MSG_REVIEW_NOT_HANDED_IN),
    ],
    ids=["pending", "sent by the grader", "decided", "multiple choice", "blank", "attempt still open"],
)
def test_a_request_on_an_answer_a_person_cannot_review_is_refused(classroom, instructor, student, make, message):
    answer = make(student, instructor)
    before = fresh(answer)
    page = ask(as_user(student), answer, "Please.").content.decode()
    assert message in page and MSG_REVIEW_ASKED not in page
    after = fresh(answer)
    assert (after.needs_review, after.review_requested_at, after.score, after.verdict) == (
        before.needs_review, None, before.score, before.verdict,
    )  # fmt: skip
    if not after.attempt.is_open:
        assert f'action="{ask_url(answer)}"' not in as_user(student).get(results(answer)).content.decode()


def test_a_reason_too_long_is_refused_with_a_clear_message(classroom, student):
    answer = graded(student)
    page = ask(as_user(student), answer, "x" * 1001).content.decode()
    assert "Keep your reason to 1,000 characters or fewer." in page
    assert not fresh(answer).needs_review
    with pytest.raises(ReviewRefused):
        answer_review_request(answer=answer, by=student, reason="y" * 1001)
    # Line breaks count once each, as the student typed them.
    ask(as_user(student), answer, "z\r\n" * 499 + "z")
    assert fresh(answer).needs_review and len(fresh(answer).review_request) == 999


# ---------------------------------------------------------------- the class's answer rule


def test_a_request_is_allowed_while_the_key_is_hidden_and_reveals_nothing(classroom, instructor, student):
    type(classroom).objects.filter(pk=classroom.pk).update(test_answers=AnswersShown.NEVER)
    answer = graded(student, "WRONG: it learns too slowly")
    client = as_user(student)
    page = client.get(results(answer)).content.decode()
    assert f'action="{ask_url(answer)}"' in page and not any(k in page for k in KEY)
    response = ask(client, answer, "Why zero?")
    page = response.content.decode()
    assert MSG_REVIEW_ASKED in page and "You asked for a review on" in page
    assert not any(k in page for k in KEY) and "0%" not in block_of(page, answer)
    answer_review(answer=fresh(answer), by=instructor, score=1.0, comment="You are right.")
    page = client.get(results(answer)).content.decode()
    assert "an instructor decided on" in page and "You are right." in page and not any(k in page for k in KEY)


# ---------------------------------------------------------------- query budget


def test_the_results_page_keeps_its_query_budget_with_requests(classroom, student, django_assert_num_queries):
    client = as_user(student)
    answer = graded(student)
    ask(client, answer, "Please look.")
    # django_session, auth_user, attempt, the student's open tests, their classes' rules, answers with
    # questions and sections, their glossary terms, the section's title
    with django_assert_num_queries(8):
        page = client.get(results(answer)).content.decode()
    assert "You asked for a review on" in page
