"""The house stays as built: the import graph of `connector/` (every import, lazy and type-only ones
included) has no circle, `connector/sync` is pure (standard library and other pure connector modules
only), and nothing in `connector/` or `functions/` reaches into `devtools/` or `tests/`."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, wherever the statement stands (top level, function, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _package_graph(package: str) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # `from connector.sync import status` names the module connector.sync.status: keep what exists.
        graph[name] = {target for target in _imports(path) if target in modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def test_connector_has_no_import_circle() -> None:
    assert _cycles(_package_graph("connector")) == []


def test_the_walk_finds_a_circle_when_there_is_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_connector_sync_imports_no_sdk_and_nothing_that_does() -> None:
    """Follow every connector module `connector/sync` reaches: each may import the standard library only."""
    graph = _package_graph("connector")
    paths = {_module_name(p): p for p in (ROOT / "connector").rglob("*.py")}
    reached = [m for m in graph if m.startswith("connector.sync")]
    seen: set[str] = set()
    offenders: dict[str, set[str]] = {}
    while reached:
        module = reached.pop()
        if module in seen:
            continue
        seen.add(module)
        outside = {t for t in _imports(paths[module])
                   if _top(t) not in sys.stdlib_module_names and _top(t) != "connector"}
        if outside:
            offenders[module] = outside
        reached.extend(graph[module])
    assert "connector.sync.status" in seen and "connector.model" in seen
    assert offenders == {}


@pytest.mark.parametrize("package", ["connector", "functions"])
def test_app_code_imports_no_devtools_or_tests(package: str) -> None:
    offenders = {
        _module_name(path): sorted(t for t in _imports(path) if _top(t) in ("devtools", "tests", "bench"))
        for path in (ROOT / package).rglob("*.py")
    }
    assert {m: found for m, found in offenders.items() if found} == {}


def test_connector_does_not_import_functions() -> None:
    offenders = {_module_name(p) for p in (ROOT / "connector").rglob("*.py") if any(
        _top(t) == "functions" for t in _imports(p))}
    assert offenders == set()


def test_bench_imports_nothing_from_tests() -> None:
    offenders = {_module_name(p) for p in (ROOT / "bench").rglob("*.py") if any(_top(t) == "tests" for t in _imports(p))}
    assert offenders == set()
