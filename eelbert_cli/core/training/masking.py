"""Dynamic masked-LM corruption: choose positions, then 80% [MASK], 10% random token, 10% unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class MaskingVocabulary:
    """What masking needs to know about the vocabulary, as id-indexed boolean tensors."""

    mask_id: int
    special: torch.Tensor  # [V] bool: never chosen, never used as a random replacement
    continuation: torch.Tensor  # [V] bool: '##' pieces, for whole-word masking

    @classmethod
    def from_tokens(cls, vocabulary: list[str], mask_token: str = "[MASK]") -> MaskingVocabulary:
        from eelbert_cli.core.model.hashing import is_special_token

        special = torch.tensor([is_special_token(t) for t in vocabulary])
        continuation = torch.tensor([t.startswith("##") and len(t) > 2 for t in vocabulary])
        return cls(vocabulary.index(mask_token), special, continuation)

    @property
    def replacement_ids(self) -> torch.Tensor:
        return torch.nonzero(~self.special).flatten()


def choose_positions(
    input_ids: torch.Tensor,
    rate: float,
    vocab: MaskingVocabulary,
    generator: torch.Generator,
    whole_word: bool = False,
    static: bool = False,
) -> torch.Tensor:
    """Bool [B, L]: each non-special position (or whole word) is chosen with probability ``rate``;
    ``static``: exactly ``static_count`` positions per batch instead (the lowest draws), so the
    masked logits have the same shape every step — allocations repeat exactly and the heap does not
    fragment (the shape depends on the batch shape only, as in cramming)."""
    draws = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    special = vocab.special.to(input_ids.device)[input_ids]
    if whole_word:
        # every piece of a word takes the draw of the word's first piece
        starts = ~vocab.continuation.to(input_ids.device)[input_ids]
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        start_of_word = torch.where(starts, positions, torch.zeros_like(positions)).cummax(dim=1).values
        draws = draws.gather(1, start_of_word)
    if not static:
        return (draws < rate) & ~special
    count = min(static_count(input_ids.shape, rate), int((~special).sum()))
    ranked = torch.where(special, torch.full_like(draws, 2.0), draws).flatten()
    chosen = torch.zeros_like(ranked, dtype=torch.bool)
    chosen[ranked.topk(count, largest=False).indices] = True
    return chosen.view(input_ids.shape)


def static_count(shape: torch.Size | tuple[int, int], rate: float) -> int:
    """Positions predicted per batch under static masking: ``rate`` of all but each row's [CLS] and [SEP]."""
    rows, length = shape
    return max(1, round(rate * rows * max(length - 2, 1)))


def mask_tokens(
    input_ids: torch.Tensor,
    rate: float,
    vocab: MaskingVocabulary,
    generator: torch.Generator,
    whole_word: bool = False,
    static: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted inputs, labels with IGNORE_INDEX everywhere but the chosen positions)."""
    chosen = choose_positions(input_ids, rate, vocab, generator, whole_word, static)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    action = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    replacements = vocab.replacement_ids.to(input_ids.device)
    random_ids = replacements[torch.randint(len(replacements), input_ids.shape, generator=generator, device=input_ids.device)]
    corrupted = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, vocab.mask_id), input_ids)
    corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, corrupted)
    return corrupted, labels
