"""Search across sections and the glossary: PostgreSQL full-text search there, word matching on SQLite.

These tests run on both databases (CI runs the suite on PostgreSQL too), so they only assert
what both promise: every result contains the words, in some form, and hits are marked.
"""

import re

import pytest
from django.db import connection
from django.urls import reverse

from courses.models import Section
from courses.selectors import search
from courses.services import course_load, section_render

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    course_load()


def test_it_finds_a_term_by_a_word_in_its_definition(course):
    # "Pitts" appears in the artificial neuron's definition, not in its name, aliases or short text.
    results = search(query="Pitts")
    assert "artificial-neuron" in [hit.url.rstrip("/").rsplit("/", 1)[-1] for hit in results.terms]
    hit = next(h for h in results.terms if h.url.endswith("/artificial-neuron/"))
    assert "<mark>Pitts</mark>" in hit.snippet


def test_it_finds_sections_by_words_in_their_body_and_marks_them(course):
    results = search(query="McCulloch")
    assert "/chapter/history/" in [hit.url for hit in results.sections]
    assert all("<mark>McCulloch</mark>" in hit.snippet for hit in results.sections)


def test_every_word_must_match(course):
    both = search(query="perceptron Rosenblatt")
    assert "Perceptron" in [hit.title for hit in both.terms]
    assert search(query="perceptron zzzqqq").count == 0


def test_a_title_match_ranks_first(course):
    results = search(query="validation test sets")
    assert results.sections and results.sections[0].url == "/chapter/validation-and-test-sets/"


def test_snippets_escape_the_content(course):
    section = Section.objects.create(
        slug="extra", title="Extra", order=99, body_markdown="Zebrafish swim when `a < b` and <em>x</em> & y."
    )
    section_render(section=section)
    [hit] = search(query="zebrafish").sections
    assert "&lt;" in hit.snippet and "&amp;" in hit.snippet
    assert not re.search(r"<(?!/?mark>)", hit.snippet)  # no tag but the marks


@pytest.mark.skipif(connection.vendor != "postgresql", reason="stemming is PostgreSQL's")
def test_postgres_matches_other_forms_of_a_word(course):
    assert "Overfitting" in [hit.title for hit in search(query="overfits").terms]


def test_the_search_page_shows_terms_and_sections(client, course):
    page = client.get(reverse("courses:search"), {"q": "Pitts"}).content.decode()
    assert 'href="/chapter/glossary/artificial-neuron/"' in page
    assert 'href="/chapter/history/"' in page
    assert 'value="Pitts"' in page  # kept in the header's search box too


def test_an_empty_search_asks_for_words_and_queries_nothing(client, course, django_assert_num_queries):
    # nothing: an anonymous visitor with an empty query touches no table
    with django_assert_num_queries(0):
        page = client.get(reverse("courses:search"), {"q": "   "}).content.decode()
    assert "Type a word or two" in page


def test_a_search_for_nothing_known_says_so(client, course):
    page = client.get(reverse("courses:search"), {"q": "zzzqqq"}).content.decode()
    assert "Nothing matches" in page


def test_every_page_has_the_search_box_and_the_flashcards_link(client, course):
    page = client.get(reverse("courses:chapter")).content.decode()
    assert f'action="{reverse("courses:search")}"' in page and 'role="search"' in page
    assert f'href="{reverse("courses:flashcards")}"' in page


def test_search_page_query_count_is_bounded(client, student, course, django_assert_num_queries):
    client.force_login(student)
    # django_session, auth_user, matching sections, matching terms
    with django_assert_num_queries(4):
        client.get(reverse("courses:search"), {"q": "loss"})
