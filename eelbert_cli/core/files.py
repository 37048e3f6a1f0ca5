"""Writing files so that a kill at any moment leaves either the old version or the new one.

Every output of the toolkit (records, results, checkpoints, vocabularies, extracted resources,
plots) goes through :func:`replacing`: write a temporary sibling, then rename it over the target.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PARTIAL_SUFFIX = ".partial"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def replacing(path: Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write (a file, or a directory when ``directory``);
    on success it takes ``path``'s place in one rename, on failure it is removed and ``path`` is
    untouched. Only ``path`` and its ``.partial`` sibling are ever deleted."""
    path = Path(path)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    _remove(partial)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        partial.mkdir()
    try:
        yield partial
    except BaseException:
        _remove(partial)
        raise
    if directory and path.is_dir():
        shutil.rmtree(path)  # rename cannot replace a non-empty directory
    os.replace(partial, path)


def write_atomic(path: Path, text: str) -> None:
    with replacing(path) as partial:
        partial.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any, allow_nan: bool = True) -> None:
    """Indented JSON with a final newline (``allow_nan=False`` refuses NaN: strict JSON for other tools)."""
    write_atomic(path, json.dumps(data, indent=2, allow_nan=allow_nan) + "\n")


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
