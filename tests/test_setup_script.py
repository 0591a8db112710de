"""scripts/setup.sh against fake commands (apt-cache, apt-get, sudo, dpkg-query, node, npm, pip): what it installs,
what it asks for, and when it trusts what an earlier run set up; and the start-up of the tests' own servers
(testkit: redis-server, uvicorn in a thread, the app as a process)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import testkit.redis_server as redis_server_module
from testkit import processes
from testkit.live import serving
from testkit.redis_server import INSTALL_HINT, START_TRIES, PortTaken, free_port, redis_server

SETUP = Path(__file__).resolve().parent.parent / "scripts" / "setup.sh"


def has_candidate(policy: str, folder: Path) -> bool:
    """Run setup.sh's own has_candidate under its shell options, with `apt-cache policy` printing `policy`."""
    answer = folder / "policy.txt"
    answer.write_text(policy)
    found = re.search(r"^has_candidate\(\) \{\n.*?^\}\n", SETUP.read_text(), re.S | re.M)
    assert found is not None, "setup.sh has no has_candidate function"
    script = (
        "set -euo pipefail\n"
        + found.group(0)
        + 'apt-cache() { cat "$POLICY_FILE"; }\n'
        + "if has_candidate firefox-esr; then echo yes; else echo no; fi\n"
    )
    run = subprocess.run(
        ["bash", "-c", script],
        env={"POLICY_FILE": str(answer), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip() == "yes"


@pytest.mark.parametrize("table_lines", [0, 5, 50_000])
def test_a_package_with_a_candidate_is_found_however_long_its_version_table(table_lines: int, tmp_path: Path) -> None:
    """Piped into `grep -q`, apt-cache died of SIGPIPE writing the table after the match, and `pipefail` read that as
    no candidate: setup failed on a fresh Debian machine with "apt has no 'firefox-esr' package here"."""
    table = "".join(
        f"     {n}.0esr-1~deb12u1 500\n        500 http://deb.debian.org/debian bookworm/main\n"
        for n in range(table_lines)
    )
    policy = f"firefox-esr:\n  Installed: (none)\n  Candidate: 153.8.0esr-1~deb12u1\n  Version table:\n{table}"
    assert has_candidate(policy, tmp_path)


def test_a_package_without_a_candidate_is_not_found(tmp_path: Path) -> None:
    assert not has_candidate("firefox-esr:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n", tmp_path)
    assert not has_candidate("", tmp_path)


# --- The rest of setup.sh, sourced (it then only defines its functions) with fake commands first in PATH. ---

REAL_PYTHON = sys.executable
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
# The real tools a fake bin folder links to.
TOOLS = "bash sh cat grep sed sort tr cut sha256sum ls mkdir cp rm dirname env true touch chmod"


def fake(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def fakes(tmp_path: Path) -> Path:
    """A bin folder with the few real tools setup.sh uses (no cc, apt-get, sudo, node, dpkg-query unless a test
    fakes them): each fake writes what it was asked to $LOG."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS.split():
        real = shutil.which(tool)
        assert real is not None, tool
        (folder / tool).symlink_to(real)
    return folder


def sourced(script: str, fakes: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'source "$SETUP"\n{script}'],
        env={"SETUP": str(SETUP), "PATH": str(fakes), "LOG": str(fakes.parent / "log"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def log(fakes: Path) -> list[str]:
    file = fakes.parent / "log"
    return file.read_text().splitlines() if file.exists() else []


@pytest.mark.parametrize(
    ("status", "installed"),
    [("ii ", True), ("hi ", True), ("rc ", False), ("un ", False), ("iU ", False), ("", False)],
)
def test_a_package_is_installed_only_if_dpkg_says_so_not_if_only_its_configuration_is_left(
    status: str, installed: bool, fakes: Path
) -> None:
    """`dpkg -s` succeeded for a package removed with its configuration kept (rc): setup never installed it again."""
    fake(fakes, "dpkg-query", f"printf '{status}'; [ -n '{status}' ]")
    run = sourced("if installed redis-server; then echo yes; else echo no; fi", fakes)
    assert run.stdout.strip() == ("yes" if installed else "no"), run.stderr


APT_CACHE = """case $2 in chromium|firefox-esr) echo "$2:"; echo "  Candidate: (none)";;
  *) echo "$2:"; echo "  Candidate: 1.0-1";; esac"""
APT_GET = 'echo "apt-get $*" >>"$LOG"'


def test_without_root_or_sudo_the_line_to_run_names_only_what_apt_has(fakes: Path) -> None:
    fake(fakes, "id", "echo 1000")
    fake(fakes, "apt-cache", APT_CACHE)
    fake(fakes, "apt-get", APT_GET)
    fake(fakes, "sudo", 'echo "sudo $*" >>"$LOG"; exit 1')  # asks for a password
    run = sourced("install_debian chromium redis-server xvfb", fakes)
    assert run.returncode == 1
    assert "  sudo apt-get install -y redis-server xvfb\n" in run.stderr
    assert "apt has no 'chromium' package here" in run.stderr
    assert log(fakes) == ["sudo -n true"]  # apt-get never ran


def test_without_root_and_with_empty_apt_lists_the_line_to_run_fetches_them_first(fakes: Path) -> None:
    fake(fakes, "id", "echo 1000")
    fake(fakes, "apt-cache", 'echo "$2:"; echo "  Candidate: (none)"')  # a container that never ran apt-get update
    fake(fakes, "apt-get", APT_GET)
    fake(fakes, "sudo", 'echo "sudo $*" >>"$LOG"; exit 1')
    run = sourced("install_debian chromium redis-server", fakes)
    assert run.returncode == 1
    assert "  sudo apt-get update && sudo apt-get install -y chromium redis-server\n" in run.stderr
    assert "snaps" not in run.stderr


def test_a_file_the_stamp_hashes_missing_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy(SETUP, copy / "scripts" / "setup.sh")
    for name in ("pyproject.toml", "constraints.txt", "package.json"):
        shutil.copy(SETUP.parent.parent / name, copy / name)
    run = subprocess.run(
        ["bash", str(copy / "scripts" / "setup.sh"), "app"],
        capture_output=True,
        text=True,
        env={**os.environ, "VENV": str(tmp_path / "venv"), "PYTHON": sys.executable},
        timeout=120,
    )
    assert run.returncode == 1 and "package-lock.json is missing" in run.stderr, run.stderr


def test_without_root_a_passwordless_sudo_installs(fakes: Path) -> None:
    fake(fakes, "id", "echo 1000")
    fake(fakes, "apt-cache", APT_CACHE)
    fake(fakes, "apt-get", APT_GET)
    fake(fakes, "sudo", '[ "$1" = -n ] || exit 1; shift; echo "sudo $*" >>"$LOG"; exec "$@"')
    run = sourced("install_debian redis-server xvfb", fakes)
    assert run.returncode == 0, run.stderr
    assert log(fakes) == [
        "sudo true",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q",
        "apt-get update -q",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server xvfb",
        "apt-get install -y -q --no-install-recommends redis-server xvfb",
    ]


def test_as_root_a_package_apt_lacks_is_refused_before_anything_is_installed(fakes: Path) -> None:
    fake(fakes, "id", "echo 0")
    fake(fakes, "apt-cache", APT_CACHE)
    fake(fakes, "apt-get", APT_GET)
    run = sourced("install_debian redis-server firefox-esr", fakes)
    assert run.returncode == 1
    assert "Ubuntu ships them only as snaps" in run.stderr
    assert log(fakes) == ["apt-get update -q"]


def fake_node(fakes: Path, version: str) -> None:
    """The real node, saying it is `version`."""
    real = shutil.which("node")
    assert real is not None
    preload = fakes.parent / "node-version.cjs"
    versions = f"{{...process.versions, node: '{version}'}}"
    preload.write_text(f"Object.defineProperty(process, 'versions', {{value: {versions}}});")
    fake(fakes, "node", f'[ "$1" = --version ] && echo v{version} && exit 0; exec {real} -r {preload} "$@"')


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
@pytest.mark.parametrize(
    ("version", "ok"),
    [("16.20.2", False), ("18.18.2", False), ("18.19.1", True), ("18.20.4", True), ("20.20.2", True), (None, False)],
)
def test_a_node_older_than_18_19_is_refused_with_what_is_needed(version: str | None, ok: bool, fakes: Path) -> None:
    """The tests ran only on Node 20+ (String.prototype.isWellFormed); the Makefile's `node --test-concurrency` needs
    18.19: Debian 12's nodejs is 18.20, Ubuntu 24.04's 18.19."""
    if version is not None:
        fake_node(fakes, version)
    run = sourced("node_ok", fakes)
    assert (run.returncode == 0) == ok, run.stderr
    if not ok:
        assert "the tests need Node.js 18.19 or newer" in run.stderr
        assert f"node here is {'v' + version if version else 'none'}" in run.stderr


def venv_python(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent.parent / "pyvenv.cfg").write_text("home = /nowhere\n")
    fake(path.parent, path.name, body)


# A virtual environment's python that is this one, except that pip only logs what it was asked.
GOOD_PYTHON = f"""if [ "$1" = -m ] && [ "$2" = pip ]; then echo "pip $*" >>"$LOG"; exit 0; fi
exec {REAL_PYTHON} "$@\""""


@pytest.mark.parametrize(
    ("body", "want", "ok"),
    [
        (GOOD_PYTHON, VERSION, True),
        (GOOD_PYTHON, "3.99", False),  # PYTHON names another version now
        ("exit 127", VERSION, False),  # its interpreter is gone
        (f'exec {REAL_PYTHON} -I -S "$@"', VERSION, False),  # no pip: a venv an interrupted run left half made
    ],
)
def test_a_virtual_environment_is_trusted_only_if_it_runs_has_pip_and_is_the_python_asked_for(
    body: str, want: str, ok: bool, fakes: Path
) -> None:
    venv_python(fakes.parent / "venv" / "bin" / "python", body)
    run = sourced(f"if venv_ok {want}; then echo yes; else echo no; fi", fakes, VENV=str(fakes.parent / "venv"))
    assert run.stdout.strip() == ("yes" if ok else "no"), run.stderr


@pytest.fixture
def repo(tmp_path: Path, fakes: Path) -> Path:
    """A copy of setup.sh in a repository of its own, with a python that makes a virtual environment of fakes."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SETUP, root / "scripts" / "setup.sh")
    for name in ("pyproject.toml", "constraints.txt"):
        (root / name).write_text(f"# {name}\n")
    for name in ("package.json", "package-lock.json"):  # node reads the one in its folder
        (root / name).write_text(f'{{"//": "{name}"}}\n')
    fake(
        fakes,
        "python3",
        f"""if [ "$1" = -m ] && [ "$2" = venv ]; then
  echo "venv $*" >>"$LOG"; mkdir -p "$4/bin"; echo "home = /nowhere" >"$4/pyvenv.cfg"
  cp "$GOOD_PYTHON" "$4/bin/python"; exit 0
fi
exec {REAL_PYTHON} "$@\"""",
    )
    fake(fakes.parent, "good-python", GOOD_PYTHON)
    fake(fakes, "dpkg-query", "printf 'ii '")
    fake_node(fakes, "20.20.2")
    tsc = "node_modules/.bin/tsc"
    fake(fakes, "npm", f'echo "npm $*" >>"$LOG"; mkdir -p node_modules/.bin; touch {tsc}; chmod +x {tsc}')
    return root


def run_setup(repo: Path, fakes: Path, mode: str) -> subprocess.CompletedProcess[str]:
    (fakes.parent / "log").unlink(missing_ok=True)
    return subprocess.run(
        ["bash", str(repo / "scripts" / "setup.sh"), mode],
        env={"PATH": str(fakes), "LOG": str(fakes.parent / "log"), "GOOD_PYTHON": str(fakes.parent / "good-python")},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("mode", ["app", "test"])
def test_a_second_run_does_nothing(mode: str, repo: Path, fakes: Path) -> None:
    first = run_setup(repo, fakes, mode)
    assert first.returncode == 0, first.stderr
    assert any(line.startswith("pip -m pip install -q --prefer-binary -c constraints.txt -e") for line in log(fakes))
    assert ("npm ci --no-audit --no-fund --silent" in log(fakes)) == (mode == "test")
    second = run_setup(repo, fakes, mode)
    assert second.returncode == 0, second.stderr
    assert log(fakes) == []


def test_a_dead_virtual_environment_is_built_anew_though_its_stamp_matches(repo: Path, fakes: Path) -> None:
    assert run_setup(repo, fakes, "app").returncode == 0
    fake(repo / ".venv" / "bin", "python", "exit 127")  # its interpreter removed, say
    run = run_setup(repo, fakes, "app")
    assert run.returncode == 0, run.stderr
    assert "building .venv anew" in run.stdout
    assert log(fakes)[0] == "venv -m venv --clear .venv"


@pytest.mark.parametrize("changed", ["constraints.txt", "scripts/setup.sh", "pyproject.toml"])
def test_a_change_to_the_pins_or_to_setup_itself_installs_again(changed: str, repo: Path, fakes: Path) -> None:
    assert run_setup(repo, fakes, "app").returncode == 0
    with (repo / changed).open("a") as file:
        file.write("\n# changed\n")
    run = run_setup(repo, fakes, "app")
    assert run.returncode == 0, run.stderr
    assert any(line.startswith("pip -m pip install -q --prefer-binary") for line in log(fakes))


def test_the_tests_set_up_without_node_modules_runs_npm_ci_again(repo: Path, fakes: Path) -> None:
    assert run_setup(repo, fakes, "test").returncode == 0
    shutil.rmtree(repo / "node_modules")
    run = run_setup(repo, fakes, "test")
    assert run.returncode == 0, run.stderr
    assert "npm ci --no-audit --no-fund --silent" in log(fakes)


# pip's two answers to a dry run that allows wheels only: no version has one here, or none that the constraints
# allow (what pip 26 prints for pocketsphinx on Python 3.12 with 5.1.1 pinned).
NO_VERSION = "ERROR: No matching distribution found for pocketsphinx>=5.0.3 (from live-stt)"
NO_ALLOWED_VERSION = """ERROR: Cannot install None because these package versions have conflicting dependencies.

The conflict is caused by:
    live-stt 0.1.0 depends on pocketsphinx>=5.0.3
    The user requested (constraint) pocketsphinx==5.1.1

Additionally, some packages in these conflicts have no matching distributions available for your environment:
    pocketsphinx

To fix this you could try to:"""


def no_wheel(error: str) -> str:
    """A venv's python whose pip finds no wheel (saying `error`) and whose Python.h exists if $HEADERS is True."""
    return f"""case "$*" in
  *--dry-run*) echo "pip $*" >>"$LOG"; cat <<'PIP'
{error}
PIP
    exit 1;;
  *Python.h*) echo "$HEADERS"; exit 0;;
esac
exec {REAL_PYTHON} "$@\""""


@pytest.mark.parametrize(
    ("cc", "headers", "needed"),
    [
        (False, "False", ["gcc", "libc6-dev", f"python{VERSION}-dev"]),
        (True, "False", [f"python{VERSION}-dev"]),
        (False, "True", ["gcc", "libc6-dev"]),
        (True, "True", []),
    ],
)
@pytest.mark.parametrize(
    ("error", "named"), [(NO_VERSION, "pocketsphinx>=5.0.3"), (NO_ALLOWED_VERSION, "pocketsphinx")]
)
def test_what_pypi_has_no_wheel_of_brings_a_compiler_and_python_s_headers(
    cc: bool, headers: str, needed: list[str], error: str, named: str, fakes: Path
) -> None:
    """pocketsphinx has no wheel for Python 3.14: pip builds it, which on a fresh machine failed for want of gcc."""
    venv_python(fakes.parent / "venv" / "bin" / "python", no_wheel(error))
    fake(fakes, "apt-cache", APT_CACHE)
    if cc:
        fake(fakes, "cc", "exit 0")
    run = sourced("build_packages -e .", fakes, VENV=str(fakes.parent / "venv"), HEADERS=headers)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == needed
    if needed:
        assert f"PyPI has no wheel of {named} for Python {VERSION} here" in run.stderr


# Wheels of everything; no Python.h (so the dry run is what decides).
ALL_WHEELS = f"""case "$*" in *Python.h*) echo False; exit 0;; esac
{GOOD_PYTHON}"""


def test_with_a_wheel_of_everything_nothing_is_built(fakes: Path) -> None:
    venv_python(fakes.parent / "venv" / "bin" / "python", ALL_WHEELS)
    run = sourced("build_packages -e .", fakes, VENV=str(fakes.parent / "venv"))
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert any("--dry-run --only-binary=:all: -e ." in line for line in log(fakes))


# --- The tests' own servers (testkit): one whose start fails is stopped before the error; a port taken between
# free_port() and the start is tried again on another. ---


def held_port() -> socket.socket:
    """A loopback port something else listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def ports(*first: int) -> Iterator[int]:
    yield from first
    while True:
        yield free_port()


def test_a_redis_server_that_never_answers_is_stopped_before_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(tmp_path, "redis-server", f'echo $$ >"{tmp_path}/pid"; exec sleep 60')
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(RuntimeError, match=r"did not start within 0\.5 s"), redis_server(timeout_s=0.5):
        pass
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):  # stopped, and reaped
        os.kill(pid, 0)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason=INSTALL_HINT)
def test_a_redis_port_taken_before_the_server_binds_it_is_tried_again_on_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with held_port() as taken:
        port = taken.getsockname()[1]
        monkeypatch.setattr(redis_server_module, "free_port", ports(port, port).__next__)
        with redis_server() as server:
            assert server.port != port
            assert server.answers()
        monkeypatch.setattr(redis_server_module, "free_port", ports(*[port] * START_TRIES).__next__)
        with pytest.raises(PortTaken), redis_server():
            pass


@pytest.mark.skipif(shutil.which("redis-server") is None, reason=INSTALL_HINT)
def test_a_redis_port_another_redis_answers_on_is_not_taken_for_this_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another worker's redis-server on the port answers PING while this one fails its bind: it is not this one."""
    with redis_server() as other:
        monkeypatch.setattr(redis_server_module, "free_port", ports(other.port, other.port).__next__)
        with redis_server() as server:
            assert server.port != other.port and server.process is not None and server.process.poll() is None


def test_a_replica_port_another_app_answers_on_is_not_taken_for_this_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another app on the port answers /healthz while this replica fails its bind: the replica returned is its own."""
    other = processes.start_app({})
    try:
        monkeypatch.setattr(processes, "free_port", ports(other.port).__next__)
        app = processes.start_app({})
        try:
            assert app.port != other.port and app.process.poll() is None
        finally:
            app.stop()
    finally:
        other.stop()


def test_a_uvicorn_whose_start_hangs_is_stopped_before_the_error() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await asyncio.Event().wait()  # its startup never returns

    before = set(threading.enumerate())
    with pytest.raises(TimeoutError, match="uvicorn did not start"), serving(app, timeout_s=1):
        pass
    assert [t for t in threading.enumerate() if t not in before] == []


def test_a_replica_whose_port_is_taken_exits_saying_so() -> None:
    with held_port() as taken, pytest.raises(SystemExit) as exited:
        processes.main(["--port", str(taken.getsockname()[1])])
    assert exited.value.code == processes.PORT_TAKEN


def test_a_replica_port_taken_before_it_binds_it_is_tried_again_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    with held_port() as taken:
        port = taken.getsockname()[1]
        monkeypatch.setattr(processes, "free_port", ports(port).__next__)
        app = processes.start_app({})
        try:
            assert app.port != port
            assert httpx.get(app.url + "/healthz").status_code == 200
        finally:
            app.stop()
