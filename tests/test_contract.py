"""One contract, every provider: the app grants a session, a client speaking the grant's protocol streams speech at
the grant's rate and frame size, and the transcript comes back complete, through real sockets end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from server.emulators.scripted import DEFAULT_SCRIPT, ScriptedRecognizer
from server.engine.config import EngineConfig
from server.engine.loader import load_engine
from server.engine.types import Closes, Recognizer
from testkit import audio
from testkit.stack import PROVIDERS, SECRETS, Stack, stack
from testkit.truebar_client import transcribe_truebar
from testkit.wiro_client import transcribe_wiro

SPEECH = Path(__file__).resolve().parent / "data" / "speech"
GRANT_KEYS = {"provider", "protocol", "ws_url", "token", "expires_at", "sample_rate", "frame_samples", "session_id"}


def grant_for(s: Stack, provider: str) -> dict[str, object]:
    r = httpx.post(s.url + "/api/sessions", json={"provider": provider}, headers={"Origin": s.url})
    assert r.status_code == 200, r.text
    grant: dict[str, object] = r.json()
    return grant


def stream(grant: dict[str, object], pcm: bytes) -> str:
    """Transcribe PCM16 already at the grant's rate with the client of the grant's protocol."""
    ws_url, token = str(grant["ws_url"]), str(grant["token"])
    frame_bytes = int(grant["frame_samples"]) * 2  # type: ignore[call-overload]
    if grant["protocol"] == "truebar":
        result = asyncio.run(transcribe_truebar(ws_url, token, pcm, tag=str(grant["tag"]), frame_bytes=frame_bytes))
        assert not result.errors, result.errors
        # The session ended as the protocol ends it: the transcript is whole, not cut off.
        assert result.status_names[-1] == "FINISHED", result.status_names
        return " ".join(result.finals)
    # A timeout raises (never a partial transcript); the last event says the task's output is complete.
    wiro = asyncio.run(transcribe_wiro(ws_url, token, pcm, frame_samples=frame_bytes // 2))
    assert wiro.events[-1] == "task_postprocess_end", wiro.events[-5:]
    return wiro.text


def at_rate(path: Path, rate: int) -> bytes:
    pcm, wav_rate = audio.read_wav_pcm16(path)
    if wav_rate == rate:
        return pcm.astype("<i2").tobytes()
    return audio.float_to_pcm16(audio.resample(audio.pcm16_to_float(pcm), wav_rate, rate)).astype("<i2").tobytes()


def normalise(text: str) -> list[str]:
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).split()


def wer(ref: list[str], hyp: list[str]) -> float:
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return float(d[len(hyp)]) / max(1, len(ref))


@pytest.fixture(scope="module")
def scripted_stack() -> Iterator[Stack]:
    with stack(ScriptedRecognizer(ms_per_word=250, words_per_utterance=4)) as s:
        yield s


@pytest.mark.parametrize("provider", PROVIDERS)
def test_grant_shape_and_no_secret(scripted_stack: Stack, provider: str) -> None:
    grant = grant_for(scripted_stack, provider)
    assert grant.keys() >= GRANT_KEYS
    assert grant["provider"] == provider
    rate, frame = grant["sample_rate"], grant["frame_samples"]
    # The offline engine asks for 50 ms frames (lower latency); Truebar for the vendor's 100 ms.
    expected = {
        "truebar": ("truebar", 16_000, 1_600),
        "wiro": ("wiro", 24_000, 4_800),
        "local": ("truebar", 16_000, 800),
    }
    assert (grant["protocol"], rate, frame) == expected[provider]
    assert str(grant["ws_url"]).startswith(("ws://", "wss://"))
    body = json.dumps(grant)
    assert not [s for s in SECRETS if s in body]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_scripted_session_delivers_every_word(scripted_stack: Stack, provider: str) -> None:
    grant = grant_for(scripted_stack, provider)
    rate = int(grant["sample_rate"])  # type: ignore[call-overload]
    seconds = 3.1
    # Paced by audio only: 3.1 s of a 440 Hz tone is 12 words of the script at 250 ms a word.
    pcm = audio.float_to_pcm16(audio.tone(440.0, rate, int(seconds * rate), 0.3)).astype("<i2").tobytes()
    text = stream(grant, pcm)
    assert normalise(text) == DEFAULT_SCRIPT[: int(seconds * 1000) // 250]


@pytest.fixture(scope="module")
def engine_stack() -> Iterator[Stack]:
    """The app in front of the real engine; the engine's worker processes stop afterwards (the app leaves an
    injected engine to its caller)."""
    recognizer: Recognizer = load_engine(EngineConfig())
    try:
        with stack(recognizer) as s:
            yield s
    finally:
        assert isinstance(recognizer, Closes)
        asyncio.run(recognizer.aclose())


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDERS)
def test_real_engine_transcribes_speech_through_every_provider(engine_stack: Stack, provider: str) -> None:
    transcripts = json.loads((SPEECH / "transcripts.json").read_text())
    clip = "slt-coffee-16k.wav"
    expected = normalise(" ".join(u["text"] for u in transcripts[clip]["utterances"]))
    grant = grant_for(engine_stack, provider)
    text = stream(grant, at_rate(SPEECH / clip, int(grant["sample_rate"])))  # type: ignore[call-overload]
    # The embedded engine scores 0-10 % on this clip (bench/README.md); Wiro's 24 kHz path resamples twice.
    assert wer(expected, normalise(text)) <= 0.25, text
