"""The instructors' dashboard: roster numbers, its query budget, filters, the student page, questions, jobs, CSV."""

import csv
import io
import statistics
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.selectors import class_deadlines
from courses.models import GlossaryTerm, Section
from courses.services import flashcard_review, section_mark_read
from dashboard import questions
from mlworker.models import JobState, TrainingJob
from mlworker.services import job_submit
from quizzes.models import Question
from tests.dashboard import reference
from tests.dashboard.support import job_end

pytestmark = pytest.mark.django_db


def _busy_student(make_user, classroom, take_test, tiny_settings, name):
    user = make_user(name)
    services.classroom_join(user=user, code=classroom.code)
    section_mark_read(user=user, section=Section.objects.first())
    flashcard_review(user=user, term=GlossaryTerm.objects.first(), rating=3)
    take_test(user, tf_right=False)
    job = job_submit(user=user, job_settings=tiny_settings)
    job_end(job, JobState.SUCCEEDED, error_rate=0.125)
    return user


def test_the_roster_counts_what_each_student_did(classroom, student, student2, take_test, tiny_settings):
    section_mark_read(user=student, section=Section.objects.get(slug="history"))
    section_mark_read(user=student, section=Section.objects.get(slug="machine-learning"))
    flashcard_review(user=student, term=GlossaryTerm.objects.first(), rating=3)
    take_test(student, tf_right=False)  # 50%
    take_test(student)  # 100%, and the latest
    job = job_submit(user=student, job_settings=tiny_settings)
    job_end(job, JobState.SUCCEEDED, error_rate=0.05)
    rows = {r.user.username: r for r in reference.dashboard_rows(classroom=classroom, deadlines=[])}
    me = rows["student"]
    assert (me.sections_read, me.cards_reviewed, me.attempts, me.jobs) == (2, 1, 2, 1)
    assert me.best_error == 0.05 and me.last_activity is not None
    assert (me.scores["machine-learning"].best, me.scores["machine-learning"].last) == (1.0, 1.0)
    assert rows["student2"].attempts == 0 and rows["student2"].last_activity is None


@pytest.mark.parametrize("n", [3, 30])
def test_the_dashboard_costs_the_same_queries_for_3_or_30_students(
    client, instructor, make_user, take_test, tiny_settings, django_assert_num_queries, n
):
    classroom = services.classroom_create(by=instructor, name="Big")
    for i in range(n):
        _busy_student(make_user, classroom, take_test, tiny_settings, f"s{i:02d}")
    services.deadline_set(classroom=classroom, by=instructor, quiz="chapter", due_at=timezone.now())
    client.force_login(instructor)
    url = reverse("dashboard:class_dashboard", args=[classroom.pk])
    # django_session, auth_user, classroom (with its answers waiting), sections (quiz titles), deadlines,
    # their extensions, the filtered class counted, the page's students in order with their progress
    # rows, the page's quiz scores, the class's bins and days (for the charts)
    with django_assert_num_queries(11):
        response = client.get(url + "?sort=-activity&behind=50")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="behind"') == n  # everyone missed the chapter deadline
    # Every column's sort link keeps the filter.
    assert 'href="?sort=-jobs&amp;behind=50"' in html and 'href="?sort=-quiz%3Achapter%3Abest&amp;behind=50"' in html


def test_behind_keeps_low_scores_and_missed_deadlines(classroom, instructor, student, student2, take_test):
    take_test(student)  # 100%
    take_test(student2, single_right=False, tf_right=False)  # 0%
    rows = reference.dashboard_rows(classroom=classroom, deadlines=[], behind=0.5)
    assert [r.user.username for r in rows] == ["student2"]
    deadline = services.deadline_set(
        classroom=classroom, by=instructor, quiz="history", due_at=timezone.now() - timedelta(hours=1)
    )
    services.extension_grant(
        deadline=deadline, by=instructor, student=student2, due_at=timezone.now() + timedelta(days=1)
    )
    rows = reference.dashboard_rows(classroom=classroom, deadlines=class_deadlines(classroom=classroom))
    assert {r.user.username: r.missed for r in rows} == {"student": ["history"], "student2": []}


def test_the_roster_sorts_by_the_column_asked_for(classroom, student, student2, take_test):
    take_test(student2)
    by_attempts = reference.dashboard_rows(classroom=classroom, deadlines=[], sort="-attempts")
    assert [r.user.username for r in by_attempts] == ["student2", "student"]
    by_name = reference.dashboard_rows(classroom=classroom, deadlines=[], sort="name")
    assert [r.user.username for r in by_name] == ["student", "student2"]


def test_the_student_page_links_to_the_attempt_review_the_instructor_may_open(
    client, classroom, instructor, student, take_test
):
    attempt = take_test(student)
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_student", args=[classroom.pk, student.pk])).content.decode()
    review = reverse("quizzes:review", args=[attempt.pk])
    assert review in page
    assert client.get(review).status_code == 200


def test_an_open_attempt_stays_hidden_from_the_instructor(client, classroom, instructor, student, mini_bank):
    from quizzes.services import attempt_start

    attempt = attempt_start(user=student, quiz="machine-learning", mode="test")
    client.force_login(instructor)
    for name in ("review", "status", "attempt"):
        assert client.get(reverse(f"quizzes:{name}", args=[attempt.pk])).status_code == 404
    assert client.post(reverse("quizzes:submit", args=[attempt.pk])).status_code == 404


def _score_and_rest(question_id):
    """(score on the question, summed score of the rest of its test) for each handed-in test with it."""
    from quizzes.models import Answer

    pairs = []
    for answer in Answer.objects.filter(question_id=question_id, attempt__mode="test").select_related("attempt"):
        others = answer.attempt.answers.exclude(pk=answer.pk)
        pairs.append((answer.score or 0.0, sum(a.score or 0.0 for a in others)))
    return pairs


def test_question_stats_give_facility_discrimination_and_wrong_answers(
    client, classroom, instructor, make_user, take_test
):
    users = []
    for i in range(6):
        u = make_user(f"q{i}")
        services.classroom_join(user=u, code=classroom.code)
        users.append(u)
    # Top two get both right; middle two get the single right only; bottom two get both wrong.
    for u in users[:2]:
        take_test(u)
    for u in users[2:4]:
        take_test(u, tf_right=False)
    for u in users[4:]:
        take_test(u, single_right=False, tf_right=False)
    stats = {s.slug: s for s in questions.class_question_stats(classroom=classroom, min_tests=6)}
    single, tf = stats["t-ml-single"], stats["t-ml-tf"]
    assert single.attempts == 6 and single.facility == pytest.approx(4 / 6)
    assert tf.facility == pytest.approx(2 / 6)
    # Moodle's index, worked out here from the answers themselves: the correlation between a test's
    # score on the question and its score on the rest of the test.
    for s in (single, tf):
        pairs = _score_and_rest(s.question_id)
        assert len(pairs) == 6
        assert s.discrimination == pytest.approx(statistics.correlation(*zip(*pairs)))
    assert single.discrimination > 0 and tf.discrimination > 0  # both separate strong from weak
    # Six tests are fewer than the page trusts: it says so instead of giving a number.
    assert questions.DISCRIMINATION_MIN_TESTS > 6
    assert all(s.discrimination is None for s in questions.class_question_stats(classroom=classroom))
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_questions", args=[classroom.pk])).content.decode()
    assert page.count(">too few tests</span>") == 2
    # Wrong answers read as the student saw them: option b's text, not "b".
    option_b = next(o["text"] for o in Question.objects.get(pk=single.question_id).options if o["key"] == "b")
    assert single.wrong == [(option_b, 2)] and tf.wrong == [("False", 4)]
    ordered = questions.class_question_stats(classroom=classroom, sort="facility")
    assert [s.slug for s in ordered] == ["t-ml-tf", "t-ml-single"]


def test_the_instructor_cancels_a_students_stuck_job(client, classroom, instructor, student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_jobs", args=[classroom.pk])).content.decode()
    assert f"#{job.pk}" in page
    response = client.post(reverse("dashboard:class_job_cancel", args=[classroom.pk, job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_an_instructors_cancel_says_who_and_when_to_the_student_and_the_instructor(
    client, classroom, instructor, student, tiny_settings
):
    job = job_submit(user=student, job_settings=tiny_settings)
    at = datetime(2025, 12, 2, 14, 5, tzinfo=UTC)
    client.force_login(instructor)
    with mock.patch("django.utils.timezone.now", return_value=at):
        done = client.post(reverse("dashboard:class_job_cancel", args=[classroom.pk, job.pk]), follow=True)
    assert f"You cancelled experiment #{job.pk} of student." in done.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED and job.cancelled_by == instructor and job.cancelled_at == at

    def note():
        response = client.get(reverse("mlworker:job", args=[job.pk]))
        assert response.status_code == 200, response.status_code
        return response.content.decode()

    assert "You cancelled it on Dec 2, 14:05." in note()
    client.force_login(student)
    assert "teacher, an instructor of your class, cancelled it on Dec 2, 14:05." in note()


def test_the_instructor_reads_a_students_job_but_cannot_cancel_it_from_the_job_page(
    client, classroom, instructor, student, tiny_settings
):
    job = job_submit(user=student, job_settings=tiny_settings)
    client.force_login(instructor)
    page = client.get(reverse("mlworker:job", args=[job.pk]))
    assert page.status_code == 200 and reverse("mlworker:cancel", args=[job.pk]) not in page.content.decode()
    assert client.post(reverse("mlworker:cancel", args=[job.pk])).status_code == 404
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


def test_the_csv_has_one_row_per_student_and_streams(client, classroom, instructor, student, take_test):
    take_test(student)
    client.force_login(instructor)
    response = client.get(reverse("dashboard:class_export", args=[classroom.pk]))
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["username"] for r in rows] == ["student", "student2"]
    assert rows[0]["quiz_attempts"] == "1" and rows[0]["machine-learning_best"] == "100"
    assert rows[1]["machine-learning_best"] == ""


def test_the_csv_goes_out_in_chunks_of_rows_as_they_are_written(
    client, classroom, instructor, student, take_test, monkeypatch
):
    monkeypatch.setattr("dashboard.export.BATCH", 1)
    take_test(student)
    client.force_login(instructor)
    chunks = list(client.get(reverse("dashboard:class_export", args=[classroom.pk])).streaming_content)
    assert len(chunks) == 3  # the head before any row is read, then one student's row a chunk
    assert chunks[0].decode().startswith("username,name,email,") and chunks[0].decode().count("\r\n") == 1
    assert chunks[1].decode().startswith("student,") and chunks[2].decode().startswith("student2,")


def test_the_csv_never_hands_a_spreadsheet_a_formula(client, classroom, instructor, student):
    student.first_name, student.last_name = '=HYPERLINK("http://evil.example")', "@SUM(A1)"
    student.save()
    client.force_login(instructor)
    body = b"".join(client.get(reverse("dashboard:class_export", args=[classroom.pk])).streaming_content).decode()
    row = next(r for r in csv.DictReader(io.StringIO(body)) if r["username"] == "student")
    assert row["name"] == '\'=HYPERLINK("http://evil.example") @SUM(A1)'


def test_the_roster_marks_a_missed_deadline_and_links_each_student(client, classroom, instructor, student):
    services.deadline_set(classroom=classroom, by=instructor, quiz="chapter", due_at=timezone.now())
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_dashboard", args=[classroom.pk])).content.decode()
    link = reverse("dashboard:class_student", args=[classroom.pk, student.pk])
    assert f'<th scope="row"><a href="{link}">student</a> <span class="tag bad" title="Missed: chapter">' in page
    assert page.count('<tr class="behind">') == 2 and "<td>never</td>" in page


def test_my_progress_shows_scores_and_coming_deadlines(client, classroom, instructor, student, take_test):
    take_test(student)
    services.deadline_set(classroom=classroom, by=instructor, quiz="history", due_at=timezone.now() + timedelta(days=2))
    client.force_login(student)
    page = client.get(reverse("dashboard:me")).content.decode()
    assert "Neural networks: a short history" in page and "Monday group" in page
    assert "100%" in page


def test_the_instructor_sees_top_loss_images_but_not_the_model_file(
    client, classroom, instructor, other_instructor, student, tiny_settings
):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    job = job_submit(user=student, job_settings=tiny_settings)
    path = default_storage.save(f"tests/top-loss-{job.pk}.png", ContentFile(b"png"))
    model = default_storage.save(f"tests/model-{job.pk}.pkl", ContentFile(b"pkl"))
    TrainingJob.objects.filter(pk=job.pk).update(
        state=JobState.SUCCEEDED, top_losses=[{"image_path": path}], model_file=model
    )
    client.force_login(instructor)
    assert client.get(reverse("mlworker:top_loss", args=[job.pk, 0])).status_code == 200
    assert client.get(reverse("mlworker:model", args=[job.pk])).status_code == 404
    client.force_login(other_instructor)
    assert client.get(reverse("mlworker:top_loss", args=[job.pk, 0])).status_code == 404


@pytest.mark.parametrize("n", [3, 12])
def test_the_questions_and_jobs_pages_cost_the_same_queries_whatever_the_class_size(
    client, instructor, make_user, take_test, tiny_settings, django_assert_num_queries, n
):
    classroom = services.classroom_create(by=instructor, name="Big")
    for i in range(n):
        _busy_student(make_user, classroom, take_test, tiny_settings, f"s{i:02d}")
    client.force_login(instructor)
    # django_session, auth_user, classroom, the class's sums per question with the questions' fields,
    # its three most common wrong answers per question
    with django_assert_num_queries(5):
        page = client.get(reverse("dashboard:class_questions", args=[classroom.pk])).content.decode()
    # Everyone got the first question right and the true-or-false one wrong, answering "False".
    assert "<code>t-ml-single</code>" in page and "<code>t-ml-tf</code>" in page
    assert page.count(f"<td>{n}</td>") == 2 and f'False <span class="muted">×{n}</span>' in page
    # django_session, auth_user, classroom, the shown jobs counted, their page with owners, the class's
    # running jobs, GPU workers alive, the jobs they run, jobs waiting in the queue, the error rates
    with django_assert_num_queries(10):
        page = client.get(reverse("dashboard:class_jobs", args=[classroom.pk])).content.decode()
    assert page.count('<span class="state state-succeeded">') == n  # a row per experiment
    assert page.count('class="dot job"') == n  # and a dot per experiment in the chart


def test_the_class_jobs_page_pages_and_filters_by_state(client, instructor, make_user, tiny_settings, monkeypatch):
    from dashboard import views

    monkeypatch.setattr(views, "JOBS_PAGE_SIZE", 2)
    classroom = services.classroom_create(by=instructor, name="Jobs")
    owner = make_user("runner")
    services.classroom_join(user=owner, code=classroom.code)
    done = []
    for _ in range(3):  # one at a time: a student may have only so many waiting
        done.append(job_submit(user=owner, job_settings=tiny_settings))
        job_end(done[-1], JobState.SUCCEEDED, error_rate=0.25)
    failed = job_submit(user=owner, job_settings=tiny_settings)
    job_end(failed, JobState.FAILED, error_message="out of memory")
    client.force_login(instructor)
    url = reverse("dashboard:class_jobs", args=[classroom.pk])
    first = client.get(url).content.decode()
    assert "Page 1 of 2" in first and f"#{failed.pk}<" in first  # newest first
    assert f"#{done[0].pk}<" not in first and f"#{done[0].pk}<" in client.get(url + "?page=2").content.decode()
    only_failed = client.get(url + "?show=failed").content.decode()
    assert f"#{failed.pk}<" in only_failed and f"#{done[2].pk}<" not in only_failed and "Page 1 of" not in only_failed
    # The chart still counts every experiment that succeeded, whatever the table shows.
    assert only_failed.count('class="dot job"') == 3
    assert "No experiment of this class in" in client.get(url + "?show=cancelled").content.decode()
    assert client.get(url + "?show=bogus").status_code == 200


def test_the_behind_filter_takes_its_threshold_from_the_url(
    client, classroom, instructor, student, student2, take_test
):
    take_test(student, tf_right=False)  # 50%
    take_test(student2)  # 100%
    client.force_login(instructor)
    url = reverse("dashboard:class_dashboard", args=[classroom.pk])
    at_60 = client.get(url + "?behind=60").content.decode()
    assert f"/students/{student.pk}/" in at_60 and f"/students/{student2.pk}/" not in at_60
    at_40 = client.get(url + "?behind=40").content.decode()
    assert "Nobody is behind" in at_40


def test_the_class_pages_name_an_uploaded_data_set_by_its_name(client, classroom, instructor, student, tiny_settings):
    job = job_submit(user=student, job_settings=tiny_settings)
    job_end(job, JobState.SUCCEEDED, error_rate=0.25)
    TrainingJob.objects.filter(pk=job.pk).update(dataset="user-99", dataset_name="shapes")  # as an upload's job
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_jobs", args=[classroom.pk])).content.decode()
    assert "user-99" not in page
    assert ", shapes, " in page and "shapes: " in page  # the row's settings, the error chart's strip
    timeline = client.get(reverse("dashboard:class_student", args=[classroom.pk, student.pk])).content.decode()
    assert " on shapes (" in timeline and "user-99" not in timeline


@pytest.mark.parametrize(
    "markdown, plain",
    [
        ("What is `valid_pct` for?", "What is valid_pct for?"),
        ("The *PDP* work, in **two** volumes", "The PDP work, in two volumes"),
        ("See [the glossary](/glossary/#loss) first.\n\nThen answer.", "See the glossary first. Then answer."),
    ],
)  # fmt: skip
def test_a_prompt_reads_as_one_line_of_plain_text(markdown, plain):
    assert questions.plain_text(markdown) == plain
