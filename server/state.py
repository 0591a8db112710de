"""Shared state: what every process of one deployment must agree on.

- rate limits per client (the `limits` library: its async memory storage, or its async Redis storage);
- the open-session ledger: what each client holds (a Wiro task, an unused local grant, an open local stream), each
  entry with an expiry, so an entry whose holder died (a crashed page, a SIGKILLed replica) lapses by itself;
- spent local grants (a grant opens one stream, on whichever replica the socket lands);
- the Wiro task registry (any replica ends any task; every replica's reaper kills tasks past their deadline);
- the Wiro nonce, increasing across replicas.

`MemoryState` keeps it in this process (the default: `make run` needs no Redis). `RedisState` keeps it in Redis
(`APP_REDIS_URL`). A Redis that is down or slow raises `StateUnavailable` within `timeout_s`; callers that mint
answer 503 with Retry-After, and redis-py reconnects on the next call, so the app recovers by itself.

Times here are Unix seconds (time.time): a deadline written by one host is read by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

# How long a state call may take before the request that needed it is answered 503.
DEFAULT_TIMEOUT_S = 2.0
# Retry-After sent when the state store is unavailable.
UNAVAILABLE_RETRY_S = 5.0
# The in-memory ledger and spent-grant table drop expired entries at least this often (operations).
PRUNE_EVERY = 1024
# Replicas' clocks differ: a spent grant stays marked this much longer than its expiry by the spending process's
# clock, so a replica whose clock is behind (and still accepts the token) cannot open a second stream with it.
CLOCK_SKEW_S = 60.0


class StateUnavailable(Exception):
    """The shared state store did not answer (down, slow, refused). Never carries a secret or a URL."""


@dataclass(frozen=True)
class Admission:
    admitted: bool
    held: int
    # Seconds until the oldest held entry lapses (when refused).
    retry_after: float = 0.0


@dataclass(frozen=True)
class WiroTask:
    task_id: str
    token: str
    handle: str
    deadline: float  # Unix seconds
    # Kills tried and failed so far, by any process (counted in the shared record, so a replica that gives up on
    # a task leaves nothing of it behind in its own memory).
    attempts: int = 0


def ledger_scope(pool: str, client: str) -> str:
    """The ledger one client's sessions of a pool (SessionPolicy.pool) count in: each pool has its own cap."""
    return f"{pool}:{client}"


def ledger_key(provider: str, session_id: str) -> str:
    """A granted session's entry (reserved at the grant, released when it ends or is used)."""
    return f"{provider}/{session_id}"


class State:
    """The operations; subclasses keep the data. Rate limiting is the same code over either `limits` storage."""

    # True when other processes see the same state (so one process's shutdown need not release what it holds).
    shared = False

    def __init__(self, storage: Storage, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    async def rate_limit(self, name: str, key: str, per_minute: int) -> float | None:
        """Count one request of `key` against `per_minute`; None when allowed, else seconds to wait."""
        item = RateLimitItemPerMinute(per_minute)
        async with self.guard():
            if await self._limiter.hit(item, name, key):
                return None
            stats = await self._limiter.get_window_stats(item, name, key)
        return max(1.0, stats.reset_time - self.clock())

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        yield

    # Subclasses: ledger, spent grants, Wiro registry, nonce.

    async def admit(self, scope: str, key: str, limit: int, ttl_s: float) -> Admission:
        """Add `key` to `scope` unless `limit` unexpired entries are already there (atomic check-and-add)."""
        raise NotImplementedError

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        """Add or extend `key` in `scope` for `ttl_s` more seconds (an open stream's lease), whatever the count."""
        raise NotImplementedError

    async def release(self, scope: str, key: str) -> bool:
        """Remove `key`; True when it was held."""
        raise NotImplementedError

    async def held(self, scope: str) -> int:
        raise NotImplementedError

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        """Mark a grant used until it expires; False when it already was."""
        raise NotImplementedError

    async def put_task(self, task: WiroTask) -> None:
        raise NotImplementedError

    async def task_by_handle(self, handle: str) -> WiroTask | None:
        raise NotImplementedError

    async def due_tasks(self, now: float, limit: int = 50) -> list[WiroTask]:
        """Tasks whose deadline has passed, whoever started them."""
        raise NotImplementedError

    async def claim_task(self, task_id: str, lease_s: float) -> bool:
        """Take the right to kill `task_id` for `lease_s` seconds; False when another caller holds it. A replica
        that dies while killing loses its lease, and the task is taken again."""
        raise NotImplementedError

    async def postpone_task(self, task_id: str, deadline: float) -> None:
        """A kill failed: count the attempt and try again at `deadline`. The claim is kept until then: a sweep that
        read the task before this call must not kill it again at once (and count an attempt on a stale copy)."""
        raise NotImplementedError

    async def drop_task(self, task: WiroTask) -> bool:
        """Forget the task; True when it was still registered."""
        raise NotImplementedError

    async def next_nonce(self, now_ms: int) -> int:
        """max(now_ms, the last nonce + 1), atomically across every process sharing this state."""
        raise NotImplementedError

    async def ping(self) -> None:
        """Raise StateUnavailable unless the store answers now (for /readyz)."""
        return None

    async def aclose(self) -> None:
        return None


class MemoryState(State):
    """One process's state. Every table is pruned of expired entries as it is used, so it stays bounded by what is
    live (each entry lapses by its expiry; empty scopes are dropped)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(MemoryStorage(), clock)
        self._ledger: dict[str, dict[str, float]] = {}
        self._spent: dict[str, float] = {}
        self._tasks: dict[str, WiroTask] = {}
        self._handles: dict[str, str] = {}
        self._claims: dict[str, float] = {}
        self._nonce = 0
        self._ops = 0

    def _tick(self) -> float:
        now = self.clock()
        self._ops += 1
        if self._ops % PRUNE_EVERY == 0:
            self.prune(now)
        return now

    def prune(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for scope in list(self._ledger):
            live = {k: exp for k, exp in self._ledger[scope].items() if exp > now}
            if live:
                self._ledger[scope] = live
            else:
                del self._ledger[scope]
        self._spent = {k: exp for k, exp in self._spent.items() if exp > now}
        self._claims = {k: exp for k, exp in self._claims.items() if exp > now}

    def sizes(self) -> dict[str, int]:
        """Entry counts (for tests of boundedness)."""
        return {"scopes": len(self._ledger), "spent": len(self._spent), "tasks": len(self._tasks)}

    async def admit(self, scope: str, key: str, limit: int, ttl_s: float) -> Admission:
        now = self._tick()
        live = {k: exp for k, exp in self._ledger.get(scope, {}).items() if exp > now}
        if len(live) >= limit:
            self._ledger[scope] = live
            return Admission(False, len(live), max(1.0, min(live.values()) - now))
        live[key] = now + ttl_s
        self._ledger[scope] = live
        return Admission(True, len(live))

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        now = self._tick()
        self._ledger.setdefault(scope, {})[key] = now + ttl_s

    async def release(self, scope: str, key: str) -> bool:
        held = self._ledger.get(scope)
        if held is None:
            return False
        found = held.pop(key, None)
        if not held:
            del self._ledger[scope]
        return found is not None and found > self.clock()

    async def held(self, scope: str) -> int:
        now = self.clock()
        return sum(1 for exp in self._ledger.get(scope, {}).values() if exp > now)

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        now = self._tick()
        if self._spent.get(grant_id, 0.0) > now:
            return False
        self._spent[grant_id] = expires_at
        return True

    async def put_task(self, task: WiroTask) -> None:
        self._tasks[task.task_id] = task
        self._handles[task.handle] = task.task_id

    async def task_by_handle(self, handle: str) -> WiroTask | None:
        task_id = self._handles.get(handle)
        return self._tasks.get(task_id) if task_id is not None else None

    async def due_tasks(self, now: float, limit: int = 50) -> list[WiroTask]:
        return [t for t in self._tasks.values() if t.deadline <= now][:limit]

    async def claim_task(self, task_id: str, lease_s: float) -> bool:
        now = self.clock()
        if task_id not in self._tasks or self._claims.get(task_id, 0.0) > now:
            return False
        self._claims[task_id] = now + lease_s
        return True

    async def postpone_task(self, task_id: str, deadline: float) -> None:
        task = self._tasks.get(task_id)
        if task is not None:
            self._tasks[task_id] = WiroTask(task.task_id, task.token, task.handle, deadline, task.attempts + 1)
            self._claims[task_id] = deadline
        else:
            self._claims.pop(task_id, None)

    async def drop_task(self, task: WiroTask) -> bool:
        self._claims.pop(task.task_id, None)
        self._handles.pop(task.handle, None)
        return self._tasks.pop(task.task_id, None) is not None

    async def next_nonce(self, now_ms: int) -> int:
        self._nonce = max(now_ms, self._nonce + 1)
        return self._nonce


_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, n, first[2]}
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(last[2])) + 1)
return {1, n + 1, '0'}
"""

_HOLD = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(last[2])) + 1)
return 1
"""

_RELEASE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then return 1 end
return 0
"""

_NONCE = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = math.max(tonumber(ARGV[1]), last + 1)
redis.call('SET', KEYS[1], string.format('%d', n))
return string.format('%d', n)
"""

# A task dropped meanwhile (killed by another process) stays dropped: HSET alone would bring back a key that
# holds only a deadline, with no expiry, that nothing would ever delete.
_POSTPONE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'deadline', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
else
  redis.call('DEL', KEYS[3])
end
return 1
"""

PREFIX = "stt:"


class RedisState(State):
    """The state in Redis, shared by every process given the same URL. Each call is bounded by `timeout_s`."""

    shared = True

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, clock: Callable[[], float] = time.time):
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.timeout_s = timeout_s
        # No retries inside redis-py: a dead Redis must fail within timeout_s, and the next call reconnects anyway.
        self.redis: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        storage = RedisStorage(
            "async+" + url if url.startswith(("redis://", "rediss://")) else url,
            implementation="redispy",
            # One pool for both: the same timeouts, the same reconnects. (limits types its options as scalars.)
            connection_pool=self.redis.connection_pool,  # type: ignore[arg-type]
            key_prefix=PREFIX + "limits",
            wrap_exceptions=True,
        )
        super().__init__(storage, clock)
        self._admit = self.redis.register_script(_ADMIT)
        self._hold = self.redis.register_script(_HOLD)
        self._release = self.redis.register_script(_RELEASE)
        self._nonce = self.redis.register_script(_NONCE)
        self._postpone = self.redis.register_script(_POSTPONE)

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self.timeout_s):
                yield
        except (TimeoutError, RedisError, StorageError, OSError) as exc:
            raise StateUnavailable(f"the shared state store did not answer ({type(exc).__name__})") from None

    async def admit(self, scope: str, key: str, limit: int, ttl_s: float) -> Admission:
        now = self.clock()
        async with self.guard():
            ok, n, first = await self._admit(keys=[PREFIX + "ledger:" + scope], args=[now, limit, key, now + ttl_s])
        if int(ok):
            return Admission(True, int(n))
        return Admission(False, int(n), max(1.0, float(first) - now))

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        async with self.guard():
            await self._hold(keys=[PREFIX + "ledger:" + scope], args=[key, self.clock() + ttl_s])

    async def release(self, scope: str, key: str) -> bool:
        async with self.guard():
            return bool(int(await self._release(keys=[PREFIX + "ledger:" + scope], args=[key, self.clock()])))

    async def held(self, scope: str) -> int:
        async with self.guard():
            return int(await self.redis.zcount(PREFIX + "ledger:" + scope, f"({self.clock()}", "+inf"))

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        ttl_ms = max(1, int((expires_at - self.clock() + CLOCK_SKEW_S) * 1000))
        async with self.guard():
            return bool(await self.redis.set(PREFIX + "spent:" + grant_id, "1", nx=True, px=ttl_ms))

    async def put_task(self, task: WiroTask) -> None:
        # The handle outlives the deadline a little, so an end call racing the reaper still finds the task.
        expire_at = int(task.deadline) + 3600
        async with self.guard():
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(
                PREFIX + "wiro:task:" + task.task_id,
                mapping={"token": task.token, "handle": task.handle, "deadline": repr(task.deadline)},
            )
            pipe.expireat(PREFIX + "wiro:task:" + task.task_id, expire_at)
            pipe.set(PREFIX + "wiro:handle:" + task.handle, task.task_id, exat=expire_at)
            pipe.zadd(PREFIX + "wiro:deadlines", {task.task_id: task.deadline})
            await pipe.execute()

    async def _task(self, task_id: str) -> WiroTask | None:
        data = await self.redis.hgetall(PREFIX + "wiro:task:" + task_id)
        if not data:
            return None
        return WiroTask(task_id, data["token"], data["handle"], float(data["deadline"]), int(data.get("attempts", 0)))

    async def task_by_handle(self, handle: str) -> WiroTask | None:
        async with self.guard():
            task_id = await self.redis.get(PREFIX + "wiro:handle:" + handle)
            return await self._task(task_id) if task_id else None

    async def due_tasks(self, now: float, limit: int = 50) -> list[WiroTask]:
        async with self.guard():
            ids = await self.redis.zrangebyscore(PREFIX + "wiro:deadlines", "-inf", now, start=0, num=limit)
            tasks = [await self._task(i) for i in ids]
            gone = [i for i, t in zip(ids, tasks, strict=True) if t is None]
            if gone:
                await self.redis.zrem(PREFIX + "wiro:deadlines", *gone)
        return [t for t in tasks if t is not None]

    async def claim_task(self, task_id: str, lease_s: float) -> bool:
        async with self.guard():
            return bool(await self.redis.set(PREFIX + "wiro:claim:" + task_id, "1", nx=True, px=int(lease_s * 1000)))

    async def postpone_task(self, task_id: str, deadline: float) -> None:
        keys = [PREFIX + "wiro:task:" + task_id, PREFIX + "wiro:deadlines", PREFIX + "wiro:claim:" + task_id]
        async with self.guard():
            hold_ms = max(1, int((deadline - self.clock()) * 1000))
            await self._postpone(keys=keys, args=[task_id, repr(deadline), hold_ms])

    async def drop_task(self, task: WiroTask) -> bool:
        async with self.guard():
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(PREFIX + "wiro:task:" + task.task_id)
            pipe.zrem(PREFIX + "wiro:deadlines", task.task_id)
            pipe.delete(PREFIX + "wiro:handle:" + task.handle)
            pipe.delete(PREFIX + "wiro:claim:" + task.task_id)
            removed, *_ = await pipe.execute()
        return bool(removed)

    async def next_nonce(self, now_ms: int) -> int:
        async with self.guard():
            return int(await self._nonce(keys=[PREFIX + "wiro:nonce"], args=[now_ms]))

    async def ping(self) -> None:
        async with self.guard():
            await self.redis.ping()

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.aclose()


def open_state(redis_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> State:
    """The state for these settings: Redis when a URL is given, else this process's memory."""
    return RedisState(redis_url, timeout_s=timeout_s) if redis_url else MemoryState()
