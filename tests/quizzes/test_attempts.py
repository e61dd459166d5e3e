"""Taking a quiz, as services: the draw, saving as the student goes, handing in once, and the
server's clock on a timed test."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from quizzes.models import Answer, Attempt, Question
from quizzes.services import (
    AttemptClosed,
    answer_check,
    answers_save,
    attempt_start,
    attempt_submit,
    attempts_close_expired,
)
from quizzes.tasks import housekeeping

pytestmark = pytest.mark.django_db


def by_slug(attempt):
    return {a.question.slug: a for a in attempt.answers.select_related("question")}


def drawn_test(**kwargs) -> Attempt:
    """A test drawn and handed in, so that the next start draws afresh rather than resuming it."""
    attempt = attempt_start(mode="test", **kwargs)
    attempt_submit(attempt=attempt)
    return attempt


def test_the_chapter_quiz_draws_a_fresh_random_set_without_repeats(bank, student):
    draws = [drawn_test(user=student, quiz="chapter") for _ in range(4)]
    for attempt in draws:
        assert len(attempt.question_ids) == 15 == len(set(attempt.question_ids))
        assert list(attempt.answers.order_by("position").values_list("question_id", flat=True)) == attempt.question_ids
        assert attempt.answers.count() == 15
    # Four draws of 15 from 102 that all come out the same would mean there is no draw at all.
    assert len({tuple(sorted(a.question_ids)) for a in draws}) > 1
    sections = set(
        Question.objects.filter(pk__in=sum((a.question_ids for a in draws), [])).values_list("section", flat=True)
    )
    assert len(sections) > 1


def test_the_chapter_quiz_size_is_a_setting(bank, student, settings):
    settings.JOURNEY_CHAPTER_QUIZ_SIZE = 4
    assert len(attempt_start(user=student, quiz="chapter", mode="practice").question_ids) == 4
    settings.JOURNEY_CHAPTER_QUIZ_SIZE = 500
    assert len(attempt_start(user=student, quiz="chapter", mode="practice").question_ids) == 102


def test_a_section_quiz_asks_every_question_of_its_section_in_a_new_order(bank, student):
    history = set(Question.objects.filter(section__slug="history").values_list("pk", flat=True))
    orders = set()
    for seed in range(6):
        attempt = drawn_test(user=student, quiz="history", rng=random.Random(seed))
        assert set(attempt.question_ids) == history and len(attempt.question_ids) == len(history)
        orders.add(tuple(attempt.question_ids))
    assert len(orders) > 1


def test_options_are_shuffled_per_attempt_and_matching_never_in_solution_order(mini_bank, student):
    single, matching = mini_bank["t-single"], mini_bank["t-matching"]
    orders = set()
    for seed in range(8):
        attempt = drawn_test(user=student, quiz="history", rng=random.Random(seed))
        assert sorted(attempt.shuffles[str(single.pk)]) == ["a", "b", "c", "d"]
        orders.add(tuple(attempt.shuffles[str(single.pk)]))
        assert sorted(attempt.shuffles[str(matching.pk)]) == [0, 1, 2, 3]
        assert attempt.shuffles[str(matching.pk)] != [0, 1, 2, 3]
    assert len(orders) > 1


def test_an_unknown_quiz_or_mode_is_refused(mini_bank, student):
    with pytest.raises(ValueError):
        attempt_start(user=student, quiz="no-such-section", mode="test")
    with pytest.raises(ValueError):
        attempt_start(user=student, quiz="history", mode="exam")
    assert not Attempt.objects.exists()


def test_saving_stores_only_what_changed(mini_bank, student):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    n = by_slug(attempt)["t-true-false"].position
    assert answers_save(attempt=attempt, responses={n: {"value": True}}) == [n]
    assert answers_save(attempt=attempt, responses={n: {"value": True}}) == []
    assert Answer.objects.get(attempt=attempt, position=n).response == {"value": True}
    assert Answer.objects.get(attempt=attempt, position=n).score is None  # a test says nothing before hand-in


def test_handing_in_grades_every_answer_once_and_a_repeat_changes_nothing(mini_bank, student, instructor):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    slots = by_slug(attempt)
    answers_save(
        attempt=attempt,
        responses={
            slots["t-single"].position: {"choice": "a"},
            slots["t-multiple"].position: {"choices": ["a", "b", "d"]},
            slots["t-true-false"].position: {"value": False},
            slots["t-blank-code"].position: {"text": "zebra_learner"},
        },
    )
    assert attempt_submit(attempt=attempt) is True
    attempt.refresh_from_db()
    first = attempt.submitted_at
    scores = dict(attempt.answers.values_list("question__slug", "score"))
    assert scores["t-single"] == 1 and scores["t-true-false"] == 0 and scores["t-blank-code"] == 1
    assert scores["t-multiple"] == pytest.approx(1 / 3)
    assert scores["t-numeric"] == 0 and scores["t-free"] == 0  # unanswered
    assert attempt.state == "graded"
    assert attempt.score == pytest.approx((1 + 1 / 3 + 1) / 8)

    # An instructor changes a grade; a replayed hand-in must not re-mark over it.
    from accounts.services import classroom_create, classroom_join
    from quizzes.services import answer_review

    classroom_join(user=student, code=classroom_create(by=instructor, name="Monday group").code)  # whom they grade
    answer_review(answer=Answer.objects.get(attempt=attempt, question__slug="t-true-false"), by=instructor, score=1)
    assert attempt_submit(attempt=attempt) is False
    attempt.refresh_from_db()
    assert attempt.submitted_at == first
    assert Answer.objects.get(attempt=attempt, question__slug="t-true-false").score == 1
    assert attempt.score == pytest.approx((1 + 1 / 3 + 1 + 1) / 8)


def test_a_handed_in_attempt_takes_no_more_answers(mini_bank, student):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    attempt_submit(attempt=attempt)
    with pytest.raises(AttemptClosed):
        answers_save(attempt=attempt, responses={1: None})


def test_a_timed_test_past_its_deadline_is_closed_with_what_was_saved(mini_bank, student, settings):
    settings.JOURNEY_TEST_SECONDS_PER_QUESTION = 60
    settings.JOURNEY_TEST_GRACE_SECONDS = 5
    attempt = attempt_start(user=student, quiz="history", mode="test", timed=True)
    assert attempt.deadline == attempt.started_at + timedelta(minutes=8)
    n = by_slug(attempt)["t-single"].position
    answers_save(attempt=attempt, responses={n: {"choice": "a"}}, now=attempt.deadline + timedelta(seconds=4))

    late = attempt.deadline + timedelta(seconds=6)
    with pytest.raises(AttemptClosed):
        answers_save(attempt=attempt, responses={n: {"choice": "b"}}, now=late)
    attempt.refresh_from_db()
    assert attempt.state == "graded" and attempt.timed_out
    assert Answer.objects.get(attempt=attempt, position=n).response == {"choice": "a"}
    assert attempt.score == pytest.approx(1 / 8)


def test_housekeeping_hands_in_expired_tests_and_leaves_the_rest(mini_bank, student):
    expired = attempt_start(user=student, quiz="history", mode="test", timed=True)
    running = attempt_start(user=student, quiz="machine-learning", mode="test", timed=True)
    untimed = attempt_start(user=student, quiz="chapter", mode="test")
    Attempt.objects.filter(pk=expired.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    assert housekeeping() == {"closed": [expired.pk], "requeued": []}
    assert attempts_close_expired() == []
    states = dict(Attempt.objects.values_list("pk", "state"))
    assert states == {expired.pk: "graded", running.pk: "in_progress", untimed.pk: "in_progress"}
    assert Attempt.objects.get(pk=expired.pk).timed_out


def test_practice_checks_one_answer_and_a_new_answer_clears_the_old_feedback(mini_bank, student):
    attempt = attempt_start(user=student, quiz="history", mode="practice")
    n = by_slug(attempt)["t-single"].position
    answers_save(attempt=attempt, responses={n: {"choice": "b"}})
    checked = answer_check(attempt=attempt, position=n)
    assert (checked.verdict, checked.score, checked.checks) == ("incorrect", 0, 1)
    answers_save(attempt=attempt, responses={n: {"choice": "a"}})
    assert Answer.objects.get(pk=checked.pk).verdict == ""
    again = answer_check(attempt=attempt, position=n)
    assert (again.verdict, again.score, again.checks) == ("correct", 1, 2)
    others = Answer.objects.filter(attempt=attempt).exclude(pk=checked.pk)
    assert not others.exclude(verdict="").exists()  # checking one says nothing about the rest


def test_only_practice_attempts_check_single_answers(mini_bank, student):
    attempt = attempt_start(user=student, quiz="history", mode="test")
    with pytest.raises(AttemptClosed):
        answer_check(attempt=attempt, position=1)
