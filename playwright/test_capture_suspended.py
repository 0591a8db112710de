"""Stop while the AudioContext is suspended (the browser or the OS suspended it: a call on iOS, the autoplay policy, a
backgrounded tab): Capture.stop() posts 'flush' to the worklet and waits for 'flushed'. The worklet must still answer
with the audio thread not rendering, or Stop waits out its 2 s bound and the resampler's tail (a part-filled frame
plus the filter's delay) is lost. Chromium, Firefox and WebKitGTK, each with its fake microphone.

Measured here (Chromium 156, Firefox ESR 153, WebKitGTK 2.50; 16 kHz out of a 44.1 kHz context, after 300 ms
suspended): 'flushed' came back in 4 ms, 20 ms and 26-57 ms, with the tail frames and totals exactly as when the
context runs. The test checks the outcome, not the time: with the tail lost, stop() resolves with inSamples 0 and
the sample count falls short of the time model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Playwright
from selenium.webdriver.remote.webdriver import WebDriver

from testkit.browsers import launch, new_page
from tests.support.webkit import run_async

CLIP = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech" / "slt-weather-48k.wav"
OUT_RATE, FRAME_SAMPLES = 16_000, 1_600

# An async function of {outRate, frameSamples}, for page.evaluate and WebDriver's run_async alike.
STOP_SUSPENDED_JS = """
async ({outRate, frameSamples}) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const { startCapture } = await import('/static/audio/capture.js');
  const { Resampler } = await import('/static/audio/pcm.js');
  const sizes = [];
  const capture = await startCapture({ outRate, frameSamples, onFrame: (pcm) => sizes.push(pcm.length) });
  // Some audio first (frames mean the worklet ran), bounded so a capture that sends nothing fails below.
  for (let waited = 0; sizes.length < 5 && waited < 5000; waited += 50) await sleep(50);
  const context = capture.context;
  await context.suspend();
  // Frames the worklet posted before it stopped rendering land; then nothing more may come while suspended.
  await sleep(200);
  const before = sizes.length;
  await sleep(200);
  const duringSuspension = sizes.length - before;
  const stateAtStop = context.state;
  const t0 = performance.now();
  const totals = await capture.stop();
  return { sizes, before, duringSuspension, stateAtStop, totals, stopMs: performance.now() - t0,
           contextRate: capture.contextRate, delay: new Resampler(capture.contextRate, outRate).delay,
           contextState: context.state };
}
"""


def check_flushed_tail(result: dict[str, Any]) -> None:
    """stop() on the suspended context got the worklet's 'flushed' after its tail frames, and the totals match what
    was captured before the suspension."""
    sizes: list[int] = result["sizes"]
    before: int = result["before"]
    totals, rate, delay = result["totals"], result["contextRate"], result["delay"]
    seen = {k: result[k] for k in ("before", "stateAtStop", "duringSuspension", "totals", "stopMs", "contextRate")}
    seen["tail"] = sizes[before:]
    # The scenario itself: audio ran, then the context really stopped rendering.
    assert before >= 5 and result["stateAtStop"] == "suspended" and result["duringSuspension"] == 0, seen
    # 'flushed' answered (a timed-out stop resolves with inSamples 0), after every frame the worklet posted.
    assert totals["inSamples"] > 0 and totals["frames"] == len(sizes), seen
    # The time model of pcm.js: after a flush, exactly ceil(N * out / in) samples for the N taken in.
    assert sum(sizes) == math.ceil(totals["inSamples"] * OUT_RATE / rate), seen
    assert all(s == FRAME_SAMPLES for s in sizes[:-1]) and 0 < sizes[-1] <= FRAME_SAMPLES, seen
    # The tail came from the stop: the filter's delay plus the part-filled frame the suspension left (the frames
    # before it were all whole), and no audio taken in after the suspension.
    tail = sum(sizes[before:])
    assert len(sizes) > before and delay <= tail < delay + FRAME_SAMPLES + 1, seen
    assert result["contextState"] == "closed", seen


def test_stop_on_a_suspended_context_flushes_the_tail(pw: Playwright, browser_name: str, served) -> None:  # type: ignore[no-untyped-def]
    with launch(pw, browser_name, CLIP) as browser:
        page = new_page(browser, browser_name, CLIP)
        page.goto(served.url + "/")
        result = page.evaluate(STOP_SUSPENDED_JS, {"outRate": OUT_RATE, "frameSamples": FRAME_SAMPLES})
    check_flushed_tail(result)


@pytest.mark.webkit
def test_stop_on_a_suspended_context_flushes_the_tail_in_webkit(webkit_autoplay_driver: WebDriver, served) -> None:  # type: ignore[no-untyped-def]
    # WebKit's mock microphone (a tone) is enough: this counts samples, it does not compare them.
    webkit_autoplay_driver.get(served.url + "/")
    result = run_async(webkit_autoplay_driver, STOP_SUSPENDED_JS, {"outRate": OUT_RATE, "frameSamples": FRAME_SAMPLES})
    check_flushed_tail(result)
