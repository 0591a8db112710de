"""Load benchmark (not a test): testkit/load.py's sessions (those tests/test_load.py runs), more of them for longer.
Prints a Markdown report.

    .venv/bin/python -m bench.load [--per-provider 20] [--duration 60] [--audio 10.1] [--speed 2] [--processes 2]

Each of `per-provider` workers per provider (local, truebar, wiro) runs sessions back to back for `duration`
seconds: a grant from the app, `audio` seconds of PCM streamed `speed` times faster than real time to the grant's
socket (the app's offline-engine stream or an emulator, all on the scripted recognizer), then the end call. A
session counts as complete when its transcript is exactly the scripted words for its audio length.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics

from server.emulators.scripted import ScriptedRecognizer
from server.emulators.wiro import WiroEmulatorOptions
from testkit.load import MS_PER_WORD, LoadResult, load_stack, run_load
from testkit.processes import app_processes
from testkit.redis_server import redis_server
from testkit.stack import APP_SECRET, PROVIDERS, WIRO_KEY, WIRO_SECRET, emulators


def report(result: LoadResult, args: argparse.Namespace) -> str:
    processes = f" --processes {args.processes}" if args.processes else ""
    workers = len(PROVIDERS) * args.per_provider * max(1, args.processes)
    lines = [
        f"Command: `.venv/bin/python -m bench.load --per-provider {args.per_provider} --duration {args.duration:g} "
        f"--audio {args.audio:g} --speed {args.speed:g}{processes}`",
        "",
        f"Machine: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs; "
        + (
            f"{args.processes} app processes sharing one Redis, each with `per-provider` workers per provider; "
            "the emulators and the clients share this process."
            if args.processes
            else "the app, both emulators and the clients share one process."
        ),
        "",
        f"{workers} concurrent workers for {args.duration:g} s; {args.audio:g} s of "
        f"audio per session at {args.speed:g}x real time; scripted recognizer, one word per {MS_PER_WORD} ms.",
        "",
        "| provider | sessions | complete | errors | words expected | words lost | session s (median / max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for provider in (*PROVIDERS, "all"):
        outs = [o for o in result.outcomes if provider in ("all", o.provider)]
        times = [o.seconds for o in outs]
        lines.append(
            f"| {provider} | {len(outs)} | {sum(o.complete for o in outs)} | {sum(bool(o.error) for o in outs)} | "
            f"{sum(len(o.expected) for o in outs)} | {sum(o.lost_words for o in outs)} | "
            f"{statistics.median(times):.2f} / {max(times):.2f} |"
        )
    lines += [
        "",
        f"Wall time {result.wall_seconds:.1f} s; {result.audio_seconds:.0f} s of audio streamed "
        f"({result.audio_seconds / result.wall_seconds:.1f} s of audio per second of wall time).",
    ]
    if result.errors:
        lines += ["", "First errors:", *(f"- {e}" for e in result.errors[:10])]
    return "\n".join(lines)


def replicas(args: argparse.Namespace) -> LoadResult:
    """`--processes N`: N app processes sharing one Redis (testkit.processes), each loaded by its own workers."""
    recognizer = ScriptedRecognizer(ms_per_word=MS_PER_WORD, words_per_utterance=4)
    wiro = WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET, max_concurrent_tasks=10_000)
    with redis_server() as redis, emulators(recognizer, wiro_options=wiro) as emu:
        settings = {
            "redis_url": redis.url,
            "secret_key": APP_SECRET,
            "session_rate_per_min": 1_000_000,
            "max_sessions_per_client": 10_000,
            **emu.settings,
        }
        with app_processes(args.processes, settings) as apps:

            async def together() -> list[LoadResult]:
                runs = (run_load(a.url, args.per_provider, args.duration, args.audio, args.speed) for a in apps)
                return list(await asyncio.gather(*runs))

            results = asyncio.run(together())
    outcomes = [o for r in results for o in r.outcomes]
    return LoadResult(outcomes, max(r.wall_seconds for r in results), sum(r.audio_seconds for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-provider", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--audio", type=float, default=10.1, help="seconds of audio per session")
    parser.add_argument("--speed", type=float, default=2.0, help="times faster than real time")
    parser.add_argument(
        "--processes", type=int, default=0, help="app processes sharing one Redis (0: the app in this process)"
    )
    args = parser.parse_args()
    if args.processes:
        result = replicas(args)
    else:
        with load_stack() as s:
            result = asyncio.run(run_load(s.url, args.per_provider, args.duration, args.audio, args.speed))
    print(report(result, args))


if __name__ == "__main__":
    main()
