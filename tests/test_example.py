"""The README's backend example runs as written: mint, connect, stream, EOS, finals, close, many times in a row."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

from server.app import create_app
from server.emulators.scripted import ScriptedRecognizer
from server.settings import Settings
from testkit.live import running
from testkit.load import MS_PER_WORD, expected_words, pcm_at

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "backend_stream.py"


def test_the_backend_example_transcribes_more_sessions_in_a_row_than_the_per_client_cap(tmp_path: Path) -> None:
    wav = tmp_path / "clip.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(pcm_at(16_000, 2.1))
    recognizer = ScriptedRecognizer(ms_per_word=MS_PER_WORD, words_per_utterance=4)
    app = create_app(Settings(max_sessions_per_client=2), local_recognizer=recognizer)
    with running(app) as url:
        outputs = [
            subprocess.run(
                [sys.executable, str(EXAMPLE), "--url", url, "--wav", str(wav)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            for _ in range(4)
        ]
    for out in outputs:
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == expected_words(2.1)
