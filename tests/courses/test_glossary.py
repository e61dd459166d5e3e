"""The glossary: A to Z with a filter that works with and without JavaScript, and a page per term."""

import re

import pytest
from django.urls import reverse

from courses.models import GlossaryTerm
from courses.services import course_load

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    course_load()


def entries(page: str) -> list[tuple[str, bool]]:
    """(slug, shown) for every glossary entry, in page order."""
    found = re.findall(r'<div class="entry" data-search="[^"]*"( hidden)?>\s*<dt id="([^"]+)">', page)
    return [(slug, not hidden) for hidden, slug in found]


def test_the_glossary_lists_every_term_once_grouped_a_to_z(client, course):
    page = client.get(reverse("courses:glossary")).content.decode()
    letters = re.findall(r'<h2 id="letter-([A-Z#])">', page)
    assert letters == sorted(letters) and len(letters) == len(set(letters)) > 10
    slugs = [slug for slug, shown in entries(page)]
    assert sorted(slugs) == sorted(GlossaryTerm.objects.values_list("slug", flat=True))
    assert all(shown for _, shown in entries(page))
    # Each term sits under its own first letter.
    for letter, body in re.findall(r'<h2 id="letter-([A-Z])">(.*?)</section>', page, re.S):
        names = re.findall(r'<dt id="[^"]+"><a href="[^"]+">([^<]+)</a>', body)
        assert names and all(n[0].upper() == letter for n in names)


def test_without_javascript_q_filters_on_the_server(client, course):
    page = client.get(reverse("courses:glossary"), {"q": "validation"}).content.decode()
    shown = {slug for slug, is_shown in entries(page) if is_shown}
    assert "validation-set" in shown
    assert "perceptron" not in shown
    assert ("perceptron", False) in entries(page)  # hidden, not dropped: the JS filter can bring it back
    assert f"of {GlossaryTerm.objects.count()} terms match" in page


def test_the_filter_matches_aliases_and_short_definitions(client, course):
    by_alias = client.get(reverse("courses:glossary"), {"q": "SGD"}).content.decode()
    shown = {s for s, is_shown in entries(by_alias) if is_shown}
    assert "sgd" in shown and "perceptron" not in shown
    by_meaning = client.get(reverse("courses:glossary"), {"q": "nerve cell"}).content.decode()
    assert ("artificial-neuron", True) in entries(by_meaning)


def test_a_filter_that_matches_nothing_says_so(client, course):
    page = client.get(reverse("courses:glossary"), {"q": "zzzz"}).content.decode()
    assert not any(shown for _, shown in entries(page))
    assert '<p id="glossary-empty">' in page


def test_a_term_page_shows_definition_example_related_and_sections(client, course):
    term = GlossaryTerm.objects.get(slug="loss-function")
    page = client.get(reverse("courses:term", args=["loss-function"])).content.decode()
    assert term.definition in page.replace("&#x27;", "'")
    assert "<h2>Example</h2>" in page
    for related in term.related.all():
        assert f'href="{related.get_absolute_url()}"' in page
    assert f'Taught in <a href="{term.section.get_absolute_url()}">' in page
    mentioned = list(term.mentioned_in.order_by("order"))
    assert len(mentioned) >= 2
    listed = re.findall(r'<ul class="mentions">(.*?)</ul>', page, re.S)[0]
    assert re.findall(r'href="([^"]+)"', listed) == [s.get_absolute_url() for s in mentioned]


def test_every_term_in_the_chapter_has_a_working_page(client, course):
    for slug in GlossaryTerm.objects.values_list("slug", flat=True):
        assert client.get(reverse("courses:term", args=[slug])).status_code == 200


def test_glossary_page_query_count_is_bounded(client, student, course, django_assert_num_queries):
    client.force_login(student)
    # django_session, auth_user, terms with their sections
    with django_assert_num_queries(3):
        client.get(reverse("courses:glossary"), {"q": "loss"})


def test_term_page_query_count_is_bounded(client, student, course, django_assert_num_queries):
    client.force_login(student)
    # django_session, auth_user, the term with its section, related terms, sections that mention it
    with django_assert_num_queries(5):
        client.get(reverse("courses:term", args=["loss"]))
