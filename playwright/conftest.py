from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Playwright, sync_playwright
from starlette.applications import Starlette

from server.app import create_app
from server.engine.config import EngineConfig
from server.engine.loader import load_engine
from server.engine.types import Recognizer
from server.settings import Settings
from tests.support.live import running

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

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


@pytest.fixture(scope="session")
def pw() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(params=BROWSERS)
def browser_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def served() -> Iterator[Served]:
    """The app (test endpoints on, offline engine only) on a free loopback port."""
    app = create_app(Settings(test_endpoints=True))
    with running(app) as url:
        yield Served(app, url)


@pytest.fixture
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
