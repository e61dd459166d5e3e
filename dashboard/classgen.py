"""Make a whole class with a realistic history in a few bulk inserts: `manage.py seed_class` (to try
the class pages at scale), the scale benchmark (bench/class_scale.py) and its tests.

Calling the services for thousands of attempts and jobs would take minutes, so the rows are written
with bulk_create, shaped as the services write them: attempts handed in through `attempt_submit`
(answers marked by `quizzes.scoring.mark`, free text as the grader's task stores it, the attempt's
score as `attempt_score_refresh` computes it), and jobs as `job_submit`, `job_claim`, `job_finish`
and `job_cancel` leave them. Everything comes from one seeded random generator: same seed, same class.

The services also keep the class pages' summaries (dashboard.progress) as they write; bulk_create
bypasses them, so the generator ends by refreshing the generated students' summaries with the same
function the services call (`progress_refresh`), leaving them as the services would have.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import ClassMembership, Classroom, Role
from courses.models import ReadingProgress, Section
from dashboard.progress import progress_refresh
from mlworker.models import JobEpoch, JobState, TrainingJob
from quizzes.models import CHAPTER_QUIZ, Answer, Attempt, GradedBy, Question, QuestionType, Verdict
from quizzes.scoring import mark

PASSWORD = "pw-for-the-generated-class"
BATCH = 2000


def bank_ensure() -> None:
    """Load the real chapter (sections, glossary, question bank) when the database has none yet."""
    if Question.objects.exists():
        return
    from courses.services import course_load
    from quizzes.services import question_bank_load

    course_load()
    question_bank_load()


@dataclass
class GeneratedClass:
    classroom: Classroom
    students: list = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    quizzes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Graded:
    response: dict
    score: float
    verdict: str
    feedback: str
    graded_by: str
    confidence: float | None = None
    grader_result: dict | None = None


def _responses(q: Question, rng: random.Random) -> tuple[dict, dict]:
    """A right and a wrong response in the stored shapes (see quizzes.scoring)."""
    if q.type == QuestionType.SINGLE:
        wrong = [k for k in q.option_keys() if k not in q.correct_keys()]
        return {"choice": sorted(q.correct_keys())[0]}, {"choice": rng.choice(wrong)}
    if q.type == QuestionType.MULTIPLE:
        right = sorted(q.correct_keys())
        wrong_keys = [k for k in q.option_keys() if k not in q.correct_keys()]
        return {"choices": right}, {"choices": right[:-1] + wrong_keys[:1]}
    if q.type == QuestionType.TRUE_FALSE:
        return {"value": bool(q.answer)}, {"value": not q.answer}
    if q.type == QuestionType.NUMERIC:
        return {"text": str(q.answer)}, {"text": str(float(q.answer) * 2 + 7)}
    if q.type == QuestionType.FILL_BLANK:
        return {"text": str(q.answers[0])}, {"text": "no idea"}
    if q.type == QuestionType.MATCHING:
        n = len(q.pairs)
        swapped = {str(i): i for i in range(n)}
        swapped["0"], swapped["1"] = 1, 0
        return {"pairs": {str(i): i for i in range(n)}}, {"pairs": swapped}
    return {"text": q.reference_answer}, {"text": "It is when the learning rate is too high."}


def _graded(q: Question, response: dict, right: bool) -> _Graded:
    if q.type != QuestionType.FREE_TEXT:
        m = mark(q, response)
        return _Graded(response, m.score, m.verdict, m.feedback, GradedBy.AUTO)
    # What answer_grade_free_text stores for a confident grade (quizzes.services._grade_fields).
    score, verdict = (1.0, Verdict.CORRECT) if right else (0.0, Verdict.INCORRECT)
    feedback = "Covers the key points." if right else "This misses the key points."
    suggestion = {
        "score": score, "verdict": verdict, "confidence": 0.9, "covered": [right] * len(q.key_points),
        "contradicted": not right, "feedback": feedback,
    }  # fmt: skip
    return _Graded(response, score, verdict, feedback, GradedBy.GRADER, 0.9, suggestion)


def _marked_bank(questions: list[Question], rng: random.Random) -> dict[int, tuple[_Graded, _Graded]]:
    out = {}
    for q in questions:
        right, wrong = _responses(q, rng)
        out[q.pk] = (_graded(q, right, True), _graded(q, wrong, False))
    return out


def _quizzes(questions: list[Question]) -> dict[str, list[Question]]:
    """Every section quiz whose questions all lie in the pool, and the chapter quiz drawn from the pool."""
    by_section: dict[str, list[Question]] = {}
    for q in questions:
        by_section.setdefault(q.section.slug, []).append(q)
    active = Question.objects.filter(is_active=True).values_list("section__slug", flat=True)
    sizes: dict[str, int] = {}
    for slug in active:
        sizes[slug] = sizes.get(slug, 0) + 1
    quizzes = {slug: qs for slug, qs in by_section.items() if len(qs) == sizes[slug]}
    quizzes[CHAPTER_QUIZ] = questions
    return quizzes


def _shuffles(q: Question, rng: random.Random) -> list | None:
    if q.type in (QuestionType.SINGLE, QuestionType.MULTIPLE):
        keys = q.option_keys()
        return rng.sample(keys, len(keys))
    if q.type == QuestionType.MATCHING:
        return rng.sample(range(len(q.pairs)), len(q.pairs))
    return None


def class_generate(
    *,
    instructor,
    n_students: int,
    n_questions: int = 60,
    attempts_each: int = 5,
    jobs_each: int = 3,
    seed: int = 1,
    name: str = "Generated class",
    prefix: str = "gen",
    now: datetime | None = None,
) -> GeneratedClass:
    """A class taught by `instructor` with `n_students` students, each with `attempts_each` handed-in
    tests over the bank's first `n_questions` questions, `jobs_each` jobs in mixed states, and a few
    sections read. Needs the question bank loaded (see bank_ensure)."""
    rng = random.Random(seed)
    now = now or timezone.now()
    start = now - timedelta(days=30)
    User = get_user_model()

    classroom = Classroom.objects.create(name=name, code=f"G{uuid.uuid4().hex[:10].upper()}", created_by=instructor)
    ClassMembership.objects.create(classroom=classroom, user=instructor, role=Role.INSTRUCTOR)

    password = make_password(PASSWORD)
    students = User.objects.bulk_create(
        [User(username=f"{prefix}{i:05d}", email=f"{prefix}{i:05d}@example.org", first_name="Student",
              last_name=f"{i:05d}", password=password, date_joined=start)
         for i in range(n_students)],
        batch_size=BATCH,
    )  # fmt: skip
    group, _ = Group.objects.get_or_create(name="student")
    Through = User.groups.through
    Through.objects.bulk_create([Through(user_id=u.pk, group_id=group.pk) for u in students], batch_size=BATCH)
    ClassMembership.objects.bulk_create(
        [ClassMembership(classroom=classroom, user=u, role=Role.STUDENT) for u in students], batch_size=BATCH
    )

    questions = list(Question.objects.filter(is_active=True).select_related("section")[:n_questions])
    if not questions:
        raise RuntimeError("no questions: load the bank first (manage.py loadcourse, or bank_ensure())")
    quizzes = _quizzes(questions)
    marked = _marked_bank(questions, rng)
    chapter_size = min(settings.JOURNEY_CHAPTER_QUIZ_SIZE, len(questions))
    sections = list(Section.objects.order_by("order"))

    attempts, drawn, reads = [], [], []
    for u in students:
        ability = rng.uniform(0.2, 0.95)  # chance of a right answer
        for section in sections[: rng.randint(0, len(sections))]:
            reads.append(ReadingProgress(user=u, section=section))
        for _ in range(attempts_each):
            quiz = rng.choice(list(quizzes))
            pool = quizzes[quiz]
            picked = rng.sample(pool, chapter_size if quiz == CHAPTER_QUIZ else len(pool))
            started = start + timedelta(minutes=rng.randint(0, 29 * 24 * 60))
            graded = [marked[q.pk][0 if rng.random() < ability else 1] for q in picked]
            score = min(1.0, sum(g.score for g in graded) / len(graded))
            attempts.append(
                Attempt(
                    user=u, quiz=quiz, mode=Attempt.Mode.TEST, question_ids=[q.pk for q in picked],
                    shuffles={str(q.pk): s for q in picked if (s := _shuffles(q, rng)) is not None},
                    started_at=started, submitted_at=started + timedelta(minutes=len(picked)), score=score,
                    state=Attempt.State.GRADED,
                )
            )  # fmt: skip
            drawn.append(list(zip(picked, graded)))
    ReadingProgress.objects.bulk_create(reads, batch_size=BATCH)
    Attempt.objects.bulk_create(attempts, batch_size=BATCH)

    answers = []
    for attempt, pairs in zip(attempts, drawn):
        for position, (q, g) in enumerate(pairs, start=1):
            answers.append(
                Answer(
                    attempt_id=attempt.pk, question_id=q.pk, position=position, response=g.response,
                    saved_at=attempt.started_at, score=g.score, verdict=g.verdict, confidence=g.confidence,
                    graded_by=g.graded_by, graded_at=attempt.submitted_at, feedback=g.feedback,
                    grader_result=g.grader_result, grading_round=1 if g.graded_by == GradedBy.GRADER else 0,
                    grading_queued_at=attempt.submitted_at if g.graded_by == GradedBy.GRADER else None,
                )
            )  # fmt: skip
    Answer.objects.bulk_create(answers, batch_size=BATCH)

    _jobs(students, jobs_each, rng, start)
    # The services refresh a student's summaries as they write; rows written in bulk need it done here.
    progress_refresh(user_ids=[u.pk for u in students])
    return GeneratedClass(classroom=classroom, students=students, questions=questions, quizzes=list(quizzes))


# States of a class's jobs: mostly finished, a few failed or cancelled, one in ten still live.
JOB_STATES = [JobState.SUCCEEDED] * 6 + [JobState.FAILED] * 2 + [JobState.CANCELLED, JobState.QUEUED]
MSG_FAILED = "The job ran out of memory. Try a smaller image size or batch size."


def _jobs(students, jobs_each: int, rng: random.Random, start: datetime) -> None:
    jobs, stamps = [], []
    for u in students:
        live = 0
        for _ in range(jobs_each):
            state = rng.choice(JOB_STATES)
            if state == JobState.QUEUED:
                live += 1
                # job_submit allows JOURNEY_MAX_ACTIVE_JOBS live jobs at once; a second one runs.
                state = JobState.QUEUED if live == 1 else JobState.RUNNING
            created = start + timedelta(minutes=rng.randint(0, 29 * 24 * 60))
            began, ended = created + timedelta(seconds=2), created + timedelta(seconds=30)
            job = TrainingJob(
                owner=u, dataset="silhouettes-catdog", arch="efficientnet_lite0", pretrained=rng.random() < 0.8,
                epochs=1, image_size=rng.choice([64, 128]), valid_pct=0.2, seed=42, batch_size=32, state=state,
                dispatched_at=created,
            )  # fmt: skip
            if state != JobState.QUEUED:
                job.attempts, job.run_token, job.worker = 1, uuid.uuid4().hex, "gpu@generated"
                job.started_at, job.heartbeat_at = began, ended
            if state == JobState.SUCCEEDED:
                error = round(rng.uniform(0.05, 0.4), 4)
                job.progress, job.phase, job.device, job.finished_at = 1.0, "done", "cpu", ended
                job.error_rate, job.accuracy, job.seconds = error, round(1 - error, 4), 28.0
                job.classes, job.n_train, job.n_valid = ["False", "True"], 1600, 400
                job.confusion = [[170, 30], [int(400 * error) - 30, 230 - int(400 * error)]]
            elif state == JobState.FAILED:
                job.finished_at, job.error_message = ended, MSG_FAILED
            elif state == JobState.CANCELLED:
                job.finished_at, job.cancel_requested, job.phase = ended, True, "cancelled"
            elif state == JobState.RUNNING:
                job.phase, job.total_epochs, job.progress = "whole", 2, 0.4
            jobs.append(job)
            stamps.append(created)
    TrainingJob.objects.bulk_create(jobs, batch_size=BATCH)
    # created_at is auto_now_add, which bulk_create sets to now: spread the jobs over the month.
    for job, created in zip(jobs, stamps):
        job.created_at = created
    TrainingJob.objects.bulk_update(jobs, ["created_at"], batch_size=500)
    epochs = []
    for job in jobs:
        if job.state == JobState.SUCCEEDED:
            for n, phase in enumerate(["head", "whole"]):
                err = job.error_rate + (0.05 if n == 0 else 0.0)
                epochs.append(
                    JobEpoch(job=job, phase=phase, epoch=n, train_loss=0.6 - 0.1 * n, valid_loss=0.5 - 0.1 * n,
                             error_rate=err, accuracy=1 - err, seconds=14.0)
                )  # fmt: skip
    JobEpoch.objects.bulk_create(epochs, batch_size=BATCH)
