"""Grade free-text answers from a JSON Lines file with the same code the site uses."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from quizzes.forms import clean_text
from quizzes.models import Question
from quizzes.services import free_text_grade, grade_needs_review


class LineError(ValueError):
    pass


class Command(BaseCommand):
    help = (
        'Grade free-text answers. Each input line is {"question": "<slug>", "answer": "..."}; each output line '
        "repeats it with score, verdict, confidence and needs_review added, or with error for a line that "
        "could not be graded. Exits 1 if any line had an error, after grading all the others."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .jsonl file, or - for standard input")
        parser.add_argument("--output", "-o", type=Path, help="write results here instead of standard output")

    def handle(self, *args, file: str, output: Path | None, **options):
        try:
            importlib.import_module("quizzes.grading")
        except ImportError as exc:
            raise CommandError(f"the free-text grader is not available: {exc}") from None
        try:
            source = sys.stdin if file == "-" else open(file, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            sink = open(output, "w", encoding="utf-8") if output else self.stdout
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        questions: dict[str, Question | None] = {}
        graded = errors = 0
        try:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    record = self._grade(line, questions)
                    graded += 1
                except LineError as exc:
                    errors += 1
                    self.stderr.write(f"line {number}: {exc}")
                    record = {"line": number, "error": str(exc)}
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        finally:
            if source is not sys.stdin:
                source.close()
            if output:
                sink.close()
        self.stderr.write(f"{graded} graded, {errors} with errors")
        if errors:
            raise CommandError(f"{errors} line(s) could not be graded (see above)")

    def _grade(self, line: str, questions: dict) -> dict:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise LineError('expected an object like {"question": "<slug>", "answer": "..."}')
        slug, answer = record.get("question"), record.get("answer")
        if not isinstance(slug, str) or not slug:
            raise LineError('"question" must be a question\'s slug')
        if not isinstance(answer, str):
            raise LineError('"answer" must be text')
        if slug not in questions:
            questions[slug] = Question.objects.filter(slug=slug).first()
        question = questions[slug]
        if question is None:
            raise LineError(f"no question with slug {slug!r}")
        if not question.is_free_text:
            raise LineError(f"question {slug!r} is {question.type}, not free_text")
        try:
            grade = free_text_grade(question, clean_text(answer)[0])  # stored as the site stores it
        except Exception as exc:  # one answer the grader chokes on must not stop the batch
            raise LineError(f"the grader failed on this answer: {exc.__class__.__name__}: {exc}") from None
        return {
            **record,
            "score": round(float(grade.score), 4),
            "verdict": grade.verdict,
            "confidence": round(float(grade.confidence), 4),
            "needs_review": grade_needs_review(grade),
        }
