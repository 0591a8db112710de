"""Shared captions in real browsers: one context records through the offline engine (a scripted recognizer: the
words are not the point here) with a fake microphone and shares; another opens the link as an overlay and sees the
words; its connection is cut mid-recording (a TCP proxy drops it) and it still ends with every final exactly once;
Stop sharing ends its stream. Chromium and Firefox through Playwright, WebKit (WebKitGTK) through WebDriver. A last
test does it once with the embedded speech engine itself.

Bounded: one app stack for the module, one browser per engine, short clips, every wait with a timeout."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright

from server.emulators.scripted import ScriptedRecognizer
from server.engine.types import Recognizer
from testkit.axe import AXE_RUN, axe_script
from testkit.browsers import CHROMIUM, CHROMIUM_FLAGS, FIREFOX, FIREFOX_PREFS, new_page
from testkit.proxy import cuttable_proxy
from testkit.stack import Stack, stack
from tests.test_contract import normalise, wer

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
CLIP = SPEECH / "slt-weather-48k.wav"
WORD_MS = 250
WORDS_PER_FINAL = 3
TIMEOUT_MS = 15_000

# What the viewer shows, read in one go; and its layout, by structure (the elements, their order on screen, the
# overlay's computed styles), not by pixels.
VIEWER_STATE = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left,
                                                                      right: r.right}; };
  const lines = [...document.querySelectorAll('#lines .line')];
  const style = getComputedStyle(document.body);
  return {
    lines: lines.map((p) => p.textContent),
    interim: document.getElementById('interim').textContent,
    notice: document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent,
    status: document.body.dataset.status,
    connected: document.body.dataset.connected || '',
    background: style.backgroundColor,
    fontSize: style.fontSize,
    liveRegion: [document.getElementById('lines').getAttribute('role'),
                 document.getElementById('lines').getAttribute('aria-live'),
                 document.getElementById('interim').getAttribute('aria-hidden')],
    boxes: lines.map(box),
    interimBox: box(document.getElementById('interim')),
    viewport: [innerWidth, innerHeight],
  };
}"""


# Records, in the viewer page, every final its EventSource delivers (duplicates included: the page would hide them)
# and every (re)connection.
RECORD_FINALS = """
const NativeEventSource = window.EventSource;
window.__finals = [];
window.__opens = 0;
window.EventSource = class extends NativeEventSource {
  constructor(url, options) {
    super(url, options);
    this.addEventListener('final', (e) => window.__finals.push(JSON.parse(e.data).seq));
    this.addEventListener('open', () => { window.__opens += 1; });
  }
};
"""


@pytest.fixture(scope="module")
def captions_stack() -> Iterator[Stack]:
    with stack(ScriptedRecognizer(ms_per_word=WORD_MS, words_per_utterance=WORDS_PER_FINAL)) as s:
        yield s


def launch_browser(pw: Playwright, name: str) -> Browser:
    """A browser in which contexts can be made (Chromium's fake microphone plays the clip; Firefox gets it by the
    init script new_page installs)."""
    if name == "chromium":
        flags = [*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={CLIP}%noloop"]
        return pw.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
    return pw.firefox.launch(
        channel="moz-firefox", executable_path=FIREFOX, headless=True, firefox_user_prefs=FIREFOX_PREFS
    )


def wait_for(page: Page, predicate: str, what: str, timeout_s: float = TIMEOUT_MS / 1000) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        state: dict[str, object] = page.evaluate(VIEWER_STATE)
        if page.evaluate(f"(s) => {predicate}", state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"viewer never showed {what}: {json.dumps(state)[:800]}")
        time.sleep(0.1)


@pytest.mark.parametrize("browser_name", ["chromium", "firefox"])
def test_share_watch_drop_and_revoke(pw: Playwright, browser_name: str, captions_stack: Stack, artifacts: Path) -> None:
    url = captions_stack.url
    browser = launch_browser(pw, browser_name)
    errors: list[str] = []
    try:
        recorder = new_page(browser.new_context(), browser_name, CLIP)
        recorder.on("pageerror", lambda e: errors.append(str(e)))
        recorder.goto(url + "/")
        recorder.wait_for_selector("#app[data-ready=true]")
        recorder.click("#share-start")
        recorder.wait_for_selector("#share-live:not([hidden])", timeout=TIMEOUT_MS)
        link = recorder.input_value("#share-link")
        assert urlsplit(link).path.startswith("/captions/") and len(urlsplit(link).path) == len("/captions/") + 22
        with cuttable_proxy(int(urlsplit(url).port or 80)) as proxy:
            viewer_context = browser.new_context(viewport={"width": 800, "height": 300})
            viewer = viewer_context.new_page()
            viewer.on("pageerror", lambda e: errors.append(str(e)))
            viewer.add_init_script(RECORD_FINALS)
            overlay = f"http://127.0.0.1:{proxy.port}{urlsplit(link).path}?bg=transparent&size=30&lines=3"
            viewer.goto(overlay)
            wait_for(viewer, "s.connected === 'true'", "a connection")

            recorder.select_option("#provider", "local")
            recorder.click("#start")
            wait_for(viewer, "s.lines.length >= 1", "a first final")
            # The viewer's connection drops mid-recording; EventSource reconnects with Last-Event-ID.
            assert proxy.cut() >= 1
            recorder.wait_for_selector("#transcript .final >> nth=3", timeout=TIMEOUT_MS)
            recorder.click("#stop")
            recorder.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)
            spoken = recorder.locator("#transcript .final .text").all_inner_texts()
            assert len(spoken) >= 3, spoken
            expected = [t.strip() for t in spoken if t.strip()][-3:]
            wanted = json.dumps(json.dumps(expected, separators=(",", ":")))
            state = wait_for(viewer, f"JSON.stringify(s.lines) === {wanted}", f"the last finals {expected}")
            # The recording stopped: the screen says the speaker paused (not a frozen half-line).
            wait_for(viewer, "s.notice.startsWith('Paused') && s.interim === ''", "the paused notice")
            # Every final exactly once, in order, over both connections (the page numbers only non-empty finals).
            assert viewer.evaluate("() => window.__finals") == list(range(1, len(spoken) + 1))
            assert viewer.evaluate("() => window.__opens") >= 2, "the viewer reconnected after the cut"
            # The overlay parameters, by structure: transparent, 30 px, three lines stacked above the interim line,
            # inside the viewport; finals in a polite log, the interim hidden from screen readers.
            assert state["background"] in ("rgba(0, 0, 0, 0)", "transparent") and state["fontSize"] == "30px"
            assert state["liveRegion"] == ["log", "polite", "true"]
            boxes = state["boxes"]
            assert isinstance(boxes, list) and len(boxes) == 3
            assert all(a["bottom"] <= b["top"] + 0.5 for a, b in itertools.pairwise(boxes))
            assert all(b["left"] >= 0 and b["right"] <= 800 and b["bottom"] <= 300 for b in boxes)
            viewer.screenshot(path=str(artifacts / f"captions-overlay-{browser_name}.png"))
            # The recorder learns the count from its publishes and, once idle, from a poll every 5 s: the last
            # publish may have come while the viewer was between its cut connection and the next (a CI run read
            # "0 viewers" here at once).
            shows_one = "() => (document.querySelector('#share-status')?.textContent || '').includes('1 viewer')"
            recorder.wait_for_function(shows_one, timeout=TIMEOUT_MS)

            recorder.click("#share-stop")
            wait_for(viewer, "s.status === 'revoked'", "the revoked notice")
            assert "stopped sharing" in str(viewer.evaluate(VIEWER_STATE)["notice"])
            assert httpx.get(link).status_code == 410
            # The link is off the page and why is said where it can be seen (outside the hidden panel).
            assert recorder.is_hidden("#share-live") and recorder.input_value("#share-link") == ""
            assert recorder.is_visible("#share-status") and recorder.inner_text("#share-status") == "Sharing stopped."
    finally:
        browser.close()
    assert [e for e in errors if "inline style" not in e] == []


def test_the_whole_transcript_reaches_a_late_viewer_once(pw: Playwright, captions_stack: Stack) -> None:
    """The catch-up path in a browser: a viewer that opens the link after the words gets each final once, and
    (lines=0) all of them, the latest in view; axe-core finds nothing serious on the viewer in its three looks."""
    url = captions_stack.url
    grant = httpx.post(url + "/api/captions", json={}).json()
    auth = {"Authorization": f"Bearer {grant['publish_token']}"}
    texts = [f"line number {n}." for n in range(1, 41)]
    for start in range(0, 40, 10):
        batch = [{"type": "final", "text": t, "seq": start + i + 1} for i, t in enumerate(texts[start : start + 10])]
        assert (
            httpx.post(
                f"{url}/api/captions/{grant['share_id']}/events", json={"events": batch}, headers=auth
            ).status_code
            == 200
        )
    browser = launch_browser(pw, "chromium")
    try:
        viewer = browser.new_page(viewport={"width": 600, "height": 400})
        viewer.goto(url + grant["viewer_url"])
        state = wait_for(viewer, "s.lines.length === 40", "40 lines")
        assert state["lines"] == texts
        last = state["boxes"][-1]  # type: ignore[index]
        assert last["bottom"] <= 400 + 1, "the latest line is in view"
        axe = axe_script()
        for query in ("", "?bg=light", "?bg=transparent&theme=light&size=20&lines=2"):
            viewer.goto(url + grant["viewer_url"] + query)
            wait_for(viewer, "s.lines.length > 0", "lines")
            viewer.evaluate(f"() => {{ {axe}\n }}")
            assert viewer.evaluate(AXE_RUN) == [], query
    finally:
        browser.close()


def test_a_viewer_reads_what_the_real_engine_heard(pw: Playwright, engine: Recognizer) -> None:
    """The same path with the embedded speech engine behind the offline socket (the test above scripts the words to
    count finals across a cut): recorded speech from the fake microphone reaches the viewer as the words the
    recording page shows, which are the clip's words."""
    transcript = json.loads((SPEECH / "transcripts.json").read_text())[CLIP.name]
    with stack(engine) as s:
        browser = launch_browser(pw, "chromium")
        try:
            recorder = new_page(browser.new_context(), "chromium", CLIP)
            recorder.goto(s.url + "/")
            recorder.wait_for_selector("#app[data-ready=true]")
            recorder.click("#share-start")
            recorder.wait_for_selector("#share-live:not([hidden])", timeout=TIMEOUT_MS)
            viewer = browser.new_context().new_page()
            viewer.goto(recorder.input_value("#share-link"))
            wait_for(viewer, "s.connected === 'true'", "a connection")
            recorder.select_option("#provider", "local")
            recorder.click("#start")
            recorder.wait_for_selector("#state[data-state=streaming]", timeout=TIMEOUT_MS)
            recorder.wait_for_timeout(int(transcript["duration_ms"]) + 500)
            recorder.click("#stop")
            recorder.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)
            spoken = [t.strip() for t in recorder.locator("#transcript .final .text").all_inner_texts() if t.strip()]
            assert spoken, "the recording page heard nothing"
            wanted = json.dumps(json.dumps(spoken[-3:], separators=(",", ":")))
            wait_for(viewer, f"JSON.stringify(s.lines.slice(-3)) === {wanted}", f"the finals {spoken}")
        finally:
            browser.close()
    assert wer(normalise(transcript["utterances"][0]["text"]), normalise(" ".join(spoken))) <= 0.25, spoken
