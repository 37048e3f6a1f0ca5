"""The two kinds of failure and how each reaches the user.

An :class:`EelbertError` is the user's to fix (a spec, a file, data, a damaged checkpoint): its
message names the thing and the CLI exits 2. Any other exception is a bug of ours: the CLI says so
in one line, asks for a report, exits 1 and keeps the traceback in a log file
(:func:`write_internal_error_log`) rather than blaming the user's input.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

RUN_DIR_ATTRIBUTE = "eelbert_run_dir"


class EelbertError(Exception):
    """A problem with the user's input (spec, file, data, checkpoint) rather than a bug."""


def remember_run_dir(error: BaseException, run_dir: Path) -> None:
    """Tag an unexpected error with the run directory it escaped from (the innermost one), so its
    log goes where the user looks for the run's records."""
    if not hasattr(error, RUN_DIR_ATTRIBUTE):
        try:
            setattr(error, RUN_DIR_ATTRIBUTE, Path(run_dir))
        except AttributeError:  # an exception type with __slots__: the cache directory will do
            pass


def _log_directories(error: BaseException, fallback: Path | None) -> list[Path]:
    """Where an internal-error log may go, best first: the run directory, ``fallback``, the temp dir."""
    run_dir = getattr(error, RUN_DIR_ATTRIBUTE, None)
    return [*(d for d in (run_dir, fallback) if d is not None), Path(tempfile.gettempdir())]


def write_internal_error_log(error: BaseException, fallback: Path | None = None) -> Path | None:
    """The traceback, command line and versions in a new log file; its path, or None if no place
    to write one was found (a full disk). It goes to the run directory the error escaped from, else
    ``fallback`` (the CLI passes the cache's ``logs/``), else the temp directory."""
    from eelbert_cli import __version__

    name = f"eelbert-internal-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    text = (
        f"eelbert {__version__} internal error\n"
        f"command: {' '.join(sys.argv)}\n"
        f"python: {sys.version.split()[0]} on {sys.platform}\n"
        f"time: {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n\n"
        + "".join(traceback.format_exception(error))
    )
    for directory in _log_directories(error, fallback):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def internal_error_line(error: BaseException, log_path: Path | None) -> str:
    """One line: what broke (type and the start of its message), that it is our bug, where the log is."""
    summary = " ".join(f"{type(error).__name__}: {error}".split())
    summary = summary if len(summary) <= 200 else summary[:197] + "..."
    where = f"with the traceback in {log_path}" if log_path is not None else "(no log file could be written)"
    return f"internal error: {summary}. This is a bug in eelbert, not in your input; please report it {where}"
