"""Peer benchmark (not a test): WhisperLiveKit, self-hosted on loopback, fed the same human speech at real-time pace.
Prints a Markdown table.

WhisperLiveKit (WLK) runs in its own virtualenv, outside the repository and never committed, because it pins its own
torch, faster-whisper and FastAPI. Install it once (about 1.8 GB; the first line takes the CPU build of torch that lies
on this machine's disk, so WLK's own torch requirement installs nothing more):

    python3 -m venv /work/peer-venv
    /work/peer-venv/bin/pip install torch==2.13.0
    /work/peer-venv/bin/pip install whisperlivekit==0.2.26

Run (from the repository root; the project's Whisper base must have been assembled in .venv/cache/live-stt, which
the engine does on its first load):

    .venv/bin/python -m bench.peer_whisperlivekit --sessions 1,2,4
    .venv/bin/python -m bench.peer_whisperlivekit --sessions 1 --clips 3     # a quick check, about 30 s
    .venv/bin/python -m bench.peer_whisperlivekit --sessions 1 --set heldout # the held-out recordings

The server is started here, offline (HF_HUB_OFFLINE=1), on a free 127.0.0.1 port, as

    whisperlivekit-server --host 127.0.0.1 --port PORT --backend faster-whisper --backend-policy localagreement
        --model_dir .venv/cache/live-stt/whisper-base-* --lan en --pcm-input --warmup-file tests/data/speech/<clip>
        --log-level WARNING

- faster-whisper with the LocalAgreement policy: WLK's default policy, SimulStreaming, decodes with a PyTorch
  Whisper checkpoint that it would download; LocalAgreement runs on the project's own CTranslate2 Whisper base.
  WLK's own decoding settings are kept (beam 5, compute type "auto"), as a user of WLK would get them.
- Voice activity: WLK's VAC (Silero) stays on, as by default: its ONNX model ships inside the wheel, nothing is
  downloaded. (`--no-vad` is not passed: in 0.2.26 nothing reads it.) No diarization, no translation.
- `--warmup-file` is a committed Festival clip: without it WLK downloads a sample from GitHub to warm up.
- `--pcm-input`: WLK then takes raw s16le mono at 16 kHz (its AudioProcessor's fixed rate; its own page's worklet
  resamples to that) instead of WebM through ffmpeg: the same PCM the project's engine is fed, no codec in between.

What is measured, per number of concurrent sessions (each session starts 0.37 s after the previous one, as in
bench/twopass.py's load section; each streams a "program": the human clips of tests/data/human (`--set heldout`:
the held-out recordings of tests/data/heldout) one after another with 1 s of digital silence between them, in
`--frame-ms` frames, each sent once that much wall time has passed;
then an empty binary message, which is how WLK's own web client says "end of stream"; WLK answers with its last
results and {"type": "ready_to_stop"}):

- first text: a clip's speech onset (bench.speech.speech_onset_ms) → the first message, after that onset, that shows
  (committed lines + buffer_transcription) more words than the earlier clips' final words and than were on screen
  before the onset (a late tail of the previous clip is not this clip's text);
- final: a clip's end of speech (bench.speech.speech_end_ms) → the first message whose committed lines hold all of
  the clip's final words. WLK sends the whole transcript in every message ("full" mode): `lines` are committed
  (LocalAgreement only appends to them), `buffer_transcription` is the unstable tail. Which final words belong to
  which clip comes from aligning the program's final text with the references (Levenshtein, words inserted between
  clips count for the earlier one); counting words rather than trusting Whisper's word times keeps the measure
  independent of timestamp errors;
- WER: word errors of each session's final text against the concatenated references, all sessions pooled;
- CPU: user + system seconds of the server process and its descendants (/proc/<pid>/stat) over the run, divided by
  the audio seconds streamed (sessions x program length);
- lag at end: after the last frame was sent, how long until the committed text was complete (the worst session).

Timings depend on what else the machine runs: WLK re-transcribes its whole unstable buffer (beam 5) on every chunk,
so on a loaded CPU its first text and finals slip by seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

from bench.procs import cpu_seconds, free_port
from bench.speech import (
    CLEAN_16K,
    HELDOUT_CLIPS,
    HUMAN_CLIPS,
    READING,
    SPEECH,
    human_reference,
    load_human,
    normalise,
    speech_end_ms,
    speech_onset_ms,
    word_errors,
)

REPO = Path(__file__).resolve().parent.parent
BYTES_PER_MS = 32  # 16 kHz mono s16le: the only format WLK's --pcm-input takes
STAGGER_S = 0.37  # as bench/twopass.py: sessions that do not all start on the same frame
STARTUP_TIMEOUT_S = 300.0  # importing torch and warming Whisper up takes about 40 s on 2 idle cores


@dataclass
class Clip:
    name: str
    reference: str
    onset_s: float  # speech onset, seconds into the program
    end_s: float  # end of speech, seconds into the program


@dataclass
class Program:
    pcm: bytes
    clips: list[Clip]

    @property
    def seconds(self) -> float:
        return len(self.pcm) / BYTES_PER_MS / 1000

    @property
    def reference(self) -> str:
        return " ".join(c.reference for c in self.clips)


@dataclass
class SessionResult:
    messages: list[tuple[float, dict[str, Any]]]  # (seconds since the session's first frame was due, message)
    last_sent_s: float
    first_text_s: list[float] = field(default_factory=list)
    final_s: list[float] = field(default_factory=list)
    errors: int = 0
    words: int = 0
    lag_s: float = float("nan")
    missed: int = 0  # clips none of whose words made it into the final text
    never_final: int = 0  # clips whose last words stayed in the buffer, never committed


def build_program(names: Sequence[str], gap_ms: int) -> Program:
    pcm = b""
    clips: list[Clip] = []
    for k, name in enumerate(names):
        if k:
            pcm += bytes(gap_ms * BYTES_PER_MS)
        audio = load_human(name)
        offset_ms = len(pcm) // BYTES_PER_MS
        clips.append(
            Clip(
                name,
                human_reference(name),
                (offset_ms + speech_onset_ms(audio)) / 1000,
                (offset_ms + speech_end_ms(audio)) / 1000,
            )
        )
        pcm += audio
    return Program(pcm, clips)


# --- the server -----------------------------------------------------------------------------------------------------


def find_model(explicit: Path | None) -> Path:
    """The project's CTranslate2 Whisper base: the same weights the engine under test uses."""
    if explicit is not None:
        candidates = [explicit]
    else:
        candidates = sorted((REPO / ".venv" / "cache" / "live-stt").glob("whisper-base*"))
    for path in candidates:
        if (path / "model.bin").is_file() and (path / "tokenizer.json").is_file():
            return path
    raise SystemExit(
        f"no CTranslate2 Whisper base (model.bin, tokenizer.json) in {candidates or REPO / '.venv/cache/live-stt'}: "
        "load the project's engine once to assemble it, or pass --model-dir"
    )


@contextlib.contextmanager
def wlk_server(venv: Path, model: Path, log: Path) -> Iterator[tuple[int, int]]:
    """Start WLK on a free loopback port, wait until it accepts connections, yield (pid, port); always stop it."""
    port = free_port()
    command = [
        str(venv / "bin" / "whisperlivekit-server"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--backend", "faster-whisper", "--backend-policy", "localagreement"),
        *("--model_dir", str(model), "--lan", "en", "--pcm-input"),
        *("--warmup-file", str(SPEECH / CLEAN_16K[0])),
        *("--log-level", "WARNING"),
    ]
    # Offline: nothing may come from a model hub at run time (the model is a local folder; this makes sure).
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    print(" ".join(command), file=sys.stderr)
    with open(log, "wb") as out:
        # Its own process group, so that stopping it also stops anything it started, and only that.
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        # uvicorn binds the port only after the app's startup (model load and warm-up), so a connection means ready.
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"WLK exited with {proc.returncode} while starting:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"WLK did not accept connections in {STARTUP_TIMEOUT_S:.0f} s:\n{tail(log)}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.5)
        yield proc.pid, port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- one session ----------------------------------------------------------------------------------------------------


async def stream(port: int, program: Program, frame_ms: int, delay_s: float, timeout_s: float) -> SessionResult:
    """One WebSocket session: the program at real-time pace, then end of stream; every message with its arrival."""
    await asyncio.sleep(delay_s)
    raw: list[tuple[float, str | bytes]] = []
    done = asyncio.Event()
    async with connect(f"ws://127.0.0.1:{port}/asr", max_size=None, open_timeout=30) as ws:
        start = time.perf_counter()

        async def reader() -> None:
            # Parsing waits until the end: the client's loop only timestamps, so that N sessions don't delay each
            # other's readings.
            async for message in ws:
                raw.append((time.perf_counter() - start, message))
                if b'"ready_to_stop"' in (message if isinstance(message, bytes) else message.encode()):
                    done.set()
                    return

        task = asyncio.create_task(reader())
        frame = frame_ms * BYTES_PER_MS
        for c, i in enumerate(range(0, len(program.pcm), frame)):
            # Frame c is sent once it would have been recorded: at the end of its span, against an absolute clock.
            due = start + (c + 1) * frame_ms / 1000
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await ws.send(program.pcm[i : i + frame])
        last_sent = time.perf_counter() - start
        # WLK's end of stream: an empty binary message; it flushes, sends the last results, then "ready_to_stop".
        await ws.send(b"")
        try:
            await asyncio.wait_for(done.wait(), timeout_s)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    messages = [(t, json.loads(m)) for t, m in raw]
    return score(SessionResult(messages, last_sent), program)


def texts(message: dict[str, Any]) -> tuple[str, str]:
    """(committed, shown) text of a WLK transcript message: committed lines, and those plus the unstable buffer."""
    committed = " ".join(line["text"] for line in message["lines"] if line.get("speaker") != -2 and line.get("text"))
    return committed, f"{committed} {message.get('buffer_transcription') or ''}"


def attribute(clips: Sequence[Clip], hyp: Sequence[str]) -> list[int]:
    """For each (normalised) final word, the clip it belongs to: a minimum-edit alignment with the references.
    A substituted word goes with its reference word; an inserted one with the reference word before it."""
    ref = [(k, w) for k, c in enumerate(clips) for w in normalise(c.reference).split()]
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), dtype=np.int32)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (ref[i - 1][1] != hyp[j - 1]))
    owner = [0] * m
    i, j = n, m
    while j > 0:
        if i > 0 and cost[i, j] == cost[i - 1, j - 1] + (ref[i - 1][1] != hyp[j - 1]):
            owner[j - 1], i, j = ref[i - 1][0], i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            owner[j - 1], j = ref[i - 1][0] if i > 0 else 0, j - 1
    return owner


def score(result: SessionResult, program: Program) -> SessionResult:
    transcript = [(t, m) for t, m in result.messages if "lines" in m]
    if not transcript:
        raise RuntimeError(f"WLK sent no transcript: {result.messages[:3]}")
    errors = [m for _, m in transcript if m.get("status") == "error"]
    if errors:
        raise RuntimeError(f"WLK reported an error: {errors[0].get('error')}")
    # After the end of stream WLK has committed everything; the buffer is added in case a tail was left in it.
    final = normalise(texts(transcript[-1][1])[1]).split()
    result.errors = word_errors(program.reference, " ".join(final))
    result.words = len(normalise(program.reference).split())
    owner = attribute(program.clips, final)
    # through[k]: how many final words belong to clips 0..k (the alignment is monotonic, so they form a prefix).
    through = [sum(1 for o in owner if o <= k) for k in range(len(program.clips))]
    counts = [(t, len(normalise(c).split()), len(normalise(s).split())) for t, m in transcript for c, s in [texts(m)]]
    for k, clip in enumerate(program.clips):
        before = through[k - 1] if k else 0
        if through[k] == before:
            result.missed += 1
            continue
        # Words already on screen when the clip starts (a late or spurious tail of the previous one) aren't its text.
        on_screen = max([shown for t, _, shown in counts if t < clip.onset_s], default=0)
        threshold = max(before, on_screen)
        shown_at = next((t for t, _, shown in counts if t >= clip.onset_s and shown > threshold), None)
        if shown_at is not None:
            result.first_text_s.append(shown_at - clip.onset_s)
        final_at = next((t for t, committed, _ in counts if committed >= through[k]), None)
        if final_at is None:
            result.never_final += 1
        else:
            result.final_s.append(final_at - clip.end_s)
    complete_at = next((t for t, committed, _ in counts if committed >= len(final)), transcript[-1][0])
    result.lag_s = max(0.0, complete_at - result.last_sent_s)
    return result


# --- the report -----------------------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def p50_p95(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{1000 * pct(values, 0.5):.0f} / {1000 * pct(values, 0.95):.0f}"


async def run(n: int, pid: int, port: int, program: Program, frame_ms: int) -> str:
    cpu_before = cpu_seconds(pid)
    timeout_s = 120 + 2 * program.seconds
    results = await asyncio.gather(*(stream(port, program, frame_ms, k * STAGGER_S, timeout_s) for k in range(n)))
    cpu = cpu_seconds(pid) - cpu_before
    first = [x for r in results for x in r.first_text_s]
    final = [x for r in results for x in r.final_s]
    errors, words = sum(r.errors for r in results), sum(r.words for r in results)
    missed = sum(r.missed for r in results)
    never = sum(r.never_final for r in results)
    notes = [f"{missed} clips without text"] * bool(missed) + [f"{never} clips never committed"] * bool(never)
    note = f" ({', '.join(notes)})" if notes else ""
    for k, r in enumerate(results):
        transcript = [m for _, m in r.messages if "lines" in m]
        print(f"session {k + 1} of {n}, final text: {' '.join(texts(transcript[-1])[1].split())}", file=sys.stderr)
    return (
        f"| {n} | {p50_p95(first)} | {p50_p95(final)}{note} "
        f"| {100 * errors / words:.1f} % ({errors}/{words}) | {cpu / (n * program.seconds):.2f} "
        f"| {max(r.lag_s for r in results):.1f} |"
    )


async def run_all(sessions: Sequence[int], pid: int, port: int, program: Program, frame_ms: int) -> list[str]:
    rows: list[str] = []
    for n in sessions:
        rows.append(await run(n, pid, port, program, frame_ms))
        print(rows[-1], file=sys.stderr)
    return rows


def main(args: argparse.Namespace) -> None:
    clips = HELDOUT_CLIPS if args.set == "heldout" else HUMAN_CLIPS
    names = list(clips[: args.clips] if args.clips else clips)
    if args.reading:
        names.append(READING)
    program = build_program(names, args.gap_ms)
    model = find_model(args.model_dir)
    rows = [
        f"WhisperLiveKit 0.2.26 (faster-whisper, LocalAgreement, Whisper base from {model.name}), {len(names)} clips "
        f"({program.seconds:.1f} s with {args.gap_ms} ms between them) per session at real-time pace in "
        f"{args.frame_ms} ms frames; sessions start {STAGGER_S} s apart. First text: speech onset → first shown "
        "text; final: end of speech → committed; lag at end: the worst session.",
        "",
        "| sessions | first text p50 / p95 (ms) | final after end of speech p50 / p95 (ms) | WER "
        "| CPU s per audio s | lag at end (s) |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="wlk-") as tmp:
        log = Path(tmp) / "server.log"
        try:
            with wlk_server(args.peer_venv, model, log) as (pid, port):
                rows += asyncio.run(run_all(args.sessions, pid, port, program, args.frame_ms))
        except BaseException:
            if log.exists():
                print(f"WLK's log ends:\n{tail(log)}", file=sys.stderr)
            raise
    print("\n".join(rows))


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument(
        "--set",
        choices=["human", "heldout"],
        default="human",
        help="the recordings: the 13 human clips, or the held-out recordings (tests/data/heldout), in the order "
        "bench.realtime --set heldout plays them to its first session",
    )
    parser.add_argument("--clips", type=int, default=0, help="only the first N clips of the set (0: all of them)")
    parser.add_argument("--reading", action="store_true", help="end the program with the 24.7 s Austen reading")
    parser.add_argument("--frame-ms", type=int, default=100)
    parser.add_argument("--gap-ms", type=int, default=1000, help="digital silence between clips")
    parser.add_argument("--peer-venv", type=Path, default=REPO.parent / "peer-venv")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: .venv/cache/live-stt/whisper-base*")
    main(parser.parse_args(argv))


if __name__ == "__main__":
    cli()
