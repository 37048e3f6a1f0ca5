"""The offline suite's one table and its size/score picture, from finished runs: transformers
(`eelbert glue experiments/suite/<model>.yaml`) and baselines (`eelbert baseline
experiments/suite/baseline-*.yaml`) side by side.

    python scripts/suite_report.py runs/suite-* -o docs/results/suite
    python scripts/suite_report.py runs/suite-*-distilled --keep docs/results/suite/suite.json -o docs/results/suite

Bytes are everything a task's predictor reads, the largest over the suite's tasks: a transformer's
fine-tuned checkpoint directory (fp32 safetensors, tokenizer, config, task.json), a baseline's model
directory (size_report.json), an int8 export's directory (scripts/suite_int8.py). Latency: median ms
to predict one rotten-tomatoes dev text (batch 1, one thread); transformers are timed here on their
fine-tuned checkpoint, baselines and exports where they were made. fastText has no regression mode,
so every row also gets the average over the three classification tasks, the one column all rows
share. Writes suite.md, suite.json and suite-score-vs-bytes.png into the output directory.

`--keep` carries the rows of an earlier suite.json into the report, so rows measured in different
sessions (whose run directories are gone) share one table; a row measured now replaces the kept row
of the same name. Rows with fewer than three seeds, and exports (one model), are marked in the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from eelbert_cli.core.baselines.run import directory_bytes, latency_ms
from eelbert_cli.core.data.tasks import OFFLINE_SUITE, load_task
from eelbert_cli.core.files import write_atomic, write_json

CLASSIFICATION = ("rotten-tomatoes", "trec", "sms-spam")
LATENCY_TASK = "rotten-tomatoes"


def transformer_latency_ms(checkpoint: Path) -> float:
    import torch
    from transformers.utils import logging

    logging.disable_progress_bar()
    from eelbert_cli.core.evaluation.predict import CheckpointModel

    torch.set_num_threads(1)
    return latency_ms(CheckpointModel(checkpoint).predict, load_task(LATENCY_TASK).splits["validation"].text_a)


def row(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    size = json.loads((run_dir / "size_report.json").read_text(encoding="utf-8")) if (run_dir / "size_report.json").is_file() else {}
    numbers = {split: {task: entry["selected_mean"].get(split, {}).get(OFFLINE_SUITE.metric(task))
                       for task, entry in results["tasks"].items() if task in OFFLINE_SUITE.tasks} for split in ("validation", "test")}
    baseline, export = size.get("baseline"), size.get("export")
    if baseline or export:  # measured where they were made (eelbert baseline, scripts/suite_int8.py)
        file_bytes, latency = size["file_bytes"], size["latency_ms_batch1"].get(LATENCY_TASK)
    else:
        finetuned = run_dir / "finetuned"
        file_bytes = max(directory_bytes(finetuned / task) for task in results["tasks"])
        latency = transformer_latency_ms(finetuned / LATENCY_TASK) if (finetuned / LATENCY_TASK).is_dir() else None
    suite = results.get("suite", {})
    complete = [split for split in ("validation", "test") if split in suite and not suite[split]["missing"]]

    def classification_mean(split: str) -> float | None:
        values = [numbers[split].get(task) for task in CLASSIFICATION]
        return statistics.fmean(values) if all(v is not None for v in values) else None

    return {
        "name": results["name"].removeprefix("suite-"),
        "run_dir": str(run_dir),
        "kind": "baseline" if baseline else f"{export} export" if export else "transformer",
        "model": baseline or results["name"],
        "file_bytes": file_bytes,
        "latency_ms_batch1": latency,
        "suite_dev": suite["validation"]["score"] if "validation" in complete else None,
        "suite_test": suite["test"]["score"] if "test" in complete else None,
        "classification_dev": classification_mean("validation"),
        "classification_test": classification_mean("test"),
        "tasks_dev": numbers["validation"],
        "tasks_test": numbers["test"],
        "not_run": results.get("not_applicable", {}),
        "seeds": sorted({len(entry["seeds"]) for entry in results["tasks"].values()}),
    }


def merge_rows(kept: list[dict], measured: list[dict]) -> list[dict]:
    """Earlier rows first, each replaced by a row measured now under the same name; new names appended."""
    fresh = {r["name"]: r for r in measured}
    merged = [fresh.pop(r["name"], r) for r in kept]
    return merged + [r for r in measured if r["name"] in fresh]


def _label(r: dict) -> str:
    if r["kind"].endswith("export"):  # one saved model, picked on dev: its dev score is the optimistic one, test the fair one
        return f"{r['name']} (best-dev seed)"
    seeds = r.get("seeds") or [3]
    return r["name"] if min(seeds) >= 3 else f"{r['name']} ({min(seeds)} seed{'s' if min(seeds) > 1 else ''})"


def pareto(rows: list[dict], key: str) -> list[dict]:
    """Rows no other row beats with at most its bytes: the front a user picks from."""
    scored = sorted((r for r in rows if r[key] is not None), key=lambda r: (r["file_bytes"], -r[key]))
    front, best = [], float("-inf")
    for candidate in scored:
        if candidate[key] > best:
            front.append(candidate)
            best = candidate[key]
    return front


def _cell(value: float | None, spec: str = ".1f") -> str:
    return "–" if value is None else format(value, spec)


def markdown(rows: list[dict]) -> str:
    tasks = OFFLINE_SUITE.tasks
    header = ["model", "bytes", "suite dev", "suite test", "3-task dev", "3-task test",
              *(f"{task} ({OFFLINE_SUITE.metric(task)})" for task in tasks), "ms, batch 1"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    front_5 = {r["name"] for r in pareto(rows, "suite_dev")}
    front_3 = {r["name"] for r in pareto(rows, "classification_dev")}
    columns = [lambda r: r["suite_dev"], lambda r: r["suite_test"], lambda r: r["classification_dev"], lambda r: r["classification_test"],
               *(lambda r, task=task: None if task in r["not_run"] else r["tasks_dev"].get(task) for task in tasks)]
    best = [max((v for v in map(column, rows) if v is not None), default=None) for column in columns]

    def scored(value: float | None, top: float | None) -> str:
        cell = _cell(value)
        return f"**{cell}**" if value is not None and top is not None and cell == _cell(top) else cell

    for r in sorted(rows, key=lambda r: r["file_bytes"]):
        marks = ("†" if r["name"] in front_5 else "") + ("‡" if r["name"] in front_3 else "")
        scores = [scored(column(r), top) for column, top in zip(columns, best, strict=True)]
        scores[4:] = ["not run" if task in r["not_run"] else cell for task, cell in zip(tasks, scores[4:], strict=True)]
        cells = [f"{_label(r)}{marks}", f"{r['file_bytes']:,}", *scores, _cell(r["latency_ms_batch1"], ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Dev unless marked test; percent; mean over 3 seeds of the dev-selected config (fewer where the row says; "
              "an int8 export is the one saved model, the best of 3 seeds on dev, so its test column is the fair one). "
              "suite: the mean of one metric per task over all five (fastText has no regression mode: –); 3-task: "
              "rotten-tomatoes, trec, sms-spam, the columns every row has. † on the Pareto front of the suite average, "
              "‡ of the 3-task average (no row of at most its bytes scores higher). Bold: the best in its column."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure = Figure(figsize=(12, 4.8), dpi=120)
    FigureCanvasAgg(figure)
    for index, (key, title) in enumerate((("suite_dev", "offline suite average (5 tasks, dev)"),
                                          ("classification_dev", "3 classification tasks (dev; every row)"))):
        axes = figure.add_subplot(1, 2, index + 1)
        for r in rows:
            if r[key] is None:
                continue
            style = (dict(marker="s", color="tab:orange") if r["kind"] == "baseline" else
                     dict(marker="o", color="tab:blue") if r["kind"] == "transformer" else dict(marker="D", color="tab:green"))
            axes.scatter(r["file_bytes"] / 1e6, r[key], s=50, zorder=3, **style)
            axes.annotate(r["name"], (r["file_bytes"] / 1e6, r[key]), textcoords="offset points", xytext=(5, 3), fontsize=7)
        front = pareto(rows, key)
        right = 1.5 * max(r["file_bytes"] for r in rows) / 1e6  # the front runs on to the right: nothing larger beats it
        front_bytes, front_scores = [r["file_bytes"] / 1e6 for r in front] + [right], [r[key] for r in front] + [front[-1][key]]
        axes.step(front_bytes, front_scores, where="post", color="gray", alpha=0.6, label="Pareto front")
        axes.set_xscale("log")
        axes.set_xlim(0.8 * min(r["file_bytes"] for r in rows) / 1e6, right)
        axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("bytes on disk to predict (MB, log scale)")
        axes.set_ylabel("score (%)")
        axes.set_title(title, fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="lower right", fontsize=8)
    exports = " green: int8 exports," if any(r["kind"].endswith("export") for r in rows) else ""
    figure.suptitle(f"Offline suite: score vs size (blue: tiny transformers,{exports} orange: baselines)", fontsize=11)
    figure.savefig(path, format="png", bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("-o", "--output-dir", type=Path, required=True)
    parser.add_argument("--keep", type=Path, help="an earlier suite.json whose rows stay in the table unless measured again")
    args = parser.parse_args(argv)
    rows = [row(run_dir) for run_dir in args.runs if (run_dir / "results.json").is_file()]
    if args.keep:
        rows = merge_rows(json.loads(args.keep.read_text(encoding="utf-8"))["rows"], rows)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(args.output_dir / "suite.md", markdown(rows))
    write_json(args.output_dir / "suite.json", {"rows": rows, "pareto_suite": [r["name"] for r in pareto(rows, "suite_dev")],
                                                "pareto_classification": [r["name"] for r in pareto(rows, "classification_dev")]})
    plot(rows, args.output_dir / "suite-score-vs-bytes.png")
    sys.stdout.write(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
