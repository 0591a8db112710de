"""The whole capture path in real browsers: fake microphone (a speech WAV) -> getUserMedia -> AudioContext at the
device rate -> pcm-processor worklet -> frames over a real WebSocket to the app's test sink. The PCM received must
have the provider's rate, frame size and byte order, and match the reference conversion of the same WAV."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Playwright

from server import audio
from tests.support.browsers import launch, new_page

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
CLIP = SPEECH / "slt-weather-48k.wav"

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


@pytest.mark.parametrize(("out_rate", "frame_samples"), [(16_000, 1_600), (24_000, 4_800)])
def test_capture_path_delivers_the_reference_pcm(
    pw: Playwright,
    browser_name: str,
    served,
    out_rate: int,
    frame_samples: int,  # type: ignore[no-untyped-def]
) -> None:
    pcm, wav_rate = audio.read_wav_pcm16(CLIP)
    samples = audio.pcm16_to_float(pcm)
    duration_ms = int(len(samples) / wav_rate * 1000) + 800
    key = uuid.uuid4().hex
    with launch(pw, browser_name, CLIP) as browser:
        page = new_page(browser, browser_name, CLIP)
        page.goto(served.url + "/")
        result = page.evaluate(
            CAPTURE_JS,
            {
                "outRate": out_rate,
                "frameSamples": frame_samples,
                "durationMs": duration_ms,
                "sinkUrl": f"{served.ws_url}/api/test/sink?id={key}",
            },
        )
    frames = served.app.state.sink.sessions[key]
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

    reference = audio.float_to_pcm16(audio.resample(samples, wav_rate, out_rate)).astype(np.float64) / 32768.0
    lag, corr, gain = best_alignment(captured, reference)
    # Little-endian PCM16 at the right rate correlates almost perfectly with the reference; a byte swap or a wrong
    # rate drops this far below 0.5. The browsers' own device resampling limits it to about 0.999.
    assert corr > 0.99, (lag, corr, gain)
    assert 0.9 < gain < 1.1, (lag, corr, gain)
