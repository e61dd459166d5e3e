"""Marking of the question types a rule can mark: everything but free text.

Pure functions over a Question and a stored response; free text goes to the grader instead.
Stored responses (the canonical shapes, whatever order the options were shown in):
  single {"choice": key} · multiple {"choices": [key, ...]} · true_false {"value": bool}
  numeric, fill_blank, free_text {"text": str} · matching {"pairs": {"<left index>": <right index>}}
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from quizzes.models import Question, QuestionType, Verdict

_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_SPACES_RE = re.compile(r"[\s\u00a0\u202f\u2009_']+")


@dataclass(frozen=True)
class Mark:
    score: float
    verdict: str
    feedback: str = ""


def verdict_for(score: float) -> str:
    if score >= 1:
        return Verdict.CORRECT
    if score <= 0:
        return Verdict.INCORRECT
    return Verdict.PARTIAL


def parse_number(text: str, unit: str = "") -> float | None:
    """Read a number the way people type one: '7,390', '7 390', '0,25', '80 %', '1.5e3'."""
    value = text.strip()
    if unit and value.endswith(unit):
        value = value[: -len(unit)]
    value = value.strip().rstrip("%").strip()
    value = _SPACES_RE.sub("", value).replace("\u2212", "-")
    if _THOUSANDS_RE.match(value):
        value = value.replace(",", "")
    elif value.count(",") == 1 and "." not in value:
        value = value.replace(",", ".")  # a decimal comma
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _fill_blank_matches(question: Question, text: str) -> bool:
    given = " ".join(text.strip().strip("`").split())
    for accepted in question.answers:
        wanted = " ".join(str(accepted).split())
        if question.case_sensitive and given == wanted:
            return True
        if not question.case_sensitive and given.casefold() == wanted.casefold():
            return True
    return False


def mark(question: Question, response: dict | None) -> Mark:
    """Score one response from 0 to 1. An empty or malformed response scores 0; nothing raises."""
    if question.type == QuestionType.FREE_TEXT:
        raise ValueError("free-text answers are graded by the free-text grader, not by rules")
    if not response:
        return Mark(0.0, Verdict.INCORRECT, "No answer was given.")
    try:
        score, feedback = _score(question, response)
    except (KeyError, TypeError, ValueError, AttributeError):
        # A stored response that no longer fits (the question's type or options changed since).
        return Mark(0.0, Verdict.INCORRECT, "This answer no longer fits the question as it stands now.")
    score = min(1.0, max(0.0, score))
    return Mark(score, verdict_for(score), feedback)


def _score(question: Question, response: dict) -> tuple[float, str]:
    qtype = question.type
    if qtype == QuestionType.SINGLE:
        return (1.0 if str(response["choice"]) in question.correct_keys() else 0.0), ""
    if qtype == QuestionType.MULTIPLE:
        if not isinstance(response["choices"], list):
            raise TypeError("choices must be a list")
        chosen = {str(k) for k in response["choices"]}
        right = question.correct_keys()
        hits, misses = len(chosen & right), len(chosen - right)
        feedback = f"{hits} of {len(right)} right choices picked" + (f", {misses} wrong" if misses else "") + "."
        return max(0.0, (hits - misses) / len(right)), feedback
    if qtype == QuestionType.TRUE_FALSE:
        value = response["value"]
        if not isinstance(value, bool):
            raise TypeError("value must be a bool")
        return (1.0 if value is question.answer else 0.0), ""
    if qtype == QuestionType.NUMERIC:
        number = parse_number(str(response["text"]), question.unit)
        if number is None:
            return 0.0, "That is not a number we can read."
        # A hair of slack so that 0.1 + 0.2 style float noise never fails a right answer.
        slack = question.tolerance + 1e-9 * max(1.0, abs(float(question.answer)))
        return (1.0 if abs(number - float(question.answer)) <= slack else 0.0), ""
    if qtype == QuestionType.FILL_BLANK:
        return (1.0 if _fill_blank_matches(question, str(response["text"])) else 0.0), ""
    if qtype == QuestionType.MATCHING:
        given = {int(k): int(v) for k, v in response["pairs"].items()}
        n = len(question.pairs)
        right = sum(1 for left in range(n) if given.get(left) == left)
        return right / n, f"{right} of {n} pairs matched."
    raise ValueError(f"unknown question type {qtype!r}")
