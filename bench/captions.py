"""Shared captions benchmark (not a test): one share, N viewers on Server-Sent Events, a publisher sending a final
every `interval` seconds; publish → viewer latency (p50/p95 over every final at every viewer) and the server's CPU.
Prints a Markdown report.

    .venv/bin/python -m bench.captions [--viewers 200] [--duration 20] [--interval 0.2] [--redis]

The app runs in its own process (testkit.processes: the scripted recognizer, nothing else loaded), so its CPU is
read from /proc alone. The viewers are bare asyncio HTTP/1.1 connections reading lines (cheaper than a full client,
so the machine's two shared cores go to the server as much as possible); they run on the same machine, so the
latency includes their own scheduling. Each final carries its send time (time.time()) in its text.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator

import httpx

from testkit.processes import AppProcess, app_processes
from testkit.redis_server import redis_server

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def viewer(
    port: int, share: str, latencies: list[float], ready: asyncio.Event, counts: list[int], stop: asyncio.Event
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET /api/captions/{share}/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
    writer.write((request + "\r\n").encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"viewer refused: {status!r}")
    counts[0] += 1
    if counts[0] == counts[1]:
        ready.set()
    kind = b""
    try:
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"event:"):
                kind = line[6:].strip()
            elif line.startswith(b"data:") and kind == b"final":
                text = json.loads(line[5:])["text"]
                latencies.append(time.time() - float(text.split()[-1]))
    finally:
        writer.close()


async def run(app: AppProcess, viewers: int, duration: float, interval: float) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
        grant = (await client.post("/api/captions", json={})).json()
        share, auth = grant["share_id"], {"Authorization": f"Bearer {grant['publish_token']}"}
        latencies: list[float] = []
        ready, stop = asyncio.Event(), asyncio.Event()
        counts = [0, viewers]
        tasks = [asyncio.create_task(viewer(app.port, share, latencies, ready, counts, stop)) for _ in range(viewers)]
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(1.0)
        cpu0, t0 = cpu_seconds(app.process.pid), time.monotonic()
        sent, seq = 0, 0
        next_at = time.monotonic()
        while time.monotonic() - t0 < duration:
            seq += 1
            # An interim then the final it becomes, as a page sends them.
            events = [
                {"type": "partial", "text": f"word {seq}"},
                {"type": "final", "text": f"final {seq} {time.time():.6f}", "seq": seq},
            ]
            r = await client.post(f"/api/captions/{share}/events", json={"events": events}, headers=auth)
            r.raise_for_status()
            sent += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.sleep(2.0)  # the last finals drain
        cpu = cpu_seconds(app.process.pid) - cpu0
        wall = time.monotonic() - t0
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ordered = sorted(latencies)
    return {
        "finals_sent": sent,
        "deliveries": len(latencies),
        "expected": sent * viewers,
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        "max_ms": 1000 * ordered[-1],
        "cpu_pct": 100 * cpu / wall,
    }


@contextlib.contextmanager
def app(with_redis: bool, viewers: int) -> Iterator[AppProcess]:
    settings: dict[str, object] = {
        "secret_key": "bench-secret-4d9a0f2c7e1b58360a7c",
        "captions_max_viewers": viewers + 10,
    }
    with contextlib.ExitStack() as stack:
        if with_redis:
            server = stack.enter_context(redis_server())
            settings["redis_url"] = server.url
        (process,) = stack.enter_context(app_processes(1, settings))
        yield process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--redis", action="store_true", help="also with the state in Redis")
    args = parser.parse_args()
    print(
        f"{args.viewers} viewers on one share, a final every {args.interval} s for {args.duration} s "
        f"(Python {platform.python_version()}, {os.cpu_count()} cores)\n"
    )
    print("| state | finals sent | deliveries (expected) | p50 (ms) | p95 (ms) | max (ms) | server CPU (% of a core) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for with_redis in [False, True] if args.redis else [False]:
        with app(with_redis, args.viewers) as process:
            r = asyncio.run(run(process, args.viewers, args.duration, args.interval))
        print(
            f"| {'Redis' if with_redis else 'memory'} | {r['finals_sent']:.0f} | {r['deliveries']:.0f} "
            f"({r['expected']:.0f}) | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {r['cpu_pct']:.0f} |"
        )


if __name__ == "__main__":
    main()
