"""The report's plots as PNG: score against model size, and the pretraining loss curves.

Drawn with matplotlib's object API (no pyplot: no global state, no display needed).
"""

from __future__ import annotations

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
