"""Shared captions in WebKit (WebKitGTK through WebDriver; see tests/support/webkit.py): one window records through
the offline engine (a scripted recognizer) and shares, a second window opens the link as an overlay, sees the words,
survives a cut connection with every final once, and is told when sharing stops."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from server.emulators.scripted import ScriptedRecognizer
from testkit.proxy import cuttable_proxy
from testkit.stack import stack
from tests.support.webkit import install_page_hooks, install_wav_mic, page_problems, wait_for

pytestmark = pytest.mark.webkit

CLIP = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech" / "slt-weather-48k.wav"
STATE = """
const lines = [...document.querySelectorAll('#lines .line')].map((p) => p.textContent);
return {lines, status: document.body.dataset.status, connected: document.body.dataset.connected || '',
        notice: document.getElementById('notice').textContent,
        background: getComputedStyle(document.body).backgroundColor,
        fontSize: getComputedStyle(document.body).fontSize};
"""


def until(driver: WebDriver, test: str, what: str, timeout_s: float = 15) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        state: dict[str, object] = driver.execute_script(STATE)
        if driver.execute_script(f"const s = arguments[0]; return Boolean({test});", state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"never {what}: {json.dumps(state)[:600]}")
        time.sleep(0.1)


def test_share_watch_drop_and_revoke_in_webkit(webkit_driver: WebDriver) -> None:
    driver = webkit_driver
    with (
        stack(ScriptedRecognizer(ms_per_word=250, words_per_utterance=3)) as s,
        cuttable_proxy(int(urlsplit(s.url).port or 80)) as proxy,
    ):
        driver.get(s.url + "/")
        wait_for(driver, "#app[data-ready='true']")
        install_page_hooks(driver)
        recorder = driver.current_window_handle
        driver.find_element(By.CSS_SELECTOR, "#share-start").click()
        wait_for(driver, "#share-live:not([hidden])")
        link = driver.find_element(By.CSS_SELECTOR, "#share-link").get_attribute("value") or ""
        path = urlsplit(link).path

        driver.switch_to.new_window("tab")
        viewer = driver.current_window_handle
        driver.get(f"http://127.0.0.1:{proxy.port}{path}?bg=light&size=28")
        until(driver, "s.connected === 'true'", "connected")

        driver.switch_to.window(recorder)
        install_wav_mic(driver, CLIP)
        Select(driver.find_element(By.CSS_SELECTOR, "#provider")).select_by_value("local")
        driver.find_element(By.CSS_SELECTOR, "#start").click()
        wait_for(driver, "#transcript .final:nth-of-type(2)", timeout_s=15)
        driver.switch_to.window(viewer)
        until(driver, "s.lines.length >= 1", "a final on the viewer")
        assert proxy.cut() >= 1
        driver.switch_to.window(recorder)
        wait_for(driver, "#transcript .final:nth-of-type(4)", timeout_s=15)
        driver.find_element(By.CSS_SELECTOR, "#stop").click()
        wait_for(driver, "#state[data-state='idle']")
        spoken = [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, "#transcript .final .text")]
        spoken = [t for t in spoken if t]

        driver.switch_to.window(viewer)
        # The whole transcript (no lines= limit), each final once: none lost to the cut, none repeated.
        wanted = json.dumps(json.dumps(spoken, separators=(",", ":")))
        state = until(driver, f"JSON.stringify(s.lines) === {wanted}", f"the finals {spoken}")
        assert state["background"] == "rgb(255, 255, 255)" and state["fontSize"] == "28px"

        driver.switch_to.window(recorder)
        driver.find_element(By.CSS_SELECTOR, "#share-stop").click()
        driver.switch_to.window(viewer)
        state = until(driver, "s.status === 'revoked'", "revoked")
        assert "stopped sharing" in str(state["notice"])
        assert httpx.get(link).status_code == 410
        driver.switch_to.window(recorder)
        assert page_problems(driver) == []
