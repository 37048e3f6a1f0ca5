"""Masked-LM pretraining, top to bottom: data -> model -> optimiser -> loop -> checkpoint -> results.

Speed comes from one decision: the vocabulary projection is applied only at the ~15% masked
positions (transformers' BertForMaskedLM projects every position). Exactness on resume comes from
another: data order, masking and dropout are pure functions of (seed, step, rank), so a checkpoint
needs no RNG state and a resumed run replays the very same batches.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from eelbert_cli.core.checkpointing import (
    latest_checkpoint,
    load_optimizer_state,
    read_trainer_state,
    save_checkpoint,
    save_with_tokenizer,
)
from eelbert_cli.core.corpora import iter_documents
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.manifest import write_atomic, write_manifest
from eelbert_cli.core.masking import IGNORE_INDEX, MaskingVocabulary, mask_tokens
from eelbert_cli.core.models import EelbertForMaskedLM, build_model, load_model
from eelbert_cli.core.optim import lr_multiplier, make_adamw, set_lr
from eelbert_cli.core.precision import autocast, autocast_dtype
from eelbert_cli.core.packing import PackedDataset, pack_corpus
from eelbert_cli.core.spec import ExperimentSpec, PretrainSpec, resolve_model_config
from eelbert_cli.core.tokenization import load_tokenizer, vocabulary_of

METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "pretrain_results.json"
FINAL_CHECKPOINT = "checkpoint"


class TrainingStopped(EelbertError):
    """A run stopped by a signal, with its state saved (exit code 2 from the CLI)."""


# ----------------------------------------------------------------------------------------- setup
@dataclass
class Runtime:
    """Where this process runs and who its peers are (torchrun sets the environment)."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def limit_heap_fragmentation() -> None:
    """Serve large CPU allocations from mmap so they return to the OS when freed.

    The masked-position logits change shape every step; with glibc's default heap, freed blocks
    of ever-different sizes pile up and peak memory grew from 1.1 GB to 3.5 GB over a 5-minute
    eelbert-tiny run. Glibc only; elsewhere this does nothing.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def start_runtime(preference: str) -> Runtime:
    cuda = torch.cuda.is_available() and preference != "cpu"
    limit_heap_fragmentation()
    if preference == "cuda" and not torch.cuda.is_available():
        raise EelbertError("pretrain.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return Runtime(device, dist.get_rank() if world_size > 1 else 0, world_size)


# ------------------------------------------------------------------------------ data and order
def derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


class BatchOrder:
    """Rows of the training set for any (step, micro-step, rank): epoch-wise permutations of one
    endless stream, sliced so ranks and micro-steps never overlap and nothing is dropped."""

    def __init__(self, num_rows: int, batch_size: int, grad_accum: int, world_size: int, seed: int) -> None:
        self.num_rows, self.batch_size, self.grad_accum, self.world_size, self.seed = num_rows, batch_size, grad_accum, world_size, seed
        self._permutations: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            self._permutations = {epoch: np.random.default_rng(derived_seed(self.seed, epoch)).permutation(self.num_rows)}
        return self._permutations[epoch]

    def rows(self, step: int, micro: int, rank: int) -> np.ndarray:
        per_step = self.batch_size * self.grad_accum * self.world_size
        start = step * per_step + (micro * self.world_size + rank) * self.batch_size
        positions = np.arange(start, start + self.batch_size)
        epochs, offsets = np.divmod(positions, self.num_rows)
        return np.array([self._permutation(int(e))[o] for e, o in zip(epochs, offsets)])


# --------------------------------------------------------------------------------- the objective
class MaskedLMObjective(nn.Module):
    """Loss, correct predictions and count at the masked positions only."""

    def __init__(self, model: EelbertForMaskedLM, compile_encoder: bool = False) -> None:
        super().__init__()
        self.model = model
        compiled = None
        if compile_encoder and next(model.parameters()).device.type == "cuda":
            compiled = torch.compile(model.bert)
        elif compile_encoder:
            print("eelbert: torch.compile is for GPU runs; training eagerly on the CPU")
        object.__setattr__(self, "_compiled", compiled)  # same parameters, not registered twice
        self._compile_verified = False

    def _encode(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The encoder, compiled where asked; compilation happens (and can fail) on the first call."""
        if self._compiled is not None:
            try:
                hidden = self._compiled(input_ids=input_ids).last_hidden_state
                self._compile_verified = True
                return hidden
            except Exception as error:  # noqa: BLE001 - compiler/toolchain failures vary by platform
                if self._compile_verified:
                    raise
                print(f"eelbert: torch.compile failed ({type(error).__name__}: {error}); training eagerly")
                object.__setattr__(self, "_compiled", None)
        return self.model.bert(input_ids=input_ids).last_hidden_state

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self._encode(input_ids)
        selected = labels != IGNORE_INDEX
        targets = labels[selected]
        logits = self.model.cls(hidden[selected])
        loss = F.cross_entropy(logits.float(), targets)
        correct = (logits.argmax(dim=-1) == targets).sum()
        return loss, correct, targets.numel()


# ----------------------------------------------------------------------------------- schedule
def make_optimizer(model: nn.Module, settings: PretrainSpec, device: torch.device) -> torch.optim.AdamW:
    return make_adamw(model, settings.lr, settings.weight_decay, (settings.beta1, settings.beta2), device)


@dataclass
class Budget:
    total_steps: int | None  # None: a wall-clock budget
    seconds: float | None

    def progress(self, step: int, elapsed: float) -> float:
        return step / self.total_steps if self.total_steps else elapsed / self.seconds

    def done(self, step: int, elapsed: float) -> bool:
        return step >= self.total_steps if self.total_steps else elapsed >= self.seconds


def resolve_budget(settings: PretrainSpec, tokens_per_step: int) -> Budget:
    budget = settings.budget
    if budget.steps is not None:
        return Budget(budget.steps, None)
    if budget.tokens is not None:
        return Budget(max(1, math.ceil(budget.tokens / tokens_per_step)), None)
    return Budget(None, budget.minutes * 60.0)


# ---------------------------------------------------------------------------------- signals
class StopRequest:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint at the next step boundary."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    @contextmanager
    def installed(self):
        def handler(signum, _frame):
            self.signal_name = signal.Signals(signum).name

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


# --------------------------------------------------------------------------------- the trainer
@dataclass
class PretrainOutcome:
    run_dir: Path
    checkpoint: Path  # the final checkpoint, or the latest training checkpoint of a paused run
    results: dict = field(default_factory=dict)
    paused_at_step: int | None = None


def prepare_tokenizer(spec: ExperimentSpec, run_dir: Path):
    """The spec's tokenizer, or a WordPiece trained on the corpus once and kept in the run dir."""
    settings = spec.pretrain
    if settings.tokenizer_vocab_size is None:
        return load_tokenizer(spec.tokenizer), spec.tokenizer
    from eelbert_cli.core.vocab_training import train_wordpiece

    directory = run_dir / "tokenizer"
    if not (directory / "tokenizer.json").is_file():
        print(f"eelbert: training a {settings.tokenizer_vocab_size}-token WordPiece vocabulary on the corpus")
        train_wordpiece(iter_documents(settings.corpus), settings.tokenizer_vocab_size, directory)
    return load_tokenizer(directory / "tokenizer.json"), str(directory / "tokenizer.json")


def initial_model(spec: ExperimentSpec, tokenizer_source: str, vocabulary: list[str]) -> EelbertForMaskedLM:
    if spec.model.checkpoint is not None:
        model = load_model(spec.model.checkpoint, "masked-lm")
        if getattr(model.config, "hash_vocabulary", None) not in (None, vocabulary):
            raise EelbertError(f"checkpoint {spec.model.checkpoint} was built for another vocabulary than tokenizer {tokenizer_source}")
        return model
    config = resolve_model_config(spec.model, tokenizer_source)
    if spec.pretrain.dropout is not None:
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = spec.pretrain.dropout
    torch.manual_seed(derived_seed(spec.seed, 0xC0FFEE))  # the same initial weights on every rank and run
    return build_model(config, "masked-lm")


@torch.no_grad()
def evaluate_mlm(objective: MaskedLMObjective, data: PackedDataset, settings: PretrainSpec, vocab: MaskingVocabulary,
                 runtime: Runtime, seed: int, dtype: torch.dtype | None) -> dict[str, float]:
    """Held-out loss and accuracy with the same masks every time, so evaluations are comparable."""
    objective.eval()
    total_loss = total_correct = total_count = 0.0
    rows = np.arange(len(data))[runtime.rank :: runtime.world_size][: settings.eval_batches * settings.batch_size]
    for index, start in enumerate(range(0, len(rows), settings.batch_size)):
        batch = data.batch(rows[start : start + settings.batch_size])
        generator = torch.Generator().manual_seed(derived_seed(seed, 7_777_777, index, runtime.rank))
        inputs, labels = mask_tokens(batch, settings.mask_rate, vocab, generator, settings.whole_word_masking)
        with autocast(runtime.device, dtype):
            loss, correct, count = objective(inputs.to(runtime.device), labels.to(runtime.device))
        total_loss += loss.item() * count
        total_correct += correct.item()
        total_count += count
    totals = torch.tensor([total_loss, total_correct, total_count], dtype=torch.float64)
    if runtime.distributed:
        dist.all_reduce(totals)
    objective.train()
    loss_sum, correct_sum, count_sum = totals.tolist()
    if count_sum == 0:
        return {"heldout_loss": float("nan"), "heldout_accuracy": float("nan"), "heldout_masked_tokens": 0}
    return {"heldout_loss": loss_sum / count_sum, "heldout_accuracy": correct_sum / count_sum, "heldout_masked_tokens": int(count_sum)}


def pretrain(
    spec: ExperimentSpec,
    resume: bool = False,
    stop_after_steps: int | None = None,
    progress: bool = True,
) -> PretrainOutcome:
    """Run (or continue) the spec's pretraining. ``stop_after_steps`` pauses the run with a
    checkpoint after that many steps in this call — for sessions shorter than the budget."""
    if spec.pretrain is None:
        raise EelbertError("the spec has no 'pretrain' section; see README for its fields")
    settings = spec.pretrain
    runtime = start_runtime(settings.device)
    run_dir = spec.run_dir
    checkpoints_dir = run_dir / "checkpoints"
    if runtime.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_manifest(spec, run_dir)
        if not resume and latest_checkpoint(checkpoints_dir) is not None:
            raise EelbertError(f"{run_dir} already holds a run; continue it with --resume, or choose another output_dir")

    tokenizer, tokenizer_source = prepare_tokenizer(spec, run_dir) if runtime.is_main else (None, None)
    if runtime.distributed:  # rank 0 trains the vocabulary and packs the corpus; the others wait
        dist.barrier()
        if not runtime.is_main:
            tokenizer, tokenizer_source = prepare_tokenizer(spec, run_dir)
    vocabulary = vocabulary_of(tokenizer)
    model = initial_model(spec, tokenizer_source, vocabulary)
    max_positions = model.config.max_position_embeddings
    packed_dir = pack_corpus(settings.corpus, tokenizer, settings.seq_len, settings.heldout, max_positions) if runtime.is_main else None
    if runtime.distributed:
        dist.barrier()
        if not runtime.is_main:
            packed_dir = pack_corpus(settings.corpus, tokenizer, settings.seq_len, settings.heldout, max_positions)
    train_data, heldout_data = PackedDataset(packed_dir, "train"), PackedDataset(packed_dir, "heldout")

    checkpoint = latest_checkpoint(checkpoints_dir) if resume else None
    if resume and checkpoint is None and runtime.is_main:
        print(f"eelbert: no checkpoint in {checkpoints_dir}; starting from step 0")
    if checkpoint is not None:
        model = EelbertForMaskedLM.from_pretrained(checkpoint / "model")
    model.to(runtime.device).train()
    optimizer = make_optimizer(model, settings, runtime.device)
    state = {"step": 0, "tokens": 0, "elapsed_seconds": 0.0}
    if checkpoint is not None:
        state = read_trainer_state(checkpoint)
        load_optimizer_state(checkpoint, optimizer, state)

    dtype = autocast_dtype(settings.precision, runtime.device)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=dtype == torch.float16)
    objective = MaskedLMObjective(model, settings.compile)  # after .to(device): compile only on GPU
    trained = objective
    if runtime.distributed:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        trained = DistributedDataParallel(objective, device_ids=device_ids, broadcast_buffers=False)

    masking = MaskingVocabulary.from_tokens(vocabulary)
    order = BatchOrder(len(train_data), settings.batch_size, settings.grad_accum, runtime.world_size, spec.seed)
    tokens_per_step = settings.batch_size * settings.grad_accum * runtime.world_size * settings.seq_len
    budget = resolve_budget(settings, tokens_per_step)
    metrics_path = run_dir / METRICS_FILE
    if runtime.is_main:
        keep_metrics_until(metrics_path, state["step"])

    step, tokens, elapsed = state["step"], state["tokens"], state["elapsed_seconds"]
    session_start_step = step
    window = {"loss": torch.zeros((), device=runtime.device), "correct": 0.0, "count": 0.0, "steps": 0, "start": time.perf_counter(), "tokens": 0}
    last_good = checkpoint
    stop = StopRequest()
    bar = TrainingProgress(budget, step, elapsed, enabled=progress and runtime.is_main)

    def trainer_state() -> dict:
        return {"tokens": tokens, "elapsed_seconds": elapsed, "seed": spec.seed, "world_size": runtime.world_size}

    def diverged() -> EelbertError:
        return EelbertError(
            f"the loss became NaN/inf by step {step}; stopped without saving. Last good checkpoint: "
            f"{last_good or 'none'}. Lower pretrain.lr, or use precision fp32/bf16."
        )

    def checkpoint_now() -> Path | None:
        nonlocal last_good
        if not check_finite(window["loss"], runtime):  # steps since the last (checked) log row
            raise diverged()
        if runtime.is_main:
            last_good = save_checkpoint(checkpoints_dir, step, model, optimizer, trainer_state(), settings.keep_checkpoints)
        if runtime.distributed:
            dist.barrier()
        return last_good

    with stop.installed(), bar:
        while not budget.done(step, elapsed):
            step_started = time.perf_counter()
            lr = settings.lr * lr_multiplier(budget.progress(step, elapsed), settings.warmup, settings.schedule, settings.min_lr_ratio)
            set_lr(optimizer, lr)
            torch.manual_seed(derived_seed(spec.seed, step, runtime.rank, 1))  # dropout
            for micro in range(settings.grad_accum):
                batch = train_data.batch(order.rows(step, micro, runtime.rank))
                generator = torch.Generator().manual_seed(derived_seed(spec.seed, step, runtime.rank, micro, 2))
                inputs, labels = mask_tokens(batch, settings.mask_rate, masking, generator, settings.whole_word_masking)
                syncing = not runtime.distributed or micro == settings.grad_accum - 1
                with (nullcontext() if syncing else trained.no_sync()), autocast(runtime.device, dtype):
                    loss, correct, count = trained(inputs.to(runtime.device, non_blocking=True), labels.to(runtime.device, non_blocking=True))
                scaler.scale(loss / settings.grad_accum).backward()
                window["loss"] += loss.detach() / settings.grad_accum
                window["correct"] += float(correct)
                window["count"] += float(count)
            if settings.clip_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens += tokens_per_step
            window["steps"] += 1
            window["tokens"] += tokens_per_step
            elapsed += time.perf_counter() - step_started
            if step % settings.log_every == 0 or budget.done(step, elapsed):
                row = log_window(window, step, tokens, lr, elapsed, runtime)
                if not math.isfinite(row["loss"]):
                    raise diverged()
                if runtime.is_main:
                    append_jsonl(metrics_path, row)
                bar.update(step, elapsed, row)
            if settings.eval_every and step % settings.eval_every == 0 and not budget.done(step, elapsed):
                evaluation = evaluate_mlm(objective, heldout_data, settings, masking, runtime, spec.seed, dtype)
                if runtime.is_main:
                    append_jsonl(metrics_path, {"step": step, "tokens": tokens, **evaluation})
            if step % settings.checkpoint_every == 0 and not budget.done(step, elapsed):
                checkpoint_now()
            signal_name = agreed_stop(stop, runtime)
            if signal_name:
                saved = checkpoint_now()
                raise TrainingStopped(
                    f"interrupted by {signal_name} at step {step}; checkpoint saved to {saved}. "
                    "Continue with: eelbert pretrain SPEC --resume"
                )
            if stop_after_steps is not None and step - session_start_step >= stop_after_steps and not budget.done(step, elapsed):
                return PretrainOutcome(run_dir, checkpoint_now(), paused_at_step=step)

    evaluation = evaluate_mlm(objective, heldout_data, settings, masking, runtime, spec.seed, dtype)
    final = run_dir / FINAL_CHECKPOINT
    results = {
        "steps": step,
        "tokens": tokens,
        "elapsed_seconds": round(elapsed, 2),
        "tokens_per_second": round((tokens - state["tokens"]) / max(elapsed - state["elapsed_seconds"], 1e-9)),
        "world_size": runtime.world_size,
        "device": str(runtime.device),
        "precision": str(dtype).removeprefix("torch.") if dtype else "fp32",
        "train_sequences": len(train_data),
        "heldout_sequences": len(heldout_data),
        "packed_data": str(packed_dir),
        **evaluation,
    }
    if runtime.distributed:
        results["ranks_agree"] = ranks_agree(model)
    checkpoint_now()
    if runtime.is_main:
        save_with_tokenizer(model, tokenizer, final)
        write_atomic(run_dir / RESULTS_FILE, json.dumps(results, indent=2) + "\n")
    if runtime.distributed:
        dist.barrier()
    return PretrainOutcome(run_dir, final, results)


def ranks_agree(model: nn.Module) -> bool:
    """Every rank holds bit-identical weights (what DDP promises; checked, not assumed)."""
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()
    gathered = [torch.empty_like(checksum) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])


def check_finite(value: torch.Tensor, runtime: Runtime) -> bool:
    flag = torch.tensor([float(torch.isfinite(value).all())], device=runtime.device)
    if runtime.distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def agreed_stop(stop: StopRequest, runtime: Runtime) -> str | None:
    """Every rank stops at the same step if any rank was signalled."""
    if not runtime.distributed:
        return stop.signal_name
    flag = torch.tensor([1.0 if stop.signal_name else 0.0], device=runtime.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return (stop.signal_name or "a signal on another rank") if flag.item() else None


def log_window(window: dict, step: int, tokens: int, lr: float, elapsed: float, runtime: Runtime) -> dict:
    """Averages since the last log row, over all ranks; resets the window."""
    seconds = time.perf_counter() - window["start"]
    totals = torch.tensor([window["loss"].item(), window["correct"], window["count"], window["steps"]], dtype=torch.float64)
    if runtime.distributed:
        dist.all_reduce(totals)
    loss_sum, correct, count, steps = totals.tolist()
    row = {
        "step": step,
        "tokens": tokens,
        "loss": loss_sum / max(steps, 1),
        "masked_accuracy": correct / max(count, 1),
        "lr": lr,
        "tokens_per_second": window["tokens"] * runtime.world_size / max(seconds, 1e-9),
        "elapsed_seconds": round(elapsed, 2),
    }
    window.update(loss=torch.zeros_like(window["loss"]), correct=0.0, count=0.0, steps=0, start=time.perf_counter(), tokens=0)
    return row


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def keep_metrics_until(path: Path, step: int) -> None:
    """On resume, drop log rows written after the checkpoint: they will be written again."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and json.loads(line)["step"] <= step]
    write_atomic(path, "".join(row + "\n" for row in rows))


class TrainingProgress:
    """A rich progress bar over steps (or seconds, for a wall-clock budget) with live figures."""

    def __init__(self, budget: Budget, step: int, elapsed: float, enabled: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.budget = budget
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]pretrain"),
            BarColumn(),
            TextColumn("{task.fields[where]}"),
            TextColumn("{task.fields[figures]}"),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self.plain_lines = enabled and not self.progress.console.is_terminal  # logs, CI, nohup: print lines instead
        self.last_line = time.perf_counter()
        total = budget.total_steps or budget.seconds
        self.task = self.progress.add_task("pretrain", total=total, completed=self._completed(step, elapsed), where="", figures="")

    def _completed(self, step: int, elapsed: float) -> float:
        return step if self.budget.total_steps else min(elapsed, self.budget.seconds)

    def update(self, step: int, elapsed: float, row: dict) -> None:
        where = f"step {step}" + (f"/{self.budget.total_steps}" if self.budget.total_steps else "")
        figures = f"loss {row['loss']:.3f}  lr {row['lr']:.2e}  {row['tokens_per_second']:,.0f} tok/s"
        self.progress.update(self.task, completed=self._completed(step, elapsed), where=where, figures=figures)
        if self.plain_lines and time.perf_counter() - self.last_line > 30:
            print(f"pretrain {where}  {figures}", flush=True)
            self.last_line = time.perf_counter()

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)
