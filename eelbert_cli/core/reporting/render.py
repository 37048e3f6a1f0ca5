"""Rendering runs: the comparison on screen (rich, fitted to the terminal), as Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eelbert_cli.core.reporting.runs import (
    DASH,
    METRICS_FILE,
    PRETRAIN_FILE,
    RESULTS_FILE,
    RUN_FILES,
    SIZE_FILE,
    SPEC_FILE,
    MetricStat,
    RunRow,
    human_count,
)


def task_order(rows: list[RunRow]) -> list[tuple[str, str]]:
    """(task name, title) in order of first appearance (results.json keeps GLUE's order)."""
    order: dict[str, str] = {}
    for row in rows:
        for name, task in row.tasks.items():
            order.setdefault(name, task.title)
    return list(order.items())


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return DASH if value is None else f"{value:{spec}}{suffix}"


def _fmt_mb(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f}" if value >= 100 else f"{value:.2f}"


def _short_budget(row: RunRow) -> str:
    """The pretraining treatment in a few words, for the screen table's second line."""
    if row.treatment == "none":
        return "no pt"
    if row.checkpoint or (row.treatment or "").startswith("checkpoint:"):
        return "from checkpoint"
    return row.budget.replace("pretrained", "pt", 1)


def _new_table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)


def _width(table: Table) -> int:
    console = Console(width=400, file=io.StringIO(), color_system=None)
    return console.measure(table).maximum


def screen_tables(rows: list[RunRow], width: int = 80) -> list[Table]:
    """The comparison table, sized to ``width``; when the task columns would not fit, the task scores
    move to a second table with one row per task (nine GLUE tasks never fit 80 columns as columns)."""
    tasks = task_order(rows)
    main = _fitted_table(rows, tasks, width)
    if main is not None:
        return [main]
    per_task = _new_table("Dev task scores (percent)")
    per_task.add_column("task", no_wrap=True)
    for row in rows:
        per_task.add_column(escape(row.label), justify="right", overflow="fold")
    for name, title in tasks:
        per_task.add_row(escape(title), *(_fmt(r.tasks[name].score) if name in r.tasks else DASH for r in rows))
    per_task.add_row("avg", *(_fmt(r.average_score) for r in rows), style="bold")
    return [_fitted_table(rows, [], width) or _comparison_table(rows, [], _MIN_MODEL_WIDTH), per_task]


_MIN_MODEL_WIDTH = 20


def _model_lines(row: RunRow) -> tuple[str, str]:
    """The model cell: the run's label, then what it is and how it was pretrained."""
    return row.label, f"{row.preset or row.model.split(' · ')[0]}, {_short_budget(row)}"


def _fitted_table(rows: list[RunRow], tasks: list[tuple[str, str]], width: int) -> Table | None:
    """The table with the model column narrowed (wrapped) just enough to fit; None if it cannot."""
    natural = max(len(line) for row in rows for line in _model_lines(row))
    over = _width(_comparison_table(rows, tasks, natural)) - width
    if over <= 0:
        return _comparison_table(rows, tasks, natural)
    if natural - over < _MIN_MODEL_WIDTH:
        return None
    return _comparison_table(rows, tasks, natural - over)


def _comparison_table(rows: list[RunRow], tasks: list[tuple[str, str]], model_width: int) -> Table:
    table = _new_table("Runs compared (dev scores, mean over seeds, percent)")
    table.add_column("model", no_wrap=False, max_width=model_width, overflow="fold")
    for header in ("params", "MB", "smaller"):
        table.add_column(header, justify="right", no_wrap=True)
    for _, title in tasks:
        table.add_column(escape(title), justify="right", no_wrap=True)
    table.add_column("avg", justify="right", no_wrap=True)
    table.add_column("% twin", justify="right", no_wrap=True)
    for row in rows:
        label, what = _model_lines(row)
        cells = [
            f"[bold]{escape(label)}[/]\n[dim]{escape(what)}[/]",
            DASH if row.params is None else human_count(row.params),
            _fmt_mb(row.megabytes),
            _fmt(row.ratio_vs_bert, ".1f", "x"),
            *(_fmt(row.tasks[name].score) if name in row.tasks else DASH for name, _ in tasks),
            _fmt(row.average_score),
            _fmt(row.percent_of_twin),
        ]
        table.add_row(*cells)
    table.caption = "pt: MLM pretraining budget. % twin: avg / avg of the BERT twin run pretrained alike."
    return table


def _metric_columns(rows: list[RunRow], test: bool) -> list[tuple[str, str, str]]:
    """(task name, displayed metric, header) for every dev (or test) metric any run has."""
    columns: dict[tuple[str, str], str] = {}
    for name, title in task_order(rows):
        for row in rows:
            if name in row.tasks:
                for metric in (row.tasks[name].test if test else row.tasks[name].dev):
                    columns.setdefault((name, metric), f"{title} {metric}")
    return [(name, metric, header) for (name, metric), header in columns.items()]


def _stat_text(stat: MetricStat | None) -> str:
    if stat is None:
        return DASH
    return f"{stat.mean:.1f}" if stat.std is None else f"{stat.mean:.1f} ± {stat.std:.1f}"


def _markdown_table(headers: list[str], body: list[list[str]]) -> list[str]:
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(cell(c) for c in line) + " |" for line in body]


def markdown_report(rows: list[RunRow], notes: list[str], plots: dict[str, Path], skipped: dict[str, str]) -> str:
    """Summary table, per-metric dev (and test) tables, pretraining table, then what every column means."""
    tasks = task_order(rows)
    lines = ["# Run comparison", ""]
    headers = ["run", "model", "pretraining", "params", "MB", "smaller than", *[t for _, t in tasks], "avg", "% of twin", "twin"]
    body = []
    for row in rows:
        smaller = DASH if row.ratio_vs_bert is None else f"{row.ratio_vs_bert:.1f}x {row.bert_twin or ''}".strip()
        body.append([
            row.label, row.model, row.budget, DASH if row.params is None else f"{row.params:,}", _fmt_mb(row.megabytes), smaller,
            *(_fmt(row.tasks[n].score) if n in row.tasks else DASH for n, _ in tasks),
            _fmt(row.average_score), _fmt(row.percent_of_twin), row.twin_label or DASH,
        ])
    lines += _markdown_table(headers, body)

    for test in (False, True):
        columns = _metric_columns(rows, test)
        if not columns:
            continue
        kind = "Test (labelled test splits)" if test else "Dev (validation)"
        lines += ["", f"## {kind} metrics: mean ± std over seeds, percent", ""]
        body = [
            [row.label, row.seeds_text,
             *(_stat_text((row.tasks[n].test if test else row.tasks[n].dev).get(m)) if n in row.tasks else DASH for n, m, _ in columns)]
            for row in rows
        ]
        lines += _markdown_table(["run", "seeds", *[h for _, _, h in columns]], body)

    if any(r.pretrained for r in rows):
        lines += ["", "## Pretraining", ""]
        body = [
            [
                row.label, row.budget,
                DASH if row.tokens_pretrained is None else f"{row.tokens_pretrained:,}" + ("" if row.pretrain_complete else " (log)"),
                DASH if row.pretrain_steps is None else f"{row.pretrain_steps:,}", _fmt(row.heldout_loss, ".3f"),
                _fmt(None if row.heldout_accuracy is None else row.heldout_accuracy * 100, ".1f"),
            ]
            for row in rows
        ]
        lines += _markdown_table(["run", "budget", "tokens", "steps", "held-out MLM loss", "held-out MLM acc. %"], body)

    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({path.name})" for name, path in plots.items()]
    lines += ["", "## Notes", ""] + [f"- {note}" for note in _column_notes() + _run_notes(rows) + notes]
    lines += [f"- plot {name} not drawn: {why}" for name, why in skipped.items()]
    return "\n".join(lines) + "\n"


def _column_notes() -> list[str]:
    return [
        "Scores are dev (validation) scores in percent: the fine-tuning config (lr, epochs, batch) selected on dev, mean over seeds. "
        "Test metrics appear only for tasks whose test split is labelled (rotten-tomatoes); GLUE test labels are hidden.",
        "A task column is the task's score: its one metric, or the mean of its two (MRPC, QQP: F1 and accuracy; STS-B: Pearson and "
        "Spearman; MNLI: matched and mismatched), as the GLUE leaderboard averages them. avg: mean of a run's task columns.",
        "params: parameters a fine-tuned model keeps (embeddings + encoder + pooler). MB: its fp32 safetensors file (1 MB = 10^6 bytes). "
        "smaller than: the BERT twin's file size / this run's (size_report.json).",
        "% of twin: this run's average task score / its BERT twin run's × 100, over the tasks both have. The twin is the run given "
        "whose preset is this run's BERT twin (size_report.json) with the same pretraining: both unpretrained, or both pretrained "
        "with the same pretrain.budget (corpus and other settings are not compared).",
        "held-out MLM loss: masked-LM cross-entropy (nats) on the held-out sequences at the end of pretraining.",
    ]


def _run_notes(rows: list[RunRow]) -> list[str]:
    notes = []
    for row in rows:
        missing = [name for name in RUN_FILES if name not in row.files]
        what = {
            SPEC_FILE: "model and budget unknown",
            SIZE_FILE: "no size; run `eelbert size-report` on its spec",
            RESULTS_FILE: "no fine-tuning scores",
            PRETRAIN_FILE: "pretraining unfinished or elsewhere",
            METRICS_FILE: "no loss curve",
        }
        pretrained_here = row.pretrained and not (row.treatment or "").startswith("checkpoint:")
        relevant = [n for n in missing if pretrained_here or n not in (PRETRAIN_FILE, METRICS_FILE)]
        gaps = [f"{name} ({what[name]})" for name in relevant]
        text = f"{row.label}: {row.run_dir}; {row.budget}" + (f"; {row.seeds_text} seed(s)" if row.tasks else "")
        notes.append(text + (f"; missing {', '.join(gaps)}" if gaps else ""))
    all_tasks = {name for name, _ in task_order(rows)}
    scored = [r for r in rows if r.tasks]
    if any(set(r.tasks) != all_tasks for r in scored):
        notes.append("runs cover different tasks: each avg is over the run's own tasks, so compare averages with care")
    return notes


def csv_report(rows: list[RunRow]) -> str:
    """One line per run, every number unrounded; task columns are ``task.split.metric.mean|std``."""
    fixed = [
        "label", "run_dir", "model", "preset", "checkpoint", "hash_kind", "layers", "hidden", "pretrained", "pretraining",
        "params_total", "params_word_embedding", "file_bytes", "megabytes", "ratio_vs_bert", "bert_twin",
        "tokens_pretrained", "pretrain_steps", "heldout_mlm_loss", "heldout_mlm_accuracy",
        "average_score", "tasks_scored", "twin_label", "percent_of_twin",
    ]
    task_columns: dict[str, None] = {}
    for row in rows:
        for name, task in row.tasks.items():
            task_columns.update({f"{name}.score": None, f"{name}.seeds": None})
            for split, metrics in task.splits.items():
                for metric in metrics:
                    task_columns.update({f"{name}.{split}.{metric}.mean": None, f"{name}.{split}.{metric}.std": None})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fixed + list(task_columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record: dict[str, Any] = {
            "label": row.label, "run_dir": row.run_dir, "model": row.model, "preset": row.preset, "checkpoint": row.checkpoint,
            "hash_kind": row.hash_kind, "layers": row.layers, "hidden": row.hidden, "pretrained": row.pretrained,
            "pretraining": row.budget, "params_total": row.params, "params_word_embedding": row.params_word_embedding,
            "file_bytes": row.file_bytes, "megabytes": row.megabytes, "ratio_vs_bert": row.ratio_vs_bert, "bert_twin": row.bert_twin,
            "tokens_pretrained": row.tokens_pretrained, "pretrain_steps": row.pretrain_steps, "heldout_mlm_loss": row.heldout_loss,
            "heldout_mlm_accuracy": row.heldout_accuracy, "average_score": row.average_score, "tasks_scored": len(row.task_scores),
            "twin_label": row.twin_label, "percent_of_twin": row.percent_of_twin,
        }
        for name, task in row.tasks.items():
            record[f"{name}.score"], record[f"{name}.seeds"] = task.score, task.seeds
            for split, metrics in task.splits.items():
                for metric, stat in metrics.items():
                    record[f"{name}.{split}.{metric}.mean"], record[f"{name}.{split}.{metric}.std"] = stat.mean, stat.std
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return buffer.getvalue()


def row_json(row: RunRow) -> dict:
    data = asdict(row)
    data.pop("loss_curve"), data.pop("heldout_points")  # they are metrics.jsonl's; keep the JSON small
    data |= {"megabytes": row.megabytes, "average_score": row.average_score, "loss_points": len(row.loss_curve)}
    return data
