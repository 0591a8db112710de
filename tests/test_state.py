"""One contract per concern of the shared state (RateLimits, Ledger, SpentGrants, Wiro's TaskRegistry), the same
tests over both implementations of each: this process's memory, and a real Redis."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from server.providers.wiro_tasks import KEEP_AFTER_S, WiroTask, task_registry
from server.state import PREFIX, MemoryState, RedisState, State, StateUnavailable
from testkit.redis_server import RedisServer
from tests.support.clock import Clock

T = TypeVar("T")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"])
def make_state(request: pytest.FixtureRequest, clock: Clock) -> Callable[[], State]:
    if request.param == "memory":
        shared = MemoryState(clock)
        return lambda: shared
    server: RedisServer = request.getfixturevalue("redis")
    # Each call is another "process": its own client and pool, the same Redis (and the same clock).
    return lambda: RedisState(server.url, timeout_s=1.0, clock=clock)


def run(body: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(body())  # type: ignore[arg-type]


def test_ledger_admits_up_to_the_limit_across_processes(make_state: Callable[[], State]) -> None:
    async def body() -> tuple[list[bool], float, bool, bool, int]:
        a, b = make_state(), make_state()
        admitted = [
            (await a.ledger.admit("local:c", "k1", 2, 60)).admitted,
            (await b.ledger.admit("local:c", "k2", 2, 60)).admitted,
        ]
        refused = await a.ledger.admit("local:c", "k3", 2, 60)
        admitted.append(refused.admitted)
        released = await b.ledger.release("local:c", "k1")
        again = await b.ledger.release("local:c", "k1")
        held = await a.ledger.held("local:c")
        await a.aclose()
        await b.aclose()
        return admitted, refused.retry_after, released, again, held

    admitted, retry_after, released, again, held = run(body)
    assert admitted == [True, True, False]
    assert 1 <= retry_after <= 60
    assert released and not again and held == 1


def test_an_entry_s_scope_is_found_by_its_key_while_it_is_held(make_state: Callable[[], State], clock: Clock) -> None:
    """A session's end may come from another address than its start: the ledger says where its place is, on any
    process, until it is released or lapses."""

    async def body() -> list[str | None]:
        a, b = make_state(), make_state()
        await a.ledger.admit("cloud:10.0.0.1", "wiro/s1", 4, 30)
        await a.ledger.admit("cloud:10.0.0.1", "wiro/s2", 4, 0.5)
        await a.ledger.hold("local:10.0.0.3", "local/s3", 30)
        found = [await b.ledger.scope_of(k) for k in ("wiro/s1", "wiro/s2", "local/s3", "wiro/none")]
        await b.ledger.release("cloud:10.0.0.1", "wiro/s1")
        clock.advance(0.6)  # wiro/s2 lapses
        found += [await a.ledger.scope_of("wiro/s1"), await a.ledger.scope_of("wiro/s2")]
        await a.ledger.release("local:10.0.0.9", "local/s3")  # not where it is: it stays there
        found.append(await b.ledger.scope_of("local/s3"))
        await a.aclose()
        await b.aclose()
        return found

    assert run(body) == [
        "cloud:10.0.0.1", "cloud:10.0.0.1", "local:10.0.0.3", None, None, None, "local:10.0.0.3",
    ]  # fmt: skip


def test_a_lapsed_entry_frees_its_place(make_state: Callable[[], State], clock: Clock) -> None:
    async def body() -> tuple[bool, bool]:
        s = make_state()
        await s.ledger.admit("local:d", "short", 1, 0.2)
        full = (await s.ledger.admit("local:d", "next", 1, 60)).admitted
        clock.advance(0.3)
        freed = (await s.ledger.admit("local:d", "next", 1, 60)).admitted
        await s.aclose()
        return full, freed

    assert run(body) == (False, True)


def test_a_grant_is_spent_once_across_processes(make_state: Callable[[], State]) -> None:
    async def body() -> list[bool]:
        a, b = make_state(), make_state()
        exp = time.time() + 60
        out = [await x.spent.spend(g, exp) for x, g in ((a, "g1"), (b, "g1"), (a, "g1"), (b, "g2"))]
        await a.aclose()
        await b.aclose()
        return out

    assert run(body) == [True, False, False, True]


def test_rate_limit_is_shared(make_state: Callable[[], State]) -> None:
    async def body() -> list[bool]:
        a, b = make_state(), make_state()
        out = [await x.rate_limits.hit("t", "client", 3) is None for x in (a, b, a, b, a)]
        other = await b.rate_limits.hit("t", "other", 3) is None
        await a.aclose()
        await b.aclose()
        return [*out, other]

    assert run(body) == [True, True, True, False, False, True]


def test_wiro_registry_any_process_ends_any_task_and_one_claims_the_kill(make_state: Callable[[], State]) -> None:
    async def body() -> tuple[WiroTask | None, list[str], list[bool], bool, bool, list[str]]:
        a, b = make_state(), make_state()
        now = time.time()
        await task_registry(a).put(WiroTask("101", "tok1", "h1", now + 600))
        await task_registry(a).put(WiroTask("102", "tok2", "h2", now - 1))
        found = await task_registry(b).by_handle("h1")
        due = [t.task_id for t in await task_registry(b).due(now)]
        claims = [await task_registry(a).claim("102", 30), await task_registry(b).claim("102", 30)]
        dropped = await task_registry(b).drop(WiroTask("102", "tok2", "h2", now - 1))
        dropped_again = await task_registry(a).drop(WiroTask("102", "tok2", "h2", now - 1))
        await task_registry(b).postpone(WiroTask("101", "tok1", "h1", now + 600), now - 1)
        due_after = [t.task_id for t in await task_registry(a).due(now)]
        await a.aclose()
        await b.aclose()
        return found, due, claims, dropped, dropped_again, due_after

    found, due, claims, dropped, dropped_again, due_after = run(body)
    assert found is not None and (found.task_id, found.token) == ("101", "tok1")
    assert due == ["102"] and claims == [True, False]
    assert dropped and not dropped_again and due_after == ["101"]


def test_nonce_increases_across_processes(make_state: Callable[[], State]) -> None:
    async def body() -> list[int]:
        a, b = make_state(), make_state()
        frozen = 1_700_000_000_000
        out = [await task_registry(x).next_nonce(frozen) for x in (a, b, a, b)]
        out.append(await task_registry(a).next_nonce(frozen + 10))
        await a.aclose()
        await b.aclose()
        return out

    values = run(body)
    assert values[0] == 1_700_000_000_000 and values == sorted(values) and len(set(values)) == 5


def test_redis_down_fails_fast_and_recovers(redis: RedisServer) -> None:
    async def body() -> bool:
        s = RedisState(redis.url, timeout_s=0.5)
        assert (await s.ledger.admit("local:e", "k", 5, 60)).admitted
        redis.stop()
        with pytest.raises(StateUnavailable):
            await s.ledger.admit("local:e", "k2", 5, 60)
        with pytest.raises(StateUnavailable):
            await s.rate_limits.hit("t", "c", 5)
        redis.start()
        # The same client, no restart: redis-py reconnects on the next call.
        recovered = (await s.ledger.admit("local:e", "k3", 5, 60)).admitted
        await s.aclose()
        return recovered

    assert run(body)


def test_redis_connections_keep_tcp_alive(redis: RedisServer) -> None:
    """A Redis host gone without a FIN or RST is found by the kernel on a connection that only reads (the captions'
    subscription), whatever redis-py's own default: keepalive on, probing after at most a minute idle."""

    async def body() -> tuple[int, int]:
        s = RedisState(redis.url, timeout_s=1.0)
        pool = s.redis.connection_pool
        connection = await pool.get_connection()
        try:
            sock = connection._writer.transport.get_extra_info("socket")
            return sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), sock.getsockopt(
                socket.IPPROTO_TCP, socket.TCP_KEEPIDLE
            )
        finally:
            await pool.release(connection)
            await s.aclose()

    keepalive, idle_s = run(body)
    assert keepalive == 1 and 0 < idle_s <= 60


def test_a_spent_grant_stays_spent_while_a_replica_with_a_slower_clock_still_accepts_it(redis: RedisServer) -> None:
    """Replicas' clocks differ a little. B, whose clock runs 8 s ahead of A's, spends a grant that expires 10 s from
    now by A's clock; A accepts the token until then, so on A the grant must still be spent after B thinks it lapsed."""

    async def body() -> tuple[bool, bool, bool]:
        a = RedisState(redis.url, timeout_s=1.0)
        b = RedisState(redis.url, timeout_s=1.0, clock=lambda: time.time() + 8.0)
        exp = time.time() + 10.0
        first = await b.spent.spend("skewed-g", exp)
        await asyncio.sleep(2.5)  # past the expiry as B sees it
        still_valid_on_a = a.clock() < exp
        second = await a.spent.spend("skewed-g", exp)
        await a.aclose()
        await b.aclose()
        return first, still_valid_on_a, second

    first, still_valid_on_a, second = run(body)
    assert first and still_valid_on_a
    assert not second, "a grant spent on one replica opened a second stream on another"


def test_postponing_a_kill_of_a_task_another_process_dropped_leaves_no_key_behind(redis: RedisServer) -> None:
    """A's kill failed and A postpones it, but meanwhile B (A's claim had lapsed) killed and dropped the task: the
    postponement must not bring back a part of the task (a key with no expiry that nothing would ever delete)."""

    async def body() -> tuple[list[str], list[WiroTask]]:
        a, b = RedisState(redis.url, timeout_s=1.0), RedisState(redis.url, timeout_s=1.0)
        task = WiroTask("301", "tok301", "h301", time.time() - 1)
        await task_registry(a).put(task)
        await task_registry(b).drop(task)
        await task_registry(a).postpone(task, time.time() + 30)
        keys = sorted(await a.redis.keys(PREFIX + "wiro:*301"))
        due = await task_registry(a).due(float("inf"))
        await a.aclose()
        await b.aclose()
        return keys, due

    keys, due = run(body)
    assert keys == [] and [t.task_id for t in due if t.task_id == "301"] == []


def test_a_postponed_kill_keeps_the_task_past_its_first_record_s_expiry(make_state: Callable[[], State]) -> None:
    """A kill that keeps failing is postponed again and again: the task stays registered (by id and by handle)
    until it is killed, not only until KEEP_AFTER_S after its first deadline."""

    async def body() -> tuple[WiroTask | None, WiroTask | None, list[str]]:
        a = make_state()
        now = time.time()
        # Its first record lapses about 3 s from now: time for the postponement to reach it first on a loaded
        # machine (1 s was once too little in CI, with other tests on the two cores), and then to pass.
        task = WiroTask("501", "tok501", "h501", now - KEEP_AFTER_S + 3)
        await task_registry(a).put(task)
        await task_registry(a).postpone(task, now + 600)
        await asyncio.sleep(4.1)
        found = await task_registry(a).get("501"), await task_registry(a).by_handle("h501")
        due = [t.task_id for t in await task_registry(a).due(now + 601)]
        await task_registry(a).drop(task)
        await a.aclose()
        return *found, due

    by_id, by_handle, due = run(body)
    assert by_id is not None and by_id.deadline == pytest.approx(time.time() + 600, abs=10)
    assert by_handle == by_id
    assert "501" in due


def test_a_postponed_kill_counts_its_attempt_and_keeps_the_claim_until_its_retry(
    make_state: Callable[[], State], clock: Clock
) -> None:
    """The attempt count lives in the shared record (any replica sees it, none keeps it in memory), and the claim
    stays until the retry time: a sweep that read the task before the postponement cannot kill it again at once."""
    # Redis lets the claim lapse by its own clock (a PX, set from the states' clock): a window the claims before it
    # fall well within however slow the machine, which then passes in real time too.
    retry_in_s = 3.0

    async def body() -> tuple[list[int], list[bool], list[bool]]:
        a, b = make_state(), make_state()
        now = clock()
        await task_registry(a).put(WiroTask("401", "tok401", "h401", now - 1))
        attempts = [(await task_registry(b).due(now))[0].attempts]
        assert await task_registry(a).claim("401", 30)
        await task_registry(a).postpone(WiroTask("401", "tok401", "h401", now - 1), now + retry_in_s)
        await task_registry(b).postpone(WiroTask("401", "tok401", "h401", now - 1), now + retry_in_s)
        lapsed_by = time.monotonic() + retry_in_s  # Redis's PX, in real time
        attempts.append(next(t for t in await task_registry(a).due(float("inf")) if t.task_id == "401").attempts)
        attempts.append((await task_registry(b).by_handle("h401") or WiroTask("", "", "", 0)).attempts)
        before = [await task_registry(b).claim("401", 30), await task_registry(a).claim("401", 30)]
        clock.advance(retry_in_s)  # the retry time
        if isinstance(a, RedisState):
            await asyncio.sleep(max(0.0, lapsed_by - time.monotonic()) + 0.05)
        after = [await task_registry(b).claim("401", 30), await task_registry(a).claim("401", 30)]
        await task_registry(a).drop(WiroTask("401", "tok401", "h401", now))
        await a.aclose()
        await b.aclose()
        return attempts, before, after

    attempts, before, after = run(body)
    assert attempts == [0, 2, 2]
    assert before == [False, False] and after == [True, False]


def test_a_task_is_found_by_its_id_and_by_its_handle_and_gone_once_dropped(make_state: Callable[[], State]) -> None:
    async def body() -> tuple[list[str | None], list[str | None]]:
        a, b = make_state(), make_state()
        task = WiroTask("501", "tok501", "h501", time.time() + 600)
        await task_registry(a).put(task)
        found = [await task_registry(b).get("501"), await task_registry(b).by_handle("h501")]
        await task_registry(b).drop(task)
        gone = [await task_registry(a).get("501"), await task_registry(a).by_handle("h501")]
        await a.aclose()
        await b.aclose()
        return [t.task_id if t else None for t in found], [t.task_id if t else None for t in gone]

    assert run(body) == (["501", "501"], [None, None])


def test_one_state_gives_every_user_the_same_concern() -> None:
    state = MemoryState()
    assert task_registry(state) is task_registry(state)
    assert state.concern("ledger", lambda store: None) is state.ledger


def test_a_spend_is_undone_only_by_the_socket_that_made_it(make_state: Callable[[], State]) -> None:
    """A socket refused 503 after its spend may have run (a slow store) un-spends the grant, but only its own spend:
    never one another socket made, nor one made by an end call."""

    async def body() -> list[bool]:
        a, b = make_state(), make_state()
        exp = time.time() + 60
        out = [
            await a.spent.spend_by("u1", exp, "lease-a"),
            await b.spent.unspend("u1", "lease-b"),  # not its spend: stays spent
            await b.spent.spend_by("u1", exp, "lease-b"),
            await b.spent.unspend("u1", "lease-a"),  # its own: usable again
            await b.spent.spend_by("u1", exp, "lease-b"),
            await a.spent.spend("u2", exp),
            await a.spent.unspend("u2", "lease-a"),
            await a.spent.unspend("never-spent", "lease-a"),
        ]
        await a.aclose()
        await b.aclose()
        return out

    assert run(body) == [True, False, False, True, True, True, False, False]


def test_ledger_entries_live_by_the_store_s_clock_when_the_app_s_is_behind(redis: RedisServer) -> None:
    """Key lifetimes are relative (milliseconds from now), never absolute times: an app host 45 s behind the Redis
    host (replicas' clocks may differ by CLOCK_SKEW_S) must not have its 30 s leases and reservations deleted at
    once."""

    async def body() -> tuple[int, int, int, str | None, int, int]:
        s = RedisState(redis.url, timeout_s=1.0, clock=lambda: time.time() - 45)
        await s.ledger.hold("local:1.2.3.4", "local/sid/stream/x", 30.0)
        await s.ledger.admit("cloud:1.2.3.4", "wiro/s1", 4, 30.0)
        held = [await s.ledger.held("local:1.2.3.4"), await s.ledger.held("cloud:1.2.3.4")]
        second = (await s.ledger.admit("captions:S", "v1", 1, 60.0)).admitted
        third = (await s.ledger.admit("captions:S", "v2", 1, 60.0)).admitted
        scope = await s.ledger.scope_of("wiro/s1")
        ttls = [
            await s.redis.pttl(PREFIX + "ledger:local:1.2.3.4"),
            await s.redis.pttl(PREFIX + "ledger-owner:wiro/s1"),
        ]
        await s.aclose()
        return *held, int(second) - int(third), scope, *ttls

    held_local, held_cloud, one_viewer, scope, ttl_lease, ttl_owner = run(body)
    assert (held_local, held_cloud, one_viewer, scope) == (1, 1, 1, "cloud:1.2.3.4")
    assert 29_000 <= ttl_lease <= 31_000 and 29_000 <= ttl_owner <= 31_000


def test_an_ipv6_client_s_wider_networks_share_a_higher_rate_limit(make_state: Callable[[], State]) -> None:
    """Each attempt counts in its /64 (the client's own limit) and in its /56 and /48 (WIDER_FACTOR times it); a
    refused attempt counts in none, so one /64 that spends its own limit does not use up its network's."""
    from server.state import WIDER_FACTOR, client_limits

    async def body() -> tuple[list[bool], list[bool], bool, bool]:
        a, b = make_state(), make_state()
        per_minute = 2
        # One /64 alone: its own limit, and its refused tries leave the network's count alone.
        alone = [
            await a.rate_limits.hit_all("t", client_limits("2001:db8:1:100::/64", per_minute)) is None for _ in range(5)
        ]
        # Other /64s of the same /48 (and /56): the network allows WIDER_FACTOR x per_minute in all.
        spread = [
            await x.rate_limits.hit_all("t", client_limits(f"2001:db8:1:{n:x}::/64", per_minute)) is None
            for n, x in zip(range(101, 101 + 3 * WIDER_FACTOR), itertools.cycle((a, b)), strict=False)
        ]
        other_48 = await b.rate_limits.hit_all("t", client_limits("2001:db8:2:100::/64", per_minute)) is None
        ipv4 = await b.rate_limits.hit_all("t", client_limits("203.0.113.7", per_minute)) is None
        await a.aclose()
        await b.aclose()
        return alone, spread, other_48, ipv4

    alone, spread, other_48, ipv4 = run(body)
    assert alone == [True, True, False, False, False]
    # Their /48 allows 3 x 2 = 6, of which the first /64 (in another /56 of it) took 2.
    assert spread == [True] * 4 + [False] * (len(spread) - 4)
    assert other_48 and ipv4


def test_an_ipv6_client_s_wider_networks_share_a_higher_cap_of_open_sessions(make_state: Callable[[], State]) -> None:
    """admit_place counts a place in the client's /64 and in its /56 and /48: refused when any is full (and then
    nothing is taken); a released place frees all three; the place's scope stays the client's own."""
    from server.state import admit_place, release_place

    async def body() -> tuple[list[bool], str, str | None, bool, bool, int]:
        a, b = make_state(), make_state()
        admitted = [
            (await admit_place(x, f"cloud:2001:db8:1:{n:x}::/64", f"wiro/s{n}", 1, 3, 60)).admitted
            for n, x in ((1, a.ledger), (2, b.ledger), (3, a.ledger), (4, b.ledger))
        ]
        refused = await admit_place(a.ledger, "cloud:2001:db8:1:4::/64", "wiro/s4b", 1, 3, 60)
        scope = await b.ledger.scope_of("wiro/s2")
        released = await release_place(b.ledger, "cloud:2001:db8:1:2::/64", "wiro/s2")
        again = (await admit_place(a.ledger, "cloud:2001:db8:1:5::/64", "wiro/s5", 1, 3, 60)).admitted
        own_held = await a.ledger.held("cloud:2001:db8:1:4::/64")
        await a.aclose()
        await b.aclose()
        return admitted, refused.scope, scope, released, again, own_held

    admitted, refused_in, scope, released, again, own_held = run(body)
    assert admitted == [True, True, True, False]
    assert refused_in == "cloud:2001:db8:1::/56"
    assert scope == "cloud:2001:db8:1:2::/64" and released and again
    assert own_held == 0, "a place refused by its network holds nothing in the client's own scope"
