"""Console tables of the single-run commands (size-report, finetune, glue, inspect-embedding),
and the size report's Markdown/JSON next to a run."""

from __future__ import annotations

import statistics

from rich import box
from rich.table import Table

from eelbert_cli.core.files import write_atomic, write_json
from eelbert_cli.core.model.hashing import HashConfig
from eelbert_cli.core.model.inspect import WordInspection
from eelbert_cli.core.reporting.size import SizeReport
from eelbert_cli.core.scoring.metrics import std
from eelbert_cli.core.spec import ExperimentSpec

_SIZE_COLUMNS = (
    ("model", lambda r: r.name),
    ("kind", lambda r: r.hash_kind),
    ("params", lambda r: f"{r.params_total:,}"),
    ("word emb.", lambda r: f"{r.params_word_embedding:,}"),
    ("pos/type+LN", lambda r: f"{r.params_embeddings_other:,}"),
    ("encoder", lambda r: f"{r.params_encoder:,}"),
    ("pooler", lambda r: f"{r.params_pooler:,}"),
    ("task head", lambda r: f"{r.params_task_head:,}"),
    ("MLM-only", lambda r: f"{r.params_mlm_pretraining_only:,}"),
    ("MB", lambda r: f"{r.file_bytes / 1e6:.2f}"),
    ("fp16", lambda r: f"{r.fp16_file_bytes / 1e6:.2f}"),
    ("int8 MB*", lambda r: f"{r.int8_bytes_estimate / 1e6:.2f}"),
    ("smaller", lambda r: f"{r.ratio_vs_bert:.1f}x"),
    ("than", lambda r: r.bert_twin),
)
_SCREEN_COLUMNS = ("model", "kind", "params", "word emb.", "MB", "fp16", "smaller", "than")
SIZE_FOOTNOTE = (
    "MB: safetensors of the fine-tuned model a user ships (binary classifier, fp32), measured by saving it. "
    "The hash table is rebuilt at load and never stored. MLM-only: pretraining parameters dropped before shipping. "
    "*int8: one byte per weight, quantisation scales not counted."
)


def size_table(reports: list[SizeReport]) -> Table:
    """The headline columns; the full breakdown is in --json and the Markdown written to run dirs."""
    columns = [(header, cell) for header, cell in _SIZE_COLUMNS if header in _SCREEN_COLUMNS]
    table = Table(title="Model size (what a fine-tuned model ships)", box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True,
                  pad_edge=False)
    for header, _ in columns:
        table.add_column(header, justify="left" if header in ("model", "kind", "than") else "right", no_wrap=True, min_width=len(header))
    for report in reports:
        table.add_row(*(cell(report) for _, cell in columns))
    return table


def size_markdown(reports: list[SizeReport]) -> str:
    headers = [header for header, _ in _SIZE_COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(r) for _, cell in _SIZE_COLUMNS) + " |" for r in reports]
    return "\n".join(lines) + "\n\n" + SIZE_FOOTNOTE + "\n"


def write_size_outputs(spec: ExperimentSpec, report: SizeReport) -> None:
    """``size_report.json`` and ``.md`` in the spec's run directory (the command writes the manifest)."""
    run_dir = spec.run_dir
    write_json(run_dir / "size_report.json", report.as_dict())
    write_atomic(run_dir / "size_report.md", size_markdown([report]))


def inspection_tables(results: list[WordInspection], config: HashConfig) -> list[Table]:
    tables = []
    for result in results:
        table = Table(
            title=f"{result.word!r}: kind={config.kind}, n-grams {config.ngram_min}..{config.ngram_max}, seed {config.seed}",
            title_justify="left",
        )
        table.add_column("piece")
        table.add_column("n-grams")
        table.add_column("nearest vocabulary tokens (cosine)")
        rows = [(p, "") for p in result.pieces]
        if result.whole_word is not None:
            rows.append((result.whole_word, " (whole word, on the fly)"))
        for piece, note in rows:
            grams = " ".join(piece.ngrams)
            neighbours = ", ".join(f"{token} {score:.2f}" for token, score in piece.neighbours)
            table.add_row(piece.piece + note, grams, neighbours)
        tables.append(table)
    return tables


def finetune_table(result) -> Table:
    """Every config of the grid with its mean dev score; the selected one marked."""
    table = Table(title=f"{result.task.title}: {result.source}", box=box.SIMPLE_HEAD)
    table.add_column("config")
    splits = list(result.selected.runs[0].metrics)
    columns = [(split, metric) for split in splits for metric in result.selected.runs[0].metrics[split]]
    for split, metric in columns:
        table.add_column(f"{metric}\n{split}", justify="right")
    table.add_column("score", justify="right")
    for summary in result.configs:
        means, stds = summary.aggregate(statistics.fmean), summary.aggregate(std)
        cells = [f"{means[s][m]:.2f} ± {stds[s][m]:.2f}" for s, m in columns]
        marker = "* " if summary is result.selected else "  "
        table.add_row(marker + summary.config.label(), *cells, f"{summary.mean_score:.2f}")
    table.caption = f"* selected on dev; mean ± std over {len(result.seeds)} seed(s); percent"
    return table


def glue_table(results, scores: dict, title: str = "GLUE (dev)") -> tuple[Table, list[str]]:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for header in ("task", "metric", "mean", "std", "config"):
        table.add_column(header, justify="right" if header in ("mean", "std") else "left")
    for result in results:
        means, stds = result.selected.aggregate(statistics.fmean), result.selected.aggregate(std)
        for split in result.task.eval_splits:
            for metric, value in means[split].items():
                where = metric if len(result.task.eval_splits) == 1 else f"{metric} ({split.removeprefix('validation_')})"
                table.add_row(result.task.title, where, f"{value:.2f}", f"{stds[split][metric]:.2f}", result.selected.config.label())
    notes = [f"[bold]{entry['text']}[/]" for entry in scores.values()]
    return table, notes


def baseline_table(document: dict, title: str) -> Table:
    """A baseline run per task: its scored metrics on dev and test, bytes on disk, batch-1 latency, and
    the selected value of each setting the grid tuned (results.md has every setting)."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for header in ("task", "metric", "dev", "test", "bytes", "ms", "tuned"):
        table.add_column(header, justify="left" if header in ("task", "metric", "config") else "right")
    for entry in document["tasks"].values():
        means, stds = entry["selected_mean"], entry["selected_std"]
        dev = next(split for split in means if split.startswith("validation"))
        test = next((split for split in means if split.startswith("test")), None)
        tuned = [key for key, values in document.get("baseline", {}).get("grid", {}).items() if len(values) > 1]
        config = " ".join(f"{key}={entry['selected'][key]}" for key in tuned) or "-"
        for metric in means[dev]:
            dev_text, test_text = f"{means[dev][metric]:.2f} ± {stds[dev][metric]:.2f}", f"{means[test][metric]:.2f}" if test else "-"
            size, latency = f"{entry['file_bytes']:,}", f"{entry['latency_ms_batch1']:.2f}"
            table.add_row(entry["title"], metric, dev_text, test_text, size, latency, config)
    for name, reason in document.get("not_applicable", {}).items():
        table.add_row(name, "-", "not run", "-", "-", "-", reason)
    return table
