"""The vendor guide's own Python and Node quickstarts, unchanged, against the emulator (scripted recognizer), and
its Java quickstart's sign-in request as Java's HttpClient sends it (scripts/setup.sh installs no JDK to run the
sample itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from starlette.applications import Starlette

from server.emulators.scripted import ScriptedRecognizer
from server.emulators.truebar import SessionRecord, TruebarEmulatorOptions, create_emulator
from testkit.live import running
from tests.support.h2c import H2C_OFFER

ROOT = Path(__file__).resolve().parent.parent
SEEDS = Path(__file__).resolve().parent / "seeds"
NODE = shutil.which("node")
SCRIPT = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
# 2 s of audio at 300 ms per word: one five-word final while streaming, the sixth word flushed by EOS.
AUDIO_MS = 2000


@dataclass
class Setup:
    app: Starlette
    env: dict[str, str]
    cwd: Path
    pcm: bytes

    def record(self) -> SessionRecord:
        record: SessionRecord = self.app.state.sessions[-1]
        assert record.ended.wait(10)
        return record


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(AUDIO_MS * 16) * 3000).astype("<i2")
    sf.write(tmp_path / "sample.wav", samples, 16_000, subtype="PCM_16")
    (tmp_path / "sample.pcm").write_bytes(samples.tobytes())
    options = TruebarEmulatorOptions(username="seed-user", password="seed-pass")
    app = create_emulator(options, ScriptedRecognizer(SCRIPT))
    with running(app) as url:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "TRUEBAR_USERNAME": "seed-user",
            "TRUEBAR_PASSWORD": "seed-pass",
            "TRUEBAR_AUTH_URL": url + "/realms/truebar/protocol/openid-connect/token",
            "TRUEBAR_STT_WS_URL": url.replace("http://", "ws://") + "/api/pipelines/stream",
            "TRUEBAR_ASR_TAG": "KALDI:en-US:*:*",
        }
        yield Setup(app, env, tmp_path, samples.tobytes())


def run(command: list[str], setup: Setup) -> list[str]:
    out = subprocess.run(command, cwd=setup.cwd, env=setup.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_python_quickstart_runs_unchanged(setup: Setup) -> None:
    lines = run([sys.executable, str(SEEDS / "truebar_quickstart.py")], setup)
    statuses = [line.removeprefix("STATUS: ") for line in lines if line.startswith("STATUS: ")]
    assert statuses == ["INITIALIZED", "CONFIGURED", "FINISHED"]
    texts = [line for line in lines if not line.startswith("STATUS: ")]
    # This client prints interims and finals alike: the growing utterance, then the flushed last word.
    assert texts[:5] == ["the", "the quick", "the quick brown", "the quick brown fox", "the quick brown fox jumps"]
    assert texts[-1] == "over"
    assert lines[-1] == "STATUS: FINISHED"
    record = setup.record()
    assert record.token_source == "header" and record.outcome == "FINISHED"
    assert bytes(record.pcm) == setup.pcm


def test_node_quickstart_runs_unchanged(setup: Setup) -> None:
    # The test command installs all three (scripts/setup.sh test: Node, then npm ci): missing, the setup is broken.
    assert NODE is not None, "node is not on PATH: run scripts/setup.sh test (make test does)"
    missing = [name for name in ("ws", "axios") if not (ROOT / "node_modules" / name).is_dir()]
    assert not missing, f"{missing} not in node_modules: run npm ci (make test does)"
    # The script stays under the checkout, so its ESM imports resolve from the checkout's node_modules.
    lines = run([NODE, str(SEEDS / "truebar_quickstart.mjs")], setup)
    assert [line for line in lines if line.startswith("STATUS:")] == [
        "STATUS: INITIALIZED",
        "STATUS: CONFIGURED",
        "STATUS: FINISHED",
    ]
    assert [line for line in lines if line.startswith("FINAL - ")] == [
        "FINAL - the quick brown fox jumps",
        "FINAL - over",
    ]
    assert "INTERIM - the quick" in lines
    record = setup.record()
    assert record.token_source == "header" and record.outcome == "FINISHED"
    assert bytes(record.pcm) == setup.pcm


def test_a_sign_in_offering_h2c_is_answered_as_http_1_1(setup: Setup) -> None:
    """The Java quickstart's token request, as its HttpClient sends it over http:// (tests/support/h2c.py)."""
    form = {
        "grant_type": "password",
        "username": "seed-user",
        "password": "seed-pass",
        "client_id": "truebar-client",
    }
    r = httpx.post(setup.env["TRUEBAR_AUTH_URL"], data=form, headers=H2C_OFFER)
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]
