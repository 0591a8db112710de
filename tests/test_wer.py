"""Word error rate of the embedded engine on the committed Festival clips (tests/data/speech/README.md).

Measured on this machine (bench/README.md has the table): 4-9 % with the default configuration (no
rescoring; the spread is decoder warmth), 0-3 % with fwdflat + bestpath. The bounds leave room for a different
pocketsphinx build or a noisier warm-up, not for a regression such as losing the preroll (13 %).
"""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import pytest

from server.engine.sphinx import PocketsphinxRecognizer
from server.engine.types import Hypothesis

SPEECH = Path(__file__).parent / "data" / "speech"
TRANSCRIPTS: dict[str, dict[str, Any]] = json.loads((SPEECH / "transcripts.json").read_text())
CLIPS_16K = sorted(name for name, entry in TRANSCRIPTS.items() if entry["sample_rate"] == 16_000)
CHUNK_100MS = 3200  # bytes of 16 kHz PCM16: what the Truebar client sends


def load_clip(name: str) -> bytes:
    with wave.open(str(SPEECH / name)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2)
        return w.readframes(w.getnframes())


def reference(name: str) -> str:
    return " ".join(u["text"] for u in TRANSCRIPTS[name]["utterances"])


def word_errors(ref: str, hyp: str) -> int:
    """Levenshtein distance over words: substitutions + deletions + insertions."""
    r, h = ref.split(), hyp.split()
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        diag, row[0] = row[0], i
        for j, hw in enumerate(h, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (rw != hw))
    return row[-1]


def finals_text(hyps: list[Hypothesis]) -> str:
    return " ".join(h.text for h in hyps if h.is_final and h.words)


async def transcribe(recognizer: PocketsphinxRecognizer, pcm: bytes, chunk: int = CHUNK_100MS) -> list[Hypothesis]:
    session = await recognizer.open()
    try:
        out: list[Hypothesis] = []
        for i in range(0, len(pcm), chunk):
            out += await session.feed(pcm[i : i + chunk])
        out += await session.finish()
        return out
    finally:
        await session.aclose()


def test_word_errors() -> None:
    assert word_errors("a b c", "a b c") == 0
    assert word_errors("a b c", "a x c") == 1
    assert word_errors("a b c", "a c") == 1
    assert word_errors("a b c", "a b c d e") == 2
    assert word_errors("", "a") == 1


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "bound"),
    [({}, 0.15), ({"fwdflat": True, "bestpath": True}, 0.08)],
    ids=["default", "rescoring"],
)
async def test_word_error_rate(options: dict[str, Any], bound: float) -> None:
    recognizer = PocketsphinxRecognizer(mode="thread", workers=1, **options)
    try:
        errors = words = 0
        for name in CLIPS_16K:
            hyps = await transcribe(recognizer, load_clip(name))
            errors += word_errors(reference(name), finals_text(hyps))
            words += len(reference(name).split())
    finally:
        await recognizer.aclose()
    assert words > 90
    assert errors / words < bound, f"WER {errors}/{words}"
