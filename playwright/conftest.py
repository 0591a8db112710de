from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Playwright, sync_playwright

from server.app import create_app
from server.settings import Settings
from tests.support.live import running

BROWSERS = ["chromium", "firefox"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "playwright" in item.path.parts:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def pw() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(params=BROWSERS)
def browser_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def app_url() -> Iterator[str]:
    with running(create_app(Settings(test_endpoints=True))) as url:
        yield url
