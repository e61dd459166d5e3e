"""Quiz fixtures: the real question bank, a small bank whose answers are easy to spot in a page,
a stand-in for the free-text grader (quizzes/grading.py lands separately), and eager Celery."""

from __future__ import annotations

import shutil
import sys
import types
from dataclasses import dataclass

import pytest

from courses.models import GlossaryTerm, Section
from courses.services import DEFAULT_CONTENT_ROOT, course_load
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


# ---------------------------------------------------------------- a stand-in grader


@dataclass(frozen=True)
class FakeSpec:
    prompt: str
    reference_answer: str
    key_points: tuple[str, ...]
    misconceptions: tuple[str, ...]


@dataclass(frozen=True)
class FakeGrade:
    score: float
    verdict: str
    confidence: float
    covered: tuple[bool, ...]
    contradicted: bool
    feedback: str


def _fake_grade(spec: FakeSpec, answer: str) -> FakeGrade:
    """Grades by marker words, so that each test says what it wants from the grader."""
    n = len(spec.key_points)
    if "BOOM" in answer:
        raise RuntimeError("the grader fell over")
    if "UNSURE" in answer:
        return FakeGrade(0.5, "needs_review", 0.9, (True,) + (False,) * (n - 1), False, "Hard to tell.")
    if "HESITANT" in answer:
        return FakeGrade(0.5, "partial", 0.3, (True,) + (False,) * (n - 1), False, "Half of it, maybe.")
    if "WRONG" in answer:
        return FakeGrade(0.0, "incorrect", 0.95, (False,) * n, True, "This contradicts the key.")
    return FakeGrade(1.0, "correct", 0.95, (True,) * n, False, "Covers every key point.")


@pytest.fixture
def fake_grader(monkeypatch):
    module = types.ModuleType("quizzes.grading")
    module.FreeTextSpec = FakeSpec
    module.Grade = FakeGrade
    module.calls = []

    def grade_free_text(spec, answer):
        module.calls.append((spec, answer))
        return _fake_grade(spec, answer)

    module.grade_free_text = grade_free_text
    monkeypatch.setitem(sys.modules, "quizzes.grading", module)
    return module


@pytest.fixture
def eager_celery():
    """Tasks run in the test process as soon as they are queued."""
    from config.celery_app import app

    before = app.conf.get("task_always_eager", False)
    app.conf.update(task_always_eager=True)
    yield app
    app.conf.update(task_always_eager=before)
