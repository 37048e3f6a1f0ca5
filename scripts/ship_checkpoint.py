"""Make a run's model a built-in checkpoint: copied into eelbert_cli/checkpoints/NAME with a
provenance record (the spec that made it, the command, its scores), so every user can fine-tune,
evaluate, export or predict with it offline by name.

    python scripts/ship_checkpoint.py runs/distill-eelbert-tiny-kd-aug8/finetuned/rotten-tomatoes eelbert-tiny-sentiment \
        --command "make distill"
    python scripts/ship_checkpoint.py runs/gdistill-eelbert-tiny-distill/checkpoint eelbert-tiny-distilled --encoder --command "..."

A fine-tuned model ships as it is; ``--encoder`` strips a pretraining checkpoint to its encoder (no
MLM head, no optimizer). Weights are read and written with safetensors only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eelbert_cli.core.data.resources import PROVENANCE_FILE, SHIPPED_DIR  # noqa: E402
from eelbert_cli.core.files import check_safe_name, replacing  # noqa: E402

CLASSIFIER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "task.json")
SIZE_LIMIT = 2_500_000  # bytes of weights; a word-table BERT does not belong in the repository


def run_dir_of(model_dir: Path) -> Path:
    """RUN/finetuned/TASK or RUN/checkpoint -> RUN."""
    return model_dir.parent.parent if model_dir.parent.name == "finetuned" else model_dir.parent


def provenance(model_dir: Path, command: str, encoder: bool) -> dict:
    run = run_dir_of(model_dir)
    record: dict = {"made_by": command, "run": run.name, "kind": "encoder" if encoder else "fine-tuned classifier"}
    spec = run / "spec.resolved.yaml"
    if spec.is_file():
        record["spec"] = spec.read_text(encoding="utf-8")
    for name in ("results.json", "pretrain_results.json"):
        if (run / name).is_file():
            data = json.loads((run / name).read_text(encoding="utf-8"))
            record[name.removesuffix(".json")] = data.get("tasks", data) if name == "results.json" else data
    return record


def ship(model_dir: Path, name: str, command: str, encoder: bool) -> Path:
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
            raise SystemExit(f"{model_dir}: {weights:,} bytes of weights; built-in checkpoints are the small hash models (<= {SIZE_LIMIT:,})")
        (partial / PROVENANCE_FILE).write_text(json.dumps(provenance(model_dir, command, encoder), indent=2) + "\n", encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--command", required=True, help="the command that made the run (recorded)")
    parser.add_argument("--encoder", action="store_true", help="ship the encoder of a pretraining checkpoint")
    args = parser.parse_args()
    target = ship(args.model_dir, args.name, args.command, args.encoder)
    print(f"shipped {target} ({sum(p.stat().st_size for p in target.iterdir()):,} bytes)")


if __name__ == "__main__":
    main()
