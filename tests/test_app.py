from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import httpx
import pytest
import websockets

from server.app import create_app
from server.emulators.scripted import ScriptedRecognizer
from server.engine.config import EngineConfig
from server.engine.types import Recognizer
from server.settings import LocalSettings, Settings, SettingsError, read_dotenv
from testkit.live import running, wait_ready
from testkit.redis_server import RedisServer
from tests.support.sink import PcmSink


def test_settings_from_env_reads_only_the_mapping_given() -> None:
    s = Settings.from_env({"TRUEBAR_USERNAME": "u", "TRUEBAR_PASSWORD": "p", "APP_PORT": "9001"})
    assert s.truebar.username == "u" and s.truebar.missing() == ()
    assert s.port == 9001
    assert Settings.from_env({}).truebar.missing() == ("TRUEBAR_USERNAME", "TRUEBAR_PASSWORD")


def test_secrets_are_not_in_settings_repr() -> None:
    s = Settings.from_env({"TRUEBAR_PASSWORD": "hunter2-secret", "WIRO_API_SECRET": "wiro-secret-value"})
    assert "hunter2-secret" not in repr(s) and "wiro-secret-value" not in repr(s)


def test_dotenv_parsing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / ".env"
    f.write_text("# comment\nexport A=1\nB='two words'\nC=\"x=y\"\nbroken line\n")
    assert read_dotenv(f) == {"A": "1", "B": "two words", "C": "x=y"}
    assert read_dotenv(tmp_path / "missing") == {}


def test_index_and_providers(app_url: str) -> None:
    page = httpx.get(app_url + "/")
    assert page.status_code == 200 and "<main" in page.text
    listing = httpx.get(app_url + "/api/providers").json()
    names = [p["name"] for p in listing["providers"]]
    assert names == ["local", "truebar", "wiro"]
    assert listing["default"] == "local"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "bad_json"),
        (b"[1, 2]", 400, "bad_json"),
        (b'{"provider": "nope"}', 400, "unknown_provider"),
        (b'{"provider": "truebar"}', 409, "not_configured"),
    ],
)
def test_session_bad_input_gets_clear_errors(app_url: str, body: bytes, status: int, code: str) -> None:
    r = httpx.post(app_url + "/api/sessions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


def test_pcm_sink_keeps_frames_in_order() -> None:
    sink = PcmSink()
    app = create_app(Settings(), extra_routes=sink.routes())

    async def talk(url: str) -> None:
        async with websockets.connect(url.replace("http", "ws") + "/api/test/sink?id=t1") as ws:
            await ws.send(b"\x01\x02")
            await ws.send(b"\x03\x04")
            await ws.send("bye")
            await ws.wait_closed()

    with running(app) as url:
        asyncio.run(talk(url))
    assert sink.sessions["t1"] == [b"\x01\x02", b"\x03\x04"]


def test_the_shipped_app_has_no_sink() -> None:
    async def talk(url: str) -> None:
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(url.replace("http", "ws") + "/api/test/sink"):
                pass

    with running(create_app(Settings())) as url:
        asyncio.run(talk(url))


def no_server(*args: object, **options: object) -> None:
    """main's serve or supervise where it must refuse: a refusal that let it through fails here, not by serving."""
    raise AssertionError("main started serving instead of refusing")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_PORT": "eighty"}, "APP_PORT must be a whole number"),
        ({"LOCAL_MAX_SESSIONS": "0"}, "LOCAL_MAX_SESSIONS must be at least 1"),
        ({"APP_UPSTREAM_TIMEOUT_S": "-1"}, "APP_UPSTREAM_TIMEOUT_S must be a positive number"),
        ({"LOCAL_FWDFLAT": "maybe"}, "LOCAL_FWDFLAT must be 1/0"),
    ],
)
def test_bad_settings_stop_the_server_with_a_clear_message(
    env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.__main__ import main

    assert main(["--env-file", "/nonexistent"], environ=env, serve=no_server) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("level", "shown", "hidden"), [("info", "INFO", "DEBUG"), ("warning", "WARNING", "INFO"), ("trace", "DEBUG", "")]
)
def test_the_app_s_own_log_is_written_at_app_log_level(level: str, shown: str, hidden: str) -> None:
    """uvicorn sets up only its own loggers: the engine's "decoding a window again" (info) was dropped and its
    warnings came bare. With the entry point's logging set-up (applied in a process of its own, as uvicorn does in
    each worker) they come on stderr, named, at APP_LOG_LEVEL and above."""
    code = (
        "import logging, logging.config; from server.__main__ import log_config; "
        f"logging.config.dictConfig(log_config({level!r})); log = logging.getLogger('server.engine.twopass'); "
        "[log.log(getattr(logging, name), 'a line at %s', name) for name in ('DEBUG', 'INFO', 'WARNING')]"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert f"server.engine.twopass: a line at {shown}" in done.stderr, done.stderr
    assert not hidden or f"a line at {hidden}" not in done.stderr, done.stderr


class GatedLoader:
    """An engine loader that waits for `gate` (a load that takes a while) and counts its calls; `error` makes it
    fail. It returns the scripted engine: no model is loaded."""

    def __init__(self, error: Exception | None = None) -> None:
        self.gate = threading.Event()
        self.calls = 0
        self.threads: list[str] = []
        self.error = error

    def __call__(self, config: EngineConfig) -> Recognizer:
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        self.gate.wait(10)
        if self.error is not None:
            raise self.error
        return ScriptedRecognizer()


def test_the_engine_loads_at_start_up_off_the_event_loop_and_readyz_says_when() -> None:
    loader = GatedLoader()
    with running(create_app(Settings(), engine_loader=loader)) as url:
        # Started by the app's start-up, not by a first mint; the event loop answers while it loads.
        assert loader.calls == 1
        assert httpx.get(url + "/healthz").status_code == 200
        loading = httpx.get(url + "/readyz")
        loader.gate.set()
        wait_ready(url, timeout_s=10)
        ready = httpx.get(url + "/readyz")
        minted = httpx.post(url + "/api/sessions", json={"provider": "local"})
    assert loading.status_code == 503 and loading.json()["checks"]["engine"] == "loading"
    assert ready.status_code == 200 and ready.json() == {"ready": True, "checks": {"engine": "ok", "state": "ok"}}
    assert minted.status_code == 200 and loader.calls == 1
    assert loader.threads and loader.threads[0] != "uvicorn-test", "the load ran on the event loop's thread"


def test_a_failed_engine_load_is_remembered_not_retried_by_every_mint() -> None:
    loader = GatedLoader(error=RuntimeError("no model here"))
    loader.gate.set()
    with running(create_app(Settings(), engine_loader=loader)) as url:
        mints = [httpx.post(url + "/api/sessions", json={"provider": "local"}) for _ in range(4)]
        ready = httpx.get(url + "/readyz")
        listing = httpx.get(url + "/api/providers")
    assert loader.calls == 1, "every mint retried the whole load"
    for r in mints:
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable"
        assert "RuntimeError" in r.json()["error"]["message"]
    assert ready.status_code == 503 and ready.json()["checks"]["engine"].startswith("failed")
    assert listing.status_code == 200


def test_readyz_is_503_while_the_state_store_is_down_and_recovers(redis: RedisServer) -> None:
    # The app opens (and closes) its own Redis client, on its own event loop.
    settings = Settings(redis_url=redis.url, redis_timeout_s=0.5)
    app = create_app(settings, local_recognizer=ScriptedRecognizer())
    with running(app) as url:
        up = httpx.get(url + "/readyz")
        redis.stop()
        down = httpx.get(url + "/readyz")
        alive = httpx.get(url + "/healthz")
        redis.start()
        back = httpx.get(url + "/readyz")
    assert up.status_code == 200 and up.json()["checks"] == {"engine": "ok", "state": "ok"}
    assert down.status_code == 503 and down.json()["ready"] is False
    assert down.json()["checks"]["state"].startswith("unavailable") and down.headers["Retry-After"]
    assert alive.status_code == 200
    assert back.status_code == 200


def test_a_redis_reached_through_its_unix_socket_serves_every_concern(redis: RedisServer) -> None:
    """Review: redis-py takes unix://, but the rate limits' library does not by that name, and the app failed at
    start with "'valkey' prerequisite not available"."""
    settings = Settings.from_env({"APP_REDIS_URL": redis.unix_url, "APP_SECRET_KEY": "k" * 32})
    with running(create_app(settings, local_recognizer=ScriptedRecognizer())) as url:
        ready = httpx.get(url + "/readyz")
        minted = httpx.post(url + "/api/sessions", json={"provider": "local"})
    assert ready.status_code == 200 and ready.json()["checks"]["state"] == "ok"
    assert minted.status_code == 200, minted.text


@pytest.mark.parametrize(
    "value", ["localhost:6379", "redis://:hunter2@h:abc/0", "redis://:hunter2@:6379/0", "http://h:6379", "unix://"]
)
def test_a_redis_url_that_is_none_is_refused_at_start_without_its_password(value: str) -> None:
    with pytest.raises(SettingsError, match="APP_REDIS_URL must be a Redis URL") as refused:
        Settings.from_env({"APP_REDIS_URL": value, "APP_SECRET_KEY": "k" * 32})
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("value", ["redis://h", "redis://:pw@10.0.0.5:6380/2", "rediss://h:6379/0", "unix:///r.sock"])
def test_the_redis_urls_redis_py_takes_are_accepted(value: str) -> None:
    assert Settings.from_env({"APP_REDIS_URL": value, "APP_SECRET_KEY": "k" * 32}).redis_url == value


def test_readyz_ignores_a_switched_off_engine() -> None:
    settings = Settings(local=LocalSettings(enabled=False))
    with running(create_app(settings)) as url:
        r = httpx.get(url + "/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"engine": "off", "state": "ok"}
