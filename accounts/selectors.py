"""Reads for classes: which classes a user teaches or sits in, and the instructors' dashboard.

Everything that lists students is built from a fixed number of aggregate queries, whatever the
class size: one roster query with subqueries per column, and one grouped query for quiz scores.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.contrib.auth import get_user_model
from django.db.models import (
    Avg,
    CharField,
    Count,
    DateTimeField,
    F,
    FloatField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import ClassMembership, Classroom, Extension, QuizDeadline, Role
from courses.models import FlashcardReview, ReadingProgress, Section
from mlworker.models import JobState, TrainingJob
from quizzes.models import CHAPTER_QUIZ, Answer, Attempt, Question, Verdict

CHAPTER_TITLE = "The whole chapter"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def students_taught_by(user) -> QuerySet:
    """Ids of the students in any class this user teaches (a subquery, not a list)."""
    if not user.is_authenticated:
        return get_user_model().objects.none().values("pk")
    taught = ClassMembership.objects.filter(user=user, role=Role.INSTRUCTOR).values("classroom_id")
    return ClassMembership.objects.filter(classroom_id__in=taught, role=Role.STUDENT).values("user_id")


def _waiting_for_review():
    """How many handed-in answers of the class's students wait for an instructor (a subquery)."""
    waiting = (
        Answer.objects.filter(
            needs_review=True,
            attempt__user__class_memberships__classroom=OuterRef("pk"),
            attempt__user__class_memberships__role=Role.STUDENT,
        )
        .exclude(attempt__state=Attempt.State.IN_PROGRESS)
        .order_by()
        .values("needs_review")
        .annotate(n=Count("pk"))
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


def _count(model, user_field: str = "user", **filters):
    qs = model.objects.filter(**{user_field: OuterRef("pk")}, **filters).order_by()
    return Coalesce(Subquery(qs.values(user_field).annotate(n=Count("pk")).values("n")[:1]), 0)


def _latest(model, stamp: str, user_field: str = "user", **filters):
    qs = model.objects.filter(**{user_field: OuterRef("pk")}, **filters).order_by()
    return Subquery(qs.values(user_field).annotate(m=Max(stamp)).values("m")[:1])


def _handed_in_tests():
    return Attempt.objects.filter(mode=Attempt.Mode.TEST).exclude(state=Attempt.State.IN_PROGRESS)


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
    return students.annotate(
        n_read=_count(ReadingProgress),
        n_cards=_count(FlashcardReview),
        n_attempts=_count(Attempt, mode=Attempt.Mode.TEST, state__in=[Attempt.State.SUBMITTED, Attempt.State.GRADED]),
        n_jobs=_count(TrainingJob, user_field="owner"),
        best_error=Subquery(
            TrainingJob.objects.filter(owner=OuterRef("pk"), state=JobState.SUCCEEDED, error_rate__isnull=False)
            .order_by()
            .values("owner")
            .annotate(m=Min("error_rate"))
            .values("m")[:1]
        ),
        # The latest of the four, in the database: converting one datetime per student, not four.
        # Greatest is NULL on SQLite when any argument is, so each is coalesced to the epoch first.
        last_seen=Greatest(
            *(
                Coalesce(latest, Value(EPOCH), output_field=DateTimeField())
                for latest in (
                    _latest(ReadingProgress, "read_at"),
                    _latest(FlashcardReview, "reviewed_at"),
                    _latest(Attempt, "started_at"),
                    _latest(TrainingJob, "created_at", user_field="owner"),
                )
            )
        ),
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
    """Per student and quiz: handed-in tests, best score, latest score. One query over the tests in
    time order; a grouped query with a correlated "latest" subquery per group was slower at 1,000 students."""
    rows = (
        _handed_in_tests()
        .filter(user_id__in=student_ids)
        .order_by("user_id", "quiz", "started_at", "pk")
        .values_list("user_id", "quiz", "score")
    )
    scores: dict[int, dict[str, QuizScore]] = defaultdict(dict)
    for user_id, quiz, score in rows:
        s = scores[user_id].get(quiz)
        if s is None:
            s = scores[user_id][quiz] = QuizScore()
        s.attempts += 1
        if score is not None and (s.best is None or score > s.best):
            s.best = score
        s.last = score
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
    """One row per student of the class. Two queries: the roster with its subqueries, the quiz scores
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
    # Each deadline's extensions by student, once: not a scan of the extensions for every student.
    dues = [(d.quiz, d.due_at, {e.student_id: e.due_at for e in d.extensions.all()}) for d in deadlines]
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
            last_activity=last_seen if last_seen and last_seen > EPOCH else None,
            scores=mine,
            mean_best=statistics.fmean(bests) if bests else None,
            missed=[quiz for quiz, due, ext in dues if ext.get(u.pk, due) < now and quiz not in mine],
        )
        rows.append(row)
    if behind is not None:
        rows = [r for r in rows if r.missed or r.mean_best is None or r.mean_best < behind]
    return rows_sort(rows, sort)


def class_activity_by_day(*, classroom: Classroom) -> list[tuple[date, str, int]]:
    """What the class did per day, as (day, kind, count) rows: sections read, tests handed in,
    experiments that succeeded. One query: three grouped counts joined by UNION ALL."""
    students = class_students(classroom=classroom).values("pk")

    def per_day(qs, stamp, kind):
        return (
            qs.annotate(day=TruncDate(stamp))
            .values("day")
            .annotate(kind=Value(kind, output_field=CharField()), n=Count("pk"))
            .values_list("day", "kind", "n")
            .order_by()
        )

    read = per_day(ReadingProgress.objects.filter(user_id__in=students), "read_at", "read")
    tests = per_day(_handed_in_tests().filter(user_id__in=students), Coalesce("submitted_at", "started_at"), "tests")
    jobs = per_day(
        TrainingJob.objects.filter(owner_id__in=students, state=JobState.SUCCEEDED),
        Coalesce("finished_at", "created_at"),
        "jobs",
    )
    return list(read.union(tests, jobs, all=True))


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


def _response_text(response) -> str:
    if response is None:
        return "(no answer)"
    if isinstance(response, dict) and len(response) == 1:
        response = next(iter(response.values()))
    if isinstance(response, list):
        return ", ".join(str(x) for x in response)
    return str(response)


def class_question_stats(*, classroom: Classroom, sort: str = "order") -> list[QuestionStats]:
    """Per question, over the class's handed-in tests: attempts, facility, discrimination, common wrong answers.

    Facility is the mean score. Discrimination follows Moodle's discrimination index: students are
    ranked by their total score over all their test answers (ties by id); the index is the
    question's mean score among the top third minus that among the bottom third (from -1 to 1;
    higher separates better).

    Four queries, whatever the class size: answers' totals per student, then per question (the
    thirds' means as filtered averages), the questions' own fields, the wrong answers per question
    and response.
    """
    students = class_students(classroom=classroom).values("pk")
    answers = Answer.objects.filter(
        attempt__user_id__in=students,
        attempt__mode=Attempt.Mode.TEST,
        attempt__state__in=[Attempt.State.SUBMITTED, Attempt.State.GRADED],
    ).order_by()
    score = Coalesce("score", Value(0.0), output_field=FloatField())
    totals = dict(answers.values("attempt__user_id").annotate(t=Sum(score)).values_list("attempt__user_id", "t"))
    ranked = sorted(totals, key=lambda uid: (totals[uid], uid))
    third = len(ranked) // 3
    bottom, top = ranked[:third], ranked[len(ranked) - third :] if third else []

    per_question = answers.values("question_id").annotate(
        n=Count("pk"), facility=Avg(score),
        hi=Avg(score, filter=Q(attempt__user_id__in=top)), lo=Avg(score, filter=Q(attempt__user_id__in=bottom)),
    )  # fmt: skip
    per_question = {a["question_id"]: a for a in per_question}
    # The questions' own fields apart: grouping 60,000 answers by a prompt's text is many times slower.
    questions = Question.objects.filter(pk__in=list(per_question)).values(
        "pk", "slug", "prompt", "order", "section__title", "section__order"
    )
    stats: dict[int, QuestionStats] = {}
    for q in questions:
        a = per_question[q["pk"]]
        stats[q["pk"]] = QuestionStats(
            q["pk"], q["slug"], q["section__title"], (q["section__order"], q["order"]), q["prompt"],
            attempts=a["n"], facility=a["facility"],
            discrimination=a["hi"] - a["lo"] if a["hi"] is not None and a["lo"] is not None else None,
        )  # fmt: skip
    wrong: dict[int, Counter] = defaultdict(Counter)
    by_response = answers.filter(verdict=Verdict.INCORRECT).values("question_id", "response").annotate(n=Count("pk"))
    for a in by_response:
        wrong[a["question_id"]][_response_text(a["response"])] += a["n"]
    for q, counts in wrong.items():
        if q in stats:
            stats[q].wrong = counts.most_common(3)
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
    row = _roster(get_user_model().objects.filter(pk=user.pk)).first()
    return {
        "read": row.n_read,
        "cards": row.n_cards,
        "jobs": row.n_jobs,
        "best_error": row.best_error,
    }
