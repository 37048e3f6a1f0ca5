"""The report's plots as PNG: score against model size, and the pretraining loss curves.

Drawn with matplotlib's object API (no pyplot: no global state, no display needed).
"""

from __future__ import annotations

import math
from pathlib import Path

from eelbert_cli.core.files import replacing
from eelbert_cli.core.reporting.runs import RunRow

_KIND_STYLE = {"ngram": ("o", "tab:blue"), "token": ("s", "tab:orange"), "learned": ("^", "tab:green")}
_OTHER_STYLE = ("D", "tab:gray")


def _new_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=120)  # no pyplot: no global state, no display needed
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    with replacing(path) as partial:
        figure.savefig(partial, format="png", dpi=120, bbox_inches="tight")
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
    styles = {k: _KIND_STYLE.get(k, _OTHER_STYLE) for k in kinds}  # (marker, colour)
    handles = [Line2D([], [], linestyle="", marker=styles[k][0], color=styles[k][1], label=f"{k} embedding") for k in kinds]
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
    for row, colour in zip(curves, colours, strict=True):
        if row.loss_curve:
            tokens, losses = zip(*row.loss_curve, strict=True)
            marker = "." if len(tokens) == 1 else None  # one logged window: a line would not show
            axes.plot(tokens, losses, color=colour, linewidth=1.4, marker=marker, label=f"{row.label} (train)")
        if row.heldout_points:
            tokens, losses = zip(*row.heldout_points, strict=True)
            axes.plot(tokens, losses, color=colour, linestyle="", marker="o", markeredgecolor="black", label=f"{row.label} (held-out)")
    axes.xaxis.set_major_formatter(EngFormatter())
    axes.set_xlabel("tokens pretrained")
    axes.set_ylabel("masked-LM loss (cross-entropy, nats)")
    axes.set_title("Pretraining loss")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    return _save(figure, path), None


def budget_curves(rows: list[RunRow]) -> dict[str, list[tuple[int, RunRow]]]:
    """Model -> its fine-tuned runs as (tokens pretrained, row), fewest tokens first; from-scratch
    runs count as 0 tokens, runs started from someone else's checkpoint are left out."""
    families: dict[str, list[tuple[int, RunRow]]] = {}
    for row in rows:
        tokens = row.tokens_pretrained if row.pretrained else 0
        if row.task_scores and tokens is not None and (row.checkpoint is None or row.pretrained):
            families.setdefault(row.model, []).append((tokens, row))
    return {family: sorted(points, key=lambda point: point[0]) for family, points in sorted(families.items())}


def plot_score_vs_tokens(rows: list[RunRow], path: Path) -> tuple[Path | None, str | None]:
    """The budget curve: each task's dev score against pretraining tokens (symlog: 0 = from scratch),
    one line per model, and the score as a fraction of the BERT twin's treated alike."""
    families = budget_curves(rows)
    if not any(len({tokens for tokens, _ in points}) > 1 for points in families.values()):
        return None, "no model was run at two or more pretraining budgets"
    from matplotlib.ticker import EngFormatter

    tasks = sorted({name for points in families.values() for _, row in points for name in row.task_scores})
    with_twins = any(row.percent_of_twin is not None and row.twin_label != row.label for points in families.values() for _, row in points)
    figure = _new_figure()
    figure.set_size_inches(4.2 * (len(tasks) + with_twins), 4.2)
    figure.set_layout_engine("constrained")  # side-by-side panels: keep each y label clear of its neighbour
    panels = figure.subplots(1, len(tasks) + with_twins, squeeze=False, sharex=True)[0]
    most = max(tokens for points in families.values() for tokens, _ in points)
    ticks = [0] + [10**power for power in range(6, max(6, math.ceil(math.log10(max(most, 1)) - 0.05)) + 1)]
    for index, (family, points) in enumerate(families.items()):
        colour = f"C{index % 10}"
        for axes, task in zip(panels, tasks, strict=False):  # the twin panel, last when present, has no task
            line = [(tokens, row.task_scores[task]) for tokens, row in points if task in row.task_scores]
            if line:
                axes.plot(*zip(*line, strict=True), color=colour, marker="o", label=family)
        ratio = [(tokens, row.percent_of_twin / 100) for tokens, row in points
                 if row.percent_of_twin is not None and row.twin_label != row.label]
        if with_twins and ratio:
            panels[-1].plot(*zip(*ratio, strict=True), color=colour, marker="o", label=family)
    titles = [(task, "dev score (%)") for task in tasks] + ([("score / BERT twin's", "ratio")] if with_twins else [])
    for axes, (title, label) in zip(panels, titles, strict=True):
        axes.set_xscale("symlog", linthresh=1e6)
        axes.set_xticks(ticks)
        axes.xaxis.set_major_formatter(EngFormatter())
        axes.set_xlim(-0.05e6, ticks[-1] * 1.5)
        axes.set_xlabel("tokens pretrained (0 = from scratch)")
        axes.set_ylabel(label)
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
    if with_twins:
        panels[-1].axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    panels[0].legend(fontsize=7, loc="best")
    return _save(figure, path), None
