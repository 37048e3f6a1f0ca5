"""The average of a named task group other than GLUE (``glue: {suite: offline}``): the mean of one
named metric per task (``registry.Suite.averaged``), on dev and, where every task ran with labelled
test splits, on test. A subset run reports the mean over what ran and names what did not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from eelbert_cli.core.data.tasks.registry import SUITES, TASKS, Suite
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.scoring.metrics import metric_value

SUITE_SPLITS = ("validation", "test")


@dataclass(frozen=True)
class SuiteScore:
    suite: Suite
    split: str
    score: float  # percent
    numbers: dict[str, float]  # task -> the one metric it puts into the average
    missing: tuple[str, ...]  # suite tasks without results on this split

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.numbers)

    def describe(self) -> str:
        subset = f"subset: {', '.join(self.tasks)}; not run: {', '.join(self.missing)}"
        coverage = f"all {len(self.numbers)} tasks" if not self.missing else subset
        parts = ", ".join(f"{task} {self.suite.metric(task)}" for task in self.tasks)
        where = "dev" if self.split == "validation" else self.split
        return f"{self.suite.title} score ({where}, percent): {self.score:.1f} (mean of {parts}; {coverage})"

    def as_dict(self) -> dict:
        return {
            "suite": self.suite.name,
            "split": self.split,
            "score": self.score,
            "metrics": {task: self.suite.metric(task) for task in self.tasks},
            "numbers": self.numbers,
            "tasks": list(self.tasks),
            "missing": list(self.missing),
            "text": self.describe(),
        }


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise EelbertError(f"unknown task suite {name!r}; suites with one average: {', '.join(SUITES)} (GLUE has its own two rules)")
    return SUITES[name]


def suite_score(results: Mapping[str, Mapping[str, Mapping[str, float]]], suite: str | Suite, split: str = "validation") -> SuiteScore:
    """The suite's average from ``results[task][split][metric]`` (percent, as compute_metrics gives
    them), over the suite's tasks that have ``split``; an error when none has."""
    suite = suite if isinstance(suite, Suite) else get_suite(suite)
    ran = [task for task in suite.tasks if split in (results.get(task) or {})]
    if not ran:
        raise EelbertError(f"no results on split {split!r} for any task of the {suite.title} ({', '.join(suite.tasks)})")
    numbers = {task: metric_value(TASKS[task], results[task], split, suite.metric(task)) for task in ran}
    return SuiteScore(suite, split, float(np.mean(list(numbers.values()))), numbers, tuple(t for t in suite.tasks if t not in ran))


def suite_scores(task_results: Mapping[str, Mapping], suite: str) -> dict[str, dict]:
    """The suite's average per split (dev, and test where tasks have labelled test results) from a
    run's ``results.json`` task entries (mean over seeds of the selected config)."""
    means = {name: entry["selected_mean"] for name, entry in task_results.items()}
    scores = {}
    for split in SUITE_SPLITS:
        try:
            scores[split] = suite_score(means, suite, split).as_dict()
        except EelbertError:
            continue
    return scores
