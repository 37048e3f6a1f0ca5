"""What the toolkit tells its user while it works: stdlib ``logging`` for messages, rich for progress.

Library code logs to the ``eelbert`` logger and draws progress through :class:`Progress`; the CLI
calls :func:`configure_logging` once. Under ``torchrun`` only rank 0 speaks: every rank runs the
same code, and one voice is enough.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType

log = logging.getLogger("eelbert")
PLAIN_LINE_SECONDS = 30.0  # how often a progress line is printed where there is no terminal


def process_rank() -> int:
    """This process's rank under torchrun (0 without it)."""
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return process_rank() == 0


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners and CliRunner swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _MainRankOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return is_main_process() or record.levelno >= logging.ERROR


_WARNED: set[str] = set()  # warnings already given in this command


def warn_once(message: str) -> None:
    """A warning given once per command however often its code path runs (fine-tuning builds its
    starting model for every config and seed, and once more to save the selected one)."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def configure_logging(level: int = logging.INFO) -> None:
    """``eelbert: message`` lines on stderr, rank 0 only (errors from any rank); a new command's
    warnings are given afresh."""
    _WARNED.clear()
    if not any(isinstance(handler, _StderrHandler) for handler in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("eelbert: %(message)s"))
        handler.addFilter(_MainRankOnly())
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


class ProgressTask:
    """One bar: ``advance`` for counted work, ``update`` to set the position and a status text."""

    def __init__(self, owner: Progress, handle: int, description: str) -> None:
        self._owner, self._handle, self.description = owner, handle, description
        self._last_line = time.perf_counter()

    def update(self, completed: float, status: str = "") -> None:
        self._owner.bar.update(self._handle, completed=completed, status=status)
        self._plain_line(status)

    def advance(self, amount: float = 1.0) -> None:
        self._owner.bar.advance(self._handle, amount)

    def _plain_line(self, status: str) -> None:
        if self._owner.plain_lines and status and time.perf_counter() - self._last_line > PLAIN_LINE_SECONDS:
            print(f"{self.description} {status}", flush=True)
            self._last_line = time.perf_counter()


class Progress:
    """Rich progress bars on a terminal; on a log file or CI, a plain line now and then instead.

    Disabled (silent) off the main rank or when ``enabled`` is false.
    """

    def __init__(self, enabled: bool = True, transient: bool = False) -> None:
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.enabled = enabled and is_main_process()
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}", markup=True),
            BarColumn(),
            TextColumn("{task.fields[status]}", markup=False),
            TimeRemainingColumn(),
            disable=not self.enabled,
            transient=transient,
        )
        self.plain_lines = self.enabled and not self.bar.console.is_terminal

    def task(self, description: str, total: float, completed: float = 0.0, announce: str | None = None) -> ProgressTask:
        """A new bar; ``announce`` is printed as a plain line where there is no terminal."""
        from rich.markup import escape

        if self.plain_lines and announce:
            print(f"{description}: {announce}", flush=True)
        handle = self.bar.add_task(escape(description), total=total, completed=completed, status="")
        return ProgressTask(self, handle, description)

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.bar.__exit__(kind, error, trace)
