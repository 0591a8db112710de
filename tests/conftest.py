from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from server.app import create_app
from server.engine.accurate import AccurateScheduler
from server.engine.config import EngineConfig
from server.engine.loader import load_fast_pass
from server.engine.model import whisper_base
from server.engine.sphinx import PocketsphinxRecognizer
from server.engine.whisper import WhisperOptions, WhisperPass
from server.settings import Settings
from testkit.live import running
from testkit.redis_server import RedisServer, redis_server
from testkit.whisper import whisper_thread

# Every hypothesis suite runs under one profile. "deterministic", the default (make test, CI, a plain pytest): the
# same examples every run (derandomized, no example database), and a failure is reported as found, not shrunk, so a
# failing slow property (tests/test_stream_properties.py) cannot spend many minutes shrinking. "soak", for local runs
# (HYPOTHESIS_PROFILE=soak): fresh random examples each run, and failures shrunk and saved for the next.
settings.register_profile(
    "deterministic", derandomize=True, database=None, phases=(Phase.explicit, Phase.generate), print_blob=True
)
settings.register_profile(
    "soak",
    derandomize=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    """The app as it ships (the offline engine loading at start-up), served for real on a free loopback port: one
    per test module, as each start spawns Whisper's process. Its users ask it things and open sessions (their few mints
    stay far under the per-client rate limit); a test that needs an app of its own starts one."""
    with running(create_app(Settings())) as url:
        yield url


@pytest.fixture(scope="session")
def whisper_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache with Whisper base assembled from the installed wheels (once per test worker)."""
    cache = tmp_path_factory.mktemp("model-cache")
    whisper_base(cache)
    return cache


@pytest.fixture(scope="session")
def whisper_model(whisper_model_cache: Path) -> WhisperPass:
    """Whisper base, loaded once per test worker. Greedy, as the engine decodes whenever time is short (its beam,
    LOCAL_WHISPER_BEAM, is used only while Whisper has time to spare, so a job's beam depends on timing)."""
    model = WhisperPass(str(whisper_base(whisper_model_cache)), WhisperOptions(max_queue=64))
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def whisper_pass(whisper_model: WhisperPass) -> Iterator[AccurateScheduler]:
    """The accurate pass on a thread of the test process, shared by the tests as the app's sessions share it
    (greedy: `whisper_model`)."""
    accurate = whisper_thread(whisper_model)
    yield accurate
    accurate.close()


@pytest.fixture(scope="module")
def fast_pass() -> Iterator[PocketsphinxRecognizer]:
    """The fast pass as the loader builds it beside Whisper (low-latency endpointer, no rescoring), in a thread."""
    recognizer = load_fast_pass(EngineConfig(), mode="thread", workers=1)
    yield recognizer
    recognizer.shutdown()


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A real redis-server of its own (loopback, free port, temporary folder, no persistence), stopped after."""
    with redis_server() as server:
        yield server
