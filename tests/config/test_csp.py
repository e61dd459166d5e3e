"""Every page carries a Content-Security-Policy that allows the site's own files only, and no
template needs more than that."""

import re

import pytest

from tests.support import REPO

pytestmark = pytest.mark.django_db


def _directives(response):
    header = response.headers.get("Content-Security-Policy", "")
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("url", ["/", "/chapter/", "/accounts/login/", "/admin/login/"])
def test_it_sends_a_policy_of_the_sites_own_files_only(client, url):
    policy = _directives(client.get(url))
    assert policy.get("script-src") == ["'self'"] and policy.get("style-src") == ["'self'"]
    assert policy.get("object-src") == ["'none'"] and policy.get("frame-ancestors") == ["'none'"]
    assert policy.get("default-src") == ["'self'"] and policy.get("base-uri") == ["'self'"]


def test_it_sends_the_policy_to_a_logged_in_student_too(client, student):
    client.force_login(student)
    assert _directives(client.get("/experiments/models/")).get("script-src") == ["'self'"]


# What the policy refuses: a <script> with a body, a <style> element, a style="" attribute, an
# on...="" handler, a javascript: link.
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


def test_no_template_has_an_inline_script_style_or_handler():
    found = [
        f"{path.relative_to(REPO)}: {match.group(0)}"
        for path in sorted((REPO / "templates").rglob("*.html"))
        for match in INLINE.finditer(path.read_text())
    ]
    assert found == []
