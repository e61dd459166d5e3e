import re

import pytest
from django.urls import reverse

from courses.models import ReadingProgress, Section
from courses.rendering import render_markdown
from courses.services import course_load

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    course_load()


def test_markdown_never_lets_a_script_through():
    html = render_markdown(
        "Hello <script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n<img src=x onerror=alert(1)>"
    )
    assert "<script" not in html
    assert 'href="javascript' not in html
    assert not re.search(r"<img[^>]*onerror", html)
    assert "&lt;script&gt;" in html  # shown as text, not dropped silently


def test_admin_edits_are_sanitized_too(admin_client, course):
    section = Section.objects.get(slug="history")
    data = {"slug": "history", "title": "History", "order": 1, "objectives": "[]",
            "body_markdown": "Hi <script>alert('x')</script>"}  # fmt: skip
    response = admin_client.post(reverse("admin:courses_section_change", args=[section.pk]), data)
    assert response.status_code == 302
    section.refresh_from_db()
    assert "<script" not in section.body_html


def test_the_chapter_code_is_highlighted(client, course):
    page = client.get(reverse("courses:section", args=["first-model"])).content.decode()
    assert "vision_learner" in page and 'class="language-python"' in page and "<span" in page


def test_unknown_sections_and_terms_are_404_in_the_sites_style(client, course):
    for url in ("/chapter/no-such-section/", "/chapter/glossary/no-such-term/"):
        response = client.get(url)
        assert response.status_code == 404


def test_marking_a_section_read_shows_on_the_chapter_page(client, student, course):
    client.force_login(student)
    response = client.post(reverse("courses:mark_read", args=["history"]))
    assert response.status_code == 302
    assert ReadingProgress.objects.filter(user=student, section__slug="history").exists()
    page = client.get(reverse("courses:chapter")).content.decode()
    assert f"1 of {Section.objects.count()} sections read" in page
    assert "Continue where you left off" in page


def test_chapter_page_query_count_is_bounded(client, student, course, django_assert_num_queries):
    client.force_login(student)
    # django_session, auth_user, sections with read flags
    with django_assert_num_queries(3):
        client.get(reverse("courses:chapter"))
