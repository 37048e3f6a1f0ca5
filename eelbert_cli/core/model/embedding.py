"""The module that replaces BERT's word-embedding table, and the MLM decoder that can tie to it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from eelbert_cli.core.model.hashing import HashConfig, ngram_vectors


def hash_vectors(strings: Sequence[str], dim: int, config: HashConfig) -> torch.Tensor:
    """Float32 tensor [len(strings), dim]: ``hashing.hash_vectors_numpy`` with torch's
    ``embedding_bag`` doing the pooling (~10x faster at d=768; the same bits, tested)."""
    if len(strings) == 0 and config.kind != "learned":
        return torch.zeros(0, dim)
    index, vectors = ngram_vectors(strings, dim, config)
    flat, offsets = torch.from_numpy(index.flat), torch.from_numpy(index.offsets)
    pooled = F.embedding_bag(flat, torch.from_numpy(vectors), offsets, mode=config.pooling)
    if config.scale != 1.0:
        pooled.mul_(config.scale)
    return pooled


class HashEmbedding(nn.Module):
    """Token ids -> pooled n-gram hash vectors; no trainable parameters.

    The vectors of the whole vocabulary are computed once into a *non-persistent* buffer (never
    written to a checkpoint, rebuilt from the config at load), so the forward pass is a plain
    ``F.embedding`` lookup. ``embed_strings`` computes vectors for arbitrary strings on the fly,
    with the very same numbers as the cache.
    """

    def __init__(self, vocabulary: Sequence[str], dim: int, config: HashConfig) -> None:
        super().__init__()
        if config.kind == "learned":
            raise ValueError("HashEmbedding needs hash kind 'ngram' or 'token', not 'learned'")
        self.vocabulary = list(vocabulary)
        self.dim = dim
        self.hash_config = config
        # Filled by reset_table(); left empty here because transformers builds models on the meta
        # device and re-initialises non-persistent buffers through _init_weights after loading.
        self.register_buffer("table", torch.empty(len(self.vocabulary), dim), persistent=False)

    @property
    def weight(self) -> torch.Tensor:
        """The fixed vocabulary table, under the name code written for nn.Embedding expects."""
        return self.table

    @property
    def num_embeddings(self) -> int:
        return len(self.vocabulary)

    @property
    def embedding_dim(self) -> int:
        return self.dim

    @torch.no_grad()
    def reset_table(self) -> None:
        if self.table.is_meta:
            return
        table = hash_vectors(self.vocabulary, self.dim, self.hash_config)
        self.table.copy_(table.to(device=self.table.device, dtype=self.table.dtype))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.table)

    def embed_strings(self, strings: Sequence[str]) -> torch.Tensor:
        """Vectors for any strings (in or out of the vocabulary), computed on the fly."""
        vectors = hash_vectors(strings, self.dim, self.hash_config)
        return vectors.to(device=self.table.device, dtype=self.table.dtype)

    def extra_repr(self) -> str:
        c = self.hash_config
        return (
            f"{self.num_embeddings}, {self.dim}, kind={c.kind}, ngrams={c.ngram_min}..{c.ngram_max}, "
            f"values={c.values}, pooling={c.pooling}, scale={c.scale}, seed={c.seed}"
        )


class HashTiedDecoder(nn.Module):
    """MLM output layer ``logits = h @ E_hash^T + b`` over the fixed hash table.

    Holds the embedding by plain reference (not as a submodule) so the table is neither counted
    twice nor saved; only the vocabulary-sized bias is a parameter, and it is pretraining-only.
    """

    def __init__(self, embedding: HashEmbedding) -> None:
        super().__init__()
        object.__setattr__(self, "_embedding", embedding)
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        table = self._embedding.table.to(hidden_states.dtype)
        return F.linear(hidden_states, table, self.bias)
