"""``EelbertConfig``: a ``BertConfig`` that also says how the word embedding is computed.

The hash settings are one entry, ``hash`` (a :class:`HashConfig` as a mapping), so the spec, the
model config and the hashing code share one schema. ``hash_vocabulary`` holds the token strings in
id order because the table is rebuilt from them at load; it is the tokenizer's vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

from huggingface_hub.dataclasses import strict
from transformers import BertConfig

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.hashing import HashConfig
from eelbert_cli.core.model.presets import DEFAULT_MLM_CLASSES, MLM_HEADS, SENTENCE_VECTORS, Shape, get_preset

_LEGACY_PREFIX = "hash_"  # eelbert 0.1 wrote the hash fields flat (hash_kind, hash_seed, ...)
_LEGACY_SENTENCE_VECTOR = "classifier_pooling"  # the name of ``sentence_vector`` until issue 21 (configs still carry it)


@strict
class EelbertConfig(BertConfig):
    model_type = "eelbert"

    hash: dict | None = None  # HashConfig fields; None reads as the default n-gram hash
    mlm_head: str = "tied"
    mlm_classes: int = DEFAULT_MLM_CLASSES  # mlm_head frequent-ids: output classes (the last: "any rarer token")
    preset: str | None = None
    hash_vocabulary: list[str] | None = None
    sentence_vector: str = "cls"  # what a classification head reads: [CLS]'s state, or the mean over tokens

    def __post_init__(self, **kwargs):
        legacy_sentence_vector = kwargs.pop(_LEGACY_SENTENCE_VECTOR, None)
        if legacy_sentence_vector is not None and self.sentence_vector == "cls":
            self.sentence_vector = legacy_sentence_vector
        legacy = {key: kwargs.pop(key) for key in list(kwargs) if key.startswith(_LEGACY_PREFIX)}
        if self.hash is None and legacy:
            self.hash = {key.removeprefix(_LEGACY_PREFIX): value for key, value in legacy.items()}
        super().__post_init__(**kwargs)
        if self.hash_vocabulary is not None:
            self.vocab_size = len(self.hash_vocabulary)
        if self.sentence_vector not in SENTENCE_VECTORS:
            raise EelbertError(f"sentence_vector must be one of {', '.join(SENTENCE_VECTORS)}, got {self.sentence_vector!r}")

    @property
    def hash_config(self) -> HashConfig:
        try:
            return HashConfig.model_validate(self.hash or {})
        except ValueError as error:
            raise EelbertError(f"model config has an invalid 'hash' entry: {error}") from None

    @property
    def hash_kind(self) -> str:
        return self.hash_config.kind

    @property
    def uses_hash_embedding(self) -> bool:
        return self.hash_kind != "learned"


def make_config(
    shape: Shape,
    hash_config: HashConfig,
    vocabulary: Sequence[str] | None = None,
    mlm_head: str | None = None,
    preset: str | None = None,
    mlm_classes: int | None = None,
    **bert_fields,
) -> EelbertConfig:
    """The one place a model config is assembled; validates what BertConfig does not.

    A hash embedding needs ``vocabulary`` (the tokenizer's token strings in id order): the model
    layer never fetches one itself. ``mlm_head`` defaults by embedding: ``tied`` for a learned
    table (BERT as published), ``untied`` for hash embeddings — on news at equal tokens the untied
    head reached MLM loss 7.0 where the tied one was at 8.5 (the fixed hash vectors make large,
    correlated logits), and the untied decoder is pretraining-only, so the shipped model is the
    same size either way.
    """
    mlm_head = mlm_head or ("tied" if hash_config.kind == "learned" else "untied")
    for field in ("layers", "hidden", "heads", "ffn"):
        if getattr(shape, field) < 1:
            raise EelbertError(f"model {field} must be a positive integer, got {getattr(shape, field)}")
    if shape.hidden % shape.heads:
        raise EelbertError(f"hidden size {shape.hidden} is not divisible by the number of heads {shape.heads}")
    if mlm_head not in MLM_HEADS:
        raise EelbertError(f"mlm_head must be one of {', '.join(MLM_HEADS)}, got {mlm_head!r}")
    uses_hash = hash_config.kind != "learned"
    if mlm_head == "hash-vector" and not uses_hash:
        raise EelbertError("mlm_head hash-vector predicts the masked token's hash vector: it needs a hash embedding, not hash.kind learned")
    if mlm_classes is not None and mlm_head != "frequent-ids":
        raise EelbertError(f"mlm_classes sizes the frequent-ids head; this model's mlm_head is {mlm_head}")
    classes = DEFAULT_MLM_CLASSES if mlm_classes is None else mlm_classes
    vocabulary_size = len(vocabulary) if vocabulary is not None else bert_fields.get("vocab_size", BertConfig().vocab_size)
    if mlm_head == "frequent-ids" and not 2 <= classes <= vocabulary_size:
        raise EelbertError(f"mlm_classes must be between 2 and the vocabulary size ({vocabulary_size}), got {classes}")
    if uses_hash and vocabulary is None:
        raise EelbertError("a hash-embedding model needs its tokenizer's vocabulary (token strings in id order)")
    if vocabulary is not None:
        bert_fields["vocab_size"] = len(vocabulary)
    return EelbertConfig(
        num_hidden_layers=shape.layers,
        hidden_size=shape.hidden,
        num_attention_heads=shape.heads,
        intermediate_size=shape.ffn,
        hash=hash_config.as_dict(),
        mlm_head=mlm_head,
        mlm_classes=classes,
        preset=preset,
        hash_vocabulary=list(vocabulary) if uses_hash else None,
        **bert_fields,
    )


def preset_config(name: str, vocabulary: Sequence[str] | None = None, **bert_fields) -> EelbertConfig:
    preset = get_preset(name)
    return make_config(preset.shape, HashConfig(kind=preset.hash_kind), vocabulary, preset=name, **bert_fields)


def learned_twin_config(config: EelbertConfig, **updates) -> EelbertConfig:
    """The same config with a learned table instead of the hash (plus ``updates``)."""
    fields = {**config.to_dict(), "hash": HashConfig(kind="learned").as_dict(), "hash_vocabulary": None, "vocab_size": config.vocab_size}
    return EelbertConfig.from_dict({**fields, **updates})


def as_eelbert_config(config) -> EelbertConfig:
    """A plain Hugging Face BertConfig becomes ours with a learned table (same numbers, same weights)."""
    if isinstance(config, EelbertConfig):
        return config
    if getattr(config, "model_type", None) != "bert":
        raise EelbertError(f"checkpoint has model_type {config.model_type!r}; eelbert handles 'bert' and 'eelbert'")
    fields = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "architectures", "transformers_version")}
    return EelbertConfig.from_dict({**fields, "hash": HashConfig(kind="learned").as_dict()})
