"""The capture-path check shared by every browser engine: the page runs CAPTURE_JS (static/audio/capture.js with a
fake microphone playing a WAV, frames sent to the app's test sink), and check_capture compares what the sink
received with the reference conversion of the same WAV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from testkit import audio

# An async function of {outRate, frameSamples, durationMs, sinkUrl}: Playwright's page.evaluate calls it as is,
# WebDriver through an async-script wrapper.
CAPTURE_JS = """
async ({outRate, frameSamples, durationMs, sinkUrl}) => {
  const { startCapture } = await import('/static/audio/capture.js');
  const ws = new WebSocket(sinkUrl);
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('sink')); });
  const sizes = [];
  const onFrame = (pcm) => { sizes.push(pcm.length); ws.send(pcm); };
  const capture = await startCapture({ outRate, frameSamples, onFrame });
  await new Promise((r) => setTimeout(r, durationMs));
  const totals = await capture.stop();
  const closed = new Promise((r) => { ws.onclose = r; });
  ws.send('bye');
  await closed;
  return { sizes, contextRate: capture.contextRate, totals, tracks: capture.stream.getTracks().map((t) => t.readyState),
           contextState: capture.context.state };
}
"""


def capture_args(clip: Path, out_rate: int, frame_samples: int, sink_url: str) -> dict[str, Any]:
    """CAPTURE_JS's argument: capture for the clip's length plus a margin for start-up."""
    pcm, wav_rate = audio.read_wav_pcm16(clip)
    duration_ms = int(len(pcm) / wav_rate * 1000) + 800
    return {"outRate": out_rate, "frameSamples": frame_samples, "durationMs": duration_ms, "sinkUrl": sink_url}


def best_alignment(captured: np.ndarray, reference: np.ndarray) -> tuple[int, float, float]:
    """Lag of the captured signal against the reference (positive: captured starts later; negative: the browser
    skipped part of the file's leading silence), the Pearson correlation and the gain of the aligned overlap."""
    n = 1 << int(np.ceil(np.log2(len(captured) + len(reference))))
    xc = np.fft.irfft(np.fft.rfft(captured, n) * np.conj(np.fft.rfft(reference, n)), n)
    k = int(np.argmax(xc))
    lag = k if k < n // 2 else k - n
    a, b = (captured[lag:], reference) if lag >= 0 else (captured, reference[-lag:])
    m = min(len(a), len(b))
    a, b = a[:m], b[:m]
    corr = float(np.corrcoef(a, b)[0, 1])
    gain = float(np.dot(a, b) / np.dot(b, b))
    return lag, corr, gain


def check_capture(frames: list[bytes], result: dict[str, Any], clip: Path, out_rate: int, frame_samples: int) -> None:
    """Assert that the sink's `frames` (and CAPTURE_JS's `result`) are the clip as the provider expects it."""
    # Every frame but the flushed tail is exactly one provider frame of PCM16 (2 bytes a sample).
    assert len(frames) == len(result["sizes"]) >= 2
    assert all(len(f) == frame_samples * 2 for f in frames[:-1])
    assert 0 < len(frames[-1]) <= frame_samples * 2
    # Teardown: tracks stopped, context closed.
    assert result["tracks"] == ["ended"] and result["contextState"] == "closed"

    captured = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float64) / 32768.0
    assert np.sqrt(np.mean(captured**2)) > 1e-3, "the fake microphone delivered silence"
    # Sample count follows the audio clock at the provider's rate (within the flush tail and start-up jitter).
    expected = result["totals"]["inSamples"] * out_rate / result["contextRate"]
    assert abs(len(captured) - expected) <= frame_samples + 64

    pcm, wav_rate = audio.read_wav_pcm16(clip)
    samples = audio.pcm16_to_float(pcm)
    reference = audio.float_to_pcm16(audio.resample(samples, wav_rate, out_rate)).astype(np.float64) / 32768.0
    lag, corr, gain = best_alignment(captured, reference)
    # Little-endian PCM16 at the right rate correlates almost perfectly with the reference; a byte swap or a wrong
    # rate drops this far below 0.5. The browsers' own device resampling limits it to about 0.999.
    assert corr > 0.99, (lag, corr, gain)
    assert 0.9 < gain < 1.1, (lag, corr, gain)
