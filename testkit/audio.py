"""Python reference of the browser DSP in static/audio/pcm.js, plus soxr as the independent quality oracle.

The resampler here is the same design as the JavaScript one, operation for operation: the same Kaiser-windowed
sinc, the same integer phase arithmetic, the same order of floating-point additions (four interleaved
accumulators summed as (a0 + a1) + (a2 + a3)), float64 accumulation and one rounding to float32 per output
sample. The only place the two can differ is `sin()`: V8's Math.sin and numpy's np.sin may round the last bit
differently, which moves a coefficient by about 1e-16 and an output sample by far less than one float32 ulp,
except when a sample falls right on a float32 rounding or int16 truncation boundary. Hence the contract: the
int16 outputs agree within 1 LSB (in practice nearly all samples are bit-identical).

Time model: output sample n is the input signal at time n / out_rate (no phase offset, so the output lines up
with the input and with soxr). After N input samples the resampler has emitted exactly
max(0, floor(N * out / in) - delay) samples; flush() emits the rest, so a whole stream yields exactly
ceil(N * out / in) samples: every output instant that lies inside the input's span.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I16 = npt.NDArray[np.int16]

# Stopband attenuation the Kaiser design aims at (dB). The tests require >= 100 dB; the margin absorbs the
# difference between Kaiser's length formula and the real filter, and the phase-interpolation error below.
ATTENUATION_DB = 120.0
# Passband and stopband edges in fractions of the lower of the two rates (its Nyquist frequency is 0.5). The
# stopband starts at that Nyquist frequency: downsampling, whatever would fold back into the output is attenuated
# by ATTENUATION_DB; upsampling, so is every image (at in - f and up). 0.4 .. 0.5 is the transition band.
PASSBAND = 0.4
STOPBAND = 0.5
# A full polyphase table (one row per phase) is used while it holds at most this many coefficients; above it
# (reduced ratios such as 44101/16000 have 16000 phases) a table of OVERSAMPLE + 1 phases per input sample is
# interpolated linearly between neighbouring phases, which costs two dot products per output.
MAX_TABLE = 1 << 18
OVERSAMPLE = 512
# Terms of the I0 power series: enough for beta <= 14 to reach double precision. Fixed so JS computes the same.
I0_TERMS = 40

TRUEBAR_SAMPLE_RATE = 16000
TRUEBAR_FRAME_SAMPLES = 1600
WIRO_SAMPLE_RATE = 24000
WIRO_FRAME_SAMPLES = 4800


@dataclass(frozen=True)
class FilterDesign:
    """The polyphase filter for one rate pair. Rates in Hz; lengths in input samples unless named otherwise."""

    in_rate: int
    out_rate: int
    up: int  # L: out_rate / gcd
    down: int  # M: in_rate / gcd
    half_taps: int  # H: each output reads input samples i-H+1 .. i+H around i = floor(n * M / L)
    cutoff: float  # sinc cutoff relative to the input rate's sample spacing (1.0 = the input Nyquist)
    beta: float  # Kaiser window shape
    interpolated: bool  # True: rows are OVERSAMPLE + 1 sub-sample phases; False: rows are the L exact phases
    coefficients: F64  # shape (rows, 2H)
    delay: int  # output samples held back until flush()

    @property
    def taps(self) -> int:
        return 2 * self.half_taps


def _gcd_ratio(in_rate: int, out_rate: int) -> tuple[int, int]:
    g = math.gcd(in_rate, out_rate)
    return out_rate // g, in_rate // g


def _check_rate(rate: int, name: str) -> None:
    if not isinstance(rate, int) or isinstance(rate, bool) or rate < 1 or rate > 1_000_000:
        raise ValueError(f"{name} must be an integer number of Hz in 1..1000000, got {rate!r}")


def kaiser_beta(attenuation_db: float) -> float:
    """Kaiser's empirical beta for a stopband attenuation in dB (valid above 50 dB)."""
    return 0.1102 * (attenuation_db - 8.7)


def _bessel_i0(x: F64) -> F64:
    """I0 by its power series, summed in the same order as pcm.js so both get the same bits."""
    half_sq = (x / 2.0) * (x / 2.0)
    term = np.ones_like(x)
    total = np.ones_like(x)
    for k in range(1, I0_TERMS + 1):
        term = term * half_sq / float(k * k)
        total = total + term
    return total


def _kernel_rows(phases: F64, half_taps: int, cutoff: float, beta: float) -> F64:
    """Windowed-sinc rows: row r, column j weights input sample (i - H + 1 + j) for output time i + phases[r]."""
    offsets = np.arange(-half_taps + 1, half_taps + 1, dtype=np.float64)
    tau = offsets[np.newaxis, :] - phases[:, np.newaxis]
    arg = np.pi * (cutoff * tau)
    safe = np.where(arg == 0.0, 1.0, arg)
    # math.sin (the C library's, correctly rounded in practice) rather than np.sin, whose SIMD kernels vary with
    # the CPU: the reference must give the same coefficients on every machine that checks the golden files.
    sines = np.array([math.sin(v) for v in safe.ravel().tolist()], dtype=np.float64).reshape(safe.shape)
    sinc = np.where(arg == 0.0, 1.0, sines / safe)
    ratio = tau / float(half_taps)
    inside = np.maximum(1.0 - ratio * ratio, 0.0)
    window = _bessel_i0(beta * np.sqrt(inside)) / _bessel_i0(np.array([beta]))[0]
    rows: F64 = (cutoff * sinc) * window
    return rows


def design_filter(in_rate: int, out_rate: int, attenuation_db: float = ATTENUATION_DB) -> FilterDesign:
    """The filter pcm.js builds for in_rate -> out_rate (any integer rates; equal rates mean pass-through)."""
    _check_rate(in_rate, "in_rate")
    _check_rate(out_rate, "out_rate")
    up, down = _gcd_ratio(in_rate, out_rate)
    base = min(in_rate, out_rate)
    # The sinc's -6 dB point sits mid-transition, (PASSBAND + STOPBAND) / 2 of the lower rate; relative to the
    # input's Nyquist frequency that is (PASSBAND + STOPBAND) * base / in_rate (same expression as pcm.js).
    cutoff = (PASSBAND + STOPBAND) * base / in_rate
    beta = kaiser_beta(attenuation_db)
    if up == down:
        return FilterDesign(in_rate, out_rate, 1, 1, 0, 1.0, beta, False, np.zeros((1, 0)), 0)
    # Kaiser: taps - 1 = (A - 7.95) / (2.285 * transition in radians per input sample). H is kept even so the
    # row length 2H is a multiple of 4 for the four interleaved accumulators.
    transition = 2.0 * math.pi * (STOPBAND - PASSBAND) * base / in_rate
    length = (attenuation_db - 7.95) / (2.285 * transition) + 1.0
    half_taps = 2 * math.ceil(length / 4.0)
    taps = 2 * half_taps
    interpolated = up * taps > MAX_TABLE
    if interpolated:
        phases = np.arange(OVERSAMPLE + 1, dtype=np.float64) / float(OVERSAMPLE)
    else:
        phases = np.arange(up, dtype=np.float64) / float(up)
    coefficients = _kernel_rows(phases, half_taps, cutoff, beta)
    # Output n may be emitted once input i_n + H exists; holding back D = floor(H * L / M) outputs guarantees it
    # while keeping the count a pure function of N: floor(N * L / M) - D.
    delay = (half_taps * up) // down
    return FilterDesign(in_rate, out_rate, up, down, half_taps, cutoff, beta, interpolated, coefficients, delay)


def _sanitize(x: npt.ArrayLike) -> F64:
    """Float32 input as float64; NaN -> 0 and +-Inf -> +-1, so one bad sample cannot poison the filter state."""
    arr = np.asarray(x, dtype=np.float32).astype(np.float64)
    return np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=-1.0)


def _dot4(rows: F64, row_index: npt.NDArray[np.int64], buf: F64, start: npt.NDArray[np.int64], taps: int) -> F64:
    """sum_j rows[row_index, j] * buf[start + j] with pcm.js's four accumulators and summation order."""
    acc = [np.zeros(len(start), dtype=np.float64) for _ in range(4)]
    for j in range(taps):
        acc[j & 3] = acc[j & 3] + rows[row_index, j] * buf[start + j]
    return (acc[0] + acc[1]) + (acc[2] + acc[3])


class Resampler:
    """Streaming resampler, state carried across calls of any length (same contract as pcm.js's Resampler)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.design = design_filter(in_rate, out_rate)
        self._passthrough = self.design.up == self.design.down
        self._reset()

    @property
    def delay(self) -> int:
        """Output samples held back until flush() (the constant latency, in output samples)."""
        return self.design.delay

    def _reset(self) -> None:
        h = self.design.half_taps
        # Buffer of input samples at absolute indices buf_start .. buf_start + len - 1; the stream is preceded
        # by zeros, so the first outputs read H - 1 zeros before index 0.
        self._buf: F64 = np.zeros(max(h - 1, 0), dtype=np.float64)
        self._buf_start = -(h - 1) if h else 0
        self._whole = 0  # floor(N * L / M)
        self._rest = 0  # N * L mod M
        self._emitted = 0

    def _emit(self, target: int) -> F32:
        d = self.design
        if target <= self._emitted:
            return np.zeros(0, dtype=np.float32)
        n = np.arange(self._emitted, target, dtype=np.int64)
        pos = n * d.down
        i = pos // d.up
        phase = pos % d.up
        start = i - d.half_taps + 1 - self._buf_start
        if d.interpolated:
            scaled = phase * OVERSAMPLE
            row = scaled // d.up
            frac = (scaled - row * d.up).astype(np.float64) / float(d.up)
            s0 = _dot4(d.coefficients, row, self._buf, start, d.taps)
            s1 = _dot4(d.coefficients, row + 1, self._buf, start, d.taps)
            y = s0 + frac * (s1 - s0)
        else:
            y = _dot4(d.coefficients, phase, self._buf, start, d.taps)
        self._emitted = target
        keep_from = (self._emitted * d.down) // d.up - d.half_taps + 1
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start = keep_from
        return y.astype(np.float32)

    def _append(self, x: F64) -> None:
        self._buf = np.concatenate([self._buf, x])
        total = self._rest + len(x) * self.design.up
        self._whole += total // self.design.down
        self._rest = total % self.design.down

    def process(self, x: npt.ArrayLike) -> F32:
        """Resample the next chunk; returns the float32 output samples that became available."""
        if self._passthrough:
            return np.array(x, dtype=np.float32, copy=True).reshape(-1)
        self._append(_sanitize(x).reshape(-1))
        return self._emit(self._whole - self.design.delay)

    def flush(self) -> F32:
        """Emit the held-back tail (the input is followed by zeros) and start a new stream."""
        if self._passthrough:
            return np.zeros(0, dtype=np.float32)
        d = self.design
        self._buf = np.concatenate([self._buf, np.zeros(d.half_taps, dtype=np.float64)])
        total = self._whole + (1 if self._rest else 0)
        tail = self._emit(total)
        self._reset()
        return tail


def output_length(n_in: int, in_rate: int, out_rate: int) -> int:
    """Samples a whole stream of n_in inputs yields after flush(): ceil(n_in * out / in)."""
    up, down = _gcd_ratio(in_rate, out_rate)
    return -((-n_in * up) // down)


def resample(x: npt.ArrayLike, in_rate: int, out_rate: int) -> F32:
    """One-shot resampling of a whole signal (process + flush)."""
    r = Resampler(in_rate, out_rate)
    return np.concatenate([r.process(x), r.flush()])


def float_to_pcm16(x: npt.ArrayLike) -> I16:
    """pcm.js floatTo16BitPCM: clamp to [-1, 1], negatives * 0x8000, others * 0x7FFF, truncate toward zero.

    Truncation is what an Int16Array store does with a non-integer; NaN becomes 0, +-Inf clamp.
    """
    v = np.asarray(x, dtype=np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        v = np.clip(v, -1.0, 1.0)
        scaled = np.where(v < 0.0, v * 32768.0, v * 32767.0)
    scaled = np.nan_to_num(scaled, nan=0.0)
    return np.trunc(scaled).astype(np.int16)


def pcm16_to_float(pcm: npt.ArrayLike) -> F32:
    """Int16 PCM to float32 in [-1, 1): x / 32768 (exact in float32)."""
    return (np.asarray(pcm, dtype=np.int16).astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def frames(pcm: npt.ArrayLike, frame_samples: int) -> list[I16]:
    """Cut int16 PCM into frames of exactly frame_samples; the last (shorter) remainder is kept if non-empty."""
    if frame_samples < 1:
        raise ValueError("frame_samples must be positive")
    arr = np.asarray(pcm, dtype=np.int16).reshape(-1)
    return [arr[k : k + frame_samples].copy() for k in range(0, len(arr), frame_samples)]


def soxr_resample(x: npt.ArrayLike, in_rate: int, out_rate: int) -> F64:
    """soxr 'VHQ' (very high quality, linear phase): the independent oracle the tests compare against."""
    import soxr

    out: F64 = np.asarray(soxr.resample(np.asarray(x, dtype=np.float64), in_rate, out_rate, quality="VHQ"))
    return out


def _fit_tone(y: F64, freq: float, rate: float) -> F64:
    """Least-squares fit of a*cos + b*sin + c at the known frequency; returns the fitted signal."""
    t = np.arange(len(y), dtype=np.float64) * (2.0 * math.pi * freq / rate)
    basis = np.stack([np.cos(t), np.sin(t), np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    fitted: F64 = basis @ coef
    return fitted


def sinad_db(y: npt.ArrayLike, freq: float, rate: float, trim: int = 0) -> float:
    """Signal to noise-and-distortion of a tone: fitted tone power over residual power, in dB.

    `trim` samples are dropped at both ends (the filter's start-up and tail).
    """
    arr = np.asarray(y, dtype=np.float64)
    if trim:
        arr = arr[trim:-trim]
    fitted = _fit_tone(arr, freq, rate)
    residual = arr - fitted
    noise = float(np.mean(residual * residual))
    signal = float(np.mean((fitted - fitted.mean()) ** 2))
    return 10.0 * math.log10(signal / max(noise, 1e-300))


def alias_suppression_db(x_in: npt.ArrayLike, y_out: npt.ArrayLike, trim: int = 0) -> float:
    """Input power over output power, in dB: for a tone the output should not contain at all (it can only
    reach the output by aliasing), every output sample is leakage."""
    xin = np.asarray(x_in, dtype=np.float64)
    yout = np.asarray(y_out, dtype=np.float64)
    if trim:
        yout = yout[trim:-trim]
    p_in = float(np.mean(xin * xin))
    p_out = float(np.mean(yout * yout))
    return 10.0 * math.log10(p_in / max(p_out, 1e-300))


def tone(freq: float, rate: int, n: int, amplitude: float = 0.5, phase: float = 0.0) -> F32:
    """A float32 sine at `freq` Hz sampled at `rate`."""
    t = np.arange(n, dtype=np.float64) * (2.0 * math.pi * freq / rate) + phase
    return (amplitude * np.sin(t)).astype(np.float32)


def read_wav_pcm16(path: Path) -> tuple[I16, int]:
    """A mono 16-bit PCM WAV file: (samples, sample rate)."""
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: need mono 16-bit PCM, got {w.getnchannels()} ch x {w.getsampwidth()} B")
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.int16), rate


def write_wav_pcm16(path: Path, pcm: npt.ArrayLike, rate: int) -> None:
    """Write mono 16-bit little-endian PCM as a WAV file."""
    arr = np.asarray(pcm, dtype=np.int16).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(arr.tobytes())
