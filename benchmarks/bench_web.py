"""The browser's runtime against the Python one: batch-1 latency and load time on the same export.

The JavaScript runtime (web/, onnxruntime-web's WASM in node, one thread) and the Python runtime
(eelbert_runtime: onnxruntime's native CPU build) label web/test/sentences.txt one sentence at a time.
The JS runtime hashes each token on first sight ("cold" pass) and keeps it ("warm" passes); the Python
runtime builds the whole table at load.

    python benchmarks/bench_web.py --json [--model uno-eelbert-sentiment] [--repeats 3]   # needs web/node_modules

The last line is one JSON object: both runtimes' numbers and the ratios JS / Python.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SENTENCES = REPO / "web" / "test" / "sentences.txt"


def python_latency(export: Path, repeats: int) -> dict:
    from eelbert_runtime import ExportedModel

    started = time.perf_counter()
    model = ExportedModel.load(export)
    load_ms = (time.perf_counter() - started) * 1000
    sentences = [s for s in SENTENCES.read_text(encoding="utf-8").split("\n") if s]
    times = []
    for _ in range(repeats):
        for sentence in sentences:
            t0 = time.perf_counter()
            model.predict([sentence])
            times.append((time.perf_counter() - t0) * 1000)
    ordered = sorted(times)
    return {"load_ms": load_ms, "sentences": len(sentences), "median_ms": statistics.median(times),
            "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="uno-eelbert-sentiment")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from eelbert_cli.core.data.resources import BUILTIN_CHECKPOINTS, checkpoint_path
    from eelbert_cli.core.export.onnx_export import export_model, gzipped_bytes, shipped_bytes

    with tempfile.TemporaryDirectory() as scratch:
        export = Path(scratch) / "int8"
        source = checkpoint_path(args.model) if args.model in BUILTIN_CHECKPOINTS else Path(args.model)
        export_model(source, export, quantize="int8")
        node = subprocess.run(["node", "benchmarks/latency.mjs", str(export), str(SENTENCES), str(args.repeats)],
                              cwd=REPO / "web", capture_output=True, text=True, check=True)
        javascript = json.loads(node.stdout.strip().splitlines()[-1])
        python = python_latency(export, args.repeats)
        files = shipped_bytes(export)
        result = {
            "model": args.model, "quantized": "int8", "download_bytes": sum(files.values()), "download_bytes_gzip": gzipped_bytes(export),
            "javascript": javascript, "python": python,
            "ratio_js_over_python": {"warm_median": javascript["warm_median_ms"] / python["median_ms"],
                                     "cold_median": javascript["cold_median_ms"] / python["median_ms"],
                                     "load": javascript["load_ms"] / python["load_ms"]},
        }
    if not args.json:
        print(f"{args.model} int8: JS warm {javascript['warm_median_ms']:.2f} ms (cold {javascript['cold_median_ms']:.2f}), "
              f"Python {python['median_ms']:.2f} ms; load JS {javascript['load_ms']:.0f} ms, Python {python['load_ms']:.0f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
