"""A test's answer key stays with the instructors until the class's rule lets students see it:
one open test per quiz (a second start resumes it), practice closed while a test of the same
questions is open, and, per class, right answers after hand-in, after the deadline, or never."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import AnswersShown, Classroom, Extension, QuizDeadline
from accounts.services import classroom_create, classroom_join
from quizzes import selectors
from quizzes.models import Attempt
from quizzes.services import PracticeClosed, answer_check, answers_save, attempt_start, attempt_submit
from tests.quizzes.support import all_right, positions

pytestmark = pytest.mark.django_db

# What only the key says: the history quiz's explanations, its right option, its model answer.
KEY = ("EXPLAIN-SINGLE", "Quokka", "EXPLAIN-TF", "REFERENCE-SENTINEL", "KEYPOINT-SENTINEL")


def shows_key(page: str) -> bool:
    return any(secret in page for secret in KEY)


def url(name: str, attempt: Attempt) -> str:
    return reverse(f"quizzes:{name}", args=[attempt.pk])


def start(client, quiz: str, mode: str = "test", **extra):
    return client.post(reverse("quizzes:section", args=[quiz]), {"mode": mode, **extra})


def started(response) -> Attempt:
    assert response.status_code == 302, response.status_code
    return Attempt.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


def deadline(classroom: Classroom, quiz: str, *, days: float) -> QuizDeadline:
    return QuizDeadline.objects.create(classroom=classroom, quiz=quiz, due_at=timezone.now() + timedelta(days=days))


def rule(classroom: Classroom, value: str) -> None:
    Classroom.objects.filter(pk=classroom.pk).update(test_answers=value)


def handed_in_blank(user, quiz: str = "history") -> Attempt:
    attempt = attempt_start(user=user, quiz=quiz, mode="test")
    attempt_submit(attempt=attempt)
    attempt.refresh_from_db()
    return attempt


# ---------------------------------------------------------------- one open test per quiz


def test_the_reported_exploit_no_longer_reads_the_key_for_a_second_timed_test(client, student, mini_bank):
    """Open two attempts of a timed test, hand one in blank, read the key, answer the other: the
    second start now resumes the first, so handing it in leaves nothing open to answer."""
    client.force_login(student)
    first = started(start(client, "history", timed="on"))
    second = started(start(client, "history", timed="on"))
    assert second.pk == first.pk
    assert Attempt.objects.filter(user=student).count() == 1
    client.post(url("submit", first))
    assert shows_key(client.get(url("review", first)).content.decode())  # no class: shown at hand-in
    answered = client.post(url("save", second), {**all_right(second), "action": "submit"})
    assert answered["Location"] == url("review", first)  # already handed in: nothing taken
    first.refresh_from_db()
    assert first.score == 0 and not Attempt.objects.filter(user=student, state="in_progress").exists()


def test_a_second_start_of_a_test_resumes_the_open_one_and_says_so(client, student, mini_bank):
    client.force_login(student)
    first = started(start(client, "history"))
    response = start(client, "history", timed="on")
    assert started(response).pk == first.pk
    page = client.get(response["Location"]).content.decode()
    assert "You already have a test of this quiz open" in page
    assert "Starting a test takes you back to it" in client.get(reverse("quizzes:section", args=["history"])).text
    # A test of another quiz is a test of its own; after hand-in, a start draws afresh.
    assert attempt_start(user=student, quiz="machine-learning", mode="test").pk != first.pk
    attempt_submit(attempt=first)
    assert started(start(client, "history")).pk != first.pk


def test_a_timed_test_whose_time_ran_out_is_handed_in_and_a_new_one_drawn(student, mini_bank):
    first = attempt_start(user=student, quiz="history", mode="test", timed=True)
    Attempt.objects.filter(pk=first.pk).update(deadline=timezone.now() - timedelta(minutes=5))
    second = attempt_start(user=student, quiz="history", mode="test")
    first.refresh_from_db()
    assert second.pk != first.pk and first.timed_out and second.is_open


def test_the_database_refuses_a_second_open_test_of_a_quiz(student, mini_bank):
    first = attempt_start(user=student, quiz="history", mode="test")
    with pytest.raises(IntegrityError), transaction.atomic():
        Attempt.objects.create(user=student, quiz="history", mode="test", question_ids=first.question_ids)
    # Practice attempts and handed-in tests are not limited.
    Attempt.objects.create(user=student, quiz="history", mode="test", state="graded")
    Attempt.objects.create(user=student, quiz="machine-learning", mode="practice")
    Attempt.objects.create(user=student, quiz="machine-learning", mode="practice")


def test_two_starts_at_once_yield_one_attempt(student, mini_bank, monkeypatch):
    """The race: the second start looked before the first had written its attempt."""
    first = attempt_start(user=student, quiz="history", mode="test")
    monkeypatch.setattr(selectors, "open_test_of", lambda tests, quiz: None)
    second = attempt_start(user=student, quiz="history", mode="test")
    assert second.pk == first.pk
    assert Attempt.objects.filter(user=student).count() == 1
    assert first.answers.count() == len(first.question_ids)


@pytest.mark.django_db(transaction=True)
def test_two_starts_in_two_threads_at_once_yield_one_attempt(student, mini_bank, monkeypatch):
    """The same race for real: two connections, each past its look for an open test before either writes."""
    looked = threading.Barrier(2, timeout=10)
    real_lookup = selectors.open_test_of

    def look_then_wait(tests, quiz):
        found = real_lookup(tests, quiz)
        looked.wait()
        return found

    monkeypatch.setattr(selectors, "open_test_of", look_then_wait)
    results, errors = [], []

    def start_one():
        try:
            results.append(attempt_start(user=student, quiz="history", mode="test").pk)
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=start_one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 2
    assert results[0] == results[1] and Attempt.objects.filter(user=student).count() == 1


# ---------------------------------------------------------------- practice while a test is open


def test_practice_is_closed_while_a_test_of_the_quiz_is_open_and_says_why(client, student, mini_bank):
    client.force_login(student)
    test = started(start(client, "history"))
    response = start(client, "history", mode="practice")
    assert response.status_code == 409
    page = response.content.decode()
    assert "Practice of this quiz is closed while your test of Neural networks: a short history is open" in page
    assert f'href="{url("attempt", test)}"' in page
    assert not Attempt.objects.filter(mode="practice").exists()
    # The start page says it before the student even tries.
    assert "Practice of this quiz is closed" in client.get(reverse("quizzes:section", args=["history"])).text
    # Another section's practice asks none of the test's questions: open. The chapter's draws from all: closed.
    assert start(client, "machine-learning", mode="practice").status_code == 302
    assert start(client, "chapter", mode="practice").status_code == 409
    attempt_submit(attempt=test)
    assert start(client, "history", mode="practice").status_code == 302


def test_an_open_chapter_test_closes_the_practice_of_the_sections_it_draws_from(student, mini_bank, settings):
    settings.JOURNEY_CHAPTER_QUIZ_SIZE = 500  # every question, so both sections are in it
    test = attempt_start(user=student, quiz="chapter", mode="test")
    for quiz in ("history", "machine-learning"):
        with pytest.raises(PracticeClosed) as closed:
            attempt_start(user=student, quiz=quiz, mode="practice")
        assert closed.value.test.pk == test.pk


def test_a_practice_started_before_the_test_can_no_longer_check_or_show_its_questions(client, student, mini_bank):
    practice = attempt_start(user=student, quiz="history", mode="practice")
    test = attempt_start(user=student, quiz="history", mode="test")
    n = positions(practice)["t-single"]
    answers_save(attempt=practice, responses={n: {"choice": "b"}})
    with pytest.raises(PracticeClosed):
        answer_check(attempt=practice, position=n)
    client.force_login(student)
    to_start = reverse("quizzes:section", args=["history"])
    assert client.get(url("attempt", practice))["Location"] == to_start
    assert client.post(url("save", practice), {"action": "save", "check": str(n)})["Location"] == to_start
    autosave = client.post(reverse("quizzes:autosave", args=[practice.pk, n]), {f"q{n}": "0"})
    assert autosave.status_code == 409 and autosave.json()["url"] == to_start
    assert client.post(url("submit", practice))["Location"] == to_start
    practice.refresh_from_db()
    assert practice.is_open and not practice.answers.exclude(verdict="").exists()
    assert test.is_open


def test_a_blank_practice_handed_in_hides_the_key_of_questions_in_the_open_test(client, student, mini_bank):
    """The second half of the finding: the chapter test and the section's practice share questions."""
    practice = attempt_start(user=student, quiz="history", mode="practice")
    attempt_submit(attempt=practice)  # handed in blank, as the exploit did
    test = attempt_start(user=student, quiz="chapter", mode="test")
    client.force_login(student)
    page = client.get(url("review", practice)).content.decode()
    shared = set(test.question_ids) & set(practice.question_ids)
    assert shared
    held = [q for q in mini_bank.values() if q.pk in shared]
    for question in held:
        assert question.explanation_html not in page, question.slug
    assert "so their answers are hidden here until you hand that test in" in page
    assert f'href="{url("attempt", test)}"' in page
    status = client.get(url("status", practice)).json()
    assert not any(shows_key(row.get("html", "")) for row in status["answers"])
    attempt_submit(attempt=test)
    assert shows_key(client.get(url("review", practice)).content.decode())


# ---------------------------------------------------------------- when a test's answers are shown, per class


def test_by_default_a_quiz_with_a_deadline_shows_its_answers_after_the_deadline(client, student, classroom, mini_bank):
    assert classroom.test_answers == AnswersShown.AFTER_DEADLINE
    due = deadline(classroom, "history", days=2)
    attempt = handed_in_blank(student)
    client.force_login(student)
    page = client.get(url("review", attempt)).content.decode()
    assert not shows_key(page) and "verdict-incorrect" not in page and "Wrong" not in page
    assert f"are shown after the quiz's deadline: {due.due_at:%b} {due.due_at.day} {due.due_at:%Y, %H:%M} UTC" in page
    assert "0%" in page  # the score itself is no secret
    status = client.get(url("status", attempt)).json()
    assert not any(shows_key(row.get("html", "")) for row in status["answers"])
    QuizDeadline.objects.filter(pk=due.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    assert shows_key(client.get(url("review", attempt)).content.decode())


def test_without_a_deadline_the_default_shows_the_answers_at_hand_in(client, student, classroom, mini_bank):
    deadline(classroom, "machine-learning", days=2)  # another quiz's deadline says nothing of this one
    attempt = handed_in_blank(student)
    client.force_login(student)
    assert shows_key(client.get(url("review", attempt)).content.decode())


def test_an_extension_holds_the_answers_back_until_the_students_own_deadline(client, student, classroom, mini_bank):
    due = deadline(classroom, "history", days=-1)  # the class's deadline has passed...
    Extension.objects.create(deadline=due, student=student, due_at=timezone.now() + timedelta(days=1))
    attempt = handed_in_blank(student)  # ... but not this student's
    client.force_login(student)
    assert not shows_key(client.get(url("review", attempt)).content.decode())


def test_after_hand_in_shows_the_answers_at_once_even_before_the_deadline(client, student, classroom, mini_bank):
    rule(classroom, AnswersShown.AFTER_HAND_IN)
    deadline(classroom, "history", days=2)
    attempt = handed_in_blank(student)
    client.force_login(student)
    assert shows_key(client.get(url("review", attempt)).content.decode())


def test_never_keeps_the_answers_hidden_even_after_the_deadline(client, student, classroom, mini_bank):
    rule(classroom, AnswersShown.NEVER)
    deadline(classroom, "history", days=-1)
    attempt = handed_in_blank(student)
    client.force_login(student)
    page = client.get(url("review", attempt)).content.decode()
    assert not shows_key(page)
    assert "Your class does not show the right answers of its tests" in page


def test_a_student_in_several_classes_gets_the_strictest_rule(client, student, classroom, make_user, mini_bank):
    other = classroom_create(by=make_user("teacher2", role="instructor"), name="Tuesday group")
    classroom_join(user=student, code=other.code)
    rule(classroom, AnswersShown.AFTER_HAND_IN)
    early, late = deadline(classroom, "history", days=-1), deadline(other, "history", days=3)
    attempt = handed_in_blank(student)
    client.force_login(student)
    page = client.get(url("review", attempt)).content.decode()
    assert not shows_key(page)
    assert f"{late.due_at:%b} {late.due_at.day} {late.due_at:%Y, %H:%M} UTC" in page  # the later of the two
    rule(other, AnswersShown.NEVER)
    assert "does not show" in client.get(url("review", attempt)).content.decode()
    assert early.due_at < late.due_at


def test_an_instructor_always_sees_the_answers(client, student, instructor, classroom, make_user, mini_bank):
    rule(classroom, AnswersShown.NEVER)
    attempt = handed_in_blank(student)
    client.force_login(instructor)
    assert shows_key(client.get(url("review", attempt)).content.decode())
    status = client.get(url("status", attempt)).json()
    assert any(shows_key(row.get("html", "")) for row in status["answers"])
    # ... their own tests too, even sitting in a class as a student.
    colleague = make_user("teacher2", role="instructor")
    classroom_join(user=colleague, code=classroom.code)
    own = handed_in_blank(colleague)
    client.force_login(colleague)
    assert shows_key(client.get(url("review", own)).content.decode())


def test_practice_shows_its_answers_whatever_the_rule(client, student, classroom, mini_bank):
    rule(classroom, AnswersShown.NEVER)
    practice = attempt_start(user=student, quiz="history", mode="practice")
    attempt_submit(attempt=practice)
    client.force_login(student)
    assert shows_key(client.get(url("review", practice)).content.decode())


def test_the_review_page_keeps_its_query_budget_when_answers_are_hidden(
    client, student, classroom, mini_bank, django_assert_num_queries
):
    deadline(classroom, "history", days=2)
    attempt = handed_in_blank(student)
    client.force_login(student)
    # django_session, auth_user, attempt, the student's open tests, their classes' rules, auth_group
    # (an instructor sees the answers), answers with questions and sections, their glossary terms, title
    with django_assert_num_queries(9):
        assert not shows_key(client.get(url("review", attempt)).content.decode())


# ---------------------------------------------------------------- the class's setting


def test_the_class_settings_page_sets_when_answers_are_shown(client, instructor, classroom, make_user):
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_settings", args=[classroom.pk])).content.decode()
    assert "Show students the right answers of a test" in page and 'value="after_deadline" selected' in page
    target = reverse("dashboard:class_test_answers", args=[classroom.pk])
    response = client.post(target, {"test_answers": "never"}, follow=True)
    assert "Saved: students never see a test&#x27;s right answers" in response.content.decode()
    classroom.refresh_from_db()
    assert classroom.test_answers == AnswersShown.NEVER
    assert client.post(target, {"test_answers": "sometimes"}).status_code == 400
    client.force_login(make_user("teacher2", role="instructor"))
    assert client.post(target, {"test_answers": "after_hand_in"}).status_code == 404
    classroom.refresh_from_db()
    assert classroom.test_answers == AnswersShown.NEVER
