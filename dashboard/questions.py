"""The questions page's reads: per question, over a class's handed-in tests, how hard it was, how well
it told strong students from weak ones, and the wrong answers given most."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from accounts.models import Classroom
from dashboard.models import ClassQuestionStats, ClassWrongAnswer, Moments
from dashboard.progress import response_words


@dataclass
class QuestionStats:
    question_id: int
    slug: str
    section: str
    order: tuple
    prompt: str
    attempts: int = 0
    facility: float | None = None
    discrimination: float | None = None
    wrong: list[tuple[str, int]] = field(default_factory=list)


QUESTION_SORTS = {
    "order": lambda s: s.order,
    "attempts": lambda s: s.attempts,
    "facility": lambda s: -1 if s.facility is None else s.facility,
    "discrimination": lambda s: -2 if s.discrimination is None else s.discrimination,
}


def discrimination_index(m) -> float | None:
    """Moodle's discrimination index of a question from its Moments sums: the correlation, over the
    answers, between an answer's score and the score of the rest of its test, from -1 to 1 (Moodle
    prints it times 100). None with fewer than two answers, or when either side never varies."""
    n = m.answers
    if n < 2:
        return None
    var_x = (m.score_sq - m.score_sum * m.score_sum / n) / (n - 1)
    var_y = (m.rest_sq - m.rest_sum * m.rest_sum / n) / (n - 1)
    cov = (m.cross - m.score_sum * m.rest_sum / n) / (n - 1)
    if var_x <= 1e-12 or var_y <= 1e-12:  # sums kept by additions: zero may be a rounding error away
        return None
    return max(-1.0, min(1.0, cov / math.sqrt(var_x * var_y)))


_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_MARKS = re.compile(r"\*\*|[`*]")


def plain_text(markdown: str) -> str:
    """A question's Markdown prompt as one line of plain text (links by their text, no code or emphasis
    marks): what a table of 60 questions can show of each, far cheaper than stripping its HTML."""
    return " ".join(_MARKDOWN_MARKS.sub("", _MARKDOWN_LINK.sub(r"\1", markdown)).split())


# Below this many handed-in tests with a question, its discrimination is not given: a correlation over
# a handful of tests swings from -1 to 1 on one student's answer (over two it is always one or the other).
DISCRIMINATION_MIN_TESTS = 10


def class_question_stats(
    *, classroom: Classroom, sort: str = "order", min_tests: int = DISCRIMINATION_MIN_TESTS
) -> list[QuestionStats]:
    """Per question, over the class's handed-in tests: answers, facility, discrimination, the three
    most common wrong answers in the question's words (the options' texts, not their keys), and the
    prompt as plain text.

    Facility is the mean score. Discrimination is Moodle's discrimination index (see
    `discrimination_index`), None for a question in fewer than `min_tests` tests. Two queries,
    whatever the class size: the class's sums per question with the questions' fields, and its three
    most given wrong answers per question; both tables are kept by dashboard.progress as students
    answer and join.
    """
    question = ("question_id", "question__slug", "question__section__title", "question__section__order",
                "question__order", "question__prompt", "question__type", "question__options",
                "question__pairs")  # fmt: skip
    sums = ClassQuestionStats.objects.filter(classroom=classroom).values_list(*question, *Moments.MOMENTS)
    stats: dict[int, QuestionStats] = {}
    kinds: dict[int, SimpleNamespace] = {}  # what response_words needs of each question
    for qid, slug, section, section_order, order, prompt, kind, options, pairs, *moments in sums:
        m = SimpleNamespace(**dict(zip(Moments.MOMENTS, moments, strict=True)))
        stats[qid] = QuestionStats(
            qid, slug, section, (section_order, order), plain_text(prompt),
            attempts=m.answers, facility=m.score_sum / m.answers,
            discrimination=discrimination_index(m) if m.answers >= min_tests else None,
        )  # fmt: skip
        kinds[qid] = SimpleNamespace(type=kind, options=options, pairs=pairs)
    rank = Window(RowNumber(), partition_by=F("question_id"), order_by=(F("n").desc(), F("text").asc()))
    wrong = (
        ClassWrongAnswer.objects.filter(classroom=classroom)
        .annotate(rank=rank)
        .filter(rank__lte=3)
        .order_by("question_id", "rank")
        .values_list("question_id", "text", "n")
    )
    for q, text, count in wrong:
        if q in stats:
            stats[q].wrong.append((response_words(kinds[q], text), count))
    out = list(stats.values())
    key = sort.lstrip("-")
    out.sort(key=QUESTION_SORTS.get(key, QUESTION_SORTS["order"]), reverse=sort.startswith("-"))
    if key == "discrimination":  # questions without one (too few tests) last, either way
        out = [s for s in out if s.discrimination is not None] + [s for s in out if s.discrimination is None]
    return out
