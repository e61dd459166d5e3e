"""Importing the content tree: idempotent, all-or-nothing, with errors naming file and line."""

import shutil

import pytest
from django.core.management import CommandError, call_command

from courses.models import GlossaryTerm, Section
from courses.services import DEFAULT_CONTENT_ROOT, course_load

pytestmark = pytest.mark.django_db


@pytest.fixture
def content(tmp_path):
    root = tmp_path / "chapter"
    shutil.copytree(DEFAULT_CONTENT_ROOT, root)
    return root


def test_it_imports_every_section_and_term():
    report = course_load()
    assert Section.objects.count() == len(list((DEFAULT_CONTENT_ROOT / "sections").glob("*.md"))) >= 9
    assert GlossaryTerm.objects.count() >= 40
    assert len(report.created) == Section.objects.count() + GlossaryTerm.objects.count()


def test_running_it_twice_changes_nothing_the_second_time():
    course_load()
    report = course_load()
    assert report.created == [] and report.updated == []
    assert report.unchanged == Section.objects.count() + GlossaryTerm.objects.count()


def test_it_updates_a_changed_section_in_place(content):
    course_load(root=content)
    path = content / "sections" / "01-history.md"
    path.write_text(path.read_text().replace('title: "Neural networks: a short history"', 'title: "A new title"'))
    report = course_load(root=content)
    assert report.updated == ["section history (title)"]
    assert Section.objects.get(slug="history").title == "A new title"
    assert Section.objects.filter(slug="history").count() == 1


def test_every_jargon_term_of_the_chapter_has_a_definition():
    course_load()
    recap = ["label", "architecture", "model", "parameters", "fit", "train", "pretrained-model", "fine-tune",
             "epoch", "loss", "metric", "validation-set", "training-set", "overfitting", "cnn"]  # fmt: skip
    terms = {t.slug: t for t in GlossaryTerm.objects.filter(slug__in=recap)}
    assert sorted(terms) == sorted(recap)
    assert all(len(t.definition) > 40 and t.short for t in terms.values())


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda t: t.replace("slug: history", "slug: deep-learning-for-everyone"), "duplicate slug"),
        (lambda t: t.replace("order: 1", "order: first"), "01-history.md:4: order must be a positive whole number"),
        (lambda t: t.replace("---\n", "", 1), "01-history.md:1: front matter missing"),
        (lambda t: t.replace("title:", "title: [unclosed", 1), "01-history.md:"),
        (lambda t: t.replace("slug: history", "slug: flashcards"), "01-history.md:2: slug 'flashcards' is taken"),
    ],
)
def test_a_bad_section_file_fails_with_file_and_line_and_changes_nothing(content, edit, words):
    course_load(root=content)
    before = list(Section.objects.values_list("slug", "title", "body_markdown"))
    other = content / "sections" / "02-deep-learning-for-everyone.md"
    other.write_text(other.read_text() + "\nAn edit that must not land.\n")
    path = content / "sections" / "01-history.md"
    path.write_text(edit(path.read_text()))
    with pytest.raises(CommandError, match=words):
        call_command("loadcourse", root=content)
    assert list(Section.objects.values_list("slug", "title", "body_markdown")) == before


def test_a_link_to_a_missing_term_fails_with_the_line(content):
    path = content / "glossary.yaml"
    text = path.read_text().replace("related: [", "related: [no-such-term, ", 1)
    path.write_text(text)
    with pytest.raises(CommandError, match=r"glossary.yaml:\d+: .*missing term\(s\): no-such-term"):
        call_command("loadcourse", root=content)
    assert not GlossaryTerm.objects.exists() and not Section.objects.exists()


def test_loadcourse_names_each_changed_section_term_and_question(content, capsys):
    """A content fix must show up in the command's output, so whoever runs it can see what landed."""
    call_command("loadcourse", root=content)
    capsys.readouterr()
    section = content / "sections" / "05-neural-networks-and-sgd.md"
    section.write_text(section.read_text().replace("A worked example.", "A worked example, checked.", 1))
    glossary = content / "glossary.yaml"
    glossary.write_text(glossary.read_text().replace("SGD updates the weights", "SGD updates its weights", 1))
    questions = content / "questions" / "how-the-image-recognizer-works.yaml"
    questions.write_text(questions.read_text().replace("ready-trained `resnet32`", "ready-made `resnet32`", 1))
    call_command("loadcourse", root=content)
    out = capsys.readouterr().out.splitlines()
    assert "updated: section neural-networks-and-sgd (body_markdown)" in out
    assert "updated: term sgd (example)" in out
    assert "updated: question recognizer-resnet-depths (explanation, explanation_html)" in out
    assert "0 created, 2 updated, 0 deleted, 56 unchanged" in out
