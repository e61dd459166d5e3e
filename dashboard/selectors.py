"""Reads for the class pages and My progress: the roster, one student's history, the class's
experiments, an instructor's home and a student's own numbers.

Everything that lists students is built from a fixed number of queries, whatever the class size,
over the summaries dashboard.progress keeps per student: one roster query joined to each student's
progress row, one for quiz scores; never a scan of every answer or job. The questions page's reads
are in dashboard.questions.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace

from django.db import connections
from django.db.models import Count, Exists, F, FilteredRelation, Max, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce, Lower
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import ClassMembership, Classroom, Extension, QuizDeadline, Role
from accounts.selectors import class_students, classrooms_taught_by, student_count
from courses.models import FlashcardReview, ReadingProgress, Section
from dashboard.charts import BINS
from dashboard.models import ClassActivityDay, ClassScoreBin, QuizProgress, StudentProgress
from mlworker.models import JobState, TrainingJob
from quizzes.models import CHAPTER_QUIZ, Attempt

CHAPTER_TITLE = "The whole chapter"


def quiz_titles() -> dict[str, str]:
    """Every quiz in order: each section's, then the chapter's."""
    titles = dict(Section.objects.order_by("order").values_list("slug", "title"))
    titles[CHAPTER_QUIZ] = CHAPTER_TITLE
    return titles


# ---------------------------------------------------------------- classes


def _taught(user) -> QuerySet[Classroom]:
    """The classes this user teaches, each with its answers waiting for review (the class pages' nav):
    the count dashboard.progress keeps per class."""
    return classrooms_taught_by(user).annotate(n_waiting=Coalesce(F("waiting__answers"), 0))


def classes_taught(user) -> QuerySet[Classroom]:
    """The classes this user teaches, each with its student count and its answers waiting for review."""
    return _taught(user).annotate(n_students=student_count())


def classroom_get_for_instructor(*, user, classroom_id: int) -> Classroom:
    """A class this user teaches, or 404: another's class is as absent as a missing one. Its pages show
    no student count: counting a class of 1,000 students cost half a millisecond a page."""
    return get_object_or_404(_taught(user), pk=classroom_id)


# ---------------------------------------------------------------- the roster


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

    def score_list(self, quizzes):
        return [self.scores.get(q, QuizScore()) for q in quizzes]


def quiz_sort(sort: str) -> tuple[str, str] | None:
    """(quiz, "best" or "last") for a sort on one quiz's column, written `quiz:<slug>:best`; else None."""
    parts = sort.lstrip("-").split(":")
    if len(parts) == 3 and parts[0] == "quiz" and parts[2] in ("best", "last"):
        return parts[1], parts[2]
    return None


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


def _quiz_scores(student_ids: QuerySet) -> dict[int, dict[str, QuizScore]]:
    """Per student and quiz: handed-in tests, best score, latest score, from the quiz progress rows."""
    rows = QuizProgress.objects.filter(user_id__in=student_ids).values_list("user_id", "quiz", "tests", "best", "last")
    scores: dict[int, dict[str, QuizScore]] = defaultdict(dict)
    for user_id, quiz, tests, best, last in rows:
        scores[user_id][quiz] = QuizScore(tests, best, last)
    return scores


def dues_by_student(deadlines: list[QuizDeadline]) -> list[tuple[str, datetime, dict[int, datetime]]]:
    """Each deadline's extensions by student, once: not a scan of the extensions for every student."""
    return [(d.quiz, d.due_at, {e.student_id: e.due_at for e in d.extensions.all()}) for d in deadlines]


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


# Each plain sort as SQL: the column, with a student who has no progress row yet counted as the
# reference sort counts them (0; no mean best before any score; no best error after every error
# rate; never seen before anyone seen).
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
    """The class's students as the roster lists them, as one query that a Paginator counts and slices:
    sorting and the behind filter run in the database, so a page costs the same whatever the class
    size. Each comes as ROSTER_COLUMNS; `roster_rows` makes a page of them full rows.

    `sort` is a column's key (name, read, cards, attempts, score, jobs, error, activity) or one quiz's
    column (`quiz:<slug>:best` or `:last`, where students with no score on it come last either way);
    a leading "-" for descending; ties by name, then by id. `behind`, when given, keeps only students
    whose mean best score is below it (0 to 1), who have no score yet, or who let a deadline pass
    without handing in a test. tests/dashboard/reference.py says the same in plain Python, and
    tests/dashboard/test_scale.py holds this to it for every sort and filter.
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
    classes = list(classes_taught(user).order_by(Lower("name"), "pk"))
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
