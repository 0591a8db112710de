from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Playwright, sync_playwright
from selenium.webdriver.remote.webdriver import WebDriver
from starlette.applications import Starlette

from server.app import create_app
from server.engine.config import EngineConfig
from server.engine.loader import load_engine
from server.engine.types import Recognizer
from server.settings import Settings
from testkit.live import running
from tests.support.sink import PcmSink
from tests.support.webkit import webkit

BROWSERS = ["chromium", "firefox"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "playwright" in item.path.parts:
            item.add_marker(pytest.mark.browser)


@dataclass
class Served:
    app: Starlette
    url: str
    sink: PcmSink

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


@pytest.fixture(scope="module")
def pw() -> Iterator[Playwright]:
    """Playwright's driver, one per test module: while it runs, its event loop counts as running on this thread,
    so asyncio.run() in a Python test that follows on the same pytest-xdist worker would fail."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(params=BROWSERS)
def browser_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@contextlib.contextmanager
def _webkit_quietly(autoplay: bool, log_dir: Path, dark: bool = False) -> Iterator[WebDriver]:
    # Selenium logs every script with its arguments at DEBUG (the root logger is at DEBUG for the secret watch):
    # a WAV in base64 would fill a failure report.
    selenium_log = logging.getLogger("selenium")
    level = selenium_log.level
    selenium_log.setLevel(logging.INFO)
    try:
        with webkit(autoplay=autoplay, log_dir=log_dir, dark=dark) as driver:
            yield driver
    finally:
        selenium_log.setLevel(level)


@pytest.fixture
def webkit_driver(tmp_path: Path) -> Iterator[WebDriver]:
    """A fresh WebKitGTK MiniBrowser (its own Xvfb and WebKitWebDriver) where audio needs a click, as in Safari;
    stopped after the test even if it fails. The driver's log stays in the test's tmp_path."""
    with _webkit_quietly(False, tmp_path) as driver:
        yield driver


@pytest.fixture
def webkit_dark_driver(tmp_path: Path) -> Iterator[WebDriver]:
    """The same, in a dark GTK theme: the page sees prefers-color-scheme: dark."""
    with _webkit_quietly(False, tmp_path, dark=True) as driver:
        yield driver


@pytest.fixture
def webkit_autoplay_driver(tmp_path: Path) -> Iterator[WebDriver]:
    """The same, with audio allowed to start without a click (for scripts that call the capture code directly)."""
    with _webkit_quietly(True, tmp_path) as driver:
        yield driver


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """The app (test endpoints on, offline engine only) on a free loopback port, one per test module: each start
    spawns the engine's Whisper process, and the tests that share it keep apart (each sink session has its own key,
    and no test spends the mint rate limit)."""
    sink = PcmSink()
    app = create_app(Settings(), extra_routes=sink.routes())
    with running(app) as url:
        yield Served(app, url, sink)


@pytest.fixture(scope="module")
def app_url(served: Served) -> str:
    return served.url


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests leave screenshots for review (ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def engine() -> Iterator[Recognizer]:
    """The embedded pocketsphinx engine, one per test module (its worker processes stop afterwards)."""
    recognizer = load_engine(EngineConfig())
    yield recognizer
    shutdown = getattr(recognizer, "shutdown", None)
    if shutdown is not None:
        shutdown()
