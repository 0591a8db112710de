"""The page in WebKit, the engine behind Safari: Debian's WebKitGTK driven through WebKitWebDriver (Selenium) under
Xvfb, with the same checks the Chromium and Firefox tests make. See tests/support/webkit.py for what WebKit lacks
here and what stands in for it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from server.engine.types import Recognizer
from testkit.stack import stack
from tests.support.capture_check import CAPTURE_JS, capture_args, check_capture
from tests.support.dsp_check import RUN_GOLDEN, check_golden, golden_args
from tests.support.webkit import (
    install_page_hooks,
    install_wav_mic,
    install_wav_source,
    page_problems,
    run_async,
    wait_for,
    wait_until,
)
from tests.test_contract import normalise, wer

pytestmark = pytest.mark.webkit

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
TRANSCRIPTS = json.loads((SPEECH / "transcripts.json").read_text())
CLIP = SPEECH / "slt-weather-48k.wav"
READY = "#app[data-ready='true']"


def open_page(driver: WebDriver, url: str) -> None:
    driver.get(url + "/")
    wait_for(driver, READY)
    install_page_hooks(driver)


def click(driver: WebDriver, css: str) -> None:
    driver.find_element(By.CSS_SELECTOR, css).click()


def test_page_loads_under_its_csp_with_no_script_errors(webkit_driver: WebDriver, app_url: str) -> None:
    csp = httpx.get(app_url + "/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    open_page(webkit_driver, app_url)
    # data-ready is the last thing app.js does: every module it imports loaded under the policy and ran.
    assert webkit_driver.find_element(By.CSS_SELECTOR, "h1").text == "Live transcription"
    assert len(webkit_driver.find_elements(By.CSS_SELECTOR, "#provider option")) == 3
    loaded = webkit_driver.execute_script(
        "return {resources: performance.getEntriesByType('resource').map((e) => e.name),"
        " cssRules: Array.from(document.styleSheets).map((s) => s.cssRules.length)}"
    )
    assert all(name.startswith(app_url + "/") for name in loaded["resources"]), loaded["resources"]
    # The page names its files by version (/static/v/<hash>/...); the stylesheet is one of them.
    css = [n for n in loaded["resources"] if n.startswith(app_url + "/static/v/") and n.endswith("/app.css")]
    assert css and loaded["cssRules"] and min(loaded["cssRules"]) > 0, loaded["resources"]
    # A run with WebKit's mock microphone (a tone) adds the worklet module and the WebSocket, both under the policy.
    click(webkit_driver, "#start")
    wait_for(webkit_driver, "#state[data-state='streaming']")
    click(webkit_driver, "#stop")
    wait_for(webkit_driver, "#state[data-state='idle']")
    assert page_problems(webkit_driver) == []
    # The recorder itself works here: inline script is refused by the policy and the refusal is recorded.
    webkit_driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__inlineRan = true';"
        " document.body.append(s);"
    )
    wait_until(webkit_driver, "return window.__problems.length > 0", 5)
    problems = page_problems(webkit_driver)
    assert webkit_driver.execute_script("return window.__inlineRan === undefined")
    assert len(problems) == 1 and problems[0].startswith("csp: script-src"), problems


@pytest.mark.parametrize(("out_rate", "frame_samples"), [(16_000, 1_600), (24_000, 4_800)])
def test_capture_path_delivers_the_reference_pcm(
    webkit_autoplay_driver: WebDriver, served, out_rate: int, frame_samples: int  # type: ignore[no-untyped-def]
) -> None:
    driver = webkit_autoplay_driver
    key = uuid.uuid4().hex
    open_page(driver, served.url)
    install_wav_source(driver, CLIP)
    sink_url = f"{served.ws_url}/api/test/sink?id={key}"
    result = run_async(driver, CAPTURE_JS, capture_args(CLIP, out_rate, frame_samples, sink_url))
    check_capture(served.sink.sessions[key], result, CLIP, out_rate, frame_samples)
    assert page_problems(driver) == []


def test_spoken_words_appear_through_the_offline_engine(webkit_driver: WebDriver, engine: Recognizer) -> None:
    transcript = TRANSCRIPTS[CLIP.name]
    expected = normalise(" ".join(u["text"] for u in transcript["utterances"]))
    with stack(engine) as s:
        open_page(webkit_driver, s.url)
        install_wav_mic(webkit_driver, CLIP)
        Select(webkit_driver.find_element(By.CSS_SELECTOR, "#provider")).select_by_value("local")
        click(webkit_driver, "#start")
        wait_for(webkit_driver, "#state[data-state='streaming']")
        # Interims while the sentence is spoken, before any final; the finals once the microphone's WAV has played.
        wait_for(webkit_driver, "#transcript .interim", timeout_s=15)
        assert webkit_driver.find_elements(By.CSS_SELECTOR, "#transcript p.final") == []
        wait_until(webkit_driver, "return window.__fakeMicEnded === true", transcript["duration_ms"] / 1000 + 15)
        click(webkit_driver, "#stop")
        wait_for(webkit_driver, "#state[data-state='idle']")
        finals = [e.text for e in webkit_driver.find_elements(By.CSS_SELECTOR, "#transcript p.final .text")]
        assert wer(expected, normalise(" ".join(finals))) <= 0.25, finals
        assert not webkit_driver.find_element(By.CSS_SELECTOR, "#error").is_displayed()
        assert page_problems(webkit_driver) == []


def test_golden_pcm_in_webkit(webkit_driver: WebDriver, app_url: str) -> None:
    # The app's own page is the document: pcm.js is imported under the page's policy, as the worklet imports it.
    open_page(webkit_driver, app_url)
    result = run_async(webkit_driver, RUN_GOLDEN, golden_args(inline=True))
    assert "AppleWebKit" in result["agent"] and "Chrome" not in result["agent"]
    check_golden(result)
    assert page_problems(webkit_driver) == []
