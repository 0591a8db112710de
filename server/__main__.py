"""python -m server [--host H] [--port N] [--workers N]: serve the app. Settings come from the environment and ./.env.

Several workers (uvicorn's processes sharing one socket) need shared state, APP_REDIS_URL, and one APP_SECRET_KEY:
each worker builds its own app through `app_factory`, which uvicorn calls with no arguments and which reads the
same environment, and sizes its offline engine to its share of the machine (APP_WORKERS, which --workers sets).
/metrics serves the sum of every worker's numbers: --workers makes a private folder for them
(PROMETHEUS_MULTIPROC_DIR, prometheus-client's multiprocess mode) and removes it when the server stops.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from starlette.applications import Starlette
from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

from server import UVICORN_HTTP
from server.app import create_app
from server.engine.config import EngineConfig
from server.security import check_bind
from server.settings import Settings, SettingsError, read_dotenv


def port_number(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535)")
    return port


def worker_count(text: str) -> int:
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count} workers: give at least 1")
    return count


def engine_share(config: EngineConfig, workers: int, cores: int) -> EngineConfig:
    """One worker's part of the engine the settings size for the whole machine. Each worker loads its own engine
    (its own Whisper model and pocketsphinx processes): N full copies would each take every core (N x the Whisper
    threads, N x one pocketsphinx process per core) and N x the sessions, and fight over the CPU so that none
    keeps real time. So the sessions, the Whisper threads and queue, and the pocketsphinx processes are divided
    (at least one each). The price: a worker whose share is taken answers "busy" while another may have room."""
    if workers <= 1:
        return config
    return dataclasses.replace(
        config,
        max_sessions=max(1, config.max_sessions // workers),
        fast_workers=max(1, (config.fast_workers or cores) // workers),
        whisper_threads=max(1, config.whisper_threads // workers),
        whisper_queue=max(1, config.whisper_queue // workers),
    )


def workers_from(env: Mapping[str, str]) -> int:
    """APP_WORKERS: how many workers share this machine (set by --workers for its workers)."""
    raw = env.get("APP_WORKERS", "").strip()
    return max(1, int(raw)) if raw.isdigit() else 1


# prometheus-client's own variable: the library reads it when it is imported (in each worker, which the supervisor
# spawns afresh) to keep the values in files there, and the worker's /metrics reads the same folder.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dir_from(env: Mapping[str, str]) -> Path | None:
    """The workers' shared metrics folder (set by --workers for its workers), or None: this process's own numbers."""
    raw = env.get(METRICS_DIR_VARIABLE, "").strip()
    return Path(raw) if raw else None


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up, with the app's own loggers (`server.*`) on stderr at APP_LOG_LEVEL beside uvicorn's.
    uvicorn sets up only its own: without them Python wrote the app's warnings bare and dropped everything below
    them (the engine's busy pass and second decodes, a Truebar sign-in again). uvicorn applies it in each worker."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["app"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s %(name)s: %(message)s",
    }
    config["handlers"]["app"] = {"formatter": "app", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    # Propagated too: uvicorn gives the root logger no handler, so nothing is written twice, and a handler put there
    # (pytest's log capture) still sees these lines. The level as a number: "trace" is uvicorn's own (5).
    config["loggers"]["server"] = {"handlers": ["app"], "level": LOG_LEVELS[level], "propagate": True}
    return config


def app_factory(environ: Mapping[str, str] = os.environ) -> Starlette:
    """What each uvicorn worker calls (with no arguments: its own os.environ, where the parent put the command
    line's choices and the .env file before starting the workers, see `run_workers`): the app for those settings,
    with its share of the engine and the workers' metrics folder."""
    settings = Settings.from_env(environ)
    engine = engine_share(settings.local.engine, workers_from(environ), os.cpu_count() or 1)
    # The whole machine's size stays known: the per-client cap is the same with one worker or many.
    whole = settings.local.engine.max_sessions
    return create_app(
        dataclasses.replace(
            settings,
            local=dataclasses.replace(settings.local, engine=engine, all_workers_sessions=whole),
            metrics_dir=metrics_dir_from(environ),
        )
    )


class Supervisor(Multiprocess):
    """uvicorn's supervisor, which also takes the live gauges (open streams, queue) of a worker that is gone out of
    the metrics folder: a worker that stops takes its own out at its lifespan's end, but one killed (SIGKILL, the
    OOM killer) or hung (killed by uvicorn) never reaches it, and its open streams would stay in the sum for good.
    uvicorn replaces such a worker in keep_subprocess_alive, every half second, and has no hook for it (gunicorn's
    child_exit is where prometheus-client's documentation calls mark_process_dead): so after each round, every
    process with live gauges in the folder that is not one of this supervisor's workers now is marked dead. Its
    counters and histograms stay: what it counted happened. The workers are started, replaced and counted on this
    one thread, so a worker just started is already among them when the folder is looked at."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], metrics_dir: Path) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        bury_dead_workers(self.metrics_dir, {process.pid for process in self.processes})


def bury_dead_workers(folder: Path, living: set[int | None]) -> None:
    """Mark dead every process with live gauges in `folder` (prometheus-client names their files
    gauge_live<mode>_<pid>.db) that is not in `living`."""
    for path in folder.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[1]
        if pid.isdigit() and int(pid) not in living:
            # prometheus-client leaves its multiprocess module unannotated.
            mark_process_dead(int(pid), str(folder))  # type: ignore[no-untyped-call]


def workers_refusal(workers: int, env: Mapping[str, str]) -> str | None:
    """Why these settings cannot run `workers` processes, or None."""
    if workers <= 1:
        return None
    if not env.get("APP_REDIS_URL", "").strip():
        return (
            f"--workers {workers} needs APP_REDIS_URL: each worker would otherwise keep its own rate limits, session "
            "caps, spent grants and Wiro tasks, so limits would multiply and an end call reaching the wrong worker "
            "would free nothing. Start Redis and set APP_REDIS_URL=redis://127.0.0.1:6379/0, or run one worker."
        )
    if not env.get("APP_SECRET_KEY", "").strip():
        return (
            f"--workers {workers} needs APP_SECRET_KEY: each worker would otherwise sign grants and cookies with its "
            "own random key, and a grant minted by one would be refused by another."
        )
    return None


# main's two ways to serve, as parameters so that a test passes its own (and starts no server). `Serve` is
# uvicorn.run's shape: serve(app, **uvicorn options), for one process. `Supervise` runs `config.workers` workers
# that build their apps from `environment` (the settings, the command line's choices, the metrics folder's
# variable) and share `metrics_dir`: run_workers, below.
Serve = Callable[..., object]
Supervise = Callable[[uvicorn.Config, Mapping[str, str], Path], None]


def run_workers(config: uvicorn.Config, environment: Mapping[str, str], metrics_dir: Path) -> None:
    """main's `supervise`: the Supervisor over `config.workers` processes, which share one socket on config.host
    and config.port. uvicorn spawns each worker (multiprocessing's "spawn": a fresh interpreter that imports
    `app_factory` and calls it with no arguments), and a spawned process gets nothing from this one but the real
    process environment: so `environment` is put into os.environ here, whatever mapping main read its settings
    from, before the workers start (and before a replaced one restarts: for the supervisor's whole run), and the
    variables are given back their earlier values once the workers are gone (this process may go on: a test's)."""
    earlier = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        Supervisor(config, [listening_socket(config.host, config.port)], metrics_dir).run()
    finally:
        for name, value in earlier.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(
    argv: list[str] | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    serve: Serve = uvicorn.run,
    supervise: Supervise = run_workers,
) -> int:
    """The command line: settings from `environ` (the process environment) over the --env-file, then one process
    served by `serve`, or --workers N run by `supervise`. Only read here: nothing below reads the environment."""
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=None, help="port (default 8000)")
    parser.add_argument(
        "--workers", type=worker_count, default=1, help="worker processes (default 1; more need APP_REDIS_URL)"
    )
    parser.add_argument("--env-file", default=".env", help="optional KEY=VALUE file (default ./.env)")
    parser.add_argument(
        "--allow-public",
        action="store_true",
        help="listen on a non-loopback address without APP_PASSWORD (only behind an authenticating proxy)",
    )
    args = parser.parse_args(argv)

    try:
        # The real environment wins over the file, as in every dotenv loader.
        env = {**read_dotenv(Path(args.env_file)), **environ}
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    refusal = workers_refusal(args.workers, env)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    # The app's Host check needs the address it really listens on.
    settings = dataclasses.replace(settings, host=host, port=port)
    if args.allow_public:
        settings = dataclasses.replace(settings, allow_public_without_password=True)
    refusal = check_bind(host, settings)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    print(f"Serving on http://{host}:{port}/ with {args.workers} worker(s)", flush=True)
    proxy_headers, forwarded_allow_ips = bool(settings.trusted_proxies), settings.trusted_proxies or None
    if args.workers == 1:
        serve(
            create_app(settings),
            host=host,
            port=port,
            log_level=settings.log_level,
            log_config=log_config(settings.log_level),
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
            http=UVICORN_HTTP,
        )
        return 0
    # The metrics folder: fresh and private (mode 0700) for each start, in the environment's TMPDIR (files left by
    # an earlier run would be summed in).
    metrics_dir = Path(tempfile.mkdtemp(prefix="stt-metrics-", dir=env.get("TMPDIR") or None))
    # Each worker builds its own app from its process environment (app_factory): the file's values, the command
    # line's choices and the folder. The workers are spawned processes that inherit only the real os.environ, so
    # `supervise` (run_workers) puts this mapping there before it starts them; main itself writes nowhere.
    workers_env = {
        **env,
        "APP_HOST": host,
        "APP_PORT": str(port),
        "APP_WORKERS": str(args.workers),
        METRICS_DIR_VARIABLE: str(metrics_dir),
    }
    if args.allow_public:
        workers_env["APP_ALLOW_PUBLIC"] = "1"
    config = uvicorn.Config(
        "server.__main__:app_factory",
        factory=True,
        workers=args.workers,
        host=host,
        port=port,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        http=UVICORN_HTTP,
    )
    try:
        supervise(config, workers_env, metrics_dir)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket the workers share. uvicorn's own (Config.bind_socket) is made without IPPROTO_TCP, so asyncio
    never sets TCP_NODELAY on the connections it accepts, and every response then waits for a delayed ACK: about
    45 ms each (bench/README.md: about 150 against 1400 mints/s). Named explicitly, the protocol is inherited by
    every accepted connection and asyncio sets TCP_NODELAY as it does for a single process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    sys.exit(main())
