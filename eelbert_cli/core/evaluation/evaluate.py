"""``eelbert evaluate``: score one saved fine-tuned model on a split, or write its predictions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eelbert_cli.core.data.tasks import load_task, write_predictions
from eelbert_cli.core.data.tokenization import load_tokenizer
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.evaluation.grid import TASK_FILE
from eelbert_cli.core.evaluation.metrics import compute_metrics
from eelbert_cli.core.model.modeling import is_checkpoint_dir
from eelbert_cli.core.spec import FinetuneSpec
from eelbert_cli.core.training.finetune import encode_split, predict
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
    from transformers import AutoModelForSequenceClassification

    if not is_checkpoint_dir(checkpoint):
        raise EelbertError(f"{checkpoint} is not a checkpoint directory (no config.json)")
    saved = json.loads((checkpoint / TASK_FILE).read_text(encoding="utf-8")) if (checkpoint / TASK_FILE).is_file() else {}
    task_name = task or saved.get("task")
    if task_name is None:
        raise EelbertError(f"{checkpoint} has no {TASK_FILE}; name the task with --task")
    data = load_task(task_name, data_dir)
    split_name = split or data.task.eval_splits[0]
    if split_name not in data.splits:
        raise EelbertError(f"{data.task.name} has no split {split_name!r}; it has {', '.join(data.splits)}")
    if not any(checkpoint.glob("*.safetensors")):
        raise EelbertError(f"{checkpoint} has no .safetensors weights")
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, use_safetensors=True)
    if model.config.num_labels != data.task.num_labels:
        raise EelbertError(f"{checkpoint} predicts {model.config.num_labels} labels but {data.task.name} has {data.task.num_labels}")
    settings = FinetuneSpec(max_seq_len=saved.get("max_seq_len", 128))
    model.to(pick_device(settings.device, "finetune.device"))
    tokenizer = load_tokenizer(checkpoint)
    target = data.splits[split_name]
    encoded = encode_split(tokenizer, target, settings.max_seq_len)
    predictions, _ = predict(model, data.task, encoded, settings, tokenizer.token_to_id("[PAD]") or 0)
    metrics = compute_metrics(data.task, predictions, np.asarray(target.labels)) if target.labels is not None else None
    written = None
    if predictions_path is not None or metrics is None:  # hidden labels: predictions are the only output
        values = predictions.tolist() if data.task.type == "regression" else [int(p) for p in predictions]
        destination = predictions_path or checkpoint / "predictions" / f"{data.task.name}-{split_name}.tsv"
        written = str(write_predictions(data.task, target, values, destination))
    return Evaluation(data.task.name, split_name, len(target), metrics, written)
