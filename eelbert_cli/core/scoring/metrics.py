"""Task metrics in numpy and the one-number score of a task.

Scale: the metric functions (:func:`accuracy` ... :func:`spearman`) return raw values (a fraction,
or a correlation in [-1, 1]); everything task-level — :func:`compute_metrics` and :func:`task_score`
(and the GLUE score, ``glue.py``) — is in percent (x100, e.g. 84.6), the way GLUE and the BERT paper
report them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from eelbert_cli.core.data.tasks.registry import Task
from eelbert_cli.core.errors import EelbertError


def std(values: list[float]) -> float:
    """The sample standard deviation over seeds (0 for a single seed), as the results tables show it."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


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


def confusion_matrix(predictions: ArrayLike, labels: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns (class ids 0..num_classes-1;
    default: one past the largest id seen)."""
    predicted, gold = _pair(predictions, labels)
    predicted, gold = predicted.astype(np.int64), gold.astype(np.int64)
    size = int(max(predicted.max(), gold.max())) + 1 if num_classes is None else num_classes
    if min(predicted.min(), gold.min()) < 0 or max(predicted.max(), gold.max()) >= size:
        raise ValueError(f"class ids must lie in 0..{size - 1}")
    matrix = np.zeros((size, size), dtype=np.int64)
    np.add.at(matrix, (gold, predicted), 1)
    return matrix


def per_class(confusion: ArrayLike) -> list[dict[str, float | int]]:
    """Precision, recall and F1 (fractions) and support (true count) of each class of a confusion
    matrix (true rows, predicted columns). A class never predicted has precision 0, one that never
    occurs recall 0, and F1 is 0 where precision + recall is (sklearn's ``zero_division=0``)."""
    matrix = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(matrix)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    rows = []
    for tp, p, s in zip(true_positive, predicted, support, strict=True):
        precision = tp / p if p else 0.0
        recall = tp / s if s else 0.0
        f1 = 2 * tp / (p + s) if p + s else 0.0
        rows.append({"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(s)})
    return rows


def macro_f1(predictions: ArrayLike, labels: ArrayLike) -> float:
    """The unweighted mean of every class's F1 (any number of classes), over the classes that occur
    in the labels or the predictions; sklearn's ``f1_score(average="macro")``."""
    predicted, gold = _pair(predictions, labels)
    classes, codes = np.unique(np.concatenate([gold, predicted]), return_inverse=True)
    matrix = confusion_matrix(codes[len(gold) :], codes[: len(gold)], len(classes))
    return float(np.mean([row["f1"] for row in per_class(matrix)]))


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
    "macro_f1": macro_f1,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def compute_metrics(task: Task, predictions: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """The task's metrics on one split (the scored ones, then its extra ones), in percent.
    Classification predictions are label ids."""
    return {name: 100.0 * METRICS[name](predictions, labels) for name in task.reported_metrics}


def class_report(task: Task, predictions: ArrayLike, labels: ArrayLike) -> dict:
    """A classification split's per-class table and confusion matrix, by the task's label names:
    ``{"labels": [...], "per_class": {label: {precision, recall, f1 (percent), support}},
    "confusion": [[count]] (true rows, predicted columns)}``."""
    if task.type != "classification":
        raise EelbertError(f"task {task.name!r} is a regression: it has no classes to report")
    matrix = confusion_matrix(predictions, labels, len(task.labels))
    table = {
        label: {"precision": 100.0 * row["precision"], "recall": 100.0 * row["recall"], "f1": 100.0 * row["f1"], "support": row["support"]}
        for label, row in zip(task.labels, per_class(matrix), strict=True)
    }
    return {"labels": list(task.labels), "per_class": table, "confusion": matrix.tolist()}


def task_score(task: Task, metrics_by_split: Mapping[str, Mapping[str, float]], splits: Sequence[str] | None = None) -> float:
    """One number per task (percent): the mean of its metrics, averaged over its evaluation splits —
    MRPC/QQP mean of F1 and accuracy, STS-B of Pearson and Spearman, MNLI of matched and mismatched."""
    chosen = tuple(splits) if splits is not None else task.eval_splits
    per_split = [float(np.mean([metric_value(task, metrics_by_split, split, metric) for metric in task.metrics])) for split in chosen]
    return float(np.mean(per_split))


def metric_value(task: Task, metrics_by_split: Mapping[str, Mapping[str, float]], split: str, metric: str) -> float:
    try:
        return float(metrics_by_split[split][metric])
    except KeyError:
        found = ", ".join(f"{name}: {', '.join(values)}" for name, values in metrics_by_split.items()) or "nothing"
        raise EelbertError(f"task {task.name!r} needs {metric!r} on split {split!r} to be scored; results have {found}") from None
