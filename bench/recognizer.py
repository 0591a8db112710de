"""Benchmark of the embedded pocketsphinx engine (not a test). Prints a Markdown report.

    .venv/bin/python -m bench.recognizer [--max-sessions 8] > /tmp/recognizer.md

WER per configuration and voice, first-utterance WER cold vs warm, real-time factor on one core, end-of-speech to
final latency, resident memory per session, event-loop stalls with decoding in threads vs processes, and how many
sessions fed at real-time pace two worker processes sustain. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import replace
from typing import Any, Literal

from bench.speech import CLEAN_16K as CLIPS_16K
from bench.speech import TRANSCRIPTS, load_clip, reference, word_errors
from server.engine.sphinx import DecoderConfig, PocketsphinxRecognizer
from server.engine.types import BYTES_PER_MS
from server.transcript import Hypothesis

CHUNK = 3200  # 100 ms


def finals_text(hyps: list[Hypothesis]) -> str:
    return " ".join(h.text for h in hyps if h.is_final and h.words)


# The fast pass alone without rescoring, as these rows were first measured: DecoderConfig() now rescores by default
# (the engine alone does), which would make the first two rows the same decoder.
DEFAULT = replace(DecoderConfig(), fwdflat=False, bestpath=False)
CONFIGS: dict[str, DecoderConfig] = {
    "default (window 0.3 s, no rescoring)": DEFAULT,
    "fwdflat + bestpath": replace(DEFAULT, fwdflat=True, bestpath=True),
    "window 0.5 s": replace(DEFAULT, vad_window_s=0.5),
    "no preroll": replace(DEFAULT, preroll_ms=0),
}


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


async def decode(rec: PocketsphinxRecognizer, name: str) -> dict[str, Any]:
    """Feed as fast as possible; time each call. Latency of the final = audio the endpointer needed after the
    last word + the decode time of the call that returned it."""
    pcm = load_clip(name)
    session = await rec.open()
    hyps: list[Hypothesis] = []
    busy = 0.0
    latencies: list[float] = []
    try:
        for i in range(0, len(pcm), CHUNK):
            t = time.perf_counter()
            out = await session.feed(pcm[i : i + CHUNK])
            took = time.perf_counter() - t
            busy += took
            audio_end_ms = min(i + CHUNK, len(pcm)) / BYTES_PER_MS
            for h in out:
                if h.is_final and h.words:
                    latencies.append(audio_end_ms - h.end_ms + took * 1000)
            hyps += out
        t = time.perf_counter()
        tail = await session.finish()
        took = time.perf_counter() - t
        busy += took
        hyps += tail
        finish_ms = took * 1000 if any(h.is_final for h in tail) else None
    finally:
        await session.aclose()
    return {
        "errors": word_errors(reference(name), finals_text(hyps)),
        "words": len(reference(name).split()),
        "busy": busy,
        "audio": len(pcm) / BYTES_PER_MS / 1000,
        "latencies": latencies,
        "finish_ms": finish_ms,
    }


async def wer_table() -> list[str]:
    lines = [
        "| configuration | WER slt | WER kal | WER all (also ked) | RTF (1 core) | endpointer final latency, median | "
        "finish() latency, median |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, decoder in CONFIGS.items():
        rec = PocketsphinxRecognizer(decoder, mode="thread", workers=1)
        await rec.warm_up()
        per = {name: await decode(rec, name) for name in CLIPS_16K}
        await rec.aclose()

        def wer(voice: str | None, per: dict[str, dict[str, Any]] = per) -> str:
            rows = [r for n, r in per.items() if voice is None or TRANSCRIPTS[n]["voice"] == voice]
            e, w = sum(r["errors"] for r in rows), sum(r["words"] for r in rows)
            return f"{100 * e / w:.1f} % ({e}/{w})"

        rtf = sum(r["busy"] for r in per.values()) / sum(r["audio"] for r in per.values())
        lat = [x for r in per.values() for x in r["latencies"]]
        fin = [r["finish_ms"] for r in per.values() if r["finish_ms"] is not None]
        lines.append(
            f"| {label} | {wer('slt')} | {wer('kal')} | {wer(None)} | {rtf:.3f} | "
            f"{statistics.median(lat):.0f} ms (n={len(lat)}) | "
            + (f"{statistics.median(fin):.0f} ms (n={len(fin)}) |" if fin else "- |")
        )
    return lines


async def first_utterance() -> list[str]:
    """Each clip as the very first utterance of a fresh recognizer, with and without keeping decoders warm, and
    as the second session of a warm one (decoded after a clip of the other voice)."""
    rows = []
    for label, decoder, warm_first in (
        ("cold decoder, nothing carried (keep_warm=False)", replace(DEFAULT, keep_warm=False), False),
        ("cold decoder, first utterance decoded twice (default)", DEFAULT, False),
        ("decoder reused after another clip (default)", DEFAULT, True),
    ):
        errors = words = 0
        for i, name in enumerate(CLIPS_16K):
            rec = PocketsphinxRecognizer(decoder, mode="thread", workers=1)
            if warm_first:
                await decode(rec, CLIPS_16K[(i + len(CLIPS_16K) // 2) % len(CLIPS_16K)])
            r = await decode(rec, name)
            await rec.aclose()
            errors += r["errors"]
            words += r["words"]
        rows.append(f"| {label} | {100 * errors / words:.1f} % ({errors}/{words}) |")
    return ["| first utterance | WER |", "|---|---|", *rows]


async def memory() -> list[str]:
    rec = PocketsphinxRecognizer(mode="thread", workers=1, max_sessions=4)
    before = rss_mb()
    sessions = [await rec.open() for _ in range(4)]
    after = rss_mb()
    for s in sessions:
        await s.aclose()
    await rec.aclose()
    return [f"Resident memory: {(after - before) / 4:.0f} MB per session (4 decoders: {before:.0f} → {after:.0f} MB)."]


async def loop_stall(mode: Literal["process", "thread"]) -> float:
    rec = PocketsphinxRecognizer(mode=mode, workers=2)
    await rec.warm_up()
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.gather(*(decode(rec, name) for name in CLIPS_16K[:4]))
    done = True
    await tick
    await rec.aclose()
    return max(gaps) * 1000


async def realtime(n: int, seconds: float = 8.0) -> tuple[float, float]:
    """n sessions, each sent 100 ms of audio every 100 ms of wall time; returns (max, final) lag in ms: how far
    the last result trails the audio that was sent."""
    rec = PocketsphinxRecognizer(workers=2, max_sessions=n)
    await rec.warm_up()
    pcm = b"".join(load_clip(name) for name in CLIPS_16K)
    lags: list[list[float]] = [[] for _ in range(n)]
    start = time.perf_counter()

    async def one(k: int) -> None:
        session = await rec.open()
        offset = (k * 16_000 * 2) % len(pcm)
        try:
            for c in range(int(seconds * 10)):
                due = start + (c + 1) * 0.1
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                i = (offset + c * CHUNK) % (len(pcm) - CHUNK)
                await session.feed(pcm[i : i + CHUNK])
                lags[k].append((time.perf_counter() - due) * 1000)
        finally:
            await session.aclose()

    await asyncio.gather(*(one(k) for k in range(n)))
    await rec.aclose()
    return max(max(x) for x in lags), max(x[-1] for x in lags)


async def main(max_sessions: int) -> None:
    out = ["## Embedded engine (pocketsphinx 5.1.1, shipped en-us model)", ""]
    out += [f"Clips: {len(CLIPS_16K)} Festival clips in tests/data/speech (16 kHz), fed in 100 ms chunks.", ""]
    out += await wer_table()
    out += ["", *await first_utterance(), ""]
    out += await memory()
    thread_gap, process_gap = await loop_stall("thread"), await loop_stall("process")
    out += [
        "",
        f"Event-loop stall while 4 sessions decode flat out: threads {thread_gap:.0f} ms max gap, "
        f"processes {process_gap:.0f} ms max gap (2 ms ticker).",
        "",
        "| real-time sessions (2 worker processes) | max lag | lag at end |",
        "|---|---|---|",
    ]
    for n in range(2, max_sessions + 1, 2):
        worst, last = await realtime(n)
        out.append(f"| {n} | {worst:.0f} ms | {last:.0f} ms |")
    print("\n".join(out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-sessions", type=int, default=8)
    asyncio.run(main(parser.parse_args().max_sessions))
