"""The instructors' pages on generated classes (dashboard/classgen.py): constant query budgets whatever the
class size, a streamed CSV with numbers checked by hand, sorting on one quiz's column, paging."""

import csv
import io
import random
import re
from datetime import UTC, timedelta

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.selectors import class_deadlines
from courses.models import Section
from courses.services import section_mark_read
from dashboard import questions, selectors, views
from dashboard.classgen import _responses, class_generate
from mlworker.models import JobState, TrainingJob
from mlworker.services import JobSettings, job_submit
from quizzes.models import Attempt
from quizzes.services import answers_save, attempt_start, attempt_submit
from tests.dashboard import reference
from tests.dashboard.support import job_end

pytestmark = pytest.mark.django_db

TINY = JobSettings(
    dataset="silhouettes-catdog", arch="efficientnet_lite0", pretrained=True, epochs=1, image_size=32,
    valid_pct=0.2, seed=1, batch_size=8, per_class=8,
)  # fmt: skip


def _jargon_test(user, *, right: int) -> Attempt:
    """Hand in a test of the jargon quiz (8 questions, none free text) with the first `right` answers right
    and the others left empty: the score is right / 8."""
    attempt = attempt_start(user=user, quiz="jargon", mode=Attempt.Mode.TEST)
    answers = list(attempt.answers.select_related("question").order_by("position"))
    rng = random.Random(0)
    answers_save(attempt=attempt, responses={a.position: _responses(a.question, rng)[0] for a in answers[:right]})
    attempt_submit(attempt=attempt)
    return attempt


def _student_links(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r"/students/(\d+)/", html)]


@pytest.fixture
def generated(bank, instructor):
    def make(n, **kw):
        gen = class_generate(instructor=instructor, n_students=n, **kw)
        services.deadline_set(
            classroom=gen.classroom, by=instructor, quiz="jargon", due_at=timezone.now() - timedelta(days=1)
        )
        return gen

    return make


def test_the_generator_writes_what_the_services_would(generated):
    gen = generated(4, attempts_each=5, jobs_each=3)
    attempts = Attempt.objects.filter(user__in=gen.students)
    assert attempts.count() == 20 and not attempts.exclude(state=Attempt.State.GRADED).exists()
    for a in attempts.prefetch_related("answers"):
        answers = list(a.answers.all())
        assert [x.position for x in answers] == list(range(1, len(a.question_ids) + 1))
        assert a.score == pytest.approx(sum(x.score for x in answers) / len(answers))
    assert TrainingJob.objects.filter(owner__in=gen.students).count() == 12
    assert len(gen.questions) == 60


@pytest.mark.parametrize("n", [3, 40])
def test_the_pages_cost_the_same_queries_for_3_or_40_students(
    client, instructor, generated, n, django_assert_num_queries
):
    gen = generated(n)
    cid = gen.classroom.pk
    client.force_login(instructor)
    roster = reverse("dashboard:class_dashboard", args=[cid])
    # django_session, auth_user, classroom (with its answers waiting), sections (quiz titles), deadlines,
    # their extensions, the filtered class counted, the page's students in order with their progress
    # rows, the page's quiz scores, the class's bins and days (for the charts)
    with django_assert_num_queries(11):
        page = client.get(roster + "?sort=-quiz:jargon:best&behind=60&page=2").content.decode()
    deadlines = class_deadlines(classroom=gen.classroom)
    behind = reference.dashboard_rows(
        classroom=gen.classroom, deadlines=deadlines, sort="-quiz:jargon:best", behind=0.6
    )
    assert behind and _student_links(page) == [r.user.pk for r in behind]  # one page: page 2 is its last
    # django_session, auth_user, classroom, the class's sums per question with the questions' fields,
    # its three most common wrong answers per question
    with django_assert_num_queries(5):
        page = client.get(reverse("dashboard:class_questions", args=[cid])).content.decode()
    answered = questions.class_question_stats(classroom=gen.classroom)
    assert answered and page.count('class="wrap question-text"') == len(answered)
    # django_session, auth_user, classroom, sections, deadlines, their extensions, roster, quiz scores;
    # the body is read inside the block, since a streamed response queries while it streams
    with django_assert_num_queries(8):
        response = client.get(reverse("dashboard:class_export", args=[cid]))
        body = b"".join(response.streaming_content).decode()
    assert isinstance(response, StreamingHttpResponse)
    assert sorted(line["username"] for line in csv.DictReader(io.StringIO(body))) == sorted(
        u.username for u in gen.students
    )


def test_the_csv_streams_one_row_per_student_with_the_right_numbers(client, instructor, generated, django_user_model):
    gen = generated(30)
    hand = django_user_model.objects.create_user(username="aaa-by-hand", email="hand@example.org")
    services.classroom_join(user=hand, code=gen.classroom.code)
    section_mark_read(user=hand, section=Section.objects.get(slug="history"))
    section_mark_read(user=hand, section=Section.objects.get(slug="jargon"))
    _jargon_test(hand, right=8)  # 100%
    _jargon_test(hand, right=2)  # 25%, the latest
    for error in (0.25, 0.125):
        job = job_submit(user=hand, job_settings=TINY)
        job_end(job, JobState.SUCCEEDED, error_rate=error)
    job_end(job_submit(user=hand, job_settings=TINY), JobState.FAILED)

    client.force_login(instructor)
    response = client.get(reverse("dashboard:class_export", args=[gen.classroom.pk]))
    assert isinstance(response, StreamingHttpResponse) and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 31 and len({r["username"] for r in rows}) == 31
    me = rows[0]  # sorted by name: "aaa-by-hand" comes before the generated "gen…"
    assert me["username"] == "aaa-by-hand" and me["email"] == "hand@example.org"
    assert (me["sections_read"], me["quiz_attempts"], me["jobs"]) == ("2", "2", "3")
    assert (me["jargon_best"], me["jargon_last"], me["history_best"]) == ("100", "25", "")
    assert me["best_error_rate"] == "0.1250" and me["missed_deadlines"] == ""
    assert me["last_activity_utc"] != ""


def test_the_csv_says_of_each_student_what_the_full_roster_says(client, instructor, generated, make_user):
    gen = generated(40, attempts_each=2)
    quiet = make_user("zz-quiet")  # no history at all: no progress row
    services.classroom_join(user=quiet, code=gen.classroom.code)
    odd = gen.students[3]
    odd.first_name, odd.last_name, odd.email = '+Ann, "the"', "=1+1", "@odd@example.org"
    odd.save()
    deadline = class_deadlines(classroom=gen.classroom)[0]  # jargon's, passed yesterday
    scores = reference.class_quiz_scores(classroom=gen.classroom)
    late = next(u for u in gen.students if scores.get(u.pk) and "jargon" not in scores[u.pk])
    services.extension_grant(deadline=deadline, by=instructor, student=late, due_at=timezone.now() + timedelta(days=2))
    quizzes = list(selectors.quiz_titles())
    deadlines = class_deadlines(classroom=gen.classroom)

    client.force_login(instructor)
    response = client.get(reverse("dashboard:class_export", args=[gen.classroom.pk]))
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    def pct(x):
        return "" if x is None else str(round(x * 100))

    def guard(text):
        return "'" + text if text[:1] in ("=", "+", "-", "@") else text

    expected = [[
        guard(r.user.username), guard(r.user.get_full_name()), guard(r.user.email),
        str(r.sections_read), str(r.cards_reviewed), str(r.attempts),
        *[pct(getattr(r.scores.get(q), which, None)) for q in quizzes for which in ("best", "last")],
        str(r.jobs), "" if r.best_error is None else f"{r.best_error:.4f}",
        r.last_activity.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if r.last_activity else "",
        " ".join(r.missed),
    ] for r in reference.dashboard_rows(classroom=gen.classroom, deadlines=deadlines)]  # fmt: skip
    assert lines[1:] == expected and len(expected) == 41
    assert lines[0][-4:] == ["jobs", "best_error_rate", "last_activity_utc", "missed_deadlines"]
    assert len(lines[0]) == len(expected[0])
    by_name = {line[0]: line for line in lines[1:]}
    assert by_name[odd.username][1:3] == ['\'+Ann, "the" =1+1', "'@odd@example.org"]
    assert by_name[late.username][-1] == "" and by_name["zz-quiet"][-1] == "jargon"
    assert by_name["zz-quiet"][3:6] == ["0", "0", "0"] and by_name["zz-quiet"][-2] == ""
    assert any(line[-1] == "jargon" for line in lines[1:41])  # generated students who missed it too


@pytest.fixture
def three_on_jargon(bank, instructor, make_user):
    """A: 100% then 0% on jargon; B: 50%; C: no jargon test (a history test instead)."""
    classroom = services.classroom_create(by=instructor, name="Sorting")
    a, b, c = (make_user(name) for name in ("c-ann", "b-bob", "a-cid"))
    for u in (a, b, c):
        services.classroom_join(user=u, code=classroom.code)
    _jargon_test(a, right=8)
    _jargon_test(a, right=0)
    _jargon_test(b, right=4)
    attempt_submit(attempt=attempt_start(user=c, quiz="history", mode=Attempt.Mode.TEST))
    return classroom, a, b, c


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("-quiz:jargon:best", "abc"),  # 100, 50, none
        ("quiz:jargon:best", "bac"),  # 50, 100, none: no score stays last
        ("-quiz:jargon:last", "bac"),  # 50, 0, none
        ("quiz:jargon:last", "abc"),  # 0, 50, none
        ("-quiz:history:best", "cba"),  # only C has one; the others by name
    ],
)
def test_the_roster_sorts_by_one_quizs_column_with_no_score_last(three_on_jargon, sort, expected):
    classroom, a, b, c = three_on_jargon
    names = {"a": a.username, "b": b.username, "c": c.username}
    rows = reference.dashboard_rows(classroom=classroom, deadlines=[], sort=sort)
    assert [r.user.username for r in rows] == [names[x] for x in expected]


def test_the_quiz_sort_holds_across_pages(client, instructor, three_on_jargon, monkeypatch):
    classroom, a, b, c = three_on_jargon
    monkeypatch.setattr(views, "ROSTER_PAGE_SIZE", 2)
    client.force_login(instructor)
    url = reverse("dashboard:class_dashboard", args=[classroom.pk]) + "?sort=quiz:jargon:best"
    first, second = client.get(url).content.decode(), client.get(url + "&page=2").content.decode()
    assert _student_links(first) == [b.pk, a.pk] and _student_links(second) == [c.pk]
    assert "Page 1 of 2" in first and "sort=quiz%3Ajargon%3Abest&amp;page=2" in first
    # The header's link for the sort in force turns it around.
    assert "?sort=-quiz%3Ajargon%3Abest" in first


def test_sorting_and_the_behind_filter_cover_every_page(client, instructor, generated, monkeypatch):
    gen = generated(40)
    monkeypatch.setattr(views, "ROSTER_PAGE_SIZE", 7)
    client.force_login(instructor)
    url = reverse("dashboard:class_dashboard", args=[gen.classroom.pk]) + "?sort=-quiz:chapter:last&behind=60"
    shown, page = [], 1
    while True:
        html = client.get(f"{url}&page={page}").content.decode()
        shown += _student_links(html)
        if 'rel="next"' not in html:
            break
        page += 1
    deadlines = class_deadlines(classroom=gen.classroom)
    expected = reference.dashboard_rows(
        classroom=gen.classroom, deadlines=deadlines, sort="-quiz:chapter:last", behind=0.6
    )
    assert shown == [r.user.pk for r in expected] and page == -(-len(expected) // 7)
    # Everyone missed the jargon deadline unless they handed in a jargon test, so all 40 are behind;
    # the chapter column runs from the highest latest score down, students with none last.
    assert len(shown) == 40
    lasts = [r.scores["chapter"].last for r in expected if "chapter" in r.scores]
    assert lasts == sorted(lasts, reverse=True) and len(lasts) < 40


SORT_KEYS = ["name", "read", "cards", "attempts", "score", "jobs", "error", "activity", "bogus"]
SORT_KEYS += [f"quiz:{q}:{w}" for q in ("jargon", "chapter", "history") for w in ("best", "last")]


def test_the_roster_pages_in_the_order_and_with_the_rows_of_the_full_roster(generated, instructor, make_user):
    gen = generated(40, attempts_each=2)
    quiet = make_user("zz-quiet")  # no history at all: no progress row
    services.classroom_join(user=quiet, code=gen.classroom.code)
    deadline = class_deadlines(classroom=gen.classroom)[0]  # jargon's, passed yesterday
    # An extension matters to a student with scores but no jargon test: behind at 0% only if it missed.
    scores = reference.class_quiz_scores(classroom=gen.classroom)
    late = next(u for u in gen.students if scores.get(u.pk) and "jargon" not in scores[u.pk])
    services.extension_grant(deadline=deadline, by=instructor, student=late, due_at=timezone.now() + timedelta(days=2))
    deadlines = class_deadlines(classroom=gen.classroom)
    now = timezone.now()
    for sort in SORT_KEYS + [f"-{s}" for s in SORT_KEYS]:
        for behind in (None, 0.0, 0.6):
            full = reference.dashboard_rows(
                classroom=gen.classroom, deadlines=deadlines, sort=sort, behind=behind, now=now
            )
            order = selectors.roster_order(
                classroom=gen.classroom, deadlines=deadlines, sort=sort, behind=behind, now=now
            )
            assert [values[0] for values in order] == [r.user.pk for r in full], (sort, behind)
    full = reference.dashboard_rows(classroom=gen.classroom, deadlines=deadlines, sort="-score", now=now)
    some = {r.user.pk for r in full[5:12]} | {quiet.pk}
    order = selectors.roster_order(classroom=gen.classroom, deadlines=deadlines, sort="-score", now=now)
    rows = selectors.roster_rows(deadlines=deadlines, page=[v for v in order if v[0] in some], now=now)
    assert rows == [r for r in full if r.user.pk in some] and len(rows) == 8
    assert any(r.missed for r in full) and not next(r for r in full if r.user.pk == late.pk).missed
    at_zero = selectors.roster_order(classroom=gen.classroom, deadlines=deadlines, behind=0.0, now=now)
    assert late.pk not in [v[0] for v in at_zero] and quiet.pk in [v[0] for v in at_zero]


def test_sorted_by_discrimination_questions_without_one_come_last_either_way(generated):
    gen = generated(12, attempts_each=3)
    counts = sorted({s.attempts for s in questions.class_question_stats(classroom=gen.classroom)})
    min_tests = counts[len(counts) // 2]  # about half the questions have fewer tests than this
    for sort in ("discrimination", "-discrimination"):
        ordered = questions.class_question_stats(classroom=gen.classroom, sort=sort, min_tests=min_tests)
        values = [s.discrimination for s in ordered]
        given = [v for v in values if v is not None]
        assert values == given + [None] * (len(values) - len(given)), sort
        assert given == sorted(given, reverse=sort.startswith("-")) and 0 < len(given) < len(values)


def test_the_histograms_bins_from_the_database_count_as_score_bins_does(generated):
    gen = generated(40, attempts_each=3)
    titles = selectors.quiz_titles()
    scores = reference.class_quiz_scores(classroom=gen.classroom)
    expected = {
        quiz: [b.count for b in reference.score_bins(bests)]
        for quiz, bests in reference.best_scores_by_quiz(scores, titles).items()
    }
    assert selectors.class_best_score_bins(classroom=gen.classroom, quizzes=titles) == expected
    assert len(expected) > 1 and list(expected) == [q for q in titles if q in expected]
