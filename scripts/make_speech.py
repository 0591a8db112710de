"""Regenerate the test speech in tests/data/speech/ with Debian's Festival voices.

    .venv/bin/python scripts/make_speech.py [--out tests/data/speech]

Needs `festival festvox-us-slt-hts festvox-kallpc16k` (scripts/setup.sh test installs them). Festival renders
at the voice's own rate (slt 32 kHz, kal 16 kHz); soxr VHQ brings it to 16 kHz. Each clip gets 0.5 s of quiet
before and after, and "quiet" is seeded white noise about 70 dB below full scale rather than digital zeros,
because a real microphone never delivers zeros and the recognizer's voice activity detector and cepstral mean
should see what they would see live. The 48 kHz files are the 16 kHz clips resampled (soxr VHQ), so a browser
that captures them and resamples back to 16 kHz should reproduce the 16 kHz clip. Output is deterministic.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

RATE = 16_000
EDGE_S = 0.5  # quiet before and after every clip
GAP_S = 1.5  # quiet between the sentences of a multi-sentence clip
PEAK = 0.7  # of full scale, after synthesis, so both voices sit at the same level
NOISE_RMS = 10.0 / 32768  # about -70 dBFS
VOICES = {
    "slt": "(voice_cmu_us_slt_arctic_hts)",
    "kal": "(voice_kal_diphone)",
    "ked": "(voice_ked_diphone)",
}
NOISE_SNR_DB = 20.0  # speech power over noise power, measured over the sentences only
NOISE_SEED = 20261130


@dataclass(frozen=True)
class Clip:
    name: str
    voice: str
    sentences: tuple[str, ...]


CLIPS = (
    Clip("weather", "slt", ("the weather is nice today and we are going to the park",)),
    Clip("coffee", "slt", ("i would like a cup of coffee with milk and sugar",)),
    Clip("children", "slt", ("the children played in the garden all afternoon",)),
    Clip("government", "slt", ("the government announced a new plan for the economy",)),
    Clip("store", "kal", ("we need to buy some bread and eggs at the store",)),
    Clip("river", "kal", ("my brother lives in a small house near the river",)),
    Clip("station", "kal", ("can you tell me the way to the train station",)),
    Clip("oil", "kal", ("the price of oil went up again this year",)),
    Clip(
        "two-sentences",
        "slt",
        ("please call me when you get home tonight", "thank you very much for your help"),
    ),
    # Spoken to the "commands" grammar in tests/data/commands.gram.
    Clip("command", "slt", ("turn on the kitchen lights",)),
    # A third voice (added after the first ten clips, so those stay byte for byte the same).
    Clip("letter", "ked", ("she wrote a long letter to her mother last week",)),
    Clip("meeting", "ked", ("the meeting will start at nine in the morning",)),
    Clip("doctor", "ked", ("you should see a doctor about that cough",)),
    Clip("window", "kal", ("please open the window it is warm in here",)),
)
# Also written mixed with noise at NOISE_SNR_DB: two clips of each voice.
NOISY_CLIPS = ("weather", "government", "river", "oil", "letter", "doctor")
HIGH_RATE_CLIPS = ("weather", "station")  # also written at 48 kHz for the browsers' fake microphones
HIGH_RATE = 48_000


def synthesize(text: str, voice: str) -> np.ndarray:
    """Festival's rendering of `text`, as float32 at RATE."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.wav"
        subprocess.run(["text2wave", "-eval", VOICES[voice], "-o", str(path)], input=text.encode(), check=True)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    return np.asarray(soxr.resample(audio, rate, RATE, "VHQ"), dtype=np.float32)


def trim(audio: np.ndarray) -> np.ndarray:
    """Drop Festival's own leading and trailing silence (below -40 dB of the peak, keeping 10 ms), so the
    recorded sentence spans are where the speech is."""
    loud = np.flatnonzero(np.abs(audio) > 0.01 * float(np.max(np.abs(audio))))
    margin = RATE // 100
    return audio[max(int(loud[0]) - margin, 0) : int(loud[-1]) + margin + 1]


def to_pcm16(audio: np.ndarray) -> bytes:
    return bytes(np.clip(np.round(audio * 32768), -32768, 32767).astype("<i2").tobytes())


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def render(clip: Clip, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The clip at RATE, and each sentence's (start_ms, end_ms) in it."""
    edge = np.zeros(int(EDGE_S * RATE), np.float32)
    gap = np.zeros(int(GAP_S * RATE), np.float32)
    parts: list[np.ndarray] = [edge]
    spans: list[tuple[int, int]] = []
    offset = len(edge)
    for i, sentence in enumerate(clip.sentences):
        if i:
            parts.append(gap)
            offset += len(gap)
        speech = trim(synthesize(sentence, clip.voice))
        speech *= PEAK / max(float(np.max(np.abs(speech))), 1e-9)
        parts.append(speech)
        spans.append((offset * 1000 // RATE, (offset + len(speech)) * 1000 // RATE))
        offset += len(speech)
    parts.append(edge)
    audio = np.concatenate(parts)
    audio += rng.standard_normal(len(audio)).astype(np.float32) * NOISE_RMS
    return audio, spans


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f power spectrum above 50 Hz (flat below): closer to room and fan noise than white
    noise, which would mostly mask the high frequencies."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum /= np.sqrt(np.maximum(freqs, 50.0))
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def add_noise(audio: np.ndarray, spans: list[tuple[int, int]], snr_db: float, seed: int) -> np.ndarray:
    """`audio` with pink noise at `snr_db` below the speech's power (measured over `spans`, in ms), clipped."""
    speech = np.concatenate([audio[a * RATE // 1000 : b * RATE // 1000] for a, b in spans])
    speech_rms = float(np.sqrt(np.mean(speech.astype(np.float64) ** 2)))
    noise = pink_noise(len(audio), np.random.default_rng(seed)) * speech_rms / 10 ** (snr_db / 20)
    return np.clip(audio + noise, -1.0, 32767 / 32768).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent.parent / "tests/data/speech"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240521)
    transcripts: dict[str, dict[str, object]] = {}
    for clip in CLIPS:
        audio, spans = render(clip, rng)
        pcm = to_pcm16(audio)
        name = f"{clip.voice}-{clip.name}-16k.wav"
        write_wav(out / name, pcm, RATE)
        entry: dict[str, object] = {
            "voice": clip.voice,
            "sample_rate": RATE,
            "duration_ms": len(audio) * 1000 // RATE,
            "utterances": [
                {"text": text, "start_ms": a, "end_ms": b} for text, (a, b) in zip(clip.sentences, spans, strict=True)
            ],
        }
        transcripts[name] = entry
        if clip.name in HIGH_RATE_CLIPS:
            pcm16 = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
            high = np.asarray(soxr.resample(pcm16, RATE, HIGH_RATE, "VHQ"), dtype=np.float32)
            high_name = f"{clip.voice}-{clip.name}-48k.wav"
            write_wav(out / high_name, to_pcm16(high), HIGH_RATE)
            transcripts[high_name] = {**entry, "sample_rate": HIGH_RATE, "resampled_from": name}
        if clip.name in NOISY_CLIPS:
            clean = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
            seed = NOISE_SEED + NOISY_CLIPS.index(clip.name)
            noisy_name = f"{clip.voice}-{clip.name}-noise{NOISE_SNR_DB:.0f}db-16k.wav"
            write_wav(out / noisy_name, to_pcm16(add_noise(clean, spans, NOISE_SNR_DB, seed)), RATE)
            transcripts[noisy_name] = {**entry, "noise_snr_db": NOISE_SNR_DB, "mixed_from": name}
        print(f"{name}: {len(audio) / RATE:.2f} s  {' / '.join(clip.sentences)}")
    (out / "transcripts.json").write_text(json.dumps(transcripts, indent=2) + "\n")


if __name__ == "__main__":
    main()
