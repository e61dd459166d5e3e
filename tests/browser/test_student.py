"""A student reads, studies flashcards and takes quizzes in a real browser; axe checks the pages."""

import io
import re

import pytest
from PIL import Image

from tests.browser.conftest import axe_violations, horizontal_overflow, login

SECTION = "/chapter/how-the-image-recognizer-works/"
QUIZ = "/quizzes/jargon/"  # no free-text questions: nothing waits for the grader


def test_a_glossary_term_shows_its_tip_on_hover_and_on_focus(student_page, shots):
    page = student_page()
    page.goto(SECTION)
    term = page.locator("a.term").first
    tip = page.locator(".term-wrap").first.locator(".term-tip")
    term.scroll_into_view_if_needed()
    assert not tip.is_visible()
    term.hover()
    tip.wait_for(state="visible")
    assert tip.inner_text().strip()
    shots("hover", page, full_page=False, readme="glossary-hover")
    page.keyboard.press("Escape")
    tip.wait_for(state="hidden")

    page.mouse.move(0, 0)
    second = page.locator("a.term").nth(1)
    second.focus()
    second_tip = page.locator(".term-wrap").nth(1).locator(".term-tip")
    second_tip.wait_for(state="visible")
    assert second.get_attribute("aria-describedby") == second_tip.get_attribute("id")
    shots("focus", page, full_page=False)


def test_three_flashcards_are_reviewed_with_the_keyboard(student_page, student, shots):
    from courses.models import FlashcardReview

    page = student_page()
    page.goto("/chapter/flashcards/")
    seen = []
    for n in range(3):
        term = page.locator("#card-term").inner_text().strip()
        assert term not in seen
        seen.append(term)
        assert page.locator("#reveal").get_attribute("open") is None
        page.keyboard.press(" ")  # shows the answer
        page.locator("#reveal .answer").wait_for(state="visible")
        shots(f"card-{n + 1}", page, readme="flashcards" if n == 0 else None)
        with page.expect_navigation():
            page.keyboard.press("3")  # Good
    assert FlashcardReview.objects.filter(user=student).count() == 3


def answer_everything(page):
    """Pick the first choice of every question (and a word in any text box) on an attempt page."""
    for question in page.locator("fieldset.question").all():
        choices = question.locator("ul.choices input")
        if choices.count():
            choices.first.check()
        for select in question.locator("select").all():
            select.select_option(index=1)
        for box in question.locator("input[type=text], textarea").all():
            box.fill("1")


def start_quiz(page, mode):
    page.goto(QUIZ)
    page.check(f"input[name=mode][value={mode}]")
    with page.expect_navigation():
        page.click("form.start-form button[type=submit]")
    page.locator("#attempt-form").wait_for()


def test_a_section_quiz_in_practice_and_in_test_mode(student_page, shots):
    page = student_page()
    start_quiz(page, "practice")
    answer_everything(page)
    with page.expect_navigation():
        page.click("button[name=check][value='1']")
    assert page.locator("#q1").inner_text() != ""
    shots("practice-checked", page)
    with page.expect_navigation():
        page.click("button[name=action][value=submit]:visible")
    assert page.locator("h1").inner_text().startswith("Results")
    assert re.search(r"\d+%", page.locator("#attempt-score").inner_text())
    shots("practice-review", page)
    assert axe_violations(page) == []

    start_quiz(page, "test")
    assert not page.locator("button[name=check]").count()
    answer_everything(page)
    with page.expect_navigation():
        page.click("button[name=action][value=submit]:visible")
    assert page.locator("h1").inner_text().startswith("Results")
    shots("test-review", page)
    assert axe_violations(page) == []


def test_the_chapter_and_a_quiz_do_not_scroll_sideways_on_a_phone(student_page, shots):
    page = student_page(width=360, height=740)
    for name, url in [("chapter", "/chapter/"), ("section", SECTION)]:
        page.goto(url)
        shots(name, page)
        assert horizontal_overflow(page) <= 0, url
    start_quiz(page, "practice")
    shots("quiz", page)
    assert horizontal_overflow(page) <= 0


def test_the_student_pages_with_tables_and_forms_do_not_scroll_sideways_on_a_phone(
    student_page, student, instructor, tiny_settings, monkeypatch, shots
):
    """With a class, a trained model and an answered prediction, so every table, form and share
    control on these pages has something in it."""
    from accounts.services import classroom_create, classroom_join
    from mlworker import dispatch
    from mlworker.models import JobState, Prediction, PredictionState
    from mlworker.services import Upload, job_submit, prediction_submit
    from tests.dashboard.support import job_end

    photo = "IMG_20240611_183012_HDR_portrait_mode_edited_copy.png"  # a phone's long, unbreakable file name
    # No worker: the test writes the results as one would.
    monkeypatch.setattr(dispatch, "send", lambda *args: True)
    classroom = classroom_create(by=instructor, name="A class with a long name for a small phone screen")
    classroom_join(user=student, code=classroom.code)
    job = job_submit(user=student, job_settings=tiny_settings)
    job_end(job, JobState.SUCCEEDED, error_rate=0.125, classes=["False", "True"], model_file=f"jobs/{job.pk}/model.pkl")
    picture = io.BytesIO()
    Image.new("RGB", (96, 96), "white").save(picture, format="PNG")
    [prediction], _ = prediction_submit(user=student, job=job, uploads=[Upload(photo, picture.getvalue())])
    Prediction.objects.filter(pk=prediction.pk).update(
        state=PredictionState.SUCCEEDED, label="True", classes=["False", "True"], probabilities=[0.123456, 0.876544],
        seconds=0.05, cache_hit=False,
    )  # fmt: skip

    page = student_page(width=360, height=740)
    for name, url in [("quizzes", "/quizzes/"), ("me", "/me/"), ("new-experiment", "/experiments/new/"),
                      ("models", "/experiments/models/"), ("prediction", prediction.get_absolute_url())]:  # fmt: skip
        page.goto(url)
        shots(name, page)
        assert horizontal_overflow(page) <= 0, url
        if name == "quizzes":  # every quiz's Start link in sight, not at the far end of a scrolled table
            starts = page.locator("table.quizzes a", has_text="Start")
            assert starts.count() > 1
            assert all(box["x"] + box["width"] <= 360 for box in (a.bounding_box() for a in starts.all()))


MAIN_PAGES = [
    ("home", "/"),
    ("chapter", "/chapter/"),
    ("section", SECTION),
    ("first-model", "/chapter/first-model/"),
    ("glossary", "/chapter/glossary/"),
    ("term", None),
    ("flashcards", "/chapter/flashcards/"),
    ("quizzes", "/quizzes/"),
    ("experiments", "/experiments/"),
    ("new-experiment", "/experiments/new/"),
    ("models", "/experiments/models/"),
    ("your-data", "/experiments/data/"),
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_main_pages_have_no_serious_accessibility_violations(new_page, student, course, scheme, shots):
    from courses.models import GlossaryTerm

    page = new_page(scheme=scheme)
    page.goto("/accounts/login/")
    # The theme follows the system setting: a light page in light mode, a dark one in dark mode.
    red, green, blue = page.evaluate(
        "() => getComputedStyle(document.body).backgroundColor.match(/\\d+/g).slice(0, 3).map(Number)"
    )
    assert (red + green + blue > 600) == (scheme == "light"), (scheme, red, green, blue)
    problems = {"login": axe_violations(page)}
    login(page, student.username)
    term = GlossaryTerm.objects.order_by("term").first()
    for name, url in MAIN_PAGES:
        page.goto(url or term.get_absolute_url())
        problems[name] = axe_violations(page)
        if name == "first-model" and scheme == "light":
            shots(name, page, full_page=False, readme="chapter")
    start_quiz(page, "practice")
    problems["quiz-attempt"] = axe_violations(page)
    shots("quiz-attempt", page)
    problems = {name: lines for name, lines in problems.items() if lines}
    assert not problems, "\n".join(f"{name}: {line}" for name, lines in problems.items() for line in lines)


def test_every_focusable_control_shows_where_the_focus_is(student_page):
    page = student_page()
    page.goto(SECTION)
    missing = []
    for _ in range(25):
        page.keyboard.press("Tab")
        shown = page.evaluate(
            """() => { const el = document.activeElement; if (!el || el === document.body) return null;
                const s = getComputedStyle(el);
                const ring = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
                return {what: el.outerHTML.slice(0, 80), ok: ring || s.boxShadow !== 'none'}; }"""
        )
        if shown and not shown["ok"]:
            missing.append(shown["what"])
    assert not missing, missing


def test_a_grade_that_arrives_replaces_its_block_while_the_page_is_open(student_page, student, monkeypatch):
    """The results page asks every 2 s while a grade is pending, saying what it shows; the real
    grader's grade then replaces the pending block, and only that block is sent."""
    from django.urls import reverse

    from quizzes import services
    from quizzes.services import answer_grade_free_text
    from tests.browser.test_layout import _hand_in

    # The grading is not sent to the broker (as when it is down): a worker another test left running
    # must not grade it before the page is open. The test grades it, with the real grader, below.
    monkeypatch.setattr(services, "grading_dispatch", lambda *, answer_id: False)
    attempt = _hand_in(student, "history", right=1.0, grader_gave_up=False)
    answer = attempt.answers.filter(question__type="free_text", verdict="pending").order_by("position").first()
    page = student_page()
    polls = []
    page.on("response", lambda r: polls.append(r) if "/status/?known=" in r.url else None)
    with page.expect_response(lambda r: "/status/?known=" in r.url):  # the first poll, 2 s after loading
        page.goto(reverse("quizzes:review", args=[attempt.pk]))
        block = page.locator(f'[data-result="{answer.position}"]')
        assert block.get_attribute("data-status") == "pending"
    assert not any("html" in row for r in polls for row in r.json()["answers"])  # nothing new: nothing sent

    assert answer_grade_free_text(answer_id=answer.pk) == "graded"  # the real grader
    page.wait_for_selector(f'[data-result="{answer.position}"]:not([data-status="pending"])', timeout=10_000)
    assert "Being graded" not in block.inner_text()
    sent = [row["n"] for r in polls for row in r.json()["answers"] if "html" in row]
    assert sent == [answer.position]
