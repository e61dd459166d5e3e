import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
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


def test_unknown_sections_and_terms_are_404_in_the_sites_style(client, student, course):
    client.force_login(student)
    responses = [
        client.get("/chapter/no-such-section/"),
        client.get("/chapter/glossary/no-such-term/"),
        client.post("/chapter/no-such-section/read/"),
    ]
    for response in responses:
        assert response.status_code == 404
        page = response.content.decode()
        assert "We could not find that page" in page and 'class="site-header"' in page


def test_every_page_links_a_small_svg_favicon(client):
    """Without the link a browser asks for /favicon.ico, a 404 in the log for every page."""
    page = client.get(reverse("login")).content.decode()
    href = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)[1]
    path = finders.find(href.removeprefix(settings.STATIC_URL))
    assert path, href
    assert Path(path).read_text().startswith("<svg") and Path(path).stat().st_size < 1024


def test_every_section_ends_with_a_check_yourself_link_to_its_quiz(client, course):
    for slug in Section.objects.values_list("slug", flat=True):
        page = client.get(reverse("courses:section", args=[slug])).content.decode()
        end = page[page.index('<footer class="section-end">') :]
        assert f'href="{reverse("quizzes:section", args=[slug])}"' in end and "Check yourself" in end


def test_reaching_the_end_marks_the_section_read_through_a_csrf_protected_post(student, course):
    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    page = client.get(reverse("courses:section", args=["history"])).content.decode()
    url = reverse("courses:mark_read", args=["history"])
    assert f'<div id="section-end" data-mark-read="{url}"' in page and "js/reading.js" in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(url, HTTP_ACCEPT="application/json").status_code == 403
    assert not ReadingProgress.objects.exists()
    response = client.post(url, HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200 and response.json() == {"section": "history", "read": True}
    assert ReadingProgress.objects.filter(user=student, section__slug="history").count() == 1
    again = client.get(reverse("courses:section", args=["history"])).content.decode()
    assert "section-end" not in again.replace('class="section-end"', "") and "js/reading.js" not in again
    assert "You have read this section." in again


def test_anonymous_readers_get_no_automatic_marking(client, course):
    page = client.get(reverse("courses:section", args=["history"])).content.decode()
    assert 'id="section-end"' not in page and "js/reading.js" not in page


def test_section_page_query_count_is_bounded(client, student, course, django_assert_num_queries):
    client.force_login(student)
    # django_session, auth_user, the section with its read flag, previous section, next section
    with django_assert_num_queries(5):
        client.get(reverse("courses:section", args=["first-model"]))


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
