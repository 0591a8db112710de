"""Shared state: what every process of one deployment must agree on, one small interface per concern.

- `RateLimits`: requests per client and minute (the `limits` library over its memory or Redis storage);
- `Ledger`: what each client holds (a Wiro task, an unused local grant, an open local stream), each entry with an
  expiry, so an entry whose holder died (a crashed page, a SIGKILLed replica) lapses by itself;
- `SpentGrants`: grants already used (a local grant opens one stream, on whichever replica the socket lands).

A provider's own concern lives with the provider and is built through `State.concern` (the Wiro task registry and
nonce: server/providers/wiro_tasks.py), so this module knows no provider. Each concern has a memory and a Redis
implementation, held to one contract by tests/test_state.py; each owns the format of its keys.

`MemoryState` keeps everything in this process (the default: `make run` needs no Redis). `RedisState` keeps it in
Redis (`APP_REDIS_URL`). A Redis that is down or slow raises `StateUnavailable` within `timeout_s`; callers that
mint answer 503 with Retry-After, and redis-py reconnects on the next call, so the app recovers by itself.

Times here are Unix seconds (time.time): a deadline written by one host is read by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

# How long a state call may take before the request that needed it is answered 503.
DEFAULT_TIMEOUT_S = 2.0
# Retry-After sent when the state store is unavailable.
UNAVAILABLE_RETRY_S = 5.0
# The in-memory tables drop expired entries at least this often (operations on the table).
PRUNE_EVERY = 1024
# Replicas' clocks differ: a spent grant stays marked this much longer than its expiry by the spending process's
# clock, so a replica whose clock is behind (and still accepts the token) cannot open a second stream with it.
CLOCK_SKEW_S = 60.0
# Every Redis key of this app starts with it.
PREFIX = "stt:"

T = TypeVar("T")


class StateUnavailable(Exception):
    """The shared state store did not answer (down, slow, refused). Never carries a secret or a URL."""


# --- the stores: where the concerns keep their data ------------------------------------------------------------


class MemoryStore:
    """This process's memory: nothing to connect to, nothing shared. Its tables register a `prune` that drops
    their expired entries; `tick` runs them all every PRUNE_EVERY writes to any table, so each stays bounded by what
    is live however the writes are spread between them."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._pruners: list[Callable[[float], None]] = []
        self._ops = 0

    def pruned(self, prune: Callable[[float], None]) -> None:
        self._pruners.append(prune)

    def tick(self) -> float:
        """The time now, counting one write (and pruning every table when it is time)."""
        now = self.clock()
        self._ops += 1
        if self._ops % PRUNE_EVERY == 0:
            self.prune(now)
        return now

    def prune(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for prune in self._pruners:
            prune(now)

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        yield

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class RedisStore:
    """One Redis connection pool, shared by every concern. Each call under `guard()` is bounded by `timeout_s`."""

    shared = True

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, clock: Callable[[], float] = time.time):
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.clock = clock
        self.timeout_s = timeout_s
        # No retries inside redis-py: a dead Redis must fail within timeout_s, and the next call reconnects anyway.
        self.redis: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self.timeout_s):
                yield
        except (TimeoutError, RedisError, StorageError, OSError) as exc:
            raise StateUnavailable(f"the shared state store did not answer ({type(exc).__name__})") from None

    async def ping(self) -> None:
        async with self.guard():
            await self.redis.ping()

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.aclose()


Store = MemoryStore | RedisStore


# --- rate limits -----------------------------------------------------------------------------------------------


class RateLimits(Protocol):
    async def hit(self, name: str, key: str, per_minute: int) -> float | None:
        """Count one request of `key` against `per_minute`; None when allowed, else seconds to wait."""
        ...


class LimitsRateLimits:
    """Sliding-window counters of the `limits` library: the same code over its memory or its Redis storage."""

    def __init__(self, store: Store) -> None:
        self.store = store
        storage: Storage
        if isinstance(store, RedisStore):
            url = store.url
            storage = RedisStorage(
                "async+" + url if url.startswith(("redis://", "rediss://")) else url,
                implementation="redispy",
                # One pool for both: the same timeouts, the same reconnects. (limits types its options as scalars.)
                connection_pool=store.redis.connection_pool,
                key_prefix=PREFIX + "limits",
                wrap_exceptions=True,
            )
        else:
            storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, name: str, key: str, per_minute: int) -> float | None:
        item = RateLimitItemPerMinute(per_minute)
        async with self.store.guard():
            if await self._limiter.hit(item, name, key):
                return None
            stats = await self._limiter.get_window_stats(item, name, key)
        return max(1.0, stats.reset_time - self.store.clock())


# --- the open-session ledger -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    admitted: bool
    held: int
    # Seconds until the oldest held entry lapses (when refused).
    retry_after: float = 0.0


class Ledger(Protocol):
    """Per scope (one client's sessions of one pool: `ledger_scope`), entries that lapse at their expiry."""

    async def admit(self, scope: str, key: str, limit: int, ttl_s: float) -> Admission:
        """Add `key` to `scope` unless `limit` unexpired entries are already there (atomic check-and-add)."""
        ...

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        """Add or extend `key` in `scope` for `ttl_s` more seconds (an open stream's lease), whatever the count."""
        ...

    async def release(self, scope: str, key: str) -> bool:
        """Remove `key`; True when it was held."""
        ...

    async def held(self, scope: str) -> int:
        """Unexpired entries in `scope`."""
        ...


def ledger_scope(pool: str, client: str) -> str:
    """The ledger one client's sessions of a pool (SessionPolicy.pool) count in: each pool has its own cap."""
    return f"{pool}:{client}"


def ledger_key(provider: str, session_id: str) -> str:
    """A granted session's entry (reserved at the grant, released when it ends or is used)."""
    return f"{provider}/{session_id}"


class MemoryLedger:
    """Pruned of expired entries as the store is used, so it stays bounded by what is live (empty scopes are
    dropped)."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.clock = self.store.clock
        self._scopes: dict[str, dict[str, float]] = {}
        self.store.pruned(self.prune)

    def prune(self, now: float) -> None:
        for scope in list(self._scopes):
            live = {k: exp for k, exp in self._scopes[scope].items() if exp > now}
            if live:
                self._scopes[scope] = live
            else:
                del self._scopes[scope]

    def sizes(self) -> dict[str, int]:
        return {"scopes": len(self._scopes)}

    async def admit(self, scope: str, key: str, limit: int, ttl_s: float) -> Admission:
        now = self.store.tick()
        live = {k: exp for k, exp in self._scopes.get(scope, {}).items() if exp > now}
        if len(live) >= limit:
            self._scopes[scope] = live
            return Admission(False, len(live), max(1.0, min(live.values()) - now))
        live[key] = now + ttl_s
        self._scopes[scope] = live
        return Admission(True, len(live))

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        now = self.store.tick()
        self._scopes.setdefault(scope, {})[key] = now + ttl_s

    async def release(self, scope: str, key: str) -> bool:
        held = self._scopes.get(scope)
        if held is None:
            return False
        found = held.pop(key, None)
        if not held:
            del self._scopes[scope]
        return found is not None and found > self.clock()

    async def held(self, scope: str) -> int:
        now = self.clock()
        return sum(1 for exp in self._scopes.get(scope, {}).values() if exp > now)


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


class RedisLedger:
    """A sorted set per scope (member: the entry's key, score: its expiry), changed by Lua scripts so a check and
    its add are one step for every replica; the set itself expires just after its last entry."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._admit = store.redis.register_script(_ADMIT)
        self._hold = store.redis.register_script(_HOLD)
        self._release = store.redis.register_script(_RELEASE)

    @staticmethod
    def key(scope: str) -> str:
        return PREFIX + "ledger:" + scope

    async def admit(self, scope: str, key: str, limit: int, ttl_s: float) -> Admission:
        now = self.store.clock()
        async with self.store.guard():
            ok, n, first = await self._admit(keys=[self.key(scope)], args=[now, limit, key, now + ttl_s])
        if int(ok):
            return Admission(True, int(n))
        return Admission(False, int(n), max(1.0, float(first) - now))

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        async with self.store.guard():
            await self._hold(keys=[self.key(scope)], args=[key, self.store.clock() + ttl_s])

    async def release(self, scope: str, key: str) -> bool:
        async with self.store.guard():
            return bool(int(await self._release(keys=[self.key(scope)], args=[key, self.store.clock()])))

    async def held(self, scope: str) -> int:
        async with self.store.guard():
            return int(await self.store.redis.zcount(self.key(scope), f"({self.store.clock()}", "+inf"))


# --- spent grants ----------------------------------------------------------------------------------------------


class SpentGrants(Protocol):
    async def spend(self, grant_id: str, expires_at: float) -> bool:
        """Mark a grant used until it expires; False when it already was."""
        ...


class MemorySpentGrants:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self._spent: dict[str, float] = {}
        self.store.pruned(self.prune)

    def prune(self, now: float) -> None:
        self._spent = {k: exp for k, exp in self._spent.items() if exp > now}

    def sizes(self) -> dict[str, int]:
        return {"spent": len(self._spent)}

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        now = self.store.tick()
        if self._spent.get(grant_id, 0.0) > now:
            return False
        self._spent[grant_id] = expires_at
        return True


class RedisSpentGrants:
    """One key per spent grant, set only if absent, expiring with the grant (plus the replicas' clock skew)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    @staticmethod
    def key(grant_id: str) -> str:
        return PREFIX + "spent:" + grant_id

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        ttl_ms = max(1, int((expires_at - self.store.clock() + CLOCK_SKEW_S) * 1000))
        async with self.store.guard():
            return bool(await self.store.redis.set(self.key(grant_id), "1", nx=True, px=ttl_ms))


def _ledger(store: Store) -> Ledger:
    return MemoryLedger(store) if isinstance(store, MemoryStore) else RedisLedger(store)


def _spent_grants(store: Store) -> SpentGrants:
    return MemorySpentGrants(store) if isinstance(store, MemoryStore) else RedisSpentGrants(store)


# --- the bundle ------------------------------------------------------------------------------------------------


@runtime_checkable
class Sized(Protocol):
    def sizes(self) -> dict[str, int]: ...


class State:
    """One deployment's shared state: the store, and a typed object per concern kept in it. A concern a provider
    owns is built on first use by `concern` (one per state, so every user of the state sees the same one)."""

    def __init__(
        self,
        store: Store,
        *,
        rate_limits: RateLimits | None = None,
        ledger: Ledger | None = None,
        spent: SpentGrants | None = None,
        concerns: Mapping[str, object] | None = None,
    ) -> None:
        self.store = store
        self._concerns: dict[str, object] = dict(concerns or {})
        if ledger is not None:
            self._concerns["ledger"] = ledger
        if spent is not None:
            self._concerns["spent"] = spent
        self.rate_limits: RateLimits = rate_limits or LimitsRateLimits(store)
        self.ledger = self.concern("ledger", _ledger)
        self.spent = self.concern("spent", _spent_grants)

    @property
    def shared(self) -> bool:
        """True when other processes see the same state (so one process's shutdown need not release what it
        holds)."""
        return self.store.shared

    @property
    def clock(self) -> Callable[[], float]:
        return self.store.clock

    def concern(self, name: str, build: Callable[[Store], T]) -> T:
        """The concern `name` of this state, built from the store by `build` the first time."""
        if name not in self._concerns:
            self._concerns[name] = build(self.store)
        return cast(T, self._concerns[name])

    def sizes(self) -> dict[str, int]:
        """Entry counts of the in-memory tables (for tests of boundedness)."""
        out: dict[str, int] = {}
        for concern in self._concerns.values():
            if isinstance(concern, Sized):
                out.update(concern.sizes())
        return out

    async def ping(self) -> None:
        """Raise StateUnavailable unless the store answers now (for /readyz)."""
        await self.store.ping()

    async def aclose(self) -> None:
        await self.store.aclose()


class MemoryState(State):
    """This process's state (every concern in memory). A table given here (a test's failing one) should be built on
    `store`, so the state prunes it."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        ledger: Ledger | None = None,
        spent: SpentGrants | None = None,
        concerns: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(MemoryStore(clock), ledger=ledger, spent=spent, concerns=concerns)

    def prune(self) -> None:
        assert isinstance(self.store, MemoryStore)
        self.store.prune()


class RedisState(State):
    """The state in Redis, shared by every process given the same URL. Each call is bounded by `timeout_s`."""

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, clock: Callable[[], float] = time.time):
        super().__init__(RedisStore(url, timeout_s=timeout_s, clock=clock))

    @property
    def redis(self) -> Any:
        """The Redis client (tests read keys with it)."""
        assert isinstance(self.store, RedisStore)
        return self.store.redis


def open_state(redis_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> State:
    """The state for these settings: Redis when a URL is given, else this process's memory."""
    return RedisState(redis_url, timeout_s=timeout_s) if redis_url else MemoryState()
