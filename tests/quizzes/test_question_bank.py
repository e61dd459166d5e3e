"""Importing the question bank: every question of content/, idempotent, all or nothing with
sections and glossary, and errors that name the file and the line."""

import re

import pytest
from django.core.management import CommandError, call_command

from courses.loader import ContentError
from courses.models import Section
from courses.services import course_load
from quizzes.models import Answer, Question
from quizzes.services import attempt_start, question_bank_load

pytestmark = pytest.mark.django_db


def test_it_imports_all_102_questions_with_their_sections_and_terms(bank):
    assert len(bank) == 102
    counts = {t: Question.objects.filter(type=t).count() for t, _ in Question._meta.get_field("type").choices}
    assert counts == {
        "single": 22, "multiple": 9, "true_false": 20, "numeric": 14, "matching": 7, "fill_blank": 12,
        "free_text": 18,
    }  # fmt: skip
    q = bank["history-perceptron-builder"]
    assert q.section.slug == "history" and list(q.terms.values_list("slug", flat=True)) == ["perceptron"]
    assert q.correct_keys() == {"b"}
    numeric = bank["recognizer-accuracy-from-error"]
    assert (numeric.answer, numeric.tolerance) == (0.93, 0.001)
    free = bank["limitations-overfitting"]
    assert free.source_ref == "Q15" and len(free.key_points) == 3 and len(free.misconceptions) == 2
    assert "<pre" in bank["first-model-blank-valid-pct"].prompt_html  # Markdown, rendered
    # Every blank of this bank sits in code, so `true` does not pass for `True`.
    assert all(q.case_sensitive for q in Question.objects.filter(type="fill_blank"))


def test_a_blank_inside_code_is_case_sensitive_and_one_in_prose_is_not(mini_bank):
    assert Question.objects.get(slug="t-blank-code").case_sensitive is True
    assert Question.objects.get(slug="t-blank-word").case_sensitive is False


def test_running_it_twice_changes_nothing_the_second_time(bank):
    report = question_bank_load()
    assert report.created == [] and report.updated == [] and report.deleted == []
    assert report.unchanged == 102


def test_it_updates_a_changed_question_in_place(content):
    course_load(root=content)
    question_bank_load(root=content)
    before = Question.objects.get(slug="history-perceptron-builder").pk
    path = content / "questions" / "history.yaml"
    text = path.read_text().replace(
        '{key: b, text: "Frank Rosenblatt", correct: true}', '{key: b, text: "F. Rosenblatt", correct: true}'
    )
    path.write_text(text.replace("terms: [perceptron]\n", "terms: [perceptron, neural-network]\n", 1))
    report = question_bank_load(root=content)
    assert report.updated == ["question history-perceptron-builder (options, terms)"]
    q = Question.objects.get(slug="history-perceptron-builder")
    assert q.pk == before and q.options[1]["text"] == "F. Rosenblatt"
    assert set(q.terms.values_list("slug", flat=True)) == {"perceptron", "neural-network"}


def test_a_question_that_left_the_bank_is_deleted_or_retired_when_attempts_used_it(content, student):
    course_load(root=content)
    question_bank_load(root=content)
    attempt_start(user=student, quiz="history", mode="practice")
    path = content / "questions" / "history.yaml"
    text = path.read_text()
    # Drop the last question of the file (used by the attempt, like every history question).
    path.write_text(text[: text.index("- slug: history-pdp-ideas")])
    (content / "questions" / "jargon.yaml").write_text(
        (content / "questions" / "jargon.yaml").read_text().split("- slug: jargon-model-vs-architecture")[0]
    )
    report = question_bank_load(root=content)
    assert "question history-pdp-ideas (retired: past attempts use it)" in report.updated
    assert report.deleted == ["question jargon-model-vs-architecture"]
    assert Question.objects.get(slug="history-pdp-ideas").is_active is False
    assert Answer.objects.filter(question__slug="history-pdp-ideas").count() == 1
    assert not Question.objects.filter(slug="jargon-model-vs-architecture").exists()


BAD_EDITS = [
    # (file, old, new, message pattern)
    (
        "history.yaml",
        "type: single",
        "type: essay",
        r"history.yaml:\d+: question 'history-perceptron-builder': unknown question type 'essay'",
    ),
    (
        "history.yaml",
        '  explanation: "Frank Rosenblatt built',
        '  explanaton: "Frank Rosenblatt built',
        r"history.yaml:\d+: question 'history-perceptron-builder': the question lacks 'explanation'",
    ),
    (
        "history.yaml",
        '{key: a, text: "Walter Pitts", correct: false}',
        '{key: a, text: "Walter Pitts", correct: true}',
        r"history.yaml:\d+: .*exactly one correct option, found 2",
    ),
    (
        "history.yaml",
        '{key: b, text: "Frank Rosenblatt", correct: true}',
        '{key: b, text: "Frank Rosenblatt", correct: false}',
        r"exactly one correct option, found 0",
    ),
    (
        "history.yaml",
        "terms: [perceptron]\n",
        "terms: [perceptron, no-such-term]\n",
        r"history.yaml:\d+: question 'history-perceptron-builder' names unknown glossary term\(s\): no-such-term",
    ),
    (
        "jargon.yaml",
        "- slug: jargon-functional-form",
        "- slug: history-perceptron-builder",
        r"jargon.yaml:\d+: duplicate question slug 'history-perceptron-builder': also at history.yaml:\d+",
    ),
    (
        "history.yaml",
        "  answer: 1986\n",
        "  answer: 1986\n  options: []\n",
        r"field 'options' does not apply to numeric questions",
    ),
    ("history.yaml", "  answer: 1986\n", "  answer: nineteen-eighty-six\n", r"numeric question needs a number"),
    (
        "first-model.yaml",
        "label_func=is_cat, item_tfms=Resize(____))",
        "label_func=is_cat, item_tfms=Resize(224))",
        r"first-model.yaml:\d+: .*must show the blank as ____",
    ),
    ("history.yaml", "- slug: history-first-neuron-model", "- slug: [unclosed", r"history.yaml:\d+: not valid YAML"),
]


@pytest.mark.parametrize("name, old, new, words", BAD_EDITS, ids=[e[3][:40] for e in BAD_EDITS])
def test_a_bad_question_fails_with_file_and_line_and_changes_nothing(content, name, old, new, words):
    course_load(root=content)
    question_bank_load(root=content)
    before = sorted(Question.objects.values_list("slug", "prompt", "options"))
    other = content / "questions" / "limitations.yaml"
    other.write_text(other.read_text().replace("Explain what overfitting is", "An edit that must not land:"))
    path = content / "questions" / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ContentError, match=words):
        question_bank_load(root=content)
    assert sorted(Question.objects.values_list("slug", "prompt", "options")) == before


def test_the_error_line_points_at_the_offending_field(content):
    course_load(root=content)
    path = content / "questions" / "history.yaml"
    text = path.read_text().replace("terms: [perceptron]\n", "terms: [perceptron, nope]\n", 1)
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "terms: [perceptron, nope]" in row)
    with pytest.raises(ContentError) as caught:
        question_bank_load(root=content)
    assert caught.value.line == line and caught.value.path == path


def test_a_file_named_after_no_section_is_refused(content):
    course_load(root=content)
    (content / "questions" / "no-such-section.yaml").write_text("[]\n")
    with pytest.raises(ContentError, match=r"no-such-section.yaml:1: no section 'no-such-section'"):
        question_bank_load(root=content)


def test_loadcourse_loads_both_and_prints_both_reports(capsys):
    call_command("loadcourse")
    out = capsys.readouterr().out
    assert "Sections and glossary:" in out and "Question bank:" in out
    assert re.search(r"^102 created, 0 updated, 0 deleted, 0 unchanged$", out, re.M)
    call_command("loadcourse")
    assert re.search(r"^0 created, 0 updated, 0 deleted, 102 unchanged$", capsys.readouterr().out, re.M)


def test_loadcourse_is_all_or_nothing_across_sections_and_questions(content):
    path = content / "questions" / "history.yaml"
    path.write_text(path.read_text().replace("type: single", "type: essay", 1))
    section = content / "sections" / "01-history.md"
    section.write_text(section.read_text().replace('title: "Neural networks: a short history"', 'title: "Changed"'))
    with pytest.raises(CommandError, match=r"unknown question type 'essay'.*\(nothing was changed\)"):
        call_command("loadcourse", root=content)
    assert not Section.objects.exists() and not Question.objects.exists()

    call_command("loadcourse")  # the real tree, then the broken one on top: the title must not change
    with pytest.raises(CommandError):
        call_command("loadcourse", root=content)
    assert Section.objects.get(slug="history").title == "Neural networks: a short history"
