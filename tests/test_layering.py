"""The architecture, as arrows between layers and rooms, checked on every import of every module.

Layers: ``contract`` (what all share) <- ``workers`` (compute) <- ``orchestrator`` (plans, runs,
stores) and ``analysis`` (reads datasets) <- ``rgsweep`` (the Python API over both); ``benchmarks``
beside them. Every ``import`` and
``from ... import`` statement is parsed (AST), at module level and inside functions alike.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("contract", "workers", "orchestrator", "analysis", "benchmarks", "rgsweep")
#: The rooms of ``workers`` and the rooms each may import (besides ``contract``).
WORKER_ROOMS = {
    "exact": set(),
    "ising": set(),
    "rbm": {"ising"},                                  # the kernels' random streams
    "measures": {"exact", "ising", "rbm"},
    "rg": {"ising", "measures", "rbm"},
    "tasks": {"exact", "ising", "rbm", "measures", "rg"},
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], bool]]:
    """(imported module, names taken from it, at module level?) for every import statement."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [alias.name for alias in node.names]
            # "from workers.rbm import kernels" imports the module workers.rbm.kernels
            if all(f"{base}.{n}" in MODULES for n in names):
                out += [(f"{base}.{n}", [], id(node) in top_level) for n in names]
            else:
                out.append((base, names, id(node) in top_level))
    return out


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _top(module: str) -> str:
    return module.split(".")[0]


def _offenders(layer: str, rule) -> list[str]:
    return sorted(f"{name} imports {target}" for name, found in IMPORTS.items()
                  if _top(name) == layer for target, _, level in found if rule(target, level, name))


def test_contract_imports_no_other_layer_and_no_numba_or_ray():
    assert _offenders("contract", lambda t, lvl, n: _top(t) in OURS[1:] + ("numba", "ray", "llvmlite")) == []


def test_orchestrator_never_imports_numba_or_kernels_and_runs_tasks_only_through_the_entry_points():
    bad = _offenders("orchestrator", lambda t, lvl, n: _top(t) in ("numba", "llvmlite", "torch", "sklearn")
                     or (_top(t) == "workers" and (t != "workers.tasks" or lvl))
                     or (_top(t) == "benchmarks" and lvl)
                     or (_top(t) == "ray" and n != "orchestrator.backends"))
    assert bad == []


def test_workers_never_import_ray_other_layers_or_file_apis():
    files = ("ray", "orchestrator", "analysis", "benchmarks", "pathlib", "shutil", "tempfile", "pyarrow",
             "os", "io")
    assert _offenders("workers", lambda t, lvl, n: _top(t) in files) == []
    opens = [name for name, path in MODULES.items() if _top(name) == "workers"
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"]
    assert opens == []


def test_analysis_imports_only_the_contract_and_the_exact_references():
    assert _offenders("analysis", lambda t, lvl, n: _top(t) in ("ray", "numba", "llvmlite", "orchestrator",
                                                               "benchmarks")
                      or (_top(t) == "workers" and not (t == "workers.exact" or t.startswith("workers.exact.")))) == []


def test_the_python_api_is_a_facade_over_orchestrator_and_analysis():
    allowed = {"rgsweep", "orchestrator", "analysis", "contract"}
    assert not _offenders("rgsweep", lambda t, level, name: _top(t) in OURS and _top(t) not in allowed)


def test_worker_rooms_import_only_the_rooms_below_them():
    bad = []
    for name, found in IMPORTS.items():
        if not name.startswith("workers."):
            continue
        room = name.split(".")[1]
        for target, _, _ in found:
            if target.startswith("workers.") and target.split(".")[1] != room \
                    and target.split(".")[1] not in WORKER_ROOMS[room]:
                bad.append(f"{name} imports {target}")
    assert sorted({m.split(".")[1] for m in MODULES if m.startswith("workers.")}) == sorted(WORKER_ROOMS)
    assert bad == []


def test_no_import_cycles():
    graph = defaultdict(set)
    for name, found in IMPORTS.items():
        for target, _, _ in found:
            while target and target not in MODULES:  # "from a.b import name": the module a.b
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(MODULES):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def _module_aliases(name: str, path: Path) -> set[str]:
    """Names that stand for one of our modules inside ``name`` (``from workers.rbm import kernels
    as K`` binds K; ``from . import exact_reference as exact`` binds exact)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    aliases = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            aliases |= {a.asname or a.name for a in node.names if f"{base}.{a.name}" in MODULES}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.asname and a.name in MODULES}
    return aliases


def test_no_private_names_cross_modules():
    bad = [f"{name}: from {target} import {n}" for name, found in IMPORTS.items()
           for target, names, _ in found if _top(target) in OURS for n in names
           if n.startswith("_") and not n.startswith("__")]
    for name, path in MODULES.items():
        aliases = _module_aliases(name, path)
        bad += [f"{name}: {node.value.id}.{node.attr}" for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert bad == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_what_it_is_and_stays_readable(name):
    path = MODULES[name]
    text = path.read_text()
    assert ast.get_docstring(ast.parse(text)), f"{path} has no docstring"
    assert len(text.splitlines()) <= MAX_LINES, f"{path} has {len(text.splitlines())} lines"


def test_importing_the_driver_and_the_analysis_loads_no_numba_ray_or_kernels():
    code = ("import sys, rgsweep, orchestrator.cli, orchestrator.runner, orchestrator.backends, analysis, benchmarks; "
            "bad = [m for m in sys.modules if m in ('numba', 'ray') or "
            "(m.startswith('workers.') and not m.startswith('workers.exact'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_is_installed():
    """A non-editable install ships every package folder (a room missing from the wheel would
    pass the tests, which run from the checkout, and break ``rgsweep`` for a user)."""
    import fnmatch
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {".".join(p.parent.relative_to(ROOT).parts) for top in OURS for p in (ROOT / top).rglob("__init__.py")}
    assert packages and all(any(fnmatch.fnmatch(p, pattern) for pattern in include) for p in packages)
    assert not any(fnmatch.fnmatch("tests", pattern) for pattern in include)
