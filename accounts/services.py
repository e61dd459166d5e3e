"""Writes for accounts and classes: signing up, log-in failures, classes, members, deadlines."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import AnswersShown, ClassMembership, Classroom, Extension, LoginFailure, QuizDeadline, Role
from accounts.roles import STUDENT_GROUP, is_instructor

# No 0/O or 1/I/L: codes are read aloud and copied from a projector.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


class NotAllowed(PermissionError):
    pass


class NoSuchClass(ValueError):
    pass


class NoSuchUser(ValueError):
    pass


def user_signup(*, username: str, email: str, password: str):
    user = get_user_model().objects.create_user(username=username, email=email, password=password)
    user.groups.add(Group.objects.get_or_create(name=STUDENT_GROUP)[0])
    return user


def profile_update(*, user, first_name: str, last_name: str, email: str):
    user.first_name, user.last_name, user.email = first_name, last_name, email
    user.save(update_fields=["first_name", "last_name", "email"])
    return user


# ---------------------------------------------------------------- log-in limits
# Three counts over the last JOURNEY_LOGIN_WINDOW_MINUTES: one account from one address (a user who
# forgot a password, or one guesser), one account from every address (guessers spread over many
# addresses) and every account from one address (one guesser trying many accounts). The last two are
# higher, so that a class behind one school address, or a guesser locking one address out, does not
# pause everyone.


def login_username_key(username: str) -> str:
    """The account a posted username names, as Django's log-in reads it: its form strips the name and
    normalises its Unicode (NFKC). Case-folded too, so that "Student2" counts with "student2"."""
    return unicodedata.normalize("NFKC", username.strip()).casefold()[:150]


def _window_start(now: datetime) -> datetime:
    return now - timedelta(minutes=settings.JOURNEY_LOGIN_WINDOW_MINUTES)


def login_failure_record(*, username: str, ip: str | None, now: datetime | None = None) -> None:
    now = now or timezone.now()
    LoginFailure.objects.create(username=login_username_key(username), ip=ip, at=now)
    # Old rows say nothing any more; sweep them as new ones arrive.
    LoginFailure.objects.filter(at__lt=_window_start(now) - timedelta(days=1)).delete()


def login_failures_clear(*, username: str, ip: str | None) -> None:
    LoginFailure.objects.filter(username=login_username_key(username), ip=ip).delete()


def login_is_locked(*, username: str, ip: str | None, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    key = login_username_key(username)
    same_account, same_address = Q(username=key), Q(ip=ip)
    counts = LoginFailure.objects.filter(same_account | same_address, at__gte=_window_start(now)).aggregate(
        pair=Count("pk", filter=same_account & same_address),
        account=Count("pk", filter=same_account),
        address=Count("pk", filter=same_address),
    )
    return (
        counts["pair"] >= settings.JOURNEY_LOGIN_MAX_FAILURES
        or counts["account"] >= settings.JOURNEY_LOGIN_MAX_ACCOUNT_FAILURES
        # A request without an address (a test client's) is no address of anyone's.
        or (ip is not None and counts["address"] >= settings.JOURNEY_LOGIN_MAX_ADDRESS_FAILURES)
    )


# ---------------------------------------------------------------- classes


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def classroom_create(*, by, name: str) -> Classroom:
    if not is_instructor(by):
        raise NotAllowed("Only instructors create classes.")
    for _ in range(5):
        try:
            with transaction.atomic():
                classroom = Classroom.objects.create(name=name, code=_new_code(), created_by=by)
                ClassMembership.objects.create(classroom=classroom, user=by, role=Role.INSTRUCTOR)
                return classroom
        except IntegrityError:  # the code was taken: draw another
            continue
    raise RuntimeError("Could not find a free class code.")


def _teaches(user, classroom: Classroom) -> bool:
    return ClassMembership.objects.filter(classroom=classroom, user=user, role=Role.INSTRUCTOR).exists()


def classroom_join(*, user, code: str) -> ClassMembership:
    """Join as a student; joining a class one is already in changes nothing."""
    classroom = Classroom.objects.filter(code=code.strip().upper()).first()
    if classroom is None:
        raise NoSuchClass("No class has that code.")
    membership, _ = ClassMembership.objects.get_or_create(
        classroom=classroom, user=user, defaults={"role": Role.STUDENT}
    )
    return membership


def co_instructor_add(*, classroom: Classroom, by, username: str) -> ClassMembership:
    if not _teaches(by, classroom):
        raise NotAllowed("Only the class's instructors add instructors.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not is_instructor(user):
        raise NoSuchUser("There is no instructor with that username.")
    membership, _ = ClassMembership.objects.update_or_create(
        classroom=classroom, user=user, defaults={"role": Role.INSTRUCTOR}
    )
    return membership


def classroom_test_answers_set(*, classroom: Classroom, by, rule: str) -> Classroom:
    """When the class's students see a test's right answers (see quizzes.selectors.key_release)."""
    if not _teaches(by, classroom):
        raise NotAllowed("Only the class's instructors change when answers are shown.")
    if rule not in AnswersShown.values:
        raise ValueError(f"unknown rule {rule!r}")
    classroom.test_answers = rule
    classroom.save(update_fields=["test_answers"])
    return classroom


def deadline_set(*, classroom: Classroom, by, quiz: str, due_at: datetime) -> QuizDeadline:
    if not _teaches(by, classroom):
        raise NotAllowed("Only the class's instructors set deadlines.")
    deadline, _ = QuizDeadline.objects.update_or_create(classroom=classroom, quiz=quiz, defaults={"due_at": due_at})
    return deadline


def deadline_delete(*, deadline: QuizDeadline, by) -> None:
    if not _teaches(by, deadline.classroom):
        raise NotAllowed("Only the class's instructors remove deadlines.")
    deadline.delete()


def extension_grant(*, deadline: QuizDeadline, by, student, due_at: datetime) -> Extension:
    if not _teaches(by, deadline.classroom):
        raise NotAllowed("Only the class's instructors grant extensions.")
    if not ClassMembership.objects.filter(classroom=deadline.classroom, user=student, role=Role.STUDENT).exists():
        raise NoSuchUser("That student is not in this class.")
    extension, _ = Extension.objects.update_or_create(deadline=deadline, student=student, defaults={"due_at": due_at})
    return extension
