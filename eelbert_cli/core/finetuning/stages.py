"""Fine-tuning stages as a run directory sees them: `finetune` (one task) and `glue` (the suite).

Every task run updates the run's ``results.json`` and ``results.md``, so the directory always
holds one current table of everything that ran in it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from eelbert_cli.core.console import Progress, ProgressTask, log
from eelbert_cli.core.data.tasks import TaskData, get_task, load_custom_task, load_task, write_submission
from eelbert_cli.core.files import run_directory_lock, write_atomic, write_json
from eelbert_cli.core.finetuning.grid import FinetuneResult, run_grid, save_finetuned
from eelbert_cli.core.manifest import write_manifest
from eelbert_cli.core.scoring.glue import glue_scores
from eelbert_cli.core.scoring.suite import suite_scores
from eelbert_cli.core.spec import ExperimentSpec, FinetuneSpec, GlueSpec
from eelbert_cli.core.targets import model_source

RESULTS_FILE = "results.json"
RESULTS_MARKDOWN = "results.md"


def absolute_custom_task(task: str | dict, base_dir: Path) -> dict | None:
    """A custom task's definition with its files as absolute paths (None for a built-in task)."""
    if not isinstance(task, dict):
        return None
    files = {key: str((base_dir / task[key]).resolve()) for key in ("train", "validation", "test") if task.get(key)}
    return {**task, **files}


def task_data(task: str | dict, data_dir: str | None, base_dir: Path) -> TaskData:
    if isinstance(task, dict):
        return load_custom_task(task, base_dir)
    return load_task(task, data_dir)


class _RunLine:
    """One run's bar, and a line per epoch that stays on screen: train loss and dev score."""

    def __init__(self, bar: ProgressTask, description: str, epochs: int) -> None:
        self.bar, self.description, self.epochs = bar, description, epochs

    def advance(self) -> None:
        self.bar.advance()

    def epoch(self, epoch: int, train_loss: float, dev_score: float) -> None:
        log.info("%s epoch %d/%d: train loss %.4f, dev score %.2f", self.description, epoch, self.epochs, train_loss, dev_score)


@contextmanager
def grid_progress(enabled: bool = True):
    """A progress bar per training run and a line per epoch; yields the factory run_grid expects."""
    with Progress(enabled=enabled, transient=True) as bar:

        def start(description: str, total: int, epochs: int) -> _RunLine:
            return _RunLine(bar.task(f"fine-tune {description}", total=total, announce=f"{total} steps, {epochs} epochs"),
                            f"fine-tune {description}", epochs)

        yield start


def finetune_task(spec: ExperimentSpec, task: str | dict, data_dir: str | None, spec_dir: Path, progress: bool = True,
                  on_ready: Callable[[], None] | None = None) -> FinetuneResult:
    """One task end to end: data, grid, selected model saved, submission files, results updated.
    ``on_ready`` runs once every check has passed (model, tokenizer, data, teacher), before training:
    where the run's records are written, so a refused run leaves the earlier ones as they were."""
    settings = spec.finetune or FinetuneSpec()
    source = model_source(spec)
    tokenizer = source.tokenizer(spec.tokenizer, named="tokenizer" in spec.model_fields_set)
    data = task_data(task, data_dir, spec_dir)
    teacher = None
    if settings.teacher is not None:
        from eelbert_cli.core.finetuning.task_distillation import teacher_targets

        settings = settings.model_copy(update={"teacher": settings.teacher_for(data.task.name)})  # {task}: this task's teacher
        teacher = teacher_targets(settings, data)
    if on_ready is not None:
        on_ready()
    with grid_progress(progress) as start:
        result = run_grid(source, data, tokenizer, settings.grid, settings, start, teacher)
    out = spec.run_dir / "finetuned" / data.task.name
    set_aside_earlier(spec.run_dir, data.task.name)
    save_finetuned(result, source, tokenizer, settings, out, absolute_custom_task(task, spec_dir))
    best = result.selected.best_run
    for split in data.test:
        if split.labels is None and split.name in best.test_predictions:
            predictions = best.test_predictions[split.name]
            labels = predictions if data.task.type == "regression" else [int(p) for p in predictions]
            result.submission_files.append(str(write_submission(data.task, split, labels, spec.run_dir / "submission")))
    update_results(spec, [result])
    return result


def run_finetune(spec: ExperimentSpec, spec_path: Path, progress: bool = True) -> FinetuneResult:
    finetune = spec.finetune or FinetuneSpec()
    with run_directory_lock(spec.run_dir):
        return finetune_task(spec, finetune.task, finetune.data_dir, spec_path.parent, progress, on_ready=lambda: write_manifest(spec))


def run_glue(spec: ExperimentSpec, tasks: list[str] | None = None, progress: bool = True) -> list[FinetuneResult]:
    glue = spec.glue or GlueSpec()
    names = tasks or glue.tasks
    for name in names:
        get_task(name)  # fail on a typo before hours of training
    written: list[Path] = []

    def record_once() -> None:
        if not written:
            written.append(write_manifest(spec))

    with run_directory_lock(spec.run_dir):
        return [finetune_task(spec, name, glue.data_dir, Path("."), progress, on_ready=record_once) for name in names]


# ----------------------------------------------------------------------------------- results
PREVIOUS_DIR = "previous"
EARLIER_RESULTS_FILE = "earlier-results.json"


def set_aside_earlier(run_dir: Path, task: str) -> Path | None:
    """A task fine-tuned again (other ``--set`` values, an edited spec) replaces the run's model and
    results for it; the earlier ones move to ``previous/<task>-<time>/`` first, with a line saying
    where, so a re-run never loses a finished result silently. None when there was nothing."""
    model = run_dir / "finetuned" / task
    results = _existing_results(run_dir / RESULTS_FILE)
    entry = results.get("tasks", {}).get(task)
    if not model.is_dir() and entry is None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir / PREVIOUS_DIR / f"{task}-{stamp}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = run_dir / PREVIOUS_DIR / f"{task}-{stamp}-{suffix}"
    target.mkdir(parents=True)
    if entry is not None:
        write_json(target / EARLIER_RESULTS_FILE, {"task": task, "summary": results.get("summary", {}).get(task), "results": entry})
    if model.is_dir():
        os.rename(model, target / "finetuned")
    score = (results.get("summary", {}).get(task) or {})
    shown = ", ".join(f"{name} {value:.2f}" for name, value in score.items() if isinstance(value, int | float)) or "no score"
    log.warning("%s was fine-tuned in %s before (%s): this run replaces it; the earlier model and results are kept in %s",
                task, run_dir, shown, target)
    return target


def update_results(spec: ExperimentSpec, results: list[FinetuneResult]) -> dict:
    path = spec.run_dir / RESULTS_FILE
    existing = _existing_results(path)
    document = {"name": spec.name, "summary": existing.get("summary", {}), "tasks": existing.get("tasks", {})}
    for result in results:
        document["summary"][result.task.name] = result.summary()
        document["tasks"][result.task.name] = result.as_dict()
    document["glue"] = glue_scores(document["tasks"])
    if spec.glue is not None and spec.glue.suite != "glue" and (scores := suite_scores(document["tasks"], spec.glue.suite)):
        document["suite"] = scores
    write_json(path, document)
    write_atomic(spec.run_dir / RESULTS_MARKDOWN, results_markdown(document))
    return document


def _existing_results(path: Path) -> dict:
    """The run's results so far. An unreadable file (e.g. cut short by a hard kill) is set aside,
    not overwritten: the new results are written fresh and the old bytes kept for inspection."""
    if not path.is_file():
        return {}
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(existing, dict) and isinstance(existing.get("summary", {}), dict) and isinstance(existing.get("tasks", {}), dict):
            return existing
        problem = "it does not hold a results object"
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem = str(error)
    kept = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, kept)
    log.warning("%s was unreadable (%s); kept it as %s and wrote fresh results", path, problem, kept.name)
    return {}


def results_markdown(document: dict) -> str:
    lines = [f"# {document['name']}: fine-tuning results", "",
             "Mean over seeds of the selected config; dev (validation) splits unless marked test. Percent.", ""]
    lines += ["| task | metric | mean | std | selected config | seeds |", "|---|---|---|---|---|---|"]
    for entry in document["tasks"].values():
        config = entry["selected"]
        label = f"lr {config['lr']:g}, {config['epochs']} ep, batch {config['batch_size']}"
        for split, metrics in entry["selected_mean"].items():
            for metric, value in metrics.items():
                where = "" if split.startswith("validation") and len(entry["selected_mean"]) == 1 else f" ({split})"
                std = entry["selected_std"][split][metric]
                lines.append(f"| {entry['title']} | {metric}{where} | {value:.2f} | {std:.2f} | {label} | {len(entry['seeds'])} |")
    for entry in document["tasks"].values():
        if entry.get("distillation"):
            d = entry["distillation"]
            lines += ["", f"{entry['title']}: distilled from {d['teacher']} (teacher dev score {d['teacher_dev_score']:.2f}; "
                      f"alpha {d['alpha']:g}, temperature {d['temperature']:g}, {d['extra_examples']:,} teacher-labelled extra examples)"]
    for score in document.get("glue", {}).values():
        lines += ["", f"**{score['text']}**"]
    for score in document.get("suite", {}).values():
        lines += ["", f"**{score['text']}**"]
    for entry in document["tasks"].values():
        if entry.get("classes"):
            lines += class_markdown(entry)
    return "\n".join(lines) + "\n"


def class_markdown(entry: dict) -> list[str]:
    """A classification task's per-class table and confusion matrix per labelled split (the saved model)."""
    classes = entry["classes"]
    lines = []
    for split, report in classes["splits"].items():
        labels = report["labels"]
        lines += ["", f"## {entry['title']}, {split}: per class (the saved model, seed {classes['seed']})", ""]
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for label in labels:
            row = report["per_class"][label]
            lines.append(f"| {label} | {row['precision']:.2f} | {row['recall']:.2f} | {row['f1']:.2f} | {row['support']} |")
        lines += ["", "Confusion matrix (rows: true class, columns: predicted):", ""]
        lines += ["| true \\ predicted | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        lines += [f"| {label} | " + " | ".join(str(count) for count in counts) + " |"
                  for label, counts in zip(labels, report["confusion"], strict=True)]
    return lines
