"""Reads of the quizzes, always scoped to the user who asks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import AnswersShown, Classroom, Role
from accounts.roles import is_instructor
from accounts.selectors import class_students, classrooms_taught_by, students_taught_by, test_answer_rules
from courses.models import Section
from quizzes.models import CHAPTER_QUIZ, Answer, Attempt, Question, Verdict

# ---------------------------------------------------------------- quizzes


@dataclass
class Quiz:
    slug: str
    title: str
    section: Section | None
    pool: int  # questions in the bank for this quiz

    @property
    def size(self) -> int:
        """Questions per attempt."""
        return min(self.pool, settings.JOURNEY_CHAPTER_QUIZ_SIZE) if self.section is None else self.pool

    @property
    def minutes(self) -> int:
        return max(1, round(self.size * settings.JOURNEY_TEST_SECONDS_PER_QUESTION / 60))


CHAPTER_TITLE = "The whole chapter"


def quiz_get(*, slug: str) -> Quiz:
    """The quiz of one section, or the chapter quiz; 404 when there is no such quiz."""
    active = Question.objects.filter(is_active=True)
    if slug == CHAPTER_QUIZ:
        return Quiz(slug=slug, title=CHAPTER_TITLE, section=None, pool=active.count())
    section = get_object_or_404(Section.objects.only("slug", "title", "order"), slug=slug)
    return Quiz(slug=slug, title=section.title, section=section, pool=active.filter(section=section).count())


def quiz_title(*, attempt: Attempt) -> str:
    if attempt.quiz == CHAPTER_QUIZ:
        return CHAPTER_TITLE
    return Section.objects.filter(slug=attempt.quiz).values_list("title", flat=True).first() or attempt.quiz


@dataclass
class QuizRow:
    quiz: Quiz
    tests: int = 0
    practices: int = 0
    best: float | None = None
    last: float | None = None
    waiting: bool = False  # the latest test still has answers with the grader or an instructor
    resume: int | None = None

    @property
    def grade(self) -> float | None:
        return self.best if settings.JOURNEY_QUIZ_GRADING == "best" else self.last


def quiz_catalogue(*, user) -> list[QuizRow]:
    """Every quiz (each section's, then the chapter's) with this student's best and last test scores."""
    # Explicit order: Django drops Meta.ordering from queries that aggregate.
    sections = (
        Section.objects.only("slug", "title", "order")
        .annotate(n_questions=Count("questions", filter=Q(questions__is_active=True)))
        .order_by("order")
    )
    rows = {s.slug: QuizRow(Quiz(s.slug, s.title, s, s.n_questions)) for s in sections}
    rows[CHAPTER_QUIZ] = QuizRow(Quiz(CHAPTER_QUIZ, CHAPTER_TITLE, None, sum(r.quiz.pool for r in rows.values())))
    if user.is_authenticated:
        attempts = Attempt.objects.filter(user=user).order_by("started_at")
        for a in attempts.values("id", "quiz", "mode", "state", "score"):
            row = rows.get(a["quiz"])
            if row is None:
                continue
            if a["state"] == Attempt.State.IN_PROGRESS:
                row.resume = a["id"]
            elif a["mode"] == Attempt.Mode.PRACTICE:
                row.practices += 1
            else:
                row.tests += 1
                row.last = a["score"]
                row.best = a["score"] if row.best is None else max(row.best, a["score"] or 0.0)
                row.waiting = a["state"] == Attempt.State.SUBMITTED
    return list(rows.values())


# ---------------------------------------------------------------- attempts


def attempts_visible_to(user, *, read_only: bool = False) -> QuerySet[Attempt]:
    """A student's own attempts; to read only, also those of the students in the classes the user
    teaches. Anyone else's is as absent as one that never existed."""
    if not user.is_authenticated:
        return Attempt.objects.none()
    if read_only:
        return Attempt.objects.filter(Q(user=user) | Q(user_id__in=students_taught_by(user)))
    return Attempt.objects.filter(user=user)


def attempt_get(*, user, attempt_id: int, read_only: bool = False) -> Attempt:
    return get_object_or_404(attempts_visible_to(user, read_only=read_only), pk=attempt_id)


def attempts_of_quiz(*, user, quiz: str) -> QuerySet[Attempt]:
    return attempts_visible_to(user).filter(quiz=quiz).order_by("-started_at")


def attempt_answers(
    *, attempt: Attempt, with_terms: bool = False, with_questions: bool = True, only: list[int] | None = None
) -> list[Answer]:
    """The attempt's answers in order, with their questions and sections (and the questions' glossary
    terms); `with_questions=False`: the answers' own rows alone; `only`: these answers (pks) of it."""
    answers = Answer.objects.filter(attempt=attempt).order_by("position")
    if only is not None:
        answers = answers.filter(pk__in=only)
    if with_questions:
        answers = answers.select_related("question__section")
        if with_terms:
            answers = answers.prefetch_related("question__terms")
    return list(answers)


def answer_get_for_student(*, user, answer_id: int) -> Answer:
    """One answer of the user's own attempts, for them to act on (ask for its review); 404 for
    anyone else's, their instructors' included: an instructor grades through answer_get_for_review."""
    if not user.is_authenticated:
        raise Http404("No such answer.")
    answers = Answer.objects.filter(attempt__user=user).select_related("question", "attempt")
    return get_object_or_404(answers, pk=answer_id)


def answer_at(*, attempt: Attempt, position: int) -> Answer:
    answer = Answer.objects.select_related("question").filter(attempt=attempt, position=position).first()
    if answer is None:
        raise Http404("This attempt has no such question.")
    return answer


# ---------------------------------------------------------------- who sees the right answers
# A test's right answers (the key, explanations, reference answers, key points, and whether each
# answer was right) reach its student when every class they sit in allows it: the strictest class
# wins. Instructors always see them. And while a student has a test open, no page of theirs shows
# the answers to its questions: not an older test's review, not a practice of the same questions.


def open_tests(*, user) -> list[Attempt]:
    """The user's tests not yet handed in: at most one per quiz (the database holds to that)."""
    if not user.is_authenticated:
        return []
    tests = Attempt.objects.filter(user=user, mode=Attempt.Mode.TEST, state=Attempt.State.IN_PROGRESS)
    return list(tests.only("pk", "user_id", "quiz", "mode", "state", "question_ids", "deadline").order_by("pk"))


def open_test_of(tests: list[Attempt], quiz: str) -> Attempt | None:
    return next((t for t in tests if t.quiz == quiz), None)


def test_sharing_questions(*, tests: list[Attempt], question_ids) -> Attempt | None:
    """The first of these open tests that asks any of these questions."""
    wanted = set(question_ids)
    return next((t for t in tests if wanted.intersection(t.question_ids)), None)


def practice_blocked_by(*, tests: list[Attempt], quiz: str) -> Attempt | None:
    """The open test that closes practice of `quiz`: one that asks a question practice could draw.
    The chapter quiz draws from every section, so any open test closes its practice, and an open
    chapter test closes the practice of each section it took a question from."""
    if not tests:
        return None
    if quiz == CHAPTER_QUIZ:
        return tests[0]
    same = open_test_of(tests, quiz)
    if same is not None:
        return same
    others = [t for t in tests if t.quiz == CHAPTER_QUIZ]
    if not others:
        return None  # a section's questions are in no other section's quiz
    pool = Question.objects.filter(section__slug=quiz, pk__in={pk for t in others for pk in t.question_ids})
    return test_sharing_questions(tests=others, question_ids=pool.values_list("pk", flat=True))


NEVER = None


def answers_release_at(rules: list[tuple[str, datetime | None]], handed_in: datetime) -> datetime | None:
    """When a test handed in at `handed_in` shows its right answers under these classes' rules
    (see accounts.selectors.test_answer_rules); None for never. No class: at hand-in."""
    at = handed_in
    for rule, due in rules:
        if rule == AnswersShown.NEVER:
            return NEVER
        if rule == AnswersShown.AFTER_DEADLINE and due is not None:
            at = max(at, due)
    return at


@dataclass(frozen=True)
class KeyRelease:
    shown: bool
    at: datetime | None = None  # while hidden: when they will be shown; None for never


SHOWN = KeyRelease(shown=True)


def key_release(*, attempt: Attempt, viewer, now=None) -> KeyRelease:
    """Whether `viewer` sees the right answers of this handed-in attempt. The only other people who
    may read an attempt are its student's instructors (attempts_visible_to), and they always do."""
    if attempt.is_open:
        return KeyRelease(shown=False, at=NEVER)
    if attempt.is_practice or attempt.user_id != viewer.pk:
        return SHOWN
    at = answers_release_at(test_answer_rules(user_id=attempt.user_id, quiz=attempt.quiz), attempt.submitted_at)
    if (at is not None and (now or timezone.now()) >= at) or is_instructor(viewer):
        return SHOWN
    return KeyRelease(shown=False, at=at)


def questions_hidden_from(*, viewer, attempt: Attempt) -> tuple[set[int], Attempt | None]:
    """The questions of `attempt` whose answers its student may not see now because an open test
    of theirs asks them, and the first such test (None when there is none)."""
    if attempt.user_id != viewer.pk:
        return set(), None
    tests = [t for t in open_tests(user=viewer) if t.pk != attempt.pk]
    hidden = {pk for t in tests for pk in t.question_ids}.intersection(attempt.question_ids)
    return hidden, test_sharing_questions(tests=tests, question_ids=hidden)


# ---------------------------------------------------------------- instructors


def _handed_in_answers() -> QuerySet[Answer]:
    return Answer.objects.exclude(attempt__state=Attempt.State.IN_PROGRESS).select_related("question", "attempt__user")


def sees_every_class(user) -> bool:
    """A superuser runs the site and may grade any student's answer; everyone else only their own classes'."""
    return user.is_authenticated and user.is_superuser


def answers_reviewable_by(user) -> QuerySet[Answer]:
    """Handed-in answers this user may grade: those of the students in every class they teach,
    as instructor or co-instructor. A student in two classes is graded by the instructors of both."""
    if not is_instructor(user):
        return Answer.objects.none()
    if sees_every_class(user):
        return _handed_in_answers()
    return _handed_in_answers().filter(attempt__user_id__in=students_taught_by(user))


def review_queue(*, user, classroom=None) -> QuerySet[Answer]:
    """Answers waiting for this instructor, oldest hand-in first; only one class's when given
    (a class the caller already found among those the user teaches)."""
    answers = answers_reviewable_by(user).filter(needs_review=True)
    if classroom is not None:
        answers = answers.filter(attempt__user_id__in=class_students(classroom=classroom).values("pk"))
    return answers.select_related("question__section").order_by("attempt__submitted_at", "position")


def classrooms_reviewed_by(user) -> QuerySet[Classroom]:
    """The classes this user teaches, each with how many of its students' handed-in answers wait for
    review (`n_waiting`), counted in the same query."""
    waiting = (
        # One filter() call: the class and the role are of the same membership.
        Answer.objects.filter(
            needs_review=True,
            attempt__user__class_memberships__classroom=OuterRef("pk"),
            attempt__user__class_memberships__role=Role.STUDENT,
        )
        .exclude(attempt__state=Attempt.State.IN_PROGRESS)
        .order_by()
        .values("attempt__user__class_memberships__classroom")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return classrooms_taught_by(user).annotate(n_waiting=Coalesce(Subquery(waiting), 0))


def answers_recently_graded(*, user, limit: int = 50) -> QuerySet[Answer]:
    answers = answers_reviewable_by(user).filter(needs_review=False).exclude(verdict="")
    return answers.exclude(verdict=Verdict.PENDING).order_by("-graded_at")[:limit]


def answer_get_for_review(*, user, answer_id: int) -> Answer:
    """One handed-in answer of a student this user teaches, for them to grade; 404 for anyone else."""
    answers = answers_reviewable_by(user).select_related("question__section", "reviewed_by")
    return get_object_or_404(answers.prefetch_related("question__terms"), pk=answer_id)


def answers_get_for_review(*, user, answer_ids: list[int]) -> list[Answer]:
    """The named answers this user may grade; the caller compares the count with what it asked for."""
    return list(answers_reviewable_by(user).filter(pk__in=answer_ids))
