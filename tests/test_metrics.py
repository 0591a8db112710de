"""GET /metrics (Prometheus text format) scraped during and after a real session through the embedded engine."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.speech import load_human
from server.__main__ import bury_dead_workers
from server.app import create_app
from server.emulators.scripted import ScriptedRecognizer
from server.engine.sphinx import PocketsphinxRecognizer
from server.metrics import Metrics
from server.providers.local import LOCAL_TAG
from server.settings import Settings
from testkit.live import running, wait_ready
from testkit.truebar_client import config_message

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def session_with_scrapes(url: str, pcm: bytes) -> tuple[dict, dict, list[dict]]:  # type: ignore[type-arg]
    async with httpx.AsyncClient() as client:
        grant = (await client.post(url + "/api/sessions", json={"provider": "local"})).json()
    messages: list[dict] = []  # type: ignore[type-arg]
    async with websockets.connect(f"{grant['ws_url']}?access_token={grant['token']}") as ws:
        messages.append(json.loads(await ws.recv()))  # INITIALIZED
        await ws.send(config_message(LOCAL_TAG))
        half = len(pcm) // 2 // 1600 * 1600
        for i in range(0, half, 1600):
            await ws.send(pcm[i : i + 1600])
        during = await scrape(url)
        for i in range(half, len(pcm), 1600):
            await ws.send(pcm[i : i + 1600])
        await ws.send(json.dumps({"type": "EOS", "lockSession": False}))
        async for raw in ws:
            messages.append(json.loads(raw))
            if messages[-1].get("status") == "FINISHED":
                break
    for _ in range(400):
        # The handler counts the stream's end just after the socket closes; and a job whose final fell back (the
        # machine busy) runs on in the accurate pass until it ends, counted in the queue until then.
        after = await scrape(url)
        if after.get(("stt_engine_streams_open", ())) == 0 and after.get(("stt_engine_queue_depth", ())) == 0:
            break
        await asyncio.sleep(0.05)
    return during, after, messages


def test_metrics_during_and_after_a_real_session(whisper_model_cache: Path) -> None:
    settings = Settings.from_env({"LOCAL_MODEL_CACHE": str(whisper_model_cache)})
    # Two recorded utterances with a pause: two finals from the accurate pass.
    pcm = bytes(16_000) + load_human("goforward.wav") + bytes(32_000) + load_human("cards-003.wav") + bytes(32_000)
    with running(create_app(settings)) as url:
        wait_ready(url)
        during, after, messages = asyncio.run(session_with_scrapes(url, pcm))
    finals = [m for m in messages if m.get("type") == "TEXT_SEGMENT" and m["textSegment"]["isFinal"]]
    assert len(finals) >= 2
    assert during[("stt_engine_streams_open", ())] == 1
    assert during[("stt_grants_total", (("provider", "local"),))] == 1
    assert after[("stt_engine_streams_open", ())] == 0
    assert after[("stt_engine_streams_ended_total", (("code", "1000"), ("outcome", "FINISHED")))] == 1
    assert after[("stt_engine_first_interim_seconds_count", ())] >= 2
    got = after.get(("stt_engine_final_seconds_count", (("source", "accurate"),)), 0) + after.get(
        ("stt_engine_final_seconds_count", (("source", "fallback"),)), 0
    )
    assert got == len([f for f in finals if f["textSegment"]["tokens"]])
    assert after[("stt_engine_queue_depth", ())] == 0
    assert after[("stt_event_loop_lag_seconds_count", ())] >= 1
    # Exported from the start (how many depends on how fast this machine decodes a client that sends at once).
    assert ("stt_engine_shed_utterances_total", ()) in after


def test_a_final_whisper_wrote_in_part_counts_as_accurate_latency_with_its_own_reason() -> None:
    """A "skipped" final waited for Whisper (its latency is an accurate final's) and is counted by its reason,
    apart from the fallbacks an operator reads as load."""
    metrics = Metrics()
    metrics.final_after(0.4, "skipped", accurate=True)
    metrics.final_after(2.0, "slow", accurate=False)
    found = samples(generate_latest(metrics.registry).decode())
    assert found[("stt_engine_final_seconds_count", (("source", "accurate"),))] == 1
    assert found[("stt_engine_final_seconds_count", (("source", "fallback"),))] == 1
    assert found[("stt_engine_fallbacks_total", (("reason", "skipped"),))] == 1


def test_speech_only_the_loose_detector_heard_is_counted_by_outcome() -> None:
    metrics = Metrics()
    for outcome in ("final", "dropped", "final", "lost"):
        metrics.unheard(outcome)
    got = samples(generate_latest(metrics.registry).decode())
    assert [got[("stt_engine_unheard_total", (("outcome", o),))] for o in ("final", "dropped", "lost")] == [2, 1, 1]


def test_windows_decoded_again_without_the_words_said_are_counted() -> None:
    metrics = Metrics()
    metrics.decoded_again()
    metrics.decoded_again()
    assert samples(generate_latest(metrics.registry).decode())[("stt_engine_decoded_again_total", ())] == 2


def test_utterances_the_fast_pass_shed_reach_metrics() -> None:
    """The app hands its fast pass the counter: what the recognizer reports shows in /metrics."""
    recognizer = PocketsphinxRecognizer(mode="thread", workers=1, max_sessions=1)
    with running(create_app(Settings(), local_recognizer=recognizer)) as url:
        assert recognizer.on_shed is not None
        recognizer.on_shed(2)
        recognizer.on_shed(1)
        found = asyncio.run(scrape(url))
    assert found[("stt_engine_shed_utterances_total", ())] == 3


def test_a_client_s_own_close_code_is_counted_as_client_not_as_a_label_of_its_choosing() -> None:
    """Review: the code a client closed with became a label value, so clients could make thousands of series (and
    blur what 1013, 1011 and 1008 mean: codes the server sent)."""

    async def close_with(url: str, code: int) -> None:
        async with httpx.AsyncClient() as client:
            grant = (await client.post(url + "/api/sessions", json={"provider": "local"})).json()
        async with websockets.connect(f"{grant['ws_url']}?access_token={grant['token']}") as ws:
            await ws.recv()  # INITIALIZED
            await ws.send(config_message(LOCAL_TAG))
            await ws.recv()  # CONFIGURED
            await ws.send(bytes(3200))
            await ws.close(code)

    async def scenario(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        for code in (4321, 4999, 1000):
            await close_with(url, code)
        for _ in range(200):
            after = await scrape(url)
            if after.get(("stt_engine_streams_open", ())) == 0:
                ended = {k: v for k, v in after.items() if k[0] == "stt_engine_streams_ended_total"}
                if sum(ended.values()) == 3:
                    return ended
            await asyncio.sleep(0.05)
        raise AssertionError("the streams' ends were not counted")

    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer())) as url:
        ended = asyncio.run(scenario(url))
    assert ended == {("stt_engine_streams_ended_total", (("code", "client"), ("outcome", "CANCELED"))): 3}


WORKER = """
import asyncio, sys
from pathlib import Path
from server.metrics import Metrics

metrics = Metrics(Path(sys.argv[1]))
metrics.grants.labels("truebar").inc(int(sys.argv[2]))
metrics.streams_open.inc(2)
metrics.watch_queue(lambda: 3)

async def serve() -> None:
    async with metrics.watching_loop():
        await asyncio.sleep(0.3)

asyncio.run(serve())
if sys.argv[3] == "stops":
    metrics.retire()
"""


def test_workers_sharing_a_folder_are_served_as_one_sum(tmp_path: Path) -> None:
    """prometheus-client's multiprocess mode, as `--workers` sets it up (the variable set before the library is
    imported): counters add up, a stopped worker's counts stay; open streams and the queue (written by the loop
    watcher) add up the living workers only, until the supervisor marks one killed dead."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for grants, end in ((5, "stops"), (7, "killed")):
        subprocess.run([sys.executable, "-c", WORKER, str(tmp_path), str(grants), end], cwd=ROOT, env=env, check=True)
    # Read as a worker's /metrics reads it (the files alone: this process needs no multiprocess mode).
    found = samples(Metrics(tmp_path).exposition().decode())
    assert found[("stt_grants_total", (("provider", "truebar"),))] == 12
    assert found[("stt_engine_streams_open", ())] == 2
    assert found[("stt_engine_queue_depth", ())] == 3
    assert found[("stt_event_loop_lag_seconds_count", ())] >= 2
    bury_dead_workers(tmp_path, set())
    found = samples(Metrics(tmp_path).exposition().decode())
    assert found[("stt_grants_total", (("provider", "truebar"),))] == 12
    assert ("stt_engine_streams_open", ()) not in found


def test_one_process_serves_its_registry_and_reads_the_queue_at_each_scrape() -> None:
    """Without a folder (one process, every test's app) nothing changes: the app's registry, the depth exact."""
    depth = [4]
    metrics = Metrics()
    metrics.watch_queue(lambda: depth[0])
    assert samples(metrics.exposition().decode())[("stt_engine_queue_depth", ())] == 4
    depth[0] = 1
    assert metrics.exposition() == generate_latest(metrics.registry)
    assert samples(metrics.exposition().decode())[("stt_engine_queue_depth", ())] == 1
    metrics.retire()
