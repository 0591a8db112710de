"""A faithful local Wiro (realtime speech to text): REST under /v1 and the task socket at /v1, on one port.

Written from ../shared/specs/wiro.md, never from server.providers, so a client bug cannot be mirrored here.

Run it standalone:

    python -m server.emulators wiro --host 127.0.0.1 --port 8092 [--api-key K] [--api-secret S]
                                    [--recognizer pocketsphinx|scripted] [--leading-space] [--chatty]

Default credentials: API key ``wiro-emulator-key`` and no secret: a key-only project (header ``x-api-key``).
Give ``--api-secret`` to emulate a signature project instead (``x-nonce`` and ``x-signature`` then required).

Choices made where the real service's behaviour is unknown (each is an option of WiroEmulatorOptions, except the
queue stage, which is the emulator's model):
- Auth errors answer HTTP 401, unknown paths 404, every other error HTTP 200 with ``result: false``.
- A nonce seen before (with a valid signature) is refused, "Project authorization is not valid.", unless
  ``reject_reused_nonce`` is off: the vendor's authentication page promises replay protection through the nonce. Only
  reuse is refused, never a nonce lower than the last: the same page allows a random integer.
- A realtime task stays in the queue stage (status ``task_queue``) until a socket registers its token: whether the
  real service queues a realtime task until then is not documented, and it is the case a client must survive (a
  page closed before its socket was ready leaves such a task). As the vendor's tasks page and error reference say,
  Task/Cancel ends a task still in the queue stage (any other gets code 1 "Task is not in a cancellable state."),
  and Task/Kill ends one past it, refusing a queued (or an ended) one with code 1 "Task could not be killed:
  {reason}". The statuses between ``task_accept`` and ``task_assign``, which the docs give to neither, are
  Kill's here. Both take ``taskid``, ``tasktoken`` or ``socketaccesstoken``.
- A bad ``task_info`` (unknown or ended token, token already attached to another socket) gets a ``task_error``
  event and is otherwise dropped: the socket stays open, unregistered, and a later good ``task_info`` on it
  registers (the spec's default for unknown reactions). ``close_on_bad_task_info`` closes it with 1008 instead.
- Every other bad input is dropped with a ``task_error`` log event and the session carries on: malformed JSON,
  unknown message types, a binary frame without ``|``, a token other than the registered one, odd-length PCM,
  audio before ``task_stream_ready`` or after ``task_session_end``. ``close_on_bad_audio`` closes the socket
  (1008) instead for audio with another token or before ``task_stream_ready``.
- Code-1 errors ("not found" in the spec's table: an unknown model or task, and Kill's and Cancel's refusals,
  which the vendor's error reference gives code 1 too) answer HTTP 200 with ``result: false``, or 404 with
  ``not_found_http_404``.
- Increments are single words, without a leading space, sent once stable (see wiro_protocol.Increments);
  ``leading_space`` sends each with a leading space instead (the spec leaves it unknown).
- ``chatty`` (off by default) sends what the spec says a client must ignore: before each increment a task_output
  without the prefix and a task_error log line, an unknown lifecycle event before ``task_stream_ready`` and
  another among the increments, and on every frame ``id``, ``tasktoken`` (both once a socket registered),
  ``result``, ``success``, ``terminal`` and ``exitCode`` (see wiro_protocol.CHATTY_*).
- ``task_cost`` fires after every ``cost_every_ms`` of received audio and once at the end.
- After ``task_postprocess_end`` the server closes the socket (1000); a disconnect before ``task_end``
  terminates the task (status ``task_cancel``) and frees its slot. There is no idle timeout unless
  ``idle_timeout_s`` is given: a socket that sent nothing for that long is closed (1001).
- Every fault can be had from the command line too (``--drop-after-frames``, ``--never-ready``,
  ``--balance-stop-after-frames``, ``--faulty-tasks``) and so can every choice above.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from server import UVICORN_HTTP
from server.emulators import wiro_protocol as proto
from server.emulators.scripted import ScriptedRecognizer, load_recognizer
from server.engine.types import Recognizer, RecognizerBusy, RecognizerSession
from server.transcript import Hypothesis

log = logging.getLogger("wiro.emulator")

DEFAULT_API_KEY = "wiro-emulator-key"
DEFAULT_MODEL = "wiro/voxtral-mini-realtime"
DEFAULT_PORT = 8092
RECOGNIZER_RATE = 16_000
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class WiroEmulatorOptions:
    api_key: str = DEFAULT_API_KEY
    # Empty: a key-only project. Set: a signature project.
    api_secret: str = field(default="", repr=False)
    reject_reused_nonce: bool = True
    # The docs disagree (401 vs always 200); the error body is the same either way.
    auth_errors_http_200: bool = False
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    sign_in_required: bool = False
    max_concurrent_tasks: int = 4
    # USD. Below min_balance Run answers 97.
    balance: float = 10.0
    min_balance: float = 0.5
    first_task_id: int = 2221
    send_connected: bool = True
    # The reaction to a bad task_info is unknown; the spec's default is the task_error log event alone.
    close_on_bad_task_info: bool = False
    # So is the reaction to audio before task_stream_ready or with a token other than the registered one: the
    # task_error log event alone by default, a close (1008) with this.
    close_on_bad_audio: bool = False
    # Unknown whether the service ends an idle socket: None never does; a number closes one that sent nothing for
    # that many seconds (1001, "going away"), which terminates its task as any disconnect before task_end does.
    idle_timeout_s: float | None = None
    # The docs disagree on HTTP codes for "not found" (code 1) errors too: 200 with result false, or 404.
    not_found_http_404: bool = False
    lifecycle_delay_s: float = 0.0
    never_ready: bool = False
    # Fault: drop the connection (no close frame: the client sees 1006) once this many audio frames were accepted;
    # the task is terminated.
    drop_after_frames: int | None = None
    # Fault: the wallet runs dry after this many frames: only task_cost and task_end follow, then close.
    balance_stop_after_frames: int | None = None
    # The two faults above hit only tasks started among the first N Runs; None: all. A client's reconnect (a new
    # Run) can then be seen to succeed.
    faulty_tasks: int | None = None
    include_tasktoken: bool = True
    postprocess_delay_s: float = 0.0
    cost_every_ms: int = 1000
    usd_per_audio_second: float = 0.0001
    increment_policy: str = "stable"
    # Each increment as " word" instead of "word" (whether the real service sends the space is unknown).
    leading_space: bool = False
    # Everything a client must ignore, interleaved with the transcript: see the module's docstring.
    chatty: bool = False
    close_after_end: bool = True


@dataclass(frozen=True)
class RestCall:
    method: str
    path: str
    status: int
    code: int | None


@dataclass(eq=False)
class EmulatedTask:
    id: str
    token: str
    model: str
    parameters: dict[str, Any]
    created: float
    status: str = "task_queue"
    pexit: str = ""
    # Why the task stopped holding its slot: "" while active, else session_end, killed, cancelled,
    # disconnect, dropped, balance, recognizer_busy.
    end_reason: str = ""
    ended_at: float | None = None
    cost: float = 0.0
    frames: int = 0
    # Every accepted PCM byte (24 kHz s16le), in order.
    pcm: bytearray = field(default_factory=bytearray)
    words: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    received_texts: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    connection: Connection | None = None

    @property
    def active(self) -> bool:
        return not self.end_reason

    def end(self, status: str, reason: str) -> None:
        if self.active:
            self.status = status
            self.end_reason = reason
            self.ended_at = time.time()

    def detail(self) -> dict[str, Any]:
        end = self.ended_at or time.time()
        return {
            "id": self.id,
            "socketaccesstoken": self.token,
            "parameters": self.parameters,
            "status": self.status,
            "pexit": self.pexit,
            "debugoutput": " ".join(self.words),
            "starttime": str(int(self.created)),
            "endtime": str(int(self.ended_at)) if self.ended_at else "",
            "elapsedseconds": f"{end - self.created:.4f}",
            "totalcost": f"{self.cost:.12f}",
            "outputs": [],
        }


class EmulatorState:
    """What tests inspect: tasks, REST calls, nonces, kills, input rejected before any task_info."""

    def __init__(self, options: WiroEmulatorOptions, recognizer: Recognizer) -> None:
        self.options = options
        self.recognizer = recognizer
        self.tasks: dict[str, EmulatedTask] = {}
        self.calls: list[RestCall] = []
        self.nonces: list[str] = []
        self.seen_nonces: set[str] = set()
        self.kills: list[str] = []
        self.cancels: list[str] = []
        self.unregistered_rejections: list[str] = []
        self.internal_errors: list[str] = []
        self._next_id = options.first_task_id

    def new_task(self, model: str, parameters: dict[str, Any]) -> EmulatedTask:
        task = EmulatedTask(str(self._next_id), proto.new_socket_token(), model, parameters, time.time())
        self._next_id += 1
        self.tasks[task.id] = task
        return task

    def by_token(self, token: str) -> EmulatedTask | None:
        return next((t for t in self.tasks.values() if t.token == token), None)

    def find(self, body: dict[str, Any]) -> EmulatedTask | None:
        taskid = body.get("taskid")
        if isinstance(taskid, str | int) and str(taskid) in self.tasks:
            return self.tasks[str(taskid)]
        for key in ("tasktoken", "socketaccesstoken"):
            token = body.get(key)
            if isinstance(token, str) and token:
                found = self.by_token(token)
                if found:
                    return found
        return None

    def active_count(self) -> int:
        return sum(1 for t in self.tasks.values() if t.active)

    def calls_to(self, prefix: str) -> list[RestCall]:
        return [c for c in self.calls if c.path.startswith(prefix)]


# --- REST ---------------------------------------------------------------------------------------------------


def _state(request: Request | WebSocket) -> EmulatorState:
    state: EmulatorState = request.app.state.wiro
    return state


async def rest(request: Request) -> Response:
    state = _state(request)
    path = request.url.path
    status, body = await _rest(request, state, path)
    code = None if body.get("result") else body["errors"][0]["code"]
    state.calls.append(RestCall(request.method, path, status, code))
    return JSONResponse(body, status_code=status)


async def _rest(request: Request, state: EmulatorState, path: str) -> tuple[int, dict[str, Any]]:
    opts = state.options
    parts = path.removeprefix("/v1/").split("/")
    known = (len(parts) == 3 and parts[0] == "Run" and all(parts[1:])) or (
        len(parts) == 2 and parts[0] == "Task" and parts[1] in ("Detail", "Cancel", "Kill")
    )
    if request.method != "POST" or not path.startswith("/v1/") or not known:
        return 404, proto.error_body(proto.CODE_GENERAL, proto.MSG_URL)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if "x-nonce" in headers:
        state.nonces.append(headers["x-nonce"])
    failure = proto.check_auth(
        headers,
        api_key=opts.api_key,
        api_secret=opts.api_secret,
        seen_nonces=state.seen_nonces if opts.reject_reused_nonce else None,
    )
    if failure:
        status = 200 if opts.auth_errors_http_200 else 401
        return status, proto.error_body(proto.CODE_GENERAL, failure.message)
    try:
        raw = await request.body()
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return 200, proto.error_body(proto.CODE_GENERAL, proto.MSG_INVALID_BODY)
    answer = (
        _run(state, f"{parts[1]}/{parts[2]}", body)
        if parts[0] == "Run"
        else await _task_endpoint(state, parts[1], body)
    )
    not_found = any(isinstance(e, dict) and e.get("code") == proto.CODE_NOT_FOUND for e in answer.get("errors") or [])
    return (404 if not_found and opts.not_found_http_404 else 200), answer


def _run(state: EmulatorState, model: str, body: dict[str, Any]) -> dict[str, Any]:
    opts = state.options
    if model not in opts.models:
        return proto.error_body(proto.CODE_NOT_FOUND, proto.MSG_MODEL_NOT_FOUND)
    delay = body.get("transcriptionDelay", "balanced")
    if not isinstance(delay, str):
        return proto.error_body(proto.CODE_GENERAL, proto.MSG_INVALID_BODY)
    if opts.sign_in_required:
        return proto.error_body(proto.CODE_SIGN_IN, proto.MSG_SIGN_IN)
    if opts.balance < opts.min_balance:
        return proto.error_body(proto.CODE_BALANCE, proto.MSG_BALANCE)
    if state.active_count() >= opts.max_concurrent_tasks:
        return proto.error_body(
            proto.CODE_CONCURRENCY, proto.concurrency_message(opts.balance, opts.max_concurrent_tasks)
        )
    task = state.new_task(model, body)
    return {"result": True, "errors": [], "taskid": task.id, "socketaccesstoken": task.token}


async def _task_endpoint(state: EmulatorState, action: str, body: dict[str, Any]) -> dict[str, Any]:
    if not any(body.get(k) for k in ("taskid", "tasktoken", "socketaccesstoken")):
        return proto.error_body(proto.CODE_GENERAL, proto.MSG_IDENTIFIER_REQUIRED)
    task = state.find(body)
    if task is None:
        return proto.error_body(proto.CODE_NOT_FOUND, proto.MSG_NO_TASK)
    if action == "Detail":
        return {"result": True, "errors": [], "total": "1", "tasklist": [task.detail()]}
    queued = task.active and task.status == "task_queue"
    if action == "Cancel":
        if not queued:
            return proto.error_body(proto.CODE_NOT_FOUND, proto.MSG_NOT_CANCELLABLE)
        task.end("task_cancel", "cancelled")
        state.cancels.append(task.id)
        # A socket that registered a moment ago is still walking the lifecycle (lifecycle_delay_s): it hears the
        # cancel, as it would a kill.
        if task.connection is not None:
            task.connection.killed()
        return {"result": True, "errors": []}
    if not task.active:
        return proto.error_body(proto.CODE_NOT_FOUND, proto.kill_failed_message("the task has already ended"))
    if queued:
        return proto.error_body(proto.CODE_NOT_FOUND, proto.kill_failed_message(proto.KILL_QUEUED_REASON))
    task.end("task_cancel", "killed")
    task.pexit = "1"
    state.kills.append(task.id)
    if task.connection is not None:
        task.connection.killed()
    return {"result": True, "errors": []}


# --- WebSocket ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Close:
    code: int


_STOP = _Close(-1)
# Ends the connection with no close frame: the server then drops the TCP connection (the client sees 1006).
_DROP = _Close(-2)
Outgoing = dict[str, Any] | _Close


class Connection:
    """One client socket. All sends go through one queue, so a REST kill never interleaves with the session."""

    def __init__(self, websocket: WebSocket, state: EmulatorState) -> None:
        self.ws = websocket
        self.state = state
        self.opts = state.options
        self.outbox: asyncio.Queue[Outgoing] = asyncio.Queue()
        self.task: EmulatedTask | None = None
        self.session: RecognizerSession | None = None
        self.resampler: Any = None
        self.increments = proto.Increments(self.opts.increment_policy)
        self.ready = False
        self.ending = False
        self.closing = False
        self.unbilled_samples = 0
        self.total_samples = 0

    async def run(self) -> None:
        await self.ws.accept()
        if self.opts.send_connected:
            extra = proto.chatty_fields("connected") if self.opts.chatty else {}
            self._send({"type": "connected", "version": "1.0", **extra})
        sender = asyncio.create_task(self._send_loop())
        receiver = asyncio.create_task(self._receive_loop())
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                self.outbox.put_nowait(_STOP)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sender), 5.0)
            for pending in (sender, receiver):
                if not pending.done():
                    pending.cancel()
            for finished in await asyncio.gather(sender, receiver, return_exceptions=True):
                if isinstance(finished, Exception):
                    self.state.internal_errors.append(repr(finished))
                    log.error("wiro emulator connection failed: %r", finished)
        finally:
            await self._release("disconnect")

    # sending

    def _send(self, item: Outgoing) -> None:
        if isinstance(item, dict) and self.task is not None:
            self.task.sent.append(item)
        self.outbox.put_nowait(item)

    def _event(self, kind: str, **fields: Any) -> None:
        task = self.task if self.opts.include_tasktoken or self.opts.chatty else None
        ids = {"task_id": task.id, "tasktoken": task.token} if task else {"task_id": None, "tasktoken": None}
        extra = proto.chatty_fields(kind) if self.opts.chatty else {}
        self._send(proto.event(kind, **ids, **extra, **fields))

    def _close(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(_Close(code))

    def _drop(self) -> None:
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(_DROP)

    async def _send_loop(self) -> None:
        while True:
            item = await self.outbox.get()
            if item is _STOP or item is _DROP:
                return
            try:
                if isinstance(item, _Close):
                    await self.ws.close(item.code)
                    return
                await self.ws.send_text(json.dumps(item))
            except Exception:  # the peer is gone; the receive side sees the disconnect
                return

    # receiving

    async def _receive_loop(self) -> None:
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for runs the receive in a task of its own and, when
                # that task already has a frame, drops a cancellation (run() cancelling this loop after a drop).
                async with asyncio.timeout(self.opts.idle_timeout_s):
                    message = await self.ws.receive()
            except TimeoutError:
                self._close(1001)
                continue
            if message["type"] == "websocket.disconnect":
                return
            if self.closing:
                continue
            try:
                if message.get("text") is not None:
                    await self._on_text(message["text"])
                elif message.get("bytes") is not None:
                    await self._on_bytes(message["bytes"])
            except Exception as exc:
                # One session's failure must not take the server down; tests assert this list stays empty.
                log.exception("wiro emulator: failed to handle a frame")
                self.state.internal_errors.append(repr(exc))
                self._reject("internal error while handling the frame")

    def _reject_audio(self, reason: str) -> None:
        self._reject(reason)
        if self.opts.close_on_bad_audio:
            self._close(1008)

    def _reject(self, reason: str) -> None:
        if self.task is not None:
            self.task.rejections.append(reason)
        else:
            self.state.unregistered_rejections.append(reason)
        self._event("task_error", message=reason)

    async def _on_text(self, text: str) -> None:
        msg = proto.parse_client_text(text)
        if isinstance(msg, proto.TaskInfo) and self.task is None:
            await self._register(msg.tasktoken, text)
            return
        if self.task is not None:
            self.task.received_texts.append(text)
        if isinstance(msg, proto.BadMessage):
            self._reject(msg.reason)
        elif isinstance(msg, proto.TaskInfo):
            self._reject("task_info on a socket that is already registered")
        elif self.task is None:
            self._reject("task_session_end before task_info")
        elif msg.tasktoken != self.task.token:
            self._reject("task_session_end with a token other than the registered one")
        elif self.ending or not self.task.active:
            self._reject("task_session_end after the session ended")
        else:
            await self._finish()

    async def _register(self, token: str, text: str) -> None:
        task = self.state.by_token(token)
        if task is None or not task.active or task.connection is not None:
            reason = "unknown tasktoken" if task is None else "tasktoken is not available"
            self._reject(reason)
            if self.opts.close_on_bad_task_info:
                self._close(1008)
            return
        self.task = task
        task.connection = self
        task.received_texts.append(text)
        for kind in proto.LIFECYCLE[:-1]:
            await self._lifecycle(kind)
        try:
            self.session = await self.state.recognizer.open()
        except RecognizerBusy as exc:
            task.rejections.append(f"recognizer busy: {exc}")
            self._event("task_error", message="the model has no free slot")
            self._event("task_end")
            task.end("task_end", "recognizer_busy")
            task.pexit = "1"
            self._event("task_postprocess_end", message=[])
            task.status = "task_postprocess_end"
            self._close(1000)
            return
        # One stream per session: its filter state carries across frames, so chunked equals one-shot.
        self.resampler = soxr.ResampleStream(proto.SAMPLE_RATE, RECOGNIZER_RATE, 1, dtype="int16", quality="HQ")
        await self._lifecycle(proto.LIFECYCLE[-1])
        if self.opts.chatty and task.active:
            self._event(proto.CHATTY_LIFECYCLE)
        if not self.opts.never_ready and task.active:
            task.status = "task_stream_ready"
            self.ready = True
            self._event("task_stream_ready")

    async def _lifecycle(self, kind: str) -> None:
        if self.opts.lifecycle_delay_s:
            await asyncio.sleep(self.opts.lifecycle_delay_s)
        assert self.task is not None
        if self.task.active:
            self.task.status = kind
            self._event(kind)

    async def _on_bytes(self, data: bytes) -> None:
        frame = proto.parse_audio_frame(data)
        task = self.task
        if isinstance(frame, proto.BadMessage):
            self._reject(frame.reason)
        elif task is None:
            self._reject("audio before task_info")
        elif frame.tasktoken != task.token:
            self._reject_audio("audio frame with a token other than the registered one")
        elif self.ending or not task.active:
            self._reject("audio after the session ended")
        elif not self.ready:
            self._reject_audio("audio before task_stream_ready")
        else:
            await self._accept_audio(task, frame.pcm)

    async def _accept_audio(self, task: EmulatedTask, pcm: bytes) -> None:
        task.pcm += pcm
        task.frames += 1
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        self.unbilled_samples += len(samples)
        self.total_samples += len(samples)
        await self._feed(self.resampler.resample_chunk(samples))
        if not task.active:  # killed over REST while the recognizer worked
            return
        if self.unbilled_samples >= self.opts.cost_every_ms * proto.SAMPLE_RATE // 1000:
            self._bill()
        opts = self.opts
        faulty = opts.faulty_tasks is None or int(task.id) - opts.first_task_id < opts.faulty_tasks
        if faulty and opts.drop_after_frames is not None and task.frames >= opts.drop_after_frames:
            task.end("task_cancel", "dropped")
            self._drop()
        elif faulty and opts.balance_stop_after_frames is not None and task.frames >= opts.balance_stop_after_frames:
            self.ending = True
            self._bill()
            self._event("task_end")
            task.end("task_end", "balance")
            self._close(1000)

    async def _feed(self, pcm16k: np.ndarray[Any, Any]) -> None:
        if self.session is not None and len(pcm16k):
            self._emit(await self.session.feed(pcm16k.astype("<i2").tobytes()))

    def _emit(self, hypotheses: list[Hypothesis]) -> None:
        assert self.task is not None
        for hyp in hypotheses:
            words = [w.text for w in hyp.words]
            new = self.increments.final(words) if hyp.is_final else self.increments.partial(words)
            for word in new:
                self.task.words.append(word)
                if self.opts.chatty:
                    self._chatter(len(self.task.words))
                message = proto.transcript_message(word, leading_space=self.opts.leading_space)
                self._event("task_output", message=message)

    def _chatter(self, n: int) -> None:
        """What `chatty` interleaves before the n-th increment: log output, a log line, now and then an unknown
        event. None of it is transcript."""
        self._event("task_output", message=proto.chatty_output(n))
        self._event("task_error", message=proto.chatty_log(n))
        if n % 3 == 0:
            self._event(proto.CHATTY_EVENT, progress=n)

    def _bill(self) -> None:
        assert self.task is not None
        turn = round(self.unbilled_samples / proto.SAMPLE_RATE * self.opts.usd_per_audio_second, 10)
        self.unbilled_samples = 0
        self.task.cost = round(self.task.cost + turn, 10)
        usage = {"inputAudioSeconds": round(self.total_samples / proto.SAMPLE_RATE, 3)}
        self._event("task_cost", turnCost=turn, cumulativeCost=self.task.cost, usage=usage)

    async def _finish(self) -> None:
        task = self.task
        assert task is not None
        self.ending = True
        self.ready = False
        if self.resampler is not None:
            await self._feed(self.resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True))
        if self.session is not None:
            self._emit(await self.session.finish())
        if not task.active:
            return
        # The spec's step 6: the final transcript and cost, then task_stream_end, task_end, task_postprocess_end.
        self._bill()
        self._event("task_stream_end")
        self._event("task_end")
        task.pexit = "0"
        task.end("task_end", "session_end")
        if self.opts.postprocess_delay_s:
            await asyncio.sleep(self.opts.postprocess_delay_s)
        if self.closing:
            return
        task.status = "task_postprocess_end"
        self._event("task_postprocess_end", message=[])
        if self.opts.close_after_end:
            self._close(1000)

    def killed(self) -> None:
        """Task/Kill (or Task/Cancel, while the lifecycle is still at task_queue) arrived over REST while this socket
        is attached."""
        self.ending = True
        self._event("task_cancel")
        self._close(1000)

    async def _release(self, reason: str) -> None:
        if self.task is not None:
            self.task.end("task_cancel", reason)
            self.task.connection = None
        if self.session is not None:
            session, self.session = self.session, None
            await session.aclose()


async def socket_endpoint(websocket: WebSocket) -> None:
    await Connection(websocket, _state(websocket)).run()


def create_emulator(options: WiroEmulatorOptions | None = None, recognizer: Recognizer | None = None) -> Starlette:
    """The emulator app; `app.state.wiro` is its EmulatorState. The recognizer defaults to the scripted."""
    opts = options or WiroEmulatorOptions()
    routes: list[BaseRoute] = [
        WebSocketRoute("/v1", socket_endpoint),
        Route("/v1", rest, methods=ALL_METHODS),
        Route("/{path:path}", rest, methods=ALL_METHODS),
    ]
    app = Starlette(routes=routes)
    app.state.wiro = EmulatorState(opts, recognizer or ScriptedRecognizer())
    return app


# --- command line -------------------------------------------------------------------------------------------


def _recognizer(name: str, loader: Callable[[str], Recognizer]) -> Recognizer:
    """The recognizer `loader` gives for `name`, or the scripted one when it cannot load."""
    if name == "scripted":
        return ScriptedRecognizer()
    try:
        return loader(name)
    except Exception as exc:
        print(
            f"wiro emulator: the {name} recognizer is unavailable ({exc.__class__.__name__}: {exc}); "
            "falling back to the scripted recognizer (fixed words paced by the audio received).",
            file=sys.stderr,
            flush=True,
        )
        return ScriptedRecognizer()


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m server.emulators wiro",
        description="Local Wiro realtime speech-to-text emulator: REST under /v1 and the task socket at /v1.",
        epilog=f"Default credentials: API key {DEFAULT_API_KEY!r} and no secret (a key-only project); "
        "--api-secret makes it a signature project.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--api-secret", default="")
    parser.add_argument("--recognizer", choices=["pocketsphinx", "two-pass", "scripted"], default="pocketsphinx")
    parser.add_argument("--max-concurrent-tasks", type=int, default=WiroEmulatorOptions.max_concurrent_tasks)
    parser.add_argument("--balance", type=float, default=WiroEmulatorOptions.balance, help="USD")
    parser.add_argument("--leading-space", action="store_true", help="send each increment with a leading space")
    parser.add_argument("--auth-errors-http-200", action="store_true", help="answer auth errors with HTTP 200")
    parser.add_argument("--not-found-http-404", action="store_true", help="answer code-1 errors with HTTP 404")
    parser.add_argument("--close-on-bad-task-info", action="store_true", help="close (1008) on a bad task_info")
    parser.add_argument(
        "--close-on-bad-audio", action="store_true", help="close (1008) on audio before ready or with another token"
    )
    parser.add_argument("--idle-timeout-s", type=float, default=None, help="close a socket idle this long (1001)")
    parser.add_argument("--drop-after-frames", type=int, default=None, help="fault: drop the socket after N frames")
    parser.add_argument("--never-ready", action="store_true", help="fault: never send task_stream_ready")
    parser.add_argument(
        "--balance-stop-after-frames", type=int, default=None, help="fault: the wallet runs dry after N frames"
    )
    parser.add_argument("--faulty-tasks", type=int, default=None, help="the faults hit only the first N tasks")
    parser.add_argument(
        "--chatty",
        action="store_true",
        help="interleave what clients must ignore: non-transcript task_output, task_error log lines, unknown "
        "events, and id/tasktoken/result/success/terminal/exitCode on every frame",
    )
    args = parser.parse_args(argv)

    options = WiroEmulatorOptions(
        api_key=args.api_key,
        api_secret=args.api_secret,
        max_concurrent_tasks=args.max_concurrent_tasks,
        balance=args.balance,
        leading_space=args.leading_space,
        chatty=args.chatty,
        auth_errors_http_200=args.auth_errors_http_200,
        not_found_http_404=args.not_found_http_404,
        close_on_bad_task_info=args.close_on_bad_task_info,
        close_on_bad_audio=args.close_on_bad_audio,
        idle_timeout_s=args.idle_timeout_s,
        drop_after_frames=args.drop_after_frames,
        never_ready=args.never_ready,
        balance_stop_after_frames=args.balance_stop_after_frames,
        faulty_tasks=args.faulty_tasks,
    )
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        # Listening before the URLs are printed: a client that reads them and connects at once is queued.
        sock.listen(128)
    except OSError as exc:
        print(f"wiro emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        sock.close()
        return 1
    recognizer = _recognizer(args.recognizer, load_recognizer)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    mode = "signature (x-nonce, x-signature)" if args.api_secret else "key only"
    print(f"WIRO_API_BASE_URL=http://{host}:{port}/v1", flush=True)
    print(f"WIRO_SOCKET_URL=ws://{host}:{port}/v1", flush=True)
    print(f"Wiro emulator: recognizer {recognizer.name}, authentication {mode}; Ctrl-C stops it.", flush=True)
    app = create_emulator(options, recognizer)
    config = uvicorn.Config(app, log_level="warning", http=UVICORN_HTTP, ws="websockets-sansio", lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        aclose = getattr(recognizer, "aclose", None)
        if aclose is not None:
            asyncio.run(aclose())
    return 0
