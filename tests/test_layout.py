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


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def server_imports() -> dict[str, set[str]]:
    """Each server module's imports of other server modules (a module imported from a package counts as the
    package's submodule when one of that name exists)."""
    modules = {module_name(p): p for p in SERVER.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.module in modules:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
        graph[name] = found - {name}
    return graph


def test_product_code_never_imports_the_fakes() -> None:
    for name, imported in sorted(server_imports().items()):
        if name.startswith("server.emulators"):
            continue
        fakes = sorted(m for m in imported if m == "server.emulators" or m.startswith("server.emulators."))
        assert not fakes, f"{name} imports {fakes}: the product must not lean on its fakes"


def test_the_engine_and_protocols_stand_below_the_app() -> None:
    """The engine and the pure protocols are building blocks: they import neither providers nor the app."""
    for name, imported in sorted(server_imports().items()):
        if name.startswith(("server.engine", "server.protocols")):
            above = sorted(m for m in imported if m.startswith(("server.providers", "server.app", "server.sessions")))
            assert not above, f"{name} imports {above}"


def test_no_import_cycles_between_server_modules() -> None:
    edges = server_imports()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_benchmarks_and_the_testkit_never_import_the_tests() -> None:
    root = SERVER.parent
    for folder in ("bench", "testkit"):
        for path in sorted((root / folder).rglob("*.py")):
            leaked = [m for m in imported_modules(path) if m == "tests" or m.startswith("tests.")]
            assert not leaked, f"{path.relative_to(root)} imports {leaked}"


def test_test_only_helpers_are_not_shipped() -> None:
    for path in sorted(SERVER.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "PcmSink" not in text and "/api/test/" not in text, path.relative_to(SERVER)


# The server's layers, bottom first: a module imports only from its own layer's package or from layers below.
# The transcript values at the bottom; the engine and the pure protocols on them (neither knows the other, nor any
# socket); the settings; what serves sockets and keeps state; then the providers; then the generic modules. Two
# packages of one layer never import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("server.transcript",),
    ("server.engine", "server.protocols"),
    ("server.settings", "server.errors"),
    ("server.metrics", "server.upstream", "server.state", "server.security", "server.transport", "server.wire"),
    # Ends and undos kept while the shared state fails: the sessions' and the local provider's.
    ("server.pending_ends",),
    ("server.providers",),
    ("server.sessions", "server.openapi"),
    # Shared captions build on the sessions' request guards (own page, body limits, the state).
    ("server.captions",),
    ("server.app",),
    ("server.__main__",),
)


def layer_of(module: str) -> tuple[int, str]:
    for rank, packages in enumerate(LAYERS):
        for package in packages:
            if module == package or module.startswith(package + "."):
                return rank, package
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_no_package_imports_one_above_it() -> None:
    for name, imported in sorted(server_imports().items()):
        if name in ("server", "server.emulators") or name.startswith("server.emulators."):
            continue
        rank, package = layer_of(name)
        for dep in sorted(imported):
            if dep == "server" or dep.startswith("server.emulators"):
                continue
            dep_rank, dep_package = layer_of(dep)
            assert dep_rank < rank or dep_package == package, f"{name} (layer {rank}) imports {dep} (layer {dep_rank})"


def test_the_engine_and_protocols_know_no_web_framework() -> None:
    for path in sorted(
        [*(SERVER / "engine").glob("*.py"), *(SERVER / "protocols").glob("*.py"), SERVER / "transcript.py"]
    ):
        web = sorted(m for m in imported_modules(path) if m.split(".")[0] in {"starlette", "uvicorn", "httpx"})
        assert not web, f"{path.relative_to(SERVER)} imports {web}"


def test_test_only_references_are_not_shipped() -> None:
    """The DSP reference is a test oracle (tests/golden, the capture checks): it lives in testkit, not the package."""
    assert not (SERVER / "audio.py").exists()
