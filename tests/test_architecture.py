"""The import graph of docs/architecture.md: ltp's layers import one way, app imports only
ltp.core (and the ltp parser), and no package has an import circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ltp", "app", "loadtest")
LAYERS = ("core", "data", "eval", "train", "bench", "cli")  # each imports only those before it
APP_MAY_IMPORT = ("ltp", "ltp.cli", "ltp.cli.parser")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every import between the project's modules, lazy ones (inside functions) included."""
    modules = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return {name: graph[name] for name in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[0] == "ltp" and parts[1] in LAYERS else None


def test_ltp_layers_import_one_way():
    graph = import_graph()
    upward = [f"{a} -> {b}" for a, deps in graph.items() for b in deps
              if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert not upward
    assert not [f"{a} -> {b}" for a, deps in graph.items() if a.startswith("ltp")
                for b in deps if b.startswith("app")]


def test_app_imports_only_the_core():
    graph = import_graph()
    outside = [f"{a} -> {b}" for a, deps in graph.items() if a.startswith("app") for b in deps
               if b.startswith("ltp") and not b.startswith("ltp.core") and b not in APP_MAY_IMPORT]
    assert not outside


def test_the_inference_engine_knows_nothing_of_http():
    """``app/engine`` (the front, the policy, the workers) imports no web framework: the HTTP
    side of a request is ``app.calls``' alone."""
    web = ("fastapi", "starlette", "uvicorn", "httpx")
    found = []
    for path in (ROOT / "app" / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in web]
    assert not found


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_checks_see_a_circle_and_an_upward_import():
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert layer("ltp.core.model") < layer("ltp.train.loop")
    assert layer("app.main") is None
