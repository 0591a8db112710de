"""The Python reference of the browser DSP (testkit/audio.py): quality, exact counts, streaming, conversion rules,
and the golden files it produced. The JavaScript side checks itself against the same golden files
(tests/js/pcm.test.mjs, playwright/test_dsp_browser.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testkit import audio
from tests.golden import ResampleCase, convert_cases, load_manifest, read_f32, read_s16, resample_cases

IN_RATES = [8000, 11025, 16000, 22050, 32000, 44100, 44101, 48000, 88200, 96000, 192000]
OUT_RATES = [16000, 24000]
PAIRS = [(i, o) for i in IN_RATES for o in OUT_RATES]
MIN_DB = 100.0
SECONDS = 0.25


# The quality figures below are measured here, with numpy alone, never with the helpers of the module under test
# (testkit/audio.py has its own sinad_db and alias_suppression_db): a mistake shared by the resampler and its own
# meter would otherwise pass unseen. The Node tests measure pcm.js the same way, with their own fit.
KAISER_BETA = 20.0  # sidelobes about 190 dB down: far below the 100 dB being measured
TONE_HALF_WIDTH_BINS = 12  # the window's main lobe is about 6.5 bins each side of the tone


def _tone(freq: float, rate: int, n: int, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine written out here (not audio.tone), so the input does not come from the module either."""
    return (amplitude * np.sin(2.0 * math.pi * freq / rate * np.arange(n, dtype=np.float64))).astype(np.float32)


def _fft_sinad_db(y: np.ndarray, freq: float, rate: int) -> float:
    """SINAD from the spectrum: the power within the tone's main lobe over all the rest (noise, distortion, images,
    any DC), through a Kaiser window whose leakage lies far below the figure measured."""
    arr = np.asarray(y, dtype=np.float64)
    power = np.abs(np.fft.rfft(arr * np.kaiser(len(arr), KAISER_BETA))) ** 2
    lobe = np.abs(np.arange(len(power)) - freq * len(arr) / rate) <= TONE_HALF_WIDTH_BINS
    return 10.0 * math.log10(float(power[lobe].sum()) / max(float(power[~lobe].sum()), 1e-300))


def _power_ratio_db(x: np.ndarray, y: np.ndarray) -> float:
    """Mean power of `x` over mean power of `y`, in dB."""
    px = float(np.mean(np.asarray(x, dtype=np.float64) ** 2))
    py = float(np.mean(np.asarray(y, dtype=np.float64) ** 2))
    return 10.0 * math.log10(px / max(py, 1e-300))


@pytest.mark.parametrize("error_db", [-60.0, -100.0, -120.0])
def test_the_independent_meter_reads_a_known_error_level(error_db: float) -> None:
    """The meter itself: a tone plus white noise and a harmonic at a known level reads back that level."""
    rate, n, freq = 16_000, 4_000, 1_234.5
    clean = 0.5 * np.sin(2.0 * math.pi * freq / rate * np.arange(n))
    error_rms = math.sqrt(float(np.mean(clean**2)) * 10 ** (error_db / 10))
    rng = np.random.default_rng(7)
    # Half the error as noise, half as a third harmonic.
    noise = rng.standard_normal(n) * error_rms / math.sqrt(2)
    harmonic = math.sqrt(2) * (error_rms / math.sqrt(2)) * np.sin(2.0 * math.pi * 3 * freq / rate * np.arange(n))
    assert _fft_sinad_db(clean + noise + harmonic, freq, rate) == pytest.approx(-error_db, abs=1.0)
    assert _leakage_db(clean + noise + harmonic, freq, rate) == pytest.approx(-error_db, abs=1.0)
    assert _power_ratio_db(clean, noise + harmonic) == pytest.approx(-error_db, abs=0.5)


def test_the_independent_meters_fail_a_resampler_without_a_proper_filter() -> None:
    """Linear interpolation (no anti-aliasing filter): the same checks as below must reject it, so they can fail."""
    in_rate, out_rate, n = 44_100, 16_000, 11_025

    def linear(x: np.ndarray) -> np.ndarray:
        t_out = np.arange(n * out_rate // in_rate) * (in_rate / out_rate)
        return np.interp(t_out, np.arange(len(x)), x)

    assert _fft_sinad_db(linear(_tone(0.4 * out_rate, in_rate, n)), 0.4 * out_rate, out_rate) < MIN_DB
    aliasing = _tone(0.7 * out_rate, in_rate, n)
    assert _power_ratio_db(aliasing, linear(aliasing)) < MIN_DB
    # Upsampling 8 kHz -> 16 kHz by linear interpolation: the image of a 3.6 kHz tone at 4.4 kHz is plain to see.
    t_up = np.arange(2 * n) / 2
    near_nyquist = _tone(0.45 * 8000, 8000, n)
    assert _leakage_db(np.interp(t_up, np.arange(n), near_nyquist), 0.45 * 8000, 16000) < MIN_DB


def _trim(in_rate: int, out_rate: int) -> int:
    """Output samples at each end touched by the abrupt start and end of a test signal."""
    d = audio.design_filter(in_rate, out_rate)
    return math.ceil(2 * d.half_taps * out_rate / in_rate) + 4


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS, ids=[f"{i}->{o}" for i, o in PAIRS])
def test_passband_sinad_at_least_100_db(in_rate: int, out_rate: int) -> None:
    # Everything in the output besides the fitted tone counts as error: noise, distortion, and when upsampling
    # the tone's images (at in_rate - f and up, folded back by the output sampling).
    base = min(in_rate, out_rate)
    n = round(in_rate * SECONDS)
    worst = math.inf
    for freq in [61.3, 0.1 * base, 0.23 * base, 0.33 * base, audio.PASSBAND * base]:
        y = audio.resample(_tone(freq, in_rate, n), in_rate, out_rate)
        trim = _trim(in_rate, out_rate)
        worst = min(worst, _fft_sinad_db(y[trim:-trim], freq, out_rate))
    assert worst >= MIN_DB


DOWN = [(i, o) for i, o in PAIRS if i > o]
UP = [(i, o) for i, o in PAIRS if i < o]


@pytest.mark.parametrize(("in_rate", "out_rate"), DOWN, ids=[f"{i}->{o}" for i, o in DOWN])
def test_tones_that_would_alias_into_the_passband_are_suppressed(in_rate: int, out_rate: int) -> None:
    # Input tones from just above 0.5 * out (the output's Nyquist frequency: anything above it folds back, 0.52 * out
    # to 0.48 * out) up to the input's Nyquist frequency: every output sample is leakage, so the output's whole power
    # is compared with the input's. Not exactly 0.5 * out: a zero-phase sine there is sampled at its zero crossings.
    # Dense near 0.5 * out, where a filter whose transition band straddles the Nyquist frequency leaks the most.
    n = round(in_rate * SECONDS)
    lo, hi = 0.5 * out_rate, 0.499 * in_rate
    freqs = [f * out_rate for f in (0.505, 0.52, 0.55, 0.6)] + list(np.linspace(0.65 * out_rate, hi, 5))
    worst = math.inf
    for freq in freqs:
        assert lo < freq <= hi
        x = _tone(float(freq), in_rate, n)
        y = audio.resample(x, in_rate, out_rate)
        trim = _trim(in_rate, out_rate)
        worst = min(worst, _power_ratio_db(x, y[trim:-trim]))
    assert worst >= MIN_DB


def _leakage_db(y: np.ndarray, freq: float, rate: int, amplitude: float = 0.5) -> float:
    """A tone of `amplitude` at `freq` over everything in `y` outside that tone's main lobe, in dB: the same Kaiser
    window applied to the exact tone gives the reference power, so the figure is relative to the input tone."""
    arr = np.asarray(y, dtype=np.float64)
    window = np.kaiser(len(arr), KAISER_BETA)
    power = np.abs(np.fft.rfft(arr * window)) ** 2
    ideal = amplitude * np.sin(2.0 * math.pi * freq / rate * np.arange(len(arr)))
    reference = float((np.abs(np.fft.rfft(ideal * window)) ** 2).sum())
    lobe = np.abs(np.arange(len(power)) - freq * len(arr) / rate) <= TONE_HALF_WIDTH_BINS
    return 10.0 * math.log10(reference / max(float(power[~lobe].sum()), 1e-300))


@pytest.mark.parametrize(("in_rate", "out_rate"), UP, ids=[f"{i}->{o}" for i, o in UP])
def test_upsampling_leaves_no_image_of_a_tone_below_the_input_nyquist(in_rate: int, out_rate: int) -> None:
    # A tone at f < 0.5 * in has images at in - f, in + f, ... (above 0.5 * in, or folded from above the output's
    # Nyquist frequency): all of them must be >= 100 dB below the input tone. f from 0.4 to 0.48 * in, the band
    # between the passband and the input's Nyquist frequency, whose images lie just above it.
    n = round(in_rate * SECONDS)
    worst = math.inf
    for frac in (0.4, 0.45, 0.48):
        freq = frac * in_rate
        y = audio.resample(_tone(freq, in_rate, n), in_rate, out_rate)
        trim = _trim(in_rate, out_rate)
        worst = min(worst, _leakage_db(y[trim:-trim], freq, out_rate))
    assert worst >= MIN_DB


MULTITONE_PAIRS = [
    (8000, 16000),
    (22050, 16000),
    (44100, 16000),
    (44100, 24000),
    (48000, 16000),
    (48000, 24000),
    (96000, 16000),
    (44101, 24000),
    (192000, 24000),
]


def _multitone(in_rate: int, out_rate: int, top: float) -> tuple[np.ndarray, np.ndarray]:
    """Eight tones below top * min(rate): (float32 input, exact float64 signal at the output instants)."""
    base = min(in_rate, out_rate)
    rng = np.random.default_rng(in_rate + out_rate)
    freqs = rng.uniform(40.0, top * base, 8)
    phases = rng.uniform(0.0, 2.0 * math.pi, 8)
    n = round(in_rate * SECONDS)
    t_in = np.arange(n) / in_rate
    t_out = np.arange(audio.output_length(n, in_rate, out_rate)) / out_rate
    x = sum(0.1 * np.sin(2 * math.pi * f * t_in + p) for f, p in zip(freqs, phases, strict=True))
    ideal = sum(0.1 * np.sin(2 * math.pi * f * t_out + p) for f, p in zip(freqs, phases, strict=True))
    return np.asarray(x, dtype=np.float32), np.asarray(ideal, dtype=np.float64)


def _error_db(y: np.ndarray, ref: np.ndarray, trim: int) -> float:
    a = np.asarray(y, dtype=np.float64)[trim:-trim]
    b = np.asarray(ref, dtype=np.float64)[trim : len(y) - trim]
    return 10 * math.log10(float(np.mean((a - b) ** 2)) / float(np.mean(b * b)))


@pytest.mark.parametrize(("in_rate", "out_rate"), MULTITONE_PAIRS)
def test_agrees_with_soxr_vhq_in_the_passband(in_rate: int, out_rate: int) -> None:
    # soxr VHQ starts rolling off above about 0.3 * out (-75 dB of error at 0.375 * out for 44.1k -> 16k), so the
    # two are compared on tones below 0.3 * rate, where both are flat: difference <= -100 dB of the signal.
    # The same output is also checked against the exact signal over the whole passband (0.4 * rate).
    x, _ = _multitone(in_rate, out_rate, 0.3)
    y = audio.resample(x, in_rate, out_rate)
    oracle = audio.soxr_resample(x, in_rate, out_rate)
    assert abs(len(oracle) - len(y)) <= 1
    m = min(len(y), len(oracle))
    # soxr VHQ's own filter is far longer than ours: skip its start-up and tail (200 output samples each end).
    assert _error_db(y[:m], oracle[:m], max(200, _trim(in_rate, out_rate))) <= -MIN_DB


@pytest.mark.parametrize(("in_rate", "out_rate"), MULTITONE_PAIRS)
def test_output_is_the_input_signal_at_the_output_instants(in_rate: int, out_rate: int) -> None:
    # No phase offset: output n is the signal at n / out_rate. Error <= -110 dB (float32 input costs ~-150 dB).
    x, ideal = _multitone(in_rate, out_rate, audio.PASSBAND)
    y = audio.resample(x, in_rate, out_rate)
    assert len(y) == len(ideal)
    assert _error_db(y, ideal, _trim(in_rate, out_rate)) <= -110.0


CHUNK_PAIRS = [(44100, 16000), (48000, 24000), (8000, 16000), (22050, 24000), (44101, 16000), (96000, 16000)]


@pytest.mark.parametrize(("in_rate", "out_rate"), CHUNK_PAIRS)
def test_chunked_equals_one_shot_and_counts_are_exact(in_rate: int, out_rate: int) -> None:
    rng = np.random.default_rng(in_rate * 7 + out_rate)
    x = (0.3 * rng.standard_normal(in_rate // 2)).astype(np.float32)
    up, down = out_rate // math.gcd(in_rate, out_rate), in_rate // math.gcd(in_rate, out_rate)
    r = audio.Resampler(in_rate, out_rate)
    parts: list[np.ndarray] = []
    fed = emitted = 0
    while fed < len(x):
        size = int(rng.choice([1, 7, 128, 128, 4096, int(rng.integers(1, 1000))]))
        chunk = x[fed : fed + size]
        fed += len(chunk)
        out = r.process(chunk)
        emitted += len(out)
        parts.append(out)
        assert emitted == max(0, fed * up // down - r.delay)
    tail = r.flush()
    parts.append(tail)
    assert emitted + len(tail) == -(-len(x) * up // down) == audio.output_length(len(x), in_rate, out_rate)
    one_shot = audio.resample(x, in_rate, out_rate)
    assert np.array_equal(np.concatenate(parts), one_shot)


def test_tone_after_a_long_silence_is_bit_identical_to_a_fresh_start() -> None:
    # Integer phase arithmetic: after N0 silent inputs (a multiple of M), the stream is exactly where a fresh one
    # is, shifted by N0 * L / M outputs. Any drift in the phase would change the numbers.
    in_rate, out_rate = 44100, 16000
    r = audio.Resampler(in_rate, out_rate)
    n0 = in_rate * 5
    zeros = np.zeros(in_rate, dtype=np.float32)
    head = [r.process(zeros) for _ in range(n0 // in_rate)]
    x = audio.tone(1234.5, in_rate, in_rate // 4)
    late = np.concatenate([*head, r.process(x), r.flush()])
    fresh = audio.resample(x, in_rate, out_rate)
    shift = n0 * out_rate // in_rate
    assert len(late) == shift + len(fresh)
    assert not late[: shift - r.delay - 1].any()  # later ones already see the tone coming (linear phase)
    assert np.array_equal(late[shift:], fresh)


def test_a_stream_can_start_again_after_flush() -> None:
    x = audio.tone(440.0, 48000, 4800)
    r = audio.Resampler(48000, 16000)
    first = np.concatenate([r.process(x), r.flush()])
    second = np.concatenate([r.process(x), r.flush()])
    assert np.array_equal(first, second)


def test_equal_rates_pass_through_bit_identical() -> None:
    x = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    x[[3, 4, 5]] = [np.nan, np.inf, -np.inf]
    r = audio.Resampler(24000, 24000)
    y = r.process(x)
    assert r.delay == 0
    assert y.tobytes() == x.tobytes()
    assert len(r.flush()) == 0


def test_nonfinite_input_samples_act_as_0_and_full_scale() -> None:
    x = audio.tone(300.0, 48000, 4800)
    dirty = x.copy()
    dirty[[100, 200, 300]] = [np.nan, np.inf, -np.inf]
    clean = x.copy()
    clean[[100, 200, 300]] = [0.0, 1.0, -1.0]
    y = audio.resample(dirty, 48000, 16000)
    assert np.isfinite(y).all()
    assert np.array_equal(y, audio.resample(clean, 48000, 16000))


def test_impulse_lands_at_its_own_time() -> None:
    # An impulse at input index 441 * k is output instant 160 * k exactly (44.1 kHz -> 16 kHz).
    x = np.zeros(44100 // 4, dtype=np.float32)
    x[441 * 7] = 1.0
    y = audio.resample(x, 44100, 16000)
    assert int(np.argmax(np.abs(y))) == 160 * 7


def test_huge_phase_counts_use_a_bounded_table() -> None:
    common = audio.design_filter(44100, 16000)
    odd = audio.design_filter(44101, 16000)
    assert not common.interpolated and common.coefficients.shape == (160, common.taps)
    assert odd.interpolated and odd.up == 16000
    assert odd.coefficients.shape == (audio.OVERSAMPLE + 1, odd.taps)
    assert odd.coefficients.size <= audio.MAX_TABLE


@pytest.mark.parametrize("bad", [0, -16000, 16000.5, True, 2_000_000])
def test_rates_must_be_positive_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        audio.Resampler(bad, 16000)  # type: ignore[arg-type]


def test_float_to_pcm16_rules() -> None:
    x = np.array(
        [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            np.nan,
            np.inf,
            -np.inf,
            0.99999994,
            -1e-9,
            1.5 / 32767,
            -1 / 32768,
            1 / 32767,
            3e38,
            -3e38,
        ],
        dtype=np.float32,
    )
    # float32(1/32767) * 32767 is 0.99999...: truncation toward zero makes it 0, as an Int16Array store would.
    expected = [0, 0, 32767, -32768, 16383, -16384, 32767, -32768, 0, 32767, -32768, 32766, 0, 1, -1, 0, 32767, -32768]
    assert audio.float_to_pcm16(x).tolist() == expected


def _scalar_pcm16(v: float) -> int:
    """The rule written out for one sample, as an independent check of the vectorised version."""
    if math.isnan(v):
        return 0
    v = min(max(v, -1.0), 1.0)
    return int(v * 32768.0) if v < 0 else int(v * 32767.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_float_to_pcm16_matches_the_scalar_rule(values: list[float]) -> None:
    x = np.array(values, dtype=np.float32)
    assert audio.float_to_pcm16(x).tolist() == [_scalar_pcm16(float(v)) for v in x]


def test_pcm16_to_float_inverts_exactly_for_negatives_and_within_one_lsb_above() -> None:
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    back = audio.float_to_pcm16(audio.pcm16_to_float(pcm))
    assert np.array_equal(back[pcm <= 0], pcm[pcm <= 0])
    assert int(np.max(np.abs(back.astype(int) - pcm))) <= 1


def test_frames_cut_exact_sizes_and_keep_the_remainder() -> None:
    pcm = np.arange(4000, dtype=np.int16)
    cut = audio.frames(pcm, 1600)
    assert [len(f) for f in cut] == [1600, 1600, 800]
    assert np.array_equal(np.concatenate(cut), pcm)
    assert audio.frames(pcm[:3200], 1600)[-1].size == 1600
    with pytest.raises(ValueError):
        audio.frames(pcm, 0)


def test_wav_round_trip(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    path = tmp_path / "x.wav"
    audio.write_wav_pcm16(path, pcm, 24000)
    back, rate = audio.read_wav_pcm16(path)
    assert rate == 24000 and back.tolist() == pcm.tolist()
    assert path.read_bytes()[44:46] == b"\x00\x00" and path.read_bytes()[46:48] == b"\x01\x00"  # little-endian


def test_golden_manifest_matches_the_design() -> None:
    manifest = load_manifest()
    design = manifest["design"]
    assert design["attenuation_db"] == audio.ATTENUATION_DB
    assert (design["passband"], design["stopband"]) == (audio.PASSBAND, audio.STOPBAND)
    assert (design["max_table"], design["oversample"]) == (audio.MAX_TABLE, audio.OVERSAMPLE)
    cases = resample_cases()
    signals = {c.signal for c in cases}
    assert signals >= {"sweep", "multitone", "noise", "silence", "fullscale", "nonfinite", "speech"}
    # Both providers' rates, each reached from the common device rates, by upsampling and by downsampling, through
    # an exact phase table and through the interpolated one (more than MAX_TABLE coefficients, e.g. 44101 -> 16000),
    # and with every signal at every rate pair.
    pairs = {(c.in_rate, c.out_rate) for c in cases}
    outs = {c.out_rate for c in cases}
    assert outs == {audio.TRUEBAR_SAMPLE_RATE, audio.WIRO_SAMPLE_RATE}
    assert {(c.signal, c.in_rate, c.out_rate) for c in cases} == {(s, i, o) for s in signals for i, o in pairs}
    for out in outs:
        designs = [audio.design_filter(i, o) for i, o in pairs if o == out]
        assert {44100, 48000} <= {d.in_rate for d in designs}, out
        assert any(d.in_rate < out for d in designs) and any(d.in_rate > out for d in designs), out
        assert any(d.interpolated for d in designs) and any(d.up > 1 and not d.interpolated for d in designs), out
    assert (11025, audio.WIRO_SAMPLE_RATE) in pairs


@pytest.mark.parametrize("case", resample_cases(), ids=lambda c: c.id)
def test_golden_outputs_reproduce(case: ResampleCase) -> None:
    x = read_f32(case.input)
    expected = read_s16(case.output)
    assert len(x) == case.input_samples
    assert len(expected) == case.output_samples == audio.output_length(len(x), case.in_rate, case.out_rate)
    got = audio.float_to_pcm16(audio.resample(x, case.in_rate, case.out_rate))
    assert np.array_equal(got, expected)


def test_golden_conversion_reproduces() -> None:
    for case in convert_cases():
        got = audio.float_to_pcm16(read_f32(case.input))
        assert len(got) == case.samples
        assert np.array_equal(got, read_s16(case.output))
