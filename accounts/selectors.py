"""Reads for classes: which classes a user teaches or sits in, and the instructors' dashboard.

Everything that lists students is built from a fixed number of aggregate queries, whatever the
class size: one roster query with subqueries per column, and one grouped query for quiz scores.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Max, Min, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import ClassMembership, Classroom, Extension, QuizDeadline, Role
from courses.models import FlashcardReview, ReadingProgress, Section
from mlworker.models import JobState, TrainingJob
from quizzes.models import CHAPTER_QUIZ, Answer, Attempt, Verdict

CHAPTER_TITLE = "The whole chapter"


def students_taught_by(user) -> QuerySet:
    """Ids of the students in any class this user teaches (a subquery, not a list)."""
    if not user.is_authenticated:
        return get_user_model().objects.none().values("pk")
    taught = ClassMembership.objects.filter(user=user, role=Role.INSTRUCTOR).values("classroom_id")
    return ClassMembership.objects.filter(classroom_id__in=taught, role=Role.STUDENT).values("user_id")


def classrooms_taught_by(user) -> QuerySet[Classroom]:
    if not user.is_authenticated:
        return Classroom.objects.none()
    return Classroom.objects.filter(memberships__user=user, memberships__role=Role.INSTRUCTOR).annotate(
        n_students=Count("memberships", filter=Q(memberships__role=Role.STUDENT))
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
        last_read=_latest(ReadingProgress, "read_at"),
        last_card=_latest(FlashcardReview, "reviewed_at"),
        last_attempt=_latest(Attempt, "started_at"),
        last_job=_latest(TrainingJob, "created_at", user_field="owner"),
    ).only("id", "username", "first_name", "last_name", "email")


def _quiz_scores(student_ids: QuerySet) -> dict[int, dict[str, QuizScore]]:
    last = _handed_in_tests().filter(user=OuterRef("user_id"), quiz=OuterRef("quiz")).order_by("-started_at")
    rows = (
        _handed_in_tests()
        .filter(user_id__in=student_ids)
        .order_by()
        .values("user_id", "quiz")
        .annotate(n=Count("pk"), best=Max("score"), last=Subquery(last.values("score")[:1]))
    )
    scores: dict[int, dict[str, QuizScore]] = defaultdict(dict)
    for r in rows:
        scores[r["user_id"]][r["quiz"]] = QuizScore(r["n"], r["best"], r["last"])
    return scores


def due_for(deadline: QuizDeadline, user_id: int) -> datetime:
    """The deadline as it applies to one student, extension included (extensions are prefetched)."""
    for ext in deadline.extensions.all():
        if ext.student_id == user_id:
            return ext.due_at
    return deadline.due_at


def dashboard_rows(
    *, classroom: Classroom, deadlines: list[QuizDeadline], sort: str = "name", behind: float | None = None, now=None
) -> list[StudentRow]:
    """One row per student of the class. Two queries: the roster with its subqueries, the quiz scores.

    `behind`, when given, keeps only students whose mean best score is below it (0 to 1) or who
    let a deadline pass without handing in a test.
    """
    now = now or timezone.now()
    students = class_students(classroom=classroom)
    scores = _quiz_scores(students.values("pk"))
    rows = []
    for u in _roster(students):
        stamps = [s for s in (u.last_read, u.last_card, u.last_attempt, u.last_job) if s]
        mine = scores.get(u.pk, {})
        bests = [s.best for s in mine.values() if s.best is not None]
        row = StudentRow(
            user=u,
            sections_read=u.n_read,
            cards_reviewed=u.n_cards,
            attempts=u.n_attempts,
            jobs=u.n_jobs,
            best_error=u.best_error,
            last_activity=max(stamps) if stamps else None,
            scores=mine,
            mean_best=statistics.fmean(bests) if bests else None,
            missed=[d.quiz for d in deadlines if due_for(d, u.pk) < now and d.quiz not in mine],
        )
        rows.append(row)
    if behind is not None:
        rows = [r for r in rows if r.missed or r.mean_best is None or r.mean_best < behind]
    key = sort.lstrip("-")
    rows.sort(key=SORTS.get(key, SORTS["name"]), reverse=sort.startswith("-"))
    return rows


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
    ranked by their total score over all their test answers; the index is the question's mean score
    among the top third minus that among the bottom third (from -1 to 1; higher separates better).
    """
    students = class_students(classroom=classroom).values("pk")
    answers = list(
        Answer.objects.filter(
            attempt__user_id__in=students,
            attempt__mode=Attempt.Mode.TEST,
            attempt__state__in=[Attempt.State.SUBMITTED, Attempt.State.GRADED],
        )
        .order_by()
        .values(
            "question_id", "question__slug", "question__prompt", "question__order", "question__section__title",
            "question__section__order", "attempt__user_id", "score", "verdict", "response",
        )
    )  # fmt: skip
    totals: Counter = Counter()
    for a in answers:
        totals[a["attempt__user_id"]] += a["score"] or 0.0
    ranked = sorted(totals, key=lambda uid: totals[uid])
    third = len(ranked) // 3
    bottom, top = set(ranked[:third]), set(ranked[len(ranked) - third :]) if third else set()

    stats: dict[int, QuestionStats] = {}
    per_q: dict[int, list] = defaultdict(list)
    for a in answers:
        q = a["question_id"]
        if q not in stats:
            stats[q] = QuestionStats(
                q, a["question__slug"], a["question__section__title"],
                (a["question__section__order"], a["question__order"]), a["question__prompt"],
            )  # fmt: skip
        per_q[q].append(a)
    for q, rows in per_q.items():
        s = stats[q]
        s.attempts = len(rows)
        s.facility = statistics.fmean((r["score"] or 0.0) for r in rows)
        hi = [r["score"] or 0.0 for r in rows if r["attempt__user_id"] in top]
        lo = [r["score"] or 0.0 for r in rows if r["attempt__user_id"] in bottom]
        if hi and lo:
            s.discrimination = statistics.fmean(hi) - statistics.fmean(lo)
        wrong = Counter(_response_text(r["response"]) for r in rows if r["verdict"] == Verdict.INCORRECT)
        s.wrong = wrong.most_common(3)
    out = list(stats.values())
    key = sort.lstrip("-")
    out.sort(key=QUESTION_SORTS.get(key, QUESTION_SORTS["order"]), reverse=sort.startswith("-"))
    return out


# ---------------------------------------------------------------- jobs


JOB_FIELDS = (
    "id", "owner__username", "created_at", "state", "dataset", "arch", "pretrained", "epochs", "image_size",
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
