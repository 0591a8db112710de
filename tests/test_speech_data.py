"""The committed recordings of people (tests/data/human, heldout, varied) match their transcripts.json: every file
listed is there as 16 kHz mono PCM16 of the duration written down, every file there is listed, and no text keeps
what its README says was taken out (fillers, bracketed noises). scripts/make_human_speech.py writes them; a file
replaced or re-encoded by hand would skew every word error rate measured on it without a word said."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
FOLDERS = ("human", "heldout", "varied")
FILLERS = {"uh", "um", "hm", "mm"}


def transcripts(folder: str) -> dict[str, dict[str, object]]:
    entries: dict[str, dict[str, object]] = json.loads((DATA / folder / "transcripts.json").read_text())
    return entries


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_recording_is_listed_and_as_described(folder: str) -> None:
    entries = transcripts(folder)
    assert entries
    assert sorted(entries) == sorted(p.name for p in (DATA / folder).glob("*.wav"))
    for name, entry in entries.items():
        with wave.open(str(DATA / folder / name)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2), name
            assert w.getnframes() * 1000 // 16_000 == entry["duration_ms"], name
        assert entry["speaker"] and entry["source"], name


@pytest.mark.parametrize("folder", FOLDERS)
def test_texts_are_what_was_said(folder: str) -> None:
    for name, entry in transcripts(folder).items():
        text = str(entry["text"])
        assert text.strip() == text and text, name
        assert not any(mark in text for mark in "[]<>"), name
        assert not FILLERS & set(text.lower().split()), name


def test_no_name_is_in_two_folders() -> None:
    """bench/speech.py finds a recording by its name alone: a name in two folders would read the wrong one."""
    names = [name for folder in FOLDERS for name in transcripts(folder)]
    assert len(names) == len(set(names))
