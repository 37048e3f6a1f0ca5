"""The one reader of tabular text files (CSV, TSV, JSON Lines), record by record.

A *bad line* is a CSV/TSV row whose number of fields differs from the header's, or a JSONL line
that is not a JSON object. What happens to bad lines is the caller's explicit choice
(:class:`BadLines`): ``"error"`` stops at the first one with a message naming file and line;
``"skip"`` leaves them out, counts them, and :meth:`BadLines.report` logs the count (and refuses
the file past ``max_fraction``). Corpora use ``"error"`` (a broken corpus should not silently
shrink); GLUE files ``"skip"`` (QQP's train file has a few malformed lines, which the official
scripts also drop); custom task files ``"skip"`` up to 5%.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eelbert_cli.core.console import log
from eelbert_cli.core.errors import EelbertError

BadLinePolicy = Literal["error", "skip"]
Record = tuple[int, dict[str, Any]]  # (line number, column -> value)


@dataclass
class BadLines:
    """Where the bad lines of one file go, and how many there were."""

    path: Path | str
    policy: BadLinePolicy
    max_fraction: float | None = None  # "skip" only: more bad lines than this share of all is an error
    count: int = 0
    first_line: int | None = None
    first_reason: str = ""

    def found(self, line: int, why: str) -> None:
        if self.policy == "error":
            raise EelbertError(f"{self.path}:{line}: {why}")
        self.count += 1
        if self.first_line is None:
            self.first_line, self.first_reason = line, why

    def report(self, good_records: int) -> None:
        """Say how many lines were skipped; refuse the file past ``max_fraction``."""
        if not self.count:
            return
        total = self.count + good_records
        where = f"the first at line {self.first_line} ({self.first_reason})"
        if self.max_fraction is not None and self.count > self.max_fraction * total:
            raise EelbertError(
                f"{self.path}: {self.count} of {total} lines are malformed, {where}: more than {self.max_fraction:.0%}; fix the file"
            )
        log.warning("%s: skipped %d malformed line(s) of %d, %s", self.path, self.count, total, where)


class DelimitedRecords:
    """Rows of a CSV/TSV text stream as ``(line, {column: value})``; ``columns`` is read eagerly,
    so a caller can check for a column before streaming the rows."""

    def __init__(
        self,
        lines: Iterable[str],
        bad_lines: BadLines,
        delimiter: str = ",",
        quoting: int = csv.QUOTE_MINIMAL,
        header: tuple[str, ...] | None = None,
    ) -> None:
        csv.field_size_limit(2**31 - 1)  # news articles are longer than csv's 128 KiB default
        self.bad_lines = bad_lines
        self._reader = csv.reader(lines, delimiter=delimiter, quoting=quoting)
        first = header or self._guarded(lambda: next(self._reader, None))
        if not first:
            raise EelbertError(f"{bad_lines.path} has no header row")
        self.columns: tuple[str, ...] = tuple(first)

    def _guarded(self, read):
        try:
            return read()
        except csv.Error as error:
            raise EelbertError(f"{self.bad_lines.path}:{self._reader.line_num}: malformed CSV ({error})") from None

    def __iter__(self) -> Iterator[Record]:
        while (fields := self._guarded(lambda: next(self._reader, None))) is not None:
            if not fields:
                continue  # a blank line
            if len(fields) != len(self.columns):
                self.bad_lines.found(self._reader.line_num, f"{len(fields)} fields where the header has {len(self.columns)}")
                continue
            yield self._reader.line_num, dict(zip(self.columns, fields, strict=True))


def jsonl_records(lines: Iterable[str], bad_lines: BadLines) -> Iterator[Record]:
    """One JSON object per non-blank line, as ``(line, object)``."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            bad_lines.found(number, f"not a JSON object per line ({error.msg})")
            continue
        if not isinstance(record, dict):
            bad_lines.found(number, "not a JSON object per line")
            continue
        yield number, record
