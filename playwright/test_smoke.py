from __future__ import annotations

from playwright.sync_api import Playwright

from tests.support.browsers import launch, new_page


def test_page_loads(pw: Playwright, browser_name: str, app_url: str) -> None:
    with launch(pw, browser_name) as browser:
        page = new_page(browser, browser_name)
        page.goto(app_url + "/")
        assert page.locator("h1").inner_text() == "Live transcription"
