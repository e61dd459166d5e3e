"""An instructor's home: their classes, each with what waits for them and a link to where they handle it."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.selectors import class_deadlines
from dashboard import selectors
from mlworker.models import JobState
from mlworker.services import job_submit
from tests.dashboard.support import job_end, waiting_answer

pytestmark = pytest.mark.django_db


def _card(page: str, name: str) -> str:
    start = page.index(f">{name}</a></h2>")
    return page[start : page.index("</article>", start)]


def test_an_instructor_lands_on_their_classes_after_logging_in(client, instructor, classroom, make_user):
    response = client.post(
        reverse("login"), {"username": instructor.username, "password": "pw-for-tests-1"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("home")
    page = response.content.decode()
    assert "<h1>Your classes</h1>" in page and "Monday group" in page
    assert "Your deep-learning journey starts here" not in page


def test_a_student_keeps_the_chapter_home(client, student, classroom):
    client.force_login(student)
    page = client.get(reverse("home")).content.decode()
    assert "Your deep-learning journey starts here" in page and "Your classes" not in page


def test_an_instructor_without_a_class_is_shown_how_to_make_one(client, instructor):
    client.force_login(instructor)
    page = client.get(reverse("home")).content.decode()
    assert "You do not teach a class yet." in page and reverse("dashboard:classes") in page


def test_each_class_says_what_waits_and_links_where_it_is_handled(
    client, instructor, classroom, other_classroom, student, student2, take_test, tiny_settings
):
    take_test(student)  # 100%: not behind
    waiting_answer(student2)  # a test, but its only score waits: behind, with one answer waiting
    job_submit(user=student, job_settings=tiny_settings)  # queued
    job_end(job_submit(user=student2, job_settings=tiny_settings), JobState.FAILED, error_message="boom")
    job_end(job_submit(user=student2, job_settings=tiny_settings), JobState.SUCCEEDED, error_rate=0.1)
    soon = timezone.now() + timedelta(days=2)
    services.deadline_set(classroom=classroom, by=instructor, quiz="machine-learning", due_at=soon)
    services.deadline_set(classroom=classroom, by=instructor, quiz="chapter", due_at=timezone.now() - timedelta(days=1))
    client.force_login(instructor)

    page = client.get(reverse("home")).content.decode()

    assert "Tuesday group" not in page  # another instructor's class
    card, pk = _card(page, "Monday group"), classroom.pk
    assert "2 students" in card
    assert f'<a href="/classes/{pk}/review/"><strong>1</strong> answer waiting for review</a>' in card
    assert f'<a href="/classes/{pk}/?behind=50"><strong>2</strong> students behind</a>' in card  # both missed "chapter"
    assert f'<a href="/classes/{pk}/jobs/?show=live"><strong>1</strong> experiment queued or running</a>' in card
    assert f'<a href="/classes/{pk}/jobs/?show=failed"><strong>1</strong> experiment failed</a>' in card
    # The coming deadline only (the chapter's has passed), with who has a score on it.
    assert f'<a href="/classes/{pk}/settings/">What is machine learning?</a>' in card and "1 of 2 with a score" in card
    assert card.count("<li><a href") == 1


def test_students_behind_are_those_the_roster_filter_keeps(
    instructor, classroom, student, student2, make_user, take_test
):
    late = make_user("late")
    extended = make_user("extended")
    for user in (late, extended):
        services.classroom_join(user=user, code=classroom.code)
    take_test(student)  # 100%
    take_test(late)  # 100%, on another quiz than the deadline's
    take_test(extended)
    take_test(student2, single_right=False, tf_right=False)  # 0%
    deadline = services.deadline_set(
        classroom=classroom, by=instructor, quiz="history", due_at=timezone.now() - timedelta(hours=1)
    )
    services.extension_grant(
        deadline=deadline, by=instructor, student=extended, due_at=timezone.now() + timedelta(days=1)
    )
    (overview,) = selectors.instructor_overview(user=instructor, titles=selectors.quiz_titles())
    deadlines = class_deadlines(classroom=classroom)
    roster = selectors.roster_order(classroom=classroom, deadlines=deadlines, behind=selectors.BEHIND_DEFAULT)
    assert {row[1] for row in roster} == {"student", "student2", "late"}
    assert overview.behind == 3


@pytest.mark.parametrize("n", [3, 12])
def test_the_home_costs_the_same_queries_whatever_the_class_sizes(
    client, instructor, make_user, take_test, tiny_settings, django_assert_num_queries, n
):
    soon = timezone.now() + timedelta(days=3)
    for name in ("A", "B"):
        classroom = services.classroom_create(by=instructor, name=name)
        services.deadline_set(classroom=classroom, by=instructor, quiz="history", due_at=soon)
        services.deadline_set(classroom=classroom, by=instructor, quiz="chapter", due_at=timezone.now())
        for i in range(n):
            user = make_user(f"{name}{i:02d}")
            services.classroom_join(user=user, code=classroom.code)
            take_test(user, tf_right=i % 2 == 0)
            job_end(job_submit(user=user, job_settings=tiny_settings), JobState.FAILED, error_message="boom")
    client.force_login(instructor)
    # django_session, auth_user, auth_group (instructor?), sections (quiz titles), the classes with their
    # students and answers waiting counted, their deadlines, the deadlines' extensions, the students
    # behind per class, the experiments per class and state, the best-score counts of the coming quizzes
    with django_assert_num_queries(10):
        page = client.get(reverse("home")).content.decode()
    assert f"<strong>{n}</strong> experiments failed" in page
