"""Documents out of local files: plain text, JSON Lines, CSV/TSV, Parquet and MediaWiki dumps,
optionally gzip/bz2/xz-compressed, streamed so file size does not matter."""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import lzma
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from eelbert_cli.core.data.mediawiki import mediawiki_documents_from
from eelbert_cli.core.data.tables import BadLines, DelimitedRecords, jsonl_records
from eelbert_cli.core.errors import EelbertError

_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_FORMATS = {".txt": "txt", ".text": "txt", ".md": "txt", ".jsonl": "jsonl", ".json": "jsonl",
            ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".xml": "mediawiki"}


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Globs (``**`` included) expanded in sorted order; a pattern matching nothing is an error."""
    paths: list[Path] = []
    for pattern in patterns:
        expanded = str(Path(pattern).expanduser())
        matches = sorted(glob.glob(expanded, recursive=True)) if glob.has_magic(expanded) else [expanded]
        if not matches or not Path(matches[0]).exists():
            raise EelbertError(f"corpus path {pattern!r} matches no file")
        for match in map(Path, matches):
            if match.is_dir():
                raise EelbertError(f"corpus path {match} is a directory: give a glob such as '{match}/*.txt'")
            paths.append(match)
    return paths


def file_format(path: Path) -> tuple[str, str | None]:
    """(format, compression suffix) from the file name, e.g. ``a.jsonl.gz`` -> ("jsonl", ".gz")."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in _COMPRESSED else None
    kind = _FORMATS.get(suffixes[-1]) if suffixes else None
    if kind is None or (kind == "parquet" and compression):
        known = ", ".join(sorted(_FORMATS))
        raise EelbertError(f"corpus file {path}: unknown format; use one of {known} (optionally .gz/.bz2/.xz)")
    return kind, compression


def read_file_documents(path: Path, text_field: str = "text", txt_documents: str = "paragraphs") -> Iterator[str]:
    """Documents of one local file, streamed; undecodable bytes become an error naming the file."""
    kind, compression = file_format(path)
    if path.stat().st_size == 0:
        raise EelbertError(f"corpus file {path} is empty")
    if kind == "parquet":
        yield from parquet_documents(path, text_field)
        return
    opener = _COMPRESSED.get(compression or "", open)
    try:
        with opener(path, "rb") as binary:
            if kind == "mediawiki":
                yield from mediawiki_documents_from(binary, path)
                return
            text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="" if kind in ("csv", "tsv") else None)
            if kind == "txt":
                yield from (lines_documents(text) if txt_documents == "lines" else paragraph_documents(text))
            elif kind == "jsonl":
                yield from jsonl_documents(text, text_field, path)
            else:
                yield from csv_documents(text, text_field, path, delimiter="\t" if kind == "tsv" else ",")
    except UnicodeDecodeError:
        raise EelbertError(f"corpus file {path} is not UTF-8 text; re-encode it (e.g. iconv -f latin1 -t utf-8)") from None
    except (OSError, EOFError, lzma.LZMAError) as error:
        raise EelbertError(f"corpus file {path} could not be read: {error}") from None


def paragraph_documents(lines: Iterable[str]) -> Iterator[str]:
    """One document per block of non-blank lines."""
    block: list[str] = []
    for line in lines:
        if line.strip():
            block.append(line.rstrip("\n"))
        elif block:
            yield "\n".join(block)
            block = []
    if block:
        yield "\n".join(block)


def lines_documents(lines: Iterable[str]) -> Iterator[str]:
    return (line.rstrip("\n") for line in lines)


def jsonl_documents(lines: Iterable[str], text_field: str, path: Path) -> Iterator[str]:
    for number, record in jsonl_records(lines, BadLines(path, "error")):
        yield _field_text(record, text_field, f"{path}:{number}")


def csv_documents(lines: Iterable[str], text_field: str, path: Path | str, delimiter: str = ",") -> Iterator[str]:
    records = DelimitedRecords(lines, BadLines(path, "error"), delimiter=delimiter)
    if text_field not in records.columns:
        raise EelbertError(f"corpus file {path} has no column {text_field!r} (columns: {', '.join(records.columns)}); set text_field")
    for _, row in records:
        yield row[text_field] or ""


def parquet_documents(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
        if text_field not in table.schema_arrow.names:
            columns = ", ".join(table.schema_arrow.names)
            raise EelbertError(f"corpus file {path} has no column {text_field!r} (columns: {columns}); set text_field")
        for batch in table.iter_batches(batch_size=1024, columns=[text_field]):
            yield from (text or "" for text in batch.column(0).to_pylist())
    except pa.ArrowException as error:
        raise EelbertError(f"corpus file {path} is not a readable Parquet file ({error})") from None


def _field_text(record: Any, text_field: str, where: str) -> str:
    if not isinstance(record, dict) or text_field not in record:
        raise EelbertError(f"{where}: expected a JSON object with a {text_field!r} field; set text_field")
    value = record[text_field]
    if value is not None and not isinstance(value, str):
        raise EelbertError(f"{where}: field {text_field!r} is {type(value).__name__}, not text")
    return value or ""


def dataset_texts(dataset: Any, text_field: str, label: str) -> Iterator[str]:
    """Texts of a (streaming or memory-mapped) datasets.Dataset, a batch at a time."""
    columns = dataset.column_names
    if columns is not None and text_field not in columns:
        raise EelbertError(f"{label} has no column {text_field!r} (columns: {', '.join(columns)}); set text_field")
    for batch in dataset.select_columns([text_field]).iter(batch_size=1000):
        yield from (text or "" for text in batch[text_field])
