"""The whole capture path in real browsers: fake microphone (a speech WAV) -> getUserMedia -> AudioContext at the
device rate -> pcm-processor worklet -> frames over a real WebSocket to the app's test sink. The PCM received must
have the provider's rate, frame size and byte order, and match the reference conversion of the same WAV.
(WebKit runs the same check in test_webkit.py.)"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Playwright

from testkit.browsers import launch, new_page
from tests.support.capture_check import CAPTURE_JS, capture_args, check_capture

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
CLIP = SPEECH / "slt-weather-48k.wav"


@pytest.mark.parametrize(("out_rate", "frame_samples"), [(16_000, 1_600), (24_000, 4_800)])
def test_capture_path_delivers_the_reference_pcm(
    pw: Playwright,
    browser_name: str,
    served,
    out_rate: int,
    frame_samples: int,  # type: ignore[no-untyped-def]
) -> None:
    key = uuid.uuid4().hex
    with launch(pw, browser_name, CLIP) as browser:
        page = new_page(browser, browser_name, CLIP)
        page.goto(served.url + "/")
        result = page.evaluate(
            CAPTURE_JS, capture_args(CLIP, out_rate, frame_samples, f"{served.ws_url}/api/test/sink?id={key}")
        )
    check_capture(served.sink.sessions[key], result, CLIP, out_rate, frame_samples)
