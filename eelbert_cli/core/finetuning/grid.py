"""The fine-tuning grid: every (lr, epochs, batch size) for every seed, selected on dev.

The selected config's best-seed model is what is saved and shipped; every run's dev metrics are
kept for the results tables (mean ± std over seeds).
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from tokenizers import Tokenizer

from eelbert_cli.core.data.tasks import Task, TaskData
from eelbert_cli.core.data.tasks.record import TASK_FILE
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.finetuning.encoding import encode_split, with_teacher
from eelbert_cli.core.finetuning.run import RunConfig, RunResult, train_run
from eelbert_cli.core.finetuning.task_distillation import TeacherTargets
from eelbert_cli.core.scoring.metrics import std
from eelbert_cli.core.spec import AUTO_EPOCHS_MAX, FinetuneSpec, GridSpec, auto_epochs
from eelbert_cli.core.targets import ModelSource
from eelbert_cli.core.training.checkpoints import save_with_tokenizer


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


@dataclass
class FinetuneResult:
    task: Task
    source: str
    data_source: str
    configs: list[ConfigSummary]
    selected: ConfigSummary
    seeds: list[int]
    submission_files: list[str] = field(default_factory=list)
    distillation: dict | None = None  # the teacher and its settings, when the run distilled

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
            # classification: the saved model's per-class table and confusion matrix on each labelled split
            **({"classes": {"seed": best.seed, "splits": best.class_reports}} if best.class_reports else {}),
            "submission_files": self.submission_files,
            **({"distillation": self.distillation} if self.distillation else {}),
        }


class RunProgress(Protocol):
    """What a progress display does for one training run: a tick per step, a line per epoch."""

    def advance(self) -> None: ...

    def epoch(self, epoch: int, train_loss: float, dev_score: float) -> None: ...


def grid_configs(grid: GridSpec, train_examples: int) -> list[RunConfig]:
    """Every (lr, epochs, batch size), in that nesting; ``epochs: auto`` resolved per batch size."""

    def epochs_for(batch: int) -> list[int]:
        return list(grid.epochs) if grid.epochs != "auto" else [auto_epochs(train_examples, batch)]

    every_epochs = sorted({epochs for batch in grid.batch_size for epochs in epochs_for(batch)}, key=[
        *(grid.epochs if grid.epochs != "auto" else []), *range(1, AUTO_EPOCHS_MAX + 1)].index)
    return [RunConfig(lr, epochs, batch) for lr, epochs, batch in itertools.product(grid.lr, every_epochs, grid.batch_size)
            if epochs in epochs_for(batch)]


def run_grid(
    source: ModelSource,
    data: TaskData,
    tokenizer: Tokenizer,
    grid: GridSpec,
    settings: FinetuneSpec,
    progress: Callable[[str, int, int], RunProgress] | None = None,
    teacher: TeacherTargets | None = None,
) -> FinetuneResult:
    """Train every (lr, epochs, batch size) for every seed; select the config with the best mean dev
    score. With ``teacher``, the training set gains the teacher-labelled extras and soft targets."""
    task = data.task
    if settings.max_seq_len > source.max_positions:
        raise EelbertError(
            f"finetune.max_seq_len {settings.max_seq_len} exceeds the {source.max_positions} positions of {source.description}; lower it"
        )
    encoded = {name: encode_split(tokenizer, split, settings.max_seq_len) for name, split in data.splits.items()}
    if len(encoded["train"]) == 0:
        raise EelbertError(f"{task.name}: the training split is empty")
    if teacher is not None:
        extra = encode_split(tokenizer, teacher.extra, settings.max_seq_len)
        encoded["train"] = with_teacher(encoded["train"], teacher.train, extra, teacher.extra_targets, task.type == "regression")
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    configs = grid_configs(grid, len(encoded["train"]))
    summaries = []
    for config in configs:
        runs = []
        for seed in grid.seeds:
            steps = -(-len(encoded["train"]) // config.batch_size) * config.epochs
            shown = progress(f"{task.name} {config.label()} seed={seed}", steps, config.epochs) if progress else None
            runs.append(train_run(source, task, encoded, config, seed, settings, pad_id, keep_weights=True,
                                  on_step=shown.advance if shown else None, on_epoch=shown.epoch if shown else None))
        summary = ConfigSummary(config, runs)
        for run in runs:  # keep weights only for the best seed of each config
            if run is not summary.best_run:
                run.state_dict = None
        summaries.append(summary)
    selected = max(summaries, key=lambda s: s.mean_score)
    for summary in summaries:
        if summary is not selected:
            summary.best_run.state_dict = None
    distillation = teacher.describe() if teacher is not None else None
    return FinetuneResult(task, source.description, data.source, summaries, selected, list(grid.seeds), distillation=distillation)


def save_finetuned(result: FinetuneResult, source: ModelSource, tokenizer: Tokenizer, settings: FinetuneSpec, directory: Path,
                   custom_task: dict | None = None) -> None:
    """The selected config's best-seed model, with tokenizer and what `eelbert evaluate` needs to
    score it again: the task (a custom task's whole definition, its files as absolute paths)."""
    best = result.selected.best_run
    model = source.build(result.task, settings)
    model.load_state_dict(best.state_dict)
    if result.task.type == "classification":  # transformers' pipeline("text-classification") names labels from these
        model.config.id2label = dict(enumerate(result.task.labels))
        model.config.label2id = {label: index for index, label in enumerate(result.task.labels)}
    tokenizer.no_truncation()
    task_description = {
        "task": result.task.name, "type": result.task.type, "labels": list(result.task.labels), "max_seq_len": settings.max_seq_len,
        "text_inputs": len(result.task.text_columns),
        "selected": asdict(result.selected.config), "seed": best.seed,
    }
    if custom_task is not None:
        task_description["custom_task"] = custom_task
    save_with_tokenizer(model, tokenizer, directory, {TASK_FILE: json.dumps(task_description, indent=2) + "\n"})
