"""The demo accounts `make run` prints: an instructor, two students and the class they share."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from accounts.models import ClassMembership, Classroom, Role
from accounts.services import classroom_create, classroom_join

DEMO_USERS = [
    ("instructor", "Ada", "instructor"),
    ("student1", "Sam", "student"),
    ("student2", "Kim", "student"),
]
DEMO_PASSWORD = "journey-demo"
DEMO_CLASS = "Demo class"


class Command(BaseCommand):
    help = (
        "Create the demo accounts (one instructor, two students) and a class the instructor teaches with "
        "both students in it; print the logins. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--password", default=DEMO_PASSWORD)

    def handle(self, *args, password, **options):
        User = get_user_model()
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ("instructor", "student")}
        for username, first_name, role in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"first_name": first_name})
            if created:
                user.set_password(password)
                user.save()
            user.groups.add(groups[role])
            state = "created" if created else "exists"
            self.stdout.write(f"  {role:<10} login: {username:<10} password: {password}  ({state})")
        self._demo_class(User)

    def _demo_class(self, User):
        instructor = User.objects.get(username="instructor")
        classroom = Classroom.objects.filter(
            name=DEMO_CLASS, memberships__user=instructor, memberships__role=Role.INSTRUCTOR
        ).first() or classroom_create(by=instructor, name=DEMO_CLASS)
        for username, _, role in DEMO_USERS:
            if role == "student":
                classroom_join(user=User.objects.get(username=username), code=classroom.code)
        n = ClassMembership.objects.filter(classroom=classroom, role=Role.STUDENT).count()
        self.stdout.write(f"  class      {classroom.name!r} join code: {classroom.code}  ({n} students)")
