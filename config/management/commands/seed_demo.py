from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

DEMO_USERS = [
    ("instructor", "Ada", "instructor"),
    ("student1", "Sam", "student"),
    ("student2", "Kim", "student"),
]
DEMO_PASSWORD = "journey-demo"


class Command(BaseCommand):
    help = "Create the demo accounts (one instructor, two students) and print their logins. Idempotent."

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
