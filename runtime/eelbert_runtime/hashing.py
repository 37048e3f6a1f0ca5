"""Character n-gram extraction and deterministic hashing of strings into vectors: numpy only.

This is the whole EELBERT input layer, minus torch: a token string is marked, cut into character
n-grams, each n-gram is hashed with a keyed 64-bit hash of its UTF-8 bytes, the hash is expanded
into ``dim`` pseudo-random values by a counter-based mixer, and the token vector pools them.

Everything here is a pure function of (string, settings): no Python ``hash()``, no global RNG, so the
same string gives bit-identical vectors in every process, on every machine and in the JavaScript
twin (``web/src/hash.js``, tested on the same vectors). The toolkit's torch embedding and its
validated ``HashConfig`` schema use these very functions; any object with the fields of
:class:`HashSettings` is accepted where one is expected.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

HASH_KINDS: tuple[str, ...] = ("ngram", "token", "learned")
VALUE_KINDS: tuple[str, ...] = ("uniform", "ternary")
POOLINGS: tuple[str, ...] = ("mean", "sum")

WORD_START = "^"
WORD_END = "$"
CONTINUATION_PREFIX = "##"
_SPECIAL_TOKEN = re.compile(r"^\[[^\[\]\s]+\]$")  # [CLS], [SEP], [PAD], [MASK], [UNK], [unused12], ...

# splitmix64 constants (Steele et al., "Fast splittable pseudorandom number generators", 2014).
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def hash_settings_problems(settings: Mapping) -> list[str]:
    """Every way a hash-settings mapping is invalid (empty when sound): plain Python, so a device
    needs no schema library. The toolkit's ``HashConfig`` enforces the same rules with pydantic."""
    if not isinstance(settings, Mapping):
        return ["the hash settings must be an object"]
    problems = [f"unknown hash setting {key!r}" for key in settings if key not in HashSettings.__dataclass_fields__]
    choices = {"kind": HASH_KINDS, "values": VALUE_KINDS, "pooling": POOLINGS}
    for key, allowed in choices.items():
        if key in settings and settings[key] not in allowed:
            problems.append(f"{key} must be one of {', '.join(allowed)}, got {settings[key]!r}")
    for key in ("ngram_min", "ngram_max"):
        if key in settings and not (type(settings[key]) is int and settings[key] >= 1):
            problems.append(f"{key} must be a whole number >= 1, got {settings[key]!r}")
    if "seed" in settings and not (type(settings["seed"]) is int and 0 <= settings["seed"] < 2**64):
        problems.append(f"seed must be a whole number in [0, 2**64), got {settings['seed']!r}")
    if "scale" in settings and not (type(settings["scale"]) in (int, float) and settings["scale"] > 0):
        problems.append(f"scale must be a positive number, got {settings['scale']!r}")
    if not problems and settings.get("ngram_min", 1) > settings.get("ngram_max", 3):
        problems.append(f"ngram_min ({settings.get('ngram_min', 1)}) must not exceed ngram_max ({settings.get('ngram_max', 3)})")
    return problems


@dataclass(frozen=True)
class HashSettings:
    """How strings become vectors. ``kind: learned`` means no hash at all: a trained table (BERT)."""

    kind: str = "ngram"
    ngram_min: int = 1
    ngram_max: int = 3
    seed: int = 0
    values: str = "uniform"
    pooling: str = "mean"
    scale: float = 1.0

    @classmethod
    def from_mapping(cls, settings: Mapping) -> HashSettings:
        problems = hash_settings_problems(settings)
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**{**settings, "scale": float(settings.get("scale", 1.0))})

    def as_dict(self) -> dict:
        return asdict(self)


def is_special_token(token: str) -> bool:
    return bool(_SPECIAL_TOKEN.match(token))


def mark_token(token: str) -> str:
    """``play`` -> ``^play$``; ``##ing`` -> ``ing$`` (a continuation has no word start)."""
    if token.startswith(CONTINUATION_PREFIX) and len(token) > len(CONTINUATION_PREFIX):
        return token[len(CONTINUATION_PREFIX) :] + WORD_END
    return WORD_START + token + WORD_END


def token_ngrams(token: str, config: HashSettings) -> list[str]:
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

    def __init__(self, strings: Iterable[str], config: HashSettings) -> None:
        ids: dict[str, int] = {}
        flat: list[int] = []
        offsets: list[int] = []
        for string in strings:
            offsets.append(len(flat))
            for gram in token_ngrams(string, config):
                flat.append(ids.setdefault(gram, len(ids)))
        self.ngrams: list[str] = list(ids)
        self.flat = np.asarray(flat, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)


def ngram_vectors(strings: Sequence[str], dim: int, config: HashSettings) -> tuple[NgramIndex, np.ndarray]:
    """The distinct n-grams of ``strings`` and their expanded vectors [distinct n-grams, dim]: all of
    the hash but the pooling, which numpy (:func:`pool_bags`) and torch (``embedding_bag``) share."""
    if config.kind == "learned":
        raise ValueError("hash kind 'learned' has no hash vectors: it is a trained embedding table")
    index = NgramIndex(strings, config)
    hashes = np.fromiter((hash_ngram(g, config.seed) for g in index.ngrams), dtype=np.uint64, count=len(index.ngrams))
    return index, expand_hashes(hashes, dim, config.values)


def pool_bags(vectors: np.ndarray, flat: np.ndarray, offsets: np.ndarray, pooling: str) -> np.ndarray:
    """Sum (or mean) of each bag's rows, accumulated in bag order in float32 then divided by the bag
    size: the arithmetic of torch's ``embedding_bag``, so both give the same bits (tested). Bags are
    sorted longest first so that the bags still accumulating at each position are a prefix."""
    sizes = np.append(offsets[1:], len(flat)) - offsets
    order = np.argsort(-sizes, kind="stable")
    starts, sorted_sizes = offsets[order], sizes[order]
    pooled = np.zeros((len(offsets), vectors.shape[1]), dtype=np.float32)
    active = len(order)
    for position in range(int(sorted_sizes[0]) if active else 0):
        while active and sorted_sizes[active - 1] <= position:
            active -= 1
        pooled[:active] += vectors[flat[starts[:active] + position]]
    if pooling == "mean":
        pooled /= sorted_sizes.astype(np.float32)[:, None]
    unsorted = np.empty_like(pooled)
    unsorted[order] = pooled
    return unsorted


def hash_vectors_numpy(strings: Sequence[str], dim: int, config: HashSettings) -> np.ndarray:
    """Float32 array [len(strings), dim]: the pooled n-gram hash vector of each string."""
    if len(strings) == 0 and config.kind != "learned":
        return np.zeros((0, dim), dtype=np.float32)
    index, vectors = ngram_vectors(strings, dim, config)
    pooled = pool_bags(vectors, index.flat, index.offsets, config.pooling)
    if config.scale != 1.0:
        pooled *= np.float32(config.scale)
    return pooled
