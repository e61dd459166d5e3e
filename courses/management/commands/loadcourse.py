from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from courses.loader import ContentError
from courses.services import DEFAULT_CONTENT_ROOT, LoadReport, course_load
from quizzes.services import question_bank_load


class Command(BaseCommand):
    help = "Import the chapter's sections, glossary and question bank from content/ (idempotent; all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--root", type=Path, default=DEFAULT_CONTENT_ROOT)

    def handle(self, *args, root: Path, **options):
        try:
            # One transaction: a bad question file leaves sections and glossary untouched too.
            with transaction.atomic():
                report = course_load(root=root)
                questions = question_bank_load(root=root, report=LoadReport())
        except ContentError as exc:
            raise CommandError(f"{exc} (nothing was changed)") from None
        self.stdout.write("Sections and glossary:")
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write("Question bank:")
        for line in questions.lines():
            self.stdout.write(line)
