"""python -m server --workers N: refused without shared state or a common secret; with both, the workers share
one Redis (their rate limit is one)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.__main__ import main
from testkit.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_REDIS_URL", "APP_SECRET_KEY", "APP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_several_workers_without_redis_are_refused_with_the_reason(
    clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--workers", "2", "--env-file", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "APP_REDIS_URL" in err and "limits would multiply" in err


def test_several_workers_without_a_secret_are_refused(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_REDIS_URL", "redis://127.0.0.1:1/0")
    # A Redis URL alone already needs the secret: the settings say so, naming it.
    assert main(["--env-file", "/nonexistent"]) == 2
    assert "APP_SECRET_KEY" in capsys.readouterr().err


def test_two_workers_share_one_rate_limit(redis: RedisServer) -> None:
    port = free_port()
    env = {
        **os.environ,
        "APP_REDIS_URL": redis.url,
        "APP_SECRET_KEY": "workers-test-secret-5e1f",
        "APP_SESSION_RATE_PER_MIN": "6",
        "LOCAL_ENGINE": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--workers", "2", "--port", str(port), "--env-file", "/nonexistent"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # New connections each time, so the kernel spreads them over both workers.
        codes = [httpx.post(url + "/api/sessions", json={"provider": "local"}).status_code for _ in range(8)]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    # The engine is off (409) until the shared limit of 6 is spent, whichever worker answered.
    assert codes == [409] * 6 + [429] * 2, err.decode()[-2000:]
