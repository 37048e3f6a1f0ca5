"""Inference on a device budget: file size, latency, throughput, cold start and accuracy, side by side
for torch eager fp32, ONNX fp32 and ONNX int8 (the torch-free runtime), per model.

Each model is fine-tuned here on the built-in rotten-tomatoes task (short: --epochs, default 1),
exported fp32 and int8 with `eelbert export`'s code, and measured on the dev sentences.

    python benchmarks/bench_inference.py --json      # needs the export extra: pip install -e '.[export]'

The last line is one JSON object keyed by model name.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eelbert_cli.core.data.tasks import load_task
from eelbert_cli.core.evaluation.predict import CheckpointModel
from eelbert_cli.core.export.onnx_export import export_model, shipped_bytes
from eelbert_cli.core.export.runtime import ExportedModel
from eelbert_cli.core.finetuning.stages import finetune_task
from eelbert_cli.core.spec import validate_spec


def fine_tuned(preset: str, root: Path, epochs: int, max_seq_len: int) -> Path:
    spec = validate_spec({
        "name": preset, "output_dir": str(root / preset), "model": preset,
        "finetune": {"task": "rotten-tomatoes", "max_seq_len": max_seq_len,
                     "grid": {"lr": [3e-4], "epochs": [epochs], "batch_size": [32], "seeds": [0]}},
    })
    finetune_task(spec, "rotten-tomatoes", None, root, progress=False)
    return root / preset / "finetuned" / "rotten-tomatoes"


def latency_ms(predict, texts: list[str]) -> dict[str, float]:
    predict(texts[:1])  # warm-up
    times = []
    for text in texts:
        started = time.perf_counter()
        predict([text])
        times.append((time.perf_counter() - started) * 1000)
    return {"median": round(statistics.median(times), 3), "p95": round(float(np.percentile(times, 95)), 3)}


def throughput(predict, texts: list[str], batch: int) -> float:
    predict(texts[:batch])
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        predict(texts[start : start + batch])
    return round(len(texts) / (time.perf_counter() - started), 1)


def cold_start_seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return round(time.perf_counter() - started, 3)


def accuracy(model, texts: list[str], labels: list[str]) -> float:
    predictions = [p.label for start in range(0, len(texts), 256) for p in model.predict(texts[start : start + 256])]
    return round(100.0 * float(np.mean([p == gold for p, gold in zip(predictions, labels, strict=True)])), 2)


def measure(preset: str, root: Path, args) -> dict:
    checkpoint = fine_tuned(preset, root, args.epochs, args.max_seq_len)
    exports = {q: root / f"{preset}-{q}" for q in ("fp32", "int8")}
    for quantize, directory in exports.items():
        export_model(checkpoint, directory, None if quantize == "fp32" else quantize)
    torch_model = CheckpointModel(checkpoint)
    runtimes = {q: ExportedModel.load(d) for q, d in exports.items()}
    dev = load_task("rotten-tomatoes").splits["validation"]
    texts, gold = list(dev.text_a), [runtimes["fp32"].labels[label] for label in dev.labels]
    sample = texts[: args.latency_sentences]
    paths = {"torch": torch_model.predict, "onnx_fp32": runtimes["fp32"].predict, "onnx_int8": runtimes["int8"].predict}
    torch_code = ("from eelbert_cli.core.evaluation.predict import CheckpointModel; "
                  f"CheckpointModel(__import__('pathlib').Path({str(checkpoint)!r})).predict(['a fine film'])")
    runtime_code = ("from eelbert_cli.core.export.runtime import ExportedModel; "
                    f"ExportedModel.load({str(exports['int8'])!r}).predict(['a fine film'])")
    latencies = {name: latency_ms(predict, sample) for name, predict in paths.items()}
    return {
        "fp32_bytes": sum(shipped_bytes(exports["fp32"]).values()),
        "int8_bytes": sum(shipped_bytes(exports["int8"]).values()),
        "files": {q: shipped_bytes(d) for q, d in exports.items()},
        "latency_ms_batch1": {name: value["median"] for name, value in latencies.items()},
        "latency_ms_batch1_p95": {name: value["p95"] for name, value in latencies.items()},
        "throughput_examples_per_second_batch32": {name: throughput(predict, texts, 32) for name, predict in paths.items()},
        "cold_start_seconds": {"torch": cold_start_seconds(torch_code), "runtime": cold_start_seconds(runtime_code)},
        "dev_accuracy": {"fp32": accuracy(runtimes["fp32"], texts, gold), "int8": accuracy(runtimes["int8"], texts, gold)},
        "fine_tuning": f"rotten-tomatoes, {args.epochs} epoch(s), lr 3e-4, batch 32, seed 0, max length {args.max_seq_len}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--presets", nargs="+", default=["uno-eelbert", "eelbert-tiny", "bert-tiny"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-seq-len", type=int, default=64)
    parser.add_argument("--latency-sentences", type=int, default=200)
    args = parser.parse_args()
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as directory:
        results = {preset: measure(preset, Path(directory), args) for preset in args.presets}
    if not args.json:
        for preset, row in results.items():
            print(f"{preset}: {row['fp32_bytes']:,} B fp32, {row['int8_bytes']:,} B int8; batch-1 ms {row['latency_ms_batch1']}; "
                  f"cold start {row['cold_start_seconds']}; dev accuracy {row['dev_accuracy']}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
