"""The chapter's experiment in a real browser: a tiny offline cat/dog run watched live, then a
prediction on an uploaded image. Uses the real Celery worker (tests/conftest.py)."""

import re
import time

from PIL import Image, ImageDraw

from tests.browser.conftest import axe_violations, horizontal_overflow

TINY = {"#id_per_class": "12", "#id_image_size": "64", "#id_batch_size": "8", "#id_epochs": "1"}


def test_a_student_trains_the_cat_dog_model_and_asks_it_about_an_image(
    celery_worker, student_page, new_page, tmp_path, shots
):
    page = student_page()
    page.goto("/experiments/new/?preset=quick")
    page.select_option("#id_dataset", "silhouettes-catdog")
    page.select_option("#id_arch", "efficientnet_lite0")
    for selector, value in TINY.items():
        page.fill(selector, value)
    shots("form", page)
    with page.expect_navigation():
        page.click("form.job-form button[type=submit]")
    assert re.search(r"/experiments/\d+/$", page.url)
    job_url = page.url

    # Live: the progress bar moves and the epoch table fills while the job runs.
    progress, rows, shot = set(), 0, False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = page.locator("#job-state").inner_text().strip().lower()
        if state in ("succeeded", "failed", "cancelled"):
            break
        if page.locator("#job-progress").is_visible():
            progress.add(float(page.locator("#job-progress").get_attribute("value") or 0))
            progress.add(page.evaluate("() => document.getElementById('job-progress').value"))
        rows = max(rows, page.locator("#epoch-table tbody tr").count())
        if rows and not shot:
            shots("running", page)
            shot = True
        time.sleep(0.2)
    assert state == "succeeded", page.locator(".errors").all_inner_texts() or celery_worker.log_path.read_text()[-3000:]
    page.wait_for_load_state("load")
    assert len(progress - {0.0}) >= 2, f"the progress bar never moved: {sorted(progress)}"
    assert rows >= 1, "the epoch table did not fill while the job ran"

    # Finished: two epochs (head, whole), an error rate and a confusion matrix.
    assert page.locator("#epoch-table tbody tr").count() == 2
    error_rate = page.locator(".big-number strong").first.inner_text()
    assert 0 <= float(error_rate) <= 1
    assert page.locator("table.confusion tbody tr").count() == 2
    shots("finished", page)
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
    shots("prediction", page)
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
