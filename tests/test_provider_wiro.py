"""The Wiro provider against the emulator (and a few broken upstreams) over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from server.app import create_app
from server.emulators.scripted import ScriptedRecognizer
from server.emulators.wiro import EmulatorState, WiroEmulatorOptions, create_emulator
from server.errors import ApiError
from server.providers.base import SessionRequest
from server.providers.wiro import RunAnswer, WiroProvider, _signature, parse_run
from server.providers.wiro_tasks import CONCERN, MemoryTaskRegistry, WiroTask, task_registry
from server.settings import Settings, WiroSettings
from server.state import MemoryState, MemoryStore, State, StateUnavailable
from testkit.live import running
from testkit.wiro_client import transcribe_wiro
from tests.support.grants import created

KEY = "test-key-9f2c"
SECRET = "test-secret-77aa"


def new_request() -> SessionRequest:
    """A fresh request each call: the session id is the app's, one per minted session."""
    return SessionRequest(ws_origin="ws://127.0.0.1")


class Upstream:
    def __init__(self, url: str, state: EmulatorState | None = None) -> None:
        self.url = url
        self.state = state

    @property
    def base(self) -> str:
        return self.url + "/v1"

    @property
    def socket(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1"

    def runs(self) -> int:
        assert self.state is not None
        return len(self.state.calls_to("/v1/Run/"))


@pytest.fixture
def upstream_factory() -> Iterator[Callable[..., Upstream]]:
    contexts: list[Any] = []

    def make(options: WiroEmulatorOptions | None = None) -> Upstream:
        app = create_emulator(options or WiroEmulatorOptions(api_key=KEY))
        ctx = running(app)
        contexts.append(ctx)
        return Upstream(ctx.__enter__(), app.state.wiro)

    yield make
    for ctx in reversed(contexts):
        ctx.__exit__(None, None, None)


def settings_for(up: Upstream, **overrides: Any) -> WiroSettings:
    values: dict[str, Any] = {"api_key": KEY, "api_base_url": up.base, "socket_url": up.socket}
    values.update(overrides)
    return WiroSettings(**values)


async def with_provider(settings: WiroSettings, body: Callable[[WiroProvider], Any], http_timeout: float = 5.0) -> Any:
    async with httpx.AsyncClient(timeout=http_timeout) as http:
        provider = WiroProvider(settings, http)
        try:
            return await body(provider)
        finally:
            await provider.aclose()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# --- Run ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", SECRET], ids=["key-only", "signature"])
def test_run_grant_in_both_auth_modes(upstream_factory: Callable[..., Upstream], secret: str) -> None:
    up = upstream_factory(WiroEmulatorOptions(api_key=KEY, api_secret=secret))
    before = time.time()
    grant = asyncio.run(
        with_provider(settings_for(up, api_secret=secret, task_deadline_s=600), lambda p: created(p, new_request()))
    )
    task = up.state.tasks[grant["task_id"]] if up.state else None
    assert task is not None and task.token == grant["token"]
    assert task.parameters == {"transcriptionDelay": "balanced"}
    assert grant["provider"] == "wiro" and grant["protocol"] == "wiro"
    assert grant["ws_url"] == up.socket and grant["session_id"] != grant["task_id"]
    assert len(grant["session_id"]) >= 20  # a random handle, not Wiro's guessable sequential task id
    assert grant["sample_rate"] == 24000 and grant["frame_samples"] == 4800
    assert before + 600 <= grant["expires_at"] <= time.time() + 600
    assert 600 - (time.time() - before) <= grant["expires_in"] <= 600
    assert up.runs() == 1
    assert up.state is not None and bool(up.state.nonces) == bool(secret)


def test_nonces_strictly_increase_across_concurrent_calls(upstream_factory: Callable[..., Upstream]) -> None:
    up = upstream_factory(WiroEmulatorOptions(api_key=KEY, api_secret=SECRET, max_concurrent_tasks=100))

    async def many(p: WiroProvider) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(created(p, new_request()) for _ in range(12))))

    grants = asyncio.run(with_provider(settings_for(up, api_secret=SECRET), many))
    assert len({g["task_id"] for g in grants}) == 12
    assert up.state is not None
    run_nonces = [int(n) for n in up.state.nonces[:12]]
    assert len(set(run_nonces)) == 12


def test_nonce_is_milliseconds_and_strictly_increasing_within_one_millisecond() -> None:
    frozen = 1_700_000_000.0005

    async def nonces() -> list[str]:
        async with httpx.AsyncClient() as http:
            provider = WiroProvider(WiroSettings(api_key="k", api_secret="s"), http, clock=lambda: frozen)
            return [(await provider._headers())["x-nonce"] for _ in range(5)]

    values = [int(n) for n in asyncio.run(nonces())]
    assert values[0] == int(frozen * 1000)
    assert values == sorted(values) and len(set(values)) == 5


ERROR_CASES: list[tuple[str, dict[str, Any], dict[str, Any], int, str]] = [
    ("bad key", {}, {"api_key": "wrong-key-123"}, 502, "wiro_auth"),
    ("missing signature", {"api_secret": SECRET}, {}, 502, "wiro_auth"),
    ("bad signature", {"api_secret": SECRET}, {"api_secret": "wrong-secret-456"}, 502, "wiro_auth"),
    ("model not found", {}, {"model": "wiro/no-such-model"}, 502, "wiro_not_found"),
    ("concurrency", {"max_concurrent_tasks": 0}, {}, 429, "wiro_concurrency"),
    ("balance", {"balance": 0.0}, {}, 402, "wiro_balance"),
    ("sign in", {"sign_in_required": True}, {}, 502, "wiro_sign_in"),
    ("auth on http 200", {"auth_errors_http_200": True}, {"api_key": "wrong-key-123"}, 502, "wiro_auth"),
]


@pytest.mark.parametrize(
    ("emulator", "settings", "status", "code"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_run_errors_from_the_emulator(
    upstream_factory: Callable[..., Upstream],
    emulator: dict[str, Any],
    settings: dict[str, Any],
    status: int,
    code: str,
) -> None:
    up = upstream_factory(WiroEmulatorOptions(api_key=KEY, **emulator))
    s = settings_for(up, **settings)
    with pytest.raises(ApiError) as caught:
        asyncio.run(with_provider(s, lambda p: created(p, new_request())))
    err = caught.value
    assert (err.status_code, err.code) == (status, code)
    assert_clean(err, s, up)
    assert up.runs() == 1
    if code == "wiro_concurrency":
        assert err.retry_after and err.retry_after > 0


def test_unknown_endpoint_404(upstream_factory: Callable[..., Upstream]) -> None:
    up = upstream_factory()
    s = settings_for(up, api_base_url=up.url + "/v2")
    with pytest.raises(ApiError) as caught:
        asyncio.run(with_provider(s, lambda p: created(p, new_request())))
    assert (caught.value.status_code, caught.value.code) == (502, "wiro_bad_url")
    assert_clean(caught.value, s, up)


def assert_clean(err: ApiError, settings: WiroSettings, up: Upstream | None = None) -> None:
    """No secret and no upstream text in what the page would see."""
    shown = json.dumps(err.to_json()) + str(err)
    for secret in (settings.api_key, settings.api_secret, KEY, SECRET):
        if secret:
            assert secret not in shown
    if up is not None and up.state is not None:
        assert "Project authorization" not in shown and "concurrent task limit" not in shown


class Broken:
    """An upstream that answers Run badly, counting the calls."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.calls = 0

    async def handle(self, request: Request) -> Response:
        self.calls += 1
        if self.mode == "html":
            return PlainTextResponse("<html>secret-ish upstream page</html>", status_code=200)
        if self.mode == "503":
            return PlainTextResponse("Service Unavailable: backend pool drained", status_code=503)
        if self.mode == "500json":
            return Response(json.dumps({"result": False, "errors": []}), 500, media_type="application/json")
        if self.mode == "truncated":
            return Response(json.dumps({"result": True, "errors": []}), 200, media_type="application/json")
        await asyncio.sleep(1.5)
        return PlainTextResponse("too late")


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("html", 502, "upstream_bad_response"),
        ("503", 502, "upstream_error"),
        ("500json", 502, "upstream_error"),
        ("truncated", 502, "upstream_bad_response"),
        ("slow", 504, "upstream_timeout"),
    ],
)
def test_run_upstream_failures_are_not_retried(mode: str, status: int, code: str) -> None:
    broken = Broken(mode)
    app = Starlette(routes=[Route("/v1/{path:path}", broken.handle, methods=["POST"])])
    with running(app) as url:
        s = WiroSettings(api_key=KEY, api_secret=SECRET, api_base_url=url + "/v1")
        with pytest.raises(ApiError) as caught:
            asyncio.run(with_provider(s, lambda p: created(p, new_request()), http_timeout=0.3))
    assert (caught.value.status_code, caught.value.code) == (status, code)
    assert broken.calls == 1
    assert_clean(caught.value, s)
    assert "backend pool" not in caught.value.message and "upstream page" not in caught.value.message


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = WiroSettings(api_key=KEY, api_base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ApiError) as caught:
        asyncio.run(with_provider(s, lambda p: created(p, new_request())))
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_unreachable")
    assert_clean(caught.value, s)


# The Run answers the tests above and below get from a broken or odd upstream, read alone.
RUN_ANSWERS: list[tuple[str, httpx.Response, RunAnswer | tuple[int, str]]] = [
    (
        "usable",
        httpx.Response(200, json={"result": True, "taskid": "7", "socketaccesstoken": "a1"}),
        RunAnswer("7", "a1"),
    ),
    (
        "numeric-id",
        httpx.Response(200, json={"result": True, "taskid": 7, "socketaccesstoken": "a1"}),
        RunAnswer("7", "a1"),
    ),
    (
        "bool-id",
        httpx.Response(200, json={"result": True, "taskid": True, "socketaccesstoken": "a1"}),
        RunAnswer("", "a1"),
    ),
    (
        "token-unsafe-in-a-frame",
        httpx.Response(200, json={"result": True, "taskid": "8", "socketaccesstoken": "ab-cd"}),
        RunAnswer("8", "ab-cd"),
    ),
    (
        "no-task-id",
        httpx.Response(200, json={"result": True, "taskid": None, "socketaccesstoken": "a1b2"}),
        RunAnswer("", "a1b2"),
    ),
    ("nothing-named", httpx.Response(200, json={"result": True, "socketaccesstoken": 5}), RunAnswer("", "")),
    ("truncated", httpx.Response(200, json={"result": True, "errors": []}), RunAnswer("", "")),
    ("html", httpx.Response(200, text="<html>secret-ish upstream page</html>"), (502, "upstream_bad_response")),
    ("json-not-an-object", httpx.Response(200, json=["taskid", "7"]), (502, "upstream_bad_response")),
    ("503-text", httpx.Response(503, text="Service Unavailable"), (502, "upstream_error")),
    ("500-json", httpx.Response(500, json={"result": False, "errors": []}), (502, "upstream_error")),
    ("result-not-true", httpx.Response(200, json={"result": "true", "taskid": "7"}), (502, "wiro_refused")),
    ("accepted-on-an-error-status", httpx.Response(400, json={"result": True, "taskid": "7"}), (502, "wiro_refused")),
    ("concurrency", httpx.Response(200, json={"result": False, "errors": [{"code": 96}]}), (429, "wiro_concurrency")),
    ("balance", httpx.Response(200, json={"result": False, "errors": [{"code": 97}]}), (402, "wiro_balance")),
    ("sign-in", httpx.Response(200, json={"result": False, "errors": [{"code": 98}]}), (502, "wiro_sign_in")),
    ("credentials", httpx.Response(200, json={"result": False, "errors": [{"code": 99}]}), (502, "wiro_auth")),
    (
        "signature-refused",
        httpx.Response(
            401, json={"result": False, "errors": [{"code": 0, "message": "Project authorization is not valid."}]}
        ),
        (502, "wiro_auth"),
    ),
    ("unknown-model", httpx.Response(200, json={"result": False, "errors": [{"code": 1}]}), (502, "wiro_not_found")),
    ("unknown-endpoint", httpx.Response(404, json={"result": False, "errors": []}), (502, "wiro_bad_url")),
    ("errors-not-a-list", httpx.Response(401, json={"result": False, "errors": "no"}), (502, "wiro_auth")),
]


@pytest.mark.parametrize(("answer", "read"), [c[1:] for c in RUN_ANSWERS], ids=[c[0] for c in RUN_ANSWERS])
def test_run_answers_are_read_into_a_run_answer_or_the_error_they_mean(
    answer: httpx.Response, read: RunAnswer | tuple[int, str]
) -> None:
    if isinstance(read, RunAnswer):
        assert parse_run(answer) == read
        assert read.usable == (read.task_id == "7" and read.token == "a1")
        return
    with pytest.raises(ApiError) as caught:
        parse_run(answer)
    assert (caught.value.status_code, caught.value.code) == read
    assert "upstream page" not in caught.value.message
    if read[1] == "wiro_not_found":
        assert "WIRO_MODEL" in caught.value.message


# --- task tracking ------------------------------------------------------------------------------------------


def test_explicit_end_of_a_session_never_connected_cancels_its_queued_task_and_unknown_ids_are_ignored(
    upstream_factory: Callable[..., Upstream],
) -> None:
    """The page went away before its socket registered: the task is still queued, which Task/Kill refuses (code 1,
    "Task could not be killed: …") and only Task/Cancel ends. The task must end upstream, not just be forgotten."""
    up = upstream_factory(WiroEmulatorOptions(api_key=KEY, api_secret=SECRET))
    assert up.state is not None

    async def scenario(p: WiroProvider) -> tuple[str, bool, list[str]]:
        grant = await created(p, new_request())
        await p.end_session("424242")
        await p.end_session("not-a-task")
        # The task id is sequential, so it is not accepted as the session's name.
        await p.end_session(grant["task_id"])
        assert up.state is not None and up.state.calls_to("/v1/Task/") == []
        ended = await p.end_session(grant["session_id"])
        assert not await p.end_session(grant["session_id"])
        return grant["task_id"], ended, p.tracked()

    task_id, ended, tracked = asyncio.run(with_provider(settings_for(up, api_secret=SECRET), scenario))
    assert ended and tracked == []
    assert up.state.active_count() == 0, "the task still holds a concurrency slot (and may be billed)"
    assert up.state.tasks[task_id].end_reason == "cancelled" and up.state.cancels == [task_id]
    assert [(c.path, c.code) for c in up.state.calls_to("/v1/Task/")] == [
        ("/v1/Task/Kill", 1),
        ("/v1/Task/Cancel", None),
    ]


def test_explicit_end_of_a_streaming_session_kills_its_task(upstream_factory: Callable[..., Upstream]) -> None:
    up = upstream_factory()
    assert up.state is not None

    async def scenario(p: WiroProvider) -> tuple[str, bool]:
        grant = await created(p, new_request())
        async with websockets.connect(grant["ws_url"]) as ws:
            await ws.send(json.dumps({"type": "task_info", "tasktoken": grant["token"]}))
            while json.loads(await ws.recv())["type"] != "task_stream_ready":
                pass
            ended = await p.end_session(grant["session_id"])
            seen = [json.loads(m)["type"] async for m in ws]
        assert seen[-1] == "task_cancel"
        return grant["task_id"], ended

    task_id, ended = asyncio.run(with_provider(settings_for(up), scenario))
    assert ended and up.state.kills == [task_id] and up.state.tasks[task_id].end_reason == "killed"
    assert up.state.calls_to("/v1/Task/Cancel") == [] and up.state.active_count() == 0


def test_end_after_the_socket_ended_ignores_already_ended(upstream_factory: Callable[..., Upstream]) -> None:
    up = upstream_factory()
    assert up.state is not None

    async def scenario(p: WiroProvider) -> list[str]:
        grant = await created(p, new_request())
        result = await transcribe_wiro(grant["ws_url"], grant["token"], b"\x00\x01" * 12000)
        assert result.events[-1] == "task_postprocess_end"
        await p.end_session(grant["session_id"])
        return p.tracked()

    assert asyncio.run(with_provider(settings_for(up), scenario)) == []
    # Kill and Cancel both refuse an ended task (code 1); Detail shows it ended, so its record goes.
    assert [(c.path, c.code) for c in up.state.calls_to("/v1/Task/")] == [
        ("/v1/Task/Kill", 1),
        ("/v1/Task/Cancel", 1),
        ("/v1/Task/Detail", None),
    ]
    assert up.state.kills == [] and up.state.cancels == []


def test_deadline_ends_tasks_never_ended_without_further_calls(upstream_factory: Callable[..., Upstream]) -> None:
    """The reaper ends a task whose socket never registered (still queued: Kill refuses it, Cancel ends it)."""
    up = upstream_factory()
    assert up.state is not None

    async def scenario(p: WiroProvider) -> tuple[str, list[str]]:
        grant = await created(p, new_request())
        # The emulator records the cancel before its answer reaches the provider: wait for both.
        for _ in range(500):
            if up.state is not None and up.state.cancels and not p.tracked():
                break
            await asyncio.sleep(0.02)
        return grant["task_id"], p.tracked()

    task_id, tracked = asyncio.run(with_provider(settings_for(up, task_deadline_s=0.2), scenario))
    assert up.state.cancels == [task_id] and tracked == []
    assert up.state.active_count() == 0, "the task still holds a concurrency slot (and may be billed)"
    assert up.state.tasks[task_id].end_reason == "cancelled"


class _FlakyTasks(MemoryTaskRegistry):
    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store)
        self.failures = 0

    async def due(self, now: float, limit: int = 50) -> list[WiroTask]:
        if self.failures == 0:
            self.failures += 1
            raise RuntimeError("unexpected")
        return await super().due(now, limit)


class FlakyState(State):
    """Shared state whose first look for due tasks fails with an error nobody planned for."""

    def __init__(self) -> None:
        store = MemoryStore()
        self.tasks = _FlakyTasks(store)
        super().__init__(store, concerns={CONCERN: self.tasks})

    @property
    def failures(self) -> int:
        return self.tasks.failures


def test_the_reaper_survives_an_unexpected_error_and_still_kills_at_the_deadline(
    upstream_factory: Callable[..., Upstream],
) -> None:
    up = upstream_factory()
    assert up.state is not None
    state = FlakyState()

    async def scenario() -> str:
        async with httpx.AsyncClient(timeout=5.0) as http:
            p = WiroProvider(settings_for(up, task_deadline_s=0.3, reap_interval_s=0.05), http, state=state)
            try:
                grant = await created(p, new_request())
                for _ in range(500):
                    if up.state is not None and up.state.cancels:
                        break
                    await asyncio.sleep(0.02)
                return grant["task_id"]
            finally:
                await p.aclose()

    task_id = asyncio.run(scenario())
    assert state.failures == 1
    assert up.state.cancels[:1] == [task_id] and up.state.active_count() == 0


def test_aclose_kills_outstanding_tasks(upstream_factory: Callable[..., Upstream]) -> None:
    up = upstream_factory()
    assert up.state is not None

    async def scenario(p: WiroProvider) -> list[str]:
        grants = [await created(p, new_request()) for _ in range(3)]
        await p.end_session(grants[0]["session_id"])
        assert up.state is not None and up.state.active_count() == 2
        return [g["task_id"] for g in grants]

    ids = asyncio.run(with_provider(settings_for(up), scenario))
    # None of them ever had a socket: still queued, so cancelled.
    assert sorted(up.state.cancels) == sorted(ids)
    assert up.state.active_count() == 0


def _task_answer(code: int | None, message: str = "", **fields: Any) -> httpx.Response:
    if code is None:
        return httpx.Response(200, json={"result": True, "errors": [], **fields})
    return httpx.Response(200, json={"result": False, "errors": [{"code": code, "message": message}]})


NOT_KILLABLE = _task_answer(1, "Task could not be killed: not running")
NOT_CANCELLABLE = _task_answer(1, "Task is not in a cancellable state.")
NO_TASK = _task_answer(1, "There is no task yet.")


def _detail(status: str) -> httpx.Response:
    return _task_answer(None, total="1", tasklist=[{"id": "7", "status": status, "pexit": ""}])


@pytest.mark.parametrize(
    ("answers", "calls", "kept"),
    [
        ({"Kill": [NO_TASK]}, ["Kill"], None),
        ({"Kill": [NOT_KILLABLE], "Cancel": [NO_TASK]}, ["Kill", "Cancel"], None),
        (
            {"Kill": [NOT_KILLABLE], "Cancel": [NOT_CANCELLABLE], "Detail": [NO_TASK]},
            ["Kill", "Cancel", "Detail"],
            None,
        ),
        (
            {"Kill": [NOT_KILLABLE], "Cancel": [NOT_CANCELLABLE], "Detail": [_detail("task_postprocess_end")]},
            ["Kill", "Cancel", "Detail"],
            None,
        ),
        (
            {"Kill": [NOT_KILLABLE], "Cancel": [NOT_CANCELLABLE], "Detail": [_detail("task_start")]},
            ["Kill", "Cancel", "Detail"],
            "wiro_task_refused",
        ),
        (
            {"Kill": [NOT_KILLABLE], "Cancel": [NOT_CANCELLABLE], "Detail": [_task_answer(None, tasklist=[])]},
            ["Kill", "Cancel", "Detail"],
            "wiro_task_refused",
        ),
        (
            {"Kill": [NOT_KILLABLE], "Cancel": [httpx.Response(503, text="down")]},
            ["Kill", "Cancel"],
            "upstream_error",
        ),
        (
            {"Kill": [NOT_KILLABLE], "Cancel": [NOT_CANCELLABLE], "Detail": [httpx.Response(200, text="<html>")]},
            ["Kill", "Cancel", "Detail"],
            "upstream_bad_response",
        ),
    ],
    ids=[
        "kill-no-such-task",
        "cancel-no-such-task",
        "detail-no-such-task",
        "detail-ended",
        "detail-still-running",
        "detail-without-a-status",
        "cancel-fails",
        "detail-unreadable",
    ],
)
def test_a_task_record_is_dropped_only_once_wiro_ended_the_task_or_has_none(
    answers: dict[str, list[httpx.Response]], calls: list[str], kept: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Kill refused (code 1, "could not be killed": queued, or ended) is followed by Cancel, and a refused Cancel by
    Detail. A task Wiro may still run stays recorded, counted, and is tried again (here: Kill works the next time)."""
    seen: list[str] = []
    bodies: list[dict[str, Any]] = []
    clock = [1000.0]

    def handler(request: httpx.Request) -> httpx.Response:
        if "/Run/" in request.url.path:
            return httpx.Response(200, json={"result": True, "errors": [], "taskid": "7", "socketaccesstoken": "a1"})
        action = request.url.path.rsplit("/", 1)[-1]
        seen.append(action)
        bodies.append(json.loads(request.content))
        queue = answers.get(action, [])
        return queue.pop(0) if queue else _task_answer(None)

    async def scenario() -> tuple[bool, list[str], dict[str, int], list[str]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            p = WiroProvider(WiroSettings(api_key=KEY), http, clock=lambda: clock[0])
            grant = await created(p, new_request())
            ended = await p.end_session(grant["session_id"])
            first = list(seen)
            failures = dict(p.kill_failures)
            left = [t.task_id for t in await p.tasks.due(float("inf"))]
            clock[0] += 601  # past any retry time, a stuck kill's too
            await p.sweep()
            assert not await p.tasks.due(float("inf")), "a retry that worked must drop the record"
            await p.aclose()
            return ended, first, failures, left

    ended, first, failures, left = asyncio.run(scenario())
    assert first == calls
    assert bodies[0] == {"taskid": "7", "tasktoken": "a1", "socketaccesstoken": "a1"}
    assert all(b == bodies[0] for b in bodies)
    if kept is None:
        assert ended and left == [] and failures == {} and seen == calls
    else:
        assert not ended and left == ["7"] and failures == {kept: 1}
        assert seen == [*calls, "Kill"]
        assert any("7" in r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR"))


def test_kill_transport_failure_is_retried_later() -> None:
    attempts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Run/wiro/voxtral-mini-realtime"):
            return httpx.Response(200, json={"result": True, "errors": [], "taskid": "7", "socketaccesstoken": "a1"})
        attempts.append(request.url.path)
        if len(attempts) == 1:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={"result": True, "errors": []})

    clock = [1000.0]

    async def scenario() -> tuple[list[str], list[str]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            p = WiroProvider(WiroSettings(api_key=KEY), http, clock=lambda: clock[0])
            grant = await created(p, new_request())
            await p.end_session(grant["session_id"])
            still = p.tracked()
            clock[0] += 31
            await p.end_session("unrelated")
            after = p.tracked()
            await p.aclose()
            return still, after

    still, after = asyncio.run(scenario())
    assert still == ["7"] and after == []
    assert attempts == ["/v1/Task/Kill", "/v1/Task/Kill"]


@pytest.mark.parametrize(
    ("answer", "kill_body"),
    [
        (
            {"taskid": "8", "socketaccesstoken": "ab-cd"},
            {"taskid": "8", "tasktoken": "ab-cd", "socketaccesstoken": "ab-cd"},
        ),
        ({"taskid": None, "socketaccesstoken": "a1b2"}, {"tasktoken": "a1b2", "socketaccesstoken": "a1b2"}),
        ({"socketaccesstoken": 5}, None),
    ],
    ids=["token-unsafe-in-a-frame", "no-task-id", "nothing-to-kill-by"],
)
def test_a_task_started_with_an_answer_no_page_can_use_is_killed(
    answer: dict[str, Any], kill_body: dict[str, str] | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Run started a task (billed until it ends) but its answer is of no use to a page: the session is refused, and
    the task is killed by whatever the answer named, without leaking its token into the log."""
    kills: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if "/Run/" in request.url.path:
            return httpx.Response(200, json={"result": True, "errors": [], **answer})
        kills.append(json.loads(request.content))
        return httpx.Response(200, json={"result": True, "errors": []})

    async def scenario() -> ApiError:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            p = WiroProvider(WiroSettings(api_key=KEY), http)
            try:
                with pytest.raises(ApiError) as refused:
                    await p.create_session(new_request())
                return refused.value
            finally:
                await p.aclose()

    refused = asyncio.run(scenario())
    assert refused.status_code == 502 and refused.code == "upstream_bad_response"
    assert kills == ([kill_body] if kill_body else [])
    if kill_body is None:
        assert any(r.levelname == "ERROR" and "named no task" in r.getMessage() for r in caplog.records)
    assert not any("ab-cd" in r.getMessage() or "a1b2" in r.getMessage() for r in caplog.records)


def test_a_task_started_with_an_unusable_answer_whose_kill_fails_is_killed_later() -> None:
    kills: list[dict[str, Any]] = []
    clock = [1000.0]

    def handler(request: httpx.Request) -> httpx.Response:
        if "/Run/" in request.url.path:
            return httpx.Response(200, json={"result": True, "errors": [], "socketaccesstoken": "c3d4"})
        kills.append(json.loads(request.content))
        return httpx.Response(503 if len(kills) == 1 else 200, json={"result": True, "errors": []})

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            p = WiroProvider(WiroSettings(api_key=KEY), http, clock=lambda: clock[0])
            try:
                with pytest.raises(ApiError):
                    await p.create_session(new_request())
                assert len(kills) == 1
                clock[0] += 31
                await p.sweep()
                assert len(kills) == 2
                await p.sweep()
            finally:
                await p.aclose()

    asyncio.run(scenario())
    assert kills == [{"tasktoken": "c3d4", "socketaccesstoken": "c3d4"}] * 2


def test_shutdown_kills_a_task_whose_kill_was_postponed() -> None:
    """A lone process: the page's end call got a 503 and the kill was postponed (its claim held until the retry).
    Shutdown comes first: the registry goes with the process, so the kill is tried once more then."""
    kills: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if "/Run/" in request.url.path:
            return httpx.Response(200, json={"result": True, "errors": [], "taskid": "7", "socketaccesstoken": "a1"})
        kills.append(request.url.path)
        return httpx.Response(503 if len(kills) == 1 else 200, json={"result": True, "errors": []})

    async def scenario() -> WiroTask | None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            p = WiroProvider(WiroSettings(api_key=KEY), http)
            grant = await created(p, new_request())
            assert not await p.end_session(grant["session_id"])
            await p.aclose()
            return await p.tasks.get("7")

    assert asyncio.run(scenario()) is None
    assert kills == ["/v1/Task/Kill", "/v1/Task/Kill"]


def test_a_kill_at_shutdown_that_gets_no_answer_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Shutdown waits ACLOSE_TIMEOUT_S for its kills, then says which task may still be billed."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if "/Run/" in request.url.path:
            return httpx.Response(200, json={"result": True, "errors": [], "taskid": "7", "socketaccesstoken": "a1"})
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), timeout=60) as http:
            p = WiroProvider(WiroSettings(api_key=KEY), http)
            await created(p, new_request())
            await p.aclose()

    asyncio.run(scenario())
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("task 7" in m and "no answer" in m for m in errors), errors


def test_connect_origins_and_status() -> None:
    async def check() -> None:
        async with httpx.AsyncClient() as http:
            p = WiroProvider(WiroSettings(api_key="k", socket_url="wss://socket.wiro.ai/v1"), http)
            assert p.connect_origins() == ["wss://socket.wiro.ai"]
            assert p.status().configured
            assert not WiroProvider(WiroSettings(), http).status().configured

    asyncio.run(check())


# --- through the app ----------------------------------------------------------------------------------------


def test_app_session_grant_transcribe_and_end(upstream_factory: Callable[..., Upstream]) -> None:
    up = upstream_factory(WiroEmulatorOptions(api_key=KEY, api_secret=SECRET))
    assert up.state is not None
    app = create_app(Settings(wiro=settings_for(up, api_secret=SECRET)))
    with running(app) as url:
        r = httpx.post(url + "/api/sessions", json={"provider": "wiro"})
        assert r.status_code == 200, r.text
        grant = r.json()
        assert grant["ws_url"] == up.socket and KEY not in r.text and SECRET not in r.text
        result = asyncio.run(transcribe_wiro(grant["ws_url"], grant["token"], b"\x10\x00" * 24000))
        assert result.text and result.events[-1] == "task_postprocess_end"
        end = httpx.post(f"{url}/api/sessions/wiro/{grant['session_id']}/end")
        assert end.status_code == 200 and end.json() == {"ended": True}

        # Abandoned before its socket registered: still queued, so cancelled (Kill refuses a queued task).
        abandoned = httpx.post(url + "/api/sessions", json={"provider": "wiro"}).json()
        assert httpx.post(f"{url}/api/sessions/wiro/{abandoned['session_id']}/end").status_code == 200
        assert up.state.cancels == [abandoned["task_id"]]

        left_open = httpx.post(url + "/api/sessions", json={"provider": "wiro"}).json()
        assert up.state.tasks[left_open["task_id"]].active
    # App shutdown (the lifespan's aclose) ends what is still held.
    assert up.state.cancels == [abandoned["task_id"], left_open["task_id"]] and up.state.kills == []
    assert up.state.active_count() == 0


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        (WiroEmulatorOptions(api_key=KEY, max_concurrent_tasks=0), 429, "wiro_concurrency"),
        (WiroEmulatorOptions(api_key=KEY, balance=0.0), 402, "wiro_balance"),
        (WiroEmulatorOptions(api_key="another-key"), 502, "wiro_auth"),
    ],
)
def test_app_maps_wiro_errors(
    upstream_factory: Callable[..., Upstream], options: WiroEmulatorOptions, status: int, code: str
) -> None:
    up = upstream_factory(options)
    with running(create_app(Settings(wiro=settings_for(up)))) as url:
        r = httpx.post(url + "/api/sessions", json={"provider": "wiro"})
    assert r.status_code == status and r.json()["error"]["code"] == code
    assert KEY not in r.text
    if status == 429:
        assert int(r.headers["Retry-After"]) > 0
    assert up.runs() == 1


def test_a_task_started_by_one_process_is_ended_by_another_and_forgotten_by_both() -> None:
    kills: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Run/wiro/voxtral-mini-realtime"):
            return httpx.Response(200, json={"result": True, "errors": [], "taskid": "9", "socketaccesstoken": "t9"})
        kills.append(request.url.path)
        return httpx.Response(200, json={"result": True, "errors": []})

    clock = [time.time()]  # from the real time: real time alone never reaches the deadline

    async def scenario() -> tuple[bool, bool, list[str], list[str]]:
        shared = MemoryState(lambda: clock[0])
        settings = WiroSettings(api_key=KEY, task_deadline_s=600, reap_interval_s=0.05)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            a = WiroProvider(settings, http, state=shared, clock=lambda: clock[0])
            b = WiroProvider(settings, http, state=shared, clock=lambda: clock[0])
            await a.start()
            await b.start()
            grant = await created(a, new_request())
            ended = await b.end_session(grant["session_id"])
            again = await a.end_session(grant["session_id"])
            # A cannot tell that another process ended its task until the task's deadline.
            assert a.tracked() == ["9"]
            clock[0] += 601  # past the deadline: A must let go of the task B ended
            for _ in range(500):  # A's reaper looks every 50 ms; 10 s at most, a hang guard
                if not a.tracked():
                    break
                await asyncio.sleep(0.02)
            mine = a.tracked()
            await a.aclose()
            await b.aclose()
            return ended, again, mine, kills

    ended, again, mine, killed = asyncio.run(scenario())
    assert ended and not again and mine == []
    assert killed == ["/v1/Task/Kill"]


# --- failure paths that cost money: a task the app started ends killed, or stays recorded and visible -------


class _FailingTasks(MemoryTaskRegistry):
    def __init__(self, store: MemoryStore, failing: set[str]) -> None:
        super().__init__(store)
        self.failing = failing

    def _check(self, op: str) -> None:
        if op in self.failing:
            raise StateUnavailable(f"{op} failed (injected)")

    async def put(self, task: WiroTask) -> None:
        self._check("put_task")
        await super().put(task)

    async def next_nonce(self, now_ms: int) -> int:
        self._check("next_nonce")
        return await super().next_nonce(now_ms)

    async def due(self, now: float, limit: int = 50) -> list[WiroTask]:
        self._check("due_tasks")
        return await super().due(now, limit)

    async def by_handle(self, handle: str) -> WiroTask | None:
        self._check("task_by_handle")
        return await super().by_handle(handle)

    async def claim(self, task_id: str, lease_s: float) -> bool:
        self._check("claim_task:" + task_id)
        return await super().claim(task_id, lease_s)


class FailingState(State):
    """The in-memory state with a switch per operation of the task registry: a store that fails part-way through a
    flow."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        store = MemoryStore(clock) if clock is not None else MemoryStore()
        self.failing: set[str] = set()
        self.tasks = _FailingTasks(store, self.failing)
        super().__init__(store, concerns={CONCERN: self.tasks})


class WiroMock:
    """Wiro over httpx.MockTransport: Run answers task ids 1, 2, ...; Kill answers `kill_answers` in turn (then
    success), and every call's nonce and signature are checked as a signature project checks them."""

    def __init__(self, kill_answers: list[httpx.Response | Exception] | None = None, secret: str = SECRET) -> None:
        self.secret = secret
        self.kill_answers = list(kill_answers or [])
        self.runs: list[str] = []
        self.kills: list[str] = []
        self.nonces: list[int] = []
        self.kill_gate: asyncio.Event | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.secret:
            nonce = request.headers["x-nonce"]
            assert request.headers["x-signature"] == _signature(KEY, self.secret, nonce)
            assert not self.nonces or int(nonce) > self.nonces[-1], "nonces must increase"
            self.nonces.append(int(nonce))
        if "/Run/" in request.url.path:
            self.runs.append(str(len(self.runs) + 1))
            return httpx.Response(
                200, json={"result": True, "errors": [], "taskid": self.runs[-1], "socketaccesstoken": "tok"}
            )
        task_id = json.loads(request.content)["taskid"]
        if task_id == "slow" and self.kill_gate is not None:
            await self.kill_gate.wait()
        answer = self.kill_answers.pop(0) if self.kill_answers else None
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
        self.kills.append(task_id)
        return httpx.Response(200, json={"result": True, "errors": []})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


AUTH_REFUSED = httpx.Response(
    401, json={"result": False, "errors": [{"code": 0, "message": "Project authorization is not valid."}]}
)


def test_a_task_that_cannot_be_recorded_is_killed_with_a_nonce_that_does_not_need_the_store() -> None:
    wiro = WiroMock()
    state = FailingState()

    async def scenario() -> WiroProvider:
        async with wiro.client() as http:
            p = WiroProvider(WiroSettings(api_key=KEY, api_secret=SECRET), http, state=state)
            real_put = state.tasks.put

            async def put_then_fail(task: WiroTask) -> None:
                # The store goes down between Run (its nonce came from the store) and recording the task.
                state.failing |= {"put_task", "next_nonce"}
                await real_put(task)

            state.tasks.put = put_then_fail  # type: ignore[method-assign]
            with pytest.raises(StateUnavailable):
                await created(p, new_request())
            await p.aclose()
            return p

    asyncio.run(scenario())
    assert wiro.runs == ["1"] and wiro.kills == ["1"], "the task nobody recorded must be killed at once"
    assert len(wiro.nonces) == 2 and wiro.nonces[1] > wiro.nonces[0]


def test_a_task_neither_recorded_nor_killed_is_logged_counted_and_killed_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wiro = WiroMock(kill_answers=[httpx.ConnectError("refused")])
    state = FailingState()
    clock = [1000.0]

    async def scenario() -> tuple[list[str], dict[str, int], list[str]]:
        async with wiro.client() as http:
            p = WiroProvider(WiroSettings(api_key=KEY, api_secret=SECRET), http, state=state, clock=lambda: clock[0])
            state.failing.add("put_task")
            with pytest.raises(StateUnavailable):
                await created(p, new_request())
            before = list(wiro.kills)
            counted = dict(getattr(p, "kill_failures", {}))
            clock[0] += 31
            state.failing.clear()
            await p.end_session("no-such-session")  # each end call sweeps
            await p.aclose()
            return before, counted, wiro.kills

    before, counted, kills = asyncio.run(scenario())
    assert before == [] and counted == {"upstream_unreachable": 1}
    assert any(r.levelname == "ERROR" and "1" in r.getMessage() for r in caplog.records)
    assert kills == ["1"], "the unrecorded task is killed by a later sweep"


@pytest.mark.parametrize(
    "answers",
    [
        [AUTH_REFUSED],
        [httpx.Response(200, text="<html>")],
        [httpx.ConnectError("refused")] * 3,
    ],
    ids=["auth", "unreadable", "out-of-retries"],
)
def test_a_kill_that_fails_for_good_keeps_the_task_recorded_logged_and_counted(
    answers: list[httpx.Response | Exception], caplog: pytest.LogCaptureFixture
) -> None:
    wiro = WiroMock(kill_answers=answers)
    clock = [1000.0]
    state = MemoryState(clock=lambda: clock[0])

    async def scenario() -> tuple[list[WiroTask], int, list[str]]:
        async with wiro.client() as http:
            p = WiroProvider(WiroSettings(api_key=KEY, api_secret=SECRET), http, state=state, clock=lambda: clock[0])
            grant = await created(p, new_request())
            await p.end_session(grant["session_id"])
            for _ in range(len(answers) - 1):
                clock[0] += 31
                await p.end_session("no-such-session")  # each end call sweeps
            left = await task_registry(state).due(float("inf"))
            failures = sum(getattr(p, "kill_failures", {}).values())
            # Once Wiro answers again, a later sweep kills it.
            clock[0] += 3600
            await p.end_session("no-such-session")  # each end call sweeps
            await p.aclose()
            return left, failures, wiro.kills

    left, failures, kills = asyncio.run(scenario())
    assert [t.task_id for t in left] == ["1"], "the only record of a task that may still be billed was dropped"
    assert failures >= 1
    assert any(r.levelname == "ERROR" and "1" in r.getMessage() for r in caplog.records)
    assert kills == ["1"]


def test_one_failed_kill_does_not_fail_the_sweep_nor_leave_the_others_unwatched() -> None:
    wiro = WiroMock(secret="")
    wiro.kill_gate = asyncio.Event()
    clock = [1000.0]
    state = FailingState(clock=lambda: clock[0])

    async def scenario() -> tuple[bool, list[str], list[WiroTask]]:
        async with wiro.client() as http:
            p = WiroProvider(WiroSettings(api_key=KEY), http, state=state, clock=lambda: clock[0])
            for task_id in ("bad", "slow"):
                await task_registry(state).put(WiroTask(task_id, "tok", "h-" + task_id, 900.0))
            state.failing.add("claim_task:bad")
            assert wiro.kill_gate is not None
            gate = wiro.kill_gate
            asyncio.get_running_loop().call_later(0.2, gate.set)
            ended = await p.end_session("unrelated")
            # When the end call returns, the sweep it ran is over: the slow kill finished and was recorded.
            killed = list(wiro.kills)
            left = await task_registry(state).due(float("inf"))
            await p.aclose()
            return ended, killed, left

    ended, killed, left = asyncio.run(scenario())
    assert not ended and killed == ["slow"]
    assert [t.task_id for t in left] == ["bad"]


def test_kill_attempts_are_counted_in_the_shared_state_not_in_one_process() -> None:
    wiro = WiroMock(kill_answers=[httpx.ConnectError("refused"), httpx.ConnectError("refused")], secret="")
    clock = [1000.0]
    shared = MemoryState(clock=lambda: clock[0])

    async def scenario() -> tuple[list[int], WiroProvider]:
        async with wiro.client() as http:
            settings = WiroSettings(api_key=KEY)
            a = WiroProvider(settings, http, state=shared, clock=lambda: clock[0])
            b = WiroProvider(settings, http, state=shared, clock=lambda: clock[0])
            grant = await created(a, new_request())
            await a.end_session(grant["session_id"])  # fails: postponed by A
            attempts = [t.attempts for t in await task_registry(shared).due(float("inf"))]
            clock[0] += 31
            await b.end_session("no-such-session")  # each end call sweeps  # fails again, counted on the same record
            attempts += [t.attempts for t in await task_registry(shared).due(float("inf"))]
            clock[0] += 31
            await b.end_session("no-such-session")  # each end call sweeps  # killed by B
            await a.end_session("no-such-session")  # each end call sweeps
            await a.aclose()
            await b.aclose()
            return attempts, a

    attempts, a = asyncio.run(scenario())
    assert attempts == [1, 2]
    assert wiro.kills == ["1"]
    assert a.tracked() == [] and getattr(a, "_attempts", {}) == {}, "A still remembers a task B killed"


@pytest.mark.parametrize(
    ("failing", "status", "body"),
    [("due_tasks", 200, {"ended": True}), ("task_by_handle", 503, None)],
    ids=["sweep-fails-after-the-kill", "lookup-fails"],
)
def test_an_end_call_releases_the_clients_slot_whatever_ending_raised(
    failing: str, status: int, body: dict[str, Any] | None
) -> None:
    wiro = WiroMock()
    state = FailingState()
    app = create_app(
        Settings(wiro=WiroSettings(api_key=KEY, api_secret=SECRET)),
        transport=httpx.MockTransport(wiro.handle),
        state=state,
    )
    with running(app) as url:
        grant = httpx.post(url + "/api/sessions", json={"provider": "wiro"}).json()
        held = asyncio.run(state.ledger.held("cloud:127.0.0.1"))
        state.failing.add(failing)
        end = httpx.post(f"{url}/api/sessions/wiro/{grant['session_id']}/end")
        left = asyncio.run(state.ledger.held("cloud:127.0.0.1"))
    assert held == 1
    assert end.status_code == status, end.text
    if body is not None:
        assert end.json() == body and wiro.kills == [grant["task_id"]]
    else:
        assert end.json()["error"]["code"] == "state_unavailable"
    assert left == 0, "the client keeps its slot until the task's deadline"


def test_a_mint_whose_client_gave_up_ends_its_task_and_gives_back_the_place() -> None:
    """The page aborts its grant request (Stop or Cancel while connecting, its grant timeout, a closed tab) while
    Run is under way: it never learns the session's id and cannot end it, so the server ends it once Run answers.
    It ran, billed, with the client's place taken, for the task's hour."""
    gate = threading.Event()
    wiro = WiroMock()

    async def slow_run(request: httpx.Request) -> httpx.Response:
        if "/Run/" in request.url.path:
            while not gate.is_set():  # noqa: ASYNC110 - set from the test's thread
                await asyncio.sleep(0.01)
        return await wiro.handle(request)

    state = MemoryState()
    app = create_app(
        Settings(wiro=WiroSettings(api_key=KEY, api_secret=SECRET)),
        transport=httpx.MockTransport(slow_run),
        state=state,
    )
    with running(app) as url:
        # Only the answer is waited for briefly: a connect slowed by a loaded machine is not the page giving up.
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/api/sessions", json={"provider": "wiro"}, timeout=httpx.Timeout(10.0, read=0.5))
        gate.set()
        wait_until(lambda: bool(wiro.kills) and asyncio.run(state.ledger.held("cloud:127.0.0.1")) == 0)
        held = asyncio.run(state.ledger.held("cloud:127.0.0.1"))
        kills = list(wiro.kills)
        # A client that waits is served as ever (its task is killed at this lone process's shutdown).
        grant = httpx.post(url + "/api/sessions", json={"provider": "wiro"}, timeout=10)
    assert wiro.runs[0] == "1" and kills == ["1"]
    assert held == 0
    assert grant.status_code == 200 and grant.json()["task_id"] == "2"


def test_ends_of_made_up_ids_never_keep_a_running_task_from_being_ended() -> None:
    """The ends' rate limit bounds what unknown ids store; a session that still holds its place is ended whatever
    it says: ends of made-up ids from the same address (a NAT) once left every real task running to its deadline."""
    wiro = WiroMock()
    state = MemoryState()
    app = create_app(
        Settings(wiro=WiroSettings(api_key=KEY, api_secret=SECRET), session_rate_per_min=1),
        transport=httpx.MockTransport(wiro.handle),
        state=state,
    )
    with running(app) as url:
        grant = httpx.post(url + "/api/sessions", json={"provider": "wiro"}).json()
        junk = [httpx.post(f"{url}/api/sessions/wiro/{'x' * 21}{i}/end").status_code for i in range(5)]
        end = httpx.post(f"{url}/api/sessions/wiro/{grant['session_id']}/end")
        held = asyncio.run(state.ledger.held("cloud:127.0.0.1"))
    assert junk[-1] == 429, junk
    assert end.status_code == 200 and end.json() == {"ended": True}
    assert wiro.kills == [grant["task_id"]] and held == 0


class EngineThatFailsToClose(ScriptedRecognizer):
    async def aclose(self) -> None:
        raise RuntimeError("worker pool already gone")


def test_shutdown_kills_the_wiro_tasks_even_when_another_provider_fails_to_close() -> None:
    """The lifespan closes the providers in turn: one raising must not skip the others (here, the kills of a lone
    process's billed tasks)."""
    wiro = WiroMock()
    app = create_app(
        Settings(wiro=WiroSettings(api_key=KEY, api_secret=SECRET)),
        transport=httpx.MockTransport(wiro.handle),
        engine_loader=lambda config: EngineThatFailsToClose(),
    )
    with running(app) as url:
        grant = httpx.post(url + "/api/sessions", json={"provider": "wiro"}).json()
        assert httpx.get(url + "/readyz").status_code == 200
    assert wiro.kills == [grant["task_id"]]
