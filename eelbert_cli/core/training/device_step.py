"""The masked-LM step for accelerators: data resident on the device, masking on the device, no host
synchronisation inside a step, and (on CUDA) forward + backward replayed as one CUDA graph.

Why: a bert-tiny step is launch-bound. On an H200 the host loop (numpy row order, CPU masking, a
host->device copy and a ``float(correct)`` read every step) cost ~11.5 ms of fixed time per step,
so batch 256 ran at 2.1M tokens/s while the GPU work itself takes ~4 ms (``docs/results/gpu``).

Exactness is kept the way the host loop keeps it: the rows of a step are ``BatchOrder``'s (epoch-wise
permutations of one stream), and every random draw is a counter-based hash of (seed, step, position),
so a batch is a pure function of the step, on any device, and a resumed run replays it bit for bit.
The masks differ from the host loop's (torch.Generator) draws, so the loop kind is part of the recipe.

Everything a step computes stays on the device; the loop reads the sums back only at log points.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from eelbert_cli.core.console import log
from eelbert_cli.core.training.masking import IGNORE_INDEX, MaskingVocabulary, static_count
from eelbert_cli.core.training.objectives import masked_lm_terms
from eelbert_cli.core.training.order import BatchOrder, derived_seed

_MASK32 = 0xFFFFFFFF
WARMUP_PASSES = 3  # before a capture (torch's CUDA graph notes: warm up on a side stream)
_MULTIPLIER = 0x045D9F3B  # < 2**31, so a 32-bit value times it stays inside int64 (no signed overflow)


def mix32(values: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (Mueller's), in int64 arithmetic that is exact on every device."""
    values = (((values >> 16) ^ values) * _MULTIPLIER) & _MASK32
    values = (((values >> 16) ^ values) * _MULTIPLIER) & _MASK32
    return (values >> 16) ^ values


def counter_uniform(key: torch.Tensor, positions: torch.Tensor, stream: int) -> torch.Tensor:
    """Uniform floats in [0, 1) from (key, position, stream): the same numbers on CPU and GPU."""
    mixed = mix32((mix32(positions * 4 + stream) ^ key) & _MASK32)
    return (mixed >> 8).to(torch.float32) * (1.0 / 2**24)


class DeviceBatches:
    """Masked-LM batches made on the device from a step number held in a device tensor.

    The packed training rows live on the device (2-8 bytes a token); the row order of the current
    and the next epoch sit in a fixed [2, rows] buffer the host refreshes once per epoch, so a step
    reads its rows by index arithmetic alone, with static shapes (what a CUDA graph needs)."""

    def __init__(self, tokens: np.ndarray, batch_size: int, seed: int, mask_rate: float, masking: MaskingVocabulary,
                 device: torch.device) -> None:
        rows, self.seq_len = tokens.shape
        if rows < batch_size:
            raise ValueError(f"{rows} training rows cannot fill a batch of {batch_size} (a step may span two epochs, not three)")
        self.device, self.batch_size, self.seed = device, batch_size, seed
        self.order = BatchOrder(rows, batch_size, 1, 1, seed)
        self.rows = rows
        self.tokens = torch.from_numpy(np.ascontiguousarray(tokens).astype(np.int32)).to(device)
        self.masked_count = static_count((batch_size, self.seq_len), mask_rate)
        self.mask_id = masking.mask_id
        self.special = masking.special.to(device)
        self.replacements = masking.replacement_ids.to(device)
        self.positions = torch.arange(batch_size * self.seq_len, device=device, dtype=torch.int64)
        self.in_step = torch.arange(batch_size, device=device, dtype=torch.int64)
        self.step = torch.zeros((), dtype=torch.int64, device=device)  # the graph reads it; the host fills it
        self.permutations = torch.zeros((2, rows), dtype=torch.int64, device=device)
        self.first_epoch = torch.zeros((), dtype=torch.int64, device=device)
        self._loaded_epoch: int | None = None
        self._seed_key = derived_seed(seed, 0xDE71CE) & 0xFFFFFFFF

    def set_step(self, step: int) -> None:
        """Host side, once per step: point the device at ``step`` (no sync; a new epoch's order is
        uploaded when the step first reaches it — one small copy per epoch)."""
        epoch = step * self.batch_size // self.rows
        if epoch != self._loaded_epoch:
            pair = np.stack([self.order.permutation(epoch), self.order.permutation(epoch + 1)])
            self.permutations.copy_(torch.from_numpy(pair))
            self.first_epoch.fill_(epoch)
            self._loaded_epoch = epoch
        self.step.fill_(step)

    def make(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(corrupted input ids [B, L], flat indices of the predicted positions [K], their labels [K])
        for the step in ``self.step``: exactly K positions (static masking), 80% [MASK], 10% a random
        token, 10% kept; positions holding special tokens are never chosen while others remain."""
        stream_positions = self.step * self.batch_size + self.in_step
        epoch, offset = stream_positions // self.rows, stream_positions % self.rows
        rows = self.permutations[epoch - self.first_epoch, offset]
        input_ids = self.tokens.index_select(0, rows).to(torch.int64)  # [B, L]
        flat = input_ids.view(-1)
        key = mix32((self.step & _MASK32) ^ self._seed_key)
        special = self.special[flat]
        draws = torch.where(special, torch.full_like(flat, 2, dtype=torch.float32), counter_uniform(key, self.positions, 0))
        chosen = draws.topk(self.masked_count, largest=False, sorted=False).indices
        labels = torch.where(special[chosen], torch.full_like(chosen, IGNORE_INDEX), flat[chosen])
        action = counter_uniform(key, chosen, 1)
        random_pick = (counter_uniform(key, chosen, 2) * len(self.replacements)).to(torch.int64).clamp_(max=len(self.replacements) - 1)
        replaced = torch.where(action < 0.8, torch.full_like(chosen, self.mask_id),
                               torch.where(action < 0.9, self.replacements[random_pick], flat[chosen]))
        corrupted = flat.index_put((chosen,), replaced).view_as(input_ids)
        return corrupted, chosen, labels


class DeviceMaskedLMStep:
    """Forward and backward of one masked-LM step on device batches, with device-side sums for the
    log. ``capture`` replays the step as one CUDA graph (CUDA only); the optimizer steps eagerly
    (fused AdamW: a few launches), reading the gradients the graph writes into fixed buffers.
    On an H200 with ``compile_loss`` (inductor's fused kernels inside the graph) eelbert-tiny ran at
    14.4M tokens/s against 6.3M without (docs/results/gpu)."""

    def __init__(self, model: nn.Module, batches: DeviceBatches, dtype: torch.dtype | None, compile_loss: bool = False) -> None:
        self.model, self.batches, self.dtype = model, batches, dtype
        self.device = batches.device
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct_sum = torch.zeros((), device=self.device)
        self.count_sum = torch.zeros((), device=self.device)
        self.loss_fn: Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = self.loss
        if compile_loss:
            self.loss_fn = torch.compile(self.loss, fullgraph=True, dynamic=False)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.capture_failed = False

    def loss(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean cross-entropy over the predicted positions, correct predictions, predictions)."""
        input_ids, chosen, labels = self.batches.make()
        autocast = torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=False) if self.dtype else nullcontext()
        with autocast:
            hidden = self.model.bert(input_ids=input_ids).last_hidden_state
            selected = hidden.reshape(-1, hidden.shape[-1]).index_select(0, chosen)
            outputs = self.model.cls(selected)
        return masked_lm_terms(self.model, outputs, labels)

    def forward_backward(self) -> None:
        loss, correct, count = self.loss_fn()
        loss.backward()
        self.loss_sum += loss.detach()
        self.correct_sum += correct
        self.count_sum += count

    def run(self, capture: bool) -> None:
        """One forward + backward. With ``capture`` on CUDA the first call warms up and captures the
        graph, and every step, the first included, is a replay of it (eager and captured kernels
        may round differently: a resumed run must not run its first steps another way than a
        straight run did); a capture that fails falls back to eager steps, with a warning."""
        if self.graph is not None:
            self.graph.replay()
            return
        if capture and self.device.type == "cuda" and not self.capture_failed:
            self.capture()
            return
        self.forward_backward()

    def capture(self) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # throwaway passes: lazy allocations and cuBLAS handles happen outside the capture
            for _ in range(WARMUP_PASSES):
                self.forward_backward()
        torch.cuda.current_stream().wait_stream(side)
        self.discard_pass_results()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.forward_backward()
        except Exception as error:  # capture failures vary with the driver and the model code
            log.warning("CUDA graph capture failed (%s: %s); training with eager device steps", type(error).__name__, error)
            torch.cuda.synchronize()
            self.capture_failed = True
            self.discard_pass_results()
            self.forward_backward()
            return
        self.graph = graph
        graph.replay()  # the captured step is recorded, not run: run it once for this step

    def discard_pass_results(self) -> None:
        """Forget the gradients and log sums of passes that are not a training step (the graph then
        allocates the gradients in its own pool and rewrites them each replay)."""
        for parameter in self.model.parameters():
            parameter.grad = None
        self.loss_sum.zero_()
        self.correct_sum.zero_()
        self.count_sum.zero_()

    def take_sums(self) -> tuple[float, float, float]:
        """The loss, correct and count summed since the last call (one device sync), then zeroed."""
        values = torch.stack([self.loss_sum, self.correct_sum, self.count_sum]).tolist()
        self.loss_sum.zero_()
        self.correct_sum.zero_()
        self.count_sum.zero_()
        return values[0], values[1], values[2]
