"""Per recording, the words a `bench.realtime --each-alone --show` run got wrong, and where (not a test).

    .venv/bin/python -m bench.realtime --set heldout --frame-ms 50 --sessions 1 --each-alone --show > run.log
    .venv/bin/python -m bench.per_recording run.log [--where] [--long-form]

Each session of an --each-alone run plays one recording, so its finals are that recording's: their words wrong
against its transcript (bench/speech.py `word_errors`, the realtime bench's own count), summed to the run's
total. Every recording of the set played is listed, one that got no final at all with all its words wrong.
--where lists each difference (the transcript's words replaced, left out or added, after three words of context),
as the reviews of a lever read them. --long-form puts faster-whisper's own transcribe of each whole recording
beside it (the engine's beam; bench/twopass.py `faster_whisper_alone`, the issue's reference): it samples again at
a higher temperature where its first answer fails its checks, so on hard recordings it varies between runs too.
"""

from __future__ import annotations

import argparse
import difflib

from bench.realtime import SETS, final_texts
from bench.speech import human_reference, load_human, normalise, word_errors
from bench.twopass import accurate, faster_whisper_alone

CONTEXT_WORDS = 3


def differences(reference: str, hypothesis: str) -> list[str]:
    """Each stretch where the normalised words differ, with the transcript's words before it."""
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    out = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_opcodes():
        if op != "equal":
            before = " ".join(ref[max(0, a0 - CONTEXT_WORDS) : a0])
            out.append(f"{op} [{before}] {' '.join(ref[a0:a1])!r} -> {' '.join(hyp[b0:b1])!r}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="the output of a bench.realtime --each-alone --show run")
    parser.add_argument("--where", action="store_true", help="list each difference")
    parser.add_argument("--long-form", action="store_true", help="faster-whisper's long-form transcribe beside it")
    args = parser.parse_args()
    with open(args.log) as lines:
        found = final_texts(lines)
    # The set played: a recording with no final at all (a whispered sentence no detector opened) is in no line.
    played = next((names for names in SETS.values() if found and set(found) <= set(names)), None)
    if played is None:
        raise SystemExit(f"{args.log}: its recordings are not all of one set of bench.realtime's")
    found = {name: found.get(name, []) for name in played}
    model = accurate() if args.long_form else None
    columns = ["recording", "words", "engine", *(["long-form"] if model else [])]
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    totals = [0] * (len(columns) - 1)
    notes: list[str] = []
    for name, texts in found.items():
        reference, engine = human_reference(name), " ".join(texts)
        cells = [len(normalise(reference).split()), word_errors(reference, engine)]
        if model is not None:
            cells.append(word_errors(reference, faster_whisper_alone(model, load_human(name))))
        totals = [t + c for t, c in zip(totals, cells, strict=True)]
        print(f"| {name} | " + " | ".join(map(str, cells)) + " |", flush=True)
        if args.where:
            notes += [f"{name}: {d}" for d in differences(reference, engine)]
    print("| all | " + " | ".join(map(str, totals)) + " |")
    if notes:
        print()
        print("\n".join(notes))


if __name__ == "__main__":
    main()
