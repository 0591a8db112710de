"""Conformance of the Wiro emulator with ../shared/specs/wiro.md, over real HTTP and WebSocket on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soxr
import websockets

from server.emulators import wiro_protocol as proto
from server.emulators.scripted import DEFAULT_SCRIPT, ScriptedRecognizer, ScriptedSession
from server.emulators.wiro import DEFAULT_API_KEY, EmulatorState, WiroEmulatorOptions, create_emulator
from server.transcript import Hypothesis
from testkit.live import running
from testkit.wiro_client import WiroResult, transcribe_wiro

ROOT = Path(__file__).resolve().parent.parent
RUN_PATH = "/v1/Run/wiro/voxtral-mini-realtime"
KEY = {"x-api-key": DEFAULT_API_KEY}
LIFECYCLE = [
    "task_queue",
    "task_accept",
    "task_preprocess_start",
    "task_preprocess_end",
    "task_assign",
    "task_start",
    "task_stream_ready",
]
MS_PER_WORD = ScriptedRecognizer().ms_per_word


class Emulator:
    def __init__(self, url: str, state: EmulatorState) -> None:
        self.url = url
        self.ws_url = url.replace("http://", "ws://") + "/v1"
        self.state = state

    def run(self, headers: dict[str, str] | None = None, body: Any = None) -> httpx.Response:
        payload = {"transcriptionDelay": "balanced"} if body is None else body
        return httpx.post(self.url + RUN_PATH, headers=KEY if headers is None else headers, json=payload)

    def start(self) -> tuple[str, str]:
        r = self.run()
        assert r.status_code == 200, r.text
        return r.json()["taskid"], r.json()["socketaccesstoken"]

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = httpx.post(self.url + path, headers=KEY, json=body).json()
        return data


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Emulator]]:
    stack: list[Any] = []

    def make(options: WiroEmulatorOptions | None = None, recognizer: Any = None) -> Emulator:
        app = create_emulator(options or WiroEmulatorOptions(), recognizer)
        ctx = running(app)
        url = ctx.__enter__()
        stack.append(ctx)
        return Emulator(url, app.state.wiro)

    yield make
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


@pytest.fixture
def emu(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory()


def speech_like(seconds: float, seed: int = 1) -> bytes:
    """Deterministic noise-ish PCM16LE at 24 kHz (the scripted recognizer ignores content)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * proto.SAMPLE_RATE)) * 3000).clip(-32768, 32767).astype("<i2").tobytes()


def expected_words(pcm24k: bytes) -> list[str]:
    """What the scripted recognizer must say for this much audio once resampled to 16 kHz (±1 sample)."""
    ms = len(pcm24k) // 2 * 1000 // proto.SAMPLE_RATE
    assert ms % MS_PER_WORD not in (0, MS_PER_WORD - 1), "pick a duration away from a word boundary"
    return [DEFAULT_SCRIPT[i % len(DEFAULT_SCRIPT)] for i in range(ms // MS_PER_WORD)]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def order_of(result: WiroResult, kinds: list[str]) -> list[int]:
    return [result.events.index(k) for k in kinds]


# --- pure protocol -----------------------------------------------------------------------------------------


def test_signature_matches_rfc4231_vector() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"; secret + nonce is the message.
    assert proto.sign("Jefe", "what do ya want ", "for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_audio_frame_splits_on_first_pipe_only() -> None:
    pcm = b"|\x7c\x00|" * 3
    frame = proto.parse_audio_frame(b"Tok123|" + pcm)
    assert frame == proto.AudioFrame("Tok123", pcm)
    assert isinstance(proto.parse_audio_frame(b"no separator"), proto.BadMessage)
    assert isinstance(proto.parse_audio_frame(b"tok|\x01\x02\x03"), proto.BadMessage)
    assert isinstance(proto.parse_audio_frame(b"|\x01\x02"), proto.BadMessage)
    assert isinstance(proto.parse_audio_frame(b"\xff\xfe|\x01\x02"), proto.BadMessage)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"task_info","tasktoken":"abc","extra":1}', proto.TaskInfo("abc")),
        ('{"type":"task_session_end","tasktoken":"abc"}', proto.SessionEnd("abc")),
        ("{not json", proto.BadMessage("malformed JSON")),
        ("[1]", proto.BadMessage("message is not a JSON object")),
        ('{"type":"task_info"}', proto.BadMessage("task_info without a tasktoken")),
    ],
)
def test_client_text_parsing(text: str, expected: object) -> None:
    assert proto.parse_client_text(text) == expected


def test_increments_stable_policy_never_retracts() -> None:
    inc = proto.Increments("stable")
    assert proto.Increments.HELD_BACK == 3
    got = [
        inc.partial(partial)
        for partial in (
            ["the"],
            ["the", "quack", "brown", "fox"],
            ["the", "quick", "brown", "fox", "jumps"],
            ["the", "quick", "brown", "fox", "jumps", "<sil>"],
        )
    ]
    # "the" is sent once it held its place over two partials with three newer words after it; "quack" was revised
    # before it became stable; the newest three words wait.
    assert got == [[], ["the"], [], ["quick"]]
    # The final does not retract "the": only its words past those sent follow.
    assert inc.final(["a", "quick", "brown", "fox(2)", "jumps"]) == ["brown", "fox", "jumps"]
    assert inc.partial(["next"]) == [] and inc.final(["next", "one"]) == ["next", "one"]


def test_increments_final_policy_waits_for_finals() -> None:
    inc = proto.Increments("final")
    assert inc.partial(["a", "b"]) == [] and inc.partial(["a", "b", "c"]) == []
    assert inc.final(["a", "b", "c", "[NOISE]"]) == ["a", "b", "c"]


# --- REST --------------------------------------------------------------------------------------------------


def test_run_returns_flat_task_and_holds_a_slot(emu: Emulator) -> None:
    r = emu.run()
    body = r.json()
    assert r.status_code == 200 and "data" not in body
    assert body["result"] is True and body["errors"] == []
    assert body["taskid"].isdigit()
    assert re.fullmatch(r"[A-Za-z0-9]{30}", body["socketaccesstoken"])
    task = emu.state.tasks[body["taskid"]]
    assert task.active and task.parameters == {"transcriptionDelay": "balanced"}
    assert emu.state.active_count() == 1
    second = emu.run().json()
    assert second["taskid"] != body["taskid"] and second["socketaccesstoken"] != body["socketaccesstoken"]


def _signed(key: str, secret: str, nonce: str) -> dict[str, str]:
    sig = hmac.new(key.encode(), (secret + nonce).encode(), hashlib.sha256).hexdigest()
    return {"x-api-key": key, "x-nonce": nonce, "x-signature": sig}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, proto.MSG_KEY_NOT_FOUND),
        ({"x-api-key": "wrong"}, proto.MSG_KEY_NOT_FOUND),
        ({"x-api-key": "k"}, proto.MSG_SIGNATURE_REQUIRED),
        ({"x-api-key": "k", "x-nonce": "1"}, proto.MSG_SIGNATURE_REQUIRED),
        (_signed("k", "wrong-secret", "1"), proto.MSG_SIGNATURE_INVALID),
        ({**_signed("k", "s", "1"), "x-nonce": "2"}, proto.MSG_SIGNATURE_INVALID),
        # The spec's signature is lowercase hex: the same digest in uppercase is not it.
        (
            {**_signed("k", "s", "1"), "x-signature": _signed("k", "s", "1")["x-signature"].upper()},
            proto.MSG_SIGNATURE_INVALID,
        ),
        (_signed("k", "s", "12345"), None),
    ],
)
def test_signature_project_auth(
    emulator_factory: Callable[..., Emulator], headers: dict[str, str], message: str | None
) -> None:
    emu = emulator_factory(WiroEmulatorOptions(api_key="k", api_secret="s"))
    r = emu.run(headers=headers)
    if message is None:
        assert r.status_code == 200 and r.json()["result"] is True
    else:
        assert r.status_code == 401
        assert r.json() == {"result": False, "errors": [{"code": 0, "message": message}]}
        assert emu.state.tasks == {}


def test_key_only_project_and_http_200_auth_errors(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(WiroEmulatorOptions(auth_errors_http_200=True))
    assert emu.run().json()["result"] is True
    bad = emu.run(headers={"x-api-key": "nope"})
    assert bad.status_code == 200 and bad.json()["errors"][0]["message"] == proto.MSG_KEY_NOT_FOUND


def test_a_reused_nonce_is_refused_by_default_and_any_unseen_one_accepted(
    emulator_factory: Callable[..., Emulator],
) -> None:
    """The vendor's authentication page: replay protection "via nonce", a nonce being a timestamp "or random
    integer". So a nonce seen before is refused, while one lower than the last is not."""
    strict = emulator_factory(WiroEmulatorOptions(api_key="k", api_secret="s"))
    assert strict.run(headers=_signed("k", "s", "100")).json()["result"] is True
    again = strict.run(headers=_signed("k", "s", "100"))
    assert again.status_code == 401 and again.json()["errors"][0]["message"] == proto.MSG_SIGNATURE_INVALID
    assert strict.run(headers=_signed("k", "s", "7")).json()["result"] is True
    assert strict.state.nonces == ["100", "100", "7"]
    # A refused signature does not use the nonce up.
    fresh = emulator_factory(WiroEmulatorOptions(api_key="k", api_secret="s"))
    assert fresh.run(headers={**_signed("k", "s", "5"), "x-signature": "0" * 64}).status_code == 401
    assert fresh.run(headers=_signed("k", "s", "5")).json()["result"] is True
    lenient = emulator_factory(WiroEmulatorOptions(api_key="k", api_secret="s", reject_reused_nonce=False))
    assert lenient.run(headers=_signed("k", "s", "100")).json()["result"] is True
    assert lenient.run(headers=_signed("k", "s", "100")).json()["result"] is True


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/Nope"), ("GET", RUN_PATH), ("POST", "/v1"), ("POST", "/elsewhere"), ("POST", "/v1/Task/X")],
)
def test_unknown_paths_are_404_error_parsing_url(emu: Emulator, method: str, path: str) -> None:
    r = httpx.request(method, emu.url + path, headers=KEY)
    assert r.status_code == 404
    assert r.json() == {"result": False, "errors": [{"code": 0, "message": "Error parsing url."}]}


@pytest.mark.parametrize(
    ("options", "path", "body", "code", "message"),
    [
        (WiroEmulatorOptions(max_concurrent_tasks=0), RUN_PATH, None, 96, "concurrent task limit"),
        (WiroEmulatorOptions(balance=0.1), RUN_PATH, None, 97, proto.MSG_BALANCE),
        (WiroEmulatorOptions(sign_in_required=True), RUN_PATH, None, 98, proto.MSG_SIGN_IN),
        (WiroEmulatorOptions(), "/v1/Run/wiro/unknown-model", None, 1, proto.MSG_MODEL_NOT_FOUND),
        (WiroEmulatorOptions(), RUN_PATH, [1, 2], 0, proto.MSG_INVALID_BODY),
        (WiroEmulatorOptions(), RUN_PATH, {"transcriptionDelay": 3}, 0, proto.MSG_INVALID_BODY),
    ],
)
def test_run_errors(
    emulator_factory: Callable[..., Emulator],
    options: WiroEmulatorOptions,
    path: str,
    body: Any,
    code: int,
    message: str,
) -> None:
    emu = emulator_factory(options)
    r = httpx.post(emu.url + path, headers=KEY, json={"transcriptionDelay": "fast"} if body is None else body)
    assert r.status_code == 200
    err = r.json()
    assert err["result"] is False and err["errors"][0]["code"] == code
    assert message in err["errors"][0]["message"]
    assert emu.state.tasks == {}


def test_concurrency_limit_counts_active_tasks(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(WiroEmulatorOptions(max_concurrent_tasks=2))
    first, _ = emu.start()
    emu.start()
    refused = emu.run().json()
    assert refused["errors"][0]["code"] == 96
    assert emu.post("/v1/Task/Cancel", {"taskid": first}) == {"result": True, "errors": []}
    assert emu.run().json()["result"] is True


def test_task_detail_cancel_and_kill(emu: Emulator) -> None:
    task_id, token = emu.start()
    detail = emu.post("/v1/Task/Detail", {"taskid": task_id})
    assert detail["result"] is True and detail["total"] == "1"
    row = detail["tasklist"][0]
    assert row["id"] == task_id and row["socketaccesstoken"] == token and row["status"] == "task_queue"
    assert all(isinstance(row[k], str) for k in ("status", "pexit", "totalcost", "starttime"))
    assert emu.post("/v1/Task/Detail", {"tasktoken": token})["tasklist"][0]["id"] == task_id
    assert emu.post("/v1/Task/Detail", {}) == proto.error_body(0, proto.MSG_IDENTIFIER_REQUIRED)
    assert emu.post("/v1/Task/Detail", {"taskid": "999999"}) == proto.error_body(1, proto.MSG_NO_TASK)

    assert emu.post("/v1/Task/Cancel", {"tasktoken": token}) == {"result": True, "errors": []}
    assert emu.state.tasks[task_id].end_reason == "cancelled" and emu.state.cancels == [task_id]
    assert emu.post("/v1/Task/Cancel", {"tasktoken": token})["errors"][0]["message"] == proto.MSG_NOT_CANCELLABLE
    assert emu.post("/v1/Task/Cancel", {"taskid": "999999"}) == proto.error_body(1, proto.MSG_NO_TASK)

    other, other_token = emu.start()
    asyncio.run(_registered(emu.ws_url, other_token, lambda: _kill_then_cancel(emu, other, other_token)))
    assert emu.state.tasks[other].status == "task_cancel" and emu.state.kills == [other]
    again = emu.post("/v1/Task/Kill", {"taskid": other})
    assert again["errors"][0]["code"] == 1 and again["errors"][0]["message"].startswith("Task could not be killed")
    assert emu.post("/v1/Task/Kill", {"tasktoken": "nope"}) == proto.error_body(1, proto.MSG_NO_TASK)
    assert emu.state.active_count() == 0


async def _registered(ws_url: str, token: str, then: Callable[[], Any]) -> None:
    """Register `token` on a socket, wait for task_stream_ready, run `then()` (blocking), then leave."""
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
        while json.loads(await ws.recv())["type"] != "task_stream_ready":
            pass
        await asyncio.to_thread(then)


def _kill_then_cancel(emu: Emulator, task_id: str, token: str) -> None:
    # Past the queue stage: Cancel refuses (the tasks page: "use Kill instead") and Kill ends it.
    refused = emu.post("/v1/Task/Cancel", {"taskid": task_id})
    assert refused == proto.error_body(1, proto.MSG_NOT_CANCELLABLE)
    assert emu.post("/v1/Task/Kill", {"tasktoken": token}) == {"result": True, "errors": []}


@pytest.mark.parametrize("key", ["taskid", "tasktoken", "socketaccesstoken"])
def test_kill_refuses_a_task_still_queued_and_cancel_ends_it(emu: Emulator, key: str) -> None:
    """The tasks page: Kill ends a task "currently running (any status after assign)", Cancel one "still in the
    queue stage"; a realtime task is queued here until its socket registers."""
    task_id, token = emu.start()
    ident = {key: task_id if key == "taskid" else token}
    refused = emu.post("/v1/Task/Kill", ident)
    assert refused == proto.error_body(1, proto.kill_failed_message(proto.KILL_QUEUED_REASON))
    task = emu.state.tasks[task_id]
    assert task.active and emu.state.kills == [] and emu.state.active_count() == 1
    assert emu.post("/v1/Task/Detail", ident)["tasklist"][0]["status"] == "task_queue"
    assert emu.post("/v1/Task/Cancel", ident) == {"result": True, "errors": []}
    assert not task.active and task.status == "task_cancel" and task.end_reason == "cancelled"
    assert emu.state.cancels == [task_id] and emu.state.active_count() == 0
    # A socket that comes too late finds the task gone.
    late = json.dumps({"type": "task_info", "tasktoken": token})
    events = asyncio.run(_raw_session(emu.ws_url, lambda ws: ws.send(late)))
    assert [e["type"] for e in events] == ["connected", "task_error"]
    assert events[-1]["message"] == "tasktoken is not available"


def test_cancel_reaches_a_socket_registering_while_still_queued(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(WiroEmulatorOptions(lifecycle_delay_s=0.5))
    task_id, token = emu.start()

    async def scenario() -> list[str]:
        async with websockets.connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
            await asyncio.sleep(0.2)  # registered, the lifecycle not yet past task_queue
            assert emu.state.tasks[task_id].status == "task_queue"
            async with httpx.AsyncClient() as http:
                cancel = await http.post(emu.url + "/v1/Task/Cancel", headers=KEY, json={"taskid": task_id})
            assert cancel.json() == {"result": True, "errors": []}
            seen = []
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["type"])
            return seen

    seen = asyncio.run(scenario())
    assert seen[-1] == "task_cancel" and "task_stream_ready" not in seen
    assert emu.state.tasks[task_id].end_reason == "cancelled" and emu.state.active_count() == 0


# --- WebSocket ---------------------------------------------------------------------------------------------


def test_full_session_event_sequence(emu: Emulator) -> None:
    task_id, token = emu.start()
    pcm = speech_like(3.15)
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, pcm))

    assert result.events[0] == "connected"
    # Spec step 6: "the final transcript and cost, then task_stream_end, task_end, task_postprocess_end".
    tail = ["task_cost", "task_stream_end", "task_end", "task_postprocess_end"]
    assert result.events[1 : 1 + len(LIFECYCLE)] == LIFECYCLE
    assert result.events[-len(tail) :] == tail
    middle = set(result.events[1 + len(LIFECYCLE) : -len(tail)])
    assert middle <= {"task_output", "task_cost"} and "task_cost" in middle
    assert result.increments == expected_words(pcm)
    assert all(" " not in w for w in result.increments)

    costs = result.of_type("task_cost")
    assert all({"turnCost", "cumulativeCost", "usage"} <= c.keys() for c in costs)
    assert sum(c["turnCost"] for c in costs) == pytest.approx(costs[-1]["cumulativeCost"])
    assert costs[-1]["usage"]["inputAudioSeconds"] == pytest.approx(len(pcm) / 2 / 24000)
    assert all(m.get("tasktoken") == token and m.get("id") == task_id for m in result.messages[1:])
    assert result.close_code == 1000

    task = emu.state.tasks[task_id]
    assert bytes(task.pcm) == pcm and task.frames == result.frames_sent
    assert task.status == "task_postprocess_end" and task.end_reason == "session_end" and task.pexit == "0"
    assert task.rejections == [] and emu.state.internal_errors == []
    assert emu.state.active_count() == 0


def test_pcm_containing_pipe_bytes_arrives_intact(emu: Emulator) -> None:
    task_id, token = emu.start()
    pcm = bytes([0x7C, 0x7C, 0x00, 0x7C]) * 2400 + speech_like(0.2)
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, pcm, frame_samples=1000))
    assert "task_postprocess_end" in result.events
    assert bytes(emu.state.tasks[task_id].pcm) == pcm
    assert emu.state.tasks[task_id].rejections == []


class RecordingRecognizer(ScriptedRecognizer):
    """Keeps the 16 kHz PCM the emulator feeds, to check the resampling."""

    def __init__(self) -> None:
        super().__init__()
        self.fed = bytearray()

    async def open(self) -> Any:
        session = await super().open()
        outer = self
        feed = session.feed

        async def recording_feed(pcm: bytes) -> list[Hypothesis]:
            outer.fed += pcm
            return await feed(pcm)

        session.feed = recording_feed  # type: ignore[method-assign]
        return session


def test_stream_resampling_to_16k_equals_one_shot(emulator_factory: Callable[..., Emulator]) -> None:
    recognizer = RecordingRecognizer()
    emu = emulator_factory(recognizer=recognizer)
    _, token = emu.start()
    t = np.arange(int(1.5 * 24000)) / 24000
    tone = (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2")
    asyncio.run(transcribe_wiro(emu.ws_url, token, tone.tobytes(), frame_samples=4800))
    fed = np.frombuffer(bytes(recognizer.fed), dtype="<i2").astype(np.float64)
    reference = soxr.resample(tone.astype(np.float64), 24000, 16000, quality="HQ")
    assert abs(len(fed) - len(reference)) <= 2
    n = min(len(fed), len(reference))
    # int16 rounding only: chunked equals one-shot within 1 LSB.
    assert np.max(np.abs(fed[:n] - np.round(reference[:n]))) <= 1.0


async def _raw_session(ws_url: str, steps: Callable[[Any], Any]) -> list[dict[str, Any]]:
    """Open a socket, run `steps(ws)`, collect JSON events until the server closes or goes quiet."""
    events: list[dict[str, Any]] = []
    async with websockets.connect(ws_url) as ws:
        await steps(ws)
        try:
            while True:
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 1.0)))
        except (TimeoutError, websockets.ConnectionClosed):
            pass
    return events


def test_bad_inputs_are_dropped_with_task_error_and_the_session_carries_on(emu: Emulator) -> None:
    task_id, token = emu.start()
    good = speech_like(0.2)
    bad_inputs: list[str | bytes] = [
        "{not json",
        '{"type":"mystery","tasktoken":"x"}',
        b"no separator at all",
        b"WrongToken123|" + good,
        token.encode() + b"|\x01\x02\x03",
        json.dumps({"type": "task_info", "tasktoken": token}),
        json.dumps({"type": "task_session_end", "tasktoken": "not-mine"}),
    ]

    async def steps(ws: Any) -> None:
        await ws.send(b"|before any task_info")
        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
        while json.loads(await ws.recv())["type"] != "task_stream_ready":
            pass
        for item in bad_inputs:
            await ws.send(item)
            await ws.send(token.encode() + b"|" + good)
        await ws.send(json.dumps({"type": "task_session_end", "tasktoken": token}))

    events = asyncio.run(_raw_session(emu.ws_url, steps))
    task = emu.state.tasks[task_id]
    assert task.rejections == [
        "malformed JSON",
        "unknown message type 'mystery'",
        "binary frame without '|'",
        "audio frame with a token other than the registered one",
        "odd-length PCM16 payload",
        "task_info on a socket that is already registered",
        "task_session_end with a token other than the registered one",
    ]
    assert emu.state.unregistered_rejections == ["binary frame with an empty token"]
    assert [e["message"] for e in events if e["type"] == "task_error"] == task.rejections
    assert bytes(task.pcm) == good * len(bad_inputs)
    assert [e["type"] for e in events][-2:] == ["task_end", "task_postprocess_end"]
    assert task.end_reason == "session_end" and emu.state.internal_errors == []


def test_audio_before_ready_is_dropped(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(WiroEmulatorOptions(never_ready=True))
    task_id, token = emu.start()
    result = asyncio.run(_raw_session_never_ready(emu.ws_url, token))
    assert "task_stream_ready" not in result and "task_start" in result
    assert emu.state.tasks[task_id].rejections == ["audio before task_stream_ready"]
    assert emu.state.tasks[task_id].pcm == bytearray()


async def _close_code_after_audio(ws_url: str, token: str, after_event: str, frame: bytes) -> int | None:
    """Register `token`, wait for `after_event`, send `frame`: the close code the server ends with (5 s at most)."""
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
        while json.loads(await ws.recv())["type"] != after_event:
            pass
        await ws.send(frame)
        with contextlib.suppress(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        return ws.close_code


def test_audio_before_ready_closes_the_socket_with_close_on_bad_audio(
    emulator_factory: Callable[..., Emulator],
) -> None:
    """The reaction to early audio (or audio with another token) is unknown: as an option, task_error then 1008."""
    emu = emulator_factory(WiroEmulatorOptions(never_ready=True, close_on_bad_audio=True))
    task_id, token = emu.start()
    frame = token.encode() + b"|" + speech_like(0.2)
    assert asyncio.run(_close_code_after_audio(emu.ws_url, token, "task_start", frame)) == 1008
    assert emu.state.tasks[task_id].rejections == ["audio before task_stream_ready"]
    wait_until(lambda: not emu.state.tasks[task_id].active)


def test_audio_with_another_token_closes_the_socket_with_close_on_bad_audio(
    emulator_factory: Callable[..., Emulator],
) -> None:
    emu = emulator_factory(WiroEmulatorOptions(close_on_bad_audio=True))
    task_id, token = emu.start()
    frame = b"NotTheTaskToken|" + speech_like(0.2)
    assert asyncio.run(_close_code_after_audio(emu.ws_url, token, "task_stream_ready", frame)) == 1008
    assert emu.state.tasks[task_id].rejections == ["audio frame with a token other than the registered one"]


class SlowScripted(ScriptedRecognizer):
    """The scripted recognizer taking 20 ms a feed, as an engine decoding in a thread does: the client's next frames
    are queued while the emulator works."""

    async def open(self) -> ScriptedSession:
        session = await super().open()
        feed = session.feed

        async def slow(pcm: bytes) -> list[Hypothesis]:
            await asyncio.sleep(0.02)
            return await feed(pcm)

        session.feed = slow  # type: ignore[method-assign]
        return session


def test_a_drop_still_drops_with_an_idle_timeout_set(emulator_factory: Callable[..., Emulator]) -> None:
    """The idle timeout's wait must not swallow run()'s cancellation of the receive loop after a drop (asyncio's
    wait_for on 3.11 did, when a frame was already there): the client saw 1000 after its own timeout, not 1006."""
    options = WiroEmulatorOptions(drop_after_frames=3, idle_timeout_s=3.0, max_concurrent_tasks=1)
    emu = emulator_factory(options, SlowScripted())
    _, token = emu.start()
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, speech_like(2.0), timeout=8))
    assert result.close_code == 1006 and not result.timed_out


def test_an_idle_socket_is_closed_after_idle_timeout_s_and_its_task_ends(
    emulator_factory: Callable[..., Emulator],
) -> None:
    """Whether the service ends an idle socket is unknown: by default never; with idle_timeout_s, 1001 after that
    long without a frame, and the task is terminated as by any disconnect before task_end."""
    emu = emulator_factory(WiroEmulatorOptions(idle_timeout_s=0.5))
    task_id, token = emu.start()

    async def session() -> tuple[list[str], int | None]:
        seen: list[str] = []
        async with websockets.connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
            with contextlib.suppress(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:
                        seen.append(json.loads(await ws.recv())["type"])
            return seen, ws.close_code

    seen, code = asyncio.run(session())
    assert "task_stream_ready" in seen and code == 1001
    wait_until(lambda: not emu.state.tasks[task_id].active)
    assert emu.state.tasks[task_id].end_reason == "disconnect"


@pytest.mark.parametrize("http_404", [False, True])
def test_a_not_found_error_answers_http_200_or_404_by_option(
    emulator_factory: Callable[..., Emulator], http_404: bool
) -> None:
    """The docs disagree on HTTP codes (always 200, or 404 for not found): the body is code 1 either way."""
    emu = emulator_factory(WiroEmulatorOptions(not_found_http_404=http_404))
    r = httpx.post(emu.url + "/v1/Run/nobody/no-such-model", headers=KEY, json={})
    assert r.status_code == (404 if http_404 else 200)
    assert r.json()["result"] is False and r.json()["errors"][0]["code"] == 1
    kill = httpx.post(emu.url + "/v1/Task/Kill", headers=KEY, json={"taskid": "no-such-task"})
    assert kill.status_code == (404 if http_404 else 200) and kill.json()["errors"][0]["code"] == 1


async def _raw_session_never_ready(ws_url: str, token: str) -> list[str]:
    seen: list[str] = []

    async def steps(ws: Any) -> None:
        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
        while "task_start" not in seen:
            seen.append(json.loads(await ws.recv())["type"])
        await ws.send(token.encode() + b"|" + speech_like(0.2))

    return seen + [e["type"] for e in await _raw_session(ws_url, steps)]


@pytest.mark.parametrize("close", [False, True], ids=["default", "close_on_bad_task_info"])
@pytest.mark.parametrize("case", ["unknown", "ended", "attached"])
def test_bad_task_info_gets_task_error_then_the_socket_stays_open_or_closes_1008(
    emulator_factory: Callable[..., Emulator], case: str, close: bool
) -> None:
    """The reaction to a bad task_info is unknown: by the spec's default a task_error and nothing else (a good
    task_info on the same socket then registers); as an option, the task_error then close 1008."""
    emu = emulator_factory(WiroEmulatorOptions(close_on_bad_task_info=close))
    task_id, token = emu.start()
    spare_id, spare_token = emu.start()
    use = "NoSuchToken0000000000000000000" if case == "unknown" else token
    if case == "ended":
        emu.post("/v1/Task/Cancel", {"taskid": task_id})

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        async with contextlib.AsyncExitStack() as stack:
            if case == "attached":
                first = await stack.enter_async_context(websockets.connect(emu.ws_url))
                await first.send(json.dumps({"type": "task_info", "tasktoken": token}))
                while json.loads(await first.recv())["type"] != "task_stream_ready":
                    pass
            ws = await stack.enter_async_context(websockets.connect(emu.ws_url))
            await ws.send(json.dumps({"type": "task_info", "tasktoken": use}))
            events = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
            if close:
                with pytest.raises(websockets.ConnectionClosed):
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            else:
                with pytest.raises(TimeoutError):  # nothing more, and not closed
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
                await ws.send(json.dumps({"type": "task_info", "tasktoken": spare_token}))
                while events[-1]["type"] != "task_stream_ready":
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
                assert emu.state.tasks[spare_id].connection is not None
            if case == "attached":
                assert emu.state.tasks[task_id].active  # the first socket's session is untouched
            return events, ws.close_code

    events, code = asyncio.run(scenario())
    assert [e["type"] for e in events[:2]] == ["connected", "task_error"]
    reason = "unknown tasktoken" if case == "unknown" else "tasktoken is not available"
    assert events[1]["message"] == reason and emu.state.unregistered_rejections == [reason]
    if close:
        assert code == 1008 and len(events) == 2
    else:
        assert [e["type"] for e in events[2:]] == LIFECYCLE and code is None
    assert emu.state.internal_errors == []


def test_disconnect_without_ending_terminates_the_task_and_frees_its_slot(
    emulator_factory: Callable[..., Emulator],
) -> None:
    emu = emulator_factory(WiroEmulatorOptions(max_concurrent_tasks=1))
    task_id, token = emu.start()
    assert emu.run().json()["errors"][0]["code"] == 96

    async def steps(ws: Any) -> None:
        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
        while json.loads(await ws.recv())["type"] != "task_stream_ready":
            pass
        await ws.send(token.encode() + b"|" + speech_like(0.4))

    async def leave() -> None:
        async with websockets.connect(emu.ws_url) as ws:
            await steps(ws)

    asyncio.run(leave())
    task = emu.state.tasks[task_id]
    wait_until(lambda: not task.active)
    assert task.status == "task_cancel" and task.end_reason == "disconnect"
    assert emu.run().json()["result"] is True


def test_kill_over_rest_ends_the_attached_socket(emu: Emulator) -> None:
    task_id, token = emu.start()

    async def scenario() -> tuple[list[str], int | None]:
        async with websockets.connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
            seen = []
            while (kind := json.loads(await ws.recv())["type"]) != "task_stream_ready":
                seen.append(kind)
            await ws.send(token.encode() + b"|" + speech_like(0.2))
            async with httpx.AsyncClient() as http:
                killed = await http.post(emu.url + "/v1/Task/Kill", headers=KEY, json={"taskid": task_id})
            assert killed.json()["result"] is True
            try:
                while True:
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["type"])
            except websockets.ConnectionClosed:
                pass
            return seen, ws.close_code

    seen, code = asyncio.run(scenario())
    assert seen[-1] == "task_cancel" and code == 1000
    assert emu.state.tasks[task_id].end_reason == "killed" and emu.state.active_count() == 0


def test_fault_drop_socket_after_frames(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(WiroEmulatorOptions(drop_after_frames=3, max_concurrent_tasks=1))
    task_id, token = emu.start()
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, speech_like(2.0), timeout=10))
    # Dropped, not closed: no close frame, so the client sees 1006, as when a real connection goes.
    assert result.close_code == 1006
    assert "task_end" not in result.events and "task_postprocess_end" not in result.events
    task = emu.state.tasks[task_id]
    assert task.frames == 3 and task.end_reason == "dropped"
    assert emu.run().json()["result"] is True


def test_fault_never_ready_keeps_the_client_waiting(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(WiroEmulatorOptions(never_ready=True))
    task_id, token = emu.start()
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, speech_like(0.4), timeout=1.0, expect_timeout=True))
    assert result.timed_out and result.events[-1] == "task_start" and result.frames_sent == 0
    wait_until(lambda: not emu.state.tasks[task_id].active)


def test_fault_balance_stop(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(WiroEmulatorOptions(balance_stop_after_frames=2))
    task_id, token = emu.start()
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, speech_like(1.5), timeout=10))
    assert result.events[-2:] == ["task_cost", "task_end"]
    assert "task_postprocess_end" not in result.events and "task_stream_end" not in result.events
    assert result.close_code == 1000
    task = emu.state.tasks[task_id]
    assert task.end_reason == "balance" and task.frames == 2 and not task.active


def test_unknowns_as_options(emulator_factory: Callable[..., Emulator]) -> None:
    options = WiroEmulatorOptions(
        send_connected=False, include_tasktoken=False, leading_space=True, postprocess_delay_s=0.2, cost_every_ms=200
    )
    emu = emulator_factory(options)
    _, token = emu.start()
    pcm = speech_like(1.6)
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, pcm))
    assert result.events[0] == "task_queue" and result.events[-1] == "task_postprocess_end"
    assert all("tasktoken" not in m and "id" not in m for m in result.messages)
    assert all(w.startswith(" ") for w in result.increments)
    assert result.text.split() == expected_words(pcm)
    assert len(result.of_type("task_cost")) == result.frames_sent + 1


def test_chatty_stream_carries_what_a_client_must_ignore(emulator_factory: Callable[..., Emulator]) -> None:
    # The spec: task_error is a log line, task_output without the prefix is no transcript, lifecycle events may be
    # ones not listed, and id, tasktoken, result, success, terminal, exitCode may be on any frame.
    emu = emulator_factory(WiroEmulatorOptions(chatty=True, include_tasktoken=False))
    task_id, token = emu.start()
    pcm = speech_like(1.6)
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, pcm))
    words = expected_words(pcm)
    assert result.increments == words and result.text.split() == words
    assert result.events[-1] == "task_postprocess_end"
    ready = result.events.index("task_stream_ready")
    assert result.events[ready - 2 : ready] == ["task_start", proto.CHATTY_LIFECYCLE]
    assert result.events.count(proto.CHATTY_EVENT) == len(words) // 3
    outputs = [m["message"] for m in result.of_type("task_output")]
    logs = [m for m in outputs if not m.startswith(proto.TRANSCRIPT_PREFIX)]
    # Each increment follows its log output (which names the prefix, not at its start) and a task_error log line
    # (which starts with it).
    assert len(logs) == len(words) and all(proto.TRANSCRIPT_PREFIX in m for m in logs)
    errors = result.of_type("task_error")
    assert len(errors) == len(words) and all(m["message"].startswith(proto.TRANSCRIPT_PREFIX) for m in errors)
    # Every frame carries all six, include_tasktoken or not; `connected` (before any task is known) the last four.
    assert all(m.keys() >= {"result", "success", "terminal", "exitCode"} for m in result.messages)
    assert all(m.get("id") == task_id and m.get("tasktoken") == token for m in result.messages[1:])
    assert [m["type"] for m in result.messages if m["terminal"]] == ["task_end", "task_postprocess_end"]
    task = emu.state.tasks[task_id]
    assert task.words == words and task.rejections == [] and emu.state.internal_errors == []


def test_recognizer_busy_ends_the_task(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(recognizer=ScriptedRecognizer(max_sessions=0))
    task_id, token = emu.start()
    result = asyncio.run(transcribe_wiro(emu.ws_url, token, speech_like(0.4), timeout=10))
    assert "task_stream_ready" not in result.events
    assert result.events[-3:] == ["task_error", "task_end", "task_postprocess_end"]
    task = emu.state.tasks[task_id]
    assert task.end_reason == "recognizer_busy" and task.pexit == "1"


def test_two_sessions_one_misbehaving(emu: Emulator) -> None:
    good_id, good_token = emu.start()
    bad_id, bad_token = emu.start()
    pcm = speech_like(2.35)

    async def misbehave() -> None:
        async with websockets.connect(emu.ws_url) as ws:
            await ws.send(json.dumps({"type": "task_info", "tasktoken": bad_token}))
            while json.loads(await ws.recv())["type"] != "task_stream_ready":
                pass
            for junk in ("{", b"\x00\x01", good_token.encode() + b"|\x00\x00", bad_token.encode() + b"|\x01"):
                await ws.send(junk)
                await asyncio.sleep(0.01)
            await ws.send(json.dumps({"type": "task_session_end", "tasktoken": good_token}))

    async def both() -> WiroResult:
        good, _ = await asyncio.gather(transcribe_wiro(emu.ws_url, good_token, pcm), misbehave())
        return good

    result = asyncio.run(both())
    assert result.increments == expected_words(pcm)
    assert result.events[-1] == "task_postprocess_end"
    good_task, bad_task = emu.state.tasks[good_id], emu.state.tasks[bad_id]
    assert bytes(good_task.pcm) == pcm and good_task.rejections == []
    assert len(bad_task.rejections) == 5 and bad_task.pcm == bytearray()
    wait_until(lambda: not bad_task.active)
    assert bad_task.end_reason == "disconnect" and emu.state.internal_errors == []


# --- command line ------------------------------------------------------------------------------------------


def test_cli_serves_on_port_zero_and_prints_urls() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The choices the spec leaves open and the faults are flags too: one of them shown to take effect.
    cmd = [sys.executable, "-m", "server.emulators", "wiro", "--port", "0", "--recognizer", "scripted"]
    cmd += ["--not-found-http-404"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        socket = proc.stdout.readline().strip()
        m = re.fullmatch(r"WIRO_API_BASE_URL=http://127\.0\.0\.1:(\d+)/v1", base)
        assert m and int(m.group(1)) > 0, base
        assert socket == f"WIRO_SOCKET_URL=ws://127.0.0.1:{m.group(1)}/v1"
        r = httpx.post(base.split("=", 1)[1] + "/Run/wiro/voxtral-mini-realtime", headers=KEY, json={})
        assert r.json()["result"] is True
        assert httpx.post(base.split("=", 1)[1] + "/Run/nobody/nothing", headers=KEY, json={}).status_code == 404
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_cli_help_documents_default_credentials() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "server.emulators", "wiro", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0 and DEFAULT_API_KEY in out.stdout and "--api-secret" in out.stdout
    assert "--leading-space" in out.stdout and "--chatty" in out.stdout
    for flag in ("--drop-after-frames", "--never-ready", "--balance-stop-after-frames", "--faulty-tasks"):
        assert flag in out.stdout, flag
    for flag in ("--close-on-bad-audio", "--close-on-bad-task-info", "--idle-timeout-s", "--auth-errors-http-200"):
        assert flag in out.stdout, flag


def test_cli_falls_back_to_scripted_when_the_engine_cannot_load(capsys: pytest.CaptureFixture[str]) -> None:
    from server.emulators import wiro

    def broken(name: str) -> Any:
        raise ImportError("No module named 'pocketsphinx'")

    assert isinstance(wiro._recognizer("pocketsphinx", broken), ScriptedRecognizer)
    err = capsys.readouterr().err
    assert "pocketsphinx recognizer is unavailable" in err and "scripted" in err


def test_the_client_fails_on_a_timeout_instead_of_passing_a_cut_off_transcript(
    emulator_factory: Callable[..., Emulator],
) -> None:
    """The server's last words come after the client's bound: the test client must raise, not hand back the
    increments it had (which a lenient check, such as a word-error threshold, could accept as the transcript)."""
    emu = emulator_factory(WiroEmulatorOptions(postprocess_delay_s=3.0))
    _, token = emu.start()
    pcm = speech_like(1.6)
    with pytest.raises(TimeoutError, match="task_postprocess_end"):
        asyncio.run(transcribe_wiro(emu.ws_url, token, pcm, timeout=1.5))
    whole = asyncio.run(transcribe_wiro(emu.ws_url, emu.start()[1], pcm, timeout=10))
    assert whole.events[-1] == "task_postprocess_end" and whole.text.split() == expected_words(pcm)
