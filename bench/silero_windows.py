"""Whisper base on windows cut where Silero's voice activity detector hears a pause, each with the text before as
its prompt: how well the accurate pass can do when its windows are cut at the speaker's pauses rather than at the
fast pass's endpoints (bench/README.md "Windows cut where the speaker paused").

    .venv/bin/python -m bench.silero_windows [--set heldout|human] [--noise-db 10] [--beam 5]

Each recording is cut into the runs of speech faster-whisper's own VAD finds (its `get_speech_timestamps`, the same
Silero model server/engine/silero.py runs chunk by chunk) with at least the given pause between them, 200 ms of
audio either side; each run is decoded as the engine decodes a window, greedily unless `--beam` says otherwise (as
its tables in bench/README.md were measured, and as the engine does whenever time is short), in the run's own
encoder window (the run plus 2 s, at least 10 s) and in Whisper's whole 30 s one (`wide_window`, bench/README.md
"Whisper's whole window for long windows"). No fast pass, no real time: an upper bound for what the engine's windows
can give, beside faster-whisper's own long-form transcribe of the whole recording.
"""

from __future__ import annotations

import argparse

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from bench.speech import HELDOUT_CLIPS, HUMAN_CLIPS, human_reference, load_human, with_noise, word_errors
from bench.twopass import accurate, faster_whisper_alone
from server.engine.delivered import PROMPT_CHARS
from server.engine.whisper import WhisperOptions, WhisperPass
from server.transcript import Hypothesis

SETS = {"heldout": HELDOUT_CLIPS, "human": HUMAN_CLIPS}
PAUSES_MS = (300, 500, 1000)


def windows(pcm: bytes, pause_ms: int) -> list[tuple[int, int]]:
    """(start, end) samples of each run of speech with at least `pause_ms` of quiet between runs."""
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    found = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=pause_ms, speech_pad_ms=200))
    return [(int(t["start"]), int(t["end"])) for t in found]


def decoded(model: WhisperPass, pcm: bytes, pause_ms: int, *, wide_window: bool = False) -> tuple[str, int]:
    text, prompt = [], ""
    cuts = windows(pcm, pause_ms)
    for start, end in cuts:
        # PCM16: two bytes a sample; times in ms (16 samples a ms).
        words = model.transcribe(
            pcm[2 * start : 2 * end], start // 16, prompt=prompt[-PROMPT_CHARS:], wide_window=wide_window
        )
        text.append(Hypothesis(words, True, 0, 0).text)
        prompt += " " + text[-1]
    return " ".join(text), len(cuts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS), default="heldout")
    parser.add_argument("--noise-db", type=float, default=None)
    parser.add_argument("--beam", type=int, default=1, help="Whisper's beam (the engine's: 5 with time to spare)")
    args = parser.parse_args()
    clips = SETS[args.set]
    model = accurate(WhisperOptions(beam_size=args.beam, wide_window_s=30.0))  # Whisper's whole 30 s, as measured
    model.warm_up()

    def audio(name: str) -> bytes:
        pcm = load_human(name)
        return pcm if args.noise_db is None else with_noise(pcm, args.noise_db, 1)

    words = sum(len(human_reference(name).split()) for name in clips)
    snr = "clean" if args.noise_db is None else f"{args.noise_db:g} dB SNR"
    print(f"Words wrong of {words}, {args.set}, {snr}, beam {args.beam}")
    print()
    print("| windows | encoder window | words wrong | by recording | windows |")
    print("|---|---|---|---|---|")
    for pause_ms in PAUSES_MS:
        for wide_window in (False, True):
            errors, count = [], 0
            for name in clips:
                text, n = decoded(model, audio(name), pause_ms, wide_window=wide_window)
                errors.append(word_errors(human_reference(name), text))
                count += n
            window = "Whisper's whole 30 s" if wide_window else "the window's own (at least 10 s)"
            by = " + ".join(map(str, errors))
            row = f"| cut at Silero's pauses of {pause_ms} ms | {window} | {sum(errors)} | {by} | {count} |"
            print(row, flush=True)
    whole = [word_errors(human_reference(n), faster_whisper_alone(model, audio(n))) for n in clips]
    print(f"| faster-whisper's long-form transcribe | | {sum(whole)} | {' + '.join(map(str, whole))} | |")


if __name__ == "__main__":
    main()
