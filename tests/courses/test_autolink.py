"""Glossary auto-linking: first mention, longest alias, never in code, headings or links."""

import re
import shutil

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from courses.autolink import LinkTarget, autolink
from courses.models import GlossaryTerm, Section
from courses.rendering import render_markdown, render_section, sanitize
from courses.services import DEFAULT_CONTENT_ROOT, course_load

TERMS = [
    LinkTarget("loss", "/chapter/glossary/loss/", "How wrong the model is.", ("loss", "losses")),
    LinkTarget(
        "loss-function", "/chapter/glossary/loss-function/", "Turns predictions into a loss.", ("loss function",)
    ),
    LinkTarget("model", "/chapter/glossary/model/", "Architecture plus parameters.", ("model", "models")),
    LinkTarget(
        "pretrained-model",
        "/chapter/glossary/pretrained-model/",
        "Trained before.",
        ("pretrained model", "pre-trained model"),
    ),
    LinkTarget("gradient-descent", "/chapter/glossary/gradient-descent/", "Step downhill.", ("gradient descent",)),
    LinkTarget("sgd", "/chapter/glossary/sgd/", "Downhill in batches.", ("sgd", "stochastic gradient descent")),
    LinkTarget("epoch", "/chapter/glossary/epoch/", "One pass over the data.", ("epoch", "epochs")),
]


def linked(markdown: str) -> list[tuple[str, str]]:
    """(slug, linked text) for every term link in the rendered Markdown, in order."""
    html = render_section(markdown, TERMS).html
    return re.findall(r'<a class="term" href="/chapter/glossary/([^/]+)/"[^>]*>([^<]+)</a>', html)


def test_it_links_only_the_first_mention_of_a_term():
    assert linked("A model is a model. Models everywhere.") == [("model", "model")]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The loss function returns a loss.", [("loss-function", "loss function"), ("loss", "loss")]),
        ("Start from a pretrained model.", [("pretrained-model", "pretrained model")]),
        ("Start from a pre-trained model.", [("pretrained-model", "pre-trained model")]),
        ("Use stochastic gradient descent.", [("sgd", "stochastic gradient descent")]),
        ("Plain gradient descent.", [("gradient-descent", "gradient descent")]),
    ],
)
def test_it_prefers_the_longest_alias(text, expected):
    assert linked(text) == expected


def test_a_repeated_long_phrase_does_not_fall_back_to_its_shorter_term():
    # The second "loss function" is consumed whole, so it cannot link "loss" instead.
    assert linked("A loss function. Another loss function.") == [("loss-function", "loss function")]


def test_it_matches_whole_words_case_insensitively():
    assert linked("Three Epochs later the lossy codec modelled nothing.") == [("epoch", "Epochs")]


def test_a_phrase_wrapped_across_lines_still_links():
    assert linked("The loss\nfunction here.") == [("loss-function", "loss\nfunction")]


def test_it_never_links_inside_code_pre_headings_or_links():
    markdown = (
        "## The model\n\n"
        "Call `model.fit()` or read [the model docs](https://example.com/).\n\n"
        "```python\nloss = model(x)\n```\n\n"
        "    epoch = 1\n\n"
        "Finally the model and its loss."
    )
    assert linked(markdown) == [("model", "model"), ("loss", "loss")]
    html = render_section(markdown, TERMS).html
    assert "<h2>The model</h2>" in html
    assert "<code>model.fit()</code>" in html


def test_the_link_carries_an_accessible_tooltip_that_survives_the_sanitizer():
    html = render_section("An epoch passes.", TERMS).html
    assert re.search(
        r'<span class="term-wrap"><a class="term" href="/chapter/glossary/epoch/" aria-describedby="tip-epoch"[^>]*>'
        r'epoch</a><span class="term-tip" role="tooltip" id="tip-epoch">One pass over the data\.</span></span>',
        html,
    )
    assert sanitize(html) == html  # the allow-list keeps exactly what auto-linking adds


def test_a_hostile_short_definition_is_shown_as_text():
    evil = [LinkTarget("epoch", "/chapter/glossary/epoch/", '<script>alert(1)</script>" onmouseover="x', ("epoch",))]
    html = render_section("An epoch.", evil).html
    assert "<script" not in html
    assert not re.search(r"<[^>]*\sonmouseover=", html)  # text inside the tip, never an attribute
    assert "&lt;script&gt;" in html


def test_the_sanitizer_still_strips_attributes_it_does_not_need():
    html = sanitize('<a href="/x" data-term="x" onclick="evil()">x</a><span style="color:red" id="ok">y</span>')
    assert "data-term" not in html and "onclick" not in html and "style" not in html
    assert 'id="ok"' in html


def test_search_text_leaves_out_markup_and_tooltips():
    rendered = render_section("An **epoch** passes.\n\n```python\nx = 1\n```", TERMS)
    assert rendered.text == "An epoch passes. x = 1"
    assert rendered.mentions == ["epoch"]


def test_autolink_leaves_html_without_terms_as_it_was():
    html = render_markdown('Nothing to see, *here*: 1 < 2 & "quotes".')
    out, slugs = autolink(html, TERMS)
    assert slugs == [] and sanitize(out) == html


# ---------------------------------------------------------------- with the chapter's content


@pytest.fixture
def content(tmp_path):
    root = tmp_path / "chapter"
    shutil.copytree(DEFAULT_CONTENT_ROOT, root)
    return root


@pytest.mark.django_db
def test_the_chapter_links_each_term_once_per_section_and_records_it():
    course_load()
    section = Section.objects.get(slug="neural-networks-and-sgd")
    slugs = re.findall(r'<a class="term" href="/chapter/glossary/([^/]+)/"', section.body_html)
    assert len(slugs) == len(set(slugs)) > 5
    assert "sgd" in slugs  # "stochastic gradient descent", not "gradient descent"
    assert set(section.mentions.values_list("slug", flat=True)) == set(slugs)


@pytest.mark.django_db
def test_loadcourse_relinks_sections_when_a_term_changes(content):
    course_load(root=content)
    path = content / "glossary.yaml"
    old = "One stage of a neural network; the outputs of one layer become the inputs of the next."
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, "A stage of a network, rewritten for this test."))
    report = course_load(root=content)
    assert "term layer (short)" in " ".join(report.updated)
    assert "section neural-networks-and-sgd (glossary links)" in report.updated
    html = Section.objects.get(slug="neural-networks-and-sgd").body_html
    assert "A stage of a network, rewritten for this test." in html and old not in html


@pytest.mark.django_db
def test_an_alias_claimed_by_two_terms_fails_with_the_line(content):
    path = content / "glossary.yaml"
    path.write_text(path.read_text().replace("aliases: [epoch, epochs]", "aliases: [epoch, epochs, layer]"))
    with pytest.raises(CommandError, match=r"glossary.yaml:\d+: alias 'layer' of term '[a-z-]+' is also an alias of"):
        call_command("loadcourse", root=content)
    assert not Section.objects.exists()


@pytest.mark.django_db
def test_editing_a_term_in_the_admin_relinks_the_sections(admin_client):
    course_load()
    term = GlossaryTerm.objects.get(slug="epoch")
    data = {
        "slug": "epoch", "term": "Epoch", "aliases": '["epoch", "epochs"]', "short": "Edited in the admin.",
        "definition": term.definition, "example": term.example, "section": term.section_id,
        "related": list(term.related.values_list("pk", flat=True)),
    }  # fmt: skip
    response = admin_client.post(reverse("admin:courses_glossaryterm_change", args=[term.pk]), data)
    assert response.status_code == 302
    assert "Edited in the admin." in Section.objects.get(slug="neural-networks-and-sgd").body_html


@pytest.mark.django_db
def test_editing_a_section_in_the_admin_links_its_terms(admin_client):
    course_load()
    section = Section.objects.get(slug="history")
    data = {"slug": "history", "title": "History", "order": 1, "objectives": "[]",
            "body_markdown": "Every epoch counts."}  # fmt: skip
    response = admin_client.post(reverse("admin:courses_section_change", args=[section.pk]), data)
    assert response.status_code == 302
    section.refresh_from_db()
    assert 'href="/chapter/glossary/epoch/"' in section.body_html
    assert list(section.mentions.values_list("slug", flat=True)) == ["epoch"]
