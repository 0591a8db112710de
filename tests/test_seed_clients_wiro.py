"""The vendor page's own Python and Node clients (tests/seeds/wiro_realtime.*) against the emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from server.emulators.scripted import DEFAULT_SCRIPT, ScriptedRecognizer
from server.emulators.wiro import DEFAULT_API_KEY, EmulatedTask, EmulatorState, create_emulator
from testkit.live import running

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "seeds"
# Any Node on PATH (scripts/setup.sh installs Debian's only when there is none).
NODE = shutil.which("node")
# 13 chunks of 4800 samples: whole chunks, so both clients send every byte (the Node one drops a remainder).
SECONDS = 2.6


@pytest.fixture
def emulator() -> Iterator[tuple[str, EmulatorState]]:
    app = create_emulator()
    with running(app) as url:
        yield url, app.state.wiro


@pytest.fixture
def pcm_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    pcm = (rng.standard_normal(int(SECONDS * 24000)) * 2000).astype("<i2").tobytes()
    # 0x7C bytes inside the PCM: the server must split on the first '|' only.
    path = tmp_path / "speech_24k_s16le.pcm"
    path.write_bytes(b"|\x7c" * 4800 + pcm[9600:])
    return path


def start_task(url: str, state: EmulatorState) -> EmulatedTask:
    r = httpx.post(url + "/v1/Run/wiro/voxtral-mini-realtime", headers={"x-api-key": DEFAULT_API_KEY}, json={})
    return state.tasks[r.json()["taskid"]]


def expected_text() -> str:
    words = int(SECONDS * 1000) // ScriptedRecognizer().ms_per_word
    return " ".join(DEFAULT_SCRIPT[:words])


def run_client(cmd: list[str], url: str, task: EmulatedTask, pcm: Path) -> str:
    env = {
        **os.environ,
        "WIRO_SOCKET_URL": url.replace("http://", "ws://") + "/v1",
        "WIRO_SOCKET_TOKEN": task.token,
        "WIRO_PCM_FILE": str(pcm),
        "PYTHONIOENCODING": "utf-8",
    }
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_vendor_python_client(emulator: tuple[str, EmulatorState], pcm_file: Path) -> None:
    url, state = emulator
    task = start_task(url, state)
    out = run_client([sys.executable, str(SEEDS / "wiro_realtime.py")], url, task, pcm_file)
    lines = out.splitlines()
    assert lines[0] == "Session ready — sending audio"
    assert [line.removeprefix("Transcript: ") for line in lines if line.startswith("Transcript: ")] == (
        expected_text().split()
    )
    assert "Transcription stream ended" in lines and any(line.startswith("Cost: ") for line in lines)
    assert lines[-2:] == ["Session ended", f"Full: {expected_text()}"]
    assert bytes(task.pcm) == pcm_file.read_bytes()
    assert task.end_reason == "session_end" and task.rejections == []


def test_vendor_node_client(emulator: tuple[str, EmulatorState], pcm_file: Path) -> None:
    # The test command installs both (scripts/setup.sh test: Node, then npm ci): missing, the setup is broken.
    assert NODE is not None, "node is not on PATH: run scripts/setup.sh test (make test does)"
    assert (ROOT / "node_modules" / "ws").is_dir(), "ws is not in node_modules: run npm ci (make test does)"
    url, state = emulator
    task = start_task(url, state)
    out = run_client([NODE, str(SEEDS / "wiro_realtime.mjs")], url, task, pcm_file)
    lines = out.splitlines()
    assert lines[0] == "Session ready — start sending audio"
    assert [line.removeprefix("Transcript: ") for line in lines if line.startswith("Transcript: ")] == (
        expected_text().split()
    )
    assert lines.index("Transcription stream ended") < lines.index("Model process ended — waiting for post-processing")
    assert lines[-2:] == ["Done", f"Full transcript: {expected_text()}"]
    assert bytes(task.pcm) == pcm_file.read_bytes()
    assert task.end_reason == "session_end" and task.status == "task_postprocess_end"
