"""Fine-tuning stages as a run directory sees them: `finetune` (one task), `glue` (the suite) and
`evaluate` (one saved model). Every task run updates the run's ``results.json`` and ``results.md``,
so the directory always holds one current table of everything that ran in it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.finetune import (
    TASK_FILE,
    FinetuneResult,
    FinetuneSettings,
    ModelSource,
    checkpoint_source,
    encode_split,
    predict,
    run_grid,
    save_finetuned,
)
from eelbert_cli.core.manifest import write_atomic, write_manifest
from eelbert_cli.core.metrics import GLUE_RULES, compute_metrics, glue_score
from eelbert_cli.core.models import is_checkpoint_dir
from eelbert_cli.core.spec import ExperimentSpec, FinetuneSpec, GlueSpec, resolve_model_config
from eelbert_cli.core.tasks import TASKS, TaskData, get_task, load_custom_task, load_task, write_predictions, write_submission
from eelbert_cli.core.tokenization import load_tokenizer

RESULTS_FILE = "results.json"
RESULTS_MARKDOWN = "results.md"


def settings_from(spec: FinetuneSpec) -> FinetuneSettings:
    fields = FinetuneSettings.__dataclass_fields__
    return FinetuneSettings(**{name: getattr(spec, name) for name in fields})


def model_source(spec: ExperimentSpec) -> ModelSource:
    """An explicit fine-tuning checkpoint; else this run's pretraining checkpoint; else the spec's model."""
    finetune = spec.finetune or FinetuneSpec()
    if finetune.checkpoint is not None:
        return checkpoint_source(finetune.checkpoint)
    pretrained = spec.run_dir / "checkpoint"
    if spec.pretrain is not None and is_checkpoint_dir(pretrained):
        return checkpoint_source(str(pretrained))
    if spec.model.checkpoint is not None:
        return checkpoint_source(spec.model.checkpoint)
    return ModelSource(f"{spec.model.display_name} (random init)", config=resolve_model_config(spec.model, spec.tokenizer))


def task_data(task: str | dict, data_dir: str | None, base_dir: Path) -> TaskData:
    if isinstance(task, dict):
        return load_custom_task(task, base_dir)
    return load_task(task, data_dir)


@contextmanager
def grid_progress(enabled: bool = True):
    """A rich progress bar per training run; yields the factory run_grid expects."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not enabled, transient=True) as bar:
        plain_lines = enabled and not bar.console.is_terminal  # logs, CI, nohup: one line per run instead

        def start(description: str, total: int):
            if plain_lines:
                print(f"fine-tune {description}: {total} steps", flush=True)
            handle = bar.add_task(description, total=total)
            return lambda: bar.advance(handle)

        yield start


def finetune_task(spec: ExperimentSpec, task: str | dict, data_dir: str | None, spec_dir: Path, progress: bool = True) -> FinetuneResult:
    """One task end to end: data, grid, selected model saved, submission files, results updated."""
    finetune = spec.finetune or FinetuneSpec()
    settings = settings_from(finetune)
    source = model_source(spec)
    tokenizer = source.tokenizer(spec.tokenizer)
    data = task_data(task, data_dir, spec_dir)
    with grid_progress(progress) as start:
        result = run_grid(source, data, tokenizer, finetune.grid, settings, start)
    out = spec.run_dir / "finetuned" / data.task.name
    save_finetuned(result, source, tokenizer, settings, out)
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
    write_manifest(spec)
    return finetune_task(spec, finetune.task, finetune.data_dir, spec_path.parent, progress)


def run_glue(spec: ExperimentSpec, tasks: list[str] | None = None, progress: bool = True) -> list[FinetuneResult]:
    glue = spec.glue or GlueSpec()
    names = tasks or glue.tasks
    for name in names:
        get_task(name)  # fail on a typo before hours of training
    write_manifest(spec)
    return [finetune_task(spec, name, glue.data_dir, Path("."), progress) for name in names]


# ----------------------------------------------------------------------------------- results
def glue_scores(task_results: dict[str, dict]) -> dict[str, dict]:
    """Both named GLUE rules over whatever GLUE tasks have results (subset runs say which)."""
    per_split = {name: entry["selected_mean"] for name, entry in task_results.items() if name in TASKS}
    scores = {}
    for rule in GLUE_RULES:
        try:
            score = glue_score(per_split, rule)
        except EelbertError:
            continue
        scores[rule] = {"score": score.score, "tasks": list(score.tasks), "missing": list(score.missing), "numbers": score.numbers, "text": score.describe()}
    return scores


def update_results(spec: ExperimentSpec, results: list[FinetuneResult]) -> dict:
    path = spec.run_dir / RESULTS_FILE
    existing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    document = {"name": spec.name, "summary": existing.get("summary", {}), "tasks": existing.get("tasks", {})}
    for result in results:
        document["summary"][result.task.name] = result.summary()
        document["tasks"][result.task.name] = result.as_dict()
    document["glue"] = glue_scores(document["tasks"])
    write_atomic(path, json.dumps(document, indent=2) + "\n")
    write_atomic(spec.run_dir / RESULTS_MARKDOWN, results_markdown(document))
    return document


def results_markdown(document: dict) -> str:
    lines = [f"# {document['name']}: fine-tuning results", "", "Mean over seeds of the selected config; dev (validation) splits unless marked test. Percent.", ""]
    lines += ["| task | metric | mean | std | selected config | seeds |", "|---|---|---|---|---|---|"]
    for name, entry in document["tasks"].items():
        config = entry["selected"]
        label = f"lr {config['lr']:g}, {config['epochs']} ep, batch {config['batch_size']}"
        for split, metrics in entry["selected_mean"].items():
            for metric, value in metrics.items():
                where = "" if split.startswith("validation") and len(entry["selected_mean"]) == 1 else f" ({split})"
                lines.append(f"| {entry['title']} | {metric}{where} | {value:.2f} | {entry['selected_std'][split][metric]:.2f} | {label} | {len(entry['seeds'])} |")
    for rule, score in document.get("glue", {}).items():
        lines += ["", f"**{score['text']}**"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- evaluate
@dataclass
class Evaluation:
    task: str
    split: str
    examples: int
    metrics: dict[str, float] | None
    predictions_file: str | None


def evaluate_checkpoint(
    checkpoint: Path, task: str | None, data_dir: str | None, split: str | None, predictions_path: Path | None
) -> Evaluation:
    """Score a fine-tuned model on a split (metrics where labels exist) and/or write its predictions."""
    from transformers import AutoModelForSequenceClassification

    if not is_checkpoint_dir(checkpoint):
        raise EelbertError(f"{checkpoint} is not a checkpoint directory (no config.json)")
    saved = json.loads((checkpoint / TASK_FILE).read_text(encoding="utf-8")) if (checkpoint / TASK_FILE).is_file() else {}
    task_name = task or saved.get("task")
    if task_name is None:
        raise EelbertError(f"{checkpoint} has no {TASK_FILE}; name the task with --task")
    data = load_task(task_name, data_dir)
    split_name = split or data.task.eval_splits[0]
    if split_name not in data.splits:
        raise EelbertError(f"{data.task.name} has no split {split_name!r}; it has {', '.join(data.splits)}")
    if not any(checkpoint.glob("*.safetensors")):
        raise EelbertError(f"{checkpoint} has no .safetensors weights")
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, use_safetensors=True)
    if model.config.num_labels != data.task.num_labels:
        raise EelbertError(f"{checkpoint} predicts {model.config.num_labels} labels but {data.task.name} has {data.task.num_labels}")
    settings = FinetuneSettings(max_seq_len=saved.get("max_seq_len", 128))
    model.to(settings.torch_device)
    tokenizer = load_tokenizer(checkpoint)
    target = data.splits[split_name]
    encoded = encode_split(tokenizer, target, settings.max_seq_len)
    predictions, _ = predict(model, data.task, encoded, settings, tokenizer.token_to_id("[PAD]") or 0)
    metrics = compute_metrics(data.task, predictions, np.asarray(target.labels)) if target.labels is not None else None
    written = None
    if predictions_path is not None or metrics is None:  # hidden labels: predictions are the only output
        values = predictions.tolist() if data.task.type == "regression" else [int(p) for p in predictions]
        destination = predictions_path or checkpoint / "predictions" / f"{data.task.name}-{split_name}.tsv"
        written = str(write_predictions(data.task, target, values, destination))
    return Evaluation(data.task.name, split_name, len(target), metrics, written)
