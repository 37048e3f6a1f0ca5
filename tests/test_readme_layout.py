"""README.md's Layout section against the tree as it stands, so the map cannot drift from the code.

The section is a code block of entries: a name column (paths, nested two spaces per level under the
directory above; ``a.py, b.py`` names two) and a description from column 30 on, continued on lines
whose name column is blank. Every named path exists; every room of ``eelbert_cli/core/`` is named;
every module of the package is named, or named by its stem (``tokenization``, ``debian_texts``) in
the description of the nearest directory that is; and no ``x.py`` a description names is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "eelbert_cli"
NAME_COLUMN = 30


@dataclass
class Entry:
    paths: list[Path]  # repository-relative
    description: str


def layout_block() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Layout' section"
    block = re.search(r"^```\n(.*?)^```", section.group(1), flags=re.MULTILINE | re.DOTALL)
    assert block, "README.md's Layout section has no code block"
    return block.group(1).splitlines()


def entries() -> list[Entry]:
    found: list[Entry] = []
    parents: list[Path] = []  # the directory entry at each depth
    for line in layout_block():
        name, description = line[:NAME_COLUMN].rstrip(), line[NAME_COLUMN:].strip()
        if not name.strip():
            assert found, f"a continuation line before any entry: {line!r}"
            found[-1].description += " " + description
            continue
        depth = (len(name) - len(name.lstrip())) // 2
        assert depth <= len(parents), f"{line!r} is indented deeper than the directory above it"
        parents = parents[:depth]
        base = parents[-1] if parents else Path()
        paths = [base / part.strip() for part in name.strip().split(",")]
        found.append(Entry(paths, description))
        if name.strip().endswith("/"):
            parents.append(paths[0])
    return found


ENTRIES = entries()
NAMED = {path for entry in ENTRIES for path in entry.paths}


def nearest_named_directory(path: Path) -> Entry | None:
    for parent in path.parents:
        for entry in ENTRIES:
            if parent in entry.paths and str(parent) != ".":
                return entry
    return None


def package_modules() -> list[Path]:
    return sorted(p.relative_to(REPO) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" and "__pycache__" not in p.parts)


def test_the_layout_parses_into_entries():
    assert len(ENTRIES) > 20 and Path("eelbert_cli/core") in NAMED


@pytest.mark.parametrize("path", sorted(NAMED), ids=str)
def test_every_named_path_exists(path):
    assert (REPO / path).exists(), f"README.md's Layout names {path}, which does not exist"


def test_every_room_of_the_core_is_named():
    rooms = sorted(p.relative_to(REPO) for p in (PACKAGE / "core").iterdir() if p.is_dir() and p.name != "__pycache__")
    missing = [str(room) for room in rooms if room not in NAMED]
    assert not missing, f"README.md's Layout does not name these rooms: {missing}"


def test_every_module_is_named_or_described():
    missing = []
    for module in package_modules():
        if module in NAMED:
            continue
        entry = nearest_named_directory(module)
        words = re.compile(rf"(?<![\w.]){re.escape(module.stem)}(?:\.py)?(?!\w)")
        if entry is None or not words.search(entry.description):
            missing.append(f"{module} (under {entry.paths[0] if entry else 'nothing named'})")
    assert not missing, "README.md's Layout does not mention these modules:\n  " + "\n  ".join(missing)


def test_no_description_names_a_missing_module():
    stale = []
    for entry in ENTRIES:
        directory = entry.paths[0]
        if not (REPO / directory).is_dir():
            continue
        for name in re.findall(r"(?<![\w/.])(\w+\.py)\b", entry.description):
            if not any((REPO / directory).rglob(name)):
                stale.append(f"{name} (in {directory})")
    assert not stale, f"README.md's Layout describes modules that do not exist: {stale}"
