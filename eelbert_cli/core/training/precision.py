"""Mixed precision, decided once for both trainers: bf16 autocast where the GPU has it, else fp32."""

from __future__ import annotations

from contextlib import nullcontext

import torch


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means plain fp32. 'auto' picks bf16 on GPUs that have it and fp32 on CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
