"""Proof the browser SDK can be adopted (issue 19): examples/other_origin/, a page on another origin with its own
token endpoint, imports the SDK from the tarball `npm pack` makes here and transcribes speech through the offline
engine, in Chromium, Firefox (Playwright) and WebKitGTK (WebDriver)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Playwright
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from server.engine.types import Recognizer
from testkit.browsers import launch, new_page
from testkit.live import running
from testkit.stack import stack
from tests.support.webkit import install_page_hooks, install_wav_mic, page_problems, wait_for, wait_until
from tests.test_contract import normalise, wer

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "data" / "speech"
CLIP = SPEECH / "slt-weather-48k.wav"
TRANSCRIPT = json.loads((SPEECH / "transcripts.json").read_text())[CLIP.name]
EXPECTED = normalise(" ".join(u["text"] for u in TRANSCRIPT["utterances"]))


def load_example() -> ModuleType:
    # examples/ is not a package: the example is a script a reader runs; load it by path.
    path = ROOT / "examples" / "other_origin" / "server.py"
    spec = importlib.util.spec_from_file_location("other_origin_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = load_example()


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK as another team gets it: `npm pack` here (no network), unpacked as the example does."""
    out = tmp_path_factory.mktemp("pack")
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed to pack the SDK"
    command = [npm, "pack", "--ignore-scripts", "--pack-destination", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    [tarball] = out.glob("live-stt-*.tgz")
    package: Path = EXAMPLE.unpack(tarball, out / "unpacked")
    # Only the package's files: the page, the server and the tests are not in it.
    assert (package / "static" / "session.js").is_file()
    assert (package / "static" / "audio" / "pcm-processor.js").is_file()
    assert not (package / "static" / "page").exists() and not (package / "server").exists()
    return package


@contextlib.contextmanager
def two_origins(engine: Recognizer, package_dir: Path) -> Iterator[tuple[str, str]]:
    """The speech app (offline engine) and the other team's page, each on its own loopback port: two origins."""
    with stack(engine) as s, running(EXAMPLE.create_app(s.url, package_dir)) as page_url:
        assert urlsplit(page_url).port != urlsplit(s.url).port
        yield s.url, page_url


def check_loaded_from_own_origin(resources: list[str], page_url: str) -> None:
    # Every HTTP request went to the page's own origin (the SDK from its /vendor copy of the tarball, the grants from
    # its own endpoint); only the WebSocket, which resource timing does not list, goes to the speech app.
    assert resources and all(name.startswith(page_url + "/") for name in resources), resources
    assert page_url + "/vendor/live-stt/static/session.js" in resources, resources
    assert page_url + "/token" in resources, resources


def test_page_on_another_origin_transcribes_through_the_packed_sdk(
    pw: Playwright, browser_name: str, engine: Recognizer, package_dir: Path
) -> None:
    problems: list[str] = []
    with two_origins(engine, package_dir) as (_, page_url), launch(pw, browser_name, CLIP) as browser:
        page = new_page(browser, browser_name, CLIP)
        page.on("pageerror", lambda err: problems.append(f"pageerror: {err}"))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        page.goto(page_url + "/")
        page.click("#start")
        page.wait_for_selector("#state[data-state='streaming']", timeout=20_000)
        page.wait_for_timeout(int(TRANSCRIPT["duration_ms"]) + 1500)
        page.click("#stop")
        page.wait_for_selector("#state[data-state='stopped']", timeout=30_000)
        finals = page.locator("#transcript p.final").all_inner_texts()
        resources = page.evaluate("() => performance.getEntriesByType('resource').map((e) => e.name)")
        assert page.is_hidden("#error")
    assert wer(EXPECTED, normalise(" ".join(finals))) <= 0.25, finals
    check_loaded_from_own_origin(resources, page_url)
    assert problems == []


@pytest.mark.webkit
def test_page_on_another_origin_transcribes_through_the_packed_sdk_in_webkit(
    webkit_driver: WebDriver, engine: Recognizer, package_dir: Path
) -> None:
    driver = webkit_driver
    with two_origins(engine, package_dir) as (_, page_url):
        driver.get(page_url + "/")
        wait_until(driver, "return document.readyState === 'complete'")
        install_page_hooks(driver)
        install_wav_mic(driver, CLIP)
        driver.find_element(By.CSS_SELECTOR, "#start").click()
        wait_for(driver, "#state[data-state='streaming']")
        wait_until(driver, "return window.__fakeMicEnded === true", TRANSCRIPT["duration_ms"] / 1000 + 15)
        driver.find_element(By.CSS_SELECTOR, "#stop").click()
        wait_for(driver, "#state[data-state='stopped']", timeout_s=30)
        finals = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#transcript p.final")]
        resources = driver.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
        assert not driver.find_element(By.CSS_SELECTOR, "#error").is_displayed()
        assert page_problems(driver) == []
    assert wer(EXPECTED, normalise(" ".join(finals))) <= 0.25, finals
    check_loaded_from_own_origin(resources, page_url)
