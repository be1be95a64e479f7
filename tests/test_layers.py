"""The house's floors: each part of qvi_app imports only from the floors under it (lazy imports
inside functions included), and no module imports itself back through others.

A part is a package (``audio``, ``index``...) or a top-level module (``app``, ``workbench``).
Two parts on one floor import nothing from each other. A new part gets a floor here; an import
this test refuses is a dependency running up, to be turned round (move the shared piece down)."""

from __future__ import annotations

import ast
from pathlib import Path

import qvi_app

FLOORS = (
    ("__init__", "errors", "paths"),
    ("audio", "ranking", "settings", "credits"),
    ("features",),
    ("encoders",),
    ("index",),
    ("data", "feedback"),
    ("app",),
    ("evaluation",),
    ("training", "bench"),
    ("workbench", "audition"),
    ("gui", "cli"),
    ("__main__",),
)
FLOOR = {part: i for i, parts in enumerate(FLOORS) for part in parts}
ROOT = Path(qvi_app.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        name = ".".join(("qvi_app",) + f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def _imports(tree: ast.AST, modules) -> set[str]:
    """The qvi_app modules a module's code imports (``from qvi_app import x``: x when it is one)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qvi_app":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "qvi_app")
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_has_a_floor_and_imports_only_from_below():
    modules = _modules()
    parts = {_part(m) for m in modules}
    assert parts <= set(FLOOR), f"parts without a floor: {sorted(parts - set(FLOOR))}"
    up = []
    for name, path in modules.items():
        here = _part(name)
        for target in _imports(ast.parse(path.read_text(encoding="utf-8")), modules):
            there = _part(target)
            if there != here and FLOOR[there] >= FLOOR[here]:
                up.append(f"{name} imports {target} ({there}: floor {FLOOR[there]}, {here}: floor {FLOOR[here]})")
    assert not up, "imports running up or across a floor:\n" + "\n".join(sorted(up))


def test_no_module_imports_itself_back_at_load_time():
    """Module-level imports only (what runs when a module loads): no cycle between modules."""
    modules = _modules()
    edges = {name: {t for t in _imports(ast.Module(body=[n for n in ast.parse(path.read_text(encoding="utf-8")).body
                                                         if isinstance(n, (ast.Import, ast.ImportFrom))],
                                                   type_ignores=[]), modules) if t in modules and t != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}                      # 1: on the path being walked, 2: done

    def walk(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for nxt in sorted(edges[name]):
            if state.get(nxt) == 1:
                return path + [name, nxt]
            if nxt not in state and (cycle := walk(nxt, path + [name])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(modules):
        if name not in state:
            cycle = walk(name, [])
            assert cycle is None, " -> ".join(cycle)


def test_the_floors_refuse_an_import_running_up(tmp_path):
    """The check itself: a low part importing the window is found."""
    tree = ast.parse("def f():\n    from qvi_app.gui.window import QviWindow\n")
    found = _imports(tree, _modules())
    assert "qvi_app.gui.window" in found and FLOOR[_part("qvi_app.gui.window")] > FLOOR["audio"]
