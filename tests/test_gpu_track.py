"""The GPU track (scripts/gpu-run.sh) runs its very steps at CPU size: throughput check, the same
token budget for the three models, fine-tuning, one archive per model with a loadable encoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from eelbert_cli.core.model.modeling import load_model, parameter_count
from tests.test_finetune import FIXTURES, sentiment_files

REPO = Path(__file__).resolve().parent.parent


def test_gpu_track_runs_end_to_end_at_cpu_size(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("the good movie was fun and the bad film was boring to watch" for _ in range(80)))
    overrides = [
        f"tokenizer={FIXTURES / 'vocab.txt'}",
        f"pretrain.corpus=[{{kind: files, paths: ['{corpus}']}}]",
        "pretrain.seq_len=16",
        f"finetune.task={json.dumps(sentiment_files(tmp_path, rows=40))}",
        "glue=null",  # the real spec adds trec; the CPU run stays on fixtures
    ]
    env = {**os.environ, "EELBERT_GPU_SMOKE": "1", "PYTHON": sys.executable, "EELBERT_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "out"
    command = ["bash", str(REPO / "scripts" / "gpu-run.sh"), str(out), *[arg for o in overrides for arg in ("--set", o)]]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "throughput:" in result.stdout and "done in" in result.stdout

    summary = json.loads((out / "summary.json").read_text())
    models = summary["models"]
    assert set(models) == {"bert-tiny", "eelbert-tiny", "uno-eelbert"}
    assert len({record["tokens"] for record in models.values()}) == 1 == len({summary["tokens_per_model"]})  # one budget for all
    assert all(record["task"] == "toy-sentiment" and record["seeds"] == [0] and set(record["tasks"]) == {"toy-sentiment"} for record in models.values())
    assert summary["throughput"]["checks"][0]["steady_tokens_per_second"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["bert-tiny.tar.gz", "eelbert-tiny.tar.gz", "summary.json", "uno-eelbert.tar.gz"]

    with tarfile.open(out / "eelbert-tiny.tar.gz") as archive:
        archive.extractall(tmp_path / "back", filter="data")
    back = tmp_path / "back" / "eelbert-tiny"
    assert {"pretrain_results.json", "metrics.jsonl", "results.json", "spec.resolved.yaml"} <= {p.name for p in back.iterdir()}
    encoder = load_model(back / "encoder", "base")  # a fine-tunable encoder: no MLM head, no optimizer
    assert type(encoder).__name__ == "EelbertModel" and not hasattr(encoder, "cls")
    assert parameter_count(encoder) > 0 and models["eelbert-tiny"]["encoder_dtype"] == "fp32"
