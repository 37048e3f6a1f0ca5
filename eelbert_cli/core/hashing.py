"""Character n-gram extraction and deterministic hashing of strings into vectors.

This is the whole EELBERT input layer, minus torch: a token string is marked, cut into character
n-grams, each n-gram is hashed with a keyed 64-bit hash of its UTF-8 bytes, the hash is expanded
into ``dim`` pseudo-random values by a counter-based mixer, and the token vector pools them.

Everything here is a pure function of (string, config): no Python ``hash()``, no global RNG, so the
same string gives bit-identical vectors in every process and on every machine.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

HashKind = Literal["ngram", "token", "learned"]
HASH_KINDS: tuple[str, ...] = ("ngram", "token", "learned")

WORD_START = "^"
WORD_END = "$"
CONTINUATION_PREFIX = "##"
_SPECIAL_TOKEN = re.compile(r"^\[[^\[\]\s]+\]$")  # [CLS], [SEP], [PAD], [MASK], [UNK], [unused12], ...

# splitmix64 constants (Steele et al., "Fast splittable pseudorandom number generators", 2014).
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class HashConfig:
    """How strings become vectors. Stored field by field in the model config (``hash_*`` keys)."""

    kind: HashKind = "ngram"
    ngram_min: int = 1
    ngram_max: int = 3
    seed: int = 0
    values: Literal["uniform", "ternary"] = "uniform"
    pooling: Literal["mean", "sum"] = "mean"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in HASH_KINDS:
            raise ValueError(f"hash kind must be one of {', '.join(HASH_KINDS)}, got {self.kind!r}")
        if self.ngram_min < 1:
            raise ValueError(f"ngram_min must be >= 1, got {self.ngram_min}")
        if self.ngram_min > self.ngram_max:
            raise ValueError(f"ngram_min ({self.ngram_min}) must not exceed ngram_max ({self.ngram_max})")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"seed must be in [0, 2**64), got {self.seed}")
        if self.values not in ("uniform", "ternary"):
            raise ValueError(f"values must be 'uniform' or 'ternary', got {self.values!r}")
        if self.pooling not in ("mean", "sum"):
            raise ValueError(f"pooling must be 'mean' or 'sum', got {self.pooling!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def is_special_token(token: str) -> bool:
    return bool(_SPECIAL_TOKEN.match(token))


def mark_token(token: str) -> str:
    """``play`` -> ``^play$``; ``##ing`` -> ``ing$`` (a continuation has no word start)."""
    if token.startswith(CONTINUATION_PREFIX) and len(token) > len(CONTINUATION_PREFIX):
        return token[len(CONTINUATION_PREFIX) :] + WORD_END
    return WORD_START + token + WORD_END


def token_ngrams(token: str, config: HashConfig) -> list[str]:
    """The n-grams whose vectors pool into ``token``'s vector (repeats kept, in order)."""
    if is_special_token(token):
        return [token]
    marked = mark_token(token)
    if config.kind == "token":
        return [marked]
    grams = [
        marked[i : i + n]
        for n in range(config.ngram_min, config.ngram_max + 1)
        for i in range(len(marked) - n + 1)
    ]
    return grams or [marked]  # shorter than ngram_min: the whole marked string is its only n-gram


def hash_ngram(ngram: str, seed: int = 0) -> int:
    """Keyed 64-bit BLAKE2b of the UTF-8 bytes: stable across processes, platforms and Python versions."""
    digest = hashlib.blake2b(ngram.encode("utf-8"), digest_size=8, salt=seed.to_bytes(16, "little"))
    return int.from_bytes(digest.digest(), "little")


def expand_hashes(hashes: np.ndarray, dim: int, values: str = "uniform") -> np.ndarray:
    """Row i, column j = splitmix64(hash_i + (j+1) * gamma), mapped to [-1, 1) or {-1, 0, 1}.

    Counter-based, so any element can be computed independently of the others and the result does
    not depend on batch composition. Unsigned 64-bit arithmetic wraps by definition in NumPy.
    """
    counters = (np.arange(1, dim + 1, dtype=np.uint64) * _GOLDEN_GAMMA)[None, :]
    z = hashes.astype(np.uint64)[:, None] + counters
    z ^= z >> np.uint64(30)
    z *= _MIX_1
    z ^= z >> np.uint64(27)
    z *= _MIX_2
    z ^= z >> np.uint64(31)
    if values == "ternary":
        return ((z >> np.uint64(32)) % np.uint64(3)).astype(np.float32) - np.float32(1.0)
    # top 24 bits -> exactly representable float32 in [0, 2), shifted to [-1, 1)
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-23) - np.float32(1.0)


class NgramIndex:
    """Each distinct n-gram of a batch of strings, once, plus the bags that pool them.

    Tokens of a vocabulary share most of their n-grams (30,522 BERT tokens have ~12 each but far
    fewer distinct ones), so hashing and expanding distinct n-grams only is where the speed comes from.
    """

    def __init__(self, strings: Iterable[str], config: HashConfig) -> None:
        ids: dict[str, int] = {}
        flat: list[int] = []
        offsets: list[int] = []
        for string in strings:
            offsets.append(len(flat))
            for gram in token_ngrams(string, config):
                flat.append(ids.setdefault(gram, len(ids)))
        self.ngrams: list[str] = list(ids)
        self.flat = torch.tensor(flat, dtype=torch.long)
        self.offsets = torch.tensor(offsets, dtype=torch.long)


def hash_vectors(strings: Sequence[str], dim: int, config: HashConfig) -> torch.Tensor:
    """Float32 tensor [len(strings), dim]: the pooled n-gram hash vector of each string."""
    if config.kind == "learned":
        raise ValueError("hash kind 'learned' has no hash vectors: it is a trained embedding table")
    if len(strings) == 0:
        return torch.zeros(0, dim)
    index = NgramIndex(strings, config)
    hashes = np.fromiter((hash_ngram(g, config.seed) for g in index.ngrams), dtype=np.uint64, count=len(index.ngrams))
    ngram_vectors = torch.from_numpy(expand_hashes(hashes, dim, config.values))
    pooled = F.embedding_bag(index.flat, ngram_vectors, index.offsets, mode=config.pooling)
    if config.scale != 1.0:
        pooled.mul_(config.scale)
    return pooled
