"""Writing files so that a kill at any moment leaves either the old version or the new one.

Every output of the toolkit (records, results, checkpoints, vocabularies, extracted resources,
plots) goes through :func:`replacing`: write a temporary sibling, then rename it over the target.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eelbert_cli.core.errors import EelbertError, remember_run_dir

PARTIAL_SUFFIX = ".partial"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def check_safe_name(name: str, what: str) -> str:
    """A name that becomes one path component: letters, digits, '.', '_', '-', not starting with
    '.' — so '.', '..' and hidden names can never point a run at its parent or delete outside it."""
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(f"use only letters, digits, '.', '_' and '-', not starting with '.' (it names {what})")
    return name


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
    if path.name in ("", ".", ".."):
        raise ValueError(f"refusing to replace {path}: not a file or directory name")
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


LOCK_FILE = ".eelbert.lock"
_HELD_LOCKS: dict[Path, tuple[Any, int]] = {}  # run directory -> (open lock file, depth): reentrant in one process


@contextmanager
def run_directory_lock(run_dir: Path) -> Iterator[None]:
    """One writing process per run directory: a second gets a clear error instead of interleaving
    logs and records with the first. Reentrant within a process (``run`` calls ``pretrain``)."""
    key = Path(run_dir).resolve()
    if key in _HELD_LOCKS:
        handle, depth = _HELD_LOCKS[key]
        _HELD_LOCKS[key] = (handle, depth + 1)
    else:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        handle = open(Path(run_dir) / LOCK_FILE, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise EelbertError(f"{run_dir} is being written by {holder}; wait for it to finish or use another output_dir") from None
        handle.truncate(0)
        handle.write(f"eelbert process {os.getpid()}\n")
        handle.flush()
        _HELD_LOCKS[key] = (handle, 1)
    try:
        yield
    except EelbertError:
        raise
    except Exception as error:
        remember_run_dir(error, Path(run_dir))  # a bug's traceback is logged in the run directory
        raise
    finally:
        handle, depth = _HELD_LOCKS[key]
        if depth > 1:
            _HELD_LOCKS[key] = (handle, depth - 1)
        else:
            del _HELD_LOCKS[key]
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def read_json_object(path: Path, missing: str) -> dict:
    """A JSON object from ``path``; ``missing`` says what its absence means. Unreadable text, bad
    JSON and a non-object are one EelbertError naming the file."""
    if not path.is_file():
        raise EelbertError(missing)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EelbertError(f"{path} is unreadable ({error})") from None
    if not isinstance(data, dict):
        raise EelbertError(f"{path} should hold a JSON object")
    return data


def write_atomic(path: Path, text: str) -> None:
    with replacing(path) as partial:
        partial.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any, allow_nan: bool = True) -> None:
    """Indented JSON with a final newline (``allow_nan=False`` refuses NaN: strict JSON for other tools)."""
    write_atomic(path, json.dumps(data, indent=2, allow_nan=allow_nan) + "\n")


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
