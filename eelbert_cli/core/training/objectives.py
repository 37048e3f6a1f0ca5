"""Pretraining objectives: what a pretraining step optimises, one class each.

The loop (``pretrain.py``) knows only this interface: ``make_batch`` turns packed token rows into
the objective's inputs (masking happens here, from a seeded generator), and calling the objective
returns ``(loss, correct, count)`` — the loss to minimise and the objective's own accuracy
counts, summed into the log. ``extra_state`` is what a checkpoint keeps beside the model (a
distillation objective's projections). General distillation is the second objective
(``general_distillation.py``), not a branch in the loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from eelbert_cli.core.console import log
from eelbert_cli.core.model.modeling import EelbertForMaskedLM
from eelbert_cli.core.training.masking import IGNORE_INDEX, MaskingVocabulary, mask_tokens


class Objective(Protocol):
    """What the pretraining loop needs of an objective (an nn.Module)."""

    model: nn.Module
    counts_accuracy: bool  # whether ``correct``/``count`` are predictions (masked-LM) or only a loss weight

    def attach(self, data: Any) -> None: ...
    def make_batch(self, tokens: torch.Tensor, generator: torch.Generator, rows: Any = None, split: str = "train") -> dict: ...
    def __call__(self, **batch: torch.Tensor) -> ObjectiveOutput: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def extra_state(self) -> dict[str, torch.Tensor]: ...
    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None: ...
    def describe(self) -> dict: ...
    def take_untimed_seconds(self) -> float: ...


class ObjectiveOutput(NamedTuple):
    loss: torch.Tensor
    correct: torch.Tensor  # predictions the objective counts as right (MLM: masked tokens recovered)
    count: int | torch.Tensor  # predictions made (MLM: masked positions)


class EncoderRunner:
    """The encoder, compiled where asked and possible: ``torch.compile`` is for GPU runs, and
    compilation happens (and can fail, e.g. without a toolchain) on the first call, after which
    training falls back to eager mode rather than dying."""

    def __init__(self, encoder: nn.Module, compile_encoder: bool) -> None:
        self.encoder = encoder
        self.compiled = None
        self.verified = False
        on_gpu = next(encoder.parameters()).device.type == "cuda"
        if compile_encoder and on_gpu:
            self.compiled = torch.compile(encoder)
        elif compile_encoder:
            log.warning("torch.compile is for GPU runs; training eagerly on the CPU")

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self.run(**inputs).last_hidden_state

    def run(self, **inputs):
        """The encoder's whole output (e.g. with ``output_hidden_states=True``)."""
        if self.compiled is not None:
            try:
                output = self.compiled(**inputs)
                self.verified = True
                return output
            except Exception as error:  # compiler/toolchain failures vary by platform
                if self.verified:
                    raise
                log.warning("torch.compile failed (%s: %s); training eagerly", type(error).__name__, error)
                self.compiled = None
        return self.encoder(**inputs)


def masked_lm_terms(model: nn.Module, outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean loss over the predicted positions, correct predictions, predictions) from the MLM head's
    ``outputs`` at the selected positions; ``labels`` may hold IGNORE_INDEX (fixed-size batches).
    With the ``hash-vector`` head the loss is 1 - cosine to the masked token's hash vector and a
    prediction is correct when the nearest hash vector is the token's. With ``frequent-ids`` the
    target is the token's class (``class_of_id``), and so is a correct guess. No host sync either way."""
    valid = labels != IGNORE_INDEX
    if model.config.mlm_head == "frequent-ids":
        classes = torch.where(valid, model.cls.predictions.class_of_id[labels.clamp(min=0)], IGNORE_INDEX)
        loss = F.cross_entropy(outputs.float(), classes, ignore_index=IGNORE_INDEX)
        return loss, ((outputs.argmax(dim=-1) == classes) & valid).sum(), valid.sum()
    if model.config.mlm_head == "hash-vector":
        table = F.normalize(model.bert.embeddings.word_embeddings.table.float(), dim=-1)
        predicted = F.normalize(outputs.float(), dim=-1)
        closeness = (predicted * table[labels.clamp(min=0)]).sum(dim=-1)
        loss = ((1.0 - closeness) * valid).sum() / valid.sum().clamp(min=1)
        guesses = (predicted @ table.T).argmax(dim=-1)
    else:
        loss = F.cross_entropy(outputs.float(), labels, ignore_index=IGNORE_INDEX)
        guesses = outputs.argmax(dim=-1)
    return loss, ((guesses == labels) & valid).sum(), valid.sum()


class MaskedLMObjective(nn.Module):
    """Masked-LM: loss, correct predictions and count at the masked positions only.

    Speed comes from projecting only the ~15% masked positions onto the vocabulary
    (transformers' BertForMaskedLM projects every position); the loss is the same.
    """

    name = "mlm"

    def __init__(
        self,
        model: EelbertForMaskedLM,
        compile_encoder: bool = False,
        masking: MaskingVocabulary | None = None,
        mask_rate: float = 0.15,
        whole_word: bool = False,
        static_masking: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.masking, self.mask_rate, self.whole_word, self.static_masking = masking, mask_rate, whole_word, static_masking
        object.__setattr__(self, "_encoder", EncoderRunner(model.bert, compile_encoder))  # same parameters, not registered twice

    counts_accuracy = True

    def attach(self, data) -> None:
        """Masked-LM needs nothing per dataset (a distillation objective opens its teacher cache here)."""

    def make_batch(self, tokens: torch.Tensor, generator: torch.Generator, rows=None, split: str = "train") -> dict[str, torch.Tensor]:
        """Packed rows -> dynamically masked inputs and labels (80% [MASK], 10% random, 10% kept).
        ``rows`` and ``split`` say where the rows come from; masked-LM does not need to know."""
        if self.masking is None:
            raise ValueError("MaskedLMObjective needs a MaskingVocabulary to make batches")
        input_ids, labels = mask_tokens(tokens, self.mask_rate, self.masking, generator, self.whole_word, self.static_masking)
        return {"input_ids": input_ids, "labels": labels}

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> ObjectiveOutput:
        hidden = self._encoder(input_ids=input_ids)
        selected = labels != IGNORE_INDEX
        targets = labels[selected]
        loss, correct, _ = masked_lm_terms(self.model, self.model.cls(hidden[selected]), targets)
        return ObjectiveOutput(loss, correct, targets.numel())

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Pretraining-only tensors a checkpoint must keep beside the model: none for masked-LM."""
        return {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if tensors:
            raise ValueError(f"masked-LM has no pretraining-only state, but the checkpoint holds {sorted(tensors)[:3]}")

    def describe(self) -> dict:
        return {}

    def take_untimed_seconds(self) -> float:
        """Seconds of one-off work since the last call that a time budget leaves out: none here."""
        return 0.0
