"""Reads for classes: which classes a user teaches or sits in, and the instructors' dashboard.

Everything that lists students is built from a fixed number of queries, whatever the class size,
over the summaries the services keep per student (accounts.progress): one roster query joined to
each student's progress row, one for quiz scores; never a scan of every answer or job.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Window,
)
from django.db.models.functions import Coalesce, Lower, RowNumber
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.charts import BINS
from accounts.models import (
    ClassActivityDay,
    ClassMembership,
    ClassQuestionStats,
    Classroom,
    ClassScoreBin,
    ClassWrongAnswer,
    Extension,
    Moments,
    QuizDeadline,
    QuizProgress,
    Role,
    StudentProgress,
)
from accounts.progress import response_words
from courses.models import FlashcardReview, ReadingProgress, Section
from mlworker.models import JobState, TrainingJob
from quizzes.models import CHAPTER_QUIZ, Attempt

CHAPTER_TITLE = "The whole chapter"


def students_taught_by(user) -> QuerySet:
    """Ids of the students in any class this user teaches (a subquery, not a list)."""
    if not user.is_authenticated:
        return get_user_model().objects.none().values("pk")
    taught = ClassMembership.objects.filter(user=user, role=Role.INSTRUCTOR).values("classroom_id")
    return ClassMembership.objects.filter(classroom_id__in=taught, role=Role.STUDENT).values("user_id")


def _waiting_for_review():
    """How many handed-in answers of the class's students wait for an instructor (the count
    accounts.progress keeps per class)."""
    return Coalesce(F("waiting__answers"), 0)


def _taught(user) -> QuerySet[Classroom]:
    """The classes this user teaches, each with its answers waiting for review (the class pages' nav)."""
    if not user.is_authenticated:
        return Classroom.objects.none()
    return Classroom.objects.filter(memberships__user=user, memberships__role=Role.INSTRUCTOR).annotate(
        n_waiting=_waiting_for_review()
    )


def classrooms_taught_by(user) -> QuerySet[Classroom]:
    """The classes this user teaches, each with its student count and its answers waiting for review."""
    # A subquery, not Count("memberships"): that would reuse the filter's join and count only this user's row.
    students = (
        ClassMembership.objects.filter(classroom=OuterRef("pk"), role=Role.STUDENT)
        .order_by()
        .values("classroom")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return _taught(user).annotate(n_students=Coalesce(Subquery(students), 0))


def classrooms_of_student(user) -> QuerySet[Classroom]:
    if not user.is_authenticated:
        return Classroom.objects.none()
    return Classroom.objects.filter(memberships__user=user, memberships__role=Role.STUDENT)


def classrooms_of(user) -> QuerySet[Classroom]:
    """Every class the user belongs to, whatever their role in it."""
    if not user.is_authenticated:
        return Classroom.objects.none()
    return Classroom.objects.filter(pk__in=ClassMembership.objects.filter(user=user).values("classroom_id"))


def classroom_get_for_instructor(*, user, classroom_id: int) -> Classroom:
    """A class this user teaches, or 404: another's class is as absent as a missing one. Its pages show
    no student count: counting a class of 1,000 students cost half a millisecond a page."""
    return get_object_or_404(_taught(user), pk=classroom_id)


def classroom_by_code(*, code: str) -> Classroom | None:
    return Classroom.objects.filter(code=code.strip().upper()).first()


def class_students(*, classroom: Classroom) -> QuerySet:
    return (
        get_user_model()
        .objects.filter(class_memberships__classroom=classroom, class_memberships__role=Role.STUDENT)
        .order_by("username")
    )


def class_student_get(*, classroom: Classroom, user_id: int):
    return get_object_or_404(class_students(classroom=classroom), pk=user_id)


def class_instructors(*, classroom: Classroom) -> QuerySet:
    return (
        get_user_model()
        .objects.filter(class_memberships__classroom=classroom, class_memberships__role=Role.INSTRUCTOR)
        .order_by("username")
    )


def quiz_titles() -> dict[str, str]:
    """Every quiz in order: each section's, then the chapter's."""
    titles = dict(Section.objects.order_by("order").values_list("slug", "title"))
    titles[CHAPTER_QUIZ] = CHAPTER_TITLE
    return titles


def class_deadlines(*, classroom: Classroom) -> list[QuizDeadline]:
    return list(
        QuizDeadline.objects.filter(classroom=classroom).prefetch_related(
            Prefetch("extensions", queryset=Extension.objects.select_related("student").order_by("student__username"))
        )
    )


# ---------------------------------------------------------------- dashboard


@dataclass
class QuizScore:
    attempts: int = 0
    best: float | None = None
    last: float | None = None


@dataclass
class StudentRow:
    user: object
    sections_read: int
    cards_reviewed: int
    attempts: int
    jobs: int
    best_error: float | None
    last_activity: datetime | None
    scores: dict[str, QuizScore] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)  # quizzes whose deadline passed with no test handed in
    mean_best: float | None = None

    @property
    def behind_reasons(self) -> list[str]:
        return self.missed

    def score_list(self, quizzes):
        return [self.scores.get(q, QuizScore()) for q in quizzes]


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


def quiz_sort(sort: str) -> tuple[str, str] | None:
    """(quiz, "best" or "last") for a sort on one quiz's column, written `quiz:<slug>:best`; else None."""
    parts = sort.lstrip("-").split(":")
    if len(parts) == 3 and parts[0] == "quiz" and parts[2] in ("best", "last"):
        return parts[1], parts[2]
    return None


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


# What a roster row reads of a student and their progress row, in this order (see _roster_entry).
ROSTER_COLUMNS = ("pk", "username", "first_name", "last_name", "email") + tuple(
    f"progress__{n}" for n in ("sections_read", "cards_reviewed", "tests", "jobs", "best_error", "last_activity")
)


def _roster_entry(values: tuple):
    """A student (a RosterUser) and the numbers of their progress row: sections read, cards reviewed,
    tests, jobs (zeros for one with no history yet), best error rate, last activity."""
    pk, username, first, last, email, read, cards, tests, jobs, best_error, seen = values
    return RosterUser(pk, username, first, last, email), (
        read or 0,
        cards or 0,
        tests or 0,
        jobs or 0,
        best_error,
        seen,
    )


def _roster(students: QuerySet):
    """_roster_entry of each student: one query."""
    return map(_roster_entry, students.values_list(*ROSTER_COLUMNS))


@dataclass(frozen=True)
class RosterUser:
    """The few fields of a student the roster shows (cheaper than a model instance per row)."""

    pk: int
    username: str
    first_name: str
    last_name: str
    email: str

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def class_quiz_scores(*, classroom: Classroom) -> dict[int, dict[str, QuizScore]]:
    """Each student's handed-in tests per quiz (count, best, last score): one grouped query."""
    return _quiz_scores(class_students(classroom=classroom).values("pk"))


def _quiz_scores(student_ids: QuerySet) -> dict[int, dict[str, QuizScore]]:
    """Per student and quiz: handed-in tests, best score, latest score, from the quiz progress rows."""
    rows = QuizProgress.objects.filter(user_id__in=student_ids).values_list("user_id", "quiz", "tests", "best", "last")
    scores: dict[int, dict[str, QuizScore]] = defaultdict(dict)
    for user_id, quiz, tests, best, last in rows:
        scores[user_id][quiz] = QuizScore(tests, best, last)
    return scores


def dashboard_rows(
    *,
    classroom: Classroom,
    deadlines: list[QuizDeadline],
    sort: str = "name",
    behind: float | None = None,
    now=None,
) -> list[StudentRow]:
    """One row per student of the class, sorted and filtered in Python: the plain statement of what the
    roster shows. No page calls it (the roster sorts and pages in SQL through `roster_order`, the CSV
    streams `accounts.export.class_csv`); tests/accounts/test_scale.py holds those to it for every
    sort and filter and for every cell of the CSV. Two queries: the roster joined to the progress rows,
    the quiz scores.

    Sorted with rows_sort (see there for `sort`).

    `behind`, when given, keeps only students whose mean best score is below it (0 to 1) or who
    let a deadline pass without handing in a test.
    """
    now = now or timezone.now()
    students = class_students(classroom=classroom)
    rows = _rows(students, deadlines, _quiz_scores(students.values("pk")), now)
    if behind is not None:
        rows = [r for r in rows if _is_behind(r, behind)]
    return rows_sort(rows, sort)


def _is_behind(r: StudentRow, behind: float) -> bool:
    return bool(r.missed) or r.mean_best is None or r.mean_best < behind


def dues_by_student(deadlines: list[QuizDeadline]) -> list[tuple[str, datetime, dict[int, datetime]]]:
    """Each deadline's extensions by student, once: not a scan of the extensions for every student."""
    return [(d.quiz, d.due_at, {e.student_id: e.due_at for e in d.extensions.all()}) for d in deadlines]


def _rows(students: QuerySet, deadlines, scores, now) -> list[StudentRow]:
    """Full rows of these students, in the queryset's order: one query, the scores given."""
    return _full_rows(_roster(students), deadlines, scores, now)


def _full_rows(entries, deadlines, scores, now) -> list[StudentRow]:
    dues = dues_by_student(deadlines)
    rows = []
    for u, (n_read, n_cards, n_attempts, n_jobs, best_error, last_seen) in entries:
        mine = scores.get(u.pk, {})
        bests = [s.best for s in mine.values() if s.best is not None]
        row = StudentRow(
            user=u,
            sections_read=n_read,
            cards_reviewed=n_cards,
            attempts=n_attempts,
            jobs=n_jobs,
            best_error=best_error,
            last_activity=last_seen,
            scores=mine,
            mean_best=statistics.fmean(bests) if bests else None,
            missed=[quiz for quiz, due, ext in dues if ext.get(u.pk, due) < now and quiz not in mine],
        )
        rows.append(row)
    return rows


# Each plain sort as SQL, in the order rows_sort gives: the column, with a student who has no
# progress row yet counted as rows_sort counts them (0; no mean best before any score; no best
# error after every error rate; never seen before anyone seen).
def _plain_order(key: str, descending: bool):
    p = "progress__"
    counts = {"read": "sections_read", "cards": "cards_reviewed", "attempts": "tests", "jobs": "jobs"}
    if key in counts:
        column = Coalesce(F(p + counts[key]), 0)
    elif key == "score":
        column = Coalesce(F(p + "mean_best"), -1.0)
    elif key == "error":
        column = Coalesce(F(p + "best_error"), 2.0)
    elif key == "activity":
        column = F(p + "last_activity")
        return column.desc(nulls_last=True) if descending else column.asc(nulls_first=True)
    else:  # by name, and anything unknown
        column = Lower("username")
    return column.desc() if descending else column.asc()


def roster_order(
    *, classroom: Classroom, deadlines: list[QuizDeadline], sort: str = "name", behind: float | None = None, now=None
) -> QuerySet:
    """The students `dashboard_rows` would list, in its order, as one query that a Paginator counts
    and slices: sorting and the behind filter run in the database, so a page costs the same whatever
    the class size. Each comes as ROSTER_COLUMNS; `roster_rows` makes a page of them full rows.

    Ties go by name as in rows_sort (its sort is stable on a list sorted by name), then by id.
    """
    now = now or timezone.now()
    students = class_students(classroom=classroom)
    descending = sort.startswith("-")
    on_quiz = quiz_sort(sort)
    if on_quiz is not None:
        quiz, which = on_quiz
        # A join to the student's row for that quiz (one per student and quiz), not a subquery per student.
        students = students.annotate(on_quiz=FilteredRelation("quiz_progress", condition=Q(quiz_progress__quiz=quiz)))
        students = students.annotate(quiz_value=F(f"on_quiz__{which}"))
        order = [F("quiz_value").desc(nulls_last=True) if descending else F("quiz_value").asc(nulls_last=True)]
    else:
        order = [_plain_order(sort.lstrip("-"), descending)]
    if behind is not None:
        lagging = Q(progress__mean_best__isnull=True) | Q(progress__mean_best__lt=behind)  # no row: null too
        students = students.filter(lagging | _missed_any(deadlines, now))
    return students.order_by(*order, Lower("username").asc(), "pk").values_list(*ROSTER_COLUMNS)


def _missed_any(deadlines: list[QuizDeadline], now) -> Q:
    """Students who let a deadline pass (theirs, with an extension) without handing in a test of its quiz."""
    missed = Q(pk__in=[])
    for quiz, due, extended in dues_by_student(deadlines):
        if due < now:  # passed, except for those whose extension has not
            passed = ~Q(pk__in=[uid for uid, until in extended.items() if until >= now])
        else:  # still open, except for those given less time
            passed = Q(pk__in=[uid for uid, until in extended.items() if until < now])
        missed |= passed & ~Exists(QuizProgress.objects.filter(user=OuterRef("pk"), quiz=quiz))
    return missed


def roster_rows(*, deadlines: list[QuizDeadline], page: Iterable[tuple], now=None) -> list[StudentRow]:
    """Full rows (scores, missed deadlines) of a page of `roster_order`, in its order: one query."""
    now = now or timezone.now()
    entries = [_roster_entry(values) for values in page]
    return _full_rows(entries, deadlines, _quiz_scores([u.pk for u, _ in entries]), now)


def cursor_rows(queryset: QuerySet, chunk_size: int = 500):
    """A values_list queryset's rows as the database driver gives them, read `chunk_size` at a time:
    the ORM's SQL without its per-value converters (for the CSV's 30 cells of 1,000 students the
    converters cost as much as the query). Datetimes come naive on SQLite (in UTC), aware on
    PostgreSQL."""
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            yield from rows


def class_best_score_bins(*, classroom: Classroom, quizzes, n: int = 10) -> dict[str, list[int]]:
    """Per quiz (in the order given, those with a score), how many students' best scores fall in each
    of n equal bins (charts.bin_of). One query over the class's kept bin counts."""
    if n != BINS:
        raise ValueError(f"The class keeps its best scores in {BINS} bins.")
    counts: dict[str, list[int]] = {}
    for quiz, b, k in ClassScoreBin.objects.filter(classroom=classroom).values_list("quiz", "bin", "students"):
        counts.setdefault(quiz, [0] * n)[b] += k
    return {q: counts[q] for q in quizzes if q in counts}


def class_activity_by_day(*, classroom: Classroom) -> list[tuple[date, str, int]]:
    """What the class did per day, as (day, kind, count) rows: sections read, tests handed in,
    experiments that succeeded. One query over the class's kept days."""
    per_day = ClassActivityDay.objects.filter(classroom=classroom).order_by("day")
    kinds = ("read", "tests", "jobs")
    return [
        (day, kind, n)
        for day, *counts in per_day.values_list("day", *kinds)
        for kind, n in zip(kinds, counts, strict=True)
        if n
    ]


# ---------------------------------------------------------------- one student


@dataclass
class Event:
    at: datetime
    kind: str
    text: str
    url: str = ""
    score: float | None = None


def student_timeline(*, user, titles: dict[str, str]) -> list[Event]:
    """What one student did, newest first: sections read, quiz attempts, flashcard days, jobs."""
    events = [
        Event(r.read_at, "reading", f"Read “{r.section.title}”")
        for r in ReadingProgress.objects.filter(user=user).select_related("section")
    ]
    for a in Attempt.objects.filter(user=user).exclude(state=Attempt.State.IN_PROGRESS):
        events.append(
            Event(
                a.submitted_at or a.started_at,
                "attempt",
                f"{a.get_mode_display()} of “{titles.get(a.quiz, a.quiz)}”",
                url=a.get_absolute_url(),
                score=a.score,
            )
        )
    days = (
        FlashcardReview.objects.filter(user=user)
        .order_by()
        .values("reviewed_at__date")
        .annotate(n=Count("pk"), at=Max("reviewed_at"))
    )
    for d in days:
        events.append(Event(d["at"], "cards", f"Reviewed {d['n']} flashcard{'s' if d['n'] != 1 else ''}"))
    jobs = TrainingJob.objects.filter(owner=user).only(
        "id", "created_at", "state", "arch", "dataset", "dataset_name", "error_rate"
    )
    for j in jobs:
        what = f"Experiment #{j.pk}: {j.arch} on {j.dataset_label} ({j.get_state_display().lower()})"
        events.append(Event(j.created_at, "job", what, url=j.get_absolute_url(), score=j.error_rate))
    events.sort(key=lambda e: e.at, reverse=True)
    return events


# ---------------------------------------------------------------- questions


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
    most given wrong answers per question; both tables are kept by accounts.progress as students
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


# ---------------------------------------------------------------- jobs


JOB_FIELDS = (
    "id", "name", "owner__username", "created_at", "state", "dataset", "dataset_name", "arch", "pretrained", "epochs",
    "image_size", "batch_size", "error_rate", "seconds", "cancel_requested", "heartbeat_at",
)  # fmt: skip


# The jobs page's filters: what each shows.
JOB_FILTERS = {
    "live": (JobState.QUEUED, JobState.RUNNING),
    "failed": (JobState.FAILED,),
    "succeeded": (JobState.SUCCEEDED,),
    "cancelled": (JobState.CANCELLED,),
}


def class_jobs(*, classroom: Classroom, show: str = "") -> QuerySet[TrainingJob]:
    """The class's jobs, newest first; `show` one of JOB_FILTERS' keys keeps those states only."""
    students = class_students(classroom=classroom).values("pk")
    jobs = TrainingJob.objects.filter(owner_id__in=students)
    if show in JOB_FILTERS:
        jobs = jobs.filter(state__in=JOB_FILTERS[show])
    return jobs.select_related("owner").only(*JOB_FIELDS).order_by("-created_at", "-pk")


def class_running_jobs(*, classroom: Classroom) -> list[TrainingJob]:
    """The class's jobs a worker runs now (what the workers panel may name)."""
    return list(class_jobs(classroom=classroom).filter(state=JobState.RUNNING))


@dataclass(frozen=True)
class ErrorRate:
    """What the error-rate chart needs of one experiment that succeeded."""

    pk: int
    dataset: str
    arch: str
    pretrained: bool
    error_rate: float
    owner_username: str
    dataset_name: str = ""
    state: str = JobState.SUCCEEDED

    @property
    def owner(self):
        return SimpleNamespace(username=self.owner_username)

    dataset_label = TrainingJob.dataset_label  # an upload by its name, as the job pages say it


def class_error_rates(*, classroom: Classroom) -> list[ErrorRate]:
    """Every experiment of the class that succeeded with an error rate: one query of a few columns."""
    students = class_students(classroom=classroom).values("pk")
    done = TrainingJob.objects.filter(owner_id__in=students, state=JobState.SUCCEEDED, error_rate__isnull=False)
    fields = ("pk", "dataset", "arch", "pretrained", "error_rate", "owner__username", "dataset_name")
    return [ErrorRate(*row) for row in done.order_by("pk").values_list(*fields)]


def class_job_get(*, classroom: Classroom, job_id: int) -> TrainingJob:
    return get_object_or_404(class_jobs(classroom=classroom), pk=job_id)


# ---------------------------------------------------------------- my progress


@dataclass
class DeadlineDue:
    classroom: str
    quiz: str
    title: str
    due_at: datetime
    done: bool


def deadlines_for_student(*, user, titles: dict[str, str], done: set[str]) -> list[DeadlineDue]:
    ext = Extension.objects.filter(deadline=OuterRef("pk"), student=user).values("due_at")[:1]
    deadlines = (
        QuizDeadline.objects.filter(classroom__memberships__user=user, classroom__memberships__role=Role.STUDENT)
        .annotate(mine=Coalesce(Subquery(ext), F("due_at")), class_name=F("classroom__name"))
        .order_by("mine")
    )
    return [DeadlineDue(d.class_name, d.quiz, titles.get(d.quiz, d.quiz), d.mine, d.quiz in done) for d in deadlines]


def test_answer_rules(*, user_id: int, quiz: str) -> list[tuple[str, datetime | None]]:
    """For each class the user sits in as a student: when it shows a test's right answers, and the
    user's own deadline for this quiz there (an extension's, when granted), or None. One query."""
    due = QuizDeadline.objects.filter(classroom=OuterRef("pk"), quiz=quiz).values("due_at")[:1]
    extended = Extension.objects.filter(
        deadline__classroom=OuterRef("pk"), deadline__quiz=quiz, student_id=user_id
    ).values("due_at")[:1]
    classes = Classroom.objects.filter(memberships__user_id=user_id, memberships__role=Role.STUDENT)
    return list(classes.annotate(due=Coalesce(Subquery(extended), Subquery(due))).values_list("test_answers", "due"))


def my_numbers(*, user) -> dict:
    row = StudentProgress.objects.filter(user=user).first() or StudentProgress(user=user)
    return {
        "read": row.sections_read,
        "cards": row.cards_reviewed,
        "jobs": row.jobs,
        "best_error": row.best_error,
    }


# ---------------------------------------------------------------- an instructor's home

# The roster's "behind" filter at its default: a mean best score under this, no test yet, or a missed deadline.
BEHIND_DEFAULT = 0.5


@dataclass
class ComingDeadline:
    quiz: str
    title: str
    due_at: datetime
    scored: int  # students of the class with a score on the quiz


@dataclass
class ClassOverview:
    """What an instructor's home says of one class: what waits for them, each a count the class pages
    filter to."""

    classroom: Classroom
    students: int
    waiting: int
    behind: int = 0
    live_jobs: int = 0
    failed_jobs: int = 0
    coming: list[ComingDeadline] = field(default_factory=list)


def instructor_overview(*, user, titles: dict[str, str], now=None, coming: int = 3) -> list[ClassOverview]:
    """Each class this user teaches, by name, with its answers waiting for review, its students behind
    (as the roster's filter at 50% counts them), its experiments queued or running and failed, and
    its next `coming` deadlines with how many students have a score on their quiz.

    At most six queries, whatever the number of classes and students: the classes (with the kept count of
    answers waiting), their deadlines, the deadlines' extensions, the students behind per class (over
    the kept progress rows), the experiments per class and state, and the kept best-score counts per
    class and quiz (no extensions or counts are asked for where there is no deadline).
    """
    now = now or timezone.now()
    classes = list(classrooms_taught_by(user).order_by(Lower("name"), "pk"))
    if not classes:
        return []
    ids = [c.pk for c in classes]
    overview = {c.pk: ClassOverview(c, c.n_students, c.n_waiting) for c in classes}
    deadlines = list(
        QuizDeadline.objects.filter(classroom_id__in=ids)
        .order_by("due_at", "pk")
        .prefetch_related(
            Prefetch("extensions", queryset=Extension.objects.only("deadline_id", "student_id", "due_at"))
        )
    )
    students = ClassMembership.objects.filter(classroom_id__in=ids, role=Role.STUDENT).order_by()
    lagging = Q(user__progress__mean_best__isnull=True) | Q(user__progress__mean_best__lt=BEHIND_DEFAULT)
    missed = Q(pk__in=[])
    for d in deadlines:
        missed |= Q(classroom_id=d.classroom_id) & _missed(d, now, user_field="user_id")
    for cid, n in (
        students.filter(lagging | missed)
        .values("classroom_id")
        .annotate(n=Count("pk"))
        .values_list("classroom_id", "n")
    ):
        overview[cid].behind = n
    jobs = (
        # One filter() call: the class and the role are of the same membership.
        TrainingJob.objects.filter(
            owner__class_memberships__classroom_id__in=ids,
            owner__class_memberships__role=Role.STUDENT,
            state__in=(*JOB_FILTERS["live"], JobState.FAILED),
        )
        .order_by()
        .values("owner__class_memberships__classroom_id", "state")
        .annotate(n=Count("pk"))
        .values_list("owner__class_memberships__classroom_id", "state", "n")
    )
    for cid, state, n in jobs:
        if state == JobState.FAILED:
            overview[cid].failed_jobs += n
        else:
            overview[cid].live_jobs += n
    upcoming = [d for d in deadlines if d.due_at >= now]
    scored: dict[tuple[int, str], int] = defaultdict(int)
    if upcoming:
        bins = ClassScoreBin.objects.filter(classroom_id__in=ids, quiz__in={d.quiz for d in upcoming})
        for cid, quiz, n in bins.values_list("classroom_id", "quiz", "students"):
            scored[cid, quiz] += n
    for d in upcoming:
        shown = overview[d.classroom_id].coming
        if len(shown) < coming:
            shown.append(ComingDeadline(d.quiz, titles.get(d.quiz, d.quiz), d.due_at, scored[d.classroom_id, d.quiz]))
    return list(overview.values())


def _missed(deadline: QuizDeadline, now, *, user_field: str) -> Q:
    """The rows whose student (`user_field`) let this deadline pass, theirs with an extension, without
    handing in a test of its quiz: `_missed_any` for one deadline, over any model with a student."""
    extended = {e.student_id: e.due_at for e in deadline.extensions.all()}
    if deadline.due_at < now:
        passed = ~Q(**{f"{user_field}__in": [uid for uid, until in extended.items() if until >= now]})
    else:
        passed = Q(**{f"{user_field}__in": [uid for uid, until in extended.items() if until < now]})
    return passed & ~Exists(QuizProgress.objects.filter(user=OuterRef(user_field), quiz=deadline.quiz))
