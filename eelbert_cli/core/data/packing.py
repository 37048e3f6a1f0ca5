"""Tokenize a corpus once and pack it into fixed-length MLM sequences on disk.

Layout of a packed directory (one per cache key, written atomically):

- ``tokens.bin``: all sequences, row-major ``[num_sequences, seq_len]``, uint16 when every id fits
  (vocabulary <= 65,536) else int32; read through ``np.memmap``, so memory never holds the corpus;
- ``heldout.npy``: the sorted row numbers held out for MLM evaluation (int64);
- ``meta.json``: sizes, dtype, sources, tokenizer fingerprint, document/token counts.

Packing: documents are concatenated into one token stream with ``[SEP]`` between them (none where
a document starts exactly at a sequence start) and cut into bodies of ``seq_len - 2`` tokens; each
sequence is ``[CLS] body [SEP]``. The remainder of every tokenization batch carries over to the
next, so no token is lost at batch boundaries; only the final partial body is dropped (its size is
recorded as ``dropped_tail_tokens``), so sequences never need padding. When a separator falls on
the last body position the sequence ends ``[SEP] [SEP]`` (about one boundary in ``seq_len - 2``);
that keeps the stream rule simple.

Held-out rows are evenly spread over the whole stream (sources are concatenated in order, so a
held-out set taken from one end would come from one source only) and depend only on the number of
sequences and the held-out setting: the split is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from tokenizers import Tokenizer

from eelbert_cli.core.console import log
from eelbert_cli.core.data.corpora import CorpusSource, corpus_fingerprint, iter_documents
from eelbert_cli.core.data.resources import cache_dir
from eelbert_cli.core.errors import EelbertError

FORMAT_VERSION = 1
TOKENS_FILE = "tokens.bin"
HELDOUT_FILE = "heldout.npy"
META_FILE = "meta.json"
_BATCH_CHARACTERS = 1_000_000  # bounds a tokenization batch's memory however long documents are


@dataclass
class PackStats:
    """Counts recorded in meta.json; ``document_tokens + separator_tokens`` equals
    ``num_sequences * (seq_len - 2) + dropped_tail_tokens`` (nothing else is lost)."""

    documents: int = 0
    document_tokens: int = 0
    separator_tokens: int = 0
    num_sequences: int = 0
    dropped_tail_tokens: int = 0


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    """sha256 of the tokenizer's JSON: any change of vocabulary or pipeline changes the cache key."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.int32)


def pack_key(sources: Sequence[CorpusSource], tokenizer: Tokenizer, seq_len: int, heldout: float | int) -> str:
    """Cache key over everything that changes the packed bytes (not batch sizes: they don't)."""
    description = {
        "format": FORMAT_VERSION,
        "sources": corpus_fingerprint(sources),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "seq_len": seq_len,
        "heldout": heldout,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode("utf-8")).hexdigest()[:20]


def pack_corpus(
    sources: Sequence[CorpusSource],
    tokenizer: Tokenizer,
    seq_len: int,
    heldout: float | int = 0.01,
    max_positions: int | None = None,
    cache_root: str | Path | None = None,
    batch_documents: int = 256,
) -> Path:
    """The packed directory for these sources, tokenizer and settings; built once, then reused.

    ``heldout`` is a fraction in [0, 1) (a float) or a number of sequences (an int)."""
    _check_settings(seq_len, heldout, max_positions)
    root = Path(cache_root) if cache_root is not None else cache_dir() / "packed"
    final = root / pack_key(sources, tokenizer, seq_len, heldout)
    if (final / META_FILE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    log.info("tokenizing and packing the corpus into %s (once)", final)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        _build(sources, tokenizer, seq_len, heldout, staging, batch_documents)
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _check_settings(seq_len: int, heldout: float | int, max_positions: int | None) -> None:
    if seq_len < 3:
        raise EelbertError(f"seq_len {seq_len} is too short: a sequence needs [CLS], at least one token and [SEP]")
    if max_positions is not None and seq_len > max_positions:
        raise EelbertError(f"seq_len {seq_len} exceeds the model's max_positions {max_positions}: lower seq_len or raise max_positions")
    if isinstance(heldout, bool) or not isinstance(heldout, (int, float)):
        raise EelbertError(f"heldout must be a fraction (e.g. 0.01) or a number of sequences, not {heldout!r}")
    if isinstance(heldout, float) and not 0.0 <= heldout < 1.0:
        raise EelbertError(f"heldout fraction {heldout} must be in [0, 1)")
    if isinstance(heldout, int) and heldout < 0:
        raise EelbertError(f"heldout count {heldout} must not be negative")


def _publish(staging: Path, final: Path) -> None:
    """Rename into place; if a concurrent run got there first, keep its (identical) result."""
    try:
        os.rename(staging, final)
    except OSError as error:
        if not (final / META_FILE).is_file():
            raise EelbertError(f"could not move the packed corpus into {final} ({error}); remove that directory and retry") from None


def _build(sources: Sequence[CorpusSource], tokenizer: Tokenizer, seq_len: int, heldout: float | int,
           directory: Path, batch_documents: int) -> None:
    cls_id, sep_id = _special_id(tokenizer, "[CLS]"), _special_id(tokenizer, "[SEP]")
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    dtype = token_dtype(vocab_size)
    packer = SequencePacker(seq_len, cls_id, sep_id, dtype)
    with open(directory / TOKENS_FILE, "wb") as sink:
        for batch in _document_batches(iter_documents(sources), batch_documents):
            encodings = tokenizer.encode_batch_fast(batch, add_special_tokens=False)
            packer.add([encoding.ids for encoding in encodings], sink)
    stats = packer.finish()
    if stats.num_sequences == 0:
        raise EelbertError(
            f"the corpus yielded no sequence: {stats.documents} documents, {stats.document_tokens} tokens, "
            f"but seq_len {seq_len} needs at least {seq_len - 2} tokens per sequence; add text or lower seq_len"
        )
    rows = heldout_rows(stats.num_sequences, heldout)
    np.save(directory / HELDOUT_FILE, rows)
    meta = {
        "format": FORMAT_VERSION,
        "seq_len": seq_len,
        "vocab_size": vocab_size,
        "dtype": dtype.name,
        "heldout_setting": heldout,
        "train_sequences": stats.num_sequences - len(rows),
        "heldout_sequences": len(rows),
        **asdict(stats),
        "special_ids": {"cls": cls_id, "sep": sep_id, "pad": tokenizer.token_to_id("[PAD]"), "mask": tokenizer.token_to_id("[MASK]")},
        "tokenizer_sha256": tokenizer_fingerprint(tokenizer),
        "sources": [source.model_dump() for source in sources],
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _special_id(tokenizer: Tokenizer, token: str) -> int:
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise EelbertError(f"the tokenizer has no {token} token, which packed MLM sequences need")
    return token_id


def _document_batches(documents: Iterable[str], batch_documents: int) -> Iterator[list[str]]:
    """Batches for encode_batch (which tokenizes a batch on all cores), bounded in documents and characters."""
    batch: list[str] = []
    characters = 0
    for document in documents:
        batch.append(document)
        characters += len(document)
        if len(batch) >= batch_documents or characters >= _BATCH_CHARACTERS:
            yield batch
            batch, characters = [], 0
    if batch:
        yield batch


class SequencePacker:
    """Streams token ids into ``[CLS] body [SEP]`` rows, carrying the unfinished body across calls."""

    def __init__(self, seq_len: int, cls_id: int, sep_id: int, dtype: np.dtype) -> None:
        self.body_len = seq_len - 2
        self.cls_id, self.sep_id, self.dtype = cls_id, sep_id, dtype
        self.stats = PackStats()
        self._carry = np.empty(0, dtype=np.int64)

    def add(self, documents: Sequence[Sequence[int]], sink: BinaryIO) -> None:
        """Append documents' ids to the stream and write every completed sequence to ``sink``."""
        stream = self._join(documents)
        full = len(stream) // self.body_len * self.body_len
        if full:
            self._write(stream[:full].reshape(-1, self.body_len), sink)
        self._carry = stream[full:]

    def finish(self) -> PackStats:
        self.stats.dropped_tail_tokens = len(self._carry)
        self._carry = np.empty(0, dtype=np.int64)
        return self.stats

    def _join(self, documents: Sequence[Sequence[int]]) -> np.ndarray:
        parts = [self._carry]
        position = len(self._carry)  # tokens in the unfinished body so far; only position % body_len matters
        for ids in documents:
            if not ids:
                continue
            if self.stats.documents and position % self.body_len:
                parts.append(np.array([self.sep_id], dtype=np.int64))
                position += 1
                self.stats.separator_tokens += 1
            parts.append(np.asarray(ids, dtype=np.int64))
            position += len(ids)
            self.stats.documents += 1
            self.stats.document_tokens += len(ids)
        return np.concatenate(parts)

    def _write(self, bodies: np.ndarray, sink: BinaryIO) -> None:
        rows = np.empty((len(bodies), self.body_len + 2), dtype=self.dtype)
        rows[:, 0], rows[:, -1] = self.cls_id, self.sep_id
        rows[:, 1:-1] = bodies
        rows.tofile(sink)
        self.stats.num_sequences += len(rows)


def heldout_rows(num_sequences: int, heldout: float | int) -> np.ndarray:
    """Evenly spaced row numbers: ``round(fraction * n)`` (at least 1 for a positive fraction) or
    ``heldout`` rows; at least one sequence must remain for training."""
    count = heldout_count(num_sequences, heldout)
    if count == 0:
        return np.empty(0, dtype=np.int64)
    if count >= num_sequences:
        raise EelbertError(
            f"holding out {count} of {num_sequences} packed sequences leaves none for training; "
            "lower the held-out setting or add text"
        )
    return ((np.arange(count) + 0.5) * (num_sequences / count)).astype(np.int64)


def heldout_count(num_sequences: int, heldout: float | int) -> int:
    if isinstance(heldout, int):
        return heldout
    return max(1, round(heldout * num_sequences)) if heldout > 0 else 0


class PackedDataset(torch.utils.data.Dataset):
    """One split of a packed directory as a map-style dataset of LongTensor[seq_len] rows.

    The token file is memory-mapped on first use (and not pickled), so DataLoader workers share
    the page cache instead of copying the corpus. ``batch(indices)`` reads many rows with one
    fancy-indexing call; DataLoader uses it too, through ``__getitems__``."""

    def __init__(self, path: str | Path, split: Literal["train", "heldout"] = "train") -> None:
        if split not in ("train", "heldout"):
            raise EelbertError(f"unknown split {split!r}: use 'train' or 'heldout'")
        self.path = Path(path)
        self.split = split
        self.meta = read_meta(self.path)
        self.seq_len: int = self.meta["seq_len"]
        self._heldout = np.load(self.path / HELDOUT_FILE)
        # Train row j is global row j + (number of held-out rows before it); heldout[k] - k counts
        # the train rows before held-out row k, so a sorted search finds that number.
        self._train_offsets = self._heldout - np.arange(len(self._heldout))
        self._tokens: np.memmap | None = None

    def __len__(self) -> int:
        return self.meta["heldout_sequences"] if self.split == "heldout" else self.meta["train_sequences"]

    def __getitem__(self, index: int) -> torch.Tensor:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} {self.split} sequences")
        return self.batch([index % len(self)])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        return list(self.batch(indices))

    def batch(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """LongTensor[len(indices), seq_len] for split-local indices."""
        local = np.asarray(indices, dtype=np.int64)
        if local.size and (local.min() < 0 or local.max() >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} {self.split} sequences")
        return torch.from_numpy(self.tokens[self.global_rows(local)].astype(np.int64))

    def global_rows(self, local: np.ndarray) -> np.ndarray:
        """Row numbers in tokens.bin for split-local indices."""
        if self.split == "heldout":
            return self._heldout[local]
        return local + np.searchsorted(self._train_offsets, local, side="right")

    def token_counts(self) -> np.ndarray:
        """How often each id occurs in this split's rows (int64[vocab_size]), special tokens counted 0:
        what the frequent-ids masked-LM head ranks (it never predicts a special token)."""
        counts = np.zeros(self.meta["vocab_size"], dtype=np.int64)
        chunk = 8192
        for start in range(0, len(self), chunk):
            rows = self.tokens[self.global_rows(np.arange(start, min(start + chunk, len(self))))]
            counts += np.bincount(rows.ravel(), minlength=len(counts))[: len(counts)]
        counts[[i for i in self.meta["special_ids"].values() if i is not None]] = 0
        return counts

    @property
    def tokens(self) -> np.memmap:
        if self._tokens is None:
            shape = (self.meta["num_sequences"], self.seq_len)
            self._tokens = np.memmap(self.path / TOKENS_FILE, dtype=self.meta["dtype"], mode="r", shape=shape)
        return self._tokens

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokens": None}


def read_meta(path: Path) -> dict[str, Any]:
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise EelbertError(f"{path} is not a packed corpus directory (no {META_FILE}); pack the corpus first")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise EelbertError(f"{path} was packed by another version of eelbert (format {meta.get('format')}); delete it to repack")
    return meta
