"""Free-text answers: graded after commit by a task on the cpu queue, unsure grades sent to an
instructor, the student's page following along, and a grader that fails handled.

These tests make up the model's outputs (tests/fixtures/quizzes.fake_grader) and run the real decision;
test_grading_worker.py runs the real task in a real worker against the real grader."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import classroom_join
from quizzes import grading, tasks
from quizzes.models import Answer, Attempt
from quizzes.services import (
    MSG_GRADER_FAILED,
    answer_check,
    answer_grade_free_text,
    answers_save,
    attempt_start,
    attempt_submit,
    grading_dispatch,
    gradings_redispatch,
)
from tests.quizzes.support import all_right, positions

pytestmark = pytest.mark.django_db


def hand_in(client, attempt, text, **extra):
    data = {**all_right(attempt), f"q{positions(attempt)['t-free']}": text, "action": "submit", **extra}
    return client.post(reverse("quizzes:save", args=[attempt.pk]), data)


def free_answer(attempt):
    return Answer.objects.get(attempt=attempt, question__slug="t-free")


@pytest.fixture
def queued(monkeypatch):
    """Record what would go to the broker instead of sending it."""
    sent = []
    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda args, **kw: sent.append(args))
    return sent


def test_the_spec_carries_the_questions_key(mini_bank, fake_grader):
    spec = mini_bank["t-free"].free_text_spec()
    assert isinstance(spec, grading.FreeTextSpec)
    assert spec.prompt.strip() == "Explain overfitting."
    assert spec.reference_answer.startswith("REFERENCE-SENTINEL")
    assert spec.key_points == ("KEYPOINT-SENTINEL: it memorises the training data.", "It does badly on new data.")
    assert spec.misconceptions == ("MISCONCEPTION-SENTINEL",)


def test_the_task_goes_to_the_cpu_queue():
    from config.celery_app import app

    assert app.amqp.router.route({}, tasks.grade_free_text.name, (1,), {})["queue"].name == "cpu"


def test_handing_in_queues_one_grading_per_free_text_answer_after_commit(
    client, student, mini_bank, queued, django_capture_on_commit_callbacks
):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        hand_in(client, attempt, "It memorises the training set.")
    assert queued == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    answer = free_answer(attempt)
    assert queued == [[answer.pk]]
    assert answer.verdict == "pending" and answer.grading_queued_at is not None
    attempt.refresh_from_db()
    assert attempt.state == "submitted" and attempt.score == pytest.approx(7 / 8)


def test_an_empty_free_text_answer_is_marked_without_the_grader(client, student, mini_bank, queued, fake_grader):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    attempt_submit(attempt=attempt)
    answer = free_answer(attempt)
    assert (answer.verdict, answer.score, answer.graded_by) == ("incorrect", 0, "auto")
    assert queued == [] and fake_grader.calls == []


def test_the_grade_arrives_and_the_students_page_follows_it(client, student, mini_bank, fake_grader, queued):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    hand_in(client, attempt, "It memorises its training data and then fails on new data.")
    status = client.get(reverse("quizzes:status", args=[attempt.pk])).json()
    row = next(r for r in status["answers"] if r["n"] == positions(attempt)["t-free"])
    assert status["pending"] and row["status"] == "pending" and "Being graded" in row["html"]
    assert 'data-status="pending"' in client.get(reverse("quizzes:review", args=[attempt.pk])).content.decode()

    assert tasks.grade_free_text.apply(args=[free_answer(attempt).pk]).get() == "graded"
    answer = free_answer(attempt)
    assert (answer.verdict, answer.score, answer.graded_by) == ("correct", 1, "grader")
    assert answer.confidence > 0.9
    assert fake_grader.calls[0][1] == "It memorises its training data and then fails on new data."

    status = client.get(reverse("quizzes:status", args=[attempt.pk])).json()
    row = next(r for r in status["answers"] if r["n"] == positions(attempt)["t-free"])
    assert not status["pending"] and row["status"] == "final" and "Right" in row["html"]
    assert status["score"] == 1 and status["score_text"] == "100%" and status["right"] == 8
    attempt.refresh_from_db()
    assert attempt.state == "graded"
    page = client.get(reverse("quizzes:review", args=[attempt.pk])).content.decode()
    assert "Well done: your answer makes the key points." in page and page.count("Covered:") == 2
    # A second delivery of the same message finds nothing to do.
    assert tasks.grade_free_text.apply(args=[answer.pk]).get() == "nothing to grade"
    assert len(fake_grader.calls) == 1


def test_a_poll_renders_only_the_blocks_whose_status_the_page_does_not_show(
    client, student, mini_bank, fake_grader, queued
):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    hand_in(client, attempt, "It memorises its training data and then fails on new data.")
    url = reverse("quizzes:status", args=[attempt.pk])
    first = client.get(url).json()["answers"]
    assert all("html" in r for r in first if r["status"] != "unchecked") and len(first) > 1
    shown = ",".join(f"{r['n']}:{r['status']}" for r in first)

    again = client.get(url, {"known": shown}).json()
    assert [r["status"] for r in again["answers"]] == [r["status"] for r in first]
    assert not any("html" in r for r in again["answers"])  # nothing changed: nothing rendered

    tasks.grade_free_text.apply(args=[free_answer(attempt).pk]).get()
    after = client.get(url, {"known": shown}).json()
    changed = [r for r in after["answers"] if "html" in r]
    assert [(r["n"], r["status"]) for r in changed] == [(positions(attempt)["t-free"], "final")]
    assert "Right" in changed[0]["html"] and after["score_text"] == "100%"

    # A page that sends something malformed gets every block again.
    for junk in ("", "x:final", "1:", ",,,", "1:final;drop"):
        rows = client.get(url, {"known": junk}).json()["answers"]
        assert all("html" in r for r in rows if r["status"] != "unchecked"), junk


def test_the_whole_path_runs_in_order_with_eager_celery(
    client, student, mini_bank, fake_grader, eager_celery, django_capture_on_commit_callbacks
):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=True):
        hand_in(client, attempt, "A WRONG idea: it has not trained enough.")
    answer = free_answer(attempt)
    assert (answer.verdict, answer.score) == ("incorrect", 0)
    in_fact = "In fact: KEYPOINT-SENTINEL: it memorises the training data."
    assert answer.feedback == f"Your answer seems to say the opposite of a key point. {in_fact}"
    attempt.refresh_from_db()
    assert attempt.state == "graded" and attempt.score == pytest.approx(7 / 8)


@pytest.mark.parametrize("text", ["UNSURE what to say", "HESITANT answer"])
def test_an_unsure_grade_waits_for_an_instructor(client, student, mini_bank, fake_grader, queued, text):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    hand_in(client, attempt, text)
    answer_grade_free_text(answer_id=free_answer(attempt).pk)
    answer = free_answer(attempt)
    assert answer.needs_review and answer.verdict == "needs_review" and answer.score is None
    assert answer.grader_result["score"] == 0.5
    attempt.refresh_from_db()
    assert attempt.state == "submitted" and attempt.score == pytest.approx(7 / 8)  # counts 0 until reviewed
    page = client.get(reverse("quizzes:review", args=[attempt.pk])).content.decode()
    assert "Awaiting review." in page
    assert answer.feedback not in page  # an unsure grader's words stay back
    status = client.get(reverse("quizzes:status", args=[attempt.pk])).json()
    assert status["review"] and not status["pending"]


def test_the_confidence_threshold_is_a_setting(client, student, mini_bank, fake_grader, queued, settings):
    settings.JOURNEY_REVIEW_CONFIDENCE = 0.2
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    hand_in(client, attempt, "HESITANT answer")
    answer_grade_free_text(answer_id=free_answer(attempt).pk)
    answer = free_answer(attempt)
    assert not answer.needs_review and (answer.verdict, answer.score) == ("partial", 0.5)


def test_every_answer_goes_to_review_when_the_setting_says_so(
    client, student, mini_bank, fake_grader, queued, settings
):
    settings.JOURNEY_REVIEW_EVERY_ANSWER = True
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    hand_in(client, attempt, "A sure and right answer")
    answer_grade_free_text(answer_id=free_answer(attempt).pk)
    answer = free_answer(attempt)
    assert answer.needs_review and answer.score is None
    assert answer.grader_result["score"] == 1.0 and answer.grader_result["confidence"] > 0.9  # the suggestion


def test_an_instructor_accepts_or_changes_a_grade_and_the_student_sees_it(
    client, student, instructor, classroom, mini_bank, fake_grader, queued
):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    hand_in(client, attempt, "UNSURE <em>maybe</em>")
    answer_grade_free_text(answer_id=free_answer(attempt).pk)
    answer = free_answer(attempt)

    client.force_login(instructor)
    queue = client.get(reverse("quizzes:review_queue")).content.decode()
    assert "t-free" in queue and "<strong>50%</strong>, unsure" in queue and answer.feedback in queue
    assert "&lt;em&gt;maybe&lt;/em&gt;" in queue and "<em>maybe</em>" not in queue
    response = client.post(reverse("quizzes:review_answer", args=[answer.pk]), {"action": "accept"})
    assert response.status_code == 302
    answer.refresh_from_db()
    assert (answer.score, answer.verdict, answer.graded_by, answer.needs_review) == (
        0.5,
        "partial",
        "instructor",
        False,
    )
    assert answer.reviewed_by == instructor
    attempt.refresh_from_db()
    assert attempt.state == "graded" and attempt.score == pytest.approx(7.5 / 8)
    page = client.get(reverse("quizzes:review_queue")).content.decode()
    assert "Saved: student gets 50% on t-free." in page
    assert "t-free" not in page.split('id="queue-title"')[1].split("Recently graded")[0]
    recent = page.split("Recently graded")[1]
    assert '<td class="question-cell">Explain overfitting.' in recent and "t-free" not in recent

    comment = "Good start, but say <why> it fails on new data."
    client.post(
        reverse("quizzes:review_answer", args=[answer.pk]), {"action": "score", "score": 80, "comment": comment}
    )
    answer.refresh_from_db()
    assert (answer.score, answer.instructor_comment) == (0.8, comment)

    client.force_login(student)
    page = client.get(reverse("quizzes:review", args=[attempt.pk])).content.decode()
    assert "graded by an instructor" in page and "80%" in page and answer.feedback not in page
    assert "Good start, but say &lt;why&gt; it fails on new data." in page
    status = client.get(reverse("quizzes:status", args=[attempt.pk])).json()
    assert not status["review"] and status["score_text"] == "98%"


def test_a_score_is_required_unless_accepting(client, instructor, student, classroom, mini_bank, fake_grader, queued):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    attempt_submit(attempt=attempt)
    answer = Answer.objects.get(attempt=attempt, question__slug="t-single")
    client.force_login(instructor)
    url = reverse("quizzes:review_answer", args=[answer.pk])
    for data in ({"action": "score"}, {"action": "score", "score": 101}, {"action": "score", "score": "x"}):
        response = client.post(url, data)
        assert response.status_code == 200 and "has-error" in response.content.decode()
    answer.refresh_from_db()
    assert answer.graded_by == "auto"


def test_an_instructor_can_override_an_automatic_grade(client, student, instructor, classroom, mini_bank):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    attempt_submit(attempt=attempt)  # everything unanswered: 0
    answer = Answer.objects.get(attempt=attempt, question__slug="t-numeric")
    client.force_login(instructor)
    assert "How heavy is it?" in client.get(reverse("quizzes:review_queue")).content.decode()  # in the recent list
    client.post(reverse("quizzes:review_answer", args=[answer.pk]), {"action": "score", "score": 100, "comment": "OK"})
    attempt.refresh_from_db()
    assert attempt.score == pytest.approx(1 / 8)


@pytest.mark.parametrize("who", ["student", "student2", "outsider"])
def test_only_instructors_see_the_queue_and_grade(client, request, mini_bank, student, who):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    attempt_submit(attempt=attempt)
    answer = Answer.objects.get(attempt=attempt, question__slug="t-single")
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("quizzes:review_queue")).status_code == 403
    url = reverse("quizzes:review_answer", args=[answer.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "score", "score": 100}).status_code == 404
    answer.refresh_from_db()
    assert answer.score == 0 and answer.graded_by == "auto"


def test_an_answer_still_being_written_is_not_open_to_instructors(client, instructor, student, classroom, mini_bank):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(instructor)
    assert client.get(reverse("quizzes:review_answer", args=[attempt.answers.first().pk])).status_code == 404


def test_a_grade_for_text_the_student_has_since_changed_is_dropped(
    student, mini_bank, fake_grader, queued, monkeypatch
):
    attempt = attempt_start(user=student, quiz="history", mode="practice")
    n = positions(attempt)["t-free"]
    answers_save(attempt=attempt, responses={n: {"text": "first try"}})
    answer_check(attempt=attempt, position=n)
    assert free_answer(attempt).verdict == "pending"

    real = grading.grade_free_text

    def slow_grader(spec, text):
        # While the grader works on the first text, the student writes a second.
        answers_save(attempt=attempt, responses={n: {"text": "second try"}})
        return real(spec, text)

    monkeypatch.setattr(grading, "grade_free_text", slow_grader)
    assert answer_grade_free_text(answer_id=free_answer(attempt).pk) == "stale"
    answer = free_answer(attempt)
    assert answer.response == {"text": "second try"} and answer.verdict == "" and answer.score is None


def test_practice_checks_free_text_with_the_grader_and_never_asks_an_instructor(
    client, student, mini_bank, fake_grader, eager_celery, django_capture_on_commit_callbacks
):
    attempt = attempt_start(user=student, quiz="history", mode="practice")
    n = positions(attempt)["t-free"]
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("quizzes:save", args=[attempt.pk]), {f"q{n}": "UNSURE text", "check": str(n)})
    answer = free_answer(attempt)
    assert not answer.needs_review and (answer.verdict, answer.score) == ("partial", 0.5)
    page = client.get(reverse("quizzes:attempt", args=[attempt.pk])).content.decode()
    assert "EXPLAIN-FREE" in page and "Partly right" in page and "REFERENCE-SENTINEL" not in page


def test_a_grader_that_keeps_failing_hands_a_test_answer_to_an_instructor(
    client, student, instructor, classroom, mini_bank, fake_grader, queued
):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    hand_in(client, attempt, "BOOM")
    # Eagerly, Celery runs each retry inline: the grader is tried 1 + max_retries times, then given up on.
    result = tasks.grade_free_text.apply(args=[free_answer(attempt).pk], throw=False)
    assert result.get() == "failed" and len(fake_grader.calls) == 1 + tasks.grade_free_text.max_retries
    answer = free_answer(attempt)
    assert answer.needs_review and answer.feedback == MSG_GRADER_FAILED and answer.grader_result is None
    client.force_login(instructor)
    assert "No suggestion:" in client.get(reverse("quizzes:review_queue")).content.decode()


def test_a_failed_practice_check_can_be_tried_again(student, mini_bank, fake_grader, queued):
    attempt = attempt_start(user=student, quiz="history", mode="practice")
    n = positions(attempt)["t-free"]
    answers_save(attempt=attempt, responses={n: {"text": "BOOM"}})
    answer_check(attempt=attempt, position=n)
    assert tasks.grade_free_text.apply(args=[free_answer(attempt).pk], throw=False).get() == "failed"
    answer = free_answer(attempt)
    assert answer.verdict == "" and not answer.needs_review and "not available" in answer.feedback


def test_a_grading_that_never_reached_the_broker_is_sent_again(student, mini_bank, monkeypatch):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    n = positions(attempt)["t-free"]
    answers_save(attempt=attempt, responses={n: {"text": "some words"}})

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("no broker")

    monkeypatch.setattr(tasks.grade_free_text, "apply_async", broker_down)
    attempt_submit(attempt=attempt)
    answer = free_answer(attempt)
    assert grading_dispatch(answer_id=answer.pk) is False
    assert Answer.objects.get(pk=answer.pk).verdict == "pending"

    sent = []
    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda args, **kw: sent.append(args))
    assert gradings_redispatch() == []  # not stale yet
    Answer.objects.filter(pk=answer.pk).update(grading_queued_at=timezone.now() - timedelta(hours=1))
    assert tasks.housekeeping() == {"closed": [], "requeued": [answer.pk]}
    assert sent == [[answer.pk]]
    assert Answer.objects.get(pk=answer.pk).grading_queued_at > timezone.now() - timedelta(minutes=1)


def test_the_quiz_list_says_when_grades_are_still_coming(client, student, mini_bank, queued):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    client.force_login(student)
    hand_in(client, attempt, "words")
    assert Attempt.objects.get(pk=attempt.pk).state == "submitted"
    assert "grades coming" in client.get(reverse("quizzes:index")).content.decode()


def test_the_review_queue_query_count_does_not_grow_with_answers(
    client, instructor, classroom, make_user, mini_bank, fake_grader, queued, django_assert_num_queries
):
    client.force_login(instructor)
    for i in range(4):
        user = make_user(f"learner{i}")
        classroom_join(user=user, code=classroom.code)
        attempt = attempt_start(user=user, quiz="history", mode="test")
        answers_save(attempt=attempt, responses={positions(attempt)["t-free"]: {"text": "UNSURE"}})
        attempt_submit(attempt=attempt)
        answer_grade_free_text(answer_id=free_answer(attempt).pk)
        # django_session, auth_user, auth_group (instructor?), classes taught with their waiting counts,
        # answers waiting, answers recently graded
        with django_assert_num_queries(6):
            page = client.get(reverse("quizzes:review_queue")).content.decode()
        assert page.count("<strong>50%</strong>, unsure") == i + 1
