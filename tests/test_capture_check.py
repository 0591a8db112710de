"""The capture check itself (tests/support/capture_check.py), on the capture tests' own clip with synthetic faults:
what a loaded machine's fake microphone does must pass, what a broken capture path does must fail, for its reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from testkit import audio
from tests.support.capture_check import best_alignment, steady_stretch

CLIP = Path(__file__).parent / "data" / "speech" / "slt-weather-48k.wav"
RATE = 16_000
BUFFER = RATE // 100  # the fake microphone's 10 ms buffer, at the provider's rate
PIECE = RATE // 4  # the check's piece


def reference(in_rate_offset: int = 0) -> np.ndarray:
    pcm, rate = audio.read_wav_pcm16(CLIP)
    resampled = audio.resample(audio.pcm16_to_float(pcm), rate + in_rate_offset, RATE)
    return audio.float_to_pcm16(resampled).astype(np.float64) / 32768


def silenced(x: np.ndarray, starts: list[int]) -> np.ndarray:
    """10 ms buffers delivered as silence at these sample offsets: the clip's length and lag are kept."""
    out = x.copy()
    for at in starts:
        out[at : at + BUFFER] = 0
    return out


def gap(x: np.ndarray) -> np.ndarray:
    """30 ms dropped mid-clip: everything after lies at another lag."""
    return np.concatenate([x[: len(x) // 2], x[len(x) // 2 + RATE * 3 // 100 :]])


def byte_swapped(x: np.ndarray) -> np.ndarray:
    return np.frombuffer(audio.float_to_pcm16(x).astype("<i2").byteswap().tobytes(), "<i2").astype(np.float64) / 32768


def measure(captured: np.ndarray) -> dict[str, float]:
    ref = reference()
    lag, _, _ = best_alignment(captured, ref)
    share, corr, gain, whole = steady_stretch(captured, ref, RATE, lag)
    return {"share": share, "corr": corr, "gain": gain, "whole": whole}


def passes(m: dict[str, float]) -> bool:
    """check_capture's rule."""
    return m["share"] >= 0.3 and m["corr"] > 0.99 and m["whole"] > 0.95 and 0.9 < m["gain"] < 1.1


def six_silenced(x: np.ndarray) -> np.ndarray:
    return silenced(x, [k * len(x) // 7 for k in range(1, 7)])


def every_piece_silenced(x: np.ndarray) -> np.ndarray:
    """A path that zeroes a buffer in every piece: each piece's fit drops, so the median does too."""
    return silenced(x, list(range(PIECE // 2, len(x), PIECE)))


def a_tenth_zeroed(x: np.ndarray) -> np.ndarray:
    """A path that zeroes one buffer in ten: the whole stretch's floor catches it."""
    return silenced(x, list(range(0, len(x), 10 * BUFFER)))


@pytest.mark.parametrize(
    ("fault", "fails_on"),
    [
        (lambda x: x, None),
        (six_silenced, None),  # a loaded machine: the stretch fitted whole gave 0.98 and failed CI
        (gap, None),  # a dropped buffer: the longest stretch at one lag is judged
        (every_piece_silenced, "corr"),
        (a_tenth_zeroed, "corr"),
        (byte_swapped, "corr"),
        (lambda _: reference(in_rate_offset=24), "share"),  # the rate 0.05 % off: no stretch lasts
        (lambda x: 0.5 * x, "gain"),
    ],
    ids=[
        "clean",
        "six-buffers-silenced",
        "gap",
        "every-piece-silenced",
        "a-tenth-zeroed",
        "byte-swap",
        "rate-off",
        "half-gain",
    ],
)
def test_the_capture_check_tells_a_glitch_from_a_broken_path(
    fault: Callable[[np.ndarray], np.ndarray], fails_on: str | None
) -> None:
    m = measure(fault(reference()))
    assert passes(m) is (fails_on is None), m
    if fails_on == "corr":
        assert m["corr"] <= 0.99 or m["whole"] <= 0.95, m
    elif fails_on == "share":
        assert m["share"] < 0.3, m
    elif fails_on == "gain":
        assert not 0.9 < m["gain"] < 1.1 and m["corr"] > 0.99, m


def test_a_capture_too_short_for_one_piece_is_judged_failed_not_an_error() -> None:
    """No piece to align (less than 0.25 s captured): a stretch of nothing, which check_capture's rule fails."""
    m = measure(reference()[: PIECE - 1])
    assert m == {"share": 0.0, "corr": 0.0, "gain": 0.0, "whole": 0.0}
    assert not passes(m)
