"""Word error rate over the committed Festival clips (tests/data/speech/README.md): shared by tests/test_wer.py
and bench/recognizer.py."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

from server.engine.types import Hypothesis

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
TRANSCRIPTS: dict[str, dict[str, Any]] = json.loads((SPEECH / "transcripts.json").read_text())
CLIPS_16K = sorted(name for name, entry in TRANSCRIPTS.items() if entry["sample_rate"] == 16_000)


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


