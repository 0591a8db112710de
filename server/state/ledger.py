"""The open-session ledger: per scope (one client's sessions of one pool), entries that lapse at their expiry, so
an entry whose holder died (a crashed page, a SIGKILLed replica) frees its place by itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from server.state.clients import wider_clients
from server.state.store import PREFIX, MemoryStore, RedisStore, StateUnavailable, Store

T = TypeVar("T")


@dataclass(frozen=True)
class Admission:
    admitted: bool
    held: int
    # Seconds until the oldest held entry lapses (when refused).
    retry_after: float = 0.0
    # The scope that was full (when refused): the client's own, or one of its wider networks' (admit_place).
    scope: str = ""


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

    async def scope_of(self, key: str) -> str | None:
        """The scope `key` is held in (admitted or held there last, not released, not lapsed): the session's end
        may come from another address than its start (a phone moving from Wi-Fi to mobile data), and must give
        back the place its start took."""
        ...


def ledger_scope(pool: str, client: str) -> str:
    """The ledger one client's sessions of a pool (SessionPolicy.pool) count in: each pool has its own cap."""
    return f"{pool}:{client}"


def ledger_key(provider: str, session_id: str) -> str:
    """A granted session's entry (reserved at the grant, released when it ends or is used)."""
    return f"{provider}/{session_id}"


def wider_places(scope: str, key: str) -> list[tuple[str, str]]:
    """The entries a place (`scope`, `key`) also takes in its client's wider networks (server.state.clients: an
    IPv6 /64's /56 and /48), each under a key of its own, so that `scope_of(key)` keeps naming the client's own
    scope."""
    pool, _, client = scope.partition(":")
    return [(ledger_scope(pool, wide), f"{key}@{wide.rpartition('/')[2]}") for wide in wider_clients(client)]


async def admit_place(ledger: Ledger, scope: str, key: str, limit: int, wider_limit: int, ttl_s: float) -> Admission:
    """Admit `key` in `scope` (up to `limit` entries) and in each of its wider networks' scopes (up to
    `wider_limit`): refused when any is full, and then what this call took is given back. Each scope's check-and-add
    is atomic, so no scope ever passes its cap; across scopes, a concurrent mint may be refused for a place this one
    gives back a moment later."""
    admission = await ledger.admit(scope, key, limit, ttl_s)
    if not admission.admitted:
        return admission
    taken = [(scope, key)]
    for wide_scope, wide_key in wider_places(scope, key):
        wide = await ledger.admit(wide_scope, wide_key, wider_limit, ttl_s)
        if not wide.admitted:
            await _each(taken, lambda s, k: ledger.release(s, k))
            return wide
        taken.append((wide_scope, wide_key))
    return admission


async def hold_place(ledger: Ledger, scope: str, key: str, ttl_s: float) -> None:
    """`Ledger.hold` of the place and of its wider networks' entries."""
    await _each([(scope, key), *wider_places(scope, key)], lambda s, k: ledger.hold(s, k, ttl_s))


async def release_place(ledger: Ledger, scope: str, key: str) -> bool:
    """`Ledger.release` of the place and of its wider networks' entries; True when the place itself was held."""
    return (await _each([(scope, key), *wider_places(scope, key)], ledger.release))[0]


async def _each(places: list[tuple[str, str]], call: Callable[[str, str], Awaitable[T]]) -> list[T]:
    """`call` on every place, each tried whichever failed before it (an entry left behind holds a place until it
    lapses); the first StateUnavailable is raised once all were tried."""
    results: list[T] = []
    failed: StateUnavailable | None = None
    for scope, key in places:
        try:
            results.append(await call(scope, key))
        except StateUnavailable as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
    return results


class MemoryLedger:
    """Pruned of expired entries as the store is used, so it stays bounded by what is live (empty scopes are
    dropped)."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.clock = self.store.clock
        self._scopes: dict[str, dict[str, float]] = {}
        self._owners: dict[str, str] = {}  # key -> its scope, while it is in that scope's table
        self.store.pruned(self.prune)

    def prune(self, now: float) -> None:
        for scope in list(self._scopes):
            live = {k: exp for k, exp in self._scopes[scope].items() if exp > now}
            if live:
                self._scopes[scope] = live
            else:
                del self._scopes[scope]
        self._owners = {k: scope for k, scope in self._owners.items() if k in self._scopes.get(scope, {})}

    def sizes(self) -> dict[str, int]:
        return {"scopes": len(self._scopes)}

    async def admit(self, scope: str, key: str, limit: int, ttl_s: float) -> Admission:
        now = self.store.tick()
        live = {k: exp for k, exp in self._scopes.get(scope, {}).items() if exp > now}
        if len(live) >= limit:
            self._scopes[scope] = live
            return Admission(False, len(live), max(1.0, min(live.values()) - now), scope)
        live[key] = now + ttl_s
        self._scopes[scope] = live
        self._owners[key] = scope
        return Admission(True, len(live))

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        now = self.store.tick()
        self._scopes.setdefault(scope, {})[key] = now + ttl_s
        self._owners[key] = scope

    async def release(self, scope: str, key: str) -> bool:
        held = self._scopes.get(scope)
        if held is None:
            return False
        found = held.pop(key, None)
        if not held:
            del self._scopes[scope]
        if self._owners.get(key) == scope:
            del self._owners[key]
        return found is not None and found > self.clock()

    async def held(self, scope: str) -> int:
        now = self.clock()
        return sum(1 for exp in self._scopes.get(scope, {}).values() if exp > now)

    async def scope_of(self, key: str) -> str | None:
        scope = self._owners.get(key)
        return scope if scope is not None and self._scopes.get(scope, {}).get(key, 0.0) > self.clock() else None


# Each key's own lifetime is relative (PEXPIRE, SET PX: milliseconds from `now`, the caller's clock), never an
# absolute time: Redis would read that on its own clock, and an app host behind it by more than a lease (30 s) would
# have its entries deleted at once. The scores stay the callers' Unix seconds, compared by every replica (whose
# clocks may differ by up to CLOCK_SKEW_S).
_ADMIT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, n, first[2]}
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((tonumber(last[2]) - now) * 1000) + 1000))
redis.call('SET', KEYS[2], ARGV[5], 'PX', math.max(1, math.ceil((tonumber(ARGV[4]) - now) * 1000) + 1000))
return {1, n + 1, '0'}
"""

_HOLD = """
local now = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((tonumber(last[2]) - now) * 1000) + 1000))
redis.call('SET', KEYS[2], ARGV[3], 'PX', math.max(1, math.ceil((tonumber(ARGV[2]) - now) * 1000) + 1000))
return 1
"""

_RELEASE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
if score and tonumber(score) > tonumber(ARGV[2]) then return 1 end
return 0
"""


class RedisLedger:
    """A sorted set per scope (member: the entry's key, score: its expiry), changed by Lua scripts so a check and
    its add are one step for every replica; the set itself expires just after its last entry."""

    SCOPES = PREFIX + "ledger:"
    OWNERS = PREFIX + "ledger-owner:"

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._admit = store.redis.register_script(_ADMIT)
        self._hold = store.redis.register_script(_HOLD)
        self._release = store.redis.register_script(_RELEASE)

    @classmethod
    def key(cls, scope: str) -> str:
        return cls.SCOPES + scope

    @classmethod
    def owner_key(cls, key: str) -> str:
        """Where `key`'s scope is recorded (the string key expires with the entry, give or take a second)."""
        return cls.OWNERS + key

    async def admit(self, scope: str, key: str, limit: int, ttl_s: float) -> Admission:
        now = self.store.clock()
        keys = [self.key(scope), self.owner_key(key)]
        async with self.store.guard():
            ok, n, first = await self._admit(keys=keys, args=[now, limit, key, now + ttl_s, scope])
        if int(ok):
            return Admission(True, int(n))
        return Admission(False, int(n), max(1.0, float(first) - now), scope)

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        async with self.store.guard():
            now = self.store.clock()
            await self._hold(keys=[self.key(scope), self.owner_key(key)], args=[key, now + ttl_s, scope, now])

    async def release(self, scope: str, key: str) -> bool:
        keys = [self.key(scope), self.owner_key(key)]
        async with self.store.guard():
            return bool(int(await self._release(keys=keys, args=[key, self.store.clock(), scope])))

    async def held(self, scope: str) -> int:
        async with self.store.guard():
            return int(await self.store.redis.zcount(self.key(scope), f"({self.store.clock()}", "+inf"))

    async def scope_of(self, key: str) -> str | None:
        async with self.store.guard():
            scope = await self.store.redis.get(self.owner_key(key))
            # The scope's table decides: the record outlives the entry by up to a second.
            score = await self.store.redis.zscore(self.key(scope), key) if scope else None
        return str(scope) if score is not None and score > self.store.clock() else None


def build_ledger(store: Store) -> Ledger:
    return MemoryLedger(store) if isinstance(store, MemoryStore) else RedisLedger(store)
