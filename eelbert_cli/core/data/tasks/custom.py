"""Custom tasks from the user's own CSV, TSV or JSONL files (``finetune.task: {name: ..., train: ...}``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eelbert_cli.core.data.tasks.registry import CLASSIFICATION_METRICS, REGRESSION_METRICS, Task, TaskData, TaskType, resolve_task_name
from eelbert_cli.core.data.tasks.splits import label_text, read_table, split_from_table
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import check_safe_name


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
    metrics: tuple[Literal["accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman"], ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        check_safe_name(value, "output files and directories")
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
    tables = {split: read_table(Path(base_dir) / path) for split, path in files.items()}
    train = tables["train"]
    labels: tuple[str, ...] = ()
    if spec.type == "classification" and train.rows:
        labels = _sorted_labels([label_text(train, row, value) for row, value in enumerate(train.column(spec.label_column))])
        if "f1" in spec.metrics and len(labels) != 2:
            raise EelbertError(f"{train.path}: metric f1 needs exactly two labels (class 1 is positive); "
                              f"found {len(labels)}: {', '.join(labels)}; use macro_f1 (the mean F1 over classes) for more")
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
        splits[split] = split_from_table(task, split, table, spec.text_columns, label_column, None, f"the training file {train.path}")
    return TaskData(task, splits, f"custom files in {Path(base_dir)}")
