"""Nothing lost: what a load run's students were told against what the database holds. Run at the end
of every load run (bench/load/run.py) and by the tests; needs Django set up on the run's database.

- Every answer is there with its last value: the fields of the last save the server acknowledged,
  read as the autosave view reads them (`response_from_post`); where a later save was sent and its
  answer never came back (the run stopped, the request failed), that later value may stand instead.
- Every handed-in test was handed in once and graded exactly once: handed in, no answer still
  waiting for the grader, each free-text answer sent to the grader once and graded, the score what
  the answers add up to, and the test counted once on the class pages.
- Every experiment and prediction of the class reached a final state.
- The class pages' summaries equal a rebuild from the history (no write of the class was lost).
- No request was answered with a server error (5xx) or went unanswered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

FINAL_JOB_STATES = ("succeeded", "failed", "cancelled")
FINAL_PREDICTION_STATES = ("succeeded", "failed")
SHOWN = 10  # problems listed of each kind; the rest are counted


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, kind: str, text: str) -> None:
        self.counts[f"problem: {kind}"] += 1
        if self.counts[f"problem: {kind}"] <= SHOWN:
            self.problems.append(f"{kind}: {text}")
        elif self.counts[f"problem: {kind}"] == SHOWN + 1:
            self.problems.append(f"{kind}: ... (more, see the counts)")

    def as_dict(self) -> dict:
        return {"ok": self.ok, "problems": self.problems, "counts": dict(self.counts)}


def _expected(attempt, question, position: int, fields: list) -> object:
    """The response the server stores for these posted fields (the autosave view's own reading)."""
    from django.http import QueryDict

    from quizzes.forms import response_from_post

    data = QueryDict(mutable=True)
    for name, value in fields:
        data.appendlist(name, value)
    return response_from_post(attempt, question, position, data)[0]


def check_answers(record: dict, report: CheckReport) -> None:
    from quizzes.models import Answer, Attempt

    ids = [int(a) for a in record.get("attempts", {})]
    attempts = {a.pk: a for a in Attempt.objects.filter(pk__in=ids).select_related("user")}
    answers = {
        (a.attempt_id, a.position): a for a in Answer.objects.filter(attempt_id__in=ids).select_related("question")
    }
    for key, seen in record.get("attempts", {}).items():
        attempt = attempts.get(int(key))
        if attempt is None:
            report.problem("attempt missing", f"attempt {key} of {seen['user']} is not in the database")
            continue
        if attempt.user.username != seen["user"]:
            report.problem(
                "attempt of another", f"attempt {key} belongs to {attempt.user.username}, not {seen['user']}"
            )
        for pos, slot in seen["answers"].items():
            answer = answers.get((attempt.pk, int(pos)))
            if answer is None:
                report.problem("answer missing", f"attempt {key}, question {pos}: no answer row")
                continue
            allowed = [] if slot["acked"] is None else [_expected(attempt, answer.question, int(pos), slot["acked"])]
            allowed += [_expected(attempt, answer.question, int(pos), f) for f in slot["unsure"]]
            if slot["acked"] is None:
                allowed.append(None)  # nothing acknowledged: never saved is possible too
            if not allowed:
                continue
            report.counts["answers checked"] += 1
            if slot["unsure"]:
                report.counts["answers with a save left unanswered"] += 1
            if answer.response not in allowed:
                report.problem(
                    "answer lost",
                    f"attempt {key}, question {pos}: the database has {answer.response!r}, the student was "
                    f"told {allowed[0]!r}",
                )


def check_tests(record: dict, report: CheckReport) -> None:
    from quizzes.models import Answer, Attempt, GradedBy, Verdict

    handed = [int(k) for k, a in record.get("attempts", {}).items() if a["handed_in"] is True]
    unsure = [int(k) for k, a in record.get("attempts", {}).items() if a["handed_in"] == "unsure"]
    open_states = (Attempt.State.IN_PROGRESS,)
    rows = Attempt.objects.filter(pk__in=handed + unsure)
    for attempt in rows:
        if attempt.state in open_states:
            if attempt.pk in handed:
                report.problem("hand-in lost", f"attempt {attempt.pk} was handed in but is still open")
            continue
        report.counts["tests handed in"] += 1
        answers = list(Answer.objects.filter(attempt=attempt).select_related("question"))
        for a in answers:
            if a.verdict == Verdict.PENDING:
                report.problem(
                    "grade missing", f"attempt {attempt.pk}, question {a.position}: still waiting for the grader"
                )
                continue
            if a.question.is_free_text and a.response:
                report.counts["free-text answers graded"] += 1
                if a.grading_round != 1:
                    report.problem(
                        "graded twice",
                        f"attempt {attempt.pk}, question {a.position}: sent to the grader {a.grading_round} times",
                    )
                if a.graded_at is None or not (a.graded_by == GradedBy.GRADER or a.needs_review):
                    report.problem("grade missing", f"attempt {attempt.pk}, question {a.position}: no grade")
            elif a.graded_at is None or a.graded_by != GradedBy.AUTO:
                report.problem("grade missing", f"attempt {attempt.pk}, question {a.position}: not marked")
        _check_score(attempt, answers, report)
    found = set(rows.values_list("pk", flat=True))
    for pk in set(handed) - found:
        report.problem("hand-in lost", f"attempt {pk} is not in the database")


def _check_score(attempt, answers, report: CheckReport) -> None:
    """The score and state attempt_score_refresh would give now: a grade that landed but was not
    added up would show here."""
    from quizzes.models import Attempt, Verdict, grade_stands_in_review

    counted = [
        a.score
        for a in answers
        if a.verdict != Verdict.PENDING
        and (not a.needs_review or grade_stands_in_review(a.verdict, a.needs_review, a.review_requested_at))
    ]
    score = min(1.0, sum(s or 0.0 for s in counted) / len(answers)) if answers else 0.0
    state = Attempt.State.SUBMITTED if len(counted) < len(answers) else Attempt.State.GRADED
    if attempt.score is None or abs(attempt.score - score) > 1e-9 or attempt.state != state:
        report.problem(
            "score wrong",
            f"attempt {attempt.pk}: stored {attempt.score} ({attempt.state}), its answers give {score} ({state})",
        )


def check_experiments(classroom_id: int, record: dict, report: CheckReport) -> None:
    """Every experiment and prediction of the class's members, not only those the client saw."""
    from accounts.models import ClassMembership
    from mlworker.models import Prediction, TrainingJob

    members = ClassMembership.objects.filter(classroom_id=classroom_id).values("user_id")
    for noun, model, final, accepted in (
        ("experiment", TrainingJob, FINAL_JOB_STATES, record.get("jobs", [])),
        ("prediction", Prediction, FINAL_PREDICTION_STATES, record.get("predictions", [])),
    ):
        rows = model.objects.filter(owner_id__in=members)
        states = Counter(rows.values_list("state", flat=True))
        report.counts.update({f"{noun}s {s}": n for s, n in states.items()})
        for pk, state in rows.exclude(state__in=final).values_list("pk", "state"):
            report.problem(f"{noun} not finished", f"{noun} {pk} is still {state}")
        for pk in sorted(set(accepted) - set(rows.values_list("pk", flat=True))):
            report.problem(f"{noun} lost", f"{noun} {pk} was accepted but is not in the database")


def _rounded(row: tuple) -> tuple:
    # Class sums are kept by adding differences, a rebuild adds rows in another order: equal up to rounding.
    return tuple(round(v, 9) if isinstance(v, float) else v for v in row)


def _summaries() -> dict[str, list[tuple]]:
    from dashboard.progress import CLASS_SUMS, SUMMARIES

    out = {}
    for model in SUMMARIES + tuple(cs.model for cs in CLASS_SUMS):
        fields = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        out[model.__name__] = sorted((_rounded(r) for r in model.objects.values_list(*fields)), key=repr)
    return out


class _RolledBack(Exception):
    pass


def check_summaries(report: CheckReport) -> None:
    """The class pages' summaries, as the services kept them under load, against a rebuild from the
    history (done in a transaction that is rolled back: the check changes nothing)."""
    from django.db import transaction

    from dashboard.progress import progress_rebuild

    kept = _summaries()
    try:
        with transaction.atomic():
            progress_rebuild()
            rebuilt = _summaries()
            raise _RolledBack
    except _RolledBack:
        pass
    for name in kept:
        if kept[name] != rebuilt[name]:
            a, b = set(kept[name]), set(rebuilt[name])
            report.problem(
                "summary wrong", f"{name}: {len(a - b)} rows differ from a rebuild ({sorted(a - b, key=repr)[:2]})"
            )
        report.counts["summary rows checked"] += len(kept[name])


def check_requests(requests: Iterable[tuple[str, int, str]], report: CheckReport) -> None:
    """(kind, status, error) of every request: none may be a 5xx or go unanswered."""
    for kind, status, error in requests:
        report.counts["requests"] += 1
        if status >= 500:
            report.problem("server error", f"{kind}: {status}")
        elif status == 0 or error:
            report.problem("no answer", f"{kind}: {error or 'no response'}")


def check_all(*, record: dict, requests: Iterable[tuple[str, int, str]], classroom_id: int) -> CheckReport:
    report = CheckReport()
    check_requests(requests, report)
    check_answers(record, report)
    check_tests(record, report)
    check_experiments(classroom_id, record, report)
    check_summaries(report)
    return report
