"""BERT and EELBERT: transformers' BERT with exactly one module swapped.

The model classes are transformers' ``BertModel`` / ``BertForMaskedLM`` /
``BertForSequenceClassification`` whose ``embeddings.word_embeddings`` is replaced by a
``HashEmbedding`` (unless the hash kind is ``learned``, which is plain BERT). Importing this module
registers the ``eelbert`` model type with transformers' Auto classes, so
``AutoModel.from_pretrained(dir)`` loads our checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.config import EelbertConfig, as_eelbert_config
from eelbert_cli.core.model.embedding import HashEmbedding, HashTiedDecoder


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


def masked_mean(states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of each sequence's states over its real (unpadded) positions."""
    if attention_mask is None:
        return states.mean(dim=1)
    weights = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


class EelbertForSequenceClassification(_EelbertLoading, BertForSequenceClassification):
    """``classifier_pooling: mean`` feeds BERT's pooler (dense + tanh) the mean of the token states
    instead of [CLS]'s: masked-LM pretraining without next-sentence prediction never trains [CLS],
    so a pretrained encoder's sentence information may sit in its tokens. Same parameters either way."""

    def __init__(self, config: EelbertConfig) -> None:
        super().__init__(config)
        swap_word_embedding(self.bert, config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None, labels=None,
                **kwargs) -> SequenceClassifierOutput:
        if self.config.classifier_pooling == "cls":
            return super().forward(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, labels, **kwargs)
        kwargs.pop("return_dict", None)
        outputs = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
                            inputs_embeds=inputs_embeds, return_dict=True, **kwargs)
        pooler = self.bert.pooler
        pooled = pooler.activation(pooler.dense(masked_mean(outputs.last_hidden_state, attention_mask)))
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else self.loss_function(labels, logits, self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


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


BERT_LIKE_TYPES = ("bert", "eelbert")


def load_model(path: str | Path, task: str = "base", **kwargs) -> nn.Module:
    """Any of our checkpoints, or any Hugging Face BERT checkpoint directory (weights: safetensors only).

    Every way a checkpoint can be unreadable (a truncated weights file, a corrupt config, another
    architecture) is one EelbertError naming the directory."""
    path = Path(path)
    if not is_checkpoint_dir(path):
        raise EelbertError(f"{path} is not a checkpoint directory (no config.json)")
    if not any(path.glob("*.safetensors")):
        raise EelbertError(f"{path} has no .safetensors weights; eelbert loads weights only from safetensors")
    try:
        model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise EelbertError(f"{path / 'config.json'} is not a readable model config ({error})") from None
    if model_type not in BERT_LIKE_TYPES:
        raise EelbertError(f"{path} holds a {model_type!r} model; eelbert handles BERT-family checkpoints ({', '.join(BERT_LIKE_TYPES)})")
    auto = {"base": AutoModel, "masked-lm": AutoModelForMaskedLM, "sequence-classification": AutoModelForSequenceClassification}[task]
    try:
        if model_type == "bert" and kwargs.get("classifier_pooling", "cls") != "cls":
            # transformers' BERT head reads [CLS] only; ours is the same model with the pooling option
            config = as_eelbert_config(AutoConfig.from_pretrained(path))
            config = EelbertConfig.from_dict({**config.to_dict(), **kwargs})
            return EelbertForSequenceClassification.from_pretrained(path, config=config, use_safetensors=True)
        return auto.from_pretrained(path, use_safetensors=True, **kwargs)
    except EelbertError:
        raise
    except Exception as error:  # noqa: BLE001 - safetensors, transformers and torch each raise their own types
        raise EelbertError(f"could not load checkpoint {path} ({type(error).__name__}: {error}); it may be truncated or corrupt") from None


def checkpoint_digest(path: Path):
    """A sha256 seeded with what identifies a checkpoint's weights (file names, sizes, mtimes) and its
    config: the start of cache keys for outputs computed from it (teachers' labels)."""
    digest = hashlib.sha256()
    for weights in sorted(Path(path).glob("*.safetensors")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update((Path(path) / "config.json").read_bytes())
    return digest


def parameter_count(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
