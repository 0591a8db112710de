from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.app import create_app
from server.settings import Settings
from tests.support.live import running


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app_url() -> Iterator[str]:
    """The app with test endpoints on, served for real on a free loopback port."""
    with running(create_app(Settings(test_endpoints=True))) as url:
        yield url
