"""Marking by rule: exact types, partial credit for multiple choice and matching, forgiving
number and word input, and no exception whatever a stored response looks like."""

import pytest

from quizzes.models import Question
from quizzes.scoring import mark, parse_number


def q(**fields) -> Question:
    return Question(slug="q", prompt="?", explanation="!", **fields)


SINGLE = q(
    type="single", options=[{"key": "a", "text": "A", "correct": False}, {"key": "b", "text": "B", "correct": True}]
)
MULTIPLE = q(
    type="multiple",
    options=[{"key": k, "text": k, "correct": k in "abc"} for k in "abcde"],  # a, b, c are right
)
NUMERIC = q(type="numeric", answer=0.93, tolerance=0.001)
YEAR = q(type="numeric", answer=7390, tolerance=0)
PERCENT = q(type="numeric", answer=80, tolerance=0, unit="%")
MATCHING = q(type="matching", pairs=[{"left": str(i), "right": str(i)} for i in range(4)])
CODE_BLANK = q(type="fill_blank", answers=["True"], case_sensitive=True)
WORD_BLANK = q(type="fill_blank", answers=["photosynthesis", "photo synthesis"], case_sensitive=False)


@pytest.mark.parametrize(
    "question, response, score, verdict",
    [
        (SINGLE, {"choice": "b"}, 1, "correct"),
        (SINGLE, {"choice": "a"}, 0, "incorrect"),
        (q(type="true_false", answer=False), {"value": False}, 1, "correct"),
        (q(type="true_false", answer=False), {"value": True}, 0, "incorrect"),
        (NUMERIC, {"text": "0.93"}, 1, "correct"),
        (NUMERIC, {"text": "0.9305"}, 1, "correct"),
        (NUMERIC, {"text": "0.932"}, 0, "incorrect"),
        (NUMERIC, {"text": "0,93"}, 1, "correct"),
        (YEAR, {"text": "7,390"}, 1, "correct"),
        (YEAR, {"text": " 7 390 "}, 1, "correct"),
        (YEAR, {"text": "7391"}, 0, "incorrect"),
        (YEAR, {"text": "seven thousand"}, 0, "incorrect"),
        (PERCENT, {"text": "80 %"}, 1, "correct"),
        (PERCENT, {"text": "80%"}, 1, "correct"),
        (CODE_BLANK, {"text": "  True "}, 1, "correct"),
        (CODE_BLANK, {"text": "`True`"}, 1, "correct"),
        (CODE_BLANK, {"text": "true"}, 0, "incorrect"),
        (CODE_BLANK, {"text": "TRUE"}, 0, "incorrect"),
        (WORD_BLANK, {"text": "Photosynthesis"}, 1, "correct"),
        (WORD_BLANK, {"text": "PHOTO   synthesis"}, 1, "correct"),
        (WORD_BLANK, {"text": "respiration"}, 0, "incorrect"),
    ],
)
def test_exact_types_score_all_or_nothing(question, response, score, verdict):
    result = mark(question, response)
    assert (result.score, result.verdict) == (score, verdict)


@pytest.mark.parametrize(
    "chosen, score",
    [
        (["a", "b", "c"], 1.0),
        (["a", "b"], 2 / 3),
        (["a", "b", "c", "d"], 2 / 3),  # every right one, one wrong
        (["a", "d"], 0.0),
        (["a", "d", "e"], 0.0),  # floored at zero, never negative
        (["d"], 0.0),
    ],
)
def test_multiple_choice_scores_right_minus_wrong_over_the_number_right(chosen, score):
    result = mark(MULTIPLE, {"choices": chosen})
    assert result.score == pytest.approx(score)
    assert result.verdict == ("correct" if score == 1 else "incorrect" if score == 0 else "partial")


def test_matching_scores_the_share_of_right_pairs():
    assert mark(MATCHING, {"pairs": {"0": 0, "1": 1, "2": 3, "3": 2}}).score == 0.5
    assert mark(MATCHING, {"pairs": {"0": 0, "1": 1, "2": 2, "3": 3}}).verdict == "correct"
    assert mark(MATCHING, {"pairs": {"0": 0}}).score == 0.25  # unanswered rows count as wrong


@pytest.mark.parametrize(
    "question, response",
    [
        (SINGLE, None),
        (SINGLE, {}),
        (SINGLE, {"choices": ["b"]}),  # a response of another type
        (MULTIPLE, {"choices": "abc"}),
        (q(type="true_false", answer=True), {"value": "yes"}),
        (MATCHING, {"pairs": {"x": "y"}}),
        (MATCHING, {"pairs": []}),
        (NUMERIC, {"text": "1e999"}),
        (NUMERIC, {"text": "nan"}),
    ],
)
def test_an_empty_or_malformed_response_scores_zero_without_raising(question, response):
    result = mark(question, response)
    assert (result.score, result.verdict) == (0.0, "incorrect")


def test_free_text_is_not_marked_by_rule():
    with pytest.raises(ValueError):
        mark(q(type="free_text"), {"text": "anything"})


@pytest.mark.parametrize(
    "text, number",
    [("1478", 1478), ("1,478", 1478), ("0,25", 0.25), ("−3", -3), ("1.5e3", 1500), ("12 kg", None), ("", None)],
)
def test_numbers_are_read_the_way_people_type_them(text, number):
    assert parse_number(text) == number
