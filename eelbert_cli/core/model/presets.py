"""The model zoo as pure data: shapes and presets (no torch, no transformers), so specs validate
and reports read runs without loading a deep-learning library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from eelbert_cli.core.errors import EelbertError

# The allowed values of the model's choices, declared once: the spec's fields are these types and
# the model config checks against the same tuples.
# the masked-LM decoder: logits over the fixed hash table, or a trainable matrix; or (hash models) no
# vocabulary-sized output at all: the masked token's hash vector, by cosine (no exact ids asked for); or
# exact ids for the pretraining data's most frequent tokens only, every rarer token one shared class
MlmHead = Literal["tied", "untied", "hash-vector", "frequent-ids"]
DEFAULT_MLM_CLASSES = 1024  # frequent-ids: the 1,023 most frequent tokens (~74% of the prose corpus) and "any rarer one"
SentenceVector = Literal["cls", "mean"]  # what a classifier reads: [CLS]'s output state, or the mean of all tokens'
MLM_HEADS: tuple[str, ...] = get_args(MlmHead)
SENTENCE_VECTORS: tuple[str, ...] = get_args(SentenceVector)


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    ffn: int


SHAPES: dict[str, Shape] = {
    "tiny": Shape(2, 128, 2, 512),
    "mini": Shape(4, 256, 4, 1024),
    "small": Shape(4, 512, 8, 2048),
    "medium": Shape(8, 512, 8, 2048),
    "base": Shape(12, 768, 12, 3072),
    "uno": Shape(1, 128, 2, 512),
}


@dataclass(frozen=True)
class Preset:
    name: str
    shape: Shape
    hash_kind: str

    @property
    def bert_twin(self) -> str:
        """The learned-table model of the same size class EELBERT is compared against."""
        size = "tiny" if self.shape == SHAPES["uno"] else next(k for k, v in SHAPES.items() if v == self.shape)
        return f"bert-{size}"


PRESETS: dict[str, Preset] = {
    **{f"bert-{size}": Preset(f"bert-{size}", SHAPES[size], "learned") for size in ("tiny", "mini", "small", "medium", "base")},
    **{f"eelbert-{size}": Preset(f"eelbert-{size}", SHAPES[size], "ngram") for size in ("tiny", "mini", "small", "medium", "base")},
    "uno-eelbert": Preset("uno-eelbert", SHAPES["uno"], "ngram"),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise EelbertError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}") from None
