from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from server.app import create_app
from server.settings import Settings, read_dotenv
from testkit.live import running
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
    env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.__main__ import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["--env-file", "/nonexistent"]) == 2
    assert message in capsys.readouterr().err
