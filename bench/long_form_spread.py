"""How much the issue's reference itself moves: faster-whisper's long-form transcribe of each recording of a set,
with the recording started a little later (not a test).

    .venv/bin/python -m bench.long_form_spread --set heldout [--shifts-ms 0,30,60]

The engine's held-out runs vary by a few words from one run to the next, because where a window's audio starts moves
by tens of milliseconds with the pace (bench/README.md: "speech errors" came back right or as "speakers" for windows
110 ms apart). Long-form transcribe of a whole recording is one deterministic number, read at one alignment. Here
each recording is played again with `shift` ms of silence (zeros) before it, which moves every one of Whisper's
30 s windows and mel frames against the speech by that much and changes nothing a listener would hear. Scored as
bench/realtime.py scores the engine (bench/speech.py `word_errors`); the words long-form writes after the
transcript's last word (the line it makes up after the sonnet's end) are also shown apart.
"""

from __future__ import annotations

import argparse
import difflib
import statistics

from bench.realtime import SETS
from bench.speech import human_reference, load_human, normalise, word_errors
from bench.twopass import accurate, faster_whisper_alone

SAMPLE_RATE = 16_000
BYTES_PER_SAMPLE = 2  # int16 little-endian


def made_up_tail(reference: str, hypothesis: str) -> int:
    """How many words the hypothesis has after the transcript's last word (a line written past the speech)."""
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    opcodes = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_opcodes()
    if not opcodes:
        return 0
    op, a0, a1, b0, b1 = opcodes[-1]
    # The sonnet's made-up line follows a garbled last word ("thee" -> "the thou art now ..."): a replace whose
    # words past the transcript's are the tail.
    return max(0, (b1 - b0) - (a1 - a0)) if op in {"insert", "replace"} and a1 == len(ref) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS), default="heldout")
    parser.add_argument("--shifts-ms", default="0,30,60,90,120,150,180,210,240,270", help="silence before, in ms")
    args = parser.parse_args()
    shifts = [int(s) for s in args.shifts_ms.split(",")]
    names = SETS[args.set]
    model = accurate()
    print("| shift (ms) | " + " | ".join(names) + " | all | all without a made-up tail |")
    print("|---" * (len(names) + 3) + "|")
    totals: list[int] = []
    without_tail: list[int] = []
    for shift in shifts:
        silence = bytes(shift * SAMPLE_RATE // 1000 * BYTES_PER_SAMPLE)
        cells: list[int] = []
        tails = 0
        for name in names:
            reference = human_reference(name)
            text = faster_whisper_alone(model, silence + load_human(name))
            cells.append(word_errors(reference, text))
            tails += made_up_tail(reference, text)
        totals.append(sum(cells))
        without_tail.append(sum(cells) - tails)
        print(f"| {shift} | " + " | ".join(map(str, cells)) + f" | {totals[-1]} | {without_tail[-1]} |", flush=True)
    for label, values in (("all", totals), ("without a made-up tail", without_tail)):
        print(f"{label}: {min(values)}-{max(values)}, median {statistics.median(values)}")


if __name__ == "__main__":
    main()
