"""Warmup-stable-decay snapshots: one pretraining run, a finished encoder at several budgets.

At each ``pretrain.snapshots`` token count's stable point the loop branches off, cools down like the
run's own end (``optim.wsd_multiplier``), saves the encoder, and returns to the exact state of the
branch point (parameters, optimizer moments, loss scale, counters, log window), so the main run ends
bit-identical to the same run without snapshots. A mixin of ``pretrain.PretrainLoop``: it uses the
loop's step, its state and its ``train_step``/``evaluate``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from eelbert_cli.core.files import append_jsonl, write_json
from eelbert_cli.core.training.checkpoints import save_with_tokenizer
from eelbert_cli.core.training.logbook import LogWindow

SNAPSHOTS = "snapshots"  # the run directory's folder: snapshots/tokens-N/ per pretrain.snapshots entry


class SnapshotBranches:
    """The snapshot half of the pretraining loop (see the module docstring)."""

    def snapshot_plan(self) -> list[tuple[int, int, int]]:
        """(tokens, stable steps, cooldown steps) per snapshot: stable for S tokens, then decayed for
        cooldown x S, like the run's own end (``wsd_multiplier``)."""
        plan = []
        for tokens in sorted(self.settings.snapshots):
            total = max(1, round(tokens / self.tokens_per_step))
            stable = max(1, round(total / (1 + self.settings.cooldown)))
            plan.append((tokens, stable, max(1, total - stable)))
        return plan

    def take_due_snapshot(self) -> None:
        """At a snapshot's stable step: branch off, cool down, save the encoder, and come back to
        the exact state of the branch point (parameters, optimizer moments, counters)."""
        for tokens, stable, cooldown in self.snapshot_plan():
            directory = self.spec.run_dir / SNAPSHOTS / f"tokens-{tokens}"
            if self.step == stable and not (directory / "snapshot.json").is_file():
                self.branch_and_save(tokens, cooldown, directory)

    def branch_and_save(self, tokens: int, cooldown_steps: int, directory: Path) -> None:
        started = time.perf_counter()
        self.flush_device_sums()
        kept_parameters = [p.detach().clone() for p in self.objective.parameters()]
        kept_moments = {id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
                        for p, state in self.optimizer.state.items()}
        kept_counters, kept_scaler, kept_window = (self.step, self.tokens, self.elapsed), self.scaler.state_dict(), self.window
        self.window = LogWindow(self.runtime, self.objective.counts_accuracy)  # the branch's own sums
        peak = self.scheduled_lr()
        floor = self.settings.lr * self.settings.min_lr_ratio
        for index in range(cooldown_steps):
            self.train_step(lr=floor + (peak - floor) * (1.0 - index / cooldown_steps))
        self.flush_device_sums()
        branch_loss = self.window.row(self.step, self.tokens, floor, self.elapsed)["loss"]
        if not math.isfinite(branch_loss):
            raise self._diverged()
        record = {"tokens": self.tokens, "steps": self.step, "stable_steps": kept_counters[0], "cooldown_steps": cooldown_steps,
                  "cooldown_train_loss": branch_loss}
        record |= self.evaluate()
        if self.runtime.is_main:
            save_with_tokenizer(self.model, self.tokenizer, directory)
            seconds = round(time.perf_counter() - started, 2)
            write_json(directory / "snapshot.json", record | {"requested_tokens": tokens, "seconds": seconds})
            append_jsonl(self.metrics_path, {"snapshot": str(directory.relative_to(self.spec.run_dir)), **record})
        with torch.no_grad():
            for parameter, kept in zip(self.objective.parameters(), kept_parameters, strict=True):
                parameter.copy_(kept)
            for parameter, state in self.optimizer.state.items():
                for key, value in kept_moments[id(parameter)].items():
                    if torch.is_tensor(value):
                        state[key].copy_(value)
                    else:
                        state[key] = value
        if self.scaler.is_enabled():
            self.scaler.load_state_dict(kept_scaler)
        self.step, self.tokens, self.elapsed = kept_counters
        kept_window.started += time.perf_counter() - started  # the next log row's tokens/s leaves the branch out
        self.window = kept_window
        self.runtime.barrier()

