"""Ship a run's model with the package: copied into eelbert_cli/checkpoints/NAME with a provenance
record (the spec that made it, the command, its scores), so every user can fine-tune, evaluate,
export or predict with it offline by name. The command is ``python scripts/ship_checkpoint.py``.

A fine-tuned model ships as it is, and with ``ship_int8_export`` also as NAME-int8, the directory
a device downloads (eelbert_cli/exports/); ``encoder=True`` strips a pretraining checkpoint (or a fine-tuned
model) to its encoder (no MLM head, no optimizer, no task head). Weights are read and written with
safetensors only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from eelbert_cli.core.data.resources import PROVENANCE_FILE, SHIPPED_DIR, SHIPPED_EXPORTS_DIR
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import check_safe_name, replacing

CLASSIFIER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "task.json")
SIZE_LIMIT = 2_500_000  # bytes of weights; a word-table BERT does not belong in the repository


def run_dir_of(model_dir: Path) -> Path:
    """RUN/finetuned/TASK, RUN/checkpoint, RUN/snapshots/S or RUN/encoders/E (the GPU track's) -> RUN."""
    return model_dir.parent.parent if model_dir.parent.name in ("finetuned", "snapshots", "encoders") else model_dir.parent


def provenance(model_dir: Path, command: str, encoder: bool, finetuned: Path | None = None, note: str | None = None) -> dict:
    """What made the model: the command, the run, its resolved spec, the software it ran on, its
    results (a snapshot's own record where it is one) and, for an encoder, a fine-tuning run of it."""
    run = run_dir_of(model_dir)
    record: dict = {"made_by": command, "run": run.name, "kind": "encoder" if encoder else "fine-tuned classifier"}
    if note:
        record["note"] = note
    spec = run / "spec.resolved.yaml"
    if spec.is_file():
        record["spec"] = spec.read_text(encoding="utf-8")
        record["run"] = (yaml.safe_load(record["spec"]) or {}).get("name", run.name)  # a folder brought back may be renamed
    for name in ("environment.json", "results.json", "pretrain_results.json"):
        if (run / name).is_file():
            data = json.loads((run / name).read_text(encoding="utf-8"))
            record[name.removesuffix(".json")] = data.get("tasks", data) if name == "results.json" else data
    if (model_dir / "snapshot.json").is_file():  # a snapshot of a longer run: its own budget and held-out loss
        record["snapshot"] = json.loads((model_dir / "snapshot.json").read_text(encoding="utf-8"))
    if finetuned is not None:
        results = json.loads((finetuned / "results.json").read_text(encoding="utf-8"))
        record["finetuned"] = {"run": finetuned.name, "tasks": results.get("tasks", results)}
        if (finetuned / "spec.resolved.yaml").is_file():
            record["finetuned"]["spec"] = (finetuned / "spec.resolved.yaml").read_text(encoding="utf-8")
    return record


def ship_checkpoint(model_dir: Path, name: str, command: str, encoder: bool, finetuned: Path | None = None,
                    note: str | None = None) -> Path:
    """Write ``model_dir`` (a fine-tuned model, or with ``encoder`` its encoder) as built-in ``name``."""
    check_safe_name(name, "checkpoint name")
    target = SHIPPED_DIR / name
    with replacing(target, directory=True) as partial:
        if encoder:
            from eelbert_cli.core.training.checkpoints import save_encoder

            save_encoder(model_dir, partial)
        else:
            for file in CLASSIFIER_FILES:
                shutil.copy(model_dir / file, partial / file)
        weights = (partial / "model.safetensors").stat().st_size
        if weights > SIZE_LIMIT:
            raise EelbertError(
                f"{model_dir}: {weights:,} bytes of weights; built-in checkpoints are the small hash models (<= {SIZE_LIMIT:,})")
        record = provenance(model_dir, command, encoder, finetuned, note)
        (partial / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target


def ship_int8_export(shipped: Path, command: str, scored_run: Path | None = None) -> Path:
    """Export the shipped classifier ``shipped`` (eelbert_cli/checkpoints/NAME) to int8 as built-in
    ``NAME-int8``, with a provenance record: the classifier it came from and, from ``scored_run``
    (scripts/suite_int8.py's run directory), the export's own scores, since quantization may move them."""
    from eelbert_cli.core.export.onnx_export import export_model

    if not (shipped / "task.json").is_file():
        raise EelbertError(f"{shipped} is not a shipped classifier (no task.json): only classifiers have an int8 export")
    target = SHIPPED_EXPORTS_DIR / f"{shipped.name}-int8"
    with replacing(target, directory=True) as partial:
        document = export_model(shipped, partial, quantize="int8")
        record: dict = {"made_by": command, "exported_from": shipped.name, "kind": "int8 export", "task": document["task"],
                        "run": json.loads((shipped / PROVENANCE_FILE).read_text(encoding="utf-8")).get("run", shipped.name)}
        if scored_run is not None:
            results = json.loads((scored_run / "results.json").read_text(encoding="utf-8"))
            task = results["tasks"][document["task"]]
            dev = task["selected_mean"]["validation"]
            record["results"] = {document["task"]: {"score": dev[_main_metric(document["task"], dev)],
                                                    "selected_mean": task["selected_mean"], "fp32_same_model": task.get("fp32_same_model"),
                                                    "seeds": task.get("seeds", [])}}
        (partial / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target


def _main_metric(task: str, metrics: dict) -> str:
    """The metric the task puts into the suite average (e.g. mcc for sms-spam), else its first."""
    from eelbert_cli.core.data.tasks import OFFLINE_SUITE

    return OFFLINE_SUITE.metric(task) if task in OFFLINE_SUITE.tasks and OFFLINE_SUITE.metric(task) in metrics else next(iter(metrics))
