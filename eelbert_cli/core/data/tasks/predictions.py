"""Prediction files: any split's predictions, and the TSVs the GLUE server expects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from eelbert_cli.core.data.tasks.registry import Label, Split, Task
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import write_atomic


def write_submission(task: Task, split: Split, predictions: Sequence[Label], directory: str | Path) -> Path:
    """Write the TSV the GLUE server expects: ``index<TAB>prediction``, labels in the task's official form
    (strings like ``entailment`` for MNLI/QNLI/RTE, numbers otherwise, scores with 3 decimals for STS-B)."""
    return write_predictions(task, split, predictions, Path(directory) / task.submission_file(split.name))


def write_predictions(task: Task, split: Split, predictions: Sequence[Label], path: str | Path) -> Path:
    """Predictions of any split in the submission format (``index<TAB>prediction``)."""
    if len(predictions) != len(split):
        raise EelbertError(f"{len(predictions)} predictions for the {len(split)} examples of {task.name} {split.name}")
    path = Path(path)
    if task.type == "classification":
        values = [task.labels[int(prediction)] for prediction in predictions]
    else:
        values = [f"{float(prediction):.3f}" for prediction in predictions]
    lines = ["index\tprediction", *(f"{index}\t{value}" for index, value in zip(split.index, values, strict=True))]
    write_atomic(path, "\n".join(lines) + "\n")
    return path
