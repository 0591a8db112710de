"""static/audio/pcm.js inside real Chromium and Firefox: the golden files must come out the same as under Node.
(WebKit runs the same check in test_webkit.py.)

The page imports /static/audio/pcm.js (served by the app) with a dynamic import(); golden inputs are served on a
fake same-origin path by page.route; the browser returns its outputs as base64 and the comparison happens here.
"""

from __future__ import annotations

from playwright.sync_api import Page, Playwright, Route

from testkit.browsers import launch, new_page
from tests.golden import DATA_DIR
from tests.support.dsp_check import GOLDEN_PREFIX, RUN_GOLDEN, check_golden, golden_args

TEST_PAGE = "/__dsp_test"


def _serve_golden(page: Page, app_url: str) -> None:
    def golden(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[-1]
        path = DATA_DIR / name
        if path.parent != DATA_DIR or not path.is_file():
            route.fulfill(status=404)
        else:
            route.fulfill(body=path.read_bytes(), content_type="application/octet-stream")

    page.route(app_url + TEST_PAGE, lambda route: route.fulfill(body="<!doctype html><title>dsp</title>",
                                                                 content_type="text/html"))
    page.route(app_url + GOLDEN_PREFIX + "*", golden)


def test_golden_pcm_in_browser(pw: Playwright, browser_name: str, app_url: str) -> None:
    with launch(pw, browser_name) as browser:
        page = new_page(browser, browser_name)
        _serve_golden(page, app_url)
        page.goto(app_url + TEST_PAGE)
        result = page.evaluate(RUN_GOLDEN, golden_args())
    assert ("Firefox" if browser_name == "firefox" else "Chrome") in result["agent"]
    check_golden(result)
