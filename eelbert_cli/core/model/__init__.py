"""The model: how strings become vectors, and BERT with its word table swapped for them.

    presets.py    the zoo as pure data (shapes, presets, BERT twins)
    hashing.py    HashConfig (the one hash schema) and the n-gram hash, numpy only
    embedding.py  HashEmbedding, the module that replaces ``embeddings.word_embeddings`` (torch)
    config.py     EelbertConfig: BertConfig + the hash
    modeling.py   the swap, the three model classes, Auto registration, build/load
    inspect.py    nearest vocabulary tokens of a word's hash vector

Importing this package costs nothing; the names below load on first use. Any use of a model
class, ``build_model`` or ``load_model`` (or ``import eelbert_cli.core.model.modeling``) registers
the ``eelbert`` model type with transformers' Auto classes, after which
``AutoModel.from_pretrained(checkpoint_dir)`` loads EELBERT checkpoints.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "HashConfig": "hashing",
    "Shape": "presets",
    "Preset": "presets",
    "PRESETS": "presets",
    "SHAPES": "presets",
    "get_preset": "presets",
    "HashEmbedding": "embedding",
    "hash_vectors": "embedding",
    "EelbertConfig": "config",
    "make_config": "config",
    "preset_config": "config",
    "EelbertModel": "modeling",
    "EelbertForMaskedLM": "modeling",
    "EelbertForSequenceClassification": "modeling",
    "build_model": "modeling",
    "load_model": "modeling",
    "parameter_count": "modeling",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
