"""Ends and undos the shared state kept this process from completing, kept in its memory and tried again until the
store answers (PendingEnds): an end call must not be lost to a Redis outage (a Wiro task would run billed until its
deadline), and a store call that timed out may still have run and need undoing."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import State as AppState
from starlette.requests import HTTPConnection

from server.settings import Settings
from server.state import UNAVAILABLE_RETRY_S, State, StateUnavailable, client_limits, release_place

log = logging.getLogger(__name__)


class Ending(Protocol):
    """What a kept end needs of its provider (server.providers.base.Provider, a layer above this module: the local
    provider keeps its undos here)."""

    async def end_session(self, session_id: str) -> bool: ...


# Ends a client may send for each session it may mint a minute (APP_SESSION_RATE_PER_MIN): the page's end and its
# pagehide beacon, and one more to spare.
ENDS_PER_SESSION = 3
# An end the shared state kept from being completed is tried again this often (PendingEnds), and at most this many
# are kept by one process.
END_RETRY_S = UNAVAILABLE_RETRY_S
MAX_PENDING_ENDS = 4096


@dataclass
class PendingEnd:
    """An end the shared state kept from being completed: what is left of it."""

    provider: str
    session_id: str
    # Who sent it (the bound on what one client may have kept).
    client: str
    place: tuple[str, str] | None
    # The place's scope was read from the ledger (else it is this end's own address's, a guess).
    located: bool
    # The provider's end ran.
    ended: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.session_id)


# What undoes a store call that failed here but may have run in the store: made on the shared state as it is then.
Undo = Callable[[State], Awaitable[object]]


@dataclass
class PendingUndo:
    """The undo of a store call that timed out but may still have run (a slow store, not a down one: a mint's
    admission, a refused socket's spend), which itself failed: made once the store answers."""

    # What it undoes, for the log and as its key ("release <scope> <key>", "unspend <grant> <holder>").
    what: str
    client: str
    call: Undo

    @property
    def key(self) -> tuple[str, str]:
        return ("", self.what)


def releasing(place: tuple[str, str]) -> tuple[str, Undo]:
    """The undo that gives back a place (and its wider networks' entries)."""
    scope, key = place
    return f"release {scope} {key}", lambda state: release_place(state.ledger, scope, key)


class PendingEnds:
    """Ends this process could not complete because the shared state failed: the provider's end could not look the
    session up (a Wiro task's id is in the registry) or the place could not be given back; and the undos of store
    calls that timed out but may have run, when the undo failed too (PendingUndo: a slow store runs the late call
    after the undo was refused, so only an undo made once it answers is sure to come after it). Each is tried again
    every `retry_s` (END_RETRY_S) until the store answers, in this process's memory: the same kind of list as Wiro's
    tasks that the registry never recorded, for what the store itself cannot hold while it is down. The page sends a
    refused end again too (perhaps to another process); an end tried twice only finds nothing more to do.

    Bounded, since ends are not rate-limited while the store fails: `max_entries` (MAX_PENDING_ENDS) in all, and per
    client the ends it may send a minute (its wider networks, WIDER_FACTOR times that, as in the rate limits). One
    past either is not kept here: the page's own retries and the store's own lifetimes (a Wiro task's
    WIRO_TASK_DEADLINE_S, a place's reservation, a spent grant's expiry) remain. Keeping one costs the same however
    many are kept (each entry's buckets are counted when it is kept), and a refused one is logged once until the
    store answers again.

    The lifespan starts the retries (again, after a restart, for what the last one left) and stops them."""

    def __init__(
        self,
        app_state: AppState,
        per_client_per_min: int,
        *,
        retry_s: float = END_RETRY_S,
        max_entries: int = MAX_PENDING_ENDS,
        limits: Callable[[str, int], list[tuple[str, int]]] = client_limits,
    ) -> None:
        # The app's state: its providers and shared state as they are at each try (a restarted lifespan's).
        self._app = app_state
        self._per_client_per_min = per_client_per_min
        self._retry_s = retry_s
        self._max_entries = max_entries
        # The buckets a client's entries count in, each with its bound (server.state.clients).
        self._limits = limits
        self._entries: dict[tuple[str, str], PendingEnd | PendingUndo] = {}
        # The rate-limit buckets each entry counts in (client_limits), and how many entries each bucket holds.
        # Ends and undos are counted apart ("end ..." and "undo ..." buckets, `max_entries` each): refused sockets,
        # which no rate limit bounds, must not take the room of the ends (a Wiro task would run billed).
        self._buckets: dict[tuple[str, str], tuple[str, ...]] = {}
        self._per_bucket: Counter[str] = Counter()
        # Refused since the store last answered (logged at the first).
        self._refused = 0
        self._task: asyncio.Task[None] | None = None
        self._running = True

    def __len__(self) -> int:
        return len(self._entries)

    def keep(self, entry: PendingEnd | PendingUndo) -> None:
        key = entry.key
        before = self._entries.get(key)
        if isinstance(before, PendingEnd) and isinstance(entry, PendingEnd):
            entry.ended = entry.ended or before.ended
            if before.located and not entry.located:
                entry.place, entry.located = before.place, True
        elif before is None:
            kind = "undo" if isinstance(entry, PendingUndo) else "end"
            if self._per_bucket[kind] >= self._max_entries:
                self._refuse(entry, "the list is full")
                return
            limits = [(f"{kind} {bucket}", cap) for bucket, cap in self._limits(entry.client, self._per_client_per_min)]
            if any(self._per_bucket[bucket] >= cap for bucket, cap in limits):
                self._refuse(entry, "its client has too many kept")
                return
            buckets = (kind, *(bucket for bucket, _ in limits))
            self._buckets[key] = buckets
            self._per_bucket.update(buckets)
        self._entries[key] = entry
        self._start()

    def _refuse(self, entry: PendingEnd | PendingUndo, why: str) -> None:
        self._refused += 1
        if self._refused == 1:
            log.warning(
                "%s could be neither completed nor kept to retry (%s); more are counted, not logged, until the shared "
                "state answers",
                _named(entry),
                why,
            )

    def _drop(self, key: tuple[str, str], entry: PendingEnd | PendingUndo) -> None:
        """Forget `entry` (done, or given up), unless it was replaced meanwhile."""
        if self._entries.get(key) is not entry:
            return
        del self._entries[key]
        for bucket in self._buckets.pop(key):
            self._per_bucket[bucket] -= 1
            if self._per_bucket[bucket] <= 0:
                del self._per_bucket[bucket]

    def _answered(self) -> None:
        """The store answered: what it refused meanwhile is reported, and the next refusal logged again."""
        if self._refused:
            log.warning("%d ends or undos could be neither completed nor kept to retry", self._refused)
            self._refused = 0

    async def undo(self, client: str, what: str, call: Undo) -> None:
        """`call` on the shared state now, or, when the store fails, kept to be made once it answers."""
        try:
            await call(self._app.shared)
        except StateUnavailable:
            self.keep(PendingUndo(what, client, call))

    def start(self) -> None:
        """Retries run (the lifespan's start): at once for what a previous lifespan left, else from the next kept."""
        self._running = True
        self._start(at_once=True)

    async def stop(self) -> None:
        """No more retries until `start` (the lifespan's end): what is left stays kept."""
        self._running = False
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("the retries of kept ends failed")

    def _start(self, *, at_once: bool = False) -> None:
        if self._running and self._entries and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(at_once), name="pending-ends")

    async def _run(self, at_once: bool) -> None:
        # A kept entry has just failed, so its first retry waits; what a previous lifespan left is tried at once.
        if at_once:
            await self.retry()
        while self._entries:
            await asyncio.sleep(self._retry_s)
            await self.retry()

    async def retry(self, client: str | None = None) -> None:
        """One try of every kept end and undo (or of `client`'s); the ones completed are dropped. The pass ends at the
        first the store fails: the rest would each wait out its timeout too (a mint that retries its client's first
        would wait minutes)."""
        for key, entry in list(self._entries.items()):
            if client is not None and entry.client != client:
                continue
            try:
                await self._finish(entry)
            except StateUnavailable:
                return
            except Exception:
                log.exception("retrying %s failed; it is not tried again", _named(entry))
            else:
                self._answered()
            self._drop(key, entry)

    async def _finish(self, entry: PendingEnd | PendingUndo) -> None:
        state: State = self._app.shared
        if isinstance(entry, PendingUndo):
            await entry.call(state)
            return
        providers: dict[str, Ending] = self._app.providers
        if entry.place is not None and not entry.located:
            found = await state.ledger.scope_of(entry.place[1])
            entry.place, entry.located = (found or entry.place[0], entry.place[1]), True
        if not entry.ended:
            provider = providers.get(entry.provider)
            if provider is not None:
                await provider.end_session(entry.session_id)
            entry.ended = True
        if entry.place is not None:
            await release_place(state.ledger, *entry.place)


def _named(entry: PendingEnd | PendingUndo) -> str:
    return f"a {entry.provider} session's end" if isinstance(entry, PendingEnd) else f"an undo ({entry.what})"


def pending_ends_of(app_state: AppState) -> PendingEnds:
    """This app's PendingEnds (made at its first use: the lifespan's start)."""
    pending: PendingEnds | None = getattr(app_state, "pending_ends", None)
    if pending is None:
        settings: Settings = app_state.settings
        pending = PendingEnds(app_state, ENDS_PER_SESSION * settings.session_rate_per_min)
        app_state.pending_ends = pending
    return pending


def pending_ends(conn: HTTPConnection) -> PendingEnds:
    """The PendingEnds of the app serving `conn`."""
    return pending_ends_of(conn.app.state)
