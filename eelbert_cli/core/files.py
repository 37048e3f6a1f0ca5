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
import signal
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eelbert_cli.core.errors import EelbertError, remember_run_dir
from eelbert_runtime.export import ExportError
from eelbert_runtime.export import read_json_object as read_checked

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


ASIDE_SUFFIX = ".eelbert-old"


def _aside(path: Path) -> Path:
    """Where a directory being replaced waits until its successor is in place: hidden, so that no
    listing (checkpoints, runs) takes it for a real one."""
    return path.with_name(f".{path.name}{ASIDE_SUFFIX}")


@contextmanager
def deferred_signals() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block take effect at its end, not in the middle:
    for the few renames that must happen together. Python runs signal handlers in the main thread
    only, so elsewhere this defers nothing (and nothing there is interrupted by them either)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)  # e.g. the CLI's: KeyboardInterrupt, now that the block is whole
            elif handler != signal.SIG_IGN:
                signal.raise_signal(received[0])  # the default action, now that the block is whole


def _unstaged(error: BaseException, partial: Path, path: Path) -> None:
    """An error raised while writing the temporary sibling names the target instead: a user never
    sees (nor looks for) a ``.partial`` path that no longer exists."""
    staged, target = str(partial), str(path)
    if isinstance(error, OSError):
        for attribute in ("filename", "filename2"):
            value = getattr(error, attribute, None)
            if isinstance(value, str) and staged in value:
                setattr(error, attribute, value.replace(staged, target))
    if isinstance(error, Exception):
        error.args = tuple(a.replace(staged, target) if isinstance(a, str) else a for a in error.args)


@contextmanager
def replacing(path: Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write (a file, or a directory when ``directory``);
    on success it takes ``path``'s place, on failure it is removed and ``path`` is untouched.

    A file takes its place in one rename. A directory cannot be renamed over a non-empty one, so the
    old directory is renamed aside (a hidden sibling), the new one renamed in, and the old one
    removed last; SIGINT/SIGTERM are held back for those steps, an error between the renames puts
    the old one back, and a process killed outright (SIGKILL) between them is repaired by the next
    ``replacing`` of the same path. At every moment ``path`` is the complete old or the complete new
    version. Only ``path``, its ``.partial`` sibling and its hidden aside sibling are ever deleted."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise ValueError(f"refusing to replace {path}: not a file or directory name")
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    aside = _aside(path)
    if directory and aside.is_dir() and not aside.is_symlink():
        if path.exists() or path.is_symlink():
            _remove(aside)  # the old version of a replace that finished but was stopped while tidying
        else:
            os.rename(aside, path)  # killed between the two renames: the old version comes back
    _remove(partial)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        partial.mkdir()
    try:
        yield partial
    except BaseException as error:
        _remove(partial)
        _unstaged(error, partial, path)
        raise
    try:
        if directory and path.is_dir() and not path.is_symlink():
            with deferred_signals():
                _remove(aside)
                os.rename(path, aside)
                try:
                    os.rename(partial, path)
                except BaseException:
                    os.rename(aside, path)
                    raise
                _remove(aside)
        else:
            os.replace(partial, path)
    except BaseException as error:  # the old version is back in place: the new one is not kept half-named
        _remove(partial)
        _unstaged(error, partial, path)
        raise


LOCK_FILE = ".eelbert.lock"
_HELD_LOCKS: dict[Path, tuple[Any, int]] = {}  # run directory -> (open lock file, depth): reentrant in one process


@contextmanager
def run_directory_lock(run_dir: Path) -> Iterator[None]:
    """One writing process per run directory: a second gets a clear error instead of interleaving
    logs and records with the first. Reentrant within a process (``run`` calls ``pretrain``)."""
    key = Path(run_dir).resolve()
    created = False
    if key in _HELD_LOCKS:
        handle, depth = _HELD_LOCKS[key]
        _HELD_LOCKS[key] = (handle, depth + 1)
    else:
        created = not Path(run_dir).exists()
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
            if created:
                _remove_if_only_lock(Path(run_dir))


def _remove_if_only_lock(run_dir: Path) -> None:
    """A run directory this process created and a failed command left with nothing but the lock file
    is removed: a spec refused before its first record leaves no debris."""
    try:
        if [entry.name for entry in run_dir.iterdir()] == [LOCK_FILE]:
            (run_dir / LOCK_FILE).unlink()
            run_dir.rmdir()
    except OSError:
        pass  # something else appeared or it is already gone: leave it


def read_json_object(path: Path, missing: str) -> dict:
    """A JSON object from ``path``; ``missing`` says what its absence means. Unreadable text, bad
    JSON and a non-object are one EelbertError naming the file (the runtime's reader, whose checks
    a device runs too, with the toolkit's error type)."""
    try:
        return read_checked(path, missing)
    except ExportError as error:
        raise EelbertError(str(error)) from None


def write_atomic(path: Path, text: str) -> None:
    with replacing(path) as partial:
        partial.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any, allow_nan: bool = True) -> None:
    """Indented JSON with a final newline (``allow_nan=False`` refuses NaN: strict JSON for other tools)."""
    write_atomic(path, json.dumps(data, indent=2, allow_nan=allow_nan) + "\n")


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def enclosing_run_dir(path: Path) -> Path | None:
    """The nearest directory at or above ``path`` that a toolkit command has locked as a run
    directory (it holds the run lock's file), or None."""
    for candidate in [Path(path).resolve(), *Path(path).resolve().parents]:
        if (candidate / LOCK_FILE).is_file():
            return candidate
    return None


@contextmanager
def sibling_lock(path: Path) -> Iterator[None]:
    """One process at a time replaces entries of ``path``'s parent directory (a lock on the
    directory itself, nothing written): a second export into the same place waits for the first
    instead of both writing one temporary sibling. Not reentrant: take it once per process."""
    parent = Path(path).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from eelbert_cli.core.console import log

            log.info("waiting for another eelbert process writing in %s", parent)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def check_replaceable_directory(path: Path, option: str, marker: str, owned: set[str], what: str) -> None:
    """``path`` may be replaced as a whole only when it does not exist, is an empty directory, or
    holds what an earlier run of the same command wrote: ``marker`` and otherwise only ``owned``
    names. Anything else (a checkpoint, a run directory, the user's files, a file, a symbolic link)
    is refused with an EelbertError naming it: replacing it would delete what we did not write."""
    path = Path(path)
    if path.is_symlink():
        raise EelbertError(f"{option} {path} is a symbolic link; give the directory itself (nothing was written)")
    if not path.exists():
        return
    if not path.is_dir():
        raise EelbertError(f"{option} {path} is a file, not a directory (nothing was written)")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return
    if LOCK_FILE in entries or not (path / marker).is_file():
        raise EelbertError(
            f"{option} {path} is not empty and holds no earlier {what} (no {marker}); it would be replaced as a whole: "
            "give a new or empty directory (nothing was written)"
        )
    foreign = [name for name in entries if name not in owned and name != marker]
    if foreign:
        raise EelbertError(
            f"{option} {path} holds an earlier {what} but also {foreign[0]!r}, which eelbert did not write there; it would be "
            "deleted with the directory: move it, or give a new or empty directory (nothing was written)"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_output_file(path: Path, option: str, inputs: tuple[Path, ...] = (), model_dirs: tuple[Path, ...] = ()) -> None:
    """An output file the toolkit is about to replace (write a temporary sibling, rename it over):
    refused when it is one of ``inputs`` (by any path: a symbolic link, a hard link, ``./x``), a
    file directly inside one of ``model_dirs`` (a model's own files), a symbolic link (replacing
    would cut the link, not write where it points), a directory, or not a regular file (a device
    such as /dev/null, a FIFO, a socket: replacing would put a plain file in its place)."""
    path = Path(path)
    if path.is_symlink():
        raise EelbertError(f"{option} {path} is a symbolic link; give the file it points to, or a new file (nothing was written)")
    if path.exists():
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise EelbertError(f"{option} {path} is a directory; give a file name (nothing was written)")
        if not stat.S_ISREG(mode):
            raise EelbertError(f"{option} {path} is not a regular file (a device, FIFO or socket); give a file name (nothing was written)")
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise EelbertError(f"{option} {path} is the input file {source}; write the output to another file (nothing was written)")
    for directory in model_dirs:
        if directory is not None and Path(directory).is_dir() and _same_file(path.parent, Path(directory)):
            raise EelbertError(
                f"{option} {path} is inside the model directory {directory}; write the output elsewhere (nothing was written)")
