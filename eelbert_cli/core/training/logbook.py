"""The pretraining log: ``metrics.jsonl`` rows averaged over a window of steps and over ranks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from eelbert_cli.core.files import append_jsonl, write_atomic
from eelbert_cli.core.training.runtime import Runtime

METRICS_FILE = "metrics.jsonl"


class LogWindow:
    """Sums since the last log row. The loss stays a device tensor until a row is written, so
    logging costs one device sync per row, not one per step."""

    def __init__(self, runtime: Runtime, counts_accuracy: bool = True) -> None:
        self.runtime, self.counts_accuracy = runtime, counts_accuracy
        self.reset()

    def reset(self) -> None:
        self.loss = torch.zeros((), device=self.runtime.device)
        self.correct = self.count = 0.0
        self.steps = self.tokens = 0
        self.started = time.perf_counter()

    def add_micro_step(self, loss: torch.Tensor, correct, count, grad_accum: int) -> None:
        """Device tensors stay on the device (no host sync per step); they are read at ``row``."""
        self.loss += loss.detach() / grad_accum
        self.correct = self.correct + (correct.detach() if torch.is_tensor(correct) else correct)
        self.count = self.count + (count.detach() if torch.is_tensor(count) else count)

    def add_step(self, tokens: int) -> None:
        self.steps += 1
        self.tokens += tokens

    def loss_is_finite(self) -> bool:
        """On every rank (steps since the last row have not been checked yet)."""
        return self.runtime.all_true(bool(torch.isfinite(self.loss).all()))

    def row(self, step: int, tokens: int, lr: float, elapsed: float) -> dict:
        """Averages over the window and all ranks; resets the window."""
        seconds = time.perf_counter() - self.started
        loss_sum, correct, count, steps = self.runtime.sum([self.loss.item(), float(self.correct), float(self.count), self.steps])
        row = {
            "step": step,
            "tokens": tokens,
            "loss": loss_sum / max(steps, 1),
            **({"masked_accuracy": correct / max(count, 1)} if self.counts_accuracy else {}),
            "lr": lr,
            "tokens_per_second": self.tokens * self.runtime.world_size / max(seconds, 1e-9),
            "elapsed_seconds": round(elapsed, 2),
        }
        self.reset()
        return row


def keep_metrics_until(path: Path, step: int) -> None:
    """On resume, drop log rows written after the checkpoint: they will be written again."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a hard kill: it is written again from the checkpoint
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line)
    write_atomic(path, "".join(row + "\n" for row in kept))


__all__ = ["METRICS_FILE", "LogWindow", "append_jsonl", "keep_metrics_until"]
