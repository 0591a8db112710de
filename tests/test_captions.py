"""Shared captions over HTTP on a real uvicorn: create, publish with the token, watch with SSE and resume with
Last-Event-ID (every final exactly once), the viewer cap, revoke and expiry (an injected clock) ending open streams,
the viewer page's answers, the limits, and no share id or token in a log line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from server.app import LOGIN_TTL_S, create_app
from server.emulators.scripted import ScriptedRecognizer
from server.openapi import openapi_document
from server.security import COOKIE_NAME, PasswordGateMiddleware, login_key, make_auth_cookie, redact
from server.settings import LocalSettings, Settings
from server.state import MemoryState
from server.wire import CAPTION_SEQ_MAX
from testkit.live import running
from testkit.redis_server import RedisServer
from testkit.sse import Event, events, open_stream
from tests.support.clock import Clock
from tests.test_sessions import BASE, Flaky, FlakyMemory, FlakyRedis
from tests.test_sessions import served as served_on


@contextlib.contextmanager
def app(**overrides: Any) -> Iterator[tuple[str, Clock]]:
    """The app on memory state with an injected clock, or (with a `redis_url` override) on that Redis, whose
    state the app opens itself on the real clock (the Clock is then not the app's)."""
    clock = Clock(2_000_000.0)
    settings = replace(
        Settings(secret_key="k" * 32, local=LocalSettings(enabled=False)),
        captions_check_s=0.1,
        **overrides,
    )
    state = None if settings.redis_url else MemoryState(clock)
    application = create_app(settings, local_recognizer=ScriptedRecognizer(), state=state)
    with running(application) as url:
        yield url, clock


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings that put the app's state in memory, or in a Redis of the test's own."""
    if request.param == "memory":
        return {}
    return {"redis_url": request.getfixturevalue("redis").url}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Clock]]:
    with app(captions_max_viewers=3) as s:
        yield s


def create(url: str) -> dict[str, Any]:
    r = httpx.post(url + "/api/captions", json={})
    assert r.status_code == 200, r.text
    grant: dict[str, Any] = r.json()
    return grant


def publish(url: str, grant: dict[str, Any], events_: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/api/captions/{grant['share_id']}/events",
        json={"events": events_, **extra},
        headers={"Authorization": f"Bearer {grant['publish_token']}"},
    )


def finals(*texts: str, start: int = 1) -> list[dict[str, Any]]:
    return [{"type": "final", "text": t, "seq": start + i} for i, t in enumerate(texts)]


# The most a test waits for something the server does in milliseconds: only a hang gets there.
HANG_S = 10.0


async def collect(
    url: str,
    share_id: str,
    until: int,
    last_event_id: str | None = None,
    limit: int = 1000,
    out: list[Event] | None = None,
    arrived: Callable[[], None] = lambda: None,
) -> list[Event]:
    """Events until the final numbered `until` (or an end), at most `limit` finals (then the connection drops);
    each is added to `out` as it comes, and `arrived` called."""
    out = [] if out is None else out
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, f"{url}/api/captions/{share_id}/stream", last_event_id) as response,
    ):
        assert response.status_code == 200, await response.aread()
        async with asyncio.timeout(HANG_S):
            async for event in events(response):
                out.append(event)
                arrived()
                done = [e for e in out if e.event == "final"]
                if event.event == "end" or (done and int(done[-1].json["seq"]) >= until) or len(done) >= limit:
                    break
    return out


class Viewer:
    """A viewer collecting in the background (`collect`), whose events so far a test can wait on: what the server
    does next (publish, revoke, expire, stop Redis) must find the viewer at a known point of its stream."""

    def __init__(self, url: str, share_id: str, until: int) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(collect(url, share_id, until, out=self.events, arrived=self._changed.set))
        self.task.add_done_callback(lambda _: self._changed.set())

    async def received(self, wanted: Callable[[Event], bool]) -> None:
        """Return once an event `wanted` holds for has arrived; the viewer failing or ending first fails."""
        async with asyncio.timeout(HANG_S):
            while not any(wanted(e) for e in self.events):
                if self.task.done():
                    self.task.result()
                    raise AssertionError(f"the viewer's stream ended first: {self.events}")
                self._changed.clear()
                await self._changed.wait()


def final(seq: int) -> Callable[[Event], bool]:
    return lambda e: e.event == "final" and e.id == str(seq)


def live_state(live: bool) -> Callable[[Event], bool]:
    return lambda e: e.event == "state" and e.json == {"live": live}


def test_a_viewer_gets_the_backlog_then_live_finals(served: tuple[str, Clock]) -> None:
    url, _ = served
    grant = create(url)
    assert grant["viewer_url"] == f"/captions/{grant['share_id']}"
    assert (
        publish(url, grant, [*finals("one.", "two."), {"type": "partial", "text": "thr"}], live=True).json()["seq"] == 2
    )

    async def body() -> list[Event]:
        viewer = Viewer(url, grant["share_id"], 4)
        # The backlog read (the viewer subscribed before reading it): 3 and 4 can only come live.
        await viewer.received(final(2))
        await asyncio.to_thread(publish, url, grant, finals("three.", "four.", start=3))
        return await viewer.task

    got = asyncio.run(body())
    # The share's state first (a recording is being published), so a screen can say so before any words.
    assert (got[0].event, got[0].json) == ("state", {"live": True})
    assert [(e.id, e.json["text"]) for e in got if e.event == "final"] == [
        ("1", "one."),
        ("2", "two."),
        ("3", "three."),
        ("4", "four."),
    ]
    assert [e.id for e in got if e.event == "partial"] == [None] * len([e for e in got if e.event == "partial"])


def test_a_dropped_viewer_resumes_with_every_final_exactly_once(served: tuple[str, Clock]) -> None:
    """The viewer drops after each couple of finals while the page keeps publishing (and retries a batch): the
    finals it sees, over all its connections, are 1..N once each and in order."""
    url, _ = served
    grant = create(url)
    n = 30

    async def publisher() -> None:
        for seq in range(1, n + 1):
            batch = [{"type": "partial", "text": f"w{seq}"}, *finals(f"w{seq}.", start=seq)]
            await asyncio.to_thread(publish, url, grant, batch)
            if seq % 7 == 0:  # a retried request: nothing new
                await asyncio.to_thread(publish, url, grant, batch)
            await asyncio.sleep(0.01)

    async def viewer() -> list[int]:
        seen: list[int] = []
        last: str | None = None
        while not seen or seen[-1] < n:
            got = await collect(url, grant["share_id"], n, last, limit=2)
            fin = [e for e in got if e.event == "final"]
            seen += [int(e.json["seq"]) for e in fin]
            last = fin[-1].id if fin else last
        return seen

    async def body() -> list[int]:
        seen, _ = await asyncio.gather(viewer(), publisher())
        return seen

    assert asyncio.run(body()) == list(range(1, n + 1))


def test_the_viewer_cap_holds_and_frees_places(served: tuple[str, Clock]) -> None:
    url, _ = served
    grant = create(url)
    stream = f"{url}/api/captions/{grant['share_id']}/stream"

    async def body() -> tuple[list[int], int, int]:
        async with httpx.AsyncClient(timeout=10) as client:
            async with contextlib.AsyncExitStack() as stack:
                codes = []
                for _ in range(4):
                    r = await stack.enter_async_context(open_stream(client, stream))
                    codes.append(r.status_code)
                status = (await client.get(f"{url}/api/captions/{grant['share_id']}")).json()
            # Closed: a place is free once the server has noticed (and released the leases), which its count says.
            async with asyncio.timeout(HANG_S):
                share = f"{url}/api/captions/{grant['share_id']}"
                while (await client.get(share)).json()["viewers"]:  # noqa: ASYNC110 - a count over HTTP, no event
                    await asyncio.sleep(0.02)
            async with open_stream(client, stream) as again:
                return codes, status["viewers"], again.status_code

    codes, viewers, again = asyncio.run(body())
    assert codes == [200, 200, 200, 429] and viewers == 3 and again == 200


def test_a_head_request_to_the_stream_holds_no_place(served: tuple[str, Clock]) -> None:
    """Starlette answers HEAD on a GET route, and a HEAD never runs the stream whose end frees the place: more HEADs
    than the cap (3 here) once kept every viewer out for the lease's length."""
    url, _ = served
    grant = create(url)
    stream = f"{url}/api/captions/{grant['share_id']}/stream"
    for _ in range(4):
        r = httpx.head(stream, timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r
    assert httpx.get(f"{url}/api/captions/{grant['share_id']}").json()["viewers"] == 0
    assert httpx.head(f"{url}/api/captions/{'x' * 22}/stream", timeout=10).status_code == 404

    async def body() -> tuple[list[int], int]:
        async with httpx.AsyncClient(timeout=10) as client:
            async with contextlib.AsyncExitStack() as stack:
                codes = [(await stack.enter_async_context(open_stream(client, stream))).status_code for _ in range(3)]
                # Every place taken: a HEAD is answered as a GET would be.
                head = (await client.head(stream)).status_code
            # Closed: the places are free again before the next test on this app.
            async with asyncio.timeout(HANG_S):
                share = f"{url}/api/captions/{grant['share_id']}"
                while (await client.get(share)).json()["viewers"]:  # noqa: ASYNC110 - a count over HTTP, no event
                    await asyncio.sleep(0.02)
        return codes, head

    assert asyncio.run(body()) == ([200, 200, 200], 429)


def test_a_malformed_last_event_id_reads_from_the_start_and_holds_no_place(served: tuple[str, Clock]) -> None:
    """Last-Event-ID is the client's to send: "²" (Latin-1 0xB2, a digit to str.isdigit) or any other junk is read
    as no id (the whole backlog), never a 500 that keeps a viewer's place for the lease's length."""
    url, _ = served
    grant = create(url)
    publish(url, grant, finals("one.", "two."))
    for raw in (b"\xb2", b"\xb9\xb3", b"-1", b"1e3", b"x", b"9" * 40):
        with httpx.stream(
            "GET",
            f"{url}/api/captions/{grant['share_id']}/stream",
            headers=[(b"accept", b"text/event-stream"), (b"last-event-id", raw)],
            timeout=10,
        ) as response:
            assert response.status_code == 200, raw
            text = ""
            for chunk in response.iter_text():
                text += chunk
                if "two." in text:
                    break
            assert "one." in text and "two." in text, raw
    status = httpx.get(f"{url}/api/captions/{grant['share_id']}").json()
    assert status["viewers"] < status["max_viewers"]


def test_revoke_ends_open_streams_and_the_link(served: tuple[str, Clock]) -> None:
    url, _ = served
    grant = create(url)
    publish(url, grant, finals("private words."))

    async def body() -> list[Event]:
        viewer = Viewer(url, grant["share_id"], 99)
        # Watching (a viewer arriving after the revoke is refused its stream, never told "revoked").
        await viewer.received(final(1))
        r = await asyncio.to_thread(
            httpx.delete,
            f"{url}/api/captions/{grant['share_id']}",
            headers={"Authorization": f"Bearer {grant['publish_token']}"},
        )
        assert r.json() == {"revoked": True}
        return await viewer.task

    got = asyncio.run(body())
    assert got[-1].event == "end" and got[-1].json == {"reason": "revoked"}
    page = httpx.get(url + grant["viewer_url"])
    assert page.status_code == 410 and "stopped sharing" in page.text
    assert "private words" not in page.text
    assert httpx.get(f"{url}/api/captions/{grant['share_id']}/stream").status_code == 410
    assert publish(url, grant, finals("more.", start=2)).status_code == 410


def test_expiry_ends_open_streams_after_the_grace(served: tuple[str, Clock]) -> None:
    url, clock = served
    grant = create(url)
    publish(url, grant, finals("hello."), live=True)

    async def body() -> list[Event]:
        viewer = Viewer(url, grant["share_id"], 99)
        await viewer.received(live_state(live=True))
        # The recording ends while the viewer watches: it is told, then the share expires after the grace.
        ended = await asyncio.to_thread(lambda: publish(url, grant, [], live=False).json())
        assert ended["live"] is False and ended["expires_at"] == pytest.approx(clock.now + 1800)
        # Told before it expires (an expired share's viewer gets the end at once, and no state after it).
        await viewer.received(live_state(live=False))
        clock.now += 1801
        return await viewer.task

    try:
        got = asyncio.run(body())
    finally:
        clock.now -= 1801
    assert got[-1].event == "end" and got[-1].json == {"reason": "expired"}
    assert [e.json["live"] for e in got if e.event == "state"] == [True, False]
    clock.now += 1801
    try:
        assert httpx.get(url + grant["viewer_url"]).status_code == 404
    finally:
        clock.now -= 1801


def test_every_answer_says_how_long_the_share_has_left_on_the_servers_clock() -> None:
    # A browser's clock may be an hour off the server's: the page counts expires_in from when an answer arrives, so
    # each answer carries it, the seconds from the injected clock's now to its expires_at.
    with app(captions_grace_s=600.0, captions_max_s=3600.0) as (url, clock):
        grant = create(url)
        assert grant["expires_at"] == pytest.approx(clock.now + 600)
        assert grant["expires_in"] == pytest.approx(600)
        clock.now += 100
        status = httpx.get(f"{url}/api/captions/{grant['share_id']}").json()
        assert status["expires_at"] == grant["expires_at"]
        assert status["expires_in"] == pytest.approx(500)
        started = publish(url, grant, finals("hello."), live=True).json()
        assert started["expires_in"] == pytest.approx(started["expires_at"] - clock.now)
        assert started["expires_in"] > 0
        clock.now += 200
        ended = publish(url, grant, [], live=False).json()
        assert ended["expires_at"] == pytest.approx(clock.now + 600)
        assert ended["expires_in"] == pytest.approx(600)
        clock.now += 250
        status = httpx.get(f"{url}/api/captions/{grant['share_id']}").json()
        assert status["expires_in"] == pytest.approx(350)
        assert status["expires_in"] == pytest.approx(status["expires_at"] - clock.now)


def test_publishing_needs_the_token_and_stays_within_limits(served: tuple[str, Clock]) -> None:
    url, _ = served
    grant = create(url)
    wrong = {**grant, "publish_token": "x" * 43}
    assert publish(url, wrong, finals("a.")).status_code == 403
    assert publish(url, grant, finals(*["a."] * 51)).status_code == 400
    assert publish(url, grant, finals("a" * 2001)).status_code == 400
    assert publish(url, grant, [{"type": "final", "text": "no number"}]).status_code == 400
    assert (
        publish(
            url, grant, [{"type": "final", "text": "b", "seq": 2}, {"type": "final", "text": "a", "seq": 1}]
        ).status_code
        == 400
    )
    foreign = httpx.post(
        f"{url}/api/captions/{grant['share_id']}/events",
        json={"events": []},
        headers={"Authorization": f"Bearer {grant['publish_token']}", "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert httpx.get(f"{url}/api/captions/{'A' * 22}").status_code == 404
    assert httpx.get(f"{url}/captions/not-an-id").status_code == 404


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_final_cut_inside_an_emoji_reaches_viewers_and_the_next_ones_follow(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """A final cut inside an emoji (the page cut at 2000 UTF-16 units) arrives with a lone surrogate, `\\ud83d` in
    the JSON, which no UTF-8 can encode: Redis refused it (a 500), the page retried the same batch forever and no
    later final went out. The lone half is shown as U+FFFD, and the finals after it follow."""
    overrides = {"redis_url": request.getfixturevalue("redis").url} if backend == "redis" else {}
    settings = replace(
        Settings(secret_key="k" * 32, local=LocalSettings(enabled=False)), captions_check_s=0.1, **overrides
    )
    state = MemoryState() if backend == "memory" else None
    with running(create_app(settings, local_recognizer=ScriptedRecognizer(), state=state)) as url:
        grant = create(url)
        cut = httpx.post(
            f"{url}/api/captions/{grant['share_id']}/events",
            content='{"events": [{"type": "final", "seq": 1, "text": "' + "a" * 1999 + '\\ud83d"}]}',
            headers={"Authorization": f"Bearer {grant['publish_token']}", "Content-Type": "application/json"},
        )
        assert cut.status_code == 200, cut.text
        assert publish(url, grant, finals("next.", start=2)).status_code == 200
        got = asyncio.run(collect(url, grant["share_id"], 2))
    assert [e.json["text"] for e in got if e.event == "final"] == ["a" * 1999 + "\ufffd", "next."]


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_finals_are_numbered_up_to_the_largest_safe_integer_on_either_store(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """The Redis store compares finals' numbers in Lua, whose numbers are doubles: 2**53 and 2**53 + 1 are one
    double there, so the second final was taken for a retry and dropped with a 200 (the memory store kept it).
    Numbers stop at 2**53 - 1, the last where each is a double of its own, alike on both stores."""
    overrides = {"redis_url": request.getfixturevalue("redis").url} if backend == "redis" else {}
    settings = replace(Settings(secret_key="k" * 32, local=LocalSettings(enabled=False)), **overrides)
    state = MemoryState() if backend == "memory" else None
    with running(create_app(settings, local_recognizer=ScriptedRecognizer(), state=state)) as url:
        grant = create(url)
        kept = publish(url, grant, finals("one.", "two.", start=CAPTION_SEQ_MAX - 1))
        assert kept.status_code == 200 and kept.json()["seq"] == 2, kept.text
        above = publish(url, grant, finals("three.", start=CAPTION_SEQ_MAX + 1))
        assert above.status_code == 400 and above.json()["error"]["code"] == "bad_events", above.text
        got = asyncio.run(collect(url, grant["share_id"], 2))
    assert [e.json["text"] for e in got if e.event == "final"] == ["one.", "two."]
    seq = openapi_document([])["components"]["schemas"]["CaptionItem"]["properties"]["seq"]
    assert (seq["minimum"], seq["maximum"]) == (1, CAPTION_SEQ_MAX) == (1, 2**53 - 1)


def test_an_expired_share_leaves_memory_even_with_nothing_else_happening() -> None:
    clock = Clock(2_000_000.0)
    state = MemoryState(clock)
    settings = replace(
        Settings(secret_key="k" * 32, local=LocalSettings(enabled=False)), captions_grace_s=60.0, state_sweep_s=0.05
    )
    with running(create_app(settings, local_recognizer=ScriptedRecognizer(), state=state)) as url:
        grant = create(url)
        publish(url, grant, finals("words to forget."))
        assert state.sizes()["shares"] == 1 and state.sizes()["share_logs"] == 1
        clock.now += 61
        deadline = time.monotonic() + 5
        while state.sizes()["shares"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.sizes()["shares"] == 0 and state.sizes()["share_logs"] == 0


def test_a_redis_outage_ends_open_streams_quietly_and_they_resume(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis hanging mid-stream (SIGSTOP: it answers nothing) ends the viewer's stream without an error in the
    app's log (the browser then reconnects by itself); once Redis answers again, the viewer resumes by
    Last-Event-ID with nothing repeated."""
    settings = replace(
        Settings(secret_key="k" * 32, local=LocalSettings(enabled=False)),
        captions_check_s=0.1,
        redis_url=redis.url,
        redis_timeout_s=0.5,
    )
    # The app opens its own Redis state from the settings (and closes it on the way out).
    with running(create_app(settings, local_recognizer=ScriptedRecognizer())) as url:
        grant = create(url)
        publish(url, grant, finals("one.", "two."))

        async def body() -> list[Event]:
            viewer = Viewer(url, grant["share_id"], 99)
            await viewer.received(final(2))
            assert redis.process is not None
            redis.process.send_signal(signal.SIGSTOP)
            try:
                return await viewer.task
            finally:
                redis.process.send_signal(signal.SIGCONT)

        with caplog.at_level(logging.WARNING):
            got = asyncio.run(body())
        assert [e.id for e in got if e.event == "final"] == ["1", "2"] and got[-1].event == "final"
        assert "Exception in ASGI application" not in caplog.text
        publish(url, grant, finals("three.", start=3))
        again = asyncio.run(collect(url, grant["share_id"], 3, last_event_id="2"))
        assert [e.json["text"] for e in again if e.event == "final"] == ["three."]


def test_open_shares_per_client_are_capped_and_freed_when_stopped_or_expired() -> None:
    with app(captions_max_shares_per_client=2) as (url, clock):
        live, idle = create(url), create(url)
        refused = httpx.post(url + "/api/captions", json={})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_shares"
        assert "stop sharing one first" in refused.json()["error"]["message"]
        assert int(refused.headers["Retry-After"]) >= 1
        stopped = httpx.delete(
            f"{url}/api/captions/{idle['share_id']}", headers={"Authorization": f"Bearer {idle['publish_token']}"}
        )
        assert stopped.json() == {"revoked": True}
        create(url)  # the stopped share's place is free
        # A live share keeps its place past the grace (publishing renews it); an idle one's lapses with the share.
        assert publish(url, live, finals("hello."), live=True).status_code == 200
        clock.now += 1801
        create(url)
        assert httpx.post(url + "/api/captions", json={}).status_code == 429


def test_the_publish_rate_is_limited_per_share() -> None:
    with app(captions_publish_rate_per_min=5) as (url, _):
        grant = create(url)
        codes = [publish(url, grant, []).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]


def test_the_viewer_page_runs_under_the_csp_and_opens_without_the_password() -> None:
    with app(app_password="pw") as (url, _), httpx.Client() as client:
        # Made by a logged-in page.
        client.post(url + "/login", data={"password": "pw"})
        grant = client.post(url + "/api/captions", json={}).json()
        anonymous = httpx.get(url + grant["viewer_url"], headers={"Accept": "text/html"})
        assert anonymous.status_code == 200
        csp = anonymous.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "<script>" not in anonymous.text
        assert httpx.get(f"{url}/api/captions/{grant['share_id']}").status_code == 200
        # Everything else still needs the login, the viewer's links included when written.
        assert httpx.post(url + "/api/captions", json={}).status_code == 401
        assert httpx.delete(f"{url}/api/captions/{grant['share_id']}").status_code == 401
        for asset in ("main.js", "viewer.js", "overlay.js", "wire.js", "viewer.css"):
            assert PasswordGateMiddleware.OPEN_VERSIONED.fullmatch(f"/static/captions/{asset}")


def test_a_share_is_published_and_ended_by_its_token_after_the_login_lapsed() -> None:
    """With APP_PASSWORD, the login (12 h) may lapse while a share it made (up to 4 h) is still being published: the
    page's publish and end requests, which carry the share's publish token, still go through (the route checks the
    token), so the viewers keep getting captions. Nothing else opens to a bearer token without the login."""
    with app(app_password="pw") as (url, _), httpx.Client() as client:
        client.post(url + "/login", data={"password": "pw"})
        grant = client.post(url + "/api/captions", json={}).json()
        share_url = f"{url}/api/captions/{grant['share_id']}"
        bearer = {"Authorization": f"Bearer {grant['publish_token']}"}
        lapsed = make_auth_cookie(login_key("k" * 32, "pw"), LOGIN_TTL_S, now=time.time() - LOGIN_TTL_S - 1)
        # The browser dropped the cookie at its max-age, or still sends the lapsed one.
        for cookie in ({}, {"Cookie": f"{COOKIE_NAME}={lapsed}"}):
            n = 1 if not cookie else 2
            r = httpx.post(share_url + "/events", json={"events": finals(f"w{n}.", start=n)}, headers=bearer | cookie)
            assert r.status_code == 200, r.text
        got = asyncio.run(collect(url, grant["share_id"], 2))
        assert [e.json["text"] for e in got if e.event == "final"] == ["w1.", "w2."]
        # The route still checks the token.
        wrong = {"Authorization": "Bearer " + "x" * 43}
        assert httpx.post(share_url + "/events", json={"events": []}, headers=wrong).status_code == 403
        # Without a bearer token, or anywhere else, the login is still needed.
        assert httpx.post(share_url + "/events", json={"events": []}).status_code == 401
        assert httpx.delete(share_url, headers={"Authorization": "Basic x"}).status_code == 401
        for method, path in [
            ("POST", "/api/captions"),
            ("POST", f"/api/captions/{grant['share_id']}"),
            ("DELETE", f"/api/captions/{grant['share_id']}/events"),
            ("POST", "/api/sessions"),
            ("GET", "/api/providers"),
        ]:
            assert httpx.request(method, url + path, json={}, headers=bearer).status_code == 401, (method, path)
        # The end, by the token alone.
        ended = httpx.delete(share_url, headers=bearer)
        assert ended.status_code == 200 and ended.json() == {"revoked": True}


def test_share_ids_never_reach_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    line = '127.0.0.1:5 - "GET /api/captions/AbCdEfGhIjKlMnOpQrStUv/stream HTTP/1.1" 200'
    assert redact(line) == '127.0.0.1:5 - "GET /api/captions/***/stream HTTP/1.1" 200'
    with app() as (url, _), caplog.at_level(logging.DEBUG):
        grant = create(url)
        publish(url, grant, finals("a."))
        httpx.get(url + grant["viewer_url"])
        httpx.delete(
            f"{url}/api/captions/{grant['share_id']}", headers={"Authorization": f"Bearer {grant['publish_token']}"}
        )
    # The server's loggers (the test's own httpx client logs the URLs it asked for: not the server's log).
    server_records = [r for r in caplog.records if r.name.split(".")[0] in {"server", "uvicorn"}]
    assert any(r.name == "server.captions" for r in server_records)
    text = "\n".join(r.getMessage() for r in server_records)
    assert grant["share_id"] not in text and grant["publish_token"] not in text


async def events_for(
    url: str, share_id: str, seconds: float, query: str = "", last_event_id: str | None = None
) -> list[Event]:
    """What a viewer opening the stream (with this query string, this Last-Event-ID) is sent in `seconds`."""
    out: list[Event] = []
    with contextlib.suppress(TimeoutError):
        async with (
            asyncio.timeout(seconds),
            httpx.AsyncClient(timeout=10) as client,
            open_stream(client, f"{url}/api/captions/{share_id}/stream{query}", last_event_id) as response,
        ):
            async for event in events(response):
                out.append(event)
    return out


def test_a_cancelled_recordings_interim_is_not_shown_to_viewers_joining_in_the_pause(backend: dict[str, Any]) -> None:
    """The page's last request of a recording: `live: false` (after Cancel, also an empty interim). The words being
    recognised then were served to every viewer joining during the pause as the line being said."""
    with app(**backend) as (url, _clock):
        grant = create(url)
        publish(url, grant, [*finals("hello."), {"type": "partial", "text": "my password is hunter2"}], live=True)
        assert publish(url, grant, [], live=False).status_code == 200
        seen = asyncio.run(events_for(url, grant["share_id"], 1.0))
    assert [(e.event, e.json) for e in seen] == [("state", {"live": False}), ("final", {"text": "hello.", "seq": 1})]


def test_a_viewer_resuming_past_the_kept_log_is_told_it_missed_captions(backend: dict[str, Any]) -> None:
    """A phone that slept through 600 finals resumes after its 10th: the log keeps the last 500, so 11 to 100 are
    gone. A `gap` event says so before the finals (by Last-Event-ID, or `?after=` from a new stream); resuming
    within the log, or joining afresh, has none. A viewer here before the first final has the place 0 (its first
    event's id, which EventSource sends back): it is told it missed 1 to 100, not served as one joining afresh."""
    with app(**backend) as (url, _clock):
        grant = create(url)
        early = asyncio.run(events_for(url, grant["share_id"], 0.5))
        assert [(e.event, e.id) for e in early] == [("state", "0")]
        for start in range(1, 601, 50):
            texts = [f"s{i}." for i in range(start, start + 50)]
            assert publish(url, grant, finals(*texts, start=start), live=True).status_code == 200

        def seen(query: str = "", last_event_id: str | None = None) -> list[tuple[str, Any]]:
            got = asyncio.run(events_for(url, grant["share_id"], 1.0, query, last_event_id))
            return [(e.event, e.json if e.event == "gap" else e.json.get("seq")) for e in got][:4]

        assert seen(last_event_id="10") == [
            ("state", None),
            ("gap", {"from": 11, "to": 100}),
            ("final", 101),
            ("final", 102),
        ]
        assert seen("?after=10") == seen(last_event_id="10")
        assert seen(last_event_id="0")[:3] == [("state", None), ("gap", {"from": 1, "to": 100}), ("final", 101)]
        assert seen("?after=0") == seen(last_event_id="0")
        # The later of the two places counts: EventSource's own reconnect of a stream opened with ?after=.
        assert seen("?after=10", last_event_id="150")[1:3] == [("final", 151), ("final", 152)]
        assert seen(last_event_id="150")[1:3] == [("final", 151), ("final", 152)]
        assert seen()[1:3] == [("final", 101), ("final", 102)]
        for bad in ("-1", "x", "1.5", str(CAPTION_SEQ_MAX + 1)):
            r = httpx.get(f"{url}/api/captions/{grant['share_id']}/stream?after={bad}")
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_after", (bad, r.text)
    doc = openapi_document([])["paths"]["/api/captions/{share_id}/stream"]["get"]
    assert "`gap`" in doc["summary"] and "400" in doc["responses"]
    assert [p["schema"] for p in doc["parameters"] if p["name"] == "after"] == [
        {"type": "integer", "minimum": 0, "maximum": CAPTION_SEQ_MAX}
    ]


@pytest.fixture(params=["memory", "redis"])
def flaky(request: pytest.FixtureRequest) -> Flaky:
    """State on memory or on a Redis of the test's own, whose calls a test can make fail or run late
    (tests/test_sessions.py)."""
    if request.param == "memory":
        return FlakyMemory()
    return FlakyRedis(request.getfixturevalue("redis"))


def test_a_share_whose_admission_ran_after_its_timeout_holds_no_place(flaky: Flaky) -> None:
    """A slow store ran the share's admission but answered too late: the 503 leaves no place taken."""
    app = create_app(Settings(captions_max_shares_per_client=1), state=flaky, local_recognizer=ScriptedRecognizer())
    with TestClient(served_on(app, flaky), base_url=BASE) as client:
        # One share made and stopped first: the scripts are loaded (a late first call would be a NOSCRIPT error).
        first = client.post("/api/captions", json={}).json()
        stop = {"Authorization": f"Bearer {first['publish_token']}"}
        assert client.delete(f"/api/captions/{first['share_id']}", headers=stop).json() == {"revoked": True}
        flaky.late.add("admit")
        refused = client.post("/api/captions", json={})
        again = client.post("/api/captions", json={})
    assert refused.status_code == 503 and again.status_code == 200, again.text


def test_a_stopped_share_frees_its_owners_place_from_anywhere_and_when_stopped_again(flaky: Flaky) -> None:
    """Stop sharing from another address (a phone moved from Wi-Fi to mobile data) frees the place where the share
    took it; a stop whose release the store failed is still a stop, and a second stop frees the place."""
    app = create_app(Settings(captions_max_shares_per_client=1), state=flaky, local_recognizer=ScriptedRecognizer())
    with TestClient(served_on(app, flaky), base_url=BASE) as client:

        def share() -> httpx.Response:
            return client.post("/api/captions", json={}, headers={"X-Test-Client": "10.0.0.1"})

        def stop(grant: dict[str, Any], address: str) -> httpx.Response:
            auth = {"Authorization": f"Bearer {grant['publish_token']}", "X-Test-Client": address}
            return client.delete(f"/api/captions/{grant['share_id']}", headers=auth)

        moved = share().json()
        live = client.post(
            f"/api/captions/{moved['share_id']}/events",
            json={"events": [], "live": True},
            headers={"Authorization": f"Bearer {moved['publish_token']}", "X-Test-Client": "10.0.0.2"},
        )
        assert live.status_code == 200 and stop(moved, "10.0.0.3").json() == {"revoked": True}
        failed = share().json()
        flaky.failing.add("release")
        first_stop = stop(failed, "10.0.0.1")
        flaky.failing.clear()
        held = share()
        second_stop = stop(failed, "10.0.0.1")
        after = share()
    assert first_stop.status_code == 200 and first_stop.json() == {"revoked": True}
    assert held.status_code == 429 and second_stop.json() == {"revoked": False}
    assert after.status_code == 200, after.text
