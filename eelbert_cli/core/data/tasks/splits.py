"""Task files as tables, and tables as splits: the one place file rows become labelled examples.

Files are read with the toolkit's table reader (``data.tables``); malformed lines are skipped,
counted on the split (``Split.skipped``) and logged, never silently dropped.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eelbert_cli.core.data.tables import BadLines, DelimitedRecords, jsonl_records
from eelbert_cli.core.data.tasks.registry import Split, Task
from eelbert_cli.core.errors import EelbertError

_MISSING = object()


@dataclass(frozen=True)
class Table:
    """The rows of one data file with the line each came from, so errors can point at it."""

    path: Path
    columns: tuple[str, ...]
    rows: list[tuple[int, list[Any]]]
    skipped: int = 0

    def column(self, name: str) -> list[Any]:
        if name not in self.columns:
            raise EelbertError(f"{self.path}: no column {name!r}; columns found: {', '.join(self.columns) or '(none)'}")
        position = self.columns.index(name)
        values = [fields[position] for _, fields in self.rows]
        for (line, _), value in zip(self.rows, values, strict=True):
            if value is _MISSING:
                raise EelbertError(f"{self.path}, line {line}: no column {name!r} in this record")
        return values

    def line(self, row: int) -> int:
        return self.rows[row][0]


def read_text(path: Path) -> str:
    """The whole file as text; errors name the file for missing files and non-UTF-8 bytes."""
    if not path.is_file():
        raise EelbertError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise EelbertError(f"{path} is not UTF-8 text: undecodable byte at line {line} (byte {error.start}); re-save it as UTF-8") from None
    return text.removeprefix("\ufeff")


CUSTOM_BAD_LINE_LIMIT = 0.05  # a custom file with more malformed lines than this is refused, not shrunk


def read_delimited(path: Path, delimiter: str, quoting: int, header: tuple[str, ...] | None = None,
                   bad_line_limit: float | None = None) -> Table:
    text = read_text(path)
    bad_lines = BadLines(path, "skip", bad_line_limit)
    if not text.strip() and header is None:
        return Table(path, (), [])
    records = DelimitedRecords(io.StringIO(text, newline=None), bad_lines, delimiter, quoting, header)
    rows = [(line, [record[column] for column in records.columns]) for line, record in records]
    bad_lines.report(len(rows))
    return Table(path, records.columns, rows, bad_lines.count)


def read_jsonl(path: Path, bad_line_limit: float | None = None) -> Table:
    """Columns are the first record's keys; a record without one of them fails where it is used."""
    bad_lines = BadLines(path, "skip", bad_line_limit)
    columns: tuple[str, ...] = ()
    rows = []
    for line, record in jsonl_records(read_text(path).split("\n"), bad_lines):  # not splitlines: JSON strings may hold U+2028
        columns = columns or tuple(record)
        rows.append((line, [record.get(column, _MISSING) for column in columns]))
    bad_lines.report(len(rows))
    return Table(path, columns, rows, bad_lines.count)


def read_table(path: Path) -> Table:
    """A custom task's file, by extension: CSV (standard quoting), TSV (no quoting, as GLUE) or JSONL."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_delimited(path, ",", csv.QUOTE_MINIMAL, bad_line_limit=CUSTOM_BAD_LINE_LIMIT)
    if suffix == ".tsv":
        return read_delimited(path, "\t", csv.QUOTE_NONE, bad_line_limit=CUSTOM_BAD_LINE_LIMIT)
    if suffix == ".jsonl":
        return read_jsonl(path, CUSTOM_BAD_LINE_LIMIT)
    raise EelbertError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv or .jsonl")


def _texts(table: Table, column: str) -> tuple[str, ...]:
    values = table.column(column)
    for row, value in enumerate(values):
        if not isinstance(value, str):
            raise EelbertError(f"{table.path}, line {table.line(row)}: column {column!r} holds {value!r}, not text")
    return tuple(values)


def label_text(table: Table, row: int, value: Any) -> str:
    """Labels are compared as strings, so JSONL ``1`` and CSV ``"1"`` are the same label."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise EelbertError(f"{table.path}, line {table.line(row)}: label {value!r} is neither a string nor an integer")


def _class_ids(table: Table, column: str, labels: tuple[str, ...], labels_from: str) -> tuple[int, ...]:
    ids = {label: position for position, label in enumerate(labels)}
    result = []
    for row, value in enumerate(table.column(column)):
        text = label_text(table, row, value)
        if text not in ids:
            raise EelbertError(
                f"{table.path}, line {table.line(row)}: label {text!r} is not among the labels of {labels_from} ({', '.join(labels)})")
        result.append(ids[text])
    return tuple(result)


def _scores(table: Table, column: str) -> tuple[float, ...]:
    result = []
    for row, value in enumerate(table.column(column)):
        try:
            score = float(value)
        except (TypeError, ValueError):
            score = math.nan
        if isinstance(value, bool) or not math.isfinite(score):
            raise EelbertError(
                f"{table.path}, line {table.line(row)}: regression label {value!r} in column {column!r} is not a finite number")
        result.append(score)
    return tuple(result)


def _indices(table: Table, column: str) -> tuple[int, ...]:
    result = []
    for row, value in enumerate(table.column(column)):
        try:
            result.append(int(value))
        except (TypeError, ValueError):
            raise EelbertError(f"{table.path}, line {table.line(row)}: index {value!r} in column {column!r} is not an integer") from None
    return tuple(result)


def split_from_table(
    task: Task,
    split: str,
    table: Table,
    text_columns: Sequence[str],
    label_column: str | None,
    index_column: str | None,
    labels_from: str,
) -> Split:
    """``label_column`` None: labels hidden; ``index_column`` None: ids are row numbers."""
    if not table.rows:
        raise EelbertError(f"{table.path}: split {split!r} of task {task.name!r} has no examples")
    if label_column is None:
        labels = None
    elif task.type == "classification":
        labels = _class_ids(table, label_column, task.labels, labels_from)
    else:
        labels = _scores(table, label_column)
    return Split(
        name=split,
        text_a=_texts(table, text_columns[0]),
        text_b=_texts(table, text_columns[1]) if len(text_columns) > 1 else None,
        labels=labels,
        index=_indices(table, index_column) if index_column else tuple(range(len(table.rows))),
        skipped=table.skipped,
    )
