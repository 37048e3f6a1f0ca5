"""BERT and EELBERT: transformers' BERT with exactly one module swapped, plus the preset zoo.

``EelbertConfig`` is a ``BertConfig`` with the hash fields; the model classes are transformers'
``BertModel`` / ``BertForMaskedLM`` / ``BertForSequenceClassification`` whose
``embeddings.word_embeddings`` is replaced by a ``HashEmbedding`` (unless the hash kind is
``learned``, which is plain BERT). Importing this module registers the ``eelbert`` model type with
transformers' Auto classes, so ``AutoModel.from_pretrained(dir)`` loads our checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
)

from eelbert_cli.core.embeddings import HashEmbedding, HashTiedDecoder
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.hashing import HashConfig


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


@strict
class EelbertConfig(BertConfig):
    """BertConfig + how the word embedding is computed. ``hash_vocabulary`` holds the token strings
    (id order) because the table is rebuilt from them at load; it is the tokenizer's vocabulary."""

    model_type = "eelbert"

    hash_kind: str = "ngram"
    hash_ngram_min: int = 1
    hash_ngram_max: int = 3
    hash_seed: int = 0
    hash_values: str = "uniform"
    hash_pooling: str = "mean"
    hash_scale: float | int = 1.0
    mlm_head: str = "tied"
    preset: str | None = None
    hash_vocabulary: list[str] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.hash_vocabulary is not None:
            self.vocab_size = len(self.hash_vocabulary)

    @property
    def hash_config(self) -> HashConfig:
        return HashConfig(
            kind=self.hash_kind,
            ngram_min=self.hash_ngram_min,
            ngram_max=self.hash_ngram_max,
            seed=self.hash_seed,
            values=self.hash_values,
            pooling=self.hash_pooling,
            scale=float(self.hash_scale),
        )

    @property
    def uses_hash_embedding(self) -> bool:
        return self.hash_kind != "learned"


def make_config(
    shape: Shape,
    hash_config: HashConfig,
    vocabulary: Sequence[str] | None = None,
    mlm_head: str | None = None,
    preset: str | None = None,
    **bert_fields,
) -> EelbertConfig:
    """The one place a model config is assembled; validates what BertConfig does not.

    ``mlm_head`` defaults by embedding: ``tied`` for a learned table (BERT as published),
    ``untied`` for hash embeddings — on news at equal tokens the untied head reached MLM loss 7.0
    where the tied one was at 8.5 (the fixed hash vectors make large, correlated logits), and the
    untied decoder is pretraining-only, so the shipped model is the same size either way.
    """
    mlm_head = mlm_head or ("tied" if hash_config.kind == "learned" else "untied")
    if shape.hidden % shape.heads:
        raise EelbertError(f"hidden size {shape.hidden} is not divisible by the number of heads {shape.heads}")
    for field in ("layers", "hidden", "heads", "ffn"):
        if getattr(shape, field) < 1:
            raise EelbertError(f"model {field} must be a positive integer, got {getattr(shape, field)}")
    if mlm_head not in ("tied", "untied"):
        raise EelbertError(f"mlm_head must be 'tied' or 'untied', got {mlm_head!r}")
    if hash_config.kind != "learned" and vocabulary is None:
        from eelbert_cli.core.tokenization import load_tokenizer, vocabulary_of

        vocabulary = vocabulary_of(load_tokenizer())
    if vocabulary is not None:
        bert_fields["vocab_size"] = len(vocabulary)
    return EelbertConfig(
        num_hidden_layers=shape.layers,
        hidden_size=shape.hidden,
        num_attention_heads=shape.heads,
        intermediate_size=shape.ffn,
        hash_kind=hash_config.kind,
        hash_ngram_min=hash_config.ngram_min,
        hash_ngram_max=hash_config.ngram_max,
        hash_seed=hash_config.seed,
        hash_values=hash_config.values,
        hash_pooling=hash_config.pooling,
        hash_scale=hash_config.scale,
        mlm_head=mlm_head,
        preset=preset,
        hash_vocabulary=list(vocabulary) if hash_config.kind != "learned" and vocabulary is not None else None,
        **bert_fields,
    )


def preset_config(name: str, vocabulary: Sequence[str] | None = None, **bert_fields) -> EelbertConfig:
    preset = get_preset(name)
    return make_config(preset.shape, HashConfig(kind=preset.hash_kind), vocabulary, preset=name, **bert_fields)


def swap_word_embedding(bert: BertModel, config: EelbertConfig) -> None:
    """The EELBERT change, in one line of effect: BERT's word table becomes a hash embedding."""
    if not config.uses_hash_embedding:
        return
    if config.hash_vocabulary is None or len(config.hash_vocabulary) != config.vocab_size:
        raise EelbertError("an EELBERT config needs hash_vocabulary: the token strings of the tokenizer, in id order")
    embedding = HashEmbedding(config.hash_vocabulary, config.hidden_size, config.hash_config)
    embedding.reset_table()  # a no-op on the meta device; from_pretrained rebuilds it after loading
    bert.embeddings.word_embeddings = embedding


def hash_embeddings(model: nn.Module) -> list[HashEmbedding]:
    return [module for module in model.modules() if isinstance(module, HashEmbedding)]


class _EelbertLoading:
    """Shared by the three model classes: our config class, and hash tables rebuilt after loading.

    transformers materialises non-persistent buffers as ``empty_like`` after a meta-device load and
    dispatches re-initialisation to the *inner* BertModel, which does not know our module; so the
    tables are rebuilt here, where it cannot be missed.
    """

    config_class = EelbertConfig

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        for embedding in hash_embeddings(model):
            embedding.reset_table()
        return loaded


class EelbertModel(_EelbertLoading, BertModel):
    def __init__(self, config: EelbertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        swap_word_embedding(self, config)


class EelbertForSequenceClassification(_EelbertLoading, BertForSequenceClassification):
    def __init__(self, config: EelbertConfig) -> None:
        super().__init__(config)
        swap_word_embedding(self.bert, config)


class EelbertForMaskedLM(_EelbertLoading, BertForMaskedLM):
    """MLM head ``tied``: logits over the fixed hash table (no vocabulary x hidden parameters);
    ``untied``: a trainable decoder used only in pretraining. The output bias is always kept."""

    def __init__(self, config: EelbertConfig) -> None:
        super().__init__(config)
        swap_word_embedding(self.bert, config)
        predictions = self.cls.predictions
        if config.uses_hash_embedding and config.mlm_head == "tied":
            predictions.decoder = HashTiedDecoder(self.bert.embeddings.word_embeddings)
        elif config.mlm_head == "untied":
            decoder = predictions.decoder  # its weight was tied to the (now replaced) input table
            decoder.weight = nn.Parameter(decoder.weight.detach().clone())
        if config.uses_hash_embedding or config.mlm_head == "untied":
            self._tied_weights_keys = {"cls.predictions.decoder.bias": "cls.predictions.bias"}
            self.all_tied_weights_keys = self.get_expanded_tied_weights_keys()
            self.tie_weights()


AutoConfig.register(EelbertConfig.model_type, EelbertConfig)
AutoModel.register(EelbertConfig, EelbertModel)
AutoModelForMaskedLM.register(EelbertConfig, EelbertForMaskedLM)
AutoModelForSequenceClassification.register(EelbertConfig, EelbertForSequenceClassification)

TASK_CLASSES = {
    "base": EelbertModel,
    "masked-lm": EelbertForMaskedLM,
    "sequence-classification": EelbertForSequenceClassification,
}


def build_model(config: EelbertConfig, task: str = "base", **config_updates) -> nn.Module:
    """A freshly initialised model for ``task`` ('base', 'masked-lm', 'sequence-classification')."""
    if config_updates:
        config = EelbertConfig.from_dict({**config.to_dict(), **config_updates})
    return TASK_CLASSES[task](config)


def is_checkpoint_dir(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "config.json").is_file()


def load_model(path: str | Path, task: str = "base", **kwargs) -> nn.Module:
    """Any of our checkpoints, or any Hugging Face BERT checkpoint directory (weights: safetensors only)."""
    path = Path(path)
    if not is_checkpoint_dir(path):
        raise EelbertError(f"{path} is not a checkpoint directory (no config.json)")
    if not any(path.glob("*.safetensors")):
        raise EelbertError(f"{path} has no .safetensors weights; eelbert loads weights only from safetensors")
    auto = {"base": AutoModel, "masked-lm": AutoModelForMaskedLM, "sequence-classification": AutoModelForSequenceClassification}[task]
    try:
        return auto.from_pretrained(path, use_safetensors=True, **kwargs)
    except (OSError, ValueError) as error:
        raise EelbertError(f"could not load checkpoint {path}: {error}") from None


def parameter_count(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

