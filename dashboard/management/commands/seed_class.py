"""`manage.py seed_class`: a generated class with a realistic history, to try the class pages at scale."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.roles import is_instructor
from dashboard.classgen import PASSWORD, bank_ensure, class_generate


class Command(BaseCommand):
    help = (
        "Add a class of made-up students with handed-in tests, experiments and reading to an instructor's "
        "classes (default: the demo instructor), to see the class pages as a big class sees them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--instructor", default="instructor", help="the teaching instructor's username")
        parser.add_argument("--students", type=int, default=200)
        parser.add_argument("--seed", type=int, default=1, help="same seed, same class")
        parser.add_argument("--name", default="Generated class")

    def handle(self, *args, instructor, students, seed, name, **options):
        if not 1 <= students <= 5000:
            raise CommandError("--students must be between 1 and 5000.")
        user = get_user_model().objects.filter(username=instructor).first()
        if user is None or not is_instructor(user):
            raise CommandError(f"No instructor called {instructor!r} (make run creates 'instructor').")
        bank_ensure()
        prefix = f"gen{seed}-{user.pk}-"
        if get_user_model().objects.filter(username__startswith=prefix).exists():
            raise CommandError(f"A class generated with seed {seed} for {instructor} exists; choose another --seed.")
        with transaction.atomic():
            made = class_generate(instructor=user, n_students=students, seed=seed, name=name, prefix=prefix)
        self.stdout.write(
            f"Created {made.classroom.name!r} (code {made.classroom.code}) with {students} students for "
            f"{instructor}; the students' password is {PASSWORD!r}."
        )
