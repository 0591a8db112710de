from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import create_app
from server.engine.model import whisper_base
from server.engine.whisper import WhisperOptions, WhisperPass
from server.settings import Settings
from testkit.live import running
from testkit.redis_server import RedisServer, redis_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app_url() -> Iterator[str]:
    """The app, served for real on a free loopback port."""
    with running(create_app(Settings())) as url:
        yield url


@pytest.fixture(scope="session")
def whisper_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache with Whisper base assembled from the installed wheels (once per test run)."""
    cache = tmp_path_factory.mktemp("model-cache")
    whisper_base(cache)
    return cache


@pytest.fixture(scope="session")
def whisper_pass(whisper_model_cache: Path) -> Iterator[WhisperPass]:
    """The accurate pass, loaded once per test run: tests share it as the app's sessions do."""
    accurate = WhisperPass(str(whisper_base(whisper_model_cache)), WhisperOptions(max_queue=64))
    accurate.warm_up()
    yield accurate
    accurate.close()


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A real redis-server of its own (loopback, free port, temporary folder, no persistence), stopped after."""
    with redis_server() as server:
        yield server
