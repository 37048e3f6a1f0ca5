"""Fine-tuning one task: encode once, train a grid of configs x seeds, select on dev, report.

Batches are grouped by length and padded only to their own longest example, so short-sentence
tasks (most of GLUE) spend their compute on tokens rather than padding.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from eelbert_cli.core.checkpointing import save_with_tokenizer
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.metrics import compute_metrics, task_score
from eelbert_cli.core.models import EelbertConfig, build_model, is_checkpoint_dir
from eelbert_cli.core.optim import lr_multiplier, make_adamw, set_lr
from eelbert_cli.core.precision import autocast, autocast_dtype
from eelbert_cli.core.resources import checkpoint_path
from eelbert_cli.core.tasks import Split, Task, TaskData
from eelbert_cli.core.tokenization import load_tokenizer

TASK_FILE = "task.json"


# ------------------------------------------------------------------------------------ encoding
@dataclass
class Encoded:
    """One split as token ids, ready for dynamic padding."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def encode_split(tokenizer: Tokenizer, split: Split, max_seq_len: int) -> Encoded:
    tokenizer.enable_truncation(max_length=max_seq_len, strategy="longest_first")
    inputs = list(split.text_a) if split.text_b is None else list(zip(split.text_a, split.text_b))
    encodings = tokenizer.encode_batch(inputs, add_special_tokens=True)
    labels = None if split.labels is None else np.asarray(split.labels)
    return Encoded([e.ids for e in encodings], [e.type_ids for e in encodings], labels)


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
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.checkpoint).max_position_embeddings

    def tokenizer(self, fallback: str) -> Tokenizer:
        if self.checkpoint is not None and any((self.checkpoint / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
            return load_tokenizer(self.checkpoint)
        return load_tokenizer(fallback)

    def build(self, task: Task, dropout: float | None) -> nn.Module:
        head = {"num_labels": task.num_labels, "problem_type": "regression" if task.type == "regression" else "single_label_classification"}
        if dropout is not None:
            head |= {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
        if self.checkpoint is None:
            return build_model(self.config, "sequence-classification", **head)
        from transformers import AutoModelForSequenceClassification

        if not any(self.checkpoint.glob("*.safetensors")):
            raise EelbertError(f"{self.checkpoint} has no .safetensors weights; eelbert loads weights only from safetensors")
        return AutoModelForSequenceClassification.from_pretrained(self.checkpoint, use_safetensors=True, **head)


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


@dataclass
class FinetuneSettings:
    """The knobs of a run, separate from the spec so Python callers and benchmarks need no YAML."""

    max_seq_len: int = 128
    warmup: float = 0.1
    schedule: str = "linear"
    weight_decay: float = 0.01
    dropout: float | None = 0.1
    clip_norm: float | None = 1.0
    eval_batch_size: int = 256
    precision: str = "auto"
    device: str = "auto"

    @property
    def torch_device(self) -> torch.device:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise EelbertError("finetune.device is 'cuda' but no CUDA device is visible")
        return torch.device("cuda" if torch.cuda.is_available() and self.device != "cpu" else "cpu")

    def autocast(self, device: torch.device):
        return autocast(device, autocast_dtype(self.precision, device))


def task_loss(task: Task, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if task.type == "regression":
        return F.mse_loss(logits.float().squeeze(-1), labels.float())
    return F.cross_entropy(logits.float(), labels.long())


def predict(model: nn.Module, task: Task, data: Encoded, settings: FinetuneSettings, pad_id: int) -> tuple[np.ndarray, float]:
    """Predictions (label ids, or scores for regression) in the split's order, and examples/s."""
    device = next(model.parameters()).device
    model.eval()
    order = np.argsort(-data.lengths, kind="stable")
    outputs = np.empty(len(data), dtype=np.float32 if task.type == "regression" else np.int64)
    started = time.perf_counter()
    with torch.no_grad(), settings.autocast(device):
        for start in range(0, len(order), settings.eval_batch_size):
            rows = order[start : start + settings.eval_batch_size]
            logits = model(**collate(data, rows, pad_id, device)).logits.float()
            values = logits.squeeze(-1) if task.type == "regression" else logits.argmax(dim=-1)
            outputs[rows] = values.cpu().numpy()
    model.train()
    return outputs, len(data) / max(time.perf_counter() - started, 1e-9)


def train_run(
    source: ModelSource,
    task: Task,
    encoded: dict[str, Encoded],
    config: RunConfig,
    seed: int,
    settings: FinetuneSettings,
    pad_id: int,
    keep_weights: bool = False,
    on_step: Callable[[], None] | None = None,
) -> RunResult:
    device = settings.torch_device
    torch.manual_seed(seed)
    model = source.build(task, settings.dropout).to(device).train()
    optimizer = make_adamw(model, config.lr, settings.weight_decay, (0.9, 0.999), device)
    train = encoded["train"]
    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-len(train) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    labels = torch.as_tensor(train.labels)
    step = 0
    train_seconds = 0.0
    for _ in range(config.epochs):
        for rows in length_grouped_batches(train.lengths, config.batch_size, rng):
            started = time.perf_counter()
            set_lr(optimizer, config.lr * lr_multiplier((step + 1) / total_steps, settings.warmup, settings.schedule))
            with settings.autocast(device):
                logits = model(**collate(train, rows, pad_id, device)).logits
            loss = task_loss(task, logits, labels[rows].to(device))
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


# -------------------------------------------------------------------------------------- grid
@dataclass
class ConfigSummary:
    config: RunConfig
    runs: list[RunResult]

    @property
    def mean_score(self) -> float:
        return statistics.fmean(r.score for r in self.runs)

    def aggregate(self, reducer: Callable[[list[float]], float]) -> dict[str, dict[str, float]]:
        splits = self.runs[0].metrics
        return {s: {m: reducer([r.metrics[s][m] for r in self.runs]) for m in splits[s]} for s in splits}

    @property
    def best_run(self) -> RunResult:
        return max(self.runs, key=lambda r: r.score)


def std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class FinetuneResult:
    task: Task
    source: str
    data_source: str
    configs: list[ConfigSummary]
    selected: ConfigSummary
    seeds: list[int]
    submission_files: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """metric -> mean dev value of the selected config (metric_split where a task has two dev splits)."""
        means = self.selected.aggregate(statistics.fmean)
        eval_splits = self.task.eval_splits
        return {
            (metric if len(eval_splits) == 1 else f"{metric}_{split.removeprefix('validation_')}"): value
            for split in eval_splits
            for metric, value in means[split].items()
        }

    def as_dict(self) -> dict:
        def config_entry(summary: ConfigSummary) -> dict:
            return {
                **asdict(summary.config),
                "mean_score": summary.mean_score,
                "mean": summary.aggregate(statistics.fmean),
                "std": summary.aggregate(std),
                "per_seed": {str(r.seed): r.metrics for r in summary.runs},
            }

        best = self.selected.best_run
        return {
            "task": self.task.name,
            "title": self.task.title,
            "type": self.task.type,
            "model": self.source,
            "data": self.data_source,
            "seeds": self.seeds,
            "summary": self.summary(),
            "score": self.selected.mean_score,
            "selected": {**asdict(self.selected.config), "selection": "highest mean dev score over seeds"},
            "selected_mean": self.selected.aggregate(statistics.fmean),
            "selected_std": self.selected.aggregate(std),
            "configs": [config_entry(c) for c in self.configs],
            "throughput": {
                "train_examples_per_second": statistics.fmean(r.train_examples_per_second for c in self.configs for r in c.runs),
                "eval_examples_per_second": statistics.fmean(r.eval_examples_per_second for c in self.configs for r in c.runs),
            },
            "saved_model_seed": best.seed,
            "submission_files": self.submission_files,
        }


def run_grid(
    source: ModelSource,
    data: TaskData,
    tokenizer: Tokenizer,
    grid,
    settings: FinetuneSettings,
    progress: Callable[[str, int], Callable[[], None]] | None = None,
) -> FinetuneResult:
    """Train every (lr, epochs, batch size) for every seed; select the config with the best mean dev score."""
    task = data.task
    if settings.max_seq_len > source.max_positions:
        raise EelbertError(
            f"finetune.max_seq_len {settings.max_seq_len} exceeds the {source.max_positions} positions of {source.description}; lower it"
        )
    encoded = {name: encode_split(tokenizer, split, settings.max_seq_len) for name, split in data.splits.items()}
    if len(encoded["train"]) == 0:
        raise EelbertError(f"{task.name}: the training split is empty")
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    configs = [RunConfig(lr, epochs, batch) for lr, epochs, batch in itertools.product(grid.lr, grid.epochs, grid.batch_size)]
    summaries = []
    for config in configs:
        runs = []
        for seed in grid.seeds:
            steps = -(-len(encoded["train"]) // config.batch_size) * config.epochs
            tick = progress(f"{task.name} {config.label()} seed={seed}", steps) if progress else None
            runs.append(train_run(source, task, encoded, config, seed, settings, pad_id, keep_weights=True, on_step=tick))
        summary = ConfigSummary(config, runs)
        for run in runs:  # keep weights only for the best seed of each config
            if run is not summary.best_run:
                run.state_dict = None
        summaries.append(summary)
    selected = max(summaries, key=lambda s: s.mean_score)
    for summary in summaries:
        if summary is not selected:
            summary.best_run.state_dict = None
    return FinetuneResult(task, source.description, data.source, summaries, selected, list(grid.seeds))


def save_finetuned(result: FinetuneResult, source: ModelSource, tokenizer: Tokenizer, settings: FinetuneSettings, directory: Path) -> None:
    """The selected config's best-seed model, with tokenizer and task description, for `eelbert evaluate`."""
    best = result.selected.best_run
    model = source.build(result.task, settings.dropout)
    model.load_state_dict(best.state_dict)
    tokenizer.no_truncation()
    task_description = {"task": result.task.name, "max_seq_len": settings.max_seq_len, "selected": asdict(result.selected.config), "seed": best.seed}
    save_with_tokenizer(model, tokenizer, directory, {TASK_FILE: json.dumps(task_description, indent=2) + "\n"})
