"""The nine GLUE tasks from their three sources: the official ``glue_data/`` layout, the Hugging Face
hub (``nyu-mll/glue``) and ``save_to_disk`` directories. The hub and ``save_to_disk`` share one
column mapping (:func:`task_data_from_datasets`), so it is testable on in-memory datasets offline.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eelbert_cli.core.data.hub import hub_unreachable_reason
from eelbert_cli.core.data.tasks.registry import GLUE_HUB_DATASET, GLUE_TASKS, Split, Task, TaskData, get_task
from eelbert_cli.core.data.tasks.splits import read_delimited, split_from_table
from eelbert_cli.core.errors import EelbertError


@dataclass(frozen=True)
class _GlueFile:
    """How one official glue_data TSV is laid out (each task has its own columns)."""

    file_name: str
    text_columns: tuple[str, ...]
    label_column: str | None = None  # None: a test file, labels hidden
    index_column: str | None = None  # the official id that submission files use
    header: tuple[str, ...] | None = None  # the columns of a file without a header line


def _glue_layout(
    text: tuple[str, ...], label: str, test_index: str = "index", header: tuple[str, ...] | None = None
) -> dict[str, _GlueFile]:
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
            names = ", ".join(f.file_name for f in _GLUE_FILES[task.name].values())
            raise EelbertError(f"{path}: file not found; the glue_data layout of {task.title} has {names}")
        table = read_delimited(path, "\t", csv.QUOTE_NONE, layout.header)
        splits[split] = split_from_table(task, split, table, layout.text_columns, layout.label_column, layout.index_column,
                                         f"task {task.name}")
    return TaskData(task, splits, f"glue_data {folder}")


def task_data_from_datasets(task: Task, datasets_by_split: Mapping[str, Any], source: str) -> TaskData:
    """Map ``datasets.Dataset`` splits with the hub's column names (``nyu-mll/glue``) to a TaskData.

    Test splits are optional; a test split whose labels are all -1 (as on the hub) has its labels hidden.
    """
    splits = {}
    for split in task.splits:
        if split not in datasets_by_split:
            if split in task.test_splits:
                continue
            found = ", ".join(datasets_by_split) or "(none)"
            raise EelbertError(f"{source}: task {task.name!r} needs split {split!r}; splits found: {found}")
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

    offline = "offline, give a glue_data/ directory or a save_to_disk directory instead"
    if (why := hub_unreachable_reason()) is not None:
        raise EelbertError(f"could not load {GLUE_HUB_DATASET} config {task.name!r} from the Hugging Face hub ({why}); {offline}")
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
