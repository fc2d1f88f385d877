"""labctl/opu's imports run one way: no cycles between its modules, and no imports hidden in functions."""

import ast
from pathlib import Path

import pytest

OPU_DIR = Path(__file__).resolve().parents[2] / "labctl" / "opu"
MODULES = {
    ".".join(("labctl", *p.relative_to(OPU_DIR.parent.parent / "labctl").with_suffix("").parts)).removesuffix(".__init__"): p
    for p in OPU_DIR.rglob("*.py")
}
#: Imported inside functions on purpose: heavy optional dependencies, only when a caller brings them.
LAZY_ALLOWED = {"torch"}


def _targets(node: ast.AST) -> list[str]:
    """The labctl.opu modules an import statement loads (``from pkg import submodule`` counts)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    if isinstance(node, ast.ImportFrom) and node.module in MODULES:
        subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
        return subs or [node.module]
    return []


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        edges = set()
        for node in tree.body:
            for target in _targets(node):
                parent = target
                while parent != name and parent in MODULES:   # importing a.b.c runs a.b's __init__ first
                    if not name.startswith(parent + "."):
                        edges.add(parent)
                    parent = parent.rpartition(".")[0]
        graph[name] = edges
    return graph


def test_the_package_is_what_the_test_walks():
    assert {"labctl.opu.streaming.engine", "labctl.opu.stationary.engine", "labctl.opu.open"} <= set(MODULES)


def test_no_import_cycle_inside_labctl_opu():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_imports_inside_functions(name):
    tree = ast.parse(MODULES[name].read_text())
    hidden = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    hidden += [a.name for a in node.names if a.name.split(".")[0] not in LAZY_ALLOWED]
                elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] not in LAZY_ALLOWED:
                    hidden.append(node.module)
    assert hidden == [], f"{name} imports {hidden} inside a function"
