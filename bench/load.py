"""Load benchmark (not a test): testkit/load.py's sessions (those tests/test_load.py runs), more of them for longer.
Prints a Markdown report.

    .venv/bin/python -m bench.load [--per-provider 20] [--duration 60] [--audio 10.1] [--speed 2]

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

from testkit.load import MS_PER_WORD, LoadResult, load_stack, run_load
from testkit.stack import PROVIDERS


def report(result: LoadResult, args: argparse.Namespace) -> str:
    lines = [
        f"Command: `.venv/bin/python -m bench.load --per-provider {args.per_provider} --duration {args.duration:g} "
        f"--audio {args.audio:g} --speed {args.speed:g}`",
        "",
        f"Machine: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs; "
        "the app, both emulators and the clients share one process.",
        "",
        f"{len(PROVIDERS) * args.per_provider} concurrent workers for {args.duration:g} s; {args.audio:g} s of "
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-provider", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--audio", type=float, default=10.1, help="seconds of audio per session")
    parser.add_argument("--speed", type=float, default=2.0, help="times faster than real time")
    args = parser.parse_args()
    with load_stack() as s:
        result = asyncio.run(run_load(s.url, args.per_provider, args.duration, args.audio, args.speed))
    print(report(result, args))


if __name__ == "__main__":
    main()
