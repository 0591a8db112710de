"""Benchmark of the embedded engine's two passes (not a test). Prints a Markdown report.

    .venv/bin/python -m bench.twopass [--sections wer,window,memory,latency,load] [--max-sessions 8]
    .venv/bin/python -m bench.twopass --sections levers     (not in the default sections)

- wer: word errors of the fast pass alone (pocketsphinx, the engine's defaults) and of the two-pass engine
  (Whisper base finals) on the committed clips, clean and mixed with noise at 20 dB SNR; the accurate pass's
  real-time factor and time per utterance.
- window: the accurate pass's encoder window (Whisper's full 30 s vs the utterance + 2 s, at least N s).
- memory: resident memory of the process before and after loading Whisper base, and per pocketsphinx worker.
- latency: one session at real-time pace (100 ms frames) through the app's own socket (/api/local/stream, the
  Truebar protocol, a real uvicorn): speech start → first interim, end of speech → first text (the fast pass's
  endpoint interim), end of speech → accurate final; p50/p95 over every utterance.
- load: N sessions at real-time pace at once through the engine (no sockets): how many finals fall back to the
  fast pass, and the end of speech → final delay.
- levers (only when named): one session at real-time pace straight into the engine, per latency lever.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from bench.speech import CLEAN_16K, NOISY_16K, TRANSCRIPTS, load_clip, reference, word_errors
from server.engine.accurate import AccurateScheduler
from server.engine.config import EngineConfig
from server.engine.loader import load_engine, load_fast_pass, model_cache
from server.engine.model import resolve_model
from server.engine.silero import SileroDetector
from server.engine.sphinx import PocketsphinxRecognizer
from server.engine.twopass import TwoPassRecognizer
from server.engine.types import BYTES_PER_MS, Recognizer
from server.engine.voice_runs import LooseVoiceDetector
from server.engine.whisper import Unreliable, WhisperOptions, WhisperPass
from server.transcript import Hypothesis, Word
from testkit.whisper import whisper_thread

FRAME = 1600  # 50 ms of 16 kHz PCM16: what the page sends the local engine (the grant's frame_samples)


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def transcribe(recognizer: Recognizer, pcm: bytes) -> list[Hypothesis]:
    session = await recognizer.open()
    try:
        out: list[Hypothesis] = []
        for i in range(0, len(pcm), FRAME):
            out += await session.feed(pcm[i : i + FRAME])
        return out + await session.finish()
    finally:
        await session.aclose()


def finals(hyps: list[Hypothesis]) -> str:
    return " ".join(h.text for h in hyps if h.is_final and h.words)


def fast_config() -> EngineConfig:
    return EngineConfig(whisper=False)


def accurate(options: WhisperOptions | None = None) -> WhisperPass:
    """Whisper base as the engine loads it: its beam (EngineConfig.whisper_beam) unless `options` say otherwise."""
    config = EngineConfig()
    options = options or WhisperOptions(beam_size=config.whisper_beam)
    return WhisperPass(resolve_model(config.whisper_model, model_cache(config)), options)


def whisper_alone(model: WhisperPass, pcm: bytes) -> str:
    """Whisper base's text for a whole recording decoded alone: the reference the engine's finals are held to. An
    answer that loops (Unreliable) is no text, so its words count as wrong."""
    try:
        return Hypothesis(model.transcribe(pcm, 0), True, 0, 0).text
    except Unreliable:
        return ""


def faster_whisper_alone(model: WhisperPass, pcm: bytes) -> str:
    """faster-whisper's own `transcribe` of a whole recording with the same model and the model's beam width
    (`WhisperOptions.beam_size`; `accurate()` gives the engine's, on every window): its long-form path (30 s
    windows one after another, each conditioned on the text before), so a recording longer than one window is heard
    to its end, which `whisper_alone` is not (it reads the first 30 s)."""
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    segments, _ = model.model.transcribe(audio, language="en", beam_size=model.options.beam_size)
    return " ".join(segment.text for segment in segments)


# What the engine's word errors are held to, on each whole recording: labels and how each is computed.
WHOLE_RECORDING_REFERENCES = (
    ("Whisper base on each whole recording (the engine's decoder, one window)", whisper_alone),
    ("faster-whisper's own transcribe of each whole recording (long-form, the engine's beam)", faster_whisper_alone),
)


def thread_fast(*, beside_whisper: bool = False) -> PocketsphinxRecognizer:
    """The engine's fast pass as the loader builds it (alone, or beside Whisper), in one thread."""
    return load_fast_pass(EngineConfig(whisper=beside_whisper), mode="thread", workers=1)


async def score(recognizer: Recognizer, clips: Sequence[str]) -> tuple[int, int]:
    errors = words = 0
    for name in clips:
        errors += word_errors(reference(name), finals(await transcribe(recognizer, load_clip(name))))
        words += len(reference(name).split())
    return errors, words


def fed_fast(whisper: AccurateScheduler) -> TwoPassRecognizer:
    """The two-pass recognizer as the loader builds it (with Silero cutting the windows), its fallback out of reach:
    fed as fast as possible, this measures the passes, not the load."""
    return TwoPassRecognizer(
        thread_fast(beside_whisper=True),
        whisper,
        fallback_after_s=600,
        speech=SileroDetector(),
        voice=LooseVoiceDetector(),
    )


def rate(ew: tuple[int, int]) -> str:
    return f"{100 * ew[0] / ew[1]:.1f} % ({ew[0]}/{ew[1]})"


async def wer_section() -> list[str]:
    fast = thread_fast()
    model = accurate(WhisperOptions(max_queue=64, beam_size=EngineConfig().whisper_beam))
    model.warm_up()
    whisper = whisper_thread(model)
    two = fed_fast(whisper)
    rows = ["| clips | words | fast pass (pocketsphinx) | two-pass (Whisper base finals) |", "|---|---|---|---|"]
    voices = sorted({TRANSCRIPTS[n]["voice"] for n in CLEAN_16K})
    for label, clips in [
        *((f"clean, voice {v}", [n for n in CLEAN_16K if TRANSCRIPTS[n]["voice"] == v]) for v in voices),
        ("clean, all", CLEAN_16K),
        ("20 dB SNR (pink noise)", NOISY_16K),
    ]:
        f, t = await score(fast, clips), await score(two, clips)
        rows.append(f"| {label} ({len(clips)} clips) | {f[1]} | {rate(f)} | {rate(t)} |")
    assert two.stats.fallbacks == 0, two.stats
    audio_s = sum(len(load_clip(n)) for n in CLEAN_16K + NOISY_16K) / BYTES_PER_MS / 1000
    rows += [
        "",
        f"Accurate pass: {whisper.stats.jobs} utterances ({audio_s:.0f} s of audio with their edges) took "
        f"{whisper.stats.busy_s:.1f} s with {model.options.threads} threads: RTF "
        f"{whisper.stats.busy_s / audio_s:.3f}, {1000 * whisper.stats.busy_s / max(1, whisper.stats.jobs):.0f} ms "
        "per utterance on average.",
    ]
    fast.shutdown()
    two.shutdown()
    whisper.close()
    return rows


async def window_section() -> list[str]:
    rows = ["| encoder window | WER clean | WER 20 dB | ms per utterance |", "|---|---|---|---|"]
    for label, options in (
        ("30 s (Whisper's full window, as faster-whisper's transcribe)", WhisperOptions(min_window_s=30.0)),
        ("utterance + 2 s, at least 10 s (default)", WhisperOptions(beam_size=EngineConfig().whisper_beam)),
        ("utterance + 2 s, at least 5 s", WhisperOptions(min_window_s=5.0)),
        ("utterance + 1 s, at least 3 s", WhisperOptions(min_window_s=3.0, pad_s=1.0)),
    ):
        model = accurate(replace(options, max_queue=64, beam_size=EngineConfig().whisper_beam))
        model.warm_up()
        whisper = whisper_thread(model)
        two = fed_fast(whisper)
        clean, noisy = await score(two, CLEAN_16K), await score(two, NOISY_16K)
        per_job_ms = 1000 * whisper.stats.busy_s / max(1, whisper.stats.jobs)
        rows.append(f"| {label} | {rate(clean)} | {rate(noisy)} | {per_job_ms:.0f} |")
        two.shutdown()
        whisper.close()
    return rows


async def memory_section() -> list[str]:
    before = rss_mb()
    whisper = accurate()
    whisper.warm_up()
    loaded = rss_mb()
    await asyncio.to_thread(whisper.transcribe, load_clip(CLEAN_16K[0]), 0)
    used = rss_mb()
    del whisper
    fast = load_fast_pass(EngineConfig())
    assert isinstance(fast, PocketsphinxRecognizer)
    await fast.warm_up()
    sessions = [await fast.open() for _ in range(4)]
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == os.getpid()]
    per_worker = [rss_mb(p) for p in children]
    for s in sessions:
        await s.aclose()
    await fast.aclose()
    return [
        f"Whisper base (int8): the process grew by {loaded - before:.0f} MB when loading it and "
        f"{used - before:.0f} MB after transcribing one clip (one instance serves every session).",
        f"pocketsphinx: {len(per_worker)} worker processes with 4 open sessions, "
        + ", ".join(f"{x:.0f} MB" for x in per_worker)
        + " resident each.",
    ]


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def speech_spans(clips: Sequence[str], gap_ms: int) -> tuple[bytes, list[tuple[int, int]]]:
    """The clips one after another with `gap_ms` of their own edge quiet between them, and each utterance's span."""
    pcm = b""
    spans: list[tuple[int, int]] = []
    for name in clips:
        offset = len(pcm) // BYTES_PER_MS
        spans += [(offset + u["start_ms"], offset + u["end_ms"]) for u in TRANSCRIPTS[name]["utterances"]]
        clip = load_clip(name)
        pcm += clip + clip[-BYTES_PER_MS * 200 :] * (gap_ms // 200)
    return pcm, spans


async def paced(
    recognizer: Recognizer,
    pcm: bytes,
    spans: list[tuple[int, int]],
    delay_s: float = 0.0,
    frame: int = FRAME,
    events: list[tuple[float, Hypothesis]] | None = None,
) -> dict[str, list[float]]:
    """One session fed in real time (a `frame` of audio each time that much wall time has passed); latencies per
    utterance in seconds."""
    await asyncio.sleep(delay_s)
    session = await recognizer.open()
    events = [] if events is None else events
    start = time.perf_counter()
    try:
        for c, i in enumerate(range(0, len(pcm), frame)):
            due = start + (c + 1) * frame / BYTES_PER_MS / 1000
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            for h in await session.feed(pcm[i : i + frame]):
                events.append((time.perf_counter() - start, h))
        for h in await session.finish():
            events.append((time.perf_counter() - start, h))
    finally:
        await session.aclose()
    return latencies(events, spans)


def latencies(events: list[tuple[float, Hypothesis]], spans: list[tuple[int, int]]) -> dict[str, list[float]]:
    """Per utterance, wall time from the first frame (at real-time pace, the same as audio time):

    - first_interim: speech start → the first interim with words;
    - first_text: end of speech → the fast pass's endpoint interim, i.e. the last interim before the final that
      holds nothing of the next utterance (the text that then stays on screen until the final replaces it);
    - final: end of speech → the first final whose span overlaps the utterance; fallback: whether it was marked.
    """
    out: dict[str, list[float]] = {"first_interim": [], "first_text": [], "final": [], "fallback": []}
    for k, (a, b) in enumerate(spans):
        nxt = spans[k + 1][0] if k + 1 < len(spans) else 1 << 40
        start_s, end_s = a / 1000, b / 1000
        interim = [t for t, h in events if not h.is_final and h.words and start_s <= t < nxt / 1000]
        final = [(t, h) for t, h in events if h.is_final and h.words and h.start_ms < b and h.end_ms > a]
        if interim:
            out["first_interim"].append(interim[0] - start_s)
        if not final:
            continue
        t_final, hyp = final[0]
        out["final"].append(t_final - end_s)
        out["fallback"].append(1.0 if hyp.warning else 0.0)
        settled = [t for t, h in events if not h.is_final and h.words and t < t_final and h.end_ms < nxt]
        if settled and settled[-1] >= end_s:
            out["first_text"].append(settled[-1] - end_s)
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{1000 * statistics.median(values):.0f} / {1000 * pct(values, 0.95):.0f} ms"


async def app_latency(clips: Sequence[str], gap_ms: int) -> list[str]:
    """One session through the app's socket (a real uvicorn on loopback) at real-time pace, sent the way the page
    sends it: the Truebar protocol, 100 ms frames, each sent when it has been "recorded"."""
    import threading

    import httpx
    import uvicorn
    import websockets

    from server.app import create_app
    from server.settings import Settings

    server = uvicorn.Server(uvicorn.Config(create_app(Settings()), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    pcm, spans = speech_spans(clips, gap_ms)
    events: list[tuple[float, Hypothesis]] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            # The first grant loads the engine (and assembles the model on a fresh machine): not part of a session.
            grant = (await client.post("/api/sessions", json={"provider": "local"})).json()
        stage = {"task": "ASR", "config": {"tag": grant["tag"], "parameters": {"enableInterims": True}}}
        async with websockets.connect(grant["ws_url"] + "?access_token=" + grant["token"], max_size=None) as ws:
            await ws.send(json.dumps({"type": "CONFIG", "pipeline": [stage]}))
            while json.loads(await ws.recv()).get("status") != "CONFIGURED":
                pass
            start = time.perf_counter()

            async def reader() -> None:
                warning = ""
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg.get("type") == "WARNING":
                        warning = msg["message"]
                    seg = msg.get("textSegment")
                    if seg is None:
                        continue
                    words = tuple(Word(t["text"], 0, 0) for t in seg["tokens"])
                    hyp = Hypothesis(words, seg["isFinal"], seg["startTimeMs"], seg["endTimeMs"], warning=warning)
                    events.append((time.perf_counter() - start, hyp))
                    if seg["isFinal"]:
                        warning = ""

            task = asyncio.create_task(reader())
            frame = int(grant["frame_samples"]) * 2
            for c, i in enumerate(range(0, len(pcm), frame)):
                due = start + (c + 1) * frame / BYTES_PER_MS / 1000
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await ws.send(pcm[i : i + frame])
            await ws.send(json.dumps({"type": "EOS"}))
            await task
    finally:
        server.should_exit = True
        thread.join(10)
    out = latencies(events, spans)
    return [
        f"One session through the app's socket, real time, {grant['frame_samples'] // 16} ms frames, "
        f"{len(spans)} utterances:",
        "",
        "| latency | p50 / p95 |",
        "|---|---|",
        f"| speech start → first interim | {summary(out['first_interim'])} |",
        f"| end of speech → first text (the fast pass's endpoint interim) | {summary(out['first_text'])} |",
        f"| end of speech → final | {summary(out['final'])} |",
        f"| finals that fell back to the fast pass | {int(sum(out['fallback']))} of {len(out['final'])} |",
    ]


async def load_section(max_sessions: int, clips: Sequence[str], gap_ms: int) -> list[str]:
    rows = [
        "| real-time sessions | finals | fell back | end of speech → final p50 / p95 | accurate pass busy |",
        "|---|---|---|---|---|",
    ]
    for n in range(1, max_sessions + 1):
        config = replace(EngineConfig(), max_sessions=n)
        engine = await asyncio.to_thread(load_engine, config)
        assert isinstance(engine, TwoPassRecognizer)
        await engine.warm_up()
        pcm, spans = speech_spans(clips, gap_ms)
        # The scheduler's compute seconds, the warm-up's excluded (it counts every job it ran).
        scheduler = engine.accurate if isinstance(engine.accurate, AccurateScheduler) else None
        busy_before = scheduler.stats.busy_s if scheduler else 0.0
        began = time.perf_counter()
        runs: list[dict[str, list[float]]] = await asyncio.gather(
            *(paced(engine, pcm, spans, delay_s=k * 0.37) for k in range(n))
        )
        elapsed = time.perf_counter() - began
        finals_s = [x for r in runs for x in r["final"]]
        fell = int(sum(x for r in runs for x in r["fallback"]))
        busy = scheduler.stats.busy_s - busy_before if scheduler else 0.0
        rows.append(
            f"| {n} | {len(finals_s)} | {fell} ({100 * fell / max(1, len(finals_s)):.0f} %) | {summary(finals_s)} "
            f"| {100 * busy / elapsed:.0f} % |"
        )
        await engine.aclose()
    return rows


_BEFORE: dict[str, Any] = {
    "rescoring_with_whisper": True,
    "vad_window_s": 0.3,
    "vad_ratio": 0.9,
    "vad_mode": 0,
    "partial_every_ms": 100,
    "merge_pause_ms": 0,
}
_NO_RESCORING = {**_BEFORE, "rescoring_with_whisper": False}
_PARTIALS_50 = {**_NO_RESCORING, "partial_every_ms": 50}
# Cumulative unless marked "instead"; the last row is EngineConfig's defaults.
LEVERS: list[tuple[str, dict[str, Any], int]] = [
    ("before: 100 ms frames, window 0.3 s, partials every 100 ms, rescoring on", _BEFORE, 3200),
    ("rescoring off (fwdflat, bestpath)", _NO_RESCORING, 3200),
    ("+ 50 ms frames", _NO_RESCORING, 1600),
    ("+ partials every 50 ms", _PARTIALS_50, 1600),
    ("+ endpointer window 0.2 s", {**_PARTIALS_50, "vad_window_s": 0.2}, 1600),
    ("window 0.2 s, VAD mode 3 (instead)", {**_PARTIALS_50, "vad_window_s": 0.2, "vad_mode": 3}, 1600),
    ("window 0.15 s, ratio 0.8 (instead)", {**_PARTIALS_50, "vad_window_s": 0.15, "vad_ratio": 0.8}, 1600),
    (
        "window 0.15 s, ratio 0.8, VAD mode 3",
        {**_PARTIALS_50, "vad_window_s": 0.15, "vad_ratio": 0.8, "vad_mode": 3},
        1600,
    ),
    ("+ pieces merged for Whisper across pauses < 400 ms (the defaults)", {}, 1600),
]


async def levers_section(clips: Sequence[str], gap_ms: int) -> list[str]:
    """One session at real-time pace straight into the engine (no socket), per configuration."""
    rows = [
        "| configuration | speech start → first interim | end of speech → endpoint interim "
        "| end of speech → final | WER of the finals | fell back |",
        "|---|---|---|---|---|---|",
    ]
    pcm, spans = speech_spans(clips, gap_ms)
    for label, changes, frame in LEVERS:
        engine = await asyncio.to_thread(load_engine, replace(EngineConfig(), **changes))
        assert isinstance(engine, TwoPassRecognizer)
        await engine.warm_up()
        events: list[tuple[float, Hypothesis]] = []
        out = await paced(engine, pcm, spans, frame=frame, events=events)
        text = finals([h for _, h in events])
        errors = word_errors(" ".join(reference(n) for n in clips), text)
        words = sum(len(reference(n).split()) for n in clips)
        rows.append(
            f"| {label} | {summary(out['first_interim'])} | {summary(out['first_text'])} | {summary(out['final'])} "
            f"| {100 * errors / words:.1f} % | {int(sum(out['fallback']))} of {len(out['final'])} |"
        )
        await engine.aclose()
    return rows


async def main(sections: set[str], max_sessions: int) -> None:
    out: list[str] = []
    latency_clips = [n for n in CLEAN_16K if "command" not in n]
    if "wer" in sections:
        out += ["### Word errors", "", *await wer_section(), ""]
    if "window" in sections:
        out += ["### Accurate pass: encoder window", "", *await window_section(), ""]
    if "memory" in sections:
        out += ["### Memory", "", *await memory_section(), ""]
    if "levers" in sections:
        out += ["### Latency levers", "", *await levers_section(latency_clips, 2000), ""]
    if "latency" in sections:
        out += ["### Latency", "", *await app_latency(latency_clips, 2000), ""]
    if "load" in sections:
        out += ["### Concurrent sessions", "", *await load_section(max_sessions, latency_clips[:8], 1000), ""]
    print("\n".join(out))


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="wer,window,memory,latency,load")
    parser.add_argument("--max-sessions", type=int, default=6)
    args = parser.parse_args(argv)
    asyncio.run(main(set(args.sections.split(",")), args.max_sessions))


if __name__ == "__main__":
    cli()
