"""The hash settings as the toolkit's validated schema, over the one implementation of the hash.

The n-gram hash itself (marking, n-grams, keyed BLAKE2b, splitmix64 expansion, pooling) lives in the
torch-free runtime distribution, ``eelbert_runtime.hashing`` (``runtime/`` in this repository), so a
device, the toolkit and the JavaScript twin hash alike by construction: this module re-exports it.

:class:`HashConfig` is the one schema of the hash in the toolkit: the spec's ``model.hash`` section,
the ``hash`` entry of a model's ``config.json`` and the argument of every hashing function.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from eelbert_runtime.hashing import (
    CONTINUATION_PREFIX,
    HASH_KINDS,
    POOLINGS,
    VALUE_KINDS,
    WORD_END,
    WORD_START,
    NgramIndex,
    expand_hashes,
    hash_ngram,
    hash_vectors_numpy,
    is_special_token,
    mark_token,
    ngram_vectors,
    pool_bags,
    token_ngrams,
)

__all__ = [
    "CONTINUATION_PREFIX", "HASH_KINDS", "POOLINGS", "VALUE_KINDS", "WORD_END", "WORD_START", "HashConfig", "NgramIndex",
    "expand_hashes", "hash_ngram", "hash_vectors_numpy", "is_special_token", "mark_token", "ngram_vectors", "pool_bags",
    "token_ngrams",
]


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value


class HashConfig(BaseModel):
    """How strings become vectors. ``kind: learned`` means no hash at all: a trained table (BERT)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    kind: str = "ngram"
    ngram_min: int = 1
    ngram_max: int = 3
    seed: int = 0
    values: str = "uniform"
    pooling: str = "mean"
    scale: float = 1.0

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        return _one_of(value, HASH_KINDS, "hash kind")

    @field_validator("values")
    @classmethod
    def _values(cls, value: str) -> str:
        return _one_of(value, VALUE_KINDS, "values")

    @field_validator("pooling")
    @classmethod
    def _pooling(cls, value: str) -> str:
        return _one_of(value, POOLINGS, "pooling")

    @field_validator("ngram_min", "ngram_max")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"n-gram lengths must be >= 1, got {value}")
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        if not 0 <= value < 2**64:
            raise ValueError(f"seed must be in [0, 2**64), got {value}")
        return value

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"scale must be positive, got {value}")
        return float(value)

    @model_validator(mode="after")
    def _ngram_range(self) -> HashConfig:
        if self.ngram_min > self.ngram_max:
            raise ValueError(f"ngram_min ({self.ngram_min}) must not exceed ngram_max ({self.ngram_max})")
        return self

    def as_dict(self) -> dict:
        return self.model_dump()
