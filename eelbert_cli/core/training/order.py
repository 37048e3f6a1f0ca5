"""Data order and randomness as pure functions of (seed, step, rank): a resumed run replays the very
same batches, masks and dropout, so a checkpoint needs no RNG state."""

from __future__ import annotations

import numpy as np


def derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


class BatchOrder:
    """Rows of the training set for any (step, micro-step, rank): epoch-wise permutations of one
    endless stream, sliced so ranks and micro-steps never overlap and nothing is dropped."""

    def __init__(self, num_rows: int, batch_size: int, grad_accum: int, world_size: int, seed: int) -> None:
        self.num_rows, self.batch_size, self.grad_accum, self.world_size, self.seed = num_rows, batch_size, grad_accum, world_size, seed
        self._permutations: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        """The row order of one epoch (the last two are kept: a step may span an epoch boundary)."""
        if epoch not in self._permutations:
            kept = {e: p for e, p in self._permutations.items() if e == epoch - 1}
            self._permutations = kept | {epoch: np.random.default_rng(derived_seed(self.seed, epoch)).permutation(self.num_rows)}
        return self._permutations[epoch]

    def rows(self, step: int, micro: int, rank: int) -> np.ndarray:
        per_step = self.batch_size * self.grad_accum * self.world_size
        start = step * per_step + (micro * self.world_size + rank) * self.batch_size
        positions = np.arange(start, start + self.batch_size)
        epochs, offsets = np.divmod(positions, self.num_rows)
        return np.array([self.permutation(int(e))[o] for e, o in zip(epochs, offsets, strict=True)])
