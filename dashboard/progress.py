"""Keeps the class pages' summaries (dashboard.models: StudentProgress and the rows beside it) equal to
what a student's history says.

Every service that changes what they count announces the students concerned (accounts.history), in
its own transaction: reading, flashcard reviews, starting and handing in attempts, grading, reviews,
regrades, jobs; dashboard.signals answers with `progress_refresh`, there and then. The refresh
recomputes those students' rows from their history, with the same grouped queries that rebuild
everything (`progress_rebuild`, `manage.py progress_rebuild`), so a refresh cannot drift from a
rebuild; it costs a few indexed queries per call, not per class.
"""

from __future__ import annotations

import ast
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, FloatField, Max, Min, Q, Value
from django.db.models.functions import Coalesce, TruncDate

from accounts.models import ClassMembership, Classroom, Role
from courses.models import FlashcardReview, ReadingProgress
from dashboard.charts import bin_of
from dashboard.models import (
    ActivityDay,
    ClassActivityDay,
    ClassQuestionStats,
    ClassScoreBin,
    ClassWaiting,
    ClassWrongAnswer,
    DayCounts,
    Moments,
    QuestionTally,
    QuizProgress,
    StudentProgress,
    WrongAnswerTally,
)
from mlworker.models import JobState, TrainingJob
from quizzes import display
from quizzes.models import Answer, Attempt, QuestionType, Verdict

SUMMARIES = (StudentProgress, QuizProgress, ActivityDay, QuestionTally, WrongAnswerTally)
HANDED_IN = (Attempt.State.SUBMITTED, Attempt.State.GRADED)


NO_ANSWER = "(no answer)"


def response_text(response) -> str:
    """A response as the class's wrong-answer tallies count it: the value of its one field (the key of
    a choice, keys joined by ", ", True or False, the text, the matching's {left: right} as Python
    writes it), so that responses which read the same are counted together. `response_words`
    reads it back in the question's words."""
    if response is None:
        return NO_ANSWER
    if isinstance(response, dict) and len(response) == 1:
        response = next(iter(response.values()))
    if isinstance(response, list):
        return ", ".join(str(x) for x in response)
    return str(response)


def response_words(question, text: str) -> str:
    """A tallied wrong answer (`response_text`) as the student saw it: the chosen options' texts, the
    matching's pairs "left → right", else the text as it is."""
    if text == NO_ANSWER:
        return text
    if question.type == QuestionType.SINGLE:
        response = {"choice": text}
    elif question.type == QuestionType.MULTIPLE:
        response = {"choices": text.split(", ")}
    elif question.type == QuestionType.MATCHING:
        try:
            response = {"pairs": ast.literal_eval(text)}  # a dict of str -> int, as str() wrote it
        except (ValueError, SyntaxError):
            return text
    else:
        return text
    return "; ".join(display.response_words(question, response)) or text


def _mine(qs, field: str, user_ids: list[int] | None):
    qs = qs.order_by()
    return qs if user_ids is None else qs.filter(**{f"{field}__in": user_ids})


def _handed_in_tests(user_ids):
    return _mine(Attempt.objects.filter(mode=Attempt.Mode.TEST, state__in=HANDED_IN), "user_id", user_ids)


def _test_answers(user_ids):
    return _mine(
        Answer.objects.filter(attempt__mode=Attempt.Mode.TEST, attempt__state__in=HANDED_IN),
        "attempt__user_id",
        user_ids,
    )


def _students(user_ids) -> dict[int, StudentProgress]:
    rows: dict[int, StudentProgress] = {}

    def row(uid):
        if uid not in rows:
            rows[uid] = StudentProgress(user_id=uid)
        return rows[uid]

    def later(p, stamp):
        if stamp is not None and (p.last_activity is None or stamp > p.last_activity):
            p.last_activity = stamp

    per_user = _mine(ReadingProgress.objects, "user_id", user_ids).values("user_id")
    for uid, n, at in per_user.annotate(n=Count("pk"), at=Max("read_at")).values_list("user_id", "n", "at"):
        row(uid).sections_read = n
        later(rows[uid], at)
    per_user = _mine(FlashcardReview.objects, "user_id", user_ids).values("user_id")
    for uid, n, at in per_user.annotate(n=Count("pk"), at=Max("reviewed_at")).values_list("user_id", "n", "at"):
        row(uid).cards_reviewed = n
        later(rows[uid], at)
    # Any attempt counts for "last seen" (practice, or a test still open); only handed-in tests are counted.
    per_user = _mine(Attempt.objects, "user_id", user_ids).values("user_id")
    for uid, at in per_user.annotate(at=Max("started_at")).values_list("user_id", "at"):
        later(row(uid), at)
    for uid, n in _handed_in_tests(user_ids).values("user_id").annotate(n=Count("pk")).values_list("user_id", "n"):
        row(uid).tests = n
    per_user = _mine(TrainingJob.objects, "owner_id", user_ids).values("owner_id")
    jobs = per_user.annotate(
        n=Count("pk"),
        best=Min("error_rate", filter=_succeeded()),
        at=Max("created_at"),
    ).values_list("owner_id", "n", "best", "at")
    for uid, n, best, at in jobs:
        p = row(uid)
        p.jobs, p.best_error = n, best
        later(p, at)
    waiting = _mine(Answer.objects.filter(needs_review=True), "attempt__user_id", user_ids).exclude(
        attempt__state=Attempt.State.IN_PROGRESS
    )
    for uid, n in waiting.values("attempt__user_id").annotate(n=Count("pk")).values_list("attempt__user_id", "n"):
        row(uid).answers_waiting = n
    return rows


def _succeeded():
    return Q(state=JobState.SUCCEEDED, error_rate__isnull=False)


def _quizzes(user_ids) -> list[QuizProgress]:
    """Per student and quiz: tests handed in, best score, the latest test's score (by start, then id)."""
    rows = _handed_in_tests(user_ids).order_by("user_id", "quiz", "started_at", "pk")
    rows = rows.values_list("user_id", "quiz", "score")
    out: dict[tuple[int, str], QuizProgress] = {}
    for uid, quiz, score in rows:
        p = out.get((uid, quiz))
        if p is None:
            p = out[uid, quiz] = QuizProgress(user_id=uid, quiz=quiz)
        p.tests += 1
        if score is not None and (p.best is None or score > p.best):
            p.best = score
        p.last = score
    return list(out.values())


def _days(user_ids) -> list[ActivityDay]:
    """Per student and day (in the site's time zone): sections read, tests handed in, jobs that succeeded."""
    days: dict[tuple[int, object], ActivityDay] = {}

    def add(qs, user_field, stamp, kind):
        per_day = qs.annotate(day=TruncDate(stamp)).values(user_field, "day").annotate(n=Count("pk"))
        for uid, day, n in per_day.values_list(user_field, "day", "n"):
            d = days.get((uid, day))
            if d is None:
                d = days[uid, day] = ActivityDay(user_id=uid, day=day)
            setattr(d, kind, getattr(d, kind) + n)

    add(_mine(ReadingProgress.objects, "user_id", user_ids), "user_id", "read_at", "read")
    add(_handed_in_tests(user_ids), "user_id", Coalesce("submitted_at", "started_at"), "tests")
    succeeded = _mine(TrainingJob.objects.filter(state=JobState.SUCCEEDED), "owner_id", user_ids)
    add(succeeded, "owner_id", Coalesce("finished_at", "created_at"), "jobs")
    return list(days.values())


def _questions(user_ids) -> tuple[list[QuestionTally], list[WrongAnswerTally]]:
    score = Coalesce("score", Value(0.0), output_field=FloatField())
    answers = _test_answers(user_ids)
    # In a fixed order, so that a refresh of one student adds up their floats exactly as a rebuild does.
    rows = list(
        answers.annotate(x=score)
        .order_by("attempt_id", "question_id")
        .values_list("attempt_id", "attempt__user_id", "question_id", "x")
    )
    test_totals: dict[int, float] = defaultdict(float)
    for attempt_id, _, _, x in rows:
        test_totals[attempt_id] += x
    tallies: dict[tuple[int, int], QuestionTally] = {}
    for attempt_id, uid, qid, x in rows:
        t = tallies.get((uid, qid))
        if t is None:
            t = tallies[uid, qid] = QuestionTally(user_id=uid, question_id=qid)
        y = test_totals[attempt_id] - x  # the rest of the test
        t.answers += 1
        t.score_sum += x
        t.score_sq += x * x
        t.rest_sum += y
        t.rest_sq += y * y
        t.cross += x * y
    # Different stored responses can read the same ("a" and ["a"]): counted by what the page shows.
    wrong: dict[tuple[int, int, str], int] = defaultdict(int)
    by_response = answers.filter(verdict=Verdict.INCORRECT).values("attempt__user_id", "question_id", "response")
    for uid, qid, response, n in by_response.annotate(n=Count("pk")).values_list(
        "attempt__user_id", "question_id", "response", "n"
    ):
        wrong[uid, qid, response_text(response)] += n
    wrongs = [WrongAnswerTally(user_id=uid, question_id=qid, text=text, n=n) for (uid, qid, text), n in wrong.items()]
    return list(tallies.values()), wrongs


def _write(user_ids: list[int] | None) -> None:
    """Rewrite these students' rows (everyone's for None); a refresh also carries the change into the
    sums of the classes they sit in (a rebuild redoes those after)."""
    classes = _classes_of(user_ids) if user_ids is not None else {}
    before = _contributions(_source_rows(user_ids)) if classes else None
    for model in SUMMARIES:
        _mine(model.objects, "user_id", user_ids).delete()
    tallies, wrongs = _questions(user_ids)
    students, quizzes = _students(user_ids), _quizzes(user_ids)
    bests = defaultdict(list)
    for q in quizzes:
        if q.best is not None:
            bests[q.user_id].append(q.best)
    for uid, mine in bests.items():
        students[uid].mean_best = statistics.fmean(mine)  # the roster's own arithmetic, for its sort and filter
    StudentProgress.objects.bulk_create(students.values(), batch_size=1000)
    QuizProgress.objects.bulk_create(quizzes, batch_size=1000)
    days = _days(user_ids)
    ActivityDay.objects.bulk_create(days, batch_size=1000)
    QuestionTally.objects.bulk_create(tallies, batch_size=1000)
    WrongAnswerTally.objects.bulk_create(wrongs, batch_size=1000)
    if classes:
        after = {QuestionTally: tallies, WrongAnswerTally: wrongs, ActivityDay: days, QuizProgress: quizzes,
                 StudentProgress: list(students.values())}  # fmt: skip
        _class_sums_add(_difference(before, _contributions(after)), classes)


def progress_refresh(*, user_ids: Iterable[int]) -> None:
    """Recompute these students' summaries from their history. Call it inside the transaction that
    changed the history, once per batch of changes (a regrade touching 1,000 students calls it once)."""
    ids = sorted({uid for uid in user_ids if uid is not None})
    if not ids:
        return
    with transaction.atomic():
        # Two refreshes of one student at once (a grade arriving while they hand in another test)
        # would both delete, then both insert: the second would break the unique constraints. Locking
        # the students' own rows first, in id order, makes the second wait and then see the first's work.
        list(get_user_model().objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
        _write(ids)


def progress_seen(*, user_ids: Iterable[int], at) -> None:
    """Move these students' "last seen" forward to `at`: all that starting an attempt changes in their
    summaries. A full refresh there cost 28 of the start's 34 queries, and a class starting a test
    together made one per student in the same second. Under the same lock on the students' rows as a
    refresh, so the two never write one student's row at once."""
    ids = sorted({uid for uid in user_ids if uid is not None})
    if not ids:
        return
    with transaction.atomic():
        list(get_user_model().objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
        rows = StudentProgress.objects.filter(user_id__in=ids)
        rows.filter(Q(last_activity__isnull=True) | Q(last_activity__lt=at)).update(last_activity=at)
        have = set(rows.values_list("user_id", flat=True))
        # A student with no row yet had no history: a rebuild gives them this row, zeros but "last seen".
        StudentProgress.objects.bulk_create(
            [StudentProgress(user_id=uid, last_activity=at) for uid in ids if uid not in have]
        )


def progress_rebuild() -> int:
    """Every summary, from scratch (the classes' sums too); the number of students with a progress row."""
    with transaction.atomic():
        _write(None)
        class_sums_rebuild()
    return StudentProgress.objects.count()


# ---------------------------------------------------------------- class sums
# A class's sums (ClassQuestionStats and the rows beside it) are its students' rows added up. They
# change when a student's rows change (a refresh adds the difference to each of the student's
# classes) and when the class's students change (the student's rows are added or taken away).


@dataclass(frozen=True)
class ClassSum:
    model: type
    source: type  # the per-student summary it adds up
    key: tuple[str, ...]  # besides the class
    values: tuple[str, ...]
    counts: tuple[str, ...]  # all zero: the key has nothing left and its row goes
    entry: Callable  # a source row -> (user id, key, values), or None where it adds nothing


CLASS_SUMS = (
    ClassSum(
        ClassQuestionStats, QuestionTally, ("question_id",), Moments.MOMENTS, ("answers",),
        lambda t: (t.user_id, (t.question_id,), [getattr(t, m) for m in Moments.MOMENTS]),
    ),
    ClassSum(
        ClassWrongAnswer, WrongAnswerTally, ("question_id", "text"), ("n",), ("n",),
        lambda w: (w.user_id, (w.question_id, w.text), [w.n]),
    ),
    ClassSum(
        ClassActivityDay, ActivityDay, ("day",), DayCounts.COUNTS, DayCounts.COUNTS,
        lambda d: (d.user_id, (d.day,), [getattr(d, c) for c in DayCounts.COUNTS]),
    ),
    ClassSum(
        ClassWaiting, StudentProgress, (), ("answers",), ("answers",),
        lambda p: (p.user_id, (), [p.answers_waiting]) if p.answers_waiting else None,
    ),
    ClassSum(
        ClassScoreBin, QuizProgress, ("quiz", "bin"), ("students",), ("students",),
        lambda q: None if q.best is None else (q.user_id, (q.quiz, bin_of(q.best)), [1]),
    ),
)  # fmt: skip

Contributions = list[dict[int, dict[tuple, list]]]  # per class sum: user id -> key -> values


def _source_rows(user_ids) -> dict[type, list]:
    """These students' summary rows (everyone's for None) that the class sums add up, as stored."""
    return {cs.source: list(_mine(cs.source.objects, "user_id", user_ids)) for cs in CLASS_SUMS}


def _entries(cs: ClassSum, rows):
    return (e for e in map(cs.entry, rows) if e is not None)


def _contributions(rows: dict[type, list]) -> Contributions:
    out = []
    for cs in CLASS_SUMS:
        mine: dict[int, dict[tuple, list]] = defaultdict(dict)
        for uid, key, values in _entries(cs, rows[cs.source]):
            mine[uid][key] = values
        out.append(mine)
    return out


def _difference(before: Contributions, after: Contributions) -> Contributions:
    """after - before, key by key."""
    out = []
    for old, new in zip(before, after, strict=True):
        diff: dict[int, dict[tuple, list]] = defaultdict(dict)
        for uid in old.keys() | new.keys():
            o, n = old.get(uid, {}), new.get(uid, {})
            for key in o.keys() | n.keys():
                a, b = o.get(key), n.get(key)
                if a == b:
                    continue
                a = a or [0] * len(b)
                b = b or [0] * len(a)
                diff[uid][key] = [y - x for x, y in zip(a, b, strict=True)]
        out.append(diff)
    return out


def _classes_of(user_ids=None, *, classroom_ids=None) -> dict[int, list[int]]:
    """The classes each of these users (everyone for None) sits in as a student, among these classes
    (all for None)."""
    memberships = _mine(ClassMembership.objects.filter(role=Role.STUDENT), "user_id", user_ids)
    if classroom_ids is not None:
        memberships = memberships.filter(classroom_id__in=classroom_ids)
    classes: dict[int, list[int]] = defaultdict(list)
    for uid, cid in memberships.values_list("user_id", "classroom_id"):
        classes[uid].append(cid)
    return classes


def _lock_classes(classroom_ids) -> None:
    """Lock these classes' rows, in id order, until the transaction ends: the writers of one class's
    sums take turns, so their additions add up rather than overwrite each other."""
    list(Classroom.objects.select_for_update().filter(pk__in=classroom_ids).order_by("pk").values_list("pk"))


def _add_up(rows, classes: dict[int, list[int]]) -> dict[tuple, list]:
    """(user id, key, values) rows added up per (class, *key), over the classes each user sits in."""
    sums: dict[tuple, list] = {}
    for uid, key, values in rows:
        for cid in classes.get(uid, ()):
            total = sums.get((cid, *key))
            sums[(cid, *key)] = list(values) if total is None else [t + v for t, v in zip(total, values, strict=True)]
    return sums


def _class_sums_add(deltas: Contributions, classes: dict[int, list[int]]) -> None:
    """Add each student's differences to the sums of their classes, under a lock on those classes."""
    per_class = [
        _add_up(((uid, key, v) for uid, keys in diff.items() for key, v in keys.items()), classes) for diff in deltas
    ]
    touched = sorted({k[0] for add in per_class for k in add})
    if not touched:
        return
    _lock_classes(touched)
    for cs, add in zip(CLASS_SUMS, per_class, strict=True):
        if add:
            _apply(cs, add)


def _new_row(cs: ClassSum, k: tuple, values: list):
    row = cs.model(classroom_id=k[0], **dict(zip(cs.key, k[1:], strict=True)))
    for name, v in zip(cs.values, values, strict=True):
        setattr(row, name, v)
    return row


def _empty(cs: ClassSum, row) -> bool:
    return not any(getattr(row, c) for c in cs.counts)


def _apply(cs: ClassSum, add: dict[tuple, list]) -> None:
    # The rows of these classes and keys (a few more at most: the filter is per field, not per pair).
    lookups = {"classroom_id__in": {k[0] for k in add}}
    for i, name in enumerate(cs.key, start=1):
        lookups[f"{name}__in"] = {k[i] for k in add}
    rows = {(r.classroom_id, *(getattr(r, f) for f in cs.key)): r for r in cs.model.objects.filter(**lookups)}
    changed, created, emptied = [], [], []
    for k, values in add.items():
        row = rows.get(k)
        if row is None:
            row = _new_row(cs, k, values)
            if not _empty(cs, row):
                created.append(row)
            continue
        for name, v in zip(cs.values, values, strict=True):
            setattr(row, name, getattr(row, name) + v)
        (emptied.append(row.pk) if _empty(cs, row) else changed.append(row))
    if emptied:
        cs.model.objects.filter(pk__in=emptied).delete()
    if changed:
        cs.model.objects.bulk_update(changed, cs.values, batch_size=500)
    if created:
        cs.model.objects.bulk_create(created, batch_size=1000)


def class_sums_rebuild(classroom_ids: Iterable[int] | None = None) -> None:
    """These classes' sums (every class's for None) from their students' rows."""
    with transaction.atomic():
        if classroom_ids is not None:
            classroom_ids = sorted(set(classroom_ids))
            _lock_classes(classroom_ids)
        classes = _classes_of(classroom_ids=classroom_ids)
        for cs in CLASS_SUMS:
            old = cs.model.objects.all()
            (old if classroom_ids is None else old.filter(classroom_id__in=classroom_ids)).delete()
            students = list(classes) if classroom_ids is not None else None
            sums = _add_up(_entries(cs, _mine(cs.source.objects, "user_id", students).iterator(2000)), classes)
            rows = (_new_row(cs, k, values) for k, values in sums.items())
            cs.model.objects.bulk_create([r for r in rows if not _empty(cs, r)], batch_size=1000)


def class_member_changed(*, classroom_id: int, user_id: int, joined: bool) -> None:
    """A student came into the class (their rows are added to its sums) or left it (taken away)."""
    rows = _contributions(_source_rows([user_id]))
    empty = [{} for _ in CLASS_SUMS]
    deltas = _difference(empty, rows) if joined else _difference(rows, empty)
    with transaction.atomic():
        _class_sums_add(deltas, {user_id: [classroom_id]})
