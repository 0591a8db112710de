"""Transcripts that outlive the tab, in Chromium and Firefox: finals saved to the browser's IndexedDB as they arrive,
restored after a reload mid-recording (marked interrupted), listed in the history after the tab is closed and exported
there exactly as the page exported them, deleted by Delete and by Clear, and the oldest dropped (and the user told)
past the storage limit. A browser that refuses storage still transcribes, with a notice.

The app runs against its own socket with a scripted recognizer, so the words and their times are known; the
microphone plays a recorded sentence (tests/data/speech)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright
from playwright.sync_api import Error as PlaywrightError

from server.emulators.scripted import ScriptedRecognizer
from testkit.browsers import launch, new_page
from testkit.stack import Stack, stack
from tests.support.saved_transcripts import (
    FORMATS,
    RECORD_DOWNLOADS_SCRIPT,
    STORED_JS,
    check_restored,
    comparable_export,
    limit_said,
    words_of,
)

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
CLIP = SPEECH / "slt-weather-48k.wav"
WORD_MS = 300
WORDS_PER_FINAL = 3
TIMEOUT_MS = 20_000

REFUSE_STORAGE_SCRIPT = """
Object.defineProperty(window, 'indexedDB', {
  get() { throw new DOMException('The operation is insecure.', 'SecurityError'); },
});
"""


@pytest.fixture(scope="module")
def app_stack() -> Iterator[Stack]:
    with stack(ScriptedRecognizer(ms_per_word=WORD_MS, words_per_utterance=WORDS_PER_FINAL)) as s:
        yield s


@contextlib.contextmanager
def browser_context(pw: Playwright, browser_name: str) -> Iterator[BrowserContext]:
    """One profile for several pages (a reload, a closed and reopened tab share its database)."""
    with launch(pw, browser_name, CLIP) as browser:
        if isinstance(browser, BrowserContext):
            yield browser
        else:
            ctx = browser.new_context()
            try:
                yield ctx
            finally:
                ctx.close()


def open_page(ctx: BrowserContext, browser_name: str, url: str, errors: list[str], init: str | None = None) -> Page:
    page = new_page(ctx, browser_name, CLIP)
    page.on("pageerror", lambda e: errors.append(str(e)))
    if init:
        page.add_init_script(init)
    if browser_name == "firefox":
        page.add_init_script(RECORD_DOWNLOADS_SCRIPT)
    page.goto(url + "/")
    page.wait_for_selector("#app[data-ready=true]")
    return page


def page_errors(errors: list[str]) -> list[str]:
    """Firefox reports the style Playwright injects for screenshots as a CSP violation: not the page's."""
    return [e for e in errors if "inline style" not in e]


def finals(page: Page) -> list[str]:
    return page.locator("#transcript .final .text").all_inner_texts()


def record(page: Page, n_finals: int) -> None:
    page.select_option("#provider", "local")
    page.click("#start")
    page.wait_for_selector(f"#transcript .final >> nth={n_finals - 1}", timeout=TIMEOUT_MS)


def stop(page: Page) -> None:
    page.click("#stop")
    page.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)


def stored(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(STORED_JS)
    return result


def wait_stored(page: Page, predicate: str) -> dict[str, Any]:
    """Wait until the database satisfies `predicate` (JS over {sessions, finals}); return what it holds."""
    page.wait_for_function(
        f"async () => {{ const s = await ({STORED_JS})(); return ({predicate})(s); }}", timeout=TIMEOUT_MS
    )
    return stored(page)


def download(page: Page, button: str) -> tuple[str, str]:
    """Click a download button: the file name and text the browser was handed."""
    if page.evaluate("() => Array.isArray(window.__downloads)"):
        n = page.evaluate("() => window.__downloads.length")
        page.click(button)
        page.wait_for_function("(n) => window.__downloads.length > n", arg=n)
        name, text = page.evaluate(
            "async (n) => { const d = window.__downloads[n]; return [d.name, await d.blob.text()]; }", n
        )
        return str(name), str(text)
    with page.expect_download() as info:
        page.click(button)
    d = info.value
    return d.suggested_filename, Path(d.path()).read_text(encoding="utf-8")


def exports(page: Page, prefix: str) -> dict[str, tuple[str, str]]:
    out = {}
    for fmt in FORMATS:
        name, text = download(page, f"#{prefix}-{fmt}")
        out[fmt] = (name, comparable_export(fmt, text))
    return out


def test_reload_mid_recording_brings_the_finals_back(pw: Playwright, browser_name: str, artifacts: Path) -> None:
    errors: list[str] = []
    # The first final is the engine's fallback (rough, as a busy two-pass engine gives it): stored rough, it comes
    # back rough, and is not taken for the unfinished line.
    engine = ScriptedRecognizer(ms_per_word=WORD_MS, words_per_utterance=WORDS_PER_FINAL, rough_finals=1)
    with stack(engine) as app_stack, browser_context(pw, browser_name) as ctx:
        page = open_page(ctx, browser_name, app_stack.url, errors)
        assert page.locator("#history-list li").count() == 0 and page.is_visible("#history-empty")
        record(page, 2)
        # Read while recording, then reload at once: no waiting for the database.
        shown = finals(page)
        assert len(shown) >= 2
        # Leaving mid-recording asks first (words still in flight): say yes, as a user reloading would.
        page.on("dialog", lambda d: d.accept() if d.type == "beforeunload" else d.dismiss())
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        page.wait_for_selector("#restored:not([hidden])", timeout=TIMEOUT_MS)
        restored = finals(page)
        assert restored[: len(shown)] == shown, (restored, shown)
        assert "interrupted" in page.inner_text("#restored")
        assert page.get_attribute("#state", "data-state") == "idle"
        # The exports and Clear work on the restored transcript; it is listed as interrupted, on this page.
        assert page.is_enabled("#export-txt") and page.is_enabled("#clear")
        row = page.locator("#history-list li")
        assert row.count() == 1
        assert row.get_attribute("data-state") == "interrupted"
        assert "interrupted" in row.inner_text() and "on this page" in row.inner_text()
        page.screenshot(path=str(artifacts / f"saved-restored-{browser_name}.png"), full_page=True)
        db = stored(page)
        assert [s["state"] for s in db["sessions"]] == ["interrupted"]
        rough = page.locator("#transcript .final.rough .text").all_inner_texts()
        first = min(db["finals"], key=lambda f: f["seq"])
        assert first["rough"] is True and rough[0] == first["text"], db
        check_restored(restored, rough, db)

        # Start continues in a new session: the page starts afresh, the interrupted one stays in the history.
        record(page, 1)
        assert page.is_hidden("#restored")
        stop(page)
        db = wait_stored(page, "(s) => s.sessions.length === 2 && s.sessions.some((x) => x.state === 'stopped')")
        assert sorted(s["state"] for s in db["sessions"]) == ["interrupted", "stopped"]
        states = page.eval_on_selector_all("#history-list li", "els => els.map((e) => e.dataset.state)")
        assert states == ["stopped", "interrupted"], "newest first"
    assert page_errors(errors) == []


def test_reload_while_finishing_keeps_the_words_not_final_yet(
    pw: Playwright, browser_name: str, artifacts: Path
) -> None:
    """The issue's case: Stop, then a reload while the page waits for the last final. Every word the page showed
    (finals and the interim) comes back, the unfinished ones as a line marked rough."""
    errors: list[str] = []
    # 800 ms a word: Stop lands well before the interim's third word would make it final.
    slow_engine = ScriptedRecognizer(ms_per_word=800, words_per_utterance=WORDS_PER_FINAL, finish_delay_s=6)
    with stack(slow_engine) as slow, browser_context(pw, browser_name) as ctx:
        page = open_page(ctx, browser_name, slow.url, errors)
        record(page, 1)
        # Between two finals: an interim with two words (each word is one partial, three make a final).
        page.wait_for_function(
            "() => { const i = document.querySelector('#transcript .interim');"
            " return i !== null && i.textContent.trim().split(/\\s+/).length === 2; }",
            timeout=TIMEOUT_MS,
        )
        page.click("#stop")
        page.wait_for_selector("#state[data-state=finishing]", timeout=TIMEOUT_MS)
        shown = finals(page)
        interim = page.inner_text("#transcript .interim")
        assert interim.strip(), "the last words are still an interim while Stop waits"
        page.on("dialog", lambda d: d.accept() if d.type == "beforeunload" else d.dismiss())
        page.reload()
        page.wait_for_selector("#app[data-ready=true]")
        page.wait_for_selector("#restored:not([hidden])", timeout=TIMEOUT_MS)
        restored = finals(page)
        page.screenshot(path=str(artifacts / f"saved-restored-finishing-{browser_name}.png"), full_page=True)
        assert restored[: len(shown)] == shown, (restored, shown)
        assert words_of(restored) == words_of([*shown, interim]), (restored, shown, interim)
        last = page.locator("#transcript .final").last
        assert "rough" in (last.get_attribute("class") or "") and last.locator(".rough-mark").is_visible()
        assert "not final yet" in page.inner_text("#restored")
        db = stored(page)
        assert [s["state"] for s in db["sessions"]] == ["interrupted"]
        assert words_of([db["sessions"][0]["pending"]["text"]]) == words_of([interim])
    assert page_errors(errors) == []


def shot(page: Page, artifacts: Path, name: str, browser_name: str) -> None:
    """Light and dark screenshots for review, where the browser honours emulated media (Firefox over BiDi does not:
    its dark look is covered by test_ui.py)."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        if not page.evaluate(f"() => matchMedia('(prefers-color-scheme: {scheme})').matches"):
            continue
        panel = page.evaluate("() => getComputedStyle(document.getElementById('history-view-text')).backgroundColor")
        assert panel != "rgba(0, 0, 0, 0)", "the read-only transcript has its own background"
        path = artifacts / f"saved-{name}-{scheme}-{browser_name}.png"
        page.locator("#history").screenshot(path=str(path), animations="disabled")
        assert path.stat().st_size > 5_000
    page.emulate_media(color_scheme="light")


def test_closed_tab_is_in_the_history_with_the_same_exports_and_delete_and_clear_remove_it(
    pw: Playwright, browser_name: str, app_stack: Stack, artifacts: Path
) -> None:
    errors: list[str] = []
    with browser_context(pw, browser_name) as ctx:
        page = open_page(ctx, browser_name, app_stack.url, errors)
        record(page, 2)
        stop(page)
        texts = finals(page)
        before = exports(page, "export")
        wait_stored(page, f"(s) => s.finals.length === {len(texts)}")
        page.close()

        page = open_page(ctx, browser_name, app_stack.url, errors)
        # Closed after Stop: nothing to restore, but it is in the history.
        assert page.is_hidden("#restored") and finals(page) == []
        row = page.locator("#history-list li")
        row.first.wait_for(timeout=TIMEOUT_MS)
        assert row.count() == 1
        line = row.inner_text()
        assert "local" in line and texts[0] in line, line
        # Keyboard: focus the row, Enter opens it read-only and moves focus to its title; Escape closes.
        page.focus("#history-list li .history-open")
        page.keyboard.press("Enter")
        page.wait_for_selector("#history-view:not([hidden])")
        assert page.evaluate("() => document.activeElement.id") == "history-view-title"
        assert page.get_attribute("#history-list li .history-open", "aria-expanded") == "true"
        assert page.locator("#history-view-text .final .text").all_inner_texts() == texts
        assert page.locator("#history-view-text [contenteditable], #history-view-text input").count() == 0
        page.keyboard.press("Escape")
        assert page.is_hidden("#history-view")
        assert page.evaluate("() => document.activeElement.classList.contains('history-open')")

        page.click("#history-list li .history-open")
        page.wait_for_selector("#history-view:not([hidden])")
        after = exports(page, "history-export")
        assert after == before
        shot(page, artifacts, "history", browser_name)

        # Delete removes it from storage.
        page.click("#history-view-delete")
        page.wait_for_selector("#history-empty:not([hidden])")
        assert page.is_hidden("#history-view")
        assert stored(page) == {"sessions": [], "finals": []}

        # Clear removes the page's own transcript from storage too.
        record(page, 1)
        stop(page)
        db = wait_stored(page, "(s) => s.sessions.length === 1 && s.sessions[0].state === 'stopped'")
        assert len(db["finals"]) == len(finals(page)) >= 1
        page.click("#clear")
        page.wait_for_selector("#history-empty:not([hidden])")
        assert stored(page) == {"sessions": [], "finals": []}
        assert "Cleared" in page.inner_text("#toolbar-status")

        # Delete all, after a confirmation that can be declined.
        for _ in range(2):
            record(page, 1)
            stop(page)
            page.reload()
            page.wait_for_selector("#app[data-ready=true]")
        page.wait_for_selector("#history-list li >> nth=1")
        page.click("#history-delete-all")
        page.click("#history-confirm-no")
        assert page.locator("#history-list li").count() == 2
        page.click("#history-delete-all")
        page.click("#history-confirm-yes")
        page.wait_for_selector("#history-empty:not([hidden])")
        assert stored(page) == {"sessions": [], "finals": []}
    assert page_errors(errors) == []


def set_limit(page: Page, sessions: int) -> None:
    """Type a new session limit as a person would (Firefox over BiDi appends on fill() in a number field)."""
    if not page.is_visible("#history-max-sessions"):
        page.click("#history-limits summary")
    page.click("#history-max-sessions")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(str(sessions))
    page.keyboard.press("Enter")
    said = limit_said(sessions)
    page.wait_for_function("(s) => document.getElementById('history-status').textContent.includes(s)", arg=said)


def test_past_the_limit_the_oldest_is_dropped_and_the_user_told(
    pw: Playwright, browser_name: str, app_stack: Stack
) -> None:
    errors: list[str] = []
    with browser_context(pw, browser_name) as ctx:
        page = open_page(ctx, browser_name, app_stack.url, errors)
        set_limit(page, 2)
        titles = []
        for _ in range(3):
            record(page, 1)
            stop(page)
            db = wait_stored(page, "(s) => s.sessions.every((x) => x.state === 'stopped')")
            titles.append({s["id"]: s["title"] for s in db["sessions"]})
            page.reload()
            page.wait_for_selector("#app[data-ready=true]")
        # The limit is remembered across loads, and the third session pushed out the first.
        assert page.input_value("#history-max-sessions") == "2"
        db = stored(page)
        first_id = next(iter(titles[0]))
        assert len(db["sessions"]) == 2 and first_id not in {s["id"] for s in db["sessions"]}
        assert all(f["sessionId"] != first_id for f in db["finals"])
        assert page.locator("#history-list li").count() == 2

        # Lowering it to 1 drops the older of the two at once, and says so.
        set_limit(page, 1)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#warnings p')].some((p) => p.textContent.includes('Storage limit'))",
            timeout=TIMEOUT_MS,
        )
        page.wait_for_function("() => document.querySelectorAll('#history-list li').length === 1")
        assert len(stored(page)["sessions"]) == 1

        # While recording, the next session drops the previous one and the page tells the user.
        record(page, 1)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#warnings p')].some((p) =>"
            " p.textContent.includes('oldest saved transcript was removed'))",
            timeout=TIMEOUT_MS,
        )
        stop(page)
        db = wait_stored(page, "(s) => s.sessions.length === 1 && s.sessions[0].state === 'stopped'")
        assert db["sessions"][0]["finalCount"] == len(finals(page))
    assert page_errors(errors) == []


def test_a_browser_refusing_storage_still_transcribes(pw: Playwright, browser_name: str, app_stack: Stack) -> None:
    errors: list[str] = []
    with browser_context(pw, browser_name) as ctx:
        page = open_page(ctx, browser_name, app_stack.url, errors, init=REFUSE_STORAGE_SCRIPT)
        page.wait_for_function(
            "() => document.getElementById('warnings').textContent.includes('does not let the page save')"
        )
        assert "still works" in page.inner_text("#warnings")
        record(page, 2)
        stop(page)
        assert len(finals(page)) >= 2 and page.is_enabled("#export-txt")
        _, txt = download(page, "#export-txt")
        assert [p.strip() for p in txt.strip().split("\n\n")] == finals(page)
        assert page.is_visible("#history-empty")
    assert page_errors(errors) == []


# The store against the browser's own quota (the page's module, a database of its own): sessions of about 100 kB
# until the quota has forced two drops, then one session alone past the quota.
QUOTA_JS = """
async () => {
  const { openTranscriptStore } = await import('/static/transcripts/store.js');
  const store = (await openTranscriptStore({ indexedDB, keyRange: IDBKeyRange, name: 'quota-test' })).value;
  // Random letters: Firefox compresses what it stores, and repeated text would hardly count.
  const letter = () => String.fromCharCode(97 + Math.floor(Math.random() * 26));
  const random = (n) => Array.from({ length: n }, letter).join('');
  const dropped = [];
  let made = 0;
  while (made < 100 && dropped.length < 2) {
    const s = await store.startSession({ title: `s${made}`, engine: 'e' });
    if (!s.ok) return { error: s.error.kind, made };
    made += 1;
    dropped.push(...s.dropped.map((d) => d.title));
    for (let j = 0; j < 10; j++) {
      const f = await store.addFinal(s.value.id, { text: random(10000), startMs: j, endMs: j + 1 });
      if (!f.ok) return { error: f.error.kind, made, j };
      dropped.push(...f.dropped.map((d) => d.title));
    }
    // Stopped, as the page leaves a recording it ended: a session still 'recording' (another tab's) is never dropped.
    const stopped = await store.updateSession(s.value.id, { state: 'stopped' });
    if (!stopped.ok) return { error: stopped.error.kind, made };
  }
  const left = (await store.listSessions()).value.map((s) => s.title);
  const big = (await store.startSession({ title: 'big', engine: 'e' })).value;
  let last;
  let written = 0;
  do {
    last = await store.addFinal(big.id, { text: random(10000), startMs: written, endMs: written + 1 });
    if (last.ok) written += 1;
  } while (last.ok && written < 1000);
  const after = (await store.listSessions()).value.map((s) => s.title);
  const bigFinals = (await store.getSession(big.id)).value.finals.length;
  const estimate = await navigator.storage.estimate();
  store.close();
  return { dropped, made, left, error: last.ok ? null : last.error.kind, message: last.ok ? '' : last.error.message,
    after, written, bigFinals, quota: estimate.quota };
}
"""


def test_the_browser_quota_drops_the_oldest_then_reports(pw: Playwright, app_stack: Stack) -> None:
    """Firefox only: its quota can be made small (a preference), so the browser's own QuotaExceededError is met.
    Chromium's quota cannot be lowered from here; the page-level notice is covered by the limit tests above."""
    errors: list[str] = []
    small = {"dom.quotaManager.temporaryStorage.fixedLimit": 2048}  # KB
    with launch(pw, "firefox", extra_prefs=small) as browser:
        ctx = browser.new_context()
        page = open_page(ctx, "firefox", app_stack.url, errors)
        got = page.evaluate(QUOTA_JS)
        assert got["quota"] <= 2048 * 1024, got
        # Oldest first, and only as many as needed.
        made = got["made"]
        assert got["dropped"] == ["s0", "s1"], got
        assert got["left"] == [f"s{k}" for k in range(made - 1, 1, -1)], got
        # Alone past the quota: every other session made room first, then the error is the quota, with nothing
        # half-written.
        assert got["error"] == "quota" and "no more room" in got["message"], got
        assert got["after"] == ["big"] and got["bigFinals"] == got["written"] > 0, got
        ctx.close()
    assert page_errors(errors) == []


def test_a_crashed_tab_loses_no_final(pw: Playwright, app_stack: Stack) -> None:
    """Chromium only: chrome://crash kills the tab's renderer. (Navigating Firefox to about:crashcontent from
    Playwright left its tab alive here, so Firefox is covered by the reload test only.)"""
    errors: list[str] = []
    with browser_context(pw, "chromium") as ctx:
        page = open_page(ctx, "chromium", app_stack.url, errors)
        record(page, 2)
        shown = finals(page)
        # The renderer dies mid-recording: no unload handler runs, nothing gets a last chance to write.
        with page.expect_event("crash", timeout=TIMEOUT_MS), contextlib.suppress(PlaywrightError):
            page.goto("chrome://crash", timeout=TIMEOUT_MS)
        page = open_page(ctx, "chromium", app_stack.url, errors)
        page.wait_for_selector("#restored:not([hidden])", timeout=TIMEOUT_MS)
        assert finals(page)[: len(shown)] == shown
        assert page.get_attribute("#history-list li", "data-state") == "interrupted"
    assert page_errors(errors) == []
