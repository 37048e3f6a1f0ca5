"""AdamW with weight decay on matrices only, and the warmup + decay schedule both trainers use."""

from __future__ import annotations

import math

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


def lr_multiplier(progress: float, warmup: float, schedule: str, min_ratio: float = 0.0) -> float:
    """Warmup then decay, as a function of the fraction of the budget spent (steps or time)."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return progress / warmup
    if schedule == "constant":
        return 1.0
    decay = (progress - warmup) / (1.0 - warmup)
    shape = 1.0 - decay if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * decay))
    return min_ratio + (1.0 - min_ratio) * shape


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
