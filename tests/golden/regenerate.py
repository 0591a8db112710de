"""Rebuild every golden file and the manifest: `python -m tests.golden.regenerate`.

Never run by the tests. Synthetic inputs come from fixed seeds; the speech input is made with Festival
(`text2wave`, voice cmu_us_slt_arctic_hts) and resampled to each input rate by soxr VHQ. With --keep-speech the
committed speech inputs are reused (for machines without Festival). Outputs are testkit/audio.py's reference:
float_to_pcm16(resample(x, in_rate, out_rate)).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from testkit import audio
from tests.golden import DATA_DIR, MANIFEST, read_f32

F32 = npt.NDArray[np.float32]

# Device rates, plus 11025 (upsampled by 640/441 and 320/147: hundreds of exact phases) and 44101, whose 16000 and
# 24000 phases need more than MAX_TABLE coefficients: the interpolated-table path.
IN_RATES = (8000, 11025, 16000, 22050, 44100, 44101, 48000, 96000)
OUT_RATES = (16000, 24000)
SECONDS = 0.25
SPEECH_SECONDS = 0.5
SPEECH_TEXT = "The quick brown fox jumps over the lazy dog. Seven silver bells rang at noon."
SPEECH_VOICE = "(voice_cmu_us_slt_arctic_hts)"
# Where the 0.5 s speech excerpt starts in Festival's output (inside "quick brown"), in seconds.
SPEECH_START_S = 0.35


def _n(rate: int, seconds: float = SECONDS) -> int:
    return round(rate * seconds)


def sweep(rate: int) -> F32:
    """Exponential sweep from 20 Hz to 0.49 * rate: crosses the passband, transition band and stopband."""
    n = _n(rate)
    t = np.arange(n, dtype=np.float64) / rate
    f0, f1, dur = 20.0, 0.49 * rate, n / rate
    k = math.log(f1 / f0)
    phase = 2.0 * math.pi * f0 * dur / k * (np.exp(t / dur * k) - 1.0)
    return (0.5 * np.sin(phase)).astype(np.float32)


def multitone(rate: int) -> F32:
    """Eight tones, some above 8 and 12 kHz so they must be removed (not folded) at the lower output rates."""
    n = _n(rate)
    t = np.arange(n, dtype=np.float64) / rate
    freqs = [220.0, 1000.0, 3100.0, 5300.0, 7900.0, 11000.0, 15000.0, 21000.0]
    rng = np.random.default_rng(7)
    phases = rng.uniform(0.0, 2.0 * math.pi, len(freqs))
    x = np.zeros(n)
    for f, ph in zip(freqs, phases, strict=True):
        if f < 0.45 * rate:
            x += 0.1 * np.sin(2.0 * math.pi * f * t + ph)
    return x.astype(np.float32)


def noise(rate: int) -> F32:
    """White Gaussian noise, sigma 0.25 (a few samples exceed +-1)."""
    return (0.25 * np.random.default_rng(rate).standard_normal(_n(rate))).astype(np.float32)


def silence(rate: int) -> F32:
    return np.zeros(_n(rate), dtype=np.float32)


def fullscale(rate: int) -> F32:
    """997 Hz at exactly full scale, then at 1.25 (clipped by the conversion), with runs of exact +-1."""
    n = _n(rate)
    t = np.arange(n, dtype=np.float64) / rate
    x = np.sin(2.0 * math.pi * 997.0 * t)
    x[n // 2 :] *= 1.25
    x[n // 4 : n // 4 + 64] = 1.0
    x[n // 4 + 64 : n // 4 + 128] = -1.0
    return x.astype(np.float32)


def nonfinite(rate: int) -> F32:
    """440 Hz with NaN, +-Inf and +-1e30 samples: the resampler maps NaN -> 0 and Inf -> +-1, 1e30 passes."""
    n = _n(rate)
    t = np.arange(n, dtype=np.float64) / rate
    x = (0.5 * np.sin(2.0 * math.pi * 440.0 * t)).astype(np.float32)
    for k, v in enumerate([np.nan, np.inf, -np.inf, 1e30, -1e30, np.nan]):
        x[(k + 1) * n // 8] = v
    x[n // 16 : n // 16 + 5] = np.nan
    return x


SYNTHETIC: dict[str, Callable[[int], F32]] = {
    "sweep": sweep,
    "multitone": multitone,
    "noise": noise,
    "silence": silence,
    "fullscale": fullscale,
    "nonfinite": nonfinite,
}


def festival_speech() -> tuple[npt.NDArray[np.float64], int]:
    """Festival's rendering of SPEECH_TEXT as float64 in [-1, 1) with its sample rate."""
    if shutil.which("text2wave") is None:
        raise SystemExit("text2wave not found: apt-get install festival festvox-us-slt-hts, or use --keep-speech")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["text2wave", "-eval", SPEECH_VOICE, "-o", str(wav)], input=SPEECH_TEXT.encode(), check=True)
        pcm, rate = audio.read_wav_pcm16(wav)
    return pcm.astype(np.float64) / 32768.0, rate


def speech_inputs(keep: bool) -> dict[int, F32]:
    if keep:
        return {rate: read_f32(f"speech_in{rate}.f32le") for rate in IN_RATES}
    source, source_rate = festival_speech()
    start = round(SPEECH_START_S * source_rate)
    excerpt = source[start : start + round(SPEECH_SECONDS * source_rate)]
    excerpt = excerpt * (0.8 / float(np.max(np.abs(excerpt))))
    return {rate: audio.soxr_resample(excerpt, source_rate, rate).astype(np.float32) for rate in IN_RATES}


def convert_edges() -> F32:
    """Float32 values around every rule of float_to_pcm16: clamps, NaN, +-Inf, -0, truncation boundaries."""
    special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.0,
        -2.0,
        1e30,
        -1e30,
        np.inf,
        -np.inf,
        np.nan,
        0.5,
        -0.5,
        1.0000001,
        -1.0000001,
        0.99999994,
        -0.99999994,
        1.4e-45,
        -1.4e-45,
        1e-5,
        -1e-5,
    ]
    k = np.arange(-32768, 32768, 97, dtype=np.float64)
    boundaries = np.concatenate([k / 32767.0, k / 32768.0, (k + 0.5) / 32767.0, (k + 0.5) / 32768.0])
    near = boundaries.astype(np.float32)
    up = np.nextafter(near, np.float32(np.inf))
    down = np.nextafter(near, np.float32(-np.inf))
    rand = np.random.default_rng(16).uniform(-1.2, 1.2, 4096)
    return np.concatenate([np.array(special), near, up, down, rand]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-speech", action="store_true", help="reuse the committed speech inputs")
    args = parser.parse_args()

    inputs: dict[str, dict[int, F32]] = {
        name: {rate: make(rate) for rate in IN_RATES} for name, make in SYNTHETIC.items()
    }
    inputs["speech"] = speech_inputs(args.keep_speech)

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for old in DATA_DIR.iterdir():
        if old.suffix in (".f32le", ".s16le", ".json"):
            old.unlink()
    cases = []
    for signal, by_rate in inputs.items():
        for in_rate, x in by_rate.items():
            in_name = f"{signal}_in{in_rate}.f32le"
            x.astype("<f4").tofile(DATA_DIR / in_name)
            for out_rate in OUT_RATES:
                pcm = audio.float_to_pcm16(audio.resample(x, in_rate, out_rate))
                out_name = f"{signal}_in{in_rate}_out{out_rate}.s16le"
                pcm.astype("<i2").tofile(DATA_DIR / out_name)
                cases.append(
                    {
                        "signal": signal,
                        "in_rate": in_rate,
                        "out_rate": out_rate,
                        "input": in_name,
                        "output": out_name,
                        "input_samples": len(x),
                        "output_samples": len(pcm),
                    }
                )
    edges = convert_edges()
    edges.astype("<f4").tofile(DATA_DIR / "convert_edges.f32le")
    audio.float_to_pcm16(edges).astype("<i2").tofile(DATA_DIR / "convert_edges.s16le")

    manifest = {
        "about": "Golden files of the PCM path; see tests/golden/README.md. Regenerate: "
        "python -m tests.golden.regenerate",
        "formats": {"f32le": "raw float32 little-endian, mono", "s16le": "raw int16 little-endian, mono"},
        "design": {
            "attenuation_db": audio.ATTENUATION_DB,
            "passband": audio.PASSBAND,
            "stopband": audio.STOPBAND,
            "max_table": audio.MAX_TABLE,
            "oversample": audio.OVERSAMPLE,
        },
        "tolerance_lsb": {"python_reference": 0, "javascript": 1},
        "resample": cases,
        "convert": [
            {"name": "edges", "input": "convert_edges.f32le", "output": "convert_edges.s16le", "samples": len(edges)}
        ],
    }
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir())
    print(f"wrote {len(cases)} resample cases + 1 conversion case to {DATA_DIR} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
