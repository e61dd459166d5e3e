"""Writes of the quizzes: importing the bank, drawing and taking attempts, grading, reviews, regrades.

Over 600 lines, as one module: every write of an attempt or an answer goes through the same locks,
marking and score refresh, and the app keeps its writes in one services.py, as the others do.
"""

from __future__ import annotations

import importlib
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.history import history_announce
from courses.loader import ContentError
from courses.models import GlossaryTerm, Section
from courses.rendering import render_markdown
from courses.services import DEFAULT_CONTENT_ROOT, LoadReport
from quizzes.forms import MSG_REASON_TOO_LONG, clean_reason
from quizzes.loader import normalise, read_question_file
from quizzes.models import (
    CHAPTER_QUIZ,
    REVIEW_REASON_MAX_CHARS,
    Answer,
    Attempt,
    GradedBy,
    Question,
    QuestionType,
    Verdict,
    grade_stands_in_review,
)
from quizzes.scoring import mark, verdict_for

log = logging.getLogger(__name__)

MSG_GRADER_FAILED = "The automatic grader could not read this answer, so an instructor will grade it."
MSG_GRADER_DOWN = "The grader is not available right now. Check again in a little while."
MSG_NO_ANSWER = "No answer was given."


class AttemptClosed(Exception):
    """The attempt no longer takes answers: it was handed in, or its time ran out."""


class PracticeClosed(Exception):
    """Practice would show the answers to questions of a test the student has open."""

    def __init__(self, test: Attempt):
        super().__init__(f"test {test.pk} of {test.quiz!r} is open")
        self.test = test


# ---------------------------------------------------------------- the bank


@transaction.atomic
def question_bank_load(*, root: Path = DEFAULT_CONTENT_ROOT, report: LoadReport | None = None) -> LoadReport:
    """Import content/<chapter>/questions/*.yaml; re-running updates in place and never duplicates.

    Sections and glossary terms must already be in the database (loadcourse imports them first,
    in the same transaction). A question that left the bank is deleted, or retired when past
    attempts use it. Any ContentError rolls the whole import back.
    """
    report = report if report is not None else LoadReport()
    folder = root / "questions"
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ContentError(folder, 0, "no question files (<section-slug>.yaml) found")
    sections = dict(Section.objects.values_list("slug", "pk"))
    term_ids = dict(GlossaryTerm.objects.values_list("slug", "pk"))

    records, seen = [], {}
    for path in files:
        if path.stem not in sections:
            raise ContentError(
                path, 1, f"no section {path.stem!r}: name the file after a section ({', '.join(sorted(sections))})"
            )
        for rec in read_question_file(path):
            if rec.slug in seen:
                first = seen[rec.slug]
                raise ContentError(
                    path,
                    rec.key_lines.get("slug", rec.line),
                    f"duplicate question slug {rec.slug!r}: also at {first.path.name}:{first.line}",
                )
            seen[rec.slug] = rec
            missing = [t for t in rec.data.get("terms", []) if t not in term_ids]
            if missing:
                raise ContentError(
                    path,
                    rec.key_lines.get("terms", rec.line),
                    f"question {rec.slug!r} names unknown glossary term(s): {', '.join(missing)}",
                )
            records.append(rec)

    existing = {q.slug: q for q in Question.objects.prefetch_related("terms")}
    for rec in records:
        values = normalise(rec.data)
        values.update(
            section_id=sections[rec.section],
            order=rec.order,
            is_active=True,
            prompt_html=render_markdown(values["prompt"]),
            explanation_html=render_markdown(values["explanation"]),
        )
        terms = {term_ids[t] for t in rec.data.get("terms", [])}
        question = existing.get(rec.slug)
        if question is None:
            question = Question.objects.create(slug=rec.slug, **values)
            question.terms.set(terms)
            report.created.append(f"question {rec.slug}")
            continue
        changed = [k for k, v in values.items() if getattr(question, k) != v]
        for k in changed:
            setattr(question, k, values[k])
        if changed:
            question.save()
        if {t.pk for t in question.terms.all()} != terms:
            question.terms.set(terms)
            changed.append("terms")
        if changed:
            report.updated.append(f"question {rec.slug} ({', '.join(c.removesuffix('_id') for c in changed)})")
        else:
            report.unchanged += 1

    for slug, question in existing.items():
        if slug in seen:
            continue
        if not question.student_answers.exists():
            question.delete()
            report.deleted.append(f"question {slug}")
        elif question.is_active:
            question.is_active = False
            question.save(update_fields=["is_active", "updated_at"])
            report.updated.append(f"question {slug} (retired: past attempts use it)")
        else:
            report.unchanged += 1
    return report


# ---------------------------------------------------------------- taking a quiz


def _draw_order(rng: random.Random, items: list) -> list:
    order = list(items)
    rng.shuffle(order)
    # Never show a matching question's answers in the bank's own (solution) order.
    if len(order) > 1 and order == list(items):
        order = order[1:] + order[:1]
    return order


def _open_tests(user, now) -> list[Attempt]:
    """The user's open tests, once any whose time ran out are handed in."""
    from quizzes.selectors import open_tests

    tests = open_tests(user=user)
    if any(_time_is_up(t, now) for t in tests):
        for test in tests:
            attempt_close_if_expired(attempt=test, now=now)
        tests = open_tests(user=user)
    return tests


def practice_check_open(*, user, quiz: str, question_ids=None, now=None) -> None:
    """PracticeClosed while an open test of the user's asks a question this practice could show:
    one of `question_ids` (an attempt's), or, without them, any the quiz draws from."""
    from quizzes.selectors import practice_blocked_by, test_sharing_questions

    tests = _open_tests(user, now or timezone.now())
    if question_ids is None:
        blocker = practice_blocked_by(tests=tests, quiz=quiz)
    else:
        blocker = test_sharing_questions(tests=tests, question_ids=question_ids)
    if blocker is not None:
        raise PracticeClosed(blocker)


def attempt_start(*, user, quiz: str, mode: str, timed: bool = False, rng: random.Random | None = None) -> Attempt:
    """Draw a fresh attempt: the section's questions (or a random set for the chapter quiz) in a
    new order, each choice list in a new order too.

    A student has at most one open test of a quiz: asking for another gives back the open one
    (whatever `timed` says). Practice is refused (PracticeClosed) while an open test asks a
    question the practice could show the answer to."""
    if mode not in Attempt.Mode.values:
        raise ValueError(f"unknown mode {mode!r}")
    from quizzes.selectors import open_test_of

    if mode == Attempt.Mode.TEST:
        current = open_test_of(_open_tests(user, timezone.now()), quiz)
        if current is not None:
            return current
    else:
        practice_check_open(user=user, quiz=quiz)
    rng = rng or random.SystemRandom()
    pool = Question.objects.filter(is_active=True)
    if quiz != CHAPTER_QUIZ:
        pool = pool.filter(section__slug=quiz)
    pool = list(pool.values_list("pk", "type", "options", "pairs"))
    if not pool:
        raise ValueError(f"quiz {quiz!r} has no questions")
    size = min(settings.JOURNEY_CHAPTER_QUIZ_SIZE, len(pool)) if quiz == CHAPTER_QUIZ else len(pool)
    drawn = rng.sample(pool, size)
    shuffles = {}
    for pk, qtype, options, pairs in drawn:
        if qtype in (QuestionType.SINGLE, QuestionType.MULTIPLE):
            shuffles[str(pk)] = _draw_order(rng, [str(o["key"]) for o in options])
        elif qtype == QuestionType.MATCHING:
            shuffles[str(pk)] = _draw_order(rng, list(range(len(pairs))))
    now = timezone.now()
    deadline = None
    if timed and mode == Attempt.Mode.TEST:
        deadline = now + timedelta(seconds=size * settings.JOURNEY_TEST_SECONDS_PER_QUESTION)
    try:
        with transaction.atomic():
            attempt = Attempt.objects.create(
                user=user,
                quiz=quiz,
                mode=mode,
                question_ids=[pk for pk, *_ in drawn],
                shuffles=shuffles,
                started_at=now,
                deadline=deadline,
            )
            Answer.objects.bulk_create(
                Answer(attempt=attempt, question_id=pk, position=i) for i, (pk, *_) in enumerate(drawn, start=1)
            )
            history_announce(user_ids=[user.pk], seen_at=now)  # only the class pages' "last seen" moves
    except IntegrityError:
        # Two starts at once (a double click, two tabs): the database let one test in, this is the other.
        winner = Attempt.objects.filter(user=user, quiz=quiz, mode=mode, state=Attempt.State.IN_PROGRESS).first()
        if mode != Attempt.Mode.TEST or winner is None:
            raise
        return winner
    return attempt


def _time_is_up(attempt: Attempt, now) -> bool:
    grace = timedelta(seconds=settings.JOURNEY_TEST_GRACE_SECONDS)
    return attempt.deadline is not None and now > attempt.deadline + grace


def _lock_open(attempt: Attempt, now, **extra) -> Attempt:
    """Lock the attempt's row for this transaction; AttemptClosed unless it still takes answers.
    The lock orders a save against a concurrent submit: the submit grades what the save wrote."""
    locked = Attempt.objects.select_for_update().filter(pk=attempt.pk, state=Attempt.State.IN_PROGRESS, **extra)
    locked = locked.first()
    if locked is None or _time_is_up(locked, now):
        raise AttemptClosed("This attempt no longer takes answers.")
    return locked


def _lock_attempts(attempt_ids) -> None:
    """Lock these attempts' rows, in id order, until the transaction ends. Every write that changes
    an attempt's answers after hand-in takes it first (then the answer rows): two graders of one
    test's answers, each adding up the test's score, would otherwise each miss the other's grade."""
    list(Attempt.objects.select_for_update().filter(pk__in=list(attempt_ids)).order_by("pk").values_list("pk"))


def answers_save(*, attempt: Attempt, responses: dict[int, dict | None], now=None) -> list[int]:
    """Store answers (by position) in an open attempt; returns the positions that changed.

    In practice mode a changed answer loses its earlier feedback, and a free-text grade still
    on its way for the old text is dropped when it arrives.
    """
    now = now or timezone.now()
    if _time_is_up(attempt, now):
        attempt_close_if_expired(attempt=attempt, now=now)
        raise AttemptClosed("The time for this test is up.")
    changed = []
    with transaction.atomic():
        locked = _lock_open(attempt, now)
        answers = Answer.objects.filter(attempt=locked, position__in=list(responses)).only("response", "verdict")
        for answer in answers.order_by("position"):
            response = responses[answer.position]
            if answer.response == response:
                continue
            fields = {"response": response, "saved_at": now}
            if locked.is_practice and answer.verdict:
                fields.update(_ungraded(), grading_round=F("grading_round") + 1)
            Answer.objects.filter(pk=answer.pk).update(**fields)
            changed.append(answer.position)
    return changed


def _ungraded() -> dict:
    return {
        "score": None, "verdict": "", "confidence": None, "graded_by": "", "graded_at": None, "feedback": "",
        "grader_result": None, "needs_review": False,
    }  # fmt: skip


def _auto_fields(question: Question, response, now) -> dict:
    if question.is_free_text:  # only an empty free-text answer is marked without the grader
        score, verdict, feedback = 0.0, Verdict.INCORRECT, MSG_NO_ANSWER
    else:
        result = mark(question, response)
        score, verdict, feedback = result.score, result.verdict, result.feedback
    return {
        "score": score, "verdict": verdict, "confidence": None, "graded_by": GradedBy.AUTO, "graded_at": now,
        "feedback": feedback, "grader_result": None, "needs_review": False,
    }  # fmt: skip


def _queue_free_text(answer_id: int, now) -> None:
    fields = {**_ungraded(), "verdict": Verdict.PENDING, "grading_round": F("grading_round") + 1}
    Answer.objects.filter(pk=answer_id).update(**fields, grading_queued_at=now)
    transaction.on_commit(partial(grading_dispatch, answer_id=answer_id))


def answer_check(*, attempt: Attempt, position: int, now=None) -> Answer:
    """Practice mode: grade one answer now, so the student sees right or wrong and the explanation."""
    now = now or timezone.now()
    if attempt.is_practice:
        practice_check_open(user=attempt.user, quiz=attempt.quiz, question_ids=attempt.question_ids, now=now)
    with transaction.atomic():
        locked = _lock_open(attempt, now, mode=Attempt.Mode.PRACTICE)
        answer = Answer.objects.select_related("question").get(attempt=locked, position=position)
        Answer.objects.filter(pk=answer.pk).update(checks=F("checks") + 1)
        if answer.question.is_free_text and answer.response:
            if answer.verdict != Verdict.PENDING:
                _queue_free_text(answer.pk, now)
        else:
            Answer.objects.filter(pk=answer.pk).update(**_auto_fields(answer.question, answer.response, now))
    answer.refresh_from_db()
    return answer


def attempt_submit(*, attempt: Attempt, now=None, timed_out: bool = False) -> bool:
    """Hand an attempt in and grade it. True for the call that did; a repeat (double click,
    replayed POST, the deadline sweep racing the student) changes nothing and returns False."""
    now = now or timezone.now()
    with transaction.atomic():
        won = Attempt.objects.filter(pk=attempt.pk, state=Attempt.State.IN_PROGRESS).update(
            state=Attempt.State.SUBMITTED, submitted_at=now, timed_out=timed_out
        )
        if won != 1:
            return False
        for answer in Answer.objects.filter(attempt_id=attempt.pk).select_related("question"):
            if answer.question.is_free_text and answer.response:
                if attempt.is_practice and answer.verdict:
                    continue  # already checked (or being checked) in practice: that grade stands
                _queue_free_text(answer.pk, now)
            else:
                Answer.objects.filter(pk=answer.pk).update(**_auto_fields(answer.question, answer.response, now))
        attempt_score_refresh(attempt_id=attempt.pk)
        history_announce(user_ids=[attempt.user_id])
    attempt.refresh_from_db()
    return True


def attempt_close_if_expired(*, attempt: Attempt, now=None) -> Attempt:
    """A test past its deadline is handed in by the server with the answers saved so far."""
    now = now or timezone.now()
    if attempt.state == Attempt.State.IN_PROGRESS and _time_is_up(attempt, now):
        attempt_submit(attempt=attempt, now=now, timed_out=True)
        attempt.refresh_from_db()
    return attempt


def attempts_close_expired(*, now=None) -> list[int]:
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOURNEY_TEST_GRACE_SECONDS)
    closed = []
    for attempt in Attempt.objects.filter(state=Attempt.State.IN_PROGRESS, deadline__lt=cutoff):
        if attempt_submit(attempt=attempt, now=now, timed_out=True):
            closed.append(attempt.pk)
    return closed


def attempt_score_refresh(*, attempt_id: int) -> None:
    """Recompute a handed-in attempt's score. Answers still with the grader or an instructor
    count as 0 until they come back, and keep the attempt 'submitted' rather than 'graded'.
    An answer whose student asked for a review keeps counting the grader's grade meanwhile:
    asking must not cost the student their score."""
    _lock_attempts([attempt_id])  # callers hold it already; a refresh without it could add up stale grades
    rows = Answer.objects.filter(attempt_id=attempt_id)
    rows = list(rows.values_list("score", "verdict", "needs_review", "review_requested_at"))
    counted = [
        score
        for score, verdict, review, asked in rows
        if verdict != Verdict.PENDING and (not review or grade_stands_in_review(verdict, review, asked))
    ]
    waiting = len(counted) < len(rows)
    total = sum(score or 0.0 for score in counted)
    score = min(1.0, total / len(rows)) if rows else 0.0
    Attempt.objects.filter(pk=attempt_id).exclude(state=Attempt.State.IN_PROGRESS).update(
        score=score, state=Attempt.State.SUBMITTED if waiting else Attempt.State.GRADED
    )


# ---------------------------------------------------------------- free text


def free_text_grade(question: Question, text: str):
    """Grade one free-text answer as stored (the form's clean_text has run on it): the single path
    shared by the site's task and `grade_answers`. The grader does its own reading of the text."""
    if not question.is_free_text:
        raise ValueError(f"question {question.slug!r} is {question.type}, not free_text")
    grading = importlib.import_module("quizzes.grading")
    if not text.strip():
        covered = tuple(False for _ in question.key_points)
        return grading.Grade(
            score=0.0, verdict="incorrect", confidence=1.0, covered=covered, contradicted=False, feedback=MSG_NO_ANSWER
        )
    return grading.grade_free_text(question.free_text_spec(), text)


def grade_needs_review(grade) -> bool:
    """Whether an instructor reads this answer before its student sees a grade: the grader's own
    rule (`quizzes.grading.needs_review`) at the bar JOURNEY_REVIEW_CONFIDENCE sets."""
    if settings.JOURNEY_REVIEW_EVERY_ANSWER:
        return True
    grading = importlib.import_module("quizzes.grading")
    return grading.needs_review(grade, settings.JOURNEY_REVIEW_CONFIDENCE)


def _grade_fields(grade, *, practice: bool, now) -> dict:
    score = min(1.0, max(0.0, float(grade.score)))
    suggestion = {
        "score": score, "verdict": grade.verdict, "confidence": float(grade.confidence),
        "covered": [bool(c) for c in grade.covered], "contradicted": bool(grade.contradicted),
        "feedback": grade.feedback,
    }  # fmt: skip
    fields = {
        "confidence": float(grade.confidence), "graded_by": GradedBy.GRADER, "graded_at": now,
        "feedback": grade.feedback, "grader_result": suggestion,
    }  # fmt: skip
    if grade_needs_review(grade) and not practice:
        # The grader's score stays a suggestion (in grader_result) until an instructor decides.
        fields.update(score=None, verdict=Verdict.NEEDS_REVIEW, needs_review=True)
    else:
        # Practice answers never wait for a person: the student sees the grader's best guess.
        own = grade.verdict if grade.verdict in (Verdict.CORRECT, Verdict.PARTIAL, Verdict.INCORRECT) else None
        fields.update(score=score, verdict=own or verdict_for(score), needs_review=False)
    return fields


def answer_grade_free_text(*, answer_id: int) -> str:
    """Run the grader on one pending answer and store the result, unless it went stale meanwhile."""
    answer = Answer.objects.select_related("question", "attempt").filter(pk=answer_id).first()
    if answer is None or answer.verdict != Verdict.PENDING:
        return "nothing to grade"
    grading_round = answer.grading_round
    grade = free_text_grade(answer.question, (answer.response or {}).get("text", ""))
    fields = _grade_fields(grade, practice=answer.attempt.is_practice, now=timezone.now())
    if answer.review_requested_at is not None:
        fields["needs_review"] = True  # graded again (a regrade): the student's request still waits
    with transaction.atomic():
        _lock_attempts([answer.attempt_id])
        stored = Answer.objects.filter(pk=answer_id, verdict=Verdict.PENDING, grading_round=grading_round).update(
            **fields
        )
        if stored:
            attempt_score_refresh(attempt_id=answer.attempt_id)
            history_announce(user_ids=[answer.attempt.user_id])
    return "graded" if stored else "stale"


def answer_grading_failed(*, answer_id: int) -> None:
    """The grader gave up on an answer: a test answer goes to an instructor; a practice check
    is undone so the student can try again later."""
    answer = Answer.objects.select_related("attempt").filter(pk=answer_id, verdict=Verdict.PENDING).first()
    if answer is None:
        return
    if answer.attempt.is_practice:
        fields = {**_ungraded(), "feedback": MSG_GRADER_DOWN, "needs_review": answer.review_requested_at is not None}
    else:
        fields = {**_ungraded(), "verdict": Verdict.NEEDS_REVIEW, "needs_review": True, "feedback": MSG_GRADER_FAILED}
    with transaction.atomic():
        _lock_attempts([answer.attempt_id])
        if Answer.objects.filter(pk=answer_id, verdict=Verdict.PENDING).update(**fields):
            attempt_score_refresh(attempt_id=answer.attempt_id)
            history_announce(user_ids=[answer.attempt.user_id])


def grading_dispatch(*, answer_id: int) -> bool:
    """Queue the free-text grader for one answer; False when the broker is down (housekeeping
    queues it again later, and a duplicate message finds nothing pending)."""
    from quizzes.tasks import grade_free_text

    try:
        grade_free_text.apply_async(args=[answer_id], retry=False)
    except Exception as exc:  # kombu raises several types for "broker unreachable"
        log.warning("could not queue grading of answer %s: %s: %s", answer_id, exc.__class__.__name__, exc)
        return False
    Answer.objects.filter(pk=answer_id, verdict=Verdict.PENDING).update(grading_queued_at=timezone.now())
    return True


def gradings_redispatch(*, now=None) -> list[int]:
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.JOURNEY_GRADING_REDISPATCH_AFTER)
    ids = list(Answer.objects.filter(verdict=Verdict.PENDING, grading_queued_at__lt=stale).values_list("pk", flat=True))
    return [pk for pk in ids if grading_dispatch(answer_id=pk)]


# ---------------------------------------------------------------- instructors


class NotYours(PermissionError):
    """The answer is not this user's to grade (a student they do not teach; they are no instructor)
    or to send for review (another student's)."""


def _owners_of(attempt_ids) -> list[int]:
    """The students who own these attempts, for announcing whose history a batch changed."""
    owners = Attempt.objects.filter(pk__in=list(attempt_ids)).order_by().values_list("user_id", flat=True)
    return list(owners.distinct())


def _may_review(by, answer_ids: set[int]) -> bool:
    from quizzes.selectors import answers_reviewable_by

    return answers_reviewable_by(by).filter(pk__in=answer_ids).count() == len(answer_ids)


def _instructor_fields(*, score: float, by, comment: str, now) -> dict:
    score = min(1.0, max(0.0, float(score)))
    return {
        "score": score, "verdict": verdict_for(score), "graded_by": GradedBy.INSTRUCTOR, "graded_at": now,
        "needs_review": False, "instructor_comment": comment.strip(), "reviewed_by": by, "reviewed_at": now,
    }  # fmt: skip


def answer_review(*, answer: Answer, by, score: float, comment: str = "", now=None) -> Answer:
    """An instructor's grade: final, and never overwritten by the grader or a regrade. Any handed-in
    answer of a student `by` teaches, waiting in the queue or already graded (an override)."""
    if answer.attempt.state == Attempt.State.IN_PROGRESS:
        raise ValueError("The attempt has not been handed in yet.")
    if not _may_review(by, {answer.pk}):
        raise NotYours("Only the student's instructors grade this answer.")
    now = now or timezone.now()
    with transaction.atomic():
        _lock_attempts([answer.attempt_id])
        Answer.objects.filter(pk=answer.pk).update(**_instructor_fields(score=score, by=by, comment=comment, now=now))
        attempt_score_refresh(attempt_id=answer.attempt_id)
        history_announce(user_ids=[answer.attempt.user_id])
    answer.refresh_from_db()
    return answer


# ---------------------------------------------------------------- students asking for a review


class ReviewRefused(ValueError):
    """The student may not ask for a review of this answer; the message says why, in their words."""


def answer_review_request(*, answer: Answer, by, reason: str = "", now=None) -> Answer:
    """The student asks an instructor to look at the grader's grade of one of their free-text
    answers, with an optional reason. The answer joins their instructors' review queue, and the
    grader's grade keeps counting until an instructor decides (answer_review)."""
    if answer.attempt.user_id != by.pk:
        raise NotYours("Only the student who wrote this answer can ask for its review.")
    reason = clean_reason(reason)
    if len(reason) > REVIEW_REASON_MAX_CHARS:
        raise ReviewRefused(MSG_REASON_TOO_LONG)
    now = now or timezone.now()
    with transaction.atomic():
        _lock_attempts([answer.attempt_id])
        # Locked and read again: two clicks, or an instructor's grade landing meanwhile, see each other.
        locked = Answer.objects.select_for_update(of=("self",)).select_related("question", "attempt").get(pk=answer.pk)
        refusal = locked.review_request_refusal(handed_in=not locked.attempt.is_open)
        if refusal:
            raise ReviewRefused(refusal)
        Answer.objects.filter(pk=answer.pk).update(needs_review=True, review_requested_at=now, review_request=reason)
        attempt_score_refresh(attempt_id=answer.attempt_id)
        history_announce(user_ids=[by.pk])  # the classes' "waiting for review" counts
    answer.refresh_from_db()
    return answer


@dataclass
class BulkReviewReport:
    graded: int = 0
    no_suggestion: int = 0  # accepting: the grader made none for these (it failed on them)
    already_graded: int = 0  # someone graded them between the page and the post


def answers_review_many(
    *, answer_ids: list[int], by, score: float | None = None, comment: str = "", now=None
) -> BulkReviewReport:
    """One decision for several waiting answers, in one transaction: accept each one's own
    suggestion from the grader (score None), or give them all `score`. If any id names an answer
    `by` may not grade, nothing changes (NotYours). Answers no longer waiting are left as they are."""
    ids = set(answer_ids)
    now = now or timezone.now()
    report = BulkReviewReport()
    touched = set()
    with transaction.atomic():
        if not ids or not _may_review(by, ids):
            raise NotYours("Some of these answers belong to students you do not teach.")
        _lock_attempts(Answer.objects.filter(pk__in=ids).values_list("attempt_id", flat=True))
        rows = Answer.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        for answer in rows.only("pk", "attempt_id", "needs_review", "grader_result"):
            if not answer.needs_review:
                report.already_graded += 1
                continue
            given = (answer.grader_result or {}).get("score") if score is None else score
            if given is None:
                report.no_suggestion += 1
                continue
            fields = _instructor_fields(score=given, by=by, comment=comment, now=now)
            Answer.objects.filter(pk=answer.pk).update(**fields)
            touched.add(answer.attempt_id)
            report.graded += 1
        for attempt_id in sorted(touched):
            attempt_score_refresh(attempt_id=attempt_id)
        history_announce(user_ids=_owners_of(touched))
    return report


@dataclass
class RegradeReport:
    changed: int = 0
    unchanged: int = 0
    queued: int = 0
    kept: int = 0
    attempts: int = 0

    def __str__(self):
        return (
            f"{self.attempts} attempt(s): {self.changed} answer(s) changed, {self.unchanged} unchanged, "
            f"{self.queued} sent to the free-text grader, {self.kept} kept (graded by an instructor)"
        )


def question_regrade(*, question: Question, now=None) -> RegradeReport:
    """Mark every handed-in answer to this question again against its current key, and rescore
    the attempts. Instructors' grades stand; free-text answers go back to the grader."""
    now = now or timezone.now()
    report = RegradeReport()
    touched = set()
    with transaction.atomic():
        answers = Answer.objects.filter(question=question).exclude(attempt__state=Attempt.State.IN_PROGRESS)
        _lock_attempts(answers.values_list("attempt_id", flat=True))
        for answer in answers.only("pk", "attempt_id", "response", "score", "verdict", "graded_by"):
            if answer.graded_by == GradedBy.INSTRUCTOR:
                report.kept += 1
                continue
            if question.is_free_text and answer.response:
                _queue_free_text(answer.pk, now)
                report.queued += 1
            else:
                fields = _auto_fields(question, answer.response, now)
                if (answer.score, answer.verdict) == (fields["score"], fields["verdict"]):
                    report.unchanged += 1
                    continue
                Answer.objects.filter(pk=answer.pk).update(**fields)
                report.changed += 1
            touched.add(answer.attempt_id)
        for attempt_id in touched:
            attempt_score_refresh(attempt_id=attempt_id)
        history_announce(user_ids=_owners_of(touched))
    report.attempts = len(touched)
    return report


# ---------------------------------------------------------------- housekeeping


def quizzes_housekeeping(*, now=None) -> dict:
    return {"closed": attempts_close_expired(now=now), "requeued": gradings_redispatch(now=now)}
