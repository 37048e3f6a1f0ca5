"""Fine-tuning one model on one task with one config and seed: encode, batch, train, predict.

Batches are grouped by length and padded only to their own longest example, so short-sentence
tasks (most of GLUE) spend their compute on tokens rather than padding. The settings are the
spec's ``finetune`` section (:class:`FinetuneSpec`) itself; the grid over configs and seeds, and
selection on dev, are ``evaluation.grid``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from eelbert_cli.core.data.resources import checkpoint_path
from eelbert_cli.core.data.tasks import Split, Task
from eelbert_cli.core.data.tokenization import load_tokenizer
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.evaluation.metrics import compute_metrics, task_score
from eelbert_cli.core.model.config import EelbertConfig
from eelbert_cli.core.model.modeling import build_model, is_checkpoint_dir, load_model
from eelbert_cli.core.spec import DistillSpec, FinetuneSpec
from eelbert_cli.core.training.optim import lr_multiplier, make_adamw, set_lr
from eelbert_cli.core.training.precision import autocast, autocast_dtype
from eelbert_cli.core.training.runtime import pick_device


# ------------------------------------------------------------------------------------ encoding
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
    inputs = list(split.text_a) if split.text_b is None else list(zip(split.text_a, split.text_b))
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


# ------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class ModelSource:
    """Where fine-tuning starts: a checkpoint directory (ours or any HF BERT) or a fresh config."""

    description: str
    checkpoint: Path | None = None
    config: EelbertConfig | None = None

    @property
    def max_positions(self) -> int:
        if self.checkpoint is None:
            return self.config.max_position_embeddings
        from eelbert_cli.core.targets import checkpoint_config

        return checkpoint_config(self.checkpoint).max_position_embeddings

    def tokenizer(self, fallback: str) -> Tokenizer:
        if self.checkpoint is not None and any((self.checkpoint / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
            return load_tokenizer(self.checkpoint)
        return load_tokenizer(fallback)

    def build(self, task: Task, settings: FinetuneSpec) -> nn.Module:
        head = {
            "num_labels": task.num_labels,
            "problem_type": "regression" if task.type == "regression" else "single_label_classification",
            "classifier_pooling": settings.pooling,
        }
        if settings.dropout is not None:
            head |= {"hidden_dropout_prob": settings.dropout, "attention_probs_dropout_prob": settings.dropout}
        if self.checkpoint is None:
            return build_model(self.config, "sequence-classification", **head)
        return load_model(self.checkpoint, "sequence-classification", **head)


def checkpoint_source(name_or_path: str) -> ModelSource:
    path = checkpoint_path(name_or_path)
    if not is_checkpoint_dir(path):
        raise EelbertError(f"fine-tuning checkpoint {name_or_path} is not a directory with a config.json")
    return ModelSource(str(name_or_path), checkpoint=path)


# ----------------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class RunConfig:
    lr: float
    epochs: int
    batch_size: int

    def label(self) -> str:
        return f"lr={self.lr:g} epochs={self.epochs} batch={self.batch_size}"


@dataclass
class RunResult:
    config: RunConfig
    seed: int
    metrics: dict[str, dict[str, float]]  # split -> metric -> percent
    score: float  # the task's dev score (percent)
    test_predictions: dict[str, list]
    train_examples_per_second: float
    eval_examples_per_second: float
    state_dict: dict[str, torch.Tensor] | None = None


def task_loss(task: Task, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if task.type == "regression":
        return F.mse_loss(logits.float().squeeze(-1), labels.float())
    return F.cross_entropy(logits.float(), labels.long())


def distillation_loss(task: Task, logits: torch.Tensor, gold: torch.Tensor, has_gold: torch.Tensor, targets: torch.Tensor,
                      settings: DistillSpec) -> torch.Tensor:
    """Per example: ``alpha`` x teacher term + (1 - alpha) x gold term where gold exists, the teacher
    term alone where it does not. Classification: KL between temperature-softened distributions,
    scaled by T^2 so its gradients keep their size; regression: squared error to the teacher."""
    logits, targets = logits.float(), targets.float()
    if task.type == "regression":
        teacher_term = (logits.squeeze(-1) - targets.squeeze(-1)) ** 2
        gold_term = (logits.squeeze(-1) - torch.nan_to_num(gold.float())) ** 2
    else:
        t = settings.temperature
        student, teacher = F.log_softmax(logits / t, dim=-1), F.log_softmax(targets / t, dim=-1)
        teacher_term = F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1) * t * t
        gold_term = F.cross_entropy(logits, gold.long().clamp(min=0), reduction="none")
    return torch.where(has_gold, settings.alpha * teacher_term + (1 - settings.alpha) * gold_term, teacher_term).mean()


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


def _loss_function(task: Task, train: Encoded, settings: FinetuneSpec, device: torch.device):
    """Gold labels only, or (with a teacher's targets on the training set) the distillation loss."""
    if train.targets is None:
        return lambda logits, gold, rows: task_loss(task, logits, gold)
    targets, has_gold, distill = torch.as_tensor(train.targets), torch.as_tensor(train.has_gold), settings.distillation or DistillSpec()
    return lambda logits, gold, rows: distillation_loss(task, logits, gold, has_gold[rows].to(device), targets[rows].to(device), distill)


def train_run(
    source: ModelSource,
    task: Task,
    encoded: dict[str, Encoded],
    config: RunConfig,
    seed: int,
    settings: FinetuneSpec,
    pad_id: int,
    keep_weights: bool = False,
    on_step: Callable[[], None] | None = None,
) -> RunResult:
    device = pick_device(settings.device, "finetune.device")
    dtype = autocast_dtype(settings.precision, device)
    torch.manual_seed(seed)
    model = source.build(task, settings).to(device).train()
    optimizer = make_adamw(model, config.lr, settings.weight_decay, (0.9, 0.999), device)
    train = encoded["train"]
    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-len(train) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    labels = torch.as_tensor(train.labels)
    loss_of = _loss_function(task, train, settings, device)
    step = 0
    train_seconds = 0.0
    for _ in range(config.epochs):
        for rows in length_grouped_batches(train.lengths, config.batch_size, rng):
            started = time.perf_counter()
            set_lr(optimizer, config.lr * lr_multiplier((step + 1) / total_steps, settings.warmup, settings.schedule))
            with autocast(device, dtype):
                logits = model(**collate(train, rows, pad_id, device)).logits
            loss = loss_of(logits, labels[rows].to(device), rows)
            if not torch.isfinite(loss):
                raise EelbertError(f"{task.name}: the loss became NaN/inf at step {step} with {config.label()}; lower the learning rate")
            loss.backward()
            if settings.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_seconds += time.perf_counter() - started
            if on_step is not None:
                on_step()

    metrics, test_predictions, eval_rates = {}, {}, []
    for split in task.eval_splits:
        predictions, rate = predict(model, task, encoded[split], settings, pad_id)
        metrics[split] = compute_metrics(task, predictions, encoded[split].labels)
        eval_rates.append(rate)
    for split in task.test_splits:
        if split in encoded:
            predictions, _ = predict(model, task, encoded[split], settings, pad_id)
            test_predictions[split] = predictions.tolist()
            if encoded[split].labels is not None:
                metrics[split] = compute_metrics(task, predictions, encoded[split].labels)
    return RunResult(
        config,
        seed,
        metrics,
        task_score(task, metrics),
        test_predictions,
        train_examples_per_second=len(train) * config.epochs / max(train_seconds, 1e-9),
        eval_examples_per_second=float(np.mean(eval_rates)),
        state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()} if keep_weights else None,
    )
