from __future__ import annotations

from playwright.sync_api import Playwright

from testkit.browsers import launch, new_page


def test_page_loads_under_its_strict_csp(pw: Playwright, browser_name: str, app_url: str) -> None:
    messages: list[str] = []
    with launch(pw, browser_name) as browser:
        page = new_page(browser, browser_name)
        page.on("console", lambda m: messages.append(m.text))
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        response = page.goto(app_url + "/")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        page.wait_for_selector("#app[data-ready='true']")
        assert page.locator("h1").inner_text() == "Live transcription"
        assert page.locator("#provider option").count() == 3
    # Every module, the worklet file and the styles load from the app itself: nothing is blocked.
    assert not [
        m for m in messages if "Content Security Policy" in m or "Content-Security-Policy" in m or "pageerror" in m
    ]
