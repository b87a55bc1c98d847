"""The layer order of docs/architecture.md, enforced: every import (function-level ones included) goes
down the order, no import cycle exists, and every function-level import says why it is one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgetune"
DOC = ROOT / "docs" / "architecture.md"


def _layer_order() -> list[list[str]]:
    """The order as docs/architecture.md writes it: `a < {b, c} < d`; braces group independent layers."""
    text = DOC.read_text()
    m = re.search(r"^## Layer order\n.*?```\n(.+?)\n```", text, re.S | re.M)
    assert m, "docs/architecture.md must state the layer order in a code block under '## Layer order'"
    order = " ".join(m.group(1).split())
    return [[name.strip() for name in group.strip(" {}").split(",")] for group in order.split("<")]


LAYERS = _layer_order()
RANK = {name: i for i, group in enumerate(LAYERS) for name in group}


def layer_of(module: str) -> str:
    """edgetune.kernels.registry -> kernels; edgetune.errors -> errors; edgetune -> (root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[str, int, bool]]:
    """(imported edgetune module, line, inside a function) for every import of edgetune in the file."""
    tree = ast.parse(path.read_text())
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                out.append((target if _is_module(target, root) else node.module, node.lineno, id(node) in inside))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in inside) for a in node.names]
    return [(m, line, lazy) for m, line, lazy in out if m == "edgetune" or m.startswith("edgetune.")]


def _is_module(name: str, root: Path) -> bool:
    rel = Path(*name.split("."))
    return (root / rel).with_suffix(".py").exists() or (root / rel / "__init__.py").exists()


def _files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def upward_imports(files: list[Path], root: Path = ROOT) -> list[str]:
    """Every import from a lower layer to a higher one, or across independent layers of one rank."""
    bad = []
    for path in files:
        src = module_name(path, root)
        for target, line, _ in _imports(path, root):
            a, b = layer_of(src), layer_of(target)
            if a == b or b in ("(root)", "__init__"):
                continue
            if a not in RANK or b not in RANK:
                bad.append(f"{path.relative_to(root)}:{line}: {src} or {target} is in no layer of the order")
            elif RANK[b] >= RANK[a]:
                bad.append(f"{path.relative_to(root)}:{line}: {src} ({a}) imports {target} ({b}), "
                           f"which is not below it")
    return bad


def import_cycles(files: list[Path], root: Path = ROOT) -> list[list[str]]:
    """Strongly connected sets of modules (Tarjan) over every import, function-level ones included."""
    graph: dict[str, set[str]] = {module_name(p, root): set() for p in files}
    for p in files:
        me = module_name(p, root)
        graph[me].update(t for t, _, _ in _imports(p, root) if t in graph and t != me)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def unexplained_lazy_imports(files: list[Path]) -> list[str]:
    """Function-level imports (of anything) without a comment saying why: on their line, or above the block
    of consecutive imports they belong to."""
    bad = []
    for path in files:
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and not _explained(lines, node.lineno - 1):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(set(bad))


def _explained(lines: list[str], i: int) -> bool:
    """Line i carries a comment, or the lines above it up to a comment are all imports."""
    if "#" in lines[i]:
        return True
    for above in reversed(lines[:i]):
        text = above.strip()
        if text.startswith("#") or (text.startswith(("import ", "from ")) and "#" in text):
            return True
        if not text.startswith(("import ", "from ")):
            return False
    return False


def test_the_order_names_every_package() -> None:
    """Every folder and top-level module of edgetune is in the written order (new ones must be placed)."""
    names = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__",)}
    assert sorted(names - set(RANK)) == []


def test_no_upward_import() -> None:
    assert upward_imports(_files()) == []


def test_no_import_cycle() -> None:
    assert import_cycles(_files()) == []


def test_function_level_imports_say_why() -> None:
    assert unexplained_lazy_imports(_files()) == []


def test_search_depends_on_errors_only() -> None:
    """The search package is pure: tested on synthetic spaces, usable without any kernel library."""
    targets = {layer_of(t) for p in (PACKAGE / "search").rglob("*.py") for t, _, _ in _imports(p)}
    assert targets <= {"search", "errors"}


@pytest.mark.parametrize("lower, upper, name", [
    ("graph/ir.py", "edgetune.runtime.executor", "a graph module reaching up to the executor"),
    ("kernels/registry.py", "edgetune.commands.run", "the registry reaching up to a command"),
    ("search/space.py", "edgetune.kernels.registry", "the pure search reaching into the kernels"),
])
def test_an_upward_import_is_caught(tmp_path: Path, lower: str, upper: str, name: str) -> None:
    """The check itself works: a copy of a module with one upward import added (at function level,
    where cycles used to hide) is reported with its file, line and both layers."""
    src = PACKAGE / lower
    fake = tmp_path / "edgetune" / lower
    fake.parent.mkdir(parents=True)
    fake.write_text(src.read_text() + f"\n\ndef _sneaky():\n    import {upper}  # a test's deliberate upward import\n")
    bad = upward_imports([fake], tmp_path)
    assert any(upper in b and "not below it" in b for b in bad), name


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    pkg = tmp_path / "edgetune" / "graph"
    pkg.mkdir(parents=True)
    (tmp_path / "edgetune" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from edgetune.graph import b\n")
    (pkg / "b.py").write_text("def f():\n    from edgetune.graph import a  # deliberate\n")
    cycles = import_cycles(sorted((tmp_path / "edgetune").rglob("*.py")), tmp_path)
    assert cycles == [["edgetune.graph.a", "edgetune.graph.b"]]
