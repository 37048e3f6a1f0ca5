"""Pretraining objectives: what a pretraining step optimises, one class each.

The loop (``pretrain.py``) knows only this interface: ``make_batch`` turns packed token rows into
the objective's inputs (masking happens here, from a seeded generator), and calling the objective
returns ``(loss, correct, count)`` — the loss to minimise and the objective's own accuracy
counts, summed into the log. A second objective (e.g. distillation from a teacher) is a new class
here, not a branch in the loop.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from eelbert_cli.core.console import log
from eelbert_cli.core.model.modeling import EelbertForMaskedLM
from eelbert_cli.core.training.masking import IGNORE_INDEX, MaskingVocabulary, mask_tokens


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
        if self.compiled is not None:
            try:
                hidden = self.compiled(**inputs).last_hidden_state
                self.verified = True
                return hidden
            except Exception as error:  # noqa: BLE001 - compiler/toolchain failures vary by platform
                if self.verified:
                    raise
                log.warning("torch.compile failed (%s: %s); training eagerly", type(error).__name__, error)
                self.compiled = None
        return self.encoder(**inputs).last_hidden_state


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
    ) -> None:
        super().__init__()
        self.model = model
        self.masking, self.mask_rate, self.whole_word = masking, mask_rate, whole_word
        object.__setattr__(self, "_encoder", EncoderRunner(model.bert, compile_encoder))  # same parameters, not registered twice

    def make_batch(self, tokens: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Packed rows -> dynamically masked inputs and labels (80% [MASK], 10% random, 10% kept)."""
        if self.masking is None:
            raise ValueError("MaskedLMObjective needs a MaskingVocabulary to make batches")
        input_ids, labels = mask_tokens(tokens, self.mask_rate, self.masking, generator, self.whole_word)
        return {"input_ids": input_ids, "labels": labels}

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> ObjectiveOutput:
        hidden = self._encoder(input_ids=input_ids)
        selected = labels != IGNORE_INDEX
        targets = labels[selected]
        logits = self.model.cls(hidden[selected])
        loss = F.cross_entropy(logits.float(), targets)
        correct = (logits.argmax(dim=-1) == targets).sum()
        return ObjectiveOutput(loss, correct, targets.numel())
