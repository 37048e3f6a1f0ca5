"""Ship a run's model with the package: copied into eelbert_cli/checkpoints/NAME with a provenance
record (the spec that made it, the command, its scores), so every user can fine-tune, evaluate,
export or predict with it offline by name. The command is ``python scripts/ship_checkpoint.py``.

A fine-tuned model ships as it is; ``encoder=True`` strips a pretraining checkpoint (or a fine-tuned
model) to its encoder (no MLM head, no optimizer, no task head). Weights are read and written with
safetensors only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from eelbert_cli.core.data.resources import PROVENANCE_FILE, SHIPPED_DIR
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
