"""The capture check itself (tests/support/capture_check.py), on the capture tests' own clip with synthetic faults:
what a loaded machine's fake microphone does must pass, what a broken capture path does must fail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from testkit import audio
from tests.support.capture_check import best_alignment, steady_stretch

CLIP = Path(__file__).parent / "data" / "speech" / "slt-weather-48k.wav"
RATE = 16_000


def reference(in_rate_offset: int = 0) -> np.ndarray:
    pcm, rate = audio.read_wav_pcm16(CLIP)
    return audio.float_to_pcm16(audio.resample(audio.pcm16_to_float(pcm), rate + in_rate_offset, RATE)).astype(
        np.float64
    ) / 32768


def silenced_buffers(x: np.ndarray) -> np.ndarray:
    """Six 441-sample buffers (10 ms at 44.1 kHz) delivered as silence: the clip's length and lag are kept."""
    out = x.copy()
    for k in range(1, 7):
        at = k * len(x) // 7
        out[at : at + 441] = 0
    return out


def gap(x: np.ndarray) -> np.ndarray:
    """30 ms dropped mid-clip: everything after lies at another lag."""
    return np.concatenate([x[: len(x) // 2], x[len(x) // 2 + RATE * 3 // 100 :]])


def byte_swapped(x: np.ndarray) -> np.ndarray:
    return np.frombuffer(audio.float_to_pcm16(x).astype("<i2").byteswap().tobytes(), "<i2").astype(np.float64) / 32768


def passes(captured: np.ndarray) -> bool:
    ref = reference()
    lag, _, _ = best_alignment(captured, ref)
    share, corr, gain = steady_stretch(captured, ref, RATE, lag)
    return share >= 0.3 and corr > 0.99 and 0.9 < gain < 1.1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (lambda x: x, True),
        (silenced_buffers, True),  # a loaded machine: the old whole-stretch fit gave 0.970 and failed
        (gap, True),
        (byte_swapped, False),
        (lambda _: reference(in_rate_offset=24), False),  # the rate 0.05 % off: no stretch lasts
        (lambda x: 0.5 * x, False),  # half the level: the gain is checked, not only the shape
    ],
    ids=["clean", "silenced-buffers", "gap", "byte-swap", "rate-off", "half-gain"],
)
def test_the_capture_check_tells_a_glitch_from_a_broken_path(
    fault: Callable[[np.ndarray], np.ndarray], expected: bool
) -> None:
    assert passes(fault(reference())) is expected
