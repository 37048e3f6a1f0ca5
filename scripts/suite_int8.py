"""A suite run's saved models as int8 exports, scored through the torch-free runtime: the row a device
user would ship, beside the fp32 checkpoints it came from.

    python scripts/suite_int8.py runs/suite-eelbert-tiny-distilled      # -> runs/suite-eelbert-tiny-distilled-int8

For every task the run fine-tuned, `eelbert export --quantize int8` of RUN/finetuned/TASK (the
selected config's best-dev seed: one model, not a mean over seeds), then dev and labelled test
scored from the export and, for the difference int8 makes, from the checkpoint. Writes a run
directory that scripts/suite_report.py reads like any other: results.json (the int8 numbers, with
the fp32 twin's beside them), size_report.json (bytes: the largest export directory over the tasks —
graph, export.json and vocabulary, all a device downloads; latency: median ms to predict one
rotten-tomatoes dev text through the runtime with one thread).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eelbert_cli.core.baselines.run import directory_bytes, latency_ms
from eelbert_cli.core.data.tasks import load_task
from eelbert_cli.core.evaluation.evaluate import evaluate_checkpoint, evaluate_export
from eelbert_cli.core.export.onnx_export import export_model
from eelbert_cli.core.export.runtime import ExportedModel
from eelbert_cli.core.files import write_json
from eelbert_cli.core.scoring.suite import suite_scores

LATENCY_TASK = "rotten-tomatoes"
SPLITS = ("validation", "test")


def one_thread(model: ExportedModel) -> ExportedModel:
    """The export's session again with one intra-op thread: latency measured like every other row."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    model.session = onnxruntime.InferenceSession(str(model.directory / model.document["model"]), options,
                                                 providers=["CPUExecutionProvider"])
    return model


def int8_run(run_dir: Path, output_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    tasks: dict[str, dict] = {}
    for task, entry in results["tasks"].items():
        checkpoint, export_dir = run_dir / "finetuned" / task, output_dir / "exports" / task
        export_model(checkpoint, export_dir, quantize="int8")
        int8, fp32 = {}, {}
        for split in SPLITS:
            if split not in entry["selected_mean"]:
                continue
            int8[split] = evaluate_export(export_dir, task, None, split, None).metrics
            fp32[split] = evaluate_checkpoint(checkpoint, task, None, split, None).metrics
        tasks[task] = {"selected_mean": int8, "fp32_same_model": fp32, "seeds": [entry.get("saved_model_seed", "saved")],
                       "export_bytes": directory_bytes(export_dir)}
        print(f"{task}: int8 {int8} | fp32 {fp32} | {tasks[task]['export_bytes']:,} B", file=sys.stderr)
    document = {"name": f"{results['name']}-int8", "source_run": str(run_dir), "tasks": tasks, "suite": suite_scores(tasks, "offline")}
    write_json(output_dir / "results.json", document)
    latency = None
    if (output_dir / "exports" / LATENCY_TASK).is_dir():
        model = one_thread(ExportedModel.load(output_dir / "exports" / LATENCY_TASK))
        latency = latency_ms(model.predict, load_task(LATENCY_TASK).splits["validation"].text_a)
    write_json(output_dir / "size_report.json", {"export": "int8", "file_bytes": max(t["export_bytes"] for t in tasks.values()),
                                                 "latency_ms_batch1": {LATENCY_TASK: latency}})
    return document


def quiet() -> None:
    """Weight-loading bars and onnxruntime's quantization advice would bury the scores."""
    import logging

    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    logging.getLogger().setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("-o", "--output-dir", type=Path, help="default: RUN_DIR-int8")
    args = parser.parse_args(argv)
    quiet()
    document = int8_run(args.run_dir, args.output_dir or args.run_dir.with_name(args.run_dir.name + "-int8"))
    for entry in document["suite"].values():
        print(entry["text"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
