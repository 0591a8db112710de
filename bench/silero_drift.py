"""How much speech Silero's detector finds in each held-out recording when they are played as one session, with its
LSTM state carried over the whole stream, started afresh after 2 s without speech, or both as the engine runs
them (bench/README.md "The detector goes deaf over a long stream").

    .venv/bin/python -m bench.silero_drift [--noise-db 10]     # under a minute

The recordings in the order bench.realtime plays them, 1 s of silence after each; ms of speech in each recording,
pauses under 500 ms filled (the engine's LOCAL_SPEECH_PAUSE_MS), beside each recording heard alone.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import numpy.typing as npt

from bench.speech import HELDOUT_CLIPS, load_human, with_noise
from server.engine.silero import CHUNK, CHUNK_MS, CONTEXT, Listener, SileroDetector, chunk_rows

PAUSE_CHUNKS = 500 // CHUNK_MS
GAP = bytes(32_000)  # 1 s of PCM16 at 16 kHz


def heard(model: SileroDetector, pcm: bytes, *, restarts: bool) -> npt.NDArray[np.bool_]:
    """Whether each 32 ms chunk is speech for one state, as the engine's tracker runs it."""
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / np.float32(32768)
    chunks = audio[: len(audio) // CHUNK * CHUNK].reshape(-1, CHUNK)
    rows = chunk_rows(chunks, np.zeros(CONTEXT, np.float32))
    return np.array(Listener(restarts=restarts).hear(model, rows))


def speech_ms(flags: npt.NDArray[np.bool_]) -> int:
    flags = flags.copy()
    found = np.flatnonzero(flags)
    for a, b in itertools.pairwise(found):
        if b - a <= PAUSE_CHUNKS:
            flags[a:b] = True
    return int(flags.sum()) * CHUNK_MS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise-db", type=float, default=None)
    args = parser.parse_args()
    model = SileroDetector()
    pcm, bounds = b"", []
    for name in HELDOUT_CLIPS:
        start = len(pcm) // (2 * CHUNK)
        pcm += load_human(name) + GAP
        bounds.append((start, len(pcm) // (2 * CHUNK)))
    if args.noise_db is not None:
        pcm = with_noise(pcm, args.noise_db, 1)
    carried, restarted = heard(model, pcm, restarts=False), heard(model, pcm, restarts=True)
    rows = {"carried over the session": carried, "started afresh after 2 s": restarted, "either": carried | restarted}
    print("| the detector's state | " + " | ".join(HELDOUT_CLIPS) + " |")
    print("|---" * (len(HELDOUT_CLIPS) + 1) + "|")
    alone = [speech_ms(heard(model, pcm[2 * CHUNK * a : 2 * CHUNK * b], restarts=False)) for a, b in bounds]
    print("| each recording alone (the session's own audio) | " + " | ".join(map(str, alone)) + " |")
    for label, flags in rows.items():
        print(f"| {label} | " + " | ".join(str(speech_ms(flags[a:b])) for a, b in bounds) + " |")


if __name__ == "__main__":
    main()
