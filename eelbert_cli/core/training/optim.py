"""AdamW with weight decay on matrices only, the warmup + decay schedule both trainers use, and the
pretraining budget (steps, tokens or minutes) the schedule follows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def make_adamw(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float], device: torch.device) -> torch.optim.AdamW:
    """Biases, LayerNorm weights and other vectors are not decayed (group 2)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-6, fused=device.type == "cuda")


def lr_multiplier(progress: float, warmup: float, schedule: str, min_ratio: float = 0.0, cooldown: float = 0.2) -> float:
    """Warmup then decay, as a function of the fraction of the budget spent (steps or time)."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return progress / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "wsd":
        return wsd_multiplier(progress, cooldown, min_ratio)
    decay = (progress - warmup) / (1.0 - warmup)
    shape = 1.0 - decay if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * decay))
    return min_ratio + (1.0 - min_ratio) * shape


def wsd_multiplier(progress: float, cooldown: float, min_ratio: float = 0.0) -> float:
    """Warmup-stable-decay after the warmup: the peak until the last ``cooldown / (1 + cooldown)`` of
    the budget, then linear to ``min_ratio`` — the shape of every snapshot's own decay branch, so the
    final model and the snapshots are trained alike (stable for S tokens, decayed for cooldown x S)."""
    start = 1.0 / (1.0 + cooldown)
    if progress <= start:
        return 1.0
    return min_ratio + (1.0 - min_ratio) * (1.0 - (progress - start) / (1.0 - start))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


@dataclass
class Budget:
    """How long pretraining runs: a number of steps, or wall-clock seconds."""

    total_steps: int | None  # None: a wall-clock budget
    seconds: float | None

    def progress(self, step: int, elapsed: float) -> float:
        return step / self.total_steps if self.total_steps else elapsed / self.seconds

    def done(self, step: int, elapsed: float) -> bool:
        return step >= self.total_steps if self.total_steps else elapsed >= self.seconds


def resolve_budget(steps: int | None, tokens: int | None, minutes: float | None, tokens_per_step: int) -> Budget:
    """Exactly one of the three is set (the spec checks it); tokens become a number of steps."""
    if steps is not None:
        return Budget(steps, None)
    if tokens is not None:
        return Budget(max(1, math.ceil(tokens / tokens_per_step)), None)
    return Budget(None, minutes * 60.0)
