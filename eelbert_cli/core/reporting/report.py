"""``eelbert report``: a paper-style comparison of runs, built only from what their run directories hold.

Outputs (in the output directory): ``report.md`` (tables + notes), ``report.csv`` (one row per run,
every number), ``report.json`` (the same rows, structured), ``score_vs_size.png`` and
``pretrain_loss.png`` and, for runs of one model at several budgets, ``score_vs_tokens.png`` (each
skipped, with the reason, when no run has its data). With ``keep_records`` the runs' record files
are copied under ``runs/`` beside the report, and the report is
made from those copies: a results folder that can be committed and re-reported without the run
directories (checkpoints stay behind; they are what makes a run directory large). The pieces:
``runs.py`` reads run directories, ``twins.py`` pairs each run with its BERT twin, ``render.py``
writes tables, ``plots.py`` draws.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import replacing, write_atomic
from eelbert_cli.core.reporting.plots import plot_pretraining_loss, plot_score_vs_size, plot_score_vs_tokens
from eelbert_cli.core.reporting.render import csv_report, markdown_report, row_json, screen_tables, task_order
from eelbert_cli.core.reporting.runs import RUN_FILES, RunRow, load_run, load_runs
from eelbert_cli.core.reporting.twins import match_twins

MARKDOWN_FILE = "report.md"
CSV_FILE = "report.csv"
JSON_FILE = "report.json"
SCORE_PLOT = "score_vs_size.png"
LOSS_PLOT = "pretrain_loss.png"
TOKENS_PLOT = "score_vs_tokens.png"
RECORDS_DIR = "runs"


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


def keep_run_records(run_dirs: list[Path], records_dir: Path) -> list[Path]:
    """Copy each run's record files (the ones a report reads) to ``records_dir/<run dir name>``;
    returns the copies in the order given. A run already there is used as it is. Every run's
    records are read and checked before the first copy is written: a broken record fails the
    report with every kept copy as it was, never overwriting a good copy first."""
    names = [Path(d).resolve().name for d in run_dirs]
    clashing = sorted({name for name in names if names.count(name) > 1})
    if clashing:
        raise EelbertError(f"--keep-records: two run directories are named {clashing[0]}; their records would overwrite each other")
    if records_dir.exists() and not records_dir.is_dir():
        raise EelbertError(f"--keep-records: {records_dir} is a file; the kept records go into that directory")
    copies = []
    for run_dir, name in zip(run_dirs, names, strict=True):
        target = records_dir / name
        if Path(run_dir).resolve() == target.resolve():
            continue
        load_run(Path(run_dir))  # the whole check a report makes, before anything is written
        if target.exists() and not target.is_dir():
            raise EelbertError(f"--keep-records: {target} is a file; it should hold the kept records of {run_dir}")
        copies.append((Path(run_dir), target))
    for run_dir, target in copies:
        target.mkdir(parents=True, exist_ok=True)
        for file_name in RUN_FILES:
            source = run_dir / file_name
            if source.is_file():
                with replacing(target / file_name) as partial:
                    shutil.copyfile(source, partial)  # the bytes as they are: a record is copied, never re-encoded
            else:
                (target / file_name).unlink(missing_ok=True)  # a stale record would describe another run
    return [records_dir / name for name in names]


def build_report(
    run_dirs: list[Path], output_dir: Path, baselines: dict[str, str] | None = None, width: int = 80, keep_records: bool = False
) -> Report:
    """Load the runs, match twins, and write report.md/.csv/.json plus the plots into ``output_dir``."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise EelbertError(f"output directory {output_dir} is a file")
    run_dirs = [Path(d) for d in run_dirs]
    if keep_records:
        run_dirs = keep_run_records(run_dirs, output_dir / RECORDS_DIR)
    rows = load_runs(run_dirs)
    notes = match_twins(rows, baselines)
    output_dir.mkdir(parents=True, exist_ok=True)

    plots: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for name, file_name, draw in (("score_vs_size", SCORE_PLOT, plot_score_vs_size), ("pretrain_loss", LOSS_PLOT, plot_pretraining_loss),
                                   ("score_vs_tokens", TOKENS_PLOT, plot_score_vs_tokens)):
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
        "runs": [row_json(row) for row in rows],
        "tasks": [{"name": n, "title": t} for n, t in task_order(rows)],
        "notes": notes,
        "plots": {name: path.name for name, path in plots.items()},
        "skipped_plots": skipped,
    }
    write_atomic(paths[JSON_FILE], json.dumps(document, indent=2, allow_nan=False) + "\n")
    return Report(rows, screen_tables(rows, width), markdown, paths[MARKDOWN_FILE], paths[CSV_FILE], paths[JSON_FILE],
                  plots, skipped, notes)
