"""static/js/job.js on the new-experiment form, in Chromium: the form's own HTML as Django renders
it, the script inlined, no live server (the page's behaviour alone, without a worker)."""

from pathlib import Path

import pytest
from django.urls import reverse

from tests.support import REPO

CHROMIUM = "/usr/bin/chromium"

pytestmark = [pytest.mark.django_db, pytest.mark.browser]


@pytest.fixture
def form_html(client, student, monkeypatch, tmp_path):
    """The form where no torchvision weights are installed: the ResNets train from scratch only."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("JOURNEY_ALLOW_DOWNLOADS", raising=False)
    client.force_login(student)
    html = client.get(reverse("mlworker:new")).content.decode()
    script = '<script src="/static/js/job.js" defer></script>'
    assert script in html
    return html.replace(script, f"<script>{(REPO / 'static' / 'js' / 'job.js').read_text()}</script>")


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        yield browser.new_page()
        browser.close()


def test_picking_an_architecture_without_weights_unticks_pretrained_and_says_why(form_html, page):
    page.set_content(form_html)
    pretrained = page.locator("#id_pretrained")
    assert pretrained.is_checked() and pretrained.is_enabled()

    page.select_option("#id_arch", "resnet34")
    assert not pretrained.is_checked() and pretrained.is_disabled()
    assert page.locator("#id_pretrained_helptext").text_content() == (
        "ResNet-34's pretrained weights are not installed on this server, so it trains from scratch."
    )

    page.select_option("#id_arch", "efficientnet_lite0")  # the student's own choice comes back
    assert pretrained.is_checked() and pretrained.is_enabled()
    assert "Turn this off to train from random weights" in page.locator("#id_pretrained_helptext").text_content()
