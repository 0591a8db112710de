"""Where the shared state's concerns keep their data: this process's memory, or one Redis connection pool."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

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
# Redis connections per process (the captions' subscription holds one of its own).
MAX_CONNECTIONS = 64
# Every Redis key of this app starts with it.
PREFIX = "stt:"
# TCP keepalive on every Redis connection, so the kernel itself drops a connection whose Redis host is gone without a
# FIN or RST (after about a minute idle): the captions' subscription only reads, and would otherwise wait forever
# (its own ping finds it sooner; this is the floor under it). Options the platform lacks are left at its defaults.
KEEPALIVE_OPTIONS = {
    option: value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if (option := getattr(socket, name, None)) is not None
}
TCP_KEEPALIVE: dict[str, Any] = {"socket_keepalive": True, "socket_keepalive_options": KEEPALIVE_OPTIONS}


class StateUnavailable(Exception):
    """The shared state store did not answer (down, slow, refused). Never carries a secret or a URL."""


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
        # A blocking pool: a burst (200 caption viewers connecting at once) waits up to timeout_s for a connection
        # instead of failing at the pool's size (redis-py's plain pool raises MaxConnectionsError there).
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            # TCP only: a Unix socket's connection takes no keepalive options (redis-py refuses them).
            **({} if url.startswith("unix://") else TCP_KEEPALIVE),
        )
        # from_pool: the client owns the pool, so aclose() disconnects it too.
        self.redis: Any = aioredis.Redis.from_pool(pool)

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
