"""The embedded engine as the page uses it, at real-time pace, on recorded human speech (not a test).

    .venv/bin/python -m bench.realtime [--sessions 1,2,4,8] [--frame-ms 50] [--set human|reading|heldout|varied]
        [--clips N] [--noise-db 20] [--reference] [--show] [--busy 1] [--stagger-s 0.37] [--each-alone]
        [--server-log FILE]

Starts the app as its own process (`python -m server`, the default engine, LOCAL_MAX_SESSIONS set to the largest
session count), then for each session count opens that many sessions through POST /api/sessions and the engine's
socket. Each session plays a program of the human clips (tests/data/human) one after another with 1 s of quiet
between them, in real time, in the page's frames, each session starting with a different clip; then EOS. With
--set reading each session plays the 24.7 s Austen reading instead (the five sentences joined as recorded, no pause
longer than about 0.2 s: a long reading), each session under its own noise; with --set heldout, the held-out
recordings (tests/data/heldout: a read sonnet, unscripted talk, a speech); with --set varied, the short held-out
recordings of other voices and manners (tests/data/varied: falsetto, whispered, laughing, fillers, podcast talk,
read sentences). --each-alone (with --sessions 1) plays
each recording in a session of its own instead, one session after another: one speaker per session, each session's
engine state (its prompt, the detector's, the endpointer's) starting afresh, as when a user opens the page and talks.

Per clip it measures (from the client's side, so the socket and the scheduler are included):
- first interim: the clip's speech onset (first 10 ms frame within 35 dB of its peak) → the first interim with
  words that arrives after it;
- final: the clip's end of speech (the end of its last 10 ms frame within 35 dB of its peak) → the final that
  carries its last words (the last final that starts within the clip's speech);
- every final: its last word's end (the final's endTimeMs) → its arrival, for all finals, those within a clip's
  speech too (a window held while the speaker went on, or cut at a pause shorter than the detector's, comes later
  after its words than a clip's last final does after the clip);
- interim lag: for each interim, its arrival minus the moment the audio of its last word was sent; over all
  interims, and over those that brought a newer last word (how far the fast pass runs behind the speech: the
  others redraw words already there, a rewrite settling or an utterance's endpoint, and their last word is old);
- flicker: the share of interim updates that change a word shown before other than the newest one;
- word errors of all finals against all the clips' words; fallbacks (WARNINGs); sessions dropped (no FINISHED);
  sessions refused at CONFIG (the engine was full or behind real time: not scored).
From the server's /metrics after each run: the event loop's lag (p95 from the histogram's buckets, and mean).

--busy N runs N processes that spin at the normal priority throughout: a machine whose CPU other work takes, made
repeatable. Whisper runs niced, so it gets what they and the fast pass leave; on a virtual machine whose host
steals CPU the results varied from run to run, which this condition stands in for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from bench.procs import cpu_seconds, free_port
from bench.speech import (
    HELDOUT_CLIPS,
    HUMAN_CLIPS,
    READING,
    VARIED_CLIPS,
    human_reference,
    load_human,
    normalise,
    speech_end_ms,
    speech_onset_ms,
    with_noise,
    word_errors,
)

BYTES_PER_MS = 32
GAP_MS = 1000
# A final as --show prints it; bench/window_replay.py reads the spans back (final_spans).
FINAL_LINE = "{}, {}-{} (came at {:.0f}): {}"
_FINAL_SPAN = re.compile(r"session from (\S+), (\d+)-(\d+) \(came at \d+\): (.*)$")


def _finals(lines: Iterable[str]) -> dict[str, list[tuple[int, int, str]]]:
    """From --show's final lines, each session's finals in the order they came: start and end in ms of its first
    recording (less the GAP_MS of quiet before it; with --each-alone, of its only one), and text."""
    found: dict[str, list[tuple[int, int, str]]] = {}
    for line in lines:
        match = _FINAL_SPAN.search(line)
        if match:
            start, end = int(match.group(2)) - GAP_MS, int(match.group(3)) - GAP_MS
            found.setdefault(match.group(1), []).append((start, end, match.group(4)))
    return found


def final_spans(lines: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
    """Each session's finals' spans (`_finals`)."""
    return {name: [(start, end) for start, end, _ in finals] for name, finals in _finals(lines).items()}


def final_texts(lines: Iterable[str]) -> dict[str, list[str]]:
    """Each session's finals' texts (`_finals`)."""
    return {name: [text for _, _, text in finals] for name, finals in _finals(lines).items()}


LOCAL_TAG = "POCKETSPHINX:en-US:*:*"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


@dataclass
class Clip:
    name: str
    onset_ms: int  # in the program
    end_ms: int
    span: tuple[int, int]  # the whole recording's bytes in the program, its quiet included


@dataclass
class Program:
    pcm: bytes
    clips: list[Clip]
    reference: str


SETS = {"human": HUMAN_CLIPS, "reading": [READING], "heldout": HELDOUT_CLIPS, "varied": VARIED_CLIPS}
_SET_NAMES = {"human": "Human", "heldout": "Held-out", "varied": "Varied held-out"}


def program(first: int, count: int, noise_db: float | None, clips: list[str] = HUMAN_CLIPS) -> Program:
    names = [clips[(first + i) % len(clips)] for i in range(count)]
    pcm = bytes(GAP_MS * BYTES_PER_MS)
    placed: list[Clip] = []
    for name in names:
        audio = load_human(name)
        offset = len(pcm) // BYTES_PER_MS
        span = (len(pcm), len(pcm) + len(audio))
        placed.append(Clip(name, offset + speech_onset_ms(audio), offset + speech_end_ms(audio), span))
        pcm += audio + bytes(GAP_MS * BYTES_PER_MS)
    if noise_db is not None:
        pcm = with_noise(pcm, noise_db, first)
    return Program(pcm, placed, " ".join(human_reference(n) for n in names))


@dataclass
class Result:
    first_interim_ms: list[float] = field(default_factory=list)
    final_ms: list[float] = field(default_factory=list)
    # Every final, from the end of its last word (its endTimeMs, session time) to its arrival: also the finals of
    # windows cut while the speaker went on, or at a pause shorter than the detector's, which final_ms (one per clip,
    # from the clip's end of speech) leaves out.
    word_final_ms: list[float] = field(default_factory=list)
    interim_lag_ms: list[float] = field(default_factory=list)
    new_word_lag_ms: list[float] = field(default_factory=list)  # interims whose last word is newer than before
    updates: int = 0
    rewrites: int = 0
    errors: int = 0
    words: int = 0
    finals: int = 0
    fallbacks: int = 0
    dropped: int = 0
    refused: int = 0  # sessions the engine would not take (busy: full, or behind real time)
    audio_ms: int = 0  # the admitted sessions' audio
    drop_reasons: list[str] = field(default_factory=list)
    final_texts: list[str] = field(default_factory=list)  # each final's session, span, arrival (ms), text: --show


async def session(url: str, prog: Program, frame_ms: int, delay_s: float, result: Result) -> None:
    await asyncio.sleep(delay_s)
    async with httpx.AsyncClient(timeout=30) as client:
        grant = (await client.post(url + "/api/sessions", json={"provider": "local"})).json()
    events: list[tuple[float, dict[str, Any]]] = []
    frame = frame_ms * BYTES_PER_MS
    async with websockets.connect(f"{grant['ws_url']}?access_token={grant['token']}", max_size=None) as ws:
        await ws.recv()  # INITIALIZED
        config = {
            "type": "CONFIG",
            "pipeline": [
                {
                    "task": "ASR",
                    "exceptionHandlingPolicy": "THROW",
                    "config": {"tag": LOCAL_TAG, "parameters": {"enableInterims": True}},
                }
            ],
        }
        await ws.send(json.dumps(config))
        reply = json.loads(await ws.recv())
        if reply.get("status") != "CONFIGURED":
            # Refused at admission: an ERROR, then close 1013. Counted, not scored; the others go on. Anything else
            # is a failure of the run, not a measurement.
            try:
                await ws.recv()
            except websockets.ConnectionClosed as exc:
                if reply.get("type") == "ERROR" and exc.rcvd is not None and exc.rcvd.code == 1013:
                    result.refused += 1
                    return
            raise RuntimeError(f"CONFIG was answered {reply}")
        result.audio_ms += len(prog.pcm) // BYTES_PER_MS

        async def receive() -> None:
            try:
                async for raw in ws:
                    events.append((time.perf_counter(), json.loads(raw)))
            except websockets.ConnectionClosed as exc:
                # A dropped session is what this measures, not a reason to stop measuring the others.
                close = exc.rcvd
                result.drop_reasons.append(f"{close.code} {close.reason}" if close else "no close frame")

        receiver = asyncio.create_task(receive())
        start = time.perf_counter()
        try:
            for i in range(0, len(prog.pcm), frame):
                await ws.send(prog.pcm[i : i + frame])
                # The frame is sent once its audio has been "recorded": real-time pace.
                await asyncio.sleep(max(0.0, start + (i + frame) / BYTES_PER_MS / 1000 - time.perf_counter()))
            await ws.send(json.dumps({"type": "EOS", "lockSession": False}))
        except websockets.ConnectionClosed:
            pass  # the receiver records why
        try:
            await asyncio.wait_for(receiver, 60)
        except TimeoutError:
            receiver.cancel()
    score(prog, start, events, result)


def text_of(segment: dict[str, Any]) -> str:
    out: list[str] = []
    glue = True
    for token in segment.get("tokens", []):
        if not glue and not token.get("isLeftHanded"):
            out.append(" ")
        out.append(token.get("text", ""))
        glue = bool(token.get("isRightHanded"))
    return "".join(out)


def score(prog: Program, start: float, events: list[tuple[float, dict[str, Any]]], result: Result) -> None:
    messages = [m for _, m in events]
    if not messages or messages[-1].get("status") != "FINISHED":
        result.dropped += 1
    result.fallbacks += sum(1 for m in messages if m.get("type") == "WARNING")
    segments = [(t - start, m["textSegment"]) for t, m in events if m.get("type") == "TEXT_SEGMENT"]
    finals = [(t, s) for t, s in segments if s["isFinal"] and s["tokens"]]
    result.finals += len(finals)
    result.word_final_ms += [t * 1000 - s["endTimeMs"] for t, s in finals]
    hyp = " ".join(text_of(s) for _, s in finals)
    session_name = f"session from {prog.clips[0].name}" if prog.clips else "session"
    result.final_texts += [
        FINAL_LINE.format(session_name, s["startTimeMs"], s["endTimeMs"], 1000 * t, text_of(s)) for t, s in finals
    ]
    result.errors += word_errors(prog.reference, hyp)
    result.words += len(normalise(prog.reference).split())
    for clip in prog.clips:
        first = next((t for t, s in segments if not s["isFinal"] and s["tokens"] and t * 1000 >= clip.onset_ms), None)
        if first is not None:
            result.first_interim_ms.append(first * 1000 - clip.onset_ms)
        # The final that carries the clip's last words: the last one that starts within the clip's speech.
        final = next((t for t, s in reversed(finals) if clip.onset_ms - 500 <= s["startTimeMs"] < clip.end_ms), None)
        if final is not None:
            result.final_ms.append(final * 1000 - clip.end_ms)
    previous: list[str] = []
    newest_end = -1
    for t, s in segments:
        if s["isFinal"]:
            previous = []
            continue
        if s["tokens"]:
            last_end = s["startTimeMs"] + s["tokens"][-1]["endOffsetMs"]
            result.interim_lag_ms.append(t * 1000 - last_end)
            if last_end > newest_end:
                result.new_word_lag_ms.append(t * 1000 - last_end)
                newest_end = last_end
        words = normalise(text_of(s)).split()
        if previous:
            result.updates += 1
            # A rewrite: a word shown before, other than the newest, is no longer there as it was.
            if words[: len(previous) - 1] != previous[:-1]:
                result.rewrites += 1
        previous = words


def _lag_counts(metrics: str) -> tuple[list[tuple[float, float]], float, float]:
    buckets = [
        (float(m.group(1)), float(m.group(2)))
        for m in re.finditer(r'stt_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', metrics)
    ]
    count = re.search(r"stt_event_loop_lag_seconds_count (\S+)", metrics)
    total = re.search(r"stt_event_loop_lag_seconds_sum (\S+)", metrics)
    assert count is not None and total is not None, "no loop lag in /metrics"
    return buckets, float(count.group(1)), float(total.group(1))


def loop_lag(before: str, after: str) -> tuple[float, float]:
    """p95 (the upper bound of the bucket it falls in) and mean of the event loop's lag during one run, in ms."""
    b0, c0, s0 = _lag_counts(before)
    b1, c1, s1 = _lag_counts(after)
    count = c1 - c0
    buckets = [(le, n1 - n0) for (le, n1), (_, n0) in zip(b1, b0, strict=True)]
    p95 = next((le for le, n in buckets if n >= 0.95 * count), float("inf"))
    return 1000 * p95, 1000 * (s1 - s0) / max(1.0, count)


def fallback_reasons(before: str, after: str) -> str:
    """The fallbacks of one run by reason, from the server's /metrics: "slow 2, empty 1" (empty when none)."""

    def counts(metrics: str) -> dict[str, float]:
        pattern = r'stt_engine_fallbacks_total\{reason="([^"]+)"\} (\S+)'
        return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, metrics)}

    b, a = counts(before), counts(after)
    return ", ".join(
        f"{reason} {a[reason] - b.get(reason, 0):.0f}" for reason in sorted(a) if a[reason] > b.get(reason, 0)
    )


def shed(before: str, after: str) -> int:
    """Utterances the fast pass decoded with its narrower search during one run (their session was behind)."""

    def count(metrics: str) -> float:
        found = re.search(r"^stt_engine_shed_utterances_total (\S+)", metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    return round(count(after) - count(before))


async def run(
    url: str,
    sessions: int,
    frame_ms: int,
    clips: int,
    noise_db: float | None,
    stagger_s: float,
    names: list[str],
    *,
    each_alone: bool = False,
) -> Result:
    result = Result()
    if each_alone:
        # One speaker per session, as a user dictates: each recording in its own session, one after another.
        for i in range(len(names)):
            await session(url, program(i, 1, noise_db, names), frame_ms, 0.0, result)
        return result
    await asyncio.gather(
        *(session(url, program(i, clips, noise_db, names), frame_ms, stagger_s * i, result) for i in range(sessions))
    )
    return result


def whisper_reference(programs: list[Program]) -> dict[str, list[tuple[int, int]]]:
    """Per reference, per program: words wrong and words in all, Whisper base on each clip's whole recording cut
    from the same program audio (its noise included): what the engine's WER is held to (issue 16). Two references:
    the engine's own decoder on one window (a clip whose answer loops counts all its words wrong; it reads only the
    first 30 s), and faster-whisper's own long-form transcribe with the engine's beam (bench/twopass.py)."""
    from bench.twopass import WHOLE_RECORDING_REFERENCES, accurate

    model = accurate()
    out: dict[str, list[tuple[int, int]]] = {}
    for label, alone in WHOLE_RECORDING_REFERENCES:
        out[label] = []
        for p in programs:
            errors = words = 0
            for clip in p.clips:
                start, end = clip.span
                reference = human_reference(clip.name)
                errors += word_errors(reference, alone(model, p.pcm[start:end]))
                words += len(normalise(reference).split())
            out[label].append((errors, words))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,2,4,8")
    parser.add_argument("--frame-ms", type=int, default=50)
    parser.add_argument("--set", choices=sorted(SETS), default="human", help="what each session plays (see above)")
    parser.add_argument("--clips", type=int, default=None, help="clips per session (default: the whole set)")
    parser.add_argument("--noise-db", type=float, default=None)
    parser.add_argument(
        "--each-alone",
        action="store_true",
        help="each recording in a session of its own, one after another (with --sessions 1)",
    )
    parser.add_argument("--show", action="store_true", help="print each final's span, arrival (ms) and text")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also Whisper base on each whole clip of the same audio (after the runs)",
    )
    parser.add_argument("--busy", type=int, default=0, help="processes spinning at normal priority during the runs")
    parser.add_argument(
        "--server-log",
        type=pathlib.Path,
        default=None,
        help="write the app's log here (at info level, or APP_LOG_LEVEL if lower), to trace a run",
    )
    parser.add_argument(
        "--stagger-s", type=float, default=0.37, help="seconds between one session's start and the next's"
    )
    args = parser.parse_args()
    names = SETS[args.set]
    clips = args.clips or len(names)
    counts = [int(n) for n in args.sessions.split(",")]
    if args.each_alone and counts != [1]:
        parser.error("--each-alone plays one session at a time: use it with --sessions 1")
    port = free_port()
    # All sessions come from this one client: its caps are lifted to the largest count (the engine's stays one
    # above, as a client may never hold every decoder).
    env = {
        **os.environ,
        "LOCAL_MAX_SESSIONS": str(max(counts) + 1),
        "APP_MAX_SESSIONS_PER_CLIENT": str(max(counts)),
        "APP_SESSION_RATE_PER_MIN": "1000",
    }
    log = None
    if args.server_log is not None:
        log = args.server_log.open("wb")
        if env.get("APP_LOG_LEVEL", "info") not in ("info", "debug", "trace"):
            env["APP_LOG_LEVEL"] = "info"
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    spinners: list[subprocess.Popen[bytes]] = []
    try:
        spinners += [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        rows = [
            "| sessions | first interim p50 / p95 (ms) | final after end of speech p50 / p95 (ms) | every final "
            "after its last word p50 / p95 (ms) | interim lag p95, all / new words (ms) | rewrites of shown words "
            "| WER | fallbacks | dropped | loop lag p95 / mean (ms) | CPU s per audio s | utterances shed | refused |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for n in counts:
            before, cpu_before = httpx.get(url + "/metrics").text, cpu_seconds(server.pid)
            r = asyncio.run(
                run(url, n, args.frame_ms, clips, args.noise_db, args.stagger_s, names, each_alone=args.each_alone)
            )
            after, cpu = httpx.get(url + "/metrics").text, cpu_seconds(server.pid) - cpu_before
            audio_s = max(1, r.audio_ms) / 1000
            lag_p95, lag_mean = loop_lag(before, after)
            reasons = fallback_reasons(before, after)
            fallbacks = f"{r.fallbacks} of {r.finals} finals" + (f" ({reasons})" if reasons else "")
            rows.append(
                f"| {n} | {pct(r.first_interim_ms, 0.5):.0f} / {pct(r.first_interim_ms, 0.95):.0f} | "
                f"{pct(r.final_ms, 0.5):.0f} / {pct(r.final_ms, 0.95):.0f} | "
                f"{pct(r.word_final_ms, 0.5):.0f} / {pct(r.word_final_ms, 0.95):.0f} | "
                f"{pct(r.interim_lag_ms, 0.95):.0f} / {pct(r.new_word_lag_ms, 0.95):.0f} | "
                f"{100 * r.rewrites / max(1, r.updates):.0f} % of {r.updates} | "
                f"{100 * r.errors / max(1, r.words):.1f} % ({r.errors}/{r.words}) | "
                f"{fallbacks} | {r.dropped} of {n} | {lag_p95:.0f} / {lag_mean:.1f} | "
                f"{cpu / audio_s:.2f} | {shed(before, after)} | {r.refused} of {n} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
            if args.show:
                print("\n".join(r.final_texts), file=sys.stderr, flush=True)
            if r.drop_reasons:
                print(f"closed mid-stream: {', '.join(r.drop_reasons)}", file=sys.stderr, flush=True)
        print(
            (
                f"The 24.7 s Austen reading per session with {GAP_MS} ms of quiet around it"
                if args.set == "reading"
                else f"{_SET_NAMES[args.set]} clips, each in a session of its own, one session after another"
                if args.each_alone
                else f"{_SET_NAMES[args.set]} clips, {clips} per session with {GAP_MS} ms between them"
            )
            + ", real-time pace in "
            f"{args.frame_ms} ms frames"
            + (f", pink noise at {args.noise_db:g} dB SNR" if args.noise_db else "")
            + (f", {args.busy} other process(es) spinning" if args.busy else "")
            + f"; sessions start {args.stagger_s:g} s apart; "
            f"median clip {statistics.median(len(load_human(c)) for c in names) / 32000:.1f} s."
        )
        print("\n".join(rows))
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        if log is not None:
            log.close()
    if args.reference:
        references = whisper_reference([program(i, clips, args.noise_db, names) for i in range(max(counts))])
        for label, per_program in references.items():
            for n in counts:
                errors, words = (sum(column) for column in zip(*per_program[:n], strict=True))
                print(f"{label}, {n} sessions: {100 * errors / max(1, words):.1f} % ({errors}/{words})")


if __name__ == "__main__":
    main()
