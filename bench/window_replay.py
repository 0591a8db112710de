"""The finals of one `bench.realtime --show` run decoded again offline, each in a chosen encoder window: how much the
accurate pass's window reads (bench/README.md "Whisper's whole window for long windows").

    .venv/bin/python -m bench.realtime --set heldout --frame-ms 50 --sessions 1 --each-alone --show > run.log
    .venv/bin/python -m bench.window_replay run.log [--beam 5] [--noise-db 10] [--cost]

Each final's span (from the `session from NAME, START-END` lines; each recording played after 1 s of quiet, as
`bench.realtime` plays it) is decoded with 300 ms of audio either side, the text of the spans before it as its
prompt, and the given beam: in its own window (the engine's: its audio plus 2 s, at least 10 s), in one of at least
20 s, in Whisper's whole 30 s, in 30 s only when at least 3, 5 or 8 s long, and in 20 s when at least 5 s long
(the engine's wide window, WIDE_WINDOW_MS, when it has time to spare). No words given, no reach-back, no
carry: the same windows as the engine's, not the engine. `--cost` also times one job of 2, 5 and 8 s of speech in
each window (the best of three, after a warm-up).
"""

from __future__ import annotations

import argparse
import time

from bench.realtime import final_spans
from bench.speech import human_reference, load_human, normalise, with_noise, word_errors
from bench.twopass import accurate
from server.engine.delivered import PROMPT_CHARS
from server.engine.types import BYTES_PER_MS
from server.engine.whisper import WhisperOptions, WhisperPass
from server.transcript import Hypothesis

EDGE_MS = 300
# (label, the encoder window's floor in seconds, the wide window's, decoded in the wide window from this many ms of
# audio)
WINDOWS = (
    ("its own (audio + 2 s, at least 10 s)", 10.0, 30.0, None),
    ("at least 20 s", 20.0, 30.0, None),
    ("Whisper's whole 30 s", 10.0, 30.0, 0),
    ("30 s when at least 3 s long", 10.0, 30.0, 3000),
    ("30 s when at least 5 s long", 10.0, 30.0, 5000),
    ("30 s when at least 8 s long", 10.0, 30.0, 8000),
    ("20 s when at least 5 s long (the engine's, with time to spare)", 10.0, 20.0, 5000),
)


def replayed(model: WhisperPass, pcm: bytes, cuts: list[tuple[int, int]], wide_from_ms: int | None) -> str:
    texts, prompt, previous_end = [], "", 0
    length_ms = len(pcm) // BYTES_PER_MS
    for i, (start_ms, end_ms) in enumerate(cuts):
        start = max(previous_end, start_ms - EDGE_MS, 0)
        end = min(end_ms + EDGE_MS, cuts[i + 1][0] if i + 1 < len(cuts) else length_ms)
        wide = wide_from_ms is not None and end - start >= wide_from_ms
        audio = pcm[start * BYTES_PER_MS : end * BYTES_PER_MS]
        words = model.transcribe(audio, start, prompt=prompt[-PROMPT_CHARS:], wide_window=wide)
        texts.append(Hypothesis(words, True, 0, 0).text)
        prompt += " " + texts[-1]
        previous_end = end
    return " ".join(texts)


def cost(models: dict[tuple[float, float], WhisperPass], pcm: bytes) -> None:
    """The best of three timings of one job of 2, 5 and 8 s of speech in each window (after one untimed)."""
    plain = [(label, (floor, wide_s), wide == 0) for label, floor, wide_s, wide in WINDOWS if wide in (None, 0)]
    print("| speech | " + " | ".join(label for label, _, _ in plain) + " |")
    print("|---|" + "---|" * len(plain))
    for seconds in (2, 5, 8):
        audio = pcm[1000 * BYTES_PER_MS : (1000 + 1000 * seconds) * BYTES_PER_MS]
        cells = []
        for _, key, wide in plain:
            models[key].transcribe(audio, 0, wide_window=wide)
            took = []
            for _ in range(3):
                began = time.perf_counter()
                models[key].transcribe(audio, 0, wide_window=wide)
                took.append(time.perf_counter() - began)
            cells.append(f"{min(took):.2f} s")
        print(f"| {seconds} s | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="the output of a bench.realtime --show run")
    parser.add_argument("--beam", type=int, default=5, help="Whisper's beam (the engine's with time to spare: 5)")
    parser.add_argument("--noise-db", type=float, default=None)
    parser.add_argument("--cost", action="store_true", help="also time one job in each window")
    args = parser.parse_args()
    with open(args.log) as lines:
        found = final_spans(lines)
    models = {
        (floor, wide_s): accurate(WhisperOptions(beam_size=args.beam, min_window_s=floor, wide_window_s=wide_s))
        for _, floor, wide_s, _ in WINDOWS
    }
    for model in models.values():
        model.warm_up()
    snr = "clean" if args.noise_db is None else f"{args.noise_db:g} dB SNR"
    words = sum(len(normalise(human_reference(name)).split()) for name in found)  # as word_errors counts them
    print(f"Words wrong of {words}, {snr}, beam {args.beam}, {sum(map(len, found.values()))} windows from {args.log}")
    print()
    print("| encoder window | words wrong | by recording |")
    print("|---|---|---|")
    for label, floor, wide_s, wide_from_ms in WINDOWS:
        errors = []
        for i, (name, cuts) in enumerate(found.items()):
            pcm = load_human(name)
            if args.noise_db is not None:
                pcm = with_noise(pcm, args.noise_db, i)
            errors.append(word_errors(human_reference(name), replayed(models[floor, wide_s], pcm, cuts, wide_from_ms)))
        print(f"| {label} | {sum(errors)} | {' + '.join(map(str, errors))} |", flush=True)
    if args.cost:
        print()
        cost(models, load_human(next(iter(found))))


if __name__ == "__main__":
    main()
