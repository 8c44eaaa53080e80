"""The house as the README's Architecture section draws it: rooms by concern, no cycles.

Read from the package's own imports (``ast``), so a new module that breaks a rule fails here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runbook_lib"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every runbook_lib module ``path`` imports, at any depth (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("runbook_lib"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("runbook_lib"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {target for target in _imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else module


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return trail[trail.index(target) :] + [target]
            if state.get(target) is None and (found := visit(target)):
                return found
        state[node] = 2
        trail.pop()
        return None

    for node in sorted(graph):
        if state.get(node) is None and (found := visit(node)):
            return found
    return None


def test_the_import_graph_of_runbook_lib_has_no_cycle():
    graph = {
        name: {
            t
            for t in targets
            if not (PACKAGE / "__init__.py").samefile(PACKAGE / "__init__.py") or t
        }
        for name, targets in _graph().items()
    }
    # a package's __init__ is not a dependency of its modules
    graph = {
        name: {t for t in targets if t != name.rpartition(".")[0]}
        for name, targets in graph.items()
    }
    assert _cycle(graph) is None


def test_the_rooms_have_no_cycle_either():
    rooms: dict[str, set[str]] = {}
    for name, targets in _graph().items():
        rooms.setdefault(_room(name), set()).update(
            _room(t) for t in targets if _room(t) != _room(name)
        )
    assert _cycle(rooms) is None, rooms


def test_at_most_six_modules_at_the_top_and_the_rest_in_subpackages():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
    assert not any(path.name == "mapped.py" for path in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize(
    ("library", "allowed"), [("scrapbook", "evidence/scraps.py"), ("papermill", "run/runner.py")]
)
def test_one_module_imports_each_notebook_library(library, allowed):
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(
            (isinstance(n, ast.Import) and any(a.name.split(".")[0] == library for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == library)
            for n in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert importers == [allowed]


def test_importing_runbook_lib_loads_no_demo_module():
    code = (
        "import sys, runbook_lib, runbook_lib.cli, runbook_lib.run.stages, runbook_lib.ui.widgets\n"
        "print([m for m in sys.modules if m.startswith('runbook_demo')])"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_only_the_demo_command_and_the_tests_import_the_demo():
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(
            isinstance(n, ast.ImportFrom) and (n.module or "").startswith("runbook_demo")
            for n in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert importers == ["cli.py"]


def test_every_exception_class_lives_in_errors():
    defined = sorted(
        f"{path.relative_to(PACKAGE)}:{node.name}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(
            getattr(base, "id", getattr(base, "attr", "")).endswith(("Error", "Exception"))
            for base in node.bases
        )
    )
    assert defined == []
