"""Reads for classes: which classes a user teaches or sits in, who is in a class, its deadlines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, F, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from accounts.models import ClassMembership, Classroom, Extension, QuizDeadline, Role


def students_taught_by(user) -> QuerySet:
    """Ids of the students in any class this user teaches (a subquery, not a list)."""
    if not user.is_authenticated:
        return get_user_model().objects.none().values("pk")
    taught = ClassMembership.objects.filter(user=user, role=Role.INSTRUCTOR).values("classroom_id")
    return ClassMembership.objects.filter(classroom_id__in=taught, role=Role.STUDENT).values("user_id")


def classrooms_taught_by(user) -> QuerySet[Classroom]:
    """The classes this user teaches."""
    if not user.is_authenticated:
        return Classroom.objects.none()
    return Classroom.objects.filter(memberships__user=user, memberships__role=Role.INSTRUCTOR)


def student_count():
    """Each class's number of students, as an annotation of a Classroom queryset."""
    # A subquery, not Count("memberships"): on classrooms_taught_by that would reuse its filter's join
    # and count only the instructor's own row.
    students = (
        ClassMembership.objects.filter(classroom=OuterRef("pk"), role=Role.STUDENT)
        .order_by()
        .values("classroom")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(students), 0)


def classrooms_of_student(user) -> QuerySet[Classroom]:
    if not user.is_authenticated:
        return Classroom.objects.none()
    return Classroom.objects.filter(memberships__user=user, memberships__role=Role.STUDENT)


def classrooms_of(user) -> QuerySet[Classroom]:
    """Every class the user belongs to, whatever their role in it."""
    if not user.is_authenticated:
        return Classroom.objects.none()
    return Classroom.objects.filter(pk__in=ClassMembership.objects.filter(user=user).values("classroom_id"))


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


# ---------------------------------------------------------------- deadlines


def class_deadlines(*, classroom: Classroom) -> list[QuizDeadline]:
    return list(
        QuizDeadline.objects.filter(classroom=classroom).prefetch_related(
            Prefetch("extensions", queryset=Extension.objects.select_related("student").order_by("student__username"))
        )
    )


@dataclass
class DeadlineDue:
    classroom: str
    quiz: str
    title: str
    due_at: datetime
    done: bool


def deadlines_for_student(*, user, titles: dict[str, str], done: set[str]) -> list[DeadlineDue]:
    """The deadlines of every class the user sits in as a student, theirs with an extension, soonest
    first; `done` names the quizzes they have handed in a test of."""
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
