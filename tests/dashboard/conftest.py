"""Fixtures for the class pages' tests: a student handing in a test of the small bank's quiz."""

from __future__ import annotations

import pytest

from quizzes.models import Attempt
from quizzes.services import answers_save, attempt_start, attempt_submit

QUIZ = "machine-learning"


@pytest.fixture
def take_test(mini_bank):
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
