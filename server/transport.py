"""Sockets: the Truebar stream protocol over a Recognizer, on an already-authenticated Starlette WebSocket.

The app serves its embedded engine with it at /api/local/stream, so the page speaks to the engine with the same
client it uses for Truebar. The engine (server/engine/) knows nothing of sockets and the protocol module
(server/protocols/truebar.py) nothing of either: this module only moves their values over the socket. It carries
no fault injection and keeps no audio: the Truebar emulator plugs both in through a `StreamObserver`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.engine.types import (
    BYTES_PER_MS,
    PushesFinals,
    Recognizer,
    RecognizerBusy,
    RecognizerFailed,
    RecognizerSession,
    Sheds,
)
from server.protocols.truebar import (
    PUNCTUATION_TASK,
    STATUS_CANCELED,
    STATUS_CONFIGURED,
    STATUS_FINISHED,
    STATUS_INITIALIZED,
    Cancel,
    Config,
    Envelope,
    EnvelopeKey,
    Eos,
    ErrorMessage,
    ProtocolError,
    ServerMessage,
    Status,
    WarningMessage,
    parse_client_text,
    segment_of,
)
from server.transcript import Hypothesis

logger = logging.getLogger(__name__)

# Close codes for errors are unknown upstream: bad input is a policy violation, own failures 1011, busy 1013.
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013

# The NLP_pc tag this server honours: the final is capitalised and closed with a period (protocols.truebar).
PUNCTUATOR_TAG = "NEMO_PUNCTUATOR:en-US:*:*"
# How far past its due time (`DueTimes`) audio may wait to be decoded: a recognizer this far behind real time is
# stuck, not slow.
MAX_BEHIND_MS = 60_000
# Audio received but not decoded yet, at most, whatever its due time: what a session may hold in memory (19.2 MB).
# A client may send a file at once, which is decoded faster than it plays and so is not behind: a review found a
# file of over 60 s so sent ended in ERROR while this bound was the one above.
MAX_BACKLOG_MS = 600_000
# Audio decoded in one call when the recognizer is behind. Larger calls cost fewer partial looks, but the two-pass
# engine decides between calls whether a pause ended a sentence: decoding seconds at once merged sentences 1 s apart
# into one Whisper window. 250 ms is the largest frame the stream property suite (tests/test_stream_properties.py)
# covers.
MAX_FEED_MS = 250
_ids = itertools.count(1)


def _after_wait(due: float, since: float, until: float) -> float:
    """When audio due at `due` counts as due once the client has held it up from `since` to `until`: later by the
    whole wait if it was due before the wait began, at the wait's end if due during it, unchanged if due after."""
    return min(due + until - since, max(due, until))


class DueTimes:
    """When the audio not yet decoded was due, so a recognizer can hear how far behind real time it is
    (types.Sheds): a frame is due when it arrives, or, from a client that sends faster than real time, when real
    time reaches it (the previous frame's due time plus that frame's length). So a file sent at once is not behind
    while it is decoded faster than it plays, and a burst after a network stall is not behind for having come
    together. Times are clock seconds."""

    def __init__(self) -> None:
        self._frames: collections.deque[tuple[float, int]] = collections.deque()  # (due, bytes) per frame
        self._next = float("-inf")  # when the byte after the last one received is due

    def arrived(self, now: float, size: int) -> None:
        if size <= 0:
            # An empty frame (an even byte count, so valid) holds no audio: an entry for it would never be taken,
            # and the session would look stuck (never idle, then "behind") with nothing to decode.
            return
        due = max(now, self._next)
        if self._frames and due == self._next:
            # On the schedule of the audio before it: one entry, however small the client cuts its frames.
            first, held = self._frames[-1]
            self._frames[-1] = (first, held + size)
        else:
            self._frames.append((due, size))
        self._next = due + size / BYTES_PER_MS / 1000

    def oldest(self) -> float | None:
        """When the oldest byte not yet decoded is due (None: none waits)."""
        return self._frames[0][0] if self._frames else None

    def taken(self, size: int) -> None:
        """`size` bytes from the oldest were handed to the recognizer."""
        while size > 0 and self._frames:
            due, left = self._frames[0]
            if left > size:
                self._frames[0] = (due + size / BYTES_PER_MS / 1000, left - size)
                return
            self._frames.popleft()
            size -= left

    def waited(self, since: float, until: float) -> None:
        """The recognizer was kept from this audio from `since` to `until` by the client itself (its socket slow to
        take what was sent): no part of the audio's lateness. A frame due before `since` waited all of it; one due
        within, until `until`; one due after, not at all."""
        if until <= since:
            return
        self._frames = collections.deque((_after_wait(due, since, until), held) for due, held in self._frames)
        self._next = _after_wait(self._next, since, until)

    def behind_ms(self, now: float) -> float:
        """How long past its due time the oldest byte not yet decoded is (0 when none is late)."""
        return max(0.0, (now - self._frames[0][0]) * 1000) if self._frames else 0.0

    def clear(self) -> None:
        self._frames.clear()
        self._next = float("-inf")


class StreamFailure(Exception):
    """Ends the stream with an ERROR message naming `message`, then a close with `code`."""

    def __init__(self, message: str, code: int = CLOSE_POLICY) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class StreamStop(Exception):
    """End the handler now, sending nothing more (the socket is already closed, or is being dropped). `outcome`,
    when given, is how the stream ended (an observer that drops the connection says DROPPED)."""

    def __init__(self, outcome: str | None = None) -> None:
        super().__init__(outcome or "stopped")
        self.outcome = outcome


@dataclass(frozen=True)
class ReceiveLimit:
    """How long the stream waits for the client's next message before failing with ERROR `message`."""

    # Epoch seconds after which the wait fails, asked before each wait.
    deadline: Callable[[], float]
    message: str = "The access token has expired."
    # The deadline is an idle time from when it is asked: the client is not idle while the engine decodes audio it
    # sent (a file sent at once, its finals awaited), so the time counts from when the engine last had none.
    idle: bool = False


class StreamObserver:
    """Sees a stream's events and may act on some (the emulator's records and injected faults). The product plugs
    in none: every method does nothing here. An awaited method may raise StreamFailure or StreamStop to end the
    stream, or send through `stream.send`."""

    async def audio(self, stream: TruebarStream, data: bytes) -> None:
        """Each valid audio frame of a configured session, before it is decoded."""

    async def configured(self, stream: TruebarStream) -> None:
        """Between accepting a CONFIG and answering CONFIGURED."""

    async def finishing(self, stream: TruebarStream) -> None:
        """Between the last finals after EOS and STATUS FINISHED."""

    def sent(self, message: dict[str, Any]) -> None:
        """Every message sent, as it goes on the wire, before it is sent."""

    def received(self, text: str) -> None:
        """Every text message received, before it is parsed."""

    def config(self, config: Config) -> None:
        """Every CONFIG accepted."""

    def error(self, message: str) -> None:
        """Every ERROR the stream ends with."""

    def close_code(self, code: int) -> int:
        """The close code sent after an ERROR whose own is `code` (an emulator may send another: the real service's
        close codes are unknown)."""
        return code

    async def ended(self, stream: TruebarStream) -> None:
        """Once, when the handler is done and the recognizer session is released."""


class TruebarStream:
    """One connection. `outcome` ends as FINISHED, CANCELED (client closed mid-session), DISCONNECTED (closed while
    idle), ERROR or (said by the observer's StreamStop) DROPPED; `close_code` is the close code seen or sent."""

    def __init__(
        self,
        websocket: WebSocket,
        recognizer: Recognizer,
        *,
        tags: Collection[str],
        envelope_key: EnvelopeKey = "type",
        punctuation_tags: Collection[str] = (PUNCTUATOR_TAG,),
        limit: ReceiveLimit | None = None,
        observer: StreamObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_behind_ms: int = MAX_BEHIND_MS,
    ) -> None:
        self.ws = websocket
        self.max_behind_ms = max_behind_ms
        self.clock = clock  # seconds: when audio arrived, for how far behind real time the recognizer is
        self.recognizer = recognizer
        self.tags = frozenset(tags)
        self.punctuation_tags = frozenset(punctuation_tags)
        self.limit = limit
        self.observer = observer or StreamObserver()
        self.envelope = Envelope(envelope_key)
        self.session: RecognizerSession | None = None
        self.config: Config | None = None
        self.punctuate = False
        self.session_id = 0
        self.session_bytes = 0
        self.interim_open = False
        self.outcome = "OPEN"
        self.close_code: int | None = None
        # The client closed first: `close_code` is then whatever it chose (any of about 4000 codes), not the server's.
        self.closed_by_client = False
        # Sends finals the session makes ready between audio frames; the lock keeps its messages and the receive
        # loop's from interleaving (each computes what to send from the session's state, then sends it).
        self._pusher: asyncio.Task[None] | None = None
        self._emitting = asyncio.Lock()
        # The socket is read on while the recognizer decodes: uvicorn stops reading a connection until the app takes
        # its next message, so a handler that waited for each frame's decoding stopped answering pings, and the
        # client's keepalive closed sessions the engine was only slow on (issue 16: 3 of 8 under load). Frames wait
        # here; the feeder decodes what has arrived in calls of up to MAX_FEED_MS, so a recognizer that falls behind
        # catches up with fewer, larger feeds (fewer interims, the same audio).
        self._backlog = bytearray()
        self._due = DueTimes()
        self._backlog_ready = asyncio.Event()
        self._draining = False
        self._feeder: asyncio.Task[None] | None = None
        self._feed_failure: Exception | None = None
        self._feed_failed = asyncio.Event()
        self._receiving: asyncio.Future[Message] | None = None
        self._in_feed_due: float | None = None  # when the audio the recognizer is decoding now was due
        self._feed_emit: asyncio.Future[None] | None = None  # the feeder's last send of hypotheses
        self._sending_since: float | None = None  # clock seconds: since when that send has waited for the client
        self._drained_at = 0.0  # epoch seconds: when the engine last had no audio of the client's to decode

    # The protocol.

    async def run(self) -> None:
        """Speak the protocol until the connection ends. Never raises for anything the client does."""
        try:
            await self.ws.accept()
            await self.send(Status(STATUS_INITIALIZED))
            while True:
                message = await self._next_message()
                if message["type"] == "websocket.disconnect":
                    self.close_code = message.get("code")
                    self.closed_by_client = True
                    self.outcome = "CANCELED" if self.session else "DISCONNECTED"
                    return
                if message.get("bytes") is not None:
                    await self.on_audio(message["bytes"])
                elif message.get("text") is not None:
                    await self.on_text(message["text"])
        except StreamFailure as exc:
            await self.fail(exc)
        except StreamStop as exc:
            if exc.outcome is not None:
                self.outcome = exc.outcome
        except WebSocketDisconnect as exc:
            self.close_code = exc.code
            self.closed_by_client = True
            self.outcome = "CANCELED" if self.session else "DISCONNECTED"
        except RecognizerFailed as exc:
            logger.error("a stream's recognizer failed: %s", exc)
            await self.fail(StreamFailure(f"The speech engine failed: {exc}. Start a new session.", CLOSE_INTERNAL))
        except Exception:
            logger.exception("Truebar stream handler failed")
            await self.fail(StreamFailure("Internal error in the pipeline.", CLOSE_INTERNAL))
        finally:
            if self._receiving is not None:
                self._receiving.cancel()
            await self.release()
            await self.observer.ended(self)

    async def _next_message(self) -> Message:
        """The client's next message, or the feeder's failure raised here, where the handler's failures are met.
        A receive still waiting when the feeder fails is kept for the next call (cancelling it could lose a
        message)."""
        if self._receiving is None:
            self._receiving = asyncio.ensure_future(self.receive())
        receiving = self._receiving
        while not receiving.done():
            failed = asyncio.ensure_future(self._feed_failed.wait())
            waiting: list[asyncio.Future[Any]] = [receiving, failed]
            try:
                # A recognizer stuck with audio to decode is found by the time, not only when more audio comes.
                await asyncio.wait(waiting, timeout=self._stuck_in_s(), return_when=asyncio.FIRST_COMPLETED)
            finally:
                failed.cancel()
            self._raise_feed_failure()
            if receiving.done():
                break  # what the client did (a disconnect, a message) comes first
            self._raise_if_behind()
        self._receiving = None
        return receiving.result()

    def _stuck_in_s(self) -> float | None:
        """Seconds until the oldest audio not yet decoded (or being decoded) is `max_behind_ms` late; None: none
        waits."""
        dues = [due for due in (self._in_feed_due, self._due.oldest()) if due is not None]
        if not dues:
            return None
        oldest, now = min(dues), self.clock()
        if self._sending_since is not None:
            # The client is still taking the last results: its audio waits for it, not for the engine (as
            # DueTimes.waited counts it once the send is done).
            oldest = _after_wait(oldest, self._sending_since, now)
        return max(0.0, oldest + self.max_behind_ms / 1000 - now)

    def _raise_if_behind(self) -> None:
        stuck_in = self._stuck_in_s()
        if stuck_in is not None and stuck_in <= 0:
            raise StreamFailure(
                f"The engine fell more than {self.max_behind_ms // 1000} s behind the audio and the session was "
                "ended; try again later.",
                CLOSE_TRY_AGAIN,
            )

    def _raise_feed_failure(self) -> None:
        if self._feed_failure is not None:
            failure, self._feed_failure = self._feed_failure, None
            raise failure

    async def receive(self) -> Message:
        if self.limit is None:
            return await self.ws.receive()
        limit, started = self.limit, time.time()
        receiving = asyncio.ensure_future(self.ws.receive())
        try:
            while True:
                now = time.time()
                remaining = limit.deadline() - now
                if limit.idle:
                    # A review: a file sent at once and its finals awaited for longer than the idle time was ended
                    # as idle while the engine still decoded it.
                    busy = self._stuck_in_s() is not None
                    remaining += 0.0 if busy else max(started, self._drained_at) - now
                if remaining <= 0:
                    raise StreamFailure(limit.message)
                await asyncio.wait([receiving], timeout=remaining)
                if receiving.done():
                    return receiving.result()
        finally:
            receiving.cancel()

    async def send(self, message: ServerMessage) -> None:
        wire = self.envelope.encode(message)
        self.observer.sent(wire)
        await self.ws.send_text(json.dumps(wire, separators=(",", ":")))

    async def fail(self, exc: StreamFailure) -> None:
        await self._stop_feeder()
        await self._finish_feed_emit()
        await self._stop_pusher()
        self.outcome = "ERROR"
        self.observer.error(exc.message)
        code = self.observer.close_code(exc.code)
        with contextlib.suppress(Exception):
            await self.send(ErrorMessage(exc.message))
            await self.ws.close(code)
            self.close_code = code

    async def release(self) -> None:
        session, self.session = self.session, None
        try:
            await self._stop_feeder()
            await self._stop_pusher()
        finally:
            if session is not None:
                with contextlib.suppress(Exception):
                    await session.aclose()
            # After the engine's place is free: a client that does not read holds only its own send.
            await self._finish_feed_emit()

    async def on_audio(self, data: bytes) -> None:
        if self.session is None:
            raise StreamFailure("Audio received before CONFIG: configure the session first.")
        if len(data) % 2:
            raise StreamFailure(f"Malformed audio frame: {len(data)} bytes is not a whole number of 16-bit samples.")
        self.session_bytes += len(data)
        await self.observer.audio(self, data)
        self._backlog += data
        self._due.arrived(self.clock(), len(data))
        self._raise_if_behind()
        if len(self._backlog) > MAX_BACKLOG_MS * BYTES_PER_MS:
            raise StreamFailure(
                f"More than {MAX_BACKLOG_MS // 60_000} minutes of audio arrived ahead of the engine; send audio no "
                "faster than it can be decoded (a longer file in parts, or at real-time pace)."
            )
        self._backlog_ready.set()

    async def _feed(self, session: RecognizerSession) -> None:
        """Decode what has arrived, in arrival order, until drained (EOS) or stopped (CANCEL, a close, a failure). A
        failure goes to the handler's loop (`_next_message`), which ends the stream with it."""
        sheds = session if isinstance(session, Sheds) else None
        try:
            while True:
                await self._backlog_ready.wait()
                self._backlog_ready.clear()
                while self._backlog:
                    waiting = self.clock()
                    async with self._emitting:
                        # Only a send to this client holds the lock (the pusher's): a wait for the client, which the
                        # lateness below must not count.
                        self._due.waited(waiting, self.clock())
                        if sheds is not None:
                            sheds.behind(self._due.behind_ms(self.clock()))
                        take = min(len(self._backlog), MAX_FEED_MS * BYTES_PER_MS)
                        chunk = bytes(self._backlog[:take])
                        del self._backlog[:take]
                        self._in_feed_due = self._due.oldest()
                        self._due.taken(take)
                        hypotheses = await session.feed(chunk)
                        self._in_feed_due = None
                        if not self._backlog:
                            self._drained_at = time.time()
                        # Shielded: stopping the feeder (a failure, a closed socket, CANCEL) may cut a decode short,
                        # which loses nothing the stream still needs, but not a send between a final and its
                        # interim. `_finish_feed_emit` waits for it, so nothing of this session follows what comes
                        # next.
                        self._feed_emit = asyncio.ensure_future(self.emit(hypotheses))
                        self._feed_emit.add_done_callback(_retrieved)
                        self._sending_since = sending = self.clock()
                        try:
                            await asyncio.shield(self._feed_emit)
                        finally:
                            self._sending_since = None
                        # A client slow to read holds this send: its own audio waits, but the engine is not behind
                        # (told as lateness, it would shed this session's search and refuse everyone else's).
                        self._due.waited(sending, self.clock())
                if self._draining:
                    return
        except Exception as exc:
            self._feed_failure = exc
            self._feed_failed.set()

    def _start_feeder(self, session: RecognizerSession) -> None:
        self._backlog.clear()
        self._due.clear()
        self._backlog_ready.clear()
        self._draining = False
        self._feeder = asyncio.create_task(self._feed(session))

    async def _drain(self) -> None:
        """Wait until every frame received so far is decoded and its hypotheses sent; a recognizer that falls
        `max_behind_ms` behind meanwhile ends the stream (StreamFailure), as it would while audio came."""
        task = self._feeder
        if task is not None:
            self._draining = True
            self._backlog_ready.set()
            # The feeder stays the stream's until it is done: a failure here stops it (`_stop_feeder`).
            while not task.done():
                await asyncio.wait([task], timeout=self._stuck_in_s())
                if not task.done():
                    self._raise_if_behind()
            self._feeder = None
        self._raise_feed_failure()

    async def _stop_feeder(self) -> None:
        """Stop decoding now, dropping frames not decoded yet (the stream is ending without EOS)."""
        task, self._feeder = self._feeder, None
        self._backlog.clear()
        self._due.clear()
        self._in_feed_due = None
        if task is None:
            return
        # Not behind the emitting lock, which the feeder holds while it decodes: a recognizer stuck in feed() must
        # not keep the stream from ending.
        task.cancel()
        await asyncio.wait([task])

    async def _finish_feed_emit(self) -> None:
        """Wait for a send of the feeder's results that stopping it left running (shielded): a review found a final
        of a cancelled session sent after STATUS CANCELED, to a client slow to read. The pusher sends nothing
        meanwhile (the lock), so nothing interleaves with it either."""
        emitting, self._feed_emit = self._feed_emit, None
        if emitting is not None and not emitting.done():
            async with self._emitting:
                await asyncio.wait([emitting])

    async def on_text(self, text: str) -> None:
        self.observer.received(text)
        try:
            message = parse_client_text(text)
        except ProtocolError as exc:
            raise StreamFailure(str(exc)) from None
        if isinstance(message, Config):
            await self.on_config(message)
        elif isinstance(message, Eos):
            await self.on_eos(message)
        elif isinstance(message, Cancel):
            await self.on_cancel()

    async def on_config(self, config: Config) -> None:
        if self.session is not None:
            raise StreamFailure("CONFIG received while a session is configured: send EOS or CANCEL first.")
        if config.asr.tag not in self.tags:
            raise StreamFailure(f"Unknown ASR tag or not available for streaming: {config.asr.tag}.")
        warnings = [f"Unknown ASR parameter ignored: {name}." for name in config.unknown_asr_parameters()]
        punctuate = False
        for stage in config.stages[1:]:
            if stage.task == PUNCTUATION_TASK and stage.tag in self.punctuation_tags:
                punctuate = True
            elif stage.policy == "SKIP":
                warnings.append(f"Stage {stage.task} ({stage.tag}) is not available and was skipped.")
            else:
                raise StreamFailure(f"Stage {stage.task} ({stage.tag}) is not available.")
        try:
            self.session = await self.recognizer.open()
        except RecognizerBusy as exc:
            raise StreamFailure(f"The service is busy, try again later: {exc}", CLOSE_TRY_AGAIN) from None
        self.config = config
        self.punctuate = punctuate
        self.session_bytes = 0
        self.interim_open = False
        self.session_id = next(_ids)
        self.observer.config(config)
        for warning in warnings:
            await self.send(WarningMessage(warning))
        await self.observer.configured(self)
        await self.send(Status(STATUS_CONFIGURED, session_id=self.session_id, recording_id=self.session_id))
        self._start_feeder(self.session)
        if isinstance(self.session, PushesFinals):
            self._pusher = asyncio.create_task(self._push(self.session))

    async def on_eos(self, eos: Eos) -> None:
        if self.session is None:
            raise StreamFailure("EOS received before CONFIG.")
        await self._drain()
        await self._stop_pusher()
        await self.emit(await self.session.finish())
        await self.release()
        await self.observer.finishing(self)
        lock_key = secrets.token_urlsafe(16) if eos.lock_session else None
        length_ms = self.session_bytes // BYTES_PER_MS
        await self.send(
            Status(STATUS_FINISHED, session_id=self.session_id, length_ms=length_ms, session_lock_key=lock_key)
        )
        self.outcome = "FINISHED"
        await self.ws.close(1000)
        self.close_code = 1000
        raise StreamStop

    async def on_cancel(self) -> None:
        # The client lets the session go: audio not decoded yet is dropped, as when it closes the socket, rather than
        # decoded for nobody (up to MAX_BACKLOG_MS of it) before CANCELED.
        await self.release()
        self.config = None
        await self.send(Status(STATUS_CANCELED))

    async def _push(self, session: PushesFinals) -> None:
        try:
            while await session.wait_ready():
                async with self._emitting:
                    current: object = self.session
                    if current is not session:
                        return
                    await self.emit(session.collect())
        except Exception:
            # The socket closed under it, or the session failed: the receive loop meets the same and ends the
            # stream; until then finals still go out with each audio frame.
            logger.debug("pushing finals stopped", exc_info=True)

    async def _stop_pusher(self) -> None:
        task, self._pusher = self._pusher, None
        if task is None:
            return
        async with self._emitting:  # never cut it off between a final and the interim after it
            task.cancel()
        await asyncio.wait([task])

    async def emit(self, hypotheses: list[Hypothesis]) -> None:
        config = self.config
        if config is None:
            return
        for hyp in hypotheses:
            if not hyp.is_final and not config.enable_interims:
                continue
            if hyp.warning:
                # Before the final it concerns, so a client can mark that final (e.g. the fast pass's text).
                await self.send(WarningMessage(hyp.warning))
            segment = segment_of(hyp, punctuate=self.punctuate)
            # An empty segment is only worth sending when it replaces an interim the client is showing.
            if not segment.tokens and not self.interim_open:
                continue
            await self.send(segment)
            self.interim_open = not hyp.is_final


def _retrieved(future: asyncio.Future[None]) -> None:
    """Mark a send's failure as seen: a closed socket is the handler's to meet (its receive), not the loop's to
    report as never retrieved."""
    if not future.cancelled():
        future.exception()


async def deny(websocket: WebSocket, status: int) -> None:
    """Refuse the upgrade with an HTTP status; servers without the denial extension can only send 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(Response(status_code=status))
    else:
        await websocket.close(CLOSE_POLICY)
