"""The package's rooms stand in the order ``eelbert_cli/core/__init__.py`` states, read from the
code's own imports: no module imports a room above its own, and no imports run in a circle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import eelbert_cli.core

PACKAGE = Path(eelbert_cli.__file__).parent
ROOT = "eelbert_cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def stated_rooms() -> list[str]:
    """The rooms of the core's docstring, ground first (``model/`` -> ``model``, ``spec.py`` -> ``spec``)."""
    rooms = re.findall(r"^    (\w+)(?:/|\.py)\s", eelbert_cli.core.__doc__, flags=re.MULTILINE)
    assert rooms, "eelbert_cli/core/__init__.py states no rooms"
    return rooms


def room_rank(module: str, rooms: list[str]) -> int:
    """The package face and the core's face stand on the ground; ``cli`` over everything, and
    ``__main__`` (``python -m eelbert_cli``) over ``cli``."""
    if module in (ROOT, f"{ROOT}.core"):
        return -1
    if module == f"{ROOT}.cli":
        return len(rooms)
    if module == f"{ROOT}.__main__":
        return len(rooms) + 1
    room = module.removeprefix(f"{ROOT}.core.").split(".")[0]
    assert room in rooms, f"{module} lives in no room that eelbert_cli/core/__init__.py states"
    return rooms.index(room)


def imports_of(module: str) -> set[str]:
    """Every package module ``module`` imports, at the top or inside a function (lazy imports count)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_room_is_stated_and_exists():
    rooms = stated_rooms()
    assert len(rooms) == len(set(rooms))
    for room in rooms:
        assert (PACKAGE / "core" / room).is_dir() or (PACKAGE / "core" / f"{room}.py").is_file(), room
    for module in MODULES:
        room_rank(module, rooms)


def test_no_import_runs_up_a_room():
    rooms = stated_rooms()
    upward = [
        f"{module} ({rooms[room_rank(module, rooms)] if 0 <= room_rank(module, rooms) < len(rooms) else 'top'}) imports {target}"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if room_rank(target, rooms) > room_rank(module, rooms)
    ]
    assert upward == []


def test_no_import_circle():
    """Tarjan's strongly connected components: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert circles == []


def test_the_reader_sees_imports():
    """A guard on the test itself: it finds known arrows, lazy ones included."""
    assert f"{ROOT}.core.targets" in GRAPH[f"{ROOT}.core.finetuning.run"]
    assert f"{ROOT}.core.finetuning.stages" in GRAPH[f"{ROOT}.cli"]  # imported inside the command
    assert room_rank(f"{ROOT}.core.scoring.metrics", stated_rooms()) < room_rank(f"{ROOT}.core.training.pretrain", stated_rooms())
