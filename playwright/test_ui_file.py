"""Transcribe a file chosen on the page: decoded at its own rate, through the same resampler, framing and provider
client as the microphone, by the real embedded engine. The page stops by itself when the file ends."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Playwright

from server.engine.types import Recognizer
from testkit import audio
from testkit.browsers import launch, new_page
from testkit.stack import Stack, stack

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
TRANSCRIPTS = json.loads((SPEECH / "transcripts.json").read_text())
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def engine_stack(engine: Recognizer) -> Iterator[Stack]:
    """The app in front of the conftest's engine (which stops the engine's worker processes afterwards: the app
    leaves an injected engine to its caller)."""
    with stack(engine) as s:
        yield s


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("provider", "clip", "frame_samples"),
    [("local", "slt-two-sentences-16k.wav", 800), ("truebar", "kal-station-48k.wav", 1600)],
)
def test_a_chosen_file_is_transcribed(
    pw: Playwright, browser_name: str, engine_stack: Stack, provider: str, clip: str, frame_samples: int
) -> None:
    path = SPEECH / clip
    pcm, rate = audio.read_wav_pcm16(path)
    reference = [w for u in TRANSCRIPTS[clip]["utterances"] for w in words(u["text"])]
    with launch(pw, browser_name) as browser:
        page = new_page(browser, browser_name)
        page.goto(engine_stack.url + "/")
        page.wait_for_selector("#app[data-ready=true]")
        page.select_option("#provider", provider)
        page.set_input_files("#file", str(path))
        # The file's end stops the session by itself (its last words still arrive): Start is offered again.
        page.wait_for_function(
            "() => document.querySelector('#transcript .final') && !document.getElementById('start').disabled"
            " || document.getElementById('state').dataset.state === 'error'",
            timeout=TIMEOUT_MS,
        )
        assert page.inner_text("#error") == ""
        assert page.get_attribute("#state", "data-state") == "idle"
        heard = words(" ".join(page.locator("#transcript .final .text").all_inner_texts()))
        found = sum(1 for w in set(reference) if w in heard) / len(set(reference))
        assert found >= 0.7, (heard, reference)

        page.click("#diagnostics summary")
        page.wait_for_function("() => document.getElementById('diagnostics-text').textContent.includes('Frames')")
        diag = page.inner_text("#diagnostics-text")
        assert f"Input device: file: {clip}" in diag
        # Decoded at the file's own rate, so the only resampling is pcm.js's.
        assert f"Context rate: {rate} Hz" in diag and "Provider rate: 16000 Hz" in diag
        out_samples = math.ceil(len(pcm) * 16_000 / rate)
        m = re.search(r"Frames: (\d+) captured", diag)
        assert m and int(m.group(1)) == out_samples // frame_samples, diag
        m = re.search(r"Audio clock: ([\d.]+) s", diag)
        assert m and abs(float(m.group(1)) - out_samples / 16_000) < 0.06, diag
