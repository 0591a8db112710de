"""scripts/setup.sh's check that apt can install Debian's browsers, against an `apt-cache` that answers as Debian's
does: the candidate first, then a long version table."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

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
