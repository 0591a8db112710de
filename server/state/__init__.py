"""Shared state: what every process of one deployment must agree on, one small interface per concern.

- `RateLimits`: requests per client and minute (the `limits` library over its memory or Redis storage);
- `Ledger`: what each client holds (a Wiro task, an unused local grant, an open local stream), each entry with an
  expiry, so an entry whose holder died (a crashed page, a SIGKILLed replica) lapses by itself;
- `SpentGrants`: grants already used (a local grant opens one stream, on whichever replica the socket lands);
- `Captions`: shared captions (each share's record, its short log of finals, its live delivery to viewers).

A client (server.sessions.client_key) also counts in its wider networks (clients.py: an IPv6 /64's /56 and /48), in
the rate limits (`client_limits`, `RateLimits.hit_all`) and in the ledger (`admit_place`, `hold_place`,
`release_place`).

A provider's own concern lives with the provider and is built through `State.concern` (the Wiro task registry and
nonce: server/providers/wiro_tasks.py), so this package knows no provider. Each concern is a module (ledger.py,
rate_limits.py, spent.py) with a memory and a Redis implementation, held to one contract by tests/test_state.py;
each owns the format of its keys. store.py holds the two stores they are built on.

`MemoryState` keeps everything in this process (the default: `make run` needs no Redis). `RedisState` keeps it in
Redis (`APP_REDIS_URL`). A Redis that is down or slow raises `StateUnavailable` within `timeout_s`; callers that
mint answer 503 with Retry-After, and redis-py reconnects on the next call, so the app recovers by itself.

Times here are Unix seconds (time.time): a deadline written by one host is read by another.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from server.state.captions import INBOX_MAX, PUBSUB_IDLE_S, Captions, MemoryCaptions, RedisCaptions, build_captions
from server.state.clients import WIDER_FACTOR, client_limits, wider_clients
from server.state.ledger import (
    Admission,
    Ledger,
    MemoryLedger,
    RedisLedger,
    admit_place,
    build_ledger,
    hold_place,
    ledger_key,
    ledger_scope,
    release_place,
    wider_places,
)
from server.state.rate_limits import LimitsRateLimits, RateLimits
from server.state.spent import MemorySpentGrants, RedisSpentGrants, SpentGrants, build_spent_grants
from server.state.store import (
    CLOCK_SKEW_S,
    DEFAULT_TIMEOUT_S,
    PREFIX,
    PRUNE_EVERY,
    UNAVAILABLE_RETRY_S,
    MemoryStore,
    RedisStore,
    StateUnavailable,
    Store,
)

__all__ = [
    "CLOCK_SKEW_S",
    "DEFAULT_TIMEOUT_S",
    "PREFIX",
    "PRUNE_EVERY",
    "UNAVAILABLE_RETRY_S",
    "WIDER_FACTOR",
    "Admission",
    "Captions",
    "Ledger",
    "LimitsRateLimits",
    "MemoryCaptions",
    "MemoryLedger",
    "MemorySpentGrants",
    "MemoryState",
    "MemoryStore",
    "RateLimits",
    "RedisCaptions",
    "RedisLedger",
    "RedisSpentGrants",
    "RedisState",
    "RedisStore",
    "SpentGrants",
    "State",
    "StateUnavailable",
    "Store",
    "admit_place",
    "client_limits",
    "hold_place",
    "ledger_key",
    "ledger_scope",
    "open_state",
    "release_place",
    "wider_clients",
    "wider_places",
]

T = TypeVar("T")


@runtime_checkable
class Sized(Protocol):
    def sizes(self) -> dict[str, int]: ...


class State:
    """One deployment's shared state: the store, and a typed object per concern kept in it. A concern a provider
    owns is built on first use by `concern` (one per state, so every user of the state sees the same one).
    `captions_inbox_max` and `captions_pubsub_idle_s` are the captions' limits (server/state/captions.py: INBOX_MAX,
    PUBSUB_IDLE_S); tests make them small."""

    def __init__(
        self,
        store: Store,
        *,
        rate_limits: RateLimits | None = None,
        ledger: Ledger | None = None,
        spent: SpentGrants | None = None,
        concerns: Mapping[str, object] | None = None,
        captions_inbox_max: int = INBOX_MAX,
        captions_pubsub_idle_s: float = PUBSUB_IDLE_S,
    ) -> None:
        self.store = store
        self._concerns: dict[str, object] = dict(concerns or {})
        if ledger is not None:
            self._concerns["ledger"] = ledger
        if spent is not None:
            self._concerns["spent"] = spent
        self.rate_limits: RateLimits = rate_limits or LimitsRateLimits(store)
        self.ledger = self.concern("ledger", build_ledger)
        self.spent = self.concern("spent", build_spent_grants)
        self.captions: Captions = self.concern(
            "captions",
            functools.partial(build_captions, inbox_max=captions_inbox_max, pubsub_idle_s=captions_pubsub_idle_s),
        )

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
        # A concern may hold a task of its own (the captions' subscription): stopped before its connection goes.
        for concern in self._concerns.values():
            close = getattr(concern, "aclose", None)
            if close is not None:
                await close()
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
        captions_inbox_max: int = INBOX_MAX,
    ) -> None:
        super().__init__(
            MemoryStore(clock), ledger=ledger, spent=spent, concerns=concerns, captions_inbox_max=captions_inbox_max
        )

    def prune(self) -> None:
        assert isinstance(self.store, MemoryStore)
        self.store.prune()


class RedisState(State):
    """The state in Redis, shared by every process given the same URL. Each call is bounded by `timeout_s`."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        captions_inbox_max: int = INBOX_MAX,
        captions_pubsub_idle_s: float = PUBSUB_IDLE_S,
    ):
        super().__init__(
            RedisStore(url, timeout_s=timeout_s, clock=clock),
            captions_inbox_max=captions_inbox_max,
            captions_pubsub_idle_s=captions_pubsub_idle_s,
        )

    @property
    def redis(self) -> Any:
        """The Redis client (tests read keys with it)."""
        assert isinstance(self.store, RedisStore)
        return self.store.redis


def open_state(redis_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> State:
    """The state for these settings: Redis when a URL is given, else this process's memory."""
    return RedisState(redis_url, timeout_s=timeout_s) if redis_url else MemoryState()
