"""python -m server --workers N: refused without shared state or a common secret; with both, the workers share
one Redis (their rate limit is one) and one metrics folder (their /metrics is one sum). One worker or several, the
server reads a request that offers h2c."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets
import websockets.sync.client
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from server.__main__ import app_factory, bury_dead_workers, engine_share, main
from server.emulators.truebar import DEFAULT_PASSWORD as TRUEBAR_PASSWORD
from server.emulators.truebar import DEFAULT_USERNAME as TRUEBAR_USERNAME
from server.emulators.truebar import create_emulator
from server.emulators.truebar import urls as truebar_urls
from server.engine.config import EngineConfig
from testkit.live import running
from testkit.redis_server import RedisServer, free_port
from tests.support.h2c import H2C_OFFER

ROOT = Path(__file__).resolve().parent.parent


def no_server(*args: object, **options: object) -> None:
    """main's serve or supervise where it must refuse: a refusal that let it through fails here, not by serving."""
    raise AssertionError("main started serving instead of refusing")


@contextlib.contextmanager
def server_process(args: list[str], env: Mapping[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m server ARGS` on a free loopback port, its stderr in `log` (a file, not a pipe: readable while it
    runs, and never full); yields its URL once /healthz answers 200, and stops it (SIGTERM) after."""
    port = free_port()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", *args, "--port", str(port), "--env-file", "/nonexistent"],
            cwd=ROOT,
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_several_workers_without_redis_are_refused_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workers", "2", "--env-file", "/nonexistent"], environ={}, supervise=no_server) == 2
    err = capsys.readouterr().err
    assert "APP_REDIS_URL" in err and "limits would multiply" in err


def test_several_workers_without_a_secret_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # A Redis URL alone already needs the secret: the settings say so, naming it.
    env = {"APP_REDIS_URL": "redis://127.0.0.1:1/0"}
    assert main(["--env-file", "/nonexistent"], environ=env, serve=no_server) == 2
    assert "APP_SECRET_KEY" in capsys.readouterr().err


def test_two_workers_share_one_rate_limit(redis: RedisServer, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "APP_REDIS_URL": redis.url,
        "APP_SECRET_KEY": "workers-test-secret-5e1f-8c0a2d7b9e43",
        "APP_SESSION_RATE_PER_MIN": "6",
        "LOCAL_ENGINE": "0",
    }
    log = tmp_path / "server.log"
    codes, served_by = [], []
    with server_process(["--workers", "2"], env, log) as (url, process), contextlib.ExitStack() as stack:
        port = port_of(url)
        workers = [pid for pid in children(process.pid) if listens_on(pid, port)]
        # Keep-alive keeps a connection on its worker: alternate the requests over one on each.
        clients = one_client_per_worker(stack, url, port, workers)
        for i in range(8):
            # Offering h2c, as a Java backend's HttpClient does over http://: each worker must still read the
            # body (the engine is off: 409), not an empty one (400 unknown provider).
            r = clients[i % len(clients)].post(url + "/api/sessions", json={"provider": "local"}, headers=H2C_OFFER)
            # Before the connection is looked up: a server that lost the body also broke the connection.
            assert r.status_code in (409, 429), r.text
            codes.append(r.status_code)
            served_by.append(serving_pid(workers, r, port))
    # The engine is off (409) until the shared limit of 6 is spent, whichever worker answered.
    assert codes == [409] * 6 + [429] * 2, log.read_text()[-2000:]
    # Two different worker processes answered, in turn (with a limit of 6 each, 8 requests would meet no 429).
    assert len(workers) == 2 and set(served_by) == set(workers), (workers, served_by)


def test_one_worker_reads_a_mint_that_offers_h2c_and_still_upgrades_websockets(tmp_path: Path) -> None:
    # One worker, with no shared state and no password: none of the caller's may reach it.
    shared = ("APP_REDIS_URL", "APP_SECRET_KEY", "APP_PASSWORD")
    env = {**{name: value for name, value in os.environ.items() if name not in shared}, "LOCAL_ENGINE": "0"}
    log = tmp_path / "server.log"
    with server_process([], env, log) as (url, _):
        minted = httpx.post(url + "/api/sessions", json={"provider": "local"}, headers=H2C_OFFER)
        # The WebSocket upgrade reaches the app's socket handler (its 401 for a bad token), not a plain HTTP route.
        stream = f"ws://127.0.0.1:{port_of(url)}/api/local/stream?access_token=bad"
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused, websockets.sync.client.connect(stream):
            pass
    assert minted.status_code == 409, (minted.text, log.read_text()[-2000:])
    assert minted.json()["error"]["code"] == "not_configured"
    assert refused.value.response.status_code == 401


def children(pid: int) -> list[int]:
    """The worker processes of uvicorn's supervisor `pid` (its direct children, from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name (in parentheses) may hold spaces: the fields after its closing parenthesis.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def socket_inodes(match: Callable[[int, int, str], bool]) -> set[str]:
    """The /proc/net/tcp sockets whose (local port, remote port, state) match, as /proc/<pid>/fd names them."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[3]
        if match(local, remote, state):
            found.add(f"socket:[{fields[9]}]")
    return found


def holds(pid: int, inodes: set[str]) -> bool:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                return True
    return False


def listens_on(pid: int, port: int) -> bool:
    """A worker holds the shared listening socket (state 0A); the supervisor's other children do not."""
    return holds(pid, socket_inodes(lambda local, _, state: local == port and state == "0A"))


def serving_pid(pids: list[int], response: httpx.Response, server_port: int) -> int:
    """The process holding the server end of the (still open) connection that carried `response`: the socket in
    /proc/net/tcp from the server's port to this client's port, and the process with a descriptor on it."""
    client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    inodes = socket_inodes(lambda local, remote, _: local == server_port and remote == client_port)
    for pid in pids:
        if holds(pid, inodes):
            return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def test_each_worker_builds_its_share_of_the_engine() -> None:
    """--workers 2 on this machine: each worker's engine has half the sessions, Whisper threads and queue, and
    half the pocketsphinx processes, not a full copy each."""
    cores = os.cpu_count() or 1
    started: list[Starlette] = []

    def supervise(config: uvicorn.Config, environment: Mapping[str, str], metrics_dir: Path) -> None:
        """Stands in for the supervisor: builds one worker's app the way each worker does, from its environment."""
        assert config.workers == 2
        started.append(app_factory(environment))

    env = {
        "APP_REDIS_URL": "redis://127.0.0.1:1/0",
        "APP_SECRET_KEY": "share-test-secret-3f9b1c7e05a2d486",
        "LOCAL_MAX_SESSIONS": "4",
        "LOCAL_WHISPER_THREADS": "2",
        "LOCAL_WHISPER_QUEUE": "4",
    }
    argv = ["--workers", "2", "--port", str(free_port()), "--env-file", "/nonexistent"]
    assert main(argv, environ=env, supervise=supervise) == 0
    engine = started[0].state.settings.local.engine
    assert (engine.max_sessions, engine.whisper_threads, engine.whisper_queue) == (2, 1, 2)
    assert engine.fast_workers == max(1, cores // 2)


def test_one_worker_keeps_the_whole_engine_and_a_share_never_reaches_zero() -> None:
    config = EngineConfig(max_sessions=4, whisper_threads=2, whisper_queue=4)
    assert engine_share(config, 1, 2) == config
    tiny = engine_share(EngineConfig(max_sessions=1, whisper_threads=1, whisper_queue=1), 8, 2)
    assert (tiny.max_sessions, tiny.whisper_threads, tiny.whisper_queue, tiny.fast_workers) == (1, 1, 1, 1)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    """Until the server at `url` answers /healthz 200 (a hang guard, not a speed limit); fails at once if it exited,
    with the end of its stderr (`log`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} was not healthy within {timeout_s} s: {log.read_text()[-2000:]}")


def one_client_per_worker(stack: contextlib.ExitStack, url: str, port: int, workers: list[int]) -> list[httpx.Client]:
    """A kept-alive client on each worker: the kernel hands each new connection to whichever worker accepts first,
    so open connections until every worker holds one."""
    pinned: dict[int, httpx.Client] = {}
    for _ in range(200):
        client = stack.enter_context(httpx.Client())
        pinned.setdefault(serving_pid(workers, client.get(url + "/healthz"), port), client)
        if len(pinned) == len(workers):
            return list(pinned.values())
    raise AssertionError(f"not every worker took a connection: {sorted(pinned)} of {workers}")


def metric(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == (labels or {}):
                return float(sample.value)
    return None


def live_gauge_pids(folder: Path) -> set[int]:
    """The processes whose live gauges (multiprocess_mode live*) are in the metrics folder."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in folder.glob("gauge_live*_*.db")}


def test_two_workers_metrics_are_one_sum_that_never_goes_back(redis: RedisServer, tmp_path: Path) -> None:
    """Review: each worker served its own registry, so scrapes alternated between the workers' counts (11, 9, 9,
    11, ... of 20 grants), which Prometheus reads as counter resets. Every scrape, whichever worker answers, is the
    sum over the workers; a worker killed (SIGKILL) and replaced keeps its counts in the sum and takes its live
    gauges out of it; the folder goes with the server."""
    grants = 20
    log = tmp_path / "server.log"
    folder_parent = tmp_path / "tmp"
    folder_parent.mkdir()
    with running(create_emulator()) as emulator:
        host, emulator_port = emulator.removeprefix("http://").split(":")
        env = {
            **os.environ,
            **truebar_urls(host, int(emulator_port)),
            "TRUEBAR_USERNAME": TRUEBAR_USERNAME,
            "TRUEBAR_PASSWORD": TRUEBAR_PASSWORD,
            "APP_REDIS_URL": redis.url,
            "APP_SECRET_KEY": "workers-metrics-secret-41c9-7d2e05b3",
            "APP_SESSION_RATE_PER_MIN": "1000",
            "LOCAL_ENGINE": "0",
            # The server's metrics folder is made here (tempfile.mkdtemp), where the test can look.
            "TMPDIR": str(folder_parent),
        }
        with server_process(["--workers", "2"], env, log) as (url, process):
            port = port_of(url)
            workers = [pid for pid in children(process.pid) if listens_on(pid, port)]
            assert len(workers) == 2, workers
            folders = list(folder_parent.iterdir())
            with contextlib.ExitStack() as stack:
                clients = one_client_per_worker(stack, url, port, workers)
                for i in range(grants):
                    r = clients[i % 2].post(url + "/api/sessions", json={"provider": "truebar"})
                    assert r.status_code == 200, r.text
                # Each scrape on the other worker than the one before: without the sum they would differ.
                scrapes = [clients[i % 2].get(url + "/metrics").text for i in range(10)]
            counted = [metric(text, "stt_grants_total", {"provider": "truebar"}) for text in scrapes]
            assert counted == [grants] * len(scrapes)
            assert [metric(text, "stt_engine_streams_open") for text in scrapes] == [0] * len(scrapes)

            # A worker killed outright: uvicorn's supervisor starts another in its place.
            dead = workers[0]
            os.kill(dead, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    now = [pid for pid in children(process.pid) if listens_on(pid, port)]
                except FileNotFoundError:  # the killed one, gone between the listing and the look at its sockets
                    continue
                # The new worker holds the socket from its start, and writes its gauges once its app is built.
                if len(now) == 2 and dead not in now and live_gauge_pids(folders[0]) == set(now):
                    break
                time.sleep(0.1)
            assert len(folders) == 1 and live_gauge_pids(folders[0]) == set(now), (folders, now)
            wait_healthy(url, process, log)
            with contextlib.ExitStack() as stack:
                clients = one_client_per_worker(stack, url, port, now)
                after = [client.get(url + "/metrics").text for client in clients * 4]
            assert [metric(text, "stt_grants_total", {"provider": "truebar"}) for text in after] == [grants] * 8
            assert [metric(text, "stt_engine_streams_open") for text in after] == [0] * 8
    assert process.returncode == 0, log.read_text()[-2000:]
    assert list(folder_parent.iterdir()) == []


def test_workers_get_a_private_metrics_folder_that_goes_with_the_server(tmp_path: Path) -> None:
    """--workers 2: the workers' settings name one fresh folder in the environment's TMPDIR (prometheus-client's
    PROMETHEUS_MULTIPROC_DIR, in the environment they start with), their /metrics sums it, and the folder is gone
    once the server stops. The environment main was given is left as it was."""
    seen: list[tuple[Path | None, str | None, bool]] = []

    def supervise(config: uvicorn.Config, environment: Mapping[str, str], metrics_dir: Path) -> None:
        folder = app_factory(environment).state.settings.metrics_dir
        seen.append((folder, environment.get("PROMETHEUS_MULTIPROC_DIR"), metrics_dir.is_dir()))

    env = {
        "APP_REDIS_URL": "redis://127.0.0.1:1/0",
        "APP_SECRET_KEY": "metrics-folder-secret-a61f0c9e8b27",
        "TMPDIR": str(tmp_path),
    }
    given = dict(env)
    argv = ["--workers", "2", "--port", str(free_port()), "--env-file", "/nonexistent"]
    assert main(argv, environ=env, supervise=supervise) == 0
    [(folder, variable, existed)] = seen
    assert folder is not None and folder.parent == tmp_path and str(folder) == variable and existed
    assert not folder.exists() and env == given


def test_one_process_serves_its_own_registry_with_no_metrics_folder() -> None:
    """One worker: no folder, nothing put in the environment, the app's own registry (as every app a test builds)."""
    served: list[Starlette] = []
    before = dict(os.environ)
    argv = ["--port", str(free_port()), "--env-file", "/nonexistent"]
    assert main(argv, environ={}, serve=lambda app, **_: served.append(app)) == 0
    [app] = served
    assert app.state.settings.metrics_dir is None and app.state.metrics.shared_dir is None
    assert dict(os.environ) == before


def test_the_supervisor_takes_only_gone_workers_live_gauges_out(tmp_path: Path) -> None:
    """A worker killed outright never reaches its lifespan's end: the supervisor removes the live gauges of every
    process that is not one of its workers, and leaves counters and the living workers' gauges."""
    names = ["gauge_livesum_11.db", "gauge_livesum_12.db", "counter_11.db", "histogram_11.db", "gauge_all_11.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    bury_dead_workers(tmp_path, {12, None})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(names) - {"gauge_livesum_11.db"})
