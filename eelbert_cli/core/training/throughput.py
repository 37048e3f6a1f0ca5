"""What a pretraining run did per second: its metrics log read back, steady tokens/s, FLOPs per
token and model FLOP utilisation (MFU) — shared by the GPU track, the benchmarks and the report."""

from __future__ import annotations

import json
from pathlib import Path

from eelbert_cli.core.training.logbook import METRICS_FILE

H200_BF16_PEAK_FLOPS = 790e12  # dense bf16, as ../shared/GPU.md plans with it


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows of a run's ``metrics.jsonl`` (a line torn by a hard kill is skipped)."""
    rows = []
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def steady_tokens_per_second(rows: list[dict]) -> float:
    """From the last training rows (after warmup, graph capture or compilation), not the average."""
    speeds = [row["tokens_per_second"] for row in rows if isinstance(row.get("tokens_per_second"), (int, float))]
    if not speeds:
        return 0.0
    tail = speeds[-3:] if len(speeds) > 3 else speeds[-1:]
    return sum(tail) / len(tail)


def training_flops_per_token(config, seq_len: int, mask_rate: float) -> float:
    """Training FLOPs per input token (3x the forward): encoder matmuls and attention at every
    position, the MLM head (transform + vocabulary projection) at the masked ones only."""
    hidden, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    encoder = layers * (2 * (4 * hidden * hidden + 2 * hidden * ffn) + 4 * seq_len * hidden)
    head = mask_rate * 2 * (hidden * hidden + hidden * config.vocab_size)
    return 3 * (encoder + head)


def model_flops_utilisation(tokens_per_second: float, flops_per_token: float, peak_flops: float = H200_BF16_PEAK_FLOPS) -> float:
    return tokens_per_second * flops_per_token / peak_flops
