"""Truebar emulator conformance over real HTTP and WebSocket on loopback (scripted recognizer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.emulators import truebar as emulator_module
from server.emulators.scripted import ScriptedRecognizer
from server.emulators.truebar import (
    SessionRecord,
    StreamOptions,
    TruebarEmulatorOptions,
    create_emulator,
    decode_jwt,
    encode_jwt,
)
from server.engine.types import RecognizerSession
from server.protocols.truebar import ProtocolError, bearer_token, parse_client_text
from server.transcript import Hypothesis
from testkit.live import running
from testkit.truebar_client import config_message, tokens_to_text, transcribe_truebar

TAG = "KALDI:en-US:*:*"
TOKEN_PATH = "/realms/truebar/protocol/openid-connect/token"
SCRIPT = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
KEY = "test-signing-key"


def pcm(ms: int, seed: int = 1) -> bytes:
    """Deterministic non-silent 16 kHz s16le audio of `ms` milliseconds (the scripted recognizer ignores content)."""
    samples = ms * 16
    return bytes(((i * 7 + seed) % 251) for i in range(samples * 2))


@dataclass
class Emu:
    app: Starlette
    http: str
    ws: str

    @property
    def sessions(self) -> list[SessionRecord]:
        sessions: list[SessionRecord] = self.app.state.sessions
        return sessions

    def token(self, **form: str) -> str:
        data = {"grant_type": "password", "username": "demo", "password": "demo", "client_id": "truebar-client"}
        r = httpx.post(self.http + TOKEN_PATH, data={**data, **form})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def last_record(self) -> SessionRecord:
        record = self.sessions[-1]
        assert record.ended.wait(10), "the emulator's handler did not finish"
        return record


@contextlib.contextmanager
def serve(
    stream: StreamOptions | None = None,
    recognizer: Any = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    **options: Any,
) -> Iterator[Emu]:
    opts = TruebarEmulatorOptions(signing_key=KEY, stream=stream or StreamOptions(), **options)
    app = create_emulator(opts, recognizer or ScriptedRecognizer(SCRIPT), sleep=sleep)
    with running(app) as url:
        yield Emu(app, url, url.replace("http://", "ws://") + "/api/pipelines/stream")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with serve() as e:
        yield e


def kind(msg: dict[str, Any]) -> str:
    return str(msg.get("type", msg.get("messageType")))


def cfg(tag: str = TAG, interims: bool = True, **extra: Any) -> str:
    if not extra:
        return config_message(tag, interims=interims)
    stage = {"task": "ASR", "config": {"tag": tag, "parameters": {"enableInterims": interims}}}
    return json.dumps({"type": "CONFIG", "pipeline": [stage, *extra.get("more", [])]})


EOS = json.dumps({"type": "EOS", "lockSession": False})


async def exchange(
    ws_url: str, token: str, outgoing: Sequence[str | bytes], *, via: str = "query", wait_s: float = 10
) -> tuple[list[dict[str, Any]], int | None]:
    """Send everything at once, then read until the server closes; return the messages and the close code."""
    headers = {"Authorization": f"Bearer {token}"} if via == "header" else {}
    url = ws_url if via == "header" else f"{ws_url}?access_token={token}"
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(wait_s), websockets.connect(url, additional_headers=headers) as ws:
        with contextlib.suppress(ConnectionClosed):
            for item in outgoing:
                await ws.send(item)
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                messages.append(json.loads(raw))
    return messages, ws.close_code


def statuses(messages: list[dict[str, Any]]) -> list[str]:
    return [m["status"] for m in messages if kind(m) == "STATUS"]


def finals(messages: list[dict[str, Any]]) -> list[str]:
    return [
        tokens_to_text(m["textSegment"]["tokens"])
        for m in messages
        if kind(m) == "TEXT_SEGMENT" and m["textSegment"]["isFinal"]
    ]


# Pure protocol pieces.


def test_tokens_to_text_follows_the_vendor_rule() -> None:
    tokens = [
        {"text": "Hello", "isLeftHanded": False, "isRightHanded": False},
        {"text": ",", "isLeftHanded": True, "isRightHanded": False},
        {"text": "world", "isLeftHanded": False, "isRightHanded": False},
        {"text": "!", "isLeftHanded": True, "isRightHanded": False},
        {"text": "", "isLeftHanded": False},
        {"text": "(", "isRightHanded": True},
        {"text": "x"},
    ]
    assert tokens_to_text(tokens) == "Hello, world! (x"


def test_parser_accepts_either_envelope_key_and_rejects_junk() -> None:
    assert parse_client_text(json.dumps({"messageType": "EOS", "lockSession": True})).lock_session  # type: ignore[union-attr]
    config = parse_client_text(cfg())
    assert config.asr.tag == TAG and config.enable_interims  # type: ignore[union-attr]
    for bad in ["{", "[]", '{"type": "NOPE"}', '{"type": "CONFIG"}', '{"type": "EOS", "lockSession": 1}']:
        with pytest.raises(ProtocolError):
            parse_client_text(bad)


def test_the_token_is_the_bearer_header_else_the_query_parameter() -> None:
    assert bearer_token({"authorization": "Bearer abc "}, {}) == ("abc", "header")
    assert bearer_token({"authorization": "bearer abc"}, {"access_token": "q"}) == ("abc", "header")
    assert bearer_token({}, {"access_token": "q"}) == ("q", "query")
    # Not a bearer token (Basic, or the scheme alone): the query decides.
    assert bearer_token({"authorization": "Basic dTpw"}, {"access_token": "q"}) == ("q", "query")
    assert bearer_token({"authorization": "Bearer  "}, {}) is None
    assert bearer_token({}, {"access_token": ""}) is None


def test_jwt_roundtrip_rejects_tampering_and_expiry() -> None:
    token = encode_jwt({"sub": "u", "exp": 2_000_000_000}, b"k")
    assert decode_jwt(token, b"k", now=1_000_000_000) == {"sub": "u", "exp": 2_000_000_000}
    assert decode_jwt(token, b"other", now=1_000_000_000) is None
    assert decode_jwt(token, b"k", now=2_000_000_001) is None
    header, _, sig = token.split(".")
    forged = encode_jwt({"sub": "admin", "exp": 2_000_000_000}, b"x").split(".")[1]
    assert decode_jwt(f"{header}.{forged}.{sig}", b"k", now=1_000_000_000) is None


# Token endpoint.


@pytest.mark.parametrize("prefix", ["", "/auth"])
def test_password_grant_returns_keycloak_shape(prefix: str) -> None:
    with serve(token_ttl_s=120, refresh_ttl_s=600) as e:
        form = {"grant_type": "password", "username": "demo", "password": "demo", "client_id": "truebar-client"}
        r = httpx.post(e.http + prefix + TOKEN_PATH, data=form)
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 120 and body["refresh_expires_in"] == 600
        assert {"refresh_token", "session_state", "scope", "not-before-policy"} <= body.keys()
        claims = decode_jwt(body["access_token"], KEY.encode(), now=time.time())
        assert claims is not None
        assert claims["exp"] - claims["iat"] == 120 and claims["azp"] == "truebar-client" and claims["sub"]
        assert e.app.state.token_requests["password"] == 1


@pytest.mark.parametrize(
    ("form", "status", "error", "description"),
    [
        ({"password": "wrong"}, 401, "invalid_grant", "Invalid user credentials"),
        ({"username": "someone"}, 401, "invalid_grant", "Invalid user credentials"),
        ({"client_id": "other-client"}, 401, "invalid_client", "Invalid client or Invalid client credentials"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type", "Unsupported grant_type"),
        ({"grant_type": ""}, 400, "unsupported_grant_type", "Unsupported grant_type"),
        ({"grant_type": "refresh_token", "refresh_token": "junk"}, 400, "invalid_grant", "Token is not active"),
    ],
)
def test_token_errors_are_keycloak_bodies(
    emu: Emu, form: dict[str, str], status: int, error: str, description: str
) -> None:
    data = {"grant_type": "password", "username": "demo", "password": "demo", "client_id": "truebar-client"}
    r = httpx.post(emu.http + TOKEN_PATH, data={**data, **form})
    assert r.status_code == status
    assert r.json() == {"error": error, "error_description": description}


def test_refresh_grant_rotates_and_expired_refresh_is_not_active(emu: Emu) -> None:
    form = {"grant_type": "password", "username": "demo", "password": "demo", "client_id": "truebar-client"}
    first = httpx.post(emu.http + TOKEN_PATH, data=form).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "truebar-client"}
    second = httpx.post(emu.http + TOKEN_PATH, data=refresh)
    assert second.status_code == 200
    assert second.json()["session_state"] == first["session_state"]
    assert second.json()["refresh_token"] != first["refresh_token"]
    claims = decode_jwt(first["refresh_token"], KEY.encode(), now=time.time())
    assert claims is not None
    expired = encode_jwt({**claims, "exp": int(time.time()) - 1}, KEY.encode())
    r = httpx.post(emu.http + TOKEN_PATH, data={**refresh, "refresh_token": expired})
    assert (r.status_code, r.json()["error_description"]) == (400, "Token is not active")
    # An access token is not a refresh token.
    r = httpx.post(emu.http + TOKEN_PATH, data={**refresh, "refresh_token": first["access_token"]})
    assert r.status_code == 400


def test_unknown_realm_is_404(emu: Emu) -> None:
    r = httpx.post(emu.http + "/realms/other/protocol/openid-connect/token", data={"grant_type": "password"})
    assert r.status_code == 404


# Stage listing.


def test_stages_need_a_token_and_list_both_spellings(emu: Emu) -> None:
    assert httpx.get(emu.http + "/api/pipelines/stages").status_code == 401
    bad = httpx.get(emu.http + "/api/pipelines/stages", headers={"Authorization": "Bearer junk"})
    assert bad.status_code == 401
    token = emu.token()
    by_header = httpx.get(emu.http + "/api/pipelines/stages", headers={"Authorization": f"Bearer {token}"})
    by_query = httpx.get(emu.http + "/api/pipelines/stages", params={"access_token": token})
    assert by_header.status_code == by_query.status_code == 200
    stages = by_header.json()
    assert stages == by_query.json()
    asr_options = [o for s in stages if s["task"] == "ASR" and "configOptions" in s for o in s["configOptions"]]
    assert any(o["tag"] == TAG and "onlineAsr" in o["features"] for o in asr_options)
    assert any("onlineAsr" not in o["features"] for o in asr_options)
    assert any("config" in s and "onlineAsr" in s.get("features", []) for s in stages)
    assert any(s["task"] == "NLP_pc" for s in stages)


# Stream: upgrade.


@pytest.mark.parametrize("token", ["", "junk", "expired"])
def test_upgrade_without_a_valid_token_is_401(emu: Emu, token: str) -> None:
    if token == "expired":
        claims = decode_jwt(emu.token(), KEY.encode(), now=time.time())
        assert claims is not None
        token = encode_jwt({**claims, "exp": int(time.time()) - 5}, KEY.encode())

    async def go() -> None:
        url = emu.ws + (f"?access_token={token}" if token else "")
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(url):
                pass
        assert info.value.response.status_code == 401

    asyncio.run(go())


# Stream: the normal flow.


@pytest.mark.parametrize("via", ["query", "header"])
def test_full_session_with_both_token_paths(emu: Emu, via: str) -> None:
    audio = pcm(2000)
    result = asyncio.run(transcribe_truebar(emu.ws, emu.token(), audio, tag=TAG, token_via=via))  # type: ignore[arg-type]
    assert result.errors == []
    assert result.status_names == ["INITIALIZED", "CONFIGURED", "FINISHED"]
    # 2000 ms at 300 ms per word: six words, five in the first utterance, the sixth flushed by EOS.
    assert result.finals == [" ".join(SCRIPT[:5]), SCRIPT[5]]
    assert result.interims[:3] == ["alpha", "alpha bravo", "alpha bravo charlie"]
    assert result.close_code == 1000
    configured, finished = result.statuses[1], result.statuses[2]
    assert isinstance(configured["sessionId"], int) and isinstance(configured["recordingId"], int)
    assert finished["lengthMs"] == 2000 and "sessionLockKey" not in finished
    record = emu.last_record()
    assert record.token_source == via and record.outcome == "FINISHED"
    assert bytes(record.pcm) == audio and record.frames == len(audio) // 3200
    second_final = [s for s in result.segments if s["isFinal"]][1]
    assert second_final["startTimeMs"] == 1500 and second_final["endTimeMs"] == 1800
    assert [(t["startOffsetMs"], t["endOffsetMs"]) for t in second_final["tokens"]] == [(0, 300)]
    first_final = next(s for s in result.segments if s["isFinal"])
    assert [t["startOffsetMs"] for t in first_final["tokens"]] == [0, 300, 600, 900, 1200]


def test_without_enable_interims_only_finals_arrive(emu: Emu) -> None:
    result = asyncio.run(transcribe_truebar(emu.ws, emu.token(), pcm(2000), tag=TAG, interims=False))
    assert result.interims == []
    assert result.finals == [" ".join(SCRIPT[:5]), SCRIPT[5]]


def test_config_before_initialized_and_audio_before_configured_are_valid() -> None:
    audio = pcm(1000)
    with serve(StreamOptions(configured_delay_s=0.3)) as e:
        frames = [audio[i : i + 3200] for i in range(0, len(audio), 3200)]
        messages, code = asyncio.run(exchange(e.ws, e.token(), [cfg(), *frames, EOS]))
        record = e.last_record()
    assert statuses(messages) == ["INITIALIZED", "CONFIGURED", "FINISHED"]
    assert finals(messages) == [" ".join(SCRIPT[:3])]
    assert code == 1000
    assert bytes(record.pcm) == audio


def test_message_type_key_is_accepted_on_input(emu: Emu) -> None:
    config = json.loads(cfg())
    config["messageType"] = config.pop("type")
    outgoing = [json.dumps(config), pcm(600), json.dumps({"messageType": "EOS", "lockSession": False})]
    messages, code = asyncio.run(exchange(emu.ws, emu.token(), outgoing))
    assert statuses(messages) == ["INITIALIZED", "CONFIGURED", "FINISHED"] and code == 1000


def test_envelope_option_sends_message_type() -> None:
    with serve(StreamOptions(envelope_key="messageType")) as e:
        messages, _ = asyncio.run(exchange(e.ws, e.token(), [cfg(), pcm(900), EOS]))
    assert messages and all("messageType" in m and "type" not in m for m in messages)
    assert statuses(messages) == ["INITIALIZED", "CONFIGURED", "FINISHED"]
    assert finals(messages) == ["alpha bravo charlie"]


def test_eos_flushes_the_last_finals_before_finished(emu: Emu) -> None:
    # 1200 ms: four words, never a full utterance, so the only final comes from the flush at EOS.
    messages, _ = asyncio.run(exchange(emu.ws, emu.token(), [cfg(), pcm(1200), EOS]))
    kinds = [(kind(m), m.get("status") or m.get("textSegment", {}).get("isFinal")) for m in messages]
    final_at = kinds.index(("TEXT_SEGMENT", True))
    assert kinds[final_at + 1 :] == [("STATUS", "FINISHED")]
    assert finals(messages) == ["alpha bravo charlie delta"]


def test_lock_session_gets_a_lock_key(emu: Emu) -> None:
    eos = json.dumps({"type": "EOS", "lockSession": True})
    messages, _ = asyncio.run(exchange(emu.ws, emu.token(), [cfg(), pcm(300), eos]))
    finished = [m for m in messages if m.get("status") == "FINISHED"]
    assert len(finished) == 1 and finished[0]["sessionLockKey"]
    assert finished[0]["lengthMs"] == 300


def test_cancel_returns_to_initialized_and_a_new_config_works(emu: Emu) -> None:
    cancel = json.dumps({"type": "CANCEL"})
    outgoing = [cfg(), pcm(900), cancel, cfg(interims=False), pcm(600), EOS]
    messages, code = asyncio.run(exchange(emu.ws, emu.token(), outgoing))
    assert statuses(messages) == ["INITIALIZED", "CONFIGURED", "CANCELED", "CONFIGURED", "FINISHED"]
    after_cancel = messages[messages.index(next(m for m in messages if m.get("status") == "CANCELED")) :]
    segments = [m["textSegment"] for m in after_cancel if kind(m) == "TEXT_SEGMENT"]
    # The new session starts again from time zero with a fresh recognizer session, and without interims.
    assert [(s["isFinal"], s["startTimeMs"], tokens_to_text(s["tokens"])) for s in segments] == [
        (True, 0, "alpha bravo")
    ]
    assert code == 1000
    record = emu.last_record()
    assert len(record.configs) == 2 and len(record.pcm) == len(pcm(900)) + len(pcm(600))


def test_punctuation_stage_marks_tokens_left_handed(emu: Emu) -> None:
    nlp = {"task": "NLP_pc", "config": {"tag": "NEMO_PUNCTUATOR:en-US:*:*", "parameters": {}}}
    messages, _ = asyncio.run(exchange(emu.ws, emu.token(), [cfg(more=[nlp]), pcm(900), EOS]))
    assert finals(messages) == ["Alpha bravo charlie."]


def test_warnings_keep_the_session_going() -> None:
    skipped = {"task": "NLP_xx", "exceptionHandlingPolicy": "SKIP", "config": {"tag": "X:en-US:*:*"}}
    config = json.loads(cfg(more=[skipped]))
    config["pipeline"][0]["config"]["parameters"]["fancyOption"] = True
    with serve(StreamOptions(warning_after_frames=2)) as e:
        frames = [pcm(100)] * 4
        messages, code = asyncio.run(exchange(e.ws, e.token(), [json.dumps(config), *frames, EOS]))
    warnings = [m["message"] for m in messages if kind(m) == "WARNING"]
    assert len(warnings) == 3
    assert any("fancyOption" in w for w in warnings) and any("NLP_xx" in w for w in warnings)
    assert statuses(messages)[-1] == "FINISHED" and code == 1000


def good_config_with(**changes: Any) -> str:
    stage: dict[str, Any] = {"task": "ASR", "exceptionHandlingPolicy": "THROW", "config": {"tag": TAG}}
    stage.update(changes)
    return json.dumps({"type": "CONFIG", "pipeline": [stage]})


BAD_INPUTS: dict[str, list[str | bytes]] = {
    "audio_before_config": [b"\x00\x00" * 160],
    "malformed_json": ["{not json"],
    "not_an_object": ["[1, 2]"],
    "unknown_type": ['{"type": "HELLO"}'],
    "missing_type": ['{"pipeline": []}'],
    "unknown_tag": [cfg("KALDI:xx-XX:*:*")],
    "tag_without_online_asr": [cfg("NEMO_ASR:en-US:*:*")],
    "pipeline_not_a_list": ['{"type": "CONFIG", "pipeline": {}}'],
    "pipeline_empty": ['{"type": "CONFIG", "pipeline": []}'],
    "stage_without_config": ['{"type": "CONFIG", "pipeline": [{"task": "ASR"}]}'],
    "malformed_tag": [good_config_with(config={"tag": "nope"})],
    "bad_policy": [good_config_with(exceptionHandlingPolicy="MAYBE")],
    "first_stage_not_asr": [json.dumps({"type": "CONFIG", "pipeline": [{"task": "NLP_pc", "config": {"tag": TAG}}]})],
    "unavailable_stage_throw": [
        cfg(more=[{"task": "NLP_xx", "exceptionHandlingPolicy": "THROW", "config": {"tag": "X:en-US:*:*"}}])
    ],
    "odd_length_frame": [cfg(), b"\x00\x00\x00"],
    "second_config": [cfg(), cfg()],
    "eos_before_config": [EOS],
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gets_an_error_and_a_close(emu: Emu, name: str) -> None:
    messages, code = asyncio.run(exchange(emu.ws, emu.token(), BAD_INPUTS[name]))
    assert kind(messages[0]) == "STATUS" and messages[0]["status"] == "INITIALIZED"
    last = messages[-1]
    assert kind(last) == "ERROR", messages
    assert set(last["error"]) == {"id", "timestamp", "message"} and last["error"]["message"]
    assert "FINISHED" not in statuses(messages)
    assert code == 1008
    record = emu.last_record()
    assert record.outcome == "ERROR" and record.errors == [last["error"]["message"]]


def test_injected_error_after_frames() -> None:
    with serve(StreamOptions(error_after_frames=3)) as e:
        messages, code = asyncio.run(exchange(e.ws, e.token(), [cfg(), *[pcm(100)] * 6, EOS]))
        record = e.last_record()
    assert kind(messages[-1]) == "ERROR" and "Injected" in messages[-1]["error"]["message"]
    assert code == 1011 and record.frames == 3


def test_injected_drop_closes_without_a_close_frame() -> None:
    with serve(StreamOptions(drop_after_frames=2)) as e:
        messages, code = asyncio.run(exchange(e.ws, e.token(), [cfg(), *[pcm(100)] * 5, EOS]))
        record = e.last_record()
    assert code == 1006
    assert "FINISHED" not in statuses(messages) and not any(kind(m) == "ERROR" for m in messages)
    assert record.outcome == "DROPPED" and record.frames == 2


@pytest.mark.parametrize("close_code", [None, 4000, 1000])
def test_the_close_code_after_an_error_is_an_option(close_code: int | None) -> None:
    """The spec leaves the close codes unknown: the stream server's own by default, any one by option (a real
    service closing with 1000 after an ERROR must be emulatable)."""
    with serve(StreamOptions(error_after_frames=2, error_close_code=close_code)) as e:
        messages, code = asyncio.run(exchange(e.ws, e.token(), [cfg(), *[pcm(100)] * 4, EOS]))
    assert kind(messages[-1]) == "ERROR"
    assert code == (1011 if close_code is None else close_code)
    for impossible in (1005, 1006, 999, 5000):
        with pytest.raises(ValueError, match="close code"):
            StreamOptions(error_close_code=impossible)


@pytest.mark.parametrize("fault", ["drop", "error"])
def test_a_fault_between_the_last_finals_and_finished(fault: Literal["drop", "error"]) -> None:
    """After EOS the client waits for FINISHED with a timeout: a drop (1006) or an ERROR there can be injected."""
    with serve(StreamOptions(fail_at_finish=fault)) as e:
        messages, code = asyncio.run(exchange(e.ws, e.token(), [cfg(), pcm(600), EOS]))
        record = e.last_record()
    assert finals(messages) == ["alpha bravo"] and "FINISHED" not in statuses(messages)
    if fault == "drop":
        assert code == 1006 and record.outcome == "DROPPED"
    else:
        assert kind(messages[-1]) == "ERROR" and code == 1011 and record.outcome == "ERROR"


def test_finished_delay_option_delays_but_still_finishes() -> None:
    """The delay is seen through the emulator's injected sleep, not a stopwatch: asked for once, for the configured
    0.5 s, after the last final went out and before FINISHED did."""
    waits: list[tuple[float, list[dict[str, Any]]]] = []
    sessions: list[list[SessionRecord]] = []

    async def sleep(seconds: float) -> None:
        waits.append((seconds, list(sessions[0][-1].sent)))  # what the client had been sent when the wait began
        await asyncio.sleep(0)

    with serve(StreamOptions(finished_delay_s=0.5), sleep=sleep) as e:
        sessions.append(e.sessions)
        messages, code = asyncio.run(exchange(e.ws, e.token(), [cfg(), pcm(600), EOS]))
    assert statuses(messages)[-1] == "FINISHED" and finals(messages) == ["alpha bravo"] and code == 1000
    assert [seconds for seconds, _ in waits] == [0.5]
    before = waits[0][1]
    assert finals(before) == ["alpha bravo"] and "FINISHED" not in statuses(before)


def test_token_expiring_mid_session_ends_it_with_an_error() -> None:
    async def go(e: Emu, token: str) -> tuple[list[dict[str, Any]], int | None]:
        messages: list[dict[str, Any]] = []
        async with asyncio.timeout(10), websockets.connect(f"{e.ws}?access_token={token}") as ws:
            await ws.send(cfg())
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await ws.send(pcm(100))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.1):
                            messages.append(json.loads(await ws.recv()))
            # A send can meet the close before every message that preceded it was read: read them now.
            with contextlib.suppress(ConnectionClosed):
                while True:
                    messages.append(json.loads(await ws.recv()))
        return messages, ws.close_code

    with serve(StreamOptions(expire_mid_session=True), token_ttl_s=2) as e:
        messages, code = asyncio.run(go(e, e.token()))
        record = e.last_record()
    assert "CONFIGURED" in statuses(messages)
    assert kind(messages[-1]) == "ERROR" and "expired" in messages[-1]["error"]["message"]
    assert code == 1008 and record.outcome == "ERROR" and record.frames > 0


def test_one_bad_session_does_not_affect_another(emu: Emu) -> None:
    audio = pcm(2000)

    async def both() -> tuple[Any, Any]:
        good = transcribe_truebar(emu.ws, emu.token(), audio, tag=TAG, frame_bytes=640)
        bad = exchange(emu.ws, emu.token(), [cfg(), pcm(100), b"\x01\x02\x03", pcm(100)])
        return await asyncio.gather(good, bad)

    good, (bad_messages, bad_code) = asyncio.run(both())
    assert good.errors == [] and good.finals == [" ".join(SCRIPT[:5]), SCRIPT[5]]
    assert kind(bad_messages[-1]) == "ERROR" and bad_code == 1008


def test_busy_recognizer_refuses_config_and_frees_the_slot() -> None:
    recognizer = ScriptedRecognizer(SCRIPT, max_sessions=1)

    async def go(e: Emu) -> tuple[list[dict[str, Any]], int | None, list[str]]:
        async with websockets.connect(f"{e.ws}?access_token={e.token()}") as first:
            await first.send(cfg())
            seen = [json.loads(await first.recv())["status"], json.loads(await first.recv())["status"]]
            messages, code = await exchange(e.ws, e.token(), [cfg()])
            await first.send(EOS)
            async for raw in first:
                seen.append(json.loads(raw).get("status"))
        return messages, code, seen

    with serve(recognizer=recognizer) as e:
        messages, code, seen = asyncio.run(go(e))
        assert all(r.ended.wait(5) for r in e.sessions)
    assert kind(messages[-1]) == "ERROR" and "busy" in messages[-1]["error"]["message"]
    assert code == 1013
    assert seen == ["INITIALIZED", "CONFIGURED", "FINISHED"]
    assert recognizer.active == 0


class ExplodingSession:
    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        raise RuntimeError("decoder exploded")

    async def finish(self) -> list[Hypothesis]:
        return []

    async def aclose(self) -> None:
        return None


class ExplodingRecognizer:
    name = "exploding"

    async def open(self) -> RecognizerSession:
        return ExplodingSession()


def test_recognizer_failure_is_an_error_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    with serve(recognizer=ExplodingRecognizer()) as e:
        messages, code = asyncio.run(exchange(e.ws, e.token(), [cfg(), pcm(100)]))
        again, _ = asyncio.run(exchange(e.ws, e.token(), [cfg(), EOS]))
    assert kind(messages[-1]) == "ERROR" and code == 1011
    assert "exploded" not in messages[-1]["error"]["message"]
    assert statuses(again) == ["INITIALIZED", "CONFIGURED", "FINISHED"]


def test_client_closing_mid_session_cancels_it_and_frees_the_recognizer() -> None:
    recognizer = ScriptedRecognizer(SCRIPT)

    async def go(e: Emu) -> None:
        async with websockets.connect(f"{e.ws}?access_token={e.token()}") as ws:
            await ws.send(cfg())
            await ws.send(pcm(300))
            while json.loads(await ws.recv()).get("status") != "CONFIGURED":
                pass

    with serve(recognizer=recognizer) as e:
        asyncio.run(go(e))
        record = e.last_record()
    assert record.outcome == "CANCELED" and recognizer.active == 0


# The command line.


def test_cli_help_documents_default_credentials() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "server.emulators", "truebar", "--help"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "demo" in out.stdout


def test_cli_port_zero_prints_the_real_urls() -> None:
    command = [sys.executable, "-m", "server.emulators", "truebar", "--port", "0", "--recognizer", "scripted"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            assert proc.stdout is not None
            lines: dict[str, str] = {}
            while "TRUEBAR_STT_WS_URL" not in lines:
                line = proc.stdout.readline()
                assert line, "the emulator exited before printing its URLs"
                name, sep, value = line.strip().partition("=")
                if sep:
                    lines[name] = value
            assert ":0/" not in lines["TRUEBAR_AUTH_URL"]
            form = {"grant_type": "password", "username": "demo", "password": "demo", "client_id": "truebar-client"}
            token = None
            for _ in range(100):
                with contextlib.suppress(httpx.ConnectError):
                    token = httpx.post(lines["TRUEBAR_AUTH_URL"], data=form).json()["access_token"]
                    break
                time.sleep(0.05)
            assert token
            messages, code = asyncio.run(exchange(lines["TRUEBAR_STT_WS_URL"], token, [cfg(), pcm(600), EOS]))
            assert statuses(messages) == ["INITIALIZED", "CONFIGURED", "FINISHED"] and code == 1000
        finally:
            proc.terminate()
            proc.wait(10)


def test_cli_falls_back_to_scripted_when_the_engine_cannot_load(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(name: str) -> Any:
        raise ImportError("No module named 'pocketsphinx'")

    recognizer = emulator_module._load("pocketsphinx", broken)
    assert isinstance(recognizer, ScriptedRecognizer)
    assert "unavailable" in capsys.readouterr().err


def test_faults_can_be_limited_to_the_first_connections() -> None:
    from server.emulators.truebar import StreamOptions

    options = StreamOptions(
        drop_after_frames=3, error_after_frames=4, expire_mid_session=True, fail_at_finish="drop", faulty_sessions=1
    )
    assert options.for_connection(0) is options
    later = options.for_connection(1)
    assert (later.drop_after_frames, later.error_after_frames, later.expire_mid_session) == (None, None, False)
    assert later.fail_at_finish is None
    assert StreamOptions(drop_after_frames=3).for_connection(5).drop_after_frames == 3


def test_server_messages_are_typed_and_encoded_in_one_place() -> None:
    """Every message the stream sends is a typed value; Envelope.encode alone writes the vendor's JSON."""
    from server.protocols.truebar import Envelope, ErrorMessage, Status, TextSegment, Token, WarningMessage

    envelope = Envelope("messageType")
    assert envelope.encode(Status("FINISHED", session_id=3, length_ms=1200)) == {
        "messageType": "STATUS",
        "status": "FINISHED",
        "sessionId": 3,
        "lengthMs": 1200,
    }
    segment = TextSegment(True, 100, 900, (Token("hi", 0, 400), Token(".", 400, 400, left_handed=True)))
    assert envelope.encode(segment)["textSegment"]["tokens"][1] == {
        "isLeftHanded": True,
        "isRightHanded": False,
        "startOffsetMs": 400,
        "endOffsetMs": 400,
        "text": ".",
    }
    assert Envelope().encode(WarningMessage("w")) == {"type": "WARNING", "message": "w"}
    error = Envelope().encode(ErrorMessage("e"))
    assert error["type"] == "ERROR" and error["error"]["message"] == "e" and error["error"]["id"]
