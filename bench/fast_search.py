"""What the fast pass's search costs and what it hears (not a test). Prints a Markdown table.

    .venv/bin/python -m bench.fast_search [--repeat 3]

The fast pass as the two-pass engine runs it (the low-latency endpointer, no rescoring, a partial look every 50 ms),
in one thread, over the 13 recorded human clips and the 24.7 s reading, clean and with pink noise at 20 dB, fed
as fast as possible in 50 ms chunks (what the page sends). For each pocketsphinx search setting: CPU seconds per
second of audio (the process's own CPU time, so other load on the machine inflates it less than wall time would;
the best of `--repeat` runs) and the word errors of the fast pass's own finals (what a fallback final would say).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace

from bench.speech import HUMAN_CLIPS, READING, human_reference, load_human, with_noise, word_errors
from server.engine.config import FULL_SEARCH, LEAN_SEARCH, EngineConfig, Search
from server.engine.loader import load_fast_pass
from server.engine.types import Hypothesis

CHUNK = 1600  # 50 ms at 16 kHz, 16-bit
SEARCHES = {
    "full (pocketsphinx's defaults)": FULL_SEARCH,
    "lean (the default beside Whisper)": LEAN_SEARCH,
    "the lean search scoring 2 Gaussians": replace(LEAN_SEARCH, top_gaussians=2),
    "3000 HMMs, 10 word exits": Search(max_hmms=3000, max_words=10, top_gaussians=4),
    "2000 HMMs, 10 word exits": Search(max_hmms=2000, max_words=10, top_gaussians=4),
}


async def run(search: Search, clips: list[tuple[str, bytes]]) -> tuple[float, int, int]:
    """(CPU seconds per audio second, words wrong, words) over the clips."""
    config = EngineConfig(max_sessions=1)
    rec = load_fast_pass(config, mode="thread", workers=1)
    # load_fast_pass takes the search from the config; set the one measured here.
    rec.config = replace(rec.config, search=search)
    await rec.warm_up()
    cpu = audio_s = 0.0
    wrong = words = 0
    try:
        for name, pcm in clips:
            session = await rec.open()
            hyps: list[Hypothesis] = []
            start = time.process_time()
            for i in range(0, len(pcm), CHUNK):
                hyps += await session.feed(pcm[i : i + CHUNK])
            hyps += await session.finish()
            cpu += time.process_time() - start
            await session.aclose()
            audio_s += len(pcm) / 32000
            ref = human_reference(name.split("@")[0])
            wrong += word_errors(ref, " ".join(h.text for h in hyps if h.is_final and h.words))
            words += len(ref.split())
    finally:
        await rec.aclose()
    return cpu / audio_s, wrong, words


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    clean = [(n, load_human(n)) for n in [*HUMAN_CLIPS, READING]]
    sets = {"clean": clean, "20 dB": [(f"{n}@20", with_noise(p, 20, seed=i)) for i, (n, p) in enumerate(clean)]}
    # Interleaved, so a spell of load elsewhere on the machine does not fall on one setting only.
    best = dict.fromkeys(SEARCHES, float("inf"))
    for _ in range(args.repeat):
        for label, search in SEARCHES.items():
            best[label] = min(best[label], asyncio.run(run(search, clean))[0])
    print("| search | CPU s per audio s (clean) | WER clean | WER 20 dB |")
    print("|---|---|---|---|")
    for label, search in SEARCHES.items():
        _, wrong_c, n_c = asyncio.run(run(search, sets["clean"]))
        _, wrong_n, n_n = asyncio.run(run(search, sets["20 dB"]))
        print(
            f"| {label} | {best[label]:.3f} | {100 * wrong_c / n_c:.1f} % ({wrong_c}/{n_c}) "
            f"| {100 * wrong_n / n_n:.1f} % ({wrong_n}/{n_n}) |",
            flush=True,
        )

if __name__ == "__main__":
    main()
