"""The shape of the package: no import cycles, dagster only where it belongs, no private names across modules."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dbops"
DAGSTER_HOMES = ("dbops.orchestration", "dbops.definitions")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    names: tuple[str, ...]
    lazy: bool  # inside a function


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def edges() -> list[Edge]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        lazy_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
        for node in ast.walk(tree):
            lazy = id(node) in lazy_nodes
            if isinstance(node, ast.Import):
                found += [Edge(module, alias.name, (), lazy) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = resolve(module, node, path.name == "__init__.py")
                found.append(Edge(module, target, tuple(a.name for a in node.names), lazy))
    return found


def modules() -> set[str]:
    return {module_name(p) for p in PACKAGE.rglob("*.py")}


def internal_graph() -> dict[str, set[str]]:
    """Module → the dbops modules importing it runs (a package's __init__ runs before its modules)."""
    known = modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for edge in edges():
        targets = {edge.target} | {f"{edge.target}.{n}" for n in edge.names}
        for target in targets & known:
            parts = target.split(".")
            for i in range(2, len(parts) + 1):  # dbops/__init__ is empty: skip it
                parent = ".".join(parts[:i])
                if parent in known and parent != edge.source and not edge.source.startswith(parent + "."):
                    graph[edge.source].add(parent)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_lazy_imports_and_package_inits():
    graph = internal_graph()
    assert "dbops.orchestration.launch" in graph["dbops.cli"]  # imported inside a function
    assert "dbops.targets" in graph["dbops.engine.engine"] or "dbops.targets" in graph["dbops.engine.history"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles():
    assert find_cycle(internal_graph()) is None


def test_only_orchestration_imports_dagster():
    offenders = [
        f"{e.source} imports {e.target}"
        for e in edges()
        if e.target.split(".")[0].startswith("dagster") and not e.source.startswith(DAGSTER_HOMES)
    ]
    assert offenders == []


def test_the_core_reaches_orchestration_only_through_the_lazy_launcher_in_cli():
    reaching = [
        (e.source, e.target, e.lazy)
        for e in edges()
        if e.target.startswith("dbops.orchestration") and not e.source.startswith(DAGSTER_HOMES)
    ]
    assert reaching and all(source == "dbops.cli" and lazy for source, _, lazy in reaching), reaching


def test_no_module_imports_another_modules_private_names():
    offenders = [
        f"{e.source}: from {e.target} import {name}"
        for e in edges()
        if e.target.startswith("dbops") and e.target != e.source
        for name in e.names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert offenders == []


@pytest.mark.parametrize("folder", ["engine", "scripts", "lint", "targets", "orchestration"])
def test_each_folder_is_a_package_with_a_docstring(folder):
    init = PACKAGE / folder / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text())), f"{init} says what the folder holds"


def test_dbops_uses_only_public_dagster_modules():
    private = [f"{e.source} imports {e.target}" for e in edges() if e.target.startswith("dagster") and "._" in f".{e.target}"]
    assert private == []
