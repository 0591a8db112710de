"""Word error rate of the embedded engine's two passes on the committed Festival clips (tests/data/speech/README.md):
three voices clean, and two clips of each voice mixed with pink noise at 20 dB SNR.

Measured on this machine (bench/README.md has the table, `python -m bench.twopass --sections wer`):

| clips | fast pass alone (pocketsphinx, rescoring on) | two-pass (Whisper base finals) |
|---|---|---|
| clean, 14 clips, 136 words | 6.6 % (9) | 2.9 % (4) |
| 20 dB SNR, 6 clips, 58 words | 19.0 % (11) | 1.7 % (1) |

Each pass runs as the loader builds it: the fast pass alone with the sentence endpointer (0.3 s window) and
rescoring, beside Whisper with the low-latency one (0.12 s) and no rescoring (server/engine/config.py). With the
low-latency endpointer the fast pass alone gave 10.3 % and 25.9 %: a short window cuts sentences into pieces, which
costs pocketsphinx its language model's context; Whisper is given the pieces of a sentence together.

Bounds = measured + a stated margin: 5 points on the clean set (about 7 words: pocketsphinx's decoder warmth moves
it by 2-4), 8 points on the noisy set (its 58 words make one word 1.7 points) for the fast pass, and 4 / 5 points
for the two-pass engine (a different CTranslate2 build or CPU may change a word or two), not enough to hide a
regression such as losing the preroll or finals that stop coming from Whisper.
"""

from __future__ import annotations

import pytest

from bench.speech import CLEAN_16K, NOISY_16K, load_clip, reference, word_errors
from server.engine.accurate import AccurateScheduler
from server.engine.config import EngineConfig
from server.engine.loader import load_fast_pass
from server.engine.sphinx import PocketsphinxRecognizer
from server.engine.twopass import TwoPassRecognizer
from server.engine.types import Hypothesis, Recognizer

FRAME = 3200  # 100 ms: what the page sends


def test_word_errors() -> None:
    assert word_errors("a b c", "a b c") == 0
    assert word_errors("a b c", "a x c") == 1
    assert word_errors("a b c", "a c") == 1
    assert word_errors("a b c", "a b c d e") == 2
    assert word_errors("", "a") == 1
    assert word_errors("hello world", "Hello, world!") == 0  # case and punctuation are not word errors


async def transcribe(recognizer: Recognizer, pcm: bytes, chunk: int = FRAME) -> list[Hypothesis]:
    session = await recognizer.open()
    try:
        out: list[Hypothesis] = []
        for i in range(0, len(pcm), chunk):
            out += await session.feed(pcm[i : i + chunk])
        return out + await session.finish()
    finally:
        await session.aclose()


async def error_rate(recognizer: Recognizer, clips: list[str]) -> tuple[int, int]:
    errors = words = 0
    for name in clips:
        hyps = await transcribe(recognizer, load_clip(name))
        errors += word_errors(reference(name), finals_text(hyps))
        words += len(reference(name).split())
    return errors, words


def finals_text(hyps: list[Hypothesis]) -> str:
    return " ".join(h.text for h in hyps if h.is_final and h.words)


def fast_pass(*, beside_whisper: bool) -> PocketsphinxRecognizer:
    """The fast pass as the loader builds it: alone, with the sentence endpointer and rescoring; beside Whisper, with
    the low-latency endpointer and no rescoring."""
    return load_fast_pass(EngineConfig(whisper=beside_whisper), mode="thread", workers=1)


CASES = [
    pytest.param("fast", CLEAN_16K, 0.066 + 0.05, id="fast-clean"),
    pytest.param("fast", NOISY_16K, 0.190 + 0.08, id="fast-noise20db"),
    pytest.param("two-pass", CLEAN_16K, 0.029 + 0.04, id="twopass-clean"),
    pytest.param("two-pass", NOISY_16K, 0.017 + 0.05, id="twopass-noise20db"),
]


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(("engine", "clips", "bound"), CASES)
async def test_word_error_rate(whisper_pass: AccurateScheduler, engine: str, clips: list[str], bound: float) -> None:
    fast = fast_pass(beside_whisper=engine == "two-pass")
    recognizer: Recognizer = fast
    if engine == "two-pass":
        # Fed faster than real time: the fallback bound is put out of reach, so every final is Whisper's.
        recognizer = two = TwoPassRecognizer(fast, whisper_pass, fallback_after_s=600)
    try:
        errors, words = await error_rate(recognizer, clips)
    finally:
        fast.shutdown()
    assert words > 50
    assert errors / words <= bound, f"WER {errors}/{words}"
    if engine == "two-pass":
        assert two.stats.fallbacks == 0 and two.stats.accurate >= len(clips)


def test_the_speech_sets_are_what_the_bounds_were_measured_on() -> None:
    assert (len(CLEAN_16K), len(NOISY_16K)) == (14, 6)
    assert sum(len(reference(n).split()) for n in CLEAN_16K) == 136
    assert sum(len(reference(n).split()) for n in NOISY_16K) == 58
