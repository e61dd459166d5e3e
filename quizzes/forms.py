"""Forms of the quiz pages, and the reading of a posted answer into its stored shape.

A posted value that the page could not have offered (an option position out of range, a
question the attempt does not hold) is a BadAnswer: the view answers 400 and stores nothing.
"""

from __future__ import annotations

import re

from django import forms
from django.conf import settings

from quizzes.display import display_order
from quizzes.models import REVIEW_REASON_MAX_CHARS, Attempt, Question, QuestionType

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadAnswer(ValueError):
    pass


def clean_text(value: str) -> tuple[str, bool]:
    """Text as stored: no control characters (PostgreSQL's jsonb refuses NUL), at most
    JOURNEY_ANSWER_MAX_CHARS long. Returns the text and whether it had to be cut."""
    text = _CONTROL_RE.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    limit = settings.JOURNEY_ANSWER_MAX_CHARS
    return (text[:limit].rstrip(), True) if len(text) > limit else (text, False)


def _position(raw: str, size: int) -> int:
    if not raw.isdigit() or int(raw) >= size:
        raise BadAnswer("That choice was not one of those offered.")
    return int(raw)


def response_from_post(attempt: Attempt, question: Question, position: int, data) -> tuple[dict | None, bool]:
    """Read the fields of question `position` from POST data: (stored response or None, cut short?)."""
    name = f"q{position}"
    qtype = question.type
    if qtype in (QuestionType.SINGLE, QuestionType.MULTIPLE):
        order = display_order(question, attempt)
        values = data.getlist(name)
        if qtype == QuestionType.SINGLE:
            if len(values) > 1:
                raise BadAnswer("A single-choice question takes one choice.")
            return ({"choice": order[_position(values[0], len(order))]} if values and values[0] else None), False
        keys = []
        for raw in values:
            key = order[_position(raw, len(order))]
            if key not in keys:
                keys.append(key)
        return ({"choices": keys} if keys else None), False
    if qtype == QuestionType.TRUE_FALSE:
        raw = data.get(name, "")
        if raw not in ("", "true", "false"):
            raise BadAnswer("Answer true or false.")
        return ({"value": raw == "true"} if raw else None), False
    if qtype == QuestionType.MATCHING:
        order = display_order(question, attempt)
        pairs = {}
        for left in range(len(question.pairs)):
            raw = data.get(f"{name}-{left}", "")
            if raw:
                pairs[str(left)] = order[_position(raw, len(order))]
        return ({"pairs": pairs} if pairs else None), False
    text, cut = clean_text(data.get(name, ""))
    return ({"text": text} if text else None), cut


class StartForm(forms.Form):
    mode = forms.ChoiceField(
        choices=[
            ("practice", "Practice: check each answer as you go, and try again as often as you like"),
            ("test", "Test: see how you did only once you hand it in"),
        ],
        widget=forms.RadioSelect,
        initial="practice",
        label="How do you want to take it?",
    )
    timed = forms.BooleanField(required=False, label="Time me (tests only)")

    def clean(self):
        data = super().clean()
        if data.get("mode") != "test":
            data["timed"] = False
        return data


def _score_as_fraction(form: forms.Form, data: dict, *, missing: str) -> None:
    """The review forms' "set this score": data["fraction"] from the 0-100 score, or why not (one reason:
    a score out of range has already said so)."""
    if data.get("score") is not None:
        data["fraction"] = data["score"] / 100
    elif "score" not in form.errors:
        form.add_error("score", missing)


class ReviewForm(forms.Form):
    ACCEPT, SCORE = "accept", "score"

    action = forms.ChoiceField(choices=[(ACCEPT, "Accept the suggestion"), (SCORE, "Save this score")])
    score = forms.IntegerField(min_value=0, max_value=100, required=False, label="Score (%)", help_text="0 to 100.")
    comment = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label="Comment for the student"
    )

    def __init__(self, *args, suggestion: float | None = None, **kwargs):
        self.suggestion = suggestion
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if data.get("action") == self.ACCEPT:
            if self.suggestion is None:
                raise forms.ValidationError("There is no suggestion to accept: give a score.")
            data["fraction"] = self.suggestion
        elif data.get("action") == self.SCORE:
            _score_as_fraction(self, data, missing="Give a score from 0 to 100.")
        return data


class BulkReviewForm(forms.Form):
    """One decision for the answers ticked in the queue: accept each one's suggestion, or one score for all."""

    ACCEPT, SCORE = "accept", "score"
    MAX_ANSWERS = 500

    action = forms.ChoiceField(choices=[(ACCEPT, "Accept selected"), (SCORE, "Set score for selected")])
    score = forms.IntegerField(
        min_value=0, max_value=100, required=False, label="Score for the selected answers (%)", help_text="0 to 100."
    )
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label="Comment for each of these students (optional)",
    )

    def clean(self):
        data = super().clean()
        raw = self.data.getlist("answers") if hasattr(self.data, "getlist") else []
        if not raw:
            raise forms.ValidationError("Select at least one answer first.")
        if len(raw) > self.MAX_ANSWERS or not all(str(r).isdigit() for r in raw):
            raise forms.ValidationError("That selection could not be read. Reload the page and try again.")
        data["answer_ids"] = sorted({int(r) for r in raw})
        if data.get("action") == self.SCORE:
            _score_as_fraction(self, data, missing="Give a score from 0 to 100 for the selected answers.")
        else:
            data["fraction"] = None  # each answer's own suggestion
        return data


MSG_REASON_TOO_LONG = f"Keep your reason to {REVIEW_REASON_MAX_CHARS:,} characters or fewer."


def clean_reason(value: str) -> str:
    """A student's reason as stored: no control characters (PostgreSQL refuses NUL), one character per line break,
    counted as the student typed it (a browser sends each line break as two characters)."""
    return _CONTROL_RE.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


class ReviewRequestForm(forms.Form):
    """A student asks a person to look at the grader's grade: the reason is optional."""

    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": REVIEW_REASON_MAX_CHARS}),
        label="Why should a person look at it? (optional)",
    )

    def clean_reason(self):
        reason = clean_reason(self.cleaned_data["reason"])
        if len(reason) > REVIEW_REASON_MAX_CHARS:
            raise forms.ValidationError(MSG_REASON_TOO_LONG)
        return reason
