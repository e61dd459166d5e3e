"""The site's own scripts run under its Content-Security-Policy: pages that use them (glossary tips,
a quiz that saves as the student types, the experiment form) log no error and no CSP violation."""

from tests.browser.conftest import axe_violations

SECTION = "/chapter/how-the-image-recognizer-works/"
QUIZ = "/quizzes/jargon/"

# Before any of the page's own scripts: every violation the browser reports, kept on the window.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective}: ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _watch(page):
    """Console errors and uncaught exceptions, as they come."""
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.context.add_init_script(RECORD_VIOLATIONS)
    return problems


def _violations(page):
    return page.evaluate("() => window.__cspViolations")


def test_the_sites_scripts_run_under_its_policy(student_page, shots):
    page = student_page()
    problems = _watch(page)

    response = page.goto(SECTION)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # The watch sees a violation: an injected inline script is refused, and reported.
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1'; "
                  "document.body.append(s); }")  # fmt: skip
    page.wait_for_function("() => window.__cspViolations.length > 0")
    assert page.evaluate("() => window.ran") is None and problems
    problems.clear()
    page.evaluate("() => { window.__cspViolations = []; }")

    term = page.locator("a.term").first  # glossary.js: the tip on hover
    term.scroll_into_view_if_needed()
    term.hover()
    page.locator(".term-wrap").first.locator(".term-tip").wait_for(state="visible")
    shots("section", page, full_page=False)
    assert _violations(page) == [] and problems == []
    assert axe_violations(page) == []  # axe itself is injected without breaking the policy

    page.goto(QUIZ)  # quiz.js: saves each answer as it changes
    page.check("input[name=mode][value=practice]")
    with page.expect_navigation():
        page.click("form.start-form button[type=submit]")
    # The draw is random: the first question may be a matching one (selects); take the first with choices.
    first = page.locator("fieldset.question").filter(has=page.locator("ul.choices input")).first
    with page.expect_response(lambda r: r.request.method == "POST" and r.status == 200):
        first.locator("ul.choices input").first.check()
    first.locator("[data-saved-for]").filter(has_text="Saved").wait_for()
    shots("quiz", page)
    assert _violations(page) == [] and problems == []

    page.goto("/experiments/new/")  # job.js on the experiment form
    page.locator("form.job-form").wait_for()
    page.wait_for_load_state("networkidle")
    shots("job-form", page)
    assert _violations(page) == [] and problems == []
