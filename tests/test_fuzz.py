"""Hostile input, generated: every parser answers with its own typed error, never another exception, and the
servers that use them keep serving other sessions.

Pure parsers first (Truebar and Wiro protocol messages, the app's token and cookie checks, redaction), then the
same input over live sockets (the emulators and the app's offline-engine stream), then the app's session body,
then the providers reading whatever an upstream might answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from server.app import create_app
from server.emulators import wiro_protocol as wp
from server.emulators.scripted import DEFAULT_SCRIPT, ScriptedRecognizer
from server.emulators.wiro import WiroEmulatorOptions
from server.errors import ApiError
from server.protocols import truebar as tb
from server.providers.base import SessionRequest
from server.providers.local import LocalTokens
from server.providers.truebar import TruebarProvider
from server.providers.wiro import WiroProvider
from server.security import SECRET_PARAMS, check_auth_cookie, make_auth_cookie, redact
from server.settings import Settings, TruebarSettings, WiroSettings
from server.wire import SessionBody, dump
from testkit import audio
from testkit.live import running
from testkit.stack import TRUEBAR_PASSWORD, TRUEBAR_USER, WIRO_KEY, WIRO_SECRET, Stack, stack
from testkit.truebar_client import transcribe_truebar
from testkit.wiro_client import transcribe_wiro
from tests.support.grants import created

FAST = settings(max_examples=150, deadline=None)
SOCKETS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Deeper than Python's recursion limit, yet well inside every size limit (16 KiB bodies, 1 MiB frames).
DEEP_JSON = "[" * 5000 + "]" * 5000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
tags = st.one_of(
    st.sampled_from(["KALDI:en-US:*:*", "NEMO_PUNCTUATOR:en-US:*:*", "RIVA:en-US:*:*", "X:y:z:w"]),
    st.text(max_size=30),
    st.integers(),
)
stages = st.fixed_dictionaries(
    {},
    optional={
        "task": st.sampled_from(["ASR", "NLP_pc", "", "X"]) | json_values,
        "exceptionHandlingPolicy": st.sampled_from(["THROW", "SKIP", "IGNORE"]) | json_values,
        "config": st.fixed_dictionaries(
            {},
            optional={
                "tag": tags,
                "parameters": st.dictionaries(
                    st.sampled_from(["enableInterims", "enableUnks", "other"]), json_values, max_size=3
                )
                | json_values,
            },
        )
        | json_values,
    },
)
truebar_messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["CONFIG", "EOS", "CANCEL", "STATUS", ""]) | json_values,
        "messageType": st.sampled_from(["CONFIG", "EOS"]),
        "pipeline": st.lists(stages, max_size=3) | json_values,
        "lockSession": json_values,
    },
)
truebar_texts = st.one_of(st.text(max_size=200), truebar_messages.map(json.dumps), json_values.map(json.dumps))


# --- pure parsers -----------------------------------------------------------------------------------------------


@FAST
@given(truebar_texts)
@example(DEEP_JSON)
@example('{"type": "CONFIG", "pipeline": ' + DEEP_JSON + "}")
def test_truebar_client_text_is_a_message_or_a_protocol_error(text: str) -> None:
    try:
        message = tb.parse_client_text(text)
    except tb.ProtocolError as exc:
        assert str(exc)
        return
    assert isinstance(message, tb.Config | tb.Eos | tb.Cancel)
    if isinstance(message, tb.Config):
        assert message.asr.task == tb.ASR_TASK and tb.TAG_PATTERN.match(message.asr.tag)


@FAST
@given(st.lists(stages, max_size=4) | json_values)
def test_truebar_pipeline_is_stages_or_a_protocol_error(raw: Any) -> None:
    try:
        parsed = tb.parse_pipeline(raw)
    except tb.ProtocolError:
        return
    assert parsed and parsed[0].task == tb.ASR_TASK
    assert sum(1 for s in parsed if s.task == tb.ASR_TASK) == 1
    assert all(s.policy in tb.POLICIES for s in parsed)


wiro_messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["task_info", "task_session_end", "other"]) | json_values,
        "tasktoken": st.text(max_size=32) | json_values,
    },
)


@FAST
@given(st.one_of(st.text(max_size=200), wiro_messages.map(json.dumps), json_values.map(json.dumps)))
@example(DEEP_JSON)
def test_wiro_client_text_is_always_typed(text: str) -> None:
    message = wp.parse_client_text(text)
    assert isinstance(message, wp.TaskInfo | wp.SessionEnd | wp.BadMessage)
    if not isinstance(message, wp.BadMessage):
        assert message.tasktoken


@FAST
@given(st.binary(max_size=300))
@example(b"|")
@example(b"abc|\x7c\x7c")
def test_wiro_audio_frame_splits_on_the_first_separator(data: bytes) -> None:
    frame = wp.parse_audio_frame(data)
    if isinstance(frame, wp.BadMessage):
        return
    assert frame.tasktoken and frame.tasktoken.isascii() and "|" not in frame.tasktoken
    assert len(frame.pcm) % 2 == 0
    assert frame.tasktoken.encode() + b"|" + frame.pcm == data


header_text = st.text(max_size=40)


@FAST
@given(
    st.dictionaries(st.sampled_from(["x-api-key", "x-nonce", "x-signature", "other"]), header_text),
    st.text(min_size=1, max_size=20),
    st.text(max_size=20),
)
def test_wiro_auth_check_never_raises(headers: dict[str, str], api_key: str, api_secret: str) -> None:
    failure = wp.check_auth(headers, api_key=api_key, api_secret=api_secret)
    assert failure is None or failure.message in {
        wp.MSG_KEY_NOT_FOUND,
        wp.MSG_SIGNATURE_REQUIRED,
        wp.MSG_SIGNATURE_INVALID,
    }
    if failure is None:
        assert headers.get("x-api-key") == api_key


@FAST
@given(st.text(min_size=1, max_size=20), st.text(max_size=20), st.text(min_size=1, max_size=20))
def test_wiro_signature_round_trips_and_replays_are_refused(api_key: str, api_secret: str, nonce: str) -> None:
    headers = {"x-api-key": api_key, "x-nonce": nonce, "x-signature": wp.sign(api_key, api_secret, nonce)}
    seen: set[str] = set()
    assert wp.check_auth(headers, api_key=api_key, api_secret=api_secret, seen_nonces=seen) is None
    if api_secret:
        again = wp.check_auth(headers, api_key=api_key, api_secret=api_secret, seen_nonces=seen)
        assert again == wp.AuthFailure(wp.MSG_SIGNATURE_INVALID)


@FAST
@given(st.text(max_size=120))
@example("a.é")
@example("é.b")
def test_local_token_verify_rejects_anything_it_did_not_mint(token: str) -> None:
    tokens = LocalTokens("fuzz-secret", 60.0)
    assert tokens.verify(token) is None


@FAST
@given(st.text(min_size=1, max_size=30), st.text(max_size=3))
def test_local_token_round_trip_and_tampering(session_id: str, suffix: str) -> None:
    now = [1000.0]
    tokens = LocalTokens("fuzz-secret", 60.0, clock=lambda: now[0])
    token, expires_at = tokens.mint(session_id)
    claims = tokens.verify(token)
    assert claims is not None and claims.session_id == session_id and claims.expires_at == expires_at
    if suffix:
        assert tokens.verify(token + suffix) is None
    assert LocalTokens("other-secret", 60.0, clock=lambda: now[0]).verify(token) is None
    now[0] = expires_at
    assert tokens.verify(token) is None


@FAST
@given(st.text(max_size=60))
@example("auth.9999999999.é")
@example("auth.²³.x")
def test_auth_cookie_check_is_a_plain_no(value: str) -> None:
    assert check_auth_cookie("cookie-secret", value) is False


def test_auth_cookie_check_accepts_its_own() -> None:
    cookie = make_auth_cookie("cookie-secret", 60.0, now=1000.0)
    assert check_auth_cookie("cookie-secret", cookie, now=1000.0)
    assert not check_auth_cookie("cookie-secret", cookie, now=1060.0)


secret_values = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~%+/", min_size=1)


@FAST
@given(st.text(max_size=80), st.sampled_from(SECRET_PARAMS), secret_values, st.sampled_from(["?", "&", " ", "\n"]))
def test_redact_hides_every_credential_parameter(prefix: str, name: str, value: str, sep: str) -> None:
    line = f"{prefix}{sep}{name}={value}&x=1"
    out = redact(line)
    assert f"{name}={value}" not in out or value == "***"
    assert f"{name}=***" in out
    assert redact(out) == out


@st.composite
def spellings(draw: st.DrawFn, name: str) -> str:
    """`name` as a query string may spell it: any of its characters percent-encoded, in either case of hex."""
    out = []
    for c in name:
        encoded = f"%{ord(c):02X}"
        out.append(draw(st.sampled_from([c, encoded, encoded.lower()])))
    return "".join(out)


@FAST
@given(st.sampled_from(SECRET_PARAMS).flatmap(spellings), secret_values)
def test_redact_hides_a_credential_whatever_its_name_spelling(spelled: str, value: str) -> None:
    # The app reads the parameter by its decoded name (Starlette: parse_qsl), so the log must hide it just the same.
    query = f"x=1&{spelled}={value}&y=2"
    assert parse_qsl(query, keep_blank_values=True)[1] == (unquote(spelled), unquote_plus(value))
    assert unquote(spelled) in SECRET_PARAMS
    line = f'127.0.0.1:5 - "GET /api/local/stream?{query} HTTP/1.1" 101'
    assert redact(line) == line.replace(f"{spelled}={value}&", f"{spelled}=***&")


@FAST
@given(st.text(max_size=200))
def test_redact_is_total_and_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


# --- live sockets: the emulators and the app's offline-engine stream --------------------------------------------


class ErrorRecords(logging.Handler):
    """Collects ERROR records from everywhere, uvicorn's non-propagating loggers included."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @contextlib.contextmanager
    def attached(self) -> Iterator[ErrorRecords]:
        loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.access")]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)

    def messages(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[Stack]:
    wiro = WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET, max_concurrent_tasks=10_000)
    with stack(ScriptedRecognizer(ms_per_word=250, words_per_utterance=4), wiro_options=wiro) as s:
        yield s


def grant(s: Stack, provider: str) -> dict[str, Any]:
    r = httpx.post(s.url + "/api/sessions", json={"provider": provider})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def truebar_token(s: Stack) -> str:
    form = {
        "grant_type": "password",
        "username": TRUEBAR_USER,
        "password": TRUEBAR_PASSWORD,
        "client_id": "truebar-client",
    }
    r = httpx.post(s.urls["truebar"] + "/realms/truebar/protocol/openid-connect/token", data=form)
    token: str = r.json()["access_token"]
    return token


frames = st.lists(
    st.one_of(
        truebar_texts,
        st.binary(max_size=400),
        st.just(json.dumps({"type": "CONFIG", "pipeline": [{"task": "ASR", "config": {"tag": "X"}}]})),
        st.sampled_from(["EOS", '{"type": "EOS"}', '{"type": "CANCEL"}', DEEP_JSON]),
    ),
    max_size=6,
)


def play(url: str, sequence: list[str | bytes], *, first: str | None = None) -> None:
    """Open a socket, send `first` then the sequence, and close; the server may hang up at any point."""
    try:
        with connect(url, open_timeout=10, close_timeout=5, max_size=None) as ws:
            if first is not None:
                ws.send(first)
            for frame in sequence:
                ws.send(frame)
            # Read until the server has answered everything it is going to (or has closed): then its handler has
            # seen every frame before the next example starts.
            with contextlib.suppress(TimeoutError):
                while True:
                    ws.recv(timeout=0.05)
    except (ConnectionClosed, InvalidStatus, OSError):
        pass


def stream_url(base: str, token: str) -> str:
    return f"{base}?access_token={token}"


def tone_pcm(seconds: float, rate: int) -> bytes:
    return audio.float_to_pcm16(audio.tone(440.0, rate, int(seconds * rate), 0.3)).astype("<i2").tobytes()


def test_truebar_emulator_survives_arbitrary_frames(fuzz_stack: Stack) -> None:
    s = fuzz_stack
    token = truebar_token(s)
    url = stream_url("ws" + s.urls["truebar"].removeprefix("http") + "/api/pipelines/stream", token)
    assert s.truebar is not None
    sessions = s.truebar.state.sessions

    @SOCKETS
    @given(frames)
    @example([DEEP_JSON])
    def exchange(sequence: list[str | bytes]) -> None:
        before = len(sessions)
        play(url, sequence)
        assert len(sessions) == before + 1
        assert sessions[-1].ended.wait(5)

    with ErrorRecords().attached() as errors:
        exchange()
    internal = [e for r in sessions for e in r.errors if "Internal error" in e]
    assert not internal and not errors.messages()
    result = asyncio.run(transcribe_truebar(url.split("?")[0], token, tone_pcm(2.0, 16_000), tag="KALDI:en-US:*:*"))
    assert not result.errors and " ".join(result.finals).split() == DEFAULT_SCRIPT[:8]


def test_local_engine_stream_survives_arbitrary_frames(fuzz_stack: Stack) -> None:
    s = fuzz_stack

    @SOCKETS
    @given(frames, st.booleans())
    @example([DEEP_JSON], True)
    def exchange(sequence: list[str | bytes], configured: bool) -> None:
        g = grant(s, "local")
        config = json.dumps({"type": "CONFIG", "pipeline": [{"task": "ASR", "config": {"tag": g["tag"]}}]})
        play(stream_url(g["ws_url"], g["token"]), sequence, first=config if configured else None)
        # The socket is closed; its handler may still be ending (and logging): the errors are counted after it.
        s.served["app"].wait_idle()

    with ErrorRecords().attached() as errors:
        exchange()
    assert not errors.messages()
    g = grant(s, "local")
    result = asyncio.run(transcribe_truebar(g["ws_url"], g["token"], tone_pcm(2.0, 16_000), tag=g["tag"]))
    assert not result.errors and " ".join(result.finals).split() == DEFAULT_SCRIPT[:8]


wiro_frames = st.lists(
    st.one_of(
        st.text(max_size=120),
        wiro_messages.map(json.dumps),
        st.binary(max_size=300),
        st.just("TOKEN"),  # replaced by the task's real token, in each of its frame shapes
        st.sampled_from([DEEP_JSON, "[]", "{}"]),
    ),
    max_size=6,
)


def test_wiro_emulator_survives_arbitrary_frames(fuzz_stack: Stack) -> None:
    s = fuzz_stack
    assert s.wiro is not None
    state = s.wiro.state.wiro

    @SOCKETS
    @given(wiro_frames, st.sampled_from(["none", "info", "info+audio"]))
    @example([DEEP_JSON], "info")
    @example(["TOKEN", b"odd"], "info+audio")
    def exchange(sequence: list[str | bytes], opening: str) -> None:
        g = grant(s, "wiro")
        token = g["token"]
        out: list[str | bytes] = []
        if opening != "none":
            out.append(json.dumps({"type": "task_info", "tasktoken": token}))
        if opening == "info+audio":
            out.append(token.encode() + b"|" + b"\x00\x01" * 240)
        for frame in sequence:
            if frame == "TOKEN":
                out += [json.dumps({"type": "task_session_end", "tasktoken": token}), token.encode() + b"|\x00"]
            else:
                out.append(frame)
        play(g["ws_url"], out)
        # The socket is closed; its handler may still be ending (and logging): the errors are counted after it.
        s.served["wiro"].wait_idle()

    with ErrorRecords().attached() as errors:
        exchange()
    assert state.internal_errors == []
    assert not errors.messages()
    g = grant(s, "wiro")
    result = asyncio.run(transcribe_wiro(g["ws_url"], g["token"], tone_pcm(2.0, 24_000)))
    assert result.text.split() == DEFAULT_SCRIPT[:8]


# --- the app's session body -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_app_url() -> Iterator[str]:
    app = create_app(
        Settings(session_rate_per_min=1_000_000, max_sessions_per_client=1_000_000),
        local_recognizer=ScriptedRecognizer(),
    )
    with running(app) as url:
        yield url


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"provider": st.sampled_from(["local", "truebar", "wiro", "", "LOCAL"]) | json_values},
        optional={"tag": tags, "extra": json_values},
    ).map(lambda v: json.dumps(v).encode()),
)
SESSION_ERRORS = {400: "bad_json", 409: "not_configured", 413: "too_large"}


def test_session_body_answers_a_grant_or_a_clear_error(plain_app_url: str) -> None:
    with httpx.Client(base_url=plain_app_url, headers={"Content-Type": "application/json"}) as client:

        @settings(max_examples=200, deadline=None)
        @given(bodies)
        @example(DEEP_JSON.encode())
        @example(b'{"provider": "local", "x": ' + DEEP_JSON.encode() + b"}")
        @example(b"\xff\xfe{")
        @example(b"{" * 20_000)
        def post(body: bytes) -> None:
            r = client.post("/api/sessions", content=body)
            assert r.status_code in {200, *SESSION_ERRORS}, (r.status_code, r.text[:200])
            data = r.json()
            if r.status_code == 200:
                assert data["provider"] == "local" and data["token"]
            else:
                assert data["error"]["code"] in {"bad_json", "unknown_provider", "not_configured", "too_large"}

        post()


def test_auth_cookie_through_the_gate_is_a_plain_401() -> None:
    app = create_app(Settings(app_password="gate-pass", secret_key="gate-secret-0e7a4c1f9d2b68351f4e"))
    with running(app) as url, httpx.Client(base_url=url) as client:

        @settings(max_examples=60, deadline=None)
        # Any byte a header value may hold (no controls, no edge whitespace), Latin-1 included.
        @given(st.lists(st.integers(0x21, 0xFF).filter(lambda c: c != 0x7F), max_size=60).map(bytes))
        @example(b"auth.9999999999.\xe9")
        def request(value: bytes) -> None:
            r = client.get("/api/providers", headers=[(b"cookie", b"stt_auth=" + value)])
            assert r.status_code == 401 and r.json()["error"]["code"] == "login_required"

        request()


# --- the providers reading upstream answers -----------------------------------------------------------------------


def upstream_answer(status: int, body: Any, retry_after: str | None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode("latin-1")))
    return httpx.Response(status, content=content, headers=headers)


statuses = st.sampled_from([200, 200, 200, 400, 401, 404, 429, 500, 503])
retry_afters = st.none() | st.text(alphabet=st.characters(max_codepoint=255, blacklist_categories=["Cc"]), max_size=5)
token_bodies = st.one_of(
    st.binary(max_size=100),
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "access_token": st.text(max_size=20) | json_values,
            "expires_in": st.floats() | st.integers() | json_values,
            "refresh_token": st.text(max_size=20) | json_values,
            "refresh_expires_in": st.floats() | st.integers(),
            "error": st.sampled_from(["invalid_client", "invalid_grant", "other"]),
        },
    ),
)
stage_bodies = st.one_of(st.binary(max_size=100), json_values, st.lists(stages, max_size=3))


def strict_json(grant: dict[str, Any]) -> None:
    """What the app will send the browser: strict JSON (Starlette refuses NaN and infinities) with a real expiry."""
    json.dumps(grant, allow_nan=False)
    assert math.isfinite(grant["expires_at"])


async def truebar_calls(answers: dict[str, httpx.Response], tag: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return answers["stages" if request.url.path.endswith("/stages") else "token"]

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        provider = TruebarProvider(TruebarSettings(username="u", password="p"), http)
        # The tag as the app hands it on: through the body's parser (a tag of any other type is none).
        request = SessionRequest("ws://app", tag=SessionBody.parse({"provider": "truebar", "tag": tag}).tag)
        for call in (provider.options, lambda: created(provider, request)):
            try:
                result = await call()
            except ApiError as exc:
                assert 400 <= exc.status_code < 600 and exc.code and exc.message
                assert exc.retry_after is None or math.isfinite(exc.retry_after)
            else:
                body = dump(result)
                if "token" in body:
                    strict_json(body)
                else:
                    json.dumps(body, allow_nan=False)
        await provider.aclose()


@FAST
@given(statuses, token_bodies, statuses, stage_bodies, retry_afters, tags)
@example(200, {"access_token": "a", "expires_in": float("inf")}, 200, [], None, "KALDI:en-US:*:*")
@example(200, {"access_token": "a", "expires_in": float("nan")}, 200, [], None, "KALDI:en-US:*:*")
@example(429, {}, 200, [], "\u00b2", "KALDI:en-US:*:*")
@example(200, DEEP_JSON.encode(), 200, [], None, "KALDI:en-US:*:*")
@example(200, {"access_token": "a"}, 200, DEEP_JSON.encode(), None, "X:y:z:w")
def test_truebar_provider_turns_any_upstream_answer_into_a_grant_or_provider_error(
    token_status: int, token_body: Any, stages_status: int, stages_body: Any, retry_after: str | None, tag: Any
) -> None:
    answers = {
        "token": upstream_answer(token_status, token_body, retry_after),
        "stages": upstream_answer(stages_status, stages_body, retry_after),
    }
    asyncio.run(truebar_calls(answers, tag))


run_bodies = st.one_of(
    st.binary(max_size=100),
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "result": st.booleans() | json_values,
            "taskid": st.integers() | st.text(max_size=10) | json_values,
            "socketaccesstoken": st.text(max_size=30) | json_values,
            "errors": st.lists(
                st.fixed_dictionaries(
                    {}, optional={"code": st.sampled_from([0, 1, 96, 97, 98, 99]) | json_values, "message": json_values}
                ),
                max_size=2,
            )
            | json_values,
        },
    ),
)


async def wiro_calls(answer: httpx.Response) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: answer)) as http:
        provider = WiroProvider(WiroSettings(api_key="k", api_secret="s"), http)
        try:
            result = await created(provider, SessionRequest("ws://app"))
        except ApiError as exc:
            assert 400 <= exc.status_code < 600 and exc.code and exc.message
        else:
            strict_json(result)
            await provider.end_session(result["session_id"])
        await provider.aclose()


@FAST
@given(statuses, run_bodies)
@example(200, DEEP_JSON.encode())
@example(200, {"result": True, "taskid": True, "socketaccesstoken": "abc"})
def test_wiro_provider_turns_any_run_answer_into_a_grant_or_provider_error(status: int, body: Any) -> None:
    asyncio.run(wiro_calls(upstream_answer(status, body, None)))
