"""Mint benchmark (not a test): throughput and latency of POST /api/sessions. Prints a Markdown report.

    .venv/bin/python -m bench.mint [--duration 10] [--concurrency 8]

Runs the real server (`python -m server`, its fast pass loaded, Whisper off) three ways: one process with its state
in memory, one process with Redis, two workers (`--workers 2`) with Redis; each minting local grants, then Truebar
grants (against the Truebar emulator, whose access token the app caches, so no upstream call per mint). The client
is a bare keep-alive HTTP/1.1 loop (`concurrency` connections), so it costs the server's two cores as little as
possible; it runs on the same machine. Every request names a different client in X-Forwarded-For (the app trusts
loopback as its proxy here): like many users, so neither the per-client rate limit nor the open-session cap is what
gets measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis as redis_py

from server.emulators import truebar as truebar_emulator
from server.emulators.scripted import ScriptedRecognizer
from testkit.live import running
from testkit.redis_server import free_port, redis_server

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def server(env: dict[str, str], workers: int) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--workers", str(workers), "--env-file", "/nonexistent"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


async def one_connection(
    port: int, body: bytes, stop_at: float, latencies: list[float], errors: list[str], offset: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < stop_at:
            n += 1
            client = f"10.{offset}.{(n >> 8) & 255}.{n & 255}"
            head = (
                f"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"X-Forwarded-For: {client}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status_line:
                errors.append(f"{status_line.decode().strip()} {payload[:120]!r}")
    finally:
        writer.close()


async def measure(url: str, provider: str, duration: float, concurrency: int) -> dict[str, float]:
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"provider": provider}).encode()
    # Warm up (the engine loads on the first local mint; the first Truebar mint signs in).
    async with httpx.AsyncClient() as http:
        for i in range(3):
            headers = {"X-Forwarded-For": f"10.255.255.{i}"}
            r = await http.post(url + "/api/sessions", json={"provider": provider}, headers=headers, timeout=60)
            r.raise_for_status()
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    stop_at = started + duration
    await asyncio.gather(*(one_connection(port, body, stop_at, latencies, errors, i) for i in range(concurrency)))
    wall = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    if errors:
        print(f"{len(errors)} errors, first: {errors[0]}", file=sys.stderr)
    return {
        "mints": len(ms),
        "rate": len(ms) / wall,
        "p50": statistics.median(ms),
        "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    tb_opts = truebar_emulator.TruebarEmulatorOptions(username="bench", password="bench-pass")
    rows = []
    with running(truebar_emulator.create_emulator(tb_opts, ScriptedRecognizer())) as tb_url, redis_server() as redis:
        base = {
            "APP_SECRET_KEY": "bench-secret-key-9c3e7a1f05d2b846",
            "APP_TRUSTED_PROXIES": "127.0.0.1",
            "APP_SESSION_RATE_PER_MIN": "1000000",
            "APP_MAX_SESSIONS_PER_CLIENT": "1000",
            "APP_LOG_LEVEL": "warning",
            "LOCAL_MAX_SESSIONS": "2",
            # Minting never touches the accurate pass: leave Whisper unloaded (three servers at once otherwise hold
            # a model each on a shared machine).
            "LOCAL_WHISPER": "0",
            "TRUEBAR_USERNAME": tb_opts.username,
            "TRUEBAR_PASSWORD": tb_opts.password,
            "TRUEBAR_AUTH_URL": f"{tb_url}/realms/truebar/protocol/openid-connect/token",
            "TRUEBAR_API_BASE_URL": tb_url,
            "TRUEBAR_STT_WS_URL": "ws" + tb_url.removeprefix("http") + "/api/pipelines/stream",
        }
        setups = [
            ("1 process, memory", {}, 1),
            ("1 process, Redis", {"APP_REDIS_URL": redis.url}, 1),
            ("2 workers, Redis", {"APP_REDIS_URL": redis.url}, 2),
        ]
        for label, extra, workers in setups:
            for provider in ("local", "truebar"):
                # Each run starts afresh (a new server, an empty Redis): the previous run's clients would otherwise
                # still fill the rate-limit tables and hold their grants' places.
                redis_py.Redis.from_url(redis.url).flushall()
                with server({**base, **extra}, workers) as url:
                    result = asyncio.run(measure(url, provider, args.duration, args.concurrency))
                rows.append((label, provider, result))
    lines = [
        f"Command: `.venv/bin/python -m bench.mint --duration {args.duration:g} --concurrency {args.concurrency}`",
        "",
        f"Machine: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs (shared with "
        "other work while measured); server, Redis, the Truebar emulator and the client on the same cores.",
        "",
        "| setup | grant | mints | mints/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, provider, r in rows:
        lines.append(
            f"| {label} | {provider} | {r['mints']:.0f} | {r['rate']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
            f"{r['errors']:.0f} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
