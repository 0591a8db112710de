"""What the fast pass's search costs and what it hears (not a test). Prints a Markdown table.

    .venv/bin/python -m bench.fast_search [--repeat 3]

The fast pass as the two-pass engine runs it (the low-latency endpointer, no rescoring, a partial look every 50 ms),
in one thread, over the 13 recorded human clips and the 24.7 s reading, clean and with pink noise at 20 and 10 dB,
fed as fast as possible in 50 ms chunks (what the page sends). For each pocketsphinx search setting: CPU seconds per
second of audio, clean and at 10 dB (the process's own CPU time, so other load on the machine inflates it less than
wall time would; the best of `--repeat` runs), the word errors of the fast pass's own finals (what a fallback final
would say), and in audio time how soon the first words come: the speech onset (`speech_onset_ms`) → the end of the
chunk whose partial first holds a word, p50 and mean over the 13 clips (each after 1 s of quiet, as a page's stream
starts)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, replace

from bench.speech import HUMAN_CLIPS, READING, human_reference, load_human, speech_onset_ms, with_noise, word_errors
from server.engine.config import FULL_SEARCH, LEAN_SEARCH, EngineConfig, Search
from server.engine.sphinx import DecoderConfig, PocketsphinxRecognizer
from server.engine.types import BYTES_PER_MS
from server.transcript import Hypothesis

CHUNK = 1600  # 50 ms at 16 kHz, 16-bit
QUIET = bytes(32000)  # 1 s
SEARCHES = {
    "full (pocketsphinx's defaults)": FULL_SEARCH,
    "lean (the default beside Whisper)": LEAN_SEARCH,
    "the lean search with pocketsphinx's 5-frame lookahead": replace(LEAN_SEARCH, lookahead_frames=5),
    "the lean search with no phone loop": replace(LEAN_SEARCH, lookahead_frames=0),
    "the lean search scoring 2 Gaussians": replace(LEAN_SEARCH, top_gaussians=2),
    "3000 HMMs, 10 word exits": replace(LEAN_SEARCH, max_hmms=3000, max_words=10),
    "2000 HMMs, 10 word exits": replace(LEAN_SEARCH, max_hmms=2000, max_words=10),
}
# The narrower search a session's utterances get while it is behind real time (EngineConfig.shed_after_ms), as
# the engine switches to it: the lean search's decoder, told before every feed that its audio is a second behind.
SHED_LABEL = "shed: the narrower search while behind real time (1000 HMMs, 5 word exits)"


@dataclass
class Run:
    """One search setting over one set of clips."""

    cpu_per_audio_s: float
    wrong: int
    words: int
    first_words_ms: list[int]  # per clip with an onset (the reading aside), in audio time


async def run(search: Search | None, clips: list[tuple[str, bytes]]) -> Run:
    """The fast pass as the engine runs it beside Whisper, with the search measured here; None: the lean search's
    decoder, shedding (its narrower search) from the first utterance."""
    decoder = DecoderConfig.from_engine(EngineConfig())
    if search is not None:
        decoder = replace(decoder, search=search)
    rec = PocketsphinxRecognizer(decoder, max_sessions=1, mode="thread", workers=1)
    await rec.warm_up()
    cpu = audio_s = 0.0
    wrong = words = 0
    first_words: list[int] = []
    try:
        for name, pcm in clips:
            onset_ms = speech_onset_ms(pcm)
            first_words_seen = False
            session = await rec.open()
            hyps: list[Hypothesis] = []
            start = time.process_time()
            for i in range(0, len(pcm), CHUNK):
                if search is None:
                    session.behind(1000.0)
                out = await session.feed(pcm[i : i + CHUNK])
                partial_words = any(h.words and not h.is_final for h in out)
                if partial_words and not first_words_seen and READING not in name:
                    first_words.append(min(i + CHUNK, len(pcm)) // BYTES_PER_MS - onset_ms)
                first_words_seen = first_words_seen or partial_words
                hyps += out
            hyps += await session.finish()
            cpu += time.process_time() - start
            await session.aclose()
            audio_s += len(pcm) / 32000
            ref = human_reference(name.split("@")[0])
            wrong += word_errors(ref, " ".join(h.text for h in hyps if h.is_final and h.words))
            words += len(ref.split())
    finally:
        await rec.aclose()
    return Run(cpu / audio_s, wrong, words, first_words)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    clean = [(n, QUIET + load_human(n)) for n in [*HUMAN_CLIPS, READING]]
    noisy = {db: [(f"{n}@{db}", with_noise(p, db, seed=i)) for i, (n, p) in enumerate(clean)] for db in (20, 10)}
    searches: dict[str, Search | None] = {**SEARCHES, SHED_LABEL: None}
    # Interleaved, so a spell of load elsewhere on the machine does not fall on one setting only.
    best = dict.fromkeys(searches, float("inf"))
    best_noisy = dict.fromkeys(searches, float("inf"))
    for _ in range(args.repeat):
        for label, search in searches.items():
            best[label] = min(best[label], asyncio.run(run(search, clean)).cpu_per_audio_s)
            best_noisy[label] = min(best_noisy[label], asyncio.run(run(search, noisy[10])).cpu_per_audio_s)
    print(
        "| search | CPU s per audio s, clean / 10 dB | first words after the onset p50 / mean (ms) "
        "| WER clean | WER 20 dB | WER 10 dB |"
    )
    print("|---|---|---|---|---|---|")
    for label, search in searches.items():
        c = asyncio.run(run(search, clean))
        wer = [asyncio.run(run(search, noisy[db])) for db in (20, 10)]
        print(
            f"| {label} | {best[label]:.3f} / {best_noisy[label]:.3f} "
            f"| {statistics.median(c.first_words_ms):.0f} / {statistics.mean(c.first_words_ms):.0f} "
            f"| {100 * c.wrong / c.words:.1f} % ({c.wrong}/{c.words}) "
            + "".join(f"| {100 * n.wrong / n.words:.1f} % ({n.wrong}/{n.words}) " for n in wer)
            + "|",
            flush=True,
        )


if __name__ == "__main__":
    main()
