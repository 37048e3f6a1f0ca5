"""``eelbert report``: a paper-style comparison of runs, built only from what their run directories hold.

Nothing is recomputed: a report must be reproducible from the files alone, and cheap enough to run
while training jobs use the machine. Every file is optional (a run that only fine-tuned has no
pretraining files); what is missing shows as "–" and is explained in the notes, never guessed.

Outputs (in the output directory): ``report.md`` (tables + notes), ``report.csv`` (one row per run,
every number), ``report.json`` (the same rows, structured), ``score_vs_size.png`` and
``pretrain_loss.png`` (each skipped, with the reason, when no run has its data).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.hashing import HashConfig
from eelbert_cli.core.manifest import write_atomic
from eelbert_cli.core.models import PRESETS

SPEC_FILE = "spec.resolved.yaml"
SIZE_FILE = "size_report.json"
PRETRAIN_FILE = "pretrain_results.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
RUN_FILES = (SPEC_FILE, SIZE_FILE, PRETRAIN_FILE, METRICS_FILE, RESULTS_FILE)

MARKDOWN_FILE = "report.md"
CSV_FILE = "report.csv"
JSON_FILE = "report.json"
SCORE_PLOT = "score_vs_size.png"
LOSS_PLOT = "pretrain_loss.png"

DASH = "–"
_SHAPE_KEYS = ("layers", "hidden", "heads", "ffn")


# ----------------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class MetricStat:
    """One metric of the selected fine-tuning config: mean and std over seeds (percent)."""

    mean: float
    std: float | None


@dataclass
class TaskResult:
    """One task of ``results.json``; ``splits`` maps split -> metric -> stat (dev and test alike)."""

    name: str
    title: str
    score: float | None  # the task's dev score (mean of its metrics), what the average is taken over
    seeds: int | None  # None: results.json did not list them
    splits: dict[str, dict[str, MetricStat]]

    @property
    def dev(self) -> dict[str, MetricStat]:
        return _named_metrics(self.splits, dev=True)

    @property
    def test(self) -> dict[str, MetricStat]:
        return _named_metrics(self.splits, dev=False)


def _is_test(split: str) -> bool:
    return split.startswith("test")


def _named_metrics(splits: dict[str, dict[str, MetricStat]], dev: bool) -> dict[str, MetricStat]:
    """``accuracy`` for a task with one split of the kind, ``accuracy (matched)`` for MNLI's two."""
    chosen = [s for s in splits if _is_test(s) != dev]
    named = {}
    for split in chosen:
        suffix = split.removeprefix("validation").removeprefix("test").lstrip("_")
        for metric, stat in splits[split].items():
            named[metric if len(chosen) == 1 or not suffix else f"{metric} ({suffix})"] = stat
    return named


@dataclass
class RunRow:
    """Everything the report shows about one run directory; ``None`` means the file did not say."""

    label: str
    run_dir: str
    files: list[str]
    model: str  # short description: preset (or checkpoint / custom), embedding kind, shape
    preset: str | None
    checkpoint: str | None
    shape_overridden: bool
    hash_kind: str | None
    layers: int | None
    hidden: int | None
    pretrained: bool
    treatment: str | None  # "none", "pretrained:<budget>", "checkpoint:<path>"; None: unknown (never matched)
    budget: str  # human text: "not pretrained", "pretrained 5 min", ...
    params: int | None = None
    params_word_embedding: int | None = None
    file_bytes: int | None = None
    ratio_vs_bert: float | None = None
    bert_twin: str | None = None
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    heldout_loss: float | None = None
    heldout_accuracy: float | None = None
    tokens_pretrained: int | None = None
    pretrain_steps: int | None = None
    pretrain_complete: bool = False  # pretrain_results.json exists (else tokens come from the log)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)  # (tokens, training loss)
    heldout_points: list[tuple[int, float]] = field(default_factory=list)  # (tokens, held-out loss)
    twin_label: str | None = None
    percent_of_twin: float | None = None
    twin_note: str | None = None

    @property
    def megabytes(self) -> float | None:
        return None if self.file_bytes is None else self.file_bytes / 1e6

    @property
    def task_scores(self) -> dict[str, float]:
        return {name: task.score for name, task in self.tasks.items() if task.score is not None}

    @property
    def average_score(self) -> float | None:
        scores = list(self.task_scores.values())
        return statistics.fmean(scores) if scores else None

    @property
    def seeds_text(self) -> str:
        counts = sorted({task.seeds for task in self.tasks.values() if task.seeds})
        return DASH if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EelbertError(f"{path} is not valid JSON ({error}); re-run the command that writes it or remove it") from None


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise EelbertError(f"{path} is not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise EelbertError(f"{path} should be a YAML mapping (an experiment spec)")
    return data


def _number(value: Any) -> int | float | None:
    """NaN (an empty held-out set) and non-numbers become None, so JSON output stays valid."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _read_metrics_log(path: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]], int | None]:
    """Training and held-out (tokens, loss) points. Unreadable lines are skipped: the log may be
    mid-write while pretraining runs; a resumed run's repeated steps keep their latest row."""
    train: dict[int, tuple[int, float]] = {}
    heldout: dict[int, tuple[int, float]] = {}
    last_tokens = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or _number(row.get("tokens")) is None:
            continue
        tokens = int(row["tokens"])
        step = row.get("step", tokens)
        last_tokens = tokens if last_tokens is None else max(last_tokens, tokens)
        if _number(row.get("loss")) is not None:
            train[step] = (tokens, float(row["loss"]))
        elif _number(row.get("heldout_loss")) is not None:
            heldout[step] = (tokens, float(row["heldout_loss"]))
    return sorted(train.values()), sorted(heldout.values()), last_tokens


def _budget_text(budget: Any) -> str:
    if not isinstance(budget, dict) or not budget:
        return "budget unknown"
    parts = []
    for key, value in budget.items():
        if _number(value) is None:
            parts.append(f"{key}={value}")
        elif key == "minutes":
            parts.append(f"{value:g} min")
        elif key == "tokens":
            parts.append(f"{_human(value)} tokens")
        elif key == "steps":
            parts.append(f"{value:,} steps")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def _budget_key(budget: Any) -> str | None:
    """Equal budgets give equal keys whether YAML wrote ``5`` or ``5.0``."""
    if not isinstance(budget, dict) or not budget:
        return None
    return ",".join(f"{k}={float(v)!r}" for k, v in sorted(budget.items()) if _number(v) is not None) or None


def _human(count: float) -> str:
    for divisor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= divisor:
            return f"{count / divisor:.1f}{suffix}"
    return f"{count:g}"


def _treatment(spec: dict, has_pretraining_files: bool) -> tuple[bool, str | None, str]:
    """(pretrained, matching key, text). Only runs with equal keys are compared as twins."""
    model = spec.get("model") if isinstance(spec.get("model"), dict) else {}
    finetune = spec.get("finetune") if isinstance(spec.get("finetune"), dict) else {}
    start = finetune.get("checkpoint") or model.get("checkpoint")
    if start:
        return True, f"checkpoint:{start}", f"from checkpoint {start}"
    pretrain = spec.get("pretrain")
    if isinstance(pretrain, dict):
        budget = pretrain.get("budget")
        key = _budget_key(budget)
        return True, None if key is None else f"pretrained:{key}", f"pretrained {_budget_text(budget)}"
    if has_pretraining_files:  # no spec to say which budget: never matched with anything
        return True, None, "pretrained (budget unknown: no spec.resolved.yaml)"
    if not spec:
        return False, None, "unknown (no spec.resolved.yaml)"
    return False, "none", "not pretrained"


def _read_tasks(results: dict) -> dict[str, TaskResult]:
    tasks = {}
    summary = results.get("summary") if isinstance(results.get("summary"), dict) else {}
    raw_tasks = results.get("tasks") if isinstance(results.get("tasks"), dict) else {}
    for name in [*raw_tasks, *(t for t in summary if t not in raw_tasks)]:
        entry = raw_tasks.get(name) if isinstance(raw_tasks.get(name), dict) else {}
        seeds = len(entry.get("seeds") or []) or None
        means, stds = entry.get("selected_mean") or {}, entry.get("selected_std") or {}
        splits: dict[str, dict[str, MetricStat]] = {}
        for split, metrics in means.items():
            for metric, value in (metrics or {}).items():
                if _number(value) is not None:
                    std = _number((stds.get(split) or {}).get(metric))
                    splits.setdefault(split, {})[metric] = MetricStat(float(value), std)
        if not splits and isinstance(summary.get(name), dict):  # older files: dev means only
            splits["validation"] = {m: MetricStat(float(v), None) for m, v in summary[name].items() if _number(v) is not None}
        dev_means = [stat.mean for split, metrics in splits.items() if not _is_test(split) for stat in metrics.values()]
        score = _number(entry.get("score"))
        if score is None and dev_means:
            score = statistics.fmean(dev_means)
        tasks[name] = TaskResult(name, entry.get("title") or name, score, seeds, splits)
    return tasks


def load_run(run_dir: Path) -> RunRow:
    """One run directory as a row; raises EelbertError for a path a user has to fix."""
    if not run_dir.is_dir():
        raise EelbertError(f"{run_dir} is not a directory (give run directories, e.g. runs/<name>)")
    present = [name for name in RUN_FILES if (run_dir / name).is_file()]
    if not present:
        raise EelbertError(f"{run_dir} has none of {', '.join(RUN_FILES)}: is it a run directory (runs/<name>)?")
    spec = _read_yaml(run_dir / SPEC_FILE) if SPEC_FILE in present else {}
    size = _read_json(run_dir / SIZE_FILE) if SIZE_FILE in present else {}
    pretrain = _read_json(run_dir / PRETRAIN_FILE) if PRETRAIN_FILE in present else {}
    results = _read_json(run_dir / RESULTS_FILE) if RESULTS_FILE in present else {}
    for name, data in ((SIZE_FILE, size), (PRETRAIN_FILE, pretrain), (RESULTS_FILE, results)):
        if not isinstance(data, dict):
            raise EelbertError(f"{run_dir / name} should hold one JSON object")

    model = spec.get("model") if isinstance(spec.get("model"), dict) else {}
    preset = model.get("preset") if model.get("preset") in PRESETS else None
    checkpoint = model.get("checkpoint")
    shape_overridden = any(model.get(key) is not None for key in _SHAPE_KEYS)
    preset_info = PRESETS.get(preset) if preset else None
    hash_spec = model.get("hash") if isinstance(model.get("hash"), dict) else {}
    if preset_info:
        default_kind = preset_info.hash_kind
    else:  # a custom shape without a hash mapping gets the default kind; a checkpoint's is in its config
        default_kind = None if checkpoint or not spec else HashConfig().kind
    hash_kind = size.get("hash_kind") or hash_spec.get("kind") or default_kind
    layers = size.get("layers") or model.get("layers") or (preset_info.shape.layers if preset_info else None)
    hidden = size.get("hidden") or model.get("hidden") or (preset_info.shape.hidden if preset_info else None)
    # the twin size.py would pick: a preset's own twin unless reshaped, else the same shape with a learned table
    bert_twin = size.get("bert_twin") or (preset_info.bert_twin if preset_info and not shape_overridden else None)

    base = checkpoint and Path(str(checkpoint)).name or (f"{preset}*" if preset and shape_overridden else preset) or "custom"
    kind = hash_kind or "?"
    if kind == "ngram" and hash_spec.get("ngram_min") and hash_spec.get("ngram_max"):
        kind = f"ngram {hash_spec['ngram_min']}-{hash_spec['ngram_max']}"
    shape = f"{layers}L/{hidden}H" if layers and hidden else ""
    description = " · ".join(part for part in (base, kind, shape) if part)

    curve, heldout, log_tokens = _read_metrics_log(run_dir / METRICS_FILE) if METRICS_FILE in present else ([], [], None)
    final_loss, final_tokens = _number(pretrain.get("heldout_loss")), _number(pretrain.get("tokens"))
    if final_loss is not None and final_tokens is not None and all(t != final_tokens for t, _ in heldout):
        heldout = sorted([*heldout, (int(final_tokens), final_loss)])
    pretrained, treatment, budget = _treatment(spec, bool({PRETRAIN_FILE, METRICS_FILE} & set(present)))

    return RunRow(
        label=str(spec.get("name") or results.get("name") or size.get("name") or run_dir.name),
        run_dir=str(run_dir),
        files=present,
        model=description,
        preset=preset,
        checkpoint=str(checkpoint) if checkpoint else None,
        shape_overridden=shape_overridden,
        hash_kind=hash_kind,
        layers=layers,
        hidden=hidden,
        pretrained=pretrained,
        treatment=treatment,
        budget=budget,
        params=_number(size.get("params_total")),
        params_word_embedding=_number(size.get("params_word_embedding")),
        file_bytes=_number(size.get("file_bytes")),
        ratio_vs_bert=_number(size.get("ratio_vs_bert")),
        bert_twin=bert_twin,
        tasks=_read_tasks(results),
        heldout_loss=final_loss if final_loss is not None else (heldout[-1][1] if heldout else None),
        heldout_accuracy=_number(pretrain.get("heldout_accuracy")),
        tokens_pretrained=int(final_tokens) if final_tokens is not None else log_tokens,
        pretrain_steps=_number(pretrain.get("steps")),
        pretrain_complete=PRETRAIN_FILE in present,
        loss_curve=curve,
        heldout_points=heldout,
    )


def load_runs(run_dirs: list[Path]) -> list[RunRow]:
    """Rows in the order given; a label used twice gets its directory's name (or path) appended, so
    labels stay unique keys for the baseline mapping."""
    if not run_dirs:
        raise EelbertError("give at least one run directory")
    rows = [load_run(Path(d)) for d in dict.fromkeys(Path(d) for d in run_dirs)]
    labels = [row.label for row in rows]
    clashing = [row for row in rows if labels.count(row.label) > 1]
    names = [Path(row.run_dir).name for row in clashing]
    for row in clashing:
        where = Path(row.run_dir).name if len(set(names)) == len(names) else row.run_dir
        row.label = f"{row.label} ({where})"
    return rows


# ----------------------------------------------------------------------------------------- twins


def _is_twin_candidate(row: RunRow, twin_name: str) -> bool:
    """A run *is* the preset ``twin_name``: that preset, not reshaped, with a learned table."""
    return row.preset == twin_name and not row.shape_overridden and row.hash_kind in (None, "learned")


def _percent(row: RunRow, twin: RunRow) -> tuple[float | None, str | None]:
    """Average over the tasks both runs have, so a missing task does not move the ratio."""
    mine, theirs = row.task_scores, twin.task_scores
    common = [t for t in mine if t in theirs]
    if not common:
        return None, f"{row.label}: no % of twin: it shares no scored task with its twin {twin.label}"
    baseline = statistics.fmean(theirs[t] for t in common)
    if baseline <= 0:
        return None, f"{row.label}: no % of twin: twin {twin.label} averages {baseline:.1f} on the shared tasks"
    note = None
    if set(common) != set(mine) or set(common) != set(theirs):
        note = f"{row.label}: % of twin {twin.label} over the {len(common)} task(s) both have: {', '.join(common)}"
    return statistics.fmean(mine[t] for t in common) / baseline * 100, note


def match_twins(rows: list[RunRow], baselines: dict[str, str] | None = None) -> list[str]:
    """Set each row's twin and % of its score; returns footnotes for the rows left without one.

    The twin is the run whose preset is this row's ``bert_twin`` (size_report.json) with the same
    pretraining treatment: both unpretrained, or both pretrained with the same ``pretrain.budget``.
    A run that is its own twin (bert-tiny) is matched with itself: 100%. ``baselines`` (label ->
    baseline label) overrides the rule for the rows it names.
    """
    by_label = {row.label: row for row in rows}
    baselines = dict(baselines or {})
    unknown = [name for pair in baselines.items() for name in pair if name not in by_label]
    if unknown:
        raise EelbertError(f"baseline mapping names unknown run(s) {', '.join(sorted(set(unknown)))}; runs given: {', '.join(by_label)}")
    notes = []
    for row in rows:
        row.twin_label = row.percent_of_twin = row.twin_note = None
        if row.label in baselines:
            twin = by_label[baselines[row.label]]
            note = None
        else:
            twin, note = _find_twin(row, rows)
        found: list[str | None] = [note]
        if twin is not None:
            row.twin_label = twin.label
            row.percent_of_twin, partial = _percent(row, twin) if row.task_scores else (None, None)
            found.append(partial)
        for text in filter(None, found):
            row.twin_note = text if row.twin_note is None else f"{row.twin_note}; {text}"
            notes.append(text)
    return notes


def _find_twin(row: RunRow, rows: list[RunRow]) -> tuple[RunRow | None, str | None]:
    if not row.tasks:
        return None, None  # nothing to compare; the missing results are noted elsewhere
    if row.bert_twin is None:
        return None, f"{row.label}: no % of twin: its BERT twin is unknown (no size_report.json; run `eelbert size-report` on its spec)"
    if row.treatment is None:
        return None, f"{row.label}: no % of twin: its pretraining budget is unknown, so no run is comparable"
    same_model = [r for r in rows if _is_twin_candidate(r, row.bert_twin)]
    same = [r for r in same_model if r.treatment == row.treatment]
    if any(r is row for r in same):
        return row, None
    if not same:
        if not same_model:
            why = f"no {row.bert_twin} run among the runs given"
        else:
            why = f"the {row.bert_twin} run(s) given ({', '.join(r.label for r in same_model)}) were not trained the same way (this run: {row.budget})"
        return None, f"{row.label}: no % of twin: {why}; add one or map a baseline explicitly"
    note = None
    if len(same) > 1:
        note = f"{row.label}: several {row.bert_twin} runs qualify as twin; used the first given, {same[0].label}"
    return same[0], note


# ----------------------------------------------------------------------------------------- tables


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
            DASH if row.params is None else _human(row.params),
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
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
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
            [row.label, row.seeds_text, *(_stat_text((row.tasks[n].test if test else row.tasks[n].dev).get(m)) if n in row.tasks else DASH for n, m, _ in columns)]
            for row in rows
        ]
        lines += _markdown_table(["run", "seeds", *[h for _, _, h in columns]], body)

    if any(r.pretrained for r in rows):
        lines += ["", "## Pretraining", ""]
        body = [
            [
                row.label, row.budget, DASH if row.tokens_pretrained is None else f"{row.tokens_pretrained:,}" + ("" if row.pretrain_complete else " (log)"),
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


def _row_json(row: RunRow) -> dict:
    data = asdict(row)
    data.pop("loss_curve"), data.pop("heldout_points")  # they are metrics.jsonl's; keep the JSON small
    data |= {"megabytes": row.megabytes, "average_score": row.average_score, "loss_points": len(row.loss_curve)}
    return data


# ----------------------------------------------------------------------------------------- plots

_KIND_STYLE = {"ngram": ("o", "tab:blue"), "token": ("s", "tab:orange"), "learned": ("^", "tab:green")}
_OTHER_STYLE = ("D", "tab:gray")


def _new_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=120)  # no pyplot: no global state, no display needed
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    partial = path.with_name(path.name + ".partial")
    figure.savefig(partial, format="png", dpi=120, bbox_inches="tight")
    os.replace(partial, path)
    return path


def plot_score_vs_size(rows: list[RunRow], path: Path) -> tuple[Path | None, str | None]:
    """Average dev score against file size (log MB); colour/marker: embedding kind; hollow: not pretrained."""
    points = [r for r in rows if r.average_score is not None and r.megabytes]
    if not points:
        return None, "no run has both fine-tuning scores (results.json) and a size (size_report.json)"
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure = _new_figure()
    axes = figure.add_subplot()
    for row in points:
        marker, colour = _KIND_STYLE.get(row.hash_kind or "", _OTHER_STYLE)
        axes.scatter(row.megabytes, row.average_score, marker=marker, s=60, edgecolors=colour, linewidths=1.5,
                     facecolors=colour if row.pretrained else "none", zorder=3)
        axes.annotate(row.label, (row.megabytes, row.average_score), textcoords="offset points", xytext=(6, 4), fontsize=8)
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # "2", not "2x10^0"
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("fine-tuned model size (MB, fp32 safetensors, log scale)")
    axes.set_ylabel("average dev task score (%)")
    axes.set_title("Score vs model size")
    axes.grid(True, which="both", alpha=0.3)
    kinds = sorted({r.hash_kind or "other" for r in points})
    handles = [Line2D([], [], linestyle="", marker=_KIND_STYLE.get(k, _OTHER_STYLE)[0], color=_KIND_STYLE.get(k, _OTHER_STYLE)[1], label=f"{k} embedding") for k in kinds]
    handles += [
        Line2D([], [], linestyle="", marker="o", color="black", label="pretrained"),
        Line2D([], [], linestyle="", marker="o", markerfacecolor="none", color="black", label="not pretrained"),
    ]
    axes.legend(handles=handles, fontsize=8, loc="best")
    axes.margins(x=0.15, y=0.15)
    return _save(figure, path), None


def plot_pretraining_loss(rows: list[RunRow], path: Path) -> tuple[Path | None, str | None]:
    """Training MLM loss against tokens (metrics.jsonl), with held-out loss points on the same colour."""
    curves = [r for r in rows if r.loss_curve or r.heldout_points]
    if not curves:
        return None, "no run has a pretraining log (metrics.jsonl) or held-out loss"
    from matplotlib.ticker import EngFormatter

    figure = _new_figure()
    axes = figure.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for row, colour in zip(curves, colours):
        if row.loss_curve:
            tokens, losses = zip(*row.loss_curve)
            marker = "." if len(tokens) == 1 else None  # one logged window: a line would not show
            axes.plot(tokens, losses, color=colour, linewidth=1.4, marker=marker, label=f"{row.label} (train)")
        if row.heldout_points:
            tokens, losses = zip(*row.heldout_points)
            axes.plot(tokens, losses, color=colour, linestyle="", marker="o", markeredgecolor="black", label=f"{row.label} (held-out)")
    axes.xaxis.set_major_formatter(EngFormatter())
    axes.set_xlabel("tokens pretrained")
    axes.set_ylabel("masked-LM loss (cross-entropy, nats)")
    axes.set_title("Pretraining loss")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    return _save(figure, path), None


# ----------------------------------------------------------------------------------------- entry point


@dataclass
class Report:
    """What ``build_report`` made: rows, screen tables, the written files, and notes to show."""

    rows: list[RunRow]
    tables: list[Table]  # print them all: a second one holds the task scores when they did not fit
    markdown: str
    markdown_path: Path
    csv_path: Path
    json_path: Path
    plots: dict[str, Path]  # "score_vs_size" / "pretrain_loss" -> PNG
    skipped_plots: dict[str, str]  # plot -> why it was not drawn
    notes: list[str]  # footnotes for the table (twins not found, partial comparisons)

    @property
    def table(self) -> Table:
        return self.tables[0]


def parse_baselines(items: list[str] | None) -> dict[str, str]:
    """``--baseline LABEL=BASELINE_LABEL`` options as the mapping ``build_report`` takes."""
    mapping = {}
    for item in items or []:
        label, separator, baseline = item.partition("=")
        if not separator or not label.strip() or not baseline.strip():
            raise EelbertError(f"--baseline {item!r}: expected RUN=BASELINE (run labels as shown in the report)")
        mapping[label.strip()] = baseline.strip()
    return mapping


def build_report(run_dirs: list[Path], output_dir: Path, baselines: dict[str, str] | None = None, width: int = 80) -> Report:
    """Load the runs, match twins, and write report.md/.csv/.json plus the plots into ``output_dir``."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise EelbertError(f"output directory {output_dir} is a file")
    rows = load_runs([Path(d) for d in run_dirs])
    notes = match_twins(rows, baselines)
    output_dir.mkdir(parents=True, exist_ok=True)

    plots: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for name, file_name, draw in (("score_vs_size", SCORE_PLOT, plot_score_vs_size), ("pretrain_loss", LOSS_PLOT, plot_pretraining_loss)):
        try:
            drawn, why = draw(rows, output_dir / file_name)
        except ImportError:
            drawn, why = None, "matplotlib is not installed (pip install matplotlib)"
        if drawn is not None:
            plots[name] = drawn
        else:
            skipped[name] = why or "no data"
            (output_dir / file_name).unlink(missing_ok=True)  # a stale plot from an earlier report would mislead

    markdown = markdown_report(rows, notes, plots, skipped)
    paths = {name: output_dir / name for name in (MARKDOWN_FILE, CSV_FILE, JSON_FILE)}
    write_atomic(paths[MARKDOWN_FILE], markdown)
    write_atomic(paths[CSV_FILE], csv_report(rows))
    document = {
        "runs": [_row_json(row) for row in rows],
        "tasks": [{"name": n, "title": t} for n, t in task_order(rows)],
        "notes": notes,
        "plots": {name: path.name for name, path in plots.items()},
        "skipped_plots": skipped,
    }
    write_atomic(paths[JSON_FILE], json.dumps(document, indent=2, allow_nan=False) + "\n")
    return Report(rows, screen_tables(rows, width), markdown, paths[MARKDOWN_FILE], paths[CSV_FILE], paths[JSON_FILE], plots, skipped, notes)
