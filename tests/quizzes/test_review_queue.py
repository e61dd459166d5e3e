"""The review queue: free-text answers the grader was unsure of, shown only to the instructors of
the student's classes, decided one at a time or several at once, and any grade overridden later.

The grader is the stand-in of tests/fixtures/quizzes.fake_grader: "UNSURE" in an answer makes it suggest 50%
with the verdict "unsure" and send the answer to review."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.services import classroom_join, co_instructor_add
from quizzes import tasks
from quizzes.models import Answer, Attempt
from quizzes.services import (
    NotYours,
    answer_grade_free_text,
    answer_grading_failed,
    answer_review,
    answers_review_many,
    answers_save,
    attempt_start,
    attempt_submit,
)
from quizzes.views import MSG_NOT_YOURS
from tests.quizzes.support import positions

# The review pages grade answers to the small bank's questions.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mini_bank")]

BULK = reverse("quizzes:review_bulk")
QUEUE = reverse("quizzes:review_queue")


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch, fake_grader):
    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda args, **kw: None)


def waiting(user, text="UNSURE <em>maybe</em> it memorises", *, grader=True) -> Answer:
    """Hand in a history test whose free-text answer the grader sends to review (or gave up on)."""
    attempt = attempt_start(user=user, quiz="history", mode="test")
    answers_save(attempt=attempt, responses={positions(attempt)["t-free"]: {"text": text}})
    attempt_submit(attempt=attempt)
    answer = Answer.objects.get(attempt=attempt, question__slug="t-free")
    if grader:
        answer_grade_free_text(answer_id=answer.pk)
    else:
        answer_grading_failed(answer_id=answer.pk)
    answer.refresh_from_db()
    assert answer.needs_review
    return answer


def as_user(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def class_page(classroom):
    return reverse("dashboard:class_review", args=[classroom.pk])


def answer_url(answer):
    return reverse("quizzes:review_answer", args=[answer.pk])


def listed(page: str) -> set[int]:
    """The answers whose rows the queue shows (by their bulk checkboxes)."""
    return {int(pk) for pk in re.findall(r'name="answers" value="(\d+)"', page)}


def fresh(answer) -> Answer:
    return Answer.objects.select_related("attempt").get(pk=answer.pk)


# ---------------------------------------------------------------- who sees what


def test_it_shows_an_instructor_only_the_answers_of_the_classes_they_teach(
    classroom, other_classroom, instructor, other_instructor, student, other_student
):
    mine, theirs = waiting(student), waiting(other_student)
    teacher = as_user(instructor)
    assert listed(teacher.get(class_page(classroom)).content.decode()) == {mine.pk}
    overview = teacher.get(QUEUE).content.decode()
    assert listed(overview) == {mine.pk} and "Monday group" in overview and "Tuesday group" not in overview
    assert "You see the answers of the students in the classes you teach." in overview
    assert listed(as_user(other_instructor).get(QUEUE).content.decode()) == {theirs.pk}


def test_a_co_instructor_sees_and_grades_the_class_queue(classroom, instructor, make_user, student):
    answer = waiting(student)
    co = make_user("coteacher", role="instructor")
    assert listed(as_user(co).get(QUEUE).content.decode()) == set()
    co_instructor_add(classroom=classroom, by=instructor, username="coteacher")
    client = as_user(co)
    assert listed(client.get(class_page(classroom)).content.decode()) == {answer.pk}
    client.post(answer_url(answer), {"action": "accept"})
    assert (fresh(answer).score, fresh(answer).reviewed_by) == (0.5, co)


def test_a_student_in_two_classes_is_seen_by_the_instructors_of_both(
    classroom, other_classroom, instructor, other_instructor, student
):
    classroom_join(user=student, code=other_classroom.code)
    answer = waiting(student)
    for teacher, room in [(instructor, classroom), (other_instructor, other_classroom)]:
        client = as_user(teacher)
        assert listed(client.get(class_page(room)).content.decode()) == {answer.pk}
        assert listed(client.get(QUEUE).content.decode()) == {answer.pk}
        assert client.get(answer_url(answer)).status_code == 200


def test_another_instructor_gets_404_on_the_answer_and_the_class_page(
    classroom, other_classroom, other_instructor, student
):
    answer = waiting(student)
    client = as_user(other_instructor)
    assert client.get(class_page(classroom)).status_code == 404
    assert client.get(answer_url(answer)).status_code == 404
    assert client.post(answer_url(answer), {"action": "score", "score": 100}).status_code == 404
    assert fresh(answer).needs_review and fresh(answer).score is None


@pytest.mark.parametrize("who", ["student", "student2", "other_student", "outsider"])
def test_students_and_outsiders_are_kept_out(request, classroom, other_classroom, student, who):
    answer = waiting(student)
    client = as_user(request.getfixturevalue(who))
    assert client.get(class_page(classroom)).status_code == 404
    assert client.get(answer_url(answer)).status_code == 404
    assert client.post(answer_url(answer), {"action": "accept"}).status_code == 404
    assert client.post(BULK, {"answers": [answer.pk], "action": "accept"}).status_code == 403
    assert client.get(QUEUE).status_code == 403
    assert fresh(answer).needs_review


def test_anonymous_visitors_are_sent_to_log_in(client, classroom, student):
    answer = waiting(student)
    for response in (
        client.get(class_page(classroom)),
        client.get(answer_url(answer)),
        client.post(BULK, {"answers": [answer.pk], "action": "accept"}),
    ):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert fresh(answer).needs_review


def test_a_superuser_sees_every_class(classroom, other_classroom, student, other_student, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", "admin@example.org", "pw-for-tests-1")
    answers = {waiting(student).pk, waiting(other_student).pk}
    page = as_user(admin).get(QUEUE).content.decode()
    assert listed(page) == answers and "you see the answers of every student" in page


# ---------------------------------------------------------------- the page


def test_each_row_shows_the_answer_the_key_and_the_suggestion_with_labelled_controls(
    classroom, instructor, student, student2
):
    student.first_name, student.last_name = "Ada", "Lovelace"
    student.save()
    answer = waiting(student)
    waiting(student2, "BOOM", grader=False)
    page = as_user(instructor).get(class_page(classroom)).content.decode()
    assert "Ada Lovelace" in page and "student2" in page
    assert f'href="{reverse("quizzes:review", args=[answer.attempt_id])}#q{answer.position}">t-free</a>' in page
    assert "&lt;em&gt;maybe&lt;/em&gt;" in page and "<em>maybe</em>" not in page
    assert "REFERENCE-SENTINEL" in page
    assert "Found:</span> KEYPOINT-SENTINEL" in page and "Not found:</span> It does badly on new data." in page
    assert "<strong>50%</strong>, unsure, confidence 0.50" in page and answer.feedback in page
    assert "No suggestion:" in page  # the answer the grader gave up on
    assert page.count("Accept suggestion (50%)") == 1  # nothing to accept for the other
    assert page.count(">Save grade<") == 2 and "Accept selected" in page and "Set score for selected" in page
    queue = page.split('<section id="queue"')[1]
    ids = set(re.findall(r'<(?:input|textarea)[^>]* id="([^"]+)"', queue))
    labelled = set(re.findall(r'<label for="([^"]+)"', queue))
    assert len(ids) == 8 and ids <= labelled, f"fields without a label: {ids - labelled}"


def test_select_all_works_without_a_script(classroom, instructor, student, student2):
    waiting(student), waiting(student2)
    client = as_user(instructor)
    plain = client.get(class_page(classroom)).content.decode()
    assert plain.count('form="bulk-review"') == 2 and 'form="bulk-review" id="pick-' in plain
    assert not re.search(r'form="bulk-review" id="pick-\d+" checked', plain)
    assert f'href="{class_page(classroom)}?select=all#queue"' in plain
    everything = client.get(class_page(classroom) + "?select=all").content.decode()
    assert len(re.findall(r'form="bulk-review" id="pick-\d+" checked', everything)) == 2
    assert "Clear selection" in everything


def test_the_class_nav_counts_the_answers_waiting(
    classroom, other_classroom, instructor, student, student2, other_student
):
    first, _ = waiting(student), waiting(student2)
    waiting(other_student)  # another class: not counted
    client = as_user(instructor)
    badge = '<span class="badge count">{}<span class="sr-only"> waiting</span></span>'
    assert badge.format(2) in client.get(reverse("dashboard:class_dashboard", args=[classroom.pk])).content.decode()
    answer_review(answer=first, by=instructor, score=1)
    assert badge.format(1) in client.get(reverse("dashboard:class_jobs", args=[classroom.pk])).content.decode()


def test_the_class_page_query_count_does_not_grow_with_answers(
    classroom, instructor, make_user, django_assert_num_queries
):
    client = as_user(instructor)
    for i in range(3):
        learner = make_user(f"learner{i}")
        classroom_join(user=learner, code=classroom.code)
        waiting(learner)
        # django_session, auth_user, the classroom with its waiting count, auth_group (instructor?), answers waiting
        with django_assert_num_queries(5):
            page = client.get(class_page(classroom)).content.decode()
        assert len(listed(page)) == i + 1


# ---------------------------------------------------------------- one decision


def test_accepting_one_suggestion_grades_it_and_it_leaves_the_queue(classroom, instructor, student):
    answer = waiting(student)
    client = as_user(instructor)
    response = client.post(answer_url(answer), {"action": "accept", "next": class_page(classroom) + "#queue"})
    assert response.status_code == 302 and response["Location"] == class_page(classroom) + "#queue"
    answer = fresh(answer)
    assert (answer.score, answer.verdict, answer.graded_by) == (0.5, "partial", "instructor")
    assert not answer.needs_review
    assert answer.attempt.state == Attempt.State.GRADED and answer.attempt.score == pytest.approx(0.5 / 8)
    page = client.get(class_page(classroom)).content.decode()
    assert "Saved: student gets 50% on t-free." in page and listed(page) == set()


def test_changing_one_grade_with_a_comment_shows_the_student_the_final_grade(client, classroom, instructor, student):
    answer = waiting(student)
    comment = "Good start; say <why> it fails on new data."
    as_user(instructor).post(
        answer_url(answer), {"action": "score", "score": 80, "comment": comment, "next": class_page(classroom)}
    )
    answer = fresh(answer)
    assert (answer.score, answer.instructor_comment, answer.reviewed_by) == (0.8, comment, instructor)
    assert answer.attempt.score == pytest.approx(0.8 / 8)
    client.force_login(student)
    page = client.get(reverse("quizzes:review", args=[answer.attempt_id])).content.decode()
    assert "Awaiting review." not in page and "graded by an instructor" in page and "80%" in page
    assert "Good start; say &lt;why&gt; it fails on new data." in page
    assert "Change grade" not in page  # the student reads, never overrides
    status = client.get(reverse("quizzes:status", args=[answer.attempt_id])).json()
    assert not status["review"] and status["score_text"] == "10%"


def test_a_grade_that_cannot_be_read_is_asked_again_on_the_answers_page(classroom, instructor, student):
    answer = waiting(student)
    back = class_page(classroom) + "#queue"
    response = as_user(instructor).post(answer_url(answer), {"action": "score", "score": 150, "next": back})
    page = response.content.decode()
    assert response.status_code == 200 and "has-error" in page
    assert page.count('<p class="error">') == 1 and "less than or equal to 100" in page  # one reason, not two
    assert f'name="next" value="{back}"' in page and f'href="{back}">Back</a>' in page
    assert fresh(answer).needs_review


def test_the_class_list_links_to_the_answers_waiting(classroom, instructor, student):
    waiting(student)
    page = as_user(instructor).get(reverse("dashboard:classes")).content.decode()
    assert f'<a href="{class_page(classroom)}">1 answer waiting for review</a>' in page


def test_a_next_that_leaves_the_site_is_ignored(classroom, instructor, student):
    answer = waiting(student)
    client = as_user(instructor)
    for target in ("https://elsewhere.example/", "//elsewhere.example/x", "javascript:alert(1)"):
        response = client.post(answer_url(answer), {"action": "accept", "next": target})
        assert response["Location"] == QUEUE


# ---------------------------------------------------------------- several at once


def test_bulk_accept_takes_each_answers_own_suggestion_in_one_post(classroom, instructor, student, student2):
    one, two = waiting(student), waiting(student2)
    failed = waiting(student, "BOOM", grader=False)  # no suggestion to accept
    client = as_user(instructor)
    response = client.post(
        BULK, {"answers": [one.pk, two.pk, failed.pk], "action": "accept", "next": class_page(classroom)}, follow=True
    )
    assert response.redirect_chain == [(class_page(classroom), 302)]
    page = response.content.decode()
    assert "Graded 2 answers. 1 had no suggestion from the grader to accept, so it is still waiting." in page
    assert listed(page) == {failed.pk}
    for answer in (one, two):
        answer = fresh(answer)
        assert (answer.score, answer.graded_by, answer.reviewed_by) == (0.5, "instructor", instructor)
        assert answer.attempt.state == Attempt.State.GRADED
    assert fresh(failed).needs_review and fresh(failed).attempt.state == Attempt.State.SUBMITTED


def test_bulk_score_gives_every_selected_answer_the_score_and_the_comment(
    client, classroom, instructor, student, student2
):
    one, two = waiting(student), waiting(student2)
    failed = waiting(student, "BOOM", grader=False)
    response = as_user(instructor).post(
        BULK, {"answers": [one.pk, two.pk, failed.pk], "action": "score", "score": 100, "comment": "Well said."}
    )
    assert response["Location"] == QUEUE
    for answer in (one, two, failed):
        answer = fresh(answer)
        assert (answer.score, answer.verdict, answer.instructor_comment) == (1.0, "correct", "Well said.")
    client.force_login(student2)
    page = client.get(reverse("quizzes:review", args=[two.attempt_id])).content.decode()
    assert "Well said." in page and "graded by an instructor" in page


def test_bulk_with_an_answer_of_another_class_changes_nothing(
    classroom, other_classroom, instructor, student, other_student
):
    mine, theirs = waiting(student), waiting(other_student)
    response = as_user(instructor).post(BULK, {"answers": [mine.pk, theirs.pk], "action": "accept"}, follow=True)
    assert MSG_NOT_YOURS in response.content.decode()
    assert fresh(mine).needs_review and fresh(theirs).needs_review
    with pytest.raises(NotYours):
        answers_review_many(answer_ids=[mine.pk, theirs.pk], by=instructor)
    assert fresh(mine).needs_review


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "accept"}, "Select at least one answer first."),
        ({"answers": ["1x"], "action": "accept"}, "That selection could not be read."),
        ({"answers": "ANSWER", "action": "score"}, "Give a score from 0 to 100 for the selected answers."),
        ({"answers": "ANSWER", "action": "score", "score": 101}, "Ensure this value is less than or equal to 100."),
    ],
)
def test_a_bulk_post_that_cannot_be_read_says_why_and_changes_nothing(classroom, instructor, student, data, message):
    answer = waiting(student)
    data = {k: (answer.pk if v == "ANSWER" else v) for k, v in data.items()}
    page = as_user(instructor).post(BULK, data, follow=True).content.decode()
    assert message in page
    assert fresh(answer).needs_review


@pytest.mark.parametrize("where", ["queue", "class page"])
def test_a_bulk_post_sent_back_keeps_what_was_ticked_and_typed(classroom, instructor, student, student2, where):
    one, two, other = waiting(student), waiting(student2), waiting(student, "UNSURE, another answer")
    back = QUEUE if where == "queue" else class_page(classroom)
    client = as_user(instructor)
    data = {"answers": [one.pk, two.pk], "action": "score", "comment": "Look at <b>the key</b> again.", "next": back}
    page = client.post(BULK, data, follow=True).content.decode()
    assert "Give a score from 0 to 100 for the selected answers." in page
    ticked = {int(pk) for pk in re.findall(r'form="bulk-review" id="pick-(\d+)" checked', page)}
    assert ticked == {one.pk, two.pk} and other.pk in listed(page)
    assert ">Look at &lt;b&gt;the key&lt;/b&gt; again.</textarea>" in page
    # Once: the next visit starts afresh.
    again = client.get(back).content.decode()
    assert not re.search(r'id="pick-\d+" checked', again) and "Look at" not in again


def test_bulk_leaves_an_answer_graded_meanwhile_as_it_was(classroom, instructor, make_user, student, student2):
    one, two = waiting(student), waiting(student2)
    co = make_user("coteacher", role="instructor")
    co_instructor_add(classroom=classroom, by=instructor, username="coteacher")
    answer_review(answer=two, by=co, score=0.9, comment="Mine.")
    page = as_user(instructor).post(BULK, {"answers": [one.pk, two.pk], "action": "accept"}, follow=True)
    text = page.content.decode()
    assert "Graded 1 answer. 1 had already been graded meanwhile and was left as it was." in text
    assert (fresh(two).score, fresh(two).reviewed_by, fresh(two).instructor_comment) == (0.9, co, "Mine.")


def test_review_changes_need_a_post_and_the_csrf_token(classroom, instructor, student):
    answer = waiting(student)
    client = as_user(instructor)
    assert client.get(BULK).status_code == 405
    strict = as_user(instructor, enforce_csrf_checks=True)
    assert strict.post(BULK, {"answers": [answer.pk], "action": "accept"}).status_code == 403
    assert strict.post(answer_url(answer), {"action": "accept"}).status_code == 403
    assert fresh(answer).needs_review


# ---------------------------------------------------------------- overriding any grade


def test_an_instructor_overrides_a_final_grade_from_the_students_attempt(
    client, classroom, other_classroom, instructor, other_instructor, student
):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    answers_save(attempt=attempt, responses={positions(attempt)["t-free"]: {"text": "It memorises the training set."}})
    attempt_submit(attempt=attempt)
    answer = Answer.objects.get(attempt=attempt, question__slug="t-free")
    answer_grade_free_text(answer_id=answer.pk)
    assert (fresh(answer).score, fresh(answer).graded_by, fresh(answer).needs_review) == (1.0, "grader", False)

    teacher = as_user(instructor)
    timeline = teacher.get(reverse("dashboard:class_student", args=[classroom.pk, student.pk])).content.decode()
    review_url = reverse("quizzes:review", args=[attempt.pk])
    assert f'href="{review_url}"' in timeline
    review = teacher.get(review_url).content.decode()
    link = f"{answer_url(answer)}?next={review_url}%23q{answer.position}"
    assert f'href="{link}"' in review and "Change grade" in review
    assert teacher.get(link).status_code == 200
    response = teacher.post(link, {"action": "score", "score": 40, "comment": "Too short.", "next": review_url})
    assert response["Location"] == review_url
    answer = fresh(answer)
    assert (answer.score, answer.graded_by, answer.instructor_comment) == (0.4, "instructor", "Too short.")
    assert answer.attempt.score == pytest.approx(0.4 / 8)

    assert as_user(other_instructor).get(link).status_code == 404
    client.force_login(student)
    page = client.get(review_url).content.decode()
    assert "Too short." in page and "40%" in page


def test_the_service_refuses_an_instructor_who_does_not_teach_the_student(
    classroom, other_classroom, other_instructor, student
):
    answer = waiting(student)
    with pytest.raises(NotYours):
        answer_review(answer=answer, by=other_instructor, score=1)
    assert fresh(answer).needs_review
