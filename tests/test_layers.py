"""The package's layers import one way: engine <- checks, render, remote <- web, cli <- extension.

Read from the source (nothing is imported), every import counted wherever it stands
(inside functions too: they close cycles at run time), except those under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "flask_prodready"
NAME = "flask_prodready"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of ``body``, leaving out the blocks under ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _statements(node.orelse)
            continue
        yield node
        for child in ast.iter_child_nodes(node):
            yield from _statements([child]) if isinstance(child, ast.stmt) else _walk(child)


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _walk(child)


def imports_of(module: str) -> set[str]:
    """The modules of the package that ``module`` imports (the most specific one named)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _statements(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            named = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(
                    parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else [])
                )
            else:
                base = node.module or ""
            named = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in named:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def test_no_import_cycle() -> None:
    """No module of flask_prodready reaches itself through its imports."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("engine", {"engine", "_version"}),
        ("render", {"engine", "render", "_version"}),
        ("remote", {"engine", "remote", "_version"}),
        ("checks", {"engine", "checks"}),
        ("web", {"engine", "render", "web"}),
        ("cli", {"engine", "render", "remote", "checks", "cli"}),
        ("pytest_plugin", {"engine", "pytest_plugin"}),
    ],
)
def test_layers_import_one_way(layer: str, allowed: set[str]) -> None:
    """The engine knows no front end; renderers, the remote client and the checks know the
    engine only; the web front end knows the engine and the renderers; the command line
    knows everything but the extension."""
    wrong = {
        module: sorted(t for t in targets if _layer(t) not in allowed)
        for module, targets in GRAPH.items()
        if _layer(module) == layer
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_nothing_imports_the_extension_back() -> None:
    """extension.py is the composition root: no module imports it; the package's __init__
    names it for ``from flask_prodready import ProdReady``, loaded on first use."""
    importers = {m for m, targets in GRAPH.items() if f"{NAME}.extension" in targets}
    assert importers == set()
    package = importlib.import_module(NAME)
    assert package._PUBLIC["ProdReady"] == ".extension"
    assert package.ProdReady is importlib.import_module(f"{NAME}.extension").ProdReady


def test_importing_the_package_loads_no_flask() -> None:
    """``import flask_prodready`` alone (as pytest does for the plugin) imports neither
    Flask nor the engine: the public names load on first use."""
    code = (
        "import sys, flask_prodready; "
        "print(sorted(m for m in ('flask', 'flask_prodready.engine', 'flask_prodready.extension') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "[]\n"


def test_check_modules_are_imported_only_by_checks() -> None:
    """Outside flask_prodready/checks/, no module names a check module: only the place that
    lists the built-in checks (flask_prodready.checks itself) is imported."""
    named = {
        module: sorted(t for t in targets if t.startswith(f"{NAME}.checks."))
        for module, targets in GRAPH.items()
        if not module.startswith(f"{NAME}.checks")
    }
    assert {m: t for m, t in named.items() if t} == {}


def test_the_remote_client_and_the_renderers_know_no_click_command() -> None:
    """The remote client fetches and parses: no click; the engine has no click either."""
    for module, path in MODULES.items():
        if _layer(module) in {"remote", "engine"}:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {
                alias.name.split(".")[0]
                for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in (
                    node.names
                    if isinstance(node, ast.Import)
                    else [ast.alias(name=node.module or "")]
                )
            }
            assert "click" not in names, module
