"""``eelbert evaluate``: score one saved fine-tuned model on a split, or write its predictions.

The model is a fine-tuned checkpoint (torch) or an export directory (the torch-free runtime, fp32 or
int8): scoring the export is how a user learns what quantization cost before shipping it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eelbert_cli.core.data.resources import SHIPPED_DIR, SHIPPED_EXPORTS_DIR, cache_dir
from eelbert_cli.core.data.tasks import TaskData, load_custom_task, load_task, write_predictions
from eelbert_cli.core.data.tasks.record import TASK_FILE, check_head_matches, label_order, read_task_record
from eelbert_cli.core.data.tokenization import load_tokenizer
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.export.runtime import ExportedModel, is_export_dir
from eelbert_cli.core.finetuning.encoding import encode_split, predict
from eelbert_cli.core.model.modeling import has_classifier_head, is_checkpoint_dir, load_model
from eelbert_cli.core.scoring.metrics import compute_metrics
from eelbert_cli.core.spec import FinetuneSpec
from eelbert_cli.core.training.runtime import pick_device


@dataclass
class Evaluation:
    task: str
    split: str
    examples: int
    metrics: dict[str, float] | None
    predictions_file: str | None


def evaluate_checkpoint(
    checkpoint: Path, task: str | None, data_dir: str | None, split: str | None, predictions_path: Path | None
) -> Evaluation:
    """Score a fine-tuned model on a split (metrics where labels exist) and/or write its predictions."""
    if is_export_dir(checkpoint):
        return evaluate_export(checkpoint, task, data_dir, split, predictions_path)
    saved = _saved_task(checkpoint)
    data = _task_data(checkpoint, saved, task, data_dir)
    split_name = _split_name(data, split)
    model = load_model(checkpoint, "sequence-classification")
    if saved:
        check_head_matches(saved, model.config.num_labels, checkpoint)
    if model.config.num_labels != data.task.num_labels:
        raise EelbertError(f"{checkpoint} predicts {model.config.num_labels} labels but {data.task.name} has {data.task.num_labels}")
    to_task = None  # the checkpoint's label ids -> the task's, matched by name
    if saved.get("labels") and data.task.labels and list(saved["labels"]) != list(data.task.labels):
        to_task = np.asarray(label_order(data.task.labels, saved["labels"], str(checkpoint)))
    settings = FinetuneSpec(max_seq_len=saved.get("max_seq_len", 128))
    model.to(pick_device(settings.device, "finetune.device"))
    tokenizer = load_tokenizer(checkpoint)
    target = data.splits[split_name]
    encoded = encode_split(tokenizer, target, settings.max_seq_len)
    predictions, _ = predict(model, data.task, encoded, settings, tokenizer.token_to_id("[PAD]") or 0)
    if to_task is not None:
        predictions = to_task[predictions]
    return _scored(checkpoint, data, split_name, predictions, predictions_path)


EXPORT_BATCH = 64


def evaluate_export(
    export_dir: Path, task: str | None, data_dir: str | None, split: str | None, predictions_path: Path | None
) -> Evaluation:
    """The same scoring through the runtime: the export's own tokenizer, hash table and ONNX graph."""
    model = ExportedModel.load(export_dir)
    task_name = task or model.document.get("task")
    if not task_name:
        raise EelbertError(f"{export_dir}/export.json names no task; name it with --task")
    try:
        data = load_task(task_name, data_dir)
    except EelbertError as error:
        raise EelbertError(f"{error} (an export of a custom task: evaluate the checkpoint it was exported from)") from None
    split_name = _split_name(data, split)
    regression = data.task.type == "regression"
    if model.regression != regression:
        raise EelbertError(f"{export_dir} is a {'regression' if model.regression else 'classification'} model but {data.task.name} is not")
    if not regression and len(model.labels) != data.task.num_labels:
        raise EelbertError(f"{export_dir} predicts {len(model.labels)} labels but {data.task.name} has {data.task.num_labels}")
    to_task = None
    if not regression and data.task.labels and list(model.labels) != list(data.task.labels):
        to_task = np.asarray(label_order(data.task.labels, model.labels, str(export_dir)))
    target = data.splits[split_name]
    pairs = target.text_b
    chunks = []
    for start in range(0, len(target), EXPORT_BATCH):
        stop = start + EXPORT_BATCH
        logits = model.logits(target.text_a[start:stop], pairs[start:stop] if pairs is not None else None)
        chunks.append(logits[:, 0] if regression else logits.argmax(axis=-1))
    predictions = np.concatenate(chunks) if chunks else np.zeros(0)
    if to_task is not None:
        predictions = to_task[predictions]
    return _scored(export_dir, data, split_name, predictions, predictions_path)


def _split_name(data: TaskData, split: str | None) -> str:
    """The split asked for (default: the task's first dev split), or an error naming the ones it has."""
    name = split or data.task.eval_splits[0]
    if name not in data.splits:
        raise EelbertError(f"{data.task.name} has no split {name!r}; it has {', '.join(data.splits)}")
    return name


def _scored(model_dir: Path, data: TaskData, split_name: str, predictions: np.ndarray, predictions_path: Path | None) -> Evaluation:
    target = data.splits[split_name]
    metrics = compute_metrics(data.task, predictions, np.asarray(target.labels)) if target.labels is not None else None
    written = None
    if predictions_path is not None or metrics is None:  # hidden labels: predictions are the only output
        values = predictions.tolist() if data.task.type == "regression" else [int(p) for p in predictions]
        destination = predictions_path or default_predictions_path(model_dir, f"{data.task.name}-{split_name}.tsv")
        written = str(write_predictions(data.task, target, values, destination))
    return Evaluation(data.task.name, split_name, len(target), metrics, written)


def default_predictions_path(checkpoint: Path, file_name: str) -> Path:
    """Beside the checkpoint it scores (RUN/finetuned/TASK/predictions/), unless that is a built-in model or export
    or a folder the user cannot write: then ./predictions/NAME-FILE (the installed package is no
    place for a user's files)."""
    built_in = any(checkpoint.resolve().is_relative_to(root.resolve()) for root in (SHIPPED_DIR, SHIPPED_EXPORTS_DIR, cache_dir()))
    if built_in or not os.access(checkpoint, os.W_OK):
        return Path("predictions") / f"{checkpoint.name}-{file_name}"
    return checkpoint / "predictions" / file_name


def _saved_task(checkpoint: Path) -> dict:
    """The checkpoint's task.json; a checkpoint without one must at least be a classifier."""
    if not is_checkpoint_dir(checkpoint):
        raise EelbertError(f"{checkpoint} is not a checkpoint directory (no config.json)")
    saved = read_task_record(checkpoint, required=False, fix="repair it, or delete it and name the task with --task")
    if saved:
        return saved
    classifier, architectures = has_classifier_head(checkpoint)
    if not classifier:
        raise EelbertError(
            f"{checkpoint} is not a fine-tuned classifier (architectures: {', '.join(architectures) or 'none'}); "
            "its task head would be random. Fine-tune it first (eelbert finetune) and evaluate RUN_DIR/finetuned/TASK"
        )
    return {}


def _task_data(checkpoint: Path, saved: dict, task: str | None, data_dir: str | None) -> TaskData:
    if task is None and isinstance(saved.get("custom_task"), dict):
        return load_custom_task(saved["custom_task"], Path("/"))
    task_name = task or saved.get("task")
    if task_name is None:
        raise EelbertError(f"{checkpoint} has no {TASK_FILE}; name the task with --task")
    return load_task(task_name, data_dir)
