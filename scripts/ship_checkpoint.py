"""Make a run's model a built-in checkpoint: copied into eelbert_cli/checkpoints/NAME with a
provenance record (the spec that made it, the command, its scores), so every user can fine-tune,
evaluate, export or predict with it offline by name (eelbert_cli/core/training/shipping.py).

    python scripts/ship_checkpoint.py runs/distill-eelbert-tiny-kd-aug8/finetuned/rotten-tomatoes eelbert-tiny-sentiment \
        --command "make distill"
    python scripts/ship_checkpoint.py runs/gdistill-eelbert-tiny-distill/checkpoint eelbert-tiny-distilled --encoder --command "..."
    python scripts/ship_checkpoint.py runs/suite-eelbert-tiny-distilled/finetuned/sms-spam eelbert-tiny-sms-spam \
        --command "..." --int8 runs/suite-eelbert-tiny-distilled-int8

A fine-tuned model ships as it is (``--int8 SCORED_RUN``: also its int8 export as NAME-int8, with the
scores scripts/suite_int8.py measured on it); ``--encoder`` strips a pretraining checkpoint to its encoder (no
MLM head, no optimizer). Weights are read and written with safetensors only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eelbert_cli.core.errors import EelbertError  # after the repository is on the path
from eelbert_cli.core.training.shipping import ship_checkpoint, ship_int8_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--command", required=True, help="the command that made the run (recorded)")
    parser.add_argument("--encoder", action="store_true", help="ship the encoder of a pretraining checkpoint")
    parser.add_argument("--finetuned", type=Path, default=None, help="a fine-tuning run of the encoder whose results to record")
    parser.add_argument("--note", default=None, help="a sentence for the record (why this model ships)")
    parser.add_argument("--int8", type=Path, default=None, metavar="SCORED_RUN",
                        help="also ship the int8 export as NAME-int8, recording the scores of this scripts/suite_int8.py run")
    args = parser.parse_args()
    try:
        target = ship_checkpoint(args.model_dir, args.name, args.command, args.encoder, args.finetuned, args.note)
        print(f"shipped {target} ({sum(p.stat().st_size for p in target.iterdir()):,} bytes)")
        if args.int8 is not None:
            made_by = f"eelbert export {args.name} --quantize int8 (ship_checkpoint.py --int8 {args.int8}); the model: {args.command}"
            export = ship_int8_export(target, made_by, args.int8)
            print(f"shipped {export} ({sum(p.stat().st_size for p in export.iterdir()):,} bytes)")
    except EelbertError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
