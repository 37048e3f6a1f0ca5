"""General distillation: a pretraining objective that teaches the student the teacher's insides.

Two signals, weighed in ``pretrain.distill``, optionally beside masked-LM (``objective: mlm+distill``):

- **hidden states** (TinyBERT, Jiao et al. 2020): each mapped student layer, through a
  pretraining-only linear projection to the teacher's width, regresses a teacher layer (MSE);
- **self-attention relations** (MiniLMv2, Wang et al. 2021): the scaled dot-product relations
  Q-Q, K-K and V-V of the student's last layer match those of one teacher layer (KL), split into
  ``relation_heads`` heads independent of either model's attention heads, so no projection is needed.

The teacher reads the packed rows unmasked. Its outputs (only what the losses need) are computed
once per (teacher, packed data, kept layers) and cached on disk as an fp16 memmap that fills as
rows are first used, so every student of a comparison after the first trains at student speed,
and a resumed run reads exactly the values it would have computed. ``distill.cache: false`` runs
the teacher live instead (a GPU may prefer that); outputs are rounded to fp16 either way, so the
two modes train identically. Filling the cache is the teacher's one-off cost: a time budget counts
student time only and the results report the filling time apart (``teacher_cache_fill_seconds``);
with a live teacher its time is part of every step and of the budget.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eelbert_cli.core.data.packing import PackedDataset
from eelbert_cli.core.data.resources import BUILTIN_CHECKPOINTS, cache_dir, checkpoint_path
from eelbert_cli.core.data.tokenization import load_tokenizer, vocabulary_of
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.modeling import checkpoint_digest, is_checkpoint_dir, load_model
from eelbert_cli.core.spec import GeneralDistillSpec
from eelbert_cli.core.training.masking import IGNORE_INDEX, MaskingVocabulary, mask_tokens
from eelbert_cli.core.training.objectives import EncoderRunner, ObjectiveOutput, masked_lm_terms

FILLED_FILE = "filled.u8"


class Layout(NamedTuple):
    """Which teacher tensors are kept, in the order they sit along the cache's last axis."""

    hidden_layers: tuple[int, ...]  # teacher hidden-state indices (0 = embeddings)
    relation_layer: int | None  # teacher layer (1-based) whose Q, K, V are kept
    width: int  # teacher hidden size

    @property
    def columns(self) -> int:
        return self.width * (len(self.hidden_layers) + (3 if self.relation_layer is not None else 0))


def default_layer_map(student_layers: int, teacher_layers: int) -> dict[int, int]:
    """Uniform mapping, last to last: student layer i -> teacher layer round(i * T / S)."""
    return {i: round(i * teacher_layers / student_layers) for i in range(1, student_layers + 1)}


def load_teacher(name_or_path: str, student_vocabulary: list[str]) -> tuple[Path, nn.Module]:
    """The built-in MiniLM or a local BERT-family checkpoint, with the student's very vocabulary."""
    path = checkpoint_path(name_or_path)
    if not is_checkpoint_dir(path):
        raise EelbertError(
            f"pretrain.teacher {name_or_path} is neither a built-in checkpoint ({', '.join(sorted(BUILTIN_CHECKPOINTS))}) nor a "
            "checkpoint directory (a config.json with its weights and tokenizer)"
        )
    teacher_vocabulary = vocabulary_of(load_tokenizer(path))
    if teacher_vocabulary != student_vocabulary:
        differing = next((i for i, (a, b) in enumerate(zip(teacher_vocabulary, student_vocabulary, strict=False)) if a != b), None)
        where = f"id {differing} is {teacher_vocabulary[differing]!r} vs {student_vocabulary[differing]!r}" if differing is not None else (
            f"{len(teacher_vocabulary)} vs {len(student_vocabulary)} entries")
        raise EelbertError(
            f"pretrain.teacher {name_or_path} has another vocabulary than the student's tokenizer ({where}); "
            "distillation needs both to read the same token ids"
        )
    teacher = load_model(path, "base")
    teacher.eval().requires_grad_(False)
    return path, teacher


def teacher_outputs(teacher: nn.Module, input_ids: torch.Tensor, layout: Layout) -> torch.Tensor:
    """[batch, seq, columns] fp16: the kept hidden states, then Q, K, V of the relation layer."""
    with torch.no_grad():
        hidden = teacher(input_ids=input_ids, output_hidden_states=True).hidden_states
        parts = [hidden[index] for index in layout.hidden_layers]
        if layout.relation_layer is not None:
            parts += query_key_value(teacher, hidden, layout.relation_layer)
        return torch.cat(parts, dim=-1).to(torch.float16)


def query_key_value(model: nn.Module, hidden_states: tuple[torch.Tensor, ...], layer: int) -> list[torch.Tensor]:
    """Q, K, V of ``layer`` (1-based), recomputed from its input with its own projections."""
    attention = model.encoder.layer[layer - 1].attention.self
    source = hidden_states[layer - 1]
    return [attention.query(source), attention.key(source), attention.value(source)]


def relation_kl(student: torch.Tensor, teacher: torch.Tensor, heads: int) -> torch.Tensor:
    """MiniLMv2's relation loss for one of Q, K, V: KL(teacher || student) of softmax(x x^T / sqrt(d))
    per relation head, averaged over heads and positions."""

    def log_relations(x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        x = x.float().view(batch, length, heads, width // heads).transpose(1, 2)
        return (x @ x.transpose(-1, -2) / math.sqrt(width // heads)).log_softmax(dim=-1)

    target = log_relations(teacher)
    return F.kl_div(log_relations(student), target, log_target=True, reduction="sum") / (target.shape[0] * heads * target.shape[2])


class TeacherCache:
    """The teacher's outputs for every row of one packed split, as an fp16 memmap on disk.

    ``filled`` marks the rows written; it is set only after their values are flushed, so a kill
    mid-write leaves unmarked rows that the next run recomputes."""

    def __init__(self, directory: Path, rows: int, seq_len: int, columns: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        shape = (rows, seq_len, columns)
        values, filled = directory / "values.f16", directory / FILLED_FILE
        if not values.is_file() or values.stat().st_size != rows * seq_len * columns * 2:
            with open(values, "wb") as handle:
                handle.truncate(rows * seq_len * columns * 2)
            filled.write_bytes(bytes(rows))
        self.values = np.memmap(values, dtype=np.float16, mode="r+", shape=shape)
        self.filled = np.memmap(filled, dtype=np.uint8, mode="r+", shape=(rows,))

    def missing(self, rows: np.ndarray) -> np.ndarray:
        return rows[self.filled[rows] == 0]

    def write(self, rows: np.ndarray, outputs: np.ndarray) -> None:
        self.values[rows] = outputs
        self.values.flush()
        self.filled[rows] = 1
        self.filled.flush()

    def read(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.values[rows]))


def cache_key(teacher: Path, packed: Path, layout: Layout) -> str:
    digest = checkpoint_digest(teacher)
    digest.update(json.dumps([packed.name, list(layout.hidden_layers), layout.relation_layer]).encode())
    return digest.hexdigest()[:20]


class DistillationObjective(nn.Module):
    """Hidden-state and attention-relation distillation, plus masked-LM when ``mlm_weight`` > 0.

    Same interface as MaskedLMObjective; its projections are pretraining-only parameters that
    the checkpoint keeps (``extra_state``) and the shipped model never holds."""

    name = "distill"

    def __init__(self, model: nn.Module, teacher_path: Path, teacher: nn.Module, settings: GeneralDistillSpec, mlm_weight: float,
                 masking: MaskingVocabulary | None, mask_rate: float, whole_word: bool, compile_encoder: bool = False,
                 static_masking: bool = False) -> None:
        super().__init__()
        self.model, self.settings, self.mlm_weight = model, settings, mlm_weight
        self.masking, self.mask_rate, self.whole_word, self.static_masking = masking, mask_rate, whole_word, static_masking
        student_layers, teacher_layers = model.config.num_hidden_layers, teacher.config.num_hidden_layers
        self.layer_map = dict(settings.layer_map or default_layer_map(student_layers, teacher_layers)) if settings.hidden > 0 else {}
        for student_layer, teacher_layer in self.layer_map.items():
            if not (0 <= student_layer <= student_layers and 0 <= teacher_layer <= teacher_layers):
                raise EelbertError(f"pretrain.distill.layer_map {student_layer}: {teacher_layer} is outside the student's "
                                   f"{student_layers} or the teacher's {teacher_layers} layers")
        relation_layer = (settings.relation_layer or teacher_layers) if settings.relations > 0 else None
        if relation_layer is not None and not 1 <= relation_layer <= teacher_layers:
            raise EelbertError(f"pretrain.distill.relation_layer {relation_layer} is outside the teacher's {teacher_layers} layers")
        for name, width in (("student", model.config.hidden_size), ("teacher", teacher.config.hidden_size)):
            if relation_layer is not None and width % settings.relation_heads:
                raise EelbertError(
                    f"pretrain.distill.relation_heads {settings.relation_heads} does not divide the {name}'s hidden size {width}"
                )
        self.layout = Layout(tuple(self.layer_map.values()), relation_layer, teacher.config.hidden_size)
        self.projections = nn.ModuleList(nn.Linear(model.config.hidden_size, teacher.config.hidden_size) for _ in self.layer_map)
        if mlm_weight == 0:
            shared = {id(p) for p in model.bert.parameters()}
            for parameter in model.cls.parameters():
                if id(parameter) not in shared:
                    parameter.requires_grad_(False)  # no gradient ever reaches the MLM head (and DDP must not wait for one)
        self.teacher_path = teacher_path
        object.__setattr__(self, "_teacher", teacher)  # not a submodule: never trained, saved or synchronised
        object.__setattr__(self, "_encoder", EncoderRunner(model.bert, compile_encoder))
        self.caches: dict[str, TeacherCache] = {}
        self.counts_accuracy = mlm_weight > 0
        self.cache_fill_seconds = self._untimed = 0.0

    # --- data -------------------------------------------------------------------------------
    def attach(self, data: PackedDataset) -> None:
        """Open (or create) the disk cache of ``data``'s split; without it the teacher runs live."""
        if not self.settings.cache:
            return
        directory = cache_dir() / "teacher-outputs" / f"pretrain-{cache_key(self.teacher_path, data.path, self.layout)}" / data.split
        self.caches[data.split] = TeacherCache(directory, len(data), data.meta["seq_len"], self.layout.columns)

    def teacher_batch(self, tokens: torch.Tensor, rows: np.ndarray | None, split: str) -> torch.Tensor:
        device = next(self._teacher.parameters()).device
        cache = self.caches.get(split)
        if cache is None or rows is None:
            return teacher_outputs(self._teacher, tokens.to(device), self.layout).cpu()
        rows = np.asarray(rows)
        if len(missing := cache.missing(rows)):
            started = time.perf_counter()
            position = {row: i for i, row in enumerate(rows.tolist())}
            picks = torch.tensor([position[row] for row in missing.tolist()])
            cache.write(missing, teacher_outputs(self._teacher, tokens[picks].to(device), self.layout).cpu().numpy())
            seconds = time.perf_counter() - started
            self.cache_fill_seconds += seconds
            self._untimed += seconds
        return cache.read(rows)

    def take_untimed_seconds(self) -> float:
        """Seconds spent filling the disk cache since the last call: a one-off cost of the teacher,
        shared by every later student, so the budget clock (student time) leaves it out."""
        seconds, self._untimed = self._untimed, 0.0
        return seconds

    def make_batch(self, tokens: torch.Tensor, generator: torch.Generator, rows: np.ndarray | None = None,
                   split: str = "train") -> dict[str, torch.Tensor]:
        batch = {"teacher": self.teacher_batch(tokens, rows, split)}
        if self.mlm_weight > 0:
            input_ids, labels = mask_tokens(tokens, self.mask_rate, self.masking, generator, self.whole_word, self.static_masking)
            return {**batch, "input_ids": input_ids, "labels": labels}
        return {**batch, "input_ids": tokens.clone(), "labels": torch.full_like(tokens, IGNORE_INDEX)}

    # --- the loss ---------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor) -> ObjectiveOutput:
        output = self._encoder.run(input_ids=input_ids, output_hidden_states=True)
        hidden, teacher = output.hidden_states, teacher.float()
        width = self.layout.width
        loss = torch.zeros((), device=input_ids.device)
        if self.layer_map:
            errors = [
                F.mse_loss(projection(hidden[student_layer]).float(), teacher[..., i * width : (i + 1) * width])
                for i, (projection, student_layer) in enumerate(zip(self.projections, self.layer_map, strict=True))
            ]
            loss = loss + self.settings.hidden * torch.stack(errors).mean()
        if self.layout.relation_layer is not None:
            start = len(self.layer_map) * width
            student_qkv = query_key_value(self.model.bert, hidden, self.model.config.num_hidden_layers)
            relations = [
                relation_kl(student, teacher[..., start + i * width : start + (i + 1) * width], self.settings.relation_heads)
                for i, student in enumerate(student_qkv)
            ]
            loss = loss + self.settings.relations * torch.stack(relations).sum()
        correct, count = torch.zeros((), dtype=torch.long), 0
        if self.mlm_weight > 0:
            selected = labels != IGNORE_INDEX
            targets = labels[selected]
            mlm_loss, correct, _ = masked_lm_terms(self.model, self.model.cls(output.last_hidden_state[selected]), targets)
            loss = loss + self.mlm_weight * mlm_loss
            count = targets.numel()
        return ObjectiveOutput(loss, correct, count if self.counts_accuracy else input_ids.numel())

    # --- checkpoint state ---------------------------------------------------------------------
    def extra_state(self) -> dict[str, torch.Tensor]:
        return {f"projections.{key}": value.detach().cpu().contiguous() for key, value in self.projections.state_dict().items()}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        own = {key.removeprefix("projections."): value for key, value in tensors.items() if key.startswith("projections.")}
        self.projections.load_state_dict(own)

    def describe(self) -> dict:
        return {
            "teacher": str(self.teacher_path),
            "layer_map": {str(k): v for k, v in self.layer_map.items()},
            "relation_layer": self.layout.relation_layer,
            "relation_heads": self.settings.relation_heads,
            "weights": {"hidden": self.settings.hidden, "relations": self.settings.relations, "mlm": self.mlm_weight},
            "teacher_cache": "disk (fp16 memmap)" if self.settings.cache else "live teacher",
            "pretraining_only_parameters": sum(p.numel() for p in self.projections.parameters()),
            "teacher_cache_fill_seconds": round(self.cache_fill_seconds, 2),
        }
