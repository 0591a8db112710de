"""The offline engine's own side: the app mints and checks its tokens and serves the Truebar protocol itself."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from server.app import create_app
from server.emulators.scripted import ScriptedRecognizer
from server.providers.local import LOCAL_TAG, LocalTokens
from server.settings import LocalSettings, Settings
from testkit.live import running
from tests.support.truebar_client import transcribe_truebar


def grant(url: str) -> dict[str, object]:
    r = httpx.post(url + "/api/sessions", json={"provider": "local"})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_tokens_sign_expire_and_bind_to_the_secret() -> None:
    tokens = LocalTokens("secret", ttl_s=60)
    token, expires_at = tokens.mint("abc", now=1000)
    assert expires_at == 1060
    assert tokens.verify(token, now=1059) == {"sid": "abc", "exp": 1060, "cid": ""}
    assert tokens.verify(token, now=1061) is None
    assert LocalTokens("other", ttl_s=60).verify(token, now=1000) is None
    payload, _, mac = token.partition(".")
    assert tokens.verify(payload + "." + mac[::-1], now=1000) is None
    assert tokens.verify("garbage", now=1000) is None
    assert tokens.verify(".", now=1000) is None


def test_grant_has_the_truebar_shape_and_says_it_is_offline() -> None:
    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer())) as url:
        g = grant(url)
        listing = httpx.get(url + "/api/providers").json()
    assert g["protocol"] == "truebar" and g["sample_rate"] == 16_000 and g["frame_samples"] == 800
    assert g["tag"] == LOCAL_TAG and g["offline"] is True
    assert str(g["ws_url"]).endswith("/api/local/stream")
    local = next(p for p in listing["providers"] if p["name"] == "local")
    assert local["configured"] and local["offline"] and listing["default"] == "local"


@pytest.mark.parametrize("token", ["", "not-a-token", "eyJzaWQiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.forged"])
def test_stream_refuses_bad_tokens_with_401(token: str) -> None:
    async def connect(ws_url: str) -> int:
        try:
            async with websockets.connect(f"{ws_url}?access_token={token}"):
                return 101
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code

    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer())) as url:
        ws_url = "ws" + url.removeprefix("http") + "/api/local/stream"
        assert asyncio.run(connect(ws_url)) == 401


def test_expired_token_is_refused() -> None:
    settings = Settings(local_token_ttl_s=-1)
    with running(create_app(settings, local_recognizer=ScriptedRecognizer())) as url:
        g = grant(url)
        result = asyncio.run(connect_status(str(g["ws_url"]), str(g["token"])))
    assert result == 401


async def connect_status(ws_url: str, token: str) -> int:
    try:
        async with websockets.connect(f"{ws_url}?access_token={token}"):
            return 101
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code


def test_a_session_streams_and_finishes() -> None:
    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer(ms_per_word=500))) as url:
        g = grant(url)
        pcm = bytes(16_000 * 2 * 2)  # 2 s of silence: the scripted engine paces words by audio alone
        result = asyncio.run(transcribe_truebar(str(g["ws_url"]), str(g["token"]), pcm, tag=LOCAL_TAG))
    assert [s["status"] for s in result.statuses][:2] == ["INITIALIZED", "CONFIGURED"]
    assert result.statuses[-1]["status"] == "FINISHED"
    assert " ".join(result.finals).split() == ["the", "quick", "brown", "fox"]


def test_busy_engine_gets_a_clear_error() -> None:
    recognizer = ScriptedRecognizer(max_sessions=0)
    with running(create_app(Settings(), local_recognizer=recognizer)) as url:
        g = grant(url)
        result = asyncio.run(transcribe_truebar(str(g["ws_url"]), str(g["token"]), bytes(3200), tag=LOCAL_TAG))
    assert result.errors and "busy" in result.errors[0].lower()


def test_switched_off_engine_is_not_offered() -> None:
    settings = Settings(local=LocalSettings(enabled=False))
    with running(create_app(settings, local_recognizer=ScriptedRecognizer())) as url:
        r = httpx.post(url + "/api/sessions", json={"provider": "local"})
        listing = httpx.get(url + "/api/providers").json()
    assert r.status_code == 409
    assert listing["default"] is None
