"""Pretraining, top to bottom: tokenizer -> model -> packed data -> objective -> loop -> checkpoint.

Read :func:`pretrain` first: it is the recipe. The pieces it uses each live in their own module:
the objective (``objectives.py``: masked-LM today), the distributed runtime (``runtime.py``), data
order and seeds (``order.py``), optimiser and budget (``optim.py``), checkpoints
(``checkpoints.py``), the metrics log (``logbook.py``) and progress (``core.console``).

Exactness on resume comes from one decision: data order, masking and dropout are pure functions of
(seed, step, rank), so a checkpoint needs no RNG state and a resumed run replays the very same
batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eelbert_cli.core.console import Progress, log
from eelbert_cli.core.data.corpora import iter_documents
from eelbert_cli.core.data.packing import PackedDataset, pack_corpus
from eelbert_cli.core.data.tokenization import load_tokenizer, vocabulary_of
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import append_jsonl, run_directory_lock, write_json
from eelbert_cli.core.manifest import write_manifest
from eelbert_cli.core.model.modeling import EelbertForMaskedLM, build_model, load_model, set_frequent_classes
from eelbert_cli.core.spec import ExperimentSpec, PretrainSpec
from eelbert_cli.core.targets import resolve_model_config
from eelbert_cli.core.training.checkpoints import (
    latest_checkpoint,
    load_extra_state,
    load_optimizer_state,
    read_trainer_state,
    save_checkpoint,
    save_with_tokenizer,
)
from eelbert_cli.core.training.device_step import DeviceBatches, DeviceMaskedLMStep
from eelbert_cli.core.training.logbook import METRICS_FILE, LogWindow, keep_metrics_until
from eelbert_cli.core.training.masking import MaskingVocabulary
from eelbert_cli.core.training.objectives import MaskedLMObjective, Objective
from eelbert_cli.core.training.optim import Budget, lr_multiplier, make_adamw, resolve_budget, set_lr
from eelbert_cli.core.training.order import BatchOrder, derived_seed
from eelbert_cli.core.training.precision import autocast, autocast_dtype
from eelbert_cli.core.training.runtime import Runtime, StopRequest, start_runtime
from eelbert_cli.core.training.snapshots import SnapshotBranches

RESULTS_FILE = "pretrain_results.json"
FINAL_CHECKPOINT = "checkpoint"
# Pretraining settings a checkpoint's weights depend on (the rest — logging, checkpoint interval,
# evaluation, device, precision, compile — may change when a run is resumed).
RECIPE_FIELDS = (
    "corpus", "tokenizer_vocab_size", "seq_len", "heldout", "mask_rate", "masking", "whole_word_masking", "batch_size", "grad_accum",
    "lr", "warmup", "schedule", "cooldown", "min_lr_ratio", "weight_decay", "beta1", "beta2", "clip_norm", "dropout", "budget", "loop",
)
DISTILL_FIELDS = ("objective", "teacher", "distill")  # in the recipe only when distilling: masked-LM checkpoints keep theirs


class TrainingStopped(EelbertError):
    """A run stopped by a signal, with its state saved (exit code 2 from the CLI)."""


@dataclass
class PretrainOutcome:
    run_dir: Path
    checkpoint: Path  # the final checkpoint, or the latest training checkpoint of a paused run
    results: dict = field(default_factory=dict)
    paused_at_step: int | None = None


# ----------------------------------------------------------------------------------- the recipe
def pretrain(spec: ExperimentSpec, resume: bool = False, stop_after_steps: int | None = None, progress: bool = True,
             deadline: float | None = None) -> PretrainOutcome:
    """Run (or continue) the spec's pretraining. ``stop_after_steps`` pauses the run with a
    checkpoint after that many steps in this call — for sessions shorter than the budget;
    ``deadline`` (a ``time.monotonic()`` value) stops it like a SIGTERM would, checkpoint saved."""
    if spec.pretrain is None:
        raise EelbertError("the spec has no 'pretrain' section; see README for its fields")
    runtime = start_runtime(spec.pretrain.device, limit_heap=spec.pretrain.masking == "bernoulli")
    with run_directory_lock(spec.run_dir) if runtime.is_main else nullcontext(), deterministic_kernels(spec.pretrain.deterministic):
        return run_pretraining(spec, runtime, resume, stop_after_steps, progress, deadline)


def run_pretraining(spec: ExperimentSpec, runtime: Runtime, resume: bool, stop_after_steps: int | None, progress: bool,
                    deadline: float | None = None) -> PretrainOutcome:
    """The recipe, on every rank: tokenizer -> model -> packed data -> objective -> loop -> final checkpoint."""
    settings, run_dir = spec.pretrain, spec.run_dir
    checkpoint = resume_checkpoint(spec, resume, runtime)  # refuses another run, or a changed recipe, before writing

    tokenizer, tokenizer_source = runtime.main_first(lambda: prepare_tokenizer(spec, run_dir))
    vocabulary = vocabulary_of(tokenizer)
    model = initial_model(spec, tokenizer_source, vocabulary)
    packed_dir = runtime.main_first(
        lambda: pack_corpus(settings.corpus, tokenizer, settings.seq_len, settings.heldout, model.config.max_position_embeddings)
    )
    train_data, heldout_data = PackedDataset(packed_dir, "train"), PackedDataset(packed_dir, "heldout")

    if checkpoint is not None:
        model = load_model(checkpoint / "model", "masked-lm")
    elif model.config.mlm_head == "frequent-ids" and spec.model.checkpoint is None:
        set_frequent_classes(model, torch.from_numpy(train_data.token_counts()))  # a fresh head: its classes from this corpus
    if settings.dropout is not None:
        set_dropout(model, settings.dropout)
    model.to(runtime.device).train()
    loop_kind = choose_loop(settings, runtime, len(train_data))
    objective = make_objective(settings, model, vocabulary, runtime, compile_encoder=settings.compile and loop_kind == "host")
    objective.attach(train_data)
    objective.attach(heldout_data)
    loop = PretrainLoop(spec, runtime, objective, train_data, heldout_data, checkpoint, loop_kind, tokenizer, deadline)
    if runtime.is_main:
        write_manifest(spec, run_dir)  # the record changes only once the run is known to be able to continue

    with loop.stop.installed(), Progress(enabled=progress) as bar:
        paused = loop.run(stop_after_steps, bar)
    if paused is not None:
        loop.stop.pass_on()
        return PretrainOutcome(run_dir, paused, paused_at_step=loop.step)

    results = {**loop.summary(), "loop": loop_kind, "cuda_graph": loop.uses_cuda_graph, "objective": settings.objective,
               **objective.describe(), "train_sequences": len(train_data), "heldout_sequences": len(heldout_data),
               "packed_data": str(packed_dir)}
    results |= evaluate_heldout(objective, heldout_data, settings, runtime, spec.seed, loop.dtype)
    if runtime.distributed:
        results["ranks_agree"] = runtime.ranks_agree(model)
    loop.save()
    final = run_dir / FINAL_CHECKPOINT
    if runtime.is_main:
        save_with_tokenizer(model, tokenizer, final)
        write_json(run_dir / RESULTS_FILE, results)
    runtime.barrier()
    loop.stop.pass_on()  # a signal that came after the loop's last look: the run is complete, the command stops here
    return PretrainOutcome(run_dir, final, results)


# ----------------------------------------------------------------------------------- the pieces
@contextmanager
def deterministic_kernels(enabled: bool) -> Iterator[None]:
    """``pretrain.deterministic``: the same sums in the same order on every run. On CUDA the embedding
    and gather backward add with atomics in varying order (the CUDA proof of 2026-12-04: a resumed
    bf16 run differed by up to 0.004), so resume is exact only with deterministic kernels; cuBLAS
    needs its workspace fixed before its first call. Ops without a deterministic kernel warn. The
    process's previous setting is restored afterwards."""
    if not enabled:
        yield
        return
    import os

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def resume_checkpoint(spec: ExperimentSpec, resume: bool, runtime: Runtime) -> Path | None:
    """The checkpoint to continue from (None: start at step 0). Without ``--resume`` a directory that
    holds a run is refused; with it, a checkpoint made by another recipe is (naming the field)."""
    checkpoint = latest_checkpoint(spec.run_dir / "checkpoints")
    if not resume:
        if checkpoint is not None:
            raise EelbertError(f"{spec.run_dir} already holds a run; continue it with --resume, or choose another output_dir")
        return None
    if checkpoint is None:
        if runtime.is_main:
            log.info("no checkpoint in %s; starting from step 0", spec.run_dir / "checkpoints")
        return None
    check_recipe(checkpoint, spec, runtime.world_size)
    return checkpoint


def check_recipe(checkpoint: Path, spec: ExperimentSpec, world_size: int) -> None:
    """Refuse to continue ``checkpoint`` with a spec whose recipe differs, naming the field."""
    saved = read_trainer_state(checkpoint).get("recipe")
    if saved is not None and "masking" not in saved.get("pretrain", {"masking": None}):
        saved["pretrain"]["masking"] = "bernoulli"  # checkpoints from before static masking masked per position
    if saved is None:
        log.warning("checkpoint %s records no recipe (written by an older eelbert); resuming unchecked", checkpoint)
    elif changed := first_difference(saved, pretraining_recipe(spec, world_size)):
        field, before, now = changed
        raise EelbertError(
            f"resuming {checkpoint} with a different recipe: {field} was {before!r}, the spec now says {now!r}. "
            "Restore it, or start a new run in another output_dir (logging, checkpoint interval, device and precision may change)"
        )


def pretraining_recipe(spec: ExperimentSpec, world_size: int) -> dict:
    """What a checkpoint's weights depend on; a resumed run must match it exactly."""
    data = spec.model_dump(mode="json")
    return {
        "model": data["model"],
        "tokenizer": data["tokenizer"],
        "seed": data["seed"],
        "world_size": world_size,
        "pretrain": {key: data["pretrain"][key] for key in RECIPE_FIELDS + (DISTILL_FIELDS if spec.pretrain.objective != "mlm" else ())},
    }


def first_difference(before: Any, now: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The dotted path of the first field that differs between two JSON-like values, with both values."""
    if isinstance(before, dict) and isinstance(now, dict):
        for key in dict.fromkeys([*before, *now]):
            found = first_difference(before.get(key), now.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if before == now else (path, before, now)


def set_dropout(model: nn.Module, probability: float) -> None:
    """``pretrain.dropout`` for a model loaded from a checkpoint: the config (so it is saved) and every module."""
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = probability
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = probability


def prepare_tokenizer(spec: ExperimentSpec, run_dir: Path):
    """The spec's tokenizer, or a WordPiece trained on the corpus once and kept in the run dir."""
    settings = spec.pretrain
    if settings.tokenizer_vocab_size is None:
        return load_tokenizer(spec.tokenizer), spec.tokenizer
    from eelbert_cli.core.data.vocab_training import train_wordpiece

    directory = run_dir / "tokenizer"
    if not (directory / "tokenizer.json").is_file():
        log.info("training a %d-token WordPiece vocabulary on the corpus", settings.tokenizer_vocab_size)
        train_wordpiece(iter_documents(settings.corpus), settings.tokenizer_vocab_size, directory)
    return load_tokenizer(directory / "tokenizer.json"), str(directory / "tokenizer.json")


def initial_model(spec: ExperimentSpec, tokenizer_source: str, vocabulary: list[str]) -> EelbertForMaskedLM:
    if spec.model.checkpoint is not None:
        model = load_model(spec.model.checkpoint, "masked-lm")
        if getattr(model.config, "hash_vocabulary", None) not in (None, vocabulary):
            raise EelbertError(f"checkpoint {spec.model.checkpoint} was built for another vocabulary than tokenizer {tokenizer_source}")
        return model
    config = resolve_model_config(spec.model, tokenizer_source)
    torch.manual_seed(derived_seed(spec.seed, 0xC0FFEE))  # the same initial weights on every rank and run
    return build_model(config, "masked-lm")


def choose_loop(settings: PretrainSpec, runtime: Runtime, train_rows: int) -> str:
    """``host`` (batches made on the CPU, any objective) or ``device`` (``device_step.py``: masked-LM
    made and trained on the device without host syncs). ``auto`` takes the device loop on CUDA
    wherever it applies; asking for it where it cannot apply is an error that says why."""
    reasons = [
        why for why, applies in (
            ("objective is not mlm", settings.objective != "mlm"), ("masking is not static", settings.masking != "static"),
            ("whole_word_masking is on", settings.whole_word_masking), ("grad_accum is above 1", settings.grad_accum > 1),
            ("precision is fp16 (needs a loss scaler)", settings.precision == "fp16"), ("the run is distributed", runtime.distributed),
            (f"{train_rows} training rows are fewer than one batch", train_rows < settings.batch_size),
        ) if applies
    ]
    if settings.loop == "device" and reasons:
        raise EelbertError(f"pretrain.loop is 'device' but {'; '.join(reasons)}: use loop 'host' or 'auto'")
    if settings.loop == "auto":
        return "device" if runtime.device.type == "cuda" and not reasons else "host"
    return settings.loop


def make_objective(settings: PretrainSpec, model: EelbertForMaskedLM, vocabulary: list[str], runtime: Runtime,
                   compile_encoder: bool | None = None) -> Objective:
    """Masked-LM, or distillation from the spec's teacher (with masked-LM beside it for mlm+distill)."""
    masking, static = MaskingVocabulary.from_tokens(vocabulary), settings.masking == "static"
    compile_encoder = settings.compile if compile_encoder is None else compile_encoder
    if settings.objective == "mlm":
        return MaskedLMObjective(model, compile_encoder, masking, settings.mask_rate, settings.whole_word_masking, static)
    from eelbert_cli.core.training.general_distillation import DistillationObjective, load_teacher

    teacher_path, teacher = load_teacher(settings.teacher, vocabulary)
    mlm_weight = settings.distillation.mlm if settings.objective == "mlm+distill" else 0.0
    objective = DistillationObjective(model, teacher_path, teacher.to(runtime.device), settings.distillation, mlm_weight, masking,
                                      settings.mask_rate, settings.whole_word_masking, compile_encoder, static)
    return objective.to(runtime.device)


def make_optimizer(trained: nn.Module, settings: PretrainSpec, device: torch.device) -> torch.optim.AdamW:
    """Over the objective's parameters: the model's (in the model's order), then any pretraining-only ones."""
    return make_adamw(trained, settings.lr, settings.weight_decay, (settings.beta1, settings.beta2), device)


@torch.no_grad()
def evaluate_heldout(objective: Objective, data: PackedDataset, settings: PretrainSpec, runtime: Runtime, seed: int,
                     dtype: torch.dtype | None) -> dict[str, float]:
    """Held-out loss and accuracy with the same masks every time, so evaluations are comparable."""
    objective.eval()
    loss_sum = correct_sum = count_sum = 0.0
    rows = np.arange(len(data))[runtime.rank :: runtime.world_size][: settings.eval_batches * settings.batch_size]
    for index, start in enumerate(range(0, len(rows), settings.batch_size)):
        generator = torch.Generator().manual_seed(derived_seed(seed, 7_777_777, index, runtime.rank))
        picked = rows[start : start + settings.batch_size]
        batch = objective.make_batch(data.batch(picked), generator, picked, data.split)
        with autocast(runtime.device, dtype):
            loss, correct, count = objective(**{k: v.to(runtime.device) for k, v in batch.items()})
        loss_sum += loss.item() * count
        correct_sum += correct.item()
        count_sum += count
    loss_sum, correct_sum, count_sum = runtime.sum([loss_sum, correct_sum, count_sum])
    objective.train()
    if count_sum == 0:
        return {"heldout_loss": float("nan"), "heldout_accuracy": float("nan"), "heldout_masked_tokens": 0}
    if not objective.counts_accuracy:
        return {"heldout_loss": loss_sum / count_sum, "heldout_tokens": int(count_sum)}
    return {"heldout_loss": loss_sum / count_sum, "heldout_accuracy": correct_sum / count_sum, "heldout_masked_tokens": int(count_sum)}


# ----------------------------------------------------------------------------------- the loop
class PretrainLoop(SnapshotBranches):
    """One training session: from the checkpoint's state (or step 0) to the budget, a pause or a signal."""

    def __init__(self, spec: ExperimentSpec, runtime: Runtime, objective: Objective, data: PackedDataset, heldout: PackedDataset,
                 checkpoint: Path | None, loop_kind: str = "host", tokenizer=None, deadline: float | None = None) -> None:
        self.spec, self.settings, self.runtime, self.objective = spec, spec.pretrain, runtime, objective
        self.data, self.heldout = data, heldout
        self.model = objective.model
        self.optimizer = make_optimizer(objective, self.settings, runtime.device)
        state = {"step": 0, "tokens": 0, "elapsed_seconds": 0.0}
        if checkpoint is not None:
            state = read_trainer_state(checkpoint)
            objective.load_extra_state(load_extra_state(checkpoint))  # before the optimizer: its state follows these parameters
            load_optimizer_state(checkpoint, self.optimizer, state)
        self.step, self.tokens, self.elapsed = state["step"], state["tokens"], state["elapsed_seconds"]
        self.start_tokens, self.start_elapsed = self.tokens, self.elapsed
        self.dtype = autocast_dtype(self.settings.precision, runtime.device)
        self.scaler = torch.amp.GradScaler(runtime.device.type, enabled=self.dtype == torch.float16)
        if state.get("grad_scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["grad_scaler"])  # fp16 resumes with the loss scale it had
        self.trained = self._distributed(objective)
        self.order = BatchOrder(len(data), self.settings.batch_size, self.settings.grad_accum, runtime.world_size, spec.seed)
        self.tokens_per_step = self.settings.batch_size * self.settings.grad_accum * runtime.world_size * self.settings.seq_len
        self.budget: Budget = resolve_budget(**self.settings.budget.model_dump(), tokens_per_step=self.tokens_per_step)
        self.window = LogWindow(runtime, objective.counts_accuracy)
        self.stop = StopRequest()
        self.last_good = checkpoint
        self.metrics_path = spec.run_dir / METRICS_FILE
        if runtime.is_main:
            keep_metrics_until(self.metrics_path, self.step)
        self.tokenizer = tokenizer  # snapshots are saved with it
        self.deadline = deadline  # time.monotonic() after which the run stops as if signalled
        self.device_step: DeviceMaskedLMStep | None = None
        self.capture_graph = False
        self.device_step_starts = False  # the session's first device step compiles and captures (timed apart)
        self.startup_seconds = 0.0
        if loop_kind == "device":
            self._start_device_loop()

    def _start_device_loop(self) -> None:
        """The training rows go to the device once; batches are made there from the step number."""
        settings, model = self.settings, self.model
        rows = self.data.tokens[self.data.global_rows(np.arange(len(self.data)))]
        batches = DeviceBatches(rows, settings.batch_size, self.spec.seed, settings.mask_rate, self.objective.masking, self.runtime.device)
        compile_loss = settings.compile and self.runtime.device.type == "cuda"
        self.device_step = DeviceMaskedLMStep(model, batches, self.dtype, compile_loss)
        self.device_step_starts = compile_loss or (settings.cuda_graph and self.runtime.device.type == "cuda")
        no_dropout = model.config.hidden_dropout_prob == 0 and model.config.attention_probs_dropout_prob == 0
        self.capture_graph = settings.cuda_graph and self.runtime.device.type == "cuda" and no_dropout
        if settings.cuda_graph and self.runtime.device.type == "cuda" and not no_dropout:
            log.info("dropout is on: no CUDA graph (set pretrain.dropout: 0.0 to capture the step)")

    @property
    def uses_cuda_graph(self) -> bool:
        return self.device_step is not None and self.device_step.graph is not None
    def _distributed(self, objective: nn.Module) -> nn.Module:
        if not self.runtime.distributed:
            return objective
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.runtime.device.index] if self.runtime.device.type == "cuda" else None
        return DistributedDataParallel(objective, device_ids=device_ids, broadcast_buffers=False)

    @property
    def finished(self) -> bool:
        return self.budget.done(self.step, self.elapsed)

    def run(self, stop_after_steps: int | None, bar: Progress) -> Path | None:
        """Train until the budget is spent (returns None) or a pause (returns its checkpoint)."""
        settings, session_start = self.settings, self.step
        task = bar.task("pretrain", total=self.budget.total_steps or self.budget.seconds, completed=self._position())
        while not self.finished:
            self.take_due_snapshot()
            lr = self.train_step()
            if self.step % settings.log_every == 0 or self.finished:
                self.log_row(lr, task)
            if settings.eval_every and self.step % settings.eval_every == 0 and not self.finished:
                evaluation = evaluate_heldout(self.objective, self.heldout, settings, self.runtime, self.spec.seed, self.dtype)
                if self.runtime.is_main:
                    append_jsonl(self.metrics_path, {"step": self.step, "tokens": self.tokens, **evaluation})
            if self.step % settings.checkpoint_every == 0 and not self.finished:
                self.save()
            if self.deadline is not None and time.monotonic() > self.deadline and self.stop.signal_name is None:
                self.stop.signal_name = "its time limit"
            if signal_name := self.stop.agreed(self.runtime):
                saved = self.save()
                raise TrainingStopped(
                    f"interrupted by {signal_name} at step {self.step}; checkpoint saved to {saved}. "
                    "Continue with: eelbert pretrain SPEC --resume"
                )
            if stop_after_steps is not None and self.step - session_start >= stop_after_steps and not self.finished:
                return self.save()
        return None

    def scheduled_lr(self) -> float:
        settings = self.settings
        progress = self.budget.progress(self.step, self.elapsed)
        return settings.lr * lr_multiplier(progress, settings.warmup, settings.schedule, settings.min_lr_ratio, settings.cooldown)

    def train_step(self, lr: float | None = None) -> float:
        """One optimiser step over ``grad_accum`` micro-batches; returns the learning rate used
        (``lr``: instead of the schedule's, as a snapshot's cooldown does)."""
        lr = self.scheduled_lr() if lr is None else lr
        if self.device_step is not None:
            return self.device_train_step(lr)
        settings, runtime, started = self.settings, self.runtime, time.perf_counter()
        set_lr(self.optimizer, lr)
        torch.manual_seed(derived_seed(self.spec.seed, self.step, runtime.rank, 1))  # dropout
        for micro in range(settings.grad_accum):
            rows = self.order.rows(self.step, micro, runtime.rank)
            generator = torch.Generator().manual_seed(derived_seed(self.spec.seed, self.step, runtime.rank, micro, 2))
            made = self.objective.make_batch(self.data.batch(rows), generator, rows, self.data.split)
            batch = {k: v.to(runtime.device, non_blocking=True) for k, v in made.items()}
            syncing = not runtime.distributed or micro == settings.grad_accum - 1
            with (nullcontext() if syncing else self.trained.no_sync()), autocast(runtime.device, self.dtype):
                loss, correct, count = self.trained(**batch)
            self.scaler.scale(loss / settings.grad_accum).backward()
            self.window.add_micro_step(loss, correct, count, settings.grad_accum)
        if settings.clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.objective.parameters(), settings.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += self.tokens_per_step
        self.window.add_step(self.tokens_per_step)
        self.elapsed += time.perf_counter() - started - self.objective.take_untimed_seconds()
        if runtime.distributed and self.budget.seconds is not None:
            self.elapsed = runtime.maximum(self.elapsed)  # one clock for all ranks: the same LR, the same last step
        return lr

    def device_train_step(self, lr: float) -> float:
        """The device loop's step: a few launches (or one graph replay) and no host sync; its
        sums reach the log window at the next log point."""
        started = time.perf_counter()
        starting = self.device_step_starts and self.device_step.graph is None and not self.device_step.capture_failed
        set_lr(self.optimizer, lr)
        self.device_step.batches.set_step(self.step)
        self.device_step.run(capture=self.capture_graph)
        if self.settings.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.objective.parameters(), self.settings.clip_norm, foreach=True)
        self.optimizer.step()
        if self.device_step.graph is None:
            self.optimizer.zero_grad(set_to_none=True)  # a captured graph rewrites its gradient buffers instead
        self.step += 1
        self.tokens += self.tokens_per_step
        self.window.add_step(self.tokens_per_step)
        if starting:  # compilation and capture: a fixed cost of the session, not training time
            self.startup_seconds += time.perf_counter() - started
            self.device_step_starts = False
        else:
            self.elapsed += time.perf_counter() - started
        return lr

    def flush_device_sums(self) -> None:
        """Move the device loop's sums into the log window: the one host sync of a log interval. The
        wait for the device's queue to drain is training time, so the clock counts it here."""
        if self.device_step is None:
            return
        started = time.perf_counter()
        loss, correct, count = self.device_step.take_sums()
        self.window.add_micro_step(torch.tensor(loss, device=self.runtime.device), correct, count, 1)
        self.elapsed += time.perf_counter() - started

    def log_row(self, lr: float, task) -> None:
        self.flush_device_sums()
        row = self.window.row(self.step, self.tokens, lr, self.elapsed)
        if not math.isfinite(row["loss"]):
            raise self._diverged()
        if self.runtime.is_main:
            append_jsonl(self.metrics_path, row)
        where = f"step {self.step}" + (f"/{self.budget.total_steps}" if self.budget.total_steps else "")
        task.update(self._position(), f"{where}  loss {row['loss']:.3f}  lr {row['lr']:.2e}  {row['tokens_per_second']:,.0f} tok/s")

    def save(self) -> Path | None:
        """A checkpoint of this step (rank 0 writes; every rank waits); refuses a diverged state."""
        self.flush_device_sums()
        if not self.window.loss_is_finite():
            raise self._diverged()
        if self.runtime.is_main:
            state = {
                "tokens": self.tokens, "elapsed_seconds": self.elapsed, "seed": self.spec.seed, "world_size": self.runtime.world_size,
                "recipe": pretraining_recipe(self.spec, self.runtime.world_size), "grad_scaler": self.scaler.state_dict(),
            }
            self.last_good = save_checkpoint(self.spec.run_dir / "checkpoints", self.step, self.model, self.optimizer, state,
                                             self.settings.keep_checkpoints, self.objective.extra_state())
        self.runtime.barrier()
        return self.last_good

    def evaluate(self) -> dict[str, float]:
        return evaluate_heldout(self.objective, self.heldout, self.settings, self.runtime, self.spec.seed, self.dtype)

    def summary(self) -> dict:
        return {
            "steps": self.step,
            "tokens": self.tokens,
            "elapsed_seconds": round(self.elapsed, 2),
            "startup_seconds": round(self.startup_seconds, 2),  # compilation and graph capture, not in elapsed_seconds
            "tokens_per_second": round((self.tokens - self.start_tokens) / max(self.elapsed - self.start_elapsed, 1e-9)),
            "world_size": self.runtime.world_size,
            "device": str(self.runtime.device),
            "precision": str(self.dtype).removeprefix("torch.") if self.dtype else "fp32",
        }

    def _position(self) -> float:
        return self.step if self.budget.total_steps else min(self.elapsed, self.budget.seconds)

    def _diverged(self) -> EelbertError:
        return EelbertError(
            f"the loss became NaN/inf by step {self.step}; stopped without saving. Last good checkpoint: "
            f"{self.last_good or 'none'}. Lower pretrain.lr, or use precision fp32/bf16."
        )
