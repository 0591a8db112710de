"""python -m server [--host H] [--port N]: serve the app. Settings come from the environment and ./.env."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import uvicorn

from server.app import create_app
from server.security import check_bind
from server.settings import Settings, SettingsError, read_dotenv


def port_number(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=None, help="port (default 8000)")
    parser.add_argument("--env-file", default=".env", help="optional KEY=VALUE file (default ./.env)")
    parser.add_argument(
        "--allow-public",
        action="store_true",
        help="listen on a non-loopback address without APP_PASSWORD (only behind an authenticating proxy)",
    )
    args = parser.parse_args(argv)

    try:
        # The real environment wins over the file, as in every dotenv loader.
        env = {**read_dotenv(Path(args.env_file)), **os.environ}
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
    print(f"Serving on http://{host}:{port}/", flush=True)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
