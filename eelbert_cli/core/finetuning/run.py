"""One fine-tuning run: one model on one task with one config and seed, trained and scored.

The settings are the spec's ``finetune`` section (:class:`FinetuneSpec`) itself; the encoding and
batching are ``encoding``'s, the grid over configs and seeds and selection on dev ``grid``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from eelbert_cli.core.data.tasks import Task
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.finetuning.encoding import Encoded, collate, length_grouped_batches, predict
from eelbert_cli.core.scoring.metrics import class_report, compute_metrics, task_score
from eelbert_cli.core.spec import DistillSpec, FinetuneSpec
from eelbert_cli.core.targets import ModelSource
from eelbert_cli.core.training.optim import lr_multiplier, make_adamw, set_lr
from eelbert_cli.core.training.precision import autocast, autocast_dtype
from eelbert_cli.core.training.runtime import pick_device


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
    class_reports: dict[str, dict] = field(default_factory=dict)  # classification: split -> per-class table and confusion


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


def _loss_function(task: Task, train: Encoded, settings: FinetuneSpec, device: torch.device):
    """Gold labels only, or (with a teacher's targets on the training set) the distillation loss."""
    if train.targets is None:
        return lambda logits, gold, rows: task_loss(task, logits, gold)
    targets, has_gold, distill = torch.as_tensor(train.targets), torch.as_tensor(train.has_gold), settings.distillation or DistillSpec()
    return lambda logits, gold, rows: distillation_loss(task, logits, gold, has_gold[rows].to(device), targets[rows].to(device), distill)


def dev_score(model: torch.nn.Module, task: Task, encoded: dict[str, Encoded], settings: FinetuneSpec, pad_id: int) -> float:
    """The task's score on its evaluation splits now (the model is left in training mode)."""
    metrics = {split: compute_metrics(task, predict(model, task, encoded[split], settings, pad_id)[0], encoded[split].labels)
               for split in task.eval_splits}
    return task_score(task, metrics)


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
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> RunResult:
    """Train one config with one seed and score it. ``on_epoch(epoch, mean train loss, dev score)``
    is called after every epoch (a dev pass each; it draws no random numbers, so results are the
    same with it or without)."""
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
    for epoch in range(1, config.epochs + 1):
        epoch_loss = torch.zeros((), device=device)
        epoch_steps = 0
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
            epoch_loss += loss.detach().float()
            epoch_steps += 1
            train_seconds += time.perf_counter() - started
            if on_step is not None:
                on_step()
        if on_epoch is not None and epoch < config.epochs:  # the last epoch's dev score is the run's own, below
            on_epoch(epoch, epoch_loss.item() / max(epoch_steps, 1), dev_score(model, task, encoded, settings, pad_id))

    metrics, test_predictions, eval_rates, class_reports = {}, {}, [], {}
    for split in task.eval_splits:
        predictions, rate = predict(model, task, encoded[split], settings, pad_id)
        metrics[split] = compute_metrics(task, predictions, encoded[split].labels)
        eval_rates.append(rate)
        if task.type == "classification":
            class_reports[split] = class_report(task, predictions, encoded[split].labels)
    for split in task.test_splits:
        if split in encoded:
            predictions, _ = predict(model, task, encoded[split], settings, pad_id)
            test_predictions[split] = predictions.tolist()
            if encoded[split].labels is not None:
                metrics[split] = compute_metrics(task, predictions, encoded[split].labels)
                if task.type == "classification":
                    class_reports[split] = class_report(task, predictions, encoded[split].labels)
    if on_epoch is not None:
        on_epoch(config.epochs, epoch_loss.item() / max(epoch_steps, 1), task_score(task, metrics))
    return RunResult(
        config,
        seed,
        metrics,
        task_score(task, metrics),
        test_predictions,
        train_examples_per_second=len(train) * config.epochs / max(train_seconds, 1e-9),
        eval_examples_per_second=float(np.mean(eval_rates)),
        state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()} if keep_weights else None,
        class_reports=class_reports,
    )
