"""The page looked at as a person would, compared by structure rather than pixels: which elements are in the
viewport, where, and whether anything scrolls sideways. A phone (390x844, and 320 wide, the narrowest in use) and a
desktop (1280x900), light and dark, in Chromium and Firefox. One browser per engine for the whole module, so the
matrix costs seconds, not a browser launch per case.

Screenshots land in artifacts/ (layout-<case>-<size>-<scheme>-<browser>.png) for a person to look at."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from server.emulators.scripted import ScriptedRecognizer
from testkit.browsers import launch, new_page
from testkit.stack import Stack, stack

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
CLIP = SPEECH / "slt-weather-48k.wav"
PHONE = {"width": 390, "height": 844}
NARROWEST = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 900}
TIMEOUT_MS = 20_000

# Where each element is, in one read: its box in the viewport, and whether it is shown at all.
BOXES_JS = """(ids) => {
  const out = {};
  for (const id of ids) {
    const el = document.getElementById(id);
    if (!el) { out[id] = null; continue; }
    const r = el.getBoundingClientRect();
    const shown = r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
    out[id] = { top: r.top, bottom: r.bottom, left: r.left, right: r.right, shown };
  }
  return {
    boxes: out,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    innerHeight: window.innerHeight,
  };
}"""

# Elements wider than the viewport, by id or tag: the culprits when the page scrolls sideways.
OVERFLOW_JS = """() => [...document.querySelectorAll('body *')]
  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5 && el.getClientRects().length)
  .filter((el) => !el.closest('.visually-hidden, .skip'))
  .map((el) => el.id || el.className || el.tagName).slice(0, 8)"""


@pytest.fixture(scope="module")
def layout_stack() -> Iterator[Stack]:
    with stack(ScriptedRecognizer(ms_per_word=300, words_per_utterance=4)) as s:
        yield s


@pytest.fixture(scope="module", params=["chromium", "firefox"])
def layout_browser(request: pytest.FixtureRequest, pw: Playwright) -> Iterator[tuple[str, Browser | BrowserContext]]:
    name: str = request.param
    with launch(pw, name, CLIP) as browser:
        yield name, browser


def structure(page: Page, *ids: str) -> dict[str, Any]:
    data: dict[str, Any] = page.evaluate(BOXES_JS, list(ids))
    return data


def assert_no_sideways_scroll(page: Page) -> None:
    data = structure(page)
    assert data["scrollWidth"] <= data["innerWidth"], (data["scrollWidth"], page.evaluate(OVERFLOW_JS))


def in_view(box: dict[str, Any] | None, height: float) -> bool:
    return bool(box and box["shown"] and box["top"] >= 0 and box["bottom"] <= height)


def open_page(browser: Browser | BrowserContext, name: str, url: str, size: dict[str, int]) -> Page:
    page = new_page(browser, name, CLIP)
    page.set_viewport_size(size)  # type: ignore[arg-type]
    page.goto(url + "/")
    page.wait_for_selector("#app[data-ready=true]")
    return page


def schemes(page: Page) -> Iterator[str]:
    """Light, then dark where the browser can be told (Firefox over BiDi ignores emulated media)."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        if page.evaluate(f"() => matchMedia('(prefers-color-scheme: {scheme})').matches"):
            yield scheme
    page.emulate_media(color_scheme="light")


def snap(page: Page, artifacts: Path, case: str, size: dict[str, int], scheme: str, name: str) -> None:
    page.screenshot(path=str(artifacts / f"layout-{case}-{size['width']}-{scheme}-{name}.png"), animations="disabled")


def test_phone_puts_the_transcript_and_start_first_and_remembers_the_settings_panel(
    layout_browser: tuple[str, Browser | BrowserContext], layout_stack: Stack, artifacts: Path
) -> None:
    name, browser = layout_browser
    page = open_page(browser, name, layout_stack.url, PHONE)
    try:
        page.evaluate("() => localStorage.clear()")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        for scheme in schemes(page):
            s = structure(page, "start", "stop", "transcript", "settings-toggle", "settings-body", "provider")
            b = s["boxes"]
            # Start and the top of the transcript on the first screen; the settings folded to one line above them.
            assert in_view(b["start"], PHONE["height"]) and in_view(b["stop"], PHONE["height"]), b
            assert b["transcript"]["shown"] and b["transcript"]["top"] < PHONE["height"] / 2, b["transcript"]
            assert b["settings-toggle"]["shown"] and not b["settings-body"]["shown"], b
            assert page.inner_text("#settings-summary") != ""
            assert_no_sideways_scroll(page)
            snap(page, artifacts, "idle", PHONE, scheme, name)
        # Opened, the settings push the transcript down; the choice outlives a reload.
        page.click("#settings-toggle")
        assert page.get_attribute("#settings-toggle", "aria-expanded") == "true"
        assert page.is_visible("#provider")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        assert page.is_visible("#provider")
        assert_no_sideways_scroll(page)
        page.click("#settings-toggle")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        assert page.is_hidden("#provider")
    finally:
        page.close()


def test_nothing_scrolls_sideways_down_to_320_px_even_with_everything_open(
    layout_browser: tuple[str, Browser | BrowserContext], layout_stack: Stack
) -> None:
    name, browser = layout_browser
    page = open_page(browser, name, layout_stack.url, NARROWEST)
    try:
        page.evaluate("() => localStorage.setItem('live-stt.settings-folded', 'false')")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        page.click("#diagnostics summary")
        page.click("#history-limits summary")
        assert_no_sideways_scroll(page)
        b = structure(page, "start", "transcript")["boxes"]
        assert b["start"]["shown"] and b["start"]["right"] <= NARROWEST["width"], b
    finally:
        page.close()


def test_desktop_keeps_two_columns_with_the_settings_open(
    layout_browser: tuple[str, Browser | BrowserContext], layout_stack: Stack, artifacts: Path
) -> None:
    name, browser = layout_browser
    page = open_page(browser, name, layout_stack.url, DESKTOP)
    try:
        # Even when folded on a phone earlier: on a wide screen the column is always there and the toggle is not.
        page.evaluate("() => localStorage.setItem('live-stt.settings-folded', 'true')")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        for scheme in schemes(page):
            b = structure(page, "provider", "transcript", "start", "settings-toggle", "history")["boxes"]
            assert b["provider"]["shown"] and not b["settings-toggle"]["shown"], b
            assert b["provider"]["right"] < b["transcript"]["left"], b
            assert abs(b["provider"]["top"] - b["start"]["top"]) < 200, b
            assert in_view(b["start"], DESKTOP["height"]) and b["history"]["top"] > b["transcript"]["bottom"], b
            assert_no_sideways_scroll(page)
            snap(page, artifacts, "idle", DESKTOP, scheme, name)
    finally:
        page.close()


# The offline engine's fallback, made on demand: the first final from the engine's socket is preceded by the
# WARNING it sends when the accurate pass is too slow (server/engine/twopass.py FALLBACK_WARNING).
FALLBACK = "The accurate pass was too slow; this final is the fast pass's text."


def inject_fallback(page: Page) -> None:
    def handler(ws: Any) -> None:
        server = ws.connect_to_server()
        marked = {"done": False}

        def to_page(message: str | bytes) -> None:
            if (
                isinstance(message, str)
                and not marked["done"]
                and '"isFinal": true' in message.replace('"isFinal":true', '"isFinal": true')
                and '"tokens": []' not in message
            ):
                marked["done"] = True
                ws.send(json.dumps({"type": "WARNING", "message": FALLBACK}))
                # The fast pass's text as it comes: lower case, no punctuation.
                data = json.loads(message)
                for token in data["textSegment"]["tokens"]:
                    token["text"] = str(token["text"]).lower().strip(".,?!")
                message = json.dumps(data)
            ws.send(message)

        server.on_message(to_page)

    page.route_web_socket("**/api/local/stream**", handler)


def test_a_fallback_final_is_marked_rough_with_one_explanation_not_a_banner(
    layout_browser: tuple[str, Browser | BrowserContext], layout_stack: Stack
) -> None:
    name, browser = layout_browser
    if name != "chromium":
        pytest.skip("Playwright routes WebSockets in Chromium only over this channel")
    page = open_page(browser, name, layout_stack.url, PHONE)
    try:
        inject_fallback(page)
        page.evaluate("() => localStorage.setItem('live-stt.settings-folded', 'false')")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        page.select_option("#provider", "local")
        page.click("#start")
        page.wait_for_selector("#transcript .final >> nth=1", timeout=TIMEOUT_MS)
        page.click("#stop")
        page.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)
        rough = page.locator("#transcript .final.rough")
        assert rough.count() == 1
        text = rough.locator(".text").inner_text()
        assert text[0].isupper() and text.endswith("."), text
        assert page.locator("#warnings > *").count() == 0, page.inner_text("#warnings")
        assert page.is_hidden("#rough-note")
        page.click("#transcript .rough-mark")
        assert page.is_visible("#rough-note") and "quick first listen" in page.inner_text("#rough-note")
        assert page.get_attribute("#transcript .rough-mark", "aria-expanded") == "true"
        assert_no_sideways_scroll(page)
    finally:
        page.close()


def test_the_history_lists_the_recording_at_its_first_final_while_it_goes_on(
    layout_browser: tuple[str, Browser | BrowserContext], layout_stack: Stack
) -> None:
    name, browser = layout_browser
    page = open_page(browser, name, layout_stack.url, DESKTOP)
    try:
        page.evaluate("() => indexedDB.deleteDatabase('live-stt-transcripts')")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        assert page.is_visible("#history-empty")
        page.select_option("#provider", "local")
        page.click("#start")
        page.wait_for_selector("#transcript .final", timeout=TIMEOUT_MS)
        # Still recording: the row is there with its first words, marked recording.
        page.wait_for_selector("#history-list li[data-state=recording]", timeout=3000)
        assert page.is_hidden("#history-empty")
        assert page.get_attribute("#state", "data-state") == "streaming"
        first = page.inner_text("#transcript .final .text")
        assert first.split()[0] in page.inner_text("#history-list li .history-words")
        page.click("#stop")
        page.wait_for_selector("#history-list li[data-state=stopped]", timeout=TIMEOUT_MS)
        # A second recording on the same transcript: its row says recording again by its first final.
        n = page.locator("#transcript .final").count()
        page.click("#start")
        page.wait_for_selector(f"#transcript .final >> nth={n}", timeout=TIMEOUT_MS)
        page.wait_for_selector("#history-list li[data-state=recording]", timeout=3000)
        assert page.locator("#history-list li").count() == 1
        page.click("#cancel")
    finally:
        page.close()
