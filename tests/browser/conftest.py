"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Every test here is transactional (live_server makes it so), logs in through the login form and
saves screenshots under test-artifacts/browser/. axe-core comes from node_modules (`npm ci`).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support import REPO

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "browser"
README_SHOTS = REPO / "docs" / "screenshots"
PASSWORD = "pw-for-tests-1"


def pytest_collection_modifyitems(items):
    """Mark the browser tests and run them last: their session-wide Celery worker would otherwise
    already be consuming the queues when tests that start workers of their own run."""
    here = Path(__file__).parent
    browser = [item for item in items if Path(str(item.fspath)).parent == here]
    for item in browser:
        item.add_marker(pytest.mark.browser)
    items[:] = [item for item in items if item not in browser] + browser


@pytest.fixture(scope="module")
def browser():
    """Chromium for one module. Playwright's sync API leaves an asyncio loop running in this
    thread while it is open, which Django's async-safety check would take for async code; the
    ORM calls made between browser steps are ordinary synchronous ones, so the check is switched
    off for exactly as long as Playwright runs (and not for the tests outside tests/browser)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` (or `make test`) installs it")
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield chromium
            chromium.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def shots(request):
    """shots("name", page): a full-page PNG in test-artifacts/browser/<test>-<name>.png.

    readme="job" also writes docs/screenshots/job.png when JOURNEY_README_SHOTS=1
    (`make screenshots`): the README's pictures are the ones this suite takes."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)

    def save(name, page, *, full_page=True, readme=None):
        path = ARTIFACTS / f"{test}-{name}.png"
        page.screenshot(path=path, full_page=full_page)
        if readme and os.environ.get("JOURNEY_README_SHOTS") == "1":
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SHOTS / f"{readme}.png")

    return save


@pytest.fixture
def course(transactional_db):
    from courses.services import course_load
    from quizzes.services import question_bank_load

    course_load()
    question_bank_load()


@pytest.fixture
def new_page(browser, live_server):
    """new_page(width=1200, scheme="light"): a fresh browser context, with no one logged in."""
    contexts = []

    def make(*, width=1200, height=900, scheme="light"):
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme,
                                      base_url=live_server.url)  # fmt: skip
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # "Hand it in now?"
        return page

    yield make
    for context in contexts:
        context.close()


def login(page, username, password=PASSWORD):
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.fixture
def student_page(new_page, student, course):
    """A logged-in student's page; student_page(width=..., scheme=...) for another one."""

    def make(**kwargs):
        page = new_page(**kwargs)
        login(page, student.username)
        return page

    return make


def axe_violations(page, *, impacts=("serious", "critical")):
    """Run axe-core on the page; the violations of the given impacts, one readable line each."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (or `make browser`)")
    # Evaluated, not added as a <script> element: the site's Content-Security-Policy refuses inline scripts.
    page.evaluate(f"() => {{ {AXE.read_text()}\n; window.axe = axe; }}")
    violations = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    lines = []
    for v in violations:
        if v["impact"] in impacts:
            targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:4])
            lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']} at {targets}")
    return lines


def horizontal_overflow(page):
    """How many CSS pixels the page is wider than the viewport (0 when it does not scroll sideways)."""
    return page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
