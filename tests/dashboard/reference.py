"""What the class pages show, stated in plain Python over whole lists: the references the pages'
database-side versions are held to (the roster's sorting, filter and paging in SQL, the CSV's cells,
the score histograms' kept bin counts). No page calls these."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from accounts.models import Classroom, QuizDeadline
from accounts.selectors import class_students
from dashboard.charts import Bin, Histogram, bin_of, histogram_of_bins
from dashboard.models import QuizProgress
from dashboard.selectors import ROSTER_COLUMNS, QuizScore, StudentRow, quiz_sort, roster_rows

# ---------------------------------------------------------------- the roster

SORTS = {
    "name": lambda r: r.user.username.lower(),
    "read": lambda r: r.sections_read,
    "cards": lambda r: r.cards_reviewed,
    "attempts": lambda r: r.attempts,
    "score": lambda r: -1 if r.mean_best is None else r.mean_best,
    "jobs": lambda r: r.jobs,
    "error": lambda r: 2 if r.best_error is None else r.best_error,
    "activity": lambda r: r.last_activity.timestamp() if r.last_activity else 0,
}


def rows_sort(rows: list[StudentRow], sort: str) -> list[StudentRow]:
    """Sorted by the column asked for (a leading "-" for descending), ties by name.

    On one quiz's column, students with no score on that quiz come last in either direction.
    """
    descending = sort.startswith("-")
    rows = sorted(rows, key=SORTS["name"])
    on_quiz = quiz_sort(sort)
    if on_quiz is None:
        rows.sort(key=SORTS.get(sort.lstrip("-"), SORTS["name"]), reverse=descending)
        return rows
    quiz, which = on_quiz
    scored, unscored = [], []
    for r in rows:
        s = r.scores.get(quiz)
        value = getattr(s, which) if s else None
        (unscored if value is None else scored).append((value, r))
    scored.sort(key=lambda pair: pair[0], reverse=descending)  # stable: equal scores stay by name
    return [r for _, r in scored] + [r for _, r in unscored]


def _is_behind(r: StudentRow, behind: float) -> bool:
    return bool(r.missed) or r.mean_best is None or r.mean_best < behind


def dashboard_rows(
    *,
    classroom: Classroom,
    deadlines: list[QuizDeadline],
    sort: str = "name",
    behind: float | None = None,
    now=None,
) -> list[StudentRow]:
    """One row per student of the class, sorted and filtered in Python: what the roster lists
    (dashboard.selectors.roster_order sorts, filters and pages the same in SQL).

    `behind`, when given, keeps only students whose mean best score is below it (0 to 1) or who
    let a deadline pass without handing in a test.
    """
    now = now or timezone.now()
    every = class_students(classroom=classroom).values_list(*ROSTER_COLUMNS)
    rows = roster_rows(deadlines=deadlines, page=every, now=now)
    if behind is not None:
        rows = [r for r in rows if _is_behind(r, behind)]
    return rows_sort(rows, sort)


def class_quiz_scores(*, classroom: Classroom) -> dict[int, dict[str, QuizScore]]:
    """Each student's handed-in tests per quiz (count, best, last score)."""
    scores: dict[int, dict[str, QuizScore]] = {}
    rows = QuizProgress.objects.filter(user__in=class_students(classroom=classroom))
    for user_id, quiz, tests, best, last in rows.values_list("user_id", "quiz", "tests", "best", "last"):
        scores.setdefault(user_id, {})[quiz] = QuizScore(tests, best, last)
    return scores


# ---------------------------------------------------------------- the score histograms


def score_bins(scores: Iterable[float | None], *, n: int = 10) -> list[Bin]:
    """Scores from 0 to 1 counted into n equal bins; each bin holds [lo, hi), the last one [lo, 1].

    None (a test still waiting for its grade) is left out.
    """
    counts = [0] * n
    for s in scores:
        if s is None:
            continue
        counts[bin_of(s, n)] += 1
    return [Bin(i / n, (i + 1) / n, c) for i, c in enumerate(counts)]


def best_scores_by_quiz(scores: dict[int, dict[str, QuizScore]], quizzes: Iterable[str]) -> dict[str, list[float]]:
    """Each quiz's best scores, one per student who handed in a test of it, in quiz order; quizzes
    nobody took are left out."""
    out: dict[str, list[float]] = {}
    for quiz in quizzes:
        bests = [mine[quiz].best for mine in scores.values() if quiz in mine and mine[quiz].best is not None]
        if bests:
            out[quiz] = sorted(bests)
    return out


def histogram_chart(*, id: str, title: str, scores: list[float]) -> Histogram:
    """The histogram of these scores, as the roster draws it from the class's kept bin counts."""
    return histogram_of_bins(id=id, title=title, bins=score_bins(scores))
