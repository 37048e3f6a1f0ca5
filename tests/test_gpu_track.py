"""The GPU track (scripts/gpu-run.sh) runs its very steps at CPU size: the plan, the throughput check,
the same token budget and snapshots for the three models, one archive per model with loadable
encoders, and the CUDA proof's steps (on gloo and the CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from eelbert_cli.core.model.modeling import load_model, parameter_count
from tests.conftest import FIXTURE_VOCAB

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import gpu_track  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fixture_overrides(tmp_path) -> list[str]:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("the good movie was fun and the bad film was boring to watch" for _ in range(80)))
    overrides = [f"tokenizer={FIXTURE_VOCAB}", f"pretrain.corpus=[{{kind: files, paths: ['{corpus}']}}]", "pretrain.seq_len=16"]
    return [arg for o in overrides for arg in ("--set", o)]


def smoke_env(tmp_path: Path) -> dict:
    return {**os.environ, "EELBERT_GPU_SMOKE": "1", "PYTHON": sys.executable, "EELBERT_CACHE": str(tmp_path / "cache"),
            "EELBERT_GPU_CARRY": str(tmp_path / "no-carry")}


def test_gpu_track_runs_end_to_end_at_cpu_size(tmp_path, fixture_overrides):
    out = tmp_path / "out"
    command = ["bash", str(REPO / "scripts" / "gpu-run.sh"), str(out), "--no-proof", *fixture_overrides]
    result = subprocess.run(command, env=smoke_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "check:" in result.stdout and "done in" in result.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["planned"]["pretrain_fraction"] >= 0.85  # the real call's plan: >= 85% of its time in pretraining steps
    assert summary["planned"]["tokens_per_model"] >= 1_000_000_000  # at the compiled step's 14.4M tokens/s (H200, call 6)
    assert summary["planned"]["compiled"] and summary["planned"]["other_seconds"] > 3 * 14  # compilation is counted as overhead
    models = summary["models"]
    assert set(models) == set(gpu_track.MODELS) == {"eelbert-tiny-hash-vector", "uno-eelbert-hash-vector", "eelbert-tiny"}
    assert len({record["tokens"] for record in models.values()}) == 1  # one budget for all
    assert all(record["loop"] == "device" and len(record["snapshots"]) == 4 for record in models.values())
    assert summary["check"]["steady_tokens_per_second"] > 0 and summary["check"]["loop"] == "device"
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{m}.tar.gz" for m in gpu_track.MODELS), "summary.json"])

    with tarfile.open(out / "eelbert-tiny-hash-vector.tar.gz") as archive:
        archive.extractall(tmp_path / "back", filter="data")
    back = tmp_path / "back" / "eelbert-tiny-hash-vector"
    assert {"pretrain_results.json", "metrics.jsonl", "spec.resolved.yaml"} <= {p.name for p in back.iterdir()}
    encoders = sorted(p.name for p in (back / "encoders").iterdir())
    assert len(encoders) == 5 and "final" in encoders
    encoder = load_model(back / "encoders" / "final", "base")  # a fine-tunable encoder: no MLM head, no optimizer
    assert type(encoder).__name__ == "EelbertModel" and not hasattr(encoder, "cls")
    assert parameter_count(encoder) > 0 and models["eelbert-tiny-hash-vector"]["encoder_dtype"] == "fp32"
    first = json.loads((back / "encoders" / next(e for e in encoders if e.startswith("tokens-")) / "snapshot.json").read_text())
    assert first["tokens"] > 0 and first["heldout_loss"] > 0


def test_cuda_proof_steps_run_on_the_cpu(tmp_path, fixture_overrides):
    """The proof's interrupted-and-resumed vs straight comparison (device loop) and its 1-process
    torchrun, at CPU size; on a lent GPU the same code runs bf16 on NCCL, and the host loop compiled
    (whose resume the CPU suite proves in test_pretrain.py)."""
    command = ["bash", str(REPO / "scripts" / "gpu-run.sh"), "--proof", str(tmp_path / "proof"), "--seconds", "400",
               "--steps", "12", "--parts", "torchrun_one_rank", "device_loop", *fixture_overrides]
    result = subprocess.run(command, env=smoke_env(tmp_path), capture_output=True, text=True, timeout=500)
    report = json.loads((tmp_path / "proof" / "proof.json").read_text())
    assert result.returncode == 0, json.dumps(report)[:2000] + result.stderr[-2000:]
    assert report["device_loop"]["bit_identical"] and report["device_loop"]["sigterm_exit"] == 2
    assert 5 <= report["device_loop"]["signalled_after_step"] < 12
    assert report["torchrun_one_rank"] == report["torchrun_one_rank"] | {"world_size": 1, "ranks_agree": True, "backend": "gloo"}


def test_throughput_check_runs_alone_with_overrides(tmp_path, fixture_overrides):
    """`gpu-run.sh --check OUT --set ...`: the ~10 s check by itself (how a lent call tries a step variant)."""
    command = ["bash", str(REPO / "scripts" / "gpu-run.sh"), "--check", str(tmp_path / "check"), *fixture_overrides,
               "--set", "pretrain.lr=0.001"]
    result = subprocess.run(command, env=smoke_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "check" / "check.json").read_text())
    assert "pretrain.lr=0.001" in report["overrides"] and report["steady_tokens_per_second"] > 0 and report["loop"] == "device"


def test_plan_reads_a_variant_at_its_base_models_speed():
    sys.path.insert(0, str(REPO / "scripts"))
    import gpu_track

    assert gpu_track.relative_speed("uno-eelbert-hash-x4") == gpu_track.relative_speed("uno-eelbert") == 1.5
    assert gpu_track.relative_speed("eelbert-tiny-hash-x4") == 1.0 and gpu_track.relative_speed("something-else") == 1.0
    both = gpu_track.plan_call(560, 6.25e6, 32768, models=("eelbert-tiny-hash-x4", "uno-eelbert-hash-x4"), proof=False)
    three = gpu_track.plan_call(560, 6.25e6, 32768, models=("eelbert-tiny", "uno-eelbert", "bert-tiny"), proof=False)
    assert both["tokens_per_model"] > three["tokens_per_model"] > 0
