"""GLUE metrics in numpy, task scores, and the GLUE score under its two named rules.

Scale: the five metric functions (:func:`accuracy` ... :func:`spearman`) return raw values (a fraction,
or a correlation in [-1, 1]); everything task-level — :func:`compute_metrics`, :func:`task_score` and
:func:`glue_score` — is in percent (x100, e.g. 84.6), the way GLUE and the BERT paper report them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.tasks import GLUE_TASKS, TASKS, Task, resolve_task_name

GlueRule = Literal["leaderboard", "bert-paper"]
GLUE_RULES: tuple[GlueRule, ...] = ("leaderboard", "bert-paper")
# The nine numbers of the BERT paper's GLUE average (Devlin et al. 2019, Table 1): WNLI is left out.
BERT_PAPER_TASKS = tuple(name for name in GLUE_TASKS if TASKS[name].paper_numbers)


def _pair(predictions: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    predicted, gold = np.asarray(predictions), np.asarray(labels)
    if predicted.ndim != 1 or predicted.shape != gold.shape or predicted.size == 0:
        raise ValueError(f"predictions {predicted.shape} and labels {gold.shape} must be equally long, non-empty 1-D")
    return predicted, gold


def accuracy(predictions: ArrayLike, labels: ArrayLike) -> float:
    predicted, gold = _pair(predictions, labels)
    return float(np.mean(predicted == gold))


def f1_binary(predictions: ArrayLike, labels: ArrayLike, positive: int = 1) -> float:
    """F1 of the positive class (GLUE: MRPC "equivalent", QQP "duplicate"); 0 when it never occurs."""
    predicted, gold = _pair(predictions, labels)
    true_positive = np.sum((predicted == positive) & (gold == positive))
    false_positive = np.sum((predicted == positive) & (gold != positive))
    false_negative = np.sum((predicted != positive) & (gold == positive))
    denominator = 2 * true_positive + false_positive + false_negative
    return float(2 * true_positive / denominator) if denominator else 0.0


def matthews_corrcoef(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Matthews correlation (Gorodkin's multi-class form; the usual one for two classes).

    0 when either side is constant: the correlation is undefined there and 0 is what sklearn reports.
    """
    predicted, gold = _pair(predictions, labels)
    classes, codes = np.unique(np.concatenate([gold, predicted]), return_inverse=True)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(confusion, (codes[: len(gold)], codes[len(gold) :]), 1)
    total, correct = confusion.sum(), np.trace(confusion)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    covariance = correct * total - true_counts @ predicted_counts
    spread = (total**2 - predicted_counts @ predicted_counts) * (total**2 - true_counts @ true_counts)
    return float(covariance / np.sqrt(spread)) if spread else 0.0


def pearson(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Pearson correlation; 0 when either side is constant (undefined there; keeps averages finite)."""
    predicted, gold = _pair(predictions, labels)
    x = predicted.astype(np.float64) - predicted.mean()
    y = gold.astype(np.float64) - gold.mean()
    spread = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / spread) if spread else 0.0


def average_ranks(values: ArrayLike) -> np.ndarray:
    """1-based ranks where tied values share the mean of their positions (as scipy's rankdata)."""
    array = np.asarray(values)
    order = np.argsort(array, kind="stable")
    ordered = array[order]
    starts_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], len(array))
    ranks = np.empty(len(array), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2)[group]
    return ranks


def spearman(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Spearman correlation: Pearson of the average ranks (ties handled as scipy does)."""
    predicted, gold = _pair(predictions, labels)
    return pearson(average_ranks(predicted), average_ranks(gold))


METRICS: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "accuracy": accuracy,
    "f1": f1_binary,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def compute_metrics(task: Task, predictions: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """The task's metrics on one split, in percent. Classification predictions are label ids."""
    return {name: 100.0 * METRICS[name](predictions, labels) for name in task.metrics}


def task_score(task: Task, metrics_by_split: Mapping[str, Mapping[str, float]], splits: Sequence[str] | None = None) -> float:
    """One number per task (percent): the mean of its metrics, averaged over its evaluation splits —
    MRPC/QQP mean of F1 and accuracy, STS-B of Pearson and Spearman, MNLI of matched and mismatched."""
    chosen = tuple(splits) if splits is not None else task.eval_splits
    per_split = [float(np.mean([_metric(task, metrics_by_split, split, metric) for metric in task.metrics])) for split in chosen]
    return float(np.mean(per_split))


def _metric(task: Task, metrics_by_split: Mapping[str, Mapping[str, float]], split: str, metric: str) -> float:
    try:
        return float(metrics_by_split[split][metric])
    except KeyError:
        found = ", ".join(f"{name}: {', '.join(values)}" for name, values in metrics_by_split.items()) or "nothing"
        raise EelbertError(f"task {task.name!r} needs {metric!r} on split {split!r} to be scored; results have {found}") from None


@dataclass(frozen=True)
class GlueScore:
    """A GLUE score with the rule that made it and the tasks it covers (a subset run says so)."""

    rule: GlueRule
    score: float  # percent
    numbers: dict[str, float]  # what was averaged: task scores (leaderboard) or the paper's numbers
    tasks: tuple[str, ...]  # tasks that counted
    missing: tuple[str, ...]  # tasks the rule averages over that did not run

    @property
    def complete(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        coverage = f"all {len(self.tasks)} tasks" if self.complete else f"subset: {', '.join(self.tasks)}; not run: {', '.join(self.missing)}"
        coverage = f"mean of {len(self.numbers)} numbers, {coverage}"
        return f"GLUE score ({self.rule} rule, percent): {self.score:.1f} ({coverage})"


def glue_score(results: Mapping[str, Mapping[str, Mapping[str, float]]], rule: GlueRule = "leaderboard") -> GlueScore:
    """The GLUE score from ``results[task][split][metric]`` in percent (as compute_metrics gives them).

    leaderboard rule: mean over the nine tasks of each task's :func:`task_score`.
    bert-paper rule: plain mean of MNLI-m, MNLI-mm, QQP F1, QNLI, SST-2, CoLA MCC, STS-B Spearman,
    MRPC F1 and RTE (WNLI left out). Tasks outside GLUE (rotten-tomatoes, custom tasks) never count.
    """
    if rule not in GLUE_RULES:
        raise EelbertError(f"unknown GLUE rule {rule!r}; rules: {', '.join(GLUE_RULES)}")
    by_name = {resolve_task_name(name): value for name, value in results.items()}
    universe = GLUE_TASKS if rule == "leaderboard" else BERT_PAPER_TASKS
    ran = tuple(name for name in universe if name in by_name)
    if not ran:
        raise EelbertError(f"no GLUE task results to score under the {rule} rule; it averages over {', '.join(universe)}")
    numbers: dict[str, float] = {}
    for name in ran:
        task = TASKS[name]
        if rule == "leaderboard":
            numbers[task.title] = task_score(task, by_name[name])
        else:
            for label, split, metric in task.paper_numbers:
                numbers[label] = _metric(task, by_name[name], split, metric)
    return GlueScore(
        rule=rule,
        score=float(np.mean(list(numbers.values()))),
        numbers=numbers,
        tasks=ran,
        missing=tuple(name for name in universe if name not in ran),
    )
