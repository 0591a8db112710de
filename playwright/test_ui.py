"""The page as a person uses it, in Chromium and Firefox: every control, the live transcript and latency readout,
the four export formats (parsed back and checked against the recording), the clipboard, diagnostics, errors,
keyboard-only operation, and screenshots (idle, streaming, error; light and dark) left in artifacts/ for review.

The app runs against both emulators and its own socket with a scripted recognizer, so the words and their times
are known: a word every WORD_MS of audio, WORDS_PER_FINAL words to a final."""

from __future__ import annotations

import contextlib
import json
import re
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright

from server.emulators.scripted import ScriptedRecognizer
from testkit.browsers import launch, new_page
from testkit.stack import Stack, stack

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
CLIP = SPEECH / "slt-weather-48k.wav"
WORD_MS = 300
WORDS_PER_FINAL = 4
TIMEOUT_MS = 20_000

CONTROLS = ["provider", "mic", "opt-echo", "opt-noise", "opt-agc", "start", "file", "transcript"]

DENY_MIC_SCRIPT = """
if (navigator.mediaDevices) {
  navigator.mediaDevices.getUserMedia = async () => {
    throw new DOMException('Permission denied', 'NotAllowedError');
  };
}
"""

# Playwright's download event does not fire for Firefox over WebDriver BiDi: there the test records what the page's
# download link points at and reads the Blob back (not with fetch: the page's CSP rightly refuses blob: there).
RECORD_DOWNLOADS_SCRIPT = """
window.__downloads = [];
const blobs = new Map();
const createObjectURL = URL.createObjectURL;
URL.createObjectURL = (obj) => { const url = createObjectURL(obj); blobs.set(url, obj); return url; };
const click = HTMLAnchorElement.prototype.click;
HTMLAnchorElement.prototype.click = function () {
  if (this.hasAttribute('download')) window.__downloads.push({ blob: blobs.get(this.href), name: this.download });
  return click.call(this);
};
"""


# Read in one go, so a final arriving meanwhile cannot make the counts disagree.
LATENCY_JS = """
() => {
  const num = (id, key) => Number(document.getElementById(id).dataset[key] ?? NaN);
  return {
    finals: document.querySelectorAll('#transcript .final').length,
    firstCount: num('latency-first', 'count'), firstP50: num('latency-first', 'p50'),
    firstP95: num('latency-first', 'p95'),
    finalCount: num('latency-final', 'count'), finalP50: num('latency-final', 'p50'),
    finalP95: num('latency-final', 'p95'),
  };
}
"""


@pytest.fixture(scope="module")
def ui_stack() -> Iterator[Stack]:
    with stack(ScriptedRecognizer(ms_per_word=WORD_MS, words_per_utterance=WORDS_PER_FINAL)) as s:
        yield s


@contextlib.contextmanager
def opened(
    pw: Playwright, browser_name: str, url: str, *, wav: Path | None = CLIP, init_script: str | None = None
) -> Iterator[Page]:
    with launch(pw, browser_name, wav) as browser:
        if isinstance(browser, BrowserContext):
            # Chromium's persistent context. Firefox has no clipboard permissions to grant: there the page's own
            # feedback is checked.
            browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        page = new_page(browser, browser_name, wav)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        if init_script:
            page.add_init_script(init_script)
        if browser_name == "firefox":
            page.add_init_script(RECORD_DOWNLOADS_SCRIPT)
        page.goto(url + "/")
        page.wait_for_selector("#app[data-ready=true]")
        yield page
        # Firefox reports the style Playwright injects for screenshots as a CSP violation: not the page's.
        assert [e for e in errors if "inline style" not in e] == []


BACKGROUND_LUMA = """() => {
  const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}"""


def shot(page: Page, artifacts: Path, name: str, browser_name: str) -> None:
    """Light and dark screenshots. Firefox over WebDriver BiDi ignores emulate_media, so its dark look is taken
    from a browser launched dark (test_idle_page_lists_engines_and_labels_every_control)."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        if not page.evaluate(f"() => matchMedia('(prefers-color-scheme: {scheme})').matches"):
            continue
        luma = page.evaluate(BACKGROUND_LUMA)
        assert (luma < 60) if scheme == "dark" else (luma > 200), (scheme, luma)
        path = artifacts / f"ui-{name}-{scheme}-{browser_name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        assert path.stat().st_size > 10_000
    page.emulate_media(color_scheme="light")


def finals(page: Page) -> list[str]:
    return page.locator("#transcript .final .text").all_inner_texts()


def record(page: Page, provider: str, n_finals: int) -> None:
    page.select_option("#provider", provider)
    page.click("#start")
    page.wait_for_selector(f"#transcript .final >> nth={n_finals - 1}", timeout=TIMEOUT_MS)


def stop(page: Page) -> None:
    page.click("#stop")
    page.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)


def download(page: Page, button: str, *, key: str | None = None) -> tuple[str, str]:
    """Click (or press `key` on) the download button: the file name and text the browser was handed."""
    if page.evaluate("() => Array.isArray(window.__downloads)"):
        n = page.evaluate("() => window.__downloads.length")
        page.press(button, key) if key else page.click(button)
        page.wait_for_function("(n) => window.__downloads.length > n", arg=n)
        name, text = page.evaluate(
            "async (n) => { const d = window.__downloads[n]; return [d.name, await d.blob.text()]; }", n
        )
        return str(name), str(text)
    with page.expect_download() as info:
        page.press(button, key) if key else page.click(button)
    d = info.value
    return d.suggested_filename, Path(d.path()).read_text(encoding="utf-8")


TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def cue_times(text: str, sep: str) -> list[tuple[int, int]]:
    """(start, end) ms of every cue line in an SRT (sep ',') or WebVTT (sep '.') document."""
    out = []
    for m in re.finditer(rf"^{TIME} --> {TIME}", text, re.M):
        g = [int(x) for x in m.groups()]
        if sep not in m.group(0):
            raise AssertionError(f"wrong decimal separator in {m.group(0)!r}")
        out.append(((g[0] * 60 + g[1]) * 60_000 + g[2] * 1000 + g[3], (g[4] * 60 + g[5]) * 60_000 + g[6] * 1000 + g[7]))
    return out


def assert_ordered_inside(times: list[tuple[int, int]], duration_ms: float) -> None:
    assert times, "no cues"
    for (start, end), (next_start, _) in zip(times, [*times[1:], (times[-1][1], 0)], strict=True):
        assert 0 <= start <= end <= duration_ms + 1, (start, end, duration_ms)
        assert start <= next_start, times


def test_idle_page_lists_engines_and_labels_every_control(
    pw: Playwright, browser_name: str, ui_stack: Stack, artifacts: Path
) -> None:
    with opened(pw, browser_name, ui_stack.url) as page:
        options = page.eval_on_selector_all("#provider option", "os => os.map(o => [o.value, o.disabled])")
        assert sorted(options) == [["local", False], ["truebar", False], ["wiro", False]]
        assert page.locator("#provider-status li[data-configured=true]").count() == 3
        assert page.inner_text("#state") == "Idle"
        # The ASR tag picker appears for Truebar only, filled from the emulator's stages.
        page.select_option("#provider", "truebar")
        page.wait_for_selector("#tag-field:not([hidden])")
        assert page.locator("#tag option").count() >= 1
        page.select_option("#provider", "local")
        assert page.locator("#tag-field").is_hidden()
        # The microphone list follows devicechange (here: a headset appears).
        page.evaluate(
            """() => {
              const md = navigator.mediaDevices;
              const headset = { kind: 'audioinput', deviceId: 'usb-1', label: 'USB headset', groupId: 'g' };
              md.enumerateDevices = async () => [headset];
              md.dispatchEvent(new Event('devicechange'));
            }"""
        )
        page.wait_for_selector("#mic option[value=usb-1]", state="attached")
        assert page.inner_text("#mic option[value=usb-1]") == "USB headset"
        # Every control has an accessible name (a label, its text, or aria-label).
        unnamed = page.evaluate(
            """() => [...document.querySelectorAll('button, select, input, summary, [tabindex]')]
                .filter((el) => !el.closest('[hidden]'))
                .filter((el) => {
                  const labelled = el.labels && [...el.labels].some((l) => l.textContent.trim());
                  const by = el.getAttribute('aria-labelledby');
                  const named = by && document.getElementById(by) && document.getElementById(by).textContent.trim();
                  return !(labelled || named || el.getAttribute('aria-label') || el.textContent.trim());
                }).map((el) => el.id || el.outerHTML.slice(0, 60))"""
        )
        assert unnamed == []
        # Finals are announced politely; interims are not in the live region.
        assert page.get_attribute("#announcer", "aria-live") == "polite"
        # Exports wait for text.
        assert page.is_disabled("#export-srt") and page.is_disabled("#copy-transcript")
        shot(page, artifacts, "idle", browser_name)
        # A narrow phone screen: one column, nothing wider than the screen.
        page.set_viewport_size({"width": 360, "height": 740})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        page.screenshot(path=str(artifacts / f"ui-idle-narrow-{browser_name}.png"), full_page=True)
    if browser_name == "firefox":
        # Firefox over BiDi ignores color_scheme too: its own preference makes the content dark.
        dark_prefs: dict[str, str | int | bool] = {"layout.css.prefers-color-scheme.content-override": 0}
        with launch(pw, "firefox", extra_prefs=dark_prefs) as browser:
            dark = browser.new_page()
            dark.goto(ui_stack.url + "/")
            dark.wait_for_selector("#app[data-ready=true]")
            assert dark.evaluate(BACKGROUND_LUMA) < 60
            dark.screenshot(path=str(artifacts / "ui-idle-dark-firefox.png"), full_page=True)


def test_unconfigured_engines_say_what_to_set(pw: Playwright, browser_name: str, app_url: str) -> None:
    with opened(pw, browser_name, app_url, wav=None) as page:
        disabled = page.eval_on_selector_all("#provider option:disabled", "os => os.map(o => o.value)")
        assert sorted(disabled) == ["truebar", "wiro"]
        assert page.input_value("#provider") == "local"
        for name in ("truebar", "wiro"):
            item = page.inner_text(f"#provider-status li[data-provider={name}]")
            assert "not configured: set" in item and name.upper() in item, item


def test_streaming_transcript_latency_exports_and_diagnostics(
    pw: Playwright, browser_name: str, ui_stack: Stack, artifacts: Path
) -> None:
    with opened(pw, browser_name, ui_stack.url) as page:
        record(page, "local", 2)
        assert page.get_attribute("#state", "data-state") == "streaming"
        assert page.get_attribute("#stop", "disabled") is None
        assert page.is_disabled("#provider") and page.is_disabled("#file")
        level = float(page.get_attribute("#level", "value") or "-90")
        assert -90 < level <= 0
        # Finals carry their start time; the interim is marked provisional and not announced.
        stamps = page.locator("#transcript .final time").all_inner_texts()
        assert stamps[:2] == ["00:00", "00:01"]  # finals start at 0 and 4 x 300 ms
        page.wait_for_selector("#transcript .interim", timeout=TIMEOUT_MS)
        assert page.get_attribute("#transcript .interim", "aria-hidden") == "true"
        shot(page, artifacts, "streaming", browser_name)
        announced = page.locator("#announcer p").all_inner_texts()
        assert announced[:2] == finals(page)[:2]

        # The latency readout, checked by what must hold whatever the machine's load (an upper bound in ms would
        # only measure how busy the machine was): one final-lag sample per final shown, one first-interim sample per
        # utterance, none before its audio (the scripted engine's first word needs WORD_MS of it), none negative.
        shown = page.evaluate(LATENCY_JS)
        assert shown["finalCount"] == shown["finals"] >= 2, shown
        assert shown["finals"] <= shown["firstCount"] <= shown["finals"] + 1, shown
        assert WORD_MS <= shown["firstP50"] <= shown["firstP95"], shown
        assert 0 <= shown["finalP50"] <= shown["finalP95"], shown

        stop(page)
        texts = finals(page)
        assert len(texts) >= 2 and page.locator("#transcript .interim").count() == 0

        name, raw = download(page, "#export-json")
        assert name.endswith(".json")
        doc = json.loads(raw)
        duration = doc["meta"]["durationMs"]
        assert duration > 0
        segments = doc["segments"]
        assert [s["text"] for s in segments] == texts
        assert_ordered_inside([(s["startMs"], s["endMs"]) for s in segments], duration)
        for s in segments:
            words = [(w["startMs"], w["endMs"]) for w in s["words"]]
            assert len(words) == len(s["text"].split())
            assert_ordered_inside(words, duration)
            assert s["startMs"] == words[0][0] and s["endMs"] == words[-1][1]
        # The scripted engine's clock: word k spans [k, k + 1) x WORD_MS.
        all_words = [w for s in segments for w in s["words"]]
        assert [w["startMs"] for w in all_words] == [k * WORD_MS for k in range(len(all_words))]

        name, srt = download(page, "#export-srt")
        assert name.endswith(".srt")
        assert_ordered_inside(cue_times(srt, ","), duration)
        assert re.match(r"1\r?\n", srt)
        name, vtt = download(page, "#export-vtt")
        assert name.endswith(".vtt") and vtt.startswith("WEBVTT")
        assert_ordered_inside(cue_times(vtt, "."), duration)
        assert cue_times(vtt, ".") == cue_times(srt, ",")
        name, txt = download(page, "#export-txt")
        assert name.endswith(".txt")
        assert [p.strip() for p in txt.strip().split("\n\n")] == texts

        page.click("#copy-transcript")
        page.wait_for_function("() => document.getElementById('toolbar-status').textContent.includes('copied')")
        if browser_name == "chromium":
            copied = page.evaluate("navigator.clipboard.readText()")
            assert [re.sub(r"^\[\d\d:\d\d\] ", "", p) for p in copied.strip().split("\n\n")] == texts

        page.click("#diagnostics summary")
        page.wait_for_function("() => document.getElementById('diagnostics-text').textContent.includes('Context rate')")
        diag = page.inner_text("#diagnostics-text")
        assert "Provider: local" in diag and "Provider rate: 16000 Hz" in diag
        assert re.search(r"Context rate: \d{4,6} Hz", diag)
        m = re.search(r"Frames: (\d+) captured / (\d+) expected", diag)
        assert m and int(m.group(1)) > 10 and int(m.group(2)) > 10, diag
        assert "Reconnects: 0" in diag and "Token expires: " in diag and "Browser: Mozilla/5.0" in diag
        assert "ws://" not in diag and "token=" not in diag
        page.click("#copy-diagnostics")
        page.wait_for_function("() => document.getElementById('diagnostics-status').textContent.includes('copied')")

        # Clear empties the transcript and disables the exports again.
        page.click("#clear")
        assert finals(page) == [] and page.is_disabled("#export-json")


def test_keyboard_only(pw: Playwright, browser_name: str, ui_stack: Stack) -> None:
    with opened(pw, browser_name, ui_stack.url) as page:
        reached = []
        outline = {}
        # Stop once every control was reached: tabbing on would leave the page for the browser's own UI.
        while not set(CONTROLS) <= set(reached) and len(reached) < 30:
            page.keyboard.press("Tab")
            focused = page.evaluate(
                """() => { const el = document.activeElement; const style = getComputedStyle(el);
                  return [el.id || el.tagName, style.outlineStyle, style.outlineWidth]; }"""
            )
            reached.append(focused[0])
            outline[focused[0]] = (focused[1], focused[2])
        assert set(CONTROLS) <= set(reached), reached
        # Visible focus on every control reached by Tab (the native file input draws its own ring in Firefox).
        for control in ["provider", "mic", "opt-echo", "start", "transcript"]:
            style, width = outline[control]
            assert style != "none" and width != "0px", (control, style, width)

        # Enter on Start: the focus goes to Stop (Start is disabled under it), and back to Start when the run ends.
        # (Before the Alt shortcuts: after them, Enter on the focused button did nothing in Firefox here; not traced.)
        page.focus("#start")
        page.keyboard.press("Enter")
        page.wait_for_selector("#state[data-state=streaming]", timeout=TIMEOUT_MS)
        assert page.evaluate("() => document.activeElement.id") == "stop"
        page.keyboard.press("Enter")
        page.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)
        assert page.evaluate("() => document.activeElement.id") == "start"

        page.keyboard.press("Alt+s")
        page.wait_for_selector("#transcript .final", timeout=TIMEOUT_MS)
        page.keyboard.press("Alt+t")
        page.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)
        assert len(finals(page)) >= 1
        name, text = download(page, "#export-txt", key="Enter")
        assert name.endswith(".txt") and text.strip()

        before = len(finals(page))
        page.keyboard.press("Alt+s")
        page.wait_for_selector("#transcript .interim", timeout=TIMEOUT_MS)
        page.keyboard.press("Alt+c")
        page.wait_for_selector("#state[data-state=idle]", timeout=TIMEOUT_MS)
        assert page.locator("#transcript .interim").count() == 0
        assert len(finals(page)) >= before
        assert page.is_enabled("#start") and page.is_disabled("#stop")


def test_a_denied_microphone_says_what_to_do(
    pw: Playwright, browser_name: str, ui_stack: Stack, artifacts: Path
) -> None:
    with opened(pw, browser_name, ui_stack.url, wav=None, init_script=DENY_MIC_SCRIPT) as page:
        page.click("#start")
        page.wait_for_selector("#state[data-state=error]", timeout=TIMEOUT_MS)
        message = page.inner_text("#error")
        assert "permission was denied" in message and "Start again" in message
        assert "    at " not in message and "Error:" not in message
        assert page.is_enabled("#start") and page.is_disabled("#stop")
        shot(page, artifacts, "error", browser_name)
        # The next attempt starts clean.
        page.click("#start")
        page.wait_for_selector("#state[data-state=error]", timeout=TIMEOUT_MS)


def test_wiro_shows_its_cost(pw: Playwright, browser_name: str, ui_stack: Stack) -> None:
    with opened(pw, browser_name, ui_stack.url) as page:
        page.select_option("#provider", "wiro")
        page.click("#start")
        page.wait_for_selector("#cost:not([hidden])", timeout=TIMEOUT_MS)
        assert re.fullmatch(r"Cost so far: \$\d+\.\d{4}", page.inner_text("#cost"))
        page.wait_for_selector("#transcript .interim", timeout=TIMEOUT_MS)
        stop(page)
        # Wiro gives no times: its client places the text on the audio clock as it arrives.
        assert page.locator("#transcript .final time").count() == len(finals(page)) >= 1
        _, raw = download(page, "#export-json")
        doc: dict[str, Any] = json.loads(raw)
        assert [s["text"] for s in doc["segments"]] == finals(page)
        assert_ordered_inside([(s["startMs"], s["endMs"]) for s in doc["segments"]], doc["meta"]["durationMs"])
        _, srt = download(page, "#export-srt")
        assert_ordered_inside(cue_times(srt, ","), doc["meta"]["durationMs"])


def test_level_meter_warns_of_clipping_then_no_input(
    pw: Playwright, browser_name: str, ui_stack: Stack, tmp_path: Path
) -> None:
    # 1.5 s of a full-scale square wave, then digital silence.
    rate = 48_000
    t = np.arange(int(rate * 1.5))
    square = np.where((t // 60) % 2 == 0, 32767, -32768).astype("<i2")
    wav = tmp_path / "clip-then-silence.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate([square, np.zeros(rate * 6, dtype="<i2")]).tobytes())
    with opened(pw, browser_name, ui_stack.url, wav=wav) as page:
        page.click("#start")
        page.wait_for_function(
            "() => document.getElementById('level-warning').textContent.includes('clipping')", timeout=TIMEOUT_MS
        )
        assert page.is_visible("#level-warning")
        page.wait_for_function(
            "() => document.getElementById('level-warning').textContent.includes('No input')", timeout=TIMEOUT_MS
        )
        page.click("#cancel")
        assert page.is_hidden("#level-warning")
