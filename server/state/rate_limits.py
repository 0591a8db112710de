"""Requests per client and minute: the `limits` library's sliding-window counters over its memory or Redis
storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from server.state.store import PREFIX, RedisStore, Store


class RateLimits(Protocol):
    async def hit(self, name: str, key: str, per_minute: int) -> float | None:
        """Count one request of `key` against `per_minute`; None when allowed, else seconds to wait."""
        ...

    async def hit_all(self, name: str, limits: Sequence[tuple[str, int]]) -> float | None:
        """Count one request in every (key, per_minute) bucket of `limits` (a client's own and its wider networks':
        server.state.clients.client_limits); refused when any is full, and then counted in none."""
        ...


class LimitsRateLimits:
    """Sliding-window counters of the `limits` library: the same code over its memory or its Redis storage."""

    def __init__(self, store: Store) -> None:
        self.store = store
        storage: Storage
        if isinstance(store, RedisStore):
            storage = RedisStorage(
                _limits_url(store.url),
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
        return await self.hit_all(name, [(key, per_minute)])

    async def hit_all(self, name: str, limits: Sequence[tuple[str, int]]) -> float | None:
        items = [(RateLimitItemPerMinute(per_minute), key) for key, per_minute in limits]
        async with self.store.guard():
            # Tested first, so that a request refused by one bucket takes nothing from the others (a client whose
            # own limit is spent does not use up its network's). A race between the test and the hits can count a
            # request in a bucket before another refuses it: counted once too often, never let past a limit.
            if len(items) > 1:
                for item, key in items:
                    if not await self._limiter.test(item, name, key):
                        return await self._wait(item, name, key)
            for item, key in items:
                if not await self._limiter.hit(item, name, key):
                    return await self._wait(item, name, key)
        return None

    async def _wait(self, item: RateLimitItemPerMinute, name: str, key: str) -> float:
        stats = await self._limiter.get_window_stats(item, name, key)
        return max(1.0, stats.reset_time - self.store.clock())


def _limits_url(url: str) -> str:
    """The storage URL `limits` reads for a redis-py URL: its asynchronous schemes, and a Unix socket's under the
    name `limits` gives it (redis-py's `unix://` is not one of them)."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url if url.startswith(("redis://", "rediss://")) else url
