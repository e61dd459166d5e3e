"""Classes in a real browser: a new student signs up from a join link; an instructor creates a
class, follows a student's reading, quiz and free-text answer, grades it from the review queue
and downloads the CSV. axe-core checks every page on the way."""

import csv
import socket

import pytest

from tests.browser.conftest import PASSWORD, axe_violations, horizontal_overflow, login
from tests.support import WorkerProcess

SECTION = "how-the-image-recognizer-works"  # its quiz has one free-text question
ANSWER = "First only the new head is trained while the pretrained body stays frozen, then all layers are trained."


def _no_violations(problems):
    problems = {name: lines for name, lines in problems.items() if lines}
    assert not problems, "\n".join(f"{name}: {line}" for name, lines in problems.items() for line in lines)


def test_a_new_student_signs_up_from_a_join_link_and_is_in_the_class(new_page, instructor, course, shots):
    from accounts.models import ClassMembership
    from accounts.services import classroom_create

    monday = classroom_create(by=instructor, name="Monday group")
    friday = classroom_create(by=instructor, name="Friday lab")
    page = new_page()
    problems = {}

    page.goto(f"/classes/join/{monday.code}/")
    assert "/accounts/login/" in page.url  # the link asks a visitor to log in first
    with page.expect_navigation():
        page.get_by_role("link", name="Make an account").click()
    problems["signup"] = axe_violations(page)
    page.fill("#id_username", "newcomer")
    page.fill("#id_email", "newcomer@example.com")
    page.fill("#id_password1", "a-long-pass-77")
    page.fill("#id_password2", "a-long-pass-77")
    shots("signup", page)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign up").click()

    # Straight back to the invitation, now signed in.
    assert page.locator("h1").inner_text() == "Join “Monday group”?"
    problems["join-link"] = axe_violations(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Join the class").click()
    assert "You are in “Monday group”." in page.locator(".messages").inner_text()
    problems["my-progress"] = axe_violations(page)

    # A second class, with the code typed in by hand (a wrong one first).
    page.goto("/classes/")
    page.get_by_label("Join code").fill("NOPE99")
    with page.expect_navigation():
        page.get_by_role("button", name="Join").click()
    assert "No class has that code" in page.locator("main").inner_text()
    problems["join-error"] = axe_violations(page)
    page.get_by_label("Join code").fill(friday.code)
    with page.expect_navigation():
        page.get_by_role("button", name="Join").click()
    page.goto("/classes/")
    joined = page.locator("ul.class-list li").all_inner_texts()
    assert sorted(joined) == ["Friday lab", "Monday group"]
    problems["classes"] = axe_violations(page)
    shots("classes", page)
    assert set(ClassMembership.objects.filter(user__username="newcomer").values_list("classroom__name", flat=True)) == {
        "Monday group", "Friday lab"}  # fmt: skip
    _no_violations(problems)


@pytest.fixture
def reviewing_worker(celery_worker, worker_env, tmp_path):
    """A worker that grades free text with JOURNEY_REVIEW_EVERY_ANSWER on, so every free-text test
    answer waits for the instructor with the grader's suggestion. The shared worker leaves the cpu
    queue to it meanwhile."""
    from config.celery_app import app

    shared = [f"test@{socket.gethostname()}"]
    assert app.control.cancel_consumer("cpu", destination=shared, reply=True, timeout=10)
    env = {**worker_env, "JOURNEY_REVIEW_EVERY_ANSWER": "true"}
    worker = WorkerProcess(env, tmp_path / "reviewer.log", queues="cpu", name="reviewer")
    try:
        yield worker
    finally:
        worker.stop()
        app.control.add_consumer("cpu", destination=shared, reply=True, timeout=10)


def test_an_instructor_follows_a_student_and_grades_a_free_text_answer(
    new_page, instructor, student, course, reviewing_worker, tmp_path, shots
):
    from accounts.models import Classroom
    from quizzes.models import Answer

    problems = {}
    teacher = new_page()
    login(teacher, instructor.username)
    teacher.goto("/classes/")
    teacher.get_by_label("Class name").fill("Monday group")
    with teacher.expect_navigation():
        teacher.get_by_role("button", name="Create a class").click()
    classroom = Classroom.objects.get(name="Monday group")
    assert classroom.code in teacher.locator("main").inner_text()  # the settings page shows the code
    problems["class-settings"] = axe_violations(teacher)

    # The student joins, reads a section and hands in its quiz with a free-text answer.
    pupil = new_page()
    login(pupil, student.username, PASSWORD)
    pupil.goto(f"/classes/join/{classroom.code}/")
    with pupil.expect_navigation():
        pupil.get_by_role("button", name="Join the class").click()
    pupil.goto(f"/chapter/{SECTION}/")
    with pupil.expect_navigation():
        pupil.get_by_role("button", name="Mark as read and go on").click()
    pupil.goto(f"/quizzes/{SECTION}/")
    pupil.check("input[name=mode][value=test]")
    with pupil.expect_navigation():
        pupil.click("form.start-form button[type=submit]")
    for question in pupil.locator("fieldset.question").all():
        choices = question.locator("ul.choices input")
        if choices.count():
            choices.first.check()
        for select in question.locator("select").all():
            select.select_option(index=1)
        for box in question.locator("input[type=text]").all():
            box.fill("1")
        for box in question.locator("textarea").all():
            box.fill(ANSWER)
    with pupil.expect_navigation():
        pupil.click("button[name=action][value=submit]:visible")
    results_url = pupil.url
    # The real grader runs on the worker; with every grade reviewed, the student is told to wait.
    pupil.get_by_text("Awaiting review.").wait_for(timeout=90_000)
    answer = Answer.objects.get(attempt__user=student, question__type="free_text")
    assert answer.needs_review and answer.grader_result["score"] is not None

    # The instructor sees the reading and the attempt on the roster ...
    teacher.goto(f"/classes/{classroom.pk}/")
    row = teacher.locator("tbody tr", has_text=student.username)
    assert row.count() == 1
    assert "1" in row.locator("td").first.inner_text()  # one section read
    problems["dashboard"] = axe_violations(teacher)
    shots("dashboard", teacher, readme="dashboard")
    with teacher.expect_navigation():
        row.get_by_role("link", name=student.username).click()
    assert "Read" in teacher.locator("main").inner_text()
    problems["student"] = axe_violations(teacher)
    for name in ("Questions", "Experiments"):
        with teacher.expect_navigation():
            teacher.locator("nav.class-nav").get_by_role("link", name=name).click()
        problems[name.lower()] = axe_violations(teacher)

    # ... accepts the grader's suggestion from the review queue, with a comment ...
    comment = "Good: say also that the weights start random."
    _review_one(teacher, classroom, student, comment=comment, problems=problems, shots=shots)
    answer.refresh_from_db()
    assert not answer.needs_review and answer.score == answer.grader_result["score"]
    assert answer.reviewed_by == instructor

    # ... and the student's results now show the grade and the comment.
    pupil.goto(results_url)
    assert comment in pupil.locator("main").inner_text()
    assert "Awaiting review." not in pupil.locator("main").inner_text()
    problems["quiz-results"] = axe_violations(pupil)
    shots("quiz-review", pupil)
    pupil.locator(".result", has_text=comment).scroll_into_view_if_needed()
    pupil.evaluate("() => window.scrollBy(0, -120)")
    shots("quiz-review-graded", pupil, full_page=False, readme="quiz-review")

    # The CSV: one row for the student, with the section read and the test's score.
    teacher.goto(f"/classes/{classroom.pk}/")
    with teacher.expect_download() as download:
        teacher.locator("nav.class-nav").get_by_role("link", name="Download CSV").click()
    path = tmp_path / "class.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["username"] for r in rows] == [student.username]
    assert rows[0]["sections_read"] == "1"
    answer.attempt.refresh_from_db()
    assert rows[0][f"{SECTION}_best"] == f"{answer.attempt.score * 100:.0f}"
    _no_violations(problems)


def _review_one(teacher, classroom, student, *, comment, problems, shots):
    """From the roster, through the class menu's review link (which counts one waiting answer)."""
    teacher.goto(f"/classes/{classroom.pk}/")
    link = teacher.locator("nav.class-nav").get_by_role("link", name="Review")
    assert "1" in link.inner_text()
    with teacher.expect_navigation():
        link.click()
    item = teacher.locator("article.review-item", has_text=student.username)
    assert item.count() == 1
    problems["review-queue"] = axe_violations(teacher)
    shots("review-queue", teacher, readme="review-queue")
    item.get_by_label("Comment for the student").fill(comment)
    with teacher.expect_navigation():
        item.get_by_role("button", name="Accept suggestion").click()
    assert "Nothing is waiting for you." in teacher.locator("main").inner_text()


def _hand_in_a_free_text_answer(student):
    """A test of SECTION handed in; the grader (not running here) gives up on its free-text answer."""
    from quizzes.models import Answer
    from quizzes.services import answer_grading_failed, answers_save, attempt_start, attempt_submit
    from tests.quizzes.support import positions

    attempt = attempt_start(user=student, quiz=SECTION, mode="test")
    answer = Answer.objects.get(attempt=attempt, question__type="free_text")
    answers_save(attempt=attempt, responses={positions(attempt)[answer.question.slug]: {"text": ANSWER}})
    attempt_submit(attempt=attempt)
    answer_grading_failed(answer_id=answer.pk)
    return answer


def test_the_class_pages_do_not_scroll_sideways_on_a_phone(new_page, instructor, student, course, monkeypatch, shots):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.services import classroom_create, classroom_join, deadline_set
    from quizzes import tasks
    from quizzes.services import answer_review

    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda *args, **kwargs: None)
    classroom = classroom_create(by=instructor, name="A class with a long name for a small phone screen")
    classroom_join(user=student, code=classroom.code)
    deadline_set(classroom=classroom, by=instructor, quiz=SECTION, due_at=timezone.now() + timedelta(days=7))
    # The review queue with one answer waiting and one in "Recently graded".
    answer_review(answer=_hand_in_a_free_text_answer(student), by=instructor, score=0.5, comment="Half of it.")
    _hand_in_a_free_text_answer(student)
    page = new_page(width=360, height=740)
    login(page, instructor.username)
    for name in ("", "questions/", "jobs/", f"students/{student.pk}/", "settings/"):
        page.goto(f"/classes/{classroom.pk}/{name}")
        shots(name.strip("/").replace("/", "-") or "roster", page)
        assert horizontal_overflow(page) <= 0, name
    page.goto("/quizzes/review/")
    assert page.locator("article.review-item").count() == 1
    assert page.get_by_role("link", name="Change grade").count() >= 1  # the instructor's, and the automatic grades
    shots("review-queue", page)
    assert horizontal_overflow(page) <= 0
