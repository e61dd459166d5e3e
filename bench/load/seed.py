"""The load test's class: an instructor and N students with a known password, all in one class whose
chapter test is open (a deadline ahead), and nothing else of their history. Needs Django set up.

Users are written in bulk (one password hash for all: hashing 200 passwords would take minutes
here) and joined as `classroom_join` joins them; the class is made by `classroom_create` and the
deadline by `deadline_set`, as the instructor's pages make them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

PASSWORD = "load-test-password-19"
INSTRUCTOR = "load-teacher"
STUDENT_PREFIX = "load-s"


@dataclass
class Seeded:
    classroom_id: int
    instructor: str
    students: list[str]
    password: str
    sections: list[str]
    free_text: dict[str, list[str]]  # a free-text question's prompt (as plain text) -> answers to type

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


def student_name(i: int) -> str:
    return f"{STUDENT_PREFIX}{i:04d}"


def seed_class(*, n_students: int, password: str = PASSWORD, hours_open: int = 4) -> Seeded:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import Group
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import ClassMembership, Role
    from accounts.services import classroom_create, deadline_set
    from courses.models import Section
    from dashboard.classgen import bank_ensure
    from quizzes.models import CHAPTER_QUIZ

    bank_ensure()
    User = get_user_model()
    # Django's default hasher, at its full cost, whatever this process's settings say (a test's
    # are faster): the stack checks these passwords with its own, production settings.
    hasher = PBKDF2PasswordHasher()
    hashed = hasher.encode(password, hasher.salt())
    with transaction.atomic():
        teacher = User.objects.create(username=INSTRUCTOR, password=hashed, first_name="Load", last_name="Teacher")
        teacher.groups.add(Group.objects.get_or_create(name="instructor")[0])
        classroom = classroom_create(by=teacher, name=f"Load test, {n_students} students")
        deadline_set(
            classroom=classroom, by=teacher, quiz=CHAPTER_QUIZ, due_at=timezone.now() + timedelta(hours=hours_open)
        )
        names = [student_name(i) for i in range(n_students)]
        students = User.objects.bulk_create(
            [User(username=n, password=hashed, first_name="Student", last_name=n[-4:]) for n in names]
        )
        group = Group.objects.get_or_create(name="student")[0]
        Through = User.groups.through
        Through.objects.bulk_create([Through(user_id=u.pk, group_id=group.pk) for u in students])
        # What classroom_join writes; a student with no history adds nothing to the class's sums.
        ClassMembership.objects.bulk_create(
            [ClassMembership(classroom=classroom, user=u, role=Role.STUDENT) for u in students]
        )
    sections = list(Section.objects.order_by("order").values_list("slug", flat=True))
    return Seeded(
        classroom_id=classroom.pk,
        instructor=INSTRUCTOR,
        students=names,
        password=password,
        sections=sections,
        free_text=free_text_answers(),
    )


def plain(html: str) -> str:
    """A prompt's text as the locust client reads it off the page: no tags, spaces collapsed."""
    import re
    from html import unescape

    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def free_text_answers() -> dict[str, list[str]]:
    """The grading benchmark's answers (bench/grading/data), by the plain text of their question's
    prompt: the simulated students type what real writers wrote, of every length and quality."""
    from quizzes.models import Question, QuestionType

    answers: dict[str, list[str]] = {}
    path = Path(__file__).resolve().parent.parent / "grading" / "data" / "answers.jsonl"
    for line in path.read_text().splitlines():
        row = json.loads(line)
        answers.setdefault(row["question"], []).append(row["answer"])
    out = {}
    for slug, prompt_html in Question.objects.filter(type=QuestionType.FREE_TEXT).values_list("slug", "prompt_html"):
        if slug in answers:
            out[plain(prompt_html)] = answers[slug]
    return out
