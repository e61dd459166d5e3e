from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from courses.loader import ContentError
from courses.services import DEFAULT_CONTENT_ROOT, course_load


class Command(BaseCommand):
    help = "Import the chapter's sections and glossary from content/ (idempotent; all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--root", type=Path, default=DEFAULT_CONTENT_ROOT)

    def handle(self, *args, root: Path, **options):
        try:
            report = course_load(root=root)
        except ContentError as exc:
            raise CommandError(f"{exc} (nothing was changed)") from None
        for line in report.lines():
            self.stdout.write(line)
