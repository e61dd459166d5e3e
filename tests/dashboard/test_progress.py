"""The class pages' summaries: after a realistic history written through the services, what the
services kept equals what a rebuild from scratch writes; and a change that bypasses them shows."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import ClassMembership
from accounts.services import classroom_create, classroom_join, co_instructor_add
from courses.models import GlossaryTerm, Section
from courses.services import flashcard_review, section_mark_read
from dashboard import progress, selectors
from dashboard.models import (
    ActivityDay,
    ClassActivityDay,
    ClassQuestionStats,
    ClassScoreBin,
    ClassWaiting,
    ClassWrongAnswer,
    QuestionTally,
    QuizProgress,
    StudentProgress,
    WrongAnswerTally,
)
from dashboard.progress import progress_rebuild
from mlworker.models import JobState, TrainingJob
from mlworker.services import job_cancel, job_claim, job_submit, jobs_reap
from quizzes import tasks
from quizzes.models import Answer, Attempt, Question
from quizzes.services import (
    answer_grade_free_text,
    answer_grading_failed,
    answer_review,
    answer_review_request,
    answers_review_many,
    answers_save,
    attempt_start,
    attempt_submit,
    question_regrade,
)
from tests.dashboard import reference
from tests.dashboard.support import job_end
from tests.quizzes.support import positions

pytestmark = pytest.mark.django_db

SUMMARIES = (StudentProgress, QuizProgress, ActivityDay, QuestionTally, WrongAnswerTally)
CLASS_SUMS = (ClassQuestionStats, ClassWrongAnswer, ClassActivityDay, ClassScoreBin, ClassWaiting)


def _rounded(row: tuple) -> tuple:
    # A class's float sums are kept by adding differences, a rebuild adds rows up in another order:
    # equal up to rounding, not to the last bit.
    return tuple(round(v, 9) if isinstance(v, float) else v for v in row)


def snapshot() -> dict[str, list[tuple]]:
    """Every summary row and class sum, without its id, in a stable order."""
    out = {}
    for model in SUMMARIES + CLASS_SUMS:
        fields = [f.attname for f in model._meta.concrete_fields if not (f.primary_key and f.attname == "id")]
        out[model.__name__] = sorted((_rounded(r) for r in model.objects.values_list(*fields)), key=repr)
    return out


def consistent() -> bool:
    """Whether the summaries the services kept equal a rebuild from scratch. The rebuild leaves them
    right, so each step of a history is checked on its own: a later step's refresh cannot hide an
    earlier step that forgot its own."""
    kept = snapshot()
    progress_rebuild()
    return snapshot() == kept


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch, fake_grader):
    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda args, **kw: None)


def _free_text_test(user, text):
    """A history test whose free-text answer says `text`; returns that answer, handed in and pending."""
    attempt = attempt_start(user=user, quiz="history", mode="test")
    answers_save(attempt=attempt, responses={positions(attempt)["t-free"]: {"text": text}})
    attempt_submit(attempt=attempt)
    return Answer.objects.get(attempt=attempt, question__slug="t-free")


def _history(classroom, instructor, student, student2, other_student, take_test, tiny_settings):
    section_mark_read(user=student, section=Section.objects.get(slug="history"))
    assert consistent()
    section_mark_read(user=student, section=Section.objects.get(slug="history"))  # twice: still one
    section_mark_read(user=student2, section=Section.objects.get(slug="machine-learning"))
    assert consistent()
    flashcard_review(user=student, term=GlossaryTerm.objects.first(), rating=3)
    assert consistent()
    take_test(student, tf_right=False)
    assert consistent()
    take_test(student)
    assert consistent()
    take_test(student2, single_right=False)
    assert consistent()
    attempt_start(user=student2, quiz="history", mode="practice")  # open: counts as seen, not as a test
    assert consistent()

    unsure = _free_text_test(student2, "UNSURE it memorises")
    assert consistent()
    answer_grade_free_text(answer_id=unsure.pk)  # to review
    assert consistent()
    broken = _free_text_test(student2, "BOOM")
    answer_grading_failed(answer_id=broken.pk)  # to review, no suggestion
    assert consistent()
    wrong = _free_text_test(student, "WRONG it is magic")
    answer_grade_free_text(answer_id=wrong.pk)
    assert consistent()
    waiting = selectors.classroom_get_for_instructor(user=instructor, classroom_id=classroom.pk).n_waiting
    assert waiting == 2 and StudentProgress.objects.get(user=student2).answers_waiting == 2
    answer_review_request(answer=Answer.objects.get(pk=wrong.pk), by=student, reason="It is not magic?")
    assert consistent()
    waiting = selectors.classroom_get_for_instructor(user=instructor, classroom_id=classroom.pk).n_waiting
    assert waiting == 3 and StudentProgress.objects.get(user=student).answers_waiting == 1

    answer_review(answer=Answer.objects.get(pk=broken.pk), by=instructor, score=0.25)
    assert consistent()
    answers_review_many(answer_ids=[unsure.pk], by=instructor)  # the grader's own 50%
    assert consistent()
    answer_review(answer=Answer.objects.get(pk=wrong.pk), by=instructor, score=1.0, comment="Fair enough.")
    assert consistent()

    tf = Question.objects.get(slug="t-ml-tf")
    Question.objects.filter(pk=tf.pk).update(answer=not tf.answer)  # the key corrected, as a reload would
    question_regrade(question=Question.objects.get(pk=tf.pk))
    assert consistent()

    job_end(job_submit(user=student, job_settings=tiny_settings), JobState.SUCCEEDED, error_rate=0.2)
    assert consistent()
    job_end(job_submit(user=student, job_settings=tiny_settings), JobState.FAILED, error_message="out of memory")
    assert consistent()
    job_cancel(job=job_submit(user=student2, job_settings=tiny_settings), by=student2)
    assert consistent()
    lost = job_submit(user=student2, job_settings=tiny_settings)
    job_claim(job_id=lost.pk, worker="gone")
    assert consistent()
    TrainingJob.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs_reap() == [lost.pk]
    assert consistent()

    # The classes' sums follow who is in them: a student with a history joins a second class (and
    # one is in it already), becomes an instructor there, leaves; a student with a history is deleted.
    second = classroom_create(by=instructor, name="Second group")
    take_test(other_student)
    classroom_join(user=other_student, code=second.code)
    assert consistent()
    classroom_join(user=student, code=second.code)
    classroom_join(user=other_student, code=classroom.code)
    assert consistent() and ClassQuestionStats.objects.filter(classroom=second).exists()
    co_instructor_add(classroom=second, by=instructor, username=instructor_too(student2, second).username)
    assert consistent()
    ClassMembership.objects.get(classroom=second, user=student).delete()
    assert consistent()
    take_test(other_student, single_right=False)  # in both classes now: both classes' sums move
    assert consistent()
    other_student.delete()
    assert consistent()
    classroom_join(user=student, code=second.code)
    second.delete()
    assert consistent() and not ClassQuestionStats.objects.filter(classroom_id=second.pk).exists()


def instructor_too(user, classroom):
    """A student of the class, made an instructor (as an admin would) so it can be added as a co-instructor."""
    from django.contrib.auth.models import Group

    from accounts.roles import INSTRUCTOR_GROUP

    classroom_join(user=user, code=classroom.code)
    user.groups.add(Group.objects.get_or_create(name=INSTRUCTOR_GROUP)[0])
    return user


def test_the_summaries_the_services_keep_equal_a_rebuild_from_scratch(
    classroom, instructor, student, student2, other_student, take_test, tiny_settings
):
    _history(classroom, instructor, student, student2, other_student, take_test, tiny_settings)
    kept = snapshot()
    me = StudentProgress.objects.get(user=student)
    assert (me.sections_read, me.cards_reviewed, me.tests, me.jobs, me.best_error) == (1, 1, 3, 2, 0.2)
    assert StudentProgress.objects.get(user=student2).answers_waiting == 0
    assert not StudentProgress.objects.filter(user_id=other_student.pk).exists()
    assert kept["QuestionTally"] and kept["WrongAnswerTally"] and kept["ActivityDay"]
    assert (
        kept["ClassQuestionStats"] and kept["ClassWrongAnswer"] and kept["ClassActivityDay"] and kept["ClassScoreBin"]
    )

    call_command("progress_rebuild", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert snapshot() == kept


def test_starting_a_test_only_moves_last_seen_and_equals_a_rebuild(
    classroom, student, take_test, django_assert_max_num_queries
):
    # A student with no history yet, then one with a handed-in test: the start writes their row's
    # "last seen" alone (no full refresh) and it stays what a rebuild writes.
    # open tests, the pool, the attempt, its answers, savepoints; the student's lock, last seen (update,
    # ids, new row): 11 here, where a full refresh made it 34
    with django_assert_max_num_queries(12):
        first = attempt_start(user=student, quiz="history", mode="test")
    assert StudentProgress.objects.get(user=student).last_activity == first.started_at
    assert consistent()
    attempt_submit(attempt=first)
    take_test(student)
    with django_assert_max_num_queries(12):
        second = attempt_start(user=student, quiz="history", mode="test")
    assert StudentProgress.objects.get(user=student).last_activity == second.started_at
    assert consistent()


def test_a_change_that_bypasses_the_services_differs_from_a_rebuild(classroom, student, take_test):
    take_test(student)
    kept = snapshot()
    # Not what the site does: an answer's score changed behind the services' back.
    Answer.objects.filter(attempt__user=student, question__slug="t-ml-tf").update(score=0.0, verdict="incorrect")
    Attempt.objects.filter(user=student).update(score=0.5)
    assert snapshot() == kept  # nothing refreshed the summaries...
    progress_rebuild()
    assert snapshot() != kept  # ...so the rebuild finds them stale


def test_the_roster_reads_a_student_with_no_history_as_zeros(classroom, instructor, student2):
    rows = {r.user.username: r for r in reference.dashboard_rows(classroom=classroom, deadlines=[])}
    quiet = rows["student2"]
    assert (quiet.sections_read, quiet.cards_reviewed, quiet.attempts, quiet.jobs) == (0, 0, 0, 0)
    assert quiet.best_error is None and quiet.last_activity is None
    assert not StudentProgress.objects.filter(user=student2).exists()


def test_deleting_and_editing_through_the_admin_keeps_the_summaries(
    client, classroom, student, student2, take_test, tiny_settings, django_user_model
):
    admin = django_user_model.objects.create_superuser(username="root", password="pw", email="root@example.org")
    client.force_login(admin)
    first, second = take_test(student), take_test(student, tf_right=False)
    third = take_test(student2)
    job = job_submit(user=student, job_settings=tiny_settings)
    job_end(job, JobState.SUCCEEDED, error_rate=0.3)
    read = section_mark_read(user=student2, section=Section.objects.get(slug="history"))
    assert consistent()

    delete = client.post(reverse("admin:quizzes_attempt_delete", args=[first.pk]), {"post": "yes"})
    assert delete.status_code == 302 and StudentProgress.objects.get(user=student).tests == 1
    assert consistent()
    many = {"action": "delete_selected", "_selected_action": [second.pk, third.pk], "post": "yes"}
    assert client.post(reverse("admin:quizzes_attempt_changelist"), many).status_code == 302
    assert consistent()
    assert client.post(reverse("admin:mlworker_trainingjob_delete", args=[job.pk]), {"post": "yes"}).status_code == 302
    assert not StudentProgress.objects.filter(user=student).exists()  # nothing of theirs is left
    assert consistent()
    assert (
        client.post(reverse("admin:courses_readingprogress_delete", args=[read.pk]), {"post": "yes"}).status_code == 302
    )
    assert consistent()


@pytest.mark.parametrize(
    "kind, response, words",
    [
        ("single", {"choice": "b"}, "Bee"),
        ("multiple", {"choices": ["a", "c"]}, "Ay; Sea"),
        ("true_false", {"value": False}, "False"),
        ("matching", {"pairs": {"0": 1, "1": 0}}, "loss → how wrong; metric → for people"),
        ("fill_blank", {"text": "fit_one_cycle"}, "fit_one_cycle"),
        ("single", None, "(no answer)"),
        ("single", {"choice": "z"}, "z"),  # an option since removed: its key, not nothing
    ],
)
def test_a_tallied_wrong_answer_reads_in_the_questions_words(kind, response, words):
    question = Question(
        type=kind,
        options=[{"key": "a", "text": "Ay"}, {"key": "b", "text": "Bee"}, {"key": "c", "text": "Sea"}],
        pairs=[{"left": "loss", "right": "for people"}, {"left": "metric", "right": "how wrong"}],
    )
    assert progress.response_words(question, progress.response_text(response)) == words
