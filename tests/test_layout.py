"""Rules of the layout that keep the fakes honest and the app configurable."""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "server"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_emulators_are_written_from_the_specs_not_from_the_clients() -> None:
    for path in sorted((SERVER / "emulators").glob("*.py")):
        leaked = [m for m in imported_modules(path) if m == "server.providers" or m.startswith("server.providers.")]
        assert not leaked, f"{path.name} imports {leaked}"


def test_nothing_reads_the_environment_outside_the_entry_point() -> None:
    for path in sorted(SERVER.rglob("*.py")):
        if path.name == "__main__.py" and path.parent == SERVER:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        reads = [
            node.lineno
            for node in ast.walk(tree)
            if (isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"})
            or (isinstance(node, ast.Name) and node.id in {"environ", "getenv"})
        ]
        assert not reads, f"{path.relative_to(SERVER)} reads the environment at lines {reads}"
