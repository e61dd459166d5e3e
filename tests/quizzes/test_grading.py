"""The free-text grader with the real sentence model: what it credits, what it refuses, what it survives."""

from __future__ import annotations

import dataclasses
import time

import pytest

from quizzes.grading import THRESHOLDS, VERDICTS, Analysis, FreeTextSpec, decide, grade_free_text, load_model

# The chapter's overfitting question (content/chapter-1/questions/limitations.yaml), the one
# DESIGN.md uses to show that raw cosine similarity is not a grader.
OVERFITTING = FreeTextSpec(
    prompt="Explain what overfitting is and why it causes trouble.",
    reference_answer=(
        "A model overfits when it latches onto the particular details and noise of its training examples, in "
        "effect memorising them, instead of learning patterns that hold in general. Such a model scores well on "
        "the data it was trained on but does poorly on new data it has not seen. That is a serious problem "
        "because the whole point of a model is to be useful on future data."
    ),
    key_points=(
        "Overfitting means the model memorises specific details of the training data instead of general patterns.",
        "An overfit model performs well on its training data.",
        "An overfit model performs poorly on new, unseen data.",
    ),
    misconceptions=(
        "Overfitting means the model has not trained long enough to learn the training data.",
        "An overfit model does better on new data than on its training data.",
    ),
)
SGD = FreeTextSpec(
    prompt="Explain stochastic gradient descent (SGD) and how it differs from ordinary gradient descent.",
    reference_answer=(
        "SGD is a method for updating a model's weights automatically. It takes a small batch of examples (or "
        "even one), measures the loss and its gradient on them, nudges the weights to lower the loss, and then "
        "moves on to the next batch. Ordinary gradient descent instead computes the gradient over the entire "
        "data set before making each update, so it takes far fewer but much more expensive steps."
    ),
    key_points=(
        "SGD updates the model's weights after each small batch or single example.",
        "Ordinary gradient descent uses the entire data set to compute each update.",
        "Both methods change the weights in the direction that reduces the loss.",
    ),
    misconceptions=(
        "SGD computes the gradient over the entire data set before each update.",
        "SGD changes the weights at random without using the loss.",
    ),
)


def assert_well_formed(grade, spec):
    assert grade.verdict in VERDICTS
    assert 0.0 <= grade.score <= 1.0
    assert 0.0 <= grade.confidence <= 1.0
    assert len(grade.covered) == len(spec.key_points)
    assert grade.feedback


def test_it_loads_the_model_once():
    assert load_model() is load_model()


def test_it_marks_a_correct_paraphrase_correct():
    grade = grade_free_text(
        OVERFITTING,
        "A model that overfits has memorised the quirks of its training examples instead of learning general "
        "patterns, so it does really well on the training data but badly on new data it has never seen.",
    )
    assert_well_formed(grade, OVERFITTING)
    assert grade.verdict == "correct"
    assert not grade.contradicted
    assert grade.score >= 0.7


def test_it_does_not_accept_the_learning_rate_trap_from_the_design_notes():
    # Raw cosine similarity puts this above two correct paraphrases.
    grade = grade_free_text(OVERFITTING, "Overfitting is when the learning rate is too high")
    assert grade.verdict != "correct"
    assert grade.score < 0.3


def test_it_does_not_credit_the_key_points_words_used_to_say_something_else():
    # "weights", "batch", "gradient descent", "loss": the words are the reference's, the claims are not.
    answer = (
        "SGD draws a colourful chart of the weights for each batch, "
        "and plain gradient descent prints the loss on paper."
    )
    grade = grade_free_text(SGD, answer)
    assert grade.verdict == "incorrect"
    assert grade.score == 0.0
    assert "something else" in grade.feedback


def _analysis(**changes):
    """What the model might see in an answer that makes the first of three key points well."""
    seen = Analysis(
        status="ok",
        n_key_points=3,
        recall=(0.8, 0.2, 0.2),
        similarity=(0.5, 0.0, 0.0),
        negation=(0.0, 0.0, 0.0),
        misconception_sim=(0.0, 0.0),
        misconception_margin=(-0.3, -0.3),
        precision=0.75,
        novelty=0.05,
        topic_sim=0.6,
        copy_share=0.1,
    )
    return dataclasses.replace(seen, **changes)


def test_an_answer_whose_own_words_are_mostly_not_the_references_earns_nothing():
    assert decide(SGD, _analysis()).verdict == "partial"
    grade = decide(SGD, _analysis(novelty=THRESHOLDS.novelty_at + 0.2))
    assert (grade.verdict, grade.score, grade.covered) == ("incorrect", 0.0, (False, False, False))
    assert not grade.contradicted  # another claim, not a denial of this one


def test_credit_close_to_the_novelty_limit_goes_to_an_instructor():
    assert decide(SGD, _analysis(novelty=THRESHOLDS.novelty_at - 0.01)).verdict == "needs_review"
    assert decide(SGD, _analysis(novelty=THRESHOLDS.novelty_at + 0.01)).verdict == "needs_review"


def test_nearly_contradicting_an_answer_that_earns_nothing_leaves_it_incorrect():
    nothing_made = _analysis(recall=(0.2, 0.2, 0.2), misconception_sim=(THRESHOLDS.misconception_at - 0.01, 0.0))
    assert decide(SGD, nothing_made).verdict == "incorrect"


def test_it_does_not_accept_a_negation_of_the_reference():
    grade = grade_free_text(
        OVERFITTING,
        "An overfit model does not memorise its training data, and it does not do worse on new data than on the "
        "data it was trained on.",
    )
    assert grade.verdict != "correct"
    assert grade.contradicted


def test_it_flags_a_listed_misconception():
    grade = grade_free_text(OVERFITTING, "An overfit model does better on new data than on its training data.")
    assert grade.verdict == "incorrect"
    assert grade.contradicted
    assert "misconception" in grade.feedback


@pytest.mark.parametrize("answer", ["", "   ", "\n\t  \n", "<p> </p>"])
def test_empty_answers_are_incorrect_and_certain(answer):
    grade = grade_free_text(OVERFITTING, answer)
    assert grade.verdict == "incorrect"
    assert grade.confidence >= 0.9
    assert grade.score == 0.0
    assert grade.covered == (False, False, False)


def test_a_copy_of_the_question_is_not_correct():
    grade = grade_free_text(OVERFITTING, OVERFITTING.prompt)
    assert grade.verdict == "incorrect"
    assert grade.score == 0.0


def test_off_topic_text_is_incorrect():
    grade = grade_free_text(OVERFITTING, "Bananas are a good source of potassium, and they grow in bunches.")
    assert grade.verdict == "incorrect"


def test_an_answer_making_one_of_three_key_points_is_partial():
    grade = grade_free_text(SGD, "SGD updates the weights after every mini-batch.")
    assert grade.verdict == "partial"
    assert grade.covered[0]
    assert not grade.covered[1]
    assert "gradient descent" in grade.feedback  # it names what is missing


def test_markup_and_scripts_are_read_as_text():
    answer = (
        "<script>alert('the model is perfect')</script><style>p {color: red}</style>"
        "<p>Overfitting: the model <b>memorises</b> the training set instead of general patterns, "
        "so it scores well there but poorly on new data.</p>"
    )
    grade = grade_free_text(OVERFITTING, answer)
    assert_well_formed(grade, OVERFITTING)
    assert grade.verdict == "correct"


def test_answers_in_another_script_go_to_an_instructor():
    grade = grade_free_text(OVERFITTING, "过拟合是指模型记住了训练数据，在新数据上表现很差。")
    assert grade.verdict == "needs_review"


@pytest.mark.parametrize(
    "answer",
    [
        ("An overfit model memorises its training data and does badly on new data. " * 1400)[:100_000],
        "x" * 100_000,
        "<div>" * 20_000,
        ("word " * 20_000)[:100_000],
    ],
    ids=["sentences", "one-long-word", "tags", "one-long-sentence"],
)
def test_100_kB_answers_finish_in_bounded_time(answer):
    load_model()
    start = time.perf_counter()
    grade = grade_free_text(OVERFITTING, answer)
    assert time.perf_counter() - start < 10  # about a second on two busy cores
    assert_well_formed(grade, OVERFITTING)


def test_an_answer_too_long_to_read_whole_goes_to_an_instructor():
    answer = "An overfit model memorises its training data and does badly on new data. " * 200
    grade = grade_free_text(OVERFITTING, answer)
    assert grade.verdict == "needs_review"
    assert "long" in grade.feedback


def test_it_accepts_specs_built_from_lists():
    spec = FreeTextSpec(SGD.prompt, SGD.reference_answer, list(SGD.key_points), list(SGD.misconceptions))
    grade = grade_free_text(spec, "SGD updates the weights after every mini-batch.")
    assert grade.verdict == "partial"
