"""Changing a question's key: the admin edits it with the loader's checks, and a regrade marks
every handed-in answer again (an instructor's grade stands) and rescores the attempts."""

import json

import pytest
from django.urls import reverse

from accounts.services import classroom_create, classroom_join
from quizzes.models import Answer, Attempt, Question
from quizzes.services import answer_review, answers_save, attempt_start, attempt_submit, question_regrade
from tests.quizzes.support import positions

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.org", "pw-for-tests-1")


def handed_in(user, choice):
    attempt = attempt_start(user=user, quiz="history", mode="test")
    answers_save(attempt=attempt, responses={positions(attempt)["t-single"]: {"choice": choice}})
    attempt_submit(attempt=attempt)
    return attempt


def make_b_right(question):
    question.options = [{**o, "correct": o["key"] == "b"} for o in question.options]
    question.save()


def single_score(attempt):
    return Answer.objects.get(attempt=attempt, question__slug="t-single").score


def test_a_regrade_marks_handed_in_answers_with_the_new_key(mini_bank, student, student2, instructor):
    said_a, said_b, kept = handed_in(student, "a"), handed_in(student2, "b"), handed_in(student, "b")
    classroom_join(user=student, code=classroom_create(by=instructor, name="Monday group").code)
    answer_review(answer=Answer.objects.get(attempt=kept, question__slug="t-single"), by=instructor, score=0.5)
    still_open = attempt_start(user=student, quiz="history", mode="test")
    answers_save(attempt=still_open, responses={positions(still_open)["t-single"]: {"choice": "a"}})
    assert (single_score(said_a), single_score(said_b)) == (1, 0)

    question = Question.objects.get(slug="t-single")
    make_b_right(question)
    report = question_regrade(question=question)

    assert (report.changed, report.kept, report.unchanged, report.queued, report.attempts) == (2, 1, 0, 0, 2)
    assert (single_score(said_a), single_score(said_b), single_score(kept)) == (0, 1, 0.5)
    scores = dict(Attempt.objects.values_list("pk", "score"))
    assert scores[said_a.pk] == 0 and scores[said_b.pk] == pytest.approx(1 / 8)
    assert scores[still_open.pk] is None and Answer.objects.get(attempt=still_open, position=1).score is None
    assert question_regrade(question=question).unchanged == 2  # nothing left to change


def test_a_free_text_regrade_sends_the_answers_back_to_the_grader(mini_bank, student, monkeypatch, fake_grader):
    from quizzes import tasks

    sent = []
    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda args, **kw: sent.append(args))
    attempt = attempt_start(user=student, quiz="history", mode="test")
    answers_save(attempt=attempt, responses={positions(attempt)["t-free"]: {"text": "It memorises."}})
    attempt_submit(attempt=attempt)
    answer = Answer.objects.get(attempt=attempt, question__slug="t-free")
    tasks.grade_free_text.apply(args=[answer.pk])
    assert Answer.objects.get(pk=answer.pk).verdict == "correct"

    report = question_regrade(question=Question.objects.get(slug="t-free"))
    assert report.queued == 1
    answer.refresh_from_db()
    assert answer.verdict == "pending" and answer.grading_round == 2
    assert Attempt.objects.get(pk=attempt.pk).state == "submitted"


def admin_form(question, **changes):
    data = {
        "slug": question.slug, "section": question.section_id, "order": question.order, "type": question.type,
        "source_ref": question.source_ref, "is_active": "on", "prompt": question.prompt,
        "explanation": question.explanation, "terms": [t.pk for t in question.terms.all()],
        "options": json.dumps(question.options), "answer": json.dumps(question.answer),
        "tolerance": question.tolerance, "unit": question.unit, "pairs": json.dumps(question.pairs),
        "answers": json.dumps(question.answers), "reference_answer": question.reference_answer,
        "key_points": json.dumps(question.key_points), "misconceptions": json.dumps(question.misconceptions),
    }  # fmt: skip
    if question.case_sensitive:
        data["case_sensitive"] = "on"
    data.update(changes)
    return data


def test_the_admin_refuses_a_key_the_loader_would_refuse(client, admin_user, mini_bank):
    question = Question.objects.get(slug="t-single")
    client.force_login(admin_user)
    url = reverse("admin:quizzes_question_change", args=[question.pk])
    two_right = [{**o, "correct": o["key"] in "ab"} for o in question.options]
    for changes, words in [
        ({"options": json.dumps(two_right)}, "exactly one correct option, found 2"),
        ({"options": "[]"}, "needs &#x27;options&#x27;"),
        ({"answer": "42"}, "field &#x27;answer&#x27; does not apply to single questions"),
        ({"type": "numeric"}, "a numeric question needs a number"),
    ]:
        response = client.post(url, admin_form(question, **changes))
        assert response.status_code == 200 and words in response.content.decode(), words
    question.refresh_from_db()
    assert question.correct_keys() == {"a"} and question.type == "single"


def test_an_admin_key_change_says_to_regrade_and_the_button_does(client, admin_user, mini_bank, student):
    attempt = handed_in(student, "a")
    question = Question.objects.get(slug="t-single")
    client.force_login(admin_user)
    change = reverse("admin:quizzes_question_change", args=[question.pk])
    page = client.get(change).content.decode()
    assert "Regrade answers" in page

    only_b = [{**o, "correct": o["key"] == "b"} for o in question.options]
    response = client.post(
        change, admin_form(question, options=json.dumps(only_b), prompt="Which **one**?"), follow=True
    )
    assert "The key of t-single changed and 1 handed-in answer(s)" in response.content.decode()
    question.refresh_from_db()
    assert question.correct_keys() == {"b"} and "<strong>one</strong>" in question.prompt_html
    assert single_score(attempt) == 1  # not yet: the instructor decides when

    regrade = reverse("admin:quizzes_question_regrade", args=[question.pk])
    assert client.get(regrade).status_code == 405
    response = client.post(regrade, follow=True)
    assert response.redirect_chain[-1][0] == change
    assert "1 answer(s) changed" in response.content.decode()
    assert single_score(attempt) == 0 and Attempt.objects.get(pk=attempt.pk).score == 0


def test_the_admin_list_action_regrades_the_selected_questions(client, admin_user, mini_bank, student):
    attempt = handed_in(student, "b")
    question = Question.objects.get(slug="t-single")
    make_b_right(question)
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:quizzes_question_changelist"),
        {"action": "regrade_selected", "_selected_action": [question.pk]},
        follow=True,
    )
    assert "T-single: 1 attempt(s): 1 answer(s) changed" in response.content.decode()  # the admin capitalises
    assert single_score(attempt) == 1


def test_only_staff_with_change_permission_regrade(client, instructor, mini_bank):
    question = Question.objects.get(slug="t-single")
    client.force_login(instructor)  # an instructor is not admin staff
    response = client.post(reverse("admin:quizzes_question_regrade", args=[question.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
