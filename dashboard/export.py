"""A class's grades and progress as CSV, one line per student, streamed as it is read.

Reads two queries straight from the database cursor and writes each line with as little Python
per cell as it can: a class of 1,000 students is 30,000 cells (bench/class_scale.py).
"""

import re
from collections import defaultdict
from collections.abc import Iterator

from django.db.models import CharField, Func
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Classroom, QuizDeadline
from accounts.selectors import class_students
from dashboard.models import QuizProgress
from dashboard.selectors import ROSTER_COLUMNS, cursor_rows, dues_by_student

BATCH = 100  # lines a chunk: a chunk a line made the response encode and check its charset 1,000 times
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NEEDS_QUOTES = re.compile('[,"\r\n]')


def _text(text: str) -> str:
    """A student's own text (name, username, email) as a cell: quoted as RFC 4180 (and Python's csv
    module) quote, where it holds a comma, a quote or a line break; and shown by a spreadsheet, never
    run: one that starts like a formula gets a leading apostrophe (OWASP's advice against CSV
    injection)."""
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    return '"' + text.replace('"', '""') + '"' if NEEDS_QUOTES.search(text) else text


class UtcText(Func):
    """A datetime column as the text of its moment in UTC, to the second, as spreadsheets read a date
    and time: 2026-11-27 19:25:39. Written by the database: 1,000 datetimes through the drivers'
    converters cost more than the rest of a line. SQLite stores them in UTC as this text (with the
    microseconds after it); PostgreSQL formats them."""

    output_field = CharField()
    template = "substr(%(expressions)s, 1, 19)"

    def as_postgresql(self, compiler, connection, **extra):
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
        return self.as_sql(compiler, connection, template=template, **extra)


class _Percents(dict):
    """A score as the CSV writes it (0.734 -> "73", none -> ""), each value formatted once: a class's
    scores take a few dozen values."""

    def __missing__(self, score):
        self[score] = text = "" if score is None else f"{score * 100:.0f}"
        return text


def head(quizzes: list[str]) -> list[str]:
    cells = ["username", "name", "email", "sections_read", "flashcards_reviewed", "quiz_attempts"]
    for q in quizzes:
        cells += [f"{q}_best", f"{q}_last"]
    return cells + ["jobs", "best_error_rate", "last_activity_utc", "missed_deadlines"]


def _score_cells(students, quizzes: list[str], tested: dict[int, set[str]] | None) -> dict[int, str]:
    """Each student's best and last score cells, quiz by quiz, each after a comma: one query. Fills
    `tested`, when given, with the quizzes each student has handed in a test of."""
    pct = _Percents()
    at = {q: 2 * i for i, q in enumerate(quizzes)}
    cells: dict[int, list[str]] = {}
    per_quiz = QuizProgress.objects.filter(user_id__in=students.values("pk")).order_by()
    for uid, quiz, best, last in cursor_rows(per_quiz.values_list("user_id", "quiz", "best", "last")):
        if tested is not None:
            tested[uid].add(quiz)
        if (i := at.get(quiz)) is not None:
            if (mine := cells.get(uid)) is None:
                mine = cells[uid] = [""] * (2 * len(quizzes))
            mine[i], mine[i + 1] = pct[best], pct[last]
    return {uid: "," + ",".join(mine) for uid, mine in cells.items()}


def class_csv(*, classroom: Classroom, quizzes: list[str], deadlines: list[QuizDeadline], now=None) -> Iterator[str]:
    """The CSV in chunks: the head line first, before any query, then BATCH students' lines a chunk,
    in the roster's order by name, each saying what the roster says of the student.
    Two queries as it streams: the class's quiz scores, then the students with their progress rows."""
    yield ",".join(head(quizzes)) + "\r\n"

    now = now or timezone.now()
    students = class_students(classroom=classroom)
    dues = dues_by_student(deadlines)
    tested: dict[int, set[str]] = defaultdict(set)
    scores = _score_cells(students, quizzes, tested if dues else None)
    untested = "," * (2 * len(quizzes))
    lines = []
    students = students.annotate(seen=UtcText("progress__last_activity")).order_by(Lower("username"), "pk")
    rows = cursor_rows(students.values_list(*ROSTER_COLUMNS[:-1], "seen"))
    for uid, username, first, last, email, read, cards, tests, jobs, best_error, seen in rows:
        missed = ""
        if dues:
            missed = " ".join(q for q, due, ext in dues if ext.get(uid, due) < now and q not in tested[uid])
        error = "" if best_error is None else f"{best_error:.4f}"
        lines.append(
            f"{_text(username)},{_text(f'{first} {last}'.strip())},{_text(email)},{read or 0},{cards or 0},"
            f"{tests or 0}{scores.get(uid, untested)},{jobs or 0},{error},{seen or ''},{missed}\r\n"
        )
        if len(lines) == BATCH:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)
