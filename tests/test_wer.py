"""Word error rates of the embedded engine: the fast pass alone on the committed Festival clips
(tests/data/speech/README.md: three voices clean, and two clips of each voice mixed with pink noise at 20 dB SNR),
and the two-pass engine on recorded human speech (tests/data/human), clean and at 20 and 10 dB SNR.

Measured on the Festival clips (bench/README.md has the table, `python -m bench.twopass --sections wer`; the
two-pass column for comparison, no longer bounded here):

| clips | fast pass alone (pocketsphinx, rescoring on) | two-pass (Whisper base finals) |
|---|---|---|
| clean, 14 clips, 136 words | 6.6 % (9) | 2.9 % (4) |
| 20 dB SNR, 6 clips, 58 words | 19.0 % (11) | 1.7 % (1) |

The fast pass alone runs as the loader builds it with no Whisper: the sentence endpointer (0.3 s window) and
rescoring; beside Whisper it has the low-latency one (0.12 s) and no rescoring (server/engine/config.py). With the
low-latency endpointer the fast pass alone gave 10.3 % and 25.9 %: a short window cuts sentences into pieces, which
costs pocketsphinx its language model's context; Whisper is given the pieces of a sentence together.

The fast pass alone is bounded here: measured + a stated margin, 5 points on the clean set (about 7 words:
pocketsphinx's decoder warmth moves it by 2-4), 8 points on the noisy set (its 58 words make one word 1.7 points).
The two-pass engine is checked on recorded human speech (below) against Whisper base on the whole recordings, which
a regression such as losing the preroll, or finals that stop coming from Whisper, fails as well; its Festival
figures stay in bench/README.md.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.speech import (
    CLEAN_16K,
    HUMAN_CLIPS,
    NOISY_16K,
    READING,
    edit_kinds,
    human_reference,
    load_clip,
    load_human,
    reference,
    with_noise,
    word_errors,
)
from server.engine.accurate import AccurateScheduler
from server.engine.config import EngineConfig
from server.engine.loader import load_fast_pass
from server.engine.silero import SileroDetector
from server.engine.sphinx import PocketsphinxRecognizer
from server.engine.twopass import TwoPassRecognizer
from server.engine.types import Recognizer
from server.engine.voice_runs import LooseVoiceDetector
from server.engine.whisper import WhisperPass
from server.transcript import Hypothesis

FRAME = 3200  # 100 ms: what the page sends


def test_word_errors() -> None:
    assert word_errors("a b c", "a b c") == 0
    assert word_errors("a b c", "a x c") == 1
    assert word_errors("a b c", "a c") == 1
    assert word_errors("a b c", "a b c d e") == 2
    assert word_errors("", "a") == 1
    assert word_errors("hello world", "Hello, world!") == 0  # case and punctuation are not word errors
    # One spelling of the same words: the transcripts' "alright" and "gonna", Whisper's "All right" and "going to".
    assert word_errors("alright i'm gonna go ok", "All right, I'm going to go. Okay.") == 0
    assert word_errors("alright", "right") == 1 and word_errors("gonna", "going") == 1


def test_edit_kinds_tell_words_heard_otherwise_from_words_lost_or_doubled() -> None:
    ref = "weather is nice today and we"
    assert edit_kinds(ref, ref) == (0, 0)
    assert edit_kinds(ref, "lead is nigh today and we") == (2, 0)  # heard otherwise
    assert edit_kinds(ref, "weather is today and we are") == (0, 2)  # one word lost, the window runs on
    assert edit_kinds(ref, "weather today and we are going") == (0, 4)  # two lost
    assert edit_kinds(ref, "weather is nice is nice today") == (3, 0)  # two sent twice: the window fills with them
    assert edit_kinds("a b", "") == (0, 2) and edit_kinds("", "a") == (0, 1)


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
    pytest.param(CLEAN_16K, 0.066 + 0.05, id="fast-clean"),
    pytest.param(NOISY_16K, 0.190 + 0.08, id="fast-noise20db"),
]


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(("clips", "bound"), CASES)
async def test_word_error_rate(clips: list[str], bound: float) -> None:
    """The fast pass alone (no Whisper configured). The two-pass engine's words are checked on recorded human speech
    below, against Whisper's own: stricter than a bound on these Festival clips, which it once also had."""
    fast = fast_pass(beside_whisper=False)
    try:
        errors, words = await error_rate(fast, clips)
    finally:
        fast.shutdown()
    assert words > 50
    assert errors / words <= bound, f"WER {errors}/{words}"


def test_the_speech_sets_are_what_the_bounds_were_measured_on() -> None:
    assert (len(CLEAN_16K), len(NOISY_16K)) == (14, 6)
    assert sum(len(reference(n).split()) for n in CLEAN_16K) == 136
    assert sum(len(reference(n).split()) for n in NOISY_16K) == 58


# --- recorded human speech (tests/data/human): the engine was never tuned on it


HUMAN_SET = [*HUMAN_CLIPS, READING]
# Measured (fed as fast as possible, every final Whisper's; bench/README.md has the table), words wrong of 184:
#   clean: two-pass 8, Whisper base on each whole recording 10; 20 dB: 10 and 9; 10 dB: 23 and 19 (the same in
#   repeated runs on one machine; another CPU's int8 kernels, and the prompt's timing when fed this fast, moved
#   bench.noise_levers's figures, in 50 ms chunks, to 8 / 11 / 24 against 10 / 8 / 19 on a host whose CPU was more
#   than half stolen, where this test, in 100 ms chunks, passed within these margins). The two-pass
#   engine may exceed Whisper's own errors by at most these many words: in noise the pieces the fast pass cuts fall
#   worse, and Whisper loses some context at each cut (issue 16 asks for no excess at all: clean speech meets it
#   with 2 to spare, noisy speech not yet). Before the fast pass decoded each frame as it arrives, 10 dB gave 27;
#   before the previous final's last word, heard again and written differently, was taken out by its time, 20 dB
#   gave 11. On an AMD EPYC host (2026-12-04) Whisper base on the whole recordings gave 10 / 8 / 17 and the engine
#   8 / 9 / 23, the same every run: the engine's 23 as before, Whisper's own reference 2 words better with this CPU's
#   kernels, so the 10 dB margin is 6 (the gap is the Austen reading's second sentence: bench/README.md).
HUMAN_MARGIN = {None: 0, 20.0: 2, 10.0: 6}
# ... and at most these many in all, whatever Whisper's own count on the CPU at hand: one word above the most any
# host has measured (clean 8; 20 dB 9-11; 10 dB 23-24), so a relative margin widened for one CPU's Whisper does not
# let the engine get worse on another's.
HUMAN_CAP = {None: 9, 20.0: 12, 10.0: 25}


def human_audio(name: str, noise_db: float | None, index: int) -> bytes:
    pcm = bytes(16_000) + load_human(name) + bytes(16_000)  # half a second of quiet on each side
    return pcm if noise_db is None else with_noise(pcm, noise_db, 1000 + index)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("noise_db", [None, 20.0, 10.0], ids=["clean", "noise20db", "noise10db"])
async def test_human_speech_no_worse_than_whisper_on_whole_recordings(
    whisper_model: WhisperPass, whisper_pass: AccurateScheduler, noise_db: float | None
) -> None:
    fast = fast_pass(beside_whisper=True)
    two = TwoPassRecognizer(
        fast, whisper_pass, fallback_after_s=600, speech=SileroDetector(), voice=LooseVoiceDetector()
    )
    errors = whole_errors = words = 0
    try:
        for i, name in enumerate(HUMAN_SET):
            pcm, ref = human_audio(name, noise_db, i), human_reference(name)
            errors += word_errors(ref, finals_text(await transcribe(two, pcm)))
            whole = Hypothesis(await asyncio.to_thread(whisper_model.transcribe, pcm, 0), True, 0, 0)
            whole_errors += word_errors(ref, whole.text)
            words += len(ref.split())
    finally:
        fast.shutdown()
    assert words == 184
    assert two.stats.fallbacks == 0
    assert errors <= whole_errors + HUMAN_MARGIN[noise_db], f"two-pass {errors}, whole {whole_errors} of {words}"
    assert errors <= HUMAN_CAP[noise_db], f"two-pass {errors} of {words}"
