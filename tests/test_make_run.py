"""`make run`'s command (a dry run: nothing is set up or started): it passes --host/--port only when they are given on
make's command line, so APP_HOST/APP_PORT from the environment or .env are not overridden by the Makefile's own
defaults or by an unrelated HOST or PORT in the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def server_command(*variables: str, environment: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "MAKEFLAGS", "MAKELEVEL")}
    env.update(environment or {})
    make = shutil.which("make")
    assert make is not None, "make runs the README's two commands"
    run = subprocess.run(
        [make, "-n", "-s", "run", *variables], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return next(line for line in run.stdout.splitlines() if "-m server" in line)


def test_make_run_leaves_host_and_port_to_the_app_unless_given() -> None:
    plain = server_command()
    assert "--host" not in plain and "--port" not in plain
    # Not from the environment: csh exports HOST as the machine's name, and platforms set PORT for their own use.
    assert "--" not in server_command(environment={"HOST": "somebox", "PORT": "5000"})
    assert server_command("PORT=9000").split()[-2:] == ["--port", "9000"]
    given = server_command("HOST=0.0.0.0", "PORT=9001").split()
    assert given[given.index("--host") + 1] == "0.0.0.0" and given[given.index("--port") + 1] == "9001"
