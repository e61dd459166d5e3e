"""The quiz pages: who may open what, what the page source gives away before hand-in (nothing),
saving with and without the script, bad and hostile input, and bounded queries."""

import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from quizzes.models import Answer, Attempt
from quizzes.services import answers_save, attempt_start, attempt_submit
from tests.quizzes.support import all_right, fields_for, positions

pytestmark = pytest.mark.django_db

SECRETS = [
    "correct", "EXPLAIN-", "zebra_learner", "photosynthesis", "4271", "REFERENCE-SENTINEL", "KEYPOINT-SENTINEL",
    "MISCONCEPTION-SENTINEL",
]  # fmt: skip


class Page(HTMLParser):
    """The form controls, labels, fieldsets and legends of a page."""

    def __init__(self, html):
        super().__init__()
        self.controls, self.labels, self.fieldsets, self.legends = [], set(), 0, 0
        self.options, self._select = {}, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.controls.append(attrs)
        if tag == "select":
            self._select = attrs["name"]
            self.options[self._select] = []
        if tag == "option" and self._select:
            self.options[self._select].append([attrs.get("value"), ""])
        if tag == "label" and "for" in attrs:
            self.labels.add(attrs["for"])
        self.fieldsets += tag == "fieldset"
        self.legends += tag == "legend"

    def handle_data(self, data):
        if self._select and self.options[self._select]:
            self.options[self._select][-1][1] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


@pytest.fixture
def attempt(mini_bank, student):
    return attempt_start(user=student, quiz="history", mode="test")


@pytest.fixture
def practice(mini_bank, student):
    return attempt_start(user=student, quiz="history", mode="practice")


def url(name, attempt, *args):
    return reverse(f"quizzes:{name}", args=[attempt.pk, *args])


ATTEMPT_URLS = {
    "attempt": ("get", "attempt", ()),
    "save": ("post", "save", ()),
    "autosave": ("post", "autosave", (1,)),
    "submit": ("post", "submit", ()),
    "review": ("get", "review", ()),
    "status": ("get", "status", ()),
}


# ---------------------------------------------------------------- who may open what


@pytest.mark.parametrize("name", list(ATTEMPT_URLS))
@pytest.mark.parametrize("who", ["student2", "instructor", "outsider"])
def test_other_users_get_404_for_a_students_attempt(client, request, attempt, mini_bank, name, who):
    client.force_login(request.getfixturevalue(who))
    method, view, args = ATTEMPT_URLS[name]
    data = {**fields_for(attempt, mini_bank["t-single"], "a"), "action": "submit"} if method == "post" else {}
    assert getattr(client, method)(url(view, attempt, *args), data).status_code == 404
    attempt.refresh_from_db()
    assert attempt.state == "in_progress"
    assert not Answer.objects.filter(attempt=attempt).exclude(response=None).exists()


@pytest.mark.parametrize("name", list(ATTEMPT_URLS))
def test_anonymous_visitors_are_sent_to_log_in(client, attempt, name):
    method, view, args = ATTEMPT_URLS[name]
    response = getattr(client, method)(url(view, attempt, *args))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "path",
    [reverse("quizzes:section", args=["history"]), reverse("quizzes:review_queue"), "/quizzes/review/answers/1/"],
)
def test_anonymous_visitors_cannot_start_or_review(client, mini_bank, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_quiz_list_is_public_in_chapter_order_and_an_unknown_quiz_is_404(client, student, mini_bank):
    from courses.models import Section

    Section.objects.create(slug="prelude", title="A prelude", order=0, body_markdown="")  # added last, listed first
    page = client.get(reverse("quizzes:index")).content.decode()
    assert "Log in" in page
    titles = ["A prelude", "Neural networks: a short history", "What is machine learning?", "The whole chapter"]
    assert [page.index(t) for t in titles] == sorted(page.index(t) for t in titles)
    client.force_login(student)
    assert client.get(reverse("quizzes:section", args=["no-such-section"])).status_code == 404


# ---------------------------------------------------------------- starting


def test_starting_a_timed_test_from_the_start_page(client, student, mini_bank, settings):
    settings.JOURNEY_TEST_SECONDS_PER_QUESTION = 30
    client.force_login(student)
    page = client.get(reverse("quizzes:section", args=["history"])).content.decode()
    assert "Time me: 4 minutes" in page and "8 questions" in page
    response = client.post(reverse("quizzes:section", args=["history"]), {"mode": "test", "timed": "on"})
    attempt = Attempt.objects.get()
    assert response.status_code == 302 and response["Location"] == url("attempt", attempt)
    assert (attempt.mode, attempt.quiz, attempt.user) == ("test", "history", student)
    assert attempt.deadline == attempt.started_at + timedelta(seconds=8 * 30)
    page = client.get(response["Location"]).content.decode()
    assert 'id="time-left"' in page


def test_practice_is_never_timed_and_the_chapter_quiz_starts_too(client, student, mini_bank):
    client.force_login(student)
    client.post(reverse("quizzes:section", args=["history"]), {"mode": "practice", "timed": "on"})
    assert Attempt.objects.get().deadline is None
    client.post(reverse("quizzes:section", args=["chapter"]), {"mode": "test"})
    chapter = Attempt.objects.get(quiz="chapter")
    assert len(chapter.question_ids) == 10  # the whole small bank: fewer than 15


def test_a_bad_mode_redisplays_the_form(client, student, mini_bank):
    client.force_login(student)
    response = client.post(reverse("quizzes:section", args=["history"]), {"mode": "exam"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Attempt.objects.exists()


# ---------------------------------------------------------------- nothing leaks before hand-in


def test_a_test_page_and_its_json_give_away_no_answer(client, student, attempt, mini_bank):
    client.force_login(student)
    page = client.get(url("attempt", attempt)).content.decode()
    status = json.dumps(client.get(url("status", attempt)).json())
    n = positions(attempt)["t-single"]
    saved = json.dumps(client.post(url("autosave", attempt, n), fields_for(attempt, mini_bank["t-single"], "b")).json())
    for text in (page, status, saved):
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), secret
    assert all(set(row) == {"n", "saved"} for row in json.loads(status)["answers"])

    # Choices are posted as positions in this attempt's order, never as the bank's keys.
    controls = Page(page).controls
    single = [c["value"] for c in controls if c.get("name") == f"q{n}"]
    assert sorted(single) == ["0", "1", "2", "3"]
    # The right capital for row i is not simply the i-th choice of every list.
    m = positions(attempt)["t-matching"]
    options = Page(page).options
    capitals = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi", "Peru": "Lima"}
    values_of_right = [
        next(v for v, text in options[f"q{m}-{i}"] if text.strip() == capitals[country])
        for i, country in enumerate(capitals)
    ]
    assert values_of_right != ["0", "1", "2", "3"]


def test_a_practice_page_shows_the_explanation_of_a_checked_answer_only(client, student, practice, mini_bank):
    client.force_login(student)
    page = client.get(url("attempt", practice)).content.decode()
    assert "EXPLAIN-" not in page and "correct" not in page.lower()
    n = positions(practice)["t-single"]
    data = {**fields_for(practice, mini_bank["t-single"], "b"), "check": str(n)}
    response = client.post(url("save", practice), data)
    assert response.status_code == 302 and response["Location"].endswith(f"#q{n}")
    page = client.get(url("attempt", practice)).content.decode()
    assert "EXPLAIN-SINGLE" in page and "Wrong" in page
    assert page.count("EXPLAIN-") == 1
    assert "Quokka" in page  # the options, as always; but no "right answer" line in practice
    assert "The answer" not in page


def test_every_control_has_a_label_and_every_question_a_fieldset_and_legend(client, student, mini_bank):
    client.force_login(student)
    for mode in ("test", "practice"):
        attempt = attempt_start(user=student, quiz="history", mode=mode)
        page = Page(client.get(url("attempt", attempt)).content.decode())
        assert page.controls and all(c.get("id") in page.labels for c in page.controls)
        assert page.fieldsets == page.legends == 8
        attempt_submit(attempt=attempt)  # practice is closed while a test of the quiz is open
    start = Page(client.get(reverse("quizzes:section", args=["history"])).content.decode())
    assert start.controls and all(c.get("id") in start.labels for c in start.controls)


# ---------------------------------------------------------------- saving


def test_the_save_button_stores_every_answer_without_the_script(client, student, attempt, mini_bank):
    client.force_login(student)
    response = client.post(url("save", attempt), {**all_right(attempt), "action": "save"})
    assert response.status_code == 302 and response["Location"] == url("attempt", attempt)
    stored = dict(attempt.answers.values_list("question__slug", "response"))
    assert stored["t-single"] == {"choice": "a"}
    assert stored["t-multiple"] == {"choices": sorted(["a", "b", "c"], key=stored["t-multiple"]["choices"].index)}
    assert set(stored["t-multiple"]["choices"]) == {"a", "b", "c"}
    assert stored["t-matching"] == {"pairs": {"0": 0, "1": 1, "2": 2, "3": 3}}
    assert stored["t-true-false"] == {"value": True} and stored["t-numeric"] == {"text": "4271.5"}
    page = client.get(url("attempt", attempt)).content.decode()
    assert "Your answers are saved." in page and page.count(" checked") == 5  # 1 + 3 + 1
    assert 'value="zebra_learner"' in page


def test_autosave_stores_one_question_and_says_so_in_json(client, student, attempt, mini_bank):
    client.force_login(student)
    n = positions(attempt)["t-numeric"]
    first = client.post(url("autosave", attempt, n), {f"q{n}": "4271"})
    assert first.json() == {"saved": True, "changed": True, "answered": True, "message": ""}
    assert client.post(url("autosave", attempt, n), {f"q{n}": "4271"}).json()["changed"] is False
    assert client.post(url("autosave", attempt, n), {f"q{n}": "  "}).json()["answered"] is False
    assert Answer.objects.get(attempt=attempt, position=n).response is None
    assert client.get(url("autosave", attempt, n)).status_code == 405


def tampered(attempt, slug):
    n = positions(attempt)[slug]
    return n, {
        "t-single": {f"q{n}": "9"},
        "t-multiple": {f"q{n}": ["0", "-1"]},
        "t-true-false": {f"q{n}": "maybe"},
        "t-matching": {f"q{n}-0": "a"},
    }[slug]


@pytest.mark.parametrize("slug", ["t-single", "t-multiple", "t-true-false", "t-matching"])
def test_a_tampered_choice_is_refused_with_400_and_stores_nothing(client, student, attempt, slug):
    client.force_login(student)
    n, data = tampered(attempt, slug)
    response = client.post(url("autosave", attempt, n), data)
    assert response.status_code == 400 and "error" in response.json()
    assert client.post(url("save", attempt), {**data, "action": "submit"}).status_code == 400
    assert not Answer.objects.filter(attempt=attempt).exclude(response=None).exists()
    assert Attempt.objects.get(pk=attempt.pk).state == "in_progress"


def test_a_question_the_attempt_does_not_hold_is_404(client, student, attempt):
    client.force_login(student)
    assert client.post(url("autosave", attempt, 99), {"q99": "1"}).status_code == 404
    assert client.post(url("autosave", attempt, 0), {"q0": "1"}).status_code == 404


def test_a_single_choice_with_two_values_and_a_check_in_a_test_are_refused(client, student, attempt):
    client.force_login(student)
    n = positions(attempt)["t-single"]
    assert client.post(url("autosave", attempt, n), {f"q{n}": ["0", "1"]}).status_code == 400
    assert client.post(url("save", attempt), {"check": str(n)}).status_code == 400


# ---------------------------------------------------------------- handing in and the review


def test_handing_in_twice_grades_once_and_the_review_explains_each_answer(client, student, attempt, mini_bank):
    client.force_login(student)
    data = {**all_right(attempt), "action": "submit"}
    n = positions(attempt)["t-true-false"]
    data[f"q{n}"] = "false"
    response = client.post(url("save", attempt), data)
    assert response.status_code == 302 and response["Location"] == url("review", attempt)
    attempt.refresh_from_db()
    first = (attempt.submitted_at, attempt.score)
    replay = client.post(url("save", attempt), {**data, f"q{n}": "true"}, follow=True)
    assert "already handed in" in replay.content.decode()
    assert client.post(url("submit", attempt)).status_code == 302
    attempt.refresh_from_db()
    assert (attempt.submitted_at, attempt.score) == first
    assert Answer.objects.get(attempt=attempt, position=n).response == {"value": False}

    page = client.get(url("review", attempt)).content.decode()
    assert (
        '"attempt-right">6</span> of 8 fully right' in page
    )  # the false true/false, and free text still with the grader
    assert "EXPLAIN-TF" in page and "Wrong" in page and "Right" in page
    assert 'href="/chapter/glossary/neural-network/"' in page and 'href="/chapter/glossary/perceptron/"' in page
    assert 'href="/chapter/history/"' in page
    assert "zebra_learner" in page and "Paris" in page  # the key, now that it is handed in
    assert client.get(url("attempt", attempt)).status_code == 302  # no way back into the answers


def test_an_empty_attempt_hands_in_with_zero(client, student, attempt):
    client.force_login(student)
    client.post(url("save", attempt), {"action": "submit"})
    attempt.refresh_from_db()
    assert attempt.score == 0 and attempt.state == "graded"
    page = client.get(url("review", attempt)).content.decode()
    assert page.count("No answer</em>") == 8 and "0%" in page
    assert "No answer was given." not in page  # said once, as "No answer", not twice


def test_the_server_closes_a_test_whose_time_ran_out(client, student, mini_bank):
    attempt = attempt_start(user=student, quiz="history", mode="test", timed=True)
    n = positions(attempt)["t-single"]
    answers_save(attempt=attempt, responses={n: {"choice": "a"}})
    Attempt.objects.filter(pk=attempt.pk).update(deadline=attempt.started_at - timedelta(minutes=1))
    client.force_login(student)
    late = client.post(url("autosave", attempt, n), fields_for(attempt, mini_bank["t-single"], "b"))
    assert late.status_code == 409 and late.json()["url"] == url("review", attempt)
    response = client.get(url("attempt", attempt), follow=True)
    assert "The time for this test ran out" in response.content.decode()
    attempt.refresh_from_db()
    assert attempt.timed_out and attempt.state == "graded" and attempt.score == pytest.approx(1 / 8)


# ---------------------------------------------------------------- hostile and odd input


def test_long_unicode_and_html_answers_are_kept_safely(client, student, attempt, instructor, settings):
    settings.JOURNEY_ANSWER_MAX_CHARS = 4000
    client.force_login(student)
    free, blank = positions(attempt)["t-free"], positions(attempt)["t-blank-code"]
    huge = client.post(url("autosave", attempt, free), {f"q{free}": "overfitting " * 9000})  # about 100 kB
    assert huge.status_code == 200 and "only its beginning was kept" in huge.json()["message"]
    assert len(Answer.objects.get(attempt=attempt, position=free).response["text"]) <= 4000

    script = "<script>alert('x')</script> 深層学習 — مرحبا 🚀\x00"
    response = client.post(url("save", attempt), {f"q{free}": script, f"q{blank}": "<b>bold</b>", "action": "submit"})
    assert response.status_code == 302
    stored = Answer.objects.get(attempt=attempt, position=free).response["text"]
    assert stored == "<script>alert('x')</script> 深層学習 — مرحبا 🚀"  # the NUL byte is gone

    page = client.get(url("review", attempt)).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "深層学習 — مرحبا 🚀" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_a_whitespace_answer_counts_as_no_answer(client, student, attempt):
    client.force_login(student)
    n = positions(attempt)["t-blank-word"]
    client.post(url("save", attempt), {f"q{n}": " \n\t ", "action": "save"})
    assert Answer.objects.get(attempt=attempt, position=n).response is None


# ---------------------------------------------------------------- query budgets


def test_the_quiz_list_query_count_is_bounded(client, student, mini_bank, django_assert_num_queries):
    for mode in ("test", "practice", "test"):
        attempt_submit(attempt=attempt_start(user=student, quiz="history", mode=mode))
    attempt_start(user=student, quiz="chapter", mode="test")
    client.force_login(student)
    # django_session, auth_user, auth_group (instructor?), sections with question counts, the student's attempts
    with django_assert_num_queries(5):
        page = client.get(reverse("quizzes:index")).content.decode()
    assert "Resume" in page and page.count("0%") >= 3


def test_the_attempt_page_query_count_does_not_grow_with_questions(
    client, student, mini_bank, django_assert_num_queries
):
    client.force_login(student)
    for quiz in ("history", "chapter", "machine-learning"):
        attempt = attempt_start(user=student, quiz=quiz, mode="test")
        # django_session, auth_user, attempt, answers with their questions and sections,
        # and the section's title (the chapter quiz's title needs no query)
        with django_assert_num_queries(4 if quiz == "chapter" else 5):
            assert client.get(url("attempt", attempt)).status_code == 200
        attempt_submit(attempt=attempt)
    practice = attempt_start(user=student, quiz="history", mode="practice")
    # ... and, in practice, the glossary terms of checked answers and the student's open tests
    with django_assert_num_queries(7):
        assert client.get(url("attempt", practice)).status_code == 200


def test_the_review_page_query_count_does_not_grow_with_questions(
    client, student, mini_bank, django_assert_num_queries
):
    client.force_login(student)
    for quiz in ("history", "chapter", "machine-learning"):
        attempt = attempt_start(user=student, quiz=quiz, mode="test")
        client.post(url("save", attempt), {**all_right(attempt), "action": "submit"})
        # django_session, auth_user, attempt, the student's open tests, their classes' rules for showing
        # answers, answers with questions and sections, their glossary terms, and the section's title
        # (none for the chapter quiz)
        with django_assert_num_queries(7 if quiz == "chapter" else 8):
            assert client.get(url("review", attempt)).status_code == 200
        # django_session, auth_user, attempt, the answers; then for the blocks to build: the student's
        # open tests, their classes' rules, those answers with questions and sections, their glossary terms
        with django_assert_num_queries(8):
            rows = client.get(url("status", attempt)).json()["answers"]
        # A poll from a page that shows every status already: django_session, auth_user, attempt, the answers
        known = ",".join(f"{r['n']}:{r['status']}" for r in rows)
        with django_assert_num_queries(4):
            assert "html" not in str(client.get(url("status", attempt), {"known": known}).json())


def test_every_question_of_the_real_bank_renders_without_its_key_and_marks_right_answers_right(
    client, student, bank, settings
):
    settings.JOURNEY_CHAPTER_QUIZ_SIZE = 500  # the whole bank in one attempt
    attempt = attempt_start(user=student, quiz="chapter", mode="test")
    assert len(attempt.question_ids) == 102
    client.force_login(student)
    page = client.get(url("attempt", attempt)).content.decode()
    # Option texts use the word ("no correct answers to learn from"); no attribute or key does.
    assert not re.search(r"""correct["'=:]|["']correct|data-correct""", page)
    for question in bank.values():
        assert question.explanation_html not in page, question.slug
        for secret in filter(None, [question.reference_answer, *question.key_points, *question.misconceptions]):
            assert secret not in page, question.slug
    parsed = Page(page)
    assert parsed.fieldsets == parsed.legends == 102
    assert all(c.get("id") in parsed.labels for c in parsed.controls)

    client.post(url("save", attempt), {**all_right(attempt), "action": "submit"})
    verdicts = dict(attempt.answers.values_list("question__slug", "verdict"))
    assert {slug for slug, v in verdicts.items() if v != "correct"} == {
        slug for slug, q in bank.items() if q.type == "free_text"
    }
    assert set(verdicts[slug] for slug, q in bank.items() if q.type == "free_text") == {"pending"}
    review = client.get(url("review", attempt)).content.decode()
    assert review.count('data-status="pending"') == 18 and "84 of 102 fully right" in review.replace("</span>", "")
