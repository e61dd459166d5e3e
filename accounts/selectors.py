"""Reads for classes: which classes a user teaches or sits in, and the instructors' dashboard.

Everything that lists students is built from a fixed number of queries, whatever the class size,
over the summaries the services keep per student (accounts.progress): one roster query joined to
each student's progress row, one for quiz scores; never a scan of every answer or job.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Floor
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import (
    ActivityDay,
    ClassMembership,
    Classroom,
    Extension,
    QuestionTally,
    QuizDeadline,
    QuizProgress,
    Role,
    StudentProgress,
    WrongAnswerTally,
)
from courses.models import FlashcardReview, ReadingProgress, Section
from mlworker.models import TrainingJob
from quizzes.models import CHAPTER_QUIZ, Attempt, Question

CHAPTER_TITLE = "The whole chapter"


def students_taught_by(user) -> QuerySet:
    """Ids of the students in any class this user teaches (a subquery, not a list)."""
    if not user.is_authenticated:
        return get_user_model().objects.none().values("pk")
    taught = ClassMembership.objects.filter(user=user, role=Role.INSTRUCTOR).values("classroom_id")
    return ClassMembership.objects.filter(classroom_id__in=taught, role=Role.STUDENT).values("user_id")


def _waiting_for_review():
    """How many handed-in answers of the class's students wait for an instructor (a subquery over
    their progress rows, which count them)."""
    waiting = (
        StudentProgress.objects.filter(
            user__class_memberships__classroom=OuterRef("pk"), user__class_memberships__role=Role.STUDENT
        )
        .order_by()
        .values("user__class_memberships__classroom")
        .annotate(n=Sum("answers_waiting"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(waiting), 0)


def classrooms_taught_by(user) -> QuerySet[Classroom]:
    """The classes this user teaches, each with its student count and its answers waiting for review."""
    if not user.is_authenticated:
        return Classroom.objects.none()
    # A subquery, not Count("memberships"): that would reuse the filter's join and count only this user's row.
    students = (
        ClassMembership.objects.filter(classroom=OuterRef("pk"), role=Role.STUDENT)
        .order_by()
        .values("classroom")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Classroom.objects.filter(memberships__user=user, memberships__role=Role.INSTRUCTOR).annotate(
        n_students=Coalesce(Subquery(students), 0),
        n_waiting=_waiting_for_review(),
    )


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
    """A class this user teaches, or 404: another's class is as absent as a missing one."""
    return get_object_or_404(classrooms_taught_by(user), pk=classroom_id)


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


def _roster(students: QuerySet) -> QuerySet:
    """The students, each with the numbers of their progress row (zeros for one with no history yet)."""
    p = "progress__"
    return students.annotate(
        n_read=Coalesce(F(p + "sections_read"), 0),
        n_cards=Coalesce(F(p + "cards_reviewed"), 0),
        n_attempts=Coalesce(F(p + "tests"), 0),
        n_jobs=Coalesce(F(p + "jobs"), 0),
        best_error=F(p + "best_error"),
        last_seen=F(p + "last_activity"),
    ).only("id", "username", "first_name", "last_name", "email")


@dataclass(frozen=True)
class RosterUser:
    """The few fields of a student the roster and the CSV show (cheaper than a model instance per row)."""

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
    scores: dict[int, dict[str, QuizScore]] | None = None,
) -> list[StudentRow]:
    """One row per student of the class. Two queries: the roster joined to the progress rows, the quiz scores
    (one, unless the caller already has them from `class_quiz_scores`).

    Sorted with rows_sort (see there for `sort`); a view that shows a page of them pages after this,
    so sorting and the filter cover the whole class.

    `behind`, when given, keeps only students whose mean best score is below it (0 to 1) or who
    let a deadline pass without handing in a test.
    """
    now = now or timezone.now()
    students = class_students(classroom=classroom)
    if scores is None:
        scores = _quiz_scores(students.values("pk"))
    rows = _rows(students, deadlines, scores, now)
    if behind is not None:
        rows = [r for r in rows if _is_behind(r, behind)]
    return rows_sort(rows, sort)


def _is_behind(r: StudentRow, behind: float) -> bool:
    return bool(r.missed) or r.mean_best is None or r.mean_best < behind


def _dues(deadlines: list[QuizDeadline]) -> list[tuple[str, datetime, dict[int, datetime]]]:
    """Each deadline's extensions by student, once: not a scan of the extensions for every student."""
    return [(d.quiz, d.due_at, {e.student_id: e.due_at for e in d.extensions.all()}) for d in deadlines]


def _rows(students: QuerySet, deadlines, scores, now) -> list[StudentRow]:
    """Full rows of these students, in the queryset's order: one query, the scores given."""
    dues = _dues(deadlines)
    rows = []
    who = ("pk", "username", "first_name", "last_name", "email")
    numbers = ("n_read", "n_cards", "n_attempts", "n_jobs", "best_error", "last_seen")
    roster = _roster(students).values_list(*who, *numbers)
    for *who, n_read, n_cards, n_attempts, n_jobs, best_error, last_seen in roster:
        u = RosterUser(*who)
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


# The progress field each plain sort reads, the StudentRow attribute it fills, and its value for a
# student with no progress row yet.
SORT_FIELDS = {
    "read": ("progress__sections_read", "sections_read", 0),
    "cards": ("progress__cards_reviewed", "cards_reviewed", 0),
    "attempts": ("progress__tests", "attempts", 0),
    "jobs": ("progress__jobs", "jobs", 0),
    "error": ("progress__best_error", "best_error", None),
    "activity": ("progress__last_activity", "last_activity", None),
}


def roster_order(
    *, classroom: Classroom, deadlines: list[QuizDeadline], sort: str = "name", behind: float | None = None, now=None
) -> list[int]:
    """The ids of the students `dashboard_rows` would list, in its order, without building its rows.

    One query of a few columns per student: the name, the mean best score, the one column the sort
    needs, and (for the behind filter) whether each deadline's quiz has a test. The rows it sorts
    hold only those, and go through the same `rows_sort` and behind test as the full rows, so a
    page can build full rows for its own students only (`roster_rows`).
    """
    now = now or timezone.now()
    students = class_students(classroom=classroom)
    cols = {"name": F("username"), "mean": F("progress__mean_best")}
    key = sort.lstrip("-")
    on_quiz = quiz_sort(sort)
    if on_quiz is not None:
        quiz, which = on_quiz
        cols["quiz_value"] = Subquery(QuizProgress.objects.filter(user=OuterRef("pk"), quiz=quiz).values(which)[:1])
    elif key in SORT_FIELDS:
        cols["value"] = F(SORT_FIELDS[key][0])
    dues = _dues(deadlines) if behind is not None else []
    deadline_quizzes = sorted({quiz for quiz, _, _ in dues})
    for i, due_quiz in enumerate(deadline_quizzes):
        cols[f"took_{i}"] = Exists(QuizProgress.objects.filter(user=OuterRef("pk"), quiz=due_quiz))
    rows = []
    for values in students.annotate(**cols).values("pk", *cols):
        pk = values["pk"]
        row = StudentRow(RosterUser(pk, values["name"], "", "", ""), 0, 0, 0, 0, None, None, mean_best=values["mean"])
        if "value" in values:
            _, attr, default = SORT_FIELDS[key]
            setattr(row, attr, default if values["value"] is None else values["value"])
        if values.get("quiz_value") is not None:
            row.scores = {quiz: QuizScore(1, values["quiz_value"], values["quiz_value"])}
        took = {q for i, q in enumerate(deadline_quizzes) if values[f"took_{i}"]}
        row.missed = [q for q, due, ext in dues if ext.get(pk, due) < now and q not in took]
        rows.append(row)
    if behind is not None:
        rows = [r for r in rows if _is_behind(r, behind)]
    return [r.user.pk for r in rows_sort(rows, sort)]


def roster_rows(*, classroom: Classroom, deadlines: list[QuizDeadline], student_ids: list[int], now=None):
    """Full rows (scores, missed deadlines) of these students of the class, in the order given: two queries."""
    now = now or timezone.now()
    students = class_students(classroom=classroom).filter(pk__in=student_ids)
    rows = {r.user.pk: r for r in _rows(students, deadlines, _quiz_scores(student_ids), now)}
    return [rows[pk] for pk in student_ids if pk in rows]


def class_best_score_bins(*, classroom: Classroom, quizzes, n: int = 10) -> dict[str, list[int]]:
    """Per quiz (in the order given, those with a score), how many students' best scores fall in each
    of n equal bins, as charts.score_bins counts them. One grouped query over the quiz progress rows."""
    students = class_students(classroom=classroom).values("pk")
    # The same float arithmetic as score_bins: floor(best * n + 1e-9), then kept within the bins.
    binned = Cast(Floor(F("best") * Value(float(n)) + Value(1e-9)), IntegerField())
    per_bin = (
        QuizProgress.objects.filter(user_id__in=students, best__isnull=False)
        .order_by()
        .annotate(b=binned)
        .values("quiz", "b")
        .annotate(k=Count("pk"))
        .values_list("quiz", "b", "k")
    )
    counts: dict[str, list[int]] = {}
    for quiz, b, k in per_bin:
        counts.setdefault(quiz, [0] * n)[min(max(b, 0), n - 1)] += k
    return {q: counts[q] for q in quizzes if q in counts}


def class_activity_by_day(*, classroom: Classroom) -> list[tuple[date, str, int]]:
    """What the class did per day, as (day, kind, count) rows: sections read, tests handed in,
    experiments that succeeded. One grouped query over the students' activity days."""
    students = class_students(classroom=classroom).values("pk")
    per_day = (
        ActivityDay.objects.filter(user_id__in=students)
        .order_by()
        .values("day")
        .annotate(read=Sum("read"), tests=Sum("tests"), jobs=Sum("jobs"))
        .values_list("day", "read", "tests", "jobs")
    )
    kinds = ("read", "tests", "jobs")
    return [(day, kind, n) for day, *counts in per_day for kind, n in zip(kinds, counts, strict=True) if n]


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
    for j in TrainingJob.objects.filter(owner=user).only("id", "created_at", "state", "arch", "dataset", "error_rate"):
        events.append(
            Event(j.created_at, "job", f"Experiment #{j.pk}: {j.arch} on {j.dataset} ({j.get_state_display().lower()})",
                  url=j.get_absolute_url(), score=j.error_rate)
        )  # fmt: skip
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


def class_question_stats(*, classroom: Classroom, sort: str = "order") -> list[QuestionStats]:
    """Per question, over the class's handed-in tests: attempts, facility, discrimination, common wrong answers.

    Facility is the mean score. Discrimination follows Moodle's discrimination index: students are
    ranked by their total score over all their test answers (ties by id); the index is the
    question's mean score among the top third minus that among the bottom third (from -1 to 1;
    higher separates better).

    Four queries, whatever the class size, all over the summaries the services keep: the students'
    totals (their progress rows), the per-student question tallies summed per question (the thirds
    as filtered sums, bounded by the ranks of the thirds' edge students), the questions' own fields,
    the wrong-answer tallies summed per question and answer.
    """
    students = class_students(classroom=classroom).values("pk")
    totals = (
        StudentProgress.objects.filter(user_id__in=students, test_answers__gt=0)
        .order_by("test_score_total", "user_id")
        .values_list("test_score_total", "user_id")
    )
    ranked = list(totals)
    third = len(ranked) // 3
    tallies = QuestionTally.objects.filter(user_id__in=students).order_by()
    n, s = Sum("answers"), Sum("score_sum")
    if third:
        # Ranked by (total, id): the top third are those at or above its lowest student, the bottom
        # third at or below its highest. Comparing with the edges keeps the query small at any size.
        (lo_total, lo_id), (hi_total, hi_id) = ranked[third - 1], ranked[len(ranked) - third]
        top = Q(user__progress__test_score_total__gt=hi_total) | Q(
            user__progress__test_score_total=hi_total, user_id__gte=hi_id
        )
        bottom = Q(user__progress__test_score_total__lt=lo_total) | Q(
            user__progress__test_score_total=lo_total, user_id__lte=lo_id
        )
        thirds = {"hi_n": Sum("answers", filter=top), "hi_s": Sum("score_sum", filter=top),
                  "lo_n": Sum("answers", filter=bottom), "lo_s": Sum("score_sum", filter=bottom)}  # fmt: skip
    else:
        thirds = {}
    per_question = {a["question_id"]: a for a in tallies.values("question_id").annotate(n=n, s=s, **thirds)}
    # The questions' own fields apart: grouping the tallies by a prompt's text is many times slower.
    questions = Question.objects.filter(pk__in=list(per_question)).values(
        "pk", "slug", "prompt", "order", "section__title", "section__order"
    )

    def mean(total, count):
        return total / count if count else None

    stats: dict[int, QuestionStats] = {}
    for q in questions:
        a = per_question[q["pk"]]
        hi, lo = mean(a.get("hi_s"), a.get("hi_n")), mean(a.get("lo_s"), a.get("lo_n"))
        stats[q["pk"]] = QuestionStats(
            q["pk"], q["slug"], q["section__title"], (q["section__order"], q["order"]), q["prompt"],
            attempts=a["n"], facility=mean(a["s"], a["n"]),
            discrimination=hi - lo if hi is not None and lo is not None else None,
        )  # fmt: skip
    wrong = (
        WrongAnswerTally.objects.filter(user_id__in=students)
        .order_by()
        .values("question_id", "text")
        .annotate(n=Sum("n"))
        .order_by("question_id", "-n", "text")
        .values_list("question_id", "text", "n")
    )
    for q, text, count in wrong:
        if q in stats and len(stats[q].wrong) < 3:
            stats[q].wrong.append((text, count))
    out = list(stats.values())
    key = sort.lstrip("-")
    out.sort(key=QUESTION_SORTS.get(key, QUESTION_SORTS["order"]), reverse=sort.startswith("-"))
    return out


# ---------------------------------------------------------------- jobs


JOB_FIELDS = (
    "id", "name", "owner__username", "created_at", "state", "dataset", "arch", "pretrained", "epochs", "image_size",
    "batch_size", "error_rate", "seconds", "cancel_requested", "heartbeat_at",
)  # fmt: skip


def class_jobs(*, classroom: Classroom) -> QuerySet[TrainingJob]:
    students = class_students(classroom=classroom).values("pk")
    return (
        TrainingJob.objects.filter(owner_id__in=students)
        .select_related("owner")
        .only(*JOB_FIELDS)
        .order_by("-created_at")
    )


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


def my_numbers(*, user) -> dict:
    row = StudentProgress.objects.filter(user=user).first() or StudentProgress(user=user)
    return {
        "read": row.sections_read,
        "cards": row.cards_reviewed,
        "jobs": row.jobs,
        "best_error": row.best_error,
    }
