"""The committed test speech (tests/data/speech, see its README) and word error scoring, for the benchmarks and
the tests alike (the tests use this module; no benchmark loads code from the tests folder)."""

from __future__ import annotations

import json
import re
import wave
from pathlib import Path
from typing import Any

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
TRANSCRIPTS: dict[str, dict[str, Any]] = json.loads((SPEECH / "transcripts.json").read_text())
CLIPS_16K = sorted(name for name, entry in TRANSCRIPTS.items() if entry["sample_rate"] == 16_000)
CLEAN_16K = [name for name in CLIPS_16K if "noise_snr_db" not in TRANSCRIPTS[name]]
NOISY_16K = [name for name in CLIPS_16K if "noise_snr_db" in TRANSCRIPTS[name]]

_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def load_clip(name: str) -> bytes:
    with wave.open(str(SPEECH / name)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2)
        return bytes(w.readframes(w.getnframes()))


def reference(name: str) -> str:
    return " ".join(u["text"] for u in TRANSCRIPTS[name]["utterances"])


def normalise(text: str) -> str:
    """Lower case, punctuation dropped (hyphens split words), so Whisper's "Hello, world!" scores like the fast
    pass's "hello world"."""
    return " ".join(_NOT_WORD.sub(" ", text.lower().replace("-", " ")).split())


def word_errors(ref: str, hyp: str) -> int:
    """Levenshtein distance over normalised words: substitutions + deletions + insertions."""
    r, h = normalise(ref).split(), normalise(hyp).split()
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        diag, row[0] = row[0], i
        for j, hw in enumerate(h, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (rw != hw))
    return row[-1]
