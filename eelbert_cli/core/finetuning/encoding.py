"""Tasks' text as token ids, batched by length, and a classifier's predictions over a split.

What one fine-tuning run, task distillation (a teacher labelling text), ``evaluate`` and
``predict`` share: batches are grouped by length and padded only to their own longest example, so
short-sentence tasks (most of GLUE) spend their compute on tokens rather than padding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from eelbert_cli.core.data.tasks import Split, Task
from eelbert_cli.core.spec import FinetuneSpec
from eelbert_cli.core.training.precision import autocast, autocast_dtype


@dataclass
class Encoded:
    """One split as token ids, ready for dynamic padding."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: np.ndarray | None
    targets: np.ndarray | None = None  # a teacher's logits per example (task distillation)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def has_gold(self) -> np.ndarray:
        """Which examples carry a gold label (teacher-labelled extras carry -1, or NaN for regression)."""
        labels = np.asarray(self.labels, dtype=np.float64)
        return ~np.isnan(labels) & (labels >= 0) if self.labels is not None else np.zeros(len(self), dtype=bool)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def encode_split(tokenizer: Tokenizer, split: Split, max_seq_len: int) -> Encoded:
    tokenizer.enable_truncation(max_length=max_seq_len, strategy="longest_first")
    inputs = list(split.text_a) if split.text_b is None else list(zip(split.text_a, split.text_b, strict=True))
    encodings = tokenizer.encode_batch(inputs, add_special_tokens=True)
    labels = None if split.labels is None else np.asarray(split.labels)
    return Encoded([e.ids for e in encodings], [e.type_ids for e in encodings], labels)


def with_teacher(train: Encoded, train_targets: np.ndarray, extra: Encoded, extra_targets: np.ndarray, regression: bool) -> Encoded:
    """The training set for task distillation: the gold examples and the teacher-labelled extras,
    every one with the teacher's logits."""
    missing = np.full(len(extra), np.nan if regression else -1, dtype=np.float32 if regression else np.int64)
    return Encoded(
        train.input_ids + extra.input_ids,
        train.token_type_ids + extra.token_type_ids,
        np.concatenate([np.asarray(train.labels).astype(missing.dtype), missing]),
        np.concatenate([train_targets, extra_targets]).astype(np.float32),
    )


def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, group: int = 50) -> list[np.ndarray]:
    """Shuffle, sort within chunks of ``group`` batches by length, cut into batches, shuffle those."""
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * group):
        chunk = order[start : start + batch_size * group]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(data: Encoded, rows: Sequence[int], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    width = max(len(data.input_ids[r]) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    token_types = torch.zeros((len(rows), width), dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids = data.input_ids[r]
        input_ids[i, : len(ids)] = torch.tensor(ids)
        token_types[i, : len(ids)] = torch.tensor(data.token_type_ids[r])
        attention[i, : len(ids)] = 1
    return {
        "input_ids": input_ids.to(device, non_blocking=True),
        "token_type_ids": token_types.to(device, non_blocking=True),
        "attention_mask": attention.to(device, non_blocking=True),
    }


def predict_logits(model: nn.Module, data: Encoded, settings: FinetuneSpec, pad_id: int) -> np.ndarray:
    """Float32 logits [examples, outputs] in the split's order (batches run longest first)."""
    device = next(model.parameters()).device
    model.eval()
    order = np.argsort(-data.lengths, kind="stable")
    outputs = np.empty((0, model.config.num_labels), dtype=np.float32)
    with torch.no_grad(), autocast(device, autocast_dtype(settings.precision, device)):
        for start in range(0, len(order), settings.eval_batch_size):
            rows = order[start : start + settings.eval_batch_size]
            logits = model(**collate(data, rows, pad_id, device)).logits.float().cpu().numpy()
            outputs = np.empty((len(data), logits.shape[1]), dtype=np.float32) if start == 0 else outputs
            outputs[rows] = logits
    model.train()
    return outputs


def predict(model: nn.Module, task: Task, data: Encoded, settings: FinetuneSpec, pad_id: int) -> tuple[np.ndarray, float]:
    """Predictions (label ids, or scores for regression) in the split's order, and examples/s."""
    started = time.perf_counter()
    logits = predict_logits(model, data, settings, pad_id)
    predictions = logits[:, 0] if task.type == "regression" else logits.argmax(axis=1)
    return predictions, len(data) / max(time.perf_counter() - started, 1e-9)
