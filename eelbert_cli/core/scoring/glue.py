"""The GLUE score under its two named rules (DESIGN.md section 6), always named, always saying
which tasks it covers.

- *leaderboard rule*: mean over the nine tasks of each task's score (a task with two metrics scores
  their mean; MNLI the mean of matched and mismatched);
- *BERT-paper rule*: plain mean of MNLI-m, MNLI-mm, QQP F1, QNLI, SST-2, CoLA MCC, STS-B Spearman,
  MRPC F1 and RTE (WNLI left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from eelbert_cli.core.data.tasks.registry import GLUE_TASKS, TASKS, resolve_task_name
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.scoring.metrics import metric_value, task_score

GlueRule = Literal["leaderboard", "bert-paper"]
GLUE_RULES: tuple[GlueRule, ...] = ("leaderboard", "bert-paper")
# The nine numbers of the BERT paper's GLUE average (Devlin et al. 2019, Table 1): WNLI is left out.
BERT_PAPER_TASKS = tuple(name for name in GLUE_TASKS if TASKS[name].paper_numbers)


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
        subset = f"subset: {', '.join(self.tasks)}; not run: {', '.join(self.missing)}"
        coverage = f"all {len(self.tasks)} tasks" if self.complete else subset
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
                numbers[label] = metric_value(task, by_name[name], split, metric)
    return GlueScore(
        rule=rule,
        score=float(np.mean(list(numbers.values()))),
        numbers=numbers,
        tasks=ran,
        missing=tuple(name for name in universe if name not in ran),
    )


def glue_scores(task_results: dict[str, dict]) -> dict[str, dict]:
    """Both named GLUE rules over whatever GLUE tasks have results (subset runs say which)."""
    per_split = {name: entry["selected_mean"] for name, entry in task_results.items() if name in TASKS}
    scores = {}
    for rule in GLUE_RULES:
        try:
            score = glue_score(per_split, rule)
        except EelbertError:
            continue
        scores[rule] = {"score": score.score, "tasks": list(score.tasks), "missing": list(score.missing), "numbers": score.numbers,
                        "text": score.describe()}
    return scores
