"""``task.json``: what a fine-tuned checkpoint was trained for, read back with every field checked.

Why one reader: evaluate, predict, export and task distillation all act on this record. A hand-edited
or damaged one (labels that are not strings, a string max length, a list instead of an object) gave
tracebacks or, worse, confident predictions under the wrong label names. Each problem is now one
message naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import read_json_object

TASK_FILE = "task.json"  # saved with a fine-tuned model: what `eelbert evaluate` needs to score it
TASK_TYPES = ("classification", "regression")
MIN_SEQ_LEN = 2  # [CLS] and [SEP]


def task_record_problems(record: dict) -> list[str]:
    """Every way ``record`` breaks the task.json contract (empty when it is sound)."""
    problems = []
    if not isinstance(record.get("task"), str) or not record["task"]:
        problems.append("'task' must name the task (a non-empty string)")
    kind = record.get("type", "classification")
    if kind not in TASK_TYPES:
        problems.append(f"'type' must be one of {', '.join(TASK_TYPES)}, not {kind!r}")
    labels = record.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(label, str) and label for label in labels):
            problems.append("'labels' must be a list of non-empty strings")
        elif len(set(labels)) != len(labels):
            problems.append(f"'labels' repeats a name ({labels})")
        elif kind == "classification" and len(labels) < 2:
            problems.append(f"a classifier needs at least two 'labels', not {labels}")
    length = record.get("max_seq_len")
    if length is not None and (type(length) is not int or length < MIN_SEQ_LEN):
        problems.append(f"'max_seq_len' must be a whole number >= {MIN_SEQ_LEN}, not {length!r}")
    if record.get("text_inputs") not in (None, 1, 2):
        problems.append(f"'text_inputs' must be 1 (single texts) or 2 (sentence pairs), not {record['text_inputs']!r}")
    if record.get("custom_task") is not None and not isinstance(record["custom_task"], dict):
        problems.append("'custom_task' must be an object (the task's files and columns)")
    return problems


def read_task_record(checkpoint: Path, *, required: bool = True, fix: str = "fine-tune it again or repair the file") -> dict:
    """The checked record, or ``{}`` when there is none and ``required`` is False."""
    path = checkpoint / TASK_FILE
    if not path.exists() and not required:
        return {}
    record = read_json_object(path, f"{checkpoint} is not a fine-tuned model (no {TASK_FILE}): use RUN_DIR/finetuned/TASK")
    problems = task_record_problems(record)
    if problems:
        raise EelbertError(f"{path} is not a valid task record: {'; '.join(problems)}; {fix}")
    return record


def check_head_matches(record: dict, num_labels: int, checkpoint: Path) -> None:
    """The classifier head's output count must be what the record's labels (or type) say."""
    expected = 1 if record.get("type") == "regression" else len(record.get("labels") or []) or num_labels
    if num_labels != expected:
        what = "a regression (one output)" if record.get("type") == "regression" else f"{expected} labels"
        raise EelbertError(f"{checkpoint / TASK_FILE} describes {what} but the model's classifier head has {num_labels} outputs")


def check_text_inputs(expected: int | None, pairs_given: bool, model: str) -> None:
    """Single texts for a single-text model, pairs for a sentence-pair one (``expected`` None: a
    model saved before it was recorded, unchecked)."""
    if expected == 2 and not pairs_given:
        raise EelbertError(f"{model} was trained on sentence pairs: give the second text with --pair-column (a .jsonl or .csv input)")
    if expected == 1 and pairs_given:
        raise EelbertError(f"{model} was trained on single texts: drop --pair-column")


def label_order(source: Sequence[str], target: Sequence[str], what: str) -> list[int]:
    """For each of ``target``'s labels, its index in ``source``: the same names in any order, or an error."""
    if sorted(source) != sorted(target):
        raise EelbertError(f"{what} predicts the labels {list(source)} but the task has {list(target)}: they must be the same names")
    return [list(source).index(label) for label in target]
