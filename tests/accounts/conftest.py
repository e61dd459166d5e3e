"""Class fixtures: one class with two students, a second class with its own instructor and student."""

from __future__ import annotations

import pytest

from accounts.services import classroom_create, classroom_join
from quizzes.models import Attempt
from quizzes.services import answers_save, attempt_start, attempt_submit
from tests.quizzes.conftest import mini_bank  # noqa: F401  (a fixture, used by name)

QUIZ = "machine-learning"


@pytest.fixture
def classroom(instructor, student, student2):
    c = classroom_create(by=instructor, name="Monday group")
    classroom_join(user=student, code=c.code)
    classroom_join(user=student2, code=c.code)
    return c


@pytest.fixture
def other_instructor(make_user):
    return make_user("teacher2", role="instructor")


@pytest.fixture
def other_student(make_user):
    return make_user("student3")


@pytest.fixture
def other_classroom(other_instructor, other_student):
    c = classroom_create(by=other_instructor, name="Tuesday group")
    classroom_join(user=other_student, code=c.code)
    return c


@pytest.fixture
def take_test(mini_bank):  # noqa: F811
    """Hand in a test of the machine-learning quiz: `right` says which of its two answers are right."""

    def take(user, *, single_right=True, tf_right=True, quiz=QUIZ) -> Attempt:
        attempt = attempt_start(user=user, quiz=quiz, mode=Attempt.Mode.TEST)
        positions = {slug: n for slug, n in attempt.answers.values_list("question__slug", "position")}
        answers_save(
            attempt=attempt,
            responses={
                positions["t-ml-single"]: {"choice": "a" if single_right else "b"},
                positions["t-ml-tf"]: {"value": tf_right},
            },
        )
        attempt_submit(attempt=attempt)
        return attempt

    return take
