"""`eelbert run`: pretrain -> fine-tune / GLUE -> size report, skipping what is already complete.

Each finished stage records a fingerprint of the spec sections it depends on in ``stages.json``.
Re-running the same spec skips finished stages (cheap and safe); an interrupted pretraining stage
resumes from its checkpoint; a spec that changed under a finished pretraining stage is refused
rather than silently mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import run_directory_lock, write_json
from eelbert_cli.core.manifest import write_manifest
from eelbert_cli.core.spec import ExperimentSpec

STAGES_FILE = "stages.json"


def fingerprint(spec: ExperimentSpec, *sections: str) -> str:
    data = spec.model_dump(mode="json")
    if isinstance(data.get("finetune"), dict):  # hashed under its old name, so stages finished before the rename stay done
        data["finetune"]["pooling"] = data["finetune"].pop("sentence_vector")
        if data["finetune"]["grid"]["epochs"] == "auto":  # the default before it was "auto": finished stages stay done
            data["finetune"]["grid"]["epochs"] = [3]
    if isinstance(data.get("glue"), dict) and data["glue"].get("suite") == "glue":  # the default suite hashes as before it existed
        del data["glue"]["suite"]
    relevant = {key: data.get(key) for key in ("model", "tokenizer", "seed", *sections)}
    if weights := starting_weights(spec):  # only runs that start from a checkpoint: other fingerprints stay as they were
        relevant["starting_weights"] = weights
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def starting_weights(spec: ExperimentSpec) -> dict[str, str]:
    """sha256 of the checkpoint weights a run starts from (a built-in model by name, or a directory), so
    a stage finished from other weights under the same name — a newly shipped model, a checkpoint
    directory pretrained again — is not taken as done."""
    from eelbert_cli.core.data.resources import shipped_checkpoints

    digests = {}
    for section, name in (("model", spec.model.checkpoint), ("finetune", spec.finetune.checkpoint if spec.finetune else None)):
        if name is None:
            continue
        weights = (shipped_checkpoints().get(name) or Path(name)) / "model.safetensors"
        if weights.is_file():
            digests[section] = hashlib.sha256(weights.read_bytes()).hexdigest()
    return digests


class StageLedger:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / STAGES_FILE
        self.done: dict[str, str] = {}
        if self.path.is_file():
            try:
                self.done = json.loads(self.path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise EelbertError(
                    f"{self.path} is unreadable ({error}); remove it to re-check every stage (finished outputs are kept; "
                    "an interrupted pretraining resumes from its checkpoint)"
                ) from None
            if not isinstance(self.done, dict):
                raise EelbertError(f"{self.path} should hold a JSON object; remove it to re-check every stage")

    def is_done(self, stage: str, key: str) -> bool:
        return self.done.get(stage) == key

    def mark(self, stage: str, key: str) -> None:
        self.done[stage] = key
        write_json(self.path, self.done)


def run_experiment(spec: ExperimentSpec, spec_path: Path, say: Callable[[str], None] = print, progress: bool = True) -> dict[str, str]:
    """Run every stage the spec has; returns stage -> 'ran' | 'skipped'."""
    with run_directory_lock(spec.run_dir):
        ledger = StageLedger(spec.run_dir)
        if spec.pretrain is not None and "pretrain" in ledger.done and not ledger.is_done("pretrain", fingerprint(spec, "pretrain")):
            raise EelbertError(f"{spec.run_dir} holds a finished pretraining run from a different spec; use another output_dir")
        _check_paused_pretraining(spec, ledger)
        write_manifest(spec)  # only once the directory is known to be this spec's
        return _run_stages(spec, spec_path, ledger, say, progress)


def _check_paused_pretraining(spec: ExperimentSpec, ledger: StageLedger) -> None:
    from eelbert_cli.core.training.checkpoints import latest_checkpoint
    from eelbert_cli.core.training.pretrain import check_recipe

    paused = latest_checkpoint(spec.run_dir / "checkpoints") if spec.pretrain is not None and "pretrain" not in ledger.done else None
    if paused is not None:
        check_recipe(paused, spec, int(os.environ.get("WORLD_SIZE", "1")))


def _run_stages(spec: ExperimentSpec, spec_path: Path, ledger: StageLedger, say: Callable[[str], None], progress: bool) -> dict[str, str]:
    from eelbert_cli.core.finetuning.stages import finetune_task
    from eelbert_cli.core.targets import shipped_model_config
    from eelbert_cli.core.training.checkpoints import latest_checkpoint
    from eelbert_cli.core.training.pretrain import pretrain

    run_dir = spec.run_dir
    outcome: dict[str, str] = {}
    if spec.pretrain is not None:
        key = fingerprint(spec, "pretrain")
        if ledger.is_done("pretrain", key):
            outcome["pretrain"] = "skipped"
        else:
            resume = latest_checkpoint(run_dir / "checkpoints") is not None
            say(f"[stage] pretrain{' (resuming)' if resume else ''}")
            pretrain(spec, resume=resume, progress=progress)
            ledger.mark("pretrain", key)
            outcome["pretrain"] = "ran"

    tasks: list[tuple[str, str | dict, str | None, Path]] = []
    if spec.finetune is not None:
        task = spec.finetune.task
        tasks.append((task["name"] if isinstance(task, dict) else task, task, spec.finetune.data_dir, spec_path.parent))
    if spec.glue is not None:
        tasks += [(name, name, spec.glue.data_dir, Path(".")) for name in spec.glue.tasks]
    for name, task, data_dir, base in tasks:
        stage = f"finetune:{name}"
        key = fingerprint(spec, "pretrain", "finetune", "glue")
        if ledger.is_done(stage, key):
            outcome[stage] = "skipped"
            continue
        say(f"[stage] fine-tune {name}")
        finetune_task(spec, task, data_dir, base, progress)
        ledger.mark(stage, key)
        outcome[stage] = "ran"

    key = fingerprint(spec, "pretrain", "finetune")
    if ledger.is_done("size", key) and (run_dir / "size_report.json").is_file():
        outcome["size"] = "skipped"
    else:
        from eelbert_cli.core.reporting.size import size_report
        from eelbert_cli.core.reporting.tables import write_size_outputs

        write_size_outputs(spec, size_report(spec.name, shipped_model_config(spec)))
        ledger.mark("size", key)
        outcome["size"] = "ran"
    return outcome
