"""What the two-pass engine's cutting levers do to word errors in noise (not a test). Prints a Markdown table.

    .venv/bin/python -m bench.noise_levers [--only TEXT]     # --only: the levers whose label contains TEXT
    .venv/bin/python -m bench.noise_levers --joined          # the clips joined into sessions instead
    .venv/bin/python -m bench.noise_levers --set heldout     # the held-out recordings instead (tests/data/heldout)
    .venv/bin/python -m bench.noise_levers --set varied      # the short held-out recordings (tests/data/varied)

The 13 recorded human clips and the 24.7 s reading (184 words), half a second of quiet around each, clean and with
seeded pink noise at 20 and 10 dB SNR, fed as fast as possible in 50 ms chunks with every final Whisper's (the
fallback out of reach): the computation of tests/test_wer.py's
test_human_speech_no_worse_than_whisper_on_whole_recordings, once per lever. Whisper base on each whole recording
is the reference row (decoded with `EngineConfig`'s default beam, 5, on every window, where the test's is greedy;
the engine's own jobs get the beam as the app's do, only with no other job waiting and Whisper busy under 30 % of
the last 10 s, which fed this fast is seldom, so the reference is the harder one and a lever's row can depend on
timing; this bench builds its engine from `EngineConfig` and does not read `LOCAL_WHISPER_BEAM`). In
noise the fast pass's endpointer cuts the pieces Whisper hears; each lever changes how they are cut or how much
audio around them Whisper gets.

--joined: the 13 clips (not the reading) joined into one session, shuffled, with pauses of 0.7, 1.0, 1.3 and 1.6 s
between them (one session per pause), clean and with the same noise levels over the whole session: many
utterances in one stream, the pauses either side of the engine's reach-back threshold (REACH_GAP_MS). Whisper's
reference is each clip's own span of the same (noisy) session audio.

--set heldout: the held-out recordings (tests/data/heldout: a 53 s read sonnet, three unscripted 25-27 s talks, a
LibriSpeech sentence, an 11 s speech: 317 words, its README says what they represent), in place of the 13 clips and the
reading, the same way: a lever found on the 184 words is taken only if it holds here too.

--set varied: the short held-out recordings of other voices and manners (tests/data/varied: falsetto, whispered,
laughing, fillers, slow and fast, podcast talk, read sentences; its README says what they represent), the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from bench.realtime import program
from bench.speech import (
    HELDOUT_CLIPS,
    HUMAN_CLIPS,
    READING,
    VARIED_CLIPS,
    human_reference,
    load_human,
    with_noise,
    word_errors,
)
from bench.twopass import WHOLE_RECORDING_REFERENCES, accurate, finals, transcribe, whisper_alone
from server.engine.accurate import AccurateScheduler
from server.engine.config import EngineConfig
from server.engine.loader import load_fast_pass
from server.engine.silero import SileroDetector
from server.engine.sphinx import PocketsphinxRecognizer
from server.engine.twopass import FILL_GAP_MS, TwoPassRecognizer
from server.engine.types import BYTES_PER_MS
from server.engine.voice_runs import LooseVoiceDetector
from server.engine.whisper import WhisperOptions
from testkit.whisper import whisper_thread

NOISE = (None, 20.0, 10.0)
SETS = {"human": [*HUMAN_CLIPS, READING], "heldout": HELDOUT_CLIPS, "varied": VARIED_CLIPS}


@dataclass(frozen=True)
class Lever:
    label: str
    config: EngineConfig
    preroll_ms: int = 400
    tail_ms: int = 300
    fill_gap_ms: int = FILL_GAP_MS


BASE = EngineConfig()
LEVERS = [
    Lever(
        "the engine's defaults (preroll 400 ms, tail 300 ms, merge across 400 ms, VAD mode 3, windows cut at"
        " Silero's pauses of 500 ms)",
        BASE,
    ),
    Lever("short pauses filled (fill_gap_ms 1000)", BASE, fill_gap_ms=1000),
    Lever("preroll 600 ms, tail 500 ms", BASE, preroll_ms=600, tail_ms=500),
    Lever("preroll 800 ms", BASE, preroll_ms=800),
    Lever("merge across pauses up to 700 ms", replace(BASE, merge_pause_ms=700)),
    Lever("VAD mode 2 (less aggressive)", replace(BASE, vad_mode=2)),
    Lever("VAD mode 1", replace(BASE, vad_mode=1)),
    Lever("VAD mode 2 and merge across 700 ms", replace(BASE, vad_mode=2, merge_pause_ms=700)),
    Lever("pauses up to 3 s filled", BASE, fill_gap_ms=3000),
    Lever("every pause filled (fill_gap_ms 30000)", BASE, fill_gap_ms=30000),
    Lever("no speech detector: the fast pass's endpoints cut the windows", replace(BASE, speech_pause_ms=0)),
    Lever("windows cut at Silero's pauses of 300 ms", replace(BASE, speech_pause_ms=300)),
    Lever("windows cut at Silero's pauses of 800 ms", replace(BASE, speech_pause_ms=800)),
]


def audio(name: str, noise_db: float | None, index: int) -> bytes:
    pcm = bytes(16_000) + load_human(name) + bytes(16_000)
    return pcm if noise_db is None else with_noise(pcm, noise_db, 1000 + index)


PAUSES_MS = (700, 1000, 1300, 1600)


def joined(pause_ms: int, noise_db: float | None, index: int) -> tuple[bytes, list[tuple[str, int, int]]]:
    """One session: the clips in a shuffled order (seeded by `index`), `pause_ms` of quiet between them and 1 s
    around them; and each clip's span in it (bytes)."""
    order = list(HUMAN_CLIPS)
    random.Random(index).shuffle(order)
    pcm = bytearray(1000 * BYTES_PER_MS)
    spans: list[tuple[str, int, int]] = []
    for name in order:
        start = len(pcm)
        pcm += load_human(name)
        spans.append((name, start, len(pcm)))
        pcm += bytes(pause_ms * BYTES_PER_MS)
    pcm += bytes(1000 * BYTES_PER_MS)
    return (bytes(pcm) if noise_db is None else with_noise(bytes(pcm), noise_db, 2000 + index)), spans


def engine(lever: Lever, scheduler: AccurateScheduler) -> tuple[PocketsphinxRecognizer, TwoPassRecognizer]:
    fast = load_fast_pass(lever.config, mode="thread", workers=1)
    two = TwoPassRecognizer(
        fast,
        scheduler,
        fallback_after_s=600,
        preroll_ms=lever.preroll_ms,
        tail_ms=lever.tail_ms,
        fill_gap_ms=lever.fill_gap_ms,
        merge_ms=lever.config.merge_pause_ms,
        speech=SileroDetector() if lever.config.speech_pause_ms else None,
        pause_ms=lever.config.speech_pause_ms,
        voice=LooseVoiceDetector(),
    )
    return fast, two


async def print_levers(
    only: str, scheduler: AccurateScheduler, cell: Callable[[TwoPassRecognizer, float | None], Awaitable[str]]
) -> None:
    """One row per lever whose label contains `only`: `cell` for each noise level, every final Whisper's."""
    for lever in [lever for lever in LEVERS if only in lever.label]:
        fast, two = engine(lever, scheduler)
        try:
            row = []
            for noise_db in NOISE:
                before = dataclasses.replace(two.stats)
                row.append(await cell(two, noise_db))
                # Never for want of time (the fallback is out of reach); Whisper may still hear no speech where the
                # fast pass heard some, or loop: then the fast text is the final, and the cell says how often.
                load = (two.stats.fallback_slow, two.stats.fallback_busy, two.stats.fallback_failed)
                assert load == (0, 0, 0), load
                empty = two.stats.fallback_empty - before.fallback_empty
                looped = two.stats.fallback_unreliable - before.fallback_unreliable
                row[-1] += f" ({empty} heard empty)" if empty else ""
                row[-1] += f" ({looped} looped)" if looped else ""
        finally:
            fast.shutdown()
        print(f"| {lever.label} | " + " | ".join(row) + " |", flush=True)


async def main(only: str, clips: list[str], *, references: bool = True, one_session: bool = False) -> None:
    # Fed this fast, every piece must find a place in the queue.
    model = accurate(WhisperOptions(max_queue=64, beam_size=BASE.whisper_beam))
    model.warm_up()
    scheduler = whisper_thread(model)
    print("| lever | clean | 20 dB | 10 dB |")
    print("|---|---|---|---|")
    for label, alone in WHOLE_RECORDING_REFERENCES if references else ():
        whole = []
        for noise_db in NOISE:
            errors = 0
            for i, name in enumerate(clips):
                text = await asyncio.to_thread(alone, model, audio(name, noise_db, i))
                errors += word_errors(human_reference(name), text)
            whole.append(errors)
        print(f"| {label} | " + " | ".join(str(e) for e in whole) + " |", flush=True)

    async def cell(two: TwoPassRecognizer, noise_db: float | None) -> str:
        if one_session:
            # The recordings as bench.realtime plays them: one session, 1 s between them, the prompt carried over.
            played = program(0, len(clips), noise_db, clips)
            return str(word_errors(played.reference, finals(await transcribe(two, played.pcm))))
        errors = 0
        for i, name in enumerate(clips):
            errors += word_errors(human_reference(name), finals(await transcribe(two, audio(name, noise_db, i))))
        return str(errors)

    await print_levers(only, scheduler, cell)
    scheduler.close()


def per_session(errors: list[int]) -> str:
    return f"{sum(errors)} ({' + '.join(map(str, errors))})"


async def main_joined(only: str) -> None:
    # Fed this fast, every piece must find a place in the queue.
    model = accurate(WhisperOptions(max_queue=64, beam_size=BASE.whisper_beam))
    model.warm_up()
    scheduler = whisper_thread(model)
    words = len(PAUSES_MS) * sum(len(human_reference(name).split()) for name in HUMAN_CLIPS)
    print(f"Words wrong of {words} (each cell: the sessions with pauses of " + ", ".join(map(str, PAUSES_MS)) + " ms)")
    print()
    print("| | clean | 20 dB | 10 dB |")
    print("|---|---|---|---|")
    whole = []
    for noise_db in NOISE:
        errors = []
        for k, pause_ms in enumerate(PAUSES_MS):
            pcm, spans = joined(pause_ms, noise_db, k)
            errors.append(0)
            for name, start, end in spans:
                text = await asyncio.to_thread(whisper_alone, model, pcm[start:end])
                errors[-1] += word_errors(human_reference(name), text)
        whole.append(per_session(errors))
    print("| Whisper base on each clip's span | " + " | ".join(whole) + " |", flush=True)

    async def cell(two: TwoPassRecognizer, noise_db: float | None) -> str:
        errors = []
        for k, pause_ms in enumerate(PAUSES_MS):
            pcm, spans = joined(pause_ms, noise_db, k)
            reference = " ".join(human_reference(name) for name, _, _ in spans)
            errors.append(word_errors(reference, finals(await transcribe(two, pcm))))
        return per_session(errors)

    await print_levers(only, scheduler, cell)
    scheduler.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="run only the levers whose label contains this text")
    parser.add_argument("--joined", action="store_true", help="the clips joined into sessions (see above)")
    parser.add_argument("--set", choices=sorted(SETS), default="human", help="the recordings (see above)")
    parser.add_argument("--no-references", action="store_true", help="skip Whisper alone on the whole recordings")
    parser.add_argument("--one-session", action="store_true", help="the set played as bench.realtime plays it")
    args = parser.parse_args()
    if args.joined:
        asyncio.run(main_joined(args.only))
    else:
        asyncio.run(main(args.only, SETS[args.set], references=not args.no_references, one_session=args.one_session))
