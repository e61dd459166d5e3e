"""The chapter's experiment in a real browser: a tiny offline cat/dog run watched live, then a
prediction on an uploaded image. Uses the real Celery worker (tests/conftest.py)."""

import re

from PIL import Image, ImageDraw
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import axe_violations, horizontal_overflow

RECORD_JOB_CHANGES = """
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("job"), bar = document.getElementById("job-progress");
  if (!root || !bar) return;
  const table = document.querySelector("#epoch-table tbody");
  const note = () => {
    const changes = JSON.parse(sessionStorage.getItem("job-changes") || "[]");
    changes.push({live: root.dataset.live === "1", state: document.getElementById("job-state").textContent.trim(),
                  value: bar.value, rows: table.rows.length});
    sessionStorage.setItem("job-changes", JSON.stringify(changes));
  };
  note();
  const observer = new MutationObserver(note);
  observer.observe(bar, {attributes: true});
  observer.observe(table, {childList: true});
});
"""
TINY = {"#id_per_class": "12", "#id_image_size": "64", "#id_batch_size": "8", "#id_epochs": "1"}


def test_a_student_trains_the_cat_dog_model_and_asks_it_about_an_image(
    celery_worker, student_page, new_page, tmp_path, shots
):
    page = student_page()
    page.context.add_init_script(RECORD_JOB_CHANGES)
    page.goto("/experiments/new/?preset=quick")
    page.select_option("#id_dataset", "silhouettes-catdog")
    page.select_option("#id_arch", "efficientnet_lite0")
    for selector, value in TINY.items():
        page.fill(selector, value)
    shots("form", page, readme="form")
    with page.expect_navigation():
        page.click("form.job-form button[type=submit]")
    assert re.search(r"/experiments/\d+/$", page.url)
    job_url = page.url

    # Live: job.js polls the status once a second, moves the progress bar, fills the epoch table
    # and reloads the page when the job ends. A tiny job can finish within a poll or two, so the
    # page itself records every change the script makes (a MutationObserver, kept in
    # sessionStorage across the final reload) rather than this test sampling now and then.
    shots("live", page)
    try:  # for the README: the page while the model trains, if this tiny job is slow enough to catch
        page.wait_for_function(
            "() => document.getElementById('job').dataset.live === '1' && "
            "document.getElementById('job-progress').value > 0.3 && "
            "document.querySelectorAll('#epoch-table tbody tr').length >= 1",
            timeout=60_000,
        )
        shots("running", page, readme="job-running")
    except PlaywrightError:
        pass  # finished (or reloaded) first; the assertions below still see every change
    for _ in range(3):  # the page reloads once on the way
        try:
            page.wait_for_function("() => document.getElementById('job').dataset.live === '0'", timeout=240_000)
            break
        except PlaywrightError as error:
            if "destroyed" not in str(error) and "navigat" not in str(error):
                raise
    page.wait_for_load_state("load")
    state = page.locator("#job-state").inner_text().strip().lower()
    assert state == "succeeded", page.locator(".errors").all_inner_texts() or celery_worker.log_path.read_text()[-3000:]
    changes = page.evaluate("() => JSON.parse(sessionStorage.getItem('job-changes') || '[]')")
    values = [c["value"] for c in changes if c["live"]]
    rows = [c["rows"] for c in changes if c["live"]]
    assert values and max(values) > 0, f"the progress bar never moved: {changes}"
    assert values == sorted(values), f"the progress bar went backwards: {values}"
    assert max(rows) >= 1, f"the epoch table did not fill while the page was live: {changes}"

    # Finished: two epochs (head, whole), an error rate and a confusion matrix.
    assert page.locator("#epoch-table tbody tr").count() == 2
    error_rate = page.locator(".big-number strong").first.inner_text()
    assert 0 <= float(error_rate) <= 1
    assert page.locator("table.confusion tbody tr").count() == 2
    shots("finished", page, readme="job")
    assert axe_violations(page) == []

    # Ask the model about an image it has never seen: a dark cat-ish blob on white.
    image = tmp_path / "my-cat.png"
    picture = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(picture).ellipse((20, 30, 76, 90), fill="black")
    picture.save(image)
    page.set_input_files("#predict-form input[type=file]", str(image))
    with page.expect_navigation():
        page.click("#predict-form button[type=submit]")
    answer = page.locator("pre.chapter-output")
    answer.wait_for(timeout=90_000)
    text = answer.inner_text()
    match = re.search(r"Is this a cat\?: (True|False)\.\s+Probability it's a cat: ([0-9.]+)", text)
    assert match, text
    assert 0 <= float(match[2]) <= 1
    shots("prediction", page, readme="prediction")
    prediction_url = page.url
    assert axe_violations(page) == []

    # The same pages in dark mode, and the job page on a phone.
    dark = new_page(scheme="dark")
    dark.context.add_cookies(page.context.cookies())
    for name, url in [("job", job_url), ("prediction", prediction_url)]:
        dark.goto(url)
        shots(f"dark-{name}", dark)
        assert axe_violations(dark) == [], name
    phone = new_page(width=360, height=740)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(job_url)
    shots("phone-job", phone)
    assert horizontal_overflow(phone) <= 0
