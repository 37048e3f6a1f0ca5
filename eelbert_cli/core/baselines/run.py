"""A baseline over a task group, in the shape a transformer's run has: per task every grid config x
every seed, the config with the best mean dev score selected, its best-seed model saved under
``RUN/models/<task>/`` and re-scored from the files (they must reproduce the in-memory predictions),
``results.json`` (the fine-tune results shape, plus bytes and latency per task), ``results.md``,
and ``size_report.json`` (bytes on disk, read by ``eelbert report``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eelbert_cli.core.baselines.methods import Method, Predictor, get_method, task_texts
from eelbert_cli.core.baselines.spec import BaselineSpec, GridValue
from eelbert_cli.core.console import Progress, log
from eelbert_cli.core.data.tasks import Split, TaskData, load_task
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import replacing, run_directory_lock, write_atomic, write_json
from eelbert_cli.core.scoring.glue import glue_scores
from eelbert_cli.core.scoring.metrics import class_report, compute_metrics, std, task_score
from eelbert_cli.core.scoring.suite import suite_scores
from eelbert_cli.core.spec import spec_to_yaml

RESULTS_FILE, RESULTS_MARKDOWN, SIZE_FILE = "results.json", "results.md", "size_report.json"
SPEC_FILE = "baseline.resolved.yaml"
LATENCY_TEXTS = 200  # dev texts timed one at a time


@dataclass
class SeedRun:
    seed: int
    metrics: dict[str, dict[str, float]]  # split -> metric -> percent
    score: float  # the task's score on dev (what selects a config)
    predictor: Predictor


def directory_bytes(directory: Path) -> int:
    """Everything a predictor reads: every file under its directory."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def _scored_splits(data: TaskData) -> list[Split]:
    return [*data.evaluation, *(split for split in data.test if split.labels is not None)]


def _texts(split: Split) -> list[str]:
    return task_texts(split.text_a, split.text_b)


def _score(data: TaskData, predictor: Predictor) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    predictions = {split.name: predictor.predict(_texts(split)) for split in _scored_splits(data)}
    metrics = {name: compute_metrics(data.task, values, data.splits[name].labels) for name, values in predictions.items()}
    return metrics, predictions


def latency_ms(predict: Callable[[list[str]], object], texts: Sequence[str]) -> float:
    """Median milliseconds to predict one text (batch 1) over the first LATENCY_TEXTS, after a
    warm-up: what a user's request waits. Any model's ``predict`` (a baseline's, a checkpoint's)."""
    sample = list(texts[:LATENCY_TEXTS])
    for text in sample[:10]:
        predict([text])
    times = []
    for text in sample:
        start = time.perf_counter()
        predict([text])
        times.append(1000.0 * (time.perf_counter() - start))
    return float(statistics.median(times))


def _aggregate(runs: list[SeedRun], reducer) -> dict[str, dict[str, float]]:
    first = runs[0].metrics
    return {split: {metric: reducer([run.metrics[split][metric] for run in runs]) for metric in first[split]} for split in first}


def _config_label(config: dict[str, GridValue]) -> str:
    return ", ".join(f"{key} {value}" for key, value in config.items())


def _same_metrics(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> bool:
    return a.keys() == b.keys() and all(a[s].keys() == b[s].keys() and all(abs(a[s][m] - b[s][m]) < 1e-6 for m in a[s]) for s in a)


def run_task(method: Method, spec: BaselineSpec, data: TaskData, progress: Progress) -> dict:
    """One task: the grid, selection on dev, the kept model saved and re-scored from disk."""
    task = data.task
    train_texts = _texts(data.train)
    configs = spec.baseline.configs()
    bar = progress.task(f"{method.name} {task.name}", total=len(configs) * len(spec.baseline.seeds))
    summaries: list[tuple[dict, list[SeedRun]]] = []
    for config in configs:
        runs = []
        for seed in spec.baseline.seeds:
            predictor = method.fit(task, train_texts, data.train.labels, config, seed)
            metrics, _ = _score(data, predictor)
            runs.append(SeedRun(seed, metrics, task_score(task, metrics), predictor))
            bar.advance()
        summaries.append((config, runs))
    selected_config, selected_runs = max(summaries, key=lambda item: statistics.fmean(run.score for run in item[1]))
    best = max(selected_runs, key=lambda run: run.score)
    model_dir = spec.run_dir / "models" / task.name
    with replacing(model_dir, directory=True) as partial:
        best.predictor.save(partial)
    reloaded = method.load(model_dir, task)
    metrics, predictions = _score(data, reloaded)
    if not _same_metrics(metrics, best.metrics):
        raise EelbertError(f"{model_dir}: the saved {method.title} model does not reproduce its scores "
                           f"({best.metrics} in memory, {metrics} from the files): a bug, please report it")
    entry = {
        "task": task.name,
        "title": task.title,
        "type": task.type,
        "model": method.describe(selected_config),
        "data": data.source,
        "seeds": list(spec.baseline.seeds),
        "summary": _aggregate(selected_runs, statistics.fmean)[task.eval_splits[0]],
        "score": statistics.fmean(run.score for run in selected_runs),
        "selected": {**selected_config, "selection": "highest mean dev score over seeds"},
        "selected_mean": _aggregate(selected_runs, statistics.fmean),
        "selected_std": _aggregate(selected_runs, std),
        "configs": [{**config, "mean_score": statistics.fmean(run.score for run in runs), "mean": _aggregate(runs, statistics.fmean),
                     "std": _aggregate(runs, std), "per_seed": {str(run.seed): run.metrics for run in runs}} for config, runs in summaries],
        "saved_model_seed": best.seed,
        "saved_model": str(model_dir),
        "file_bytes": directory_bytes(model_dir),
        "latency_ms_batch1": latency_ms(reloaded.predict, _texts(data.evaluation[0])),
    }
    if task.type == "classification":
        splits = {name: class_report(task, values, data.splits[name].labels) for name, values in predictions.items()}
        entry["classes"] = {"seed": best.seed, "splits": splits}
    return entry


def run_baseline(spec: BaselineSpec, tasks: list[str] | None = None, progress: bool = True) -> dict:
    """Every task of the spec's group (or the named subset); results merge into the run's results.json."""
    method = get_method(spec.baseline.method)
    names = tasks or list(spec.glue.tasks)
    unknown = [name for name in names if name not in spec.glue.tasks]
    if unknown:
        raise EelbertError(f"task(s) {', '.join(unknown)} are not in the spec's glue.tasks ({', '.join(spec.glue.tasks)})")
    method.check_available()
    loaded = [load_task(name, spec.glue.data_dir) for name in names]  # every data check before anything is written
    with run_directory_lock(spec.run_dir):
        write_atomic(spec.run_dir / SPEC_FILE, spec_to_yaml(spec))
        document = {**_existing(spec.run_dir / RESULTS_FILE), "name": spec.name,
                    "baseline": {"method": method.name, "title": method.title, "grid": spec.baseline.full_grid}}
        with Progress(enabled=progress, transient=True) as bar:
            for data in loaded:
                reason = method.not_applicable(data.task)
                if reason is not None:
                    log.info("%s: not run (%s)", data.task.name, reason)
                    document["not_applicable"][data.task.name] = reason
                    continue
                document["tasks"][data.task.name] = run_task(method, spec, data, bar)
                document["summary"][data.task.name] = document["tasks"][data.task.name]["summary"]
        document["glue"] = glue_scores(document["tasks"])
        if spec.glue.suite != "glue" and (scores := suite_scores(document["tasks"], spec.glue.suite)):
            document["suite"] = scores
        write_json(spec.run_dir / RESULTS_FILE, document)
        write_atomic(spec.run_dir / RESULTS_MARKDOWN, results_markdown(document))
        write_json(spec.run_dir / SIZE_FILE, size_report(spec, method, document))
    return document


def _existing(path: Path) -> dict:
    from eelbert_cli.core.files import read_json_object

    document = read_json_object(path, missing="") if path.is_file() else {}
    return {"summary": dict(document.get("summary") or {}), "tasks": dict(document.get("tasks") or {}),
            "not_applicable": dict(document.get("not_applicable") or {})}


def size_report(spec: BaselineSpec, method: Method, document: dict) -> dict:
    """Bytes on disk as ``eelbert report`` reads them: one number per run (the largest task's model:
    each task has its own), with every task's bytes and latency beside it."""
    per_task = {name: entry["file_bytes"] for name, entry in document["tasks"].items()}
    return {
        "name": spec.name,
        "baseline": method.title,
        "method": method.name,
        "file_bytes": max(per_task.values()) if per_task else None,
        "file_bytes_note": "everything a task's predictor reads (weights, vocabulary, config); the largest over tasks",
        "file_bytes_per_task": per_task,
        "latency_ms_batch1": {name: entry["latency_ms_batch1"] for name, entry in document["tasks"].items()},
        "not_applicable": document["not_applicable"],
    }


def results_markdown(document: dict) -> str:
    lines = [f"# {document['name']}: baseline results", "",
             "Mean ± std over seeds of the selected config, percent; bytes: everything the task's predictor reads.", "",
             "| task | metric | dev | test | selected config | seeds | bytes | ms (batch 1) |", "|---|---|---|---|---|---|---|---|"]
    for entry in document["tasks"].values():
        means, stds = entry["selected_mean"], entry["selected_std"]
        config = {key: value for key, value in entry["selected"].items() if key != "selection"}
        dev = next(split for split in means if split.startswith("validation"))
        test = next((split for split in means if split.startswith("test")), None)
        for metric in means[dev]:
            test_text = f"{means[test][metric]:.2f} ± {stds[test][metric]:.2f}" if test else "–"
            lines.append(f"| {entry['title']} | {metric} | {means[dev][metric]:.2f} ± {stds[dev][metric]:.2f} | {test_text} | "
                         f"{_config_label(config)} | {len(entry['seeds'])} | {entry['file_bytes']:,} | {entry['latency_ms_batch1']:.2f} |")
    for name, reason in document["not_applicable"].items():
        lines.append(f"| {name} | – | not run: {reason} | | | | | |")
    for score in [*document.get("glue", {}).values(), *document.get("suite", {}).values()]:
        lines += ["", f"**{score['text']}**"]
    return "\n".join(lines) + "\n"
