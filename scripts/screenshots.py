"""Take the README's screenshots from a running Journey (`make run`), as a student would see it.

    .venv/bin/python scripts/screenshots.py [--base http://127.0.0.1:8000] [--user student1]

Drives Debian's /usr/bin/chromium headless through Playwright. Logs in; opens the chapter (with a
glossary tip shown), the flashcards and the experiment form; starts a quick experiment, waits for
it, asks the model about a validation image; saves PNGs in docs/screenshots/.
"""

import argparse
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", default="http://127.0.0.1:8000")
    p.add_argument("--user", default="student1")
    p.add_argument("--password", default="journey-demo")
    p.add_argument("--per-class", default="", help="images per class; empty for all 2,000 images")
    p.add_argument("--epochs", default="1")
    p.add_argument("--reading-only", action="store_true", help="the chapter, glossary and flashcards only")
    a = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{a.base}/accounts/login/")
        page.fill("#id_username", a.user)
        page.fill("#id_password", a.password)
        page.click("main button[type=submit]")
        page.wait_for_url(lambda url: "login" not in url)
        page.goto(f"{a.base}/chapter/first-model/")
        page.screenshot(path=OUT / "chapter.png")
        page.goto(f"{a.base}/chapter/how-the-image-recognizer-works/")
        term = page.locator("a.term").nth(2)
        term.evaluate("e => e.scrollIntoView({block: 'center'})")
        term.hover()
        page.wait_for_timeout(300)
        page.screenshot(path=OUT / "glossary-hover.png")
        page.goto(f"{a.base}/chapter/flashcards/")
        page.screenshot(path=OUT / "flashcards.png", full_page=True)
        if a.reading_only:
            browser.close()
            return
        page.goto(f"{a.base}/experiments/new/?preset=quick")
        page.screenshot(path=OUT / "form.png", full_page=True)
        page.fill("#id_per_class", a.per_class)
        page.fill("#id_epochs", a.epochs)
        page.click("form.job-form button[type=submit]")
        page.wait_for_selector("#job-progress")
        deadline = time.monotonic() + 600
        shot_running = False
        while time.monotonic() < deadline:
            state = page.inner_text("#job-state").strip().lower()
            if state == "running" and not shot_running and page.locator("#epoch-table tbody tr").count() >= 1:
                page.screenshot(path=OUT / "job-running.png", full_page=True)
                shot_running = True
            if state in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.5)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=OUT / "job.png", full_page=True)
        buttons = page.locator("button[name=validation]")
        if buttons.count():
            buttons.first.click()
            page.wait_for_selector(".bars, .errors", timeout=120_000)
            page.screenshot(path=OUT / "prediction.png", full_page=True)
        phone = browser.new_page(viewport={"width": 360, "height": 740})
        phone.context.add_cookies(page.context.cookies())
        phone.goto(page.url)
        browser.close()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
