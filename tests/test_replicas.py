"""Two app processes (replicas: separate ports, one secret) sharing one real Redis behave as one app."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from server.emulators.scripted import ScriptedRecognizer
from server.emulators.wiro import WiroEmulatorOptions
from server.providers.local import LOCAL_TAG
from testkit.load import MS_PER_WORD, expected_words, pcm_at, run_load
from testkit.processes import AppProcess, app_processes
from testkit.redis_server import RedisServer
from testkit.stack import APP_SECRET, WIRO_KEY, WIRO_SECRET, Emulators, emulators
from testkit.truebar_client import transcribe_truebar

_DETAIL_NONCES = itertools.count()


@dataclass
class Cluster:
    a: AppProcess
    b: AppProcess
    redis: RedisServer
    emulators: Emulators

    def wiro_task(self, task_id: str) -> dict[str, Any]:
        """Task/Detail from the Wiro emulator, asked the way any Wiro client asks (signed, fresh nonce)."""
        # Far above the apps' (milliseconds now, from the shared store) and never the same twice: the emulator
        # refuses a nonce it has seen, and two calls can fall in one millisecond.
        nonce = str(int(time.time() * 1000) + 10**9 + next(_DETAIL_NONCES))
        signature = hmac.new(WIRO_KEY.encode(), (WIRO_SECRET + nonce).encode(), hashlib.sha256).hexdigest()
        r = httpx.post(
            self.emulators.urls["wiro"] + "/v1/Task/Detail",
            json={"taskid": task_id},
            headers={"x-api-key": WIRO_KEY, "x-nonce": nonce, "x-signature": signature},
        )
        detail: dict[str, Any] = r.json()["tasklist"][0]
        return detail

    def redis_keys(self, pattern: str) -> list[str]:
        import redis

        client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        try:
            return sorted(client.keys(pattern))
        finally:
            client.close()


ClusterFactory = Callable[..., contextlib.AbstractContextManager[Cluster]]


@pytest.fixture
def cluster(redis: RedisServer) -> ClusterFactory:
    @contextlib.contextmanager
    def make(**overrides: Any) -> Iterator[Cluster]:
        recognizer = ScriptedRecognizer(ms_per_word=MS_PER_WORD, words_per_utterance=4)
        wiro_options = WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET, max_concurrent_tasks=10_000)
        with emulators(recognizer, wiro_options=wiro_options) as emu:
            wiro = {**emu.settings["wiro"], **overrides.pop("wiro", {})}
            settings = {
                "redis_url": redis.url,
                "secret_key": APP_SECRET,
                "session_rate_per_min": 10_000,
                "max_sessions_per_client": 1_000,
                "redis_timeout_s": 0.5,
                **overrides,
                "truebar": emu.settings["truebar"],
                "wiro": wiro,
            }
            with app_processes(2, settings) as (a, b):
                yield Cluster(a, b, redis, emu)

    return make


def mint(url: str, provider: str) -> httpx.Response:
    return httpx.post(url + "/api/sessions", json={"provider": provider}, timeout=30)


async def status_of_connect(ws_url: str, token: str) -> int:
    try:
        async with websockets.connect(f"{ws_url}?access_token={token}") as ws:
            await ws.recv()
            return 101
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


def test_a_local_grant_minted_on_a_streams_on_b_once(cluster: ClusterFactory) -> None:
    with cluster() as c:
        grant = mint(c.a.url, "local").json()
        on_b = grant["ws_url"].replace(f":{c.a.port}/", f":{c.b.port}/")
        result = asyncio.run(transcribe_truebar(on_b, grant["token"], pcm_at(16_000, 2.1), tag=LOCAL_TAG))
        assert result.status_names[-1] == "FINISHED" and result.errors == []
        assert result.text.split() == expected_words(2.1)
        assert asyncio.run(status_of_connect(grant["ws_url"], grant["token"])) == 401
        assert asyncio.run(status_of_connect(on_b, grant["token"])) == 401


def test_the_rate_limit_per_client_holds_across_a_and_b(cluster: ClusterFactory) -> None:
    with cluster(session_rate_per_min=4) as c:
        # The rate limit is checked before the body: an unknown provider costs a request and answers 400.
        codes = [mint(url, "nope").status_code for url in (c.a.url, c.b.url, c.a.url, c.b.url, c.a.url, c.b.url)]
        limited = mint(c.a.url, "nope")
    assert codes == [400, 400, 400, 400, 429, 429]
    assert int(limited.headers["Retry-After"]) >= 1


def test_a_wiro_task_started_through_a_is_ended_through_b(cluster: ClusterFactory) -> None:
    with cluster() as c:
        grant = mint(c.a.url, "wiro").json()
        assert c.wiro_task(grant["task_id"])["status"] != "task_cancel"
        ended = httpx.post(f"{c.b.url}/api/sessions/wiro/{grant['session_id']}/end")
        again = httpx.post(f"{c.a.url}/api/sessions/wiro/{grant['session_id']}/end")
        assert ended.json() == {"ended": True} and again.json() == {"ended": False}
        assert c.wiro_task(grant["task_id"])["status"] == "task_cancel"
        # Never streamed to: still queued, so cancelled (Task/Kill refuses a queued task).
        assert c.emulators.wiro.state.wiro.cancels == [grant["task_id"]]


def test_a_replica_killed_while_holding_a_task_has_it_killed_by_another_at_its_deadline(
    cluster: ClusterFactory,
) -> None:
    with cluster(wiro={"task_deadline_s": 4.0, "reap_interval_s": 0.2}) as c:
        grant = mint(c.a.url, "wiro").json()
        c.a.kill()
        assert c.wiro_task(grant["task_id"])["status"] != "task_cancel"
        for _ in range(300):
            if c.emulators.wiro.state.wiro.cancels:
                break
            time.sleep(0.1)
        killed_at = time.time()
        # Never streamed to: still queued, so cancelled (Task/Kill refuses a queued task).
        assert c.emulators.wiro.state.wiro.cancels == [grant["task_id"]]
        assert c.wiro_task(grant["task_id"])["status"] == "task_cancel"
        # Killed by B at the deadline, not before it (B cannot have known of it any other way).
        assert killed_at >= grant["expires_at"]


def test_redis_stopped_mid_run_gives_503_streams_finish_and_minting_recovers(cluster: ClusterFactory) -> None:
    with cluster() as c:
        grant = mint(c.a.url, "local").json()
        audio_s = 4.1
        outcome: dict[str, Any] = {}
        stopped = threading.Event()

        async def stream() -> None:
            # Paced at real time, so Redis goes down while the stream is open.
            url = f"{grant['ws_url']}?access_token={grant['token']}"
            pcm = pcm_at(16_000, audio_s)
            result = await transcribe_truebar_paced(url, pcm, stopped)
            outcome["words"] = result

        thread = threading.Thread(target=lambda: asyncio.run(stream()))
        thread.start()
        time.sleep(1.0)
        c.redis.stop()
        stopped.set()
        refused = [mint(url, "local") for url in (c.a.url, c.b.url)]
        thread.join(60)
        c.redis.start()
        recovered = None
        for _ in range(100):
            recovered = mint(c.b.url, "local")
            if recovered.status_code == 200:
                break
            time.sleep(0.1)
    assert [r.status_code for r in refused] == [503, 503]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert refused[0].json()["error"]["code"] == "state_unavailable"
    assert outcome.get("words") == expected_words(audio_s)
    assert recovered is not None and recovered.status_code == 200


async def transcribe_truebar_paced(url: str, pcm: bytes, stopped: threading.Event) -> list[str]:
    """One Truebar-protocol session at real-time pace; the finals' words. Keeps streaming until `stopped` is set
    at least once (Redis is down while the socket is open), then sends EOS."""
    words: list[str] = []
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["status"] == "INITIALIZED"
        stage = {"task": "ASR", "exceptionHandlingPolicy": "THROW", "config": {"tag": LOCAL_TAG}}
        await ws.send(json.dumps({"type": "CONFIG", "pipeline": [stage]}))

        async def send() -> None:
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
                await asyncio.sleep(0.1)
            # A thread's event: waited for off the loop.
            await asyncio.to_thread(stopped.wait, 60)
            await ws.send(json.dumps({"type": "EOS", "lockSession": False}))

        sender = asyncio.create_task(send())
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "ERROR":
                    raise AssertionError(f"ERROR {msg}")
                if msg.get("type") == "TEXT_SEGMENT" and msg["textSegment"]["isFinal"]:
                    words += [t["text"] for t in msg["textSegment"]["tokens"] if t.get("text")]
                if msg.get("status") == "FINISHED":
                    break
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    return words


def test_two_processes_under_concurrent_local_and_emulator_sessions_lose_nothing(cluster: ClusterFactory) -> None:
    with cluster() as c:

        async def both() -> list[Any]:
            return list(
                await asyncio.gather(
                    run_load(c.a.url, 3, 3.0, 2.1, 4.0),
                    run_load(c.b.url, 3, 3.0, 2.1, 4.0),
                )
            )

        results = asyncio.run(both())
        assert c.emulators.wiro.state.wiro.active_count() == 0
    for result in results:
        assert not result.errors, result.errors[:5]
        assert result.lost_words == 0 and all(o.complete for o in result.outcomes)
        assert len(result.outcomes) >= 9


def test_captions_published_on_a_reach_viewers_on_b_and_resume_on_a(cluster: ClusterFactory) -> None:
    """Shared captions across replicas: the page publishes to A; a viewer on B sees the finals live (Redis
    pub/sub), drops, resumes on A with Last-Event-ID (the Redis log) and gets each final once; the viewer count
    is one figure for both; a revoke sent to B ends a viewer on A, and neither keeps the transcript."""
    from testkit.sse import events, open_stream

    with cluster(captions_check_s=0.2) as c:
        grant = httpx.post(c.a.url + "/api/captions", json={}).json()
        share, auth = grant["share_id"], {"Authorization": f"Bearer {grant['publish_token']}"}

        def publish(url: str, start: int, count: int) -> httpx.Response:
            batch = [{"type": "final", "text": f"f{n}", "seq": n} for n in range(start, start + count)]
            return httpx.post(f"{url}/api/captions/{share}/events", json={"events": batch}, headers=auth)

        async def watch(
            url: str, last: str | None, stop_after: int, during: Callable[[], object] | None = None
        ) -> tuple[list[int], list[str]]:
            seqs: list[int] = []
            kinds: list[str] = []
            async with (
                httpx.AsyncClient(timeout=10) as client,
                open_stream(client, f"{url}/api/captions/{share}/stream", last) as response,
            ):
                assert response.status_code == 200
                async with asyncio.timeout(10):
                    if during is not None:
                        asyncio.get_running_loop().call_later(0.3, during)
                    async for event in events(response):
                        kinds.append(event.event)
                        if event.event == "final":
                            seqs.append(int(event.json["seq"]))
                        if event.event == "end" or len(seqs) >= stop_after:
                            break
            return seqs, kinds

        assert publish(c.a.url, 1, 3).status_code == 200
        # Live on B: the backlog, then what A publishes while B's viewer is connected.
        first, _ = asyncio.run(
            watch(c.b.url, None, 5, lambda: threading.Thread(target=publish, args=(c.a.url, 4, 2)).start())
        )
        assert first == [1, 2, 3, 4, 5]
        publish(c.a.url, 4, 4)  # a retried batch overlapping what was sent: only 6 and 7 are new
        resumed, _ = asyncio.run(watch(c.a.url, "3", 4))
        assert resumed == [4, 5, 6, 7]
        status = httpx.get(f"{c.b.url}/api/captions/{share}").json()
        assert status["status"] == "active" and status["viewers"] == 0

        def revoke_on_b() -> None:
            threading.Thread(
                target=httpx.delete, args=(f"{c.b.url}/api/captions/{share}",), kwargs={"headers": auth}
            ).start()

        ended, kinds = asyncio.run(watch(c.a.url, "7", 99, revoke_on_b))
        assert ended == [] and kinds[-1] == "end"
        keys = c.redis_keys("stt:cap:*")
        assert [k for k in keys if k.endswith((":log", ":partial"))] == []
        assert httpx.get(c.a.url + grant["viewer_url"]).status_code == 410
