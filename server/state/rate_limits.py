"""Requests per client and minute: the `limits` library's sliding-window counters over its memory or Redis
storage."""

from __future__ import annotations

from typing import Protocol

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from server.state.store import PREFIX, RedisStore, Store


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
        item = RateLimitItemPerMinute(per_minute)
        async with self.store.guard():
            if await self._limiter.hit(item, name, key):
                return None
            stats = await self._limiter.get_window_stats(item, name, key)
        return max(1.0, stats.reset_time - self.store.clock())


def _limits_url(url: str) -> str:
    """The storage URL `limits` reads for a redis-py URL: its asynchronous schemes, and a Unix socket's under the
    name `limits` gives it (redis-py's `unix://` is not one of them)."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url if url.startswith(("redis://", "rediss://")) else url
