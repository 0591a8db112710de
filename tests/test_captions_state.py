"""The captions store's contract, the same tests over this process's memory and a real Redis (each "process" its own
client): numbering, retried publishes, catch-up, live delivery across processes, revoke, expiry on an injected
clock, and nothing of a transcript left after either."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

import pytest
from sse_starlette import ServerSentEvent

from server.state import PREFIX, MemoryState, RedisState, State
from server.state.captions import INBOX_MAX, LOG_MAX, CaptionEvent, Inbox, Share, ShareGone
from testkit.proxy import cuttable_proxy
from testkit.redis_server import RedisServer
from tests.support.clock import Clock

T = TypeVar("T")


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000_000.0)


class MakeState(Protocol):
    def __call__(self, *, captions_inbox_max: int = INBOX_MAX) -> State: ...


@pytest.fixture(params=["memory", "redis"])
def make_state(request: pytest.FixtureRequest, clock: Clock) -> MakeState:
    """One process's state: memory is one state every "process" shares (one per inbox size asked for); Redis, a
    client of its own."""
    if request.param == "memory":
        shared: dict[int, MemoryState] = {}

        def memory(*, captions_inbox_max: int = INBOX_MAX) -> State:
            if captions_inbox_max not in shared:
                shared[captions_inbox_max] = MemoryState(clock, captions_inbox_max=captions_inbox_max)
            return shared[captions_inbox_max]

        return memory
    server: RedisServer = request.getfixturevalue("redis")

    def redis(*, captions_inbox_max: int = INBOX_MAX) -> State:
        return RedisState(server.url, timeout_s=1.0, clock=clock, captions_inbox_max=captions_inbox_max)

    return redis


def run(body: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(body())  # type: ignore[arg-type]


def share(clock: Clock, share_id: str = "s" * 22, grace: float = 60.0, life: float = 3600.0) -> Share:
    return Share(share_id, "hash", clock.now, clock.now + life, clock.now + grace)


async def transcript_keys(state: State) -> list[str]:
    """What a Redis holds of captions (memory: the table sizes, as names)."""
    if isinstance(state, RedisState):
        return sorted(k for k in await state.redis.keys(PREFIX + "cap*"))
    sizes = state.sizes()
    return [name for name in ("shares", "share_logs") if sizes.get(name)]


def test_finals_are_numbered_and_a_retried_batch_adds_nothing(make_state: Callable[[], State], clock: Clock) -> None:
    async def body() -> tuple[list[int], int, list[tuple[int, str]], str | None]:
        a, b = make_state(), make_state()
        await a.captions.create(share(clock))
        first = await a.captions.publish("s" * 22, [(1, "one"), (2, "two")], "thr")
        # The same batch again (the page retried after a lost answer), then the next one through another process.
        again = await b.captions.publish("s" * 22, [(1, "one"), (2, "two")], None)
        third = await b.captions.publish("s" * 22, [(2, "two"), (3, "three")], "fo")
        finals, partial = await a.captions.backlog("s" * 22, 1)
        await a.aclose()
        await b.aclose()
        return [first.seq, again.seq], third.seq, [(e.seq, e.text) for e in finals], partial and partial.text

    seqs, third, finals, partial = run(body)
    assert seqs == [2, 2] and third == 3
    assert finals == [(2, "two"), (3, "three")]
    assert partial == "fo"


def test_a_final_clears_the_interim_and_the_log_is_short(make_state: Callable[[], State], clock: Clock) -> None:
    async def body() -> tuple[CaptionEvent | None, int, int]:
        s = make_state()
        await s.captions.create(share(clock))
        await s.captions.publish("s" * 22, [], "half a sen")
        await s.captions.publish("s" * 22, [(1, "half a sentence.")], None)
        _, partial = await s.captions.backlog("s" * 22, 0)
        await s.captions.publish("s" * 22, [(n, f"w{n}") for n in range(2, LOG_MAX + 12)], None)
        finals, _ = await s.captions.backlog("s" * 22, 0)
        await s.aclose()
        return partial, len(finals), finals[0].seq

    partial, kept, oldest = run(body)
    assert partial is None
    assert kept == LOG_MAX and oldest == LOG_MAX + 11 - LOG_MAX + 1


def test_a_recording_that_ends_takes_its_interim_with_it(make_state: Callable[[], State], clock: Clock) -> None:
    """A Cancel drops the words being recognised: once the recording has ended, a viewer joining in the pause is not
    sent them as the line being said (and a revoke leaves none either)."""

    async def body() -> list[str | None]:
        s = make_state()
        await s.captions.create(share(clock))
        await s.captions.set_live("s" * 22, True, 60.0)
        await s.captions.publish("s" * 22, [(1, "hello.")], "my password is")
        seen = [(await s.captions.backlog("s" * 22, 0))[1]]
        await s.captions.set_live("s" * 22, False, 60.0)
        seen.append((await s.captions.backlog("s" * 22, 0))[1])
        await s.captions.set_live("s" * 22, True, 60.0)
        await s.captions.publish("s" * 22, [], "again")
        await s.captions.revoke("s" * 22)
        seen.append((await s.captions.backlog("s" * 22, 0))[1])
        await s.aclose()
        return [e.text if e else None for e in seen]

    assert run(body) == ["my password is", None, None]


def test_live_events_reach_a_viewer_on_another_process(make_state: Callable[[], State], clock: Clock) -> None:
    async def body() -> list[tuple[str, int, str]]:
        pub, viewer = make_state(), make_state()
        await pub.captions.create(share(clock))
        got: list[CaptionEvent] = []
        async with viewer.captions.subscribe("s" * 22) as box:
            await pub.captions.publish("s" * 22, [(1, "hello")], "wor")
            await pub.captions.publish("s" * 22, [], "world")
            await pub.captions.publish("s" * 22, [(2, "world.")], None)
            async with asyncio.timeout(5):
                while len([e for e in got if e.kind == "final"]) < 2:
                    got += await box.take(1.0)
            await pub.captions.revoke("s" * 22)
            async with asyncio.timeout(5):
                while got[-1].kind != "end":
                    got += await box.take(1.0)
        await pub.aclose()
        await viewer.aclose()
        return [(e.kind, e.seq, e.text or e.reason) for e in got]

    events = run(body)
    finals = [e for e in events if e[0] == "final"]
    assert finals == [("final", 1, "hello"), ("final", 2, "world.")]
    assert events[-1] == ("end", 0, "revoked")
    # An interim is never shown after the final that ended its line (and may be coalesced away entirely).
    partials = [i for i, e in enumerate(events) if e[0] == "partial"]
    assert events.index(("final", 2, "world.")) > max(partials, default=-1)


def test_revoke_deletes_the_transcript_and_refuses_publishing(make_state: Callable[[], State], clock: Clock) -> None:
    async def body() -> tuple[bool, bool, bool | None, list[str], bool]:
        s = make_state()
        await s.captions.create(share(clock))
        await s.captions.publish("s" * 22, [(1, "secret words")], "more")
        first = await s.captions.revoke("s" * 22)
        second = await s.captions.revoke("s" * 22)
        found = await s.captions.get("s" * 22)
        finals, partial = await s.captions.backlog("s" * 22, 0)
        keys = [k for k in await transcript_keys(s) if k.endswith((":log", ":partial"))]
        refused = False
        try:
            await s.captions.publish("s" * 22, [(2, "after")], None)
        except ShareGone as exc:
            refused = exc.revoked
        await s.aclose()
        assert finals == [] and partial is None
        return first, second, found and found.revoked, keys, refused

    assert run(body) == (True, False, True, [], True)


def test_expiry_follows_the_recording_and_leaves_nothing(make_state: Callable[[], State], clock: Clock) -> None:
    async def body() -> tuple[float, float, float, bool, Share | None, list[str]]:
        s = make_state()
        await s.captions.create(share(clock, grace=60, life=3600))
        live = await s.captions.set_live("s" * 22, True, 60)
        await s.captions.publish("s" * 22, [(1, "words")], "more")
        clock.now += 600
        ended = await s.captions.set_live("s" * 22, False, 60)
        clock.now += 59
        still = await s.captions.get("s" * 22) is not None
        clock.now += 2
        gone = await s.captions.get("s" * 22)
        refused = False
        try:
            await s.captions.publish("s" * 22, [(2, "late")], None)
        except ShareGone as exc:
            refused = not exc.revoked
        assert refused
        if isinstance(s, MemoryState):
            s.prune()
            left = await transcript_keys(s)
        else:
            # Redis drops the keys by their TTL, which was set from the same (injected) clock: at most the grace.
            ttls = [await s.redis.pttl(k) for k in await transcript_keys(s)]
            left = [] if all(0 < t <= 60_000 for t in ttls) else [f"ttl {ttls}"]
        await s.aclose()
        return live.expires_at, live.deadline, ended.expires_at, still, gone, left

    live_exp, deadline, ended_exp, still, gone, left = run(body)
    assert live_exp == deadline
    assert ended_exp == 1_000_000.0 + 600 + 60
    assert still and gone is None and left == []


def test_an_inbox_keeps_every_final_and_only_the_last_interim() -> None:
    async def body() -> list[tuple[str, str]]:
        box = Inbox()
        for event in [
            CaptionEvent("partial", "a"),
            CaptionEvent("partial", "ab"),
            CaptionEvent("final", "abc", 1),
            CaptionEvent("partial", "d"),
            CaptionEvent("partial", "de"),
            CaptionEvent("end", reason="revoked"),
            CaptionEvent("resync"),
        ]:
            box.put(event)
        return [(e.kind, e.text or e.reason) for e in await box.take(0.1)]

    # A resync is kept even when an end (or a state) came before it: it stands for finals this viewer lacks, older
    # than any final here, so it comes first.
    assert run(body) == [("resync", ""), ("final", "abc"), ("partial", "de"), ("end", "revoked")]


def test_an_inbox_hands_a_state_change_over_before_the_interim_pending_with_it() -> None:
    """A recording's start and its first words pending together: the viewer shows no interim while the speaker is
    paused, so the words after the start, not before it (they were dropped)."""

    async def body(events: list[CaptionEvent]) -> list[tuple[str, str]]:
        box = Inbox()
        for event in events:
            box.put(event)
        return [(e.kind, e.text or e.reason) for e in await box.take(0.1)]

    started = [CaptionEvent("state", reason="live"), CaptionEvent("partial", "hel")]
    assert run(lambda: body(started)) == [("state", "live"), ("partial", "hel")]
    paused = [CaptionEvent("partial", "hel"), CaptionEvent("state", reason="paused")]
    assert run(lambda: body(paused)) == [("state", "paused"), ("partial", "hel")]
    ended = [CaptionEvent("partial", "hel"), CaptionEvent("final", "hello.", 1), CaptionEvent("end", reason="expired")]
    assert run(lambda: body(ended)) == [("final", "hello."), ("end", "expired")]


def test_a_final_published_while_a_viewer_joins_is_sent_once(clock: Clock) -> None:
    """The race resume-by-Last-Event-ID must survive: a final lands after the viewer subscribed but before it read
    the log, so it is in both; the viewer sends it once."""
    from server.captions import viewer_events

    async def body() -> list[tuple[str | None, str | None]]:
        state = MemoryState(clock)
        await state.captions.create(share(clock))
        await state.captions.publish("s" * 22, [(1, "one")], None)
        original = state.captions.backlog

        async def racing(share_id: str, after: int) -> tuple[list[CaptionEvent], CaptionEvent | None]:
            await state.captions.publish(share_id, [(2, "two")], None)
            return await original(share_id, after)

        state.captions.backlog = racing  # type: ignore[method-assign]
        out: list[tuple[str | None, str | None]] = []
        stream = viewer_events(state, "s" * 22, 0, 0.05, "v")
        async with asyncio.timeout(5):
            async for event in stream:
                out.append((event.event, event.id))
                if len(out) == 4:
                    break
            state.captions.backlog = original  # type: ignore[method-assign]
            await state.captions.publish("s" * 22, [(3, "three")], None)
            async for event in stream:
                out.append((event.event, event.id))
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return out

    # The comment that sets the retry delay, the share's state (with the viewer's place, 0), 1 and 2 from the log,
    # then 3 live: 2 never again.
    assert run(body)[1:] == [("state", "0"), ("final", "1"), ("final", "2"), ("final", "3")]


async def wait_for_final(box: Inbox, seq: int) -> list[CaptionEvent]:
    """What `box` gets until the final numbered `seq` (at most 5 s)."""
    got: list[CaptionEvent] = []
    async with asyncio.timeout(5):
        while not any(e.kind == "final" and e.seq == seq for e in got):
            got += await box.take(0.5)
    return got


async def final_ids(stream: AsyncIterator[ServerSentEvent], until: str) -> list[str | None]:
    """The ids of the finals `stream` sends, up to the one numbered `until` (or whatever came in 3 s)."""
    out: list[str | None] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):
            async for event in stream:
                if event.event == "final":
                    out.append(event.id)
                    if event.id == until:
                        break
    return out


def test_a_viewer_that_fell_behind_gets_every_final_in_order(make_state: MakeState, clock: Clock) -> None:
    """A viewer too slow for its inbox (it overflowed: its finals were dropped, the log has them) and a final
    arriving after that: the viewer sends the log's finals first, then the later one, none lost."""
    from server.captions import viewer_events

    async def body() -> tuple[bool, list[str | None]]:
        # Inboxes of 3 finals: the batch of 4 overflows the viewer's.
        pub, view = make_state(captions_inbox_max=3), make_state(captions_inbox_max=3)
        await pub.captions.create(share(clock))
        stream = viewer_events(view, "s" * 22, 0, 5.0, "v")
        # Its retry comment and the share's state: it is subscribed, then busy (its client reads nothing).
        await anext(stream)
        await anext(stream)
        async with view.captions.subscribe("s" * 22) as probe:
            await pub.captions.publish("s" * 22, [(n, f"w{n}") for n in range(1, 5)], None)
            await pub.captions.publish("s" * 22, [(5, "w5")], None)
            # The probe is fed with the viewer's inbox, in the same step: once it has 5, so has the viewer's. An
            # inbox of the same size, it overflowed as the viewer's did.
            probed = await wait_for_final(probe, 5)
        ids = await final_ids(stream, "5")
        await stream.aclose()  # type: ignore[attr-defined]
        await pub.aclose()
        await view.aclose()
        return any(e.kind == "resync" for e in probed), ids

    overflowed, ids = run(body)
    assert overflowed and ids == ["1", "2", "3", "4", "5"]


def test_a_viewer_that_fell_behind_past_the_log_is_told_what_it_missed(make_state: MakeState, clock: Clock) -> None:
    """A viewer whose inbox overflowed while more finals than the log keeps were published: its resync reads the log,
    which starts after finals it never got, so a `gap` naming them comes before the rest."""
    from server.captions import viewer_events

    async def body() -> list[tuple[str | None, str]]:
        pub, view = make_state(captions_inbox_max=3), make_state(captions_inbox_max=3)
        await pub.captions.create(share(clock))
        stream = viewer_events(view, "s" * 22, 0, 5.0, "v")
        await anext(stream)
        await anext(stream)
        last = LOG_MAX + 10
        async with view.captions.subscribe("s" * 22) as probe:
            await pub.captions.publish("s" * 22, [(n, f"w{n}") for n in range(1, last + 1)], None)
            await wait_for_final(probe, last)
        out: list[tuple[str | None, str]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                async for event in stream:
                    out.append((event.event, str(event.data)))
                    if event.id == str(last):
                        break
        await stream.aclose()  # type: ignore[attr-defined]
        await pub.aclose()
        await view.aclose()
        return out

    out = run(body)
    assert out[0] == ("gap", '{"from": 1, "to": 10}')
    assert [int(json.loads(data)["seq"]) for kind, data in out[1:]] == list(range(11, LOG_MAX + 11))


def test_a_final_published_while_the_subscription_was_down_reaches_the_viewer(redis: RedisServer, clock: Clock) -> None:
    """The viewers' process loses its pub/sub connection, a final is published meanwhile (it reaches only the log),
    the process resubscribes and the next final arrives live before the viewer's stream reads its inbox: the viewer
    sends both, in order."""
    from server.captions import viewer_events

    async def body() -> list[str | None]:
        pub = RedisState(redis.url, timeout_s=1.0, clock=clock)
        view = RedisState(redis.url, timeout_s=1.0, clock=clock)
        await pub.captions.create(share(clock))
        stream = viewer_events(view, "s" * 22, 0, 5.0, "v")
        await anext(stream)
        await anext(stream)
        async with view.captions.subscribe("s" * 22) as probe:
            await pub.redis.client_kill_filter(_type="pubsub")
            await pub.captions.publish("s" * 22, [(1, "said during the drop")], None)
            async with asyncio.timeout(5):
                while not any(e.kind == "resync" for e in await probe.take(0.5)):
                    pass
            await pub.captions.publish("s" * 22, [(2, "said after it")], None)
            await wait_for_final(probe, 2)
        ids = await final_ids(stream, "2")
        await stream.aclose()  # type: ignore[attr-defined]
        await pub.aclose()
        await view.aclose()
        return ids

    assert run(body) == ["1", "2"]


def test_a_subscription_gone_silent_is_replaced_and_its_viewers_resync(
    redis: RedisServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis's host vanishes without a FIN or RST (a proxy silences the connections open through it, and Redis
    forgets them): the viewers' process, whose subscription only reads, notices within a ping, subscribes again,
    tells its viewers to resync (the log has what was missed), and live finals flow again."""

    async def body() -> list[tuple[str, int]]:
        with cuttable_proxy(redis.port) as proxy:
            pub = RedisState(redis.url, timeout_s=1.0, clock=clock)
            # Pings after 0.5 s of silence (not the shipped 5 s), so the test is quick.
            view = RedisState(
                f"redis://127.0.0.1:{proxy.port}/0", timeout_s=1.0, clock=clock, captions_pubsub_idle_s=0.5
            )
            await pub.captions.create(share(clock))
            async with view.captions.subscribe("s" * 22) as box:
                await pub.captions.publish("s" * 22, [(1, "before")], None)
                got = await wait_for_final(box, 1)
                assert proxy.silence() >= 1
                await pub.captions.publish("s" * 22, [(2, "during")], None)
                async with asyncio.timeout(10):
                    while not any(e.kind == "resync" for e in got):
                        got += await box.take(0.5)
                await pub.captions.publish("s" * 22, [(3, "after")], None)
                got += await wait_for_final(box, 3)
            await pub.aclose()
            await view.aclose()
        return [(e.kind, e.seq) for e in got if e.kind != "partial"]

    with caplog.at_level(logging.WARNING, logger="server.state.captions"):
        events = run(body)
    # 2 never came live (the connection was dead); the resync stands for it, then 3 arrives live.
    assert events == [("final", 1), ("resync", 0), ("final", 3)]
    # Silent for PUBSUB_IDLE_S, then no answer to the ping within the state's timeout (1 s), then a new subscription.
    assert "no answer to a ping" in caplog.text


def test_a_subscription_lost_with_no_viewer_left_waits_for_the_next_viewer(
    redis: RedisServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis goes down after the last viewer of this process left: nobody needs the subscription, so it is not
    tried again twice a second (a warning each time, thousands an hour for as long as Redis stays down); the next
    viewer, once Redis is back, subscribes afresh and gets live finals."""

    async def body() -> list[tuple[str, int]]:
        view = RedisState(redis.url, timeout_s=0.5, clock=clock)
        pub = RedisState(redis.url, timeout_s=0.5, clock=clock)
        await pub.captions.create(share(clock))
        async with view.captions.subscribe("s" * 22) as box:
            await pub.captions.publish("s" * 22, [(1, "before")], None)
            await wait_for_final(box, 1)
        redis.stop()
        await asyncio.sleep(3)
        redis.start()
        await pub.captions.create(share(clock))
        async with view.captions.subscribe("s" * 22) as box:
            await pub.captions.publish("s" * 22, [(1, "after")], None)
            got = await wait_for_final(box, 1)
        await pub.aclose()
        await view.aclose()
        return [(e.kind, e.seq) for e in got if e.kind == "final"]

    with caplog.at_level(logging.WARNING, logger="server.state.captions"):
        assert run(body) == [("final", 1)]
    lost = [r for r in caplog.records if "subscription lost" in r.getMessage()]
    assert len(lost) <= 1, [r.getMessage() for r in lost]


RECORD_FIELDS = {"token_hash", "created_at", "deadline", "expires_at", "live", "revoked", "seq", "pub_seq"}


async def record_state(s: State, share_id: str) -> str:
    """How the share's record is kept: "none", "whole, expiring", or what is wrong with it (memory: always fine)."""
    if not isinstance(s, RedisState):
        return "none" if s.sizes().get("shares", 0) == 0 else "whole, expiring"
    key = PREFIX + "cap:" + share_id
    fields = set(await s.redis.hgetall(key))
    if not fields:
        return "none"
    ttl = await s.redis.pttl(key)
    missing = RECORD_FIELDS - fields
    return "whole, expiring" if not missing and ttl > 0 else f"missing {sorted(missing)}, ttl {ttl}"


# Each request to Redis reaches it this late in the test below (a slow link); the share's record outlives its
# arrival by 1.5 of these, so a step that reads the record in one round trip and writes it in the next writes after
# it lapsed, while a check and write in one round trip (a script) finds it still there.
LINK_S = 0.4


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_share_that_lapses_during_a_revoke_or_a_state_change_is_not_brought_back(
    backend: str, clock: Clock, request: pytest.FixtureRequest
) -> None:
    """The share expires between being read and being written (one slow round trip): the write must not leave a
    record of it behind (Redis: a hash with some fields and no TTL, which every later read tripped over), and the
    share reads as gone or as it was, never as an error. Memory has no round trip (nothing runs between its read and
    its write), so there this is the plain revoke and state change, then the expiry."""

    async def body() -> list[tuple[str, str, Share | None]]:
        with contextlib.ExitStack() as link:
            # `s` makes the changes; `look` reads what they left (Redis: over a link of its own, a fast one).
            s: State
            look: State
            if backend == "memory":
                s = look = MemoryState(clock)
            else:
                server: RedisServer = request.getfixturevalue("redis")
                proxy = link.enter_context(cuttable_proxy(server.port, delay_s=LINK_S))
                # Only a hang takes 20 links (a first call's handshake takes a few round trips).
                s = RedisState(f"redis://127.0.0.1:{proxy.port}", timeout_s=20 * LINK_S, clock=clock)
                look = RedisState(server.url, timeout_s=1.0, clock=clock)
            # Redis keeps the scripts once loaded (a first call takes a round trip more to load its script): then
            # each step below is one round trip, as in production.
            await look.captions.revoke("W" * 22)
            with contextlib.suppress(ShareGone):
                await look.captions.set_live("W" * 22, True, 60)
            out: list[tuple[str, str, Share | None]] = []
            for op in ("revoke", "set_live"):
                share_id = ("R" if op == "revoke" else "L") * 22
                # Redis: the record's TTL (real time) runs out 1.5 links after the create reaches it.
                await s.captions.create(share(clock, share_id, grace=1.5 * LINK_S))
                if op == "revoke":
                    outcome = f"revoked {await s.captions.revoke(share_id)}"
                else:
                    try:
                        outcome = f"live {(await s.captions.set_live(share_id, True, 60)).live}"
                    except ShareGone as exc:
                        outcome = f"gone, revoked {exc.revoked}"
                # Past the grace by the state's clock too (memory's only clock; Redis compares it on every read).
                clock.now += 1.5 * LINK_S + 0.1
                out.append((outcome, await record_state(look, share_id), await look.captions.get(share_id)))
            for state in {s, look}:
                await state.aclose()
        return out

    (revoked, revoked_record, after_revoke), (lived, lived_record, after_live) = run(body)
    # Revoked in time (the record stays, marked, until it expires) or too late (nothing left): either way it is gone.
    assert revoked in {"revoked True", "revoked False"} and after_revoke is None
    assert revoked_record in {"none", "whole, expiring"}
    # Made live in time (it lives on to its deadline, whole) or too late (gone, and nothing left of it).
    assert (lived, lived_record, after_live and after_live.live) in {
        ("live True", "whole, expiring", True),
        ("gone, revoked False", "none", None),
    }


def test_a_record_missing_its_fields_is_a_share_gone(redis: RedisServer, clock: Clock) -> None:
    """A hash left without the share's fields (written by an older version in the race above) is no share: every
    read says gone, and neither a revoke nor a state change writes to it."""

    async def body() -> tuple[Share | None, bool, bool, dict[str, str]]:
        s = RedisState(redis.url, timeout_s=1.0, clock=clock)
        key = PREFIX + "cap:" + "P" * 22
        await s.redis.hset(key, mapping={"revoked": 1, "live": 0})
        found = await s.captions.get("P" * 22)
        revoked = await s.captions.revoke("P" * 22)
        refused = False
        try:
            await s.captions.set_live("P" * 22, True, 60)
        except ShareGone:
            refused = True
        left = await s.redis.hgetall(key)
        await s.aclose()
        return found, revoked, refused, left

    assert run(body) == (None, False, True, {"revoked": "1", "live": "0"})
