"""Every page of both roles at a laptop's 1280x800 and a phone's 360x740: no table wider than its box
(at 360 px one may scroll inside a marked scroller, keyboard-reachable with its first column in
view), no sideways page, and no serious or critical axe finding. One class, seeded with services."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.browser.conftest import axe_violations, horizontal_overflow, login

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

# Each table on the page: is it wider than its box, and if so, is its box a marked scroller (focusable,
# a named region) whose first column stays in view?
TABLES = """() => [...document.querySelectorAll("main table")].map((table, i) => {
  const box = table.parentElement, wrap = table.closest(".table-wrap");
  const first = [...table.rows].map(row => row.cells[0]).filter(Boolean);
  return {
    i, caption: wrap ? wrap.getAttribute("aria-label") : (table.id || table.className),
    wide: Math.round(table.getBoundingClientRect().width) > box.clientWidth + 1,
    width: Math.round(table.getBoundingClientRect().width), box: box.clientWidth,
    marked: !!wrap && wrap === box && wrap.getAttribute("tabindex") === "0" && wrap.getAttribute("role") === "region"
      && !!wrap.getAttribute("aria-label") && getComputedStyle(wrap).overflowX === "auto",
    sticky: first.length > 0 && first.every(cell => getComputedStyle(cell).position === "sticky"),
  };
})"""


def _table_problems(page, *, scroll_allowed: bool) -> list[str]:
    problems = []
    for t in page.evaluate(TABLES):
        if not t["wide"]:
            continue
        where = f"table {t['i']} ({t['caption']}): {t['width']} px in {t['box']} px"
        if not scroll_allowed:
            problems.append(f"{where}: wider than its box")
        elif not (t["marked"] and t["sticky"]):
            problems.append(f"{where}: scrolls, but not in a marked scroller with a sticky first column")
    return problems


def _hand_in(user, quiz: str, right: float, *, grader_gave_up: bool = True):
    """A test of `quiz` with about the share `right` of its questions answered right, the rest left empty.
    Its free-text answers wait for an instructor (the grader gave up), or with `grader_gave_up=False` for the grader."""
    from django.utils.datastructures import MultiValueDict

    from quizzes.services import answer_grading_failed, answers_save, attempt_start, attempt_submit
    from quizzes.views import _read_answers
    from tests.quizzes.support import fields_for, right_answer

    attempt = attempt_start(user=user, quiz=quiz, mode="test")
    answers = list(attempt.answers.select_related("question").order_by("position"))
    data = {}
    for answer in answers[: round(right * len(answers))]:
        data.update(fields_for(attempt, answer.question, right_answer(answer.question)))
    post = MultiValueDict({k: v if isinstance(v, list) else [str(v)] for k, v in data.items()})
    responses, _ = _read_answers(attempt, post)
    answers_save(attempt=attempt, responses=responses)
    attempt_submit(attempt=attempt)
    if not grader_gave_up:
        return attempt
    for answer in attempt.answers.filter(question__type="free_text").filter(response__isnull=False):
        answer_grading_failed(answer_id=answer.pk)  # the grader gave up: it waits for the instructor
    return attempt


def _finished_job(owner, state, tiny_settings, **fields):
    """A job row in a finished state with the metrics its pages show, as a worker would leave it (no training)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from mlworker.models import JobEpoch, JobState
    from mlworker.services import job_submit
    from tests.dashboard.support import job_end

    job = job_submit(user=owner, job_settings=tiny_settings)
    if state == JobState.SUCCEEDED:
        losses = [[b, 0.9 - 0.05 * b] for b in range(1, 13)]
        for epoch, (phase, valid, error) in enumerate([("head", 0.612345, 0.25), ("whole", 0.401234, 0.125)]):
            JobEpoch.objects.create(job=job, phase=phase, epoch=epoch, train_loss=0.7 - 0.2 * epoch, valid_loss=valid,
                                    error_rate=error, accuracy=1 - error, seconds=3.2)  # fmt: skip
        model = default_storage.save(f"tests/layout-model-{job.pk}.pkl", ContentFile(b"pkl"))
        fields = {"error_rate": 0.125, "accuracy": 0.875, "seconds": 6.4, "classes": ["False", "True"],
                  "confusion": [[3, 1], [0, 4]], "n_train": 24, "n_valid": 8, "n_batches": 6, "total_epochs": 2,
                  "epoch": 2, "progress": 1.0, "train_losses": losses, "device": "cpu", "model_file": model,
                  "name": "Cats and dogs, first try", **fields}  # fmt: skip
    job_end(job, state, **fields)
    job.refresh_from_db()
    return job


@pytest.fixture
def seeded_class(transactional_db, course, instructor, student, make_user, tiny_settings, monkeypatch):
    """A class of eight students who read, hand in tests of every quiz (their free-text answers wait for
    the instructor) and ran experiments that succeeded, failed and wait in the queue."""
    from django.utils import timezone

    from accounts.services import classroom_create, classroom_join, deadline_set
    from courses.models import Section
    from courses.services import section_mark_read
    from mlworker import dispatch
    from mlworker import services as job_services
    from mlworker.models import JobState
    from quizzes import tasks
    from quizzes.models import CHAPTER_QUIZ

    monkeypatch.setattr(tasks.grade_free_text, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(dispatch, "send", lambda *args: False)  # no broker: the jobs stay as they are
    classroom = classroom_create(by=instructor, name="Monday group")
    names = ["amelia.hernandez-garcia", "bo", "chidi.okonkwo", "dmitri", "eleanor.shellstrop", "fatima.zahra",
             "gunnar"]  # fmt: skip
    students = [student] + [make_user(name) for name in names]
    sections = list(Section.objects.order_by("order"))
    quizzes = [s.slug for s in sections] + [CHAPTER_QUIZ]
    for n, user in enumerate(students):
        classroom_join(user=user, code=classroom.code)
        for section in sections[: 2 + n % 5]:
            section_mark_read(user=user, section=section)
        for q, quiz in enumerate(quizzes[: 10 - n]):
            _hand_in(user, quiz, right=((n + q) % 5) / 4)
    deadline_set(classroom=classroom, by=instructor, quiz=quizzes[0], due_at=timezone.now() - timedelta(days=1))
    deadline_set(classroom=classroom, by=instructor, quiz=quizzes[3], due_at=timezone.now() + timedelta(days=5))
    friday = classroom_create(by=instructor, name="Friday lab")  # a second class for the instructor's home
    for user in students[5:]:
        classroom_join(user=user, code=friday.code)
    deadline_set(classroom=friday, by=instructor, quiz=quizzes[1], due_at=timezone.now() + timedelta(days=2))
    job = _finished_job(student, JobState.SUCCEEDED, tiny_settings)
    job_services.share(item=job, by=student, classrooms=[classroom])
    _finished_job(students[1], JobState.SUCCEEDED, tiny_settings, error_rate=0.0625)
    _finished_job(students[2], JobState.FAILED, tiny_settings, error_message="The worker ran out of memory.")
    job_services.job_submit(user=students[3], job_settings=tiny_settings)  # queued
    return classroom, students, job


def _visit(page, url, *, width, problems, check_tables=True):
    page.set_viewport_size(LAPTOP if width == 1280 else PHONE)
    page.goto(url, timeout=60_000)  # the first form of an experiment loads fastai's data-set summaries
    found = []
    if (over := horizontal_overflow(page)) > 0:
        found.append(f"the page scrolls sideways by {over} px")
    if check_tables:
        found += _table_problems(page, scroll_allowed=width < 1280)
    found += axe_violations(page)
    if found:
        problems[f"{url} at {width} px"] = found


def _report(problems):
    assert not problems, "\n".join(f"{where}: {line}" for where, lines in problems.items() for line in lines)


def test_every_page_fits_a_laptop_and_a_phone(new_page, seeded_class, instructor, student, shots):
    from quizzes.models import Attempt

    classroom, students, job = seeded_class
    attempt = (
        Attempt.objects.filter(user=student).exclude(state=Attempt.State.IN_PROGRESS).exclude(quiz="chapter").first()
    )
    c = f"/classes/{classroom.pk}"
    pages = {
        student.username: ["/", "/chapter/", f"/chapter/{attempt.quiz}/", "/quizzes/", f"/quizzes/{attempt.quiz}/",
                           f"/quizzes/attempts/{attempt.pk}/review/", "/experiments/", "/experiments/new/",
                           f"/experiments/{job.pk}/", "/experiments/models/", "/experiments/data/", "/me/"],
        instructor.username: ["/", "/classes/", f"{c}/", f"{c}/students/{student.pk}/", f"{c}/questions/",
                              f"{c}/jobs/", f"{c}/review/", "/quizzes/review/", f"{c}/settings/",
                              f"/experiments/{job.pk}/"],
    }  # fmt: skip
    problems = {}
    for username, urls in pages.items():
        page = new_page(**LAPTOP)
        login(page, username)
        for width in (1280, 360):
            for url in urls:
                _visit(page, url, width=width, problems=problems)

        if username == instructor.username:
            page.set_viewport_size(LAPTOP)
            page.goto("/")
            assert page.locator("h1").inner_text() == "Your classes"
            shots("instructor-home", page, readme="instructor-home")
            page.goto(f"{c}/questions/")
            shots("questions", page, full_page=False, readme="questions")
            page.goto(f"{c}/")
            shots("roster", page, readme="roster")
            # The roster's quiz marks say their numbers to a screen reader.
            if "quiz 1: best" not in page.locator("table.roster tbody tr").first.inner_text():
                problems["roster"] = ["a row's quiz marks do not say their numbers in words"]
        else:
            _the_job_page_on_a_phone(page, job, problems, shots)
    _report(problems)


def _the_job_page_on_a_phone(page, job, problems, shots):
    """At 360 px: the epoch table's error_rate column in view, the loss chart's labels full size, the
    user's name in the header."""
    page.set_viewport_size(PHONE)
    page.goto(f"/experiments/{job.pk}/")
    shots("job-phone", page)
    found = []
    wrap = page.locator("#epoch-table").locator("xpath=..").bounding_box()
    error = page.locator("#epoch-table th", has_text="error_rate").bounding_box()
    if error["x"] + error["width"] > wrap["x"] + wrap["width"]:
        found.append("the error_rate column is off-screen")
    label = page.locator("#loss-chart text.tick").first.bounding_box()
    if label["height"] < 11:  # 12px text drawn at its size, not shrunk with a 600-unit-wide chart
        found.append(f"the loss chart's labels are {label['height']:.1f} px high")
    if not page.locator(".account .who").is_visible():
        found.append("the header hides the user's name")
    if found:
        problems["job page at 360 px"] = found
