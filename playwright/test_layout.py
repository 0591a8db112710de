"""The page looked at as a person would, compared by structure rather than pixels: which elements are in the
viewport, where, and whether anything scrolls sideways. A phone (390x844, and 320 wide, the narrowest in use) and a
desktop (1280x900); idle, listening with an interim, after Stop, and with a saved transcript open; light and dark, in
Chromium (emulated media), Firefox (over BiDi it ignores emulated media: a second Firefox is launched dark by a pref)
and WebKit (its WebDriver cannot emulate media: a second MiniBrowser runs in a dark GTK theme). One browser per
engine and scheme for the whole module (WebKit: one for both sizes), so the matrix costs seconds, not a browser
launch per case.

Screenshots land in artifacts/ (layout-<case>-<width>-<scheme>-<browser>.png) for a person to look at."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from server.emulators.scripted import ScriptedRecognizer
from testkit.axe import AXE_RUN, axe_script
from testkit.browsers import launch, new_page
from testkit.stack import Stack, stack
from tests.support.webkit import install_page_hooks, page_problems, run_async, wait_for, wait_until

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
    page = new_page(browser, name.removesuffix("-dark"), CLIP)
    page.set_viewport_size(size)  # type: ignore[arg-type]
    page.goto(url + "/")
    page.wait_for_selector("#app[data-ready=true]")
    return page


# The colour schemes each browser is checked in. Chromium switches by emulated media; Firefox over BiDi ignores
# emulated media, so it runs twice, the second time launched with the content's scheme set to dark by a pref.
SCHEMES = {"chromium": ("light", "dark"), "firefox": ("light",), "firefox-dark": ("dark",)}
FIREFOX_DARK_PREFS: dict[str, str | int | bool] = {"layout.css.prefers-color-scheme.content-override": 0}


def schemes(page: Page, name: str) -> Iterator[str]:
    """Each scheme `name` is checked in, with the page confirmed to be in it."""
    for scheme in SCHEMES[name]:
        page.emulate_media(color_scheme=scheme)  # Chromium; Firefox's comes from its launch
        assert page.evaluate(f"() => matchMedia('(prefers-color-scheme: {scheme})').matches"), (name, scheme)
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
        for scheme in schemes(page, name):
            s = structure(page, "start", "stop", "transcript", "settings-toggle", "settings-body", "provider")
            b = s["boxes"]
            # Start and the top of the transcript on the first screen; the settings folded to one line above them.
            assert in_view(b["start"], PHONE["height"]) and in_view(b["stop"], PHONE["height"]), b
            assert b["transcript"]["shown"] and b["transcript"]["top"] < PHONE["height"] / 2, b["transcript"]
            assert b["settings-toggle"]["shown"] and not b["settings-body"]["shown"], b
            assert page.inner_text("#settings-summary") != ""
            assert_no_sideways_scroll(page)
            snap(page, artifacts, "phone-idle", PHONE, scheme, name)  # not the matrix's "idle" shot
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


@pytest.fixture(scope="module")
def slow_stack() -> Iterator[Stack]:
    """An engine slow to give its first words (3 s of audio go by first) whose first final is its fallback: the fast
    pass's text, after the WARNING the two-pass engine sends when its accurate pass is too slow."""
    with stack(ScriptedRecognizer(ms_per_word=300, words_per_utterance=4, quiet_ms=3000, rough_finals=1)) as s:
        yield s


# The page while the engine is slow, then after its fallback: the "on their way" line while audio flows with nothing
# back, gone at the first words; the rough final marked and tidied, no warning banner; the one explanation on demand.
WAITING_THEN_ROUGH_JS = """async (timeoutMs) => {
  const until = async (test) => {
    const end = Date.now() + timeoutMs;
    while (!test()) {
      if (Date.now() > end) throw new Error('timed out: ' + test.toString());
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const $ = (sel) => document.querySelector(sel);
  const shown = (el) => el !== null && !el.hidden && el.getBoundingClientRect().height > 0;
  $('#provider').value = 'local';
  $('#provider').dispatchEvent(new Event('change'));
  $('#start').click();
  await until(() => shown($('#waiting')));
  const waiting = $('#waiting').textContent;
  const wordsYet = document.querySelectorAll('#transcript .final, #transcript .interim').length;
  await until(() => document.querySelectorAll('#transcript .final').length >= 2);
  const waitingAfter = shown($('#waiting'));
  $('#stop').click();
  await until(() => $('#state').dataset.state === 'idle');
  const rough = [...document.querySelectorAll('#transcript .final.rough .text')].map((e) => e.textContent);
  const noteHiddenBefore = $('#rough-note').hidden;
  $('#transcript .rough-mark').click();
  return {
    waiting, wordsYet, waitingAfter, rough, noteHiddenBefore,
    finals: document.querySelectorAll('#transcript .final').length,
    banners: $('#warnings').children.length,
    note: shown($('#rough-note')) ? $('#rough-note').textContent : null,
    expanded: $('#transcript .rough-mark').getAttribute('aria-expanded'),
  };
}"""


def check_waiting_then_rough(seen: dict[str, Any]) -> None:
    assert "first words are on their way" in seen["waiting"] and seen["wordsYet"] == 0, seen
    assert not seen["waitingAfter"], "the line goes once words come back"
    assert len(seen["rough"]) == 1 and seen["finals"] >= 2, seen
    text = seen["rough"][0]
    assert text[0].isupper() and text.endswith("."), text
    assert seen["banners"] == 0, "a fallback is a mark on its final, not a banner"
    assert seen["noteHiddenBefore"] and seen["note"] and "quick first listen" in seen["note"], seen
    assert seen["expanded"] == "true"


def test_a_slow_engine_says_words_are_coming_and_its_fallback_final_is_marked_rough_not_a_banner(
    layout_browser: tuple[str, Browser | BrowserContext], slow_stack: Stack
) -> None:
    name, browser = layout_browser
    page = open_page(browser, name, slow_stack.url, PHONE)
    try:
        check_waiting_then_rough(page.evaluate(WAITING_THEN_ROUGH_JS, TIMEOUT_MS))
        assert_no_sideways_scroll(page)
        # The mark and its note are new controls: no serious or critical axe finding on them either.
        page.evaluate(f"() => {{ {axe_script()}\n }}")
        assert page.evaluate(AXE_RUN) == []
    finally:
        page.close()


@pytest.mark.webkit
def test_a_slow_engine_says_words_are_coming_and_its_fallback_final_is_marked_rough_webkit(
    webkit_driver: WebDriver, slow_stack: Stack
) -> None:
    """The same in WebKitGTK, whose mock microphone is a tone: loud enough to count as sound being heard."""
    webkit_driver.set_window_size(PHONE["width"], PHONE["height"])
    webkit_driver.get(slow_stack.url + "/")
    wait_for(webkit_driver, "#app[data-ready='true']")
    install_page_hooks(webkit_driver)
    check_waiting_then_rough(run_async(webkit_driver, WAITING_THEN_ROUGH_JS, TIMEOUT_MS))
    assert page_problems(webkit_driver) == []


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
        page.wait_for_selector("#history-list li[data-state=recording]", timeout=TIMEOUT_MS)
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
        page.wait_for_selector("#history-list li[data-state=recording]", timeout=TIMEOUT_MS)
        # While the second recording goes on, on the same row.
        assert page.get_attribute("#state", "data-state") == "streaming"
        assert page.locator("#history-list li").count() == 1
        page.click("#cancel")
    finally:
        page.close()


# The matrix: each case is a moment a person looks at the page; each check says what must be in view then.
# `run` is evaluated in the page and returns the structure; `expect` is checked in Python against it.
CASE_IDS = [
    "start",
    "stop",
    "state",
    "transcript",
    "settings-toggle",
    "settings-body",
    "provider",
    "history",
    "history-view-title",
    "waiting",
]
LAST_LINE_JS = """() => {
  const lines = document.querySelectorAll('#transcript > p:not(.placeholder)');
  const last = lines[lines.length - 1];
  if (!last) return null;
  const r = last.getBoundingClientRect();
  const box = document.getElementById('transcript').getBoundingClientRect();
  return { top: r.top, bottom: r.bottom, boxTop: box.top, boxBottom: box.bottom };
}"""


def check_case(case: str, data: dict[str, Any], last: dict[str, Any] | None) -> None:
    b, w, h = data["boxes"], data["innerWidth"], data["innerHeight"]
    narrow = w <= 720
    assert data["scrollWidth"] <= w, (case, "scrolls sideways", data["scrollWidth"], w)
    if case in ("idle", "listening", "stopped"):
        assert in_view(b["start"], h) and in_view(b["stop"], h), (case, b["start"], b["stop"])
        assert in_view(b["state"], h), (case, b["state"])
        top = b["transcript"]["top"]
        assert b["transcript"]["shown"] and top < h * (0.5 if narrow else 0.3), (case, b["transcript"])
        if narrow:
            assert b["settings-toggle"]["shown"] and not b["settings-body"]["shown"], (case, "settings not folded")
        else:
            assert b["provider"]["shown"] and b["provider"]["right"] < b["transcript"]["left"], (case, "two columns")
            assert not b["settings-toggle"]["shown"], case
    if case in ("listening", "stopped"):
        # The newest line (the interim while listening) is on screen, inside the transcript's own box.
        assert last is not None, case
        assert last["top"] >= 0 and last["bottom"] <= h + 0.5, (case, "newest line off screen", last, h)
        assert last["boxTop"] - 0.5 <= last["top"] and last["bottom"] <= last["boxBottom"] + 0.5, (case, last)
    if case == "history":
        assert in_view(b["history-view-title"], h), (case, b["history-view-title"])


def layout_cases(
    name: str,
    size: dict[str, int],
    structure_of: Any,
    act: Any,
    snap_as: Any,
) -> list[str]:
    """Drive one page through idle → listening (with an interim) → stopped → history open, checking each; returns the
    cases checked. `act(step)` performs a step, `structure_of()` reads (boxes, last line), `snap_as(case)` checks
    and screenshots each colour scheme the browser can be put in."""
    checked = []
    for case in ("idle", "listening", "stopped", "history"):
        act(case)
        for scheme in snap_as(case):
            data, last = structure_of()
            check_case(case, data, last)
            checked.append(f"{case}-{size['width']}-{scheme}")
    return checked


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_structure_matrix(
    layout_browser: tuple[str, Browser | BrowserContext], layout_stack: Stack, artifacts: Path, size: dict[str, int]
) -> None:
    name, browser = layout_browser
    structure_matrix(name, browser, layout_stack, artifacts, size)


@pytest.fixture(scope="module")
def dark_firefox(pw: Playwright) -> Iterator[Browser | BrowserContext]:
    with launch(pw, "firefox", CLIP, extra_prefs=FIREFOX_DARK_PREFS) as browser:
        yield browser


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_structure_matrix_dark_firefox(
    dark_firefox: Browser | BrowserContext, layout_stack: Stack, artifacts: Path, size: dict[str, int]
) -> None:
    structure_matrix("firefox-dark", dark_firefox, layout_stack, artifacts, size)


def structure_matrix(
    name: str, browser: Browser | BrowserContext, layout_stack: Stack, artifacts: Path, size: dict[str, int]
) -> None:
    page = open_page(browser, name, layout_stack.url, size)
    try:
        page.evaluate("() => { localStorage.clear(); indexedDB.deleteDatabase('live-stt-transcripts'); }")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")

        def act(case: str) -> None:
            if case == "listening":
                page.click("#start")
                # Until the first words replace it, the placeholder no longer says "Press Start".
                placeholder = page.evaluate("() => document.getElementById('placeholder')?.textContent ?? null")
                assert placeholder is None or placeholder.startswith("Listening"), placeholder
                # The recording is listed with its badge once its first final is saved: audited every time, not
                # only when the machine is slow enough (its green once failed contrast on 2 busy cores).
                page.wait_for_selector("#history-list .badge-recording", timeout=TIMEOUT_MS)
                page.wait_for_selector("#transcript .interim", timeout=TIMEOUT_MS)
            elif case == "stopped":
                page.wait_for_selector("#transcript .final >> nth=2", timeout=TIMEOUT_MS)
                page.click("#stop")
                page.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)
            elif case == "history":
                page.click("#history-list li .history-open")
                page.wait_for_selector("#history-view:not([hidden])")

        def structure_of() -> tuple[dict[str, Any], dict[str, Any] | None]:
            return structure(page, *CASE_IDS), page.evaluate(LAST_LINE_JS)

        def snap_as(case: str) -> Iterator[str]:
            for scheme in schemes(page, name):
                snap(page, artifacts, case, size, scheme, name)
                yield scheme

        axe = axe_script()

        def snap_and_audit(case: str) -> Iterator[str]:
            for scheme in snap_as(case):
                # Evaluated, not a <script> tag: the page's CSP rightly refuses inline scripts.
                if not page.evaluate("() => typeof axe === 'object'"):
                    page.evaluate(f"() => {{ {axe}\n }}")
                assert page.evaluate(AXE_RUN) == [], (case, scheme)
                yield scheme

        checked = layout_cases(name, size, structure_of, act, snap_and_audit)
        assert len(checked) >= 4, checked
    finally:
        page.close()


def test_on_a_phone_a_long_transcript_scrolls_in_its_box_so_the_newest_line_stays_on_screen(
    layout_browser: tuple[str, Browser | BrowserContext], layout_stack: Stack
) -> None:
    name, browser = layout_browser
    page = open_page(browser, name, layout_stack.url, PHONE)
    try:
        page.evaluate("() => localStorage.setItem('live-stt.settings-folded', 'true')")
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        # Forty lines of captions, as an hour's talk would leave, then the view's own follow-the-bottom scroll.
        page.evaluate(
            """() => {
              const t = document.getElementById('transcript');
              for (let i = 0; i < 40; i++) {
                const p = document.createElement('p');
                p.className = 'final';
                p.textContent = `Line ${i} of a long talk, long enough to wrap on a phone held at arm's length.`;
                t.append(p);
              }
              t.scrollTop = t.scrollHeight;
            }"""
        )
        box = structure(page, "transcript", "start")["boxes"]
        assert in_view(box["transcript"], PHONE["height"]) and in_view(box["start"], PHONE["height"]), box
        last = page.evaluate(LAST_LINE_JS)
        assert last and last["bottom"] <= PHONE["height"], last
    finally:
        page.close()


@pytest.mark.webkit
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_structure_matrix_webkit(
    request: pytest.FixtureRequest, scheme: str, layout_stack: Stack, artifacts: Path
) -> None:
    """The same cases in WebKitGTK (Selenium): one browser for both sizes. Its WebDriver cannot emulate a colour
    scheme, so the dark run starts MiniBrowser in a dark GTK theme, which WebKitGTK follows; its mock microphone is a
    tone, which the scripted engine turns into words all the same."""
    driver: WebDriver = request.getfixturevalue("webkit_dark_driver" if scheme == "dark" else "webkit_driver")
    axe = axe_script()
    for size in (PHONE, DESKTOP):
        driver.set_window_size(size["width"], size["height"])
        driver.get(layout_stack.url + "/")
        wait_for(driver, "#app[data-ready='true']")
        driver.execute_script("localStorage.clear(); indexedDB.deleteDatabase('live-stt-transcripts');")
        driver.get(layout_stack.url + "/")
        wait_for(driver, "#app[data-ready='true']")
        install_page_hooks(driver)
        # MiniBrowser runs without its toolbar (tests/support/webkit.py), so the viewport is the size asked for.
        viewport = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        assert viewport == [size["width"], size["height"]], (size, viewport)

        def act(case: str) -> None:
            if case == "listening":
                driver.find_element(By.CSS_SELECTOR, "#start").click()
                wait_for(driver, "#history-list .badge-recording")  # as in structure_matrix
                wait_for(driver, "#transcript .interim")
            elif case == "stopped":
                wait_until(driver, "return document.querySelectorAll('#transcript .final').length >= 3")
                driver.find_element(By.CSS_SELECTOR, "#stop").click()
                wait_for(driver, "#state[data-state='idle']")
            elif case == "history":
                driver.find_element(By.CSS_SELECTOR, "#history-list li .history-open").click()
                wait_for(driver, "#history-view:not([hidden])")

        def structure_of() -> tuple[dict[str, Any], dict[str, Any] | None]:
            data: dict[str, Any] = driver.execute_script(f"return ({BOXES_JS})(arguments[0])", CASE_IDS)
            last: dict[str, Any] | None = driver.execute_script(f"return ({LAST_LINE_JS})()")
            return data, last

        def snap_as(case: str, size: dict[str, int] = size) -> Iterator[str]:
            assert driver.execute_script(f"return matchMedia('(prefers-color-scheme: {scheme})').matches"), scheme
            driver.save_screenshot(str(artifacts / f"layout-{case}-{size['width']}-{scheme}-webkit.png"))
            if not driver.execute_script("return typeof axe === 'object'"):
                driver.execute_script(axe)
            assert run_async(driver, AXE_RUN) == [], (case, scheme)
            yield scheme

        checked = layout_cases("webkit", size, structure_of, act, snap_as)
        assert len(checked) == 4, checked
        assert page_problems(driver) == []
    # As narrow as WebKitGTK's window goes (334 px when 320 is asked for), with the settings open: nothing sideways.
    driver.set_window_size(NARROWEST["width"], NARROWEST["height"])
    driver.execute_script("localStorage.setItem('live-stt.settings-folded', 'false')")
    driver.get(layout_stack.url + "/")
    wait_for(driver, "#app[data-ready='true']")
    data = driver.execute_script(f"return ({BOXES_JS})(['start'])")
    assert data["innerWidth"] < 340, data["innerWidth"]
    assert data["scrollWidth"] <= data["innerWidth"], (data, driver.execute_script(f"return ({OVERFLOW_JS})()"))
    assert data["boxes"]["start"]["shown"] and data["boxes"]["start"]["right"] <= data["innerWidth"], data
