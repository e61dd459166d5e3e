"""The free-text grader: its decision with made-up model outputs (what it must never do, whatever the
model says), and then the shipped model on answers a teacher would grade."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import yaml

from courses.services import DEFAULT_CONTENT_ROOT
from quizzes import grader_model, grading
from quizzes.grader_model import Calibration
from quizzes.grading import Analysis, FreeTextSpec, decide, grade_free_text, needs_review

# A calibration with round numbers, so the decision tests do not move when the grader is retrained.
CAL = Calibration(temperature=1.0, weights=(3.0, 3.0, 3.0), cuts=(3.0, 6.0), contradicts_at=0.5, review_below=0.6)

FIRST_NEURON = FreeTextSpec(
    prompt=(
        "Who produced the earliest mathematical description of an artificial neuron, and what fields did they "
        "come from?"
    ),
    reference_answer="In 1943 Warren McCulloch and Walter Pitts set out the earliest mathematical account of a neuron.",
    key_points=(
        "Warren McCulloch and Walter Pitts proposed the earliest mathematical neuron model.",
        "Their neuron model dates from 1943.",
        "McCulloch was a neurophysiologist and Pitts was a logician.",
    ),
)


def seen(cover, contradicts=None, status="ok", truncated=False) -> Analysis:
    n = len(cover)
    return Analysis(status, n, tuple(cover), tuple(contradicts or (0.0,) * n), truncated)


# ---------------------------------------------------------------- the decision, model outputs made up


def test_every_key_point_covered_is_correct_and_sure():
    grade = decide(FIRST_NEURON, seen([0.97, 0.95, 0.96]), CAL)
    assert (grade.verdict, grade.score, grade.covered) == ("correct", 1.0, (True, True, True))
    assert grade.confidence > 0.9 and not needs_review(grade, CAL.review_below)


def test_nothing_covered_is_incorrect():
    grade = decide(FIRST_NEURON, seen([0.02, 0.03, 0.01]), CAL)
    assert (grade.verdict, grade.score, grade.contradicted) == ("incorrect", 0.0, False)


def test_one_key_point_of_three_is_partial():
    grade = decide(FIRST_NEURON, seen([0.95, 0.05, 0.7]), CAL)
    assert (grade.verdict, grade.score) == ("partial", 0.5)


def test_a_contradiction_with_nothing_covered_is_incorrect_and_says_which_point():
    grade = decide(FIRST_NEURON, seen([0.02, 0.1, 0.05], [0.92, 0.0, 0.0]), CAL)
    assert (grade.verdict, grade.score, grade.contradicted) == ("incorrect", 0.0, True)
    assert grade.confidence >= 0.92
    assert grade.feedback.endswith(FIRST_NEURON.key_points[0])


@pytest.mark.parametrize("seed", range(20))
def test_an_answer_with_a_covered_key_point_is_never_zero_for_contradicting(seed):
    rng = random.Random(seed)
    for _ in range(200):
        cover = [rng.random() for _ in range(3)]
        contradicts = [rng.random() for _ in range(3)]
        cover[rng.randrange(3)] = max(cover) if max(cover) >= grading.COVERED_AT else 0.5 + rng.random() / 2
        grade = decide(FIRST_NEURON, seen(cover, contradicts), CAL)
        if grade.contradicted:
            assert grade.verdict != "incorrect" and (grade.score > 0 or grade.verdict == "needs_review")


def test_more_cover_never_earns_less_credit():
    """Adding to an answer can only raise each key point's cover (it is the best over the answer's
    windows), so credit must never fall when cover rises, wherever the ordinal cut points lie."""
    grid = [0.0, 0.2, 0.45, 0.55, 0.8, 1.0]
    for cal in (CAL, Calibration(weights=(0.5, 7.0, 0.1), cuts=(1.0, 4.0)), grader_model.calibration()):
        for low in itertools.product(grid, repeat=3):
            for k in range(3):
                for up in grid:
                    if up <= low[k]:
                        continue
                    high = list(low)
                    high[k] = up
                    before, after = decide(FIRST_NEURON, seen(low), cal), decide(FIRST_NEURON, seen(high), cal)
                    assert after.score >= before.score, (cal, low, high, before, after)


def test_the_review_bar_alone_decides_who_waits_for_an_instructor():
    hesitant = decide(FIRST_NEURON, seen([0.7, 0.3, 0.05]), CAL)
    assert hesitant.verdict == "partial" and 0.2 < hesitant.confidence < 0.6
    assert needs_review(hesitant, 0.6) and not needs_review(hesitant, 0.2)


def test_a_wrong_verdict_the_grader_is_unsure_of_waits_for_an_instructor():
    unsure = decide(FIRST_NEURON, seen([0.35, 0.28, 0.3]), CAL)
    assert unsure.verdict == "incorrect" and needs_review(unsure, CAL.review_below)


def test_feedback_keeps_the_capitals_of_names():
    grade = decide(FIRST_NEURON, seen([0.05, 0.95, 0.9]), CAL)
    assert "Warren McCulloch and Walter Pitts" in grade.feedback and "warren" not in grade.feedback


@pytest.mark.parametrize(
    ("status", "verdict"), [("empty", "incorrect"), ("other_language", "needs_review"), ("copy", "incorrect")]
)
def test_what_is_settled_before_the_model(status, verdict):
    grade = decide(FIRST_NEURON, Analysis(status, 3), CAL)
    assert grade.verdict == verdict and grade.score == 0.0 and grade.covered == (False, False, False)


def test_a_truncated_answer_goes_to_an_instructor():
    grade = decide(FIRST_NEURON, seen([0.97, 0.95, 0.96], truncated=True), CAL)
    assert needs_review(grade, 0.55) and "very long" in grade.feedback


# ---------------------------------------------------------------- reading the text


@pytest.mark.parametrize(
    "text",
    [
        "Le modèle apprend les détails des données d'entraînement et il est mauvais sur les nouvelles images.",
        "El modelo memoriza los datos de entrenamiento y no funciona bien con datos nuevos.",
        "Das Modell lernt die Trainingsdaten auswendig und ist auf neuen Daten schlecht.",
        "深層学習はデータから学びます",
    ],
)
def test_answers_in_another_language_are_for_an_instructor(text):
    assert grading.screen(FIRST_NEURON, text) == "other_language"


@pytest.mark.parametrize(
    "text",
    [
        "playfulness, curiosity, tenacity",
        "McCulloch & Pitts 1943 -> neurophysiologist + logician",
        "the model learn the train data too much and is bad in new data",
    ],
)
def test_terse_or_broken_english_is_read_as_english(text):
    assert grading.is_english(text)


def test_a_copy_of_the_question_is_caught_before_the_model():
    assert grading.screen(FIRST_NEURON, FIRST_NEURON.prompt.lower()) == "copy"
    assert grading.screen(FIRST_NEURON, "McCulloch and Pitts, a neurophysiologist and a logician") == "ok"


def test_the_model_reads_the_whole_answer_then_each_sentence():
    parts, whole, truncated = grading.windows("First idea here. Second idea there.")
    assert parts == ["First idea here. Second idea there.", "First idea here.", "Second idea there."]
    assert (whole, truncated) == (1, False)
    long, whole, truncated = grading.windows(" ".join(f"w{i}" for i in range(200)))
    assert whole == 4 and not truncated and all(len(p.split()) <= grading.WINDOW_WORDS for p in long)
    _, _, truncated = grading.windows(". ".join(f"sentence number {i}" for i in range(40)))
    assert truncated


def test_markup_is_read_as_text():
    text = grading.clean_text("<ul><li>curiosity</li><li>play</li></ul><script>alert(1)</script>")
    assert grading.sentences(text) == ["curiosity", "play"] and "alert" not in text


def test_the_sites_default_review_bar_is_the_calibrated_one(settings):
    assert settings.JOURNEY_REVIEW_CONFIDENCE == grader_model.calibration().review_below


# ---------------------------------------------------------------- the shipped model


@pytest.fixture(scope="module")
def chapter() -> dict[str, FreeTextSpec]:
    """The chapter's free-text questions, as the site builds their specs (Question.free_text_spec)."""
    specs = {}
    for path in sorted((DEFAULT_CONTENT_ROOT / "questions").glob("*.yaml")):
        for q in yaml.safe_load(path.read_text()):
            if q.get("type") == "free_text":
                specs[q["slug"]] = FreeTextSpec(q["prompt"], q["reference_answer"], tuple(q["key_points"]))
    return specs


def grade(chapter, slug, text):
    return grade_free_text(chapter[slug], text)


def test_it_loads_the_model_once():
    assert grader_model.load() is grader_model.load()


def test_the_answers_that_were_marked_wrong_get_the_credit_a_teacher_gives(chapter):
    mark_i = grade(
        chapter,
        "history-mark-i-perceptron",
        "It was a physical machine built by Frank Rosenblatt around 1958 that learned to recognise simple visual "
        "patterns, like shapes, by adjusting its connection weights from examples.",
    )
    assert mark_i.verdict == "correct", mark_i
    labels = grade(
        chapter,
        "limitations-labels-needed",
        "Because without labels there is nothing to compare the model's predictions with, so it cannot tell when "
        "it is wrong and has no way to improve. Raw photos alone do not say which is a cat.",
    )
    assert labels.verdict == "correct", labels
    is_cat = grade(chapter, "first-model-is-cat-purpose", "It returns True if the picture is a cat.")
    assert is_cat.verdict in ("partial", "needs_review") and is_cat.score == 0.5, is_cat


def test_extra_correct_detail_never_costs_credit(chapter):
    base = "Overfitting is when the model memorises the training data instead of learning general patterns."
    extra = " It then looks great on the training set but does badly on new images it has not seen."
    before, after = (
        grade(chapter, "limitations-overfitting", base),
        grade(chapter, "limitations-overfitting", base + extra),
    )
    assert all(a >= b for a, b in zip(after.covered, before.covered))
    assert after.score >= before.score


def test_it_does_not_accept_the_learning_rate_trap_from_the_design_notes(chapter):
    trap = grade(chapter, "limitations-overfitting", "Overfitting is when the learning rate is too high.")
    assert trap.verdict != "correct" and trap.score < 1.0


def test_a_right_answer_with_the_roles_swapped_is_not_credited(chapter):
    swapped = grade(
        chapter,
        "first-model-valid-pct-purpose",
        "It means 20% of the data is used for training and the rest for validation.",
    )
    assert swapped.score == 0.0 or needs_review(swapped, grader_model.calibration().review_below), swapped


def test_a_long_answer_finishes_in_bounded_time(chapter):
    answer = "The model memorises the training data. " * 2000
    result = grade(chapter, "limitations-overfitting", answer)
    assert result.verdict in grading.VERDICTS


def test_empty_answers_never_reach_the_model(chapter, monkeypatch):
    monkeypatch.setattr(grader_model, "load", lambda: pytest.fail("the model was asked"))
    for text in ("", "   ", "<p> </p>"):
        assert grade(chapter, "limitations-overfitting", text).verdict == "incorrect"


def test_probabilities_are_probabilities():
    model = grader_model.load()
    p = model.probabilities([("A key point. [A question?]", "An answer."), ("Another point. [Q?]", "x")])
    assert p.shape == (2, 3) and np.allclose(p.sum(axis=1), 1.0) and (p >= 0).all()


def test_the_model_is_built_with_as_many_trained_layers_as_its_weights_hold(tmp_path):
    """Training may change how many top layers it tunes; the weights file says, and a file that lacks
    one of the layers it names is refused instead of silently keeping the package's layer."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(grader_model.WEIGHTS_FILE))
    layers = sorted({int(k.split(".")[3]) for k in state if k.startswith("bert.encoder.layer.")})
    assert grader_model.trained_layers(grader_model.WEIGHTS_FILE) == len(layers)
    assert grader_model.load().encoder.split == 6 - len(layers)

    damaged = tmp_path / "keypoints.safetensors"
    save_file(
        {k: v for k, v in state.items() if ".output.dense.weight" not in k or f".{layers[-1]}." not in k}, damaged
    )
    with pytest.raises(ValueError, match="missing"):
        grader_model.KeyPointModel(weights=damaged)
