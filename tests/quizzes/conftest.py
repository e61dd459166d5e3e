"""Quiz fixtures: the real question bank, a small bank whose answers are easy to spot in a page,
the free-text grader with made-up model outputs, and eager Celery."""

from __future__ import annotations

import shutil
import types

import numpy as np
import pytest

from courses.models import GlossaryTerm, Section
from courses.services import DEFAULT_CONTENT_ROOT, course_load
from quizzes.grader_model import Calibration
from quizzes.models import Question
from quizzes.services import question_bank_load

MINI_HISTORY = """\
- slug: t-single
  type: single
  prompt: "Which animal is the mascot?"
  terms: [neural-network]
  explanation: "EXPLAIN-SINGLE: it is the quokka."
  options:
    - {key: a, text: "Quokka", correct: true}
    - {key: b, text: "Wombat", correct: false}
    - {key: c, text: "Numbat", correct: false}
    - {key: d, text: "Bilby", correct: false}

- slug: t-multiple
  type: multiple
  prompt: "Pick the even numbers."
  terms: [neural-network]
  explanation: "EXPLAIN-MULTIPLE"
  options:
    - {key: a, text: "Two", correct: true}
    - {key: b, text: "Four", correct: true}
    - {key: c, text: "Six", correct: true}
    - {key: d, text: "Five", correct: false}
    - {key: e, text: "Seven", correct: false}

- slug: t-true-false
  type: true_false
  prompt: "True or false: the sky is blue."
  terms: [neural-network]
  explanation: "EXPLAIN-TF"
  answer: true

- slug: t-numeric
  type: numeric
  prompt: "How heavy is it?"
  terms: [neural-network]
  explanation: "EXPLAIN-NUMERIC"
  answer: 4271.5
  tolerance: 0.5
  unit: "kg"

- slug: t-matching
  type: matching
  prompt: "Match each country to its capital."
  terms: [neural-network]
  explanation: "EXPLAIN-MATCHING"
  pairs:
    - {left: "France", right: "Paris"}
    - {left: "Japan", right: "Tokyo"}
    - {left: "Kenya", right: "Nairobi"}
    - {left: "Peru", right: "Lima"}

- slug: t-blank-code
  type: fill_blank
  prompt: |
    Fill in the blank.

    ```python
    learn = ____(dls)
    ```
  terms: [neural-network]
  explanation: "EXPLAIN-BLANK-CODE"
  answers: ["zebra_learner"]

- slug: t-blank-word
  type: fill_blank
  prompt: "Plants make their sugar by ____."
  terms: [neural-network]
  explanation: "EXPLAIN-BLANK-WORD"
  answers: ["photosynthesis"]

- slug: t-free
  type: free_text
  prompt: "Explain overfitting."
  terms: [neural-network, perceptron]
  explanation: "EXPLAIN-FREE"
  reference_answer: "REFERENCE-SENTINEL: the model memorises its training data."
  key_points:
    - "KEYPOINT-SENTINEL: it memorises the training data."
    - "It does badly on new data."
  misconceptions:
    - "MISCONCEPTION-SENTINEL"
"""

MINI_ML = """\
- slug: t-ml-single
  type: single
  prompt: "Who worked at IBM?"
  terms: [machine-learning]
  explanation: "EXPLAIN-ML"
  options:
    - {key: a, text: "Samuel", correct: true}
    - {key: b, text: "Pitts", correct: false}

- slug: t-ml-tf
  type: true_false
  prompt: "True or false: weights change during training."
  terms: [machine-learning]
  explanation: "EXPLAIN-ML-TF"
  answer: true
"""


@pytest.fixture
def content(tmp_path):
    """A copy of the real content tree that a test may edit."""
    root = tmp_path / "chapter"
    shutil.copytree(DEFAULT_CONTENT_ROOT, root)
    return root


@pytest.fixture
def bank(db):
    """The real chapter: sections, glossary and all of the question bank."""
    course_load()
    question_bank_load()
    return {q.slug: q for q in Question.objects.all()}


@pytest.fixture
def mini_bank(db, tmp_path):
    """Two sections, three glossary terms and ten small questions, one or more of each type."""
    history = Section.objects.create(
        slug="history", title="Neural networks: a short history", order=1, body_markdown=""
    )
    Section.objects.create(slug="machine-learning", title="What is machine learning?", order=4, body_markdown="")
    for slug, term in [("neural-network", "Neural network"), ("perceptron", "Perceptron"), ("machine-learning", "ML")]:
        GlossaryTerm.objects.create(slug=slug, term=term, short=term, definition=term, section=history)
    root = tmp_path / "mini"
    (root / "questions").mkdir(parents=True)
    (root / "questions" / "history.yaml").write_text(MINI_HISTORY)
    (root / "questions" / "machine-learning.yaml").write_text(MINI_ML)
    question_bank_load(root=root)
    return {q.slug: q for q in Question.objects.all()}


# ---------------------------------------------------------------- the model's outputs, made up

# Round numbers, so these tests do not move when the grader is retrained.
TEST_CALIBRATION = Calibration(
    temperature=1.0, weights=(3.0, 3.0, 3.0), cuts=(3.0, 6.0), contradicts_at=0.35, review_below=0.6
)


def _made_up(answer: str, k: int) -> tuple[float, float, float]:
    """What the model "says" of key point k, (covers, missing, contradicts), by a marker word in the
    answer, so that each test says what it wants; the real grading.decide makes the grade of it."""
    if "BOOM" in answer:
        raise RuntimeError("the grader fell over")
    if "UNSURE" in answer:  # one point made, another contradicted: an instructor decides (suggests 50%)
        return (0.6, 0.0, 0.4) if k == 0 else (0.02, 0.58, 0.4)
    if "HESITANT" in answer:  # partial, at a confidence of about 0.52
        return (0.7, 0.25, 0.05) if k == 0 else (0.05, 0.9, 0.05)
    if "WRONG" in answer:  # contradicts every point: incorrect at 0.95
        return (0.01, 0.04, 0.95)
    return (0.97, 0.02, 0.01)  # every point made: correct at about 0.94


class FakeModel:
    """Stands in for quizzes.grader_model.KeyPointModel: made-up probabilities, no torch."""

    calibration = TEST_CALIBRATION

    def probabilities(self, pairs):
        firsts = list(dict.fromkeys(first for first, _ in pairs))
        return np.array([_made_up(answer, firsts.index(first)) for first, answer in pairs])


@pytest.fixture
def fake_grader(monkeypatch, settings):
    """The real grader with made-up model outputs. `calls` lists each (spec, answer) it was asked to
    grade; `grade(spec, answer)` is the grade the real decision makes of them."""
    from quizzes import grader_model, grading

    settings.JOURNEY_REVIEW_CONFIDENCE = TEST_CALIBRATION.review_below
    monkeypatch.setattr(grader_model, "load", FakeModel)
    monkeypatch.setattr(grader_model, "calibration", lambda: TEST_CALIBRATION)
    real = grading.grade_free_text
    spy = types.SimpleNamespace(calls=[], grade=real)

    def grade_free_text(spec, answer):
        spy.calls.append((spec, answer))
        return real(spec, answer)

    monkeypatch.setattr(grading, "grade_free_text", grade_free_text)
    return spy


@pytest.fixture
def eager_celery():
    """Tasks run in the test process as soon as they are queued."""
    from config.celery_app import app

    before = app.conf.get("task_always_eager", False)
    app.conf.update(task_always_eager=True)
    yield app
    app.conf.update(task_always_eager=before)
