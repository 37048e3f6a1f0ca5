"""Where a training process runs: its device, its peers under torchrun, and what they must agree on.

Every collective here keeps its tensors on the runtime's device: NCCL (GPUs) only reduces CUDA
tensors, gloo (CPUs) CPU ones, so a tensor made on the wrong device would fail the first log step
of a multi-GPU run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from eelbert_cli.core.errors import EelbertError

T = TypeVar("T")


def pick_device(preference: str, setting: str) -> torch.device:
    """``auto`` takes a GPU when one is visible; ``cuda`` without one is the user's error."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise EelbertError(f"{setting} is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device("cuda" if torch.cuda.is_available() and preference != "cpu" else "cpu")


@dataclass
class Runtime:
    """Where this process runs and who its peers are (torchrun sets the environment)."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    launched: bool = False  # started by torchrun: a process group exists even for one process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.launched

    def tensor(self, values: list[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """A tensor fit for this runtime's collectives."""
        return torch.tensor(values, dtype=dtype, device=self.device)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all ranks."""
        totals = self.tensor(values)
        if self.distributed:
            dist.all_reduce(totals)
        return totals.tolist()

    def maximum(self, value: float) -> float:
        """The largest ``value`` over all ranks (e.g. elapsed time, so every rank reads one clock)."""
        if not self.distributed:
            return value
        tensor = self.tensor([value])
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())

    def all_true(self, flag: bool) -> bool:
        return self._reduce_flag(flag, "min")

    def any_true(self, flag: bool) -> bool:
        return self._reduce_flag(flag, "max")

    def _reduce_flag(self, flag: bool, how: str) -> bool:
        if not self.distributed:
            return flag
        value = self.tensor([float(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MIN if how == "min" else dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def main_first(self, work: Callable[[], T]) -> T:
        """Rank 0 does ``work`` (e.g. packing a corpus into a shared cache), then the others, which
        find it done."""
        result = work() if self.is_main else None
        self.barrier()
        return result if self.is_main else work()

    def ranks_agree(self, model: nn.Module) -> bool:
        """Every rank holds bit-identical weights (what DDP promises; checked, not assumed)."""
        if not self.distributed:
            return True
        checksum = torch.stack([p.detach().double().sum() for p in model.parameters()])
        gathered = [torch.empty_like(checksum) for _ in range(self.world_size)]
        dist.all_gather(gathered, checksum)
        return all(torch.equal(gathered[0], other) for other in gathered[1:])


def limit_heap_fragmentation() -> None:
    """Serve large CPU allocations from mmap so they return to the OS when freed.

    Under Bernoulli masking the masked-position logits change shape every step; with glibc's
    default heap, freed blocks of ever-different sizes pile up and peak memory grew from 1.1 GB to
    3.5 GB over a 5-minute eelbert-tiny run. The price is a fresh mmap (page faults) for every
    large tensor; static masking keeps shapes fixed and needs none of this. Glibc only.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def start_runtime(preference: str, limit_heap: bool = True) -> Runtime:
    device = pick_device(preference, "pretrain.device")
    if limit_heap:
        limit_heap_fragmentation()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    launched = "TORCHELASTIC_RUN_ID" in os.environ  # torchrun sets it, also with --nproc_per_node 1
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)  # before NCCL starts, so each rank talks from its own GPU
    if (world_size > 1 or launched) and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Runtime(device, dist.get_rank() if dist.is_initialized() else 0, world_size, launched)


class StopRequest:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint at the next step boundary. A signal that
    arrives after the loop's last look is not dropped: ``pass_on`` (called once the run's records are
    written) hands it to the handler in place then (the CLI's stops the command, so ``eelbert run``
    does not carry on into its next stage)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.signal_number: int | None = None

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        def handler(signum, _frame):
            self.signal_name, self.signal_number = signal.Signals(signum).name, signum

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        except BaseException:
            self.signal_number = None  # the loop acted on the signal (or something else stopped it): nothing to pass on
            raise
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def pass_on(self) -> None:
        """Deliver a signal the loop did not act on to the handler now in place."""
        number, self.signal_number = self.signal_number, None
        if number is None:
            return
        handler = signal.getsignal(number)
        if callable(handler):
            handler(number, None)
        elif handler != signal.SIG_IGN:
            signal.raise_signal(number)

    def agreed(self, runtime: Runtime) -> str | None:
        """Every rank stops at the same step if any rank was signalled."""
        if runtime.any_true(self.signal_name is not None):
            return self.signal_name or "a signal on another rank"
        return None
