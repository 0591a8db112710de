"""Where a loose voice activity detector hears speech the fast pass's does not, and what Whisper makes of it there
(not a test; bench/README.md "Speech only a loose detector hears").

    .venv/bin/python -m bench.loose_runs modes [--set varied]          # ms called speech by webrtc's modes 0-3
    .venv/bin/python -m bench.loose_runs runs [--noise-db 20] [--set varied --set heldout --set human]

modes: for each recording, the milliseconds each of webrtc's modes (pocketsphinx.Vad, 30 ms frames) calls speech,
and its longest run. runs: every run of mode 1 (server/engine/voice_runs.py's joining, at least 300 ms: shorter than
the engine's RUN_MIN_MS, to see what that bar leaves out) in which mode 3, the fast pass's endpointer's, calls under
300 ms speech, decoded alone by Whisper base (beam 5) with UNHEARD_PAD_MS either side: its text and its spoken
words' mean probability, what the engine's UNHEARD_MIN_PROBABILITY is measured against.
"""

from __future__ import annotations

import argparse

from bench.speech import HELDOUT_CLIPS, HUMAN_CLIPS, VARIED_CLIPS, load_human, with_noise
from bench.twopass import accurate
from server.engine.twopass import UNHEARD_PAD_MS
from server.engine.types import BYTES_PER_MS
from server.engine.voice_runs import FRAME_BYTES, FRAME_MS, FrameRuns, VoiceRun
from server.engine.whisper import WhisperOptions
from server.transcript import Hypothesis

SETS = {"human": HUMAN_CLIPS, "heldout": HELDOUT_CLIPS, "varied": VARIED_CLIPS}
SHORTEST_MS = 300  # the runs looked at: shorter ones are clicks


def decisions(pcm: bytes, mode: int) -> list[bool]:
    from pocketsphinx import Vad

    vad = Vad(mode=mode, sample_rate=16_000, frame_length=FRAME_MS / 1000)
    return [vad.is_speech(pcm[at : at + FRAME_BYTES]) for at in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def all_runs(frames: list[bool]) -> list[VoiceRun]:
    """The runs as voice_runs.py joins them, from SHORTEST_MS (the engine sends what no pass heard of them, from
    RUN_MIN_MS to RUN_MAX_MS long)."""
    runs = FrameRuns(min_ms=SHORTEST_MS)
    for speech in frames:
        runs.add(speech)
    return runs.ended(finishing=True)


def modes(sets: list[str]) -> None:
    print("| recording | " + " | ".join(f"mode {m}: speech / longest run (ms)" for m in range(4)) + " |")
    print("|---|" + "---|" * 4)
    for folder in sets:
        for name in SETS[folder]:
            pcm = load_human(name)
            cells = []
            for mode in range(4):
                frames = decisions(pcm, mode)
                longest = best = 0
                for speech in frames:
                    longest = longest + 1 if speech else 0
                    best = max(best, longest)
                cells.append(f"{sum(frames) * FRAME_MS} / {best * FRAME_MS}")
            print(f"| {folder}/{name} | " + " | ".join(cells) + " |", flush=True)


def runs(sets: list[str], noise_db: float | None) -> None:
    model = accurate(WhisperOptions(beam_size=5))
    model.warm_up()
    print("| recording | run (ms) | mode 3 speech (ms) | Whisper's text | mean probability |")
    print("|---|---|---|---|---|")
    for folder in sets:
        for i, name in enumerate(SETS[folder]):
            pcm = load_human(name)
            if noise_db is not None:
                pcm = with_noise(pcm, noise_db, i)
            loose, strict = decisions(pcm, 1), decisions(pcm, 3)
            for run in all_runs(loose):
                first, last = run.start_ms // FRAME_MS, run.end_ms // FRAME_MS
                strict_ms = sum(strict[first:last]) * FRAME_MS
                if strict_ms >= SHORTEST_MS:
                    continue
                lo = max(0, run.start_ms - UNHEARD_PAD_MS)
                hi = min(len(pcm) // BYTES_PER_MS, run.end_ms + UNHEARD_PAD_MS)
                words = model.transcribe(pcm[lo * BYTES_PER_MS : hi * BYTES_PER_MS], lo)
                said = [w.probability for w in words if w.probability is not None and any(c.isalnum() for c in w.text)]
                mean = f"{sum(said) / len(said):.2f}" if said else ""
                text = Hypothesis(words, True, 0, 0).text
                span = f"{run.start_ms}-{run.end_ms}"
                print(f"| {folder}/{name} | {span} | {strict_ms} | {text!r} | {mean} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["modes", "runs"])
    parser.add_argument("--set", action="append", choices=sorted(SETS), dest="sets")
    parser.add_argument("--noise-db", type=float, default=None)
    args = parser.parse_args()
    sets = args.sets or ["varied", "heldout", "human"]
    if args.what == "modes":
        modes(sets)
    else:
        runs(sets, args.noise_db)


if __name__ == "__main__":
    main()
