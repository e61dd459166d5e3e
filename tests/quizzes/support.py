"""Helpers that answer a quiz the way a student's browser would: through the shuffled page values."""

from __future__ import annotations

from quizzes.display import display_order
from quizzes.models import Attempt, Question


def positions(attempt: Attempt) -> dict[str, int]:
    return {slug: n for slug, n in attempt.answers.values_list("question__slug", "position")}


def shown(attempt: Attempt, question: Question, key) -> str:
    """The value the page gives option `key` (or matching right side `key`) in this attempt."""
    return str(display_order(question, attempt).index(key))


def fields_for(attempt: Attempt, question: Question, answer) -> dict:
    """POST fields answering `question` in `attempt`. `answer` is in the bank's own terms:
    an option key, a list of keys, a bool, text, or {left index: right index}."""
    n = positions(attempt)[question.slug]
    name = f"q{n}"
    if question.type == "single":
        return {name: shown(attempt, question, answer)}
    if question.type == "multiple":
        return {name: [shown(attempt, question, k) for k in answer]}
    if question.type == "true_false":
        return {name: "true" if answer else "false"}
    if question.type == "matching":
        return {f"{name}-{left}": shown(attempt, question, right) for left, right in answer.items()}
    return {name: answer}


def right_answer(question: Question):
    if question.type == "single":
        return next(o["key"] for o in question.options if o["correct"])
    if question.type == "multiple":
        return [o["key"] for o in question.options if o["correct"]]
    if question.type == "true_false":
        return question.answer
    if question.type == "numeric":
        return str(question.answer)
    if question.type == "matching":
        return {i: i for i in range(len(question.pairs))}
    if question.type == "fill_blank":
        return question.answers[0]
    return "A fine answer in my own words."


def all_right(attempt: Attempt) -> dict:
    data = {}
    for answer in attempt.answers.select_related("question"):
        data.update(fields_for(attempt, answer.question, right_answer(answer.question)))
    return data
