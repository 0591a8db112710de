"""Shared captions: each share's record, its short log of finals (for a viewer's catch-up after a reconnect), its
latest interim, and live delivery to this process's viewers (memory: direct; Redis: pub/sub).

Finals are numbered by the store (`seq`, 1, 2, …, the SSE event id), so a viewer resuming with Last-Event-ID gets
every final after it exactly once: it subscribes first, then reads the log, then drops live finals it already has.
The publisher numbers its finals too (`pub_seq`), and a final whose pub_seq is not above the share's high-water mark
is a retried request's duplicate and is dropped, so a publisher may retry a batch it is unsure about.

Nothing of a transcript outlives its share: the memory tables are pruned at the expiry, the Redis keys carry it as
their TTL, and a revoke deletes the log and the interim at once (the record stays, marked revoked, until it expires,
so the link says "revoked" rather than "unknown").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from server.state.store import PREFIX, MemoryStore, RedisStore, StateUnavailable, Store

log = logging.getLogger(__name__)

# Finals kept for catch-up per share (a late viewer sees at most these; a reconnect within them loses nothing).
LOG_MAX = 500
# A viewer further behind than this many finals is cut off (it reconnects and catches up from the log), so one
# stalled connection cannot hold the process's memory. The default of the captions' `inbox_max`.
INBOX_MAX = 1000
# The process's subscription only reads, so a Redis host gone without a FIN or RST (power lost, a partition) leaves
# it waiting forever: after this many seconds with nothing heard it pings, and no answer within the state's timeout
# means the connection is dead. The default of RedisCaptions' `pubsub_idle_s`.
PUBSUB_IDLE_S = 5.0
# While viewers wait for a lost subscription to come back: the longest pause between tries, and how often the log is
# told it is still lost.
SUBSCRIBE_RETRY_MAX_S = 5.0
SUBSCRIBE_TELL_EVERY_S = 60.0

EventKind = Literal["final", "partial", "state", "end", "resync"]


@dataclass(frozen=True)
class Share:
    share_id: str
    token_hash: str
    created_at: float
    # Never later than this, whatever happens (the hard cap on a share's life).
    deadline: float
    # Now: the deadline while recording, the end of the grace period otherwise.
    expires_at: float
    live: bool = False
    revoked: bool = False


@dataclass(frozen=True)
class CaptionEvent:
    kind: EventKind
    text: str = ""
    # Finals: the store's number (the SSE id). Others: 0.
    seq: int = 0
    # end: why ("revoked", "expired"); state: "live" (a recording is published) or "paused".
    reason: str = ""

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "text": self.text, "seq": self.seq, "reason": self.reason})

    @classmethod
    def from_json(cls, raw: str) -> CaptionEvent:
        d = json.loads(raw)
        return cls(d["kind"], d.get("text", ""), int(d.get("seq", 0)), d.get("reason", ""))


@dataclass(frozen=True)
class Published:
    # The share's last final number after this call (0 when none yet).
    seq: int
    expires_at: float


class _Silent(Exception):
    """The subscription's connection did not answer in time."""


class ShareGone(Exception):
    """The share is unknown, expired or revoked (`revoked` says which)."""

    def __init__(self, revoked: bool) -> None:
        super().__init__("revoked" if revoked else "gone")
        self.revoked = revoked


class Inbox:
    """One viewer's pending events: finals in order (never dropped), only the latest interim (older ones are
    superseded), and a control event (end, resync). More than `max_finals` finals pending: they are dropped for a
    resync (the log has them)."""

    def __init__(self, max_finals: int = INBOX_MAX) -> None:
        self.max_finals = max_finals
        self.finals: deque[CaptionEvent] = deque()
        self.partial: CaptionEvent | None = None
        self.control: CaptionEvent | None = None
        self.overflow = False
        self._ready = asyncio.Event()

    def put(self, event: CaptionEvent) -> None:
        if event.kind == "final":
            self.finals.append(event)
            # The final ends the line the interim was showing.
            self.partial = None
            if len(self.finals) > self.max_finals:
                self.overflow = True
                self.finals.clear()
        elif event.kind == "partial":
            self.partial = event
        elif event.kind == "resync":
            # A flag of its own: a later state event must not overwrite it (the finals it stands for would be lost).
            self.overflow = True
        elif self.control is None or self.control.kind != "end":
            self.control = event
        self._ready.set()

    async def take(self, wait_s: float) -> list[CaptionEvent]:
        """What is pending (waiting at most `wait_s` seconds for something): a resync first, then the finals, then
        a state change, then the interim, then an end.

        A state change goes before the interim: a viewer shows no interim while the speaker is paused, so a
        recording's start and its first words, pending together, came out as the words (dropped) and then the start.
        A pause after an interim drops the interim either way (the recording's words were discarded or ended).

        A resync stands for finals this viewer never got, all older than the ones here: a final sent before it
        would move the viewer's place (its last seq) past them, and the catch-up from the log after that place
        would skip them. Sent first, the catch-up gives every final in order, and those here are dropped by seq."""
        if not self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._ready.wait()
        self._ready.clear()
        out: list[CaptionEvent] = []
        if self.overflow:
            self.overflow = False
            out.append(CaptionEvent("resync"))
        out += self.finals
        self.finals.clear()
        control, self.control = self.control, None
        if control is not None and control.kind == "state":
            out.append(control)
            control = None
        if self.partial is not None:
            out.append(self.partial)
            self.partial = None
        if control is not None:
            out.append(control)
        return out


class Fanout:
    """This process's viewers of each share."""

    def __init__(self) -> None:
        self._boxes: dict[str, set[Inbox]] = {}

    def add(self, share_id: str, box: Inbox) -> None:
        self._boxes.setdefault(share_id, set()).add(box)

    def remove(self, share_id: str, box: Inbox) -> None:
        boxes = self._boxes.get(share_id)
        if boxes is not None:
            boxes.discard(box)
            if not boxes:
                del self._boxes[share_id]

    def deliver(self, share_id: str, event: CaptionEvent) -> None:
        for box in self._boxes.get(share_id, ()):
            box.put(event)

    def everyone(self, event: CaptionEvent) -> None:
        for boxes in self._boxes.values():
            for box in boxes:
                box.put(event)

    def sizes(self) -> dict[str, int]:
        return {"caption_viewers": sum(len(b) for b in self._boxes.values())}


class Captions(Protocol):
    async def create(self, share: Share) -> None: ...

    async def get(self, share_id: str) -> Share | None:
        """The share (revoked ones too), or None when unknown or expired."""
        ...

    async def set_live(self, share_id: str, live: bool, grace_s: float) -> Share:
        """Recording (expires at the deadline) or not (expires `grace_s` from now, never later than the deadline;
        the interim is dropped, since no recording is saying it). Raises ShareGone."""
        ...

    async def publish(self, share_id: str, finals: list[tuple[int, str]], partial: str | None) -> Published:
        """Append the finals whose pub_seq is new (in order), then show `partial`. Raises ShareGone."""
        ...

    async def revoke(self, share_id: str) -> bool:
        """Delete the transcript, mark the share revoked and tell its viewers; False when it was not active."""
        ...

    async def backlog(self, share_id: str, after: int) -> tuple[list[CaptionEvent], CaptionEvent | None]:
        """Finals numbered above `after` still in the log, and the current interim."""
        ...

    def subscribe(self, share_id: str) -> contextlib.AbstractAsyncContextManager[Inbox]:
        """An inbox receiving the share's live events from the moment this is entered."""
        ...


class MemoryCaptions:
    def __init__(self, store: MemoryStore | None = None, *, inbox_max: int = INBOX_MAX) -> None:
        self.store = store or MemoryStore()
        self.inbox_max = inbox_max
        self.clock: Callable[[], float] = self.store.clock
        self.fanout = Fanout()
        self._shares: dict[str, Share] = {}
        self._logs: dict[str, deque[CaptionEvent]] = {}
        self._partials: dict[str, CaptionEvent] = {}
        self._seq: dict[str, int] = {}
        self._pub_seq: dict[str, int] = {}
        self.store.pruned(self.prune)

    def prune(self, now: float) -> None:
        for share_id, share in list(self._shares.items()):
            if share.expires_at <= now:
                self._drop(share_id)

    def _drop(self, share_id: str) -> None:
        self._shares.pop(share_id, None)
        self._forget_transcript(share_id)
        self._seq.pop(share_id, None)
        self._pub_seq.pop(share_id, None)

    def _forget_transcript(self, share_id: str) -> None:
        self._logs.pop(share_id, None)
        self._partials.pop(share_id, None)

    def sizes(self) -> dict[str, int]:
        return {"shares": len(self._shares), "share_logs": len(self._logs), **self.fanout.sizes()}

    async def create(self, share: Share) -> None:
        self.store.tick()
        self._shares[share.share_id] = share

    async def get(self, share_id: str) -> Share | None:
        share = self._shares.get(share_id)
        if share is not None and share.expires_at <= self.clock():
            self._drop(share_id)
            return None
        return share

    async def _active(self, share_id: str) -> Share:
        share = await self.get(share_id)
        if share is None or share.revoked:
            raise ShareGone(share is not None)
        return share

    async def set_live(self, share_id: str, live: bool, grace_s: float) -> Share:
        share = await self._active(share_id)
        expires = share.deadline if live else min(share.deadline, self.clock() + grace_s)
        share = replace(share, live=live, expires_at=expires)
        self._shares[share_id] = share
        if not live:
            # The recording ended: its last interim was never confirmed (a Cancel drops it), and a viewer joining
            # in the pause must not be shown it as the line being said now.
            self._partials.pop(share_id, None)
        self.fanout.deliver(share_id, CaptionEvent("state", reason="live" if live else "paused"))
        return share

    async def publish(self, share_id: str, finals: list[tuple[int, str]], partial: str | None) -> Published:
        share = await self._active(share_id)
        self.store.tick()
        log_ = self._logs.setdefault(share_id, deque(maxlen=LOG_MAX))
        for pub_seq, text in finals:
            if pub_seq <= self._pub_seq.get(share_id, 0):
                continue
            self._pub_seq[share_id] = pub_seq
            seq = self._seq.get(share_id, 0) + 1
            self._seq[share_id] = seq
            event = CaptionEvent("final", text, seq)
            log_.append(event)
            self._partials.pop(share_id, None)
            self.fanout.deliver(share_id, event)
        if partial is not None:
            event = CaptionEvent("partial", partial)
            self._partials[share_id] = event
            self.fanout.deliver(share_id, event)
        return Published(self._seq.get(share_id, 0), share.expires_at)

    async def revoke(self, share_id: str) -> bool:
        share = await self.get(share_id)
        if share is None or share.revoked:
            return False
        self._shares[share_id] = replace(share, revoked=True, live=False)
        self._forget_transcript(share_id)
        self.fanout.deliver(share_id, CaptionEvent("end", reason="revoked"))
        return True

    async def backlog(self, share_id: str, after: int) -> tuple[list[CaptionEvent], CaptionEvent | None]:
        if await self.get(share_id) is None:
            return [], None
        return [e for e in self._logs.get(share_id, ()) if e.seq > after], self._partials.get(share_id)

    @contextlib.asynccontextmanager
    async def subscribe(self, share_id: str) -> AsyncIterator[Inbox]:
        box = Inbox(self.inbox_max)
        self.fanout.add(share_id, box)
        try:
            yield box
        finally:
            self.fanout.remove(share_id, box)


# KEYS: record, log, partial. ARGV: now, channel, partial json or "", LOG_MAX, then pairs of (pub_seq, text).
# One script per publish, so numbering, logging and publishing are one step for every replica: a final is in the
# log exactly when it has been sent on the channel, in the same order.
_PUBLISH = """
local rec = redis.call('HMGET', KEYS[1], 'expires_at', 'revoked', 'seq', 'pub_seq')
if not rec[1] then return {-1} end
if rec[2] == '1' then return {-2} end
local expires = tonumber(rec[1])
local now = tonumber(ARGV[1])
if expires <= now then return {-1} end
local seq = tonumber(rec[3] or '0')
local hwm = tonumber(rec[4] or '0')
local channel = ARGV[2]
local ttl_ms = math.max(1, math.ceil((expires - now) * 1000))
for i = 5, #ARGV, 2 do
  local pub = tonumber(ARGV[i])
  if pub > hwm then
    hwm = pub
    seq = seq + 1
    local event = cjson.encode({kind='final', text=ARGV[i + 1], seq=seq, reason=''})
    redis.call('RPUSH', KEYS[2], event)
    redis.call('DEL', KEYS[3])
    redis.call('PUBLISH', channel, event)
  end
end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ttl_ms)
  redis.call('PUBLISH', channel, ARGV[3])
end
redis.call('HSET', KEYS[1], 'seq', seq, 'pub_seq', hwm)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ttl_ms) end
return {seq, rec[1]}
"""


# KEYS: record, log, partial. ARGV: now, channel, live ('1' or '0'), the end of the grace (now + grace, as written),
# the state event. One step that writes nothing unless the share is active: written after a separate read, an HSET
# on a record that expired in between made a new hash of two fields, which every later read tripped over. A recording
# that ends takes its interim with it (as MemoryCaptions.set_live).
# Returns {-1} (gone), {-2} (revoked), or {1, token_hash, created_at, deadline, expires_at}. expires_at is copied as
# written (the deadline, or ARGV[4]), never formatted by Lua, whose numbers print with 14 digits.
_SET_LIVE = """
local rec = redis.call('HMGET', KEYS[1], 'expires_at', 'revoked', 'token_hash', 'created_at', 'deadline')
if not (rec[1] and rec[3] and rec[4] and rec[5]) then return {-1} end
if rec[2] == '1' then return {-2} end
local now = tonumber(ARGV[1])
if tonumber(rec[1]) <= now then return {-1} end
local expires = rec[5]
if ARGV[3] == '0' and tonumber(ARGV[4]) < tonumber(rec[5]) then expires = ARGV[4] end
local ttl_ms = math.max(1, math.ceil((tonumber(expires) - now) * 1000))
redis.call('HSET', KEYS[1], 'live', ARGV[3], 'expires_at', expires)
if ARGV[3] == '0' then redis.call('DEL', KEYS[3]) end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl_ms) end
redis.call('PUBLISH', ARGV[2], ARGV[5])
return {1, rec[3], rec[4], rec[5], expires}
"""

# KEYS: record, log, partial. ARGV: now, channel, the end event. Nothing unless the share is active (as _SET_LIVE),
# so a revoke racing the expiry cannot leave a record without a TTL behind. Returns 1 when it revoked the share.
_REVOKE = """
local rec = redis.call('HMGET', KEYS[1], 'expires_at', 'revoked', 'token_hash')
if not (rec[1] and rec[3]) or rec[2] == '1' or tonumber(rec[1]) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'revoked', 1, 'live', 0)
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""

# A share's record without these is no share (a hash an older version recreated in a race with the expiry).
_REQUIRED = ("token_hash", "created_at", "deadline", "expires_at")


class RedisCaptions:
    """A hash per share (its record), a list of its last LOG_MAX finals, a string for its interim, all expiring with
    the share; live events on one channel per share. Each process holds one pattern subscription to every share's
    channel and hands events to its own viewers (not a Redis connection per viewer)."""

    def __init__(self, store: RedisStore, *, inbox_max: int = INBOX_MAX, pubsub_idle_s: float = PUBSUB_IDLE_S) -> None:
        self.store = store
        self.clock = store.clock
        self.inbox_max = inbox_max
        self.pubsub_idle_s = pubsub_idle_s
        self.fanout = Fanout()
        self._publish = store.redis.register_script(_PUBLISH)
        self._set_live = store.redis.register_script(_SET_LIVE)
        self._revoke = store.redis.register_script(_REVOKE)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._viewers = 0

    @staticmethod
    def key(share_id: str, part: str = "") -> str:
        return PREFIX + "cap:" + share_id + (":" + part if part else "")

    @staticmethod
    def channel(share_id: str) -> str:
        return PREFIX + "cap-live:" + share_id

    def _keys(self, share_id: str) -> list[str]:
        """The keys the scripts take: record, log, partial."""
        return [self.key(share_id), self.key(share_id, "log"), self.key(share_id, "partial")]

    def sizes(self) -> dict[str, int]:
        return self.fanout.sizes()

    def _ttl_ms(self, expires_at: float) -> int:
        return max(1, int((expires_at - self.clock()) * 1000))

    async def create(self, share: Share) -> None:
        fields = {
            "token_hash": share.token_hash,
            "created_at": repr(share.created_at),
            "deadline": repr(share.deadline),
            "expires_at": repr(share.expires_at),
            "live": int(share.live),
            "revoked": int(share.revoked),
            "seq": 0,
            "pub_seq": 0,
        }
        key = self.key(share.share_id)
        async with self.store.guard(), self.store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, self._ttl_ms(share.expires_at))
            await pipe.execute()

    async def get(self, share_id: str) -> Share | None:
        async with self.store.guard():
            rec = await self.store.redis.hgetall(self.key(share_id))
        if any(field not in rec for field in _REQUIRED) or float(rec["expires_at"]) <= self.clock():
            return None
        return Share(
            share_id,
            rec["token_hash"],
            float(rec["created_at"]),
            float(rec["deadline"]),
            float(rec["expires_at"]),
            rec.get("live") == "1",
            rec.get("revoked") == "1",
        )

    async def set_live(self, share_id: str, live: bool, grace_s: float) -> Share:
        now = self.clock()
        event = CaptionEvent("state", reason="live" if live else "paused").to_json()
        args = [now, self.channel(share_id), int(live), repr(now + grace_s), event]
        async with self.store.guard():
            result = await self._set_live(keys=self._keys(share_id), args=args)
        if int(result[0]) < 0:
            raise ShareGone(int(result[0]) == -2)
        _, token, created_at, deadline, expires_at = result
        return Share(share_id, str(token), float(created_at), float(deadline), float(expires_at), live)

    async def publish(self, share_id: str, finals: list[tuple[int, str]], partial: str | None) -> Published:
        shown = CaptionEvent("partial", partial).to_json() if partial is not None else ""
        args: list[Any] = [self.clock(), self.channel(share_id), shown, LOG_MAX]
        for pub_seq, text in finals:
            args += [pub_seq, text]
        async with self.store.guard():
            result = await self._publish(keys=self._keys(share_id), args=args)
        if int(result[0]) < 0:
            raise ShareGone(int(result[0]) == -2)
        return Published(int(result[0]), float(result[1]))

    async def revoke(self, share_id: str) -> bool:
        args = [self.clock(), self.channel(share_id), CaptionEvent("end", reason="revoked").to_json()]
        async with self.store.guard():
            return int(await self._revoke(keys=self._keys(share_id), args=args)) == 1

    async def backlog(self, share_id: str, after: int) -> tuple[list[CaptionEvent], CaptionEvent | None]:
        async with self.store.guard():
            raw = await self.store.redis.lrange(self.key(share_id, "log"), 0, -1)
            partial = await self.store.redis.get(self.key(share_id, "partial"))
        finals = [e for e in (CaptionEvent.from_json(r) for r in raw) if e.seq > after]
        return finals, CaptionEvent.from_json(partial) if partial else None

    @contextlib.asynccontextmanager
    async def subscribe(self, share_id: str) -> AsyncIterator[Inbox]:
        await self._ensure_listening()
        box = Inbox(self.inbox_max)
        self.fanout.add(share_id, box)
        self._viewers += 1
        try:
            yield box
        finally:
            self._viewers -= 1
            self.fanout.remove(share_id, box)

    async def _ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            self._subscribed.clear()
            self._listener = asyncio.create_task(self._listen(), name="captions-pubsub")
        try:
            async with asyncio.timeout(self.store.timeout_s):
                await self._subscribed.wait()
        except TimeoutError:
            raise StateUnavailable("the shared state store did not answer (captions subscription)") from None

    async def _listen(self) -> None:
        """The process's one subscription. After a lost connection every viewer here is told to resync (read the
        log again), since live events sent meanwhile never reached this process. A connection that stays silent is
        pinged, and one that does not answer (its Redis gone without closing it) is replaced the same way."""
        prefix = self.channel("")
        timeout_s = self.store.timeout_s
        idle_s = self.pubsub_idle_s
        loop = asyncio.get_running_loop()
        first = True
        failures = 0
        told_at = 0.0
        while True:
            # Subscribe confirmations are read here, not ignored: they prove the subscription is in place (the pool
            # may hand over a connection that died while idle) before viewers rely on it.
            pubsub = self.store.redis.pubsub()
            try:
                await pubsub.psubscribe(prefix + "*")
                await self._confirmed(pubsub, timeout_s)
                if not first:
                    self.fanout.everyone(CaptionEvent("resync"))
                first = False
                if failures:
                    log.warning("captions subscription back after %d failed tries", failures)
                failures = 0
                self._subscribed.set()
                heard = loop.time()
                pinged: float | None = None
                while True:
                    message = await pubsub.get_message(timeout=min(1.0, idle_s, timeout_s))
                    now = loop.time()
                    if message is not None:
                        # Anything heard (an event, the pong) shows the connection is alive.
                        heard, pinged = now, None
                        if message.get("type") == "pmessage":
                            share_id = str(message["channel"])[len(prefix) :]
                            self.fanout.deliver(share_id, CaptionEvent.from_json(str(message["data"])))
                    elif pinged is not None and now - pinged >= timeout_s:
                        raise _Silent(f"no answer to a ping in {timeout_s:g} s")
                    elif pinged is None and now - heard >= idle_s:
                        async with asyncio.timeout(timeout_s):
                            await pubsub.ping()
                        pinged = now
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped, slow or silent connection: reconnect, never give up on viewers
                self._subscribed.clear()
                reason = str(exc) if isinstance(exc, _Silent) else type(exc).__name__
                if self._viewers == 0:
                    # Nobody here to deliver to: the next viewer's subscribe starts a new listener. Retrying for
                    # as long as Redis is down would only fill the log.
                    log.warning("captions subscription lost (%s); none of this process's viewers is left", reason)
                    return
                failures += 1
                # Told at the first failure, then once a minute while it lasts (at most a few lines an hour).
                if failures == 1 or loop.time() - told_at >= SUBSCRIBE_TELL_EVERY_S:
                    told_at = loop.time()
                    log.warning("captions subscription lost (%s, try %d); reconnecting", reason, failures)
                # 0.5 s, doubling to 5 s: viewers resync as soon as it is back, and an outage is not hammered.
                await asyncio.sleep(min(SUBSCRIBE_RETRY_MAX_S, 0.5 * 2 ** min(failures - 1, 8)))
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    @staticmethod
    async def _confirmed(pubsub: Any, timeout_s: float) -> None:
        """Wait for Redis to confirm the subscription; _Silent when it does not within `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    message = await pubsub.get_message(timeout=timeout_s)
                    if message is not None and message.get("type") == "psubscribe":
                        return
        except TimeoutError:
            raise _Silent(f"no answer to the subscription in {timeout_s:g} s") from None

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener


def build_captions(store: Store, *, inbox_max: int = INBOX_MAX, pubsub_idle_s: float = PUBSUB_IDLE_S) -> Captions:
    """The captions on `store`; `pubsub_idle_s` applies to Redis only (memory has no subscription to watch)."""
    if isinstance(store, MemoryStore):
        return MemoryCaptions(store, inbox_max=inbox_max)
    return RedisCaptions(store, inbox_max=inbox_max, pubsub_idle_s=pubsub_idle_s)
